/**
 * Memory stays flat: peak RSS of verify, add and sign on a box far larger than
 * the limit is under 150 MiB (measured with /usr/bin/time, not timed).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { CLI, isolatedEnv, makeKey, sh } from './helpers.js';

const LIMIT_KIB = 150 * 1024;

/** A gzip box with one disk image of `mib` MiB mixing random data, zero runs and text, streamed to disk. */
async function bigBox(file: string, mib: number): Promise<void> {
  const header = (name: string, size: number): Buffer => {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(size.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return h;
  };
  const meta = Buffer.from('{"provider":"virtualbox"}');
  const text = Buffer.from('Nov 23 12:00:00 host kernel: usb 1-1: new high-speed USB device number 2\n'.repeat(15000)).subarray(0, 1 << 20);
  const zero = Buffer.alloc(1 << 20);
  async function* gen() {
    yield header('metadata.json', meta.length);
    yield Buffer.concat([meta, Buffer.alloc(512 - meta.length)]);
    yield header('disk.img', mib << 20);
    for (let i = 0; i < mib; i++) {
      const r = i % 10;
      yield r < 4 ? crypto.randomBytes(1 << 20) : r < 7 ? zero : text;
    }
    yield Buffer.alloc(1024);
  }
  await pipeline(Readable.from(gen()), zlib.createGzip({ level: 1, chunkSize: 1 << 20 }), fs.createWriteStream(file));
}

function peakKiB(args: string[], env: NodeJS.ProcessEnv): { kib: number; code: number; stderr: string } {
  // measure boxsig alone: the test runner injects its coverage loader into every child's
  // environment (NODE_OPTIONS), so start from an empty one with env -i
  const keep = ['PATH', 'HOME', 'BOXSIG_HOME', 'VAGRANT_HOME', 'BOXSIG_PASSPHRASE'].filter((k) => env[k] !== undefined).map((k) => `${k}=${env[k]}`);
  const r = sh('env', ['-i', ...keep, '/usr/bin/time', '-f', '%M', process.execPath, CLI, ...args]);
  const lines = r.stderr.trim().split('\n');
  return { kib: Number(lines[lines.length - 1]), code: r.code, stderr: r.stderr };
}

t.test('peak memory does not grow with the box', async (t) => {
  if (!fs.existsSync('/usr/bin/time')) {
    if (process.env.CI === 'true') t.fail('/usr/bin/time is not installed (apt-get install -y time)');
    else t.comment('SKIP: /usr/bin/time is not installed (apt-get install -y time)');
    return;
  }
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Mem <mem@x.example>', [], env);
  const box = path.join(dir, 'big.box');
  await bigBox(box, 512);
  const signed = path.join(dir, 'big-signed.box');
  const s = peakKiB(['sign', box, '--key', key.secret, '--name', 'acme/mem', '--version', '1', '-o', signed], env);
  t.equal(s.code, 0, s.stderr);
  t.ok(s.kib < LIMIT_KIB, `sign of a 512 MiB box peaked at ${Math.round(s.kib / 1024)} MiB`);
  fs.rmSync(box);
  const v = peakKiB(['verify', signed, '-q'], env);
  t.equal(v.code, 0, v.stderr);
  t.ok(v.kib < LIMIT_KIB, `verify peaked at ${Math.round(v.kib / 1024)} MiB`);
  const sum = sh('sha256sum', [signed]).stdout.slice(0, 64);
  const a = peakKiB(['add', signed, '-q', '--checksum', sum], env);
  t.equal(a.code, 0, a.stderr);
  t.ok(a.kib < LIMIT_KIB, `add peaked at ${Math.round(a.kib / 1024)} MiB`);
});
