/**
 * A cross-process lock for the trust store: an O_EXCL lock file holding the
 * owner's pid and a random token. A lock whose owner died (SIGKILL) is broken
 * by renaming it aside (atomic: one breaker wins), and every writer checks that
 * it still owns the lock right before it commits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BoxsigError } from '../errors.js';

interface LockInfo {
  pid: number;
  token: string;
  host: string;
  time: number;
}

const STALE_MS = 60_000;

/** Whether a process with this pid exists (on this host). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readInfo(file: string): LockInfo | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    if (typeof v.pid === 'number' && typeof v.token === 'string') return v;
    return null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FileLock {
  private token: string | null = null;

  constructor(readonly file: string) {}

  async acquire(timeoutMs = 60_000): Promise<void> {
    const token = randomBytes(12).toString('hex');
    const info: LockInfo = { pid: process.pid, token, host: os.hostname(), time: Date.now() };
    const start = Date.now();
    let delay = 2;
    for (;;) {
      try {
        const fd = fs.openSync(this.file, 'wx', 0o600);
        try {
          fs.writeSync(fd, JSON.stringify(info));
        } finally {
          fs.closeSync(fd);
        }
        this.token = token;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new BoxsigError('IO', `cannot create lock ${this.file}: ${(e as Error).message}`);
        }
      }
      this.breakIfStale();
      if (Date.now() - start > timeoutMs) {
        const owner = readInfo(this.file);
        throw new BoxsigError(
          'IO',
          `the trust store is locked by process ${owner?.pid ?? '?'} (${this.file}); try again, or remove the file if no boxsig is running`,
        );
      }
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  private breakIfStale(): void {
    const owner = readInfo(this.file);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.file);
    } catch {
      return; // released meanwhile
    }
    const sameHost = owner ? owner.host === os.hostname() : true;
    const stale = owner ? (sameHost && !processAlive(owner.pid)) || Date.now() - owner.time > STALE_MS : Date.now() - stat.mtimeMs > 5_000; // unreadable: a writer died between create and write
    if (!stale) return;
    const aside = `${this.file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(this.file, aside);
    } catch {
      return; // someone else broke it first
    }
    const moved = readInfo(aside);
    if (owner && moved && moved.token !== owner.token) {
      // We moved a live lock taken after our check: put it back if the slot is still free.
      try {
        fs.linkSync(aside, this.file);
      } catch {
        /* its owner will notice at commit (assertHeld) and retry */
      }
    }
    fs.rmSync(aside, { force: true });
  }

  /** Throws if the lock was lost (broken by another process). */
  assertHeld(): void {
    const cur = readInfo(this.file);
    if (!this.token || !cur || cur.token !== this.token) {
      throw new BoxsigError('IO', 'lost the trust-store lock', { retry: true });
    }
  }

  release(): void {
    if (!this.token) return;
    const cur = readInfo(this.file);
    if (cur && cur.token === this.token) fs.rmSync(this.file, { force: true });
    this.token = null;
  }
}

/** Write a file atomically: temporary file, fsync, rename, fsync the directory. */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
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
