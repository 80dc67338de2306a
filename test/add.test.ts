/**
 * boxsig add: sources (file, URL, catalog file and URL), real Vagrant sees the
 * result, checksums, key changes, rollback, network errors, proxies,
 * unsigned boxes, --force, and nothing left behind on refusal.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { boxsig, boxsigAsync, isolatedEnv, makeBox, makeKey, must, requireTool, sh, sign, type KeyFiles, trustStoreText, trustRecords } from './helpers.js';
import { proxy, selfSigned, serve, type Route } from './http-server.js';

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function tree(dir: string): string {
  if (!fs.existsSync(dir)) return '';
  return must('find', [dir]).split('\n').sort().join('\n');
}

function vagrantEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_DISABLE_VBOXSYMLINKCREATE: '1', VAGRANT_NO_PLUGINS: '1' };
}

interface World {
  dir: string;
  env: NodeJS.ProcessEnv;
  key: KeyFiles;
  other: KeyFiles;
  box: (name: string, version: string, keys?: KeyFiles[], extra?: string[]) => string;
}

function world(t: any): World {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const other = makeKey(dir, 'Other <o@other.example>', [], env);
  const base = makeBox(path.join(dir, 'base.box'));
  const box = (name: string, version: string, keys: KeyFiles[] = [key], extra: string[] = []) => {
    const out = path.join(dir, `${name.replace('/', '_')}-${version}-${keys.map((k) => k.fingerprint.slice(-4)).join('')}.box`);
    const r = sign(base, keys, ['--name', name, '--version', version, '--fresh', '-o', out, ...extra], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  return { dir, env, key, other, box };
}

t.test('catalog over loopback HTTP with a checksum; real Vagrant lists and removes it', async (t) => {
  const w = world(t);
  const v1 = w.box('acme/web', '1.0.0');
  const v2 = w.box('acme/web', '1.1.0');
  const catalog = {
    name: 'acme/web',
    versions: [
      { version: '1.0.0', providers: [{ name: 'virtualbox', url: '', checksum_type: 'sha256', checksum: sha256(v1) }] },
      { version: '1.1.0', providers: [{ name: 'virtualbox', url: '', checksum_type: 'sha256', checksum: sha256(v2) }] },
    ],
  };
  // routes are read at request time: fill them once the server has its port
  const routes: Record<string, any> = {};
  const srv2 = await serve(routes);
  t.teardown(() => srv2.close());
  catalog.versions[0].providers[0].url = `${srv2.url}/boxes/v1.box`;
  catalog.versions[1].providers[0].url = `${srv2.url}/old/v2.box`;
  Object.assign(routes, {
    '/boxes/v1.box': { file: v1 },
    '/boxes/v2.box': { file: v2 },
    '/old/v2.box': { redirect: `${srv2.url}/boxes/v2.box` },
    '/acme/web': { body: JSON.stringify(catalog), contentType: 'application/json' },
  });
  const r = await boxsigAsync(['add', `${srv2.url}/acme/web`, '--json'], { env: w.env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.box.version, '1.1.0', 'the highest version');
  t.equal(r.json.metadataUrl, `${srv2.url}/acme/web`);
  t.match(srv2.hits, ['HEAD /acme/web', 'GET /acme/web', 'GET /old/v2.box', 'GET /boxes/v2.box'], 'HEAD decides it is a catalog; the redirect is followed');
  const home = w.env.VAGRANT_HOME!;
  const boxDir = path.join(home, 'boxes', 'acme-VAGRANTSLASH-web');
  t.equal(fs.readFileSync(path.join(boxDir, 'metadata_url'), 'utf8'), `${srv2.url}/acme/web`);
  t.ok(fs.existsSync(path.join(boxDir, '1.1.0', 'virtualbox', '.boxsig', 'manifest.json')), 'the installed box keeps .boxsig/');

  const older = await boxsigAsync(['add', `${srv2.url}/acme/web`, '--box-version', '< 1.1', '--json'], { env: w.env });
  t.equal(older.code, 1, 'a constraint selecting an older version is a rollback');
  t.equal(older.json.code, 'ROLLBACK');

  if (requireTool(t, 'vagrant', 'vagrant')) {
    const venv = vagrantEnv(w.env);
    const list = sh('vagrant', ['box', 'list'], { env: venv });
    t.equal(list.code, 0, list.stderr);
    t.match(list.stdout, /acme\/web\s+\(virtualbox, 1\.1\.0\)/, 'vagrant box list shows it');
    const rm = sh('vagrant', ['box', 'remove', 'acme/web', '--box-version', '1.1.0', '--force'], { env: venv });
    t.equal(rm.code, 0, rm.stderr);
    t.notOk(fs.existsSync(path.join(boxDir, '1.1.0')), 'vagrant box remove removed it');
    t.notMatch(sh('vagrant', ['box', 'list'], { env: venv }).stdout, /acme\/web/);
  }

  // a wrong checksum in the catalog: CHECKSUM_MISMATCH, nothing installed
  catalog.versions[1].providers[0].checksum = '0'.repeat(64);
  routes['/acme/web'].body = JSON.stringify(catalog);
  const before = tree(path.join(home, 'boxes'));
  const bad = await boxsigAsync(['add', `${srv2.url}/acme/web`, '--json', '--allow-downgrade'], { env: w.env });
  t.equal(bad.code, 1);
  t.equal(bad.json.code, 'CHECKSUM_MISMATCH');
  t.equal(tree(path.join(home, 'boxes')), before, 'the boxes directory is exactly as before');
  t.same(fs.readdirSync(path.join(home, 'tmp')), [], 'no staging debris');
});

t.test('catalog file with a relative URL, file:// URLs, and a key change through a catalog', async (t) => {
  const w = world(t);
  const v1 = w.box('acme/db', '1.0.0');
  fs.copyFileSync(v1, path.join(w.dir, 'db-1.0.0.box'));
  fs.writeFileSync(
    path.join(w.dir, 'catalog.json'),
    JSON.stringify({
      name: 'acme/db',
      versions: [{ version: '1.0.0', providers: [{ name: 'virtualbox', url: 'db-1.0.0.box', checksum_type: 'sha256', checksum: sha256(v1) }] }],
    }),
  );
  const r = boxsig(['add', 'catalog.json', '--json'], { env: w.env, cwd: w.dir });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.box.name, 'acme/db');
  t.match(r.json.metadataUrl, /^file:\/\/.*catalog\.json$/);

  // a second box of the same name from another key
  const rogue = w.box('acme/db', '2.0.0', [w.other]);
  fs.copyFileSync(rogue, path.join(w.dir, 'db-2.0.0.box'));
  fs.writeFileSync(
    path.join(w.dir, 'catalog.json'),
    JSON.stringify({
      name: 'acme/db',
      versions: [{ version: '2.0.0', providers: [{ name: 'virtualbox', url: `file://${path.join(w.dir, 'db-2.0.0.box')}` }] }],
    }),
  );
  const home = w.env.VAGRANT_HOME!;
  const trustBefore = trustStoreText(w.env.BOXSIG_HOME!);
  const installed = path.join(home, 'boxes', 'acme-VAGRANTSLASH-db', '1.0.0', 'virtualbox');
  const firstBefore = tree(installed);
  const changed = boxsig(['add', 'catalog.json', '--json'], { env: w.env, cwd: w.dir });
  t.equal(changed.code, 1);
  t.equal(changed.json.code, 'KEY_CHANGED');
  t.equal(tree(installed), firstBefore, 'the first box is untouched');
  t.notOk(fs.existsSync(path.join(home, 'boxes', 'acme-VAGRANTSLASH-db', '2.0.0')), 'no new version directory');
  t.equal(trustStoreText(w.env.BOXSIG_HOME!), trustBefore, 'the trust record is unchanged');
  // accepting the new key with the printed command makes the add pass
  t.equal(boxsig(['trust', 'accept', 'acme/db', w.other.fingerprint], { env: w.env }).code, 0);
  t.equal(boxsig(['add', 'catalog.json'], { env: w.env, cwd: w.dir }).code, 0);
});

t.test('direct adds: file, http URL, existing box, --force, unsigned boxes', async (t) => {
  const w = world(t);
  const b = w.box('acme/app', '3.2.1');
  const home = w.env.VAGRANT_HOME!;
  const r = boxsig(['add', b, '--json'], { env: w.env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.directory, path.join(home, 'boxes', 'acme-VAGRANTSLASH-app', '3.2.1', 'virtualbox'), 'the version the signed manifest states');
  t.match(r.json.recorded, [/^first-use: /]);
  const again = boxsig(['add', b, '--json'], { env: w.env });
  t.equal(again.code, 2, 'an installed box is not replaced without --force');
  t.equal(again.json.code, 'EXISTS');
  t.equal(boxsig(['add', b, '--force', '--json'], { env: w.env }).json?.replaced, true, '--force replaces it');
  t.equal(boxsig(['add', b, '--name', 'acme/other', '--json'], { env: w.env }).json?.code, 'WRONG_BOX', '--name must match the signed name');

  // over HTTP, with progress lines on stderr and only JSON on stdout
  const srv = await serve({ '/app.box': { file: b } });
  t.teardown(() => srv.close());
  const h = await boxsigAsync(['add', `${srv.url}/app.box`, '--force', '--json'], { env: w.env });
  t.equal(h.code, 0, h.stderr);
  t.doesNotThrow(() => JSON.parse(h.stdout), 'stdout holds one JSON object');

  // unsigned: refused where signatures are required, added with a warning where optional
  const unsigned = makeBox(path.join(w.dir, 'legacy.box'));
  const u1 = boxsig(['add', unsigned, '--name', 'legacy/old', '--json'], { env: w.env, cwd: w.dir });
  t.equal(u1.json?.code, 'UNSIGNED');
  t.notOk(fs.existsSync(path.join(home, 'boxes', 'legacy-VAGRANTSLASH-old')));
  fs.writeFileSync(path.join(w.dir, 'boxsig.json'), JSON.stringify({ boxes: { 'legacy/*': { signatures: 'optional' } } }));
  const u2 = boxsig(['add', unsigned, '--name', 'legacy/old'], { env: w.env, cwd: w.dir });
  t.equal(u2.code, 0, u2.stderr);
  t.match(u2.stderr, /warning: UNSIGNED/);
  t.ok(
    fs.existsSync(path.join(home, 'boxes', 'legacy-VAGRANTSLASH-old', '0', 'virtualbox', 'metadata.json')),
    "an unsigned direct add gets Vagrant's version 0",
  );
});

t.test('network errors: 404, TLS, timeouts, proxies', async (t) => {
  const w = world(t);
  const b = w.box('acme/net', '1.0.0');
  const srv = await serve({ '/net.box': { file: b }, '/hang.box': { hang: true } });
  t.teardown(() => srv.close());
  const nf = await boxsigAsync(['add', `${srv.url}/missing.box`, '--json'], { env: w.env });
  t.equal(nf.code, 3, 'a 404 is a failure, not a refusal');
  t.equal(nf.json.code, 'NETWORK');
  t.match(nf.json.message, /404/);

  const hang = await boxsigAsync(['add', `${srv.url}/hang.box`, '--timeout', '1', '--json'], { env: w.env });
  t.equal(hang.code, 3);
  t.match(hang.json.message, /did not answer in time|timed out/);

  if (requireTool(t, 'openssl', 'openssl')) {
    const tls = selfSigned(w.dir, must);
    const s = await serve({ '/net.box': { file: b } }, tls);
    t.teardown(() => s.close());
    const bad = await boxsigAsync(['add', `${s.url}/net.box`, '--json'], { env: w.env });
    t.equal(bad.code, 3);
    t.match(bad.json.message, /TLS error/);
    const good = await boxsigAsync(['add', `${s.url}/net.box`, '--cacert', tls.certFile, '--json'], { env: w.env });
    t.equal(good.code, 0, good.stderr);
  }

  const px = await proxy();
  t.teardown(() => px.close());
  const viaProxy = await boxsigAsync(['add', `${srv.url}/net.box`, '--force', '--json'], {
    env: { ...w.env, HTTP_PROXY: px.url, http_proxy: px.url, NO_PROXY: '', no_proxy: '' },
  });
  t.equal(viaProxy.code, 0, viaProxy.stderr);
  t.match(px.hits.join('\n'), new RegExp(`net\\.box|CONNECT 127\\.0\\.0\\.1:${srv.port}`), 'the request went through HTTP_PROXY');
});

t.test('ten concurrent adds and ten trust updates lose nothing, past a stale lock', async (t) => {
  const w = world(t);
  const boxes = Array.from({ length: 10 }, (_, i) => w.box(`acme/par-${i}`, `1.0.${i}`));
  // a stale lock left by a killed process (a pid that does not exist) must not block anyone
  fs.mkdirSync(w.env.BOXSIG_HOME!, { recursive: true });
  fs.writeFileSync(
    path.join(w.env.BOXSIG_HOME!, 'trust.lock'),
    JSON.stringify({ pid: 999999, token: 'dead', host: (await import('node:os')).hostname(), time: Date.now() }),
  );
  const pins = Array.from({ length: 10 }, (_, i) => boxsigAsync(['trust', 'pin', `pinned/box-${i}`, w.other.fingerprint, '--json'], { env: w.env }));
  const results = await Promise.all([...boxes.map((b) => boxsigAsync(['add', b, '--json', '--quiet'], { env: w.env })), ...pins]);
  for (const r of results) t.equal(r.code, 0, r.stderr);
  const state = JSON.parse(fs.readFileSync(path.join(w.env.BOXSIG_HOME!, 'trust.json'), 'utf8'));
  const records = trustRecords(w.env.BOXSIG_HOME!);
  t.equal(Object.keys(records).length, 10, 'all ten records are present');
  t.equal(Object.keys(state.pins).length, 10, 'all ten concurrent pins are present');
  for (let i = 0; i < 10; i++) t.same(records[`acme/par-${i}`].keys, [w.key.fingerprint]);
  t.equal(fs.existsSync(path.join(w.env.BOXSIG_HOME!, 'trust.lock')), false, 'the lock is released');
  const list = fs.readdirSync(path.join(w.env.VAGRANT_HOME!, 'boxes'));
  t.equal(list.length, 10);
});

t.test('SIGKILL in the middle of an add leaves no box and no debris a later add trips over', async (t) => {
  const w = world(t);
  // a box of several MiB, killed at several points of its transfer
  const base = makeBox(path.join(w.dir, 'big.box'), { files: { 'disk.img': crypto.randomBytes(6 * 1024 * 1024) } });
  const big = path.join(w.dir, 'big-signed.box');
  t.equal(sign(base, [w.key], ['--name', 'acme/big', '--version', '1.0.0', '-o', big], w.env).code, 0);
  // the server sends the first AT bytes and holds the rest back: every kill lands mid-transfer, at a known point
  const route: Route = { file: big };
  const srv = await serve({ '/big.box': route });
  t.teardown(() => srv.close());
  const home = w.env.VAGRANT_HOME!;
  const staging = (pid: number) => {
    const tmp = path.join(home, 'tmp');
    return fs.existsSync(tmp) && fs.readdirSync(tmp).some((n) => n.startsWith(`boxsig-add-${pid}-`));
  };
  const size = fs.statSync(big).size;
  for (const at of [0, 1, 16 * 1024, 256 * 1024, 1024 * 1024, 3 * 1024 * 1024, 5 * 1024 * 1024, size - 1]) {
    const held = new Promise<void>((resolve) => Object.assign(route, { hold: at, onHold: resolve }));
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [path.join(process.cwd(), 'dist/cli/main.js'), 'add', `${srv.url}/big.box`, '--quiet'], {
      env: w.env,
      stdio: 'ignore',
    });
    const closed = new Promise((r) => child.on('close', r));
    await Promise.race([held, closed]);
    // and the add has its staging directory (it is killed while it is receiving)
    while (!staging(child.pid!) && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await closed;
    t.notOk(fs.existsSync(path.join(home, 'boxes', 'acme-VAGRANTSLASH-big')), `killed after ${at} bytes of the transfer: no partial box`);
    const trustFile = path.join(w.env.BOXSIG_HOME!, 'trust.json');
    if (fs.existsSync(trustFile)) t.doesNotThrow(() => JSON.parse(fs.readFileSync(trustFile, 'utf8')), 'the trust store parses');
  }
  delete route.hold;
  const debris = fs.readdirSync(path.join(home, 'tmp'));
  t.ok(debris.length >= 1, 'the killed adds left staging directories in Vagrant tmp');
  const r = await boxsigAsync(['add', big, '--json'], { env: w.env });
  t.equal(r.code, 0, r.stderr);
  t.same(fs.readdirSync(path.join(home, 'tmp')), [], 'the next add cleaned the stale staging directories');
  t.ok(fs.existsSync(path.join(home, 'boxes', 'acme-VAGRANTSLASH-big', '1.0.0', 'virtualbox', 'disk.img')));
});
