/**
 * A cross-process lock for the trust store: a lock file holding the owner's
 * pid and a random token. It appears whole or not at all: the owner record
 * is written to a temporary file that is then hard-linked to the lock's name
 * (which fails if the lock exists), so a lock is never empty or half-written.
 * A lock whose owner died (SIGKILL) is broken by renaming it aside (atomic:
 * one breaker wins), and every writer checks that it still owns the lock
 * right before it commits. A live owner on this machine (same host name, same
 * boot, same pid namespace) keeps its lock however long it works (a slow
 * disk, a long migration, a stopped process); any other lock (another host,
 * a container, a system where the owner cannot be told from a later process
 * with its pid) is broken once a waiter has seen it unchanged for
 * STALE_MS of its own time, while its owner refreshes it every REFRESH_MS:
 * no clocks are compared. Whatever a killed process leaves (temporary files,
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
  /** The owner's boot and pid namespace (Linux): a container or a clone with the same host name is another machine. */
  machine?: string | null;
}

/** A lock not known to be a live local owner's is stale once unchanged for this long; its owner refreshes it every REFRESH_MS. */
const STALE_MS = 30_000;
const REFRESH_MS = 5_000;
/** A lock file is a few hundred bytes: anything larger is not one boxsig wrote. */
const MAX_LOCK_BYTES = 4096;

/** This boot and pid namespace (Linux), or null where it cannot be known. */
const MACHINE: string | null = (() => {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return `${boot}:${fs.statSync('/proc/self/ns/pid').ino}`;
  } catch {
    return null;
  }
})();

/** The fields of /proc/PID/stat after the command name (field 3, the state, first); null where there is none. */
function procStat(pid: number): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The start time of a process (Linux: field 22, in clock ticks since boot); null elsewhere. */
const processStart = (pid: number): string | null => procStat(pid)?.[19] ?? null;

/**
 * What can be told of a lock's owner from here: 'alive' (a process of this
 * machine, the one that took the lock, still running), 'gone' (it is not),
 * or 'unknown' (another host or pid namespace, or no way to tell a later
 * process with its pid: judged by whether the lock is refreshed).
 */
function ownerState(owner: LockInfo): 'alive' | 'gone' | 'unknown' {
  if (!Number.isSafeInteger(owner.pid) || owner.pid <= 0) return 'gone'; // kill(0 or -1) would answer for a group
  if (owner.host !== os.hostname()) return 'unknown';
  // a lock of another boot or pid namespace with this host name (a container, a clone); one without (an earlier boxsig) is taken as this one's
  if (owner.machine && owner.machine !== MACHINE) return 'unknown';
  if (!processAlive(owner.pid)) return 'gone';
  const start = processStart(owner.pid);
  if (!owner.start || !start) return 'unknown';
  return start === owner.start ? 'alive' : 'gone';
}

/** Is the process stopped (SIGSTOP, Ctrl-Z)? Linux only; false where it cannot be told. */
const processStopped = (pid: number): boolean => /^[Tt]$/.test(procStat(pid)?.[0] ?? '');

/** The lock file is not one boxsig wrote (a directory, a FIFO, a link): refused, never read or broken. */
function notALock(file: string, what: string): BoxsigError {
  return new BoxsigError('IO', `${file} is ${what}, not a lock boxsig wrote; remove it if no boxsig is running`);
}

/** Matches every scratch name above, and the keys layer's `.<file>.tmp-<pid>-<hex>`. */
const SCRATCH = /\.(?:tmp|new|stale)-(\d+)-[0-9a-f]{6,32}$/;

/** The lock as it is now: its owner record (null: unreadable, or none) and its identity (null: no lock). */
function readLock(file: string): { info: LockInfo | null; id: string | null } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { info: null, id: null };
    if (code === 'ELOOP') throw notALock(file, 'a symbolic link');
    throw new BoxsigError('IO', `cannot read the lock ${file}: ${(e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw notALock(file, st.isDirectory() ? 'a directory' : 'not a regular file');
    const id = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (st.size > MAX_LOCK_BYTES) return { info: null, id };
    const buf = Buffer.alloc(st.size);
    const n = fs.readSync(fd, buf, 0, st.size, 0);
    try {
      const v = JSON.parse(buf.subarray(0, n).toString('utf8')) as LockInfo;
      return { info: typeof v.pid === 'number' && typeof v.token === 'string' ? v : null, id };
    } catch {
      return { info: null, id };
    }
  } finally {
    fs.closeSync(fd);
  }
}

const readInfo = (file: string): LockInfo | null => readLock(file).info;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FileLock {
  private token: string | null = null;
  private refreshed = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  /** A lock of an owner that cannot be checked, as this process first saw it, and when (its own monotonic time). */
  private watched: { id: string; since: number } | null = null;

  /** @param staleMs how long a lock whose owner cannot be checked must stay unchanged to be broken (tests shorten it) */
  constructor(
    readonly file: string,
    private readonly staleMs = STALE_MS,
  ) {}

  async acquire(timeoutMs = 60_000): Promise<void> {
    const start = Date.now();
    let delay = 2;
    for (;;) {
      if (this.tryCreate()) return;
      this.breakIfStale();
      if (Date.now() - start > timeoutMs) throw this.busy();
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  /** Why the lock could not be taken, with what to do about its owner. */
  private busy(): BoxsigError {
    const owner = readInfo(this.file);
    const who = owner ? `process ${owner.pid}${owner.host !== os.hostname() ? ` on ${owner.host}` : ''}` : 'another process';
    if (owner && ownerState(owner) === 'alive') {
      const stopped = processStopped(owner.pid);
      return new BoxsigError(
        'IO',
        `the trust store (${this.file}) is locked by ${who}, which is still ${stopped ? `stopped: resume it (kill -CONT ${owner.pid} or fg) and` : 'running:'} try again when it has finished; do not remove the lock while it runs`,
      );
    }
    return new BoxsigError(
      'IO',
      `the trust store is locked by ${who} (${this.file}); try again, or remove the file if no boxsig is running on any machine that shares it`,
    );
  }

  /** Create the lock with its owner record in place; false if it exists. */
  private tryCreate(): boolean {
    const token = randomBytes(12).toString('hex');
    const record = JSON.stringify({
      pid: process.pid,
      token,
      host: os.hostname(),
      time: Date.now(),
      start: processStart(process.pid),
      machine: MACHINE,
    } satisfies LockInfo);
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
    this.take(token);
    return true;
  }

  private take(token: string): void {
    this.token = token;
    this.watched = null;
    this.refreshed = Date.now();
    // while the event loop runs; long synchronous writes call refresh() themselves
    this.heartbeat = setInterval(() => this.refresh(), REFRESH_MS);
    this.heartbeat.unref();
  }

  /**
   * Tell waiters that cannot check this process (another host, a container)
   * that it is still at work: they judge a lock by whether it changes.
   * Cheap to call often (at most one update per second).
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
    this.take(token);
    return true;
  }

  /**
   * Break the lock if its owner is gone: at once when it is a process of
   * this machine that is not running any more (or a later process has its
   * pid), or when the lock cannot be read (no boxsig writes one: debris of
   * something else); when its owner cannot be checked (another host, a
   * container), once this process has seen it unchanged for STALE_MS of its
   * own time — a live owner refreshes it more often than that, and no clocks
   * are compared. A live owner of this machine keeps its lock, however long.
   */
  breakIfStale(): void {
    const { info: owner, id } = readLock(this.file);
    if (id === null) return; // released meanwhile
    if (owner) {
      const state = ownerState(owner);
      if (state === 'alive') return;
      if (state === 'unknown') {
        const now = performance.now();
        if (!this.watched || this.watched.id !== id) this.watched = { id, since: now };
        if (now - this.watched.since < this.staleMs) return;
      }
    }
    this.watched = null;
    const aside = scratchName(this.file, 'stale');
    try {
      fs.renameSync(this.file, aside);
    } catch {
      return; // someone else broke it first
    }
    const moved = readLock(aside).info;
    // a lock taken after our check (a new token, or one that was being written when we read it): put it back
    if (moved && (!owner || moved.token !== owner.token)) {
      try {
        fs.linkSync(aside, this.file);
      } catch (e) {
        // without hard links: rename it back while the slot is free; else its owner notices at commit (assertHeld) and retries
        const code = (e as NodeJS.ErrnoException).code;
        if ((code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') && !fs.existsSync(this.file)) {
          try {
            fs.renameSync(aside, this.file);
          } catch {
            /* as above */
          }
        }
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

  /** Whether this process still holds the lock (it was not broken by another). */
  held(): boolean {
    return Boolean(this.token) && readInfo(this.file)?.token === this.token;
  }

  /** Throws if the lock was lost (broken by another process). */
  assertHeld(): void {
    if (!this.held()) throw new BoxsigError('IO', 'lost the trust-store lock', { retry: true });
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
