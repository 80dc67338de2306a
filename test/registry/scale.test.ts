/**
 * Scale-out (issue 14, "How it will be checked"): two registry processes on
 * one PostgreSQL and one blob store.
 * - Twenty concurrent publishes of versions of one box through both
 *   processes: every version present once, and every catalog read meanwhile
 *   from either process lists only providers whose blob is complete.
 * - Two concurrent publishes of the same version: one box is published.
 * - A process killed mid-upload: nothing partial published; garbage
 *   collection removes the dead upload and its object; the next publish of
 *   the same version works.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { boxsig, pseudoRandom } from '../helpers.js';
import { engines, reportUnavailable, stopEngines } from './engines.js';
import { box, catalog, createOrg, key, newLab, publish, startRegistry, token, until, type Lab, type Running } from './lab.js';

const { available, unavailable } = engines('shared');
t.teardown(stopEngines);
reportUnavailable(t, unavailable);

const sha256 = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Read catalogs from both processes until stopped; check each one's providers are complete objects. */
function watchCatalogs(t: any, regs: Running[], name: string): { stop(): Promise<number> } {
  let running = true;
  let reads = 0;
  const loop = (async () => {
    while (running) {
      for (const r of regs) {
        const cat = await catalog(r.url, name).catch(() => null);
        if (!cat || !Array.isArray(cat.versions)) continue;
        reads++;
        for (const v of cat.versions) {
          for (const p of v.providers) {
            const head = await fetch(p.url, { method: 'HEAD' });
            if (head.status !== 200 || Number(head.headers.get('content-length')) !== p.size) {
              t.fail(`catalog from ${r.url} lists ${v.version}/${p.name}, whose blob is not complete (HEAD ${head.status})`);
            }
          }
        }
      }
      await sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return reads;
    },
  };
}

for (const engine of available) {
  t.test(`${engine.name}: two registry processes`, async (t) => {
    const dir = t.testdir({});
    const inst = await engine.create(dir);
    t.teardown(() => inst.close());
    const lab: Lab = newLab(dir, inst, { BOXSIG_REGISTRY_LEASE_SECONDS: '4' });
    const k = key(lab);
    createOrg(lab, 'acme');
    // several clients, each with its own token (a token has at most 4 uploads in flight)
    const tokens = Array.from({ length: 5 }, (_, i) => token(lab, 'acme', 'publish', `ci-${i}`));
    const pub = tokens[0];
    const a = await startRegistry(lab);
    const b = await startRegistry(lab);
    t.teardown(async () => {
      await a.stop();
      await b.stop();
    });

    t.test('twenty concurrent publishes of one box through two processes', async (t) => {
      const versions = Array.from({ length: 20 }, (_, i) => `1.${i}.0`);
      const boxes = versions.map((v) => box(lab, [k], 'acme/app', v));
      const watch = watchCatalogs(t, [a, b], 'acme/app');
      const results = await Promise.all(boxes.map((f, i) => publish(lab, (i % 2 ? b : a).url, tokens[i % tokens.length], f, ['--release'])));
      const reads = await watch.stop();
      t.ok(reads > 0, `${reads} catalogs read during the publishes`);
      results.forEach((r, i) => t.equal(r.code, 0, `publish of ${versions[i]} succeeds`, { out: r.stdout + r.stderr }));
      for (const r of [a, b]) {
        const cat = await catalog(r.url, 'acme/app');
        t.same(cat.versions.map((v: any) => v.version).sort(), [...versions].sort(), `the catalog of ${r.url} shows every version once`);
        for (const v of cat.versions) {
          const i = versions.indexOf(v.version);
          t.equal(v.providers.length, 1);
          t.equal(v.providers[0].checksum, sha256(boxes[i]), `${v.version} is the box published as ${v.version}`);
        }
      }
      const rows = await inst.query<{ version: string; n: number }>(
        `SELECT v.version, COUNT(*) AS n FROM publications p JOIN versions v ON v.version = p.version GROUP BY v.version`,
      );
      t.equal(rows.length, 20, 'twenty publication events');
      t.ok(
        rows.every((r) => Number(r.n) === 1),
        'each version published once',
      );
      const dl = await fetch(`${b.url}/acme/boxes/app/versions/1.7.0/providers/virtualbox/unknown/vagrant.box`);
      t.equal(
        crypto
          .createHash('sha256')
          .update(Buffer.from(await dl.arrayBuffer()))
          .digest('hex'),
        sha256(boxes[7]),
        'a download returns the bytes published',
      );
    });

    t.test('two concurrent publishes of the same version: one box wins', async (t) => {
      const one = box(lab, [k], 'acme/app', '2.0.0', { files: { 'disk.vmdk': pseudoRandom(200_000, 11) } });
      const two = box(lab, [k], 'acme/app', '2.0.0', { files: { 'disk.vmdk': pseudoRandom(200_000, 12) } });
      const [r1, r2] = await Promise.all([publish(lab, a.url, pub, one, ['--release']), publish(lab, b.url, pub, two, ['--release'])]);
      const ok = [r1, r2].filter((r) => r.code === 0);
      t.equal(ok.length, 1, 'exactly one publisher succeeds', { r1: r1.stdout + r1.stderr, r2: r2.stdout + r2.stderr });
      const loser = [r1, r2].find((r) => r.code !== 0)!;
      t.equal(loser.json?.code, 'EXISTS', 'the other is told the version was published by someone else', { loser: loser.stdout + loser.stderr });
      const cat = await catalog(a.url, 'acme/app');
      const v = cat.versions.find((x: any) => x.version === '2.0.0');
      t.equal(v.providers[0].checksum, ok[0].json.sha256, "the catalog holds the winner's box");
    });

    /** The object keys blob rows name, as inst.objects() lists them. */
    const referencedObjects = async () => {
      const rows = await inst.query<{ object_key: string }>('SELECT object_key FROM blobs');
      return rows.map((r) => (inst.engine === 'postgres+s3' ? r.object_key : r.object_key.replace(/^objects\//, ''))).sort();
    };

    t.test('a process killed mid-upload', async (t) => {
      const big = box(lab, [k], 'acme/app', '3.0.0', { files: { 'disk.vmdk': pseudoRandom(24 * 1024 * 1024, 3) } });
      // Garbage of the subtests above is not this one's orphan: when both uploads of the race above
      // finish before either release (a slow machine), the one replaced is an unreferenced blob that
      // gc removes. Collect it first, so that `before` holds only referenced objects.
      const first = boxsig(['registry', 'gc', '--grace', '0', ...inst.flags, '--json'], { env: lab.env });
      t.equal(first.code, 0, 'registry gc before the upload', { out: first.stdout + first.stderr });
      const before = await inst.objects();
      t.same(before, await referencedObjects(), 'every object is a blob row');
      const api = `${a.url}/api/v1`;
      const auth = { authorization: `Bearer ${pub}`, 'content-type': 'application/json' };
      await fetch(`${api}/box/acme/app/versions`, { method: 'POST', headers: auth, body: JSON.stringify({ version: { version: '3.0.0' } }) });
      await fetch(`${api}/box/acme/app/version/3.0.0/providers`, { method: 'POST', headers: auth, body: JSON.stringify({ provider: { name: 'virtualbox' } }) });
      const up = (await (await fetch(`${api}/box/acme/app/version/3.0.0/provider/virtualbox/upload`, { headers: auth })).json()) as { upload_path: string };
      // send the first 20 MiB (S3: a multipart upload with parts written), then hold the rest back until the process is dead
      const data = fs.readFileSync(big);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let sent = 0;
      const body = new ReadableStream({
        async pull(c) {
          if (sent >= 20 * 1024 * 1024) await gate;
          if (sent >= data.length) return c.close();
          c.enqueue(data.subarray(sent, sent + 1024 * 1024));
          sent += 1024 * 1024;
        },
      });
      const put = fetch(up.upload_path, { method: 'PUT', body, duplex: 'half' } as RequestInit).catch((e) => e);
      await until(async () => sent >= 20 * 1024 * 1024 && (await inst.query(`SELECT 1 FROM uploads WHERE state = 'receiving'`)).length > 0, 120_000);
      let partial: string[] = [];
      await until(async () => (partial = (await inst.objects()).filter((o) => !before.includes(o))).length > 0).catch(() => undefined);
      t.equal(partial.length, 1, 'an object is being written', { partial });
      a.proc.kill('SIGKILL');
      await a.exited;
      release();
      await put;
      t.notOk(
        (await catalog(b.url, 'acme/app')).versions.some((v: any) => v.version === '3.0.0'),
        'nothing of the killed upload is published',
      );
      const prov = await (await fetch(`${b.url}/api/v1/box/acme/app/version/3.0.0/provider/virtualbox`, { headers: auth })).json();
      t.equal((prov as any).uploaded, false, 'the provider has no box');
      await sleep(5000); // the lease (4 s) runs out
      const gc = boxsig(['registry', 'gc', '--grace', '0', ...inst.flags, '--json'], { env: lab.env });
      t.equal(gc.code, 0, 'registry gc', { out: gc.stdout + gc.stderr });
      t.equal(gc.json?.gc.deadUploads, 1, 'the dead upload is found', {
        gc: gc.json,
        uploads: await inst.query('SELECT state, heartbeat_at, code FROM uploads'),
      });
      t.ok(gc.json?.gc.objects >= 1, 'its object is collected');
      t.same(await inst.objects(), before, 'no orphaned object is left');
      t.notOk((await inst.objects()).includes(partial[0]), "the killed upload's object is gone");
      const states = await inst.query<{ state: string; code: string }>(`SELECT state, code FROM uploads WHERE object_key IS NOT NULL AND sha256 IS NULL`);
      t.ok(
        states.every((s) => s.state !== 'receiving'),
        'no upload is left receiving',
      );
      const again = await publish(lab, b.url, pub, big, ['--release']);
      t.equal(again.code, 0, 'the next publish of the same version works', { out: again.stdout + again.stderr });
      t.ok((await catalog(b.url, 'acme/app')).versions.some((v: any) => v.version === '3.0.0'));
    });
  });
}
