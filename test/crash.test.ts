/**
 * Issue 18: crash safety at every instant. Each command runs once under the
 * fault-injection harness (test/fault/) to count the file-system calls that
 * change something, then once per call with a fault injected right before
 * it: SIGKILL (a crash), SIGTERM/SIGINT/SIGHUP (an interrupt) or ENOSPC (a
 * full disk). Afterwards: the trust store parses, no box is half-installed or
 * lost, the next command (whose recovery step settles what the dead process
 * left) works at once, and no debris is left behind.
 *
 * Debris that only the trust store's own recovery can remove (its temporary
 * and lock files: issue 18 items 2, 3 and 5, on the trust branch) is reported
 * as `todo` here, not as a failure.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { boxsig, isolatedEnv, makeBox, makeKey, pseudoRandom, sign, type KeyFiles } from './helpers.js';
import { cloneTree, countCalls, pool, runPlain, runWithFault, type FaultMode, type FaultRun } from './fault/harness.js';

const STORE_TODO = 'issue 18 items 2/3/5: the trust store does not yet remove temporary and lock files of dead processes (trust branch)';

/** relative path -> sha256 (files) or "dir", for a whole tree. */
function treeOf(dir: string): Map<string, string> | null {
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

const same = (a: Map<string, string> | null, b: Map<string, string> | null) => JSON.stringify(a && [...a]) === JSON.stringify(b && [...b]);

/** What is left in BOXSIG_HOME besides the store, the keyring's keys and revocations. */
function storeDebris(home: string): string[] {
  if (!fs.existsSync(home)) return [];
  const out: string[] = [];
  for (const n of fs.readdirSync(home)) {
    if (n === 'trust.json') continue;
    if (n === 'keyring' || n === 'revocations') {
      for (const k of fs.readdirSync(path.join(home, n))) if (!/^[0-9A-F]{40,64}(-[0-9a-f]{16})?\.asc$/.test(k)) out.push(`${n}/${k}`);
      continue;
    }
    out.push(n);
  }
  return out;
}

/** Staging directories (or anything else) left in the Vagrant home's temporary directories. */
function homeDebris(home: string): string[] {
  const out: string[] = [];
  for (const d of ['tmp', '.boxsig-staging']) {
    const p = path.join(home, d);
    if (fs.existsSync(p)) for (const n of fs.readdirSync(p)) out.push(`${d}/${n}`);
  }
  return out;
}

function parses(file: string): boolean {
  if (!fs.existsSync(file)) return true;
  try {
    JSON.parse(fs.readFileSync(file, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

function checkStoreDebris(t: any, boxsigHome: string, label: string): void {
  const debris = storeDebris(boxsigHome);
  const storeOnly = debris.every((d) => /\.tmp-\d+-[0-9a-f]+$/.test(d) || /^trust\.lock(\.stale-.*)?$/.test(d));
  const msg = `${label}: no debris in BOXSIG_HOME${debris.length ? ` (${debris.join(', ')})` : ''}`;
  if (debris.length && storeOnly) t.same(debris, [], msg, { todo: STORE_TODO });
  else t.same(debris, [], msg);
}

interface Lab {
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

const TARGET = ['boxes', 'acme-VAGRANTSLASH-web', '1.0.0', 'virtualbox'];
const OTHER = ['boxes', 'acme-VAGRANTSLASH-other', '1.0.0', 'virtualbox'];

function envFor(dir: string): NodeJS.ProcessEnv {
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  delete env.NODE_OPTIONS; // the test runner's loader is not wanted in the children
  return env;
}

async function makeLab(t: any): Promise<Lab> {
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
  return { root, key, oldBox, newBox, otherBox, oldTree: trees[0], newTree: trees[1], templates };
}

let runId = 0;
function freshCopy(lab: Lab, template: keyof Lab['templates']): { dir: string; env: NodeJS.ProcessEnv; vagrantHome: string; boxsigHome: string } {
  const dir = path.join(lab.root, 'runs', String(++runId));
  cloneTree(lab.templates[template], dir);
  const env = envFor(dir);
  return { dir, env, vagrantHome: env.VAGRANT_HOME!, boxsigHome: env.BOXSIG_HOME! };
}

/** The fault landed on the call the counting run saw at that place (the command is deterministic). */
function sameCall(t: any, counted: string[], r: FaultRun, n: number, label: string): void {
  const op = (line: string | undefined) => line?.split(' ')[1];
  t.equal(op(r.calls[n - 1]), op(counted[n - 1]), `${label}: the same call as in the counting run`);
}

function describeFault(r: FaultRun, n: number): string {
  return `fault at call ${n} (${r.calls[n - 1] ?? 'not reached'})`;
}

t.test('add, add --force, trust and key import survive a crash at every file-system call', async (t) => {
  const lab = await makeLab(t);

  t.test('add: SIGKILL before every call', async (t) => {
    const args = ['add', lab.newBox, '--json'];
    const { count, run, calls } = await countCalls(args, freshCopy(lab, 'fresh').env);
    t.equal(run.code, 0, 'the unfaulted run succeeds');
    t.ok(count > 20, `${count} calls to fault`);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'fresh');
        const r = await runWithFault(args, w.env, n, 'kill');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, 'SIGKILL', `${label}: killed`);
        const target = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(target === null || same(target, lab.newTree), `${label}: the box is absent or complete`);
        t.ok(parses(path.join(w.boxsigHome, 'trust.json')), `${label}: the trust store parses`);
        const next = await runPlain(args, w.env);
        t.equal(next.code, target ? 2 : 0, `${label}: the next add works at once (${next.json?.code ?? 'ok'})`);
        t.ok(same(treeOf(path.join(w.vagrantHome, ...TARGET)), lab.newTree), `${label}: then the box is complete`);
        t.ok(treeOf(path.join(w.vagrantHome, ...OTHER)), `${label}: the other box is untouched`);
        t.same(homeDebris(w.vagrantHome), [], `${label}: no staging debris after the recovery step`);
        checkStoreDebris(t, w.boxsigHome, label);
      },
    );
  });

  t.test('add --force: SIGKILL before every call; the next command restores or completes the replace', async (t) => {
    const args = ['add', lab.newBox, '--force', '--json'];
    const { count, run, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
    t.equal(run.code, 0, run.stderr);
    t.equal(JSON.parse(run.stdout).replaced, true);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, 'kill');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, 'SIGKILL', `${label}: killed`);
        const after = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(after === null || same(after, lab.oldTree) || same(after, lab.newTree), `${label}: never a half box`);
        t.ok(parses(path.join(w.boxsigHome, 'trust.json')), `${label}: the trust store parses`);
        // any mutating command runs the recovery step first
        const next = await runPlain(['trust', 'pin', 'probe/x', lab.key.fingerprint, '--json'], w.env);
        t.equal(next.code, 0, `${label}: the next command works (${next.stderr.trim()})`);
        const recovered = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(same(recovered, lab.oldTree) || same(recovered, lab.newTree), `${label}: the old box is back or the new one is complete`);
        t.same(homeDebris(w.vagrantHome), [], `${label}: no staging or parked box left`);
        checkStoreDebris(t, w.boxsigHome, label);
        const again = await runPlain(args, w.env);
        t.equal(again.code, 0, `${label}: add --force works again at once`);
      },
    );
  });

  for (const mode of ['SIGTERM', 'SIGINT', 'SIGHUP'] as FaultMode[]) {
    t.test(`add --force: ${mode} before every call is cleaned up by the process itself`, async (t) => {
      const args = ['add', lab.newBox, '--force', '--json'];
      const { count, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
      const points = Array.from({ length: count }, (_, i) => i + 1);
      await pool(points, 2, async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, mode);
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, mode, `${label}: ends by the signal (the conventional status)`);
        const after = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(same(after, lab.oldTree) || same(after, lab.newTree), `${label}: the old box or the new one, without any recovery`);
        t.same(homeDebris(w.vagrantHome), [], `${label}: the interrupted process removed its staging directory`);
        t.ok(parses(path.join(w.boxsigHome, 'trust.json')), `${label}: the trust store parses`);
      });
    });
  }

  t.test('add --force: ENOSPC at every call fails cleanly or succeeds', async (t) => {
    const args = ['add', lab.newBox, '--force', '--json'];
    const { count, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, 'enospc');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        const after = treeOf(path.join(w.vagrantHome, ...TARGET));
        let json: any = null;
        try {
          json = JSON.parse(r.stdout);
        } catch {
          /* checked below */
        }
        t.ok(json, `${label}: one JSON object on stdout`);
        if (r.code === 0) t.ok(same(after, lab.newTree), `${label}: succeeded, the new box is complete`);
        else {
          t.equal(r.code, 3, `${label}: an I/O failure (exit 3), ${json?.code}: ${json?.message}`);
          t.equal(json?.code, 'IO');
          t.ok(same(after, lab.oldTree), `${label}: the installed box is unchanged`);
        }
        t.same(homeDebris(w.vagrantHome), [], `${label}: no staging debris, without any recovery`);
        t.ok(parses(path.join(w.boxsigHome, 'trust.json')), `${label}: the trust store parses`);
        checkStoreDebris(t, w.boxsigHome, label);
      },
    );
  });

  /** The store without its clock: comparable between runs. */
  const normalized = (file: string) =>
    fs.existsSync(file)
      ? JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'), (k, v) => (['time', 'updated', 'firstSeen'].includes(k) ? undefined : v)))
      : null;
  const FPR = '0123456789ABCDEF0123456789ABCDEF01234567';
  for (const args of [
    ['trust', 'pin', 'acme/*', FPR, '--json'],
    ['trust', 'accept', 'acme/web', FPR, '--json'],
    ['trust', 'forget', 'acme/web', '--json'],
  ]) {
    t.test(`${args.slice(0, 2).join(' ')}: SIGKILL before every call`, async (t) => {
      const w0 = freshCopy(lab, 'installed');
      const before = normalized(path.join(w0.boxsigHome, 'trust.json'));
      const { count, run, calls } = await countCalls(args, w0.env);
      t.equal(run.code, 0, run.stderr);
      const after = normalized(path.join(w0.boxsigHome, 'trust.json'));
      t.not(after, before, 'the unfaulted run changes the store');
      await pool(
        Array.from({ length: count }, (_, i) => i + 1),
        2,
        async (n) => {
          const w = freshCopy(lab, 'installed');
          const r = await runWithFault(args, w.env, n, 'kill');
          const label = describeFault(r, n);
          sameCall(t, calls, r, n, label);
          t.equal(r.signal, 'SIGKILL', `${label}: killed`);
          const storeFile = path.join(w.boxsigHome, 'trust.json');
          t.ok(parses(storeFile), `${label}: the trust store parses`);
          const now = normalized(storeFile);
          t.ok(now === before || now === after, `${label}: the store is the old one or the new one, never a mix`);
          const next = await runPlain(['trust', 'pin', 'probe/x', lab.key.fingerprint, '--json'], w.env);
          t.equal(next.code, 0, `${label}: the next command works (${next.stderr.trim()})`);
          t.ok(treeOf(path.join(w.vagrantHome, ...TARGET)), `${label}: the installed box is untouched`);
          checkStoreDebris(t, w.boxsigHome, label);
        },
      );
    });
  }

  t.test('key import: SIGKILL before every call', async (t) => {
    const other = makeKey(path.join(lab.root, 'inputs'), 'Imported <imp@acme.example>', [], envFor(path.join(lab.root, 'inputs')));
    const args = ['key', 'import', other.public, '--json'];
    const { count, run, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
    t.equal(run.code, 0, run.stderr);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, 'kill');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, 'SIGKILL', `${label}: killed`);
        const keyFile = path.join(w.boxsigHome, 'keyring', `${other.fingerprint}.asc`);
        t.ok(!fs.existsSync(keyFile) || fs.readFileSync(keyFile, 'utf8').includes('END PGP PUBLIC KEY BLOCK'), `${label}: the key file is absent or whole`);
        const next = await runPlain(args, w.env);
        t.equal(next.code, 0, `${label}: the import works again at once (${next.stderr.trim()})`);
        t.ok((await runPlain(['key', 'export', other.fingerprint], w.env)).stdout.includes('BEGIN PGP PUBLIC KEY BLOCK'), `${label}: the key is there`);
        checkStoreDebris(t, w.boxsigHome, label);
      },
    );
  });
});
