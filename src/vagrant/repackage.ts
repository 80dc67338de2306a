/**
 * `boxsig repackage NAME PROVIDER VERSION`: pack an installed box again, as
 * `vagrant box repackage` does (top-level dot-files such as `.boxsig/` are
 * left out, so no stale signature travels), and optionally sign the result.
 *
 * An installed box that carries a manifest is first checked against it (and
 * its signatures against the manifest), so that a box changed after install
 * is not laundered under a new signature: any change is refused as TAMPERED,
 * naming every changed, added or missing file, unless `acceptChanges` is set;
 * the accepted changes are then part of the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { create } from 'tar';
import { BoxsigError, refuse, usage } from '../errors.js';
import { CHUNK_SIZE } from '../shared/limits.js';
import { showPath } from '../archive/paths.js';
import { readDirPrefix, walkBoxDir, type DirFile } from '../box/dir.js';
import { checkSigners } from '../keys/signers.js';
import { signBox, type SignOptions, type SignResult } from '../box/sign.js';
import { parseManifest, type Manifest } from '../manifest/manifest.js';
import { architecturesAgree, identityProblems, statedArchitecture } from '../manifest/names.js';
import { removeOnInterrupt } from '../interrupt.js';
import { removeStaleSiblings, tempSibling } from '../shared/files.js';
import { describeBox, findInstalled, vagrantHome, type BoxLocation, type BoxPlace } from './home.js';
import { explicitArchitecture, hostArchitecture } from './architecture.js';
import { recoverVagrantHome } from './staging.js';

export interface RepackageOptions {
  vagrantHome?: string;
  /**
   * The architecture directory to read (Vagrant 2.4's layout); default: as
   * Vagrant 2.4 finds a box, the host's architecture, else the legacy layout.
   */
  architecture?: string;
  output?: string;
  /** Version to sign (default: the installed version; for Vagrant's "0", the version the box's old manifest states). */
  signVersion?: string;
  /** Sign the repackaged box with these signers. */
  sign?: Omit<SignOptions, 'output' | 'name' | 'version' | 'provider' | 'architecture'>;
  /** Repackage a box whose files changed since it was installed (the changes are reported in the result). */
  acceptChanges?: boolean;
  now?: Date;
}

/** One difference between an installed box and its own manifest. */
export interface BoxChange {
  kind: 'changed' | 'added' | 'missing' | 'identity' | 'signature';
  path?: string;
  detail: string;
}

export interface RepackageResult {
  output: string;
  /** The installed box that was repackaged (its architecture directory, in Vagrant 2.4's layout). */
  box: BoxPlace;
  files: string[];
  signed: SignResult | null;
  /** 'manifest': checked against the box's own signed manifest; 'none': the box carries no manifest to check against. */
  checked: 'manifest' | 'none';
  /** Changes since install, accepted with `acceptChanges` (empty otherwise). */
  changes: BoxChange[];
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK_SIZE);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK_SIZE, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Signatures in `.boxsig/` that no longer match the manifest bytes: the manifest itself was edited. */
async function signatureChanges(prefix: ReturnType<typeof readDirPrefix>, now: Date): Promise<BoxChange[]> {
  if (!prefix.signatures.size) return [];
  const { signers } = await checkSigners(prefix, null, { revocation: 'warn', expiry: 'warn' }, now);
  return signers
    .filter((s) => s.code === 'BAD_SIGNATURE')
    .map((s) => ({ kind: 'signature' as const, detail: `the signature of ${s.fingerprint} does not match .boxsig/manifest.json: ${s.reason}` }));
}

function identityChanges(m: Manifest, box: BoxPlace): BoxChange[] {
  const out: BoxChange[] = [];
  if (m.box.name !== box.name) out.push({ kind: 'identity', detail: `the manifest names the box ${JSON.stringify(m.box.name)}` });
  if (box.version !== '0' && m.box.version !== box.version)
    out.push({ kind: 'identity', detail: `the manifest says version ${JSON.stringify(m.box.version)}` });
  if (m.box.provider !== box.provider) out.push({ kind: 'identity', detail: `the manifest says provider ${JSON.stringify(m.box.provider)}` });
  if (!architecturesAgree(box.architecture, m.box.architecture))
    out.push({
      kind: 'identity',
      detail: `the manifest says architecture ${JSON.stringify(m.box.architecture)}, but the box is installed for ${box.architecture}`,
    });
  return out;
}

async function fileChanges(found: DirFile[], m: Manifest): Promise<BoxChange[]> {
  const listed = new Map(m.files.map((f) => [f.path, f]));
  const out: BoxChange[] = [];
  for (const f of found) {
    const e = listed.get(f.path);
    listed.delete(f.path);
    if (!e) out.push({ kind: 'added', path: f.path, detail: `${showPath(f.path)} is not in the manifest` });
    else if (e.size !== f.size) out.push({ kind: 'changed', path: f.path, detail: `${showPath(f.path)} is ${f.size} bytes; the manifest says ${e.size}` });
    else if ((await sha256(f.abs)) !== e.sha256)
      out.push({ kind: 'changed', path: f.path, detail: `${showPath(f.path)} does not match its SHA-256 in the manifest` });
  }
  for (const p of listed.keys()) out.push({ kind: 'missing', path: p, detail: `${showPath(p)} is listed in the manifest but missing` });
  return out;
}

/** Every difference between the installed box and its own manifest; null when it carries none. */
async function changesSinceInstall(dir: string, box: BoxPlace, now = new Date()): Promise<BoxChange[] | null> {
  const prefix = readDirPrefix(dir);
  const found = walkBoxDir(dir); // refuses links and special files, like verification does
  if (!prefix.present) return null;
  if (!prefix.manifest) return [{ kind: 'signature', detail: '.boxsig/ holds no manifest.json' }];
  const m = parseManifest(prefix.manifest);
  return [...(await signatureChanges(prefix, now)), ...identityChanges(m, box), ...(await fileChanges(found, m))];
}

/** The box part of the installed box's own (old) manifest, if it has one that parses. */
function manifestBox(dir: string): { version?: unknown; architecture?: unknown } | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, '.boxsig', 'manifest.json'), 'utf8')) as { box?: { version?: unknown; architecture?: unknown } };
    return m.box;
  } catch {
    return undefined;
  }
}

function manifestString(dir: string, field: 'version' | 'architecture'): string | undefined {
  const v = manifestBox(dir)?.[field];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The installed box, found as Vagrant 2.4 finds it (either layout):
 * validated names, no link on the way (a symlinked box is never followed).
 */
function installedBox(home: string, box: { name: string; version: string; provider: string; architecture?: string }): BoxLocation {
  const problems = identityProblems(box);
  if (problems.length) throw usage(`box ${problems.join('; ')}`);
  const host = box.architecture === undefined ? hostArchitecture() : box.architecture;
  const loc = findInstalled(home, box, host);
  if (!loc) {
    const where = box.architecture !== undefined ? `architecture ${box.architecture}` : `architecture ${host} or the legacy layout`;
    throw usage(`box ${box.name} ${box.version} (${box.provider}) is not installed in ${home} (${where})`);
  }
  return loc;
}

export async function repackageBox(name: string, provider: string, version: string, opts: RepackageOptions = {}): Promise<RepackageResult> {
  const home = vagrantHome(opts.vagrantHome);
  const architecture = explicitArchitecture(opts.architecture);
  recoverVagrantHome(home);
  const loc = installedBox(home, { name, version, provider, ...(architecture !== undefined ? { architecture } : {}) });
  const dir = loc.directory;
  const box: BoxPlace = { name, version, provider, ...(loc.architecture !== undefined ? { architecture: loc.architecture } : {}) };
  const changes = await changesSinceInstall(dir, box, opts.now);
  if (changes?.length && !opts.acceptChanges) {
    throw refuse(
      'TAMPERED',
      `${describeBox(box)} changed since it was installed:\n${changes.map((c) => `  ${c.detail}`).join('\n')}`,
      { changes },
      'repackage it anyway with --accept-changes (the changes are then named in the output)',
    );
  }
  const files = walkBoxDir(dir)
    .map((f) => f.path)
    .filter((p) => !p.split('/')[0].startsWith('.'));
  if (!files.includes('metadata.json')) throw new BoxsigError('USAGE', `${dir} has no metadata.json`);
  const output = path.resolve(opts.output ?? 'package.box');
  removeStaleSiblings(output);
  const tmp = tempSibling(output, randomBytes(4).toString('hex'));
  const forget = removeOnInterrupt(tmp);
  try {
    // metadata.json first, then the rest in a stable order
    const ordered = ['metadata.json', ...files.filter((f) => f !== 'metadata.json').sort()];
    await create({ gzip: { level: 6 }, file: tmp, cwd: dir, portable: true, noDirRecurse: true }, ordered);
    let signed: SignResult | null = null;
    if (opts.sign) {
      const signVersion = opts.signVersion ?? (version === '0' ? (manifestString(dir, 'version') ?? version) : version);
      // the architecture it is installed for, else the one its old manifest stated (metadata.json must agree: signBox checks)
      const signArch = statedArchitecture(box.architecture) ?? manifestString(dir, 'architecture');
      signed = await signBox(tmp, { ...opts.sign, name, version: signVersion, provider, ...(signArch ? { architecture: signArch } : {}), output });
      fs.rmSync(tmp, { force: true });
    } else {
      fs.renameSync(tmp, output);
    }
    return { output, box, files: ordered, signed, checked: changes ? 'manifest' : 'none', changes: changes ?? [] };
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  } finally {
    forget();
  }
}
