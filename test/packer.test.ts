/**
 * The Packer recipe (plugins/packer): the real `packer build` runs the example
 * templates (null builder -> artifice -> vagrant -> shell-local calling
 * boxsig-packer-sign), and `boxsig verify` accepts the box it signed. When
 * signing fails, the build fails and no unsigned box is left at the output
 * path. The wrapper's own edge cases run without Packer.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, ROOT, boxsig, hasTool, isolatedEnv, makeBox, makeKey, requireTool, type KeyFiles } from './helpers.js';

const PLUGIN = path.join(ROOT, 'plugins', 'packer');
const WRAPPER = path.join(PLUGIN, 'boxsig-packer-sign');
const HCL = path.join(PLUGIN, 'examples', 'boxsig-example.pkr.hcl');
const JSON_TEMPLATE = path.join(PLUGIN, 'examples', 'boxsig-example.json');
const EXAMPLE_FILES = path.join(PLUGIN, 'examples', 'files');

// Locally a missing packer is a visible skip; on CI requireTool fails the test.
const noPacker = !hasTool('packer') && process.env.CI !== 'true' ? 'packer is not installed (apt-get install -y packer)' : false;

interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  keyLog: string;
  tmp: string;
}

/**
 * A test directory with a `boxsig` on PATH that runs this repository's build
 * (and logs the mode of every --key file it is given), throwaway Packer and
 * boxsig homes, and no signing settings inherited from the developer.
 */
function lab(t: any): Lab {
  const dir = t.testdir({});
  const bin = path.join(dir, 'bin');
  // A short TMPDIR: Packer puts its plugins' Unix sockets there, and a socket
  // path must stay under 108 bytes (the test directory's path is longer).
  const tmp = fs.mkdtempSync('/tmp/bsg-packer-');
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const home = path.join(dir, 'home');
  for (const d of [bin, home]) fs.mkdirSync(d, { recursive: true });
  const keyLog = path.join(dir, 'key-modes.log');
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  fs.writeFileSync(
    path.join(bin, 'boxsig'),
    [
      '#!/bin/sh',
      '# test shim: record the mode of each --key file, then run the repository build',
      'prev=',
      'for a in "$@"; do',
      `  if [ "$prev" = --key ]; then stat -c '%a %n' "$a" >>${q(keyLog)}; fi`,
      '  prev=$a',
      'done',
      `exec ${q(process.execPath)} ${q(CLI)} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const base = isolatedEnv(dir, {
    HOME: home,
    TMPDIR: tmp,
    PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
    PACKER_CACHE_DIR: path.join(dir, 'packer-cache'),
    PACKER_PLUGIN_PATH: path.join(dir, 'packer-plugins'),
    PACKER_CONFIG_DIR: path.join(home, '.packer.d'),
    CHECKPOINT_DISABLE: '1',
  });
  for (const k of Object.keys(base)) {
    if ((k.startsWith('BOXSIG_') && k !== 'BOXSIG_HOME') || k.startsWith('PKR_VAR_') || k === 'GIT_COMMIT' || k === 'CI_JOB_ID' || k === 'PACKER_LOG') {
      delete base[k];
    }
  }
  return { dir, env: base, keyLog, tmp };
}

function packer(l: Lab, template: string, vars: Record<string, string>, env: NodeJS.ProcessEnv = {}) {
  const args = ['build', '-color=false', ...Object.entries(vars).flatMap(([k, v]) => ['-var', `${k}=${v}`]), template];
  const r = spawnSync('packer', args, { cwd: l.dir, env: { ...l.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, out: `${r.stdout}\n${r.stderr}` };
}

/** boxsig verify of a box with expectations; returns the JSON result. */
function verify(t: any, l: Lab, box: string, key: KeyFiles, name: string, version: string) {
  const r = boxsig(['verify', box, '--name', name, '--version', version, '--provider', 'virtualbox', '--pin', key.fingerprint, '--json'], { env: l.env });
  t.equal(r.code, 0, `boxsig verify ${path.basename(box)} accepts it`, { stdout: r.stdout, stderr: r.stderr });
  t.equal(r.json?.ok, true);
  t.same(r.json?.box, { name, version, provider: 'virtualbox' });
  t.same(
    (r.json?.signers ?? []).map((s: any) => s.fingerprint),
    [key.fingerprint],
  );
  return r.json;
}

function exampleFilesIntact(t: any) {
  // keep_input_artifact: Packer must not delete the artifice inputs.
  t.ok(fs.existsSync(path.join(EXAMPLE_FILES, 'box.ovf')), 'examples/files/box.ovf is still there');
  t.ok(fs.existsSync(path.join(EXAMPLE_FILES, 'box-disk1.vmdk')), 'examples/files/box-disk1.vmdk is still there');
}

function noTempKeys(t: any, l: Lab) {
  t.same(
    fs.readdirSync(l.tmp).filter((n) => n.startsWith('boxsig-packer.')),
    [],
    'no temporary key directory is left behind',
  );
}

t.test('HCL2 template: packer build signs the box with a key file, name, version and claims', { skip: noPacker }, async (t) => {
  if (!requireTool(t, 'packer', 'packer')) return;
  const l = lab(t);
  const key = makeKey(l.dir, 'Acme CI <ci@acme.example>', [], l.env);
  const output = 'out/acme-web.box';
  const r = packer(
    l,
    HCL,
    {
      box_output: output,
      box_name: 'acme/web',
      box_version: '2.3.4',
      key_file: key.secret,
      builder: 'ci-prod',
      git_commit: '0123456789abcdef0123456789abcdef01234567',
      extra_claims: '{ release = "stable channel" }',
    },
    { CI_JOB_ID: '4242' },
  );
  t.equal(r.code, 0, 'packer build succeeds', { output: r.out });
  t.match(r.out, /boxsig-packer-sign: signed out\/acme-web\.box/);
  const box = path.join(l.dir, output);
  const v = verify(t, l, box, key, 'acme/web', '2.3.4');
  t.same(v.claims, {
    builder: 'ci-prod',
    ci_job: '4242',
    git_commit: '0123456789abcdef0123456789abcdef01234567',
    release: 'stable channel',
  });
  t.same(
    v.files.map((f: any) => f.path),
    ['Vagrantfile', 'box-disk1.vmdk', 'box.ovf', 'metadata.json'],
    'the box the vagrant post-processor made',
  );
  t.notOk(fs.existsSync(`${box}.unsigned`), 'nothing was moved aside');
  exampleFilesIntact(t);
});

t.test('JSON template: the armored key comes from BOXSIG_KEY (passphrase-protected), never printed', { skip: noPacker }, async (t) => {
  if (!requireTool(t, 'packer', 'packer')) return;
  const l = lab(t);
  const passFile = path.join(l.dir, 'pass.txt');
  fs.writeFileSync(passFile, 'correct horse battery\n');
  const key = makeKey(l.dir, 'Acme Release <release@acme.example>', ['--passphrase-file', passFile], l.env);
  const armored = fs.readFileSync(key.secret, 'utf8');
  const output = 'json-out/acme-db.box';
  const r = packer(
    l,
    JSON_TEMPLATE,
    { box_output: output, box_name: 'acme/db', box_version: '1.0.20261123', git_commit: 'cafe1234' },
    { BOXSIG_KEY: armored, BOXSIG_PASSPHRASE: 'correct horse battery' },
  );
  t.equal(r.code, 0, 'packer build succeeds', { output: r.out });
  const v = verify(t, l, path.join(l.dir, output), key, 'acme/db', '1.0.20261123');
  t.same(v.claims, { builder: 'local', git_commit: 'cafe1234' }, 'empty ci_job claim left out');

  // The key went through a private temporary file that is gone now.
  const modes = fs.readFileSync(l.keyLog, 'utf8').trim().split('\n');
  t.equal(modes.length, 1);
  t.match(modes[0], /^600 /, 'temporary key file has mode 0600');
  t.notOk(fs.existsSync(modes[0].slice(4)), 'temporary key file removed');
  noTempKeys(t, l);
  t.notMatch(r.out, /PRIVATE KEY BLOCK/, 'the key is not printed');
  const body = armored.split('\n').find((line) => line.length > 40 && !line.startsWith('-----'))!;
  t.notOk(r.out.includes(body), 'no line of the key is printed');
  exampleFilesIntact(t);
});

t.test('HCL2 template: a wrong key fails the build and moves the unsigned box aside', { skip: noPacker }, async (t) => {
  if (!requireTool(t, 'packer', 'packer')) return;
  const l = lab(t);
  const key = makeKey(l.dir, 'Acme CI <ci@acme.example>', [], l.env);
  const output = 'out/acme-web.box';
  // The public half cannot sign.
  const r = packer(l, HCL, { box_output: output, box_name: 'acme/web', box_version: '2.3.5', key_file: key.public });
  t.not(r.code, 0, 'packer build fails', { output: r.out });
  t.match(r.out, /Script exited with non-zero exit status: 2/);
  t.match(r.out, /holds no secret key/);
  const box = path.join(l.dir, output);
  t.notOk(fs.existsSync(box), 'no box at the output path');
  t.same(fs.readdirSync(path.dirname(box)), ['acme-web.box.unsigned'], 'only the renamed unsigned box');
  const v = boxsig(['verify', `${box}.unsigned`, '--json'], { env: l.env });
  t.equal(v.code, 1);
  t.equal(v.json?.code, 'UNSIGNED', 'the box moved aside is the unsigned one');
  exampleFilesIntact(t);
});

t.test('JSON template: no passphrase for a protected key fails at once; the box goes to the quarantine directory', { skip: noPacker }, async (t) => {
  if (!requireTool(t, 'packer', 'packer')) return;
  const l = lab(t);
  const passFile = path.join(l.dir, 'pass.txt');
  fs.writeFileSync(passFile, 'correct horse battery\n');
  const key = makeKey(l.dir, 'Acme Release <release@acme.example>', ['--passphrase-file', passFile], l.env);
  const output = 'json-out/acme-db.box';
  const quarantine = path.join(l.dir, 'quarantine');
  const r = packer(
    l,
    JSON_TEMPLATE,
    { box_output: output, box_name: 'acme/db', box_version: '1.0.1', quarantine_dir: quarantine },
    { BOXSIG_KEY: fs.readFileSync(key.secret, 'utf8') },
  );
  t.not(r.code, 0, 'packer build fails', { output: r.out });
  t.match(r.out, /protected by a passphrase/);
  t.notOk(fs.existsSync(path.join(l.dir, output)), 'no box at the output path');
  t.same(fs.readdirSync(path.join(l.dir, 'json-out')), [], 'nothing else in the output directory');
  t.same(fs.readdirSync(quarantine), ['acme-db.box.unsigned']);
  t.equal(boxsig(['verify', path.join(quarantine, 'acme-db.box.unsigned'), '--json'], { env: l.env }).json?.code, 'UNSIGNED');
  noTempKeys(t, l);
  t.notMatch(r.out, /PRIVATE KEY BLOCK/);
});

t.test('wrapper without Packer: output path, stale output, usage errors', async (t) => {
  const l = lab(t);
  const key = makeKey(l.dir, 'Acme CI <ci@acme.example>', [], l.env);
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync('sh', [WRAPPER, ...args], { cwd: l.dir, env: { ...l.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? 128, out: `${r.stdout}${r.stderr}` };
  };
  const fresh = (name: string) => makeBox(path.join(l.dir, name));

  // --output: the signed box goes elsewhere (directory created), the input stays.
  const a = fresh('a.box');
  let r = run([a, '--key', key.secret, '--name', 'acme/a', '--version', '1', '--claim', 'builder=ci', '-o', 'dist/a.box']);
  t.equal(r.code, 0, 'the wrapper succeeds', { output: r.out });
  t.ok(fs.existsSync(a));
  t.same(verify(t, l, path.join(l.dir, 'dist/a.box'), key, 'acme/a', '1').claims, { builder: 'ci' });

  // A failure with --output moves the input aside and the older output too.
  const b = fresh('b.box');
  r = run([b, '--key', key.public, '--name', 'acme/a', '--version', '2', '-o', 'dist/a.box']);
  t.equal(r.code, 2, "the wrapper fails with boxsig's usage code", { output: r.out });
  t.notOk(fs.existsSync(b));
  t.ok(fs.existsSync(`${b}.unsigned`));
  t.same(fs.readdirSync(path.join(l.dir, 'dist')), ['a.box.stale'], "the older signed box is not left as this build's output");

  // Environment variables instead of flags; one BOXSIG_CLAIM_<N> per claim, in the order of N.
  const c = fresh('c.box');
  r = run([], {
    BOXSIG_BOX: c,
    BOXSIG_KEY_FILE: key.secret,
    BOXSIG_NAME: 'acme/c',
    BOXSIG_VERSION: '3',
    BOXSIG_CLAIM_1: 'x=1',
    BOXSIG_CLAIM_2: 'empty=',
    BOXSIG_CLAIM_10: 'token=YWJj=',
    BOXSIG_CLAIM_3: 'y=two words',
  });
  t.equal(r.code, 0, 'the wrapper succeeds', { output: r.out });
  t.same(verify(t, l, c, key, 'acme/c', '3').claims, { x: '1', y: 'two words', token: 'YWJj=' });
  t.match(r.out, /left out, because their value is empty: empty/);

  // Missing name, missing key, missing boxsig, a mistyped option: non-zero,
  // box moved aside
  // (a second failure on the same name gets a unique quarantine name).
  for (const [args, env, code, msg] of [
    [['--key', key.secret, '--version', '1'], {}, 2, /no box name/],
    [['--name', 'acme/d', '--version', '1'], {}, 2, /no signing key/],
    [['--name', 'acme/d', '--version', '1', '--key', key.secret], { BOXSIG_BIN: path.join(l.dir, 'nope') }, 3, /not found or not executable/],
    [['--name', 'acme/d', '--version', '1', '--key', key.secret, '--claims', 'x=y'], {}, 2, /unknown option --claims/],
  ] as const) {
    const d = fresh('d.box');
    r = run([d, ...args], env);
    t.equal(r.code, code, `exit ${code}`, { output: r.out });
    t.match(r.out, msg);
    t.notOk(fs.existsSync(d), 'no box left at the path');
  }
  t.equal(fs.readdirSync(l.dir).filter((n) => n.startsWith('d.box.unsigned')).length, 4);

  // No box at all: a clear message, nothing to move.
  r = run(['missing.box', '--key', key.secret, '--name', 'acme/e', '--version', '1']);
  t.equal(r.code, 3);
  t.match(r.out, /no box at missing\.box/);
  r = run([]);
  t.equal(r.code, 2);
  t.match(r.out, /no box given/);
});

t.test('wrapper: a newline in a value cannot add a claim or a key; success on stdout, errors on stderr', async (t) => {
  const l = lab(t);
  const key = makeKey(l.dir, 'Acme CI <ci@acme.example>', [], l.env);
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync('sh', [WRAPPER, ...args], { cwd: l.dir, env: { ...l.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}${r.stderr}` };
  };
  const fresh = (name: string) => makeBox(path.join(l.dir, name));
  const smuggled = 'abc123\napproved=yes';

  // success: progress and result on stdout, nothing on stderr
  const ok = fresh('ok.box');
  let r = run([ok, '--key', key.secret, '--name', 'acme/ok', '--version', '1', '--claim', 'builder=ci']);
  t.equal(r.code, 0, { output: r.out });
  t.match(r.stdout, /^boxsig-packer-sign: signing \S*\/ok\.box as acme\/ok 1 with 1 key\(s\) and 1 claim\(s\)$/m);
  t.match(r.stdout, /^boxsig-packer-sign: signed \S*\/ok\.box$/m);
  t.equal(r.stderr, '', 'nothing on stderr after a success');

  for (const [what, args, env, message] of [
    ['--claim with a newline', ['--claim', `git_commit=${smuggled}`], {}, /claim git_commit contains a line break/],
    ['BOXSIG_CLAIM_1 with a newline', [], { BOXSIG_CLAIM_1: `git_commit=${smuggled}` }, /claim git_commit contains a line break/],
    ['BOXSIG_CLAIM_1 with a carriage return', [], { BOXSIG_CLAIM_1: 'git_commit=abc\rapproved=yes' }, /claim git_commit contains a line break/],
    ['the old BOXSIG_CLAIMS', [], { BOXSIG_CLAIMS: 'builder=ci' }, /BOXSIG_CLAIMS \(one claim per line\) is no longer read/],
    ['a claim variable that is not numbered', [], { BOXSIG_CLAIM_X: 'builder=ci' }, /BOXSIG_CLAIM_X: claim variables are numbered/],
    ['a claim variable without "="', [], { BOXSIG_CLAIM_1: 'builder' }, /BOXSIG_CLAIM_1 must look like KEY=VALUE/],
  ] as const) {
    const box = fresh('inj.box');
    r = run([box, '--key', key.secret, '--name', 'acme/inj', '--version', '1', ...args], env);
    t.equal(r.code, 2, `${what}: the wrapper fails with a usage error`, { output: r.out });
    t.match(r.stderr, message, `${what}: says why, on stderr`);
    t.match(r.stderr, /signing FAILED \(exit 2\)/);
    t.notOk(fs.existsSync(box), `${what}: the box is moved aside`);
    fs.rmSync(`${box}.unsigned`, { force: true });
  }

  // a key path is one path: a newline does not add a second key
  const box = fresh('key.box');
  r = run([box, '--name', 'acme/key', '--version', '1'], { BOXSIG_KEY_FILE: `${key.secret}\n${key.secret}` });
  t.equal(r.code, 2, { output: r.out });
  t.match(r.stderr, /BOXSIG_KEY_FILE holds one path/);
});

t.test('HCL2 and JSON templates: a Packer variable with a newline cannot smuggle in a claim', { skip: noPacker }, async (t) => {
  if (!requireTool(t, 'packer', 'packer')) return;
  const l = lab(t);
  const key = makeKey(l.dir, 'Acme CI <ci@acme.example>', [], l.env);
  for (const [template, output] of [
    [HCL, 'out/acme-web.box'],
    [JSON_TEMPLATE, 'json-out/acme-web.box'],
  ] as const) {
    const r = packer(l, template, { box_output: output, box_name: 'acme/web', box_version: '2.3.4', key_file: key.secret, git_commit: 'abc123\napproved=yes' });
    t.not(r.code, 0, `${path.basename(template)}: the build fails`, { output: r.out });
    t.match(r.out, /claim git_commit contains a line break/);
    const box = path.join(l.dir, output);
    t.notOk(fs.existsSync(box), 'no box at the output path');
    t.ok(fs.existsSync(`${box}.unsigned`), 'the unsigned box was moved aside');
    t.equal(boxsig(['verify', `${box}.unsigned`, '--json'], { env: l.env }).json?.code, 'UNSIGNED', 'and nothing was signed');
  }
  // the same through the HCL map of extra claims
  const r = packer(l, HCL, {
    box_output: 'map/acme-web.box',
    box_name: 'acme/web',
    box_version: '2.3.4',
    key_file: key.secret,
    // an HCL escape: the value holds a real newline
    extra_claims: '{ release = "stable\\napproved=yes" }',
  });
  t.not(r.code, 0, 'extra_claims: the build fails', { output: r.out });
  t.match(r.out, /claim release contains a line break/);
  exampleFilesIntact(t);
});
