/**
 * When the trust store's lock may be broken: a live owner on this host keeps
 * it however old it is (a long migration, a slow disk, a stopped process —
 * breaking it let a second process commit, then the first overwrite it); a
 * dead owner, or a later process given its pid, loses it at once; a lock of
 * another host is judged by the time its owner last refreshed it.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

t.test('a lock of another host is judged by its last refresh, which its owner keeps up', async (t) => {
  const { lock, file, info } = await heldLock(t.testdir({}));
  t.teardown(() => lock.release());
  rewrite(file, { ...info, host: 'elsewhere.example' }, new Date());
  new FileLock(file).breakIfStale();
  t.ok(fs.existsSync(file), 'refreshed just now: kept');
  rewrite(file, { ...info, host: 'elsewhere.example' });
  await new Promise((r) => setTimeout(r, 1100)); // refresh() updates at most once a second
  lock.refresh();
  t.ok(Date.now() - fs.statSync(file).mtimeMs < 5000, 'refresh() tells other hosts the owner is at work');
  new FileLock(file).breakIfStale();
  t.ok(fs.existsSync(file), 'so it is kept');
  const stale = new Date(Date.now() - 61_000);
  fs.utimesSync(file, stale, stale);
  new FileLock(file).breakIfStale();
  t.notOk(fs.existsSync(file), 'not refreshed for a minute: broken');
  t.throws(() => lock.assertHeld(), { code: 'IO', message: /lost the trust-store lock/ }, 'and its owner notices before it writes');
});
