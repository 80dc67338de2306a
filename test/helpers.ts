/**
 * Test helpers: run the real CLI, make real keys and real archives with GNU
 * tar, and require external tools (a missing tool fails on CI, skips locally
 * with the package to install).
 */
import { spawnSync, spawn, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pseudoRandom as corpusPseudoRandom } from './corpus/generate.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  timeout?: number;
}

/** Environment isolated from the developer's own trust store and config. */
export function isolatedEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BOXSIG_HOME: path.join(home, 'boxsig-home'),
    VAGRANT_HOME: path.join(home, 'vagrant-home'),
    GNUPGHOME: path.join(home, 'gnupg'),
    ...extra,
  };
  delete env.BOXSIG_PASSPHRASE;
  return env;
}

/**
 * The command line of `node CLI ARGS` with ENV. tap's process-info hook puts
 * its loader back into NODE_OPTIONS of every process a test spawns, whatever
 * env it is given; a test that removed NODE_OPTIONS from ENV does not want it
 * (it costs CPU at every start): `env -u` removes it for real.
 */
export function nodeCommand(script: string, args: string[], env: NodeJS.ProcessEnv | undefined): [string, string[]] {
  if (!env || env.NODE_OPTIONS !== undefined || process.env.NODE_OPTIONS === undefined) return [process.execPath, [script, ...args]];
  return ['env', ['-u', 'NODE_OPTIONS', process.execPath, script, ...args]];
}

export function boxsig(args: string[], opts: RunOptions = {}): RunResult {
  const [cmd, argv] = nodeCommand(CLI, args, opts.env);
  const r = spawnSync(cmd, argv, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeout ?? 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  let json: any = null;
  if (args.includes('--json')) {
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = null;
    }
  }
  return { code: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout ?? '', stderr: r.stderr ?? '', json };
}

/** The same, without blocking the event loop (for concurrent runs). */
export function boxsigAsync(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const [cmd, argv] = nodeCommand(CLI, args, opts.env);
    const child = spawn(cmd, argv, { env: opts.env ?? process.env, cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      let json: any = null;
      if (args.includes('--json')) {
        try {
          json = JSON.parse(stdout);
        } catch {
          json = null;
        }
      }
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, json });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

export function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

export function must(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = sh(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export function hasTool(cmd: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * True if `cmd` is available. Otherwise: on CI (CI=true) a failure, locally a
 * skip that says which Debian package to install.
 */
export function requireTool(t: { fail(msg: string): unknown; skip?: unknown; comment(msg: string): unknown }, cmd: string, pkg: string): boolean {
  if (hasTool(cmd)) return true;
  const msg = `${cmd} is not installed (apt-get install -y ${pkg})`;
  if (process.env.CI === 'true') {
    t.fail(`${msg}: required on CI`);
  } else {
    t.comment(`SKIP: ${msg}`);
  }
  return false;
}

export interface KeyFiles {
  fingerprint: string;
  secret: string;
  public: string;
  revocation: string;
}

/** A real key made by `boxsig key generate`. */
export function makeKey(dir: string, uid: string | string[], extra: string[] = [], env?: NodeJS.ProcessEnv): KeyFiles {
  const prefix = path.join(dir, `key-${Math.random().toString(36).slice(2, 10)}`);
  const uids = (Array.isArray(uid) ? uid : [uid]).flatMap((u) => ['--uid', u]);
  const r = boxsig(['key', 'generate', ...uids, '--out', prefix, '--json', ...extra], { env: env ?? { ...process.env, BOXSIG_PASSPHRASE: '' } });
  if (r.code !== 0) throw new Error(`key generate failed: ${r.stderr}`);
  return { fingerprint: r.json.fingerprint, secret: `${prefix}.secret.asc`, public: `${prefix}.public.asc`, revocation: `${prefix}.revocation.asc` };
}

export interface BoxSpec {
  provider?: string;
  files?: Record<string, string | Buffer>;
  /** extra metadata.json fields */
  metadata?: Record<string, unknown>;
  compress?: 'gzip' | 'none';
}

/** A directory with the files of a box. */
export function makeBoxDir(dir: string, spec: BoxSpec = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const metadata = { provider: spec.provider ?? 'virtualbox', ...(spec.metadata ?? {}) };
  fs.writeFileSync(path.join(dir, 'metadata.json'), JSON.stringify(metadata));
  const files = spec.files ?? { Vagrantfile: 'Vagrant.configure("2") do |config| end\n', 'box-disk1.vmdk': pseudoRandom(300_000, 1) };
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

/** A box made by GNU tar (not by boxsig), gzip-compressed by default. */
export function makeBox(boxPath: string, spec: BoxSpec = {}): string {
  const dir = `${boxPath}.d`;
  makeBoxDir(dir, spec);
  const names = fs.readdirSync(dir).sort();
  const flags = spec.compress === 'none' ? 'cf' : 'czf';
  must('tar', [flags, boxPath, '-C', dir, ...names]);
  return boxPath;
}

/** Deterministic pseudo-random bytes (incompressible): the corpus generator's. */
export function pseudoRandom(n: number, seed: number): Buffer {
  return corpusPseudoRandom(n, seed);
}

/** Sign a box with the CLI; returns the result. */
export function sign(box: string, keys: KeyFiles[], args: string[], env?: NodeJS.ProcessEnv): RunResult {
  return boxsig(['sign', box, ...keys.flatMap((k) => ['--key', k.secret]), ...args, '--json'], { env });
}

export function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/**
 * A throwaway GNUPGHOME with a short path (gpg-agent's socket path must stay
 * under the 108-byte limit of Unix sockets). The agent is stopped at teardown.
 */
export function gnupgHome(t: { teardown(fn: () => void): void }): string {
  const home = fs.mkdtempSync('/tmp/bsg-gpg-');
  fs.chmodSync(home, 0o700);
  t.teardown(() => {
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home } });
    fs.rmSync(home, { recursive: true, force: true });
  });
  return home;
}

export interface GpgKey {
  fingerprint: string;
  secret: string;
  public: string;
}

/** A key made by GnuPG (`gpg --quick-gen-key`), exported armored. */
export function gpgKey(
  t: { teardown(fn: () => void): void },
  dir: string,
  uid: string,
  algo = 'ed25519',
  usage = 'sign',
  home?: string,
): GpgKey & { home: string } {
  const gh = home ?? gnupgHome(t);
  const env = { ...process.env, GNUPGHOME: gh };
  must('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', uid, algo, usage, 'never'], { env });
  const list = must('gpg', ['--batch', '--with-colons', '--list-secret-keys', `=${uid}`], { env });
  const fpr = list
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9];
  const base = path.join(dir, `gpg-${fpr.slice(-8)}`);
  fs.writeFileSync(
    `${base}.secret.asc`,
    must('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--armor', '--export-secret-keys', fpr], { env }),
  );
  fs.writeFileSync(`${base}.public.asc`, must('gpg', ['--batch', '--armor', '--export', fpr], { env }));
  return { fingerprint: fpr, secret: `${base}.secret.asc`, public: `${base}.public.asc`, home: gh };
}

/** The trust store's records (BOXSIG_HOME/records/<hash>.json, see src/trust/record-files.ts), by name. */
export function trustRecords(boxsigHome: string): Record<string, any> {
  const dir = path.join(boxsigHome, 'records');
  const out: Record<string, any> = Object.create(null);
  if (!fs.existsSync(dir)) return out;
  for (const f of fs.readdirSync(dir).sort()) {
    const doc = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    out[doc.name] = doc.record;
  }
  return out;
}

/** trust.json and every record file as one text, for before/after comparisons ('' when there is no store). */
export function trustStoreText(boxsigHome: string): string {
  const file = path.join(boxsigHome, 'trust.json');
  const dir = path.join(boxsigHome, 'records');
  const parts = [fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''];
  if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir).sort()) parts.push(`${f}\n${fs.readFileSync(path.join(dir, f), 'utf8')}`);
  return parts.join('\n');
}
