/**
 * Issue 18, crash safety at every instant (the lab and what is checked: test/crash-lab.ts):
 * add --force after SIGTERM, SIGINT or SIGHUP, or with ENOSPC, at every file-system call: the process cleans up itself.
 */
import t from 'tap';
import path from 'node:path';
import { countCalls, pool, runWithFault, type FaultMode } from './fault/harness.js';
import { treeOf, same, homeDebris, storeParses, checkStoreDebris, TARGET, freshCopy, sameCall, describeFault, makeLab } from './crash-lab.js';

t.test('add --force interrupted or out of space at every file-system call', async (t) => {
  const lab = await makeLab(t);
  for (const mode of ['SIGTERM', 'SIGINT', 'SIGHUP'] as FaultMode[]) {
    t.test(`add --force: ${mode} before every call is cleaned up by the process itself`, async (t) => {
      const args = ['add', lab.newBox, '--force', '--json'];
      const { count, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
      const points = Array.from({ length: count }, (_, i) => i + 1);
      await pool(points, 2, async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, mode);
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        t.equal(r.signal, mode, `${label}: ends by the signal (the conventional status)`);
        const after = treeOf(path.join(w.vagrantHome, ...TARGET));
        t.ok(same(after, lab.oldTree) || same(after, lab.newTree), `${label}: the old box or the new one, without any recovery`);
        t.same(homeDebris(w.vagrantHome), [], `${label}: the interrupted process removed its staging directory`);
        t.ok(storeParses(w.boxsigHome), `${label}: the trust store parses`);
      });
    });
  }

  t.test('add --force: ENOSPC at every call fails cleanly or succeeds', async (t) => {
    const args = ['add', lab.newBox, '--force', '--json'];
    const { count, calls } = await countCalls(args, freshCopy(lab, 'installed').env);
    await pool(
      Array.from({ length: count }, (_, i) => i + 1),
      2,
      async (n) => {
        const w = freshCopy(lab, 'installed');
        const r = await runWithFault(args, w.env, n, 'enospc');
        const label = describeFault(r, n);
        sameCall(t, calls, r, n, label);
        const after = treeOf(path.join(w.vagrantHome, ...TARGET));
        let json: any = null;
        try {
          json = JSON.parse(r.stdout);
        } catch {
          /* checked below */
        }
        t.ok(json, `${label}: one JSON object on stdout`);
        if (r.code === 0) t.ok(same(after, lab.newTree), `${label}: succeeded, the new box is complete`);
        else {
          t.equal(r.code, 3, `${label}: an I/O failure (exit 3), ${json?.code}: ${json?.message}`);
          t.equal(json?.code, 'IO');
          t.ok(same(after, lab.oldTree), `${label}: the installed box is unchanged`);
        }
        t.same(homeDebris(w.vagrantHome), [], `${label}: no staging debris, without any recovery`);
        t.ok(storeParses(w.boxsigHome), `${label}: the trust store parses`);
        checkStoreDebris(t, w.boxsigHome, label);
      },
    );
  });
});
