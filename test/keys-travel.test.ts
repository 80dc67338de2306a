/**
 * Certifications travel inside the box (issue 12 item 2) and a certify-only
 * organisation key certifies (item 4): a publisher signs with the repository
 * key; a consumer who configured only the organisation's fingerprint adds the
 * box on first encounter, with nothing imported — with keys made by boxsig
 * and by GnuPG (`gpg --quick-sign-key`). Designated revokers and the
 * recovery procedure of docs/TRUST.md, run as written (issue 17 class 7).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, gnupgHome, isolatedEnv, makeBox, makeKey, must, requireTool } from './helpers.js';

function people(t: any) {
  const dir = t.testdir({ publisher: {}, consumer: {} });
  const pub = isolatedEnv(path.join(dir, 'publisher'), { BOXSIG_PASSPHRASE: '' });
  const con = isolatedEnv(path.join(dir, 'consumer'), { BOXSIG_PASSPHRASE: '' });
  const consumerDir = path.join(dir, 'consumer');
  const base = makeBox(path.join(dir, 'base.box'));
  let n = 0;
  const sign = (args: string[]) => {
    const out = path.join(dir, `signed-${n++}.box`);
    const r = boxsig(['sign', base, ...args, '--name', 'acme/web', '--version', `1.0.${n}`, '-o', out, '--json'], { env: pub });
    return { ...r, out };
  };
  const configure = (org: string) => fs.writeFileSync(path.join(consumerDir, 'boxsig.json'), JSON.stringify({ orgs: { 'acme/*': [org] } }));
  const add = (box: string) => boxsig(['add', box, '--json', '--quiet'], { env: con, cwd: consumerDir });
  const verify = (box: string) => boxsig(['verify', box, '--json'], { env: con, cwd: consumerDir });
  return { dir, pub, con, consumerDir, sign, configure, add, verify };
}

t.test('boxsig-made keys: key certify, then sign --key; the consumer knows only the org fingerprint', async (t) => {
  const p = people(t);
  const org = makeKey(p.dir, 'Acme Org <org@acme.example>', [], p.pub);
  const repo = makeKey(p.dir, ['Acme Web <web@acme.example>', 'boxsig:acme/*'], [], p.pub);
  const certified = path.join(p.dir, 'repo.certified.asc');
  const c = boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'acme/*', repo.public, '-o', certified, '--json'], { env: p.pub });
  t.equal(c.code, 0, c.stderr);
  p.configure(org.fingerprint);

  const plain = p.sign(['--key', repo.secret]);
  t.equal(plain.code, 0, plain.stderr);
  t.equal(p.verify(plain.out).json?.code, 'UNTRUSTED_KEY', 'a box carrying no certification is not trusted through the org');

  const withCert = p.sign(['--key', repo.secret, '--cert', certified]);
  t.equal(withCert.code, 0, withCert.stderr);
  const a1 = p.add(withCert.out);
  t.equal(a1.code, 0, `sign --cert: added on first encounter: ${a1.stdout}`);
  t.equal(a1.json?.signers?.[0]?.via, 'org');

  // the certification known from the publisher's keyring
  t.equal(boxsig(['key', 'import', certified], { env: p.pub }).code, 0);
  const fromRing = p.sign(['--key', repo.secret]);
  t.equal(fromRing.code, 0, fromRing.stderr);
  const a2 = p.add(fromRing.out);
  t.equal(a2.code, 0, `keyring copy: ${a2.stdout}`);
  t.equal(a2.json?.signers?.[0]?.via, 'org');

  // hand verification still works on what the box carries
  if (requireTool(t, 'sqv', 'sqv')) {
    const x = path.join(p.dir, 'x');
    fs.mkdirSync(x);
    must('tar', ['xzf', fromRing.out, '-C', x]);
    const keyFile = path.join(x, '.boxsig/keys', `${repo.fingerprint}.asc`);
    must('sqv', ['--keyring', keyFile, path.join(x, '.boxsig/signatures', `${repo.fingerprint}.asc`), path.join(x, '.boxsig/manifest.json')]);
    t.pass('sqv verifies the signature against the key file the box carries');
  }

  const useless = path.join(p.dir, 'useless.asc');
  fs.copyFileSync(makeKey(p.dir, 'Other <o@example.org>', [], p.pub).public, useless);
  const bad = p.sign(['--key', repo.secret, '--cert', useless]);
  t.equal(bad.json?.code, 'USAGE', 'a --cert file with nothing for the signing key is a usage error');
});

t.test('GnuPG-made keys: a certify-only org key, gpg --quick-sign-key and boxsig key certify', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg')) return;
  const p = people(t);
  const home = gnupgHome(t);
  const genv = { ...process.env, GNUPGHOME: home };
  const gpg = (...args: string[]) => must('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: genv });
  const fprOf = (uid: string) =>
    gpg('--with-colons', '--list-keys', `=${uid}`)
      .split('\n')
      .find((l) => l.startsWith('fpr:'))!
      .split(':')[9];
  gpg('--quick-gen-key', 'Acme Org <org@acme.example>', 'ed25519', 'cert', 'never');
  gpg('--quick-gen-key', 'Acme Web <web@acme.example>', 'ed25519', 'sign', 'never');
  gpg('--quick-gen-key', 'Acme Db <db@acme.example>', 'ed25519', 'sign', 'never');
  const org = fprOf('Acme Org <org@acme.example>');
  const web = fprOf('Acme Web <web@acme.example>');
  const db = fprOf('Acme Db <db@acme.example>');
  t.match(gpg('--with-colons', '--list-keys', org), /^pub:[^\n]*:[^:]*:c[^s]*:/m, 'the org key is certify-only ([C])');
  gpg('--quick-add-uid', web, 'boxsig:acme/*');
  gpg('--quick-add-uid', db, 'boxsig:acme/*');
  gpg('-u', org, '--quick-sign-key', web, 'boxsig:acme/*');
  const file = (name: string, data: string) => {
    const f = path.join(p.dir, name);
    fs.writeFileSync(f, data);
    return f;
  };
  const orgPublic = file('org.public.asc', gpg('--armor', '--export', org));
  const orgSecret = file('org.secret.asc', gpg('--armor', '--export-secret-keys', org));
  const webSecret = file('web.secret.asc', gpg('--armor', '--export-secret-keys', web));
  const dbSecret = file('db.secret.asc', gpg('--armor', '--export-secret-keys', db));
  const dbPublic = file('db.public.asc', gpg('--armor', '--export', db));
  p.configure(org);

  // gpg --quick-sign-key: the secret key file carries the certification, --cert the org key
  const s1 = p.sign(['--key', webSecret, '--cert', orgPublic]);
  t.equal(s1.code, 0, s1.stderr);
  const a1 = p.add(s1.out);
  t.equal(a1.code, 0, `a GnuPG chain, on first encounter: ${a1.stdout}`);
  t.equal(a1.json?.signers?.[0]?.via, 'org');

  // the org withdraws its certification (gpg --quick-revoke-sig): once the consumer has it, the chain is gone
  gpg('--quick-revoke-sig', web, org, 'boxsig:acme/*');
  const withdrawn = file('web.withdrawn.asc', gpg('--armor', '--export', web));
  t.equal(boxsig(['key', 'import', withdrawn], { env: p.con }).code, 0);
  t.equal(p.verify(s1.out).json?.code, 'UNTRUSTED_KEY', "GnuPG's certification revocation applies to the box that carries the certification");

  // boxsig key certify with the certify-only GnuPG org key
  const dbCertified = path.join(p.dir, 'db.certified.asc');
  const c = boxsig(['key', 'certify', '--org-key', orgSecret, '--scope', 'acme/*', dbPublic, '-o', dbCertified, '--json'], { env: p.pub });
  t.equal(c.code, 0, `key certify works with a [C] key: ${c.stderr}`);
  const s2 = p.sign(['--key', dbSecret, '--cert', dbCertified]);
  t.equal(s2.code, 0, s2.stderr);
  const a2 = p.add(s2.out);
  t.equal(a2.code, 0, `a boxsig certification by the [C] key: ${a2.stdout}`);
  // GnuPG agrees with the certification boxsig made
  gpg('--import', dbCertified);
  t.match(
    gpg('--with-colons', '--check-signatures', db),
    new RegExp(`^sig:!:[^\\n]*${org.slice(-16)}`, 'm'),
    'gpg --check-signatures finds a good certification by the org',
  );
});

t.test('designated revokers and the recovery procedure of docs/TRUST.md, as written', async (t) => {
  const p = people(t);
  const org = makeKey(p.dir, 'Acme Security Officer <security@acme.example>', [], p.pub);
  // 1. a repository key naming the officer as designated revoker, certified by the org
  const gen = boxsig(
    [
      'key',
      'generate',
      '--uid',
      'Acme Web Builds <web@acme.example>',
      '--uid',
      'boxsig:acme/web',
      '--revoker',
      org.public,
      '--out',
      path.join(p.dir, 'web'),
      '--json',
    ],
    { env: p.pub },
  );
  t.equal(gen.code, 0, gen.stderr);
  t.same(gen.json.revokers, [org.fingerprint]);
  const web = { fingerprint: gen.json.fingerprint, secret: gen.json.secretKey, public: gen.json.publicKey };
  const certified = path.join(p.dir, 'web.certified.asc');
  t.equal(boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'acme/web', web.public, '-o', certified], { env: p.pub }).code, 0);
  p.configure(org.fingerprint);
  const box = p.sign(['--key', web.secret, '--cert', certified]);
  t.equal(box.code, 0, box.stderr);
  t.equal(p.add(box.out).code, 0, 'the chain holds; a key naming a designated revoker verifies');

  // GnuPG and sqv accept the key that names a designated revoker
  if (requireTool(t, 'sqv', 'sqv')) {
    const x = path.join(p.dir, 'x');
    fs.mkdirSync(x);
    must('tar', ['xzf', box.out, '-C', x]);
    must('sqv', [
      '--keyring',
      path.join(x, '.boxsig/keys', `${web.fingerprint}.asc`),
      path.join(x, '.boxsig/signatures', `${web.fingerprint}.asc`),
      path.join(x, '.boxsig/manifest.json'),
    ]);
    t.pass('sqv accepts it');
  }

  // 3. the officer revokes the key: the revocation certificate applies
  const rev = path.join(p.dir, 'web.rev');
  const r = boxsig(['key', 'revoke', '--key', org.secret, '--target', web.public, '--reason', 'compromised', '-o', rev, '--json'], { env: p.pub });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.by, org.fingerprint);
  const imp = boxsig(['key', 'revoke', '--import', rev, '--json'], { env: p.con, cwd: p.consumerDir });
  t.equal(imp.code, 0, imp.stderr);
  t.match(imp.json.revocations[0], { kind: 'key', applied: false }, 'stored: the consumer never imported the key (it came in a box)');
  const after = p.verify(box.out);
  t.equal(after.json?.code, 'KEY_REVOKED', 'boxes signed by the revoked key are refused');
  t.match(after.json?.message, `designated revoker ${org.fingerprint}`);
  const inst = boxsig(['verify', '--installed', 'acme/web', '--json'], { env: p.con, cwd: p.consumerDir });
  t.equal(inst.code, 1, 'verify --installed flags the installed box');

  // the officer cannot revoke a key that does not name it
  const other = makeKey(p.dir, ['Other <other@acme.example>', 'boxsig:acme/web'], [], p.pub);
  const refused = boxsig(['key', 'revoke', '--key', org.secret, '--target', other.public, '--reason', 'compromised', '--json'], { env: p.pub });
  t.equal(refused.json?.code, 'USAGE', 'refused when the target does not name the revoker');
  t.match(refused.json?.message, /does not name .* as a designated revoker/);

  // 2. and 4.: the replacement key, certified, re-signs; consumers accept it at once
  const web2 = makeKey(p.dir, ['Acme Web Builds <web@acme.example>', 'boxsig:acme/web'], [], p.pub);
  const c2 = path.join(p.dir, 'web2.certified.asc');
  t.equal(boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'acme/web', web2.public, '-o', c2], { env: p.pub }).code, 0);
  const box2 = p.sign(['--key', web2.secret, '--cert', c2]);
  const a2 = p.add(box2.out);
  t.equal(a2.code, 0, `the replacement key is accepted through the chain: ${a2.stdout}`);
});

t.test('GnuPG designated revokers: addrevoker and --desig-revoke', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg')) return;
  const p = people(t);
  const home = gnupgHome(t);
  const genv = { ...process.env, GNUPGHOME: home };
  const gpg = (args: string[], input?: string) => must('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: genv, input });
  // GnuPG's interactive commands, answered on the command fd (not in --batch mode)
  const gpgAsk = (args: string[], answers: string) =>
    must('gpg', ['--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', '--command-fd', '0', ...args], { env: genv, input: answers });
  const fprOf = (uid: string) =>
    gpg(['--with-colons', '--list-keys', `=${uid}`])
      .split('\n')
      .find((l) => l.startsWith('fpr:'))!
      .split(':')[9];
  gpg(['--quick-gen-key', 'Officer <officer@acme.example>', 'ed25519', 'cert,sign', 'never']);
  gpg(['--quick-gen-key', 'Acme Web <web@acme.example>', 'ed25519', 'sign', 'never']);
  const officer = fprOf('Officer <officer@acme.example>');
  const web = fprOf('Acme Web <web@acme.example>');
  gpgAsk(['--edit-key', web], `addrevoker\n${officer}\ny\nsave\n`);
  t.match(gpg(['--with-colons', '--list-keys', web]), new RegExp(`^rvk:[^\\n]*${officer}`, 'm'), 'GnuPG recorded the designated revoker');
  const webSecret = path.join(p.dir, 'web.secret.asc');
  fs.writeFileSync(webSecret, gpg(['--armor', '--export-secret-keys', web]));
  const box = p.sign(['--key', webSecret]);
  t.equal(box.code, 0, box.stderr);
  const pinned = (b: string) => boxsig(['verify', b, '--pin', web, '--json'], { env: p.con, cwd: p.consumerDir });
  const ok = pinned(box.out);
  t.equal(ok.code, 0, `a GnuPG key naming a designated revoker verifies: ${ok.stdout}`);
  // GnuPG's reasons: 0 none, 1 compromised, 2 superseded, 3 no longer used
  const desig = gpgAsk(['--armor', '--desig-revoke', web], 'y\n1\nstolen laptop\n\ny\n');
  const certFile = path.join(p.dir, 'desig.rev');
  fs.writeFileSync(certFile, desig);
  const officerPublic = path.join(p.dir, 'officer.asc');
  fs.writeFileSync(officerPublic, gpg(['--armor', '--export', officer]));
  t.equal(boxsig(['key', 'import', officerPublic, certFile], { env: p.con }).code, 0);
  const revoked = pinned(box.out);
  t.equal(revoked.json?.code, 'KEY_REVOKED', `revoked by GnuPG's designated revocation: ${revoked.json?.message}`);
});
