/**
 * Issue 19, pure logic, table-driven: the host's architecture as Vagrant
 * names it, choosing a catalog entry as Vagrant 2.4 does
 * (lib/vagrant/box_metadata.rb, `Version#provider`, and box_add.rb,
 * `add_from_metadata`), the binding rule, the layout decision's parts, and
 * the path proof with an architecture level.
 */
import t from 'tap';
import path from 'node:path';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostArchitecture, explicitArchitecture, layoutOfVersion, parseLayout } from '../../src/vagrant/architecture.js';
import { vagrantVersion } from '../../src/vagrant/vagrant-version.js';
import { chooseFromCatalog, parseCatalog, type Catalog } from '../../src/vagrant/catalog.js';
import { architecturesAgree, architectureProblem } from '../../src/manifest/names.js';
import { boxLocation } from '../../src/vagrant/home.js';
import { BoxsigError } from '../../src/errors.js';

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return e instanceof BoxsigError ? e.code : `not a BoxsigError: ${(e as Error).message}`;
  }
}

t.test('the host architecture: Node names mapped to Vagrant names, VAGRANT_HOST_ARCHITECTURE first', async (t) => {
  const table: Array<[string, string, string]> = [
    ['x64', 'LE', 'amd64'],
    ['ia32', 'LE', 'i386'],
    ['arm64', 'LE', 'arm64'],
    ['arm', 'LE', 'arm'],
    ['ppc64', 'LE', 'powerpc64le'],
    ['ppc64', 'BE', 'powerpc64'],
    ['s390x', 'BE', 's390x'],
    ['riscv64', 'LE', 'riscv64'],
    ['loong64', 'LE', 'loongarch64'],
  ];
  for (const [arch, end, want] of table) t.equal(hostArchitecture({}, arch, end as 'LE' | 'BE'), want, `${arch} (${end})`);
  t.equal(hostArchitecture({ VAGRANT_HOST_ARCHITECTURE: 'arm64' }, 'x64'), 'arm64', 'the variable wins, as in Vagrant');
  for (const bad of ['../x', 'ARM64', 'x86-64', 'a'.repeat(33)]) {
    t.equal(
      code(() => hostArchitecture({ VAGRANT_HOST_ARCHITECTURE: bad }, 'x64')),
      'CONFIG',
      `VAGRANT_HOST_ARCHITECTURE=${bad}`,
    );
  }
  t.equal(hostArchitecture({ VAGRANT_HOST_ARCHITECTURE: '' }, 'x64'), 'amd64', 'an empty variable is unset, as in Vagrant');
});

t.test('--architecture and --layout values', async (t) => {
  t.equal(explicitArchitecture(undefined), undefined);
  t.equal(explicitArchitecture('auto'), undefined, 'auto is the default');
  t.equal(explicitArchitecture('unknown'), 'unknown');
  t.equal(explicitArchitecture('arm64'), 'arm64');
  for (const bad of ['', '../arm64', 'arm64/x', 'Arm64', 'x\n'])
    t.equal(
      code(() => explicitArchitecture(bad)),
      'USAGE',
      JSON.stringify(bad),
    );
  t.equal(parseLayout('2.3', '--layout'), '2.3');
  t.equal(parseLayout('2.4', '--layout'), '2.4');
  t.equal(parseLayout('auto', '--layout'), undefined);
  t.equal(parseLayout(undefined, '--layout'), undefined);
  t.equal(
    code(() => parseLayout('2.5', '--layout')),
    'USAGE',
  );
  t.equal(
    code(() => parseLayout('2.5', 'BOXSIG_VAGRANT_LAYOUT')),
    'CONFIG',
  );
  for (const [v, l] of [
    ['2.3.4', '2.3'],
    ['2.2.19', '2.3'],
    ['1.9.8', '2.3'],
    ['2.4.0', '2.4'],
    ['2.4.9', '2.4'],
    ['2.10.0', '2.4'],
    ['3.0.0', '2.4'],
  ])
    t.equal(layoutOfVersion(v), l, v);
});

t.test('the binding rule: a stated architecture must be the one installed for; unknown or absent binds nothing', async (t) => {
  const table: Array<[string | undefined, string | undefined, boolean]> = [
    ['amd64', 'amd64', true],
    ['amd64', 'arm64', false],
    ['arm64', 'amd64', false],
    ['amd64', undefined, true],
    ['amd64', 'unknown', true],
    ['unknown', 'arm64', true],
    [undefined, 'arm64', true],
    [undefined, undefined, true],
  ];
  for (const [installedFor, stated, ok] of table) t.equal(architecturesAgree(installedFor, stated), ok, `${installedFor} / ${stated}`);
  for (const a of ['amd64', 'arm64', 'i386', '386', 'unknown', 'powerpc64le', 'x86_64']) t.equal(architectureProblem(a), null, a);
});

type Entry = { name: string; architecture?: string | null; default_architecture?: unknown };
function catalog(versions: Array<[string, Entry[]]>): Catalog {
  const json = {
    name: 'acme/web',
    versions: versions.map(([version, providers]) => ({
      version,
      providers: providers.map((p) => ({ url: `${version}-${p.name}-${p.architecture}.box`, ...p })),
    })),
  };
  return parseCatalog(Buffer.from(JSON.stringify(json)), 'test');
}
const both: Array<[string, Entry[]]> = [
  [
    '1.0.0',
    [
      { name: 'virtualbox', architecture: 'amd64', default_architecture: true },
      { name: 'virtualbox', architecture: 'arm64', default_architecture: false },
    ],
  ],
];
const unknownDefault: Array<[string, Entry[]]> = [['1.0.0', [{ name: 'virtualbox', architecture: 'unknown', default_architecture: true }]]];
const legacy: Array<[string, Entry[]]> = [['1.0.0', [{ name: 'virtualbox' }]]];

t.test('choosing an entry as Vagrant 2.4 does', async (t) => {
  interface Row {
    what: string;
    versions: Array<[string, Entry[]]>;
    host: string;
    architecture?: string;
    provider?: string;
    /** version, provider, stated architecture, directory architecture; or an error code and a message pattern */
    want: [string, string, string | undefined, string | undefined] | { code: string; message: RegExp };
  }
  const rows: Row[] = [
    { what: 'the host architecture (amd64)', versions: both, host: 'amd64', want: ['1.0.0', 'virtualbox', 'amd64', 'amd64'] },
    { what: 'the host architecture (arm64)', versions: both, host: 'arm64', want: ['1.0.0', 'virtualbox', 'arm64', 'arm64'] },
    { what: '--architecture arm64 on amd64', versions: both, host: 'amd64', architecture: 'arm64', want: ['1.0.0', 'virtualbox', 'arm64', 'arm64'] },
    {
      what: 'no entry for the host: refused with what is offered (a stated default is not for another host)',
      versions: both,
      host: 'i386',
      want: { code: 'USAGE', message: /offers a box for this host's architecture i386.*offered: 1\.0\.0: virtualbox \(amd64, default\), virtualbox \(arm64\)/ },
    },
    {
      what: '--architecture unknown when none is unknown',
      versions: both,
      host: 'amd64',
      architecture: 'unknown',
      want: { code: 'USAGE', message: /architecture unknown/ },
    },
    {
      what: 'only unknown marked default: chosen, installed without architecture directory',
      versions: unknownDefault,
      host: 'arm64',
      want: ['1.0.0', 'virtualbox', 'unknown', undefined],
    },
    { what: '--architecture unknown', versions: unknownDefault, host: 'amd64', architecture: 'unknown', want: ['1.0.0', 'virtualbox', 'unknown', undefined] },
    {
      what: 'unknown without the default flag is not chosen by auto',
      versions: [['1.0.0', [{ name: 'virtualbox', architecture: 'unknown', default_architecture: false }]]],
      host: 'amd64',
      want: { code: 'USAGE', message: /offered: 1\.0\.0: virtualbox \(unknown\)/ },
    },
    {
      what: 'unknown without the default flag, asked for explicitly: in an architecture directory "unknown", as Vagrant does',
      versions: [['1.0.0', [{ name: 'virtualbox', architecture: 'unknown', default_architecture: false }]]],
      host: 'amd64',
      architecture: 'unknown',
      want: ['1.0.0', 'virtualbox', 'unknown', 'unknown'],
    },
    { what: 'a catalog without architecture: as before', versions: legacy, host: 'arm64', want: ['1.0.0', 'virtualbox', undefined, undefined] },
    {
      what: 'a catalog without architecture and --architecture: refused, as Vagrant 2.4 refuses it',
      versions: legacy,
      host: 'amd64',
      architecture: 'amd64',
      want: { code: 'USAGE', message: /offered: 1\.0\.0: virtualbox \(no architecture\)/ },
    },
    {
      what: 'an entry stating another architecture is never taken as the legacy single entry',
      versions: [['1.0.0', [{ name: 'virtualbox', architecture: 'amd64' }]]],
      host: 'arm64',
      want: { code: 'USAGE', message: /this host's architecture arm64/ },
    },
    {
      what: 'the highest version that has the host architecture',
      versions: [
        ['2.0.0', [{ name: 'virtualbox', architecture: 'arm64', default_architecture: true }]],
        ['1.0.0', [{ name: 'virtualbox', architecture: 'amd64', default_architecture: true }]],
      ],
      host: 'amd64',
      want: ['1.0.0', 'virtualbox', 'amd64', 'amd64'],
    },
    {
      what: 'several providers for the host: choose with --provider',
      versions: [
        [
          '1.0.0',
          [
            { name: 'virtualbox', architecture: 'amd64', default_architecture: true },
            { name: 'libvirt', architecture: 'amd64', default_architecture: true },
            { name: 'libvirt', architecture: 'arm64', default_architecture: false },
          ],
        ],
      ],
      host: 'amd64',
      want: { code: 'USAGE', message: /several providers \(libvirt, virtualbox\)/ },
    },
    {
      what: 'one provider for the host among several providers',
      versions: [
        [
          '1.0.0',
          [
            { name: 'virtualbox', architecture: 'amd64', default_architecture: true },
            { name: 'libvirt', architecture: 'arm64', default_architecture: false },
          ],
        ],
      ],
      host: 'arm64',
      want: ['1.0.0', 'libvirt', 'arm64', 'arm64'],
    },
    {
      what: '--provider with the host architecture',
      versions: [
        [
          '1.0.0',
          [
            { name: 'virtualbox', architecture: 'amd64', default_architecture: true },
            { name: 'libvirt', architecture: 'amd64', default_architecture: true },
          ],
        ],
      ],
      host: 'amd64',
      provider: 'libvirt',
      want: ['1.0.0', 'libvirt', 'amd64', 'amd64'],
    },
    {
      what: 'a provider the catalog does not have',
      versions: both,
      host: 'amd64',
      provider: 'libvirt',
      want: { code: 'USAGE', message: /has provider libvirt/ },
    },
    {
      what: 'null fields are absent, as Vagrant reads them',
      versions: [['1.0.0', [{ name: 'virtualbox', architecture: null, default_architecture: null }]]],
      host: 'amd64',
      want: ['1.0.0', 'virtualbox', undefined, undefined],
    },
  ];
  for (const r of rows) {
    const run = () => chooseFromCatalog(catalog(r.versions), { host: r.host, architecture: r.architecture, provider: r.provider, cwd: '/cwd', source: 'test' });
    if (Array.isArray(r.want)) {
      const c = run();
      t.same([c.version, c.provider, c.architecture, c.directoryArchitecture], r.want, r.what);
      t.equal(
        path.basename(c.url),
        `${c.version}-${c.provider}-${c.architecture ?? (r.versions[0][1][0].architecture === null ? 'null' : 'undefined')}.box`,
        `${r.what}: the entry's URL`,
      );
    } else {
      let err: unknown = null;
      try {
        run();
      } catch (e) {
        err = e;
      }
      t.ok(err instanceof BoxsigError, `${r.what}: refused`);
      t.equal((err as BoxsigError).code, r.want.code, `${r.what}: code`);
      t.match((err as BoxsigError).message, r.want.message, `${r.what}: message`);
      if (r.what.startsWith('a catalog without architecture and --architecture'))
        t.match((err as BoxsigError).hint, /states no architecture/, `${r.what}: hint`);
    }
  }
});

t.test('catalog fields from the server are checked before use', async (t) => {
  const one = (p: Record<string, unknown>) => () =>
    parseCatalog(
      Buffer.from(JSON.stringify({ name: 'acme/web', versions: [{ version: '1.0.0', providers: [{ name: 'virtualbox', url: 'x.box', ...p }] }] })),
      'test',
    );
  t.equal(code(one({ architecture: 64 })), 'MALFORMED', 'a non-string architecture');
  t.equal(code(one({ architecture: ['amd64'] })), 'MALFORMED', 'a list');
  t.equal(code(one({ default_architecture: 'true' })), 'MALFORMED', 'a non-boolean default_architecture');
  for (const a of ['../amd64', 'amd64/../../x', 'AMD64', '', 'a\u001b[2Jb', '__proto__x-'])
    t.equal(code(one({ architecture: a })), 'UNSAFE_ENTRY', JSON.stringify(a));
  t.equal(code(one({ architecture: 'constructor', default_architecture: false })), 'ok', 'a name like an object key is just a name');
});

t.test('boxLocation: an architecture level, proven to lie four levels under boxes/', async (t) => {
  const home = '/home/u/.vagrant.d';
  const loc = boxLocation(home, { name: 'acme/web', version: '1.0.0', provider: 'virtualbox', architecture: 'arm64' });
  t.equal(loc.directory, path.join(home, 'boxes', 'acme-VAGRANTSLASH-web', '1.0.0', 'arm64', 'virtualbox'));
  t.equal(loc.archDir, path.join(home, 'boxes', 'acme-VAGRANTSLASH-web', '1.0.0', 'arm64'));
  t.equal(loc.levels.length, 4);
  const legacyLoc = boxLocation(home, { name: 'acme/web', version: '1.0.0', provider: 'virtualbox' });
  t.equal(legacyLoc.directory, path.join(home, 'boxes', 'acme-VAGRANTSLASH-web', '1.0.0', 'virtualbox'));
  t.equal(legacyLoc.archDir, undefined);
  t.equal(legacyLoc.levels.length, 3);
  for (const a of ['..', '.', '../..', 'a/b', '', 'AMD64', '/tmp', 'x\u0000']) {
    t.equal(
      code(() => boxLocation(home, { name: 'acme/web', version: '1.0.0', provider: 'virtualbox', architecture: a })),
      'UNSAFE_ENTRY',
      JSON.stringify(a),
    );
  }
});

t.test('vagrantVersion: a spawn Node refuses at once (an environment it cannot pass on) is "no vagrant", not a crash', async (t) => {
  const cache = t.testdir({});
  t.equal(await vagrantVersion({ PATH: process.env.PATH, BOXSIG_CACHE_HOME: cache, BAD: 'a\u0000b' }), null);
  t.equal(await vagrantVersion({ PATH: '/nonexistent' }), null, 'no vagrant on the PATH');
});

t.test('vagrantVersion: asked once per executable, asked again when it is replaced; a damaged cache is ignored', async (t) => {
  const dir = t.testdir({ bin: {}, cache: {} });
  const exe = path.join(dir, 'bin', 'vagrant');
  const calls = path.join(dir, 'calls');
  const script = (v: string) => `#!/bin/sh\necho x >> ${JSON.stringify(calls)}\necho "Vagrant ${v}"\n`;
  fs.writeFileSync(exe, script('2.3.4'), { mode: 0o755 });
  const env = { PATH: path.join(dir, 'bin'), BOXSIG_CACHE_HOME: path.join(dir, 'cache') };
  const asked = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0);
  t.equal(await vagrantVersion(env), '2.3.4');
  t.equal(await vagrantVersion(env), '2.3.4');
  t.equal(asked(), 1, 'the second answer came from the cache');
  // an upgrade replaces the executable (a new inode, even with the same size)
  fs.rmSync(exe);
  fs.writeFileSync(exe, script('2.4.1'), { mode: 0o755 });
  t.equal(await vagrantVersion(env), '2.4.1', 'a replaced vagrant is asked again');
  t.equal(asked(), 2);
  for (const junk of ['not json', '{"vagrant":{"__proto__":"9.9"}}', '{"vagrant":[["x","../../etc"]]}', 'x'.repeat(70 * 1024)]) {
    fs.writeFileSync(path.join(dir, 'cache', 'vagrant.json'), junk);
    t.equal(await vagrantVersion(env), '2.4.1', `damaged cache ${JSON.stringify(junk.slice(0, 30))}: asked again`);
  }
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'cache', 'vagrant.json'), 'utf8'));
  t.equal(doc.vagrant.length, 1, 'the damaged cache was replaced by one entry');
  for (const odd of ['/proc/boxsig-none', '/dev/null/x', path.join(dir, 'bin', 'vagrant')]) {
    t.equal(await vagrantVersion({ ...env, BOXSIG_CACHE_HOME: odd }), '2.4.1', `a cache home that cannot be made (${odd}): asked, no hang`);
  }
  fs.chmodSync(exe, 0o644);
  t.equal(await vagrantVersion(env), null, 'a vagrant that is not executable is no vagrant, whatever the cache says');
});

t.test('vagrantVersion: a cache that is not a small regular file of this user is not read; shims are asked every time', async (t) => {
  const dir = t.testdir({ bin: {}, cache: {}, shims: {}, elsewhere: {} });
  const exe = path.join(dir, 'bin', 'vagrant');
  const calls = path.join(dir, 'calls');
  fs.writeFileSync(exe, `#!/bin/sh\necho x >> ${JSON.stringify(calls)}\necho "Vagrant 2.3.4"\n`, { mode: 0o755 });
  const cache = path.join(dir, 'cache', 'vagrant.json');
  const env = { PATH: path.join(dir, 'bin'), BOXSIG_CACHE_HOME: path.join(dir, 'cache') };
  const asked = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0);
  t.equal(await vagrantVersion(env), '2.3.4');
  const poisoned = fs.readFileSync(cache, 'utf8').replace('2.3.4', '2.4.1');
  // a FIFO would block a plain read for ever, /dev/zero would fill the memory, a link could point anywhere
  const odd: Array<[string, () => void]> = [
    ['a FIFO', () => spawnSync('mkfifo', [cache])],
    ['a link to /dev/zero', () => fs.symlinkSync('/dev/zero', cache)],
    [
      'a link to a poisoned file',
      () => (fs.writeFileSync(path.join(dir, 'elsewhere', 'v.json'), poisoned), fs.symlinkSync(path.join(dir, 'elsewhere', 'v.json'), cache)),
    ],
  ];
  if (process.getuid?.() === 0) odd.push(['a poisoned file of another user', () => (fs.writeFileSync(cache, poisoned), fs.chownSync(cache, 65534, 65534))]);
  for (const [what, make] of odd) {
    fs.rmSync(cache, { force: true });
    make();
    const before = asked();
    t.equal(await vagrantVersion(env), '2.3.4', `${what}: not read, vagrant is asked`);
    t.equal(asked(), before + 1);
  }
  // a relative cache home would put the cache wherever the command runs (a cloned repository could hold a link there)
  const cwd = process.cwd();
  process.chdir(path.join(dir, 'elsewhere'));
  t.teardown(() => process.chdir(cwd));
  await vagrantVersion({ ...env, BOXSIG_CACHE_HOME: 'rel', XDG_CACHE_HOME: path.join(dir, 'xdg') });
  t.notOk(fs.existsSync(path.join(dir, 'elsewhere', 'rel')), 'a relative BOXSIG_CACHE_HOME is not used');
  t.ok(fs.existsSync(path.join(dir, 'xdg', 'boxsig', 'vagrant.json')), 'the default place is');
  process.chdir(cwd);
  // a version manager's shim picks a version per directory: never remembered
  const shim = path.join(dir, 'shims', 'vagrant');
  fs.copyFileSync(exe, shim);
  fs.chmodSync(shim, 0o755);
  const shimEnv = { ...env, PATH: path.join(dir, 'shims') };
  const before = asked();
  t.equal(await vagrantVersion(shimEnv), '2.3.4');
  t.equal(await vagrantVersion(shimEnv), '2.3.4');
  t.equal(asked(), before + 2, 'a shim is asked every time');
});
