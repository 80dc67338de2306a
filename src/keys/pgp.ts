/**
 * The one adapter between boxsig and OpenPGP.js. Everything that depends on
 * how OpenPGP.js behaves — its configuration, private members reached with
 * casts, packet-level calls, the text of its error messages — is here, so an
 * upgrade of OpenPGP.js touches this file and its unit test
 * (test/unit/pgp.test.ts), nothing else.
 *
 * What boxsig uses OpenPGP.js for: the cryptography (verifying and making
 * signatures), the validity of a key at a date without its revocations
 * (self-signatures, binding signatures, back-signatures, key flags, expiry,
 * algorithm strength), and generating, locking and unlocking keys. What it
 * does not use it for: reading untrusted packets first (src/keys/packets.ts),
 * merging keys (src/keys/cert.ts), judging revocations
 * (src/keys/revocation.ts).
 */
import * as openpgp from 'openpgp';

export type PublicKey = openpgp.PublicKey;
export type PrivateKey = openpgp.PrivateKey;
export type AnyKey = openpgp.PublicKey | openpgp.PrivateKey;
export type SignaturePacket = openpgp.SignaturePacket;

/** OpenPGP.js configuration used for every operation: v4 keys, strict grammar, no silent dropping of malformed packets. */
const PGP_CONFIG: Partial<openpgp.Config> = {
  v6Keys: false,
  ignoreUnsupportedPackets: true,
  ignoreMalformedPackets: false,
  enforceGrammar: true,
};

const fullConfig = (): openpgp.Config => ({ ...openpgp.config, ...PGP_CONFIG }) as openpgp.Config;

// ------------------------------------------------------------ armor

export type ArmorKind = 'key' | 'signature' | 'other';

/** Decode one ASCII-armored block (checksum checked). */
export async function dearmor(block: string): Promise<{ kind: ArmorKind; data: Uint8Array }> {
  const { type, data } = await openpgp.unarmor(block, fullConfig());
  const kind: ArmorKind =
    type === openpgp.enums.armor.publicKey || type === openpgp.enums.armor.privateKey ? 'key' : type === openpgp.enums.armor.signature ? 'signature' : 'other';
  return { kind, data: data as Uint8Array };
}

export function armorPublicKey(data: Uint8Array, comment?: string): string {
  return openpgp.armor(openpgp.enums.armor.publicKey, data, undefined, undefined, comment, true, fullConfig());
}

// ------------------------------------------------------------ reading

/**
 * An OpenPGP.js key for packets boxsig has already checked and filtered.
 * OpenPGP.js refuses every self-signature that names a designated revoker
 * ("not supported"); boxsig supports them (src/keys/revocation.ts), so the
 * flag is cleared on the parsed objects — the signed bytes are unchanged.
 */
export async function keyFromPackets(bytes: Uint8Array): Promise<PublicKey> {
  // a packet OpenPGP.js cannot parse is left out (boxsig's reader has already refused what it must)
  const key = await openpgp.readKey({ binaryKey: bytes, config: { ...fullConfig(), ignoreMalformedPackets: true } });
  const pub = (key.isPrivate() ? key.toPublic() : key) as PublicKey;
  for (const s of allKeySignatures(pub)) (s as unknown as { revocationKeyClass: number | null }).revocationKeyClass = null;
  return pub;
}

/** Secret keys as OpenPGP.js reads them (for signing and certifying). */
export async function readSecretKeys(bytes: Uint8Array): Promise<PrivateKey[]> {
  const keys = await openpgp.readKeys({ binaryKeys: bytes, config: fullConfig() });
  return keys.filter((k) => k.isPrivate()) as PrivateKey[];
}

function allKeySignatures(k: AnyKey): SignaturePacket[] {
  return [
    ...k.revocationSignatures,
    ...(k as unknown as { directSignatures: SignaturePacket[] }).directSignatures,
    ...k.users.flatMap((u) => [...u.selfCertifications, ...u.otherCertifications, ...u.revocationSignatures]),
    ...k.subkeys.flatMap((s) => [...s.bindingSignatures, ...s.revocationSignatures]),
  ];
}

export function fingerprintOf(key: AnyKey): string {
  return key.getFingerprint().toUpperCase();
}

export function userIdsOf(key: AnyKey): string[] {
  return key.users.filter((u) => u.userID).map((u) => u.userID!.userID);
}

/** The binary packets of a key (public part). */
export function publicBytes(key: AnyKey): Uint8Array {
  return key.toPublic().write();
}

export function describeAlgorithm(key: AnyKey): string {
  const info = key.getAlgorithmInfo() as { algorithm: string; bits?: number; curve?: string };
  if (info.curve) return info.curve === 'ed25519Legacy' || info.curve === 'ed25519' ? 'ed25519' : `${info.algorithm}/${info.curve}`;
  if (info.bits) return `${info.algorithm.replace(/Encrypt|Sign/g, '')}${info.bits}`;
  return info.algorithm;
}

// ------------------------------------------------------------ verifying

export interface VerifyTarget {
  /** body of the key packet the signature is over (primary) */
  key?: Uint8Array;
  /** body of the subkey packet (bindings, subkey revocations) */
  bind?: Uint8Array;
  /** the user ID text (certifications, certification revocations) */
  userId?: Uint8Array;
  /** the signed document (type 0x00) */
  data?: Uint8Array;
}

interface Readable {
  read(bytes: Uint8Array, config?: openpgp.Config): void | Promise<void>;
}

/** A key packet object (its `read` is asynchronous: it computes the fingerprint). */
async function keyPacketOf(body: Uint8Array, sub = false): Promise<openpgp.PublicKeyPacket> {
  const p = sub ? new openpgp.PublicSubkeyPacket() : new openpgp.PublicKeyPacket();
  await (p as unknown as Readable).read(body, fullConfig());
  return p as openpgp.PublicKeyPacket;
}

function signaturePacketOf(body: Uint8Array): SignaturePacket {
  const s = new openpgp.SignaturePacket();
  (s as unknown as Readable).read(body, fullConfig());
  return s;
}

function literalOf(data: Uint8Array): openpgp.LiteralDataPacket {
  const literal = new openpgp.LiteralDataPacket();
  (literal as unknown as { setBytes(b: Uint8Array, f: openpgp.enums.literal): void }).setBytes(data, openpgp.enums.literal.binary);
  return literal;
}

/**
 * Whether the signature packet `sigBody` is a valid signature of type
 * `type` by the key `issuerBody` over `target` — the cryptography only:
 * dates, expiry, critical subpackets and the stated issuer are left to the
 * caller (a revocation applies whatever its dates, and the unsigned issuer
 * field cannot decide anything).
 */
export async function verifiesCryptographically(sigBody: Uint8Array, issuerBody: Uint8Array, type: number, target: VerifyTarget): Promise<boolean> {
  let sig: SignaturePacket;
  let issuer: openpgp.PublicKeyPacket;
  try {
    sig = signaturePacketOf(sigBody);
    issuer = await keyPacketOf(issuerBody);
  } catch {
    return false;
  }
  if (sig.signatureType !== type) return false;
  const s = sig as unknown as { issuerKeyID: openpgp.KeyID; unknownSubpackets: unknown[]; rawNotations: unknown[]; revocationKeyClass: number | null };
  s.issuerKeyID = issuer.getKeyID();
  s.unknownSubpackets = [];
  s.rawNotations = [];
  s.revocationKeyClass = null;
  let data: unknown;
  if (target.data) {
    data = literalOf(target.data);
  } else {
    data = {
      key: target.key ? await keyPacketOf(target.key) : undefined,
      bind: target.bind ? await keyPacketOf(target.bind, true) : undefined,
      userID: target.userId ? openpgp.UserIDPacket.fromObject({ name: Buffer.from(target.userId).toString('utf8') }) : undefined,
    };
    if (target.userId) (data as { userID: { userID: string; write(): Uint8Array } }).userID.write = () => target.userId!;
  }
  try {
    await sig.verify(issuer, type, data as openpgp.LiteralDataPacket, null as unknown as Date, Boolean(target.data), fullConfig());
    return true;
  } catch {
    return false;
  }
}

/** Cryptographic check of a detached document signature (type 0x00) by a (sub)key of `key`. */
export async function verifyDocument(sigBody: Uint8Array, signingKeyBody: Uint8Array, data: Uint8Array): Promise<{ ok: true } | { ok: false; reason: string }> {
  const ok = await verifiesCryptographically(sigBody, signingKeyBody, 0x00, { data });
  if (ok) return { ok: true };
  let sig: SignaturePacket;
  try {
    sig = signaturePacketOf(sigBody);
  } catch (e) {
    return { ok: false, reason: `OpenPGP.js cannot read the signature (${(e as Error).message})` };
  }
  const hash = sig.hashAlgorithm as openpgp.enums.hash;
  if (fullConfig().rejectMessageHashAlgorithms.has(hash)) {
    return { ok: false, reason: `it uses the weak hash algorithm ${hashName(hash)}` };
  }
  return { ok: false, reason: 'the signature does not match manifest.json' };
}

function hashName(h: number): string {
  const names = openpgp.enums.hash as unknown as Record<string, number>;
  return (
    Object.keys(names)
      .find((k) => names[k] === h)
      ?.toUpperCase() ?? `hash ${h}`
  );
}

export type Validity = { ok: true } | { ok: false; expired: boolean; reason: string };

function classify(e: unknown): Validity {
  const msg = (e as Error).message ?? String(e);
  const expired = /expired/i.test(msg);
  return { ok: false, expired, reason: msg.replace(/^Could not find valid signing key packet in key [0-9a-f]+: /, '') };
}

/**
 * Whether the (sub)key `keyId` of `key` could make signatures at `date`:
 * a valid self-signature, binding and back-signature, the signing flag, not
 * expired, an acceptable algorithm. Revocations are judged by boxsig, not
 * here: `key` is expected to carry none.
 */
export async function signingKeyValidAt(key: PublicKey, keyId: string, date: Date): Promise<Validity> {
  try {
    const id = key
      .getKeys()
      .find((k) => k.getKeyID().toHex().toUpperCase() === keyId)
      ?.getKeyID();
    if (!id) return { ok: false, expired: false, reason: `no (sub)key ${keyId}` };
    await key.getSigningKey(id, date, undefined, fullConfig());
    return { ok: true };
  } catch (e) {
    return classify(e);
  }
}

/** Whether the primary key was valid (self-signed, not expired) at `date`. */
export async function primaryValidAt(key: PublicKey, date: Date): Promise<Validity> {
  try {
    await key.verifyPrimaryKey(date, undefined, fullConfig());
    return { ok: true };
  } catch (e) {
    return classify(e);
  }
}

/** Whether user ID `uid` is bound to `key` by a valid self-signature at `date` (and not revoked by the owner). */
export async function userIdValidAt(key: PublicKey, uid: Uint8Array, date: Date): Promise<Validity> {
  const text = Buffer.from(uid).toString('utf8');
  const user = key.users.find((u) => u.userID?.userID === text);
  if (!user) return { ok: false, expired: false, reason: 'no such user ID' };
  try {
    await user.verify(date, fullConfig());
    return { ok: true };
  } catch (e) {
    return classify(e);
  }
}

/** Latest self-signature or binding-signature time not after `date` (a moment the key was certified). */
export function lastSelfSignatureBefore(key: PublicKey, date: Date): Date | null {
  let best: Date | null = null;
  const consider = (s: SignaturePacket) => {
    if (s.created && s.created <= date && (!best || s.created > best)) best = s.created;
  };
  for (const u of key.users) u.selfCertifications.forEach(consider);
  (key as unknown as { directSignatures: SignaturePacket[] }).directSignatures.forEach(consider);
  for (const sk of key.subkeys) sk.bindingSignatures.forEach(consider);
  return best;
}

/** Expiry of the primary key (null: never, or not determinable). */
export async function expirationOf(key: PublicKey): Promise<Date | null> {
  const e = await key.getExpirationTime(undefined, fullConfig()).catch(() => null);
  return e instanceof Date ? e : null;
}

// ------------------------------------------------------------ making keys and signatures

export interface NewKey {
  privateKey: string;
  publicKey: string;
  revocationCertificate: string;
  fingerprint: string;
}

export async function newKey(opts: { userIds: string[]; type: 'ed25519' | 'rsa4096'; passphrase?: string; expiresIn: number; date?: Date }): Promise<NewKey> {
  const base = {
    // the whole string as the "name": OpenPGP.js writes it byte for byte (its e-mail check would refuse valid local addresses)
    userIDs: opts.userIds.map((u) => ({ name: u })),
    keyExpirationTime: opts.expiresIn,
    format: 'armored' as const,
    config: PGP_CONFIG,
    ...(opts.date ? { date: opts.date } : {}),
    ...(opts.passphrase ? { passphrase: opts.passphrase } : {}),
  };
  const r =
    opts.type === 'rsa4096'
      ? await openpgp.generateKey({ ...base, type: 'rsa', rsaBits: 4096 })
      : await openpgp.generateKey({ ...base, type: 'ecc', curve: 'curve25519Legacy' });
  const pub = await openpgp.readKey({ armoredKey: r.publicKey });
  return { privateKey: r.privateKey, publicKey: r.publicKey, revocationCertificate: r.revocationCertificate, fingerprint: fingerprintOf(pub) };
}

/** Unlock a secret key; throws an Error whose message says why (wrong passphrase). */
export async function unlock(key: PrivateKey, passphrase: string): Promise<PrivateKey> {
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase, config: PGP_CONFIG });
  } catch (e) {
    throw new Error((e as Error).message.replace(/^Error decrypting private key: /, ''));
  }
}

export async function lock(key: PrivateKey, passphrase: string): Promise<PrivateKey> {
  return openpgp.encryptKey({ privateKey: key, passphrase, config: PGP_CONFIG });
}

export function armorSecret(key: PrivateKey): string {
  return key.armor(fullConfig());
}

export async function signDocument(data: Uint8Array, key: PrivateKey, date: Date): Promise<string> {
  const message = await openpgp.createMessage({ binary: data });
  return (await openpgp.sign({ message, signingKeys: key, detached: true, format: 'armored', date, config: PGP_CONFIG })) as string;
}

interface SignableSignature {
  sign(key: unknown, data: unknown, date?: Date, detached?: boolean, config?: openpgp.Config): Promise<void>;
}

/** Whether the primary key's self-signature allows certifying (key flag 0x01), or says nothing (RFC 4880: the primary may always certify). */
async function primaryMayCertify(key: PrivateKey, date: Date): Promise<void> {
  const { selfCertification } = await key.getPrimaryUser(date, undefined, fullConfig());
  const flags = selfCertification.keyFlags?.[0];
  if (flags !== undefined && (flags & openpgp.enums.keyFlags.certifyKeys) === 0) {
    throw new Error('its primary key is not allowed to certify (no certify flag)');
  }
}

/**
 * A certification (type 0x10, like `gpg --quick-sign-key`) of user ID `uid`
 * on the key `target` (its primary key packet body), made with the primary
 * key of `certifier` — which needs the certify flag, not the signing one, so
 * that a certify-only (GnuPG `[C]`) organisation key works.
 */
export async function makeCertification(certifier: PrivateKey, targetKeyBody: Uint8Array, uid: Uint8Array, date: Date): Promise<Uint8Array> {
  await certifier.verifyPrimaryKey(date, undefined, fullConfig());
  await primaryMayCertify(certifier, date);
  return signPacket(certifier, openpgp.enums.signature.certGeneric, { key: await keyPacketOf(targetKeyBody), userID: userIdPacket(uid) }, date);
}

/** A key revocation (type 0x20) of `targetKeyBody` by the primary key of `revoker` (the key itself or a designated revoker). */
export async function makeKeyRevocation(revoker: PrivateKey, targetKeyBody: Uint8Array, reason: number, text: string, date: Date): Promise<Uint8Array> {
  return signPacket(revoker, openpgp.enums.signature.keyRevocation, { key: await keyPacketOf(targetKeyBody) }, date, (s) => {
    s.reasonForRevocationFlag = reason;
    s.reasonForRevocationString = text;
  });
}

/** A direct-key self-signature (type 0x1F) naming `revoker` (algorithm, fingerprint) as designated revoker. */
export async function makeRevokerDesignation(key: PrivateKey, revokerAlgorithm: number, revokerFingerprint: string, date: Date): Promise<Uint8Array> {
  return signPacket(key, openpgp.enums.signature.key, { key: key.keyPacket }, date, (s) => {
    s.revocationKeyClass = 0x80;
    s.revocationKeyAlgorithm = revokerAlgorithm;
    s.revocationKeyFingerprint = Buffer.from(revokerFingerprint, 'hex');
  });
}

/** A positive self-certification (type 0x13) of a new user ID, modelled on the primary user's (expiry, flags, preferences). */
export async function makeSelfCertification(key: PrivateKey, uid: Uint8Array, date: Date): Promise<Uint8Array> {
  const { selfCertification: model } = await key.getPrimaryUser(undefined, undefined, fullConfig());
  return signPacket(key, openpgp.enums.signature.certPositive, { key: key.keyPacket, userID: userIdPacket(uid) }, date, (s) => {
    s.hashAlgorithm = model.hashAlgorithm;
    s.keyFlags = model.keyFlags;
    s.keyExpirationTime = model.keyExpirationTime;
    s.keyNeverExpires = model.keyNeverExpires;
    s.preferredSymmetricAlgorithms = model.preferredSymmetricAlgorithms;
    s.preferredHashAlgorithms = model.preferredHashAlgorithms;
    s.preferredCompressionAlgorithms = model.preferredCompressionAlgorithms;
    s.features = model.features;
  });
}

function userIdPacket(uid: Uint8Array): openpgp.UserIDPacket {
  const p = openpgp.UserIDPacket.fromObject({ name: Buffer.from(uid).toString('utf8') });
  p.write = () => uid;
  return p;
}

async function signPacket(signer: PrivateKey, type: number, data: unknown, date: Date, fill?: (s: openpgp.SignaturePacket) => void): Promise<Uint8Array> {
  if (!signer.isDecrypted()) throw new Error('the secret key is locked');
  const sig = new openpgp.SignaturePacket();
  sig.signatureType = type;
  sig.publicKeyAlgorithm = signer.keyPacket.algorithm;
  sig.hashAlgorithm = openpgp.enums.hash.sha512;
  fill?.(sig);
  await (sig as unknown as SignableSignature).sign(signer.keyPacket, data, date, false, fullConfig());
  return sig.write();
}

/** Append packets to a secret key (e.g. a new user ID and its self-signature). */
export async function secretKeyWith(key: PrivateKey, packets: Uint8Array): Promise<PrivateKey> {
  const own = key.write();
  return openpgp.readPrivateKey({ binaryKey: Buffer.concat([own, packets]), config: fullConfig() });
}

export const REASON = {
  noReason: openpgp.enums.reasonForRevocation.noReason,
  superseded: openpgp.enums.reasonForRevocation.keySuperseded,
  compromised: openpgp.enums.reasonForRevocation.keyCompromised,
  retired: openpgp.enums.reasonForRevocation.keyRetired,
  userIdInvalid: openpgp.enums.reasonForRevocation.userIDInvalid,
} as const;

/** A secret key with one more direct-key self-signature (packet body), in its place after the primary key. */
export async function withDirectSignature(key: PrivateKey, sigBody: Uint8Array): Promise<PrivateKey> {
  const k = await openpgp.readPrivateKey({ binaryKey: key.write(), config: fullConfig() });
  (k as unknown as { directSignatures: SignaturePacket[] }).directSignatures.push(signaturePacketOf(sigBody));
  return openpgp.readPrivateKey({ binaryKey: k.write(), config: fullConfig() });
}

export async function readArmoredSecretKey(armored: string): Promise<PrivateKey> {
  return openpgp.readPrivateKey({ armoredKey: armored, config: fullConfig() });
}
