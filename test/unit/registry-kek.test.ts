/**
 * The key-encryption key of held keys (src/registry/escrow/kek.ts):
 * AES-256-GCM, a fresh nonce per wrap, the key's identity as associated
 * data; every way a wrapped key can be moved, altered or read with another
 * KEK fails with a CONFIG error; KEK files and values are checked.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AesGcmKeyEncryption, loadKeyEncryption, parseKek } from '../../src/registry/escrow/kek.js';
import { BoxsigError } from '../../src/errors.js';

const key = randomBytes(32);
const kek = new AesGcmKeyEncryption(key);
const secret = Buffer.from('-----BEGIN PGP PRIVATE KEY BLOCK-----\n…');

t.test('wrap and unwrap', async (t) => {
  const a = await kek.wrap(secret, 'org1/FPR1');
  const b = await kek.wrap(secret, 'org1/FPR1');
  t.not(a.toString('hex'), b.toString('hex'), 'a fresh nonce per wrap');
  t.notOk(a.includes(secret.subarray(0, 16)), 'no clear text in the wrapped key');
  t.same(await kek.unwrap(a, 'org1/FPR1'), secret, 'round trip');
});

t.test('what does not unwrap', async (t) => {
  const wrapped = await kek.wrap(secret, 'org1/FPR1');
  const flip = (i: number) => {
    const c = Buffer.from(wrapped);
    c[i] ^= 1;
    return c;
  };
  const cases: Array<[string, () => Promise<Buffer>]> = [
    ['another identity (a wrapped key copied onto another row)', () => kek.unwrap(wrapped, 'org1/FPR2')],
    ['another org', () => kek.unwrap(wrapped, 'org2/FPR1')],
    ['another KEK', () => new AesGcmKeyEncryption(randomBytes(32)).unwrap(wrapped, 'org1/FPR1')],
    ['a flipped ciphertext byte', () => kek.unwrap(flip(wrapped.length - 1), 'org1/FPR1')],
    ['a flipped tag byte', () => kek.unwrap(flip(1 + 8 + 12), 'org1/FPR1')],
    ['a flipped nonce byte', () => kek.unwrap(flip(1 + 8), 'org1/FPR1')],
    ['another format version', () => kek.unwrap(flip(0), 'org1/FPR1')],
    ['truncated', () => kek.unwrap(wrapped.subarray(0, 20), 'org1/FPR1')],
    ['empty', () => kek.unwrap(Buffer.alloc(0), 'org1/FPR1')],
  ];
  for (const [what, fn] of cases) {
    const e = await fn().then(
      () => null,
      (x: unknown) => x,
    );
    t.ok(e instanceof BoxsigError && e.code === 'CONFIG', what, { got: String(e) });
  }
});

t.test('KEK values', async (t) => {
  const raw = randomBytes(32);
  const ok: Array<[string, Buffer]> = [
    ['hex', Buffer.from(raw.toString('hex'))],
    ['hex with a newline', Buffer.from(raw.toString('hex') + '\n')],
    ['base64', Buffer.from(raw.toString('base64'))],
  ];
  for (const [what, v] of ok) t.same(parseKek(v, 'test'), raw, what);
  const bad: Array<[string, Buffer]> = [
    ['too short', Buffer.from(randomBytes(16).toString('hex'))],
    ['32 raw bytes (32 characters of text would pass for them)', raw],
    ['too long base64', Buffer.from(randomBytes(48).toString('base64'))],
    ['a passphrase', Buffer.from('correct horse battery staple')],
    ['empty', Buffer.alloc(0)],
  ];
  for (const [what, v] of bad) t.throws(() => parseKek(v, 'test'), { code: 'CONFIG' }, what);
  t.throws(() => new AesGcmKeyEncryption(randomBytes(16)), { code: 'CONFIG' }, 'a 128-bit key is refused');
});

t.test('KEK files and the environment', async (t) => {
  const dir = t.testdir({});
  const f = path.join(dir, 'kek');
  fs.writeFileSync(f, randomBytes(32).toString('base64'), { mode: 0o600 });
  t.ok(loadKeyEncryption(f, undefined), 'a 0600 file');
  fs.chmodSync(f, 0o640);
  t.throws(() => loadKeyEncryption(f, undefined), { code: 'CONFIG', message: /can be read by other users/ }, 'a group-readable file is refused');
  t.throws(() => loadKeyEncryption(path.join(dir, 'missing'), undefined), { code: 'CONFIG' }, 'a missing file');
  t.ok(loadKeyEncryption(null, randomBytes(32).toString('hex')), 'BOXSIG_REGISTRY_ESCROW_KEY');
  t.equal(loadKeyEncryption(null, undefined), null, 'none configured: null');
  const a = loadKeyEncryption(null, key.toString('hex'))!;
  t.equal(a.id, kek.id, 'the same key has the same id');
  t.notOk(a.id.includes(key.toString('hex').slice(0, 16)), 'the id does not reveal the key');
});
