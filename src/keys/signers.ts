/**
 * The signers of a box: every signature over the manifest checked against the
 * signer's key (carried in the box, merged with the local keyring), and the
 * key lookups the trust decision uses.
 */
import type * as openpgp from 'openpgp';
import { refuse } from '../errors.js';
import { readSinglePublicKey, applyRevocations, fingerprintOf } from './keys.js';
import { checkSignature, readOneSignature } from './verify.js';
import type { ResolvedPolicy } from '../policy/config.js';
import type { Signer } from '../policy/decide.js';
import type { TrustStore } from '../trust/store.js';
import type { BoxsigPrefix } from '../box/reader.js';

/** Parse every signer's key and check every signature over the manifest bytes. */
export async function checkSigners(
  prefix: Pick<BoxsigPrefix, 'manifest' | 'signatures' | 'keys'>,
  store: TrustStore | null,
  policy: Pick<ResolvedPolicy, 'revocation' | 'expiry'>,
  now: Date,
): Promise<{ signers: Signer[]; boxKeys: Map<string, openpgp.PublicKey> }> {
  const boxKeys = new Map<string, openpgp.PublicKey>();
  for (const [fpr, bytes] of prefix.keys) {
    const key = await readSinglePublicKey(bytes, `.boxsig/keys/${fpr}.asc`);
    if (fingerprintOf(key) !== fpr) {
      throw refuse('MALFORMED', `.boxsig/keys/${fpr}.asc holds key ${fingerprintOf(key)}, not ${fpr}`);
    }
    boxKeys.set(fpr, key);
  }
  const revocations = store ? store.keyring.revocations() : [];
  const signers: Signer[] = [];
  for (const [fpr, bytes] of [...prefix.signatures].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const sig = await readOneSignature(bytes, `.boxsig/signatures/${fpr}.asc`);
    let key: openpgp.PublicKey | null = boxKeys.get(fpr) ?? null;
    const fromRing = store ? await store.keyring.get(fpr) : null;
    if (key && fromRing) {
      try {
        key = (await fromRing.update(key)) as openpgp.PublicKey;
      } catch {
        /* keep the box's copy */
      }
    } else if (!key) key = fromRing;
    if (!key) {
      signers.push({
        fingerprint: fpr,
        signingKey: fpr,
        userIds: [],
        algorithm: '?',
        created: sig.created?.toISOString() ?? '',
        valid: false,
        code: 'UNTRUSTED_KEY',
        reason: `the key ${fpr} is neither in the box nor in the keyring, so its signature cannot be checked`,
        warnings: [],
        key: null,
      });
      continue;
    }
    key = await applyRevocations(key, revocations);
    const check = await checkSignature({ sig, key, data: prefix.manifest!, now, revocation: policy.revocation, expiry: policy.expiry });
    if (check.valid && check.fingerprint !== fpr) {
      check.valid = false;
      check.code = 'BAD_SIGNATURE';
      check.reason = `signature file ${fpr}.asc was made by ${check.fingerprint}`;
    }
    signers.push({ ...check, key });
  }
  return { signers, boxKeys };
}

/**
 * Where organisation keys and keys recorded by trust on first use come from:
 * the keyring (merged with a copy carried in the box), with every stored
 * revocation applied.
 */
export function keyLookups(store: TrustStore, boxKeys: Map<string, openpgp.PublicKey>) {
  const lookup = async (fpr: string): Promise<openpgp.PublicKey | null> => {
    const inBox = boxKeys.get(fpr) ?? null;
    const inRing = await store.keyring.get(fpr);
    if (inBox && inRing) return (await inRing.update(inBox).catch(() => inRing)) as openpgp.PublicKey;
    const k = inRing ?? inBox;
    return k ? applyRevocations(k, store.keyring.revocations()) : null;
  };
  return { orgKey: lookup, recordedKey: lookup };
}
