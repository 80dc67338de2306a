/**
 * Interoperability of the core: boxes made by GNU tar (not by boxsig), keys
 * made by GnuPG, signatures checked by gpg --verify and sqv, signed boxes
 * listed and extracted by GNU tar and bsdtar.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { boxsig, gnupgHome, gpgKey, isolatedEnv, makeBox, makeKey, must, requireTool, sh, sign, pseudoRandom } from './helpers.js';

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function checkWithStockTools(t: Test, signedBox: string, originalDir: string, pubKeys: string[], compressed: boolean) {
  const dir = fs.mkdtempSync(path.join(path.dirname(signedBox), 'stock-'));
  // GNU tar and bsdtar list and extract it; the extracted files match the originals
  for (const tool of ['tar', 'bsdtar']) {
    const out = path.join(dir, tool);
    fs.mkdirSync(out);
    const list = sh(tool, [compressed && tool === 'tar' ? 'tzf' : 'tf', signedBox]);
    t.equal(list.code, 0, `${tool} lists the signed box`);
    t.match(list.stdout, /\.boxsig\/manifest\.json/, `${tool} sees .boxsig/manifest.json`);
    const x = sh(tool, [compressed && tool === 'tar' ? 'xzf' : 'xf', signedBox, '-C', out]);
    t.equal(x.code, 0, `${tool} extracts the signed box: ${x.stderr}`);
    for (const f of fs.readdirSync(originalDir)) {
      t.equal(sha256(path.join(out, f)), sha256(path.join(originalDir, f)), `${tool}: ${f} matches the original`);
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(out, '.boxsig/manifest.json'), 'utf8'));
    for (const f of manifest.files) t.equal(sha256(path.join(out, f.path)), f.sha256, `${tool}: sha256sum of ${f.path} matches the manifest`);
    // every signature verifies with gpg and sqv against manifest.json
    const sigs = fs.readdirSync(path.join(out, '.boxsig/signatures'));
    t.ok(sigs.length >= 1);
    if (tool === 'tar') {
      const genv = { ...process.env, GNUPGHOME: gnupgHome(t) };
      for (const k of pubKeys) must('gpg', ['--batch', '--import', k], { env: genv });
      for (const s of sigs) {
        const sig = path.join(out, '.boxsig/signatures', s);
        const g = sh('gpg', ['--batch', '--verify', sig, path.join(out, '.boxsig/manifest.json')], { env: genv });
        t.equal(g.code, 0, `gpg --verify ${s}: ${g.stderr.split('\n').find((l) => /Good|BAD/.test(l)) ?? g.stderr}`);
        t.match(g.stderr, /Good signature/);
        if (requireTool(t, 'sqv', 'sqv')) {
          const keyring = path.join(out, '.boxsig/keys', s);
          const q = sh('sqv', ['--keyring', keyring, sig, path.join(out, '.boxsig/manifest.json')]);
          t.equal(q.code, 0, `sqv verifies ${s}: ${q.stderr}`);
          t.match(q.stdout, s.replace('.asc', ''));
        }
      }
    }
  }
}

t.test('GNU tar box signed with GnuPG-made keys verifies everywhere', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg') || !requireTool(t, 'bsdtar', 'libarchive-tools')) return;
  const dir = t.testdir({});
  const env = isolatedEnv(dir);
  const edk = gpgKey(t, dir, 'GnuPG Ed25519 <ed@example.org>', 'ed25519');
  const rsak = gpgKey(t, dir, 'GnuPG RSA <rsa@example.org>', 'rsa3072', 'sign', edk.home);
  const ed = { fpr: edk.fingerprint, secret: edk.secret, public: edk.public };
  const rsa = { fpr: rsak.fingerprint, secret: rsak.secret, public: rsak.public };
  const box = makeBox(path.join(dir, 'gnu.box'), {
    files: { Vagrantfile: 'Vagrant.configure("2") {}\n', 'box-disk1.vmdk': pseudoRandom(2_000_000, 7), 'box.ovf': '<ovf/>' },
  });
  const original = fs.readFileSync(box);
  const signed = path.join(dir, 'signed.box');
  const r = boxsig(
    ['sign', box, '--key', ed.secret, '--key', rsa.secret, '--name', 'acme/gnu', '--version', '2.0.1', '--claim', 'builder=ci-prod', '-o', signed, '--json'],
    { env },
  );
  t.equal(r.code, 0, r.stderr);
  t.same(r.json.signers, [ed.fpr, rsa.fpr].sort());
  t.same(fs.readFileSync(box), original, 'the input box is untouched with -o');
  // the original gzip bytes are carried unchanged after the leading member
  const out = fs.readFileSync(signed);
  t.ok(out.subarray(out.length - original.length).equals(original), 'the original gzip stream follows, byte for byte (no recompression)');
  const v = boxsig(['verify', signed, '--name', 'acme/gnu', '--version', '2.0.1', '--provider', 'virtualbox', '--pin', ed.fpr, '--json'], { env });
  t.equal(v.code, 0, v.stderr);
  t.equal(v.json.box.name, 'acme/gnu');
  t.same(v.json.claims, { builder: 'ci-prod' });
  t.equal(v.json.signers.length, 2);
  t.ok(v.json.signers.find((s: any) => s.fingerprint === ed.fpr).trusted);
  t.match(v.json.signers.find((s: any) => s.fingerprint === rsa.fpr).userIds, ['GnuPG RSA <rsa@example.org>']);
  checkWithStockTools(t, signed, `${box}.d`, [ed.public, rsa.public], true);
});

t.test('plain tar boxes, multi-member gzip and boxsig-made keys', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg') || !requireTool(t, 'bsdtar', 'libarchive-tools')) return;
  const dir = t.testdir({});
  const env = isolatedEnv(dir);
  const key = makeKey(dir, 'Boxsig Key <k@example.org>', [], { ...env, BOXSIG_PASSPHRASE: '' });
  // plain tar
  const plain = makeBox(path.join(dir, 'plain.box'), {
    compress: 'none',
    provider: 'libvirt',
    files: { 'box.img': pseudoRandom(700_000, 3), Vagrantfile: '# v\n' },
  });
  const ps = path.join(dir, 'plain-signed.box');
  t.equal(sign(plain, [key], ['--name', 'acme/plain', '--version', '1', '-o', ps], env).code, 0);
  t.equal(boxsig(['verify', ps, '--provider', 'libvirt'], { env }).code, 0);
  checkWithStockTools(t, ps, `${plain}.d`, [key.public], false);
  // multi-member gzip (as pigz or concatenated gzip produce)
  const mdir = path.join(dir, 'multi.d');
  fs.mkdirSync(mdir);
  fs.writeFileSync(path.join(mdir, 'metadata.json'), '{"provider":"virtualbox"}');
  fs.writeFileSync(path.join(mdir, 'disk.vmdk'), pseudoRandom(1_500_000, 9));
  const tarFile = path.join(dir, 'multi.tar');
  must('tar', ['cf', tarFile, '-C', mdir, 'metadata.json', 'disk.vmdk']);
  const tarBytes = fs.readFileSync(tarFile);
  const zlib = await import('node:zlib');
  const half = Math.floor(tarBytes.length / 2);
  const multi = path.join(dir, 'multi.box');
  fs.writeFileSync(multi, Buffer.concat([zlib.gzipSync(tarBytes.subarray(0, half)), zlib.gzipSync(tarBytes.subarray(half))]));
  const msigned = path.join(dir, 'multi-signed.box');
  const r = sign(multi, [key], ['--name', 'acme/multi', '--version', '3.1', '-o', msigned], env);
  t.equal(r.code, 0, r.stderr);
  t.equal(boxsig(['verify', msigned, '--pin', key.fingerprint], { env }).code, 0);
  checkWithStockTools(t, msigned, mdir, [key.public], true);
});

t.test('RSA 4096 keys from boxsig key generate', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg')) return;
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'RSA Builder <rsa@example.org>', ['--type', 'rsa4096'], env);
  const box = makeBox(path.join(dir, 'r.box'));
  const signed = path.join(dir, 'rs.box');
  t.equal(sign(box, [key], ['--name', 'acme/rsa', '--version', '1.0', '-o', signed], env).code, 0);
  const v = boxsig(['verify', signed, '--json'], { env });
  t.equal(v.code, 0);
  t.match(v.json.signers[0].algorithm, /rsa4096/i);
  checkWithStockTools(t, signed, `${box}.d`, [key.public], true);
});
