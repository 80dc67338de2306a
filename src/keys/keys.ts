/**
 * OpenPGP key material: reading (armored or binary, several blocks, GnuPG
 * exports and revocation certificates), generating, fingerprints.
 */
import * as openpgp from 'openpgp';
import { BoxsigError, refuse, usage } from '../errors.js';

export type Key = openpgp.PublicKey | openpgp.PrivateKey;

/** OpenPGP.js configuration used for every operation. */
export const PGP_CONFIG: Partial<openpgp.Config> = {
  v6Keys: false,
  ignoreUnsupportedPackets: true,
  ignoreMalformedPackets: false,
  enforceGrammar: true,
};

export function fingerprintOf(key: Key): string {
  return key.getFingerprint().toUpperCase();
}

export function keyIdOf(key: Key): string {
  return key.getKeyID().toHex().toUpperCase();
}

export function userIdsOf(key: Key): string[] {
  return key.users.filter((u) => u.userID).map((u) => u.userID!.userID);
}

export const FPR_RE = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;

/** Normalise a fingerprint typed by a person (spaces, lower case, 0x). */
export function normalizeFingerprint(s: string): string | null {
  const f = s.replace(/^0x/i, '').replace(/[\s:]/g, '').toUpperCase();
  return FPR_RE.test(f) ? f : null;
}

export function parseFingerprintArg(s: string, what = 'fingerprint'): string {
  const f = normalizeFingerprint(s);
  if (!f) throw usage(`${what} ${JSON.stringify(s)} is not a full 40-hex-digit OpenPGP fingerprint`);
  return f;
}

export interface KeyMaterial {
  keys: Key[];
  /** Armored revocation certificates (signature packets without a key). */
  revocations: string[];
}

const ARMOR_RE = /^:?-----BEGIN PGP ([A-Z ]+?)-----\r?$[\s\S]*?^-----END PGP \1-----\r?$/gm;

/**
 * Read every key and revocation certificate in a file: armored blocks
 * (including GnuPG's `openpgp-revocs.d` files, whose armor line starts with
 * a colon) or binary packets.
 */
export async function readKeyMaterial(data: Uint8Array, what: string): Promise<KeyMaterial> {
  const result: KeyMaterial = { keys: [], revocations: [] };
  const text = Buffer.from(data).toString('latin1');
  const blocks = [...text.matchAll(ARMOR_RE)].map((m) => m[0].replace(/^:/, ''));
  try {
    if (blocks.length > 0) {
      for (const block of blocks) {
        const { type, data: bin } = await openpgp.unarmor(block);
        if (type !== openpgp.enums.armor.publicKey && type !== openpgp.enums.armor.privateKey) {
          throw refuse('MALFORMED', `${what}: armored block is not a key`);
        }
        await readBinaryMaterial(bin as Uint8Array, result, what);
      }
    } else {
      await readBinaryMaterial(data, result, what);
    }
  } catch (e) {
    if (e instanceof BoxsigError) throw e;
    throw refuse('MALFORMED', `${what}: not valid OpenPGP key data (${(e as Error).message})`);
  }
  if (result.keys.length === 0 && result.revocations.length === 0) {
    throw refuse('MALFORMED', `${what}: contains no OpenPGP key`);
  }
  return result;
}

async function readBinaryMaterial(bin: Uint8Array, out: KeyMaterial, what: string): Promise<void> {
  let keys: Key[];
  try {
    keys = await openpgp.readKeys({ binaryKeys: bin, config: PGP_CONFIG });
  } catch (e) {
    if (!/No key packet found/.test((e as Error).message)) throw e;
    // A bare revocation certificate: signature packets only.
    const sig = await openpgp.readSignature({ binarySignature: bin, config: PGP_CONFIG });
    for (const p of sig.packets) {
      if (p.signatureType !== openpgp.enums.signature.keyRevocation) {
        throw refuse('MALFORMED', `${what}: a bare signature that is not a key revocation`);
      }
      const pl = new openpgp.PacketList<openpgp.SignaturePacket>();
      pl.push(p);
      out.revocations.push(openpgp.armor(openpgp.enums.armor.publicKey, pl.write()));
    }
    return;
  }
  out.keys.push(...keys);
}

/** Read exactly one public key (as carried in `.boxsig/keys/<FPR>.asc`). */
export async function readSinglePublicKey(data: Uint8Array, what: string): Promise<openpgp.PublicKey> {
  const m = await readKeyMaterial(data, what);
  if (m.keys.length !== 1 || m.revocations.length !== 0) throw refuse('MALFORMED', `${what}: must hold exactly one public key`);
  const k = m.keys[0];
  if (k.isPrivate()) throw refuse('MALFORMED', `${what}: holds secret key material`);
  return k as openpgp.PublicKey;
}

/** The issuer of a revocation certificate, as a key ID or fingerprint (upper-case hex). */
export async function revocationIssuer(armored: string): Promise<{ keyId: string; fingerprint: string | null; sig: openpgp.SignaturePacket }> {
  const { data } = await openpgp.unarmor(armored);
  const sig = (await openpgp.readSignature({ binarySignature: data as Uint8Array, config: PGP_CONFIG })).packets[0];
  const fp = sig.issuerFingerprint ? Buffer.from(sig.issuerFingerprint).toString('hex').toUpperCase() : null;
  return { keyId: sig.issuerKeyID.toHex().toUpperCase(), fingerprint: fp, sig };
}

/** Apply every revocation certificate that belongs to `key` (invalid ones are ignored). */
export async function applyRevocations(key: openpgp.PublicKey, revocations: string[]): Promise<openpgp.PublicKey> {
  let k = key;
  for (const r of revocations) {
    try {
      const withCert = k as unknown as { applyRevocationCertificate(c: string, d?: Date, cfg?: openpgp.Config): Promise<openpgp.PublicKey> };
      k = await withCert.applyRevocationCertificate(r, undefined, { ...openpgp.config, ...PGP_CONFIG } as openpgp.Config);
    } catch {
      // not for this key, or not valid: ignored
    }
  }
  return k;
}

export interface GenerateOptions {
  userIds: string[];
  type?: 'ed25519' | 'rsa4096';
  passphrase?: string;
  /** seconds; 0 or undefined: never */
  expiresIn?: number;
  date?: Date;
}

/** Split "Name (comment) <email>" into OpenPGP.js's user ID object (which formats it back identically). */
export function parseUserId(uid: string): { name?: string; email?: string; comment?: string } {
  const m = /^(.*?)\s*(?:\((.*)\))?\s*<([^<>]+)>$/.exec(uid.trim());
  if (m) {
    const out: { name?: string; email?: string; comment?: string } = { email: m[3] };
    if (m[1]) out.name = m[1];
    if (m[2]) out.comment = m[2];
    return out;
  }
  return { name: uid };
}

export async function generateKey(
  opts: GenerateOptions,
): Promise<{ privateKey: string; publicKey: string; fingerprint: string; revocationCertificate: string }> {
  if (opts.userIds.length === 0) throw usage('at least one --uid is required');
  for (const u of opts.userIds) {
    if (!u.trim() || u.length > 1024 || /[\u0000-\u001f]/.test(u)) throw usage(`invalid user ID ${JSON.stringify(u)}`);
  }
  const base = {
    // the whole string as the "name": OpenPGP.js writes it byte for byte (its e-mail check would refuse valid local addresses)
    userIDs: opts.userIds.map((u) => ({ name: u })),
    keyExpirationTime: opts.expiresIn ?? 0,
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
  return { privateKey: r.privateKey, publicKey: r.publicKey, fingerprint: fingerprintOf(pub), revocationCertificate: r.revocationCertificate };
}

/** Read a secret key file and unlock it. */
export async function loadSecretKey(data: Uint8Array, what: string, passphrase: () => Promise<string | undefined>): Promise<openpgp.PrivateKey> {
  const m = await readKeyMaterial(data, what);
  const priv = m.keys.filter((k) => k.isPrivate()) as openpgp.PrivateKey[];
  if (priv.length === 0) throw usage(`${what} holds no secret key (is it the public half?)`);
  if (priv.length > 1) throw usage(`${what} holds ${priv.length} secret keys; give one key per --key`);
  const key = priv[0];
  if (key.isDecrypted()) return key;
  const pass = await passphrase();
  if (pass === undefined) {
    throw usage(`${what} is protected by a passphrase: give --passphrase-file FILE or set BOXSIG_PASSPHRASE`);
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase: pass, config: PGP_CONFIG });
  } catch (e) {
    throw usage(`cannot unlock ${what}: ${(e as Error).message.replace(/^Error decrypting private key: /, '')}`);
  }
}

/** A detached, ASCII-armored binary signature over `data`. */
export async function signDetached(data: Uint8Array, key: openpgp.PrivateKey, date = new Date()): Promise<string> {
  const message = await openpgp.createMessage({ binary: data });
  try {
    return (await openpgp.sign({ message, signingKeys: key, detached: true, format: 'armored', date, config: PGP_CONFIG })) as string;
  } catch (e) {
    throw new BoxsigError('USAGE', `cannot sign with key ${fingerprintOf(key)}: ${(e as Error).message}`);
  }
}

export function publicArmored(key: Key): string {
  return key.toPublic().armor(PGP_CONFIG as openpgp.Config);
}

export function describeAlgorithm(key: Key): string {
  const info = key.getAlgorithmInfo() as { algorithm: string; bits?: number; curve?: string };
  if (info.curve) return info.curve === 'ed25519Legacy' || info.curve === 'ed25519' ? 'ed25519' : `${info.algorithm}/${info.curve}`;
  if (info.bits) return `${info.algorithm.replace(/Encrypt|Sign/g, '')}${info.bits}`;
  return info.algorithm;
}
