// The recovery step runs before every mutating command and acts on staging
// directories of dead processes. Those directories live in the Vagrant home,
// which may be shared: their journals are untrusted input. A journal names a
// box, never a path; every path recovery touches is derived from the box
// identity through the one choke point, and only this user's own staging
// directories (real directories, not links) are acted on.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, isolatedEnv } from './helpers.js';

const FPR = '0123456789ABCDEF0123456789ABCDEF01234567';

function setup(t: Test) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { HOME: path.join(dir, 'home') });
  const vhome = env.VAGRANT_HOME as string;
  fs.mkdirSync(path.join(vhome, 'tmp'), { recursive: true });
  fs.mkdirSync(path.join(vhome, 'boxes'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'home'), { recursive: true });
  const victim = path.join(dir, 'home', '.bashrc');
  fs.writeFileSync(victim, 'alias ll="ls -l"\n');
  const plant = (journal: unknown, opts: { parked?: boolean; name?: string } = {}) => {
    const s = path.join(vhome, 'tmp', opts.name ?? 'boxsig-add-999999-deadbeef');
    fs.mkdirSync(s, { recursive: true });
    fs.writeFileSync(path.join(s, 'journal.json'), JSON.stringify(journal));
    if (opts.parked) {
      fs.mkdirSync(path.join(s, 'parked'), { recursive: true });
      fs.writeFileSync(path.join(s, 'parked', 'Vagrantfile'), 'system("touch /tmp/pwned")\n');
    }
    return s;
  };
  const mutate = () => boxsig(['trust', 'pin', 'acme/web', FPR], { env });
  return { dir, env, vhome, victim, plant, mutate };
}

t.test('a journal naming paths outside boxes/ (the old path-based format) touches nothing', async (t) => {
  const { dir, victim, plant, mutate } = setup(t);
  const elsewhere = path.join(dir, 'elsewhere', 'new');
  plant(
    {
      format: 1,
      target: elsewhere,
      replace: true,
      metadataUrl: { file: victim, value: fs.readFileSync(victim, 'utf8'), previous: 'echo ATTACKER\n' },
    },
    { parked: true },
  );
  const r = mutate();
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(victim, 'utf8'), 'alias ll="ls -l"\n', 'the file named as metadata_url is untouched');
  t.notOk(fs.existsSync(elsewhere), 'nothing is moved to the target named');
});

t.test('a journal naming a file to delete (previous: null) deletes nothing', async (t) => {
  const { victim, plant, mutate } = setup(t);
  plant({
    format: 2,
    box: { name: 'acme/web', version: '1.0.0', provider: 'virtualbox' },
    replace: false,
    metadataUrl: { file: victim, value: fs.readFileSync(victim, 'utf8'), previous: null },
  });
  t.equal(mutate().code, 0);
  t.ok(fs.existsSync(victim), 'a path in the journal is ignored: only the name directory’s metadata_url can be restored');
});

t.test('a journal whose box identity would escape boxes/ is ignored', async (t) => {
  const { dir, vhome, plant, mutate } = setup(t);
  for (const [i, box] of [
    { name: '../../../x', version: '1.0.0', provider: 'virtualbox' },
    { name: 'acme/web', version: '../../..', provider: 'virtualbox' },
    { name: 'acme/web', version: '1.0.0', provider: '../../../../escape' },
    { name: 'acme/web', version: '1.0.0', provider: 'virtualbox', architecture: '../..' },
    { name: 'acme-VAGRANTSLASH-web', version: '1.0.0', provider: 'virtualbox' },
  ].entries()) {
    plant({ format: 2, box, replace: true, metadataUrl: { value: 'x', previous: 'y' } }, { parked: true, name: `boxsig-add-99999${i}-0${i}` });
  }
  t.equal(mutate().code, 0);
  t.same(fs.readdirSync(path.join(vhome, 'boxes')), [], 'nothing was installed');
  t.notOk(fs.existsSync(path.join(dir, 'escape')), 'nothing outside');
  t.notOk(fs.existsSync(path.join(dir, 'x')), 'nothing outside');
});

t.test("a staging directory that is a link, or another user's, is never acted on", async (t) => {
  const { dir, vhome, victim, mutate } = setup(t);
  // a link named like a staging directory, pointing at the victim's home
  fs.symlinkSync(path.dirname(victim), path.join(vhome, 'tmp', 'boxsig-add-999998-0badf00d'));
  t.equal(mutate().code, 0);
  t.ok(fs.existsSync(victim), 'the directory behind the link is untouched');
  t.ok(fs.lstatSync(path.join(vhome, 'tmp', 'boxsig-add-999998-0badf00d')).isSymbolicLink(), 'the link is left alone');
  if (process.getuid?.() === 0) {
    const other = path.join(vhome, 'tmp', 'boxsig-add-999997-0000beef');
    fs.mkdirSync(path.join(other, 'parked'), { recursive: true });
    fs.writeFileSync(
      path.join(other, 'journal.json'),
      JSON.stringify({ format: 2, box: { name: 'acme/web', version: '1.0.0', provider: 'virtualbox' }, replace: true, metadataUrl: null }),
    );
    fs.chownSync(other, 65534, 65534);
    t.equal(mutate().code, 0);
    t.notOk(fs.existsSync(path.join(vhome, 'boxes', 'acme-VAGRANTSLASH-web')), "another user's parked box is not installed");
    t.ok(fs.existsSync(other), "another user's staging directory is left to its owner");
  }
  t.ok(dir);
});
