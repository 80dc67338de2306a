/**
 * A bounded run of the key fuzzer for CI (test/fuzz/keys.mjs): packet-level
 * mutations of the key file and signature of a signed box, with a fixed seed
 * so that a failure reproduces. BOXSIG_KEYFUZZ_CASES and BOXSIG_KEYFUZZ_SEED
 * change the run.
 */
import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, requireTool } from './helpers.js';

const CASES = Number(process.env.BOXSIG_KEYFUZZ_CASES ?? 400);
const SEED = process.env.BOXSIG_KEYFUZZ_SEED ?? 'ci-keys-1';

t.test(`key fuzzing: ${CASES} cases, seed ${SEED}`, async (t) => {
  // the differential property needs sqv or gpg
  if (!requireTool(t, 'sqv', 'sqv')) return;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'test', 'fuzz', 'keys.mjs'), '--cases', String(CASES), '--seed', SEED, '--json'], {
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 540_000,
  });
  let summary: any = null;
  try {
    summary = JSON.parse(r.stdout);
  } catch {
    t.fail(`the key fuzzer printed no summary (exit ${r.status}): ${r.stderr.slice(0, 2000)}`);
    return;
  }
  t.comment(
    `${summary.cases} cases in ${summary.seconds} s; accepted ${summary.accepted}; refused ${JSON.stringify(summary.refused)}; ${summary.lossChecks} revocation-loss checks`,
  );
  t.equal(summary.cases, CASES, 'every case ran');
  for (const f of summary.failures) t.fail(`case ${f.index}: ${f.failures.join('; ')}`, { ops: f.ops, reproduce: f.reproduce });
  t.equal(r.status, 0, 'the fuzzer exits 0');
  t.ok(
    summary.accepted > 0 && summary.differentialChecks === summary.accepted,
    'some mutations are harmless, and each accepted one was checked against sqv (or gpg)',
  );
  t.ok(summary.lossChecks >= CASES / 10, 'the revocation survived every junk-first import');
  t.ok(Object.keys(summary.refused).length >= 3, `refusals of several kinds (${Object.keys(summary.refused).join(', ')})`);
});
