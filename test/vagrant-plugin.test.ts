/**
 * The Vagrant plugin (plugins/vagrant, gem vagrant-boxsig) with the REAL
 * `vagrant`: the gem is built and installed once into a throwaway
 * VAGRANT_HOME, `boxsig` on PATH is a shim running this repository's build,
 * and every add goes through Vagrant's own BoxAdd followed by the plugin's
 * hook (`vagrant box add` of a file and of a catalog, `vagrant box update`,
 * and the automatic add of `vagrant up`, through a stub provider defined in
 * the Vagrantfile since no hypervisor is installed). A refused box must fail
 * the command with boxsig's code and leave nothing under VAGRANT_HOME/boxes.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { CLI, ROOT, boxsig, hasTool, isolatedEnv, makeBox, makeKey, must, requireTool, sh, sign, type KeyFiles } from './helpers.js';
import { serve, type Route } from './http-server.js';

const PLUGIN = path.join(ROOT, 'plugins', 'vagrant');

interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  home: string;
  key: KeyFiles;
  other: KeyFiles;
  base: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Runs vagrant; output is stdout and stderr together (Vagrant prints errors on stderr). */
function vagrant(lab: Lab, args: string[], cwd: string): { code: number; out: string } {
  const r = sh('vagrant', args, { env: lab.env, cwd, timeout: 120_000 });
  return { code: r.code, out: `${r.stdout}\n${r.stderr}` };
}

/** The same without blocking the event loop (the HTTP server of a test runs in this process). */
function vagrantAsync(lab: Lab, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('vagrant', args, { env: lab.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
}

function boxList(lab: Lab): string {
  return sh('vagrant', ['box', 'list'], { env: lab.env, cwd: lab.dir }).stdout;
}

/** Directories of this box name left under VAGRANT_HOME/boxes. */
function leftovers(lab: Lab, name: string): string[] {
  const d = path.join(lab.home, 'boxes', name.replace(/\//g, '-VAGRANTSLASH-'));
  if (!fs.existsSync(d)) return [];
  return must('find', [d]).split('\n').filter(Boolean);
}

/** A project directory with this Vagrantfile (Ruby source). */
function project(lab: Lab, name: string, vagrantfile: string): string {
  const d = path.join(lab.dir, 'projects', name);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'Vagrantfile'), vagrantfile);
  return d;
}

function emptyDir(lab: Lab, name: string): string {
  const d = path.join(lab.dir, 'cwd', name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function signed(lab: Lab, out: string, name: string, version: string, keys: KeyFiles[], provider = 'virtualbox', base = lab.base): string {
  const r = sign(base, keys, ['--name', name, '--version', version, '--provider', provider, '-o', out], lab.env);
  if (r.code !== 0) throw new Error(`sign failed: ${r.stderr}`);
  return out;
}

/** A catalog (Vagrant metadata JSON) file listing these versions of one provider. */
function catalog(file: string, name: string, versions: Array<{ version: string; box: string; provider?: string }>): string {
  fs.writeFileSync(
    file,
    JSON.stringify({
      name,
      versions: versions.map((v) => ({
        version: v.version,
        providers: [{ name: v.provider ?? 'virtualbox', url: `file://${v.box}`, checksum: sha256(v.box), checksum_type: 'sha256' }],
      })),
    }),
  );
  return file;
}

let lab: Lab | null = null;

t.before(() => {
  if (!hasTool('vagrant') || !hasTool('gem')) return;
  const dir = t.testdir({});
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'boxsig'), `#!/bin/sh\nexec ${q(process.execPath)} ${q(CLI)} "$@"\n`, { mode: 0o755 });
  const env = isolatedEnv(dir, {
    BOXSIG_PASSPHRASE: '',
    VAGRANT_CHECKPOINT_DISABLE: '1',
    VAGRANT_DISABLE_VBOXSYMLINKCREATE: '1',
    PATH: `${bin}:${process.env.PATH}`,
  });
  // the plugin must load: nothing inherited may turn plugins off or move the project
  for (const k of ['VAGRANT_NO_PLUGINS', 'VAGRANT_DISABLE_PLUGIN_INIT', 'VAGRANT_CWD', 'VAGRANT_VAGRANTFILE', 'VAGRANT_DEFAULT_PROVIDER', 'XDG_CONFIG_HOME'])
    delete env[k];
  env.XDG_CONFIG_HOME = path.join(dir, 'xdg'); // no user config of the developer's boxsig
  const home = env.VAGRANT_HOME!;

  const version = /VERSION = "([^"]+)"/.exec(fs.readFileSync(path.join(PLUGIN, 'lib', 'vagrant-boxsig', 'version.rb'), 'utf8'))![1];
  const gem = path.join(dir, `vagrant-boxsig-${version}.gem`);
  must('gem', ['build', 'vagrant-boxsig.gemspec', '--output', gem], { cwd: PLUGIN, env });
  must('vagrant', ['plugin', 'install', '--plugin-clean-sources', gem], { cwd: dir, env, timeout: 300_000 });

  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const other = makeKey(dir, 'Mallory <m@evil.example>', [], env);
  const base = makeBox(path.join(dir, 'base.box'));
  lab = { dir, env, home, key, other, base };
});

t.test('vagrant-boxsig with the real vagrant', async (t) => {
  if (!requireTool(t, 'vagrant', 'vagrant') || !requireTool(t, 'gem', 'ruby')) return;
  const L = lab!;

  t.test('the plugin is installed', async (t) => {
    const r = vagrant(L, ['plugin', 'list'], L.dir);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /vagrant-boxsig \(\d+\.\d+\.\d+/);
  });

  t.test('a good signed box is added (no Vagrantfile: trust on first use)', async (t) => {
    const box = signed(L, path.join(L.dir, 'ok.box'), 'acme/ok', '1.0', [L.key]);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/ok', '--provider', 'virtualbox', box], emptyDir(L, 'ok'));
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /boxsig: verified acme\/ok 0 \(virtualbox\)/);
    t.match(r.out, /FIRST USE of acme\/ok/, 'says loudly that it trusts on first use');
    t.match(r.out, new RegExp(L.key.fingerprint));
    t.match(r.out, /the signed manifest says version 1\.0/);
    t.match(boxList(L), /acme\/ok\s+\(virtualbox, 0\)/);
    t.ok(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-ok', '0', 'virtualbox', '.boxsig', 'manifest.json')), 'the installed box keeps .boxsig/');
    const trust = boxsig(['trust', 'list', '--json'], { env: L.env });
    t.match(trust.stdout, L.key.fingerprint, 'the trust store recorded the signer (--record)');
  });

  t.test('a tampered box is refused with TAMPERED and removed', async (t) => {
    const good = signed(L, path.join(L.dir, 'tampered-src.box'), 'acme/tampered', '1.0', [L.key]);
    const x = path.join(L.dir, 'tampered.d');
    fs.mkdirSync(x);
    must('tar', ['xzf', good, '-C', x]);
    const disk = path.join(x, 'box-disk1.vmdk');
    const bytes = fs.readFileSync(disk);
    bytes[1000] ^= 0xff; // same size, different hash
    fs.writeFileSync(disk, bytes);
    const box = path.join(L.dir, 'tampered.box');
    must('tar', ['czf', box, '-C', x, '.boxsig', 'Vagrantfile', 'box-disk1.vmdk', 'metadata.json']);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/tampered', '--provider', 'virtualbox', box], emptyDir(L, 'tampered'));
    t.equal(r.code, 1, 'vagrant box add fails with exit 1 (refused)', { output: r.out });
    t.match(r.out, /boxsig refused the box acme\/tampered 0 \(virtualbox\): TAMPERED: .*box-disk1\.vmdk/);
    t.match(r.out, /removed again/);
    t.notMatch(boxList(L), /acme\/tampered/);
    t.same(leftovers(L, 'acme/tampered'), [], 'nothing left under VAGRANT_HOME/boxes');
  });

  t.test('a refused --force add puts back the box it was meant to replace', async (t) => {
    const before = fs.readFileSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-ok', '0', 'virtualbox', '.boxsig', 'manifest.json'));
    const r = vagrant(L, ['box', 'add', '--force', '--name', 'acme/ok', '--provider', 'virtualbox', path.join(L.dir, 'tampered.box')], emptyDir(L, 'force'));
    t.equal(r.code, 1, 'exit 1', { output: r.out });
    t.match(r.out, /boxsig refused the box acme\/ok 0 \(virtualbox\): (TAMPERED|WRONG_BOX)/);
    t.match(r.out, /has been put back/);
    t.match(boxList(L), /acme\/ok\s+\(virtualbox, 0\)/);
    const dir = path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-ok', '0', 'virtualbox');
    t.same(fs.readFileSync(path.join(dir, '.boxsig', 'manifest.json')), before, 'the old box, not the refused one');
    const v = boxsig(['verify', '--dir', dir, '--name', 'acme/ok', '--provider', 'virtualbox', '--json'], { env: L.env });
    t.equal(v.code, 0, 'the restored box still verifies', { output: v.stdout + v.stderr });
    t.same(
      fs.readdirSync(path.join(L.home, 'tmp')).filter((n) => n.startsWith('boxsig-force-')),
      [],
      'the hard-linked backup is gone',
    );
  });

  t.test('an unsigned box is refused with UNSIGNED (signatures required by default)', async (t) => {
    const r = vagrant(L, ['box', 'add', '--name', 'acme/unsigned', '--provider', 'virtualbox', L.base], emptyDir(L, 'unsigned'));
    t.not(r.code, 0);
    t.match(r.out, /boxsig refused the box acme\/unsigned 0 \(virtualbox\): UNSIGNED/);
    t.match(r.out, /"signatures" => "optional"/, 'says how to allow an unsigned box');
    t.notMatch(boxList(L), /acme\/unsigned/);
    t.same(leftovers(L, 'acme/unsigned'), []);
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
      t.not(r.code, 0);
      t.match(r.out, /boxsig refused the box acme\/pinned 0 \(virtualbox\): UNTRUSTED_KEY/);
      t.match(r.out, /Vagrantfile \(config\.boxsig\)/, 'names the Vagrantfile as the source of the pin');
      t.notMatch(boxList(L), /acme\/pinned/);
      t.same(leftovers(L, 'acme/pinned'), []);
      // the same box from a directory without that Vagrantfile is a first use (TOFU)
      const trust = boxsig(['trust', 'list', '--json'], { env: L.env });
      t.notMatch(trust.stdout, L.other.fingerprint, 'a refused add records no trust');
    });

    t.test('a box signed by the pinned key is added', async (t) => {
      const box = signed(L, path.join(L.dir, 'pinned.box'), 'acme/pinned', '1.0', [L.key]);
      const r = vagrant(L, ['box', 'add', '--name', 'acme/pinned', '--provider', 'virtualbox', box], dir);
      t.equal(r.code, 0, 'exit 0', { output: r.out });
      t.match(r.out, /boxsig: verified acme\/pinned 0 \(virtualbox\).*pinned/);
      t.match(boxList(L), /acme\/pinned\s+\(virtualbox, 0\)/);
    });

    t.test('signatures "optional" for a glob lets an unsigned box in, with a warning', async (t) => {
      const r = vagrant(L, ['box', 'add', '--name', 'legacy/old', '--provider', 'virtualbox', L.base], dir);
      t.equal(r.code, 0, 'exit 0', { output: r.out });
      t.match(r.out, /legacy\/old 0 \(virtualbox\) is NOT signed/);
      t.match(boxList(L), /legacy\/old\s+\(virtualbox, 0\)/);
    });
  });

  t.test('a missing boxsig command fails the add and removes the box', async (t) => {
    const dir = project(L, 'missing', 'Vagrant.configure("2") do |config|\n  config.boxsig.binary = "/nonexistent/bin/boxsig"\nend\n');
    const box = signed(L, path.join(L.dir, 'missing.box'), 'acme/missing', '1.0', [L.key]);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/missing', '--provider', 'virtualbox', box], dir);
    t.equal(r.code, 3, 'exit 3', { output: r.out });
    t.match(r.out, /needs the `boxsig` command, which was not found at \/nonexistent\/bin\/boxsig/);
    t.match(r.out, /config\.boxsig\.enabled = false/);
    t.same(leftovers(L, 'acme/missing'), []);

    // and with nothing called boxsig on the PATH (the shim's directory is first on it)
    const env = { ...L.env, PATH: (L.env.PATH ?? '').split(':').slice(1).join(':') };
    if (sh('sh', ['-c', 'command -v boxsig'], { env }).code === 0) {
      t.comment('a boxsig is installed on this machine: not testing the PATH case');
      return;
    }
    const r2 = sh('vagrant', ['box', 'add', '--name', 'acme/missing', '--provider', 'virtualbox', box], { env, cwd: emptyDir(L, 'missing') });
    t.equal(r2.code, 3, 'exit 3', { output: r2.stdout + r2.stderr });
    t.match(`${r2.stdout}${r2.stderr}`, /needs the `boxsig` command, which was not found on the PATH/);
    t.same(leftovers(L, 'acme/missing'), []);
  });

  t.test('config.boxsig.enabled = false adds without verification, with a warning', async (t) => {
    const dir = project(L, 'disabled', 'Vagrant.configure("2") do |config|\n  config.boxsig.enabled = false\nend\n');
    const r = vagrant(L, ['box', 'add', '--name', 'acme/optout', '--provider', 'virtualbox', L.base], dir);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /verification of acme\/optout 0 \(virtualbox\) is turned off/);
    t.match(boxList(L), /acme\/optout/);
  });

  t.test('an invalid config.boxsig fails the add with exit 2', async (t) => {
    const dir = project(L, 'invalid', 'Vagrant.configure("2") do |config|\n  config.boxsig.boxes = { "acme/*" => { "threshold" => "many" } }\nend\n');
    const box = signed(L, path.join(L.dir, 'invalid.box'), 'acme/invalid', '1.0', [L.key]);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/invalid', '--provider', 'virtualbox', box], dir);
    t.equal(r.code, 2, 'exit 2', { output: r.out });
    t.match(r.out, /boxsig could not verify the box acme\/invalid 0 \(virtualbox\) \(exit 2\): CONFIG: .*threshold/);
    t.same(leftovers(L, 'acme/invalid'), []);
    const dir2 = project(L, 'invalid-shape', 'Vagrant.configure("2") do |config|\n  config.boxsig.orgs = "acme"\nend\n');
    const r2 = vagrant(L, ['box', 'add', '--name', 'acme/invalid', '--provider', 'virtualbox', box], dir2);
    t.equal(r2.code, 2, 'exit 2', { output: r2.out });
    t.match(r2.out, /config\.boxsig\.orgs must be a Hash/);
    t.same(leftovers(L, 'acme/invalid'), []);
  });

  t.test('catalog add and vagrant box update go through the hook', async (t) => {
    const v1 = signed(L, path.join(L.dir, 'cat-1.box'), 'acme/cat', '1.0', [L.key]);
    const cat = path.join(L.dir, 'catalog.json');
    catalog(cat, 'acme/cat', [{ version: '1.0', box: v1 }]);
    const cwd = emptyDir(L, 'catalog');
    const r = vagrant(L, ['box', 'add', cat], cwd);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /boxsig: verified acme\/cat 1\.0 \(virtualbox\)/);
    t.match(boxList(L), /acme\/cat\s+\(virtualbox, 1\.0\)/);

    // 1.1 is signed by another key: the update is refused, 1.0 stays
    const v11 = signed(L, path.join(L.dir, 'cat-1.1.box'), 'acme/cat', '1.1', [L.other]);
    catalog(cat, 'acme/cat', [
      { version: '1.0', box: v1 },
      { version: '1.1', box: v11 },
    ]);
    const u = vagrant(L, ['box', 'update', '--box', 'acme/cat'], cwd);
    t.not(u.code, 0);
    t.match(u.out, /boxsig refused the box acme\/cat 1\.1 \(virtualbox\): KEY_CHANGED/);
    t.match(u.out, new RegExp(L.other.fingerprint));
    const list = boxList(L);
    t.match(list, /acme\/cat\s+\(virtualbox, 1\.0\)/, 'the old version stays');
    t.notMatch(list, /acme\/cat\s+\(virtualbox, 1\.1\)/);
    t.notOk(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', '1.1')), 'no 1.1 directory is left');
    t.ok(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', 'metadata_url')), "Vagrant's metadata_url of 1.0 stays");

    // a catalog entry whose box says another version is WRONG_BOX
    const v12 = signed(L, path.join(L.dir, 'cat-1.2.box'), 'acme/cat', '9.9', [L.key]);
    catalog(cat, 'acme/cat', [
      { version: '1.0', box: v1 },
      { version: '1.2', box: v12 },
    ]);
    const w = vagrant(L, ['box', 'update', '--box', 'acme/cat'], cwd);
    t.not(w.code, 0);
    t.match(w.out, /boxsig refused the box acme\/cat 1\.2 \(virtualbox\): WRONG_BOX/);
    t.notOk(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', '1.2')));

    // a good 1.3 updates
    const v13 = signed(L, path.join(L.dir, 'cat-1.3.box'), 'acme/cat', '1.3', [L.key]);
    catalog(cat, 'acme/cat', [
      { version: '1.0', box: v1 },
      { version: '1.3', box: v13 },
    ]);
    const g = vagrant(L, ['box', 'update', '--box', 'acme/cat'], cwd);
    t.equal(g.code, 0, 'exit 0', { output: g.out });
    t.match(g.out, /boxsig: verified acme\/cat 1\.3/);
    t.match(boxList(L), /acme\/cat\s+\(virtualbox, 1\.3\)/);
  });

  t.test('a catalog served over HTTP (application/json) goes through the hook', async (t) => {
    const good = signed(L, path.join(L.dir, 'web-1.box'), 'acme/web', '1.0', [L.key]);
    const evil = signed(L, path.join(L.dir, 'web-2.box'), 'acme/web', '2.0', [L.other]);
    const routes: Record<string, Route> = {
      '/web-1.box': { file: good },
      '/web-2.box': { file: evil },
    };
    const srv = await serve(routes);
    t.teardown(() => srv.close());
    const entry = (version: string, file: string) => ({
      version,
      providers: [{ name: 'virtualbox', url: `${srv.url}/${path.basename(file)}`, checksum: sha256(file), checksum_type: 'sha256' }],
    });
    routes['/acme/web'] = { body: JSON.stringify({ name: 'acme/web', versions: [entry('1.0', good)] }), contentType: 'application/json' };
    const cwd = emptyDir(L, 'http');
    const r = await vagrantAsync(L, ['box', 'add', `${srv.url}/acme/web`], cwd);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /boxsig: verified acme\/web 1\.0 \(virtualbox\)/);
    t.match(boxList(L), /acme\/web\s+\(virtualbox, 1\.0\)/);

    routes['/acme/web'] = {
      body: JSON.stringify({ name: 'acme/web', versions: [entry('1.0', good), entry('2.0', evil)] }),
      contentType: 'application/json',
    };
    const u = await vagrantAsync(L, ['box', 'update', '--box', 'acme/web'], cwd);
    t.equal(u.code, 1, 'exit 1', { output: u.out });
    t.match(u.out, /boxsig refused the box acme\/web 2\.0 \(virtualbox\): KEY_CHANGED/);
    t.notOk(fs.existsSync(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-web', '2.0')));
    t.match(boxList(L), /acme\/web\s+\(virtualbox, 1\.0\)/);
  });

  t.test("vagrant up's automatic box add goes through the hook (machine config)", async (t) => {
    // No hypervisor here: a stub provider, defined in the Vagrantfile, whose :up
    // action is only Vagrant's HandleBox (the middleware that adds a missing box).
    const stub = [
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
    const stubBase = makeBox(path.join(L.dir, 'stub-base.box'), { provider: 'boxsigstub' });
    const upBox = signed(L, path.join(L.dir, 'up.box'), 'acme/up', '3.0', [L.key], 'boxsigstub', stubBase);
    const cat = catalog(path.join(L.dir, 'up-catalog.json'), 'acme/up', [{ version: '3.0', box: upBox, provider: 'boxsigstub' }]);
    const vf = (pin: string) =>
      [
        stub,
        'Vagrant.configure("2") do |config|',
        '  config.vm.box = "acme/up"',
        `  config.vm.box_url = "file://${cat}"`,
        `  config.boxsig.boxes = { "acme/up" => { "pin" => ["${pin}"] } }`,
        'end',
        '',
      ].join('\n');

    const bad = project(L, 'up-bad', vf(L.other.fingerprint));
    const r = vagrant(L, ['up', '--provider', 'boxsigstub'], bad);
    t.not(r.code, 0);
    t.match(r.out, /boxsig refused the box acme\/up 3\.0 \(boxsigstub\): UNTRUSTED_KEY/);
    t.notMatch(boxList(L), /acme\/up/);
    t.same(leftovers(L, 'acme/up'), [], 'no box directory and no metadata_url left');

    const good = project(L, 'up-good', vf(L.key.fingerprint));
    const g = vagrant(L, ['up', '--provider', 'boxsigstub'], good);
    t.equal(g.code, 0, 'exit 0', { output: g.out });
    t.match(g.out, /boxsig: verified acme\/up 3\.0 \(boxsigstub\)/);
    t.match(boxList(L), /acme\/up\s+\(boxsigstub, 3\.0\)/);
  });

  t.test('repackage: vagrant box repackage drops .boxsig/, vagrant boxsig repackage re-signs', async (t) => {
    const cwd = emptyDir(L, 'repackage');
    const r = vagrant(L, ['box', 'repackage', 'acme/ok', 'virtualbox', '0'], cwd);
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    const names = must('tar', ['tzf', path.join(cwd, 'package.box')])
      .split('\n')
      .filter(Boolean);
    t.ok(
      names.some((n) => /metadata\.json$/.test(n)),
      'the repackaged box has metadata.json',
    );
    t.notOk(
      names.some((n) => n.includes('.boxsig')),
      'no .boxsig/ in the output of vagrant box repackage',
    );

    // re-signed by the plugin's command, under the version of the old manifest (the box was added as 0)
    const out = path.join(cwd, 're-signed.box');
    const s = vagrant(L, ['boxsig', 'repackage', 'acme/ok', 'virtualbox', '0', '--key', L.other.secret, '--claim', 'builder=repack', '-o', out], cwd);
    t.equal(s.code, 0, 'exit 0', { output: s.out });
    t.match(s.out, /signing it as version 1\.0/);
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

    // an explicit version, signed in one boxsig repackage call
    const out2 = path.join(cwd, 're-signed-2.box');
    const s2 = vagrant(L, ['boxsig', 'repackage', 'acme/pinned', 'virtualbox', '0', '--key', L.key.secret, '--sign-version', '0', '-o', out2], cwd);
    t.equal(s2.code, 0, 'exit 0', { output: s2.out });
    const v2 = boxsig(['verify', out2, '--name', 'acme/pinned', '--version', '0', '--pin', L.key.fingerprint, '--json'], { env: L.env });
    t.equal(v2.code, 0, 'boxsig verify accepts it', { output: v2.stdout + v2.stderr });

    const missing = vagrant(L, ['boxsig', 'repackage', 'acme/nope', 'virtualbox', '1', '--key', L.key.secret], cwd);
    t.not(missing.code, 0);
    t.match(missing.out, /could not be found/);
  });

  t.test('vagrant boxsig verify re-verifies installed boxes', async (t) => {
    const r = vagrant(L, ['boxsig', 'verify', 'acme/cat', '--json'], emptyDir(L, 'reverify'));
    t.equal(r.code, 0, 'exit 0', { output: r.out });
    t.match(r.out, /"ok": ?true/);
    // break an installed box behind Vagrant's back
    const disk = path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-cat', '1.3', 'virtualbox', 'box-disk1.vmdk');
    fs.appendFileSync(disk, 'x');
    const b = vagrant(L, ['boxsig', 'verify', 'acme/cat'], emptyDir(L, 'reverify'));
    t.equal(b.code, 1, 'exit 1', { output: b.out });
    t.match(b.out, /TAMPERED/);
  });
});
