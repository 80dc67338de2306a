/**
 * A lab for the Vagrant plugin tests: the gem built from plugins/vagrant and
 * installed into a throwaway VAGRANT_HOME, `boxsig` on PATH as a shim running
 * this repository's build, real keys and boxes, and the real `vagrant` —
 * run as root or as an unprivileged user (`useradd` when the tests run as
 * root). Also a loopback HTTP server that records requests (with headers),
 * can require a header, and can hold a response at a chosen byte until the
 * test releases it (to kill vagrant at a known point of an add).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { CLI, ROOT, hasTool, isolatedEnv, makeKey, must, sh, sign, type KeyFiles } from './helpers.js';

export const PLUGIN = path.join(ROOT, 'plugins', 'vagrant');
export const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

export interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  home: string;
  key: KeyFiles;
  other: KeyFiles;
  base: string;
  /** set when vagrant runs as this (unprivileged) user */
  user?: RunAs;
}

export interface VagrantResult {
  code: number;
  out: string;
}

export function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

const TEST_USER = 'boxsig-plugin-test';

/**
 * The unprivileged user to run vagrant as: when running as root, a system
 * user made (once) with useradd; when not root, the current user (already
 * unprivileged). Null when it cannot be had.
 */
export function unprivilegedUser(): { user: RunAs | null; why?: string } {
  if (process.getuid?.() !== 0) {
    const info = os.userInfo();
    return { user: { name: info.username, uid: info.uid, gid: info.gid } };
  }
  if (sh('id', ['-u', TEST_USER]).code !== 0) {
    const r = sh('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER]);
    if (r.code !== 0 && sh('id', ['-u', TEST_USER]).code !== 0) return { user: null, why: `useradd failed: ${r.stderr.trim()}` };
  }
  const uid = Number(must('id', ['-u', TEST_USER]).trim());
  const gid = Number(must('id', ['-g', TEST_USER]).trim());
  return { user: { name: TEST_USER, uid, gid } };
}

/** Builds the gem once per process. */
let gemFile: string | null = null;
function buildGem(dir: string, env: NodeJS.ProcessEnv): string {
  if (gemFile && fs.existsSync(gemFile)) return gemFile;
  const version = /VERSION = "([^"]+)"/.exec(fs.readFileSync(path.join(PLUGIN, 'lib', 'vagrant-boxsig', 'version.rb'), 'utf8'))![1];
  const gem = path.join(dir, `vagrant-boxsig-${version}.gem`);
  must('gem', ['build', 'vagrant-boxsig.gemspec', '--output', gem], { cwd: PLUGIN, env });
  fs.chmodSync(gem, 0o644);
  gemFile = gem;
  return gem;
}

/** A lab in a fresh directory under /tmp (readable by the unprivileged user). */
export function makeLab(opts: { user?: RunAs } = {}): Lab {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bsg-plugin-'));
  fs.chmodSync(dir, 0o755);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'boxsig'), `#!/bin/sh\nexec ${q(process.execPath)} ${q(CLI)} "$@"\n`, { mode: 0o755 });
  const env = isolatedEnv(dir, {
    BOXSIG_PASSPHRASE: '',
    VAGRANT_CHECKPOINT_DISABLE: '1',
    VAGRANT_DISABLE_VBOXSYMLINKCREATE: '1',
    PATH: `${bin}:${process.env.PATH}`,
    HOME: path.join(dir, 'home'),
  });
  fs.mkdirSync(env.HOME!);
  // the plugin must load: nothing inherited may turn plugins off, move the project or authenticate
  for (const k of [
    'VAGRANT_NO_PLUGINS',
    'VAGRANT_DISABLE_PLUGIN_INIT',
    'VAGRANT_CWD',
    'VAGRANT_VAGRANTFILE',
    'VAGRANT_DEFAULT_PROVIDER',
    'VAGRANT_SERVER_URL',
    'VAGRANT_CLOUD_TOKEN',
    'ATLAS_TOKEN',
    'VAGRANT_SERVER_ACCESS_TOKEN_BY_URL',
    'BOXSIG_HTTP_HEADERS',
    'XDG_CONFIG_HOME',
  ])
    delete env[k];
  env.XDG_CONFIG_HOME = path.join(dir, 'xdg'); // no user config of the developer's boxsig
  const home = env.VAGRANT_HOME!;
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(env.BOXSIG_HOME!, { recursive: true });

  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const other = makeKey(dir, 'Mallory <m@evil.example>', [], env);
  const base = makeBoxFile(path.join(dir, 'base.box'));
  const lab: Lab = { dir, env, home, key, other, base, user: opts.user };
  if (opts.user) must('chown', ['-R', `${opts.user.uid}:${opts.user.gid}`, dir]);
  const gem = buildGem(dir, env);
  const r = vagrant(lab, ['plugin', 'install', '--plugin-clean-sources', gem], dir, 300_000);
  if (r.code !== 0) throw new Error(`vagrant plugin install failed: ${r.out}`);
  return lab;
}

export function removeLab(lab: Lab | null): void {
  if (lab) fs.rmSync(lab.dir, { recursive: true, force: true });
}

/** A gzip box made by GNU tar: metadata.json, Vagrantfile, a disk image (and extra files). */
export function makeBoxFile(file: string, opts: { provider?: string; disk?: number; extra?: (dir: string) => string[] } = {}): string {
  const d = `${file}.d`;
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'metadata.json'), JSON.stringify({ provider: opts.provider ?? 'virtualbox' }));
  fs.writeFileSync(path.join(d, 'Vagrantfile'), 'Vagrant.configure("2") do |config| end\n');
  fs.writeFileSync(path.join(d, 'box-disk1.vmdk'), crypto.randomBytes(opts.disk ?? 300_000));
  const extra = opts.extra ? opts.extra(d) : [];
  must('tar', ['czf', file, '-C', d, 'metadata.json', 'Vagrantfile', 'box-disk1.vmdk', ...extra]);
  return file;
}

export function signed(lab: Lab, out: string, name: string, version: string, keys: KeyFiles[], provider = 'virtualbox', base = lab.base): string {
  const r = sign(base, keys, ['--name', name, '--version', version, '--provider', provider, '-o', out], lab.env);
  if (r.code !== 0) throw new Error(`sign failed: ${r.stderr}`);
  if (lab.user) fs.chownSync(out, lab.user.uid, lab.user.gid);
  return out;
}

/** The same box with one byte of its disk image changed (same size): refused only at the end. */
export function tampered(lab: Lab, good: string, out: string): string {
  const x = `${out}.d`;
  fs.mkdirSync(x, { recursive: true });
  must('tar', ['xzf', good, '-C', x]);
  const disk = path.join(x, 'box-disk1.vmdk');
  const bytes = fs.readFileSync(disk);
  bytes[bytes.length - 1000] ^= 0xff;
  fs.writeFileSync(disk, bytes);
  must('tar', ['czf', out, '-C', x, '.boxsig', 'Vagrantfile', 'box-disk1.vmdk', 'metadata.json']);
  if (lab.user) fs.chownSync(out, lab.user.uid, lab.user.gid);
  return out;
}

/** A catalog (Vagrant metadata JSON) listing these versions of one provider. */
export function catalogJson(name: string, versions: Array<{ version: string; url: string; file: string; provider?: string }>): string {
  return JSON.stringify({
    name,
    versions: versions.map((v) => ({
      version: v.version,
      providers: [{ name: v.provider ?? 'virtualbox', url: v.url, checksum: sha256(v.file), checksum_type: 'sha256' }],
    })),
  });
}

export function catalogFile(lab: Lab, file: string, name: string, versions: Array<{ version: string; box: string; provider?: string }>): string {
  fs.writeFileSync(
    file,
    catalogJson(
      name,
      versions.map((v) => ({ ...v, url: `file://${v.box}`, file: v.box })),
    ),
  );
  if (lab.user) fs.chownSync(file, lab.user.uid, lab.user.gid);
  return file;
}

/** A directory owned by the lab's user. */
export function labDir(lab: Lab, ...parts: string[]): string {
  const d = path.join(lab.dir, ...parts);
  fs.mkdirSync(d, { recursive: true });
  if (lab.user) {
    let p = d;
    while (p.startsWith(lab.dir) && p !== lab.dir) {
      fs.chownSync(p, lab.user.uid, lab.user.gid);
      p = path.dirname(p);
    }
  }
  return d;
}

/** A project directory with this Vagrantfile (Ruby source). */
export function project(lab: Lab, name: string, vagrantfile: string): string {
  const d = labDir(lab, 'projects', name);
  fs.writeFileSync(path.join(d, 'Vagrantfile'), vagrantfile);
  if (lab.user) fs.chownSync(path.join(d, 'Vagrantfile'), lab.user.uid, lab.user.gid);
  return d;
}

const asOtherUser = (lab: Lab) => Boolean(lab.user && process.getuid?.() === 0 && lab.user.uid !== 0);

function spawnOptions(lab: Lab, cwd: string, env?: NodeJS.ProcessEnv) {
  return {
    env: env ?? lab.env,
    cwd,
    ...(asOtherUser(lab) ? { uid: lab.user!.uid, gid: lab.user!.gid } : {}),
  };
}

/**
 * `vagrant ARGS`, as another user without tap's process recording: tap puts
 * its hook (NODE_OPTIONS, _TAPJS_PROCESSINFO_*) back into the environment of
 * every process this test spawns, whatever env it is given, and the hook
 * writes into the worktree's .tap/processinfo/, which the unprivileged user
 * cannot: its EACCES then comes out of the child_process call of the boxsig
 * Vagrant runs (`vagrant --version`, for the layout) and fails the add.
 * `env -u` removes them between this process and vagrant.
 */
function vagrantCommand(lab: Lab, args: string[]): [string, string[]] {
  if (!asOtherUser(lab)) return ['vagrant', args];
  const tapVars = [
    'NODE_OPTIONS',
    '_TAPJS_PROCESSINFO_EXTERNAL_ID_',
    '_TAPJS_PROCESSINFO_EXCLUDE_',
    ...Object.keys(process.env).filter((k) => k.startsWith('_TAPJS_PROCESSINFO_')),
  ];
  return ['env', [...[...new Set(tapVars)].flatMap((k) => ['-u', k]), 'vagrant', ...args]];
}

/** Runs vagrant; output is stdout and stderr together (Vagrant prints errors on stderr). */
export function vagrant(lab: Lab, args: string[], cwd: string, timeout = 120_000, env?: NodeJS.ProcessEnv): VagrantResult {
  const [cmd, argv] = vagrantCommand(lab, args);
  const r = sh(cmd, argv, { ...spawnOptions(lab, cwd, env), timeout });
  return { code: r.code, out: `${r.stdout}\n${r.stderr}` };
}

export interface Running {
  pid: number;
  done: Promise<VagrantResult>;
  output(): string;
}

/**
 * Starts vagrant as the leader of a new process group (as a terminal would),
 * without blocking the event loop (the test's HTTP server runs in this process).
 */
export function startVagrant(lab: Lab, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Running {
  const [cmd, argv] = vagrantCommand(lab, args);
  const child = spawn(cmd, argv, { ...spawnOptions(lab, cwd, env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const done = new Promise<VagrantResult>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
  return { pid: child.pid!, done, output: () => out };
}

export function vagrantAsync(lab: Lab, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<VagrantResult> {
  return startVagrant(lab, args, cwd, env).done;
}

/** Waits until no process of the group is left (an orphaned boxsig may outlive vagrant). */
export async function groupGone(pgid: number, timeoutMs = 120_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    await sleep(50);
  }
  return false;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function boxList(lab: Lab, cwd = lab.dir): string {
  return vagrant(lab, ['box', 'list'], cwd).out;
}

/** Files and directories of this box name under VAGRANT_HOME/boxes. */
export function leftovers(lab: Lab, name: string): string[] {
  const d = path.join(lab.home, 'boxes', name.replace(/\//g, '-VAGRANTSLASH-'));
  if (!fs.existsSync(d)) return [];
  return must('find', [d]).split('\n').filter(Boolean);
}

/** boxsig's staging directories under VAGRANT_HOME/tmp. */
export function stagingDirs(lab: Lab): string[] {
  const tmp = path.join(lab.home, 'tmp');
  return fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((n) => n.startsWith('boxsig-add-')) : [];
}

/** Every file under a directory with its SHA-256 (to prove nothing outside was touched). */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = e.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : sha256(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

export function vagrantAvailable(): boolean {
  return hasTool('vagrant') && hasTool('gem');
}

// ---------------------------------------------------------------------------
// A loopback HTTP server for the plugin tests.

export interface Gate {
  /** hold the response after this many body bytes */
  at: number;
  /** resolves when the response is held there */
  reached: Promise<void>;
  release(): void;
}

export function gate(at: number): Gate {
  let release!: () => void;
  let reach!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (reach = r));
  return Object.assign({ at, reached, release }, { released, reach });
}

export interface Route {
  file?: string;
  body?: string;
  contentType?: string;
  /** the request must carry this Authorization header, else 401 */
  authorization?: string;
  gate?: Gate;
}

export interface Request {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface Server {
  url: string;
  port: number;
  routes: Map<string, Route>;
  requests: Request[];
  close(): Promise<void>;
}

export async function serve(routes: Map<string, Route> = new Map()): Promise<Server> {
  const requests: Request[] = [];
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ method: req.method ?? '', path: p, headers: req.headers });
    const r = routes.get(p);
    if (!r) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (r.authorization && req.headers.authorization !== r.authorization) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('unauthorized');
      return;
    }
    const body = r.file ? fs.readFileSync(r.file) : Buffer.from(r.body ?? '');
    res.writeHead(200, { 'content-type': r.contentType ?? 'application/octet-stream', 'content-length': body.length });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const g = r.gate as (Gate & { released: Promise<void>; reach(): void }) | undefined;
    if (!g) {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, g.at));
    g.reach();
    void g.released.then(() => res.end(body.subarray(g.at)));
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    routes,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
