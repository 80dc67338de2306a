/**
 * The benchmark harness runs end to end on a tiny box (nothing is timed or
 * judged here: the figures of a smoke run mean nothing), and its box generator
 * is deterministic.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

const BENCH = path.join(ROOT, 'bench', 'bench.mjs');

function bench(work: string, extra: string[] = []) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // the harness measures boxsig without the test runner's loaders
  return spawnSync(process.execPath, [BENCH, '--quick', '--size', '8MiB', '--runs', '1', '--startup-runs', '2', '--work', work, ...extra], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
}

t.test('npm run bench works end to end on a tiny box', async (t) => {
  const root = t.testdir({ first: {}, second: {} });
  const work = path.join(root, 'first');
  const r = bench(work);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /\| task \| contender \| median/);
  t.match(r.stdout, /\| target \(PRODUCT\.md\) \| measured \| result \|/);
  const j = JSON.parse(fs.readFileSync(path.join(work, 'last.json'), 'utf8'));
  const ids = j.contenders.map((c: { id: string }) => c.id);
  t.same(ids.sort(), ['add', 'floor-gzip', 'floor-pigz', 'gpg', 'shell', 'sign', 'vagrant', 'verify'].sort());
  for (const c of j.contenders) {
    // every contender either ran or says why not; none fails
    t.not(c.status, 'failed', `${c.label}: ${c.note ?? ''}`);
    if (c.boxsig) t.equal(c.status, 'ok', `${c.label} ran`);
  }
  t.ok(j.startup.verify.median > 0);
  t.ok(j.targets.length >= 5);

  // a second work directory gets exactly the same box (same seed), a new seed a different one
  const again = path.join(root, 'second');
  const box = fs.readdirSync(work).find((f) => f.endsWith('.box'))!;
  const r2 = bench(again, ['--only', 'startup']);
  t.equal(r2.status, 0, r2.stderr);
  t.equal(fs.readFileSync(path.join(again, box)).equals(fs.readFileSync(path.join(work, box))), true, 'same seed, same bytes');
  const other = JSON.parse(fs.readFileSync(path.join(again, 'last.json'), 'utf8')).box.tarSha256;
  t.equal(other, j.box.tarSha256);
  const r3 = bench(again, ['--only', 'startup', '--seed', '2']);
  t.equal(r3.status, 0, r3.stderr);
  t.not(JSON.parse(fs.readFileSync(path.join(again, 'last.json'), 'utf8')).box.tarSha256, j.box.tarSha256, 'another seed, another box');
});
