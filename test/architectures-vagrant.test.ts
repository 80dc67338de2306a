/**
 * Issue 19: the layouts boxsig installs, against what Vagrant reads.
 *
 * - Vagrant 2.4 cannot be installed here: its directory walk
 *   (`BoxCollection#all`) and lookup (`BoxCollection#find`) are
 *   reimplemented line for line in test/vagrant24.ts; with
 *   BOXSIG_VAGRANT24_BOX_COLLECTION naming Vagrant 2.4's own
 *   lib/vagrant/box_collection.rb, that real file is loaded too (with stubs,
 *   test/vagrant24/box_collection_harness.rb) and must agree.
 * - The real Vagrant 2.3.4 lists what boxsig installs in the legacy layout
 *   (and, which is why the layout is decided, not what is in the 2.4 one).
 * - The Vagrant plugin's own request builder (plugins/vagrant, AddRequest)
 *   passes `--architecture`; `boxsig add` installs where Vagrant 2.4 then
 *   looks for that architecture.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, isolatedEnv, makeBox, makeKey, must, pseudoRandom, requireTool, ROOT, sh, sign, type KeyFiles } from './helpers.js';
import { realVagrant24, vagrant24All, vagrant24Find, type ListedBox } from './vagrant24.js';
import { hostArchitecture } from '../src/vagrant/architecture.js';

const HOST = hostArchitecture({});
const OTHER = HOST === 'arm64' ? 'amd64' : 'arm64';
const WEB = 'acme-VAGRANTSLASH-web';

interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  key: KeyFiles;
  inputs: string;
  /** PATH with a `vagrant` that says 2.4.1 (what a Vagrant 2.4 user has). */
  path24: string;
  box: (arch: string | null, version: string) => string;
  catalog: (file: string, versions: Array<{ version: string; providers: Array<Record<string, unknown> & { box: string }> }>) => string;
}

let seed = 500;
function lab(t: any): Lab {
  const dir = t.testdir({ inputs: {}, bin24: {} });
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '', VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_PLUGINS: '1' });
  delete env.VAGRANT_HOST_ARCHITECTURE;
  delete env.BOXSIG_VAGRANT_LAYOUT;
  const inputs = path.join(dir, 'inputs');
  const key = makeKey(inputs, 'Acme Builds <builds@acme.example>', [], env);
  fs.writeFileSync(path.join(dir, 'bin24', 'vagrant'), '#!/bin/sh\necho "Vagrant 2.4.1"\n', { mode: 0o755 });
  const box: Lab['box'] = (arch, version) => {
    const tag = `web-${version}-${arch ?? 'none'}-${++seed}`;
    const raw = makeBox(path.join(inputs, `${tag}.raw.box`), {
      metadata: arch ? { architecture: arch } : {},
      files: { Vagrantfile: 'Vagrant.configure("2") do |config| end\n', 'box-disk1.vmdk': pseudoRandom(20_000, seed) },
    });
    const out = path.join(inputs, `${tag}.box`);
    const r = sign(raw, [key], ['--name', 'acme/web', '--version', version, '-o', out], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const catalog: Lab['catalog'] = (file, versions) => {
    const abs = path.join(inputs, file);
    fs.writeFileSync(
      abs,
      JSON.stringify({
        name: 'acme/web',
        versions: versions.map((v) => ({ version: v.version, providers: v.providers.map(({ box: b, ...p }) => ({ name: 'virtualbox', url: b, ...p })) })),
      }),
    );
    return abs;
  };
  return { dir, env, key, inputs, path24: `${path.join(dir, 'bin24')}:${process.env.PATH}`, box, catalog };
}

function add(l: Lab, args: string[], extra: NodeJS.ProcessEnv = {}): any {
  const r = boxsig(['add', ...args, '--json'], { env: { ...l.env, ...extra } });
  if (r.code !== 0) throw new Error(`add ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  return r.json;
}

/** What boxsig lists (verify --installed), as Vagrant's `all` tuples. */
function boxsigList(l: Lab): ListedBox[] {
  const r = boxsig(['verify', '--installed', '--json'], { env: l.env });
  return r.json.boxes.map((b: any) => [b.name, b.version, b.provider, b.architecture ?? null] as ListedBox);
}

function sorted(list: ListedBox[]): ListedBox[] {
  return [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Catalogs and boxes that exercise every way a box gets its directory. */
function populate(l: Lab, extra: NodeJS.ProcessEnv, layoutArgs: string[], both = true): Record<string, any> {
  const two = l.catalog('two.json', [
    {
      version: '1.0.0',
      providers: [
        { architecture: HOST, default_architecture: true, box: l.box(HOST, '1.0.0') },
        { architecture: OTHER, default_architecture: false, box: l.box(OTHER, '1.0.0') },
      ],
    },
  ]);
  const unknown = l.catalog('unknown.json', [
    { version: '2.0.0', providers: [{ architecture: 'unknown', default_architecture: true, box: l.box(null, '2.0.0') }] },
  ]);
  const legacy = l.catalog('legacy.json', [{ version: '3.0.0', providers: [{ box: l.box(null, '3.0.0') }] }]);
  return {
    auto: add(l, [two, ...layoutArgs], extra),
    // the legacy layout holds one box per name, version and provider
    ...(both ? { other: add(l, [two, '--architecture', OTHER, ...layoutArgs], extra) } : {}),
    unknown: add(l, [unknown, ...layoutArgs], extra),
    legacy: add(l, [legacy, ...layoutArgs], extra),
    direct: add(l, [l.box(HOST, '4.0.0'), ...layoutArgs], extra),
  };
}

t.test("Vagrant 2.4's BoxCollection lists and finds what boxsig installs for it", async (t) => {
  const l = lab(t);
  // detected as a Vagrant 2.4 user's would be: the vagrant on the PATH says 2.4.1
  const added = populate(l, { PATH: l.path24 }, []);
  for (const [what, r] of Object.entries(added))
    t.match(r.layout?.reason ?? 'none needed', /vagrant --version says 2\.4\.1|none needed/, `${what}: layout decided by the vagrant on the PATH`);
  const boxes = path.join(l.env.VAGRANT_HOME!, 'boxes');
  t.equal(added.auto.directory, path.join(boxes, WEB, '1.0.0', HOST, 'virtualbox'));
  t.equal(added.other.directory, path.join(boxes, WEB, '1.0.0', OTHER, 'virtualbox'));
  t.equal(added.unknown.directory, path.join(boxes, WEB, '2.0.0', 'virtualbox'), 'unknown marked default: no architecture directory (box_add.rb)');
  t.equal(added.legacy.directory, path.join(boxes, WEB, '3.0.0', 'virtualbox'), 'a catalog without architecture: none either');
  t.equal(added.direct.directory, path.join(boxes, WEB, '4.0.0', HOST, 'virtualbox'), "a direct add: the host's, as Vagrant's :auto");

  const listed = vagrant24All(boxes, HOST);
  t.same(
    sorted(listed),
    sorted([
      ['acme/web', '1.0.0', 'virtualbox', HOST],
      ['acme/web', '1.0.0', 'virtualbox', OTHER],
      ['acme/web', '2.0.0', 'virtualbox', null],
      ['acme/web', '3.0.0', 'virtualbox', null],
      ['acme/web', '4.0.0', 'virtualbox', HOST],
    ]),
    'Vagrant 2.4 lists every box',
  );
  t.same(sorted(boxsigList(l)), sorted(listed), 'boxsig lists exactly what Vagrant 2.4 lists');

  // what `vagrant up` (box_architecture :auto, or set), `vagrant box repackage` and the plugin look up
  const queries = [
    { name: 'acme/web', providers: ['virtualbox'], version: '1.0.0', architecture: 'auto' },
    { name: 'acme/web', providers: ['virtualbox'], version: '= 1.0.0', architecture: OTHER },
    { name: 'acme/web', providers: ['virtualbox'], version: '2.0.0', architecture: 'auto' },
    { name: 'acme/web', providers: ['virtualbox'], version: '>= 0', architecture: 'auto' },
    { name: 'acme/web', providers: ['virtualbox'], version: '3.0.0', architecture: null },
  ];
  const found = queries.map((q) => vagrant24Find(boxes, HOST, q.name, q.providers, q.version, q.architecture));
  t.equal(found[0]?.directory, added.auto.directory, ':auto finds the host box');
  t.equal(found[1]?.directory, added.other.directory, 'an explicit architecture finds its box');
  t.equal(found[2]?.directory, added.unknown.directory, ':auto finds the unknown one in the legacy layout');
  t.equal(found[3]?.directory, added.direct.directory, 'the highest version for :auto');
  t.equal(found[4]?.directory, added.legacy.directory, 'nil finds the legacy layout');

  const real = realVagrant24(boxes, HOST, queries);
  if (!real) t.comment('SKIP: set BOXSIG_VAGRANT24_BOX_COLLECTION to Vagrant 2.4 lib/vagrant/box_collection.rb to compare with the real file');
  else {
    t.same(real.all, listed, "the real box_collection.rb's all agrees");
    t.same(
      real.find.map((f) => f?.directory ?? null),
      found.map((f) => f?.directory ?? null),
      "the real box_collection.rb's find agrees",
    );
  }
});

t.test('the legacy layout: Vagrant 2.4 finds it under :auto, and the real Vagrant 2.3.4 lists it (not the 2.4 layout)', async (t) => {
  const l = lab(t);
  const added = populate(l, {}, ['--layout', '2.3'], false);
  const boxes = path.join(l.env.VAGRANT_HOME!, 'boxes');
  for (const [what, r] of Object.entries(added)) t.notOk(r.directory.includes(`/${HOST}/`) || r.directory.includes(`/${OTHER}/`), `${what}: legacy`);
  t.equal(added.auto.directory, path.join(boxes, WEB, '1.0.0', 'virtualbox'));
  t.equal(vagrant24Find(boxes, HOST, 'acme/web', ['virtualbox'], '4.0.0')?.directory, added.direct.directory, 'Vagrant 2.4 still finds it under :auto');
  t.same(sorted(boxsigList(l)), sorted(vagrant24All(boxes, HOST)), 'boxsig lists what Vagrant 2.4 lists');

  if (!requireTool(t, 'vagrant', 'vagrant')) return;
  const version = must('vagrant', ['--version'], { env: l.env }).trim();
  t.comment(`real ${version}`);
  const list = sh('vagrant', ['box', 'list'], { env: l.env }).stdout;
  for (const v of ['1.0.0', '2.0.0', '3.0.0', '4.0.0'])
    t.match(list, new RegExp(`acme/web\\s+\\(virtualbox, ${v.replaceAll('.', '\\.')}\\)`), `${version} lists ${v}`);
  // the 2.4 layout is invisible to Vagrant 2.3: the reason the layout follows the installed vagrant
  const l24 = lab(t);
  add(l24, [l24.box(HOST, '1.0.0'), '--layout', '2.4']);
  t.notMatch(sh('vagrant', ['box', 'list'], { env: l24.env }).stdout, /acme\/web/, `${version} does not list a box in an architecture directory`);
  // and without --layout, the vagrant on the PATH decides
  const auto = lab(t);
  const r = add(auto, [auto.box(HOST, '1.0.0')]);
  t.match(r.layout.reason, /vagrant --version says 2\.3/);
  t.match(sh('vagrant', ['box', 'list'], { env: auto.env }).stdout, /acme\/web\s+\(virtualbox, 1\.0\.0\)/, `${version} lists what boxsig decided by itself`);
});

t.test("the plugin's own boxsig add command line with --architecture, as Vagrant 2.4 builds it", async (t) => {
  if (!requireTool(t, 'ruby', 'ruby')) return;
  const l = lab(t);
  const cat = l.catalog('two.json', [
    {
      version: '1.0.0',
      providers: [
        { architecture: HOST, default_architecture: true, box: l.box(HOST, '1.0.0') },
        { architecture: OTHER, default_architecture: false, box: l.box(OTHER, '1.0.0') },
      ],
    },
  ]);
  const boxes = path.join(l.env.VAGRANT_HOME!, 'boxes');
  // AddRequest.build is the plugin's translation of Vagrant's action environment (box_architecture included)
  const argsFor = (architecture: string) => {
    const opts = { urls: [cat], name: 'acme/web', architecture, vagrant_home: l.env.VAGRANT_HOME, cwd: l.dir };
    const out = must(
      'ruby',
      [
        '-I',
        path.join(ROOT, 'plugins', 'vagrant', 'lib'),
        '-rjson',
        '-e',
        'require "vagrant-boxsig/add_request"; r = VagrantPlugins::Boxsig::AddRequest.build(JSON.parse($stdin.read, symbolize_names: true)); puts JSON.generate(r.args_for(r.sources.first))',
      ],
      { input: JSON.stringify(opts) },
    );
    return JSON.parse(out) as string[];
  };
  const explicit = argsFor(OTHER);
  t.same(explicit.slice(explicit.indexOf('--architecture')), ['--architecture', OTHER], 'the plugin passes --architecture');
  let r = boxsig(explicit, { env: { ...l.env, PATH: l.path24 } });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.architecture, OTHER);
  t.equal(
    vagrant24Find(boxes, HOST, 'acme/web', ['virtualbox'], '1.0.0', OTHER)?.directory,
    r.json.directory,
    'where Vagrant 2.4 looks for box_architecture ' + OTHER,
  );
  t.equal(JSON.parse(fs.readFileSync(path.join(r.json.directory, '.boxsig', 'manifest.json'), 'utf8')).box.architecture, OTHER);

  const auto = argsFor('auto');
  t.notOk(auto.includes('--architecture'), ':auto is not passed: boxsig chooses the host, as Vagrant does');
  r = boxsig(auto, { env: { ...l.env, PATH: l.path24 } });
  t.equal(r.code, 0, r.stderr);
  t.equal(vagrant24Find(boxes, HOST, 'acme/web', ['virtualbox'], '1.0.0')?.directory, r.json.directory, 'where Vagrant 2.4 looks under :auto');
});
