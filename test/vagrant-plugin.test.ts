/**
 * The Vagrant plugin (plugins/vagrant, gem vagrant-boxsig) with the REAL
 * `vagrant`: the gem is built and installed into a throwaway VAGRANT_HOME,
 * `boxsig` on PATH is a shim running this repository's build. With the plugin,
 * every add of Vagrant (`vagrant box add` of a file and of a catalog,
 * `vagrant box update`, and the automatic add of `vagrant up`, through a stub
 * provider defined in the Vagrantfile since no hypervisor is installed) is
 * done by `boxsig add`: Vagrant's own download and extraction never run. A
 * refused box fails the command with boxsig's code and nothing of it is ever
 * under VAGRANT_HOME/boxes. Kills, hostile archives, an unprivileged user,
 * escaping and authentication: test/vagrant-hostile-suite.ts (run by
 * test/vagrant-plugin-hostile-root.test.ts and -user.test.ts).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, requireTool, sh } from './helpers.js';
import {
  boxList,
  catalogFile,
  catalogJson,
  labDir,
  leftovers,
  makeBoxFile,
  makeLab,
  project,
  removeLab,
  serve,
  signed,
  stagingDirs,
  tampered,
  vagrant,
  vagrantAsync,
  vagrantAvailable,
  type Lab,
} from './vagrant-lab.js';

let lab: Lab | null = null;

t.before(() => {
  if (vagrantAvailable()) lab = makeLab();
});
t.teardown(() => removeLab(lab));

/** A Vagrantfile for `vagrant up` with a stub provider whose :up action is only HandleBox. */
const STUB_PROVIDER = [
  'class BoxsigStubProvider < Vagrant.plugin("2", :provider)',
  '  def initialize(machine); @machine = machine; end',
  '  def action(name)',
  '    return nil unless name == :up',
  '    Vagrant::Action::Builder.new.tap { |b| b.use Vagrant::Action::Builtin::HandleBox }',
  '  end',
  '  def state; Vagrant::MachineState.new(:not_created, "not created", "not created"); end',
  'end',
  'class BoxsigStubPlugin < Vagrant.plugin("2")',
  '  name "boxsig-stub-provider"',
  '  provider(:boxsigstub) { BoxsigStubProvider }',
  'end',
].join('\n');

t.test('vagrant-boxsig with the real vagrant', async (t) => {
  if (!requireTool(t, 'vagrant', 'vagrant') || !requireTool(t, 'gem', 'ruby')) return;
  const L = lab!;
  const cwd = (name: string) => labDir(L, 'cwd', name);

  t.test('the plugin is installed', async (t) => {
    const r = vagrant(L, ['plugin', 'list'], L.dir);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /vagrant-boxsig \(\d+\.\d+\.\d+/);
  });

  t.test('a good signed box is added by boxsig (no Vagrantfile: trust on first use)', async (t) => {
    const box = signed(L, path.join(L.dir, 'ok.box'), 'acme/ok', '1.0', [L.key]);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/ok', '--provider', 'virtualbox', box], cwd('ok'));
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /Adding the box acme\/ok with boxsig/);
    t.match(r.out, /boxsig: verified acme\/ok 1\.0 \(virtualbox\)/);
    t.match(r.out, /FIRST USE of acme\/ok/, 'says loudly that it trusts on first use');
    t.match(r.out, new RegExp(L.key.fingerprint));
    t.match(r.out, /Successfully added box 'acme\/ok' \(v1\.0\) for 'virtualbox'!/, "Vagrant's success line");
    t.notMatch(r.out, /Unpacking necessary files/, "Vagrant's own extraction did not run");
    // boxsig installs a box added from a file under the version its signed manifest states (Vagrant used 0)
    t.match(boxList(L), /acme\/ok\s+\(virtualbox, 1\.0\)/);
    t.ok(
      fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-ok', '1.0', 'virtualbox', '.boxsig', 'manifest.json')),
      'the installed box keeps .boxsig/',
    );
    const trust = boxsig(['trust', 'list', '--json'], { env: L.env });
    t.match(trust.stdout, L.key.fingerprint, 'the trust store recorded the signer');
  });

  t.test('a tampered box is refused with TAMPERED, and nothing of it is installed', async (t) => {
    const good = signed(L, path.join(L.dir, 'tampered-src.box'), 'acme/tampered', '1.0', [L.key]);
    const box = tampered(L, good, path.join(L.dir, 'tampered.box'));
    const r = vagrant(L, ['box', 'add', '--name', 'acme/tampered', '--provider', 'virtualbox', box], cwd('tampered'));
    t.equal(r.code, 1, 'vagrant box add fails with exit 1 (refused)', { output: r.out });
    t.match(r.out, /boxsig refused the box acme\/tampered: TAMPERED: .*box-disk1\.vmdk/);
    t.match(r.out, /Nothing of it was installed/);
    t.notMatch(r.out, /Successfully added box/);
    t.notMatch(boxList(L), /acme\/tampered/);
    t.same(leftovers(L, 'acme/tampered'), [], 'nothing under VAGRANT_HOME/boxes');
    t.same(stagingDirs(L), [], 'no staging directory left');
  });

  t.test('a refused --force add leaves the installed box untouched', async (t) => {
    const dir = path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-ok', '1.0', 'virtualbox');
    const before = fs.readFileSync(path.join(dir, '.boxsig', 'manifest.json'));
    const evil = tampered(L, path.join(L.dir, 'ok.box'), path.join(L.dir, 'ok-tampered.box'));
    const r = vagrant(L, ['box', 'add', '--force', '--name', 'acme/ok', '--provider', 'virtualbox', evil], cwd('force'));
    t.equal(r.code, 1, 'exit 1', { output: r.out });
    t.match(r.out, /boxsig refused the box acme\/ok: TAMPERED/);
    t.match(boxList(L), /acme\/ok\s+\(virtualbox, 1\.0\)/);
    t.same(fs.readFileSync(path.join(dir, '.boxsig', 'manifest.json')), before, 'the old box, not the refused one');
    const v = boxsig(['verify', '--dir', dir, '--name', 'acme/ok', '--provider', 'virtualbox', '--json'], { env: L.env });
    t.equal(v.code, 0, 'the installed box still verifies', { output: v.stdout + v.stderr });
    t.same(stagingDirs(L), [], 'no staging directory left');

    const again = vagrant(L, ['box', 'add', '--name', 'acme/ok', '--provider', 'virtualbox', path.join(L.dir, 'ok.box')], cwd('force'));
    t.equal(again.code, 1, "without --force: Vagrant's BoxAlreadyExists", { output: again.out });
    t.match(again.out, /already exists/);
    const forced = vagrant(L, ['box', 'add', '--force', '--name', 'acme/ok', '--provider', 'virtualbox', path.join(L.dir, 'ok.box')], cwd('force'));
    t.equal(forced.code, 0, 'a verified --force add replaces it', { output: forced.out });
    t.match(forced.out, /was replaced \(--force\), after the new one verified/);
  });

  t.test('an unsigned box is refused with UNSIGNED (signatures required by default)', async (t) => {
    const r = vagrant(L, ['box', 'add', '--name', 'acme/unsigned', '--provider', 'virtualbox', L.base], cwd('unsigned'));
    t.equal(r.code, 1, 'exit 1', { output: r.out });
    t.match(r.out, /boxsig refused the box acme\/unsigned: UNSIGNED/);
    t.match(r.out, /"signatures" => "optional"/, 'says how to allow an unsigned box');
    t.notMatch(boxList(L), /acme\/unsigned/);
    t.same(leftovers(L, 'acme/unsigned'), []);
  });

  t.test('a checksum given to vagrant box add is checked by boxsig', async (t) => {
    const box = signed(L, path.join(L.dir, 'sum.box'), 'acme/sum', '1.0', [L.key]);
    const wrong = '0'.repeat(64);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/sum', '--checksum', wrong, '--checksum-type', 'sha256', box], cwd('sum'));
    t.equal(r.code, 1, 'exit 1', { output: r.out });
    t.match(r.out, /CHECKSUM_MISMATCH/);
    t.same(leftovers(L, 'acme/sum'), []);
    // without --checksum-type Vagrant would not check at all; boxsig takes the type from the length
    const md5 = sh('md5sum', [box]).stdout.split(' ')[0];
    const ok = vagrant(L, ['box', 'add', '--name', 'acme/sum', '--checksum', md5, box], cwd('sum'));
    t.equal(ok.code, 0, 'an md5 checksum without a type', { output: ok.out });
  });

  t.test('config.boxsig in the Vagrantfile of the current directory', async (t) => {
    const dir = project(
      L,
      'pinned',
      [
        'Vagrant.configure("2") do |config|',
        `  config.boxsig.boxes = { "acme/*" => { "pin" => ["${L.key.fingerprint}"] }, "legacy/*" => { "signatures" => "optional" } }`,
        'end',
        '',
      ].join('\n'),
    );

    t.test('a box signed by a key other than the pinned one is refused', async (t) => {
      const box = signed(L, path.join(L.dir, 'evil.box'), 'acme/pinned', '1.0', [L.other]);
      const r = vagrant(L, ['box', 'add', '--name', 'acme/pinned', '--provider', 'virtualbox', box], dir);
      t.equal(r.code, 1, 'exit 1', { output: r.out });
      t.match(r.out, /boxsig refused the box acme\/pinned: UNTRUSTED_KEY/);
      t.match(r.out, /Vagrantfile \(config\.boxsig\)/, 'names the Vagrantfile as the source of the pin');
      t.notMatch(boxList(L), /acme\/pinned/);
      t.same(leftovers(L, 'acme/pinned'), []);
      const trust = boxsig(['trust', 'list', '--json'], { env: L.env });
      t.notMatch(trust.stdout, L.other.fingerprint, 'a refused add records no trust');
    });

    t.test('a box signed by the pinned key is added', async (t) => {
      const box = signed(L, path.join(L.dir, 'pinned.box'), 'acme/pinned', '1.0', [L.key]);
      const r = vagrant(L, ['box', 'add', '--name', 'acme/pinned', '--provider', 'virtualbox', box], dir);
      t.equal(r.code, 0, 'exit 0', { output: r.out });
      t.match(r.out, /boxsig: verified acme\/pinned 1\.0 \(virtualbox\).*pinned/);
      t.match(boxList(L), /acme\/pinned\s+\(virtualbox, 1\.0\)/);
    });

    t.test('signatures "optional" for a glob lets an unsigned box in, with a warning', async (t) => {
      const r = vagrant(L, ['box', 'add', '--name', 'legacy/old', '--provider', 'virtualbox', L.base], dir);
      t.equal(r.code, 0, 'exit 0', { output: r.out });
      t.match(r.out, /legacy\/old 0 \(virtualbox\) is NOT signed/);
      t.match(boxList(L), /legacy\/old\s+\(virtualbox, 0\)/, "an unsigned direct add keeps Vagrant's version 0");
    });
  });

  t.test('a missing boxsig command fails the add, and nothing is added', async (t) => {
    const dir = project(L, 'missing', 'Vagrant.configure("2") do |config|\n  config.boxsig.binary = "/nonexistent/bin/boxsig"\nend\n');
    const box = signed(L, path.join(L.dir, 'missing.box'), 'acme/missing', '1.0', [L.key]);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/missing', '--provider', 'virtualbox', box], dir);
    t.equal(r.code, 3, 'exit 3', { output: r.out });
    t.match(r.out, /needs the `boxsig` command, which was not found at \/nonexistent\/bin\/boxsig/);
    t.match(r.out, /config\.boxsig\.enabled = false/);
    t.match(r.out, /"Install" section of boxsig's README\.md/, "points to the README's Install section");
    t.same(leftovers(L, 'acme/missing'), []);

    // and with nothing called boxsig on the PATH (the shim's directory is first on it)
    const env = { ...L.env, PATH: (L.env.PATH ?? '').split(':').slice(1).join(':') };
    if (sh('sh', ['-c', 'command -v boxsig'], { env }).code === 0) {
      t.comment('a boxsig is installed on this machine: not testing the PATH case');
      return;
    }
    const r2 = vagrant(L, ['box', 'add', '--name', 'acme/missing', '--provider', 'virtualbox', box], cwd('missing'), 120_000, env);
    t.equal(r2.code, 3, 'exit 3', { output: r2.out });
    t.match(r2.out, /needs the `boxsig` command, which was not found on the PATH/);
    t.same(leftovers(L, 'acme/missing'), []);
  });

  t.test("config.boxsig.enabled = false: Vagrant's own add, unverified, with a loud warning", async (t) => {
    const dir = project(L, 'disabled', 'Vagrant.configure("2") do |config|\n  config.boxsig.enabled = false\nend\n');
    const r = vagrant(L, ['box', 'add', '--name', 'acme/optout', '--provider', 'virtualbox', L.base], dir);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /signature verification is turned off \(config\.boxsig\.enabled = false\): Vagrant adds acme\/optout itself, UNVERIFIED/);
    t.match(r.out, /Unpacking necessary files/, "Vagrant's own add ran");
    t.match(r.out, /acme\/optout 0 \(virtualbox\) was added UNVERIFIED/);
    t.match(boxList(L), /acme\/optout\s+\(virtualbox, 0\)/);
  });

  t.test('an invalid config.boxsig fails the add with exit 2 before anything is downloaded', async (t) => {
    const box = signed(L, path.join(L.dir, 'invalid.box'), 'acme/invalid', '1.0', [L.key]);
    const dir = project(L, 'invalid', 'Vagrant.configure("2") do |config|\n  config.boxsig.boxes = { "acme/*" => { "threshold" => "many" } }\nend\n');
    const r = vagrant(L, ['box', 'add', '--name', 'acme/invalid', '--provider', 'virtualbox', box], dir);
    t.equal(r.code, 2, 'exit 2', { output: r.out });
    t.match(r.out, /boxsig could not add the box acme\/invalid \(exit 2\): CONFIG: .*threshold/);
    t.same(leftovers(L, 'acme/invalid'), []);

    const shape = project(L, 'invalid-shape', 'Vagrant.configure("2") do |config|\n  config.boxsig.orgs = "acme"\nend\n');
    const r2 = vagrant(L, ['box', 'add', '--name', 'acme/invalid', '--provider', 'virtualbox', box], shape);
    t.equal(r2.code, 2, 'exit 2', { output: r2.out });
    t.match(r2.out, /config\.boxsig\.orgs must be a Hash/);

    const fpr = project(L, 'invalid-fpr', 'Vagrant.configure("2") do |config|\n  config.boxsig.boxes = { "acme/*" => { "pin" => ["ABCD"] } }\nend\n');
    const r3 = vagrant(L, ['box', 'add', '--name', 'acme/invalid', '--provider', 'virtualbox', box], fpr);
    t.equal(r3.code, 2, 'exit 2', { output: r3.out });
    t.match(r3.out, /config\.boxsig\.boxes\["acme\/\*"\]\["pin"\]\[0\]: "ABCD" is not a full 40-hex-digit OpenPGP fingerprint/);
    const v = vagrant(L, ['validate', '--ignore-provider'], fpr);
    t.not(v.code, 0, 'vagrant validate reports it too');
    t.match(v.out, /"ABCD" is not a full 40-hex-digit/);
    t.same(leftovers(L, 'acme/invalid'), []);
  });

  t.test('what boxsig add cannot do is refused before anything is downloaded', async (t) => {
    const box = path.join(L.dir, 'ok.box');
    const r = vagrant(L, ['box', 'add', '--name', 'acme/lt', '--location-trusted', box], cwd('unsupported'));
    t.equal(r.code, 2, 'exit 2', { output: r.out });
    t.match(r.out, /vagrant-boxsig cannot add the box acme\/lt this way: --location-trusted/);
    t.match(r.out, /Nothing was downloaded or installed/);
    t.same(leftovers(L, 'acme/lt'), []);
  });

  t.test('a catalog add, vagrant box outdated and vagrant box update go through boxsig', async (t) => {
    const v1 = signed(L, path.join(L.dir, 'cat-1.box'), 'acme/cat', '1.0', [L.key]);
    const cat = path.join(L.dir, 'catalog.json');
    catalogFile(L, cat, 'acme/cat', [{ version: '1.0', box: v1 }]);
    const dir = cwd('catalog');
    const r = vagrant(L, ['box', 'add', cat], dir);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /boxsig: verified acme\/cat 1\.0 \(virtualbox\)/);
    t.match(r.out, /Successfully added box 'acme\/cat' \(v1\.0\) for 'virtualbox'!/);
    t.match(boxList(L), /acme\/cat\s+\(virtualbox, 1\.0\)/);
    t.equal(fs.readFileSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', 'metadata_url'), 'utf8'), `file://${cat}`, 'metadata_url written');

    // 1.1 is signed by another key: the update is refused, 1.0 stays
    const v11 = signed(L, path.join(L.dir, 'cat-1.1.box'), 'acme/cat', '1.1', [L.other]);
    catalogFile(L, cat, 'acme/cat', [
      { version: '1.0', box: v1 },
      { version: '1.1', box: v11 },
    ]);
    const o = vagrant(L, ['box', 'outdated', '--global'], dir);
    t.match(o.out, /acme\/cat.*1\.1/, 'vagrant box outdated sees 1.1 through metadata_url');
    const u = vagrant(L, ['box', 'update', '--box', 'acme/cat'], dir);
    t.equal(u.code, 1, 'exit 1', { output: u.out });
    t.match(u.out, /boxsig refused the box from file:\/\/.*catalog\.json: KEY_CHANGED: the signing key of acme\/cat changed/);
    t.match(u.out, new RegExp(L.other.fingerprint));
    t.match(u.out, /boxsig trust accept acme\/cat/, "boxsig's hint");
    const list = boxList(L);
    t.match(list, /acme\/cat\s+\(virtualbox, 1\.0\)/, 'the old version stays');
    t.notMatch(list, /acme\/cat\s+\(virtualbox, 1\.1\)/);
    t.notOk(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', '1.1')), 'no 1.1 directory');
    t.ok(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', 'metadata_url')), 'metadata_url of 1.0 stays');

    // a catalog entry whose box says another version is WRONG_BOX
    const v12 = signed(L, path.join(L.dir, 'cat-1.2.box'), 'acme/cat', '9.9', [L.key]);
    catalogFile(L, cat, 'acme/cat', [
      { version: '1.0', box: v1 },
      { version: '1.2', box: v12 },
    ]);
    const w = vagrant(L, ['box', 'update', '--box', 'acme/cat'], dir);
    t.equal(w.code, 1, 'exit 1', { output: w.out });
    t.match(w.out, /boxsig refused the box from file:\/\/.*catalog\.json: WRONG_BOX/);
    t.notOk(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', '1.2')));

    // a good 1.3 updates
    const v13 = signed(L, path.join(L.dir, 'cat-1.3.box'), 'acme/cat', '1.3', [L.key]);
    catalogFile(L, cat, 'acme/cat', [
      { version: '1.0', box: v1 },
      { version: '1.3', box: v13 },
    ]);
    const g = vagrant(L, ['box', 'update', '--box', 'acme/cat'], dir);
    t.equal(g.code, 0, 'exit 0', { output: g.out });
    t.match(g.out, /boxsig: verified acme\/cat 1\.3/);
    t.match(boxList(L), /acme\/cat\s+\(virtualbox, 1\.3\)/);
  });

  t.test('a catalog served over HTTP (application/json) goes through boxsig', async (t) => {
    const good = signed(L, path.join(L.dir, 'web-1.box'), 'acme/web', '1.0', [L.key]);
    const evil = signed(L, path.join(L.dir, 'web-2.box'), 'acme/web', '2.0', [L.other]);
    const srv = await serve();
    t.teardown(() => srv.close());
    srv.routes.set('/web-1.box', { file: good });
    srv.routes.set('/web-2.box', { file: evil });
    const entry = (version: string, file: string) => ({ version, url: `${srv.url}/${path.basename(file)}`, file });
    srv.routes.set('/acme/web', { body: catalogJson('acme/web', [entry('1.0', good)]), contentType: 'application/json' });
    const dir = cwd('http');
    const r = await vagrantAsync(L, ['box', 'add', `${srv.url}/acme/web`], dir);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /boxsig: verified acme\/web 1\.0 \(virtualbox\)/);
    t.match(boxList(L), /acme\/web\s+\(virtualbox, 1\.0\)/);
    const agents = srv.requests.map((q) => `${q.method} ${q.path} ${q.headers['user-agent']}`);
    t.same(
      agents,
      [`HEAD /acme/web boxsig`, `GET /acme/web boxsig`, `GET /web-1.box boxsig`],
      'boxsig fetched the catalog and the box; Vagrant fetched nothing',
    );

    srv.routes.set('/acme/web', { body: catalogJson('acme/web', [entry('1.0', good), entry('2.0', evil)]), contentType: 'application/json' });
    const u = await vagrantAsync(L, ['box', 'update', '--box', 'acme/web'], dir);
    t.equal(u.code, 1, 'exit 1', { output: u.out });
    t.match(u.out, /boxsig refused the box from http:\/\/127\.0\.0\.1:\d+\/acme\/web: KEY_CHANGED/);
    t.notOk(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-web', '2.0')));
    t.match(boxList(L), /acme\/web\s+\(virtualbox, 1\.0\)/);
  });

  t.test("vagrant up's automatic box add goes through boxsig (machine config)", async (t) => {
    const stubBase = makeBoxFile(path.join(L.dir, 'stub-base.box'), { provider: 'boxsigstub' });
    const upBox = signed(L, path.join(L.dir, 'up.box'), 'acme/up', '3.0', [L.key], 'boxsigstub', stubBase);
    const cat = catalogFile(L, path.join(L.dir, 'up-catalog.json'), 'acme/up', [{ version: '3.0', box: upBox, provider: 'boxsigstub' }]);
    const vf = (pin: string, url: string | string[] = `file://${cat}`) =>
      [
        STUB_PROVIDER,
        'Vagrant.configure("2") do |config|',
        '  config.vm.box = "acme/up"',
        `  config.vm.box_url = ${JSON.stringify(url)}`,
        `  config.boxsig.boxes = { "acme/up" => { "pin" => ["${pin}"] } }`,
        'end',
        '',
      ].join('\n');

    const bad = project(L, 'up-bad', vf(L.other.fingerprint));
    const r = vagrant(L, ['up', '--provider', 'boxsigstub'], bad);
    t.equal(r.code, 1, 'exit 1', { output: r.out });
    t.match(r.out, /boxsig refused the box acme\/up: UNTRUSTED_KEY/);
    t.notMatch(boxList(L), /acme\/up/);
    t.same(leftovers(L, 'acme/up'), [], 'no box directory and no metadata_url');

    // a list of box URLs: like Vagrant, a download error moves on to the next one
    const good = project(L, 'up-good', vf(L.key.fingerprint, ['http://127.0.0.1:1/up.box', `file://${upBox}`]));
    const g = vagrant(L, ['up', '--provider', 'boxsigstub'], good);
    t.equal(g.code, 0, 'exit 0', { output: g.out });
    t.match(g.out, /Error downloading: .*127\.0\.0\.1/, 'the first URL failed');
    t.match(g.out, /boxsig: verified acme\/up 3\.0 \(boxsigstub\)/);
    t.match(boxList(L), /acme\/up\s+\(boxsigstub, 3\.0\)/);
  });

  t.test('repackage: vagrant box repackage drops .boxsig/, vagrant boxsig repackage re-signs', async (t) => {
    const dir = cwd('repackage');
    const r = vagrant(L, ['box', 'repackage', 'acme/ok', 'virtualbox', '1.0'], dir);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    const names = sh('tar', ['tzf', path.join(dir, 'package.box')])
      .stdout.split('\n')
      .filter(Boolean);
    t.ok(
      names.some((n) => /metadata\.json$/.test(n)),
      'the repackaged box has metadata.json',
    );
    t.notOk(
      names.some((n) => n.includes('.boxsig')),
      'no .boxsig/ in the output of vagrant box repackage',
    );

    const out = path.join(dir, 're-signed.box');
    const s = vagrant(L, ['boxsig', 'repackage', 'acme/ok', 'virtualbox', '1.0', '--key', L.other.secret, '--claim', 'builder=repack', '-o', out], dir);
    t.equal(s.code, 0, 'exit 0', { output: s.out });
    const v = boxsig(['verify', out, '--name', 'acme/ok', '--version', '1.0', '--provider', 'virtualbox', '--pin', L.other.fingerprint, '--json'], {
      env: L.env,
    });
    t.equal(v.code, 0, 'boxsig verify accepts it', { output: v.stdout + v.stderr });
    t.same(
      v.json?.signers?.map((x: any) => x.fingerprint),
      [L.other.fingerprint],
      'signed by the new key only (the old signature did not travel)',
    );
    t.same(v.json?.claims, { builder: 'repack' });

    // a box installed as version 0 (unsigned, added from a file) signed under an explicit version
    const out2 = path.join(dir, 're-signed-2.box');
    const s2 = vagrant(L, ['boxsig', 'repackage', 'legacy/old', 'virtualbox', '0', '--key', L.key.secret, '--sign-version', '2.0', '-o', out2], dir);
    t.equal(s2.code, 0, 'exit 0', { output: s2.out });
    const v2 = boxsig(['verify', out2, '--name', 'legacy/old', '--version', '2.0', '--pin', L.key.fingerprint, '--json'], { env: L.env });
    t.equal(v2.code, 0, 'boxsig verify accepts it', { output: v2.stdout + v2.stderr });

    const missing = vagrant(L, ['boxsig', 'repackage', 'acme/nope', 'virtualbox', '1', '--key', L.key.secret], dir);
    t.not(missing.code, 0);
    t.match(missing.out, /could not be found/);
  });

  t.test('vagrant boxsig verify re-verifies installed boxes', async (t) => {
    const r = vagrant(L, ['boxsig', 'verify', 'acme/cat', '--json'], cwd('reverify'));
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /"ok": ?true/);
    // break an installed box behind Vagrant's back
    const disk = path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', '1.3', 'virtualbox', 'box-disk1.vmdk');
    fs.appendFileSync(disk, 'x');
    const b = vagrant(L, ['boxsig', 'verify', 'acme/cat'], cwd('reverify'));
    t.equal(b.code, 1, 'exit 1', { output: b.out });
    t.match(b.out, /TAMPERED/);
  });
});
