/**
 * Issue 14, "How it will be checked", on every engine: the real
 * `vagrant cloud publish` of a tampered box, a box signed by a key the org
 * does not trust, an unsigned box where signatures are required, a box whose
 * manifest names another version, and an upload whose declared checksum is
 * wrong — each refused with its code shown by Vagrant, none downloadable, no
 * blob left in the store. Then: released versions are immutable, and a
 * publisher token of one org cannot touch another org.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { boxsig, requireTool } from '../helpers.js';
import { engines, reportUnavailable, stopEngines } from './engines.js';
import { box, catalog, createOrg, getJson, key, newLab, publish, startRegistry, tamper, token, vagrantPublish, admin } from './lab.js';

const { available, unavailable } = engines('all');
t.teardown(stopEngines);
reportUnavailable(t, unavailable);

const sha256 = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

for (const engine of available) {
  t.test(`${engine.name}: refusals, immutability, org isolation`, async (t) => {
    if (!requireTool(t, 'vagrant', 'vagrant')) return;
    const dir = t.testdir({});
    const inst = await engine.create(dir);
    t.teardown(() => inst.close());
    const lab = newLab(dir, inst);
    const good = key(lab);
    const stranger = key(lab, 'Mallory <m@evil.example>');
    createOrg(lab, 'acme', { boxes: { 'acme/*': { pin: [good.fingerprint] } } });
    const pub = token(lab, 'acme', 'publish', 'ci');
    const reg = await startRegistry(lab);
    t.teardown(() => reg.stop());

    // a good box first: the store then holds exactly one object
    const ok = box(lab, [good], 'acme/app', '1.0.0');
    const r0 = await vagrantPublish(lab, reg.url, pub, 'acme/app', '1.0.0', ok, ['--release']);
    t.equal(r0.code, 0, 'vagrant cloud publish of a good box succeeds', { out: r0.out });
    const cat0 = await catalog(reg.url, 'acme/app');
    t.same(
      cat0.versions.map((v: any) => v.version),
      ['1.0.0'],
    );
    t.equal(cat0.versions[0].providers[0].checksum, sha256(ok), 'the catalog carries the SHA-256 of what was uploaded');
    const baseline = await inst.objects();
    t.equal(baseline.length, 1, 'one object in the store');

    const cases: Array<{ what: string; code: string; version: string; file: () => string; args?: string[] }> = [
      {
        what: 'a tampered box',
        code: 'TAMPERED',
        version: '2.0.0',
        file: () => {
          const f = box(lab, [good], 'acme/app', '2.0.0');
          tamper(f);
          return f;
        },
      },
      { what: 'a box signed by a key the org does not trust', code: 'UNTRUSTED_KEY', version: '2.0.1', file: () => box(lab, [stranger], 'acme/app', '2.0.1') },
      { what: 'an unsigned box where signatures are required', code: 'UNSIGNED', version: '2.0.2', file: () => box(lab, [], 'acme/app', '2.0.2') },
      { what: 'a box whose manifest names another version', code: 'WRONG_BOX', version: '2.0.3', file: () => box(lab, [good], 'acme/app', '9.9.9') },
      {
        what: 'an upload whose declared checksum is wrong',
        code: 'CHECKSUM_MISMATCH',
        version: '2.0.4',
        file: () => box(lab, [good], 'acme/app', '2.0.4'),
        args: ['--checksum', 'ab'.repeat(32), '--checksum-type', 'sha256'],
      },
    ];
    for (const c of cases) {
      const r = await vagrantPublish(lab, reg.url, pub, 'acme/app', c.version, c.file(), ['--release', ...(c.args ?? [])]);
      t.not(r.code, 0, `${c.what}: vagrant cloud publish fails`);
      t.match(r.out, c.code, `${c.what}: Vagrant shows ${c.code}`, { out: r.out });
      const dl = await getJson(`${reg.url}/acme/boxes/app/versions/${c.version}/providers/virtualbox/unknown/vagrant.box`);
      t.equal(dl.status, 404, `${c.what}: not downloadable`);
      const prov = await getJson(`${reg.url}/api/v1/box/acme/app/version/${c.version}/provider/virtualbox`, pub);
      t.equal(prov.json?.uploaded, false, `${c.what}: the provider has no box`);
    }
    t.same(await inst.objects(), baseline, 'no blob of any refused upload is left in the store');
    const rows = await inst.query<{ n: number }>('SELECT COUNT(*) AS n FROM blobs');
    t.equal(Number(rows[0].n), 1, 'the database knows one blob');
    t.same(
      (await catalog(reg.url, 'acme/app')).versions.map((v: any) => v.version),
      ['1.0.0'],
      'the catalog still shows only the good version',
    );
    const refused = await inst.query<{ code: string }>(`SELECT code FROM uploads WHERE state = 'refused' ORDER BY created_at`);
    t.same(
      refused.map((r) => r.code),
      cases.map((c) => c.code),
      'each refusal is recorded with its code',
    );

    // the same refusal through --no-direct-upload: Vagrant shows the HTTP status only; nothing is published either
    const nd = await vagrantPublish(lab, reg.url, pub, 'acme/app', '2.1.0', box(lab, [stranger], 'acme/app', '2.1.0'), ['--release', '--no-direct-upload']);
    t.not(nd.code, 0, 'a refused non-direct upload fails');
    t.match(nd.out, '422', 'Vagrant shows the status of the refusal');
    t.same(await inst.objects(), baseline, 'still no blob left');

    // boxsig publish prints the code
    const bp = await publish(lab, reg.url, pub, box(lab, [stranger], 'acme/app', '2.2.0'));
    t.equal(bp.code, 1, 'boxsig publish of a refused box exits 1');
    t.equal(bp.json?.code, 'UNTRUSTED_KEY', 'boxsig publish reports the refusal code');

    // released versions are immutable
    const again = await vagrantPublish(lab, reg.url, pub, 'acme/app', '1.0.0', box(lab, [good], 'acme/app', '1.0.0'), ['--release']);
    t.not(again.code, 0, 're-publishing a released version fails');
    t.match(again.out, 'EXISTS', 'with EXISTS');
    t.equal((await catalog(reg.url, 'acme/app')).versions[0].providers[0].checksum, sha256(ok), 'the released box is unchanged');
    const bpAgain = await publish(lab, reg.url, pub, box(lab, [good], 'acme/app', '1.0.0'));
    t.equal(bpAgain.json?.code, 'EXISTS', 'boxsig publish to a released version: EXISTS');
    t.equal(bpAgain.code, 2);

    // org isolation: a publisher of acme cannot create, upload, release or delete anything in other
    createOrg(lab, 'other', { boxes: { 'other/*': { signatures: 'optional' } } });
    const otherPub = token(lab, 'other', 'publish', 'other-ci');
    const otherBox = box(lab, [], 'other/base', '1.0.0');
    const op = await publish(lab, reg.url, otherPub, otherBox, ['--name', 'other/base', '--version', '1.0.0', '--provider', 'virtualbox', '--release']);
    t.equal(op.code, 0, 'the other org publishes its own (unsigned, allowed by its policy) box', { out: op.stderr });
    const api = `${reg.url}/api/v1`;
    const send = async (method: string, p: string, body?: unknown) =>
      (
        await fetch(`${api}${p}`, {
          method,
          headers: { authorization: `Bearer ${pub}`, 'content-type': 'application/json' },
          ...(body ? { body: JSON.stringify(body) } : {}),
        })
      ).status;
    t.equal(await send('POST', '/boxes', { box: { username: 'other', name: 'evil' } }), 403, 'cannot create a box in another org');
    t.equal(await send('POST', '/box/other/base/versions', { version: { version: '6.6.6' } }), 403, 'cannot create a version');
    t.equal(await send('POST', '/box/other/base/version/1.0.0/providers', { provider: { name: 'libvirt' } }), 403, 'cannot add a provider');
    t.equal(await send('GET', '/box/other/base/version/1.0.0/provider/virtualbox/upload'), 403, 'cannot get an upload URL');
    t.equal(await send('PUT', '/box/other/base/version/1.0.0/release'), 403, 'cannot release');
    t.equal(await send('DELETE', '/box/other/base/version/1.0.0/provider/virtualbox'), 403, 'cannot delete a provider');
    t.equal(await send('DELETE', '/box/other/base/version/1.0.0'), 403, 'cannot delete a version');
    t.equal(await send('DELETE', '/box/other/base'), 403, 'cannot delete the box');
    const cross = await publish(lab, reg.url, pub, box(lab, [], 'other/base', '2.0.0'), [
      '--name',
      'other/base',
      '--version',
      '2.0.0',
      '--provider',
      'virtualbox',
    ]);
    t.equal(cross.json?.code, 'DENIED', 'boxsig publish into another org: DENIED');
    t.equal((await getJson(`${api}/box/other/base`, otherPub)).json.versions.length, 1, "the other org's box is untouched");

    // every write is audited
    const audit = admin(lab, ['audit', '--org', 'acme']);
    const actions = new Set((audit.json?.audit ?? []).map((l: any) => l.action));
    for (const a of [
      'org.create',
      'token.create',
      'box.create',
      'version.create',
      'provider.create',
      'provider.upload',
      'provider.upload.refused',
      'version.release',
    ]) {
      t.ok(actions.has(a), `the audit log records ${a}`);
    }
    const tokens = boxsig(['registry', 'token', 'list', '--org', 'acme', ...inst.flags, '--json'], { env: lab.env });
    t.notMatch(tokens.stdout, pub, 'token list never shows a token');
    t.notMatch(reg.log(), pub, 'the JSON log never shows a token');
  });
}
