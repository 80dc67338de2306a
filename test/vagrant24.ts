/**
 * What Vagrant 2.4 reads in `$VAGRANT_HOME/boxes`, reimplemented line for
 * line from hashicorp/vagrant's lib/vagrant/box_collection.rb (v2.4.x, read
 * at commit 35f3160f4ad6edc3a9f3aa9570adfc1a4d73aaa5), so that the layout
 * boxsig installs can be tested against it on machines where Vagrant 2.4
 * cannot be installed. Line numbers below are that file's.
 *
 * When BOXSIG_VAGRANT24_BOX_COLLECTION names that file (from a checkout of
 * Vagrant 2.4), test/vagrant24/box_collection_harness.rb loads the real one
 * with stubs for the rest of Vagrant, and the tests compare both.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { compareVersions, parseConstraints, satisfies } from '../src/shared/version.js';

export type ListedBox = [name: string, version: string, provider: string, architecture: string | null];

const VAGRANT_SLASH = '-VAGRANTSLASH-';
const VAGRANT_COLON = '-VAGRANTCOLON-';

/** `dir_name` (lines 469-475; Windows-only colon escape left out). */
function dirName(name: string): string {
  return name.replaceAll('/', VAGRANT_SLASH);
}

/** `undir_name` (lines 477-482). */
function undirName(name: string): string {
  return name.replaceAll(VAGRANT_COLON, ':').replaceAll(VAGRANT_SLASH, '/');
}

/** Ruby's `Pathname#directory?` and `#file?`: they follow symbolic links. */
function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** `Pathname#children(true)`: readdir order, as Ruby gets it. */
function children(p: string): string[] {
  return fs.readdirSync(p).map((n) => path.join(p, n));
}

/** `Gem::Version.correct?` (RubyGems' ANCHORED_VERSION_PATTERN). */
const GEM_VERSION = /^\s*([0-9]+(?:\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?\s*$/;

/** `BoxCollection#all` (lines 226-305). `host` is `Util::Platform.architecture`. */
export function vagrant24All(boxes: string, host: string): ListedBox[] {
  const results: ListedBox[] = [];
  const includes = (b: ListedBox) => results.some((r) => r.every((x, i) => x === b[i]));
  for (const child of children(boxes)) {
    if (!isDir(child)) continue; // 238
    const boxName = undirName(path.basename(child)); // 240
    for (const versiondir of children(child)) {
      if (!isDir(versiondir)) continue; // 245
      if (path.basename(versiondir).startsWith('.')) continue; // 242
      const version = path.basename(versiondir);
      if (!GEM_VERSION.test(version)) continue; // 246-253
      for (const archOrProvider of children(versiondir)) {
        if (!isDir(archOrProvider)) continue; // 256-259
        const architectureName = path.basename(archOrProvider); // 262
        for (const provider of children(archOrProvider)) {
          if (!isDir(provider)) continue; // 266-269
          if (isFile(path.join(provider, 'metadata.json'))) results.push([boxName, version, path.basename(provider), architectureName]); // 272-276
        }
        // 279-291: a provider directory from before architecture support, unless the host's architecture already listed it
        if (isFile(path.join(archOrProvider, 'metadata.json'))) {
          const providerName = path.basename(archOrProvider);
          if (includes([boxName, version, providerName, host])) continue;
          results.push([boxName, version, providerName, null]);
        }
      }
    }
  }
  // 296-303
  return results.sort((a, b) => cmp(a[0], b[0]) || cmp(a[2], b[2]) || compareVersions(a[1], b[1]) || cmp(a[3] ?? '', b[3] ?? ''));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface FoundBox {
  name: string;
  provider: string;
  version: string;
  directory: string;
}

/**
 * `BoxCollection#find(name, providers, version, box_architecture)` (lines
 * 315-410): `architecture` is `'auto'` (Vagrant's `:auto`, the default),
 * an architecture name, or null (Ruby's nil).
 */
export function vagrant24Find(
  boxes: string,
  host: string,
  name: string,
  providers: string[],
  version: string,
  architecture: string | null = 'auto',
): FoundBox | null {
  const arch = architecture === 'auto' ? host : architecture; // 317-318
  const constraints = parseConstraints(version); // 321-328
  const boxDirectory = path.join(boxes, dirName(name)); // 331
  if (!isDir(boxDirectory)) return null;
  const versionDirMap = new Map<string, string>(); // 343
  const versions: string[] = [];
  for (const versiondir of children(boxDirectory)) {
    if (!isDir(versiondir)) continue; // 345
    if (path.basename(versiondir).startsWith('.')) continue; // 346
    versions.push(path.basename(versiondir));
    versionDirMap.set(path.basename(versiondir), path.basename(versiondir));
  }
  for (const v of versions.sort((a, b) => -compareVersions(a, b))) {
    // 354
    if (!satisfies(v, constraints)) continue;
    const versiondir = path.join(boxDirectory, versionDirMap.get(v)!);
    for (const provider of providers) {
      let providerdir = path.join(versiondir, arch ?? '', provider); // 363: nil.to_s is ""
      if (architecture === 'auto') {
        // 369-390
        if (!isDir(providerdir)) providerdir = path.join(versiondir, provider);
        if (isFile(path.join(providerdir, 'metadata.json'))) return { name, provider, version: v, directory: providerdir };
      }
      if (!isFile(path.join(providerdir, 'metadata.json'))) continue; // 393
      return { name, provider, version: v, directory: providerdir };
    }
  }
  return null;
}

/**
 * The real lib/vagrant/box_collection.rb of Vagrant 2.4, loaded with stubs,
 * when BOXSIG_VAGRANT24_BOX_COLLECTION names it; null otherwise. Returns its
 * `all` and the `find` of each query.
 */
export function realVagrant24(
  boxes: string,
  host: string,
  queries: Array<{ name: string; providers: string[]; version: string; architecture: string | null }>,
): { all: ListedBox[]; find: Array<FoundBox | null> } | null {
  const source = process.env.BOXSIG_VAGRANT24_BOX_COLLECTION;
  if (!source) return null;
  const harness = path.join(path.dirname(new URL(import.meta.url).pathname), 'vagrant24', 'box_collection_harness.rb');
  const r = spawnSync('ruby', [harness, source, boxes, host], { input: JSON.stringify(queries), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the Vagrant 2.4 harness failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
