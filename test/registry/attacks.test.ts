/**
 * The registry under attack: classes an outside tester found, each written
 * as the attack (real registry processes, real boxes and keys, the HTTP API
 * and the CLI) — judgement at the moment of publication, credentials revoked
 * during an upload, names that differ only in case, client values that
 * cannot be converted to text, anonymous bodies and slow clients, the
 * catalog cache keyed by the Host header, shutdown with open connections.
 */
import t from 'tap';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { boxsig, pseudoRandom } from '../helpers.js';
import { BoxsigError } from '../../src/errors.js';
import { errorBody } from '../../src/registry/http.js';
import { engines, reportUnavailable, stopEngines } from './engines.js';
import { box, catalog, createOrg, key, mustAdmin, newLab, publish, slowPut, startRegistry, token, until, type Lab } from './lab.js';

const all = engines('all');
const embedded = all.available.find((e) => e.name === 'embedded')!;
t.teardown(stopEngines);
reportUnavailable(t, all.unavailable);

async function setup(t: any, env: NodeJS.ProcessEnv = {}): Promise<{ lab: Lab; url: string; reg: Awaited<ReturnType<typeof startRegistry>> }> {
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir), env);
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  return { lab, url: reg.url, reg };
}

/** One call of the Vagrant Cloud API. */
async function api(url: string, tok: string | null, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/api/v1${p}`, {
    method,
    headers: { ...(tok ? { authorization: `Bearer ${tok}` } : {}), 'content-type': 'application/json' },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, json };
}

const release = (url: string, tok: string, name: string, version: string) => api(url, tok, 'PUT', `/box/${name}/version/${version}/release`);
const versionsIn = async (url: string, name: string) => ((await catalog(url, name))?.versions ?? []).map((v: any) => v.version);

function revocation(lab: Lab, k: { secret: string }, reason = 'compromised'): string {
  const out = path.join(lab.dir, `rev-${Math.random().toString(36).slice(2)}.asc`);
  const r = boxsig(['key', 'revoke', '--key', k.secret, '--reason', reason, '-o', out], { env: lab.env });
  if (r.code !== 0) throw new Error(r.stderr);
  return out;
}

function setPolicy(lab: Lab, org: string, policy: unknown): void {
  const file = path.join(lab.dir, `policy-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(policy));
  mustAdmin(lab, ['org', 'policy', org, '--policy', file]);
}

t.test('trust is judged at the moment of publication: a release after a revocation or a policy change is refused', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const ci = key(lab, 'CI <ci@acme.example>');
  t.equal((await publish(lab, url, pub, box(lab, [ci], 'acme/ubuntu', '1.0.0'), ['--release'])).code, 0, '1.0.0 released (first use of ci)');
  t.equal((await publish(lab, url, pub, box(lab, [ci], 'acme/ubuntu', '2.0.0'))).code, 0, '2.0.0 uploaded, not released');
  mustAdmin(lab, ['org', 'key', 'acme', revocation(lab, ci)]);
  const r = await release(url, pub, 'acme/ubuntu', '2.0.0');
  t.equal(r.status, 422, 'the release is refused', { r });
  t.match(r.json.errors?.[0], /^KEY_REVOKED: /, 'with the code of the upload check');
  t.match(r.json.errors?.[0], /acme\/ubuntu 2\.0\.0 virtualbox/, 'naming the provider');
  t.same(await versionsIn(url, 'acme/ubuntu'), ['1.0.0'], 'the catalog does not serve 2.0.0');
  const again = await release(url, pub, 'acme/ubuntu', '2.0.0');
  t.equal(again.status, 422, 'and stays refused');

  // a policy change between upload and release: the pin now names another key
  createOrg(lab, 'pol');
  const pub2 = token(lab, 'pol', 'publish');
  const a = key(lab, 'A <a@pol.example>');
  const b = key(lab, 'B <b@pol.example>');
  t.equal((await publish(lab, url, pub2, box(lab, [a], 'pol/app', '1.0.0'))).code, 0, 'uploaded while any key was trusted on first use');
  setPolicy(lab, 'pol', { boxes: { 'pol/app': { pin: [b.fingerprint] } } });
  const p = await release(url, pub2, 'pol/app', '1.0.0');
  t.match(p.json.errors?.[0], /^UNTRUSTED_KEY: /, 'the pinned key did not sign it: refused at release');
  t.same(await versionsIn(url, 'pol/app'), [], 'nothing is published');
  setPolicy(lab, 'pol', { boxes: { 'pol/app': { pin: [a.fingerprint], claims: { builder: 'ci-prod' } } } });
  t.match((await release(url, pub2, 'pol/app', '1.0.0')).json.errors?.[0], /^CLAIM_MISMATCH: /, 'a required claim added since: refused');
  setPolicy(lab, 'pol', { boxes: { 'pol/app': { pin: [a.fingerprint] } } });
  t.equal((await release(url, pub2, 'pol/app', '1.0.0')).status, 200, 'released once the policy allows it');
  t.same(await versionsIn(url, 'pol/app'), ['1.0.0']);

  // unsigned, allowed when uploaded; the policy requires signatures by the release
  createOrg(lab, 'loose', { boxes: { 'loose/*': { signatures: 'optional' } } });
  const pub3 = token(lab, 'loose', 'publish');
  const up = await api(url, pub3, 'POST', '/boxes', { box: { username: 'loose', name: 'old' } });
  t.equal(up.status, 200);
  await api(url, pub3, 'POST', '/box/loose/old/versions', { version: { version: '1.0.0' } });
  await api(url, pub3, 'POST', '/box/loose/old/version/1.0.0/providers', { provider: { name: 'virtualbox' } });
  const u = await api(url, pub3, 'GET', '/box/loose/old/version/1.0.0/provider/virtualbox/upload');
  const put = await fetch(u.json.upload_path, { method: 'PUT', body: fs.readFileSync(box(lab, [], 'loose/old', '1.0.0')) });
  t.equal(put.status, 200, 'an unsigned box is accepted under signatures: optional');
  setPolicy(lab, 'loose', {});
  t.match((await release(url, pub3, 'loose/old', '1.0.0')).json.errors?.[0], /^UNSIGNED: /, 'signatures required since: refused at release');
});

t.test('a provider added to a released version is judged when it is published, not when its upload began', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const ci = key(lab, 'CI <ci@acme.example>');
  t.equal((await publish(lab, url, pub, box(lab, [ci], 'acme/ubuntu', '1.0.0'), ['--release'])).code, 0);
  const big = box(lab, [ci], 'acme/ubuntu', '1.0.0', { provider: 'libvirt', files: { 'disk.img': pseudoRandom(6 * 1024 * 1024, 7) } });
  t.equal((await api(url, pub, 'POST', '/box/acme/ubuntu/version/1.0.0/providers', { provider: { name: 'libvirt' } })).status, 200);
  const up = await api(url, pub, 'GET', '/box/acme/ubuntu/version/1.0.0/provider/libvirt/upload');
  const put = slowPut(up.json.upload_path, big, 2 * 1024 * 1024);
  await until(async () => (await lab.inst.query(`SELECT 1 FROM uploads WHERE state = 'receiving'`)).length > 0 && put.sent() >= 2 * 1024 * 1024);
  mustAdmin(lab, ['org', 'key', 'acme', revocation(lab, ci)]);
  put.release();
  const res = (await put.response) as { status: number; json: any };
  t.equal(res.status, 422, 'the upload is refused', { res });
  t.match(res.json.errors?.[0], /^KEY_REVOKED: /);
  const providers = (await catalog(url, 'acme/ubuntu')).versions[0].providers.map((p: any) => p.name);
  t.same(providers, ['virtualbox'], 'the libvirt box is not published');
});

t.test('one spelling per name: upper-case org and box names, and policy globs that could never match, are refused', async (t) => {
  const { lab, url } = await setup(t);
  const ci = key(lab, 'CI <ci@acme.example>');
  const evil = key(lab, 'Evil <evil@x.example>');
  createOrg(lab, 'acme', { boxes: { 'acme/ubuntu': { pin: [ci.fingerprint] }, 'acme/prod-*': { claims: { builder: 'ci-prod' } } } });
  const pub = token(lab, 'acme', 'publish');
  for (const name of ['Ubuntu', 'PROD-web', 'prod-Web']) {
    const r = await api(url, pub, 'POST', '/boxes', { box: { username: 'acme', name } });
    t.equal(r.status, 400, `box ${name}: refused`);
    t.match(r.json.errors?.[0], /^USAGE: box name "acme\/\S+" has upper-case letters: names are lower case at this registry/);
  }
  const p = await publish(lab, url, pub, box(lab, [evil], 'acme/PROD-web', '1.0.0'), ['--release']);
  t.not(p.code, 0, 'boxsig publish of acme/PROD-web fails');
  t.equal((await fetch(`${url}/acme/prod-web`)).status, 404, 'nothing is served at /acme/prod-web');
  const wrongCase = await publish(lab, url, pub, box(lab, [ci], 'acme/Ubuntu', '1.0.0'));
  t.not(wrongCase.code, 0, 'a box signed as acme/Ubuntu is refused');
  const r = boxsig(['registry', 'org', 'create', 'Acme2', ...lab.inst.flags, '--json'], { env: lab.env });
  t.equal(r.json?.code, 'USAGE', 'an upper-case org name is refused');
  const file = path.join(lab.dir, 'upper-policy.json');
  fs.writeFileSync(file, JSON.stringify({ boxes: { 'acme/Ubuntu': { pin: [ci.fingerprint] } } }));
  const pol = boxsig(['registry', 'org', 'policy', 'acme', '--policy', file, ...lab.inst.flags, '--json'], { env: lab.env });
  t.equal(pol.json?.code, 'CONFIG', 'a policy glob with upper-case letters is refused');
  t.match(pol.json?.message, /"acme\/Ubuntu" has upper-case letters/);
  const good = await publish(lab, url, pub, box(lab, [ci], 'acme/ubuntu', '1.0.0'), ['--release']);
  t.equal(good.code, 0, 'the lower-case name works', { out: good.stdout });
  t.same(await versionsIn(url, 'ACME/Ubuntu'), ['1.0.0'], 'any spelling in a path finds the one box');
});

t.test('a revoked token publishes nothing: not an upload it started, not a box it uploaded before a release', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'acme');
  const ci = key(lab, 'CI <ci@acme.example>');
  const owner = token(lab, 'acme', 'publish', 'owner');
  const thief = mustAdmin(lab, ['token', 'create', '--org', 'acme', '--role', 'publish', '--member', 'thief']);
  const revoke = () => mustAdmin(lab, ['token', 'revoke', thief.id]);
  t.equal((await publish(lab, url, owner, box(lab, [ci], 'acme/ubuntu', '1.0.0'), ['--release'])).code, 0);

  // mid-upload: a new provider of the released version
  const big = box(lab, [ci], 'acme/ubuntu', '1.0.0', { provider: 'libvirt', files: { 'disk.img': pseudoRandom(6 * 1024 * 1024, 8) } });
  t.equal((await api(url, thief.token, 'POST', '/box/acme/ubuntu/version/1.0.0/providers', { provider: { name: 'libvirt' } })).status, 200);
  const up = await api(url, thief.token, 'GET', '/box/acme/ubuntu/version/1.0.0/provider/libvirt/upload');
  const put = slowPut(up.json.upload_path, big, 2 * 1024 * 1024);
  await until(async () => (await lab.inst.query(`SELECT 1 FROM uploads WHERE state = 'receiving'`)).length > 0 && put.sent() >= 2 * 1024 * 1024);
  const before = await lab.inst.objects();
  revoke();
  put.release();
  const res = (await put.response) as { status: number; json: any };
  t.equal(res.status, 403, 'the upload is refused at its commit', { res });
  t.match(res.json.errors?.[0], /^DENIED: the token that asked for this upload URL was revoked/);
  t.same(
    ((await catalog(url, 'acme/ubuntu')).versions[0].providers as any[]).map((p) => p.name),
    ['virtualbox'],
    'nothing new in the catalog',
  );
  t.ok((await lab.inst.objects()).length < before.length, 'its object is discarded');

  // uploaded before the revocation, released after it by another token
  const thief2 = mustAdmin(lab, ['token', 'create', '--org', 'acme', '--role', 'publish', '--member', 'thief2']);
  t.equal((await publish(lab, url, thief2.token, box(lab, [ci], 'acme/ubuntu', '2.0.0'))).code, 0, 'uploaded, not released');
  mustAdmin(lab, ['token', 'revoke', thief2.id]);
  const rel = await release(url, owner, 'acme/ubuntu', '2.0.0');
  t.equal(rel.status, 403, 'the release is refused', { rel });
  t.match(rel.json.errors?.[0], /^DENIED: acme\/ubuntu 2\.0\.0 virtualbox was uploaded with a token that has since been revoked/);
  t.same(await versionsIn(url, 'acme/ubuntu'), ['1.0.0']);
});

for (const engine of all.available.filter((e) => e.name !== 'postgres+s3')) {
  t.test(`${engine.name}: client text reaches no query and no conversion unchecked; server errors carry no internals`, async (t) => {
    const dir = t.testdir({});
    const inst = await engine.create(dir);
    t.teardown(() => inst.close());
    const lab = newLab(dir, inst);
    createOrg(lab, 'acme');
    const pub = token(lab, 'acme', 'publish');
    const reg = await startRegistry(lab);
    t.teardown(() => reg.stop());
    const url = reg.url;
    t.equal((await api(url, pub, 'POST', '/boxes', { box: { username: 'acme', name: 'app' } })).status, 200);
    t.equal((await api(url, pub, 'POST', '/box/acme/app/versions', { version: { version: '1.0.0' } })).status, 200);
    const unconvertible: Array<[string, string, unknown]> = [
      ['POST', '/boxes', { box: { username: 'acme', name: { toString: 1 } } }],
      ['POST', '/boxes', { box: { username: 'acme', name: { toString: 'x', valueOf: 1 } } }],
      ['POST', '/box/acme/app/versions', { version: { version: { toString: 'x' } } }],
      ['PUT', '/box/acme/app/version/1.0.0', { version: { version: { toString: 1 } } }],
      ['POST', '/box/acme/app/version/1.0.0/providers', { provider: { name: 'virtualbox', checksum: { toString: 1 } } }],
      ['POST', '/box/acme/app/version/1.0.0/providers', { provider: { name: { toString: 1 } } }],
      ['POST', '/box/acme/app/version/1.0.0/providers', { provider: { name: 'virtualbox', architecture: [{ toString: 1 }] } }],
      ['POST', '/box/acme/app/version/1.0.0/providers', { provider: { name: 'virtualbox', checksum_type: { toString: 1 }, checksum: 'ab'.repeat(32) } }],
    ];
    for (const [method, p, body] of unconvertible) {
      const r = await api(url, pub, method, p, body);
      t.equal(r.status, 400, `${method} ${p} ${JSON.stringify(body)}: 400`, { r });
      t.match(r.json.errors?.[0], /^USAGE: /);
    }
    const paths = [
      '/%00/app',
      '/acme/app%00',
      '/api/v1/user/%00',
      '/api/v1/box/acme/%00',
      '/boxsig/v1/orgs/%00/keys',
      '/acme/boxes/x%00/versions/1/providers/vb/vagrant.box',
    ];
    for (const p of paths) {
      const res = await fetch(`${url}${p}`);
      const text = await res.text();
      t.equal(res.status, 404, `${p}: 404`, { text });
      t.notMatch(text, /postgres|sqlite|IO:|INTERNAL/i, `${p}: nothing of the engine in the answer`);
    }
    const nul = await api(url, pub, 'POST', '/boxes', { box: { username: 'acme\u0000', name: 'x' } });
    t.equal(nul.status, 404, 'an org name with NUL in a body: 404', { nul });
    const io = errorBody(new BoxsigError('IO', 'PostgreSQL postgresql://boxsig:***@db.internal:5432/reg: connection refused'));
    t.notMatch(io.errors[0], /postgres|db\.internal/i, 'an engine failure is answered without the engine');
  });
}

t.test('a key trusted by rotation loses that trust when the key that vouched for it is revoked as compromised', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const k1 = key(lab, 'K1 <k1@acme.example>');
  const k2 = key(lab, 'Thief <k2@evil.example>');
  t.equal((await publish(lab, url, pub, box(lab, [k1], 'acme/ubuntu', '1.0.0'), ['--release'])).code, 0, 'k1 recorded on first use');
  t.equal((await publish(lab, url, pub, box(lab, [k1, k2], 'acme/ubuntu', '1.0.1'))).code, 0, 'k2 added by a co-signature with the stolen k1');
  t.equal((await api(url, pub, 'DELETE', '/box/acme/ubuntu/version/1.0.1')).status, 200, 'the unreleased version is deleted');
  mustAdmin(lab, ['org', 'key', 'acme', revocation(lab, k1)]);
  const r = await publish(lab, url, pub, box(lab, [k2], 'acme/ubuntu', '3.0.0'), ['--release']);
  t.equal(r.json?.code, 'KEY_CHANGED', 'k2 alone is no longer trusted', { out: r.stdout });
  t.same(await versionsIn(url, 'acme/ubuntu'), ['1.0.0']);

  // a rotation done right: the old key is retired as superseded after the new one was recorded
  createOrg(lab, 'good');
  const pub2 = token(lab, 'good', 'publish');
  const old = key(lab, 'Old <old@good.example>');
  const next = key(lab, 'New <new@good.example>');
  t.equal((await publish(lab, url, pub2, box(lab, [old], 'good/app', '1.0.0'), ['--release'])).code, 0);
  t.equal((await publish(lab, url, pub2, box(lab, [old, next], 'good/app', '1.1.0'), ['--release'])).code, 0, 'rotation by co-signature');
  mustAdmin(lab, ['org', 'key', 'good', revocation(lab, old, 'superseded')]);
  const ok = await publish(lab, url, pub2, box(lab, [next], 'good/app', '1.2.0'), ['--release']);
  t.equal(ok.code, 0, 'the new key keeps its trust after the old one is superseded', { out: ok.stdout });
});

/** A raw HTTP/1.1 request whose body is sent only in part; resolves with what the server answered and whether it closed. */
function partialRequest(url: string, head: string, bodyStart: string): { answer: Promise<string>; closed: Promise<void>; socket: net.Socket } {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  let text = '';
  let gotAnswer!: (s: string) => void;
  const answer = new Promise<string>((r) => (gotAnswer = r));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('data', (d) => {
    text += d;
    if (/\r\n\r\n/.test(text)) gotAnswer(text);
  });
  socket.on('error', () => undefined);
  socket.once('close', () => gotAnswer(text));
  socket.write(`${head}\r\n\r\n${bodyStart}`);
  return { answer, closed, socket };
}

t.test('request bodies: no body is read before authentication, and an unfinished one is dropped', async (t) => {
  const { lab, url } = await setup(t, { BOXSIG_REGISTRY_REQUEST_BODY_SECONDS: '2' });
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const anon = partialRequest(
    url,
    'POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048476',
    `{"a":"${'x'.repeat(60_000)}`,
  );
  t.teardown(() => anon.socket.destroy());
  const a = await anon.answer;
  t.match(a, /^HTTP\/1\.1 401 /, 'an anonymous write is answered 401 before its body is read', { a });
  t.match(a, /DENIED: /);
  await anon.closed;
  t.pass('and its connection is closed');
  const bad = partialRequest(
    url,
    `PUT /api/v1/box/acme/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer boxsig_${'x'.repeat(43)}\r\nContent-Type: application/json\r\nContent-Length: 5000`,
    '{"a":',
  );
  t.teardown(() => bad.socket.destroy());
  t.match(await bad.answer, /^HTTP\/1\.1 401 /, 'an invalid token too');

  const asJson = partialRequest(
    url,
    `PUT /api/v1/upload/${'A'.repeat(43)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048476`,
    `{"a":"${'x'.repeat(60_000)}`,
  );
  t.teardown(() => asJson.socket.destroy());
  t.match(await asJson.answer, /^HTTP\/1\.1 404 /, 'an upload URL with a JSON content type: its body is not buffered, the unknown URL is answered');
  await asJson.closed;
  const slow = partialRequest(
    url,
    `POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${pub}\r\nContent-Type: application/json\r\nContent-Length: 100`,
    '{"a":',
  );
  t.teardown(() => slow.socket.destroy());
  const trickle = setInterval(() => slow.socket.write(' '), 500);
  t.teardown(() => clearInterval(trickle));
  await slow.closed;
  clearInterval(trickle);
  t.pass('an authenticated body that does not arrive within the request deadline is dropped, even while it trickles');
  const ok = await api(url, pub, 'POST', '/boxes', { box: { username: 'acme', name: 'app' } });
  t.equal(ok.status, 200, 'ordinary requests work');
});

t.test('shutdown ends every connection after the grace period: an unfinished request does not keep the process alive', async (t) => {
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir), { BOXSIG_REGISTRY_SHUTDOWN_GRACE_SECONDS: '1', BOXSIG_REGISTRY_REQUEST_BODY_SECONDS: '3600' });
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop('SIGKILL'));
  const held = partialRequest(
    reg.url,
    `POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${pub}\r\nContent-Type: application/json\r\nContent-Length: 100`,
    '{"a":',
  );
  t.teardown(() => held.socket.destroy());
  const trickle = setInterval(() => held.socket.write(' '), 500);
  t.teardown(() => clearInterval(trickle));
  await new Promise((r) => setTimeout(r, 500));
  reg.proc.kill('SIGTERM');
  t.equal(await reg.exited, 0, 'the process exits 0');
  await held.closed;
  t.pass('the connection was closed');
});

/** The registry process's resident memory (kB). */
function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** GET a path with a given Host header on a keep-alive agent. */
function getWithHost(agent: http.Agent, url: string, p: string, host: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: u.hostname, port: u.port, path: p, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the catalog cache holds one catalog per box, whatever the Host headers clients send', async (t) => {
  const { lab, url, reg } = await setup(t);
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const k = key(lab);
  const long = '€'.repeat(10_000);
  t.equal((await api(url, pub, 'POST', '/boxes', { box: { username: 'acme', name: 'app', description: long } })).status, 200);
  for (const v of ['1.0.0', '1.1.0']) {
    t.equal((await api(url, pub, 'POST', '/box/acme/app/versions', { version: { version: v, description: long } })).status, 200);
    t.equal((await publish(lab, url, pub, box(lab, [k], 'acme/app', v), ['--release'])).code, 0);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  const first = JSON.parse(await getWithHost(agent, url, '/acme/app', 'h0.example'));
  t.match(first.versions[0].providers[0].url, /^http:\/\/h0\.example\/acme\/boxes\/app\//, 'URLs follow the Host header');
  const odd = JSON.parse(await getWithHost(agent, url, '/acme/app', 'x"y.example'));
  t.ok(odd.versions.length === 2, 'a Host header with a quote cannot break the JSON');
  const before = rssKb(reg.proc.pid!);
  for (let i = 1; i <= 3000; i += 20) {
    const batch = [];
    for (let j = i; j < i + 20; j++) batch.push(getWithHost(agent, url, '/acme/app', `h${j}.example`));
    const texts = await Promise.all(batch);
    if (i === 1) t.match(JSON.parse(texts[5]).versions[0].providers[0].url, /^http:\/\/h6\.example\//);
  }
  const growth = (rssKb(reg.proc.pid!) - before) / 1024;
  t.ok(growth < 100, `3000 Host values: the registry grew by ${growth.toFixed(0)} MiB (a copy per Host value grew it by ~180 MiB)`);
});

t.test('upload sessions are bounded per token: a provider keeps as many as the token may upload at once, and open ones are limited', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  t.equal((await api(url, pub, 'POST', '/boxes', { box: { username: 'acme', name: 'app' } })).status, 200);
  t.equal((await api(url, pub, 'POST', '/box/acme/app/versions', { version: { version: '1.0.0' } })).status, 200);
  t.equal((await api(url, pub, 'POST', '/box/acme/app/version/1.0.0/providers', { provider: { name: 'virtualbox' } })).status, 200);
  let last: any;
  for (let i = 0; i < 200; i++) last = await api(url, pub, 'GET', '/box/acme/app/version/1.0.0/provider/virtualbox/upload');
  t.equal(last.status, 200);
  const rows = await lab.inst.query<{ n: number }>('SELECT COUNT(*) AS n FROM uploads');
  t.equal(Number(rows[0].n), 4, '200 requests for an upload URL of one provider leave 4 sessions (the uploads a token may have in flight)');
  const put = await fetch(last.json.upload_path, { method: 'PUT', body: fs.readFileSync(box(lab, [key(lab)], 'acme/app', '1.0.0')) });
  t.equal(put.status, 200, 'the newest upload URL works');
  let limited: any = null;
  for (let i = 0; i < 120 && !limited; i++) {
    await api(url, pub, 'POST', '/box/acme/app/version/1.0.0/providers', { provider: { name: `p${i}` } });
    const r = await api(url, pub, 'GET', `/box/acme/app/version/1.0.0/provider/p${i}/upload`);
    if (r.status !== 200) limited = r;
  }
  t.equal(limited?.status, 429, 'open upload sessions per token are limited');
  t.match(limited?.json.errors?.[0], /^LIMIT: this token has 100 upload URLs waiting for an upload/);
});

t.test('a private box is, to whoever may not read it, a box that does not exist', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'other');
  createOrg(lab, 'acme');
  mustAdmin(lab, ['box', 'create', 'acme/secret-project', '--private']);
  const otherAdmin = token(lab, 'other', 'admin');
  const reader = token(lab, 'acme', 'read');
  for (const tok of [null, otherAdmin]) {
    for (const p of ['/acme/secret-project', '/api/v1/box/acme/secret-project']) {
      const priv = await fetch(`${url}${p}`, { headers: tok ? { authorization: `Bearer ${tok}` } : {} });
      const missing = await fetch(`${url}${p.replace('secret-project', 'no-such-box')}`, { headers: tok ? { authorization: `Bearer ${tok}` } : {} });
      const a = ((await priv.json()) as any).errors[0].replace('secret-project', 'X');
      const b = ((await missing.json()) as any).errors[0].replace('no-such-box', 'X');
      t.equal(priv.status, missing.status, `${p} ${tok ? "with another org's token" : 'anonymous'}: same status as a missing box`);
      t.equal(a, b, 'and the same message');
    }
    const del = await api(url, tok, 'DELETE', '/box/acme/secret-project');
    t.equal(del.status, tok ? 404 : 401, 'a write: 404 with a token of another org (401 without a token, as for any write)');
  }
  t.equal((await fetch(`${url}/acme/secret-project`, { headers: { authorization: `Bearer ${reader}` } })).status, 200, 'a reader of the org sees it');
});

t.test('a released version’s catalog flags are immutable: a new provider cannot take the default architecture', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  t.equal((await publish(lab, url, pub, box(lab, [key(lab)], 'acme/app', '1.0.0', { metadata: { architecture: 'amd64' } }), ['--release'])).code, 0);
  const flags = async () => (await catalog(url, 'acme/app')).versions[0].providers.map((p: any) => [p.architecture, p.default_architecture]);
  t.same(await flags(), [['amd64', true]]);
  const take = await api(url, pub, 'POST', '/box/acme/app/version/1.0.0/providers', {
    provider: { name: 'virtualbox', architecture: 'arm64', default_architecture: true },
  });
  t.equal(take.status, 409, 'taking the default of a released version: refused', { take });
  t.same(await flags(), [['amd64', true]]);
  const add = await api(url, pub, 'POST', '/box/acme/app/version/1.0.0/providers', { provider: { name: 'virtualbox', architecture: 'arm64' } });
  t.equal(add.status, 200, 'adding another architecture is allowed');
  t.equal(add.json.default_architecture, false, 'not as the default');
  t.equal((await api(url, pub, 'DELETE', '/box/acme/app/version/1.0.0/provider/virtualbox/arm64')).status, 200);
  t.same(await flags(), [['amd64', true]], 'the released default is unchanged');
});
