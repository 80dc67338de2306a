/**
 * Keys served by a boxsig registry for a box (`GET
 * /boxsig/v1/orgs/ORG/boxes/NAME/keys`): its org keys, the repository and
 * escrow keys certified for the name, and every revocation the org
 * registered. `boxsig add ORG/NAME` from a registry uses them when the box
 * lacks its chain (a box signed before its key was certified), and keeps the
 * revocations among them that concern the box's signers.
 *
 * Nothing is trusted by being served: they only add packets to copies of
 * keys (merged as a union, like `boxsig key import`). A certification counts
 * only when made by an org key whose fingerprint the user configured; a
 * revocation can only take trust away. A server that is not a boxsig
 * registry (Vagrant Cloud), or that fails, serves nothing.
 */
import { mergeCert, type Cert, type Sig } from '../keys/cert.js';
import { readKeyData } from '../keys/keys.js';
import { memoryKeySource, type KeySource } from '../keys/signers.js';
import { isPlainObject, parseUntrustedJson } from '../shared/json.js';
import type { TrustView } from '../box/judge.js';
import type { TrustStore } from '../trust/store.js';
import { keyRevocation, verifiedRevocations } from '../keys/revocation.js';
import { httpRequest, readLimited, type HttpOptions } from './http.js';

const MAX_SERVED_KEYS_BYTES = 4 * 1024 * 1024;
const MAX_SERVED_ITEMS = 256;

export interface ServedKeys {
  url: string;
  source: KeySource;
}

/** The registry's keys for `name` (ORG/NAME) at `server`; null when it serves none. */
export async function fetchRegistryKeys(server: string, name: string, http: HttpOptions): Promise<ServedKeys | null> {
  const [org, box] = name.split('/');
  const url = `${server}/boxsig/v1/orgs/${encodeURIComponent(org)}/boxes/${encodeURIComponent(box)}/keys`;
  try {
    const r = await httpRequest(url, { ...http, accept: 'application/json' });
    if (!/application\/json/i.test(r.contentType)) {
      r.body.destroy();
      return null;
    }
    const bytes = await readLimited(r.body, MAX_SERVED_KEYS_BYTES, `the registry's keys for ${name}`);
    return { url, source: await parseServedKeys(bytes, url) };
  } catch {
    return null;
  }
}

/** Read the served document: `keys[].armored` and `revocations[]`, each bounded and read by boxsig's own packet reader. */
async function parseServedKeys(bytes: Buffer, what: string): Promise<KeySource> {
  const doc = parseUntrustedJson(bytes, what, MAX_SERVED_KEYS_BYTES);
  if (!isPlainObject(doc)) return memoryKeySource([], []);
  const keys = Array.isArray(doc.keys) ? doc.keys.slice(0, MAX_SERVED_ITEMS) : [];
  const revs = Array.isArray(doc.revocations) ? doc.revocations.slice(0, MAX_SERVED_ITEMS) : [];
  const certs: Cert[] = [];
  const bare: Sig[] = [];
  for (const k of keys) {
    if (!isPlainObject(k) || typeof k.armored !== 'string') continue;
    const d = await readKeyData(Buffer.from(k.armored, 'latin1'), `${what}: a served key`).catch(() => null);
    if (d) certs.push(...d.certs.filter((c) => !c.hadSecret));
  }
  for (const r of revs) {
    if (typeof r !== 'string') continue;
    const d = await readKeyData(Buffer.from(r, 'latin1'), `${what}: a served revocation`).catch(() => null);
    if (d) bare.push(...d.bare);
  }
  return memoryKeySource(certs, bare);
}

/** The keyring of `base` with the served copies merged in and the served revocations applied. */
function withServedKeys(base: KeySource, served: KeySource): KeySource {
  return {
    async cert(fpr) {
      const mine = await base.cert(fpr);
      const theirs = await served.cert(fpr);
      if (mine && theirs) return mergeCert(mine, theirs).cert;
      return mine ?? (theirs ? base.withRevocations(theirs) : null);
    },
    async withRevocations(c) {
      return served.withRevocations(await base.withRevocations(c));
    },
  };
}

/** A trust view whose keyring also holds what the registry served. */
export function servedView(store: TrustView, served: KeySource): TrustView {
  return {
    file: store.file,
    ...(store.recordFile ? { recordFile: (name: string) => store.recordFile!(name) } : {}),
    read: () => store.read(),
    keyring: withServedKeys(store.keyring, served),
  };
}

/** The served copies (with the served revocations) of the given keys: what an accepted add keeps in the keyring. */
export async function servedCopies(served: KeySource, fingerprints: string[]): Promise<Cert[]> {
  const out: Cert[] = [];
  for (const f of fingerprints) {
    const c = await served.cert(f);
    if (c) out.push(c);
  }
  return out;
}

/**
 * After an add the registry's keys took part in was refused (a key revoked
 * after the box was released: KEY_REVOKED): the served revocations that
 * concern keys the keyring already holds are kept, as an accepted add keeps
 * its signers' (revocations only accumulate) — so `boxsig verify --installed`
 * flags a box installed before, signed by a key the consumer now knows is
 * revoked. So is the served copy of a configured org key (`orgFingerprints`)
 * that the registry serves revoked: the chains through it end for the boxes
 * installed before too. Nothing else is kept: a served revocation of a key
 * this consumer neither holds nor configured changes nothing it trusts.
 * Returns the keys whose copy changed.
 */
export async function keepServedRevocations(store: TrustStore, served: KeySource, orgFingerprints: readonly string[] = []): Promise<string[]> {
  return store.locked(async () => {
    const kept: string[] = [];
    for (const fpr of new Set(orgFingerprints.map((f) => f.toUpperCase()))) {
      if (store.keyring.has(fpr)) continue;
      const theirs = await served.cert(fpr);
      if (!theirs || !keyRevocation(await verifiedRevocations(theirs, (f) => served.cert(f)))) continue;
      await store.keyring.mergeLocked(theirs);
      kept.push(fpr);
    }
    for (const fpr of store.keyring.fingerprints()) {
      const mine = await store.keyring.cert(fpr);
      if (!mine) continue;
      const withServed = await served.withRevocations(mine);
      if (mergeCert(mine, withServed).added === 0) continue;
      await store.keyring.mergeLocked(withServed);
      kept.push(fpr);
    }
    return kept;
  });
}
