/**
 * The options of `boxsig add` that the Vagrant plugin hands over from
 * Vagrant's add: --policy-json (config.boxsig), --capath and --cert (curl's
 * options), and BOXSIG_HTTP_HEADERS (the headers Vagrant would send: its
 * Vagrant Cloud token, user info of a URL), which go only to the host they are
 * for and never show in the output.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { boxsigAsync, isolatedEnv, makeBox, makeKey, must, requireTool, sign, type KeyFiles } from './helpers.js';
import { selfSigned } from './http-server.js';

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

interface Seen {
  method: string;
  host: string;
  path: string;
  authorization?: string;
  other?: string;
}

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** Serves routes (path -> file or JSON catalog) and records each request's host and auth headers. */
function handler(routes: Map<string, { file?: string; json?: string; redirect?: string }>, seen: Seen[]) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    seen.push({
      method: req.method ?? '',
      host: String(req.headers.host).split(':')[0],
      path: p,
      authorization: req.headers.authorization,
      other: req.headers['x-other'] as string,
    });
    const r = routes.get(p);
    if (!r) {
      res.writeHead(404);
      res.end();
    } else if (r.redirect) {
      res.writeHead(302, { location: r.redirect });
      res.end();
    } else {
      const body = r.file ? fs.readFileSync(r.file) : Buffer.from(r.json ?? '');
      res.writeHead(200, { 'content-type': r.json ? 'application/json' : 'application/octet-stream', 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    }
  };
}

let dir = '';
let env: NodeJS.ProcessEnv = {};
let key: KeyFiles;
let box = '';

t.before(() => {
  dir = fs.mkdtempSync('/tmp/bsg-addopts-');
  env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '', XDG_CONFIG_HOME: path.join(dir, 'xdg') });
  key = makeKey(dir, 'Acme <a@acme.example>', [], env);
  box = path.join(dir, 'web.box');
  const r = sign(makeBox(path.join(dir, 'base.box')), [key], ['--name', 'acme/web', '--version', '1.0', '-o', box], env);
  if (r.code !== 0) throw new Error(r.stderr);
});
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('BOXSIG_HTTP_HEADERS: each header only to its host, dropped on a redirect to another host, never shown', async (t) => {
  const seen: Seen[] = [];
  const routes = new Map<string, { file?: string; json?: string; redirect?: string }>();
  const server = http.createServer(handler(routes, seen));
  const port = await listen(server);
  t.teardown(() => server.close());
  // the catalog is on 127.0.0.1; it names the box on localhost (the same server, another host name)
  routes.set('/acme/web', {
    json: JSON.stringify({
      name: 'acme/web',
      versions: [
        { version: '1.0', providers: [{ name: 'virtualbox', url: `http://localhost:${port}/web.box`, checksum: sha256(box), checksum_type: 'sha256' }] },
      ],
    }),
  });
  routes.set('/web.box', { file: box });
  const headers = JSON.stringify({ '127.0.0.1': ['Authorization: Bearer secret-token', 'X-Other: yes'] });
  const r = await boxsigAsync(['add', `http://127.0.0.1:${port}/acme/web`, '--json'], { env: { ...env, BOXSIG_HTTP_HEADERS: headers } });
  t.equal(r.code, 0, 'added', { output: r.stdout + r.stderr });
  t.same(
    seen.map((s) => `${s.method} ${s.host} ${s.path} ${s.authorization ?? '-'} ${s.other ?? '-'}`),
    ['HEAD 127.0.0.1 /acme/web Bearer secret-token yes', 'GET 127.0.0.1 /acme/web Bearer secret-token yes', 'GET localhost /web.box - -'],
    'the catalog requests carry the headers, the box request on another host does not',
  );
  t.notMatch(r.stdout + r.stderr, /secret-token/, 'the token is not shown');

  // a redirect from the host to another one: fetch drops Authorization
  seen.length = 0;
  routes.set('/moved.box', { redirect: `http://localhost:${port}/web.box` });
  const r2 = await boxsigAsync(['add', `http://127.0.0.1:${port}/moved.box`, '--force', '--json'], { env: { ...env, BOXSIG_HTTP_HEADERS: headers } });
  t.equal(r2.code, 0, 'added through the redirect', { output: r2.stdout + r2.stderr });
  t.same(
    seen.map((s) => `${s.method} ${s.host} ${s.path} ${s.authorization ?? '-'}`),
    ['HEAD 127.0.0.1 /moved.box Bearer secret-token', 'HEAD localhost /web.box -', 'GET 127.0.0.1 /moved.box Bearer secret-token', 'GET localhost /web.box -'],
    'no Authorization after the redirect to another host',
  );
});

t.test('VAGRANT_CLOUD_TOKEN: only to the host of VAGRANT_SERVER_URL, never to another host nor after a redirect to one', async (t) => {
  const seen: Seen[] = [];
  const routes = new Map<string, { file?: string; json?: string; redirect?: string }>();
  const server = http.createServer(handler(routes, seen));
  const port = await listen(server);
  t.teardown(() => server.close());
  // the server is 127.0.0.1; the catalog names the box on localhost (the same server, another host name)
  routes.set('/acme/web', {
    json: JSON.stringify({
      name: 'acme/web',
      versions: [
        { version: '1.0', providers: [{ name: 'virtualbox', url: `http://localhost:${port}/web.box`, checksum: sha256(box), checksum_type: 'sha256' }] },
      ],
    }),
  });
  routes.set('/web.box', { file: box });
  const tokenEnv = { ...env, VAGRANT_SERVER_URL: `http://127.0.0.1:${port}`, VAGRANT_CLOUD_TOKEN: 'cloud-token-secret' };
  const r = await boxsigAsync(['add', 'acme/web', '--force', '--json'], { env: tokenEnv });
  t.equal(r.code, 0, 'added', { output: r.stdout + r.stderr });
  t.same(
    seen.map((s) => `${s.method} ${s.host} ${s.path} ${s.authorization ?? '-'}`),
    [
      'HEAD 127.0.0.1 /acme/web Bearer cloud-token-secret',
      'GET 127.0.0.1 /acme/web Bearer cloud-token-secret',
      // a boxsig registry serves the box's key chain beside the catalog (a plain server answers 404)
      'GET 127.0.0.1 /boxsig/v1/orgs/acme/boxes/web/keys Bearer cloud-token-secret',
      'GET localhost /web.box -',
    ],
    'the catalog requests carry the token (the key chain request too: the same host), the box request on another host does not',
  );
  t.notMatch(r.stdout + r.stderr, /cloud-token-secret/, 'the token is not shown');

  seen.length = 0;
  routes.set('/moved.box', { redirect: `http://localhost:${port}/web.box` });
  const r2 = await boxsigAsync(['add', `http://127.0.0.1:${port}/moved.box`, '--force', '--json'], { env: tokenEnv });
  t.equal(r2.code, 0, 'added through the redirect', { output: r2.stdout + r2.stderr });
  t.same(
    seen.map((s) => `${s.method} ${s.host} ${s.path} ${s.authorization ?? '-'}`),
    [
      'HEAD 127.0.0.1 /moved.box Bearer cloud-token-secret',
      'HEAD localhost /web.box -',
      'GET 127.0.0.1 /moved.box Bearer cloud-token-secret',
      'GET localhost /web.box -',
    ],
    'no token after the redirect to another host',
  );

  seen.length = 0;
  const elsewhere = await boxsigAsync(['add', `http://localhost:${port}/web.box`, '--force', '--json'], { env: tokenEnv });
  t.equal(elsewhere.code, 0, 'a box from another host is added', { output: elsewhere.stdout + elsewhere.stderr });
  t.ok(
    seen.every((s) => s.authorization === undefined),
    'and no request to that host carries the token',
  );

  // the plugin's own header for the host (BOXSIG_HTTP_HEADERS) wins over the token
  seen.length = 0;
  const headers = JSON.stringify({ '127.0.0.1': ['Authorization: Bearer from-the-plugin'] });
  const r3 = await boxsigAsync(['add', 'acme/web', '--force', '--json'], { env: { ...tokenEnv, BOXSIG_HTTP_HEADERS: headers } });
  t.equal(r3.code, 0, { output: r3.stdout + r3.stderr });
  t.same([...new Set(seen.filter((s) => s.host === '127.0.0.1').map((s) => s.authorization))], ['Bearer from-the-plugin'], 'one Authorization: the given one');
});

t.test('a malformed BOXSIG_HTTP_HEADERS is a CONFIG error that does not print the values', async (t) => {
  for (const bad of ['not json', '["a"]', '{"h": "Authorization: x"}', '{"h": ["no colon"]}', '{"h": ["Authorization: se\\ncret"]}', '{"a b": ["X: y"]}']) {
    const r = await boxsigAsync(['add', box, '--json'], { env: { ...env, BOXSIG_HTTP_HEADERS: bad } });
    t.equal(r.code, 2, `${bad}: exit 2`, { output: r.stdout + r.stderr });
    t.equal(r.json?.code, 'CONFIG', `${bad}: CONFIG`);
    t.match(r.json?.message, /^BOXSIG_HTTP_HEADERS: /);
    t.notMatch(r.stdout + r.stderr, /se\\?n?cret|Authorization: x/, `${bad}: the value is not printed`);
  }
});

t.test('--capath and --cert: TLS options of Vagrant (curl)', async (t) => {
  if (!requireTool(t, 'openssl', 'openssl')) return;
  const tls = selfSigned(dir, must);
  const capath = path.join(dir, 'capath');
  fs.mkdirSync(capath);
  fs.copyFileSync(tls.certFile, path.join(capath, 'server.pem'));
  fs.writeFileSync(path.join(capath, 'README'), 'not a certificate');
  // a client certificate signed by a CA the server requires
  const ca = path.join(dir, 'client-ca');
  must('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', '/CN=client CA']);
  const client = path.join(dir, 'client');
  must('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${client}.key`, '-out', `${client}.csr`, '-subj', '/CN=client']);
  must('openssl', [
    'x509',
    '-req',
    '-in',
    `${client}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${client}.crt`,
    '-days',
    '2',
  ]);
  const pem = path.join(dir, 'client.pem');
  fs.writeFileSync(pem, fs.readFileSync(`${client}.crt`, 'utf8') + fs.readFileSync(`${client}.key`, 'utf8'));

  const seen: Seen[] = [];
  const routes = new Map([['/web.box', { file: box }]]);
  const server = https.createServer(
    { key: tls.key, cert: tls.cert, ca: fs.readFileSync(`${ca}.crt`), requestCert: true, rejectUnauthorized: true },
    handler(routes, seen),
  );
  const port = await listen(server);
  t.teardown(() => server.close());
  const url = `https://127.0.0.1:${port}/web.box`;
  const home = (n: string) => ['--vagrant-home', path.join(dir, `vh-${n}`)];

  const none = await boxsigAsync(['add', url, '--json', ...home('none'), '--cert', pem], { env });
  t.equal(none.code, 3, 'the server certificate is not trusted without --capath', { output: none.stdout });
  t.match(none.json?.message, /TLS error/);
  const noCert = await boxsigAsync(['add', url, '--json', ...home('nocert'), '--capath', capath], { env });
  t.equal(noCert.code, 3, 'the server wants a client certificate', { output: noCert.stdout });
  const ok = await boxsigAsync(['add', url, '--json', ...home('ok'), '--capath', capath, '--cert', pem], { env });
  t.equal(ok.code, 0, '--capath and --cert together', { output: ok.stdout + ok.stderr });
  const missing = await boxsigAsync(['add', url, '--json', ...home('missing'), '--capath', path.join(dir, 'nope')], { env });
  t.equal(missing.code, 2, 'a --capath that does not exist is a usage error', { output: missing.stdout });
  t.match(missing.json?.message, /--capath/);
});

t.test('--policy-json: the Vagrantfile layer applies to add as to verify', async (t) => {
  const other = makeKey(dir, 'Other <o@acme.example>', [], env);
  const policy = JSON.stringify({ boxes: { 'acme/*': { pin: [other.fingerprint] } } });
  const r = await boxsigAsync(['add', box, '--json', '--vagrant-home', path.join(dir, 'vh-policy'), '--policy-json', policy], { env });
  t.equal(r.code, 1, 'refused', { output: r.stdout + r.stderr });
  // acme/ is recorded (trust on first use) by the adds above: a project layer's pin does not replace the record (a key change)
  t.equal(r.json?.code, 'KEY_CHANGED');
  t.match(r.json?.message, /Vagrantfile \(config\.boxsig\)/, 'the layer is named');
  const bad = await boxsigAsync(['add', box, '--json', '--policy-json', '{"boxes": 1}'], { env });
  t.equal(bad.code, 2, 'an invalid layer is a configuration error');
  t.equal(bad.json?.code, 'CONFIG');
});
