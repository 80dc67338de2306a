/**
 * The signers of a box: every signature over the manifest checked against the
 * signer's key (carried in the box, merged with the local keyring), and the
 * key lookups the trust decision uses.
 *
 * Cheap checks come first, for every file, before any cryptography: each
 * signature and key is read by boxsig's own packet reader, keys are held to
 * the limits and the accepted algorithms, a key file must belong to a
 * signature of the box, and a signature must name a (sub)key of the key it
 * is filed under. Only then are keys opened and signatures verified, so a
 * hostile `.boxsig/` costs a bounded amount of work before it is refused.
 */
import { refuse } from '../errors.js';
import { namesSigner, parseManifest, type Manifest } from '../manifest/manifest.js';
import { mergeCert, type Cert, type Sig } from './cert.js';
import { CERTIFICATION_TYPES } from './packets.js';
import { handleOf, openKey, setCarried } from './handle.js';
import { readKeyData } from './keys.js';
import { checkSignature, readOneSignature, type DetachedSignature, type Enforcement, type SignatureCheck } from './verify.js';
import { withConcerningRevocations, type CertLookup } from './revocation.js';
import type { PublicKey } from './pgp.js';

/** What `.boxsig/` carries (the reader's prefix). */
export interface BoxKeyMaterial {
  manifest: Buffer | null;
  /** primary fingerprint -> armored signature */
  signatures: Map<string, Buffer>;
  /** primary fingerprint -> armored public key */
  keys: Map<string, Buffer>;
}

/** Where stored keys come from (the keyring of the trust store). */
export interface KeySource {
  /** The stored copy of a key, with every stored revocation that may concern it; null when unknown. */
  cert(fingerprint: string): Promise<Cert | null>;
  /** Any copy of a key with every stored revocation that may concern it (revocations arrive before their key). */
  withRevocations(cert: Cert): Promise<Cert>;
}

export interface CheckedSigner extends SignatureCheck {
  /** The signer's key (from the box, merged with the keyring), when available. */
  key: PublicKey | null;
}

/** Parse every signature file (MALFORMED when one cannot be read). */
async function readSignatures(prefix: BoxKeyMaterial): Promise<Map<string, DetachedSignature>> {
  const out = new Map<string, DetachedSignature>();
  for (const [fpr, bytes] of prefix.signatures) out.set(fpr, await readOneSignature(bytes, `.boxsig/signatures/${fpr}.asc`));
  return out;
}

/** Keys of certifiers a key file may carry after the signer's key, per file and per box. */
export const CARRIED_CERTIFIERS = Object.freeze({ perFile: 4, perBox: 8 });

/** Fingerprints of the keys that claim to have certified a user ID of `c` (the issuers its certifications name). */
export function certifierClaims(c: Cert): Set<string> {
  const out = new Set<string>();
  for (const u of c.users) {
    for (const s of u.sigs) {
      if (!CERTIFICATION_TYPES.has(s.info.type)) continue;
      const f = s.info.hashedIssuerFingerprint ?? s.info.issuerFingerprints[0];
      if (f && f !== c.info.fingerprint) out.add(f);
    }
  }
  return out;
}

interface BoxCerts {
  /** signer fingerprint -> its key */
  signers: Map<string, Cert>;
  /** keys that certified a signer's key, carried so that a verifier configured with only their fingerprint can check the chain */
  certifiers: Map<string, Cert>;
}

/** Read every key file with the cheap checks only; refuse what is not a public key of the box's signers (and of their certifiers). */
async function readBoxKeys(prefix: BoxKeyMaterial): Promise<BoxCerts> {
  const out: BoxCerts = { signers: new Map(), certifiers: new Map() };
  for (const [fpr, bytes] of prefix.keys) {
    const what = `.boxsig/keys/${fpr}.asc`;
    if (!prefix.signatures.has(fpr)) throw refuse('MALFORMED', `${what}: no signature in the box is filed under this key`);
    const d = await readKeyData(bytes, what);
    const [cert, ...certifiers] = d.certs;
    if (!cert || d.bare.length !== 0) throw refuse('MALFORMED', `${what}: must hold the signer's public key (and the keys that certified it), nothing else`);
    if (d.certs.some((c) => c.hadSecret)) throw refuse('MALFORMED', `${what}: holds secret key material`);
    if (cert.info.fingerprint !== fpr) throw refuse('MALFORMED', `${what} holds key ${cert.info.fingerprint}, not ${fpr}`);
    out.signers.set(fpr, cert);
    const claimed = certifierClaims(cert);
    if (certifiers.length > CARRIED_CERTIFIERS.perFile)
      throw refuse('MALFORMED', `${what}: carries ${certifiers.length} certifying keys (at most ${CARRIED_CERTIFIERS.perFile})`);
    for (const c of certifiers) {
      if (!claimed.has(c.info.fingerprint)) throw refuse('MALFORMED', `${what}: carries key ${c.info.fingerprint}, which certified nothing on ${fpr}`);
      const known = out.certifiers.get(c.info.fingerprint);
      out.certifiers.set(c.info.fingerprint, known ? mergeCert(known, c).cert : c);
    }
    if (out.certifiers.size > CARRIED_CERTIFIERS.perBox)
      throw refuse('MALFORMED', `.boxsig/keys/ carries more than ${CARRIED_CERTIFIERS.perBox} certifying keys`);
  }
  return out;
}

/** Keys by fingerprint: the keyring's copy merged with the box's. */
function certLookup(store: { keyring: KeySource } | null, boxCerts: (fpr: string) => Promise<Cert | null>): CertLookup {
  return async (fpr) => {
    const inRing = store ? await store.keyring.cert(fpr) : null;
    const inBox = await boxCerts(fpr);
    if (inRing && inBox) return mergeCert(inRing, inBox).cert;
    if (inBox && store) return store.keyring.withRevocations(inBox);
    return inRing ?? inBox;
  };
}

function unknownSigner(fpr: string, sig: DetachedSignature): CheckedSigner {
  return {
    fingerprint: fpr,
    signingKey: fpr,
    userIds: [],
    algorithm: '?',
    created: sig.info.created?.toISOString() ?? '',
    valid: false,
    code: 'UNTRUSTED_KEY',
    reason: `the key ${fpr} is neither in the box nor in the keyring, so its signature cannot be checked`,
    warnings: [],
    key: null,
  };
}

/** A signature by a key the signed manifest does not name: ignored, so not worth a key or a verification. */
function unnamedSigner(fpr: string, sig: DetachedSignature, named: string[]): CheckedSigner {
  return {
    ...unknownSigner(fpr, sig),
    reason: `the signed manifest names its signers (${named.join(', ')}) and not ${fpr}: its signature is ignored`,
  };
}

function readManifest(manifest: Buffer | null): Manifest | null {
  if (!manifest) return null;
  try {
    return parseManifest(manifest);
  } catch {
    return null; // an unreadable manifest is refused by whoever reads it
  }
}

function manifestCreated(m: Manifest | null): Date | null {
  const t = m ? Date.parse(m.created) : NaN;
  return Number.isNaN(t) ? null : new Date(t);
}

/** Parse every signer's key and check every signature over the manifest bytes. */
export async function checkSigners(
  prefix: BoxKeyMaterial,
  store: { keyring: KeySource } | null,
  policy: { revocation: Enforcement; expiry: Enforcement },
  now: Date,
): Promise<{ signers: CheckedSigner[]; boxKeys: Map<string, PublicKey> }> {
  // 1. cheap: packets, limits, algorithms, relevance — no cryptography yet
  const sigs = await readSignatures(prefix);
  const boxCerts = await readBoxKeys(prefix);
  // 2. the keys, merged with the keyring, and the signatures
  const lookup = certLookup(store, async (f) => boxCerts.signers.get(f) ?? boxCerts.certifiers.get(f) ?? null);
  const manifest = readManifest(prefix.manifest);
  const created = manifestCreated(manifest);
  const signers: CheckedSigner[] = [];
  const boxKeys = new Map<string, PublicKey>();
  for (const [fpr, sig] of [...sigs].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (manifest?.signers && !namesSigner(manifest, fpr)) {
      signers.push(unnamedSigner(fpr, sig, manifest.signers));
      continue;
    }
    const cert = await lookup(fpr);
    if (!cert) {
      signers.push(unknownSigner(fpr, sig));
      continue;
    }
    const key = await openKey(cert, lookup, `the key of ${fpr}`);
    setCarried(key, boxCerts.certifiers);
    if (boxCerts.signers.has(fpr)) boxKeys.set(fpr, key);
    const check = await checkSignature({
      sig,
      key,
      data: prefix.manifest!,
      now,
      manifestCreated: created,
      revocation: policy.revocation,
      expiry: policy.expiry,
    });
    signers.push({ ...check, key });
  }
  return { signers, boxKeys };
}

/**
 * Where organisation keys and keys recorded by trust on first use come from:
 * the keyring (merged with a copy carried in the box), with every stored
 * revocation applied.
 */
export function keyLookups(store: { keyring: KeySource }, boxKeys: Map<string, PublicKey>) {
  const opened = new Map<string, Promise<PublicKey | null>>();
  // the box's copies: its signers' keys, and the certifying keys that travelled with them
  const certs = certLookup(store, async (fpr) => {
    const k = boxKeys.get(fpr);
    if (k) return (await handleOf(k)).cert;
    for (const key of boxKeys.values()) {
      const carried = (await handleOf(key)).carried?.get(fpr);
      if (carried) return carried;
    }
    return null;
  });
  const lookup = (fpr: string): Promise<PublicKey | null> => {
    if (!opened.has(fpr))
      opened.set(
        fpr,
        certs(fpr).then((c) => (c ? openKey(c, certs) : null)),
      );
    return opened.get(fpr)!;
  };
  return { orgKey: lookup, recordedKey: lookup };
}

/**
 * A key source over keys and revocation certificates held in memory (the
 * registry's view of an organisation: the keys and revocations it
 * registered), with the same rule as the local keyring: every revocation that
 * may concern a key travels with it.
 */
export function memoryKeySource(certs: readonly Cert[], revocations: readonly Sig[]): KeySource {
  const byFpr = new Map<string, Cert>();
  for (const c of certs) {
    const known = byFpr.get(c.info.fingerprint);
    byFpr.set(c.info.fingerprint, known ? mergeCert(known, c).cert : c);
  }
  const source: KeySource = {
    async cert(fpr) {
      const c = byFpr.get(fpr);
      return c ? source.withRevocations(c) : null;
    },
    withRevocations: (c) => withConcerningRevocations(c, revocations),
  };
  return source;
}
