#!/usr/bin/env node
// boxsig benchmark: `npm run bench [-- options]` (builds first, then runs this).
//
//   --size SIZE         disk image size of the generated box (default 1GiB)
//   --seed N            seed of the generated content (default 1); another seed gives an
//                       independent box with the same statistics
//   --runs N            timed runs per contender, alternating (default 3)
//   --memory            also measure peak RSS of sign/verify/add once at --memory-size
//   --memory-size SIZE  (default 4GiB)
//   --only LIST         comma-separated subset of: sign,verify,add,startup
//   --profile           also run sign, verify and add once under `node --cpu-prof` and
//                       summarise where the main thread spends its time
//   --startup-runs N    runs of the small-box verify (default 10)
//   --no-warmup         skip the untimed warm-up run of every contender
//   --wait-quiet SECS   wait up to SECS (default 120) for other processes to stop using
//                       the CPU before starting; runs disturbed by other processes are
//                       repeated (up to --retries, default 2) and flagged in the table
//   --quick             smoke mode: 16MiB, 1 run, no warm-up, 3 start-up runs
//   --work DIR          cache and scratch directory (default bench/.work)
//   --keep              keep the scratch directory (signed boxes, homes) afterwards
//   --scale             measure scale instead (add vs. store size, verify --installed vs.
//                       box count): see bench/scale.mjs for its options
//
// Generates a realistic box deterministically (no network), times boxsig against
// the floor of the work it must do and against the tools people use instead, on
// the same box, and prints one table with medians, min-max, ratios and the
// PRODUCT.md targets. Results also go to WORK/last.json and WORK/last.md.
// Nothing here is a test: `npm test` never times anything.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MIX, MiB, GiB, ensureBox, formatSize, parseSize, tinyBox } from './lib/box.mjs';
import { formatProfile, summarizeProfile } from './lib/profile.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const NODE = process.execPath;

// ---------------------------------------------------------------- options
// `npm run bench -- --scale`: costs that grow with the trust store and the installed boxes (bench/scale.mjs)
if (process.argv.includes('--scale')) {
  await import('./scale.mjs');
  process.exit(0);
}
const { values: opts } = parseArgs({
  options: {
    size: { type: 'string' },
    seed: { type: 'string', default: '1' },
    runs: { type: 'string' },
    memory: { type: 'boolean', default: false },
    'memory-size': { type: 'string', default: '4GiB' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'startup-runs': { type: 'string' },
    'no-warmup': { type: 'boolean', default: false },
    'wait-quiet': { type: 'string' },
    retries: { type: 'string' },
    quick: { type: 'boolean', default: false },
    work: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opts.help) {
  const src = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(
    src
      .slice(
        1,
        src.findIndex((l) => l.startsWith('import')),
      )
      .map((l) => l.replace(/^\/\/ ?/, ''))
      .join('\n'),
  );
  process.exit(0);
}
const quick = opts.quick;
const SIZE = parseSize(opts.size ?? (quick ? '16MiB' : '1GiB'));
const SEED = Number(opts.seed);
const RUNS = Number(opts.runs ?? (quick ? 1 : 3));
const WARMUP = !quick && !opts['no-warmup'];
const WAIT_QUIET = Number(opts['wait-quiet'] ?? (quick ? 0 : 120));
const RETRIES = Number(opts.retries ?? (quick ? 0 : 2));
const STARTUP_RUNS = Number(opts['startup-runs'] ?? (quick ? 3 : 10));
const MEMORY_SIZE = opts.memory ? parseSize(opts['memory-size']) : null;
const WORK = path.resolve(opts.work ?? path.join(ROOT, 'bench', '.work'));
const ONLY = new Set((opts.only ?? 'sign,verify,add,startup').split(',').map((s) => s.trim()));
for (const o of ONLY) if (!['sign', 'verify', 'add', 'startup'].includes(o)) throw new Error(`--only: unknown part ${o}`);
if (!Number.isInteger(SEED) || SEED < 0) throw new Error('--seed must be a non-negative integer');
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs must be a positive integer');

const log = (m) => process.stderr.write(`bench: ${m}\n`);

// ---------------------------------------------------------------- tools
const which = (cmd) => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};
const TOOLS = Object.fromEntries(['gzip', 'pigz', 'openssl', 'tar', 'bsdtar', 'gpg', 'gpgconf', 'vagrant', 'bash', 'cp', 'sync'].map((t) => [t, which(t)]));
TOOLS.time = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
/** How the generated box is compressed (pigz when installed: same format, faster to generate). */
const compressor = TOOLS.pigz ? ['pigz', ['-6', '-n', '-c']] : ['gzip', ['-6', '-n', '-c']];

function toolVersion(tool) {
  const args = { openssl: ['version'], time: ['--version'] }[tool] ?? ['--version'];
  const r = spawnSync(TOOLS[tool], args, { encoding: 'utf8', env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1' }, timeout: 60_000 });
  return `${r.stdout || ''}${r.stderr || ''}`.split('\n')[0].trim();
}

// ---------------------------------------------------------------- running
/** Environment for every command: no loaders injected by a test runner, no passphrase prompt, no update checks. */
function baseEnv(extra = {}) {
  const env = { ...process.env, BOXSIG_PASSPHRASE: '', VAGRANT_CHECKPOINT_DISABLE: '1', ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

function run(cmd, args, { env = baseEnv(), cwd } = {}) {
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').slice(-2000)}`);
  return r.stdout;
}

// ---------------------------------------------------------------- other processes
// The machine may be shared (a test suite running next to the benchmark). /proc/stat
// tells how much CPU the whole machine used during a run; minus what the contender
// itself used (rusage from /usr/bin/time), that is the CPU other processes took.
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
function cpuTimes() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal = 0] = f;
    return { busy: (user + nice + system + irq + softirq) / CLK_TCK, steal: steal / CLK_TCK };
  } catch {
    return null;
  }
}
/** A run counts as disturbed when other processes used more than 15% of a core during it (and 0.2 CPU-s). */
const disturbed = (r) => r.foreignCpu !== null && r.foreignCpu > Math.max(0.2, 0.15 * r.wall);

/** CPU share (of one core) used by other processes over `seconds`. */
function backgroundLoad(seconds) {
  const a = cpuTimes();
  spawnSync('sleep', [String(seconds)]);
  const b = cpuTimes();
  return a && b ? (b.busy - a.busy) / seconds : 0;
}

function waitQuiet(maxSeconds) {
  if (maxSeconds <= 0) return { waited: 0, load: null };
  const t0 = Date.now();
  let load = backgroundLoad(2);
  let said = false;
  while (load > 0.1 && (Date.now() - t0) / 1000 < maxSeconds) {
    if (!said) log(`other processes use ${(load * 100).toFixed(0)}% of a core; waiting up to ${maxSeconds} s for a quiet machine`);
    said = true;
    load = backgroundLoad(5);
  }
  if (load > 0.1) log(`WARNING: still ${(load * 100).toFixed(0)}% of a core busy with other processes; figures will be disturbed`);
  return { waited: (Date.now() - t0) / 1000, load };
}

/** Run once, measuring wall time (hrtime), CPU (user+sys of it and its waited-for children) and peak RSS (/usr/bin/time). */
function measure(cmd, args, { env, cwd }) {
  const timed = TOOLS.time ? [TOOLS.time, ['-f', '\n__BENCH__ %e %M %U %S', cmd, ...args]] : [cmd, args];
  const c0 = cpuTimes();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(timed[0], timed[1], { env, cwd, encoding: 'utf8', maxBuffer: 64 * MiB, stdio: ['ignore', 'pipe', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = cpuTimes();
  const m = /__BENCH__ ([\d.]+) (\d+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? '');
  const stderr = (r.stderr ?? '').replace(/\n?__BENCH__[^\n]*\s*$/, '').replace(/Command exited with non-zero status \d+\s*$/, '');
  const cpu = m ? Number(m[3]) + Number(m[4]) : null;
  return {
    wall,
    rssMiB: m ? Number(m[2]) / 1024 : null,
    cpu,
    foreignCpu: c0 && c1 && cpu !== null ? Math.max(0, c1.busy - c0.busy - cpu) : null,
    steal: c0 && c1 ? c1.steal - c0.steal : null,
    status: r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr,
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const secs = (x) => (x === null || x === undefined ? '—' : x < 1 ? `${(x * 1000).toFixed(0)} ms` : `${x.toFixed(2)} s`);
const rmrf = (p) => fs.rmSync(p, { recursive: true, force: true });
/** Read a file once so that every contender finds it in the page cache. */
function warmCache(file) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(4 * MiB);
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}
const syncDisks = () => TOOLS.sync && spawnSync(TOOLS.sync, []);

function findFile(dir, name) {
  if (!fs.existsSync(dir)) return null;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    }
  }
  return null;
}

/** Remove scratch directories left by earlier runs that were killed. */
function cleanStaleScratch() {
  if (!fs.existsSync(WORK)) return;
  for (const d of fs.readdirSync(WORK)) {
    const m = /^run-(\d+)$/.exec(d);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      rmrf(path.join(WORK, d));
    }
  }
}

// ---------------------------------------------------------------- main
async function main() {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm run bench does)`);
  fs.mkdirSync(WORK, { recursive: true });
  cleanStaleScratch();
  const { file: box, meta: boxMeta, cached } = await ensureBox(WORK, SIZE, SEED, { log, compressor });
  if (cached) log(`using cached ${path.relative(process.cwd(), box)} (${formatSize(boxMeta.bytes)})`);

  const scratch = path.join(WORK, `run-${process.pid}`);
  rmrf(scratch);
  fs.mkdirSync(scratch);
  const cleanup = () => {
    if (!opts.keep) rmrf(scratch);
  };
  let gnupgHome = null;
  const stopGpg = () => {
    if (!gnupgHome) return;
    if (TOOLS.gpgconf) spawnSync(TOOLS.gpgconf, ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: gnupgHome } });
    rmrf(gnupgHome);
    gnupgHome = null;
  };
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ]) {
    process.on(sig, () => {
      stopGpg();
      cleanup();
      process.exit(code);
    });
  }
  try {
    const result = await bench(box, boxMeta, scratch, (h) => (gnupgHome = h));
    report(result);
  } finally {
    stopGpg();
    cleanup();
  }
}

async function bench(box, boxMeta, scratch, setGnupgHome) {
  const env = baseEnv({ BOXSIG_HOME: path.join(scratch, 'boxsig-home') });
  const cli = (args, e = env) => run(NODE, [CLI, ...args], { env: e, cwd: scratch });

  // ---- untimed setup: a key, a signed box, its checksum, a gpg signature
  log('setup: key, signed box, checksum, gpg signature (untimed)');
  cli(['key', 'generate', '--uid', 'boxsig bench <bench@example.invalid>', '--out', path.join(scratch, 'key')]);
  const key = path.join(scratch, 'key.secret.asc');
  const NAME = 'bench/box';
  const VERSION = '1.0.0';
  const signed = path.join(scratch, 'signed.box');
  cli(['sign', box, '--key', key, '--name', NAME, '--version', VERSION, '-o', signed]);
  const sha = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(signed, { highWaterMark: 4 * MiB })) sha.update(chunk);
  const checksum = sha.digest('hex');
  const signedBytes = fs.statSync(signed).size;
  const hasAdd = spawnSync(NODE, [CLI, 'add', '--help'], { env, stdio: 'ignore' }).status === 0;
  if (!hasAdd) log('boxsig add is not available in this build: reported as missing');

  let gnupgHome = null;
  if (TOOLS.gpg && ONLY.has('verify')) {
    gnupgHome = fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-bench-gpg-'));
    setGnupgHome(gnupgHome);
    const genv = { ...env, GNUPGHOME: gnupgHome };
    run(
      TOOLS.gpg,
      ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'boxsig bench <bench@example.invalid>', 'ed25519', 'sign', 'never'],
      { env: genv },
    );
    run(TOOLS.gpg, ['--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', '--detach-sign', '-o', `${signed}.sig`, signed], { env: genv });
  }

  // ---- contenders
  const need = (...tools) => tools.filter((t) => !TOOLS[t]);
  const shellPipeline = [
    'set -eo pipefail',
    'exec 3> >(exec openssl dgst -sha256 > "$3"); hasher=$!',
    'tee /dev/fd/3 < "$1" | pigz -dc | tar x -C "$2"',
    'exec 3>&-',
    'wait "$hasher"',
    'grep -q "= $4\\$" "$3"',
  ].join('\n');
  const xdir = path.join(scratch, 'extract');
  const contenders = [
    {
      id: 'sign',
      label: 'boxsig sign',
      groups: ['sign'],
      boxsig: true,
      out: path.join(scratch, 'sign-out.box'),
      prep() {
        rmrf(this.out);
      },
      cmd() {
        return [NODE, [CLI, 'sign', box, '--key', key, '--name', NAME, '--version', VERSION, '-o', this.out]];
      },
      check() {
        return fs.existsSync(this.out) && fs.statSync(this.out).size > boxMeta.bytes ? null : 'no signed output written';
      },
      after() {
        rmrf(this.out);
      },
    },
    {
      id: 'floor-gzip',
      label: 'gzip -dc + cp (floor)',
      groups: ['sign'],
      missing: need('gzip', 'cp', 'bash'),
      out: path.join(scratch, 'copy.box'),
      prep() {
        rmrf(this.out);
      },
      cmd() {
        return ['bash', ['-c', 'set -e; gzip -dc "$1" > /dev/null; cp "$1" "$2"', 'floor', box, this.out]];
      },
      after() {
        rmrf(this.out);
      },
    },
    {
      id: 'floor-pigz',
      label: 'pigz -dc + cp (stricter floor)',
      groups: ['sign'],
      missing: need('pigz', 'cp', 'bash'),
      out: path.join(scratch, 'copy.box'),
      prep() {
        rmrf(this.out);
      },
      cmd() {
        return ['bash', ['-c', 'set -e; pigz -dc "$1" > /dev/null; cp "$1" "$2"', 'floor', box, this.out]];
      },
      after() {
        rmrf(this.out);
      },
    },
    {
      id: 'verify',
      label: 'boxsig verify',
      groups: ['verify'],
      boxsig: true,
      cmd: () => [NODE, [CLI, 'verify', signed, '-q']],
    },
    {
      id: 'shell',
      label: 'shell: openssl dgst ⟵ tee ⟶ pigz -dc | tar x',
      groups: ['verify', 'add'],
      missing: need('bash', 'openssl', 'pigz', 'tar'),
      prep() {
        rmrf(xdir);
        fs.mkdirSync(xdir);
      },
      cmd: () => ['bash', ['-c', shellPipeline, 'pipeline', signed, xdir, path.join(scratch, 'pipeline.sum'), checksum]],
      check: () => (fs.existsSync(path.join(xdir, 'box.img')) ? null : 'nothing extracted'),
      after: () => rmrf(xdir),
    },
    {
      id: 'gpg',
      label: 'gpg --verify (detached, whole box)',
      groups: ['verify'],
      missing: need('gpg'),
      cmd: () => [TOOLS.gpg, ['--batch', '--verify', `${signed}.sig`, signed]],
      env: () => ({ ...env, GNUPGHOME: gnupgHome }),
    },
    {
      id: 'add',
      label: 'boxsig add',
      groups: ['add'],
      boxsig: true,
      missing: hasAdd ? [] : ['boxsig add (not in this build)'],
      dir: path.join(scratch, 'add'),
      prep() {
        rmrf(this.dir);
        fs.mkdirSync(this.dir);
      },
      // a fresh Vagrant home and trust store per run: TOFU, no "exists"/rollback refusals
      env() {
        return { ...env, BOXSIG_HOME: path.join(this.dir, 'boxsig-home'), VAGRANT_HOME: path.join(this.dir, 'vagrant-home') };
      },
      cmd() {
        return [
          NODE,
          [
            CLI,
            'add',
            signed,
            '--vagrant-home',
            path.join(this.dir, 'vagrant-home'),
            '--name',
            NAME,
            '--checksum',
            checksum,
            '--checksum-type',
            'sha256',
            '--json',
          ],
        ];
      },
      check(r) {
        let j = null;
        try {
          j = JSON.parse(r.stdout);
        } catch {
          return `no JSON on stdout: ${r.stdout.slice(0, 200)}`;
        }
        if (j.ok !== true) return `not ok: ${r.stdout.slice(0, 300)}`;
        const img = findFile(path.join(this.dir, 'vagrant-home', 'boxes'), 'box.img');
        return img && fs.statSync(img).size === SIZE ? null : 'box.img not installed';
      },
      after() {
        rmrf(this.dir);
      },
    },
    {
      id: 'vagrant',
      label: 'vagrant box add --checksum',
      groups: ['add'],
      missing: need('vagrant'),
      home: path.join(scratch, 'vagrant-home'),
      // one throwaway VAGRANT_HOME; the added box is removed between runs
      prep() {
        rmrf(path.join(this.home, 'boxes'));
        rmrf(path.join(this.home, 'tmp'));
      },
      env() {
        return { ...env, VAGRANT_HOME: this.home };
      },
      cmd: () => [TOOLS.vagrant, ['box', 'add', '--name', NAME, '--checksum', checksum, '--checksum-type', 'sha256', signed]],
      check() {
        const img = findFile(path.join(this.home, 'boxes'), 'box.img');
        return img && fs.statSync(img).size === SIZE ? null : 'box.img not installed';
      },
      after() {
        rmrf(path.join(this.home, 'boxes'));
      },
    },
  ].filter((c) => c.groups.some((g) => ONLY.has(g)));
  for (const c of contenders) {
    c.missing ??= [];
    c.samples = [];
    c.failed = null;
  }

  const once = (c, timed) => {
    if (c.missing.length || c.failed) return;
    let best = null;
    for (let attempt = 0; attempt <= (timed ? RETRIES : 0); attempt++) {
      c.prep?.();
      syncDisks(); // no writeback of the previous run's output during this one
      const [cmd, args] = c.cmd();
      const r = measure(cmd, args, { env: c.env ? c.env() : env, cwd: scratch });
      const problem = r.status !== 0 ? `exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` : (c.check?.(r) ?? null);
      c.after?.();
      if (problem) {
        c.failed = problem;
        log(`${c.label} FAILED: ${problem}`);
        return;
      }
      const noisy = disturbed(r);
      log(
        `${timed ? 'timed ' : 'warm-up'} ${c.label}: ${secs(r.wall)}${r.cpu !== null ? `, cpu ${secs(r.cpu)}` : ''}` +
          `${c.boxsig && r.rssMiB ? `, peak ${r.rssMiB.toFixed(0)} MiB` : ''}` +
          `${noisy ? ` (DISTURBED: other processes used ${secs(r.foreignCpu)} CPU${timed && attempt < RETRIES ? '; repeating' : ''})` : ''}`,
      );
      if (!best || (r.foreignCpu ?? 0) < (best.foreignCpu ?? 0)) best = r;
      if (!noisy) break;
      c.retried = (c.retried ?? 0) + (timed && attempt < RETRIES ? 1 : 0);
    }
    if (timed)
      c.samples.push({ wall: best.wall, cpu: best.cpu, rssMiB: best.rssMiB, foreignCpu: best.foreignCpu, steal: best.steal, disturbed: disturbed(best) });
  };

  // ---- warm page cache, a quiet machine, warm-up round, then alternating timed rounds
  for (const f of [box, signed]) warmCache(f);
  const quiet = waitQuiet(WAIT_QUIET);
  if (WARMUP) {
    log('warm-up round (untimed)');
    for (const c of contenders) once(c, false);
  }
  for (let i = 0; i < RUNS; i++) {
    log(`round ${i + 1}/${RUNS}`);
    // rotate the order every round so no contender always follows the same one
    const order = contenders.map((_, k) => contenders[(k + i) % contenders.length]);
    for (const c of order) once(c, true);
  }

  // ---- start-up: verify of a tiny signed box
  let startup = null;
  if (ONLY.has('startup')) {
    const tiny = path.join(scratch, 'tiny.box');
    await tinyBox(tiny);
    cli(['sign', tiny, '--key', key, '--name', 'bench/tiny', '--version', '1.0.0']);
    const series = (cmd, args) => {
      measure(cmd, args, { env, cwd: scratch }); // warm-up
      const xs = [];
      for (let i = 0; i < STARTUP_RUNS; i++) {
        const r = measure(cmd, args, { env, cwd: scratch });
        if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
        xs.push(r);
      }
      const walls = xs.map((r) => r.wall);
      return {
        median: median(walls),
        min: Math.min(...walls),
        max: Math.max(...walls),
        rssMiB: Math.max(...xs.map((r) => r.rssMiB ?? 0)) || null,
        disturbed: xs.filter(disturbed).length,
        walls,
      };
    };
    log(`start-up: ${STARTUP_RUNS} runs each of boxsig verify (tiny box), boxsig --version, node -e 0`);
    startup = {
      verify: series(NODE, [CLI, 'verify', tiny, '-q']),
      version: series(NODE, [CLI, '--version']),
      node: series(NODE, ['-e', '0']),
      boxBytes: fs.statSync(tiny).size,
    };
  }

  // ---- peak memory at a second size
  const memory = [];
  const memoryAt = (size, file, sig) => {
    const e = { ...env, BOXSIG_HOME: path.join(scratch, 'mem-home') };
    const m = { size, sign: null, verify: null, add: null };
    const ok = (r, what) => {
      if (r.status !== 0) throw new Error(`${what} at ${formatSize(size)} failed: ${r.stderr.slice(-1000)}`);
      return { wall: r.wall, cpu: r.cpu, rssMiB: r.rssMiB };
    };
    syncDisks();
    m.sign = ok(measure(NODE, [CLI, 'sign', file, '--key', key, '--name', NAME, '--version', VERSION, '-o', sig], { env: e, cwd: scratch }), 'sign');
    syncDisks();
    m.verify = ok(measure(NODE, [CLI, 'verify', sig, '-q'], { env: e, cwd: scratch }), 'verify');
    if (hasAdd) {
      const vh = path.join(scratch, 'mem-vagrant-home');
      rmrf(vh);
      rmrf(e.BOXSIG_HOME);
      syncDisks();
      m.add = ok(measure(NODE, [CLI, 'add', sig, '--vagrant-home', vh, '--name', NAME, '-q'], { env: e, cwd: scratch }), 'add');
      rmrf(vh);
    }
    rmrf(sig);
    return m;
  };
  if (MEMORY_SIZE !== null && MEMORY_SIZE !== SIZE) {
    const { file: big } = await ensureBox(WORK, MEMORY_SIZE, SEED, { log, compressor });
    log(`memory check at ${formatSize(MEMORY_SIZE)}: sign, verify, add once each`);
    warmCache(big);
    memory.push(memoryAt(MEMORY_SIZE, big, path.join(scratch, 'mem-signed.box')));
  }

  // ---- optional CPU profiles of the main thread
  const profiles = {};
  if (opts.profile) {
    const dir = path.join(WORK, 'profiles');
    rmrf(dir);
    const prof = (name, args, e = env) => {
      const d = path.join(dir, name);
      fs.mkdirSync(d, { recursive: true });
      syncDisks();
      const r = measure(NODE, ['--cpu-prof', '--cpu-prof-dir', d, CLI, ...args], { env: e, cwd: scratch });
      if (r.status !== 0) throw new Error(`profiling ${name} failed: ${r.stderr}`);
      const f = fs.readdirSync(d).find((x) => x.endsWith('.cpuprofile'));
      profiles[name] = { wall: r.wall, cpu: r.cpu, ...summarizeProfile(path.join(d, f)) };
      log(`profiled ${name}: ${path.relative(process.cwd(), path.join(d, f))}`);
    };
    const out = path.join(scratch, 'prof-out.box');
    if (ONLY.has('sign')) prof('sign', ['sign', box, '--key', key, '--name', NAME, '--version', VERSION, '-o', out]);
    rmrf(out);
    if (ONLY.has('verify')) prof('verify', ['verify', signed, '-q']);
    if (ONLY.has('add') && hasAdd) {
      const d = path.join(scratch, 'prof-add');
      rmrf(d);
      const e = { ...env, BOXSIG_HOME: path.join(d, 'boxsig-home') };
      prof(
        'add',
        ['add', signed, '--vagrant-home', path.join(d, 'vagrant-home'), '--name', NAME, '--checksum', checksum, '--checksum-type', 'sha256', '-q'],
        e,
      );
      rmrf(d);
    }
  }

  return { box, boxMeta, signedBytes, contenders, startup, memory, profiles, hasAdd, quiet };
}

// ---------------------------------------------------------------- report
function stats(c) {
  if (c.missing.length) return { status: 'missing', note: `missing: ${c.missing.join(', ')} not installed` };
  if (c.failed) return { status: 'failed', note: `FAILED: ${c.failed}` };
  if (!c.samples.length) return { status: 'not run', note: 'not run' };
  const w = c.samples.map((s) => s.wall);
  const cpus = c.samples.map((s) => s.cpu).filter((x) => x !== null);
  const rss = c.samples.map((s) => s.rssMiB).filter((x) => x !== null);
  return {
    status: 'ok',
    median: median(w),
    min: Math.min(...w),
    max: Math.max(...w),
    cpu: median(cpus),
    peakRssMiB: rss.length ? Math.max(...rss) : null,
    disturbed: c.samples.filter((x) => x.disturbed).length,
    repeated: c.retried ?? 0,
  };
}

function report({ boxMeta, signedBytes, contenders, startup, memory, profiles, hasAdd, quiet }) {
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    ramGiB: Math.round(os.totalmem() / GiB),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tools: Object.fromEntries(['gzip', 'pigz', 'openssl', 'tar', 'bsdtar', 'gpg', 'vagrant', 'bash'].map((t) => [t, TOOLS[t] ? toolVersion(t) : 'missing'])),
  };
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const L = [];
  const say = (s = '') => L.push(s);
  say(`### boxsig benchmark (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`);
  say();
  say(`- command: \`${command}\``);
  say(`- machine: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM, ${machine.os}`);
  say(`- node ${machine.node}; ${Object.values(machine.tools).join('; ')}`);
  const mix = Object.entries(boxMeta.mix)
    .map(([k, v]) => `${(v * 100).toFixed(0)}% ${k}`)
    .join(', ');
  say(
    `- box: ${formatSize(boxMeta.diskBytes)} disk image (seed ${boxMeta.seed}: ${mix}; blocks of 4 KiB–16 MiB), ` +
      `${formatSize(boxMeta.bytes)} as gzip (${boxMeta.compressor}), ${formatSize(signedBytes)} signed`,
  );
  say(
    `- ${RUNS} timed run(s) per contender, alternating in rotating order, ${WARMUP ? 'after one untimed warm-up run each' : 'no warm-up'}; ` +
      `page cache warm for every run (the boxes are read before), \`sync\` before each run; medians, min–max; CPU = user+sys`,
  );
  const allSamples = contenders.flatMap((c) => c.samples);
  const foreign = allSamples.filter((x) => x.foreignCpu !== null).map((x) => x.foreignCpu / x.wall);
  const nDisturbed = allSamples.filter((x) => x.disturbed).length;
  const nRepeated = contenders.reduce((a, c) => a + (c.retried ?? 0), 0);
  if (SIZE < 256 * MiB) say(`- NOTE: a ${formatSize(SIZE)} box measures start-up costs, not throughput: judge the targets on a run at 1 GiB`);
  if (foreign.length) {
    say(
      `- other processes during the timed runs: median ${(median(foreign) * 100).toFixed(0)}%, max ${(Math.max(...foreign) * 100).toFixed(0)}% of a core` +
        `${quiet?.load !== null && quiet?.load !== undefined ? ` (${(quiet.load * 100).toFixed(0)}% before start${quiet.waited > 3 ? `, after waiting ${quiet.waited.toFixed(0)} s` : ''})` : ''}` +
        `; ${nRepeated} disturbed run(s) repeated, ${nDisturbed} still disturbed (marked †)`,
    );
  }
  say();
  say('| task | contender | median | min–max | CPU | peak RSS | boxsig ÷ contender |');
  say('|---|---|--:|--:|--:|--:|--:|');
  const json = {
    schema: 1,
    date: new Date().toISOString(),
    command,
    machine,
    options: { size: SIZE, seed: SEED, runs: RUNS, warmup: WARMUP, memorySize: MEMORY_SIZE, only: [...ONLY], waitQuiet: WAIT_QUIET, retries: RETRIES },
    quiet,
    box: { ...boxMeta, signedBytes },
    contenders: [],
    startup: null,
    memory,
    targets: [],
    profiles,
  };
  const byId = new Map(contenders.map((c) => [c.id, { ...c, stats: stats(c) }]));
  for (const c of byId.values()) json.contenders.push({ id: c.id, label: c.label, groups: c.groups, boxsig: !!c.boxsig, ...c.stats, samples: c.samples });
  const mine = { sign: byId.get('sign'), verify: byId.get('verify'), add: byId.get('add') };
  const ratio = (a, b) => (a?.stats.median && b?.stats.median ? a.stats.median / b.stats.median : null);
  for (const group of ['sign', 'verify', 'add']) {
    if (!ONLY.has(group)) continue;
    for (const c of byId.values()) {
      if (!c.groups.includes(group)) continue;
      const s = c.stats;
      const shared = c.groups.length > 1 && c.groups[0] !== group ? ' (same runs as above)' : '';
      const label = (c.boxsig ? `**${c.label}**` : `${c.label}${shared}`).replaceAll('|', '\\|');
      if (s.status !== 'ok') {
        say(`| ${group} | ${label} | ${s.note} | | | | |`);
        continue;
      }
      const r = c.boxsig ? '—' : ratio(mine[group], c);
      say(
        `| ${group} | ${label} | ${secs(s.median)}${s.disturbed ? ` †${s.disturbed}` : ''} | ${secs(s.min)}–${secs(s.max)} | ${secs(s.cpu)} | ${c.boxsig && s.peakRssMiB ? `${s.peakRssMiB.toFixed(0)} MiB` : ''} | ${
          typeof r === 'number' ? `${r.toFixed(2)}×` : r === null ? 'n/a' : r
        } |`,
      );
    }
  }
  if (startup) {
    const row = (label, s, extra = '') =>
      say(`| start-up | ${label} | ${secs(s.median)}${s.disturbed ? ` †${s.disturbed}` : ''} | ${secs(s.min)}–${secs(s.max)} | | ${extra} | |`);
    row(`**boxsig verify, tiny signed box** (${STARTUP_RUNS} runs)`, startup.verify, startup.verify.rssMiB ? `${startup.verify.rssMiB.toFixed(0)} MiB` : '');
    row('boxsig --version (CLI load only)', startup.version);
    row('node -e 0 (bare Node.js)', startup.node);
    json.startup = startup;
  }
  for (const m of memory) {
    for (const k of ['sign', 'verify', 'add']) {
      if (!m[k]) continue;
      say(`| memory ${formatSize(m.size)} | **boxsig ${k}** (1 run) | ${secs(m[k].wall)} | | ${secs(m[k].cpu)} | ${m[k].rssMiB?.toFixed(0) ?? '?'} MiB | |`);
    }
  }
  say();

  // ---- targets
  const T = json.targets;
  const target = (name, value, limit, measured, unit = '×') => {
    const ok = value === null ? null : value <= limit;
    T.push({ name, value, limit, ok, measured });
    const v =
      value === null ? measured : `${unit === '×' ? value.toFixed(2) : value.toFixed(0)}${unit === '×' ? '×' : ` ${unit}`}${measured ? ` (${measured})` : ''}`;
    say(`| ${name} | ${v} | ${ok === null ? 'not measured' : ok ? 'PASS' : '**FAIL**'} |`);
  };
  const pair = (a, b) =>
    a?.stats.median && b?.stats.median
      ? `${secs(a.stats.median)} vs ${secs(b.stats.median)}`
      : a && a.stats.status !== 'ok'
        ? a.stats.note
        : b
          ? b.stats.note
          : 'not run';
  say('| target (PRODUCT.md) | measured | result |');
  say('|---|---|---|');
  if (ONLY.has('add')) {
    target('add ≤ 1.0× shell pipeline (openssl tee pigz -dc tar x)', ratio(mine.add, byId.get('shell')), 1.0, pair(mine.add, byId.get('shell')));
    target('add ≤ 0.5× vagrant box add --checksum', ratio(mine.add, byId.get('vagrant')), 0.5, pair(mine.add, byId.get('vagrant')));
  }
  if (ONLY.has('sign')) {
    target('sign ≤ 1.2× decompress + copy (gzip -dc + cp)', ratio(mine.sign, byId.get('floor-gzip')), 1.2, pair(mine.sign, byId.get('floor-gzip')));
    target('(stricter, informational) sign ≤ 1.2× pigz -dc + cp', ratio(mine.sign, byId.get('floor-pigz')), 1.2, pair(mine.sign, byId.get('floor-pigz')));
  }
  // peak RSS at every measured size; the PRODUCT sizes that were not measured are listed as such
  const peaks = new Map();
  const peakMain = Math.max(0, ...['sign', 'verify', 'add'].map((k) => mine[k]?.stats.peakRssMiB ?? 0));
  if (peakMain) {
    const which = ['sign', 'verify', 'add']
      .filter((k) => mine[k]?.stats.peakRssMiB)
      .map((k) => `${k} ${mine[k].stats.peakRssMiB.toFixed(0)}`)
      .join(', ');
    peaks.set(SIZE, { value: peakMain, which });
  }
  for (const m of memory) {
    const ks = ['sign', 'verify', 'add'].filter((k) => m[k]?.rssMiB);
    peaks.set(m.size, { value: Math.max(...ks.map((k) => m[k].rssMiB)), which: ks.map((k) => `${k} ${m[k].rssMiB.toFixed(0)}`).join(', ') });
  }
  if (!hasAdd) say(`| (peak RSS below excludes add: boxsig add is missing) | | |`);
  for (const s of [GiB, 4 * GiB]) if (!peaks.has(s)) peaks.set(s, null);
  for (const [s, p] of [...peaks.entries()].sort((a, b) => a[0] - b[0])) {
    if (p) target(`peak RSS ≤ 150 MiB at ${formatSize(s)}`, p.value, 150, `${p.which} MiB`, 'MiB');
    else
      target(
        `peak RSS ≤ 150 MiB at ${formatSize(s)}`,
        null,
        150,
        s === SIZE ? 'not run' : `not measured (add --memory${s === GiB ? ' --memory-size 1GiB' : ''})`,
      );
  }
  if (startup) target('small-box verify < 300 ms wall, start-up included', startup.verify.median * 1000, 300, `median of ${STARTUP_RUNS}`, 'ms');

  // ---- profiles
  const names = Object.keys(profiles);
  if (names.length) {
    say();
    say('Main-thread CPU profiles (`node --cpu-prof`, one run each; the profiler adds some overhead):');
    say();
    say('```');
    for (const n of names) {
      say(`boxsig ${formatProfile(n, profiles[n])}`);
      say(`  (whole process: wall ${secs(profiles[n].wall)}, cpu ${secs(profiles[n].cpu)})`);
    }
    say('```');
  }

  const text = L.join('\n') + '\n';
  process.stdout.write(text);
  fs.writeFileSync(path.join(WORK, 'last.json'), JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(path.join(WORK, 'last.md'), text);
  log(`results written to ${path.relative(process.cwd(), path.join(WORK, 'last.json'))} and last.md`);
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e.message}`);
  process.exit(1);
});
