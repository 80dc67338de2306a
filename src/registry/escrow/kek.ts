/**
 * The operator's key-encryption key (KEK): every secret key the registry
 * holds (escrow keys, a held org key) is stored wrapped under it, never in
 * clear — not in the database, not in a backup, not in the object store.
 *
 * `KeyEncryption` is the seam a KMS or an HSM implements (AWS KMS's
 * Encrypt/Decrypt with an encryption context, PKCS#11 C_WrapKey …). The
 * built-in one is AES-256-GCM with a 32-byte key from a file or the
 * environment: a fresh random 96-bit nonce per wrap, and the wrapped key's
 * identity (org and fingerprint) as associated data, so that a wrapped key
 * copied onto another row does not unwrap.
 */
import fs from 'node:fs';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { BoxsigError } from '../../errors.js';

export interface KeyEncryption {
  /** Which KEK this is (shown, and stored with each wrapped key): never the key itself. */
  readonly id: string;
  /** Encrypt `plain`, bound to `identity` (associated data: unwrapping under another identity fails). */
  wrap(plain: Buffer, identity: string): Promise<Buffer>;
  /** Decrypt what `wrap` made for the same `identity`; throws when it was altered or belongs elsewhere. */
  unwrap(wrapped: Buffer, identity: string): Promise<Buffer>;
}

const VERSION = 1;
const NONCE = 12;
const TAG = 16;
const ID = 8;

/** AES-256-GCM under a 32-byte key held by this process. */
export class AesGcmKeyEncryption implements KeyEncryption {
  readonly id: string;
  private readonly idBytes: Buffer;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new BoxsigError('CONFIG', `the key-encryption key must be 32 bytes (256 bits), not ${key.length}`);
    this.idBytes = createHash('sha256').update('boxsig registry kek id').update(key).digest().subarray(0, ID);
    this.id = `aes256gcm:${this.idBytes.toString('hex')}`;
  }

  async wrap(plain: Buffer, identity: string): Promise<Buffer> {
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', this.key, nonce);
    c.setAAD(aad(identity));
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([Buffer.from([VERSION]), this.idBytes, nonce, c.getAuthTag(), body]);
  }

  async unwrap(wrapped: Buffer, identity: string): Promise<Buffer> {
    if (wrapped.length < 1 + ID + NONCE + TAG || wrapped[0] !== VERSION) throw cannotUnwrap(identity, 'it is not a key wrapped by this registry');
    if (!wrapped.subarray(1, 1 + ID).equals(this.idBytes)) throw cannotUnwrap(identity, `it was wrapped under another key-encryption key than ${this.id}`);
    const nonce = wrapped.subarray(1 + ID, 1 + ID + NONCE);
    const tag = wrapped.subarray(1 + ID + NONCE, 1 + ID + NONCE + TAG);
    const d = createDecipheriv('aes-256-gcm', this.key, nonce);
    d.setAAD(aad(identity));
    d.setAuthTag(tag);
    try {
      return Buffer.concat([d.update(wrapped.subarray(1 + ID + NONCE + TAG)), d.final()]);
    } catch {
      throw cannotUnwrap(identity, 'it was altered, or belongs to another key');
    }
  }
}

const aad = (identity: string) => Buffer.from(`boxsig-registry-held-key:v1:${identity}`, 'utf8');

function cannotUnwrap(identity: string, why: string): BoxsigError {
  return new BoxsigError('CONFIG', `cannot unwrap the held key ${identity}: ${why}`);
}

/**
 * A KEK as text: 64 hex digits or the base64 of 32 bytes. (Not raw bytes: 32
 * characters of text would pass for a key.)
 */
export function parseKek(bytes: Buffer, where: string): Buffer {
  const text = bytes.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    const b = Buffer.from(text, 'base64');
    if (b.length === 32) return b;
  }
  throw new BoxsigError(
    'CONFIG',
    `${where}: a key-encryption key is 32 random bytes, as 64 hex digits or base64`,
    {},
    'make one: head -c 32 /dev/urandom | base64 > kek && chmod 600 kek',
  );
}

/**
 * The KEK the configuration names: `escrowKeyFile` (a file only its owner
 * can read), or the BOXSIG_REGISTRY_ESCROW_KEY variable. Null when none is
 * configured: the registry then holds no keys (escrow boxes cannot be
 * created or signed, and say so).
 */
export function loadKeyEncryption(file: string | null, envValue: string | undefined): KeyEncryption | null {
  if (file) {
    let st: fs.Stats;
    let bytes: Buffer;
    try {
      st = fs.statSync(file);
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new BoxsigError('CONFIG', `escrowKeyFile ${file}: cannot read: ${(e as Error).message}`, { file });
    }
    if ((st.mode & 0o077) !== 0) {
      throw new BoxsigError('CONFIG', `escrowKeyFile ${file} can be read by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, { file });
    }
    return new AesGcmKeyEncryption(parseKek(bytes, `escrowKeyFile ${file}`));
  }
  if (envValue) return new AesGcmKeyEncryption(parseKek(Buffer.from(envValue, 'latin1'), 'BOXSIG_REGISTRY_ESCROW_KEY'));
  return null;
}

export function needKek(kek: KeyEncryption | null, what: string): KeyEncryption {
  if (kek) return kek;
  throw new BoxsigError(
    'CONFIG',
    `${what} needs the registry's key-encryption key, and none is configured`,
    {},
    'set escrowKeyFile in the registry config (or BOXSIG_REGISTRY_ESCROW_KEY_FILE, BOXSIG_REGISTRY_ESCROW_KEY) for serve and the admin commands alike',
  );
}
