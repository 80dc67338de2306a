/**
 * `boxsig repackage NAME PROVIDER VERSION`: pack an installed box again, as
 * `vagrant box repackage` does (top-level dot-files such as `.boxsig/` are
 * left out, so no stale signature travels), and optionally sign the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { create } from 'tar';
import { BoxsigError, usage } from '../errors.js';
import { walkBoxDir } from '../box/dir.js';
import { signBox, type SignOptions, type SignResult } from '../box/sign.js';
import { installedBoxPath, vagrantHome } from './home.js';

export interface RepackageOptions {
  vagrantHome?: string;
  output?: string;
  /** Version to sign (default: the installed version; for Vagrant's "0", the version the box's old manifest states). */
  signVersion?: string;
  /** Sign the repackaged box with these signers. */
  sign?: Omit<SignOptions, 'output' | 'name' | 'version' | 'provider'>;
}

export interface RepackageResult {
  output: string;
  files: string[];
  signed: SignResult | null;
}

/** The version the installed box's own (old) manifest states, if it has one that parses. */
function manifestVersion(dir: string): string | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, '.boxsig', 'manifest.json'), 'utf8')) as { box?: { version?: unknown } };
    return typeof m.box?.version === 'string' ? m.box.version : undefined;
  } catch {
    return undefined;
  }
}

export async function repackageBox(name: string, provider: string, version: string, opts: RepackageOptions = {}): Promise<RepackageResult> {
  const home = vagrantHome(opts.vagrantHome);
  const dir = installedBoxPath(home, name, version, provider);
  if (!fs.existsSync(dir)) throw usage(`box ${name} ${version} (${provider}) is not installed in ${home}`);
  // refuses links and special files, like verification does
  const files = walkBoxDir(dir)
    .map((f) => f.path)
    .filter((p) => !p.split('/')[0].startsWith('.'));
  if (!files.includes('metadata.json')) throw new BoxsigError('USAGE', `${dir} has no metadata.json`);
  const output = path.resolve(opts.output ?? 'package.box');
  const tmp = path.join(path.dirname(output), `.${path.basename(output)}.boxsig-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    // metadata.json first, then the rest in a stable order
    const ordered = ['metadata.json', ...files.filter((f) => f !== 'metadata.json').sort()];
    await create({ gzip: { level: 6 }, file: tmp, cwd: dir, portable: true, noDirRecurse: true }, ordered);
    let signed: SignResult | null = null;
    if (opts.sign) {
      const signVersion = opts.signVersion ?? (version === '0' ? (manifestVersion(dir) ?? version) : version);
      signed = await signBox(tmp, { ...opts.sign, name, version: signVersion, provider, output });
      fs.rmSync(tmp, { force: true });
    } else {
      fs.renameSync(tmp, output);
    }
    return { output, files: ordered, signed };
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
