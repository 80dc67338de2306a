// The registry's side of `npm run bench:registry` (issue 14 item 8): start N
// `boxsig registry serve` processes on one database and one blob store, sign
// a box, and upload it with validation — timed, with the peak RSS of the
// registry process that received it. The reference contenders (a plain
// multipart upload to the same store, nginx + wrk for catalog reads) live in
// bench/registry/ (infra branch); this module plugs into that harness.
//
//   const reg = await startRegistries({ n: 2, dir, database, s3 });
//   const provider = signForBench(reg, boxFile, '1.0.0');
//   const r = await uploadWithValidation(reg, boxFile, { version: '1.0.0', provider });
//   // r: { seconds, bytes, sha256, registryPeakRssMiB, registry }
//   reg.catalogUrl  // GET it with wrk (2 processes: reg.urls)
//   await reg.stop();
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

function cli(args, env) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`boxsig ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Peak resident set (VmHWM) of a process, in MiB. */
export function peakRssMiB(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

function startOne(flags, env) {
  const proc = spawn(process.execPath, [CLI, 'registry', 'serve', ...flags, '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`registry did not start: ${err}`)), 60_000);
    proc.stderr.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], proc });
      }
    });
    proc.on('exit', (code) => reject(new Error(`registry exited (${code}): ${err}`)));
  });
}

/**
 * Start `n` registry processes sharing one database and blob store.
 * Embedded (default): `--data dir` (one SQLite file and blob directory, shared).
 * PostgreSQL + S3: `database` URL and `s3` {endpoint, bucket, region, prefix}
 * (credentials from AWS_* in `env`). Creates org `bench`, a publish token and
 * a signing key; the org policy pins that key.
 */
export async function startRegistries({ n = 1, dir, database, s3, env = process.env, logLevel = 'warn' } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const flags = ['--data', path.join(dir, 'registry')];
  if (database) flags.push('--database', database);
  if (s3) flags.push('--s3-endpoint', s3.endpoint, '--s3-bucket', s3.bucket, '--s3-region', s3.region, ...(s3.prefix ? ['--s3-prefix', s3.prefix] : []));
  const e = {
    ...env,
    BOXSIG_HOME: path.join(dir, 'boxsig-home'),
    BOXSIG_PASSPHRASE: '',
    BOXSIG_REGISTRY_LOG_LEVEL: logLevel,
    BOXSIG_REGISTRY_UPLOADS_PER_TOKEN: '64',
  };
  const keyPrefix = path.join(dir, 'bench-key');
  const fpr = fs.existsSync(`${keyPrefix}.secret.asc`)
    ? null
    : JSON.parse(cli(['key', 'generate', '--uid', 'Bench <bench@example.invalid>', '--out', keyPrefix, '--json'], e)).fingerprint;
  const policy = path.join(dir, 'policy.json');
  if (fpr) fs.writeFileSync(policy, JSON.stringify({ boxes: { 'bench/*': { pin: [fpr] } } }));
  const orgs = JSON.parse(cli(['registry', 'org', 'list', ...flags, '--json'], e)).orgs;
  if (!orgs.some((o) => o.name === 'bench')) cli(['registry', 'org', 'create', 'bench', '--policy', policy, ...flags, '--json'], e);
  const token = JSON.parse(cli(['registry', 'token', 'create', '--org', 'bench', '--role', 'publish', '--member', 'bench', ...flags, '--json'], e)).token;
  const procs = [];
  for (let i = 0; i < n; i++) procs.push(await startOne(flags, e));
  const urls = procs.map((p) => p.url);
  return {
    urls,
    token,
    flags,
    env: e,
    key: `${keyPrefix}.secret.asc`,
    catalogUrl: `${urls[0]}/bench/box`,
    pids: procs.map((p) => p.proc.pid),
    async stop() {
      await Promise.all(
        procs.map(
          (p) =>
            new Promise((resolve) => {
              if (p.proc.exitCode !== null) return resolve();
              p.proc.once('exit', resolve);
              p.proc.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

async function api(reg, method, p, body, again = true) {
  let res;
  try {
    res = await fetch(`${reg.urls[0]}/api/v1${p}`, {
      method,
      headers: { authorization: `Bearer ${reg.token}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    // a kept-alive connection the registry closed while the harness was blocked in a synchronous
    // transfer (the memory part's 4 GiB plain upload): sent once more on a new connection
    if (again && e instanceof TypeError) return api(reg, method, p, body, false);
    throw e;
  }
  const json = await res.json();
  if (res.status !== 200 && !(res.status === 409 && method === 'POST')) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * Sign `file` in place as bench/box `version` (the upload is then fully
 * validated: signature, pin, every file's hash). Returns the provider its
 * metadata.json names.
 */
export function signForBench(reg, file, version) {
  return JSON.parse(cli(['sign', file, '--key', reg.key, '--name', 'bench/box', '--version', version, '--fresh', '--json'], reg.env)).box.provider;
}

/**
 * Upload a box signed for bench/box `version` to registry process `index`
 * with a plain streaming PUT (no client-side hashing: only the registry's
 * cost is measured), and release it. Returns the time from the first byte
 * sent to the registry's verdict, and the registry process's peak RSS.
 */
export async function uploadWithValidation(reg, file, { version, provider = 'libvirt', index = 0, release = true } = {}) {
  await api(reg, 'POST', '/boxes', { box: { username: 'bench', name: 'box' } });
  await api(reg, 'POST', '/box/bench/box/versions', { version: { version } });
  await api(reg, 'POST', `/box/bench/box/version/${version}/providers`, { provider: { name: provider } });
  const up = await api(reg, 'GET', `/box/bench/box/version/${version}/provider/${provider}/upload`);
  const uploadPath = up.upload_path.replace(reg.urls[0], reg.urls[index]);
  const bytes = fs.statSync(file).size;
  // curl, as `vagrant cloud publish` sends a box: a lean client, so that the measure is the registry's
  const t0 = process.hrtime.bigint();
  const out = await new Promise((resolve, reject) => {
    const c = spawn('curl', ['-sS', '-X', 'PUT', '-T', file, '-H', 'Content-Type: application/octet-stream', '-w', '\n%{http_code}', uploadPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    let err = '';
    c.stdout.on('data', (d) => (text += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`curl failed (${code}): ${err}`))));
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const status = Number(out.slice(out.lastIndexOf('\n') + 1));
  const verdict = JSON.parse(out.slice(0, out.lastIndexOf('\n')));
  const res = { status };
  if (res.status !== 200) throw new Error(`upload refused: ${JSON.stringify(verdict)}`);
  if (release) await api(reg, 'PUT', `/box/bench/box/version/${version}/release`);
  return { seconds, bytes, sha256: verdict.sha256, registryPeakRssMiB: peakRssMiB(reg.pids[index]), registry: reg.urls[index] };
}
