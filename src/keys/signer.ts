/**
 * Who signs a manifest: a secret key file (OpenPGP.js), or a key held by the
 * local GnuPG (gpg-agent, smartcards, HSMs behind it).
 */
import { spawn } from 'node:child_process';
import type * as openpgp from 'openpgp';
import { BoxsigError, usage } from '../errors.js';
import { fingerprintOf, publicArmored, readKeyMaterial, signDetached } from './keys.js';
import { readOneSignature } from './verify.js';

export interface ManifestSigner {
  /** Primary-key fingerprint. */
  fingerprint: string;
  /** ASCII-armored public key to embed in `.boxsig/keys/`. */
  publicKey: string;
  sign(data: Uint8Array, date: Date): Promise<string>;
  describe: string;
}

export function signerFromKey(key: openpgp.PrivateKey, source: string): ManifestSigner {
  return {
    fingerprint: fingerprintOf(key),
    publicKey: publicArmored(key),
    sign: (data, date) => signDetached(data, key, date),
    describe: source,
  };
}

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], input?: Uint8Array, extraFd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'pipe'> = extraFd !== undefined ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'];
    const child = spawn(cmd, args, { stdio });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') reject(new BoxsigError('USAGE', `${cmd} is not installed (on Debian: apt-get install gnupg)`));
      else reject(e);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
    if (extraFd !== undefined) {
      const s = child.stdio[3] as NodeJS.WritableStream;
      s.on('error', () => undefined);
      s.end(extraFd + '\n');
    }
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input ?? Buffer.alloc(0));
  });
}

/** Sign through GnuPG with the key whose fingerprint (or any ID gpg accepts) is `id`. */
export async function signerFromGpg(id: string, opts: { gpg?: string; passphrase?: string } = {}): Promise<ManifestSigner> {
  const gpg = opts.gpg ?? process.env.BOXSIG_GPG ?? 'gpg';
  const exp = await run(gpg, ['--batch', '--armor', '--export', '--export-options', 'export-minimal', id]);
  if (exp.code !== 0 || exp.stdout.length === 0) {
    throw usage(`GnuPG has no public key for ${id}${exp.stderr ? `: ${exp.stderr.trim()}` : ''}`);
  }
  const material = await readKeyMaterial(exp.stdout, `gpg --export ${id}`);
  if (material.keys.length !== 1) throw usage(`${id} matches ${material.keys.length} keys in GnuPG; give the full fingerprint`);
  const key = material.keys[0];
  const fingerprint = fingerprintOf(key);
  // export the full key (with certifications, for org chains)
  const full = await run(gpg, ['--batch', '--armor', '--export', fingerprint]);
  const publicKey = full.code === 0 && full.stdout.length ? full.stdout.toString('latin1') : publicArmored(key);
  return {
    fingerprint,
    publicKey,
    describe: `GnuPG key ${fingerprint}`,
    async sign(data: Uint8Array) {
      const args = ['--batch', '--yes', '--armor', '--digest-algo', 'SHA512', '--local-user', fingerprint, '--detach-sign'];
      const pass = opts.passphrase;
      const r = pass !== undefined ? await run(gpg, ['--pinentry-mode', 'loopback', '--passphrase-fd', '3', ...args], data, pass) : await run(gpg, args, data);
      if (r.code !== 0 || r.stdout.length === 0) {
        throw new BoxsigError('USAGE', `gpg could not sign with ${fingerprint}: ${r.stderr.trim() || `exit status ${r.code}`}`);
      }
      const sig = await readOneSignature(r.stdout, 'gpg output');
      if (key.getKeys(sig.issuerKeyID).length === 0) throw new BoxsigError('INTERNAL', `gpg signed with a key outside ${fingerprint}`);
      return r.stdout.toString('latin1');
    },
  };
}
