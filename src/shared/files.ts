/**
 * File-system helpers for inputs boxsig does not control: a file read with a
 * cap on what is read (a device or a FIFO never ends), and a directory tree
 * made one level at a time (Node's recursive mkdir loops forever where mkdir
 * answers ENOENT under an existing parent, as in /proc).
 */
import fs from 'node:fs';
import path from 'node:path';

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
  const missing: string[] = [];
  let p = path.resolve(dir);
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
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !statOrNull(m)?.isDirectory()) throw e;
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
