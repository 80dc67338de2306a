// boxsig scale benchmark: `npm run bench -- --scale [options]` (issue 18 items 7-9).
//
//   --runs N        timed runs per case (default 3; the median is reported)
//   --boxes LIST    installed-box counts for verify --installed (default 10,100,1000)
//   --names N       recorded names of the large trust store (default 10000)
//   --cli PATH      the boxsig CLI to measure (default dist/cli/main.js), e.g. an older build
//   --work DIR      cache and scratch directory (default bench/.work)
//   --quick         smoke mode: 1 run, boxes 2,5, 50 names
//   --keep          keep the scratch directory (homes, stores, boxes) afterwards
//
// Measures what grows with the size of the trust store and the number of installed boxes:
//   - `boxsig add` of a small signed box with 10 and with N recorded names
//     (goal: at N names within 1.2x of 10 names);
//   - `boxsig verify --installed` of 10, 100 and 1,000 installed boxes with an empty
//     and an N-name store (goal: 1,000 boxes under 5 s whatever the store size).
// Installed boxes are written directly (each signed for its own name, pinned by a
// boxsig.json), so that generating 1,000 of them takes seconds, not an add each.
// Results go to WORK/scale.json and WORK/scale.md. Nothing here is a test.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    scale: { type: 'boolean', default: true },
    runs: { type: 'string' },
    boxes: { type: 'string' },
    names: { type: 'string' },
    cli: { type: 'string' },
    work: { type: 'string' },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
  strict: true,
});
const quick = opts.quick;
const RUNS = Number(opts.runs ?? (quick ? 1 : 3));
const BOXES = (opts.boxes ?? (quick ? '2,5' : '10,100,1000')).split(',').map(Number);
const NAMES = Number(opts.names ?? (quick ? 50 : 10_000));
const CLI = path.resolve(opts.cli ?? path.join(ROOT, 'dist', 'cli', 'main.js'));
const WORK = path.resolve(opts.work ?? path.join(ROOT, 'bench', '.work'));
const log = (m) => process.stderr.write(`bench --scale: ${m}\n`);

const lib = async (p) => import(path.join(ROOT, 'dist', p));
const { buildManifest, serializeManifest } = await lib('manifest/manifest.js');
const { loadSecretKey } = await lib('keys/keys.js');
const { signerFromKey } = await lib('keys/signer.js');

function env(extra) {
  const e = { ...process.env, BOXSIG_PASSPHRASE: '', VAGRANT_CHECKPOINT_DISABLE: '1', ...extra };
  delete e.NODE_OPTIONS;
  return e;
}

const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** Run the CLI once: wall time, and CPU time (user + system, from /usr/bin/time), which a busy machine disturbs less. */
function run(args, e, cwd) {
  const cmd = TIME ? [TIME, ['-f', '\n__SCALE__ %U %S', process.execPath, CLI, ...args]] : [process.execPath, [CLI, ...args]];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd[1], { env: e, cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /__SCALE__ ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? '');
  const stderr = (r.stderr ?? '').replace(/\n?__SCALE__[^\n]*\s*$/, '').replace(/Command exited with non-zero status \d+\s*$/, '');
  return { wall, cpu: m ? Number(m[1]) + Number(m[2]) : null, status: r.status, stdout: r.stdout, stderr };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const cpu = (x) => (x === null ? '—' : secs(x));
const secs = (x) => (x < 1 ? `${(x * 1000).toFixed(0)} ms` : `${x.toFixed(2)} s`);
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * A BOXSIG_HOME with `n` recorded names (none of them the ones measured), in
 * the measured CLI's own format: written as trust.json of format 1 (every
 * record inline, which every boxsig reads), then changed once by the CLI
 * (a pin, forgotten again), which writes it out as that CLI stores it.
 */
function storeHome(dir, n, fpr, project) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'trust.json'), inlineStore(n, fpr));
  for (const args of [
    ['trust', 'pin', 'prepare/store', fpr],
    ['trust', 'forget', 'prepare/store'],
  ]) {
    const r = run(args, env({ BOXSIG_HOME: dir }), project);
    if (r.status !== 0) throw new Error(`preparing a ${n}-name store: ${r.stderr}`);
  }
  return dir;
}

function inlineStore(n, fpr) {
  const boxes = {};
  const time = '2026-01-01T00:00:00Z';
  for (let i = 0; i < n; i++) {
    boxes[`filler/name-${i}`] = {
      keys: [fpr],
      firstSeen: time,
      updated: time,
      source: `https://boxes.example/filler/name-${i}`,
      highestVersion: `1.${i % 50}.0`,
      history: [{ time, event: 'first-use', keys: [fpr], version: '1.0.0' }],
    };
  }
  return JSON.stringify({ format: 1, pins: {}, boxes }, null, 2) + '\n';
}

/** Write `count` installed boxes, each signed for its own name, into a Vagrant home. */
async function installedBoxes(home, count, signer) {
  // whole seconds (as manifests state them), after the key's own creation
  await new Promise((r) => setTimeout(r, 1100));
  const created = new Date(Math.floor(Date.now() / 1000) * 1000);
  const metadata = Buffer.from('{"provider":"virtualbox"}');
  const disk = crypto.randomBytes(4096);
  const files = [
    { path: 'box-disk1.vmdk', size: disk.length, sha256: sha256(disk) },
    { path: 'metadata.json', size: metadata.length, sha256: sha256(metadata) },
  ];
  for (let i = 0; i < count; i++) {
    const name = `scale/box-${i}`;
    const dir = path.join(home, 'boxes', `scale-VAGRANTSLASH-box-${i}`, '1.0.0', 'virtualbox');
    fs.mkdirSync(path.join(dir, '.boxsig', 'signatures'), { recursive: true });
    fs.mkdirSync(path.join(dir, '.boxsig', 'keys'));
    const m = serializeManifest(buildManifest({ box: { name, version: '1.0.0', provider: 'virtualbox' }, created, files }));
    fs.writeFileSync(path.join(dir, 'metadata.json'), metadata);
    fs.writeFileSync(path.join(dir, 'box-disk1.vmdk'), disk);
    fs.writeFileSync(path.join(dir, '.boxsig', 'manifest.json'), m);
    fs.writeFileSync(path.join(dir, '.boxsig', 'signatures', `${signer.fingerprint}.asc`), await signer.sign(m, created));
    fs.writeFileSync(path.join(dir, '.boxsig', 'keys', `${signer.fingerprint}.asc`), signer.publicKey);
  }
}

async function main() {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const scratch = path.join(WORK, `scale-${process.pid}`);
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch, { recursive: true });
  try {
    return await measureAll(scratch);
  } finally {
    if (!opts.keep) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function measureAll(scratch) {
  // a key, a small signed box, a project file pinning the measured names to the key
  const keyPrefix = path.join(scratch, 'key');
  const k = spawnSync(
    process.execPath,
    [path.join(ROOT, 'dist', 'cli', 'main.js'), 'key', 'generate', '--uid', 'Scale <scale@bench.invalid>', '--out', keyPrefix, '--json'],
    {
      env: env({ BOXSIG_HOME: path.join(scratch, 'keygen-home') }),
      encoding: 'utf8',
    },
  );
  if (k.status !== 0) throw new Error(k.stderr);
  const fpr = JSON.parse(k.stdout).fingerprint;
  const secret = await loadSecretKey(fs.readFileSync(`${keyPrefix}.secret.asc`), 'bench key', async () => undefined);
  const signer = signerFromKey(secret, 'bench key');
  const project = path.join(scratch, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'boxsig.json'), JSON.stringify({ boxes: { 'scale/*': { pin: [fpr] } } }));

  const raw = path.join(scratch, 'raw');
  fs.mkdirSync(raw);
  fs.writeFileSync(path.join(raw, 'metadata.json'), '{"provider":"virtualbox"}');
  fs.writeFileSync(path.join(raw, 'box-disk1.vmdk'), crypto.randomBytes(64 * 1024));
  const unsigned = path.join(scratch, 'small.box');
  spawnSync('tar', ['czf', unsigned, '-C', raw, 'metadata.json', 'box-disk1.vmdk']);
  const box = path.join(scratch, 'small-signed.box');
  const s = run(['sign', unsigned, '--key', `${keyPrefix}.secret.asc`, '--name', 'scale/added', '--version', '1.0.0', '-o', box], env({}), scratch);
  if (s.status !== 0) throw new Error(s.stderr);

  const stores = {
    10: storeHome(path.join(scratch, 'store-10'), 10, fpr, project),
    [NAMES]: storeHome(path.join(scratch, `store-${NAMES}`), NAMES, fpr, project),
  };
  const result = {
    cli: CLI,
    names: NAMES,
    runs: RUNS,
    add: {},
    verifyInstalled: {},
    host: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}`,
  };

  // add with 10 and with NAMES recorded names: a fresh Vagrant home and a copy of the store each run
  for (const n of [10, NAMES]) {
    const walls = [];
    const cpus = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const home = path.join(scratch, `add-${n}-${i}`);
      fs.mkdirSync(home, { recursive: true });
      fs.cpSync(stores[n], path.join(home, 'boxsig'), { recursive: true });
      const r = run(['add', box, '--quiet'], env({ BOXSIG_HOME: path.join(home, 'boxsig'), VAGRANT_HOME: path.join(home, 'vagrant') }), project);
      if (r.status !== 0) throw new Error(`add with ${n} names failed: ${r.stderr}`);
      if (i > 0) {
        // the first run warms the caches
        walls.push(r.wall);
        cpus.push(r.cpu);
      }
      fs.rmSync(home, { recursive: true, force: true });
    }
    result.add[n] = { median: median(walls), cpu: TIME ? median(cpus) : null, runs: walls };
    log(`add with ${n} recorded names: ${secs(median(walls))}${TIME ? ` (CPU ${secs(median(cpus))})` : ''}`);
  }

  // verify --installed of each box count, with an empty and a NAMES store
  for (const count of BOXES) {
    const home = path.join(scratch, `installed-${count}`);
    await installedBoxes(path.join(home, 'vagrant'), count, signer);
    for (const [label, store] of [
      ['empty', null],
      [String(NAMES), stores[NAMES]],
    ]) {
      const bh = path.join(home, `boxsig-${label}`);
      if (store) fs.cpSync(store, bh, { recursive: true });
      else fs.mkdirSync(bh, { recursive: true });
      const walls = [];
      const cpus = [];
      for (let i = 0; i < RUNS; i++) {
        const r = run(['verify', '--installed', '--json'], env({ BOXSIG_HOME: bh, VAGRANT_HOME: path.join(home, 'vagrant') }), project);
        const j = JSON.parse(r.stdout);
        if (r.status !== 0 || j.boxes.length !== count) throw new Error(`verify --installed of ${count} boxes failed: ${r.stderr.slice(0, 2000)}`);
        walls.push(r.wall);
        cpus.push(r.cpu);
      }
      result.verifyInstalled[`${count}/${label}`] = { boxes: count, store: label, median: median(walls), cpu: TIME ? median(cpus) : null, runs: walls };
      log(`verify --installed of ${count} boxes, ${label === 'empty' ? 'empty store' : `${label}-name store`}: ${secs(median(walls))}`);
    }
    if (!opts.keep) fs.rmSync(home, { recursive: true, force: true });
  }
  return result;
}

function report(r) {
  const ratio = r.add[NAMES].median / r.add[10].median;
  const cpuRatio = r.add[NAMES].cpu !== null ? r.add[NAMES].cpu / r.add[10].cpu : null;
  const lines = [
    `Scale (${r.host}; ${r.runs} runs each, medians; CLI ${path.relative(process.cwd(), r.cli) || r.cli})`,
    '',
    '| case | store | median wall | median CPU (user+sys) | wall of each run |',
    '|---|---|---|---|---|',
    `| add of a small box | 10 names | ${secs(r.add[10].median)} | ${cpu(r.add[10].cpu)} | ${r.add[10].runs.map(secs).join(', ')} |`,
    `| add of a small box | ${NAMES} names | ${secs(r.add[NAMES].median)} | ${cpu(r.add[NAMES].cpu)} | ${r.add[NAMES].runs.map(secs).join(', ')} |`,
    ...Object.values(r.verifyInstalled).map(
      (v) =>
        `| verify --installed, ${v.boxes} boxes | ${v.store === 'empty' ? 'empty' : `${v.store} names`} | ${secs(v.median)} | ${cpu(v.cpu)} | ${v.runs.map(secs).join(', ')} |`,
    ),
    '',
    `add at ${NAMES} names / at 10 names: ${ratio.toFixed(2)}x wall${cpuRatio !== null ? `, ${cpuRatio.toFixed(2)}x CPU` : ''} (goal: at most 1.2x)`,
  ];
  const biggest = Math.max(...BOXES);
  const worst = Math.max(
    ...Object.values(r.verifyInstalled)
      .filter((v) => v.boxes === biggest)
      .map((v) => v.median),
  );
  lines.push(`verify --installed of ${biggest} boxes, slowest store: ${secs(worst)} wall${biggest === 1000 ? ' (goal: under 5 s)' : ''}`);
  const md = lines.join('\n') + '\n';
  fs.writeFileSync(path.join(WORK, 'scale.json'), JSON.stringify({ ...r, ratio, cpuRatio }, null, 2));
  fs.writeFileSync(path.join(WORK, 'scale.md'), md);
  process.stdout.write(md);
}

fs.mkdirSync(WORK, { recursive: true });
report(await main());
