/**
 * A bounded fuzzing run for CI: test/fuzz/run.mjs with a fixed seed (so a
 * failure reproduces), 1000 mutated boxes through verify and add in-process,
 * every 40th also through the CLI, every accepted one through GNU tar and
 * bsdtar. BOXSIG_FUZZ_CASES and BOXSIG_FUZZ_SEED change the run (for example
 * a nightly job with a date as the seed); `npm run fuzz` runs it by hand.
 */
import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, nodeCommand, requireTool } from './helpers.js';

// 1000 keeps the suite within its time on two cores; a nightly job runs more (BOXSIG_FUZZ_CASES)
const CASES = Number(process.env.BOXSIG_FUZZ_CASES ?? 1000);
const SEED = process.env.BOXSIG_FUZZ_SEED ?? 'ci-1';
const CLI_EVERY = 40;

t.test(`fuzzing: ${CASES} cases, seed ${SEED}`, async (t) => {
  // without both extractors the differential property is not checked
  if (!requireTool(t, 'bsdtar', 'libarchive-tools')) return;
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // the test runner's loaders would slow every worker and CLI start
  const [cmd, argv] = nodeCommand(
    path.join(ROOT, 'test', 'fuzz', 'run.mjs'),
    ['--cases', String(CASES), '--seed', SEED, '--cli-every', String(CLI_EVERY), '--json'],
    env,
  );
  const r = spawnSync(cmd, argv, {
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 540_000,
  });
  let summary: any = null;
  try {
    summary = JSON.parse(r.stdout);
  } catch {
    t.fail(`the fuzzer printed no summary (exit ${r.status}): ${r.stderr.slice(0, 2000)}`);
    return;
  }
  t.comment(
    `${summary.cases} cases in ${summary.seconds} s (${summary.casesPerSecond}/s); accepted ${summary.accepted.verify}; refused ${JSON.stringify(summary.refused)}; CLI ${JSON.stringify(summary.cli)}`,
  );
  t.equal(summary.cases, CASES, 'every case ran');
  for (const f of summary.failures) {
    t.fail(`case ${f.index}: ${f.failures.join('; ')}`, { ops: f.ops, reproduce: f.reproduce, box: f.kept });
  }
  t.equal(summary.failures.length, 0, 'no property failed');
  t.equal(r.status, 0, 'the fuzzer exits 0');
  t.same(summary.errors, {}, 'no I/O or internal errors from hostile input (exit status 3)');
  t.ok(
    summary.accepted.verify > 0 && summary.differentialChecks === summary.accepted.verify + (summary.accepted.sign ?? 0),
    'some mutations are harmless, and each of those was checked against GNU tar and bsdtar',
  );
  t.ok(Object.keys(summary.refused).length >= 5, `refusals of many kinds (${Object.keys(summary.refused).join(', ')})`);
  t.ok(summary.cli.runs >= (2 * CASES) / CLI_EVERY - 2, `${summary.cli.runs} CLI runs`);
  for (const code of Object.keys(summary.cli.exits)) t.ok(['0', '1', '3'].includes(code), `CLI exit status ${code} is 0, 1 or 3`);
});
