/**
 * Own keys on disk: `key generate` (secret key, public key and revocation
 * certificate, optionally naming designated revokers) and `key add-uid`.
 * Every file goes through src/keys/files.ts; a command that writes several
 * files checks all of them before it writes any.
 */
import path from 'node:path';
import { BoxsigError, usage } from '../errors.js';
import type { Cert } from './cert.js';
import { existing, writeKeyFile, writeNewKeyFiles } from './files.js';
import { generateKey, readSecretKey, unlockSecretKey, userIdProblem, type GenerateOptions } from './keys.js';
import type { Passphrase } from './passphrase.js';
import { addUserId } from './certify.js';
import * as pgp from './pgp.js';

export interface GeneratedKeyFiles {
  fingerprint: string;
  secretKey: string;
  publicKey: string;
  revocationCertificate: string;
  protected: boolean;
  revokers: string[];
}

function keyFileNames(prefix: string): { secret: string; public: string; revocation: string } {
  return { secret: `${prefix}.secret.asc`, public: `${prefix}.public.asc`, revocation: `${prefix}.revocation.asc` };
}

/** Refuse (EXISTS) when any of the three files of `key generate --out PREFIX` exists, naming them all. */
export function assertKeyFilesFree(prefix: string): void {
  const taken = existing(Object.values(keyFileNames(prefix)));
  if (taken.length) {
    throw new BoxsigError('EXISTS', `${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}; nothing was written (choose another --out)`, {
      files: taken,
    });
  }
}

/**
 * Generate a key and write PREFIX.secret.asc (0600), PREFIX.public.asc and
 * PREFIX.revocation.asc (0600) — all new files, or none: an existing file
 * of the three (even a stale revocation certificate) stops the command
 * before anything is written.
 */
export async function generateKeyFiles(prefix: string, opts: GenerateOptions & { revokers?: Cert[] }): Promise<GeneratedKeyFiles> {
  const names = keyFileNames(prefix);
  assertKeyFilesFree(prefix);
  const k = await generateKey({ ...opts, passphrase: undefined });
  let secret = await pgp.readArmoredSecretKey(k.privateKey);
  const date = opts.date ?? new Date();
  for (const r of opts.revokers ?? []) {
    if (r.info.fingerprint === k.fingerprint) continue;
    secret = await pgp.withDirectSignature(secret, await pgp.makeRevokerDesignation(secret, r.info.algorithm, r.info.fingerprint, date));
  }
  const publicKey = pgp.armorPublicKey(pgp.publicBytes(secret));
  const locked = opts.passphrase ? await pgp.lock(secret, opts.passphrase) : secret;
  writeNewKeyFiles([
    { file: names.secret, data: pgp.armorSecret(locked), secret: true },
    { file: names.public, data: publicKey },
    { file: names.revocation, data: k.revocationCertificate, secret: true },
  ]);
  return {
    fingerprint: k.fingerprint,
    secretKey: path.resolve(names.secret),
    publicKey: path.resolve(names.public),
    revocationCertificate: path.resolve(names.revocation),
    protected: Boolean(opts.passphrase),
    revokers: (opts.revokers ?? []).map((r) => r.info.fingerprint),
  };
}

export interface AddUidResult {
  fingerprint: string;
  userIds: string[];
  secretKey: string;
  publicKey: string;
}

/**
 * Add a self-signed user ID to the secret key in `keyFile`; write the secret
 * key back in place (or to PREFIX.secret.asc) and the public key next to it
 * (or to PREFIX.public.asc), atomically. The passphrase is asked for once.
 */
export async function addUserIdToKeyFile(keyFile: string, data: Uint8Array, uid: string, passphrase: Passphrase, outPrefix?: string): Promise<AddUidResult> {
  const p = userIdProblem(uid);
  if (p) throw usage(`invalid user ID ${JSON.stringify(uid)}: it ${p}`);
  const original = await readSecretKey(data, keyFile);
  const { key: unlocked, passphrase: pass } = await unlockSecretKey(original, keyFile, passphrase);
  const updated = await addUserId(unlocked, uid);
  const toWrite = pass !== undefined ? await pgp.lock(updated, pass) : updated;
  const secretOut = outPrefix ? `${outPrefix}.secret.asc` : keyFile;
  const publicOut = outPrefix ? `${outPrefix}.public.asc` : keyFile.replace(/(\.secret)?\.asc$/, '') + '.public.asc';
  if (path.resolve(publicOut) === path.resolve(secretOut)) throw usage(`cannot write the public key over the secret key ${secretOut}`);
  writeKeyFile(secretOut, pgp.armorSecret(toWrite), { secret: true });
  writeKeyFile(publicOut, pgp.armorPublicKey(pgp.publicBytes(updated)));
  return { fingerprint: pgp.fingerprintOf(updated), userIds: pgp.userIdsOf(updated), secretKey: secretOut, publicKey: publicOut };
}
