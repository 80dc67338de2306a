/**
 * Issue 11 class 11: `sign` crashed with EBADF when the new `.boxsig/`
 * outgrew the gap reserved for it. Boxes of 1, 300, 10,000 and 100,000 files,
 * plain and gzip: each is signed and verifies, or (past the verifier's entry
 * limit) is refused as a usage error that names the limit; never a crash, and
 * no temporary file is left next to the output.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { boxsig, isolatedEnv, makeKey, must } from './helpers.js';
import * as tar from './corpus/tar.mjs';

/** A box with `n` files (metadata.json and n-1 small files), built in memory. */
function boxWithFiles(file: string, n: number, gzip: boolean): void {
  const parts: Buffer[] = [tar.file('metadata.json', Buffer.from('{"provider":"virtualbox"}'))];
  for (let i = 1; i < n; i++) parts.push(tar.file(`f${i}`, Buffer.from(String(i))));
  parts.push(tar.end());
  const raw = Buffer.concat(parts);
  fs.writeFileSync(file, gzip ? zlib.gzipSync(raw, { level: 1 }) : raw);
}

t.test('sign boxes of 1, 300, 9 993, 10 000 and 100 000 files, plain and gzip', async (t) => {
  const dir = t.testdir({ out: {} });
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Sizes <sizes@acme.example>', [], env);
  const other = makeKey(dir, 'Co-signer <co@acme.example>', [], env);
  const out = path.join(dir, 'out');
  // 9 993 files + the 7 entries .boxsig/ adds (and a possible "./") is the most the verifier accepts
  for (const n of [1, 300, 9_993, 10_000, 100_000]) {
    for (const gzip of [false, true]) {
      const label = `${n} files, ${gzip ? 'gzip' : 'plain'}`;
      const input = path.join(dir, `in-${n}-${gzip ? 'gz' : 'tar'}.box`);
      boxWithFiles(input, n, gzip);
      const signed = path.join(out, `signed-${n}-${gzip ? 'gz' : 'tar'}.box`);
      const r = boxsig(['sign', input, '--key', key.secret, '--name', 'acme/many', '--version', '1.0.0', '-o', signed, '--json'], { env });
      if (n <= 9_993) {
        t.equal(r.code, 0, `${label}: signed (${r.stderr.trim()})`);
        t.equal(r.json?.files?.length, n, `${label}: every file is in the manifest`);
        const v = boxsig(['verify', signed, '--pin', key.fingerprint, '--json'], { env });
        t.equal(v.code, 0, `${label}: verifies (${v.stderr.trim()})`);
        const listed = must('tar', ['tf', signed]).split('\n').filter(Boolean);
        t.equal(listed[0], '.boxsig/', `${label}: GNU tar lists .boxsig/ first`);
        if (n === 300) {
          // co-signing replaces .boxsig/ with a larger one: the gap is outgrown again
          const co = boxsig(['sign', signed, '--key', other.secret, '--json'], { env });
          t.equal(co.code, 0, `${label}: co-signed (${co.stderr.trim()})`);
          t.same(co.json?.signers, [key.fingerprint, other.fingerprint].sort());
          t.equal(boxsig(['verify', signed, '--pin', other.fingerprint], { env }).code, 0);
        }
      } else {
        t.equal(r.code, 2, `${label}: a usage error, not a crash (${r.stderr.trim()})`);
        t.equal(r.json?.code, 'USAGE');
        t.match(r.json?.message, /10000/, 'the message names the limit');
        t.notOk(fs.existsSync(signed), `${label}: no output`);
      }
      t.same(
        fs.readdirSync(out).filter((f) => f.endsWith('.tmp')),
        [],
        `${label}: no temporary file left`,
      );
      fs.rmSync(input);
    }
  }
});
