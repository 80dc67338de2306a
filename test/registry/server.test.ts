/**
 * `boxsig registry serve` as a process: health and readiness, structured
 * logs without secrets, graceful shutdown (an upload in flight finishes, or
 * is discarded after the grace period — never half published), limits (box
 * size, uploads in flight per token), errors in the clients' shape, and
 * configuration errors.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, pseudoRandom } from '../helpers.js';
import { engines } from './engines.js';
import { box, catalog, createOrg, getJson, key, newLab, publish, slowPut, startRegistry, token, until, uploadUrl, type Lab } from './lab.js';

const embedded = engines('all').available.find((e) => e.name === 'embedded')!;

async function setup(t: any, env: NodeJS.ProcessEnv = {}): Promise<Lab> {
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir), env);
  createOrg(lab, 'acme');
  return lab;
}

const bigBox = (lab: Lab, version: string) => box(lab, [key(lab)], 'acme/app', version, { files: { 'disk.vmdk': pseudoRandom(6 * 1024 * 1024, 5) } });

t.test('health, readiness, JSON logs without secrets, errors in the clients’ shape', async (t) => {
  const lab = await setup(t);
  const pub = token(lab, 'acme', 'publish');
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  t.same((await getJson(`${reg.url}/healthz`)).json, { ok: true });
  t.equal((await getJson(`${reg.url}/readyz`)).status, 200);
  const p = await publish(lab, reg.url, pub, box(lab, [key(lab)], 'acme/app', '1.0.0'), ['--release']);
  t.equal(p.code, 0);

  const bad = await getJson(`${reg.url}/api/v1/authenticate`, 'boxsig_' + 'x'.repeat(43));
  t.equal(bad.status, 401);
  t.match(bad.json.errors[0], /^DENIED: the token is not valid/);
  const unknown = await getJson(`${reg.url}/api/v1/nothing/here`);
  t.equal(unknown.status, 404);
  t.match(unknown.json.errors[0], /^NOT_FOUND: /);
  const malformed = await fetch(`${reg.url}/api/v1/boxes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${pub}`, 'content-type': 'application/json' },
    body: '{"box": ',
  });
  t.equal(malformed.status, 422);
  t.match(((await malformed.json()) as any).errors[0], /^MALFORMED: the request body is not valid JSON/);
  const proto = await fetch(`${reg.url}/api/v1/boxes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${pub}`, 'content-type': 'application/json' },
    body: '{"box": {"username": "acme", "name": "constructor", "__proto__": {"private": true}}}',
  });
  t.equal(proto.status, 200, 'a box named constructor is an ordinary box');
  t.equal(((await proto.json()) as any).private, false, '__proto__ in a body changes nothing');

  await reg.stop();
  const lines = reg.log().trim().split('\n');
  t.ok(lines.length > 5);
  for (const l of lines) {
    const v = JSON.parse(l);
    t.ok(typeof v.level === 'number' && typeof v.time === 'number' && typeof v.msg === 'string', 'every log line is a JSON record');
  }
  t.match(reg.log(), /"url":"\/api\/v1\/upload\/…"/, 'upload URLs are logged without their secret');
  t.notMatch(reg.log(), pub, 'no token in the log');
  t.notMatch(reg.log(), /upload\/[A-Za-z0-9_-]{43}/, 'no upload secret in the log');
});

t.test('graceful shutdown lets an upload in flight finish', async (t) => {
  const lab = await setup(t);
  const pub = token(lab, 'acme', 'publish');
  const reg = await startRegistry(lab);
  const file = bigBox(lab, '1.0.0');
  const up = await uploadUrl(reg.url, pub, 'acme/app', '1.0.0');
  const put = slowPut(up.upload_path, file, 2 * 1024 * 1024);
  await until(async () => (await lab.inst.query(`SELECT 1 FROM uploads WHERE state = 'receiving'`)).length > 0 && put.sent() >= 2 * 1024 * 1024);
  reg.proc.kill('SIGTERM');
  await until(() => /shutting down/.test(reg.log()));
  t.not((await fetch(`${reg.url}/readyz`).catch(() => null))?.status, 200, 'not ready while shutting down');
  put.release();
  const res = await put.response;
  t.equal((res as any).status, 200, 'the upload in flight finishes', { res });
  t.equal(await reg.exited, 0, 'the process exits 0');
  const again = await startRegistry(lab);
  t.teardown(() => again.stop());
  const prov = await getJson(`${again.url}/api/v1/box/acme/app/version/1.0.0/provider/virtualbox`, pub);
  t.equal(prov.json.uploaded, true, 'the box is published');
});

t.test('graceful shutdown discards an upload that does not finish in the grace period', async (t) => {
  const lab = await setup(t, { BOXSIG_REGISTRY_SHUTDOWN_GRACE_SECONDS: '1' });
  const pub = token(lab, 'acme', 'publish');
  const reg = await startRegistry(lab);
  const file = bigBox(lab, '1.0.0');
  const before = await lab.inst.objects();
  const up = await uploadUrl(reg.url, pub, 'acme/app', '1.0.0');
  const put = slowPut(up.upload_path, file, 2 * 1024 * 1024);
  await until(async () => (await lab.inst.query(`SELECT 1 FROM uploads WHERE state = 'receiving'`)).length > 0 && put.sent() >= 2 * 1024 * 1024);
  // the server creates the object with the first bytes it reads, which may come after the client sent them
  await until(async () => (await lab.inst.objects()).length === before.length + 1);
  t.pass('an object is being written');
  reg.proc.kill('SIGTERM');
  t.equal(await reg.exited, 0, 'the process exits 0 after the grace period');
  put.release();
  const res = await put.response;
  t.ok(res instanceof Error || res.status === 503, 'the client is told the upload did not go through', { res });
  t.same(await lab.inst.objects(), before, 'no object is left');
  const rows = await lab.inst.query<{ state: string; code: string }>('SELECT state, code FROM uploads');
  t.same(rows, [{ state: 'failed', code: 'UNAVAILABLE' }], 'the upload is recorded as failed');
  const again = await startRegistry(lab);
  t.teardown(() => again.stop());
  const prov = await getJson(`${again.url}/api/v1/box/acme/app/version/1.0.0/provider/virtualbox`, pub);
  t.equal(prov.json.uploaded, false, 'nothing is published');
  const p = await publish(lab, again.url, pub, file, ['--release']);
  t.equal(p.code, 0, 'the next publish works', { out: p.stderr });
});

t.test('limits: box size, uploads in flight per token', async (t) => {
  const lab = await setup(t, { BOXSIG_REGISTRY_MAX_BOX_BYTES: '4M', BOXSIG_REGISTRY_UPLOADS_PER_TOKEN: '1' });
  const pub = token(lab, 'acme', 'publish', 'one');
  const pub2 = token(lab, 'acme', 'publish', 'two');
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  const before = await lab.inst.objects();
  const tooBig = await publish(lab, reg.url, pub, bigBox(lab, '1.0.0'));
  t.equal(tooBig.json?.code, 'LIMIT', 'a box over the size limit is refused with LIMIT', { out: tooBig.stdout, err: tooBig.stderr });
  t.match(tooBig.json?.message, /larger than this registry accepts \(4194304 bytes\)/);
  t.same(await lab.inst.objects(), before, 'nothing of it is stored');

  const small = box(lab, [key(lab)], 'acme/app', '2.0.0');
  const up = await uploadUrl(reg.url, pub, 'acme/app', '2.0.0');
  const held = slowPut(up.upload_path, bigBox(lab, '2.0.0'), 256 * 1024);
  await until(async () => (await lab.inst.query(`SELECT 1 FROM uploads WHERE state = 'receiving'`)).length > 0);
  const second = await publish(lab, reg.url, pub, box(lab, [key(lab)], 'acme/app', '2.0.1'));
  t.equal(second.json?.code, 'LIMIT', 'a second upload in flight with the same token: LIMIT');
  t.match(second.json?.message, /already has 1 uploads in flight/);
  const other = await publish(lab, reg.url, pub2, small);
  t.equal(other.code, 0, 'another token is not held back', { out: other.stdout });
  held.release();
  await held.response;
});

t.test('configuration: file, environment, errors', async (t) => {
  const dir = t.testdir({});
  const cfg = path.join(dir, 'registry.json');
  fs.writeFileSync(cfg, JSON.stringify({ data: path.join(dir, 'data'), maxBoxBytes: '1G', listen: '127.0.0.1:0', bogus: 1 }));
  const r = boxsig(['registry', 'serve', '--config', cfg], { env: { ...process.env, BOXSIG_REGISTRY_DATA: '' } });
  t.equal(r.code, 2, 'an unknown field is a configuration error');
  t.match(r.stderr, `${cfg}: bogus: unknown field`);
  const noData = boxsig(['registry', 'org', 'list', '--json'], { env: { ...process.env, BOXSIG_REGISTRY_DATA: '', BOXSIG_REGISTRY_DATABASE_URL: '' } });
  t.equal(noData.code, 2);
  t.equal(noData.json?.code, 'CONFIG');
  const envBad = boxsig(['registry', 'org', 'list', '--data', dir], { env: { ...process.env, BOXSIG_REGISTRY_MAX_BOX_BYTES: 'lots' } });
  t.equal(envBad.code, 2);
  t.match(envBad.stderr, /BOXSIG_REGISTRY_MAX_BOX_BYTES: must be a size/);
  const reserved = boxsig(['registry', 'org', 'create', 'api', '--data', dir, '--json']);
  t.equal(reserved.json?.code, 'USAGE', 'org names that shadow the registry paths are refused');
  const badPolicy = path.join(dir, 'policy.json');
  fs.writeFileSync(badPolicy, JSON.stringify({ boxes: { 'acme/*': { pin: ['not-a-fingerprint'] } } }));
  const pol = boxsig(['registry', 'org', 'create', 'acme', '--policy', badPolicy, '--data', dir, '--json']);
  t.equal(pol.code, 2, 'an invalid policy is refused');
  t.match(pol.json?.message, /pin\[0\]: "not-a-fingerprint" is not a 40-hex-digit OpenPGP fingerprint/);
  const list = boxsig(['registry', 'org', 'list', '--data', dir, '--json']);
  t.same(list.json?.orgs, [], 'nothing was created');
  t.same(await catalog('http://127.0.0.1:1', 'x/y').catch(() => 'unreachable'), 'unreachable');
});

t.test('upload URLs are capabilities: bound to their token, used once; external URLs are refused', async (t) => {
  const lab = await setup(t);
  const pub = token(lab, 'acme', 'publish', 'ci');
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  const k = key(lab);
  const put = async (url: string, file: string) => {
    const res = await fetch(url, { method: 'PUT', body: fs.readFileSync(file) });
    return { status: res.status, json: (await res.json()) as any };
  };
  const before = await lab.inst.objects();

  const unknown = await put(`${reg.url}/api/v1/upload/${'A'.repeat(43)}`, box(lab, [k], 'acme/app', '1.0.0'));
  t.equal(unknown.status, 404, 'an unknown upload URL: 404');

  const up = await uploadUrl(reg.url, pub, 'acme/app', '1.0.0');
  const ok = await put(up.upload_path, box(lab, [k], 'acme/app', '1.0.0'));
  t.equal(ok.status, 200, 'the upload is published');
  const reuse = await put(up.upload_path, box(lab, [k], 'acme/app', '1.0.0'));
  t.equal(reuse.status, 409, 'the same upload URL cannot publish twice');
  t.match(reuse.json.errors[0], /^EXISTS: this upload URL was already used/);

  const doomed = token(lab, 'acme', 'publish', 'leaver');
  const up2 = await uploadUrl(reg.url, doomed, 'acme/app', '2.0.0');
  const id = (await lab.inst.query<{ id: string }>(`SELECT id FROM tokens WHERE member = 'leaver'`))[0].id;
  const rv = boxsig(['registry', 'token', 'revoke', id, ...lab.inst.flags, '--json'], { env: lab.env });
  t.equal(rv.code, 0, 'token revoked');
  const afterRevoke = await put(up2.upload_path, box(lab, [k], 'acme/app', '2.0.0'));
  t.equal(afterRevoke.status, 403, 'an upload URL dies with its token');
  t.match(afterRevoke.json.errors[0], /^DENIED: /);
  t.equal((await getJson(`${reg.url}/api/v1/authenticate`, doomed)).status, 401, 'the revoked token is refused');
  t.equal((await lab.inst.objects()).length, before.length + 1, 'only the published box is stored');

  const ext = await fetch(`${reg.url}/api/v1/box/acme/app/version/2.0.0/providers`, {
    method: 'POST',
    headers: { authorization: `Bearer ${pub}`, 'content-type': 'application/json' },
    body: JSON.stringify({ provider: { name: 'libvirt', url: 'https://elsewhere.example/box' } }),
  });
  t.equal(ext.status, 400, 'a provider with an external URL is refused');
  t.match(((await ext.json()) as any).errors[0], /^USAGE: this registry hosts and verifies every box/);
});
