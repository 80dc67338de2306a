/**
 * Issue 11, classes 1 and 2: one box name that aliases another, and strings
 * from a catalog, a manifest, metadata.json or flags used in paths. Every
 * attack goes through the public CLI with real archives and real keys; after
 * each refusal nothing outside the Vagrant home is written or deleted and the
 * boxes directory is exactly as before.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { boxsig, boxsigAsync, isolatedEnv, makeBox, makeKey, sign } from './helpers.js';
import { forgeSignedBox, unsignedBox } from './forge.js';
import { serve } from './http-server.js';

/** Every path under `dir` with its kind and, for files, a hash: a snapshot to compare. */
function snapshot(dir: string, skip: string[] = []): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip.includes(r)) continue;
      const p = path.join(abs, name);
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else out.push(`${r} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 12)}`);
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out;
}

function setup(t: any) {
  const dir = t.testdir({ project: {}, inputs: {}, victim: { 'sentinel.txt': 'outside the Vagrant home' } });
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const project = path.join(dir, 'project');
  const inputs = path.join(dir, 'inputs');
  const key = makeKey(inputs, 'Acme Builds <builds@acme.example>', [], env);
  fs.writeFileSync(
    path.join(project, 'boxsig.json'),
    JSON.stringify({ boxes: { 'acme/*': { pin: [key.fingerprint] }, 'legacy/*': { signatures: 'optional' } } }),
  );
  const base = makeBox(path.join(inputs, 'base.box'));
  const signed = (name: string, version: string) => {
    const out = path.join(inputs, `${name.replace(/\W/g, '_')}-${version}.box`);
    const r = sign(base, [key], ['--name', name, '--version', version, '--fresh', '-o', out], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const home = env.VAGRANT_HOME!;
  const boxes = path.join(home, 'boxes');
  /** Everything outside the Vagrant home, the trust store and the test's inputs, and the boxes directory itself. */
  const world = () => ({ outside: snapshot(dir, ['vagrant-home', 'boxsig-home', 'inputs']), boxes: snapshot(boxes) });
  return { dir, inputs, env, project, key, signed, home, boxes, world };
}

t.test('class 1: a signed name that spells a Vagrant escape never shares a directory with another name', async (t) => {
  const s = setup(t);
  const legit = boxsig(['add', s.signed('acme/web', '1.0.0'), '--json'], { env: s.env, cwd: s.project });
  t.equal(legit.code, 0, legit.stderr);
  const before = s.world();
  for (const name of [
    'acme-VAGRANTSLASH-web',
    'acme-vagrantslash-web',
    'acme-VagrantSlash-web',
    'acme-VAGRANTCOLON-web',
    'acme-VAGRANTSLASH/web',
    'acme/VAGRANTSLASH-web',
  ]) {
    const forged = await forgeSignedBox(path.join(s.inputs, 'forged.box'), { box: { name, version: '9.9.9', provider: 'virtualbox' } });
    for (const cmd of [
      ['add', forged.file, '--json'],
      ['verify', forged.file, '--json'],
    ]) {
      const r = boxsig(cmd, { env: s.env, cwd: s.project });
      t.equal(r.code, 1, `${cmd[0]} ${name}: refused`);
      t.equal(r.json?.code, 'MALFORMED', `${cmd[0]} ${name}: ${r.json?.message}`);
      t.match(r.json?.message, /escape|does not map/, 'the message says why');
    }
    t.same(s.world(), before, `${name}: nothing installed, nothing written`);
  }
  // the same names from the command line are usage errors
  const flag = boxsig(['add', s.signed('acme/web', '1.0.1'), '--name', 'acme-VAGRANTSLASH-web', '--json'], { env: s.env, cwd: s.project });
  t.equal(flag.code, 2);
  t.equal(flag.json?.code, 'USAGE');
  const accept = boxsig(['trust', 'accept', 'acme-VAGRANTSLASH-web', s.key.fingerprint, '--json'], { env: s.env });
  t.equal(accept.code, 2, 'trust accept refuses the name too');
  t.same(s.world(), before);
});

t.test('class 1: names that differ only in case, and versions Vagrant cannot tell apart, do not share a directory', async (t) => {
  const s = setup(t);
  t.equal(boxsig(['add', s.signed('acme/web', '1.0.0')], { env: s.env, cwd: s.project }).code, 0);
  const before = s.world();
  // trust on first use would accept ACME/web (no pin covers it); on macOS it would land in acme/web's directory
  const upper = await forgeSignedBox(path.join(s.inputs, 'upper.box'), { box: { name: 'ACME/web', version: '2.0.0', provider: 'virtualbox' } });
  const r = boxsig(['add', upper.file, '--json'], { env: s.env, cwd: s.project });
  t.equal(r.code, 1, r.stderr);
  t.equal(r.json?.code, 'UNSAFE_ENTRY');
  t.match(r.json?.message, /share a directory with the installed acme\/web/);
  t.same(s.world(), before, 'nothing installed');
  // 1.0 and 1.0.0 are the same version to Vagrant: one would hide the other
  const same = boxsig(['add', s.signed('acme/web', '1.0'), '--json'], { env: s.env, cwd: s.project });
  t.equal(same.code, 2, same.stderr);
  t.equal(same.json?.code, 'EXISTS');
  t.match(same.json?.message, /already installed as version 1\.0\.0/);
  t.same(s.world(), before, 'nothing installed');
});

t.test('class 1: boxsig add org/name installs only a box named org/name, whatever the server says', async (t) => {
  const s = setup(t);
  const routes: Record<string, any> = {};
  const srv = await serve(routes);
  t.teardown(() => srv.close());
  const env = { ...s.env, VAGRANT_SERVER_URL: srv.url };
  const evil = await forgeSignedBox(path.join(s.inputs, 'evil.box'), { box: { name: 'evil/web', version: '1.0.0', provider: 'virtualbox' } });
  const before = s.world();

  // a catalog for another box
  routes['/acme/web'] = {
    contentType: 'application/json',
    body: JSON.stringify({ name: 'evil/web', versions: [{ version: '1.0.0', providers: [{ name: 'virtualbox', url: `${srv.url}/evil.box` }] }] }),
  };
  routes['/evil.box'] = { file: evil.file };
  const other = await boxsigAsync(['add', 'acme/web', '--json'], { env, cwd: s.project });
  t.equal(other.code, 1, other.stderr);
  t.equal(other.json?.code, 'WRONG_BOX');
  t.same(s.world(), before);

  // a catalog that names the box right but serves another box
  routes['/acme/web'].body = JSON.stringify({
    name: 'acme/web',
    versions: [{ version: '1.0.0', providers: [{ name: 'virtualbox', url: `${srv.url}/evil.box` }] }],
  });
  const served = await boxsigAsync(['add', 'acme/web', '--json'], { env, cwd: s.project });
  t.equal(served.code, 1);
  t.equal(served.json?.code, 'WRONG_BOX');

  // no catalog at all: the box itself, signed for another name
  routes['/acme/web'] = { file: evil.file };
  const direct = await boxsigAsync(['add', 'acme/web', '--json'], { env, cwd: s.project });
  t.equal(direct.code, 1, direct.stderr);
  t.equal(direct.json?.code, 'WRONG_BOX');

  // a catalog whose name spells an escape
  routes['/acme/web'] = {
    contentType: 'application/json',
    body: JSON.stringify({ name: 'acme-VAGRANTSLASH-web', versions: [{ version: '1.0.0', providers: [{ name: 'virtualbox', url: `${srv.url}/evil.box` }] }] }),
  };
  const escaped = await boxsigAsync(['add', 'acme/web', '--json'], { env, cwd: s.project });
  t.equal(escaped.code, 1);
  t.equal(escaped.json?.code, 'UNSAFE_ENTRY');
  t.same(s.world(), before, 'nothing installed by any of them');

  const contradiction = await boxsigAsync(['add', 'acme/web', '--name', 'acme/other', '--json'], { env, cwd: s.project });
  t.equal(contradiction.code, 2, '--name must agree with org/name');

  // the legitimate box through the same path
  routes['/acme/web'] = {
    contentType: 'application/json',
    body: JSON.stringify({ name: 'acme/web', versions: [{ version: '1.0.0', providers: [{ name: 'virtualbox', url: `${srv.url}/good.box` }] }] }),
  };
  routes['/good.box'] = { file: s.signed('acme/web', '1.0.0') };
  const good = await boxsigAsync(['add', 'acme/web', '--json'], { env, cwd: s.project });
  t.equal(good.code, 0, good.stderr);
  t.ok(fs.existsSync(path.join(s.boxes, 'acme-VAGRANTSLASH-web', '1.0.0', 'virtualbox', 'metadata.json')));
});

t.test('class 2: catalog versions and providers never reach a path, with or without --force', async (t) => {
  const s = setup(t);
  const box = unsignedBox(path.join(s.inputs, 'legacy.box'), 'virtualbox');
  // an installed box and a victim directory that a traversal would replace with --force
  t.equal(boxsig(['add', box, '--name', 'legacy/x'], { env: s.env, cwd: s.project }).code, 0, 'the unsigned box is allowed by policy');
  const payloads = ['../../../victim', '../../../../victim', '..', '.', '/tmp/victim', '1.0/../../../../victim', '1.0\n', 'a\u001b[2Jb'];
  const catalog = path.join(s.inputs, 'catalog.json');
  const before = s.world();
  for (const bad of payloads) {
    for (const field of ['version', 'provider'] as const) {
      const version = field === 'version' ? bad : '1.0';
      const provider = field === 'provider' ? bad : 'virtualbox';
      fs.writeFileSync(catalog, JSON.stringify({ name: 'legacy/x', versions: [{ version, providers: [{ name: provider, url: box }] }] }));
      for (const force of [[], ['--force']]) {
        const r = boxsig(['add', catalog, '--json', ...force], { env: s.env, cwd: s.project });
        t.equal(r.code, 1, `${field} ${JSON.stringify(bad)} ${force.join('')}: refused (${r.stderr.trim()})`);
        t.equal(r.json?.code, 'UNSAFE_ENTRY');
        t.notMatch(r.stdout + r.stderr, /\u001b/, 'no raw escape sequence reaches the terminal');
        t.same(s.world(), before, `${field} ${JSON.stringify(bad)} ${force.join('')}: nothing written or deleted anywhere`);
      }
    }
  }
  // another catalog entry than the one chosen is just as refused: the catalog is not trusted
  fs.writeFileSync(
    catalog,
    JSON.stringify({
      name: 'legacy/x',
      versions: [
        { version: '2.0', providers: [{ name: 'virtualbox', url: box }] },
        { version: '../../../victim', providers: [{ name: 'virtualbox', url: box }] },
      ],
    }),
  );
  t.equal(boxsig(['add', catalog, '--json'], { env: s.env, cwd: s.project }).json?.code, 'UNSAFE_ENTRY');
  // a catalog name with a path in it
  fs.writeFileSync(catalog, JSON.stringify({ name: 'legacy/../../victim', versions: [{ version: '1.0', providers: [{ name: 'virtualbox', url: box }] }] }));
  t.equal(boxsig(['add', catalog, '--json'], { env: s.env, cwd: s.project }).json?.code, 'UNSAFE_ENTRY');
  t.same(s.world(), before);
});

t.test('class 2: metadata.json of an unsigned box and flags never reach a path either', async (t) => {
  const s = setup(t);
  const before = s.world();
  for (const provider of ['../../../../victim', '..', 'VirtualBox/../..']) {
    const box = unsignedBox(path.join(s.inputs, 'traversal.box'), provider);
    for (const force of [[], ['--force']]) {
      const r = boxsig(['add', box, '--name', 'legacy/x', '--json', ...force], { env: s.env, cwd: s.project });
      t.equal(r.code, 1, `metadata.json provider ${JSON.stringify(provider)}: refused`);
      t.equal(r.json?.code, 'UNSAFE_ENTRY', r.json?.message);
      t.same(s.world(), before);
    }
  }
  const box = unsignedBox(path.join(s.inputs, 'ok.box'), 'virtualbox');
  for (const args of [
    ['--name', 'legacy/x', '--provider', '../../../victim'],
    ['--name', 'legacy/x', '--box-version', '../../../victim'],
    ['--name', 'legacy/../../victim'],
  ]) {
    const r = boxsig(['add', box, ...args, '--json'], { env: s.env, cwd: s.project });
    t.equal(r.code, 2, `${args.join(' ')}: a usage error`);
    t.same(s.world(), before);
  }
});

t.test('a link in the boxes directory is never installed through', async (t) => {
  const s = setup(t);
  const elsewhere = path.join(s.dir, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.mkdirSync(s.boxes, { recursive: true });
  fs.symlinkSync(elsewhere, path.join(s.boxes, 'acme-VAGRANTSLASH-lnk'));
  const before = s.world();
  const r = boxsig(['add', s.signed('acme/lnk', '1.0.0'), '--json'], { env: s.env, cwd: s.project });
  t.equal(r.code, 1, r.stderr);
  t.equal(r.json?.code, 'UNSAFE_ENTRY');
  t.match(r.json?.message, /symbolic link/);
  t.same(fs.readdirSync(elsewhere), [], 'nothing written through the link');
  t.same(s.world(), before);
});
