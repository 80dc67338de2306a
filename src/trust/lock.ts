/**
 * A cross-process lock for the trust store: a lock file holding the owner's
 * pid and a random token. It appears whole or not at all: the owner record
 * is written to a temporary file that is then hard-linked to the lock's name
 * (which fails if the lock exists), so a lock is never empty or half-written.
 * A lock whose owner died (SIGKILL) is broken by renaming it aside (atomic:
 * one breaker wins), and every writer checks that it still owns the lock
 * right before it commits. A live owner on this host keeps its lock however
 * long it works (a slow disk, a long migration, a stopped process); a lock
 * of another host (a shared home) is broken when it has not been refreshed
 * for a minute, and its owner refreshes it while it works. Whatever a killed process leaves (temporary files,
 * a lock renamed aside) carries its pid in its name and is removed by the
 * next process that takes the lock.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BoxsigError } from '../errors.js';
import { processAlive, scratchName } from '../shared/files.js';

interface LockInfo {
  pid: number;
  token: string;
  host: string;
  time: number;
  /** When the owner process started (Linux), to tell it from a later process given the same pid. */
  start?: string | null;
}

/** A lock of another host not refreshed for this long is stale; its owner refreshes it every REFRESH_MS. */
const STALE_MS = 60_000;
const REFRESH_MS = 10_000;

/** The start time of a process (Linux: /proc/PID/stat field 22, in clock ticks since boot); null elsewhere. */
function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The owner of a lock of this host is still running (and is the same process, not a later one with its pid). */
function ownerAlive(owner: LockInfo): boolean {
  if (!processAlive(owner.pid)) return false;
  const now = owner.start ? processStart(owner.pid) : null;
  return !now || now === owner.start;
}

function modifiedMs(file: string): number | null {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

/** Matches every scratch name above, and the keys layer's `.<file>.tmp-<pid>-<hex>`. */
const SCRATCH = /\.(?:tmp|new|stale)-(\d+)-[0-9a-f]{6,32}$/;

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
  private refreshed = 0;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(readonly file: string) {}

  async acquire(timeoutMs = 60_000): Promise<void> {
    const start = Date.now();
    let delay = 2;
    for (;;) {
      if (this.tryCreate()) return;
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

  /** Create the lock with its owner record in place; false if it exists. */
  private tryCreate(): boolean {
    const token = randomBytes(12).toString('hex');
    const record = JSON.stringify({ pid: process.pid, token, host: os.hostname(), time: Date.now(), start: processStart(process.pid) } satisfies LockInfo);
    const tmp = scratchName(this.file, 'new');
    try {
      fs.writeFileSync(tmp, record, { flag: 'wx', mode: 0o600 });
      fs.linkSync(tmp, this.file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && fs.existsSync(tmp)) return false;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') return this.tryCreateWithoutLinks(token, record);
      throw new BoxsigError('IO', `cannot create lock ${this.file}: ${(e as Error).message}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    this.held(token);
    return true;
  }

  private held(token: string): void {
    this.token = token;
    this.refreshed = Date.now();
    // while the event loop runs; long synchronous writes call refresh() themselves
    this.heartbeat = setInterval(() => this.refresh(), REFRESH_MS);
    this.heartbeat.unref();
  }

  /**
   * Tell other hosts the owner is still at work: the lock's modification
   * time is what they judge its age by. Cheap to call often (at most one
   * update per second).
   */
  refresh(): void {
    if (!this.token || Date.now() - this.refreshed < 1000) return;
    this.refreshed = Date.now();
    try {
      const now = new Date();
      fs.utimesSync(this.file, now, now);
    } catch {
      /* a lost lock is noticed at commit (assertHeld) */
    }
  }

  /**
   * For filesystems without hard links: exclusive create, then write. A lock
   * its creator could not write is removed by its creator; one broken while
   * it was being written (it looked unreadable) is noticed by reading it back.
   */
  private tryCreateWithoutLinks(token: string, record: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new BoxsigError('IO', `cannot create lock ${this.file}: ${(e as Error).message}`);
    }
    try {
      fs.writeSync(fd, record);
    } catch (e) {
      fs.rmSync(this.file, { force: true });
      throw new BoxsigError('IO', `cannot write lock ${this.file}: ${(e as Error).message}`);
    } finally {
      fs.closeSync(fd);
    }
    if (readInfo(this.file)?.token !== token) return false;
    this.held(token);
    return true;
  }

  /**
   * Break the lock if its owner is gone: on this host, an owner that is not
   * running any more (whatever the lock's age: a live owner keeps it); of
   * another host, a lock not refreshed for a minute; a lock that cannot be
   * read (no boxsig writes one: it is debris of something else) at once.
   */
  breakIfStale(): void {
    const owner = readInfo(this.file);
    const modified = modifiedMs(this.file);
    if (modified === null) return; // released meanwhile
    const stale = !owner ? true : owner.host === os.hostname() ? !ownerAlive(owner) : Date.now() - modified > STALE_MS;
    if (!stale) return;
    const aside = scratchName(this.file, 'stale');
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

  /**
   * Remove what dead processes left in `dirs`: temporary files of atomic
   * writes, lock records never linked, locks set aside while being broken.
   * Call it holding the lock (then no live process is writing there);
   * idempotent.
   */
  removeDebris(dirs: string[]): string[] {
    const removed: string[] = [];
    for (const dir of dirs) {
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        const m = SCRATCH.exec(n);
        if (!m || processAlive(Number(m[1]))) continue; // a live process (this one included) may be writing it
        fs.rmSync(path.join(dir, n), { force: true, recursive: true });
        removed.push(path.join(dir, n));
      }
    }
    return removed;
  }

  /** Throws if the lock was lost (broken by another process). */
  assertHeld(): void {
    const cur = readInfo(this.file);
    if (!this.token || !cur || cur.token !== this.token) {
      throw new BoxsigError('IO', 'lost the trust-store lock', { retry: true });
    }
  }

  release(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (!this.token) return;
    const cur = readInfo(this.file);
    if (cur && cur.token === this.token) fs.rmSync(this.file, { force: true });
    this.token = null;
  }
}
