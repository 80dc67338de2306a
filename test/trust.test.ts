/**
 * Organisation chains (GnuPG-made and boxsig-made), rotation, thresholds,
 * claims, revocation by reason and date, recovery, and re-verification of
 * installed boxes.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, gnupgHome, isolatedEnv, makeBox, makeKey, must, requireTool, sign, type KeyFiles, trustRecords } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(t: any) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const base = makeBox(path.join(dir, 'base.box'));
  const cfg = (doc: unknown) => fs.writeFileSync(path.join(dir, 'boxsig.json'), JSON.stringify(doc));
  const signBox = (name: string, version: string, keys: KeyFiles[], extra: string[] = []) => {
    const out = path.join(dir, `${name.replace('/', '_')}-${version}-${keys.map((k) => k.fingerprint.slice(-4)).join('-')}.box`);
    const r = sign(base, keys, ['--name', name, '--version', version, '--fresh', '-o', out, ...extra], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const verify = (box: string, ...args: string[]) => boxsig(['verify', box, '--json', ...args], { env, cwd: dir });
  const add = (box: string, ...args: string[]) => boxsig(['add', box, '--json', '--quiet', ...args], { env, cwd: dir });
  return { dir, env, cfg, signBox, verify, add };
}

t.test('an organisation chain made with stock GnuPG', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg')) return;
  const s = setup(t);
  const home = gnupgHome(t);
  const genv = { ...process.env, GNUPGHOME: home };
  const gpg = (...args: string[]) => must('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: genv });
  const fprOf = (uid: string) =>
    gpg('--with-colons', '--list-keys', `=${uid}`)
      .split('\n')
      .find((l) => l.startsWith('fpr:'))!
      .split(':')[9];
  gpg('--quick-gen-key', 'Acme Org <org@acme.example>', 'ed25519', 'sign,cert', 'never');
  gpg('--quick-gen-key', 'Acme Ubuntu Builds <ubuntu@acme.example>', 'ed25519', 'sign', 'never');
  gpg('--quick-gen-key', 'Rogue Org <rogue@evil.example>', 'ed25519', 'sign,cert', 'never');
  const org = fprOf('Acme Org <org@acme.example>');
  const repo = fprOf('Acme Ubuntu Builds <ubuntu@acme.example>');
  const rogue = fprOf('Rogue Org <rogue@evil.example>');
  gpg('--quick-add-uid', repo, 'boxsig:acme/ubuntu-*');
  gpg('-u', org, '--quick-sign-key', repo, 'boxsig:acme/ubuntu-*');
  const repoSecret = path.join(s.dir, 'repo.secret.asc');
  fs.writeFileSync(repoSecret, gpg('--armor', '--export-secret-keys', repo));
  const orgPublic = path.join(s.dir, 'org.public.asc');
  fs.writeFileSync(orgPublic, gpg('--armor', '--export', org));
  const repoKey: KeyFiles = { fingerprint: repo, secret: repoSecret, public: '', revocation: '' };

  t.equal(boxsig(['key', 'import', orgPublic], { env: s.env }).code, 0);
  s.cfg({ orgs: { 'acme/*': [org], 'other/*': [org] } });
  const good = s.verify(s.signBox('acme/ubuntu-24.04', '1.0', [repoKey]));
  t.equal(good.code, 0, good.stderr);
  t.equal(good.json.signers[0].via, 'org');
  t.match(good.json.signers[0].explanation, `certified by organisation key ${org} for "acme/ubuntu-*"`, 'the output explains the chain');
  const debian = s.verify(s.signBox('acme/debian-12', '1.0', [repoKey]));
  t.equal(debian.json.code, 'UNTRUSTED_KEY', 'a key certified for acme/ubuntu-* cannot sign acme/debian-12');
  t.match(debian.json.message, /does not cover box "acme\/debian-12"/);
  const other = s.verify(s.signBox('other/box', '1.0', [repoKey]));
  t.equal(other.json.code, 'UNTRUSTED_KEY', 'nor other/box');

  // a certification by a key that is not the configured org counts for nothing
  gpg('--quick-add-uid', repo, 'boxsig:acme/*');
  gpg('-u', rogue, '--quick-sign-key', repo, 'boxsig:acme/*');
  fs.writeFileSync(repoSecret, gpg('--armor', '--export-secret-keys', repo));
  const byRogue = s.verify(s.signBox('acme/debian-12', '1.1', [repoKey]));
  t.equal(byRogue.json.code, 'UNTRUSTED_KEY', 'a certification by an untrusted key counts for nothing');

  // a revoked (compromised) org key invalidates the chains through it
  const revFile = path.join(home, 'openpgp-revocs.d', `${org}.rev`);
  t.ok(fs.existsSync(revFile), 'GnuPG wrote a revocation certificate at key generation');
  t.equal(boxsig(['key', 'import', revFile], { env: s.env }).code, 0, 'boxsig imports GnuPG openpgp-revocs.d files');
  const afterRev = s.verify(s.signBox('acme/ubuntu-24.04', '1.1', [repoKey]));
  t.equal(afterRev.code, 1, 'the chain through a revoked org key is refused');
  t.equal(afterRev.json.code, 'KEY_REVOKED');
  t.match(afterRev.json.message, new RegExp(`organisation key ${org}, which is revoked`));
});

t.test('boxsig key certify and key add-uid make the same chain; recovery after a compromise', async (t) => {
  const s = setup(t);
  const org = makeKey(s.dir, 'Acme Org <org@acme.example>', [], s.env);
  const repo1 = makeKey(s.dir, ['Acme Web <web@acme.example>', 'boxsig:acme/web'], [], s.env);
  const certified = path.join(s.dir, 'repo1.certified.asc');
  const c = boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'acme/web', repo1.public, '-o', certified, '--json'], { env: s.env });
  t.equal(c.code, 0, c.stderr);
  t.equal(boxsig(['key', 'import', org.public, certified], { env: s.env }).code, 0);
  s.cfg({ orgs: { 'acme/*': [org.fingerprint] } });
  // the certification comes from the keyring (the box carries the uncertified key)
  const v1 = s.signBox('acme/web', '1.0.0', [repo1]);
  const ok = s.verify(v1);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.json.signers[0].via, 'org');
  t.equal(s.add(v1).code, 0, 'added through the chain');

  // key add-uid on an existing key, then certify: a second repository key
  const repo2 = makeKey(s.dir, 'Acme Web 2 <web2@acme.example>', [], s.env);
  const au = boxsig(['key', 'add-uid', '--key', repo2.secret, '--uid', 'boxsig:acme/web', '--json'], { env: s.env });
  t.equal(au.code, 0, au.stderr);
  t.match(au.json.userIds, ['Acme Web 2 <web2@acme.example>', 'boxsig:acme/web']);
  const cert2 = path.join(s.dir, 'repo2.certified.asc');
  t.equal(boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'acme/web', au.json.publicKey, '-o', cert2], { env: s.env }).code, 0);
  t.equal(boxsig(['key', 'import', cert2], { env: s.env }).code, 0);

  // repo1 is compromised: revoke it; boxes signed by repo2 keep working without any config change
  await sleep(1100);
  const rev = path.join(s.dir, 'repo1.rev');
  t.equal(boxsig(['key', 'revoke', '--key', repo1.secret, '--reason', 'compromised', '-o', rev], { env: s.env }).code, 0);
  t.equal(boxsig(['key', 'revoke', '--import', rev], { env: s.env }).code, 0);
  const v2 = s.signBox('acme/web', '2.0.0', [repo2]);
  const r2 = s.add(v2);
  t.equal(r2.code, 0, r2.stderr);
  t.equal(s.verify(v1).json.code, 'KEY_REVOKED', "the compromised key's old box is refused");
  // the installed 1.0.0 is flagged by verify --installed
  const inst = boxsig(['verify', '--installed', 'acme/web', '--json'], { env: s.env, cwd: s.dir });
  t.equal(inst.code, 1);
  const byVersion = Object.fromEntries(inst.json.boxes.map((b: any) => [b.version, b]));
  t.equal(byVersion['1.0.0'].code, 'KEY_REVOKED', 'the box added earlier is flagged today');
  t.equal(byVersion['2.0.0'].ok, true);
});

t.test('superseded keys keep their old signatures; compromised keys do not', async (t) => {
  const s = setup(t);
  const old = makeKey(s.dir, 'Old <old@acme.example>', [], s.env);
  const before = s.signBox('acme/sup', '1.0.0', [old]);
  await sleep(1100);
  const rev = path.join(s.dir, 'old.rev');
  t.equal(boxsig(['key', 'revoke', '--key', old.secret, '--reason', 'superseded', '-o', rev], { env: s.env }).code, 0);
  t.equal(boxsig(['key', 'revoke', '--import', rev], { env: s.env }).code, 0);
  await sleep(1100);
  const after = s.signBox('acme/sup', '1.0.1', [old]);
  t.equal(s.verify(before).code, 0, "a superseded key's old box still verifies");
  t.equal(s.verify(after).json.code, 'KEY_REVOKED', 'a signature made after the revocation does not');
  s.cfg({ boxes: { 'acme/*': { revocation: 'warn' } } });
  const warned = s.verify(after);
  t.equal(warned.code, 0, 'revocation: warn accepts it');
  t.match(warned.json.warnings.join('\n'), /revoked/);
  fs.rmSync(path.join(s.dir, 'boxsig.json'));

  const bad = makeKey(s.dir, 'Bad <bad@acme.example>', [], s.env);
  const old2 = s.signBox('acme/comp', '1.0.0', [bad]);
  await sleep(1100);
  const rev2 = path.join(s.dir, 'bad.rev');
  t.equal(boxsig(['key', 'revoke', '--key', bad.secret, '--reason', 'compromised', '-o', rev2], { env: s.env }).code, 0);
  t.equal(boxsig(['key', 'import', rev2], { env: s.env }).code, 0);
  t.equal(s.verify(old2).json.code, 'KEY_REVOKED', "a compromised key's old boxes are refused");
});

t.test('rotation by co-signature and by certification; a new key with no proof is refused', async (t) => {
  const s = setup(t);
  const a = makeKey(s.dir, 'A <a@acme.example>', [], s.env);
  const b = makeKey(s.dir, ['B <b@acme.example>', 'boxsig:acme/rot'], [], s.env);
  const c = makeKey(s.dir, ['C <c@acme.example>', 'boxsig:acme/rot'], [], s.env);
  const d = makeKey(s.dir, 'D <d@evil.example>', [], s.env);
  t.equal(s.add(s.signBox('acme/rot', '1.0.0', [a])).code, 0, 'first use records A');
  const co = s.add(s.signBox('acme/rot', '1.1.0', [a, b]));
  t.equal(co.code, 0, co.stderr);
  t.match(co.json.recorded, [`rotation: ${b.fingerprint}`], 'the co-signed box records B');
  t.equal(s.add(s.signBox('acme/rot', '1.2.0', [b])).code, 0, 'B alone is accepted afterwards');
  t.ok(trustRecords(s.env.BOXSIG_HOME!)['acme/rot'].keys.includes(b.fingerprint), 'the trust record names the new key');

  // C certified by B (a recorded key)
  const cc = path.join(s.dir, 'c.certified.asc');
  t.equal(boxsig(['key', 'certify', '--org-key', b.secret, '--scope', 'acme/rot', c.public, '-o', cc], { env: s.env }).code, 0);
  t.equal(boxsig(['key', 'import', cc], { env: s.env }).code, 0);
  const viaCert = s.add(s.signBox('acme/rot', '1.3.0', [c]));
  t.equal(viaCert.code, 0, viaCert.stderr);
  t.match(viaCert.json.recorded, [`rotation: ${c.fingerprint}`]);

  const noProof = s.add(s.signBox('acme/rot', '1.4.0', [d]));
  t.equal(noProof.json.code, 'KEY_CHANGED', 'a new key with no proof is refused');
});

t.test('2-of-3 thresholds and required claims', async (t) => {
  const s = setup(t);
  const [k1, k2, k3, k4] = ['One', 'Two', 'Three', 'Outsider'].map((n) => makeKey(s.dir, `${n} <${n.toLowerCase()}@acme.example>`, [], s.env));
  s.cfg({ boxes: { 'acme/*': { pin: [k1.fingerprint, k2.fingerprint, k3.fingerprint], threshold: 2, claims: { builder: 'ci-prod' } } } });
  const claim = ['--claim', 'builder=ci-prod'];
  t.equal(s.verify(s.signBox('acme/t', '1', [k1], claim)).json.code, 'THRESHOLD_NOT_MET', '1 of 3');
  t.equal(s.verify(s.signBox('acme/t', '2', [k1, k4], claim)).json.code, 'THRESHOLD_NOT_MET', '1 of 3 plus an outsider');
  const two = s.verify(s.signBox('acme/t', '3', [k1, k3], claim));
  t.equal(two.code, 0, two.stderr);
  t.equal(two.json.signers.filter((x: any) => x.trusted).length, 2);
  t.equal(s.verify(s.signBox('acme/t', '4', [k1, k2, k3], claim)).code, 0, '3 of 3');
  t.equal(s.verify(s.signBox('acme/t', '5', [k1, k2], ['--claim', 'builder=laptop'])).json.code, 'CLAIM_MISMATCH');
  t.equal(s.verify(s.signBox('acme/t', '6', [k1, k2])).json.code, 'CLAIM_MISMATCH', 'a missing claim');
  // an invalid config names the file and the field
  s.cfg({ boxes: { 'acme/*': { threshold: 0 } } });
  const badCfg = s.verify(s.signBox('acme/t', '7', [k1]));
  t.equal(badCfg.code, 2);
  t.match(badCfg.json.message, /boxsig\.json: boxes\["acme\/\*"\]\.threshold: /);
  s.cfg({ boxes: { 'acme/*': { pins: [k1.fingerprint] } } });
  t.match(s.verify(s.signBox('acme/t', '8', [k1])).json.message, /boxes\["acme\/\*"\]\.pins: unknown field/);
});
