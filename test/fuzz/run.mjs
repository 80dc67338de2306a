#!/usr/bin/env node
/**
 * boxsig fuzzer: seeded mutations of signed boxes (plain and gzip), read by
 * `verify` and `add` in-process through the library (fast), and every K-th
 * case also through the CLI.
 *
 *   npm run fuzz -- --cases 5000 --seed 42
 *   node test/fuzz/run.mjs --cases N --seed S [--workers 2] [--cli-every K]
 *                          [--only I] [--json] [--keep] [--no-add]
 *
 * Properties checked on every case:
 *  - nothing crashes: the library throws only BoxsigError (never a
 *    TypeError, never an internal error, never an unhandled rejection); the
 *    CLI exits 0, 1 or 3, without a stack trace or "Unhandled" on stderr;
 *  - anything accepted is byte-identical to the original box: the files
 *    verify reports, the files add installs and the files GNU tar and bsdtar
 *    extract (test/fuzz/differential.mjs) are exactly the original files;
 *  - verify and add agree on accepting or refusing;
 *  - a refused add leaves the boxes directory empty and no staging files;
 *    nothing ever appears outside the staging directory (the worker's
 *    sandbox and the fuzz directory are listed after every case).
 *
 * A failure prints the command that reproduces it (--seed S --only I).
 * Exit status: 0 when every property held, 1 otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fork, spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { caseRng, mutate } from './mutate.mjs';
import { differential, compareDir, hasCommand } from './differential.mjs';
import * as tar from '../corpus/tar.mjs';
import { newKey, pseudoRandom, sha256 } from '../corpus/generate.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const DIST = path.join(ROOT, 'dist');
const CLI = path.join(DIST, 'cli', 'main.js');
const NAME = 'fuzz/box';
const STACK = /\n\s+at .+[:(]\d+:\d+|Unhandled/;

function parseArgs(argv) {
  const o = { cases: 1000, seed: 1, workers: 2, cliEvery: 0, signEvery: 4, only: null, json: false, keep: false, add: true, worker: false, diff: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--cases') o.cases = Number(v());
    else if (a === '--seed') o.seed = v();
    else if (a === '--workers') o.workers = Number(v());
    else if (a === '--cli-every') o.cliEvery = Number(v());
    else if (a === '--sign-every') o.signEvery = Number(v());
    else if (a === '--only') o.only = Number(v());
    else if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--no-add') o.add = false;
    else if (a === '--no-diff') o.diff = false;
    else if (a === '--worker') o.worker = true;
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: node test/fuzz/run.mjs [--cases N] [--seed S] [--workers W] [--cli-every K] [--sign-every K] [--only I] [--json] [--keep] [--no-add] [--no-diff]',
      );
      process.exit(0);
    } else {
      console.error(`unknown argument ${a}`);
      process.exit(2);
    }
  }
  return o;
}

// ------------------------------------------------------------------ setup (parent)

/** The original files of the fuzzed boxes. */
function originalFiles() {
  return [
    { path: 'metadata.json', data: Buffer.from('{"provider":"virtualbox"}') },
    { path: 'Vagrantfile', data: Buffer.from('Vagrant.configure("2") do |config|\n  config.vm.box_check_update = false\nend\n') },
    { path: 'box-disk1.vmdk', data: pseudoRandom(6000, 3) },
    { path: 'sub/dir/notes.txt', data: Buffer.from('nested\n') },
    { path: `long-${'n'.repeat(110)}.txt`, data: Buffer.from('a name that needs a pax or GNU long-name header\n') },
    { path: 'empty', data: Buffer.alloc(0) },
  ];
}

/** Unsigned archives of the original files, in two encodings. */
function unsignedTar(style) {
  const parts = [];
  if (style === 'gnu') parts.push(tar.dir('./', { format: 'gnu' }));
  parts.push(tar.dir(style === 'gnu' ? './sub/' : 'sub/', { format: style === 'gnu' ? 'gnu' : 'ustar' }));
  for (const f of originalFiles()) {
    const name = style === 'gnu' ? `./${f.path}` : f.path;
    if (Buffer.byteLength(name) > 100) {
      if (style === 'gnu') parts.push(tar.gnuLong(name));
      else
        parts.push(
          tar.pax([
            ['path', name],
            ['mtime', '1700000000.25'],
          ]),
        );
    }
    parts.push(tar.file(name.slice(0, 100), f.data, { format: style === 'gnu' ? 'gnu' : 'ustar' }));
  }
  parts.push(tar.end());
  return Buffer.concat(parts);
}

async function setup(dir) {
  const { signBox, signerFromKey } = await import(pathToFileURL(path.join(DIST, 'index.js')).href);
  const key = await newKey({ uid: 'boxsig fuzzer' });
  const signer = signerFromKey(key, 'fuzz key');
  const bases = [];
  for (const [name, style, gzip] of [
    ['plain-pax', 'pax', false],
    ['gzip-gnu', 'gnu', true],
    ['gzip-pax', 'pax', true],
  ]) {
    const unsigned = path.join(dir, `${name}.unsigned`);
    const t = unsignedTar(style);
    fs.writeFileSync(unsigned, gzip ? zlib.gzipSync(t) : t);
    const out = path.join(dir, `${name}.box`);
    await signBox(unsigned, { signers: [signer], name: NAME, version: '1.0.0', output: out });
    fs.rmSync(unsigned);
    bases.push({ name, file: out, compressed: gzip });
  }
  const files = originalFiles().map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) }));
  // a second key, for co-signing (and stripping) the mutated boxes the way a release approver would
  const cosigner = (await newKey({ uid: 'boxsig fuzz co-signer' })).armor();
  return { fingerprint: signer.fingerprint, bases, files, cosigner };
}

// ------------------------------------------------------------------ worker

function listing(dir) {
  const out = [];
  const walk = (abs, rel) => {
    let names;
    try {
      names = fs.readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const a = path.join(abs, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(a);
      out.push(st.isDirectory() ? `${r}/` : r);
      if (st.isDirectory()) walk(a, r);
    }
  };
  walk(dir, '');
  return out;
}

function runCli(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      let json = null;
      try {
        json = JSON.parse(stdout);
      } catch {
        /* not JSON */
      }
      resolve({ code: code ?? 128, signal, stderr, json });
    });
    child.stdin.end();
  });
}

async function worker() {
  const msg = await new Promise((resolve) => process.once('message', resolve));
  const { fuzzDir, id, seed, indices, cliEvery, signEvery, setupInfo, add: doAdd, diff: doDiff } = msg;
  const sandbox = path.join(fuzzDir, `worker-${id}`);
  const home = path.join(sandbox, 'boxsig-home');
  process.env.BOXSIG_HOME = home;
  const { verifyBox, signBox, stripBox, signerFromKey, TrustStore, BoxsigError, isRefusalCode } = await import(pathToFileURL(path.join(DIST, 'index.js')).href);
  const openpgp = await import('openpgp');
  const cosigner = signerFromKey(await openpgp.readPrivateKey({ armoredKey: setupInfo.cosigner }), 'co-signer');
  const { addBox } = await import(pathToFileURL(path.join(DIST, 'vagrant', 'add.js')).href);
  const store = new TrustStore(home);
  const vh = path.join(sandbox, 'vagrant-home');
  const scratch = path.join(sandbox, 'scratch');
  fs.mkdirSync(scratch, { recursive: true });
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(vh, { recursive: true });
  const bases = setupInfo.bases.map((b) => {
    const raw = fs.readFileSync(b.file);
    return { ...b, raw, tar: b.compressed ? zlib.gunzipSync(raw) : raw };
  });
  const pins = [setupInfo.fingerprint];
  const canDiff = doDiff && hasCommand('tar') && hasCommand('bsdtar');
  const env = { ...process.env, BOXSIG_HOME: home, VAGRANT_HOME: vh, GNUPGHOME: path.join(sandbox, 'gnupg') };
  delete env.NODE_OPTIONS;
  const fuzzTop = fs.readdirSync(fuzzDir).sort().join(',');
  const sandboxTop = () => fs.readdirSync(sandbox).sort().join(',');

  let current = null;
  const stray = [];
  process.on('unhandledRejection', (e) => stray.push(`unhandled rejection: ${e?.stack ?? e}`));
  process.on('uncaughtException', (e) => stray.push(`uncaught exception: ${e?.stack ?? e}`));

  const classify = (e) => {
    if (e instanceof BoxsigError) {
      if (isRefusalCode(e.code)) return { outcome: 'refused', code: e.code, message: e.message };
      return { outcome: e.code === 'IO' ? 'error' : 'crash', code: e.code, message: e.message };
    }
    return { outcome: 'crash', code: e?.name ?? 'throw', message: String(e?.stack ?? e) };
  };

  for (const index of indices) {
    const rng = caseRng(seed, index);
    const base = rng.pick(bases);
    const { bytes, ops } = mutate(base, rng);
    const box = path.join(sandbox, `case.box`);
    fs.writeFileSync(box, bytes);
    current = index;
    const failures = [];
    const sandboxBefore = sandboxTop();
    const result = { index, base: base.name, ops, bytes: bytes.length, failures };

    // verify, in-process
    try {
      const v = await verifyBox(box, { pins, store, layers: [], cwd: scratch, expect: { name: NAME } });
      result.verify = { outcome: 'accepted' };
      const got = [...v.files].sort((a, b) => (a.path < b.path ? -1 : 1));
      const want = [...setupInfo.files].sort((a, b) => (a.path < b.path ? -1 : 1));
      if (JSON.stringify(got) !== JSON.stringify(want))
        failures.push(`verify accepted other files than the original: ${JSON.stringify(got.map((f) => f.path))}`);
      if (canDiff) for (const p of differential(box, setupInfo.files, path.join(scratch, 'diff'))) failures.push(`differential: ${p}`);
    } catch (e) {
      result.verify = classify(e);
    }

    // add, in-process, into the sandbox's Vagrant home
    if (doAdd) {
      try {
        const a = await addBox(box, { vagrantHome: vh, pins, store, layers: [], cwd: scratch, name: NAME });
        result.add = { outcome: 'accepted' };
        for (const p of compareDir(a.directory, setupInfo.files, 'add')) failures.push(p);
        const rest = listing(vh).filter((l) => !l.startsWith('boxes/') && !l.endsWith('/'));
        if (rest.length) failures.push(`add left files outside boxes/: ${rest.join(', ')}`);
      } catch (e) {
        result.add = classify(e);
        const files = listing(vh).filter((l) => !l.endsWith('/'));
        if (files.length) failures.push(`a refused add left files behind: ${files.slice(0, 5).join(', ')}`);
      }
      fs.rmSync(path.join(vh, 'boxes'), { recursive: true, force: true });
      if ((result.add.outcome === 'accepted') !== (result.verify.outcome === 'accepted')) {
        failures.push(`verify ${result.verify.outcome} (${result.verify.code ?? ''}) but add ${result.add.outcome} (${result.add.code ?? ''})`);
      }
    }

    // co-sign and strip the mutated box (a release approver co-signing a box from CI): never a
    // crash, and a box sign produces extracts (GNU tar, bsdtar) to exactly what boxsig verifies
    if (signEvery > 0 && index % signEvery === 0) {
      const out = path.join(scratch, 'resigned.box');
      try {
        await signBox(box, { signers: [cosigner], name: NAME, version: '1.0.0', output: out });
        result.sign = { outcome: 'accepted' };
        try {
          const v = await verifyBox(out, { pins: [cosigner.fingerprint], store, layers: [], cwd: scratch });
          if (canDiff) for (const p of differential(out, v.files, path.join(scratch, 'diff'))) failures.push(`differential after sign: ${p}`);
          if (
            result.verify.outcome === 'accepted' &&
            JSON.stringify([...v.files].sort((a, b) => (a.path < b.path ? -1 : 1))) !==
              JSON.stringify([...setupInfo.files].sort((a, b) => (a.path < b.path ? -1 : 1)))
          ) {
            failures.push('co-signing a box that verified changed its files');
          }
        } catch (e) {
          const c = classify(e);
          failures.push(`a box boxsig sign wrote does not verify: ${c.code}: ${c.message.slice(0, 300)}`);
        }
      } catch (e) {
        result.sign = classify(e);
        if (result.sign.code === 'USAGE') result.sign.outcome = 'refused';
      }
      fs.rmSync(out, { force: true });
      try {
        await stripBox(box, out);
        result.strip = { outcome: 'accepted' };
      } catch (e) {
        result.strip = classify(e);
        if (result.strip.code === 'USAGE') result.strip.outcome = 'refused';
      }
      fs.rmSync(out, { force: true });
      for (const f of fs.readdirSync(scratch)) if (f.startsWith('.resigned.box')) failures.push(`sign left a temporary file: ${f}`);
    }

    // the same through the CLI, every K-th case
    if (cliEvery > 0 && index % cliEvery === 0) {
      result.cli = {};
      const v = await runCli(['verify', box, '--name', NAME, '--pin', pins[0], '--json'], env);
      result.cli.verify = v.code;
      const expected = result.verify.outcome === 'accepted' ? 0 : result.verify.outcome === 'refused' ? 1 : 3;
      if (![0, 1, 3].includes(v.code)) failures.push(`CLI verify exited ${v.code}${v.signal ? ` (${v.signal})` : ''}`);
      if (STACK.test(v.stderr)) failures.push(`CLI verify printed a stack trace: ${v.stderr.slice(0, 500)}`);
      if (v.code !== expected) failures.push(`CLI verify exited ${v.code}, the library said ${result.verify.outcome}`);
      else if (v.code === 1 && v.json?.code !== result.verify.code)
        failures.push(`CLI verify refused as ${v.json?.code}, the library as ${result.verify.code}`);
      if (doAdd) {
        const a = await runCli(['add', box, '--vagrant-home', vh, '--name', NAME, '--pin', pins[0], '--json', '-q'], env);
        result.cli.add = a.code;
        if (![0, 1, 3].includes(a.code)) failures.push(`CLI add exited ${a.code}${a.signal ? ` (${a.signal})` : ''}`);
        if (STACK.test(a.stderr)) failures.push(`CLI add printed a stack trace: ${a.stderr.slice(0, 500)}`);
        if (a.code === 0) for (const p of compareDir(a.json.directory, setupInfo.files, 'CLI add')) failures.push(p);
        else if (listing(vh).some((l) => !l.endsWith('/'))) failures.push('a refused CLI add left files behind');
        fs.rmSync(path.join(vh, 'boxes'), { recursive: true, force: true });
      }
    }

    // nothing may appear outside the staging directory
    if (sandboxTop() !== sandboxBefore) failures.push(`new entries in the worker sandbox: ${sandboxTop()} (was ${sandboxBefore})`);
    if (fs.readdirSync(fuzzDir).sort().join(',') !== fuzzTop) failures.push(`new entries in the fuzz directory: ${fs.readdirSync(fuzzDir).join(',')}`);
    for (const mode of ['verify', 'add', 'sign', 'strip']) {
      const r = result[mode];
      if (r?.outcome === 'crash') failures.push(`${mode} crashed: ${r.code}: ${r.message.slice(0, 800)}`);
    }
    if (stray.length) failures.push(...stray.splice(0));
    if (failures.length) {
      const keep = path.join(fuzzDir, 'failures');
      fs.mkdirSync(keep, { recursive: true });
      fs.copyFileSync(box, path.join(keep, `case-${index}.box`));
      result.kept = path.join(keep, `case-${index}.box`);
    }
    process.send({ type: 'result', result });
  }
  current = null;
  void current;
  // disconnect once 'done' (and so every result before it) is written to the channel, not after a delay
  await new Promise((r) => process.send({ type: 'done' }, r));
  process.disconnect();
}

// ------------------------------------------------------------------ parent

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.worker) return worker();
  if (!fs.existsSync(CLI)) {
    console.error('dist/ is missing: run `npm run build` first (npm run fuzz does)');
    process.exit(2);
  }
  const started = Date.now();
  const fuzzDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-fuzz-'));
  const setupInfo = await setup(fuzzDir);
  const indices = o.only !== null ? [o.only] : Array.from({ length: o.cases }, (_, i) => i);
  const nWorkers = Math.max(1, Math.min(o.workers, indices.length));
  for (let w = 0; w < nWorkers; w++) fs.mkdirSync(path.join(fuzzDir, `worker-${w}`), { recursive: true });
  fs.mkdirSync(path.join(fuzzDir, 'failures'), { recursive: true });

  const results = [];
  const workerFailures = [];
  await Promise.all(
    Array.from({ length: nWorkers }, (_, w) => {
      const mine = indices.filter((_, k) => k % nWorkers === w);
      return new Promise((resolve) => {
        const env = { ...process.env };
        delete env.NODE_OPTIONS;
        const child = fork(fileURLToPath(import.meta.url), ['--worker'], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const seen = new Set();
        child.on('message', (m) => {
          if (m.type === 'result') {
            results.push(m.result);
            seen.add(m.result.index);
          }
        });
        child.on('exit', (code, signal) => {
          const missing = mine.filter((i) => !seen.has(i));
          if (missing.length)
            workerFailures.push({ index: missing[0], failures: [`worker ${w} died (exit ${code}${signal ? `, ${signal}` : ''}) during case ${missing[0]}`] });
          resolve();
        });
        child.send({ fuzzDir, id: w, seed: o.seed, indices: mine, cliEvery: o.cliEvery, signEvery: o.signEvery, setupInfo, add: o.add, diff: o.diff });
      });
    }),
  );
  const seconds = (Date.now() - started) / 1000;

  const summary = {
    seed: o.seed,
    cases: results.length,
    workers: nWorkers,
    seconds: Number(seconds.toFixed(1)),
    casesPerSecond: Number((results.length / seconds).toFixed(1)),
    accepted: { verify: 0, add: 0, sign: 0, strip: 0 },
    refused: {},
    errors: {},
    cli: { runs: 0, exits: {} },
    differentialChecks: 0,
    failures: [],
    fuzzDir: o.keep ? fuzzDir : null,
  };
  for (const r of results.sort((a, b) => a.index - b.index)) {
    for (const mode of ['verify', 'add', 'sign', 'strip']) {
      const x = r[mode];
      if (!x) continue;
      if (x.outcome === 'accepted') summary.accepted[mode]++;
      else if (x.outcome === 'refused' && mode === 'verify') summary.refused[x.code] = (summary.refused[x.code] ?? 0) + 1;
      else if (x.outcome !== 'refused') summary.errors[`${mode} ${x.code}`] = (summary.errors[`${mode} ${x.code}`] ?? 0) + 1;
    }
    if (r.verify?.outcome === 'accepted') summary.differentialChecks++;
    if (r.sign?.outcome === 'accepted') summary.differentialChecks++;
    if (r.cli) {
      for (const c of Object.values(r.cli)) {
        summary.cli.runs++;
        summary.cli.exits[c] = (summary.cli.exits[c] ?? 0) + 1;
      }
    }
    if (r.failures.length)
      summary.failures.push({
        index: r.index,
        base: r.base,
        ops: r.ops,
        failures: r.failures,
        kept: r.kept,
        reproduce: `npm run fuzz -- --seed ${o.seed} --only ${r.index} --keep`,
      });
  }
  summary.failures.push(...workerFailures.map((f) => ({ ...f, reproduce: `npm run fuzz -- --seed ${o.seed} --only ${f.index} --keep` })));
  if (summary.failures.length && !o.keep) summary.fuzzDir = fuzzDir; // keep the failing boxes

  if (o.json) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log(`boxsig fuzz: seed ${o.seed}, ${summary.cases} cases on ${nWorkers} worker(s) in ${summary.seconds} s (${summary.casesPerSecond} cases/s)`);
    console.log(
      `  accepted: verify ${summary.accepted.verify}, add ${summary.accepted.add}, co-sign ${summary.accepted.sign}, strip ${summary.accepted.strip}; differential checks (GNU tar, bsdtar): ${summary.differentialChecks}`,
    );
    console.log(
      `  refused by code (verify): ${
        Object.entries(summary.refused)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'
      }`,
    );
    if (Object.keys(summary.errors).length)
      console.log(
        `  other errors: ${Object.entries(summary.errors)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
    if (summary.cli.runs) console.log(`  CLI runs: ${summary.cli.runs}, exit statuses ${JSON.stringify(summary.cli.exits)}`);
    console.log(`  failures: ${summary.failures.length}`);
    for (const f of summary.failures.slice(0, 20)) {
      console.log(`  - case ${f.index} (${f.base ?? '?'}; ${(f.ops ?? []).join('; ')})`);
      for (const x of f.failures) console.log(`      ${x.split('\n').join('\n      ')}`);
      console.log(`      reproduce: ${f.reproduce}${f.kept ? `; box: ${f.kept}` : ''}`);
    }
  }
  if (!summary.fuzzDir) fs.rmSync(fuzzDir, { recursive: true, force: true });
  process.exitCode = summary.failures.length ? 1 : 0;
}

await main();
