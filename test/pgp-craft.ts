/**
 * Hand-crafted OpenPGP v4 packets for tests: keys, self-signatures,
 * certifications, revocations and detached signatures built byte by byte
 * (RFC 4880) and signed with Node's own crypto — no OpenPGP.js, so a test can
 * make exactly the packet an attacker's tool would (critical subpackets,
 * designated revokers, dates in the future, junk, odd algorithms).
 */
import crypto, { type KeyObject } from 'node:crypto';

export const SIG = {
  binary: 0x00,
  certGeneric: 0x10,
  certPositive: 0x13,
  subkeyBinding: 0x18,
  keyBinding: 0x19,
  direct: 0x1f,
  keyRevocation: 0x20,
  subkeyRevocation: 0x28,
  certRevocation: 0x30,
} as const;

export const SUB = {
  created: 2,
  sigExpires: 3,
  keyExpires: 9,
  revocationKey: 12,
  issuer: 16,
  notation: 20,
  keyFlags: 27,
  reason: 29,
  signatureTarget: 31,
  embedded: 32,
  issuerFpr: 33,
  prefAeadCiphersuites: 39,
} as const;

export const FLAGS = { certify: 1, sign: 2, encrypt: 12 } as const;

const ED25519_LEGACY_OID = Buffer.from('2b06010401da470f01', 'hex');

export interface Subpacket {
  type: number;
  body: Buffer;
  critical?: boolean;
}

// ------------------------------------------------------------ encoding

function be(n: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUIntBE(n, 0, bytes);
  return b;
}

export function mpi(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  const bits = v.length ? (v.length - 1) * 8 + (32 - Math.clz32(v[0])) : 0;
  return Buffer.concat([be(bits, 2), v]);
}

function newLength(n: number): Buffer {
  if (n < 192) return Buffer.from([n]);
  if (n < 8384) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  return Buffer.concat([Buffer.from([0xff]), be(n, 4)]);
}

/** A packet with a new-format header. */
export function packet(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xc0 | tag]), newLength(body.length), body]);
}

export function subpacket(type: number, body: Buffer, critical = false): Subpacket {
  return { type, body, critical };
}

function encodeSubpackets(list: Subpacket[]): Buffer {
  return Buffer.concat(list.map((s) => Buffer.concat([newLength(s.body.length + 1), Buffer.from([(s.critical ? 0x80 : 0) | s.type]), s.body])));
}

const secs = (d: Date) => Math.floor(d.getTime() / 1000);
export const sp = {
  created: (d: Date) => subpacket(SUB.created, be(secs(d), 4)),
  sigExpires: (seconds: number) => subpacket(SUB.sigExpires, be(seconds, 4)),
  keyExpires: (seconds: number) => subpacket(SUB.keyExpires, be(seconds, 4)),
  keyFlags: (f: number, critical = false) => subpacket(SUB.keyFlags, Buffer.from([f]), critical),
  issuer: (k: CraftKey) => subpacket(SUB.issuer, k.keyId),
  issuerFpr: (k: CraftKey) => subpacket(SUB.issuerFpr, Buffer.concat([Buffer.from([4]), k.fingerprint])),
  reason: (code: number, text = '') => subpacket(SUB.reason, Buffer.concat([Buffer.from([code]), Buffer.from(text)])),
  revocationKey: (revoker: CraftKey, cls = 0x80) => subpacket(SUB.revocationKey, Buffer.concat([Buffer.from([cls, revoker.algorithm]), revoker.fingerprint])),
  embedded: (sigBody: Buffer) => subpacket(SUB.embedded, sigBody),
  raw: (type: number, body: Buffer, critical = true) => subpacket(type, body, critical),
};

// ------------------------------------------------------------ keys

export interface CraftKey {
  algorithm: number;
  created: Date;
  body: Buffer;
  fingerprint: Buffer;
  keyId: Buffer;
  fpr: string;
  /** sign the hash input (the whole to-be-hashed data) with SHA-256; returns the signature MPIs */
  signMpis(toHash: Buffer, digest: Buffer): Buffer;
}

function finishKey(algorithm: number, created: Date, params: Buffer, signMpis: CraftKey['signMpis'], version = 4): CraftKey {
  const body = Buffer.concat([Buffer.from([version]), be(secs(created), 4), Buffer.from([algorithm]), params]);
  const fingerprint = crypto
    .createHash('sha1')
    .update(Buffer.concat([Buffer.from([0x99]), be(body.length, 2), body]))
    .digest();
  return { algorithm, created, body, fingerprint, keyId: fingerprint.subarray(12), fpr: fingerprint.toString('hex').toUpperCase(), signMpis };
}

/** A v4 legacy EdDSA (algorithm 22) Ed25519 key, as boxsig and GnuPG make them. */
export function ed25519Key(created = new Date(Date.now() - 3600_000), algorithm = 22): CraftKey {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const sign = (_: Buffer, digest: Buffer) => {
    const s = crypto.sign(null, digest, privateKey);
    return algorithm === 27 ? s : Buffer.concat([mpi(s.subarray(0, 32)), mpi(s.subarray(32))]);
  };
  // algorithm 27 (RFC 9580 Ed25519): the raw 32-byte key, no OID
  const params =
    algorithm === 27 ? raw : Buffer.concat([Buffer.from([ED25519_LEGACY_OID.length]), ED25519_LEGACY_OID, mpi(Buffer.concat([Buffer.from([0x40]), raw]))]);
  return finishKey(algorithm, created, params, sign);
}

/** A v4 RSA key (algorithm 1) of any size, e.g. a weak 1024-bit one. */
export function rsaKey(bits: number, created = new Date(Date.now() - 3600_000)): CraftKey {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
  const jwk = publicKey.export({ format: 'jwk' });
  const params = Buffer.concat([mpi(Buffer.from(jwk.n!, 'base64url')), mpi(Buffer.from(jwk.e!, 'base64url'))]);
  return finishKey(1, created, params, (toHash) => mpi(crypto.sign('sha256', toHash, privateKey as KeyObject)));
}

/** The same key material with another version byte (e.g. 5 or 6) — for refusal tests only. */
export function withVersion(k: CraftKey, version: number): CraftKey {
  const body = Buffer.from(k.body);
  body[0] = version;
  return { ...k, body };
}

// ------------------------------------------------------------ signatures

export const keyHashInput = (k: CraftKey) => Buffer.concat([Buffer.from([0x99]), be(k.body.length, 2), k.body]);
export const uidHashInput = (uid: string) => Buffer.concat([Buffer.from([0xb4]), be(Buffer.byteLength(uid), 4), Buffer.from(uid)]);

export interface SigOptions {
  type: number;
  /** hashed subpackets; creation time and issuer fingerprint are added unless given */
  hashed?: Subpacket[];
  unhashed?: Subpacket[];
  created?: Date;
  /** leave out the default subpackets entirely */
  bare?: boolean;
}

/** A v4 signature packet body by `signer` over `input` (the key/uid/data prefix the type requires). */
export function signatureBody(signer: CraftKey, input: Buffer, o: SigOptions): Buffer {
  const hashedList = o.bare ? (o.hashed ?? []) : [sp.created(o.created ?? new Date(Date.now() - 60_000)), sp.issuerFpr(signer), ...(o.hashed ?? [])];
  const hashedArea = encodeSubpackets(hashedList);
  const head = Buffer.concat([Buffer.from([4, o.type, signer.algorithm, 8]), be(hashedArea.length, 2), hashedArea]);
  const trailer = Buffer.concat([Buffer.from([4, 0xff]), be(head.length, 4)]);
  const toHash = Buffer.concat([input, head, trailer]);
  const digest = crypto.createHash('sha256').update(toHash).digest();
  const unhashedArea = encodeSubpackets(o.unhashed ?? [sp.issuer(signer)]);
  return Buffer.concat([head, be(unhashedArea.length, 2), unhashedArea, digest.subarray(0, 2), signer.signMpis(toHash, digest)]);
}

export const sigPacket = (body: Buffer) => packet(2, body);

/** A detached binary-document signature (type 0x00) over `data`. */
export function detached(signer: CraftKey, data: Buffer, o: Partial<SigOptions> = {}): Buffer {
  return sigPacket(signatureBody(signer, data, { type: SIG.binary, ...o }));
}

/** A self-signature binding `uid` (dated at the key's creation unless given). */
export const selfCert = (k: CraftKey, uid: string, o: Partial<SigOptions> = {}) =>
  sigPacket(
    signatureBody(k, Buffer.concat([keyHashInput(k), uidHashInput(uid)]), {
      type: SIG.certPositive,
      hashed: [sp.keyFlags(FLAGS.certify | FLAGS.sign)],
      created: k.created,
      ...o,
    }),
  );

export const certification = (certifier: CraftKey, k: CraftKey, uid: string, o: Partial<SigOptions> = {}) =>
  sigPacket(signatureBody(certifier, Buffer.concat([keyHashInput(k), uidHashInput(uid)]), { type: SIG.certGeneric, ...o }));

export const certRevocation = (certifier: CraftKey, k: CraftKey, uid: string, o: Partial<SigOptions> = {}) =>
  sigPacket(signatureBody(certifier, Buffer.concat([keyHashInput(k), uidHashInput(uid)]), { type: SIG.certRevocation, ...o }));

export const keyRevocation = (revoker: CraftKey, k: CraftKey, reason: number, o: Partial<SigOptions> = {}) =>
  sigPacket(signatureBody(revoker, keyHashInput(k), { type: SIG.keyRevocation, ...o, hashed: [sp.reason(reason, 'test'), ...(o.hashed ?? [])] }));

export const directSig = (k: CraftKey, hashed: Subpacket[], o: Partial<SigOptions> = {}) =>
  sigPacket(signatureBody(k, keyHashInput(k), { type: SIG.direct, hashed, created: k.created, ...o }));

/** A subkey binding with a back-signature (a signing subkey). */
export function subkeyBinding(primary: CraftKey, sub: CraftKey, flags: number, opts: Partial<SigOptions> = {}): Buffer {
  const o = { created: sub.created > primary.created ? sub.created : primary.created, ...opts };
  const input = Buffer.concat([keyHashInput(primary), keyHashInput(sub)]);
  const hashed = [sp.keyFlags(flags), ...(o.hashed ?? [])];
  if (flags & FLAGS.sign) {
    const back = signatureBody(sub, input, { type: SIG.keyBinding, created: o.created });
    return sigPacket(signatureBody(primary, input, { ...o, type: SIG.subkeyBinding, hashed, unhashed: [sp.issuer(primary), sp.embedded(back)] }));
  }
  return sigPacket(signatureBody(primary, input, { ...o, type: SIG.subkeyBinding, hashed }));
}

export const subkeyRevocation = (primary: CraftKey, sub: CraftKey, reason: number, o: Partial<SigOptions> = {}) =>
  sigPacket(
    signatureBody(primary, Buffer.concat([keyHashInput(primary), keyHashInput(sub)]), {
      type: SIG.subkeyRevocation,
      ...o,
      hashed: [sp.reason(reason, 'test'), ...(o.hashed ?? [])],
    }),
  );

export const keyPacket = (k: CraftKey) => packet(6, k.body);
export const subkeyPacket = (k: CraftKey) => packet(14, k.body);
export const uidPacket = (uid: string) => packet(13, Buffer.from(uid));

/** A transferable public key: primary, one self-signed user ID, extra packets appended as given. */
export function publicKey(k: CraftKey, uid = 'Crafted <crafted@example.org>', extra: Buffer[] = [], o: Partial<SigOptions> = {}): Buffer {
  return Buffer.concat([keyPacket(k), uidPacket(uid), selfCert(k, uid, o), ...extra]);
}

// ------------------------------------------------------------ armor

function crc24(data: Buffer): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

export function armor(kind: 'PUBLIC KEY BLOCK' | 'SIGNATURE', data: Buffer): string {
  const b64 = data.toString('base64').replace(/.{64}/g, '$&\n');
  const crc = Buffer.from([(crc24(data) >> 16) & 0xff, (crc24(data) >> 8) & 0xff, crc24(data) & 0xff]).toString('base64');
  return `-----BEGIN PGP ${kind}-----\n\n${b64}${b64.endsWith('\n') ? '' : '\n'}=${crc}\n-----END PGP ${kind}-----\n`;
}

export const armorKey = (data: Buffer) => armor('PUBLIC KEY BLOCK', data);
export const armorSig = (data: Buffer) => armor('SIGNATURE', data);
