/**
 * Registry test lab: real registry processes (`boxsig registry serve` as a
 * child process on a free port), admin commands through the CLI, signed
 * boxes made by the CLI, and the real `vagrant` and `packer` as publishers
 * and consumers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, boxsig, boxsigAsync, isolatedEnv, makeBox, makeKey, sign, type KeyFiles, type RunResult, type BoxSpec } from '../helpers.js';
import type { EngineInstance } from './engines.js';

export interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  inst: EngineInstance;
}

export function newLab(dir: string, inst: EngineInstance, extra: NodeJS.ProcessEnv = {}): Lab {
  const env = isolatedEnv(dir, {
    BOXSIG_PASSPHRASE: '',
    VAGRANT_CHECKPOINT_DISABLE: '1',
    CHECKPOINT_DISABLE: '1',
    HOME: path.join(dir, 'home'),
  });
  // nothing of the developer's registry settings leaks in
  for (const k of Object.keys(env)) if (k.startsWith('BOXSIG_REGISTRY_') || k === 'VAGRANT_CLOUD_TOKEN' || k === 'VAGRANT_SERVER_URL') delete env[k];
  Object.assign(env, inst.env, extra);
  fs.mkdirSync(env.HOME!, { recursive: true });
  return { dir, env, inst };
}

/** An admin command on the lab's registry database; returns the parsed --json result. */
export function admin(lab: Lab, args: string[]): RunResult {
  return boxsig(['registry', ...args, ...lab.inst.flags, '--json'], { env: lab.env });
}

export function mustAdmin(lab: Lab, args: string[]): any {
  const r = admin(lab, args);
  if (r.code !== 0 || !r.json?.ok) throw new Error(`boxsig registry ${args.join(' ')} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.json;
}

export function createOrg(lab: Lab, org: string, policy?: unknown): void {
  const args = ['org', 'create', org];
  if (policy !== undefined) {
    const file = path.join(lab.dir, `policy-${org}-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(policy));
    args.push('--policy', file);
  }
  mustAdmin(lab, args);
}

export function token(lab: Lab, org: string, role: 'read' | 'publish' | 'admin', member = 'tester'): string {
  return mustAdmin(lab, ['token', 'create', '--org', org, '--role', role, '--member', member]).token;
}

export interface Running {
  url: string;
  proc: ChildProcess;
  /** Everything the process printed on stdout (JSON log lines). */
  log(): string;
  /** SIGTERM and wait for the exit status. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Start `boxsig registry serve` on a free port; resolves once it listens. */
export function startRegistry(lab: Lab, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const proc = spawn(process.execPath, [CLI, 'registry', 'serve', ...lab.inst.flags, '--listen', '127.0.0.1:0', ...extraArgs], {
    env: { ...lab.env, BOXSIG_REGISTRY_GC_INTERVAL_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let errText = '';
  proc.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the registry did not start: ${errText}${out}`)), 30_000);
    proc.stderr!.on('data', (d) => {
      errText += d;
      const m = /listening on (http:\/\/\S+)/.exec(errText);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          proc,
          log: () => out,
          exited,
          stop: async (signal = 'SIGTERM') => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            return exited;
          },
        });
      }
    });
    proc.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`the registry exited before listening: ${errText}${out}`));
    });
  });
}

export function key(lab: Lab, uid = 'Acme Builds <builds@acme.example>'): KeyFiles {
  return makeKey(lab.dir, uid, [], lab.env);
}

let boxCounter = 0;

/** A real box (GNU tar + gzip), signed by `keys` as name/version (unsigned when keys is empty). */
export function box(lab: Lab, keys: KeyFiles[], name: string, version: string, spec: BoxSpec = {}, signArgs: string[] = []): string {
  const file = path.join(lab.dir, `box-${++boxCounter}.box`);
  makeBox(file, spec);
  if (keys.length) {
    const r = sign(file, keys, ['--name', name, '--version', version, ...signArgs], lab.env);
    if (r.code !== 0) throw new Error(`sign failed: ${r.stderr}`);
  }
  return file;
}

/** Flip one byte near the end of a file (inside the disk image of a small box). */
export function tamper(file: string, fromEnd = 2000): void {
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, size - fromEnd);
  b[0] ^= 0x01;
  fs.writeSync(fd, b, 0, 1, size - fromEnd);
  fs.closeSync(fd);
}

export function publish(lab: Lab, url: string, tok: string, file: string, args: string[] = []): Promise<RunResult> {
  return boxsigAsync(['publish', file, '--registry', url, '--json', ...args], { env: { ...lab.env, BOXSIG_REGISTRY_TOKEN: tok } });
}

/** The real `vagrant`, without blocking the event loop. */
export function vagrant(lab: Lab, args: string[], env: NodeJS.ProcessEnv = {}, cwd = lab.dir): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('vagrant', args, { env: { ...lab.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
}

/** `vagrant cloud publish ORG/NAME VERSION PROVIDER FILE --force [args]` against the registry. */
export function vagrantPublish(lab: Lab, url: string, tok: string, name: string, version: string, file: string, args: string[] = [], provider = 'virtualbox') {
  return vagrant(lab, ['cloud', 'publish', name, version, provider, file, '--force', ...args], { VAGRANT_SERVER_URL: url, VAGRANT_CLOUD_TOKEN: tok });
}

export async function getJson(url: string, tok?: string): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { headers: tok ? { authorization: `Bearer ${tok}` } : {}, redirect: 'manual' });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** The catalog as consumers see it. */
export async function catalog(url: string, name: string, tok?: string): Promise<any> {
  return (await getJson(`${url}/${name}`, tok)).json;
}

/** Create box/version/provider through the API and return an upload URL (plain, or direct with its callback). */
export async function uploadUrl(url: string, tok: string, name: string, version: string, direct = false): Promise<{ upload_path: string; callback?: string }> {
  const [org, short] = name.split('/');
  const api = `${url}/api/v1`;
  const headers = { authorization: `Bearer ${tok}`, 'content-type': 'application/json' };
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${api}${p}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
    const json = (await res.json()) as any;
    if (res.status !== 200 && !(res.status === 409 && method === 'POST')) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  await call('POST', '/boxes', { box: { username: org, name: short } });
  await call('POST', `/box/${org}/${short}/versions`, { version: { version } });
  await call('POST', `/box/${org}/${short}/version/${version}/providers`, { provider: { name: 'virtualbox' } });
  return call('GET', `/box/${org}/${short}/version/${version}/provider/virtualbox/upload${direct ? '/direct' : ''}`);
}

export interface SlowPut {
  /** Let the rest of the body go. */
  release(): void;
  /** Bytes sent so far. */
  sent(): number;
  response: Promise<{ status: number; json: any } | Error>;
}

/** PUT a file, holding the body back after `holdAfter` bytes until released. */
export function slowPut(uploadPath: string, file: string, holdAfter: number): SlowPut {
  const data = fs.readFileSync(file);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let sent = 0;
  const step = 256 * 1024;
  const body = new ReadableStream({
    async pull(c) {
      if (sent >= holdAfter) await gate;
      if (sent >= data.length) return c.close();
      c.enqueue(data.subarray(sent, sent + step));
      sent += step;
    },
  });
  const response = fetch(uploadPath, { method: 'PUT', body, duplex: 'half' } as RequestInit)
    .then(async (res) => {
      const text = await res.text();
      let json: any = text;
      try {
        json = JSON.parse(text);
      } catch {
        /* keep the text */
      }
      return { status: res.status, json };
    })
    .catch((e: Error) => e);
  return { release, sent: () => sent, response };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `fn` is true (polling), or fail after `ms`. */
export async function until(fn: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(50);
  }
}
