/**
 * The names choke point (src/manifest/names.ts) and the path proof
 * (src/vagrant/home.ts, boxLocation): table-driven.
 */
import t from 'tap';
import path from 'node:path';
import { boxDirName, boxNameFromDir, identityProblems, nameProblem, providerProblem, versionProblem } from '../../src/manifest/names.js';
import { boxLocation } from '../../src/vagrant/home.js';

t.test('names: valid ones map to one directory and back', async (t) => {
  for (const name of [
    'acme/web',
    'hashicorp/precise64',
    'StefanScherer/windows_2019',
    'precise64',
    'a/b',
    'org.x/box+1_2-3',
    'constructor',
    'constructor/toString',
    'acme-VAGRANT/SLASH-web',
  ]) {
    t.equal(nameProblem(name), null, name);
    t.equal(boxNameFromDir(boxDirName(name)), name, `${name} round-trips`);
  }
});

t.test('names: refused', async (t) => {
  const table: Array<[string, RegExp]> = [
    ['acme-VAGRANTSLASH-web', /escape/],
    ['acme-vagrantslash-web', /escape/],
    ['acme-VagrantColon-web', /escape/],
    ['acme-VAGRANTSLASH/web', /escape/],
    ['acme/xVAGRANTCOLONy', /escape/],
    ['acme/web/x', /must look like/],
    ['../acme', /must look like/],
    ['acme/..', /must look like/],
    ['acme/.hidden', /must look like/],
    ['/acme', /must look like/],
    ['acme/', /must look like/],
    ['acme:web', /must look like/],
    ['acme\\web', /must look like/],
    ['acme/web\n', /must look like/],
    ['acme/wéb', /must look like/],
    ['', /must look like/],
    ['a'.repeat(201), /longer than 200/],
  ];
  for (const [name, why] of table) t.match(nameProblem(name), why, JSON.stringify(name));
});

t.test('versions and providers', async (t) => {
  for (const v of ['0', '1.2.3', '2024.01.05', '1.0.rc1', '1.0.0-rc.1', '01.0']) t.equal(versionProblem(v), null, v);
  for (const v of ['', '..', '.', '../1', '1.0/..', '/1', '1..0', '1.0-', 'v1', '1.0\n', '1 0', '9'.repeat(65)])
    t.not(versionProblem(v), null, JSON.stringify(v));
  for (const p of ['virtualbox', 'vmware_desktop', 'libvirt', 'docker', 'hyper-v']) t.equal(providerProblem(p), null, p);
  for (const p of ['', '..', '../x', 'VirtualBox', 'a/b', '.x', 'x\u0000']) t.not(providerProblem(p), null, JSON.stringify(p));
});

t.test('identityProblems names every bad field and escapes its value', async (t) => {
  t.same(identityProblems({ name: 'acme/web', version: '1.0', provider: 'virtualbox' }), []);
  const p = identityProblems({ name: 'a/b', version: '../x', provider: 'a\u001bb', architecture: 7 });
  t.equal(p.length, 3);
  t.match(p[0], /^version "\.\.\/x" /);
  t.match(p[1], /^provider "a\\u001bb" /, 'control characters are escaped');
  t.match(p[2], /^architecture 7 is not a string/);
});

t.test('boxLocation: validated, and exactly three levels under boxes/', async (t) => {
  const home = path.resolve('/home/u/.vagrant.d');
  const loc = boxLocation(home, { name: 'acme/web', version: '1.0', provider: 'virtualbox' });
  t.equal(loc.directory, path.join(home, 'boxes', 'acme-VAGRANTSLASH-web', '1.0', 'virtualbox'));
  t.equal(loc.nameDir, path.join(home, 'boxes', 'acme-VAGRANTSLASH-web'));
  for (const bad of [
    { name: 'acme/web', version: '../../..', provider: 'virtualbox' },
    { name: 'acme/web', version: '1.0', provider: '../../../etc' },
    { name: 'acme-VAGRANTSLASH-web', version: '1.0', provider: 'virtualbox' },
    { name: 'acme/web', version: '1.0', provider: '' },
  ]) {
    t.throws(() => boxLocation(home, bad), { code: 'UNSAFE_ENTRY' }, JSON.stringify(bad));
  }
});
