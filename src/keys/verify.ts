/**
 * Checking one detached signature over the manifest, with a precise verdict:
 * valid, bad (BAD_SIGNATURE), made by an expired key (KEY_EXPIRED) or by a
 * revoked key (KEY_REVOKED). Revocation follows the reason: `compromised` or
 * no reason invalidates every signature; `superseded` and `retired` only the
 * ones made after the revocation.
 *
 * The signature is judged at the later of its own creation time and the
 * manifest's `created`; a signature older than the manifest it signs is
 * impossible and refused (a backdated signature by an expired key).
 */
import { refuse, type RefusalCode } from '../errors.js';
import { SIGTYPE, parseSignaturePacket, readPackets, subpacketName, TAG, type SignatureInfo } from './packets.js';
import { handleOf, type KeyHandle } from './handle.js';
import { describeRevocation, revocationAt } from './revocation.js';
import * as pgp from './pgp.js';

export type Enforcement = 'enforce' | 'warn';

export interface SignatureCheck {
  /** Primary-key fingerprint of the signer. */
  fingerprint: string;
  /**
   * Fingerprint of the (sub)key that made the signature. One signing key
   * counts once, whichever primaries it is bound to: a threshold counts
   * distinct values of this field as well as of `fingerprint`.
   */
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

/** A detached signature as read from `.boxsig/signatures/<FPR>.asc`. */
export interface DetachedSignature {
  body: Uint8Array;
  info: SignatureInfo;
  /** the key IDs / fingerprint it names as its issuer (upper-case hex) */
  issuer: string;
}

/** Parse one armored detached signature file; refuses files holding anything but exactly one v4 signature packet. */
export async function readOneSignature(bytes: Uint8Array, what: string): Promise<DetachedSignature> {
  const text = Buffer.from(bytes).toString('latin1');
  const blocks = text.match(/-----BEGIN PGP SIGNATURE-----/g)?.length ?? 0;
  if (blocks !== 1) throw refuse('MALFORMED', `${what}: expected one ASCII-armored signature, found ${blocks}`);
  let data: Uint8Array;
  try {
    const d = await pgp.dearmor(text.slice(text.indexOf('-----BEGIN PGP SIGNATURE-----')));
    if (d.kind !== 'signature') throw new Error('the armor is not a signature');
    data = d.data;
  } catch (e) {
    throw refuse('MALFORMED', `${what}: not a valid OpenPGP signature (${(e as Error).message})`);
  }
  let packets;
  try {
    packets = readPackets(data);
  } catch (e) {
    throw refuse('MALFORMED', `${what}: not a valid OpenPGP signature (${(e as Error).message})`);
  }
  if (packets.length !== 1 || packets[0].tag !== TAG.signature) {
    throw refuse('MALFORMED', `${what}: holds ${packets.length} packets; boxsig expects one signature packet per file`);
  }
  let info: SignatureInfo;
  try {
    info = parseSignaturePacket(packets[0].body);
  } catch (e) {
    throw refuse('MALFORMED', `${what}: the signature packet cannot be parsed (${(e as Error).message})`);
  }
  const issuer = info.hashedIssuerFingerprint ?? info.issuerFingerprints[0] ?? info.issuerKeyIds[0] ?? '';
  return { body: packets[0].body, info, issuer };
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Why a signature fails on its own, before any key is involved (null: it does not). */
function signatureProblem(sig: DetachedSignature): string | null {
  const i = sig.info;
  const critical = [...i.unknownCritical, ...i.unknownCriticalUnhashed];
  if (critical.length) {
    return `it carries critical subpacket ${critical.map(subpacketName).join(', ')}, which boxsig does not understand (RFC 4880: such a signature is invalid; GnuPG and Sequoia refuse it too)`;
  }
  if (i.type !== SIGTYPE.binary) return `signature type 0x${i.type.toString(16).padStart(2, '0')} is not a binary-document signature (0x00)`;
  if (!i.created) return 'signature has no creation time';
  if (!sig.issuer) return 'signature names no issuer key';
  return null;
}

/** The (sub)key of `h` that the signature names; null when none. */
function issuingKey(h: KeyHandle, sig: DetachedSignature): { fingerprint: string; keyId: string; body: Uint8Array; created: Date } | null {
  const keys = [
    { fingerprint: h.cert.info.fingerprint, keyId: h.cert.info.keyId, body: h.cert.primary.body, created: h.cert.info.created },
    ...h.cert.subkeys.map((k) => ({ fingerprint: k.info.fingerprint, keyId: k.info.keyId, body: k.packet.body, created: k.info.created })),
  ];
  const named = sig.info.hashedIssuerFingerprint ?? sig.info.issuerFingerprints[0];
  if (named) return keys.find((k) => k.fingerprint === named) ?? null;
  return keys.find((k) => sig.info.issuerKeyIds.includes(k.keyId)) ?? null;
}

export interface CheckOptions {
  sig: DetachedSignature;
  /** the signer's key (as opened by handle.ts) */
  key: pgp.PublicKey;
  data: Uint8Array;
  now: Date;
  /** the manifest's own `created` */
  manifestCreated?: Date | null;
  revocation: Enforcement;
  expiry: Enforcement;
}

/** Check `sig` over `data` by `key`. */
export async function checkSignature(opts: CheckOptions): Promise<SignatureCheck> {
  const { sig, key, data, now } = opts;
  const h = await handleOf(key);
  const fingerprint = h.cert.info.fingerprint;
  const result: SignatureCheck = {
    fingerprint,
    signingKey: fingerprint,
    userIds: pgp.userIdsOf(key),
    algorithm: pgp.describeAlgorithm(key),
    created: sig.info.created ? iso(sig.info.created) : '',
    valid: false,
    warnings: [],
  };
  const fail = (code: RefusalCode, reason: string): SignatureCheck => ({ ...result, valid: false, code, reason });

  const problem = signatureProblem(sig);
  if (problem) return fail('BAD_SIGNATURE', problem);
  const created = sig.info.created!;
  const signing = issuingKey(h, sig);
  if (!signing) return fail('BAD_SIGNATURE', `signature was made by key ${sig.issuer}, which is not part of key ${fingerprint}`);
  result.signingKey = signing.fingerprint;

  // 1. the cryptography: these exact bytes, this key
  const crypto = await pgp.verifyDocument(sig.body, signing.body, data);
  if (!crypto.ok) return fail('BAD_SIGNATURE', crypto.reason);
  // 2. the dates of the signature itself
  if (created.getTime() > now.getTime()) return fail('BAD_SIGNATURE', 'signature creation time is in the future');
  if (sig.info.expiresAfter && now.getTime() >= created.getTime() + sig.info.expiresAfter * 1000)
    return fail('BAD_SIGNATURE', 'the signature itself has expired');
  const manifestCreated = opts.manifestCreated ?? null;
  if (manifestCreated && created.getTime() < manifestCreated.getTime()) {
    return fail(
      'BAD_SIGNATURE',
      `signature was made at ${iso(created)}, before the manifest it signs was created (${iso(manifestCreated)}): a backdated signature is refused`,
    );
  }
  if (signing.created.getTime() > created.getTime()) return fail('BAD_SIGNATURE', 'signature is older than the key that made it');
  const at = manifestCreated && manifestCreated > created ? manifestCreated : created;
  // 3. revocation, judged by boxsig
  const revoked = revocationAt(h.revocations, signing.fingerprint, at);
  if (revoked) {
    if (opts.revocation !== 'warn') return fail('KEY_REVOKED', `key ${fingerprint} is revoked (${describeRevocation(revoked)})`);
    result.warnings.push(`key ${fingerprint} is revoked (${describeRevocation(revoked)}); accepted because the policy says revocation: warn`);
  }
  // 4. the key at that time: self-signatures, binding, capability, expiry
  const validity = await pgp.signingKeyValidAt(h.view, signing.keyId, at);
  if (validity.ok) return { ...result, valid: true };
  if (!validity.expired) return fail('BAD_SIGNATURE', `key ${signing.fingerprint} is not valid for signing: ${validity.reason}`);
  if (opts.expiry === 'warn') {
    const lastValid = pgp.lastSelfSignatureBefore(h.view, at);
    if (lastValid && (await pgp.signingKeyValidAt(h.view, signing.keyId, lastValid)).ok) {
      return {
        ...result,
        valid: true,
        warnings: [...result.warnings, `key ${signing.fingerprint} had expired when it signed; accepted because the policy says expiry: warn`],
      };
    }
  }
  return fail('KEY_EXPIRED', `key ${signing.fingerprint} had expired when the signature was made (${iso(at)})`);
}
