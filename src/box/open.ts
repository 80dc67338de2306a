/**
 * Opening a box file named by the user: the one place every command (verify,
 * inspect, sign, strip, add of a local file, publish) goes through, so that
 * the same mistake gets the same answer everywhere:
 *
 * | the file is…            | code | message                                   |
 * |-------------------------|------|-------------------------------------------|
 * | missing                 | IO   | `F: no such file`                         |
 * | a directory             | IO   | `F: is a directory, not a box file`       |
 * | a device, FIFO, socket  | IO   | `F: not a regular file`                   |
 * | unreadable (permission) | IO   | `cannot read F: …`                        |
 * | empty, not tar, not gzip of tar | MALFORMED (from the archive reader, the same pass for all) |
 *
 * A box file that cannot be opened is an I/O failure (exit 3), as the library
 * has always reported a missing box; `details.errno` says which.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { BoxsigError, ioError } from '../errors.js';
import { CHUNK_SIZE } from '../shared/limits.js';

/** Check that FILE is a readable regular file and return its size; cheap, before any key is unlocked. */
export function boxFileSize(file: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw openProblem(file, e);
  }
  if (st.isDirectory()) throw new BoxsigError('IO', `${file}: is a directory, not a box file`, { path: file, errno: 'EISDIR' });
  if (!st.isFile()) throw new BoxsigError('IO', `${file}: not a regular file`, { path: file });
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw openProblem(file, e);
  }
  return st.size;
}

/** A read stream over the box FILE, after the checks of boxFileSize. */
export function openBox(file: string): Readable {
  boxFileSize(file);
  return fs.createReadStream(file, { highWaterMark: CHUNK_SIZE });
}

function openProblem(file: string, e: unknown): BoxsigError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new BoxsigError('IO', `${file}: no such file`, { path: file, errno: code });
  return ioError(`cannot read ${file}`, e);
}
