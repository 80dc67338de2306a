/**
 * OpenPGP key material: reading (armored or binary, several blocks, GnuPG
 * exports and revocation certificates), fingerprints, own secret keys.
 *
 * Untrusted key data is read by boxsig's own packet reader first
 * (packets.ts, cert.ts) and checked against the limits and the allowed
 * algorithms (shape.ts) before OpenPGP.js sees any of it.
 */
import type { Passphrase } from './passphrase.js';
import { BoxsigError, refuse, usage } from '../errors.js';
import { splitCerts, type Cert, type Sig } from './cert.js';
import { PacketError, REVOCATION_TYPES, readPackets } from './packets.js';
import { checkCert } from './shape.js';
import * as pgp from './pgp.js';
import { openKey } from './handle.js';

export type Key = pgp.AnyKey;

const FPR_RE = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;

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

/** What a key file holds, read by boxsig's packet reader. */
export interface KeyData {
  certs: Cert[];
  /** signatures outside any key: revocation certificates (key 0x20, subkey 0x28, certification 0x30) */
  bare: Sig[];
  /** the binary packets, as read */
  binary: Uint8Array;
}

const ARMOR_RE = /^:?-----BEGIN PGP ([A-Z ]+?)-----\r?$[\s\S]*?^-----END PGP \1-----\r?$/gm;

async function binaryOf(data: Uint8Array, what: string): Promise<Uint8Array> {
  const text = Buffer.from(data).toString('latin1');
  const blocks = [...text.matchAll(ARMOR_RE)].map((m) => m[0].replace(/^:/, ''));
  if (blocks.length === 0) return data;
  const parts: Uint8Array[] = [];
  for (const block of blocks) {
    let d: { kind: pgp.ArmorKind; data: Uint8Array };
    try {
      d = await pgp.dearmor(block);
    } catch (e) {
      throw refuse('MALFORMED', `${what}: damaged ASCII armor (${(e as Error).message})`);
    }
    if (d.kind === 'other') throw refuse('MALFORMED', `${what}: armored block is not a key`);
    parts.push(d.data);
  }
  return Buffer.concat(parts);
}

/**
 * Read every key and revocation certificate in a file: armored blocks
 * (including GnuPG's `openpgp-revocs.d` files, whose armor line starts with
 * a colon) or binary packets. Every key is checked against the limits and
 * the accepted algorithms (MALFORMED otherwise).
 */
export async function readKeyData(data: Uint8Array, what: string): Promise<KeyData> {
  const binary = await binaryOf(data, what);
  let split: { certs: Cert[]; bare: Sig[] };
  try {
    split = splitCerts(readPackets(binary));
  } catch (e) {
    if (e instanceof PacketError) throw refuse('MALFORMED', `${what}: not valid OpenPGP key data (${e.message})`);
    throw e;
  }
  for (const s of split.bare) {
    if (!REVOCATION_TYPES.has(s.info.type))
      throw refuse('MALFORMED', `${what}: a bare signature that is not a revocation (type 0x${s.info.type.toString(16)})`);
  }
  if (split.certs.length === 0 && split.bare.length === 0) throw refuse('MALFORMED', `${what}: contains no OpenPGP key`);
  for (const c of split.certs) checkCert(c, what);
  return { ...split, binary };
}

export interface KeyMaterial {
  keys: Key[];
  /** Armored revocation certificates (signature packets without a key). */
  revocations: string[];
}

/** The keys of a file as OpenPGP.js objects (library compatibility; boxsig itself works on `readKeyData`). */
export async function readKeyMaterial(data: Uint8Array, what: string): Promise<KeyMaterial> {
  const d = await readKeyData(data, what);
  const revocations = d.bare.map((s) => pgp.armorPublicKey(Buffer.concat([Buffer.from([0xc2]), lengthOf(s.packet.body.length), s.packet.body])));
  if (d.certs.length === 0) return { keys: [], revocations };
  const keys: Key[] = [...(await pgp.readSecretKeys(d.binary))];
  const secret = new Set(keys.map((k) => pgp.fingerprintOf(k)));
  for (const c of d.certs) if (!secret.has(c.info.fingerprint)) keys.push(await openKey(c));
  return { keys, revocations };
}

function lengthOf(n: number): Uint8Array {
  if (n < 192) return Buffer.from([n]);
  if (n < 8384) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  return Buffer.from([255, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

export interface GenerateOptions {
  userIds: string[];
  type?: 'ed25519' | 'rsa4096';
  passphrase?: string;
  /** seconds; 0 or undefined: never */
  expiresIn?: number;
  date?: Date;
}

export function userIdProblem(u: string): string | null {
  if (!u.trim()) return 'is empty';
  if (u.length > 1024) return 'is longer than 1024 characters';
  // eslint-disable-next-line no-control-regex -- control characters in untrusted text are what this looks for
  if (/[\u0000-\u001f\u007f]/.test(u)) return 'contains a control character';
  return null;
}

export async function generateKey(
  opts: GenerateOptions,
): Promise<{ privateKey: string; publicKey: string; fingerprint: string; revocationCertificate: string }> {
  if (opts.userIds.length === 0) throw usage('at least one --uid is required');
  for (const u of opts.userIds) {
    const p = userIdProblem(u);
    if (p) throw usage(`invalid user ID ${JSON.stringify(u)}: it ${p}`);
  }
  return pgp.newKey({ userIds: opts.userIds, type: opts.type ?? 'ed25519', passphrase: opts.passphrase, expiresIn: opts.expiresIn ?? 0, date: opts.date });
}

/** Read a secret key file and unlock it. */
export async function loadSecretKey(data: Uint8Array, what: string, passphrase: Passphrase): Promise<pgp.PrivateKey> {
  return (await unlockSecretKey(await readSecretKey(data, what), what, passphrase)).key;
}

/**
 * Unlock a secret key with the passphrase from its source, asking again after
 * a wrong one while the source allows it (a prompt: three tries, as gpg).
 * Returns the passphrase used, so that a key rewritten can be locked again.
 */
export async function unlockSecretKey(key: pgp.PrivateKey, what: string, passphrase: Passphrase): Promise<{ key: pgp.PrivateKey; passphrase?: string }> {
  if (key.isDecrypted()) return { key };
  for (;;) {
    const pass = await passphrase();
    if (pass === undefined) {
      throw usage(`${what} is protected by a passphrase: give --passphrase-file FILE, set BOXSIG_PASSPHRASE, or run on a terminal to be asked`);
    }
    try {
      return { key: await pgp.unlock(key, pass), passphrase: pass };
    } catch (e) {
      if (!passphrase.retry?.()) throw usage(`cannot unlock ${what}: ${(e as Error).message}`);
    }
  }
}

/** The one secret key of a file, still locked. A key boxsig would not accept is a usage error here (the user's own file). */
export async function readSecretKey(data: Uint8Array, what: string): Promise<pgp.PrivateKey> {
  const d = await readKeyData(data, what).catch((e: unknown) => {
    if (e instanceof BoxsigError && e.code === 'MALFORMED') throw usage(e.message, e.details, e.hint);
    throw e;
  });
  const priv = await pgp.readSecretKeys(d.binary).catch((e: Error) => {
    throw refuse('MALFORMED', `${what}: ${e.message}`);
  });
  if (priv.length === 0) throw usage(`${what} holds no secret key (is it the public half?)`);
  if (priv.length > 1) throw usage(`${what} holds ${priv.length} secret keys; give one key per --key`);
  return priv[0];
}

/** A detached, ASCII-armored binary signature over `data`. */
export async function signDetached(data: Uint8Array, key: pgp.PrivateKey, date = new Date()): Promise<string> {
  try {
    return await pgp.signDocument(data, key, date);
  } catch (e) {
    throw new BoxsigError('USAGE', `cannot sign with key ${pgp.fingerprintOf(key)}: ${(e as Error).message}`);
  }
}
