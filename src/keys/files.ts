/**
 * Every write of key material — secret keys, public keys, revocation
 * certificates, the keyring — goes through `writeKeyFile`:
 *
 * - the data goes to a new temporary file next to the target, created
 *   exclusively (O_EXCL) without following a symlink (O_NOFOLLOW), with its
 *   final mode from the first byte (0600 for secret material);
 * - it is flushed (fsync), then renamed over the target — rename replaces a
 *   symlink planted at the target instead of writing through it, and the
 *   target gets the new file's mode, so a world-readable file does not stay
 *   world-readable — or, for a file that must not exist yet, linked into
 *   place (atomic: a file created meanwhile is never replaced);
 * - the directory is flushed; on any failure the temporary file is removed.
 *
 * A kill at any instant leaves either the old file or the new one, never a
 * half-written key; only a temporary `.NAME.tmp-*` file may remain.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir, KEY_FILE_LIMIT, readCapped, TooLarge } from '../shared/files.js';
import { BoxsigError, ioError, usage } from '../errors.js';

export interface WriteOptions {
  /** secret material: mode 0600 (default: 0644) */
  secret?: boolean;
  /** refuse (EXISTS) when the target exists, instead of replacing it */
  exclusive?: boolean;
  /** mode to use instead of the default */
  mode?: number;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

function writeTemp(tmp: string, data: Uint8Array, mode: number): void {
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    fs.fchmodSync(fd, mode);
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Write key material atomically (see the module comment). */
export function writeKeyFile(file: string, data: string | Uint8Array, opts: WriteOptions = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const mode = opts.mode ?? (opts.secret ? 0o600 : 0o644);
  const tmp = tempName(file);
  try {
    writeTemp(tmp, bytes, mode);
    if (opts.exclusive) fs.linkSync(tmp, file);
    else fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new BoxsigError('EXISTS', `${file} already exists`, { file });
    throw ioError(`cannot write ${file}`, e);
  }
  if (opts.exclusive) fs.rmSync(tmp, { force: true });
  fsyncDir(file);
}

/** Existing paths among `files` (a symlink counts, even a dangling one). */
export function existing(files: string[]): string[] {
  return files.filter((f) => {
    try {
      fs.lstatSync(f);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Write several new files, all or nothing: every target is checked before
 * any is written, each is created exclusively, and if one fails the ones
 * already written are removed.
 */
export function writeNewKeyFiles(files: Array<{ file: string; data: string | Uint8Array; secret?: boolean }>): void {
  const taken = existing(files.map((f) => f.file));
  if (taken.length) {
    throw new BoxsigError('EXISTS', `${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}; nothing was written (choose another --out)`, {
      files: taken,
    });
  }
  const done: string[] = [];
  try {
    for (const f of files) {
      writeKeyFile(f.file, f.data, { secret: f.secret, exclusive: true });
      done.push(f.file);
    }
  } catch (e) {
    for (const d of done) fs.rmSync(d, { force: true });
    throw e;
  }
}

/**
 * Every read of a key file, revocation or certificate named on the command
 * line: at most KEY_FILE_LIMIT bytes are read (a device such as /dev/zero or
 * a FIFO never ends), larger is a usage error, as is a file that cannot be read.
 */
export function readKeyFile(file: string | 0, what: string): Buffer {
  try {
    return readCapped(file, KEY_FILE_LIMIT);
  } catch (e) {
    if (e instanceof TooLarge) throw usage(`${what} is larger than ${KEY_FILE_LIMIT / 1024 / 1024} MiB: not a key file`);
    throw usage(`cannot read ${what}: ${(e as Error).message}`);
  }
}
