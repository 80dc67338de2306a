/**
 * Vagrant's own layout of installed boxes:
 * `$VAGRANT_HOME/boxes/<name with / as -VAGRANTSLASH->/<version>/<provider>/`
 * (Vagrant 2.4 adds an architecture level: `<version>/<arch>/<provider>/`).
 *
 * `boxLocation` is the only way a box identity becomes a path: it validates
 * the strings (src/manifest/names.ts) and proves that the result lies exactly
 * three levels (four with an architecture) under `boxes/`; `checkLocation`
 * refuses links, names that another spelling already occupies, and a box
 * directory inside another (a provider and an architecture share the level
 * under the version). `scanInstalled` reads the layout back the way Vagrant
 * 2.4 walks it and reports every entry that is not a box Vagrant would list
 * the same way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BoxsigError, refuse } from '../errors.js';
import { architectureProblem, boxDirName, boxNameFromDir, identityProblems, nameProblem, providerProblem, versionProblem } from '../manifest/names.js';
import { compareVersions } from '../shared/version.js';

export function vagrantHome(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  if (process.env.VAGRANT_HOME) return path.resolve(process.env.VAGRANT_HOME);
  return path.join(os.homedir(), '.vagrant.d');
}

export function boxesDir(home: string): string {
  return path.join(home, 'boxes');
}

/** A box as Vagrant names it; `architecture` is the directory level Vagrant 2.4 adds (absent: the legacy layout). */
export interface BoxPlace {
  name: string;
  version: string;
  provider: string;
  architecture?: string;
}

export interface BoxLocation extends BoxPlace {
  /** `$VAGRANT_HOME/boxes`, resolved */
  root: string;
  /** `boxes/<name dir>` */
  nameDir: string;
  /** `boxes/<name dir>/<version>` */
  versionDir: string;
  /** `boxes/<name dir>/<version>/<arch>`, with an architecture */
  archDir?: string;
  /** `boxes/<name dir>/<version>[/<arch>]/<provider>`: where the box's files live */
  directory: string;
  /** Every level from the name directory down to `directory`. */
  levels: string[];
}

/**
 * THE choke point between a box identity and the file system: every name,
 * version, architecture and provider is validated here, whatever its
 * source, and the path is proven to lie exactly three levels (four with an
 * architecture) under `boxes/`.
 */
export function boxLocation(home: string, box: BoxPlace): BoxLocation {
  const arch = box.architecture;
  const problems = identityProblems({ name: box.name, version: box.version, provider: box.provider, ...(arch !== undefined ? { architecture: arch } : {}) });
  if (problems.length) {
    throw refuse('UNSAFE_ENTRY', `refusing to use the box ${problems.join('; ')} in a path`, { box: { ...box } });
  }
  const root = path.resolve(boxesDir(home));
  const parts = [boxDirName(box.name), box.version, ...(arch !== undefined ? [arch] : []), box.provider];
  const directory = path.resolve(root, ...parts);
  const rel = path.relative(root, directory).split(path.sep);
  if (
    path.isAbsolute(path.relative(root, directory)) ||
    rel.length !== parts.length ||
    rel.some((p, i) => p !== parts[i] || p === '' || p === '.' || p === '..')
  ) {
    throw refuse('UNSAFE_ENTRY', `the box directory ${JSON.stringify(directory)} does not lie under ${root}`);
  }
  const levels = parts.map((_, i) => path.join(root, ...parts.slice(0, i + 1)));
  const place: BoxPlace = { name: box.name, version: box.version, provider: box.provider, ...(arch !== undefined ? { architecture: arch } : {}) };
  return { ...place, root, nameDir: levels[0], versionDir: levels[1], ...(arch !== undefined ? { archDir: levels[2] } : {}), directory, levels };
}

/** How people read a box: `NAME VERSION (PROVIDER, ARCH)`. */
export function describeBox(box: BoxPlace): string {
  return `${box.name} ${box.version} (${box.provider}${box.architecture ? `, ${box.architecture}` : ''})`;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}

/** Refuse when a level of the location exists but is not a plain directory (a link is never followed). */
export function checkNoLinks(loc: BoxLocation): void {
  for (const p of loc.levels) {
    const st = lstatOrNull(p);
    if (!st) return;
    if (st.isSymbolicLink()) throw refuse('UNSAFE_ENTRY', `${p} is a symbolic link; boxsig never installs through or over a link`, { path: p });
    if (!st.isDirectory()) throw refuse('UNSAFE_ENTRY', `${p} exists and is not a directory`, { path: p });
  }
}

/** Another spelling of `want` among `names`: same letters in another case, or (versions) the same Gem::Version. */
function otherSpelling(names: string[], want: string, sameVersion: boolean): string | undefined {
  const folded = want.toLowerCase();
  return names.find((n) => {
    if (n === want) return false;
    if (n.toLowerCase() === folded) return true;
    return sameVersion && versionProblem(n) === null && compareVersions(n, want) === 0;
  });
}

/** The child directories of `dir` that hold a metadata.json: the boxes Vagrant 2.4 lists in an architecture directory. */
function boxesIn(dir: string): string[] {
  return entries(dir).filter((n) => {
    const st = lstatOrNull(path.join(dir, n));
    return st !== null && st.isDirectory() && hasMetadata(path.join(dir, n));
  });
}

/**
 * A provider and an architecture share the level under the version, so one
 * box directory could land inside another: a box for architecture A inside
 * the installed box of provider A, or a box of provider P over the
 * architecture directory P of installed boxes (which `--force` would
 * replace, boxes and all). Both are refused.
 */
function checkNotNested(loc: BoxLocation): void {
  if (loc.archDir !== undefined) {
    if (hasMetadata(loc.archDir)) {
      throw refuse(
        'UNSAFE_ENTRY',
        `${describeBox(loc)} would be installed inside the installed box ${loc.name} ${loc.version} (${loc.architecture}): its directory is both a provider and an architecture`,
        { path: loc.archDir },
      );
    }
    return;
  }
  const inside = hasMetadata(loc.directory) ? [] : boxesIn(loc.directory);
  if (inside.length) {
    throw refuse(
      'UNSAFE_ENTRY',
      `${describeBox(loc)} would be installed over the architecture directory ${loc.provider} of the installed ${inside.map((p) => `${loc.name} ${loc.version} (${p}, ${loc.provider})`).join(', ')}`,
      { path: loc.directory },
    );
  }
}

/**
 * Check that the location is usable: no link or file on the way, no other
 * spelling of the same name (case-insensitive file systems share the
 * directory), version (Vagrant cannot tell 1.0 from 1.0.0), architecture or
 * provider, and no box directory inside another.
 */
export function checkLocation(loc: BoxLocation): void {
  checkNoLinks(loc);
  const nameEntry = path.basename(loc.nameDir);
  const otherName = otherSpelling(entries(loc.root), nameEntry, false);
  if (otherName) {
    throw refuse(
      'UNSAFE_ENTRY',
      `box ${loc.name} would share a directory with the installed ${boxNameFromDir(otherName)} (${otherName}) on a case-insensitive file system`,
      { path: path.join(loc.root, otherName) },
    );
  }
  const otherVersion = otherSpelling(entries(loc.nameDir), loc.version, true);
  if (otherVersion) {
    throw new BoxsigError(
      'EXISTS',
      `${loc.name} ${loc.version} is already installed as version ${otherVersion}, which Vagrant does not tell apart from ${loc.version}`,
      { directory: path.join(loc.nameDir, otherVersion) },
      `remove it first: vagrant box remove ${loc.name} --box-version ${otherVersion}`,
    );
  }
  if (loc.archDir !== undefined) {
    const otherArch = otherSpelling(entries(loc.versionDir), loc.architecture!, false);
    if (otherArch) {
      throw refuse('UNSAFE_ENTRY', `architecture ${loc.architecture} of ${loc.name} ${loc.version} would share a directory with ${otherArch}`, {
        path: path.join(loc.versionDir, otherArch),
      });
    }
  }
  const parent = path.dirname(loc.directory);
  const otherProvider = otherSpelling(entries(parent), loc.provider, false);
  if (otherProvider) {
    throw refuse('UNSAFE_ENTRY', `provider ${loc.provider} of ${loc.name} ${loc.version} would share a directory with ${otherProvider}`, {
      path: path.join(parent, otherProvider),
    });
  }
  checkNotNested(loc);
}

/**
 * Vagrant 2.4's `BoxCollection#find` for one version (lib/vagrant/box_collection.rb):
 * with an explicit architecture only `VERSION/ARCH/PROVIDER`; with `auto`
 * (architecture undefined) the host's `VERSION/HOST/PROVIDER`, else the
 * legacy `VERSION/PROVIDER`. Returns the location whose directory holds a
 * metadata.json, or null.
 */
export function findInstalled(home: string, box: BoxPlace, host: string): BoxLocation | null {
  const candidates = box.architecture !== undefined ? [box.architecture] : [host, undefined];
  for (const architecture of candidates) {
    const loc = boxLocation(home, { name: box.name, version: box.version, provider: box.provider, ...(architecture !== undefined ? { architecture } : {}) });
    checkNoLinks(loc);
    if (hasMetadata(loc.directory)) return loc;
  }
  return null;
}

export interface InstalledBox {
  name: string;
  version: string;
  provider: string;
  architecture?: string;
  directory: string;
}

/** Something in `boxes/` that is not a box Vagrant would list the way its path says. */
export interface UnexpectedEntry {
  /** Path relative to `boxes/`. */
  entry: string;
  /** The box name Vagrant would list for the entry's top-level directory. */
  name: string;
  problem: string;
}

export interface InstalledScan {
  boxes: InstalledBox[];
  unexpected: UnexpectedEntry[];
}

function kindProblem(st: fs.Stats): string | null {
  if (st.isSymbolicLink()) return 'is a symbolic link (Vagrant follows it; boxsig never does)';
  if (!st.isDirectory()) return 'is not a directory';
  return null;
}

function sortedDir(p: string): fs.Dirent[] {
  return fs.readdirSync(p, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function hasMetadata(dir: string): boolean {
  const st = lstatOrNull(path.join(dir, 'metadata.json'));
  return st !== null && !st.isDirectory();
}

/**
 * Every box in the Vagrant home, and every entry that does not belong there:
 * links (never followed), files where directories belong, directories whose
 * names are not a valid name, version, architecture or provider, and boxes
 * inside other boxes. The walk is Vagrant 2.4's `BoxCollection#all`: under a
 * version, each directory holding a metadata.json is a box of that provider
 * (the legacy layout), and each of its child directories holding one is a
 * box of that architecture. Empty version and architecture directories (what
 * `vagrant box remove` leaves) are not boxes and not problems.
 */
export function scanInstalled(home: string): InstalledScan {
  const root = boxesDir(home);
  const out: InstalledScan = { boxes: [], unexpected: [] };
  let top: fs.Dirent[];
  try {
    top = sortedDir(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const d of top) {
    const name = boxNameFromDir(d.name);
    const report = (rel: string, problem: string) => out.unexpected.push({ entry: rel, name, problem });
    const st = fs.lstatSync(path.join(root, d.name));
    const kind = kindProblem(st);
    if (kind) report(d.name, kind);
    else if (nameProblem(name) || boxDirName(name) !== d.name)
      report(d.name, `is not the directory of a valid box name (${nameProblem(name) ?? 'not its own spelling'})`);
    else scanName(root, d.name, name, out, report);
  }
  return out;
}

function scanName(root: string, nameDir: string, name: string, out: InstalledScan, report: (rel: string, problem: string) => void): void {
  for (const v of sortedDir(path.join(root, nameDir))) {
    const rel = `${nameDir}/${v.name}`;
    const st = fs.lstatSync(path.join(root, rel));
    if (v.name === 'metadata_url' && st.isFile()) continue;
    const kind = kindProblem(st);
    if (kind) report(rel, kind);
    else if (versionProblem(v.name)) report(rel, `is not a valid version directory (${versionProblem(v.name)})`);
    else scanVersion(root, rel, name, v.name, out, report);
  }
}

function scanVersion(
  root: string,
  versionRel: string,
  name: string,
  version: string,
  out: InstalledScan,
  report: (rel: string, problem: string) => void,
): void {
  for (const level of sortedDir(path.join(root, versionRel))) {
    const rel = `${versionRel}/${level.name}`;
    const abs = path.join(root, rel);
    const kind = kindProblem(fs.lstatSync(abs));
    if (kind) report(rel, kind);
    else if (hasMetadata(abs)) {
      if (providerProblem(level.name)) report(rel, `is not a valid provider directory (${providerProblem(level.name)})`);
      else out.boxes.push({ name, version, provider: level.name, directory: abs });
      // Vagrant 2.4 also lists the boxes in it as boxes of architecture `level.name`
      for (const inner of boxesIn(abs)) report(`${rel}/${inner}`, `is a box inside the box ${rel} (Vagrant 2.4 lists it as architecture ${level.name})`);
    } else if (architectureProblem(level.name)) report(rel, 'holds no metadata.json and is not a valid architecture directory');
    else scanArchitecture(root, rel, name, version, level.name, out, report);
  }
}

function scanArchitecture(
  root: string,
  archRel: string,
  name: string,
  version: string,
  architecture: string,
  out: InstalledScan,
  report: (rel: string, problem: string) => void,
): void {
  for (const p of sortedDir(path.join(root, archRel))) {
    const rel = `${archRel}/${p.name}`;
    const abs = path.join(root, rel);
    const kind = kindProblem(fs.lstatSync(abs));
    if (kind) report(rel, kind);
    else if (!hasMetadata(abs)) report(rel, 'is neither a box (no metadata.json) nor an architecture directory');
    else if (providerProblem(p.name)) report(rel, `is not a valid provider directory (${providerProblem(p.name)})`);
    else out.boxes.push({ name, version, provider: p.name, architecture, directory: abs });
  }
}

/** The installed boxes (without the entries that are not boxes). */
export function listInstalled(home: string): InstalledBox[] {
  return scanInstalled(home).boxes;
}
