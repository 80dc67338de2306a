/**
 * Issue 18, crash safety at every instant (the lab and what is checked: test/crash-lab.ts):
 * trust pin, accept, forget and key import after a SIGKILL before every file-system call.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeKey } from './helpers.js';
import { countCalls, pool, runPlain, runWithFault } from './fault/harness.js';
import { treeOf, storeParses, checkStoreDebris, TARGET, envFor, freshCopy, sameCall, describeFault, makeLab } from './crash-lab.js';

t.test('trust and key import killed at every file-system call', async (t) => {
  const lab = await makeLab(t);
  /** The store (trust.json and the record files) without its clock: comparable between runs. */
  const normalized = (home: string) => {
    const clockless = (file: string) =>
      JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'), (k, v) => (['time', 'updated', 'firstSeen', 'since'].includes(k) ? undefined : v)));
    const file = path.join(home, 'trust.json');
    const records = path.join(home, 'records');
    const names = fs.existsSync(records) ? fs.readdirSync(records).sort() : [];
    return fs.existsSync(file) ? [clockless(file), ...names.map((n) => `${n} ${clockless(path.join(records, n))}`)].join('\n') : null;
  };
  const FPR = '0123456789ABCDEF0123456789ABCDEF01234567';
  for (const args of [
    ['trust', 'pin', 'acme/*', FPR, '--json'],
    ['trust', 'accept', 'acme/web', FPR, '--json'],
    ['trust', 'forget', 'acme/web', '--json'],
  ]) {
    t.test(`${args.slice(0, 2).join(' ')}: SIGKILL before every call`, async (t) => {
      const w0 = freshCopy(lab, 'installed');
      const before = normalized(w0.boxsigHome);
      const { count, run, calls } = await countCalls(args, w0.env);
      t.equal(run.code, 0, run.stderr);
      const after = normalized(w0.boxsigHome);
      t.not(after, before, 'the unfaulted run changes the store');
      await pool(
        Array.from({ length: count }, (_, i) => i + 1),
        2,
        async (n) => {
          const w = freshCopy(lab, 'installed');
          const r = await runWithFault(args, w.env, n, 'kill');
          const label = describeFault(r, n);
          sameCall(t, calls, r, n, label);
          t.equal(r.signal, 'SIGKILL', `${label}: killed`);
          t.ok(storeParses(w.boxsigHome), `${label}: the trust store parses`);
          const now = normalized(w.boxsigHome);
          t.ok(now === before || now === after, `${label}: the store is the old one or the new one, never a mix`);
          const next = await runPlain(['trust', 'pin', 'probe/x', lab.key.fingerprint, '--json'], w.env);
          t.equal(next.code, 0, `${label}: the next command works (${next.stderr.trim()})`);
          t.ok(treeOf(path.join(w.vagrantHome, ...TARGET)), `${label}: the installed box is untouched`);
          checkStoreDebris(t, w.boxsigHome, label);
        },
      );
    });
  }

  t.test('key import: SIGKILL before every call', async (t) => {
    const other = makeKey(path.join(lab.root, 'inputs'), 'Imported <imp@acme.example>', [], envFor(path.join(lab.root, 'inputs')));
    const args = ['key', 'import', other.public, '--json'];
    const { count, run, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
    t.equal(run.code, 0, run.stderr);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, 'kill');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, 'SIGKILL', `${label}: killed`);
        const keyFile = path.join(w.boxsigHome, 'keyring', `${other.fingerprint}.asc`);
        t.ok(!fs.existsSync(keyFile) || fs.readFileSync(keyFile, 'utf8').includes('END PGP PUBLIC KEY BLOCK'), `${label}: the key file is absent or whole`);
        const next = await runPlain(args, w.env);
        t.equal(next.code, 0, `${label}: the import works again at once (${next.stderr.trim()})`);
        t.ok((await runPlain(['key', 'export', other.fingerprint], w.env)).stdout.includes('BEGIN PGP PUBLIC KEY BLOCK'), `${label}: the key is there`);
        checkStoreDebris(t, w.boxsigHome, label);
      },
    );
  });
});
