/**
 * Files of key material (issue 16 classes 2 and 8, and the keyring's
 * atomicity): every write goes through one helper — exclusive temporary
 * file, no symlink following, mode 0600 from the first byte for secret
 * material, fsync, atomic rename — so a planted symlink is replaced, not
 * followed, a world-readable target does not stay world-readable, a command
 * that writes several files checks them all first, and a keyring file is
 * never half-written whatever happens to the process.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, boxsig, boxsigAsync, isolatedEnv, makeKey } from './helpers.js';
import { readKeyData } from '../src/keys/keys.js';
import { armorKey, certification, ed25519Key, keyPacket, selfCert, uidPacket } from './pgp-craft.js';

const mode = (f: string) => fs.statSync(f).mode & 0o777;
const leftovers = (dir: string) => fs.readdirSync(dir).filter((n) => n.includes('.tmp-'));

function setup(t: any) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const victim = path.join(dir, 'victim.txt');
  fs.writeFileSync(victim, 'precious\n');
  const plant = (at: string) => {
    fs.rmSync(at, { force: true });
    fs.symlinkSync(victim, at);
  };
  const victimIntact = (t: any, what: string) => t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', `${what}: the symlink's target is untouched`);
  return { dir, env, victim, plant, victimIntact };
}

t.test('key generate checks all three outputs before writing any', async (t) => {
  const s = setup(t);
  const prefix = path.join(s.dir, 'k');
  fs.writeFileSync(`${prefix}.revocation.asc`, 'an old revocation certificate\n');
  const r = boxsig(['key', 'generate', '--uid', 'K <k@example.org>', '--out', prefix, '--json'], { env: s.env });
  t.equal(r.code, 2, 'refused');
  t.equal(r.json.code, 'EXISTS');
  t.match(r.json.message, `${prefix}.revocation.asc`);
  t.notOk(fs.existsSync(`${prefix}.secret.asc`), 'no secret key written');
  t.notOk(fs.existsSync(`${prefix}.public.asc`), 'no public key written');
  t.equal(fs.readFileSync(`${prefix}.revocation.asc`, 'utf8'), 'an old revocation certificate\n', 'the old certificate is kept, never reported as the new one');

  s.plant(`${prefix}2.secret.asc`);
  const l = boxsig(['key', 'generate', '--uid', 'K <k@example.org>', '--out', `${prefix}2`, '--json'], { env: s.env });
  t.equal(l.json.code, 'EXISTS', 'a planted symlink (even to an existing file) counts as an existing output');
  s.victimIntact(t, 'generate');
  fs.symlinkSync(path.join(s.dir, 'nowhere'), `${prefix}3.public.asc`);
  t.equal(
    boxsig(['key', 'generate', '--uid', 'K <k@example.org>', '--out', `${prefix}3`, '--json'], { env: s.env }).json.code,
    'EXISTS',
    'a dangling symlink too',
  );
  t.notOk(fs.existsSync(path.join(s.dir, 'nowhere')));

  const ok = boxsig(['key', 'generate', '--uid', 'K <k@example.org>', '--out', `${prefix}4`, '--json'], { env: s.env });
  t.equal(ok.code, 0, ok.stderr);
  t.equal(mode(`${prefix}4.secret.asc`), 0o600, 'secret key 0600');
  t.equal(mode(`${prefix}4.revocation.asc`), 0o600, 'revocation certificate 0600');
  t.equal(ok.json.revocationCertificate, `${prefix}4.revocation.asc`);
  const imported = boxsig(['key', 'import', ok.json.revocationCertificate, '--json'], { env: s.env });
  t.match(imported.json.imported[0].revocations[0], { issuer: ok.json.fingerprint }, "the certificate written is the new key's");
  t.same(leftovers(s.dir), [], 'no temporary file left');
});

t.test('key add-uid, key certify -o and key revoke -o replace symlinks and loose permissions', async (t) => {
  const s = setup(t);
  const org = makeKey(s.dir, 'Org <org@example.org>', [], s.env);
  const repo = makeKey(s.dir, 'Repo <repo@example.org>', [], s.env);

  // in place, with a world-readable secret key and a symlink where the public key goes
  fs.chmodSync(repo.secret, 0o644);
  s.plant(repo.public);
  const inPlace = boxsig(['key', 'add-uid', '--key', repo.secret, '--uid', 'boxsig:acme/*', '--json'], { env: s.env });
  t.equal(inPlace.code, 0, inPlace.stderr);
  t.equal(mode(repo.secret), 0o600, 'the rewritten secret key is 0600, not left world-readable');
  t.notOk(fs.lstatSync(repo.public).isSymbolicLink(), 'the symlink at the public key path was replaced');
  s.victimIntact(t, 'add-uid in place');

  // -o PREFIX with a symlink planted at PREFIX.secret.asc
  const out = path.join(s.dir, 'copy');
  s.plant(`${out}.secret.asc`);
  const withO = boxsig(['key', 'add-uid', '--key', repo.secret, '--uid', 'boxsig:acme/web', '-o', out, '--json'], { env: s.env });
  t.equal(withO.code, 0, withO.stderr);
  t.notOk(fs.lstatSync(`${out}.secret.asc`).isSymbolicLink(), 'the planted symlink was replaced');
  t.equal(mode(`${out}.secret.asc`), 0o600);
  t.match(fs.readFileSync(`${out}.secret.asc`, 'utf8'), /PRIVATE KEY BLOCK/);
  s.victimIntact(t, 'add-uid -o');

  // key certify -o
  const certified = path.join(s.dir, 'certified.asc');
  s.plant(certified);
  const c = boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'acme/*', withO.json.publicKey, '-o', certified, '--json'], { env: s.env });
  t.equal(c.code, 0, c.stderr);
  t.notOk(fs.lstatSync(certified).isSymbolicLink());
  s.victimIntact(t, 'certify -o');

  // key revoke -o, over a symlink and over a world-readable file
  const rev = path.join(s.dir, 'rev.asc');
  s.plant(rev);
  t.equal(boxsig(['key', 'revoke', '--key', repo.secret, '--reason', 'retired', '-o', rev], { env: s.env }).code, 0);
  t.notOk(fs.lstatSync(rev).isSymbolicLink());
  t.equal(mode(rev), 0o600);
  s.victimIntact(t, 'revoke -o');
  fs.chmodSync(rev, 0o644);
  t.equal(boxsig(['key', 'revoke', '--key', repo.secret, '--reason', 'retired', '-o', rev], { env: s.env }).code, 0);
  t.equal(mode(rev), 0o600, 'an existing world-readable certificate does not stay world-readable');
  t.same(leftovers(s.dir), [], 'no temporary file left');
});

t.test('key import: concurrent imports lose nothing; a killed import never leaves a half-written key', async (t) => {
  const s = setup(t);
  const k = ed25519Key(new Date(Date.now() - 3_600_000));
  const uid = 'boxsig:acme/*';
  const copies = Array.from({ length: 8 }, (_, i) => {
    const certifier = ed25519Key();
    const f = path.join(s.dir, `copy-${i}.asc`);
    fs.writeFileSync(f, armorKey(Buffer.concat([keyPacket(k), uidPacket(uid), selfCert(k, uid), certification(certifier, k, uid)])));
    return f;
  });
  const results = await Promise.all(copies.map((f) => boxsigAsync(['key', 'import', f, '--json'], { env: s.env })));
  t.same(
    results.map((r) => r.code),
    copies.map(() => 0),
  );
  const exported = boxsig(['key', 'export', k.fpr], { env: s.env }).stdout;
  const d = await readKeyData(Buffer.from(exported), 'export');
  t.equal(d.certs[0].users[0].sigs.length, 1 + copies.length, 'every certification of every concurrent import is kept');

  // SIGKILL at arbitrary moments of imports: the key file always parses whole
  const keyFile = path.join(s.env.BOXSIG_HOME!, 'keyring', `${k.fpr}.asc`);
  for (let i = 0; i < 12; i++) {
    const child = spawn(process.execPath, [CLI, 'key', 'import', copies[i % copies.length], copies[(i + 1) % copies.length]], { env: s.env, stdio: 'ignore' });
    // listen before the delay: an import may finish before the kill
    const closed = new Promise((r) => child.on('close', r));
    await new Promise((r) => setTimeout(r, 150 + ((i * 37) % 250)));
    child.kill('SIGKILL');
    await closed;
    const now = await readKeyData(fs.readFileSync(keyFile), keyFile);
    t.equal(now.certs[0].info.fingerprint, k.fpr, `kill ${i}: the keyring file is whole`);
  }
  const lock = path.join(s.env.BOXSIG_HOME!, 'trust.lock');
  if (fs.existsSync(lock)) t.comment('a killed import left its lock; the next one breaks it (dead owner)');
  t.equal(boxsig(['key', 'import', copies[0]], { env: s.env }).code, 0, 'the next import works');
});
