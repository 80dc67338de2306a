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
import net from 'node:net';
import path from 'node:path';
import { boxsig, pseudoRandom } from '../helpers.js';
import { engines } from './engines.js';
import { box, catalog, createOrg, key, mustAdmin, newLab, publish, slowPut, startRegistry, token, until, type Lab } from './lab.js';

const embedded = engines('all').available.find((e) => e.name === 'embedded')!;

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
