/**
 * Issue 18, crash safety at every instant (the lab and what is checked: test/crash-lab.ts):
 * add, then the next add, after a SIGKILL before every file-system call.
 */
import t from 'tap';
import path from 'node:path';
import { countCalls, pool, runPlain, runWithFault } from './fault/harness.js';
import { treeOf, same, homeDebris, storeParses, checkStoreDebris, TARGET, OTHER, freshCopy, sameCall, describeFault, makeLab } from './crash-lab.js';

t.test('add killed at every file-system call', async (t) => {
  const lab = await makeLab(t);
  t.test('add: SIGKILL before every call', async (t) => {
    const args = ['add', lab.newBox, '--json'];
    const { count, run, calls } = await countCalls(args, freshCopy(lab, 'fresh').env);
    t.equal(run.code, 0, 'the unfaulted run succeeds');
    t.ok(count > 20, `${count} calls to fault`);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'fresh');
        const r = await runWithFault(args, w.env, n, 'kill');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, 'SIGKILL', `${label}: killed`);
        const target = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(target === null || same(target, lab.newTree), `${label}: the box is absent or complete`);
        t.ok(storeParses(w.boxsigHome), `${label}: the trust store parses`);
        const next = await runPlain(args, w.env);
        t.equal(next.code, target ? 2 : 0, `${label}: the next add works at once (${next.json?.code ?? 'ok'})`);
        t.ok(same(treeOf(path.join(w.vagrantHome, ...TARGET)), lab.newTree), `${label}: then the box is complete`);
        t.ok(treeOf(path.join(w.vagrantHome, ...OTHER)), `${label}: the other box is untouched`);
        t.same(homeDebris(w.vagrantHome), [], `${label}: no staging debris after the recovery step`);
        checkStoreDebris(t, w.boxsigHome, label);
      },
    );
  });
});
