/**
 * Staging and the install transaction of `boxsig add`, and the recovery of
 * transactions that a dead process left half-way.
 *
 * An add works in `<staging root>/boxsig-add-<pid>-<random>/` (Vagrant's
 * `tmp/`, on the same file system as `boxes/`):
 *
 *   box/           the box being extracted and verified
 *   tree/          `<name dir>/<version>[/<arch>]/<provider>` (and `metadata_url`) built
 *                  for the one rename that makes the box visible
 *   metadata_url   for a name that already has a directory: renamed over the
 *                  old one just before the box moves in
 *   journal.json   written (atomically) before the first change under `boxes/`:
 *                  the target, whether a box is replaced, the metadata_url
 *                  written and the one it replaced
 *   parked/        the installed box being replaced (`add --force`)
 *
 * The transaction has finished when the target exists and, for a replace,
 * the old box is parked. `settle` looks at exactly that: a finished
 * transaction is completed (the parked box is deleted), an unfinished one is
 * rolled back (the parked box goes back, the old metadata_url is restored).
 * It is used when an install fails, when the process is interrupted, and by
 * the recovery step of every later command for directories of processes that
 * no longer exist.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BoxsigError, ioError } from '../errors.js';
import { removeTree } from '../interrupt.js';
import { processAlive } from '../shared/files.js';
import { makeDirs } from '../shared/files.js';
import { boxesDir, boxLocation, checkLocation, checkNoLinks, describeBox, type BoxLocation, type BoxPlace } from './home.js';

const STAGING_RE = /^boxsig-add-(\d+)-[0-9a-f]+$/;
const JOURNAL = 'journal.json';

/**
 * The journal names the box, never a path: recovery derives every path from
 * the identity through boxLocation (the one choke point), so a journal
 * planted or altered in a shared Vagrant home cannot point anywhere else
 * than the box directory and its name directory's metadata_url.
 */
interface Journal {
  format: 2;
  /** the box being installed */
  box: BoxPlace;
  /** an installed box was moved to parked/ */
  replace: boolean;
  /** metadata_url renamed into an existing name directory: the text written and the one it replaced */
  metadataUrl: { value: string; previous: string | null } | null;
}

/** A journal with the paths it stands for, derived from its box identity. */
interface Transaction {
  journal: Journal;
  loc: BoxLocation;
  metadataUrlFile: string;
}

/** Where boxsig stages an add: Vagrant's tmp directory when it is on the same file system as boxes/. */
export function stagingRoot(home: string): string {
  const tmp = path.join(home, 'tmp');
  homeDirs(home, tmp);
  homeDirs(home, boxesDir(home));
  if (fs.statSync(tmp).dev !== fs.statSync(boxesDir(home)).dev) {
    // a tmp on another file system cannot be renamed into boxes/: stage beside boxes/
    const alt = path.join(home, '.boxsig-staging');
    homeDirs(home, alt);
    return alt;
  }
  return tmp;
}

/** A directory of the Vagrant home, made level by level: a home that is not a plain directory tree (/proc, a file) is a configuration error. */
function homeDirs(home: string, dir: string): void {
  try {
    makeDirs(dir);
  } catch (e) {
    throw new BoxsigError('CONFIG', `the Vagrant home ${home} is not a plain directory tree: cannot make ${dir} (${(e as Error).message})`, {
      home,
    });
  }
}

/** Both places a staging directory can be, whether or not they exist. */
function stagingRoots(home: string): string[] {
  return [path.join(home, 'tmp'), path.join(home, '.boxsig-staging')];
}

/** The name of a new staging directory of this process, not yet made (see makeStagingDir). */
export function stagingName(root: string): string {
  return path.join(root, `boxsig-add-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Make the staging directory, this user's alone (0700) while the box is
 * checked, with its box/. That takes two mkdirs: the caller registers its
 * cleanup first, and a failure between them removes what was made.
 */
export function makeStagingDir(dir: string): void {
  try {
    makeDirs(path.join(dir, 'box'), 0o700);
  } catch (e) {
    removeTree(dir);
    throw e;
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function fsyncPath(p: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
  } catch {
    // not every file system can sync a directory
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

function writeSynced(file: string, data: string): void {
  const fd = fs.openSync(file, 'wx', 0o644);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** The journal's shape, checked field by field (it is read back from disk: untrusted). */
function journalShape(v: unknown): Journal | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const j = v as Record<string, unknown>;
  const b = j.box as Record<string, unknown> | null;
  if (j.format !== 2 || typeof j.replace !== 'boolean' || b === null || typeof b !== 'object') return null;
  if (!isString(b.name) || !isString(b.version) || !isString(b.provider) || (b.architecture !== undefined && !isString(b.architecture))) return null;
  const m = j.metadataUrl as Record<string, unknown> | null;
  if (m !== null && (typeof m !== 'object' || !isString(m.value) || (m.previous !== null && !isString(m.previous)))) return null;
  const box: BoxPlace = { name: b.name, version: b.version, provider: b.provider, ...(isString(b.architecture) ? { architecture: b.architecture } : {}) };
  return { format: 2, box, replace: j.replace, metadataUrl: m === null ? null : { value: m.value as string, previous: m.previous as string | null } };
}

/** The journal of a staging directory and its paths, or null when there is none or it names no valid box. */
function readTransaction(staging: string, home: string): Transaction | null {
  const text = readText(path.join(staging, JOURNAL));
  if (text === null) return null;
  let journal: Journal | null;
  try {
    journal = journalShape(JSON.parse(text));
  } catch {
    return null; // a journal that was never renamed into place is never read: this one is whole or absent
  }
  if (!journal) return null;
  try {
    const loc = boxLocation(home, journal.box);
    checkNoLinks(loc);
    return { journal, loc, metadataUrlFile: path.join(loc.nameDir, 'metadata_url') };
  } catch {
    return null; // names no box boxsig could have installed: nothing to undo
  }
}

function ignoreMissing(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
  }
}

/** Put back what an unfinished transaction changed: the parked box, the previous metadata_url. */
function undo(staging: string, t: Transaction): void {
  const parked = path.join(staging, 'parked');
  const target = t.loc.directory;
  if (t.journal.replace && isPlainDirectory(parked) && !exists(target)) {
    makeDirs(path.dirname(target));
    ignoreMissing(() => fs.renameSync(parked, target));
  }
  const m = t.journal.metadataUrl;
  const file = t.metadataUrlFile;
  if (m && readText(file) === m.value) {
    if (m.previous === null) ignoreMissing(() => fs.rmSync(file));
    else {
      const back = path.join(staging, 'metadata_url.previous');
      fs.rmSync(back, { force: true });
      writeSynced(back, m.previous);
      ignoreMissing(() => fs.renameSync(back, file));
    }
  }
}

function isPlainDirectory(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A staging directory recovery may act on: a real directory (not a link) that this user owns. */
function ownStagingDir(p: string): boolean {
  try {
    const st = fs.lstatSync(p);
    return st.isDirectory() && (typeof process.getuid !== 'function' || st.uid === process.getuid());
  } catch {
    return false;
  }
}

/**
 * Complete or roll back the transaction of a staging directory, then delete
 * the directory. Returns what it did.
 */
export function settle(staging: string, home: string): 'none' | 'completed' | 'rolled back' {
  const t = readTransaction(staging, home);
  let outcome: 'none' | 'completed' | 'rolled back' = 'none';
  if (t) {
    const finished = exists(t.loc.directory) && (!t.journal.replace || exists(path.join(staging, 'parked')));
    outcome = finished ? 'completed' : 'rolled back';
    if (!finished) undo(staging, t);
  }
  removeTree(staging);
  return outcome;
}

export interface RecoveryAction {
  staging: string;
  outcome: 'none' | 'completed' | 'rolled back';
}

/**
 * The recovery step for the Vagrant home: settle every staging directory of
 * a boxsig process that no longer exists. Creates nothing.
 */
export function recoverVagrantHome(home: string): RecoveryAction[] {
  const done: RecoveryAction[] = [];
  for (const root of stagingRoots(home)) {
    let names: string[];
    try {
      names = fs.readdirSync(root);
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      const m = STAGING_RE.exec(n);
      if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
      const staging = path.join(root, n);
      if (!ownStagingDir(staging)) continue; // another user's, or a link: never acted on
      done.push({ staging, outcome: settle(staging, home) });
    }
  }
  return done;
}

/**
 * Move the verified box (in `<staging>/box`) into place with one rename of
 * the highest level that does not exist yet (name, version, architecture or
 * provider directory), writing `metadata_url` with it. With `force`, the
 * installed box is parked first and deleted when the staging directory is.
 * Any failure rolls back before it is thrown. Returns whether a box was
 * replaced.
 */
export function installBox(staging: string, home: string, loc: BoxLocation, opts: { force: boolean; metadataUrl: string | null }): boolean {
  checkLocation(loc);
  const replace = exists(loc.directory);
  if (replace && !opts.force) {
    throw new BoxsigError('EXISTS', `box ${describeBox(loc)} is already installed at ${loc.directory}`, {
      directory: loc.directory,
    });
  }
  // the same levels under <staging>/tree, then one rename of the first level that does not exist
  const first = loc.levels.findIndex((l) => !exists(l));
  const level = first === -1 ? loc.levels.length - 1 : first;
  const tree = loc.levels.map((l) => path.join(staging, 'tree', path.relative(loc.root, l)));
  const tName = tree[0];
  makeDirs(path.dirname(tree[tree.length - 1]));
  // the provider directory gets the mode Vagrant's own add gives it (0777 less the umask, as the levels just made), not staging's 0700
  fs.chmodSync(path.join(staging, 'box'), fs.statSync(path.dirname(tree[tree.length - 1])).mode & 0o777);
  fs.renameSync(path.join(staging, 'box'), tree[tree.length - 1]);
  let metadataUrl: Journal['metadataUrl'] = null;
  const metadataUrlFile = path.join(loc.nameDir, 'metadata_url');
  if (opts.metadataUrl !== null) {
    if (level === 0) writeSynced(path.join(tName, 'metadata_url'), opts.metadataUrl);
    else {
      metadataUrl = { value: opts.metadataUrl, previous: readText(metadataUrlFile) };
      writeSynced(path.join(staging, 'metadata_url'), opts.metadataUrl);
    }
  }
  const box: BoxPlace = {
    name: loc.name,
    version: loc.version,
    provider: loc.provider,
    ...(loc.architecture !== undefined ? { architecture: loc.architecture } : {}),
  };
  const journal: Journal = { format: 2, box, replace, metadataUrl };
  const transaction: Transaction = { journal, loc: boxLocation(home, box), metadataUrlFile };
  writeSynced(path.join(staging, `${JOURNAL}.new`), JSON.stringify(journal));
  fs.renameSync(path.join(staging, `${JOURNAL}.new`), path.join(staging, JOURNAL));
  fsyncPath(staging);
  try {
    if (metadataUrl) fs.renameSync(path.join(staging, 'metadata_url'), metadataUrlFile);
    if (replace) fs.renameSync(loc.directory, path.join(staging, 'parked'));
    const [from, to] = [tree[level], loc.levels[level]];
    fs.renameSync(from, to);
    fsyncPath(path.dirname(to));
  } catch (e) {
    undo(staging, transaction);
    fs.rmSync(path.join(staging, JOURNAL), { force: true });
    throw ioError(`cannot move the box into ${loc.directory}`, e);
  }
  return replace;
}
