/**
 * The lab of the crash tests (test/crash*.test.ts, split for their time budget).
 *
 * Issue 18: crash safety at every instant. Each command runs once under the
 * fault-injection harness (test/fault/) to count the file-system calls that
 * change something, then once per call with a fault injected right before
 * it: SIGKILL (a crash), SIGTERM/SIGINT/SIGHUP (an interrupt) or ENOSPC (a
 * full disk). Afterwards: the trust store parses, no box is half-installed or
 * lost, the next command (whose recovery step settles what the dead process
 * left) works at once, and no debris is left behind — in BOXSIG_HOME too:
 * the recovery step (TrustStore.recover()) removes the temporary and lock
 * files of dead processes (issue 18 items 2, 3 and 5).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { boxsig, isolatedEnv, makeBox, makeKey, pseudoRandom, sign, type KeyFiles } from './helpers.js';
import { cloneTree, type FaultRun } from './fault/harness.js';

/** relative path -> sha256 (files) or "dir", for a whole tree. */
export function treeOf(dir: string): Map<string, string> | null {
  if (!fs.existsSync(dir)) return null;
  const out = new Map<string, string>();
  const walk = (abs: string, rel: string) => {
    for (const name of fs.readdirSync(abs).sort()) {
      const p = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(p);
      if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(p, r);
      } else out.set(r, crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

export const same = (a: Map<string, string> | null, b: Map<string, string> | null) => JSON.stringify(a && [...a]) === JSON.stringify(b && [...b]);

/** What is left in BOXSIG_HOME besides the store, the keyring's keys and revocations. */
export function storeDebris(home: string): string[] {
  if (!fs.existsSync(home)) return [];
  const out: string[] = [];
  for (const n of fs.readdirSync(home)) {
    if (n === 'trust.json') continue;
    if (n === 'records') {
      for (const r of fs.readdirSync(path.join(home, n))) if (!/^[0-9a-f]{64}\.json$/.test(r)) out.push(`${n}/${r}`);
      continue;
    }
    if (n === 'keyring' || n === 'revocations') {
      for (const k of fs.readdirSync(path.join(home, n))) if (!/^[0-9A-F]{40,64}(-[0-9a-f]{16})?\.asc$/.test(k)) out.push(`${n}/${k}`);
      continue;
    }
    out.push(n);
  }
  return out;
}

/** Staging directories (or anything else) left in the Vagrant home's temporary directories. */
export function homeDebris(home: string): string[] {
  const out: string[] = [];
  for (const d of ['tmp', '.boxsig-staging']) {
    const p = path.join(home, d);
    if (fs.existsSync(p)) for (const n of fs.readdirSync(p)) out.push(`${d}/${n}`);
  }
  return out;
}

/** trust.json and every record file of the store in `boxsigHome` parse. */
export function storeParses(boxsigHome: string): boolean {
  const records = path.join(boxsigHome, 'records');
  const files = [path.join(boxsigHome, 'trust.json'), ...(fs.existsSync(records) ? fs.readdirSync(records).map((f) => path.join(records, f)) : [])];
  return files.every(parses);
}

export function parses(file: string): boolean {
  if (!fs.existsSync(file)) return true;
  try {
    JSON.parse(fs.readFileSync(file, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

export function checkStoreDebris(t: any, boxsigHome: string, label: string): void {
  const debris = storeDebris(boxsigHome);
  t.same(debris, [], `${label}: no debris in BOXSIG_HOME${debris.length ? ` (${debris.join(', ')})` : ''}`);
}

export interface Lab {
  root: string;
  key: KeyFiles;
  oldBox: string;
  newBox: string;
  otherBox: string;
  /** the installed trees of the old and new box, for comparison */
  oldTree: Map<string, string>;
  newTree: Map<string, string>;
  /** templates: { boxsig-home, vagrant-home } */
  templates: Record<'fresh' | 'installed', string>;
}

export const TARGET = ['boxes', 'acme-VAGRANTSLASH-web', '1.0.0', 'virtualbox'];
export const OTHER = ['boxes', 'acme-VAGRANTSLASH-other', '1.0.0', 'virtualbox'];

export function envFor(dir: string): NodeJS.ProcessEnv {
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  delete env.NODE_OPTIONS; // the test runner's loader is not wanted in the children
  return env;
}

export async function makeLab(t: any): Promise<Lab> {
  const root = t.testdir({ inputs: {}, templates: {}, runs: {} });
  const inputs = path.join(root, 'inputs');
  const env = envFor(inputs);
  const key = makeKey(inputs, 'Crash <crash@acme.example>', [], env);
  const signed = (name: string, seed: number) => {
    const base = makeBox(path.join(inputs, `${name.replace('/', '_')}-${seed}.raw.box`), {
      files: { Vagrantfile: 'Vagrant.configure("2") do |config| end\n', 'box-disk1.vmdk': pseudoRandom(20_000, seed) },
    });
    const out = path.join(inputs, `${name.replace('/', '_')}-${seed}.box`);
    const r = sign(base, [key], ['--name', name, '--version', '1.0.0', '-o', out], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const oldBox = signed('acme/web', 1);
  const newBox = signed('acme/web', 2);
  const otherBox = signed('acme/other', 3);
  const templates = { fresh: path.join(root, 'templates', 'fresh'), installed: path.join(root, 'templates', 'installed') };
  const trees: Map<string, string>[] = [];
  for (const [name, boxes] of [
    ['fresh', [otherBox]],
    ['installed', [otherBox, oldBox]],
  ] as const) {
    const e = envFor(templates[name]);
    for (const b of boxes) {
      const r = boxsig(['add', b, '--json'], { env: e });
      if (r.code !== 0) throw new Error(r.stderr);
    }
  }
  // reference trees: the old box as installed, the new one as installed
  trees.push(treeOf(path.join(templates.installed, 'vagrant-home', ...TARGET))!);
  const ref = path.join(root, 'templates', 'reference');
  const e = envFor(ref);
  if (boxsig(['add', newBox, '--json'], { env: e }).code !== 0) throw new Error('reference add failed');
  trees.push(treeOf(path.join(ref, 'vagrant-home', ...TARGET))!);
  // records keep the time to the second: a command run in the second the templates were made could
  // find its record unchanged and skip a write the runs after it make (a different call sequence)
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 50));
  return { root, key, oldBox, newBox, otherBox, oldTree: trees[0], newTree: trees[1], templates };
}

let runId = 0;
export function freshCopy(lab: Lab, template: keyof Lab['templates']): { dir: string; env: NodeJS.ProcessEnv; vagrantHome: string; boxsigHome: string } {
  const dir = path.join(lab.root, 'runs', String(++runId));
  cloneTree(lab.templates[template], dir);
  const env = envFor(dir);
  return { dir, env, vagrantHome: env.VAGRANT_HOME!, boxsigHome: env.BOXSIG_HOME! };
}

/** The fault landed on the call the counting run saw at that place (the command is deterministic). */
export function sameCall(t: any, counted: string[], r: FaultRun, n: number, label: string): void {
  const op = (line: string | undefined) => line?.split(' ')[1];
  t.equal(op(r.calls[n - 1]), op(counted[n - 1]), `${label}: the same call as in the counting run`);
}

export function describeFault(r: FaultRun, n: number): string {
  return `fault at call ${n} (${r.calls[n - 1] ?? 'not reached'})`;
}
