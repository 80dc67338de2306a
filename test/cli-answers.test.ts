/**
 * The command line answers like the tools people know:
 * - the same mistake gets the same answer (code and words) in every command
 *   that takes a box file (src/box/open.ts and the archive reader);
 * - strip without -o works in place, atomically, as sign does;
 * - key export takes what gpg takes (fingerprint with spaces, long key ID,
 *   a unique user ID) and lists the matches of an ambiguous one;
 * - signing through gpg without a usable pinentry says what to do (exit 3).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { boxsig, gnupgHome, isolatedEnv, makeBox, makeKey, must, requireTool, sign } from './helpers.js';

t.test('the same mistake gets the same answer in every command that takes a box', async (t) => {
  const dir = t.testdir({ d: {} });
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '', BOXSIG_REGISTRY_TOKEN: 'token' });
  const key = makeKey(dir, 'Acme <builds@acme.example>', [], env);
  const files: Record<string, string> = {
    missing: path.join(dir, 'missing.box'),
    directory: path.join(dir, 'd'),
    empty: path.join(dir, 'empty.box'),
    'not a box': path.join(dir, 'text.box'),
    'gzip of not a tar': path.join(dir, 'gz.box'),
  };
  fs.writeFileSync(files.empty, '');
  fs.writeFileSync(files['not a box'], 'hello, world\n');
  fs.writeFileSync(files['gzip of not a tar'], zlib.gzipSync('hello, world\n'));
  const expected: Record<string, { code: string; exit: number; message?: (f: string) => string }> = {
    missing: { code: 'IO', exit: 3, message: (f) => `${f}: no such file` },
    directory: { code: 'IO', exit: 3, message: (f) => `${f}: is a directory, not a box file` },
    empty: { code: 'MALFORMED', exit: 1 },
    'not a box': { code: 'MALFORMED', exit: 1 },
    'gzip of not a tar': { code: 'MALFORMED', exit: 1 },
  };
  const out = path.join(dir, 'out.box');
  const commands: Record<string, (f: string) => string[]> = {
    verify: (f) => ['verify', f],
    inspect: (f) => ['inspect', f],
    sign: (f) => ['sign', f, '--key', key.secret, '--name', 'acme/web', '--version', '1', '-o', out],
    strip: (f) => ['strip', f, '-o', out],
    add: (f) => ['add', f, '--name', 'acme/web', '--vagrant-home', path.join(dir, 'vh')],
    publish: (f) => ['publish', f, '--registry', 'http://127.0.0.1:9'],
  };
  for (const [kind, file] of Object.entries(files)) {
    const messages = new Set<string>();
    for (const [name, args] of Object.entries(commands)) {
      const r = boxsig([...args(file), '--json'], { env });
      const e = expected[kind];
      t.equal(r.json?.code, e.code, `${kind}, ${name}: ${e.code}`);
      t.equal(r.code, e.exit, `${kind}, ${name}: exit ${e.exit}`);
      if (e.message) t.equal(r.json?.message, e.message(file), `${kind}, ${name}: the words`);
      messages.add(r.json?.message);
      t.notOk(fs.existsSync(out), `${kind}, ${name}: no output written`);
    }
    t.equal(messages.size, 1, `${kind}: one message for all commands: ${[...messages].join(' | ')}`);
  }
});

t.test('strip without -o works in place, atomically, keeping the mode', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme <builds@acme.example>', [], env);
  const box = path.join(dir, 'web.box');
  t.equal(sign(makeBox(path.join(dir, 'raw.box')), [key], ['--name', 'acme/web', '--version', '1', '-o', box], env).code, 0);
  fs.chmodSync(box, 0o640);
  const before = fs.statSync(box).size;
  const r = boxsig(['strip', box, '--json'], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.hadSignature, true);
  t.equal(r.json.output, box);
  t.equal(fs.statSync(box).size, before - r.json.removed, 'the .boxsig/ member is gone');
  t.equal(fs.statSync(box).mode & 0o777, 0o640, 'the mode is kept');
  t.equal(boxsig(['inspect', box, '--json'], { env }).json.signed, false, 'the box is unsigned now');
  t.same(
    fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file left',
  );
  const again = boxsig(['strip', box], { env });
  t.equal(again.code, 0);
  t.match(again.stdout, /was not signed; left as it is/);
  t.equal(fs.statSync(box).size, before - r.json.removed, 'an unsigned box is left alone');
});

t.test('key export takes a fingerprint with spaces, a long key ID or a unique user ID', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const a = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const b = makeKey(dir, 'Acme Releases <releases@acme.example>', [], env);
  t.equal(boxsig(['key', 'import', a.public, b.public], { env }).code, 0);
  const spaced = a.fingerprint.match(/.{4}/g)!.join(' ');
  for (const q of [
    a.fingerprint,
    spaced,
    a.fingerprint.toLowerCase(),
    a.fingerprint.slice(-16),
    `0x${a.fingerprint.slice(-16)}`,
    'builds@acme.example',
    '<builds@acme.example>',
    'Acme Builds',
  ]) {
    const r = boxsig(['key', 'export', q, '--json'], { env });
    t.equal(r.code, 0, `${q}: found`);
    t.equal(r.json?.fingerprint, a.fingerprint, `${q}: the right key`);
    t.match(r.json?.key, /BEGIN PGP PUBLIC KEY BLOCK/);
  }
  const plain = boxsig(['key', 'export', 'builds@acme.example'], { env });
  t.match(plain.stdout, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/, 'without --json: the armored key on stdout');
  const amb = boxsig(['key', 'export', 'acme.example', '--json'], { env });
  t.equal(amb.code, 2);
  t.equal(amb.json.code, 'USAGE', 'an ambiguous user ID is a usage error');
  t.match(amb.json.message, a.fingerprint, 'listing the matches');
  t.match(amb.json.message, b.fingerprint);
  const short = boxsig(['key', 'export', a.fingerprint.slice(-8), '--json'], { env });
  t.equal(short.json.code, 'USAGE', 'a short key ID is refused');
  t.match(short.json.message, /long key ID/);
  const none = boxsig(['key', 'export', 'nobody@example.org', '--json'], { env });
  t.equal(none.json.code, 'NOT_FOUND');
  t.equal(none.code, 2);
});

t.test('sign --gpg-key without a usable pinentry says what to do and exits 3', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg')) return;
  const dir = t.testdir({});
  const home = gnupgHome(t);
  const env = isolatedEnv(dir, { GNUPGHOME: home, BOXSIG_PASSPHRASE: '' });
  delete env.BOXSIG_PASSPHRASE;
  delete env.GPG_TTY;
  delete env.DISPLAY;
  const uid = 'Acme GPG <gpg@acme.example>';
  must('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', 'secret', '--quick-gen-key', uid, 'ed25519', 'sign', 'never'], { env });
  const fpr = must('gpg', ['--batch', '--with-colons', '--list-secret-keys', `=${uid}`], { env })
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9];
  const raw = makeBox(path.join(dir, 'raw.box'));
  const out = path.join(dir, 'signed.box');
  const r = boxsig(['sign', raw, '--gpg-key', fpr, '--name', 'acme/web', '--version', '1', '-o', out, '--json'], { env, input: '' });
  t.equal(r.code, 3, 'exit 3: not a usage error');
  t.equal(r.json?.code, 'IO');
  t.match(r.json?.message, /no usable pinentry/);
  t.match(r.json?.hint, /GPG_TTY/);
  t.match(r.json?.hint, /--passphrase-file/);
  const lines = (r.json?.message as string).split('\n').filter((l) => l.startsWith('gpg:'));
  t.equal(new Set(lines).size, lines.length, "gpg's lines appear once");
  t.notOk(fs.existsSync(out), 'nothing written');
  const pf = path.join(dir, 'pass');
  fs.writeFileSync(pf, 'secret\n');
  const ok = boxsig(['sign', raw, '--gpg-key', fpr.slice(-16), '--passphrase-file', pf, '--name', 'acme/web', '--version', '1', '-o', out, '--json'], { env });
  t.equal(ok.code, 0, `--passphrase-file and a long key ID: signed ${ok.stderr}`);
  t.same(ok.json?.signers, [fpr]);
});
