/**
 * Issue 18, crash safety at every instant (the lab and what is checked: test/crash-lab.ts):
 * add --force after a SIGKILL before every file-system call: the next command restores or completes the replace.
 */
import t from 'tap';
import path from 'node:path';
import { countCalls, pool, runPlain, runWithFault } from './fault/harness.js';
import { treeOf, same, homeDebris, storeParses, checkStoreDebris, TARGET, freshCopy, sameCall, describeFault, makeLab } from './crash-lab.js';

t.test('add --force killed at every file-system call', async (t) => {
  const lab = await makeLab(t);
  t.test('add --force: SIGKILL before every call; the next command restores or completes the replace', async (t) => {
    const args = ['add', lab.newBox, '--force', '--json'];
    const { count, run, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
    t.equal(run.code, 0, run.stderr);
    t.equal(JSON.parse(run.stdout).replaced, true);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, 'kill');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, 'SIGKILL', `${label}: killed`);
        const after = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(after === null || same(after, lab.oldTree) || same(after, lab.newTree), `${label}: never a half box`);
        t.ok(storeParses(w.boxsigHome), `${label}: the trust store parses`);
        // any mutating command runs the recovery step first
        const next = await runPlain(['trust', 'pin', 'probe/x', lab.key.fingerprint, '--json'], w.env);
        t.equal(next.code, 0, `${label}: the next command works (${next.stderr.trim()})`);
        const recovered = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(same(recovered, lab.oldTree) || same(recovered, lab.newTree), `${label}: the old box is back or the new one is complete`);
        t.same(homeDebris(w.vagrantHome), [], `${label}: no staging or parked box left`);
        checkStoreDebris(t, w.boxsigHome, label);
        const again = await runPlain(args, w.env);
        t.equal(again.code, 0, `${label}: add --force works again at once`);
      },
    );
  });
});
