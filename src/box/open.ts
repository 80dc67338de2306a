/**
 * Opening a box file named by the user: the one place every command (verify,
 * inspect, sign, strip, add of a local file, publish) goes through, so that
 * the same mistake gets the same answer everywhere:
 *
 * | the file is…            | code  | message                                   |
 * |-------------------------|-------|-------------------------------------------|
 * | missing                 | USAGE | `F: no such file`                         |
 * | a directory             | USAGE | `F: is a directory, not a box file`       |
 * | a device, FIFO, socket  | USAGE | `F: not a regular file`                   |
 * | unreadable (permission) | IO    | `cannot read F: …`                        |
 * | empty, not tar, not gzip of tar | MALFORMED (from the archive reader, the same pass for all) |
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { BoxsigError, ioError, usage } from '../errors.js';
import { CHUNK_SIZE } from '../archive/limits.js';

/** Check that FILE is a readable regular file and return its size; cheap, before any key is unlocked. */
export function boxFileSize(file: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw openProblem(file, e);
  }
  if (st.isDirectory()) throw usage(`${file}: is a directory, not a box file`, { path: file });
  if (!st.isFile()) throw usage(`${file}: not a regular file`, { path: file });
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
  if (code === 'ENOENT') return usage(`${file}: no such file`, { path: file });
  if (code === 'ENOTDIR') return usage(`${file}: no such file (a parent is not a directory)`, { path: file });
  return ioError(`cannot read ${file}`, e);
}
