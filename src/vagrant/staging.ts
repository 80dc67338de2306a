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
import { processAlive, removeTree } from '../interrupt.js';
import { boxesDir, checkLocation, describeBox, type BoxLocation } from './home.js';

const STAGING_RE = /^boxsig-add-(\d+)-[0-9a-f]+$/;
const JOURNAL = 'journal.json';

interface Journal {
  format: 1;
  /** the box directory under boxes/ */
  target: string;
  /** an installed box was moved to parked/ */
  replace: boolean;
  /** metadata_url renamed into an existing name directory */
  metadataUrl: { file: string; value: string; previous: string | null } | null;
}

/** Where boxsig stages an add: Vagrant's tmp directory when it is on the same file system as boxes/. */
export function stagingRoot(home: string): string {
  const tmp = path.join(home, 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  fs.mkdirSync(boxesDir(home), { recursive: true });
  if (fs.statSync(tmp).dev !== fs.statSync(boxesDir(home)).dev) {
    // a tmp on another file system cannot be renamed into boxes/: stage beside boxes/
    const alt = path.join(home, '.boxsig-staging');
    fs.mkdirSync(alt, { recursive: true });
    return alt;
  }
  return tmp;
}

/** Both places a staging directory can be, whether or not they exist. */
function stagingRoots(home: string): string[] {
  return [path.join(home, 'tmp'), path.join(home, '.boxsig-staging')];
}

export function newStagingDir(root: string): string {
  const dir = path.join(root, `boxsig-add-${process.pid}-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(path.join(dir, 'box'), { recursive: true, mode: 0o700 });
  return dir;
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

function readJournal(staging: string): Journal | null {
  const text = readText(path.join(staging, JOURNAL));
  if (text === null) return null;
  try {
    const j = JSON.parse(text) as Journal;
    return j && j.format === 1 && typeof j.target === 'string' ? j : null;
  } catch {
    return null; // a journal that was never renamed into place is never read: this one is whole or absent
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
function undo(staging: string, j: Journal): void {
  const parked = path.join(staging, 'parked');
  if (j.replace && exists(parked) && !exists(j.target)) {
    fs.mkdirSync(path.dirname(j.target), { recursive: true });
    ignoreMissing(() => fs.renameSync(parked, j.target));
  }
  const m = j.metadataUrl;
  if (m && readText(m.file) === m.value) {
    if (m.previous === null) ignoreMissing(() => fs.rmSync(m.file));
    else {
      const back = path.join(staging, 'metadata_url.previous');
      fs.rmSync(back, { force: true });
      writeSynced(back, m.previous);
      ignoreMissing(() => fs.renameSync(back, m.file));
    }
  }
}

/**
 * Complete or roll back the transaction of a staging directory, then delete
 * the directory. Returns what it did.
 */
export function settle(staging: string): 'none' | 'completed' | 'rolled back' {
  const j = readJournal(staging);
  let outcome: 'none' | 'completed' | 'rolled back' = 'none';
  if (j) {
    const finished = exists(j.target) && (!j.replace || exists(path.join(staging, 'parked')));
    outcome = finished ? 'completed' : 'rolled back';
    if (!finished) undo(staging, j);
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
      done.push({ staging, outcome: settle(staging) });
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
export function installBox(staging: string, loc: BoxLocation, opts: { force: boolean; metadataUrl: string | null }): boolean {
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
  fs.mkdirSync(path.dirname(tree[tree.length - 1]), { recursive: true });
  fs.renameSync(path.join(staging, 'box'), tree[tree.length - 1]);
  let metadataUrl: Journal['metadataUrl'] = null;
  if (opts.metadataUrl !== null) {
    if (level === 0) writeSynced(path.join(tName, 'metadata_url'), opts.metadataUrl);
    else {
      const file = path.join(loc.nameDir, 'metadata_url');
      metadataUrl = { file, value: opts.metadataUrl, previous: readText(file) };
      writeSynced(path.join(staging, 'metadata_url'), opts.metadataUrl);
    }
  }
  const journal: Journal = { format: 1, target: loc.directory, replace, metadataUrl };
  writeSynced(path.join(staging, `${JOURNAL}.new`), JSON.stringify(journal));
  fs.renameSync(path.join(staging, `${JOURNAL}.new`), path.join(staging, JOURNAL));
  fsyncPath(staging);
  try {
    if (metadataUrl) fs.renameSync(path.join(staging, 'metadata_url'), metadataUrl.file);
    if (replace) fs.renameSync(loc.directory, path.join(staging, 'parked'));
    const [from, to] = [tree[level], loc.levels[level]];
    fs.renameSync(from, to);
    fsyncPath(path.dirname(to));
  } catch (e) {
    undo(staging, journal);
    fs.rmSync(path.join(staging, JOURNAL), { force: true });
    throw ioError(`cannot move the box into ${loc.directory}`, e);
  }
  return replace;
}
