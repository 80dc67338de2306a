/**
 * Every refusal code of PRODUCT.md, each produced by a real archive through
 * the public CLI: exit status 1, the code in the message and in --json.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { boxsig, isolatedEnv, makeBox, makeKey, must, sign, type KeyFiles, trustStoreText } from './helpers.js';
import { baseFiles, manifestFor } from './corpus/generate.mjs';
import { craftBox } from './keys-helpers.js';
import { FLAGS, detached, ed25519Key, publicKey, sp, type CraftKey } from './pgp-craft.js';
import { recordFileName } from '../src/trust/record-files.js';

const DAY = 86_400_000;

function expectRefusal(t: any, r: { code: number; json: any; stderr: string }, code: string, what: string) {
  t.equal(r.code, 1, `${what}: exit status 1 (${r.stderr.trim().split('\n')[0]})`);
  t.equal(r.json?.ok, false, `${what}: ok false`);
  t.equal(r.json?.code, code, `${what}: code ${code}`);
  t.match(r.stderr, `REFUSED (${code})`, `${what}: the code is in the message`);
  t.notMatch(r.stderr, /\n\s+at .+:\d+:\d+/, `${what}: no stack trace`);
}

/** Extract a signed box and re-tar it (with GNU tar, .boxsig first) after `edit`. */
function retar(signed: string, out: string, edit: (dir: string) => string[] | void, compress = true): string {
  const dir = `${out}.d`;
  fs.mkdirSync(dir, { recursive: true });
  must('tar', ['xf', signed, '-C', dir]);
  const extra = edit(dir) ?? [];
  const names = [
    '.boxsig',
    ...fs
      .readdirSync(dir)
      .filter((n) => n !== '.boxsig')
      .sort(),
    ...extra,
  ];
  must('tar', [compress ? 'czf' : 'cf', out, '-C', dir, ...names]);
  return out;
}

interface Fixture {
  dir: string;
  env: NodeJS.ProcessEnv;
  key: KeyFiles;
  other: KeyFiles;
  signed: string;
}

function fixture(t: any): Fixture {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const other = makeKey(dir, 'Mallory <m@evil.example>', [], env);
  const box = makeBox(path.join(dir, 'base.box'));
  const signed = path.join(dir, 'signed.box');
  const r = sign(box, [key], ['--name', 'acme/box', '--version', '1.0.0', '--claim', 'builder=dev', '-o', signed], env);
  if (r.code !== 0) throw new Error(r.stderr);
  return { dir, env, key, other, signed };
}

t.test('archive refusals', async (t) => {
  const f = fixture(t);
  const { dir, env } = f;
  const v = (box: string, ...args: string[]) => boxsig(['verify', box, '--json', ...args], { env });

  t.equal(v(f.signed).code, 0, 'the untouched box verifies');

  const unsigned = makeBox(path.join(dir, 'unsigned.box'));
  expectRefusal(t, v(unsigned), 'UNSIGNED', 'unsigned box');
  expectRefusal(t, v(unsigned, '--name', 'acme/box'), 'UNSIGNED', 'unsigned box with a name, signatures required by default');

  // one byte of the disk image changed
  const tampered = retar(f.signed, path.join(dir, 'tampered.box'), (d) => {
    const p = path.join(d, 'box-disk1.vmdk');
    const b = fs.readFileSync(p);
    b[1234] ^= 0xff;
    fs.writeFileSync(p, b);
  });
  expectRefusal(t, v(tampered), 'TAMPERED', 'one byte of the disk image changed');
  // a file larger than the manifest says: refused at its header
  const bigger = retar(f.signed, path.join(dir, 'bigger.box'), (d) => fs.appendFileSync(path.join(d, 'Vagrantfile'), '# more\n'));
  expectRefusal(t, v(bigger), 'TAMPERED', 'a file larger than signed');
  const added = retar(f.signed, path.join(dir, 'added.box'), (d) => fs.writeFileSync(path.join(d, 'extra.sh'), 'echo hi\n'));
  expectRefusal(t, v(added), 'UNLISTED_FILE', 'a file added');
  const removed = retar(f.signed, path.join(dir, 'removed.box'), (d) => fs.rmSync(path.join(d, 'Vagrantfile')));
  expectRefusal(t, v(removed), 'MISSING_FILE', 'a file removed');
  // the manifest edited (a hash digit changed: still canonical JSON)
  const edited = retar(f.signed, path.join(dir, 'edited.box'), (d) => {
    const p = path.join(d, '.boxsig/manifest.json');
    const m = fs.readFileSync(p, 'utf8');
    fs.writeFileSync(
      p,
      m.replace(/"sha256":"(.)/, (_x, c) => `"sha256":"${c === '0' ? '1' : '0'}`),
    );
  });
  expectRefusal(t, v(edited), 'BAD_SIGNATURE', 'the manifest edited');
  // a manifest edited into non-canonical JSON
  const spaced = retar(f.signed, path.join(dir, 'spaced.box'), (d) => {
    const p = path.join(d, '.boxsig/manifest.json');
    fs.writeFileSync(p, JSON.stringify(JSON.parse(fs.readFileSync(p, 'utf8')), null, 2));
  });
  expectRefusal(t, v(spaced), 'MALFORMED', 'a non-canonical manifest');
  // a signature from another key in the signer's file
  const swapped = retar(f.signed, path.join(dir, 'swapped.box'), (d) => {
    const other = path.join(dir, 'other-sig.box');
    // a signature by the other key (over its own manifest) put in the signer's file
    const r = sign(f.signed, [f.other], ['--fresh', '-o', other], env);
    if (r.code !== 0) throw new Error(r.stderr);
    const od = path.join(dir, 'other-sig.d');
    fs.mkdirSync(od, { recursive: true });
    must('tar', ['xf', other, '-C', od]);
    fs.copyFileSync(path.join(od, `.boxsig/signatures/${f.other.fingerprint}.asc`), path.join(d, `.boxsig/signatures/${f.key.fingerprint}.asc`));
  });
  expectRefusal(t, v(swapped), 'BAD_SIGNATURE', 'a signature from another key');
  // signed for another name/version/provider than asked
  expectRefusal(t, v(f.signed, '--name', 'acme/other'), 'WRONG_BOX', 'another name');
  expectRefusal(t, v(f.signed, '--version', '2.0.0'), 'WRONG_BOX', 'another version');
  expectRefusal(t, v(f.signed, '--provider', 'libvirt'), 'WRONG_BOX', 'another provider');
  // signed by a key other than the pinned one
  expectRefusal(t, v(f.signed, '--pin', f.other.fingerprint), 'UNTRUSTED_KEY', 'pinned to another key');
  // links and duplicates
  const linked = retar(f.signed, path.join(dir, 'linked.box'), (d) => {
    fs.symlinkSync('/etc/passwd', path.join(d, 'passwd'));
  });
  expectRefusal(t, v(linked), 'UNSAFE_ENTRY', 'a symbolic link');
  const dup = retar(f.signed, path.join(dir, 'dup.box'), () => undefined, false);
  must('tar', ['--append', '-f', dup, '-C', `${dup}.d`, 'Vagrantfile']);
  expectRefusal(t, v(dup), 'DUPLICATE_ENTRY', 'a duplicate path');
  // truncated gzip
  const whole = fs.readFileSync(f.signed);
  const truncated = path.join(dir, 'truncated.box');
  fs.writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length * 0.6)));
  expectRefusal(t, v(truncated), 'MALFORMED', 'a truncated gzip stream');
  const garbage = path.join(dir, 'garbage.box');
  fs.writeFileSync(garbage, Buffer.concat([whole, Buffer.from('trailing garbage')]));
  expectRefusal(t, v(garbage), 'MALFORMED', 'garbage after the gzip stream');
  const notabox = path.join(dir, 'notabox.box');
  fs.writeFileSync(notabox, zlib.gzipSync(Buffer.from('just some text, not a tar archive')));
  expectRefusal(t, v(notabox), 'MALFORMED', 'gzip of something that is not tar');
});

t.test('policy refusals: threshold, claims, expiry', async (t) => {
  const f = fixture(t);
  const { dir, env } = f;
  const cfg = (doc: unknown) => fs.writeFileSync(path.join(dir, 'boxsig.json'), JSON.stringify(doc));
  const v = (box: string) => boxsig(['verify', box, '--json'], { env, cwd: dir });

  cfg({ boxes: { 'acme/*': { pin: [f.key.fingerprint, f.other.fingerprint], threshold: 2 } } });
  expectRefusal(t, v(f.signed), 'THRESHOLD_NOT_MET', 'one of two required signers');
  const both = path.join(dir, 'both.box');
  t.equal(sign(f.signed, [f.other], ['-o', both], env).code, 0, 'co-signing keeps the first signature');
  t.equal(v(both).code, 0, 'two of two required signers');

  cfg({ boxes: { 'acme/*': { pin: [f.key.fingerprint], claims: { builder: 'ci-prod' } } } });
  expectRefusal(t, v(f.signed), 'CLAIM_MISMATCH', 'claim builder=dev where ci-prod is required');
  cfg({ boxes: { 'acme/*': { pin: [f.key.fingerprint], claims: { builder: 'dev' } } } });
  t.equal(v(f.signed).code, 0, 'the required claim is present');

  // an expired manifest: signed with an expiry already past (no waiting, whatever the machine's speed)
  fs.rmSync(path.join(dir, 'boxsig.json'));
  const short = craftedBox(path.join(dir, 'short.box'), ed25519Key(new Date(Date.now() - 10 * DAY)), {
    created: new Date(Date.now() - 3 * DAY),
    expires: new Date(Date.now() - DAY),
  });
  expectRefusal(t, v(short), 'EXPIRED', 'a manifest past its expiry');
  cfg({ boxes: { '*': { expiry: 'warn' } } });
  const warned = v(short);
  t.equal(warned.code, 0, 'expiry: warn accepts it');
  t.match(warned.json.warnings.join('\n'), /expired/);
});

/**
 * A box signed by crafted KEY (pgp-craft.ts: any creation time, any expiry),
 * its manifest made at `created` and signed a minute later: dates in the past
 * stand for "before" and "after", so nothing waits for a clock.
 */
function craftedBox(file: string, key: CraftKey, o: { created: Date; expires?: Date; keyExpiresSeconds?: number }): string {
  const manifest = manifestFor(baseFiles(), { created: o.created, expires: o.expires });
  const selfSig = o.keyExpiresSeconds ? { hashed: [sp.keyFlags(FLAGS.certify | FLAGS.sign), sp.keyExpires(o.keyExpiresSeconds)] } : {};
  craftBox(file, {
    manifest,
    signatures: [{ fpr: key.fpr, packet: detached(key, manifest, { created: new Date(o.created.getTime() + 60_000) }) }],
    keys: [{ fpr: key.fpr, packet: publicKey(key, 'Short Lived <s@acme.example>', [], selfSig) }],
  });
  return file;
}

t.test('key refusals: expired and revoked keys', async (t) => {
  const f = fixture(t);
  const { dir, env } = f;
  // a key made ten days ago that expired a day later: a signature from its first day and one made now
  const made = new Date(Date.now() - 10 * DAY);
  const shortKey = ed25519Key(made);
  const valid = { keyExpiresSeconds: DAY / 1000 };
  const signed = craftedBox(path.join(dir, 'k-signed.box'), shortKey, { created: new Date(made.getTime() + DAY / 2), ...valid });
  t.equal(boxsig(['verify', signed, '--json'], { env }).code, 0, 'a signature made before the key expired stays valid');
  const lateBox = craftedBox(path.join(dir, 'late2.box'), shortKey, { created: new Date(Date.now() - 120_000), ...valid });
  expectRefusal(t, boxsig(['verify', lateBox, '--json'], { env }), 'KEY_EXPIRED', 'a signature made after the key expired');

  // a revoked key: compromised invalidates every signature
  const rev = path.join(dir, 'rev.asc');
  t.equal(boxsig(['key', 'revoke', '--key', f.key.secret, '--reason', 'compromised', '-o', rev], { env }).code, 0);
  t.equal(boxsig(['key', 'revoke', '--import', rev], { env }).code, 0);
  expectRefusal(t, boxsig(['verify', f.signed, '--json'], { env }), 'KEY_REVOKED', 'a key revoked as compromised');
});

t.test('add refusals: key change, rollback, checksum', async (t) => {
  const f = fixture(t);
  const { dir, env } = f;
  const home = env.VAGRANT_HOME!;
  const listing = () =>
    fs.existsSync(home)
      ? must('find', [path.join(home, 'boxes')])
          .split('\n')
          .sort()
          .join('\n')
      : '';
  const add = (box: string, ...args: string[]) => boxsig(['add', box, '--json', '--quiet', ...args], { env });

  const v2 = path.join(dir, 'v2.box');
  t.equal(sign(f.signed, [f.key], ['--version', '2.0.0', '--fresh', '-o', v2], env).code, 0);
  t.equal(add(v2).code, 0, 'first add: trust on first use');
  const trustBefore = trustStoreText(env.BOXSIG_HOME!);
  const before = listing();

  const rogue = path.join(dir, 'rogue.box');
  t.equal(sign(f.signed, [f.other], ['--version', '3.0.0', '--fresh', '-o', rogue], env).code, 0);
  const changed = add(rogue);
  expectRefusal(t, changed, 'KEY_CHANGED', 'a new key for the same name');
  t.match(changed.json.message, f.key.fingerprint, 'shows the old fingerprint');
  t.match(changed.json.message, f.other.fingerprint, 'shows the new fingerprint');
  t.match(changed.json.message, `boxsig trust accept acme/box ${f.other.fingerprint}`, 'shows the command that accepts the new key');
  t.match(changed.json.message, path.join(env.BOXSIG_HOME!, 'records', recordFileName('acme/box')), 'says where the record lives');
  t.equal(listing(), before, 'the boxes directory is unchanged');
  t.equal(trustStoreText(env.BOXSIG_HOME!), trustBefore, 'the trust record is unchanged');

  expectRefusal(t, add(f.signed), 'ROLLBACK', 'an older version');
  t.equal(listing(), before, 'the boxes directory is unchanged after ROLLBACK');
  t.equal(add(f.signed, '--allow-downgrade').code, 0, '--allow-downgrade accepts it deliberately');

  const v3 = path.join(dir, 'v3.box');
  t.equal(sign(f.signed, [f.key], ['--version', '3.0.0', '--fresh', '-o', v3], env).code, 0);
  const before2 = listing();
  expectRefusal(t, add(v3, '--checksum', '0'.repeat(64), '--checksum-type', 'sha256'), 'CHECKSUM_MISMATCH', 'a wrong checksum');
  t.equal(listing(), before2, 'the boxes directory is unchanged after CHECKSUM_MISMATCH');
});
