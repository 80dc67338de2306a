/**
 * OpenPGP packets read byte by byte (RFC 4880 / RFC 9580 framing), without
 * OpenPGP.js: the cheap first look at untrusted key and signature data. It
 * finds packet boundaries, key versions, algorithms and sizes, fingerprints,
 * signature types, subpackets and their critical bits — everything boxsig
 * checks before any cryptography runs — and it is what the keyring merges.
 *
 * Every function here is pure and bounded by the input size; a malformed
 * packet raises `PacketError` (callers turn it into MALFORMED).
 */
import { createHash } from 'node:crypto';

export class PacketError extends Error {
  override name = 'PacketError';
}

export const TAG = {
  signature: 2,
  secretKey: 5,
  publicKey: 6,
  secretSubkey: 7,
  marker: 10,
  trust: 12,
  userId: 13,
  publicSubkey: 14,
  userAttribute: 17,
  padding: 21,
} as const;

export const SIGTYPE = {
  binary: 0x00,
  text: 0x01,
  certGeneric: 0x10,
  certPersona: 0x11,
  certCasual: 0x12,
  certPositive: 0x13,
  subkeyBinding: 0x18,
  keyBinding: 0x19,
  direct: 0x1f,
  keyRevocation: 0x20,
  subkeyRevocation: 0x28,
  certRevocation: 0x30,
} as const;

export const CERTIFICATION_TYPES: ReadonlySet<number> = new Set([0x10, 0x11, 0x12, 0x13]);
export const REVOCATION_TYPES: ReadonlySet<number> = new Set([0x20, 0x28, 0x30]);

const SUBPACKET = {
  created: 2,
  sigExpires: 3,
  keyExpires: 9,
  revocationKey: 12,
  issuer: 16,
  notation: 20,
  keyFlags: 27,
  reason: 29,
  embedded: 32,
  issuerFpr: 33,
} as const;

/**
 * Signature subpackets boxsig understands — and that GnuPG 2.2 and Sequoia
 * both understand — so that a critical one does not invalidate the
 * signature (RFC 4880 5.2.3.1: an unknown critical subpacket makes the
 * signature invalid). Notably absent: 31 Signature Target and 39 Preferred
 * AEAD Ciphersuites (both tools refuse them critical), 20 Notation Data
 * (a critical notation is never one boxsig knows), and everything newer.
 */
const KNOWN_SUBPACKETS: ReadonlySet<number> = new Set([
  2, // signature creation time
  3, // signature expiration time
  4, // exportable certification
  5, // trust signature
  6, // regular expression
  7, // revocable
  9, // key expiration time
  11, // preferred symmetric algorithms
  12, // revocation key (designated revoker)
  16, // issuer key ID
  21, // preferred hash algorithms
  22, // preferred compression algorithms
  23, // key server preferences
  24, // preferred key server
  25, // primary user ID
  26, // policy URI
  27, // key flags
  28, // signer's user ID
  29, // reason for revocation
  30, // features
  32, // embedded signature
  33, // issuer fingerprint
]);

export interface Packet {
  tag: number;
  /** The packet body (without its header). */
  body: Uint8Array;
}

// ------------------------------------------------------------ framing

/** Split binary OpenPGP data into packets. Partial (streamed) and indeterminate lengths are refused: keys and signatures never need them. */
export function readPackets(data: Uint8Array): Packet[] {
  const out: Packet[] = [];
  let i = 0;
  while (i < data.length) {
    const first = data[i];
    if ((first & 0x80) === 0) throw new PacketError(`byte ${i} is not a packet header (0x${first.toString(16).padStart(2, '0')})`);
    let tag: number;
    let len: number;
    let pos = i + 1;
    if (first & 0x40) {
      tag = first & 0x3f;
      const r = newFormatLength(data, pos);
      len = r.len;
      pos = r.pos;
    } else {
      tag = (first >> 2) & 0x0f;
      const lt = first & 3;
      if (lt === 3) throw new PacketError(`packet at byte ${i} has an indeterminate length`);
      const n = [1, 2, 4][lt];
      if (pos + n > data.length) throw new PacketError('truncated packet header');
      len = readUint(data, pos, n);
      pos += n;
    }
    if (pos + len > data.length) throw new PacketError(`packet (tag ${tag}) at byte ${i} is truncated: ${len} bytes announced, ${data.length - pos} left`);
    out.push({ tag, body: data.subarray(pos, pos + len) });
    i = pos + len;
  }
  return out;
}

function newFormatLength(data: Uint8Array, pos: number): { len: number; pos: number } {
  if (pos >= data.length) throw new PacketError('truncated packet header');
  const a = data[pos];
  if (a < 192) return { len: a, pos: pos + 1 };
  if (a < 224) {
    if (pos + 1 >= data.length) throw new PacketError('truncated packet header');
    return { len: ((a - 192) << 8) + data[pos + 1] + 192, pos: pos + 2 };
  }
  if (a === 255) {
    if (pos + 5 > data.length) throw new PacketError('truncated packet header');
    return { len: readUint(data, pos + 1, 4), pos: pos + 5 };
  }
  throw new PacketError('partial body lengths are not allowed in keys and signatures');
}

function readUint(data: Uint8Array, pos: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) v = v * 256 + data[pos + k];
  return v;
}

/** One packet with a new-format header. */
export function writePacket(p: Packet): Uint8Array {
  const n = p.body.length;
  let head: number[];
  if (n < 192) head = [n];
  else if (n < 8384) head = [((n - 192) >> 8) + 192, (n - 192) & 0xff];
  else head = [255, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(1 + head.length + n);
  out[0] = 0xc0 | p.tag;
  out.set(head, 1);
  out.set(p.body, 1 + head.length);
  return out;
}

export function writePackets(list: Packet[]): Uint8Array {
  return Buffer.concat(list.map(writePacket));
}

// ------------------------------------------------------------ keys

export const PUBKEY = {
  rsa: 1,
  rsaEncrypt: 2,
  rsaSign: 3,
  elgamal: 16,
  dsa: 17,
  ecdh: 18,
  ecdsa: 19,
  eddsaLegacy: 22,
  x25519: 25,
  x448: 26,
  ed25519: 27,
  ed448: 28,
} as const;

/** Curve OIDs (hex) of the curves boxsig knows, by name. */
const CURVES: Readonly<Record<string, string>> = Object.freeze({
  '2b06010401da470f01': 'ed25519',
  '2b060104019755010501': 'curve25519',
  '2a8648ce3d030107': 'nistp256',
  '2b81040022': 'nistp384',
  '2b81040023': 'nistp521',
  '2b8104000a': 'secp256k1',
  '2b2403030208010107': 'brainpoolP256r1',
  '2b240303020801010b': 'brainpoolP384r1',
  '2b240303020801010d': 'brainpoolP512r1',
});

export interface KeyInfo {
  version: number;
  created: Date;
  algorithm: number;
  /** RSA modulus / DSA, Elgamal prime size in bits */
  bits?: number;
  /** RSA public exponent size in bits */
  exponentBits?: number;
  /** curve name (or OID in hex when unknown) for ECC keys */
  curve?: string;
  /** length of the public part of the body (a secret key packet continues with secret material) */
  publicLength: number;
  /** upper-case hex (v4 only: SHA-1 over the public part) */
  fingerprint: string;
  keyId: string;
}

/** Parse a public or secret (sub)key packet body; v4 in full, other versions as far as their version byte. */
export function parseKeyPacket(body: Uint8Array): KeyInfo {
  if (body.length < 6) throw new PacketError('key packet too short');
  const version = body[0];
  const created = new Date(readUint(body, 1, 4) * 1000);
  if (version !== 4) {
    // v5/v6 (and v2/v3) are recognised so that they can be refused by name
    return { version, created, algorithm: version >= 5 ? body[5] : -1, publicLength: body.length, fingerprint: '', keyId: '' };
  }
  const algorithm = body[5];
  const r = new Reader(body, 6);
  const info: Omit<KeyInfo, 'publicLength' | 'fingerprint' | 'keyId'> = { version, created, algorithm };
  switch (algorithm) {
    case PUBKEY.rsa:
    case PUBKEY.rsaEncrypt:
    case PUBKEY.rsaSign:
      info.bits = r.mpi();
      info.exponentBits = r.mpi();
      break;
    case PUBKEY.dsa:
      info.bits = r.mpi();
      r.mpi();
      r.mpi();
      r.mpi();
      break;
    case PUBKEY.elgamal:
      info.bits = r.mpi();
      r.mpi();
      r.mpi();
      break;
    case PUBKEY.ecdsa:
    case PUBKEY.eddsaLegacy:
      info.curve = r.oid();
      r.mpi();
      break;
    case PUBKEY.ecdh: {
      info.curve = r.oid();
      r.mpi();
      const kdfLen = r.byte();
      r.skip(kdfLen);
      break;
    }
    default:
      // an algorithm boxsig does not know: its parameters cannot be delimited
      return { ...info, publicLength: body.length, fingerprint: '', keyId: '' };
  }
  const publicLength = r.pos;
  const fingerprint = v4Fingerprint(body.subarray(0, publicLength));
  return { ...info, publicLength, fingerprint, keyId: fingerprint.slice(-16) };
}

function v4Fingerprint(publicBody: Uint8Array): string {
  const head = Buffer.from([0x99, (publicBody.length >> 8) & 0xff, publicBody.length & 0xff]);
  return createHash('sha1').update(head).update(publicBody).digest('hex').toUpperCase();
}

class Reader {
  constructor(
    private readonly b: Uint8Array,
    public pos: number,
  ) {}
  byte(): number {
    if (this.pos >= this.b.length) throw new PacketError('key packet truncated');
    return this.b[this.pos++];
  }
  skip(n: number): void {
    if (this.pos + n > this.b.length) throw new PacketError('key packet truncated');
    this.pos += n;
  }
  /** Skip an MPI; returns its size in bits. */
  mpi(): number {
    if (this.pos + 2 > this.b.length) throw new PacketError('key packet truncated (MPI)');
    const bits = (this.b[this.pos] << 8) | this.b[this.pos + 1];
    this.skip(2 + Math.ceil(bits / 8));
    return bits;
  }
  oid(): string {
    const len = this.byte();
    if (len === 0 || len === 0xff) throw new PacketError('reserved curve OID length');
    const start = this.pos;
    this.skip(len);
    const hex = Buffer.from(this.b.subarray(start, this.pos)).toString('hex');
    return CURVES[hex] ?? `oid:${hex}`;
  }
}

// ------------------------------------------------------------ signatures

export interface Subpacket {
  type: number;
  critical: boolean;
  hashed: boolean;
  body: Uint8Array;
}

export interface SignatureInfo {
  version: number;
  type: number;
  algorithm: number;
  hashAlgorithm: number;
  subpackets: Subpacket[];
  /** from the hashed creation-time subpacket */
  created: Date | null;
  /** seconds after creation (0 or absent: never) */
  expiresAfter: number | null;
  /** key-expiration subpacket (seconds after the key's creation) */
  keyExpiresAfter: number | null;
  /** issuer key IDs and fingerprints named anywhere (upper-case hex) */
  issuerKeyIds: string[];
  issuerFingerprints: string[];
  /** the issuer fingerprint if it is in the hashed area (signed) */
  hashedIssuerFingerprint: string | null;
  reasonCode: number | null;
  reasonText: string | null;
  /** designated revokers named (subpacket 12): fingerprints, with class and algorithm */
  revocationKeys: Array<{ fingerprint: string; algorithm: number; sensitive: boolean }>;
  /** critical subpackets boxsig does not know, in the hashed (signed) area (type numbers) */
  unknownCritical: number[];
  /** the same in the unhashed area: anyone can add those, so they only matter for detached signatures */
  unknownCriticalUnhashed: number[];
  /**
   * What identifies the signature when copies are merged: everything but the
   * unsigned (unhashed) area, plus the issuer it claims there — so that a
   * copy whose unsigned issuer was mangled never shadows the real one.
   */
  identity: string;
}

/** Parse a signature packet body. Only v4 signatures are accepted by boxsig; others throw. */
export function parseSignaturePacket(body: Uint8Array): SignatureInfo {
  if (body.length < 1) throw new PacketError('empty signature packet');
  const version = body[0];
  if (version !== 4)
    throw new PacketError(
      `it is a version ${version} signature; boxsig accepts v4 signatures only, the version GnuPG 2.2 and Sequoia sqv verify (docs/FORMAT.md)`,
    );
  if (body.length < 6) throw new PacketError('signature packet truncated');
  const type = body[1];
  const algorithm = body[2];
  const hashAlgorithm = body[3];
  const hashedLen = (body[4] << 8) | body[5];
  const hashedEnd = 6 + hashedLen;
  if (hashedEnd + 2 > body.length) throw new PacketError('signature packet truncated (hashed subpackets)');
  const subpackets = readSubpackets(body.subarray(6, hashedEnd), true);
  const unhashedLen = (body[hashedEnd] << 8) | body[hashedEnd + 1];
  const unhashedEnd = hashedEnd + 2 + unhashedLen;
  if (unhashedEnd + 2 > body.length) throw new PacketError('signature packet truncated (unhashed subpackets)');
  subpackets.push(...readSubpackets(body.subarray(hashedEnd + 2, unhashedEnd), false));
  if (unhashedEnd + 2 >= body.length) throw new PacketError('signature packet has no signature value');
  checkSignatureValue(algorithm, body.subarray(unhashedEnd + 2));
  const info: SignatureInfo = {
    version,
    type,
    algorithm,
    hashAlgorithm,
    subpackets,
    created: null,
    expiresAfter: null,
    keyExpiresAfter: null,
    issuerKeyIds: [],
    issuerFingerprints: [],
    hashedIssuerFingerprint: null,
    reasonCode: null,
    reasonText: null,
    revocationKeys: [],
    unknownCritical: [],
    unknownCriticalUnhashed: [],
    identity: Buffer.concat([body.subarray(0, hashedEnd), body.subarray(unhashedEnd)]).toString('base64'),
  };
  for (const s of subpackets) readSubpacketInto(info, s);
  info.identity += `/${[...new Set([...info.issuerFingerprints, ...info.issuerKeyIds])].sort().join(',')}`;
  return info;
}

function readSubpackets(area: Uint8Array, hashed: boolean): Subpacket[] {
  const out: Subpacket[] = [];
  let i = 0;
  while (i < area.length) {
    const { len, pos } = subpacketLength(area, i);
    if (len < 1 || pos + len > area.length) throw new PacketError('signature subpacket overruns its area');
    const t = area[pos];
    out.push({ type: t & 0x7f, critical: (t & 0x80) !== 0, hashed, body: area.subarray(pos + 1, pos + len) });
    i = pos + len;
  }
  return out;
}

function subpacketLength(area: Uint8Array, i: number): { len: number; pos: number } {
  const a = area[i];
  if (a < 192) return { len: a, pos: i + 1 };
  if (a < 255) {
    if (i + 1 >= area.length) throw new PacketError('signature subpacket length truncated');
    return { len: ((a - 192) << 8) + area[i + 1] + 192, pos: i + 2 };
  }
  if (i + 5 > area.length) throw new PacketError('signature subpacket length truncated');
  return { len: readUint(area, i + 1, 4), pos: i + 5 };
}

function readSubpacketInto(info: SignatureInfo, s: Subpacket): void {
  const hex = () => Buffer.from(s.body).toString('hex').toUpperCase();
  if (s.critical && !KNOWN_SUBPACKETS.has(s.type)) (s.hashed ? info.unknownCritical : info.unknownCriticalUnhashed).push(s.type);
  switch (s.type) {
    case SUBPACKET.created:
      if (s.body.length !== 4) throw new PacketError('creation-time subpacket is not 4 bytes');
      if (s.hashed && !info.created) info.created = new Date(readUint(s.body, 0, 4) * 1000);
      break;
    case SUBPACKET.sigExpires:
      if (s.body.length !== 4) throw new PacketError('expiration subpacket is not 4 bytes');
      if (s.hashed) info.expiresAfter = readUint(s.body, 0, 4) || null;
      break;
    case SUBPACKET.keyExpires:
      if (s.body.length !== 4) throw new PacketError('key-expiration subpacket is not 4 bytes');
      if (s.hashed) info.keyExpiresAfter = readUint(s.body, 0, 4) || null;
      break;
    case SUBPACKET.issuer:
      if (s.body.length !== 8) throw new PacketError('issuer subpacket is not 8 bytes');
      info.issuerKeyIds.push(hex());
      break;
    case SUBPACKET.issuerFpr: {
      if (s.body.length < 2) throw new PacketError('issuer-fingerprint subpacket too short');
      const fpr = Buffer.from(s.body.subarray(1)).toString('hex').toUpperCase();
      info.issuerFingerprints.push(fpr);
      if (s.body[0] === 4 && fpr.length === 40) info.issuerKeyIds.push(fpr.slice(-16));
      if (s.hashed && !info.hashedIssuerFingerprint) info.hashedIssuerFingerprint = fpr;
      break;
    }
    case SUBPACKET.reason:
      if (s.hashed && s.body.length >= 1 && info.reasonCode === null) {
        info.reasonCode = s.body[0];
        info.reasonText = Buffer.from(s.body.subarray(1)).toString('utf8');
      }
      break;
    case SUBPACKET.revocationKey:
      if (s.hashed && s.body.length === 22) {
        info.revocationKeys.push({
          fingerprint: Buffer.from(s.body.subarray(2)).toString('hex').toUpperCase(),
          algorithm: s.body[1],
          sensitive: (s.body[0] & 0x40) !== 0,
        });
      }
      break;
  }
}

/** The signature value must be exactly the MPIs (or fixed fields) its algorithm defines. */
function checkSignatureValue(algorithm: number, v: Uint8Array): void {
  const counts: Partial<Record<number, number>> = { 1: 1, 3: 1, 17: 2, 19: 2, 22: 2 };
  const n = counts[algorithm];
  if (algorithm === PUBKEY.ed25519) {
    if (v.length !== 64) throw new PacketError('Ed25519 signature value is not 64 bytes');
    return;
  }
  if (n === undefined) return; // unknown algorithm: refused later by name
  const r = new Reader(v, 0);
  for (let k = 0; k < n; k++) r.mpi();
  if (r.pos !== v.length) throw new PacketError('signature value has trailing bytes');
}

// ------------------------------------------------------------ names

const ALGORITHM_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'RSA',
  2: 'RSA (encrypt-only)',
  3: 'RSA (sign-only)',
  16: 'Elgamal',
  17: 'DSA',
  18: 'ECDH',
  19: 'ECDSA',
  22: 'EdDSA (legacy)',
  25: 'X25519',
  26: 'X448',
  27: 'Ed25519 (RFC 9580)',
  28: 'Ed448',
});

export function algorithmName(a: number): string {
  return ALGORITHM_NAMES[a] ?? `algorithm ${a}`;
}

const SUBPACKET_NAMES: Readonly<Record<number, string>> = Object.freeze({
  20: 'Notation Data',
  31: 'Signature Target',
  34: 'Preferred AEAD Algorithms',
  35: 'Intended Recipient Fingerprint',
  37: 'Attested Certifications',
  38: 'Key Block',
  39: 'Preferred AEAD Ciphersuites',
});

export function subpacketName(t: number): string {
  return SUBPACKET_NAMES[t] ? `${t} (${SUBPACKET_NAMES[t]})` : String(t);
}
