/**
 * What a key must look like before boxsig spends any cryptography on it:
 * the cheap checks, on the packet list alone, that bound the cost of a
 * hostile key (docs/SECURITY.md, "Resource limits") and keep to the keys
 * docs/FORMAT.md allows — v4 keys of algorithms GnuPG 2.2 and Sequoia `sqv`
 * both verify.
 */
import { refuse } from '../errors.js';
import type { Cert } from './cert.js';
import { allSignatures } from './cert.js';
import { PUBKEY, algorithmName, type KeyInfo } from './packets.js';

export const KEY_LIMITS = Object.freeze({
  /** user IDs and user attributes of one key */
  userIds: 32,
  /** subkeys of one key */
  subkeys: 16,
  /** signature packets of one key, wherever they are */
  signatures: 256,
  rsaMinBits: 2048,
  rsaMaxBits: 8192,
  /** RSA public exponent (65537 has 17 bits) */
  rsaMaxExponentBits: 64,
});

/** Curves allowed per algorithm: those GnuPG 2.2 and Sequoia (with any crypto backend) both support. */
const CURVES_FOR: ReadonlyMap<number, ReadonlySet<string>> = new Map([
  [PUBKEY.eddsaLegacy, new Set(['ed25519'])],
  [PUBKEY.ecdsa, new Set(['nistp256', 'nistp384', 'nistp521'])],
  [PUBKEY.ecdh, new Set(['curve25519', 'nistp256', 'nistp384', 'nistp521'])],
]);

const PRIMARY_ALGORITHMS: ReadonlySet<number> = new Set([PUBKEY.rsa, PUBKEY.rsaSign, PUBKEY.ecdsa, PUBKEY.eddsaLegacy]);
const SUBKEY_ALGORITHMS: ReadonlySet<number> = new Set([...PRIMARY_ALGORITHMS, PUBKEY.rsaEncrypt, PUBKEY.ecdh]);

const WHY_V4 = 'boxsig accepts v4 keys only, the version GnuPG 2.2 and Sequoia sqv verify (docs/FORMAT.md)';

/** Why a (sub)key packet is not one boxsig accepts (null: it is). */
export function keyPacketProblem(k: KeyInfo, role: 'primary key' | 'subkey'): string | null {
  if (k.version !== 4) {
    return k.version >= 5 ? `its ${role} is a v${k.version} key (RFC 9580 / LibrePGP); ${WHY_V4}` : `its ${role} is an obsolete v${k.version} key; ${WHY_V4}`;
  }
  const allowed = role === 'primary key' ? PRIMARY_ALGORITHMS : SUBKEY_ALGORITHMS;
  if (!allowed.has(k.algorithm)) {
    if (k.algorithm === PUBKEY.ed25519 || k.algorithm === PUBKEY.x25519 || k.algorithm === PUBKEY.ed448 || k.algorithm === PUBKEY.x448) {
      return `its ${role} uses algorithm ${k.algorithm}, ${algorithmName(k.algorithm)}, which GnuPG 2.2 and sqv 1.1 cannot verify; use the Ed25519 keys GnuPG and boxsig make (legacy EdDSA, algorithm 22)`;
    }
    return `its ${role} uses ${algorithmName(k.algorithm)}, which boxsig does not accept (RSA, ECDSA on NIST curves and Ed25519 are accepted)`;
  }
  const curves = CURVES_FOR.get(k.algorithm);
  if (curves && !curves.has(k.curve ?? '')) return `its ${role} uses ${algorithmName(k.algorithm)} on the curve ${k.curve}, which boxsig does not accept`;
  if (k.bits !== undefined && (k.algorithm === PUBKEY.rsa || k.algorithm === PUBKEY.rsaSign || k.algorithm === PUBKEY.rsaEncrypt)) {
    if (k.bits < KEY_LIMITS.rsaMinBits) return `its ${role} is a weak ${k.bits}-bit RSA key (at least ${KEY_LIMITS.rsaMinBits} bits are required)`;
    if (k.bits > KEY_LIMITS.rsaMaxBits) return `its ${role} is a ${k.bits}-bit RSA key, more than the ${KEY_LIMITS.rsaMaxBits}-bit limit`;
    if ((k.exponentBits ?? 0) > KEY_LIMITS.rsaMaxExponentBits)
      return `its ${role} has an RSA exponent of ${k.exponentBits} bits (at most ${KEY_LIMITS.rsaMaxExponentBits})`;
  }
  return null;
}

/** Why the key is not one boxsig accepts, by counts and by its key packets (null: it is). */
export function certProblem(c: Cert): string | null {
  if (c.users.length > KEY_LIMITS.userIds) return `it has ${c.users.length} user IDs, more than the limit of ${KEY_LIMITS.userIds}`;
  if (c.subkeys.length > KEY_LIMITS.subkeys) return `it has ${c.subkeys.length} subkeys, more than the limit of ${KEY_LIMITS.subkeys}`;
  const sigs = allSignatures(c).length;
  if (sigs > KEY_LIMITS.signatures) return `it has ${sigs} signatures, more than the limit of ${KEY_LIMITS.signatures}`;
  const p = keyPacketProblem(c.info, 'primary key');
  if (p) return p;
  for (const k of c.subkeys) {
    const s = keyPacketProblem(k.info, 'subkey');
    if (s) return `${s} (subkey ${k.info.fingerprint || '?'})`;
  }
  return null;
}

/** Refuse (MALFORMED) a key that is not one boxsig accepts. */
export function checkCert(c: Cert, what: string): void {
  const problem = certProblem(c);
  if (problem) {
    const hint = /signatures, more than/.test(problem)
      ? 'export it without third-party signatures (gpg --export-options export-minimal --export FPR)'
      : undefined;
    throw refuse('MALFORMED', `${what}: key ${c.info.fingerprint || '(unknown)'} is not accepted: ${problem}`, { fingerprint: c.info.fingerprint }, hint);
  }
}
