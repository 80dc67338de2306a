/**
 * Key generation, passphrases, signing through GnuPG, co-signing and
 * re-signing, strip, inspect, verify --dir, and the library API.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, gpgKey, isolatedEnv, makeBox, makeKey, must, requireTool, sh, sign, trustRecords } from './helpers.js';
import { BoxsigError, signBox, verifyBox, inspectBox, stripBox, generateKey, loadSecretKey, signerFromKey, TrustStore } from '../src/index.js';

t.test('key generate: files, modes, passphrases, types', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir);
  const passFile = path.join(dir, 'pass.txt');
  fs.writeFileSync(passFile, 'correct horse\n');
  const r = boxsig(
    ['key', 'generate', '--uid', 'Acme <a@acme.example>', '--out', path.join(dir, 'k'), '--passphrase-file', passFile, '--expires', '2y', '--json'],
    { env },
  );
  t.equal(r.code, 0, r.stderr);
  t.match(r.json.fingerprint, /^[0-9A-F]{40}$/);
  t.equal(fs.statSync(path.join(dir, 'k.secret.asc')).mode & 0o777, 0o600, 'the secret key is mode 0600');
  t.ok(r.json.protected);
  t.match(fs.readFileSync(path.join(dir, 'k.public.asc'), 'utf8'), /BEGIN PGP PUBLIC KEY BLOCK/);
  t.equal(boxsig(['key', 'generate', '--uid', 'X', '--out', path.join(dir, 'k')], { env }).code, 2, 'an existing key is never overwritten');
  t.equal(boxsig(['key', 'generate', '--uid', 'X', '--passphrase', 'x'], { env }).code, 2, 'there is no plain passphrase flag');

  const box = makeBox(path.join(dir, 'b.box'));
  const out = path.join(dir, 'signed.box');
  const noPass = boxsig(['sign', box, '--key', path.join(dir, 'k.secret.asc'), '--name', 'acme/p', '--version', '1', '-o', out, '--json'], { env });
  t.equal(noPass.code, 2, 'a protected key without a passphrase is a usage error (no TTY)');
  t.match(noPass.json.message, /passphrase/);
  const wrong = boxsig(['sign', box, '--key', path.join(dir, 'k.secret.asc'), '--name', 'acme/p', '--version', '1', '-o', out, '--json'], {
    env: { ...env, BOXSIG_PASSPHRASE: 'wrong' },
  });
  t.equal(wrong.code, 2);
  t.notOk(fs.existsSync(out), 'nothing written on failure');
  t.equal(
    boxsig(['sign', box, '--key', path.join(dir, 'k.secret.asc'), '--name', 'acme/p', '--version', '1', '-o', out], {
      env: { ...env, BOXSIG_PASSPHRASE: 'correct horse' },
    }).code,
    0,
    'BOXSIG_PASSPHRASE unlocks it',
  );
  t.equal(
    boxsig(['sign', box, '--key', path.join(dir, 'k.secret.asc'), '--name', 'acme/p', '--version', '1', '-o', out, '--passphrase-file', passFile], { env })
      .code,
    0,
    '--passphrase-file unlocks it',
  );
  t.equal(
    boxsig(['sign', box, '--key', path.join(dir, 'k.public.asc'), '--name', 'acme/p', '--version', '1', '-o', out], { env }).code,
    2,
    'a public key cannot sign',
  );
});

t.test('sign: provider from metadata.json, contradictions, co-signing, re-signing, strip', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const a = makeKey(dir, 'A <a@x.example>', [], env);
  const b = makeKey(dir, 'B <b@x.example>', [], env);
  const box = makeBox(path.join(dir, 'lv.box'), { provider: 'libvirt' });
  const s1 = path.join(dir, 's1.box');
  const r = sign(box, [a], ['--name', 'acme/lv', '--version', '1.0', '-o', s1], env);
  t.equal(r.json.box.provider, 'libvirt', 'the provider comes from metadata.json');
  const contra = sign(box, [a], ['--name', 'acme/lv', '--version', '1.0', '--provider', 'virtualbox', '-o', path.join(dir, 'x.box')], env);
  t.equal(contra.code, 2, 'a contradicting --provider is a usage error');
  t.match(contra.json.message, /contradicts metadata\.json/);
  const nometa = path.join(dir, 'nometa.box');
  fs.mkdirSync(path.join(dir, 'nm'));
  fs.writeFileSync(path.join(dir, 'nm', 'disk.img'), 'x');
  must('tar', ['czf', nometa, '-C', path.join(dir, 'nm'), 'disk.img']);
  t.equal(sign(nometa, [a], ['--name', 'acme/x', '--version', '1', '-o', path.join(dir, 'y.box')], env).code, 2, 'metadata.json must exist');

  // pre-release versions as RubyGems writes them; a missing output directory is created
  const rc = sign(box, [a], ['--name', 'acme/lv', '--version', '1.0.0-rc.1', '-o', path.join(dir, 'new', 'dir', 'rc.box')], env);
  t.equal(rc.code, 0, rc.stderr);
  t.equal(boxsig(['verify', path.join(dir, 'new', 'dir', 'rc.box'), '--version', '1.0.0-rc.1'], { env }).code, 0);
  // a reader that stops early is not an error
  const piped = sh('sh', ['-c', `"${process.execPath}" "${path.join(process.cwd(), 'dist/cli/main.js')}" inspect "${s1}" | head -c1 >/dev/null; echo $?`], {
    env,
  });
  t.notMatch(piped.stderr, /EPIPE|at .*:\d+:\d+/, 'no stack trace when stdout closes early');

  // co-signing keeps the first signature; no duplicate .boxsig entries
  const s2 = path.join(dir, 's2.box');
  const co = sign(s1, [b], ['-o', s2], env);
  t.equal(co.code, 0, co.stderr);
  t.same(co.json.kept, [a.fingerprint]);
  t.same(co.json.signers, [a.fingerprint, b.fingerprint].sort());
  const list = must('tar', ['tzf', s2]).split('\n').filter(Boolean);
  t.equal(list.filter((l) => l === '.boxsig/manifest.json').length, 1, 'one manifest');
  t.equal(list.filter((l) => l.startsWith('.boxsig/signatures/') && l.endsWith('.asc')).length, 2, 'two signatures, no duplicates');
  const orig = fs.readFileSync(box);
  t.ok(fs.readFileSync(s2).subarray(-orig.length).equals(orig), 're-signing keeps the original gzip bytes');
  // re-signing with a new version drops the old signatures
  const s3 = path.join(dir, 's3.box');
  const re = sign(s2, [b], ['--version', '1.1', '-o', s3], env);
  t.same(re.json.signers, [b.fingerprint]);
  t.equal(re.json.dropped.length, 1);
  // in-place signing (no -o) replaces the file atomically
  const inplace = path.join(dir, 'inplace.box');
  fs.copyFileSync(box, inplace);
  t.equal(sign(inplace, [a], ['--name', 'acme/lv', '--version', '2'], env).code, 0);
  t.equal(boxsig(['verify', inplace], { env }).code, 0);
  t.same(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp')),
    [],
    'no temporary files left',
  );

  // strip: back to the original bytes, without recompression
  const stripped = path.join(dir, 'stripped.box');
  const st = boxsig(['strip', s2, '-o', stripped, '--json'], { env });
  t.equal(st.code, 0, st.stderr);
  t.ok(fs.readFileSync(stripped).equals(orig), 'strip gives back the original box byte for byte');
  t.equal(boxsig(['verify', stripped, '--json'], { env }).json.code, 'UNSIGNED');
  // plain tar too
  const plain = makeBox(path.join(dir, 'p.box'), { compress: 'none' });
  const ps = path.join(dir, 'ps.box');
  t.equal(sign(plain, [a], ['--name', 'acme/p', '--version', '1', '-o', ps], env).code, 0);
  const pst = path.join(dir, 'pst.box');
  t.equal(boxsig(['strip', ps, '-o', pst], { env }).code, 0);
  t.ok(fs.readFileSync(pst).equals(fs.readFileSync(plain)), 'strip of a plain tar box gives back the original');

  // inspect shows without judging
  const ins = boxsig(['inspect', s2, '--json'], { env });
  t.equal(ins.code, 0);
  t.equal(ins.json.manifest.box.name, 'acme/lv');
  t.equal(ins.json.signers.length, 2);
  t.equal(boxsig(['inspect', box, '--json'], { env }).json.signed, false);
});

t.test('sign --gpg-key signs through gpg-agent with the same format', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg') || !requireTool(t, 'sqv', 'sqv')) return;
  const dir = t.testdir({});
  const k = gpgKey(t, dir, 'Agent Key <agent@acme.example>');
  const env = isolatedEnv(dir, { GNUPGHOME: k.home });
  const box = makeBox(path.join(dir, 'g.box'));
  const out = path.join(dir, 'g-signed.box');
  const r = boxsig(['sign', box, '--gpg-key', k.fingerprint, '--name', 'acme/gpg', '--version', '1', '-o', out, '--json'], { env });
  t.equal(r.code, 0, r.stderr);
  t.same(r.json.signers, [k.fingerprint]);
  const v = boxsig(['verify', out, '--pin', k.fingerprint, '--json'], { env });
  t.equal(v.code, 0, v.stderr);
  const x = path.join(dir, 'x');
  fs.mkdirSync(x);
  must('tar', ['xzf', out, '-C', x]);
  t.equal(
    sh('sqv', [
      '--keyring',
      path.join(x, `.boxsig/keys/${k.fingerprint}.asc`),
      path.join(x, `.boxsig/signatures/${k.fingerprint}.asc`),
      path.join(x, '.boxsig/manifest.json'),
    ]).code,
    0,
    'sqv verifies it',
  );
  t.equal(
    boxsig(['sign', box, '--gpg-key', '0'.repeat(40), '--name', 'acme/gpg', '--version', '1', '-o', out], { env }).code,
    2,
    'an unknown GnuPG key is a usage error',
  );
});

t.test('verify --dir checks an extracted box like an archive', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const k = makeKey(dir, 'D <d@x.example>', [], env);
  const box = makeBox(path.join(dir, 'd.box'));
  const signed = path.join(dir, 'ds.box');
  sign(box, [k], ['--name', 'acme/dir', '--version', '1.0', '-o', signed], env);
  const extract = (name: string) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    must('tar', ['xzf', signed, '-C', d]);
    return d;
  };
  const vd = (d: string, ...a: string[]) =>
    boxsig(['verify', '--dir', d, '--name', 'acme/dir', '--version', '1.0', '--provider', 'virtualbox', '--json', ...a], { env });
  t.equal(vd(extract('ok')).code, 0);
  const ex = extract('extra');
  fs.writeFileSync(path.join(ex, 'extra'), 'x');
  t.equal(vd(ex).json.code, 'UNLISTED_FILE');
  const mi = extract('missing');
  fs.rmSync(path.join(mi, 'Vagrantfile'));
  t.equal(vd(mi).json.code, 'MISSING_FILE');
  const ta = extract('tampered');
  const disk = path.join(ta, 'box-disk1.vmdk');
  const bytes = fs.readFileSync(disk);
  bytes[10] ^= 1;
  fs.writeFileSync(disk, bytes);
  t.equal(vd(ta).json.code, 'TAMPERED');
  const li = extract('link');
  fs.rmSync(path.join(li, 'Vagrantfile'));
  fs.symlinkSync('/etc/hostname', path.join(li, 'Vagrantfile'));
  t.equal(vd(li).json.code, 'UNSAFE_ENTRY');
  t.equal(boxsig(['verify', '--dir', extract('wrong'), '--name', 'acme/other', '--json'], { env }).json.code, 'WRONG_BOX');
  // --record: the plugin's add step records trust on first use and the version
  const rec = vd(extract('rec'), '--record', '--source', 'https://boxes.example/acme/dir');
  t.equal(rec.code, 0, rec.stderr);
  const record = trustRecords(env.BOXSIG_HOME!)['acme/dir'];
  t.same(record.keys, [k.fingerprint]);
  t.equal(record.highestVersion, '1.0');
  t.equal(record.source, 'https://boxes.example/acme/dir');
});

t.test('library API: typed results and BoxsigError codes', async (t) => {
  const dir = t.testdir({});
  const store = new TrustStore(path.join(dir, 'home'));
  const k = await generateKey({ userIds: ['Lib <lib@x.example>'] });
  const key = await loadSecretKey(Buffer.from(k.privateKey), 'lib key', async () => undefined);
  const box = makeBox(path.join(dir, 'l.box'));
  const out = path.join(dir, 'ls.box');
  const s = await signBox(box, { signers: [signerFromKey(key, 'lib')], name: 'acme/lib', version: '0.1.0', output: out, claims: { builder: 'lib' } });
  t.equal(s.box.name, 'acme/lib');
  t.same(s.signers, [k.fingerprint]);
  const v = await verifyBox(out, { store, layers: [], pins: [k.fingerprint] });
  t.equal(v.ok, true);
  t.same(v.claims, { builder: 'lib' });
  t.equal(v.signers[0].via, 'pin');
  const i = await inspectBox(out);
  t.equal(i.manifest?.box.version, '0.1.0');
  const caught = async (p: Promise<unknown>) =>
    p.then(
      () => null,
      (e: unknown) => e,
    );
  const wrong = await caught(verifyBox(out, { store, layers: [], expect: { name: 'acme/else' } }));
  t.ok(wrong instanceof BoxsigError, 'a refusal is a BoxsigError');
  t.equal((wrong as BoxsigError).code, 'WRONG_BOX');
  t.equal((wrong as BoxsigError).exitCode, 1);
  t.equal((wrong as BoxsigError).refused, true);
  const missing = await caught(verifyBox(path.join(dir, 'nope.box'), { store, layers: [] }));
  t.equal((missing as BoxsigError).exitCode, 3, 'an I/O failure exits with 3');
  const stripped = path.join(dir, 'lst.box');
  const sr = await stripBox(out, stripped);
  t.equal(sr.hadSignature, true);
});
