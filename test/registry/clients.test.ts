/**
 * The real clients against the embedded registry, unchanged:
 * - "on a fresh machine": `boxsig registry serve --data DIR`, a box built by
 *   the real `packer` (vagrant post-processor, signed by shell-local, then
 *   the vagrant-cloud post-processor) is published and added back by the
 *   real `vagrant box add ORG/NAME` and by `boxsig add ORG/NAME`;
 * - Packer shows the refusal code of an unsigned box;
 * - `vagrant cloud publish --no-direct-upload` without --release: nothing in
 *   the catalog until released;
 * - a private box needs a token, for the catalog and the download;
 * - architectures: per provider, in the catalog; a box whose metadata.json
 *   names another architecture than its provider is WRONG_BOX.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, ROOT, boxsig, makeBox, requireTool } from '../helpers.js';
import { engines } from './engines.js';
import { box, catalog, createOrg, getJson, key, mustAdmin, newLab, publish, startRegistry, token, vagrant, vagrantPublish, type Lab } from './lab.js';

const embedded = engines('all').available.find((e) => e.name === 'embedded')!;

async function setup(t: any, policy?: unknown): Promise<{ lab: Lab; url: string; stop: () => Promise<unknown> }> {
  const dir = t.testdir({});
  const inst = await embedded.create(dir);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'boxsig'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });
  // a short TMPDIR: Packer's plugin sockets must stay under 108 bytes
  const tmp = fs.mkdtempSync('/tmp/bsg-reg-');
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const lab = newLab(dir, inst, {
    PATH: `${bin}:${process.env.PATH}`,
    TMPDIR: tmp,
    PACKER_CACHE_DIR: path.join(dir, 'packer-cache'),
    PACKER_PLUGIN_PATH: path.join(dir, 'packer-plugins'),
    PACKER_CONFIG_DIR: path.join(dir, 'home', '.packer.d'),
  });
  createOrg(lab, 'acme', policy);
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  return { lab, url: reg.url, stop: () => reg.stop() };
}

function packerTemplate(lab: Lab, url: string, tok: string, name: string, version: string, keyFile: string | null): string {
  const files = path.join(ROOT, 'plugins', 'packer', 'examples', 'files');
  const output = `out/${name.replace('/', '-')}-${version}.box`;
  const chain: unknown[] = [
    { type: 'artifice', files: [path.join(files, 'box.ovf'), path.join(files, 'box-disk1.vmdk')] },
    { type: 'vagrant', provider_override: 'virtualbox', keep_input_artifact: true, output },
  ];
  if (keyFile) chain.push({ type: 'shell-local', inline: [`boxsig sign ${output} --key ${keyFile} --name ${name} --version ${version}`] });
  chain.push({ type: 'vagrant-cloud', box_tag: name, version, access_token: tok, vagrant_cloud_url: `${url}/api/v1` });
  const file = path.join(lab.dir, `packer-${version}.json`);
  fs.writeFileSync(file, JSON.stringify({ builders: [{ type: 'null', communicator: 'none' }], 'post-processors': [chain] }, null, 2));
  return file;
}

function packer(lab: Lab, template: string): { code: number; out: string } {
  const r = spawnSync('packer', ['build', '-color=false', template], { cwd: lab.dir, env: lab.env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, out: `${r.stdout}\n${r.stderr}` };
}

t.test('packer publishes, vagrant box add and boxsig add get the box back', async (t) => {
  if (!requireTool(t, 'packer', 'packer') || !requireTool(t, 'vagrant', 'vagrant')) return;
  const { lab, url } = await setup(t);
  const ci = key(lab, 'Acme CI <ci@acme.example>');
  mustAdmin(lab, ['box', 'create', 'acme/web']);
  const pub = token(lab, 'acme', 'publish', 'packer');
  const r = packer(lab, packerTemplate(lab, url, pub, 'acme/web', '1.0.0', ci.secret));
  t.equal(r.code, 0, 'packer build with the vagrant-cloud post-processor succeeds', { out: r.out });
  t.match(r.out, /Version successfully released/);
  const cat = await catalog(url, 'acme/web');
  t.same(
    cat.versions.map((v: any) => [v.version, v.providers.map((p: any) => p.name)]),
    [['1.0.0', ['virtualbox']]],
    'the catalog shows the released box',
  );

  const v = await vagrant(lab, ['box', 'add', 'acme/web'], { VAGRANT_SERVER_URL: url });
  t.equal(v.code, 0, 'vagrant box add acme/web succeeds', { out: v.out });
  t.match((await vagrant(lab, ['box', 'list'])).out, /acme\/web\s+\(virtualbox, 1\.0\.0\)/, 'vagrant box list shows it');

  const home2 = path.join(lab.dir, 'vagrant-home-2');
  const b = boxsig(['add', 'acme/web', '--vagrant-home', home2, '--json'], { env: { ...lab.env, VAGRANT_SERVER_URL: url } });
  t.equal(b.code, 0, 'boxsig add acme/web succeeds', { out: b.stdout + b.stderr });
  t.same(b.json?.box, { name: 'acme/web', version: '1.0.0', provider: 'virtualbox' });
  t.same(
    b.json?.signers.map((s: any) => s.fingerprint),
    [ci.fingerprint],
    'signed by the CI key',
  );

  // an unsigned box: packer shows the refusal, nothing is released
  const u = packer(lab, packerTemplate(lab, url, pub, 'acme/web', '1.0.1', null));
  t.not(u.code, 0, 'packer build of an unsigned box fails');
  t.match(u.out, /UNSIGNED: box acme\/web is not signed/, 'packer prints the refusal code');
  t.same(
    (await catalog(url, 'acme/web')).versions.map((x: any) => x.version),
    ['1.0.0'],
    'nothing new in the catalog',
  );
});

t.test('vagrant cloud publish --no-direct-upload without --release, then release', async (t) => {
  if (!requireTool(t, 'vagrant', 'vagrant')) return;
  const { lab, url } = await setup(t);
  const k = key(lab);
  const pub = token(lab, 'acme', 'publish');
  const r = await vagrantPublish(lab, url, pub, 'acme/db', '2.0.0', box(lab, [k], 'acme/db', '2.0.0'), ['--no-direct-upload']);
  t.equal(r.code, 0, 'published', { out: r.out });
  t.same((await catalog(url, 'acme/db')).versions, [], 'an unreleased version is not in the catalog');
  const dl = await getJson(`${url}/acme/boxes/db/versions/2.0.0/providers/virtualbox/unknown/vagrant.box`);
  t.equal(dl.status, 404, 'nor downloadable anonymously');
  const rel = await vagrant(lab, ['cloud', 'version', 'release', 'acme/db', '2.0.0', '--force'], { VAGRANT_SERVER_URL: url, VAGRANT_CLOUD_TOKEN: pub });
  t.equal(rel.code, 0, 'vagrant cloud version release', { out: rel.out });
  t.same(
    (await catalog(url, 'acme/db')).versions.map((x: any) => x.version),
    ['2.0.0'],
    'released: in the catalog',
  );
  // --force on a released version: refused, the box stays
  const again = await vagrantPublish(lab, url, pub, 'acme/db', '2.0.0', box(lab, [k], 'acme/db', '2.0.0'), ['--no-direct-upload', '--release']);
  t.not(again.code, 0, 'vagrant cloud publish --force of a released version fails');
});

t.test('a private box needs a token of its org', async (t) => {
  if (!requireTool(t, 'vagrant', 'vagrant')) return;
  const { lab, url } = await setup(t);
  createOrg(lab, 'other');
  mustAdmin(lab, ['box', 'create', 'acme/secret', '--private']);
  const k = key(lab);
  const pub = token(lab, 'acme', 'publish');
  const read = token(lab, 'acme', 'read', 'reader');
  const otherRead = token(lab, 'other', 'read');
  const p = await publish(lab, url, pub, box(lab, [k], 'acme/secret', '1.0.0'), ['--release']);
  t.equal(p.code, 0, 'published', { out: p.stderr });
  t.equal((await getJson(`${url}/acme/secret`)).status, 404, 'catalog without a token: 404, as for a missing box');
  t.equal((await getJson(`${url}/acme/secret`, otherRead)).status, 404, "catalog with another org's token: 404");
  t.equal((await getJson(`${url}/acme/secret`, read)).status, 200, 'catalog with a read token: 200');
  t.equal(
    (await getJson(p.json.catalog.replace('/acme/secret', '/acme/boxes/secret/versions/1.0.0/providers/virtualbox/unknown/vagrant.box'))).status,
    404,
    'download without a token: 404',
  );
  const anon = await vagrant(lab, ['box', 'add', 'acme/secret'], { VAGRANT_SERVER_URL: url });
  t.not(anon.code, 0, 'vagrant box add without a token fails');
  const withToken = await vagrant(lab, ['box', 'add', 'acme/secret'], { VAGRANT_SERVER_URL: url, VAGRANT_CLOUD_TOKEN: read });
  t.equal(withToken.code, 0, 'vagrant box add with VAGRANT_CLOUD_TOKEN succeeds', { out: withToken.out });
  // boxsig add ORG/NAME as Vagrant: the token of VAGRANT_CLOUD_TOKEN for the catalog and the download
  const home = path.join(lab.dir, 'boxsig-add-home');
  const server = { ...lab.env, VAGRANT_SERVER_URL: url };
  const anonAdd = boxsig(['add', 'acme/secret', '--vagrant-home', home, '--json'], { env: server });
  t.equal(anonAdd.json?.code, 'NETWORK', 'boxsig add without a token fails', { out: anonAdd.stdout + anonAdd.stderr });
  t.match(anonAdd.json?.message, /404/, 'answered as a missing box (a private name cannot be confirmed)');
  const otherAdd = boxsig(['add', 'acme/secret', '--vagrant-home', home, '--json'], { env: { ...server, VAGRANT_CLOUD_TOKEN: otherRead } });
  t.match(otherAdd.json?.message, /404/, "boxsig add with another org's token: 404, as for a missing box");
  const tokenAdd = boxsig(['add', 'acme/secret', '--vagrant-home', home, '--json'], { env: { ...server, VAGRANT_CLOUD_TOKEN: read } });
  t.equal(tokenAdd.code, 0, 'boxsig add with VAGRANT_CLOUD_TOKEN succeeds', { out: tokenAdd.stdout + tokenAdd.stderr });
  t.notMatch(tokenAdd.stdout + tokenAdd.stderr + anonAdd.stdout + anonAdd.stderr, read, 'the token is never shown');
  const list = await getJson(`${url}/api/v1/user/acme`);
  t.same(list.json.boxes, [], 'the org listing hides the private box from anonymous clients');
});

t.test('architectures per provider (Vagrant Cloud API v2 fields)', async (t) => {
  const { lab, url } = await setup(t, { boxes: { 'acme/*': { signatures: 'optional' } } });
  const pub = token(lab, 'acme', 'publish');
  const api = `${url}/api/v1`;
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${api}${p}`, {
      method,
      headers: { authorization: `Bearer ${pub}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as any };
  };
  t.equal((await call('POST', '/boxes', { box: { username: 'acme', name: 'multi' } })).status, 200);
  t.equal((await call('POST', '/box/acme/multi/versions', { version: { version: '1.0.0' } })).status, 200);
  const amd = await call('POST', '/box/acme/multi/version/1.0.0/providers', { provider: { name: 'virtualbox', architecture: 'amd64' } });
  const arm = await call('POST', '/box/acme/multi/version/1.0.0/providers', {
    provider: { name: 'virtualbox', architecture: 'arm64', default_architecture: false },
  });
  t.equal(amd.json.default_architecture, true, 'the first architecture of a provider is the default');
  t.equal(arm.json.default_architecture, false);
  const upload = async (arch: string, file: string) => {
    const u = await call('GET', `/box/acme/multi/version/1.0.0/provider/virtualbox/${arch}/upload`);
    const res = await fetch(u.json.upload_path, { method: 'PUT', body: fs.readFileSync(file) });
    return { status: res.status, json: (await res.json()) as any };
  };
  const amdBox = path.join(lab.dir, 'amd.box');
  const armBox = path.join(lab.dir, 'arm.box');
  makeBox(amdBox, { metadata: { architecture: 'amd64' } });
  makeBox(armBox, { metadata: { architecture: 'arm64' } });
  const wrong = await upload('amd64', armBox);
  t.equal(wrong.status, 422, 'an arm64 box for the amd64 provider is refused');
  t.match(wrong.json.errors[0], /^WRONG_BOX: metadata.json says architecture arm64/);
  t.equal((await upload('amd64', amdBox)).status, 200);
  t.equal((await upload('arm64', armBox)).status, 200);
  t.equal((await call('PUT', '/box/acme/multi/version/1.0.0/release')).status, 200);
  const cat = await catalog(url, 'acme/multi');
  t.same(
    cat.versions[0].providers.map((p: any) => [p.name, p.architecture, p.default_architecture]).sort(),
    [
      ['virtualbox', 'amd64', true],
      ['virtualbox', 'arm64', false],
    ],
    'the catalog carries architecture and default_architecture per provider',
  );
  const ambiguous = await call('GET', '/box/acme/multi/version/1.0.0/provider/virtualbox');
  t.equal(ambiguous.json.architecture, 'amd64', 'a path without architecture names the default one');
});
