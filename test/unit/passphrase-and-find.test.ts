/**
 * Pure logic of the CLI's library helpers: where a passphrase comes from
 * (src/keys/passphrase.ts, three tries on a prompt) and which keyring key a
 * query names (src/trust/find.ts).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { passphraseFrom, MAX_TRIES } from '../../src/keys/passphrase.js';
import { unlockSecretKey, readSecretKey } from '../../src/keys/keys.js';
import { matchKeys } from '../../src/trust/find.js';
import { BoxsigError } from '../../src/errors.js';
import * as pgp from '../../src/keys/pgp.js';
import type { KeyListing } from '../../src/trust/keyring.js';

t.test('passphrase sources: file, then BOXSIG_PASSPHRASE, then the prompt; asked once', async (t) => {
  const dir = t.testdir({ pass: 'from-file\n' });
  const file = path.join(dir, 'pass');
  let asked = 0;
  const prompt = async () => {
    asked++;
    return 'from-prompt';
  };
  const rows: Array<[string, Parameters<typeof passphraseFrom>[0], string | undefined]> = [
    ['file wins', { file, env: { BOXSIG_PASSPHRASE: 'env' }, prompt }, 'from-file'],
    ['variable next', { env: { BOXSIG_PASSPHRASE: 'env' }, prompt }, 'env'],
    ['an empty variable is a passphrase', { env: { BOXSIG_PASSPHRASE: '' }, prompt }, ''],
    ['prompt last', { env: {}, prompt }, 'from-prompt'],
    ['nothing: undefined', { env: {} }, undefined],
  ];
  for (const [label, opts, want] of rows) {
    const p = passphraseFrom(opts, 'k.asc');
    t.equal(await p(), want, label);
    t.equal(await p(), want, `${label}: the same again`);
  }
  t.equal(asked, 1, 'the prompt was asked once');
  await t.rejects(passphraseFrom({ file: path.join(dir, 'none') }, 'k')(), { code: 'USAGE' }, 'an unreadable file is a usage error');
  t.notOk(passphraseFrom({ file, prompt }, 'k').retry?.(), 'a file is not asked again');
  fs.rmSync(file);
});

t.test('a wrong passphrase on a prompt is asked again, three tries in all', async (t) => {
  const key = await pgp.newKey({ userIds: ['T <t@example.org>'], type: 'ed25519', passphrase: 'right', expiresIn: 0 });
  const locked = await readSecretKey(Buffer.from(key.privateKey), 'k.asc');
  t.notOk(locked.isDecrypted());
  for (const [answers, ok] of [
    [['right'], true],
    [['wrong', 'right'], true],
    [['wrong', 'wrong', 'right'], true],
    [['wrong', 'wrong', 'wrong', 'right'], false],
  ] as Array<[string[], boolean]>) {
    const questions: string[] = [];
    const queue = [...answers];
    const p = passphraseFrom({ env: {}, prompt: async (q) => (questions.push(q), queue.shift()!) }, 'k.asc');
    const r = await unlockSecretKey(locked, 'k.asc', p).catch((e: unknown) => e);
    if (ok) {
      t.notOk(r instanceof Error, `${answers.join(',')}: unlocked`);
      t.equal((r as { passphrase?: string }).passphrase, 'right');
    } else {
      t.ok(r instanceof BoxsigError && r.code === 'USAGE', `${answers.join(',')}: refused after ${MAX_TRIES} tries`);
      t.equal(questions.length, MAX_TRIES);
    }
    if (questions.length > 1) t.match(questions[1], /Wrong passphrase.*try 2 of 3/);
  }
  const fromFile = passphraseFrom({ env: { BOXSIG_PASSPHRASE: 'wrong' } }, 'k.asc');
  await t.rejects(unlockSecretKey(locked, 'k.asc', fromFile), { code: 'USAGE' }, 'a wrong passphrase from the variable is not retried');
});

t.test('which key a query names', async (t) => {
  const A = '0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B';
  const B = 'FFEEDDCCBBAA99887766554433221100FFEEDDCC';
  const keys = [
    { fingerprint: A, userIds: ['Acme Builds <builds@acme.example>'] },
    { fingerprint: B, userIds: ['Acme Releases <releases@acme.example>', 'boxsig:acme/*'] },
  ] as KeyListing[];
  const rows: Array<[string, string[] | 'USAGE']> = [
    [A, [A]],
    [A.toLowerCase(), [A]],
    [A.match(/.{4}/g)!.join(' '), [A]],
    [`0x${A}`, [A]],
    [A.slice(-16), [A]],
    [`0x${A.slice(-16).toLowerCase()}`, [A]],
    [A.slice(0, 16), []],
    [A.slice(-8), 'USAGE'],
    ['builds@acme.example', [A]],
    ['<releases@acme.example>', [B]],
    ['=boxsig:acme/*', [B]],
    ['=boxsig:acme', []],
    ['acme', [A, B]],
    ['ACME BUILDS', [A]],
    ['nobody', []],
    ['   ', 'USAGE'],
  ];
  for (const [q, want] of rows) {
    if (want === 'USAGE') t.throws(() => matchKeys(keys, q), { code: 'USAGE' }, JSON.stringify(q));
    else
      t.same(
        matchKeys(keys, q).map((k) => k.fingerprint),
        want,
        JSON.stringify(q),
      );
  }
});
