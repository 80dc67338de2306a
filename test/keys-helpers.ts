/**
 * Helpers for the key and OpenPGP-semantics tests: boxes whose `.boxsig/`
 * holds exactly the key and signature packets a test crafted, and the
 * verdicts of GnuPG and Sequoia `sqv` on the same signature.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tar from './corpus/tar.mjs';
import { baseFiles, bodyEntries, manifestFor, prefixEntries } from './corpus/generate.mjs';
import { armorKey, armorSig } from './pgp-craft.js';

export const BOX_NAME = 'corpus/box';

export interface CraftedBox {
  file: string;
  manifest: Buffer;
}

export interface BoxParts {
  /** the manifest bytes (default: a fresh manifest for the base files) */
  manifest?: Buffer;
  created?: Date;
  signatures: Array<{ fpr: string; packet: Buffer | string }>;
  keys: Array<{ fpr: string; packet: Buffer | string }>;
}

/** The manifest the crafted boxes sign (for making signatures over it first). */
export function craftManifest(created = new Date(Date.now() - 120_000)): Buffer {
  return manifestFor(baseFiles(), { created });
}

/** A plain tar box with exactly the given `.boxsig/` signature and key files. */
export function craftBox(file: string, parts: BoxParts): CraftedBox {
  const manifest = parts.manifest ?? craftManifest(parts.created);
  const arm = (p: Buffer | string, f: (b: Buffer) => string) => (typeof p === 'string' ? p : f(p));
  const prefix = prefixEntries({
    manifest,
    signatures: parts.signatures.map((s) => ({ fpr: s.fpr, armored: Buffer.from(arm(s.packet, armorSig)) })),
    keys: parts.keys.map((k) => ({ fpr: k.fpr, armored: Buffer.from(arm(k.packet, armorKey)) })),
  });
  fs.writeFileSync(file, Buffer.concat([prefix, bodyEntries(baseFiles()), tar.end()]));
  return { file, manifest };
}

export type Verdict = 'accept' | 'refuse' | 'unavailable';

/** `sqv --keyring KEY SIG DATA`: accept when it exits 0. */
export function sqvVerdict(dir: string, keyArmored: string, sigArmored: string, data: Buffer, extraKeys: string[] = []): Verdict {
  const probe = spawnSync('sqv', ['--version']);
  if (probe.error) return 'unavailable';
  const k = path.join(dir, 'sqv-key.asc');
  const s = path.join(dir, 'sqv-sig.asc');
  const d = path.join(dir, 'sqv-data');
  fs.writeFileSync(k, [keyArmored, ...extraKeys].join('\n'));
  fs.writeFileSync(s, sigArmored);
  fs.writeFileSync(d, data);
  const r = spawnSync('sqv', ['--keyring', k, s, d], { encoding: 'utf8' });
  return r.status === 0 ? 'accept' : 'refuse';
}

/**
 * `gpg --verify` in a fresh home with the key (and any extra keys, e.g. a
 * designated revoker) imported: accept on VALIDSIG without a revoked or
 * expired key or signature.
 */
export function gpgVerdict(dir: string, keyArmored: string, sigArmored: string, data: Buffer, extraKeys: string[] = []): Verdict {
  const probe = spawnSync('gpg', ['--version']);
  if (probe.error) return 'unavailable';
  const home = fs.mkdtempSync('/tmp/bsg-dgpg-');
  fs.chmodSync(home, 0o700);
  try {
    const env = { ...process.env, GNUPGHOME: home };
    // the other keys first: GnuPG checks a designated revocation when the key arrives
    for (const [i, k] of [...extraKeys, keyArmored].entries()) {
      const f = path.join(dir, `gpg-key-${i}.asc`);
      fs.writeFileSync(f, k);
      spawnSync('gpg', ['--batch', '--quiet', '--import', f], { env });
    }
    const s = path.join(dir, 'gpg-sig.asc');
    const d = path.join(dir, 'gpg-data');
    fs.writeFileSync(s, sigArmored);
    fs.writeFileSync(d, data);
    const r = spawnSync('gpg', ['--batch', '--status-fd', '1', '--verify', s, d], { env, encoding: 'utf8' });
    const status = r.stdout ?? '';
    const ok = /\[GNUPG:\] VALIDSIG /.test(status) && !/\[GNUPG:\] (REVKEYSIG|EXPKEYSIG|EXPSIG|KEYREVOKED|BADSIG|ERRSIG) /.test(status);
    return ok ? 'accept' : 'refuse';
  } finally {
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home } });
    fs.rmSync(home, { recursive: true, force: true });
  }
}
