/**
 * Org certification through the registry (issue 15): an org whose key never
 * touched the registry (offline, made by GnuPG: ed25519, certify only)
 * certifies two repository keys — one with `boxsig key certify`, one with
 * `gpg --quick-sign-key` — and registers the org key's public part and the
 * certifications. Boxes signed by them are published (the real `vagrant
 * cloud publish`, and `boxsig publish`) and added by a consumer who
 * configured only the org fingerprint — also a box that lacks its chain, which
 * the registry serves. A box signed by an uncertified key is refused at
 * upload and at add. Embedded and PostgreSQL engines.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { boxsig, boxsigAsync, gpgKey, makeBox, makeKey, must, requireTool, sign } from '../helpers.js';
import { engines, reportUnavailable, stopEngines } from './engines.js';
import { admin, createOrg, getJson, mustAdmin, newLab, publish, startRegistry, token, vagrantPublish } from './lab.js';

const { available, unavailable } = engines('each');
t.teardown(stopEngines);
reportUnavailable(t, unavailable);

for (const engine of available) {
  t.test(`an offline org key certifies repository keys; the registry and consumers follow the chain (${engine.name})`, async (t) => {
    if (!requireTool(t, 'gpg', 'gnupg') || !requireTool(t, 'vagrant', 'vagrant')) return;
    const dir = t.testdir({});
    const inst = await engine.create(dir);
    t.teardown(() => inst.close());
    const lab = newLab(dir, inst);
    const reg = await startRegistry(lab);
    t.teardown(() => reg.stop());
    const url = reg.url;

    // the org key: GnuPG, certify-only, offline (its secret never reaches the registry)
    const org = gpgKey(t, dir, 'Offline Org <org@off.example>', 'ed25519', 'cert');
    const genv = { ...process.env, GNUPGHOME: org.home };
    // repository key A: boxsig's, certified with boxsig key certify (the org's secret used locally)
    const a = makeKey(dir, ['Web Builds <web@off.example>', 'boxsig:off/web'], [], lab.env);
    const aCert = path.join(dir, 'a.certified.asc');
    const c1 = boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'off/web', a.public, '-o', aCert], { env: lab.env });
    t.equal(c1.code, 0, 'boxsig key certify with the GnuPG org key', { err: c1.stderr });
    // repository key B: certified with gpg --quick-sign-key
    const b = makeKey(dir, ['DB Builds <db@off.example>', 'boxsig:off/db-*'], [], lab.env);
    must('gpg', ['--batch', '--import', b.public], { env: genv });
    must('gpg', ['--batch', '--yes', '-u', org.fingerprint, '--quick-sign-key', b.fingerprint, 'boxsig:off/db-*'], { env: genv });
    const bCert = path.join(dir, 'b.certified.asc');
    fs.writeFileSync(bCert, must('gpg', ['--batch', '--armor', '--export', b.fingerprint], { env: genv }));
    // and a key nobody certified
    const stray = makeKey(dir, ['Stray <stray@off.example>', 'boxsig:off/web'], [], lab.env);

    createOrg(lab, 'off');
    const reg1 = mustAdmin(lab, ['org', 'key', 'off', org.public, aCert, bCert, '--require']);
    t.same([...reg1.keys].sort(), [org.fingerprint, a.fingerprint, b.fingerprint].sort(), 'the org key and both certified keys are registered');
    const policy = mustAdmin(lab, ['org', 'list']).orgs.find((o: any) => o.name === 'off').policy;
    t.same(policy.orgs, { 'off/*': [org.fingerprint] }, '--require: uploads need a chain to the org key');
    const audit = mustAdmin(lab, ['audit', '--org', 'off']).audit;
    t.ok(
      audit.some((l: any) => l.action === 'key.register' && l.details.fingerprint === org.fingerprint && l.details.kind === 'org'),
      'key.register names the org key',
    );
    for (const k of [a, b]) {
      t.ok(
        audit.some((l: any) => l.action === 'key.certify' && l.details.fingerprint === k.fingerprint && l.details.certifiedBy.includes(org.fingerprint)),
        `key.certify names ${k.fingerprint} and the org key`,
      );
    }
    t.notOk(
      (await inst.query<{ n: number }>('SELECT COUNT(*) AS n FROM held_keys')).some((r) => Number(r.n) > 0),
      'the registry holds no secret key',
    );
    const pub = token(lab, 'off', 'publish');

    // A's box carries no certification (signed with A's own key file): the registry has the chain
    const webBox = path.join(dir, 'web.box');
    makeBox(webBox);
    t.equal(sign(webBox, [a], ['--name', 'off/web', '--version', '1.0.0'], lab.env).code, 0);
    const r1 = await vagrantPublish(lab, url, pub, 'off/web', '1.0.0', webBox, ['--release']);
    t.equal(r1.code, 0, 'vagrant cloud publish: a box signed by A (certified with boxsig key certify)', { out: r1.out });
    // B's box carries its chain
    const dbBox = path.join(dir, 'db.box');
    makeBox(dbBox);
    t.equal(sign(dbBox, [b], ['--name', 'off/db-15', '--version', '2.0.0', '--cert', bCert], lab.env).code, 0);
    const r2 = await publish(lab, url, pub, dbBox, ['--release']);
    t.equal(r2.code, 0, 'boxsig publish: a box signed by B (certified with gpg --quick-sign-key)', { out: r2.stdout + r2.stderr });
    // the uncertified key: refused at upload
    const strayBox = path.join(dir, 'stray.box');
    makeBox(strayBox);
    t.equal(sign(strayBox, [stray], ['--name', 'off/web', '--version', '1.1.0'], lab.env).code, 0);
    const r3 = await publish(lab, url, pub, strayBox);
    t.equal(r3.json?.code, 'UNTRUSTED_KEY', 'an uncertified key is refused at upload', { out: r3.stdout });
    const r3v = await vagrantPublish(lab, url, pub, 'off/web', '1.1.0', strayBox, ['--release']);
    t.not(r3v.code, 0, 'also through vagrant cloud publish');
    t.match(r3v.out, /UNTRUSTED_KEY/, 'which shows the code');

    // the registry serves the chain of a box
    const served = await getJson(`${url}/boxsig/v1/orgs/off/boxes/web/keys`);
    t.equal(served.status, 200);
    t.same(
      served.json.keys.map((k: any) => k.fingerprint).sort(),
      [org.fingerprint, a.fingerprint].sort(),
      "the web box's keys: the org key and A (not B, certified for off/db-*)",
    );

    // a consumer who configured only the org fingerprint
    const home = path.join(dir, 'consumer');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'boxsig.json'), JSON.stringify({ orgs: { 'off/*': [org.fingerprint] } }));
    const env = { ...lab.env, BOXSIG_HOME: path.join(home, 'boxsig'), VAGRANT_HOME: path.join(home, 'vagrant'), VAGRANT_SERVER_URL: url };
    const add = (args: string[]) => boxsigAsync(['add', ...args, '--json'], { env, cwd: home });
    const w = await add(['off/web']);
    t.equal(w.json?.ok, true, 'adds off/web, whose box lacks the chain: the registry serves it', { out: w.stdout + w.stderr });
    t.match(w.json?.signers?.[0]?.explanation, /certified by organisation key/, 'trusted through the org key');
    const d = await add(['off/db-15']);
    t.equal(d.json?.ok, true, 'adds off/db-15 (the chain travels in the box)', { out: d.stdout + d.stderr });
    const s = await add([strayBox, '--name', 'off/web']);
    t.equal(s.json?.code, 'UNTRUSTED_KEY', 'the uncertified key is refused at add', { out: s.stdout + s.stderr });

    // without the registry's chain, the box that lacks it is refused: the served keys are what made it pass
    const bare = path.join(dir, 'bare-consumer');
    fs.mkdirSync(bare);
    fs.writeFileSync(path.join(bare, 'boxsig.json'), JSON.stringify({ orgs: { 'off/*': [org.fingerprint] } }));
    const direct = await boxsigAsync(['add', webBox, '--json'], {
      env: { ...lab.env, BOXSIG_HOME: path.join(bare, 'boxsig'), VAGRANT_HOME: path.join(bare, 'vagrant') },
      cwd: bare,
    });
    t.equal(direct.json?.code, 'UNTRUSTED_KEY', 'the same box added from a file, with nothing served: UNTRUSTED_KEY');

    // the org revokes A's certification offline and registers the revocation: the chain is gone
    must('gpg', ['--batch', '--import', aCert], { env: genv });
    const rs = spawnGpg(genv, ['--batch', '--yes', '--quick-revoke-sig', a.fingerprint, org.fingerprint, 'boxsig:off/web']);
    if (rs === 0) {
      const revoked = path.join(dir, 'a.revoked.asc');
      fs.writeFileSync(revoked, must('gpg', ['--batch', '--armor', '--export', a.fingerprint], { env: genv }));
      const r = admin(lab, ['org', 'key', 'off', revoked]);
      t.equal(r.json?.ok, true, 'the certification revocation is registered');
      const again = path.join(dir, 'web2.box');
      makeBox(again);
      t.equal(sign(again, [a], ['--name', 'off/web', '--version', '1.2.0'], lab.env).code, 0);
      const r4 = await publish(lab, url, pub, again);
      t.equal(r4.json?.code, 'UNTRUSTED_KEY', 'after the org revoked the certification, A is refused at upload');
    } else t.comment('this GnuPG has no --quick-revoke-sig');
  });
}

function spawnGpg(env: NodeJS.ProcessEnv, args: string[]): number {
  return spawnSync('gpg', args, { env }).status ?? 1;
}

t.test('an org admin registers keys and asks for certifications over HTTP, with an admin token', async (t) => {
  const embedded = available.find((e) => e.name === 'embedded')!;
  const dir = t.testdir({});
  const kek = path.join(dir, 'kek');
  fs.writeFileSync(kek, randomBytes(32).toString('hex'), { mode: 0o600 });
  const inst = await embedded.create(dir);
  const lab = newLab(dir, inst, { BOXSIG_REGISTRY_ESCROW_KEY_FILE: kek });
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  createOrg(lab, 'apio');
  createOrg(lab, 'other');
  const adminTok = token(lab, 'apio', 'admin', 'alice');
  const pubTok = token(lab, 'apio', 'publish', 'ci');
  const otherAdmin = token(lab, 'other', 'admin', 'mallory');
  const post = async (p: string, tok: string | null, body: unknown) => {
    const res = await fetch(`${reg.url}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as any };
  };
  const orgKey = makeKey(dir, 'API Org <org@apio.example>', [], lab.env);
  const orgPublic = fs.readFileSync(orgKey.public, 'utf8');
  t.equal((await post('/boxsig/v1/orgs/apio/keys', null, { keys: orgPublic })).status, 401, 'no token: 401');
  t.equal((await post('/boxsig/v1/orgs/apio/keys', pubTok, { keys: orgPublic })).status, 403, 'a publish token: 403');
  t.equal((await post('/boxsig/v1/orgs/apio/keys', otherAdmin, { keys: orgPublic })).status, 403, "another org's admin: 403");
  t.equal((await post('/boxsig/v1/orgs/apio/keys', adminTok, { keys: 'not a key' })).json.code, 'MALFORMED', 'junk: MALFORMED');
  const ok = await post('/boxsig/v1/orgs/apio/keys', adminTok, { keys: orgPublic, require: true });
  t.equal(ok.status, 200, 'an admin token registers the org key', { json: ok.json });
  t.same(
    ok.json.keys.map((k: any) => [k.fingerprint, k.kind]),
    [[orgKey.fingerprint, 'org']],
  );
  const audit = mustAdmin(lab, ['audit', '--org', 'apio']).audit;
  t.ok(
    audit.some((l: any) => l.action === 'key.register' && /alice/.test(l.actor) && l.details.fingerprint === orgKey.fingerprint),
    'audited under the admin member',
  );

  // certification on request needs an org key the registry holds
  const repo = makeKey(dir, ['API Web <web@apio.example>', 'boxsig:apio/web'], [], lab.env);
  const repoPublic = fs.readFileSync(repo.public, 'utf8');
  const none = await post('/boxsig/v1/orgs/apio/certify', adminTok, { key: repoPublic, scope: 'apio/web' });
  t.equal(none.json.code, 'USAGE', 'no held org key: USAGE');
  t.match(none.json.errors[0], /holds no org key/);
  const held = mustAdmin(lab, ['org', 'hold-key', 'apio', '--generate', '--require']);
  t.equal((await post('/boxsig/v1/orgs/apio/certify', pubTok, { key: repoPublic, scope: 'apio/web' })).status, 403, 'a publish token cannot certify');
  const wide = await post('/boxsig/v1/orgs/apio/certify', adminTok, { key: repoPublic, scope: 'other/*' });
  t.equal(wide.json.code, 'USAGE', 'a scope outside the org is refused');
  const c = await post('/boxsig/v1/orgs/apio/certify', adminTok, { key: repoPublic, scope: 'apio/web' });
  t.equal(c.status, 200, 'certified on request', { json: c.json });
  t.equal(c.json.certifiedBy, held.fingerprint);
  const pub = token(lab, 'apio', 'publish');
  const webBox = path.join(dir, 'web.box');
  makeBox(webBox);
  t.equal(sign(webBox, [repo], ['--name', 'apio/web', '--version', '1.0.0'], lab.env).code, 0);
  const r = await publish(lab, reg.url, pub, webBox);
  t.equal(r.code, 0, 'a box signed by the certified key is accepted under --require', { out: r.stdout });
  const certifiedFile = path.join(dir, 'web.certified.asc');
  fs.writeFileSync(certifiedFile, c.json.certified);
  const v = boxsig(['key', 'import', writeTmp(dir, 'org.asc', held.publicKey), certifiedFile, '--json'], { env: lab.env });
  t.equal(v.code, 0, 'the certified key reads back', { out: v.stdout + v.stderr });
});

function writeTmp(dir: string, name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}
