#!/usr/bin/env node
// boxsig registry benchmark: `npm run bench:registry [-- options]` (builds first, then runs this).
//
//   --size SIZE          disk image size of the generated box to upload (default 1GiB)
//   --seed N             seed of the generated content (default 1)
//   --runs N             timed uploads per contender, alternating (default 3)
//   --memory-sizes LIST  box sizes of the peak-memory part (default 1GiB,4GiB)
//   --only LIST          comma-separated subset of: upload,download,catalog,memory
//   --part-size MIB      part size of the plain multipart upload (default 5, lib-storage's)
//   --queue-size N       parts in flight of the plain multipart upload (default 4)
//   --wrk-seconds N      duration of each wrk run (default 10)
//   --wrk-connections N  (default 64)
//   --processes N        registry processes for the catalog reads (default 2)
//   --quick              smoke mode: 8MiB box, 1 run, memory at 8MiB, wrk for 1 s
//   --work DIR           cache and scratch directory (default bench/.work)
//
// Needs the engines (scripts/services/postgres.sh and swift.sh print the variables), nginx
// and wrk. Boxes come from the main benchmark's generator (bench/lib/box.mjs), cached in WORK.
//
// The reference contenders (this branch):
//   plain multipart upload   the box streamed to the store by lib-storage's Upload, in a child
//                            process: the baseline of "upload with validation" (≤ 1.15×)
//   plain download           GetObject of the same object, streamed (reference only)
//   nginx                    nginx (2 workers) serving the same catalog JSON; wrk measures
//                            requests per second: the baseline of catalog reads (≥ 0.5×)
//   peak memory              peak RSS of the plain upload at each --memory-sizes (the registry: a fresh
//                            process per size, its RSS before the upload and its peak)
//
// The registry's contenders plug in through bench/registry/registry-contender.mjs, which the
// registry provides; without it the harness prints "registry: not available on this branch".
// That module exports
//
//   export async function start({ processes, s3, databaseUrl, work, log }) → {
//     label: string,                       // e.g. 'boxsig registry (2 processes)'
//     prepare?(file): Promise<string>,     // the box the registry accepts (e.g. signed, for
//                                          // its policy); both contenders then upload that file
//     uploadWithValidation(file): Promise<void>,   // one validated publish into the same store
//     catalogUrl: string | string[],       // the published box's catalog (one URL per process,
//                                          // or one behind a balancer); nginx serves its bytes
//     pids(): number[],                    // the registry processes, for their peak RSS
//     stop(): Promise<void>,
//   }
//
// Results: a table with medians and the REGISTRY.md targets, also in WORK/registry-last.json
// and WORK/registry-last.md. Nothing here is a test: `npm test` never times anything.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MiB, GiB, ensureBox, formatSize, parseSize } from '../lib/box.mjs';
import { s3FromEnv, START_ENGINES } from './s3.mjs';
import { startNginx, which, wrk } from './nginx-wrk.mjs';
import { sampleCatalog } from './catalog.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const TRANSFER = path.join(HERE, 's3-transfer.mjs');
const PLUGIN = path.join(HERE, 'registry-contender.mjs');

const { values: opts } = parseArgs({
  options: {
    size: { type: 'string' },
    seed: { type: 'string', default: '1' },
    runs: { type: 'string' },
    'memory-sizes': { type: 'string' },
    only: { type: 'string', default: 'upload,download,catalog,memory' },
    'part-size': { type: 'string', default: '5' },
    'queue-size': { type: 'string', default: '4' },
    'wrk-seconds': { type: 'string' },
    'wrk-connections': { type: 'string', default: '64' },
    processes: { type: 'string', default: '2' },
    quick: { type: 'boolean', default: false },
    work: { type: 'string' },
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
const SIZE = parseSize(opts.size ?? (quick ? '8MiB' : '1GiB'));
const SEED = Number(opts.seed);
const RUNS = Number(opts.runs ?? (quick ? 1 : 3));
const MEMORY_SIZES = (opts['memory-sizes'] ?? (quick ? '8MiB' : '1GiB,4GiB')).split(',').map(parseSize);
const ONLY = new Set(opts.only.split(',').map((s) => s.trim()));
const WRK = { seconds: Number(opts['wrk-seconds'] ?? (quick ? 1 : 10)), connections: Number(opts['wrk-connections']), threads: 2 };
const PROCESSES = Number(opts.processes);
const WORK = path.resolve(opts.work ?? path.join(ROOT, 'bench', '.work'));
for (const o of ONLY) if (!['upload', 'download', 'catalog', 'memory'].includes(o)) throw new Error(`--only: unknown part ${o}`);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs must be a positive integer');

const log = (m) => process.stderr.write(`bench:registry: ${m}\n`);
const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const compressor = which('pigz') ? ['pigz', ['-6', '-n', '-c']] : ['gzip', ['-6', '-n', '-c']];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const secs = (x) => (x == null ? '—' : x < 1 ? `${(x * 1000).toFixed(0)} ms` : `${x.toFixed(2)} s`);
const mibps = (bytes, s) => (s ? `${(bytes / MiB / s).toFixed(0)} MiB/s` : '—');

/** Environment of the children: no loaders injected by a test runner. */
function childEnv() {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** Run a reference transfer in a child under /usr/bin/time: wall seconds and peak RSS. */
function transfer(args) {
  const cmd = TIME ? [TIME, ['-f', '\n__BENCH__ %M', process.execPath, TRANSFER, ...args]] : [process.execPath, [TRANSFER, ...args]];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd[1], { env: childEnv(), encoding: 'utf8', maxBuffer: 16 * MiB });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /__BENCH__ (\d+)\s*$/.exec(r.stderr ?? '');
  if (r.status !== 0)
    throw new Error(`s3-transfer ${args[0]} failed (${r.status ?? r.signal}): ${(r.stderr ?? '').replace(/\n?__BENCH__.*$/s, '').slice(-2000)}`);
  return { wall, rssMiB: m ? Number(m[1]) / 1024 : null, bytes: JSON.parse(r.stdout.trim().split('\n').pop()).bytes };
}

/** A memory figure of a running process from /proc/PID/status (VmHWM: peak RSS, VmRSS: now), in MiB. */
function procMiB(pid, field) {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

async function loadRegistry(ctx) {
  if (!fs.existsSync(PLUGIN)) {
    log('registry: not available on this branch (no bench/registry/registry-contender.mjs): running the reference contenders only');
    return null;
  }
  const mod = await import(PLUGIN);
  log(`registry: starting ${PROCESSES} process(es)`);
  return mod.start(ctx);
}

const keyFor = (who, file) => `bench/${who}/${process.pid}-${crypto.randomBytes(4).toString('hex')}-${path.basename(file)}`;

// ---------------------------------------------------------------- parts
async function uploadPart(file, bytes, registry) {
  const plain = { id: 'plain-upload', label: `plain multipart upload (lib-storage, ${opts['part-size']} MiB parts × ${opts['queue-size']})`, samples: [] };
  // the SDK's default signs each part with its SHA-256; the registry sends UNSIGNED-PAYLOAD parts over loopback and https
  const unsigned = {
    id: 'plain-upload-unsigned',
    label: `plain multipart upload, UNSIGNED-PAYLOAD parts (lib-storage, ${opts['part-size']} MiB parts × ${opts['queue-size']})`,
    samples: [],
  };
  const mine = registry ? { id: 'registry-upload', label: `${registry.label}: upload with validation`, samples: [] } : null;
  const plainRun = (c, parts) => () => {
    const key = keyFor('plain', file);
    const r = transfer(['put', file, key, opts['part-size'], opts['queue-size'], parts]);
    if (r.bytes !== bytes) throw new Error(`plain upload sent ${r.bytes} bytes, not ${bytes}`);
    transfer(['rm', key]);
    c.samples.push(r);
  };
  const runPlain = plainRun(plain, 'signed');
  const runUnsigned = plainRun(unsigned, 'unsigned');
  const runMine = async () => {
    const t0 = process.hrtime.bigint();
    await registry.uploadWithValidation(file);
    mine.samples.push({ wall: Number(process.hrtime.bigint() - t0) / 1e9 });
  };
  for (let i = 0; i < RUNS; i++) {
    log(`upload: run ${i + 1}/${RUNS}`);
    const order = mine ? (i % 2 ? [runMine, runPlain, runUnsigned] : [runPlain, runUnsigned, runMine]) : [runPlain, runUnsigned];
    for (const run of order) await run();
  }
  return [plain, unsigned, mine].filter(Boolean);
}

function downloadPart(file, bytes) {
  const key = keyFor('download', file);
  transfer(['put', file, key, opts['part-size'], opts['queue-size']]);
  const c = { id: 'plain-download', label: 'plain download (GetObject, streamed)', samples: [] };
  try {
    for (let i = 0; i < RUNS; i++) {
      const r = transfer(['get', key]);
      if (r.bytes !== bytes) throw new Error(`download got ${r.bytes} bytes, not ${bytes}`);
      c.samples.push(r);
    }
  } finally {
    transfer(['rm', key]);
  }
  return [c];
}

async function catalogPart(registry) {
  let json = sampleCatalog();
  if (registry) {
    const first = [registry.catalogUrl].flat()[0];
    const r = await fetch(first);
    if (r.status !== 200) throw new Error(`the registry's catalog ${first} answered ${r.status}`);
    json = await r.text(); // nginx serves exactly the registry's bytes
  }
  const dir = path.join(WORK, `nginx-${process.pid}`);
  const nginx = await startNginx({ dir, json, workers: PROCESSES });
  const out = [];
  try {
    log(`catalog: wrk on nginx (${PROCESSES} workers), ${WRK.seconds} s`);
    out.push({ id: 'nginx', label: `nginx (${PROCESSES} workers) serving the catalog file`, wrk: await wrk(nginx.url, WRK), bytes: Buffer.byteLength(json) });
  } finally {
    await nginx.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (registry) {
    log(`catalog: wrk on the registry, ${WRK.seconds} s`);
    out.push({ id: 'registry-catalog', label: `${registry.label}: catalog`, wrk: await wrk(registry.catalogUrl, WRK), bytes: Buffer.byteLength(json) });
  }
  return out;
}

/**
 * Peak RSS of the plain upload, and of a registry process that receives only this box: a fresh
 * single-process registry per size, so that its peak is this upload's and what the upload added
 * is its peak RSS less its RSS just before (the idle process: runtime, database and S3 clients).
 */
async function memoryPart(ctx) {
  const rows = [];
  for (const size of MEMORY_SIZES) {
    const { file, meta } = await ensureBox(WORK, size, SEED, { log, compressor });
    const registry = fs.existsSync(PLUGIN) ? await (await import(PLUGIN)).start({ ...ctx, processes: 1 }) : null;
    try {
      const box = registry?.prepare ? await registry.prepare(file) : file;
      const key = keyFor('memory', box);
      log(`memory: plain upload of the ${formatSize(size)} box`);
      const r = transfer(['put', box, key, opts['part-size'], opts['queue-size']]);
      transfer(['rm', key]);
      rows.push({ id: 'plain-upload', label: 'plain multipart upload (child process)', diskBytes: size, bytes: meta.bytes, peakRssMiB: r.rssMiB });
      if (registry) {
        log(`memory: the registry's upload of the ${formatSize(size)} box (a fresh process)`);
        const [pid] = registry.pids();
        const idle = procMiB(pid, 'VmRSS');
        await registry.uploadWithValidation(box);
        const peak = procMiB(pid, 'VmHWM');
        rows.push({
          id: 'registry-upload',
          label: `${registry.label.replace(/\d+ process(es)?/, '1 process')}, peak RSS (RSS before the upload)`,
          diskBytes: size,
          bytes: meta.bytes,
          peakRssMiB: peak,
          idleRssMiB: idle,
          addedMiB: peak != null && idle != null ? peak - idle : null,
        });
      }
    } finally {
      await registry?.stop();
    }
  }
  return rows;
}

// ---------------------------------------------------------------- report
function stats(c) {
  const walls = c.samples.map((s) => s.wall);
  const rss = c.samples.map((s) => s.rssMiB).filter((x) => x != null);
  return { median: median(walls), min: Math.min(...walls), max: Math.max(...walls), peakRssMiB: rss.length ? Math.max(...rss) : null };
}

function report(r) {
  const L = [];
  const say = (s = '') => L.push(s);
  const command = `npm run bench:registry${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  say(`### boxsig registry benchmark (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`);
  say();
  say(`- command: \`${command}\``);
  say(`- machine: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / GiB)} GiB RAM; node ${process.version}`);
  say(`- store: ${r.s3.endpoint} (region ${r.s3.region}, bucket ${r.s3.bucket})`);
  say(`- box: ${formatSize(r.box.diskBytes)} disk image (seed ${SEED}), ${formatSize(r.box.bytes)} as gzip; ${RUNS} run(s) per contender, alternating`);
  say(`- registry: ${r.registry ?? 'not available on this branch'}`);
  say(
    `- machine load (1-min average, ${os.cpus().length} cores): ${r.load[0].toFixed(1)} at the start, ${r.load[1].toFixed(1)} at the end (other processes share the store and the CPU)`,
  );
  if (SIZE < 256 * MiB) say(`- NOTE: a ${formatSize(SIZE)} box measures start-up costs, not throughput`);
  say();
  const targets = [];
  if (r.transfers.length) {
    say('| task | contender | median | min–max | throughput | peak RSS |');
    say('|---|---|--:|--:|--:|--:|');
    for (const c of r.transfers) {
      const s = stats(c);
      say(
        `| ${c.id.endsWith('download') ? 'download' : 'upload'} | ${c.label} | ${secs(s.median)} | ${secs(s.min)}–${secs(s.max)} | ${mibps(r.box.bytes, s.median)} | ${s.peakRssMiB ? `${s.peakRssMiB.toFixed(0)} MiB` : ''} |`,
      );
      c.stats = s;
    }
    say();
    const plain = r.transfers.find((c) => c.id === 'plain-upload');
    const mine = r.transfers.find((c) => c.id === 'registry-upload');
    if (plain)
      targets.push(
        target(
          'upload with validation ≤ 1.15× a plain multipart upload',
          mine && mine.stats.median / plain.stats.median,
          (x) => x <= 1.15,
          (x) => `${x.toFixed(2)}×`,
        ),
      );
    const bare = r.transfers.find((c) => c.id === 'plain-upload-unsigned');
    if (bare && mine)
      targets.push(
        target(
          '(stricter, informational) upload with validation ≤ 1.15× a plain multipart upload with UNSIGNED-PAYLOAD parts',
          mine.stats.median / bare.stats.median,
          (x) => x <= 1.15,
          (x) => `${x.toFixed(2)}×`,
        ),
      );
  }
  if (r.catalog.length) {
    say('| catalog reads | requests/s | mean latency | errors |');
    say('|---|--:|--:|--:|');
    for (const c of r.catalog)
      say(`| ${c.label} (${c.bytes} B) | ${c.wrk.rps.toFixed(0)} | ${secs(c.wrk.latencyAvg)} | ${c.wrk.non2xx + c.wrk.socketErrors} |`);
    say();
    const nginx = r.catalog.find((c) => c.id === 'nginx');
    const mine = r.catalog.find((c) => c.id === 'registry-catalog');
    targets.push(
      target(
        `catalog reads ≥ 0.5× nginx (${PROCESSES} registry processes)`,
        mine && mine.wrk.rps / nginx.wrk.rps,
        (x) => x >= 0.5,
        (x) => `${x.toFixed(2)}×`,
      ),
    );
  }
  if (r.memory.length) {
    say('| peak memory | box | peak RSS |');
    say('|---|--:|--:|');
    for (const m of r.memory) {
      const idle = m.idleRssMiB != null ? ` (${m.idleRssMiB.toFixed(0)} MiB)` : '';
      say(`| ${m.label} | ${formatSize(m.diskBytes)} disk, ${formatSize(m.bytes)} gzip | ${m.peakRssMiB ? `${m.peakRssMiB.toFixed(0)} MiB${idle}` : 'n/a'} |`);
    }
    say();
    const big = r.memory.filter((m) => m.id === 'registry-upload').pop();
    targets.push(
      target(
        'memory per upload ≤ 200 MiB (largest box measured: peak RSS − RSS before the upload, one process)',
        big?.addedMiB,
        (x) => x <= 200,
        (x) => `${x.toFixed(0)} MiB`,
      ),
    );
    targets.push(
      target(
        "(stricter, informational) the process's whole peak RSS ≤ 200 MiB, idle runtime and clients included",
        big?.peakRssMiB,
        (x) => x <= 200,
        (x) => `${x.toFixed(0)} MiB`,
      ),
    );
  }
  say('| target (REGISTRY.md) | measured | result |');
  say('|---|--:|---|');
  for (const t of targets) say(`| ${t.name} | ${t.measured} | ${t.result} |`);
  const md = L.join('\n') + '\n';
  process.stdout.write(md);
  fs.writeFileSync(path.join(WORK, 'registry-last.md'), md);
  fs.writeFileSync(
    path.join(WORK, 'registry-last.json'),
    JSON.stringify({ schema: 1, date: new Date().toISOString(), command, ...r, targets }, null, 2) + '\n',
  );
}

function target(name, value, pass, fmt) {
  if (value == null || Number.isNaN(value)) return { name, measured: '—', result: 'registry: not available on this branch', value: null };
  return { name, measured: fmt(value), result: pass(value) ? 'PASS' : 'FAIL', value };
}

// ---------------------------------------------------------------- main
async function main() {
  const s3 = s3FromEnv();
  if (!s3) {
    log(`the engines are not configured (BOXSIG_TEST_S3_*, AWS_*): ${START_ENGINES}`);
    process.exit(2);
  }
  fs.mkdirSync(WORK, { recursive: true });
  const load0 = os.loadavg()[0];
  const ctx = { processes: PROCESSES, s3, databaseUrl: process.env.BOXSIG_TEST_DATABASE_URL ?? null, work: WORK, log };
  const registry = await loadRegistry(ctx);
  try {
    const { file: generated, meta } = await ensureBox(WORK, SIZE, SEED, { log, compressor });
    const file = registry?.prepare ? await registry.prepare(generated) : generated;
    const bytes = fs.statSync(file).size;
    const result = {
      s3: { ...s3, accessKeyId: undefined, secretAccessKey: undefined },
      box: { ...meta, bytes },
      registry: registry?.label ?? null,
      load: [load0],
      transfers: [],
      catalog: [],
      memory: [],
    };
    if (ONLY.has('upload')) result.transfers.push(...(await uploadPart(file, bytes, registry)));
    if (ONLY.has('download')) result.transfers.push(...downloadPart(file, bytes));
    if (ONLY.has('catalog')) result.catalog.push(...(await catalogPart(registry)));
    if (ONLY.has('memory')) result.memory.push(...(await memoryPart(ctx)));
    result.load.push(os.loadavg()[0]);
    report(result);
  } finally {
    await registry?.stop();
  }
}

main().catch((e) => {
  log(`FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
