/**
 * File-system helpers used by every layer: a file read with a cap on what is
 * read (a device or a FIFO never ends), a byte range read whole, a directory
 * tree made one level at a time (Node's recursive mkdir loops forever where
 * mkdir answers ENOENT under an existing parent, as in /proc), atomic writes
 * (temporary file, fsync, rename, fsync the directory) and the names of
 * temporary files, which carry the writer's pid so that the next process can
 * remove what a killed one left.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BoxsigError, describeCause, refuse } from '../errors.js';

/** What a key file, a revocation or a certificate read from a path may hold. */
export const KEY_FILE_LIMIT = 16 * 1024 * 1024;

export class TooLarge extends Error {}

/** Read at most `limit` bytes of `file` (a path, or 0 for stdin); TooLarge if there is more. */
export function readCapped(file: string | 0, limit: number): Buffer {
  const fd = file === 0 ? 0 : fs.openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(1024 * 1024, limit + 1 - total));
      const n = readSome(fd, buf);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > limit) throw new TooLarge(`${file === 0 ? 'standard input' : file} is larger than ${limit} bytes`);
    }
    return Buffer.concat(chunks);
  } finally {
    if (file !== 0) fs.closeSync(fd);
  }
}

function readSome(fd: number, buf: Buffer): number {
  for (;;) {
    try {
      return fs.readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue; // a non-blocking stdin
      if ((e as NodeJS.ErrnoException).code === 'EOF') return 0;
      throw e;
    }
  }
}

/**
 * `mkdir -p` one level at a time: each existing level must be a directory
 * (links to one are followed), each missing one is made with mkdir; an error
 * is thrown as it comes, never retried.
 */
export function makeDirs(dir: string, mode?: number): void {
  const target = path.resolve(dir);
  try {
    makeEachLevel(target, mode);
  } catch (e) {
    // one refusal for every way a directory cannot be made (a file or a dangling link in the way, a link loop, a path too long)
    if (e instanceof BoxsigError || typeof (e as NodeJS.ErrnoException)?.code !== 'string') throw e;
    const shown = target.length > 200 ? `${target.slice(0, 100)}…${target.slice(-100)}` : target;
    const code = (e as NodeJS.ErrnoException).code!;
    const reason = (e as Error).message.length > 300 ? code : describeCause(e);
    throw new BoxsigError('IO', `cannot create the directory ${shown}: ${reason}`, { errno: code, path: shown });
  }
}

function makeEachLevel(target: string, mode?: number): void {
  const missing: string[] = [];
  let p = target;
  for (;;) {
    const st = statOrNull(p);
    if (st && !st.isDirectory()) throw Object.assign(new Error(`${p} is not a directory`), { code: 'ENOTDIR' });
    if (st) break;
    missing.push(p);
    const parent = path.dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (const m of missing.reverse()) {
    try {
      fs.mkdirSync(m, mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!statOrNull(m)?.isDirectory())
        throw Object.assign(new Error(`${m} exists and is not a directory (a file, or a link to nothing)`), { code: 'EEXIST' });
    }
  }
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Read exactly `length` bytes of `file` from `start`; a file that ends before is MALFORMED (`short` says why). */
export async function readRange(file: string, start: number, length: number, short: string): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    let off = 0;
    while (off < length) {
      const { bytesRead } = await fh.read(buf, off, length - off, start + off);
      if (bytesRead === 0) throw refuse('MALFORMED', short);
      off += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** `<file>.<kind>-<pid>-<8 hex>`: the name of a temporary file or a lock set aside by process `pid`. */
export function scratchName(file: string, kind: 'tmp' | 'new' | 'stale'): string {
  return `${file}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Write a file atomically: temporary file, fsync, rename, fsync the directory.
 * The temporary file is written beside the file, or in `tmpDir` (on the same
 * file system), where the recovery step looks for what dead processes left.
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644, tmpDir?: string): void {
  const tmp = scratchName(tmpDir ? path.join(tmpDir, path.basename(file)) : file, 'tmp');
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(file);
}

export function fsyncDir(file: string): void {
  const dir = path.dirname(file);
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // not supported on every platform
  }
}

/** Whether a process with this pid exists (on this host). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The temporary file boxsig writes next to `target` before renaming it into
 * place: `.<name>.boxsig-<pid>-<random>.tmp` in the same directory.
 */
export function tempSibling(target: string, random: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.boxsig-${process.pid}-${random}.tmp`);
}

/**
 * Remove temporary siblings of `target` left by boxsig processes that no
 * longer exist (killed with SIGKILL, or by a power cut). Returns their paths.
 */
export function removeStaleSiblings(target: string): string[] {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.boxsig-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]+\.tmp$/.exec(n.slice(prefix.length));
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(dir, n), { force: true });
    removed.push(path.join(dir, n));
  }
  return removed;
}
