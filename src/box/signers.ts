/**
 * The signers of `sign`, `repackage` and `publish`: secret key files and
 * GnuPG keys, each embedding its public key with every certification boxsig
 * knows for it (its key file, the keyring's copy, explicit `certs` files), so
 * that a consumer checks an org chain on first encounter.
 */
import fs from 'node:fs';
import { usage } from '../errors.js';
import { loadSecretKey } from '../keys/keys.js';
import { signerFromGpg, signerFromKey, withCertifications, type KeyCopy, type ManifestSigner } from '../keys/signer.js';
import { passphraseFrom, type PassphraseOptions } from '../keys/passphrase.js';
import { TrustStore } from '../trust/store.js';

export interface SignerOptions {
  /** Secret key files (OpenPGP, armored or binary). */
  keys?: string[];
  /** Keys in the local GnuPG: a fingerprint, a key ID or a user ID gpg accepts. */
  gpgKeys?: string[];
  /** Files holding copies of the signing keys with certifications, or the certifying keys. */
  certs?: string[];
  /** Where passphrases come from (the same for every key). */
  passphrase?: PassphraseOptions;
  /** The keyring whose copies of the keys are embedded too (default: the user's). */
  store?: TrustStore;
}

export async function loadSigners(opts: SignerOptions): Promise<ManifestSigner[]> {
  const signers: ManifestSigner[] = [];
  const copies: KeyCopy[] = [];
  for (const k of opts.keys ?? []) {
    const data = readInputFile(k, 'key file');
    const key = await loadSecretKey(data, k, passphraseFrom(opts.passphrase ?? {}, k));
    signers.push(signerFromKey(key, k));
    copies.push({ data, what: k });
  }
  for (const g of opts.gpgKeys ?? []) {
    // gpg asks through its own pinentry unless boxsig holds a passphrase (file or variable; no prompt of ours)
    const pass = await passphraseFrom({ ...opts.passphrase, prompt: undefined }, g)();
    signers.push(await signerFromGpg(g, pass !== undefined ? { passphrase: pass } : {}));
  }
  const keyring = (opts.store ?? new TrustStore()).keyring;
  for (const s of signers) {
    const stored = await keyring.cert(s.fingerprint);
    if (stored) copies.push({ data: stored, what: `the keyring's copy of ${s.fingerprint}` });
  }
  for (const c of opts.certs ?? []) copies.push({ data: readInputFile(c, '--cert file'), what: c, explicit: true });
  return withCertifications(signers, copies, (f) => keyring.cert(f));
}

/** A small input file named on the command line (a key, a certificate): unreadable is a usage error. */
export function readInputFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw usage(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}
