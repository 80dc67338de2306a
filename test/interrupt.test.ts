/**
 * Issue 16 class 9: a command interrupted by SIGINT, SIGTERM or SIGHUP while
 * it writes a large box removes its temporary files and ends by the signal
 * (the conventional status: a shell shows 128 + its number). The boxes are
 * generated: gzip members of zeros (a 1 GiB disk image in about 1 MB) and a
 * sparse plain tar, so that each command is still busy when the signal
 * arrives.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { CLI, isolatedEnv, makeKey } from './helpers.js';
import * as tar from './corpus/tar.mjs';

const MiB = 1024 * 1024;

/** A gzip box whose disk image is `mib` MiB of zeros, one gzip member per MiB. */
function zerosBox(file: string, mib: number): string {
  const head = zlib.gzipSync(
    Buffer.concat([tar.file('metadata.json', Buffer.from('{"provider":"virtualbox"}')), tar.header({ name: 'disk.img', size: mib * MiB })]),
  );
  const one = zlib.gzipSync(Buffer.alloc(MiB));
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, head);
  for (let i = 0; i < mib; i++) fs.writeSync(fd, one);
  fs.writeSync(fd, zlib.gzipSync(tar.end()));
  fs.closeSync(fd);
  return file;
}

/** A plain tar box whose disk image is `mib` MiB of zeros, sparse on disk. */
function sparseTarBox(file: string, mib: number): string {
  const head = Buffer.concat([tar.file('metadata.json', Buffer.from('{"provider":"virtualbox"}')), tar.header({ name: 'disk.img', size: mib * MiB })]);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, head);
  fs.ftruncateSync(fd, head.length + mib * MiB);
  fs.writeSync(fd, tar.end(), 0, tar.end().length, head.length + mib * MiB);
  fs.closeSync(fd);
  return file;
}

interface Interrupted {
  code: number | null;
  signal: NodeJS.Signals | null;
  reached: boolean;
  stderr: string;
}

/** Run the CLI, wait until `busy()` says it is writing, send `sig`. */
function interruptWhen(args: string[], env: NodeJS.ProcessEnv, busy: () => boolean, sig: NodeJS.Signals): Promise<Interrupted> {
  return new Promise((resolve) => {
    // through env(1): the test runner's loader (added to every child's NODE_OPTIONS) stays out
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let reached = false;
    const poll = setInterval(() => {
      if (!reached && busy()) {
        reached = true;
        clearInterval(poll);
        setTimeout(() => child.kill(sig), 100);
      }
    }, 10);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, reached, stderr });
    });
  });
}

const listing = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

t.test('interrupted commands leave no temporary file and end by their signal', async (t) => {
  const dir = t.testdir({ inputs: {}, out: {}, repack: {} });
  const inputs = path.join(dir, 'inputs');
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  delete env.NODE_OPTIONS;
  const key = makeKey(inputs, 'Big <big@acme.example>', [], env);
  const big = zerosBox(path.join(inputs, 'big.box'), 1024);
  const out = path.join(dir, 'out');

  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) {
    const target = path.join(out, 'signed.box');
    const r = await interruptWhen(
      ['sign', big, '--key', key.secret, '--name', 'acme/big', '--version', '1.0.0', '-o', target],
      env,
      () => listing(out).some((n) => n.endsWith('.tmp')),
      sig,
    );
    t.ok(r.reached, `sign, ${sig}: interrupted while writing its temporary file`);
    t.equal(r.signal, sig, `sign, ${sig}: ended by the signal (${r.stderr.trim()})`);
    t.same(listing(out), [], `sign, ${sig}: nothing left in the output directory`);
  }

  // a signed box for the add and repackage cases (256 MiB of zeros)
  const signed = path.join(inputs, 'signed.box');
  const s = await interruptWhen(
    ['sign', zerosBox(path.join(inputs, 'mid.box'), 256), '--key', key.secret, '--name', 'acme/big', '--version', '1.0.0', '-o', signed],
    env,
    () => false,
    'SIGTERM',
  );
  t.equal(s.code, 0, s.stderr);

  const home = env.VAGRANT_HOME!;
  const staging = path.join(home, 'tmp');
  const a = await interruptWhen(
    ['add', signed, '--quiet'],
    env,
    () => listing(staging).some((n) => fs.existsSync(path.join(staging, n, 'box', 'disk.img'))),
    'SIGTERM',
  );
  t.ok(a.reached, 'add: interrupted while extracting');
  t.equal(a.signal, 'SIGTERM', `add: ended by the signal (${a.stderr.trim()})`);
  t.same(listing(staging), [], 'add: the staging directory is gone');
  t.same(listing(path.join(home, 'boxes')), [], 'add: nothing installed');

  const plain = sparseTarBox(path.join(inputs, 'sparse.box'), 512);
  const stripped = path.join(out, 'stripped.box');
  const st = await interruptWhen(['strip', plain, '-o', stripped], env, () => listing(out).some((n) => n.endsWith('.tmp')), 'SIGINT');
  t.ok(st.reached, 'strip: interrupted while copying');
  t.equal(st.signal, 'SIGINT', `strip: ended by the signal (${st.stderr.trim()})`);
  t.same(listing(out), [], 'strip: nothing left in the output directory');

  const added = await interruptWhen(['add', signed, '--quiet'], env, () => false, 'SIGTERM');
  t.equal(added.code, 0, added.stderr);
  const repack = path.join(dir, 'repack');
  const rp = await interruptWhen(
    ['repackage', 'acme/big', 'virtualbox', '1.0.0', '-o', path.join(repack, 'package.box')],
    env,
    () => listing(repack).some((n) => n.endsWith('.tmp')),
    'SIGHUP',
  );
  t.ok(rp.reached, 'repackage: interrupted while packing');
  t.equal(rp.signal, 'SIGHUP', `repackage: ended by the signal (${rp.stderr.trim()})`);
  t.same(listing(repack), [], 'repackage: nothing left in the output directory');
});
