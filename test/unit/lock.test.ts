/**
 * When the trust store's lock may be broken: a live owner on this host keeps
 * it however old it is (a long migration, a slow disk, a stopped process —
 * breaking it let a second process commit, then the first overwrite it); a
 * dead owner, or a later process given its pid, loses it at once; a lock
 * whose owner cannot be checked (another host, a container, no start time)
 * is broken once a waiter has seen it unchanged for a while, by its own
 * clock, and its owner keeps it changing.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { FileLock } from '../../src/trust/lock.js';

const old = new Date(Date.now() - 10 * 60_000);

async function heldLock(dir: string): Promise<{ lock: FileLock; file: string; info: Record<string, unknown> }> {
  const file = path.join(dir, 'trust.lock');
  const lock = new FileLock(file);
  await lock.acquire();
  return { lock, file, info: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

function rewrite(file: string, info: Record<string, unknown>, mtime = old): void {
  fs.writeFileSync(file, JSON.stringify(info));
  fs.utimesSync(file, mtime, mtime);
}

t.test('a live owner on this host keeps its lock, however old', async (t) => {
  const { lock, file, info } = await heldLock(t.testdir({}));
  t.teardown(() => lock.release());
  t.equal(info.pid, process.pid);
  t.equal(info.host, os.hostname());
  if (process.platform === 'linux') t.match(info.start, /^\d+$/, 'the owner records when it started');
  rewrite(file, { ...info, time: old.getTime() });
  new FileLock(file).breakIfStale();
  t.ok(fs.existsSync(file), 'ten minutes old, its owner alive: kept');
  t.doesNotThrow(() => lock.assertHeld(), 'and still held');
});

t.test('a dead owner, or a later process with its pid, loses the lock at once', async (t) => {
  const dir = t.testdir({});
  const { lock, file, info } = await heldLock(dir);
  t.teardown(() => lock.release());
  rewrite(file, { ...info, pid: 999_999 }, new Date());
  new FileLock(file).breakIfStale();
  t.notOk(fs.existsSync(file), 'an owner that is not running: broken, fresh as it is');
  if (process.platform !== 'linux') return;
  rewrite(file, { ...info, start: '1' }, new Date());
  new FileLock(file).breakIfStale();
  t.notOk(fs.existsSync(file), 'a running process that started after the lock was taken is not its owner: broken');
});

t.test('a lock whose owner cannot be checked is broken once seen unchanged for a while; its owner keeps it changing', async (t) => {
  const { lock, file, info } = await heldLock(t.testdir({}));
  t.teardown(() => lock.release());
  const waiter = new FileLock(file, 300);
  for (const [what, odd] of [
    ['another host', { host: 'elsewhere.example' }],
    ['a container with this host name (another pid namespace)', { machine: 'other-boot:4026531836' }],
    ['no start time to tell the owner from a later process with its pid', { start: null }],
  ] as const) {
    rewrite(file, { ...info, ...odd }, old); // an mtime far in the past: no clock is compared
    waiter.breakIfStale();
    t.ok(fs.existsSync(file), `${what}: first seen, kept however old its time`);
    await new Promise((r) => setTimeout(r, 1000)); // refresh() updates at most once a second
    lock.refresh();
    waiter.breakIfStale();
    t.ok(fs.existsSync(file), `${what}: its owner refreshed it: kept`);
    await new Promise((r) => setTimeout(r, 400));
    waiter.breakIfStale();
    t.notOk(fs.existsSync(file), `${what}: unchanged for longer than the waiter waits: broken`);
    t.throws(() => lock.assertHeld(), { code: 'IO', message: /lost the trust-store lock/ }, `${what}: its owner notices before it writes`);
    fs.writeFileSync(file, JSON.stringify(info)); // the owner's own lock again, for the next case
  }
});

t.test('pids that stand for a group, and lock files boxsig never writes', async (t) => {
  const dir = t.testdir({});
  const { lock, file, info } = await heldLock(dir);
  t.teardown(() => lock.release());
  for (const pid of [0, -1, 1.5]) {
    rewrite(file, { ...info, pid }, new Date());
    new FileLock(file).breakIfStale();
    t.notOk(fs.existsSync(file), `pid ${pid}: broken at once`);
  }
  fs.mkdirSync(file);
  t.throws(() => new FileLock(file).breakIfStale(), { code: 'IO', message: /trust\.lock is a directory, not a lock boxsig wrote; remove it/ });
  fs.rmdirSync(file);
  fs.symlinkSync('/dev/zero', file);
  t.throws(() => new FileLock(file).breakIfStale(), { code: 'IO', message: /is a symbolic link, not a lock/ }, 'a link is never followed');
  fs.unlinkSync(file);
  if (process.platform !== 'win32') {
    spawnSync('mkfifo', [file]);
    t.throws(() => new FileLock(file).breakIfStale(), { code: 'IO', message: /not a regular file/ }, 'a FIFO is not opened for a blocking read');
    fs.unlinkSync(file);
  }
});

t.test('waiting behind a live owner: the message says it runs, and not to remove the lock', async (t) => {
  const dir = t.testdir({});
  const { lock, file } = await heldLock(dir);
  t.teardown(() => lock.release());
  await t.rejects(new FileLock(file).acquire(300), {
    code: 'IO',
    message: new RegExp(`locked by process ${process.pid}, which is still running: try again when it has finished; do not remove the lock`),
  });
});
