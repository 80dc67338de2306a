/**
 * Issue 19: boxes with architectures, through the public CLI with real keys
 * and real archives.
 *
 * 1. Selection: a catalog offering virtualbox for two architectures installs
 *    the host's (as Vagrant 2.4's `auto`), `--architecture` the other; an
 *    `unknown` entry marked default is taken when none is for the host; no
 *    entry for the host is refused with what is offered.
 * 2. Binding: a box whose signed architecture (or metadata.json's) differs
 *    from the one it is installed for is WRONG_BOX, before anything is
 *    installed or recorded.
 * 3. Layout: Vagrant 2.4's `boxes/NAME/VERSION/ARCH/PROVIDER/` or the legacy
 *    one, decided by --layout, BOXSIG_VAGRANT_LAYOUT, `vagrant --version`,
 *    the home; verify --installed and repackage read both; a provider and an
 *    architecture never share a directory.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, isolatedEnv, makeBox, makeKey, pseudoRandom, sign, type KeyFiles } from './helpers.js';
import { forgeSignedBox } from './forge.js';
import { hostArchitecture } from '../src/vagrant/architecture.js';

const HOST = hostArchitecture({});
const OTHER = HOST === 'arm64' ? 'amd64' : 'arm64';
const WEB = 'acme-VAGRANTSLASH-web';

interface Setup {
  dir: string;
  env: NodeJS.ProcessEnv;
  project: string;
  key: KeyFiles;
  home: string;
  boxes: string;
  /** A box signed as acme/web VERSION for ARCH (metadata.json states it; null: states none). */
  box: (arch: string | null, version?: string, opts?: { provider?: string; name?: string }) => string;
  /** A catalog file for acme/web. */
  catalog: (file: string, versions: Array<{ version: string; providers: Array<Record<string, unknown> & { box: string }> }>, name?: string) => string;
  run: (args: string[], extraEnv?: NodeJS.ProcessEnv) => ReturnType<typeof boxsig>;
}

let seed = 100;
function setup(t: any): Setup {
  const dir = t.testdir({ project: {}, inputs: {}, bin24: {}, bin23: {}, nobin: {} });
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  delete env.VAGRANT_HOST_ARCHITECTURE;
  delete env.BOXSIG_VAGRANT_LAYOUT;
  const project = path.join(dir, 'project');
  const inputs = path.join(dir, 'inputs');
  const key = makeKey(inputs, 'Acme Builds <builds@acme.example>', [], env);
  fs.writeFileSync(path.join(project, 'boxsig.json'), JSON.stringify({ boxes: { 'acme/*': { pin: [key.fingerprint] } } }));
  for (const [bin, version] of [
    ['bin24', '2.4.1'],
    ['bin23', '2.3.4'],
  ]) {
    fs.writeFileSync(path.join(dir, bin, 'vagrant'), `#!/bin/sh\necho "Vagrant ${version}"\n`, { mode: 0o755 });
  }
  const box: Setup['box'] = (arch, version = '1.0.0', opts = {}) => {
    const name = opts.name ?? 'acme/web';
    const tag = `${name.replace(/\W/g, '_')}-${version}-${opts.provider ?? 'virtualbox'}-${arch ?? 'none'}-${++seed}`;
    const raw = makeBox(path.join(inputs, `${tag}.raw.box`), {
      provider: opts.provider,
      metadata: arch ? { architecture: arch } : {},
      files: { Vagrantfile: 'Vagrant.configure("2") do |config| end\n', 'box-disk1.vmdk': pseudoRandom(30_000, seed) },
    });
    const out = path.join(inputs, `${tag}.box`);
    const r = sign(raw, [key], ['--name', name, '--version', version, '-o', out], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const catalog: Setup['catalog'] = (file, versions, name = 'acme/web') => {
    const abs = path.join(inputs, file);
    const json = {
      name,
      versions: versions.map((v) => ({ version: v.version, providers: v.providers.map(({ box: b, ...p }) => ({ name: 'virtualbox', url: b, ...p })) })),
    };
    fs.writeFileSync(abs, JSON.stringify(json));
    return abs;
  };
  const run: Setup['run'] = (args, extraEnv = {}) => boxsig([...args, '--json'], { env: { ...env, ...extraEnv }, cwd: project });
  return { dir, env, project, key, home: env.VAGRANT_HOME!, boxes: path.join(env.VAGRANT_HOME!, 'boxes'), box, catalog, run };
}

/** Every path under `dir`, directories with a trailing slash (a snapshot to compare). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const n of fs.readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(abs, n));
      out.push(st.isDirectory() ? `${r}/` : r);
      if (st.isDirectory()) walk(path.join(abs, n), r);
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out;
}

function installedArchitecture(dir: string): string | undefined {
  return JSON.parse(fs.readFileSync(path.join(dir, '.boxsig', 'manifest.json'), 'utf8')).box.architecture;
}

function trustRecords(s: Setup): string[] {
  const r = boxsig(['trust', 'list', '--json'], { env: s.env });
  return Object.keys(r.json?.boxes ?? {});
}

t.test('selection: the host architecture, --architecture, unknown marked default, and a refusal listing what is offered', async (t) => {
  const s = setup(t);
  const hostBox = s.box(HOST);
  const otherBox = s.box(OTHER);
  const two = s.catalog('two.json', [
    {
      version: '1.0.0',
      providers: [
        { architecture: OTHER, default_architecture: true, box: otherBox },
        { architecture: HOST, default_architecture: false, box: hostBox },
      ],
    },
  ]);
  const layout = ['--layout', '2.4'];

  const auto = s.run(['add', two, ...layout]);
  t.equal(auto.code, 0, auto.stderr);
  t.equal(auto.json.architecture, HOST, `installed for this host (${HOST})`);
  t.equal(auto.json.directory, path.join(s.boxes, WEB, '1.0.0', HOST, 'virtualbox'), 'in the architecture directory');
  t.equal(installedArchitecture(auto.json.directory), HOST, "the host's box, not the one marked default");
  t.same(auto.json.layout, { layout: '2.4', reason: '--layout 2.4' });

  const explicit = s.run(['add', two, ...layout, '--architecture', OTHER]);
  t.equal(explicit.code, 0, explicit.stderr);
  t.equal(explicit.json.directory, path.join(s.boxes, WEB, '1.0.0', OTHER, 'virtualbox'));
  t.equal(installedArchitecture(explicit.json.directory), OTHER, '--architecture chooses the other');

  const again = s.run(['add', two, ...layout]);
  t.equal(again.code, 2, 'the same architecture again');
  t.equal(again.json.code, 'EXISTS');
  t.match(again.json.message, new RegExp(`acme/web 1\\.0\\.0 \\(virtualbox, ${HOST}\\) is already installed`));

  // VAGRANT_HOST_ARCHITECTURE is Vagrant's own override of the host's architecture
  const forced = s.run(['add', two, ...layout, '--force'], { VAGRANT_HOST_ARCHITECTURE: OTHER });
  t.equal(forced.code, 0, forced.stderr);
  t.equal(forced.json.architecture, OTHER);
  t.equal(forced.json.replaced, true);

  // only `unknown`, marked default: chosen, and installed where Vagrant 2.4 puts it (no architecture directory)
  const plain = s.box(null, '2.0.0');
  const unknown = s.catalog('unknown.json', [{ version: '2.0.0', providers: [{ architecture: 'unknown', default_architecture: true, box: plain }] }]);
  const u = s.run(['add', unknown, ...layout]);
  t.equal(u.code, 0, u.stderr);
  t.equal(u.json.directory, path.join(s.boxes, WEB, '2.0.0', 'virtualbox'), 'the legacy layout, as Vagrant 2.4 installs unknown');
  t.equal(u.json.layout, null, 'no layout needed: every Vagrant looks there');
  t.same(u.json.warnings, [], 'no warning: the catalog states no architecture either');

  // nothing for this host: refused, listing what is offered; nothing installed
  const before = tree(s.boxes);
  const onlyOther = s.catalog('other.json', [{ version: '3.0.0', providers: [{ architecture: OTHER, default_architecture: true, box: otherBox }] }]);
  const none = s.run(['add', onlyOther, ...layout]);
  t.equal(none.code, 2, 'a usage error');
  t.equal(none.json.code, 'USAGE');
  t.match(none.json.message, new RegExp(`no version matching ">= 0" offers a box for this host's architecture ${HOST}`));
  t.match(none.json.message, new RegExp(`offered: 3\\.0\\.0: virtualbox \\(${OTHER}, default\\)`), 'what is offered');
  t.same(tree(s.boxes), before, 'nothing installed');

  // a catalog without architecture fields behaves as before: the legacy layout, no vagrant needed
  const legacy = s.catalog('legacy.json', [{ version: '4.0.0', providers: [{ box: plain.replace('2.0.0', '2.0.0') }] }]);
  const l = s.run(['add', legacy, '--box-version', '4.0.0']);
  t.equal(l.code, 1, 'the box says 2.0.0');
  t.equal(l.json.code, 'WRONG_BOX', 'versions are still bound');
  const plain4 = s.box(null, '4.0.0');
  const legacy4 = s.catalog('legacy4.json', [{ version: '4.0.0', providers: [{ box: plain4 }] }]);
  const l4 = s.run(['add', legacy4], { PATH: path.join(s.dir, 'nobin') });
  t.equal(l4.code, 0, l4.stderr);
  t.equal(l4.json.directory, path.join(s.boxes, WEB, '4.0.0', 'virtualbox'));
  t.equal(l4.json.layout, null);
});

t.test('binding: a box signed for another architecture than the one installed is WRONG_BOX, before anything is installed or recorded', async (t) => {
  const s = setup(t);
  const otherBox = s.box(OTHER);
  const swapped = s.catalog('swapped.json', [{ version: '1.0.0', providers: [{ architecture: HOST, default_architecture: true, box: otherBox }] }]);
  const before = tree(s.boxes);

  for (const layout of ['2.3', '2.4']) {
    const r = s.run(['add', swapped, '--layout', layout]);
    t.equal(r.code, 1, `layout ${layout}: refused`);
    t.equal(r.json.code, 'WRONG_BOX');
    t.match(r.json.message, new RegExp(`signed architecture is ${OTHER}, expected ${HOST}`));
    t.same(tree(s.boxes), before, `layout ${layout}: nothing installed`);
    t.same(trustRecords(s), [], `layout ${layout}: nothing recorded`);
  }

  // the same box added directly: installed for the host unless --architecture says otherwise
  const direct = s.run(['add', otherBox, '--layout', '2.4']);
  t.equal(direct.code, 1);
  t.equal(direct.json.code, 'WRONG_BOX');
  const asked = s.run(['add', otherBox, '--layout', '2.4', '--architecture', OTHER]);
  t.equal(asked.code, 0, asked.stderr);
  t.equal(asked.json.directory, path.join(s.boxes, WEB, '1.0.0', OTHER, 'virtualbox'));

  // verify binds only when asked
  t.equal(s.run(['verify', otherBox]).code, 0, 'verify without --architecture');
  t.equal(s.run(['verify', otherBox, '--architecture', OTHER]).code, 0);
  const v = s.run(['verify', otherBox, '--architecture', HOST]);
  t.equal(v.code, 1);
  t.equal(v.json.code, 'WRONG_BOX');
  t.equal(s.run(['verify', otherBox, '--architecture', 'unknown']).code, 0, 'unknown binds nothing');
  t.equal(s.run(['verify', otherBox, '--architecture', '../x']).json.code, 'USAGE');
});

t.test('binding: metadata.json binds a manifest that states no architecture, and must agree with one that does', async (t) => {
  const s = setup(t);
  // an attacker's tool (boxsig's sign copies the architecture): a manifest without architecture, metadata.json for OTHER;
  // trust on first use accepts the forger's key for tofu/web, so only the architecture can refuse it
  const files = (arch: string | null) => [
    { path: 'metadata.json', data: Buffer.from(JSON.stringify({ provider: 'virtualbox', ...(arch ? { architecture: arch } : {}) })) },
    { path: 'box-disk1.vmdk', data: pseudoRandom(20_000, 7) },
  ];
  const forged = await forgeSignedBox(path.join(s.dir, 'inputs', 'forged.box'), {
    box: { name: 'tofu/web', version: '1.0.0', provider: 'virtualbox' },
    files: files(OTHER),
  });
  const cat = s.catalog('tofu.json', [{ version: '1.0.0', providers: [{ architecture: HOST, default_architecture: true, box: forged.file }] }], 'tofu/web');
  const r = s.run(['add', cat, '--layout', '2.4']);
  t.equal(r.code, 1, r.stderr);
  t.equal(r.json.code, 'WRONG_BOX');
  t.match(r.json.message, new RegExp(`metadata\\.json says architecture ${OTHER}, expected ${HOST}`));
  t.same(tree(s.boxes), [], 'nothing installed');
  t.same(trustRecords(s), [], 'no first-use record for a refused box');

  // the manifest states one, metadata.json another: WRONG_BOX
  const forged2 = await forgeSignedBox(path.join(s.dir, 'inputs', 'forged2.box'), {
    box: { name: 'tofu/two', version: '1.0.0', provider: 'virtualbox', architecture: HOST } as any,
    files: files(OTHER),
  });
  const v = s.run(['verify', forged2.file]);
  t.equal(v.code, 1);
  t.equal(v.json.code, 'WRONG_BOX');
  t.match(v.json.message, new RegExp(`metadata\\.json says architecture ${OTHER}, but the signed manifest says ${HOST}`));

  // metadata.json is not validated like the manifest: its architecture is compared, and quoted when shown
  const files3 = [
    { path: 'metadata.json', data: Buffer.from(JSON.stringify({ provider: 'virtualbox', architecture: '\u001b[2Jx'.padEnd(100, 'y') })) },
    { path: 'box-disk1.vmdk', data: pseudoRandom(20_000, 8) },
  ];
  const escape = await forgeSignedBox(path.join(s.dir, 'inputs', 'escape.box'), {
    box: { name: 'tofu/esc', version: '1.0.0', provider: 'virtualbox' },
    files: files3,
  });
  const e = boxsig(['add', escape.file, '--layout', '2.4'], { env: s.env, cwd: s.project });
  t.equal(e.code, 1);
  t.match(e.stderr, /WRONG_BOX\): this is not the box asked for: its metadata\.json says architecture "\\u001b\[2Jxy+…", expected/);
  t.notMatch(e.stderr, /\u001b/, 'no escape sequence reaches the terminal');

  // nothing states an architecture: accepted for the catalog's entry, with a warning
  const bare = await forgeSignedBox(path.join(s.dir, 'inputs', 'bare.box'), {
    box: { name: 'tofu/bare', version: '1.0.0', provider: 'virtualbox' },
    files: files(null),
  });
  const cat3 = s.catalog('bare.json', [{ version: '1.0.0', providers: [{ architecture: HOST, default_architecture: true, box: bare.file }] }], 'tofu/bare');
  const ok = s.run(['add', cat3, '--layout', '2.4']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.json.warnings.join('\n'), /states no architecture .* cannot tell it from a build for another architecture/);
});

t.test('sign --architecture: default from metadata.json, which must agree; checked before any key is used', async (t) => {
  const s = setup(t);
  const inputs = path.join(s.dir, 'inputs');
  const withArch = makeBox(path.join(inputs, 'with.box'), { metadata: { architecture: 'arm64' } });
  const without = makeBox(path.join(inputs, 'without.box'));
  const inspect = (box: string) => boxsig(['inspect', box, '--json']).json.manifest.box;

  let r = sign(withArch, [s.key], ['--name', 'acme/a', '--version', '1.0.0', '-o', path.join(inputs, 'a.box')], s.env);
  t.equal(r.code, 0, r.stderr);
  t.equal(inspect(path.join(inputs, 'a.box')).architecture, 'arm64', "metadata.json's architecture by default");
  r = sign(withArch, [s.key], ['--name', 'acme/a', '--version', '1.0.0', '--architecture', 'amd64', '-o', path.join(inputs, 'b.box')], s.env);
  t.equal(r.code, 2);
  t.match(r.json.message, /--architecture amd64 contradicts metadata\.json, which says architecture arm64/);
  t.notOk(fs.existsSync(path.join(inputs, 'b.box')), 'nothing written');
  r = sign(without, [s.key], ['--name', 'acme/a', '--version', '1.0.0', '--architecture', 'arm64', '-o', path.join(inputs, 'c.box')], s.env);
  t.equal(r.code, 0, r.stderr);
  t.equal(inspect(path.join(inputs, 'c.box')).architecture, 'arm64', '--architecture for a box whose metadata.json states none');
  t.equal(r.json.box.architecture, 'arm64');
  // re-signing keeps it (a co-signature over the same manifest)
  r = sign(path.join(inputs, 'c.box'), [makeKey(inputs, 'Second <s@acme.example>', [], s.env)], ['-o', path.join(inputs, 'd.box')], s.env);
  t.equal(r.code, 0, r.stderr);
  t.equal(inspect(path.join(inputs, 'd.box')).architecture, 'arm64');
  t.same(r.json.kept, [s.key.fingerprint], 'the old signature is kept: the manifest did not change');
  r = sign(without, [s.key], ['--name', 'acme/a', '--version', '1.0.0', '--architecture', '../x'], s.env);
  t.equal(r.code, 2);
  t.match(r.json.message, /--architecture "\.\.\/x" must be lower-case letters/);
  r = sign(without, [s.key], ['--name', 'acme/a', '--version', '1.0.0'], s.env);
  t.equal(inspect(without).architecture, undefined, 'no architecture stated, none written');
});

t.test('layout: --layout, BOXSIG_VAGRANT_LAYOUT, the vagrant on the PATH, the Vagrant home, else the legacy layout', async (t) => {
  const s = setup(t);
  const hostBox = s.box(HOST);
  const rows: Array<[string, string[], NodeJS.ProcessEnv, '2.3' | '2.4', RegExp]> = [
    ['--layout 2.4', ['--layout', '2.4'], {}, '2.4', /^--layout 2\.4$/],
    ['--layout 2.3', ['--layout', '2.3'], {}, '2.3', /^--layout 2\.3$/],
    ['the option beats the environment', ['--layout', '2.3'], { BOXSIG_VAGRANT_LAYOUT: '2.4' }, '2.3', /^--layout 2\.3$/],
    ['BOXSIG_VAGRANT_LAYOUT=2.4', [], { BOXSIG_VAGRANT_LAYOUT: '2.4' }, '2.4', /^BOXSIG_VAGRANT_LAYOUT=2\.4$/],
    ['vagrant 2.4.1 on the PATH', [], { PATH: path.join(s.dir, 'bin24') }, '2.4', /vagrant --version says 2\.4\.1/],
    ['vagrant 2.3.4 on the PATH', [], { PATH: path.join(s.dir, 'bin23') }, '2.3', /vagrant --version says 2\.3\.4/],
    ['no vagrant, an empty home', [], { PATH: path.join(s.dir, 'nobin') }, '2.3', /no vagrant command and no architecture directory/],
  ];
  for (const [what, args, env, layout, reason] of rows) {
    fs.rmSync(s.home, { recursive: true, force: true });
    const r = s.run(['add', hostBox, ...args], env);
    t.equal(r.code, 0, `${what}: ${r.stderr}`);
    t.equal(r.json.layout?.layout, layout, what);
    t.match(r.json.layout?.reason, reason, `${what}: the reason`);
    const want = layout === '2.4' ? path.join(s.boxes, WEB, '1.0.0', HOST, 'virtualbox') : path.join(s.boxes, WEB, '1.0.0', 'virtualbox');
    t.equal(r.json.directory, want, `${what}: ${want}`);
  }
  // no vagrant on the PATH, but Vagrant 2.4 has already used this home
  fs.rmSync(s.home, { recursive: true, force: true });
  t.equal(s.run(['add', s.box(OTHER, '1.0.0', { name: 'acme/prior' }), '--layout', '2.4', '--architecture', OTHER]).code, 0);
  const r = s.run(['add', hostBox], { PATH: path.join(s.dir, 'nobin') });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.layout.layout, '2.4');
  t.match(r.json.layout.reason, /already has architecture directories/);
  t.equal(r.json.directory, path.join(s.boxes, WEB, '1.0.0', HOST, 'virtualbox'));
  // bad values are refused before anything happens
  t.equal(s.run(['add', hostBox, '--layout', '2.5']).json.code, 'USAGE');
  const bad = s.run(['add', hostBox], { BOXSIG_VAGRANT_LAYOUT: 'new' });
  t.equal(bad.code, 2);
  t.equal(bad.json.code, 'CONFIG');
  t.equal(s.run(['add', hostBox], { VAGRANT_HOST_ARCHITECTURE: 'x/../y' }).json.code, 'CONFIG');
});

t.test('verify --installed and repackage read both layouts', async (t) => {
  const s = setup(t);
  const hostBox = s.box(HOST);
  const otherBox = s.box(OTHER);
  const legacyBox = s.box(null, '1.5.0');
  t.equal(s.run(['add', hostBox, '--layout', '2.4']).code, 0);
  t.equal(s.run(['add', otherBox, '--layout', '2.4', '--architecture', OTHER]).code, 0);
  t.equal(s.run(['add', legacyBox, '--layout', '2.3']).code, 0);

  const v = s.run(['verify', '--installed']);
  t.equal(v.code, 0, v.stdout);
  t.same(
    v.json.boxes.map((b: any) => [b.version, b.provider, b.architecture ?? null, b.ok]).sort(),
    [
      ['1.5.0', 'virtualbox', null, true],
      ['1.0.0', 'virtualbox', HOST, true],
      ['1.0.0', 'virtualbox', OTHER, true],
    ].sort(),
  );

  // repackage finds the box as Vagrant 2.4 does: the host's, --architecture, else the legacy layout
  const out = (n: string) => path.join(s.dir, 'inputs', n);
  const other = makeKey(path.join(s.dir, 'inputs'), 'Repack <r@acme.example>', [], s.env);
  let r = boxsig(['repackage', 'acme/web', 'virtualbox', '1.0.0', '-o', out('host.box'), '--key', other.secret, '--json'], { env: s.env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.box.architecture, HOST);
  t.equal(boxsig(['inspect', out('host.box'), '--json']).json.manifest.box.architecture, HOST, 'signed for the architecture it was installed for');
  r = boxsig(['repackage', 'acme/web', 'virtualbox', '1.0.0', '--architecture', OTHER, '-o', out('other.box'), '--key', other.secret, '--json'], {
    env: s.env,
  });
  t.equal(r.code, 0, r.stderr);
  t.equal(boxsig(['inspect', out('other.box'), '--json']).json.manifest.box.architecture, OTHER);
  r = boxsig(['repackage', 'acme/web', 'virtualbox', '1.5.0', '-o', out('legacy.box'), '--json'], { env: s.env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.box.architecture, undefined, 'the legacy layout');
  r = boxsig(['repackage', 'acme/web', 'virtualbox', '1.0.0', '--architecture', 'i386', '-o', out('none.box'), '--json'], { env: s.env });
  t.equal(r.code, 2);
  t.match(r.json.message, /not installed .*\(architecture i386\)/);

  // a box moved by hand into another architecture's directory is refused by both
  const hostDir = path.join(s.boxes, WEB, '1.0.0', HOST, 'virtualbox');
  fs.rmSync(hostDir, { recursive: true });
  fs.renameSync(path.join(s.boxes, WEB, '1.0.0', OTHER, 'virtualbox'), hostDir);
  const moved = s.run(['verify', '--installed']);
  t.equal(moved.code, 1);
  const bad = moved.json.boxes.find((b: any) => !b.ok);
  t.equal(bad.code, 'WRONG_BOX');
  t.equal(bad.architecture, HOST);
  t.match(bad.message, new RegExp(`signed architecture is ${OTHER}, expected ${HOST}`));
  r = boxsig(['repackage', 'acme/web', 'virtualbox', '1.0.0', '-o', out('moved.box'), '--json'], { env: s.env });
  t.equal(r.code, 1);
  t.equal(r.json.code, 'TAMPERED');
  t.match(r.json.message, new RegExp(`the manifest says architecture "${OTHER}", but the box is installed for ${HOST}`));
});

t.test('a provider and an architecture share the level under the version: one box never lands inside another', async (t) => {
  const s = setup(t);
  // provider "arm64" is a valid provider name and "virtualbox" a valid architecture name
  const archBox = s.box('arm64', '1.0.0', { name: 'acme/nest' });
  const providerBox = s.box(null, '1.0.0', { name: 'acme/nest', provider: 'arm64' });
  t.equal(s.run(['add', archBox, '--layout', '2.4', '--architecture', 'arm64']).code, 0);
  const before = tree(s.boxes);
  for (const force of [[], ['--force']]) {
    const r = s.run(['add', providerBox, '--layout', '2.3', ...force]);
    t.equal(r.code, 1, `a box of provider arm64 over the architecture directory arm64 ${force.join(' ')}`);
    t.equal(r.json.code, 'UNSAFE_ENTRY');
    t.match(r.json.message, /over the architecture directory arm64 of the installed acme\/nest 1\.0\.0 \(virtualbox, arm64\)/);
    t.same(tree(s.boxes), before, 'the installed box is untouched');
  }

  const s2 = setup(t);
  const provider2 = s2.box(null, '1.0.0', { name: 'acme/nest', provider: 'arm64' });
  const arch2 = s2.box('arm64', '1.0.0', { name: 'acme/nest' });
  t.equal(s2.run(['add', provider2, '--layout', '2.3']).code, 0);
  const before2 = tree(s2.boxes);
  const r = s2.run(['add', arch2, '--layout', '2.4', '--architecture', 'arm64']);
  t.equal(r.code, 1);
  t.equal(r.json.code, 'UNSAFE_ENTRY');
  t.match(r.json.message, /inside the installed box acme\/nest 1\.0\.0 \(arm64\)/);
  t.same(tree(s2.boxes), before2, 'nothing inside the installed box');

  // made by hand: Vagrant 2.4 lists the inner box too; verify --installed reports it
  const inner = path.join(s2.boxes, 'acme-VAGRANTSLASH-nest', '1.0.0', 'arm64', 'virtualbox');
  fs.mkdirSync(inner);
  fs.writeFileSync(path.join(inner, 'metadata.json'), '{"provider":"virtualbox"}');
  const v = s2.run(['verify', '--installed']);
  t.equal(v.code, 1);
  const entry = v.json.boxes.find((b: any) => b.entry === 'acme-VAGRANTSLASH-nest/1.0.0/arm64/virtualbox');
  t.equal(entry?.code, 'UNSAFE_ENTRY');
  t.match(entry?.message, /a box inside the box .* \(Vagrant 2\.4 lists it as architecture arm64\)/);
});

t.test('trust records and rollback are per box name, whatever the architecture and layout', async (t) => {
  const s = setup(t);
  t.equal(s.run(['add', s.box(HOST, '2.0.0'), '--layout', '2.4']).code, 0);
  const list = boxsig(['trust', 'list', '--json'], { env: s.env }).json;
  t.equal(list.boxes['acme/web'].highestVersion, '2.0.0');
  const older = s.run(['add', s.box(OTHER, '1.0.0'), '--layout', '2.4', '--architecture', OTHER]);
  t.equal(older.code, 1, 'a lower version of another architecture is a rollback too');
  t.equal(older.json.code, 'ROLLBACK');
  const deliberate = s.run(['add', s.box(OTHER, '1.0.0'), '--layout', '2.4', '--architecture', OTHER, '--allow-downgrade']);
  t.equal(deliberate.code, 0, deliberate.stderr);
  t.equal(
    s.run(['add', s.box(OTHER, '2.0.0'), '--layout', '2.3', '--architecture', OTHER]).code,
    0,
    'the same version, another architecture, the legacy layout',
  );
});
