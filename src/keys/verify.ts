/**
 * Checking one detached signature over the manifest, with a precise verdict:
 * valid, bad (BAD_SIGNATURE), made by an expired key (KEY_EXPIRED) or by a
 * revoked key (KEY_REVOKED). Revocation follows the reason: `compromised` or
 * no reason invalidates every signature; `superseded` and `retired` only the
 * ones made after the revocation.
 */
import * as openpgp from 'openpgp';
import { refuse, type RefusalCode } from '../errors.js';
import { describeAlgorithm, fingerprintOf, PGP_CONFIG, userIdsOf } from './keys.js';

export type Enforcement = 'enforce' | 'warn';

export interface SignatureCheck {
  /** Primary-key fingerprint of the signer. */
  fingerprint: string;
  /** Fingerprint of the (sub)key that made the signature. */
  signingKey: string;
  userIds: string[];
  algorithm: string;
  /** Signature creation time (ISO). */
  created: string;
  /** true when the signature counts (possibly with warnings). */
  valid: boolean;
  /** Why the signature does not count. */
  code?: RefusalCode;
  reason?: string;
  warnings: string[];
}

const cfg = (): openpgp.Config => ({ ...openpgp.config, ...PGP_CONFIG }) as openpgp.Config;

/** Parse one armored detached signature file; refuses files holding anything but exactly one signature packet. */
export async function readOneSignature(bytes: Uint8Array, what: string): Promise<openpgp.SignaturePacket> {
  const text = Buffer.from(bytes).toString('latin1');
  const blocks = text.match(/-----BEGIN PGP SIGNATURE-----/g)?.length ?? 0;
  if (blocks !== 1) throw refuse('MALFORMED', `${what}: expected one ASCII-armored signature, found ${blocks}`);
  let sig: openpgp.Signature;
  try {
    sig = await openpgp.readSignature({ armoredSignature: text, config: PGP_CONFIG });
  } catch (e) {
    throw refuse('MALFORMED', `${what}: not a valid OpenPGP signature (${(e as Error).message})`);
  }
  if (sig.packets.length !== 1) {
    throw refuse('MALFORMED', `${what}: holds ${sig.packets.length} signatures; boxsig expects one signature per file`);
  }
  return sig.packets[0];
}

function hex(b: Uint8Array | null | undefined): string | null {
  return b ? Buffer.from(b).toString('hex').toUpperCase() : null;
}

/** Clone a key without any revocation signature (for policy `revocation: warn`). */
function withoutRevocations(key: openpgp.PublicKey): openpgp.PublicKey {
  const k = (key as unknown as { clone(deep: boolean): openpgp.PublicKey }).clone(true);
  k.revocationSignatures = [];
  for (const s of k.subkeys) s.revocationSignatures = [];
  for (const u of k.users) u.revocationSignatures = [];
  return k;
}

async function isKeyRevokedAt(key: openpgp.PublicKey, signing: openpgp.PublicKey | openpgp.Subkey, date: Date): Promise<boolean> {
  if (await key.isRevoked(undefined, undefined, date, cfg())) return true;
  if (signing !== key) {
    const sub = signing as openpgp.Subkey;
    try {
      await sub.verify(date, cfg());
    } catch (e) {
      if (/revoked/i.test((e as Error).message)) return true;
    }
  }
  return false;
}

/**
 * Check `sig` over `data` by `key` (whose primary fingerprint is `fingerprint`).
 */
export async function checkSignature(opts: {
  sig: openpgp.SignaturePacket;
  key: openpgp.PublicKey;
  data: Uint8Array;
  now: Date;
  revocation: Enforcement;
  expiry: Enforcement;
}): Promise<SignatureCheck> {
  const { sig, key, data, now } = opts;
  const fingerprint = fingerprintOf(key);
  const result: SignatureCheck = {
    fingerprint,
    signingKey: fingerprint,
    userIds: userIdsOf(key),
    algorithm: describeAlgorithm(key),
    created: sig.created ? sig.created.toISOString().replace(/\.\d{3}Z$/, 'Z') : '',
    valid: false,
    warnings: [],
  };
  const fail = (code: RefusalCode, reason: string): SignatureCheck => {
    result.valid = false;
    result.code = code;
    result.reason = reason;
    return result;
  };

  if (sig.signatureType !== openpgp.enums.signature.binary) {
    return fail('BAD_SIGNATURE', `signature type 0x${(sig.signatureType ?? 0).toString(16).padStart(2, '0')} is not a binary-document signature (0x00)`);
  }
  if (!sig.created) return fail('BAD_SIGNATURE', 'signature has no creation time');
  const issuerKeys = key.getKeys(sig.issuerKeyID);
  if (issuerKeys.length === 0) {
    return fail('BAD_SIGNATURE', `signature was made by key ${sig.issuerKeyID.toHex().toUpperCase()}, which is not part of key ${fingerprint}`);
  }
  const signing = issuerKeys[0] as openpgp.PublicKey | openpgp.Subkey;
  result.signingKey = signing.getFingerprint().toUpperCase();
  const issuerFpr = hex(sig.issuerFingerprint);
  if (issuerFpr && issuerFpr !== result.signingKey) {
    return fail('BAD_SIGNATURE', `signature names issuer ${issuerFpr}, which does not match key ${result.signingKey}`);
  }

  // 1. the cryptography: these exact bytes, this key
  const literal = new openpgp.LiteralDataPacket();
  (literal as unknown as { setBytes(b: Uint8Array, f: openpgp.enums.literal): void }).setBytes(data, openpgp.enums.literal.binary);
  try {
    await sig.verify(signing.keyPacket, openpgp.enums.signature.binary, literal, now, true, cfg());
  } catch (e) {
    const msg = (e as Error).message;
    if (/in the future/.test(msg)) return fail('BAD_SIGNATURE', 'signature creation time is in the future');
    if (/Signature is expired/.test(msg)) return fail('BAD_SIGNATURE', 'the signature itself has expired');
    return fail('BAD_SIGNATURE', `signature does not match manifest.json (${msg})`);
  }
  if (signing.getCreationTime() > sig.created) return fail('BAD_SIGNATURE', 'signature is older than the key that made it');

  // 2. the key at the time of signing: self-signatures, capability, expiry, revocation
  const created = sig.created;
  try {
    await key.getSigningKey(sig.issuerKeyID, created, undefined, cfg());
    result.valid = true;
    return result;
  } catch (e) {
    const msg = (e as Error).message;
    const revoked = await isKeyRevokedAt(key, signing === key ? key : (signing as openpgp.Subkey), created);
    if (revoked) {
      if (opts.revocation === 'warn') {
        const unrevoked = withoutRevocations(key);
        const ok = await unrevoked.getSigningKey(sig.issuerKeyID, created, undefined, cfg()).then(
          () => true,
          () => false,
        );
        if (ok) {
          result.valid = true;
          result.warnings.push(`key ${fingerprint} is revoked; accepted because the policy says revocation: warn`);
          return result;
        }
      }
      return fail('KEY_REVOKED', `key ${fingerprint} is revoked${await revocationDetail(key)}`);
    }
    if (/expired/i.test(msg)) {
      if (opts.expiry === 'warn') {
        const lastValid = lastSelfSignatureBefore(key, created);
        if (lastValid) {
          const ok = await key.getSigningKey(sig.issuerKeyID, lastValid, undefined, cfg()).then(
            () => true,
            () => false,
          );
          if (ok) {
            result.valid = true;
            result.warnings.push(`key ${result.signingKey} had expired when it signed; accepted because the policy says expiry: warn`);
            return result;
          }
        }
      }
      return fail('KEY_EXPIRED', `key ${result.signingKey} had expired when the signature was made (${created.toISOString()})`);
    }
    return fail(
      'BAD_SIGNATURE',
      `key ${result.signingKey} is not valid for signing: ${msg.replace(/^Could not find valid signing key packet in key [0-9a-f]+: /, '')}`,
    );
  }
}

/** Latest self-signature or binding-signature time not after `date` (a moment the key was certified). */
function lastSelfSignatureBefore(key: openpgp.PublicKey, date: Date): Date | null {
  let best: Date | null = null;
  const consider = (s: openpgp.SignaturePacket) => {
    if (s.created && s.created <= date && (!best || s.created > best)) best = s.created;
  };
  for (const u of key.users) u.selfCertifications.forEach(consider);
  (key as unknown as { directSignatures: openpgp.SignaturePacket[] }).directSignatures.forEach(consider);
  for (const sk of key.subkeys) sk.bindingSignatures.forEach(consider);
  return best;
}

const REASONS: Record<number, string> = {
  0: 'no reason given',
  1: 'superseded',
  2: 'compromised',
  3: 'retired',
  32: 'user ID no longer valid',
};

async function revocationDetail(key: openpgp.PublicKey): Promise<string> {
  const sigs = [...key.revocationSignatures, ...key.subkeys.flatMap((s) => s.revocationSignatures)];
  const s = sigs[0];
  if (!s) return '';
  const reason = REASONS[s.reasonForRevocationFlag ?? 0] ?? `reason ${s.reasonForRevocationFlag}`;
  const text = s.reasonForRevocationString ? `: ${s.reasonForRevocationString}` : '';
  return ` (${reason}${text}, ${s.created?.toISOString() ?? 'undated'})`;
}

/** Describe the revocation state of a key now: null when not revoked. */
export async function revocationState(key: openpgp.PublicKey): Promise<{ reason: string; hard: boolean; date: string | null } | null> {
  for (const s of key.revocationSignatures) {
    try {
      await s.verify(key.keyPacket, openpgp.enums.signature.keyRevocation, { key: key.keyPacket }, undefined, undefined, cfg());
    } catch {
      continue;
    }
    const flag = s.reasonForRevocationFlag ?? 0;
    return { reason: REASONS[flag] ?? `reason ${flag}`, hard: ![1, 3, 32].includes(flag), date: s.created?.toISOString() ?? null };
  }
  return null;
}
