/**
 * Issue 19 with issue 18's crash safety: an add into Vagrant 2.4's layout
 * (`boxes/NAME/VERSION/ARCH/PROVIDER/`, one level more to create or replace)
 * killed before each of its file-system calls (test/fault/) leaves the box
 * absent, the old one or the new one, never half; the next command's
 * recovery step puts back or completes the replace, and leaves no debris.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { boxsig, isolatedEnv, makeBox, makeKey, pseudoRandom, sign } from './helpers.js';
import { cloneTree, countCalls, pool, runPlain, runWithFault } from './fault/harness.js';

const ARCH = 'arm64';
const TARGET = ['boxes', 'acme-VAGRANTSLASH-web', '1.0.0', ARCH, 'virtualbox'];
const OTHER_ARCH = ['boxes', 'acme-VAGRANTSLASH-web', '1.0.0', 'amd64', 'virtualbox'];

function treeOf(dir: string): string | null {
  if (!fs.existsSync(dir)) return null;
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const name of fs.readdirSync(abs).sort()) {
      const p = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      if (fs.lstatSync(p).isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else out.push(`${r} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir, '');
  return out.join('\n');
}

function homeDebris(home: string): string[] {
  const out: string[] = [];
  for (const d of ['tmp', '.boxsig-staging']) {
    const p = path.join(home, d);
    if (fs.existsSync(p)) for (const n of fs.readdirSync(p)) out.push(`${d}/${n}`);
  }
  return out;
}

function envFor(dir: string): NodeJS.ProcessEnv {
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  delete env.NODE_OPTIONS;
  return env;
}

t.test('add into the architecture layout: SIGKILL before every file-system call', async (t) => {
  const root = t.testdir({ inputs: {}, templates: {}, runs: {} });
  const inputs = path.join(root, 'inputs');
  const env = envFor(inputs);
  const key = makeKey(inputs, 'Crash <crash@acme.example>', [], env);
  const signed = (arch: string, seed: number) => {
    const raw = makeBox(path.join(inputs, `${arch}-${seed}.raw.box`), {
      metadata: { architecture: arch },
      files: { Vagrantfile: 'Vagrant.configure("2") do |config| end\n', 'box-disk1.vmdk': pseudoRandom(20_000, seed) },
    });
    const out = path.join(inputs, `${arch}-${seed}.box`);
    const r = sign(raw, [key], ['--name', 'acme/web', '--version', '1.0.0', '-o', out], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const oldBox = signed(ARCH, 1);
  const newBox = signed(ARCH, 2);
  const otherArch = signed('amd64', 3);
  const layout = ['--layout', '2.4', '--architecture', ARCH];
  // templates: "fresh" holds the amd64 box (the version directory exists), "installed" the old arm64 box too
  const templates = {
    fresh: path.join(root, 'templates', 'fresh'),
    installed: path.join(root, 'templates', 'installed'),
    ref: path.join(root, 'templates', 'ref'),
  };
  for (const [name, boxes] of [
    ['fresh', [[otherArch, 'amd64']]],
    [
      'installed',
      [
        [otherArch, 'amd64'],
        [oldBox, ARCH],
      ],
    ],
    ['ref', [[newBox, ARCH]]],
  ] as const) {
    for (const [b, arch] of boxes) {
      const r = boxsig(['add', b, '--layout', '2.4', '--architecture', arch, '--json'], { env: envFor(templates[name]) });
      if (r.code !== 0) throw new Error(r.stderr);
    }
  }
  const oldTree = treeOf(path.join(templates.installed, 'vagrant-home', ...TARGET));
  const newTree = treeOf(path.join(templates.ref, 'vagrant-home', ...TARGET));
  const otherTree = treeOf(path.join(templates.fresh, 'vagrant-home', ...OTHER_ARCH));
  t.ok(oldTree && newTree && otherTree && oldTree !== newTree, 'reference trees');
  let runId = 0;
  const fresh = (template: 'fresh' | 'installed') => {
    const dir = path.join(root, 'runs', String(++runId));
    cloneTree(templates[template], dir);
    return { env: envFor(dir), home: path.join(dir, 'vagrant-home') };
  };

  for (const [template, args, before] of [
    ['fresh', ['add', newBox, ...layout, '--json'], null],
    ['installed', ['add', newBox, ...layout, '--force', '--json'], oldTree],
  ] as const) {
    t.test(`${args.includes('--force') ? 'add --force over the old box' : 'add beside another architecture'}`, async (t) => {
      const { count, run } = await countCalls([...args], fresh(template).env);
      t.equal(run.code, 0, run.stderr);
      t.ok(count > 10, `${count} calls to fault`);
      await pool(
        Array.from({ length: count }, (_, i) => i + 1),
        2,
        async (n) => {
          const w = fresh(template);
          const r = await runWithFault([...args], w.env, n, 'kill');
          const label = `fault at call ${n} (${r.calls[n - 1] ?? 'not reached'})`;
          t.equal(r.signal, 'SIGKILL', `${label}: killed`);
          const after = treeOf(path.join(w.home, ...TARGET));
          t.ok(after === null || after === before || after === newTree, `${label}: never a half box`);
          const next = await runPlain(['trust', 'pin', 'probe/x', key.fingerprint, '--json'], w.env);
          t.equal(next.code, 0, `${label}: the next command works`);
          const recovered = treeOf(path.join(w.home, ...TARGET));
          t.ok(recovered === before || recovered === newTree, `${label}: the old box is back (or absent) or the new one complete`);
          t.equal(treeOf(path.join(w.home, ...OTHER_ARCH)), otherTree, `${label}: the other architecture's box is untouched`);
          t.same(homeDebris(w.home), [], `${label}: no staging debris`);
          const again = await runPlain([...args, '--force'], w.env);
          t.equal(again.code, 0, `${label}: the add works again at once`);
          t.equal(treeOf(path.join(w.home, ...TARGET)), newTree, `${label}: then the new box is complete`);
        },
      );
    });
  }
});
