/**
 * Garbage collection of ended upload sessions (issue 14), on every engine:
 * a refused upload, an upload URL that expired and an upload whose process
 * was killed mid-upload (its lease ran out) are each kept while younger than
 * the grace period and deleted after it, with whatever is still stored under
 * their object key (an S3 multipart upload, a `.part` file); an upload in
 * flight and a published blob are never collected; two `registry gc` runs
 * at once delete each session once; the periodic gc of `registry serve`
 * reports the count in its log line.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { boxsigAsync, pseudoRandom } from '../helpers.js';
import { engines, reportUnavailable, stopEngines } from './engines.js';
import { box, catalog, createOrg, key, newLab, publish, slowPut, startRegistry, token, until, uploadUrl, sleep, type Lab } from './lab.js';

const { available, unavailable } = engines('all');
t.teardown(stopEngines);
reportUnavailable(t, unavailable);

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

interface Session {
  id: string;
  state: string;
  object_key: string | null;
}

for (const engine of available) {
  t.test(`${engine.name}: ended upload sessions are collected after the grace period`, async (t) => {
    const dir = t.testdir({});
    const inst = await engine.create(dir);
    t.teardown(() => inst.close());
    const lab: Lab = newLab(dir, inst, { BOXSIG_REGISTRY_LEASE_SECONDS: '4' });
    const good = key(lab);
    const stranger = key(lab, 'Mallory <m@evil.example>');
    createOrg(lab, 'acme', { boxes: { 'acme/*': { pin: [good.fingerprint] } } });
    const pub = token(lab, 'acme', 'publish', 'ci');
    const a = await startRegistry(lab);
    const b = await startRegistry(lab);
    t.teardown(async () => {
      await a.stop();
      await b.stop();
    });
    const gc = async (grace: number) => {
      const r = await boxsigAsync(['registry', 'gc', '--grace', String(grace), ...inst.flags, '--json'], { env: lab.env });
      if (r.code !== 0 || !r.json?.gc) throw new Error(`registry gc failed (${r.code}): ${r.stdout}${r.stderr}`);
      return r.json.gc as { deadUploads: number; expiredUploads: number; endedUploads: number; objects: number; blobRows: number };
    };
    const sessions = () => inst.query<Session>('SELECT id, state, object_key FROM uploads ORDER BY created_at');
    const session = async (id: string) => (await sessions()).find((s) => s.id === id);
    const newSession = async (known: Session[]) => (await sessions()).filter((s) => !known.some((k) => k.id === s.id));
    /** How an object key appears in inst.objects() (complete or not). */
    const stored = async (objectKey: string) => {
      const id = objectKey.replace(/^objects\//, '');
      return (await inst.objects()).filter((o) => o.includes(id));
    };

    // a published blob: never collected
    const goodBox = box(lab, [good], 'acme/app', '1.0.0');
    const p = await publish(lab, a.url, pub, goodBox, ['--release']);
    t.equal(p.code, 0, 'a good box is published', { out: p.stdout + p.stderr });
    const blob = (await inst.query<{ object_key: string }>('SELECT object_key FROM blobs'))[0];
    t.ok(blob, 'its blob row');

    // 1. a refused upload: its object is deleted at refusal, its session stays until gc
    let known = await sessions();
    const r = await publish(lab, a.url, pub, box(lab, [stranger], 'acme/app', '2.0.0'));
    t.equal(r.json?.code, 'UNTRUSTED_KEY', 'a box signed by a key the org does not trust is refused', { out: r.stdout + r.stderr });
    const [refused] = await newSession(known);
    t.equal(refused?.state, 'refused', 'the refused session is recorded');
    t.ok(refused?.object_key, 'it had an object key');
    t.same(await stored(refused.object_key!), [], 'the refused upload left no object in the store');

    // 2. an upload whose registry process is killed mid-upload (on S3: a multipart upload with a part written)
    const big = box(lab, [good], 'acme/app', '4.0.0', { files: { 'disk.vmdk': pseudoRandom(16 * MiB, 4) } });
    known = await sessions();
    const before = await inst.objects();
    const up = await uploadUrl(b.url, pub, 'acme/app', '4.0.0');
    const killedPut = slowPut(up.upload_path, big, 12 * MiB);
    const [killed] = await until(async () => (await newSession(known)).some((s) => s.state === 'receiving'), 60_000).then(() => newSession(known));
    t.ok(killed?.object_key, 'the killed upload has an object key');
    await until(async () => killedPut.sent() >= 12 * MiB && (await stored(killed.object_key!)).length > 0, 60_000).catch(() => undefined);
    const partial = (await inst.objects()).filter((o) => !before.includes(o));
    t.equal(partial.length, 1, 'an object is being written when the process is killed', { partial });
    b.proc.kill('SIGKILL');
    await b.exited;
    killedPut.release();
    await killedPut.response;
    await sleep(5000); // the lease (4 s) runs out

    // 3. an upload in flight through the surviving process, held while gc runs
    const live = box(lab, [good], 'acme/app', '5.0.0', { files: { 'disk.vmdk': pseudoRandom(16 * MiB, 5) } });
    known = await sessions();
    const liveUp = await uploadUrl(a.url, pub, 'acme/app', '5.0.0');
    const livePut = slowPut(liveUp.upload_path, live, 12 * MiB);
    await until(async () => (await newSession(known)).some((s) => s.state === 'receiving'), 60_000);
    const [liveSession] = await newSession(known);
    await until(async () => livePut.sent() >= 12 * MiB && (await stored(liveSession.object_key!)).length > 0, 60_000).catch(() => undefined);
    t.equal((await stored(liveSession.object_key!)).length, 1, 'the live upload is being written');

    // 4. an upload URL that expired unused (last: asking for an upload URL drops the token's expired unused ones)
    known = await sessions();
    await uploadUrl(a.url, pub, 'acme/app', '3.0.0');
    const [expiring] = await newSession(known);
    t.equal(expiring?.state, 'open', 'an upload URL is open');
    await inst.query('UPDATE uploads SET expires_at = $1 WHERE id = $2', [new Date(Date.now() - 1000).toISOString(), expiring.id]);

    // before the grace period: nothing of the three is collected
    const early = await gc(3600);
    t.equal(early.deadUploads, 1, 'the killed upload is found dead');
    t.equal(early.expiredUploads, 1, 'the upload URL is found expired');
    t.equal(early.endedUploads, 0, 'no ended session is deleted before the grace period', { early });
    t.equal((await session(refused.id))?.state, 'refused', 'the refused session is kept');
    t.equal((await session(expiring.id))?.state, 'expired', 'the expired session is kept');
    t.equal((await session(killed.id))?.state, 'failed', 'the killed session is kept, failed');
    t.same(await stored(killed.object_key!), partial, "the killed upload's object is kept");

    // after the grace period, two collectors at once: each session is deleted once, by one of them
    const [g1, g2] = await Promise.all([gc(0), gc(0)]);
    t.equal(g1.endedUploads + g2.endedUploads, 3, 'the refused, expired and killed sessions are deleted, each once', { g1, g2 });
    for (const [what, s] of [
      ['refused', refused],
      ['expired', expiring],
      ['killed', killed],
    ] as const)
      t.notOk(await session(s.id), `the ${what} session is gone`);
    t.same(await stored(killed.object_key!), [], "the killed upload's object (or unfinished multipart upload) is gone");
    t.equal((await session(liveSession.id))?.state, 'receiving', 'the live upload is untouched');
    t.equal((await stored(liveSession.object_key!)).length, 1, "the live upload's object is untouched");
    t.equal((await stored(blob.object_key)).length, 1, 'the published blob is untouched');

    livePut.release();
    const done = await livePut.response;
    t.equal((done as { status: number }).status, 200, 'the live upload completes', { done });
    const cat = await catalog(a.url, 'acme/app');
    t.same(cat.versions.map((v: any) => v.version).sort(), ['1.0.0'], 'the released version is listed (5.0.0 is uploaded, not released)');
    const dl = await fetch(`${a.url}/acme/boxes/app/versions/1.0.0/providers/virtualbox/unknown/vagrant.box`);
    t.equal(sha256(Buffer.from(await dl.arrayBuffer())), sha256(fs.readFileSync(goodBox)), 'the published box still downloads');

    const last = await gc(0);
    t.equal(last.endedUploads, 0, 'nothing more to collect');
    t.equal((await sessions()).filter((s) => ['refused', 'failed', 'expired'].includes(s.state)).length, 0, 'no ended session is left');
    const referenced = (await inst.query<{ object_key: string }>('SELECT object_key FROM blobs')).map((x) => x.object_key);
    t.equal(referenced.length, 2, 'two blobs: 1.0.0 and 5.0.0');
    const objects = await inst.objects();
    t.equal(objects.length, 2, 'the store holds exactly the two blobs', { objects, referenced });
    for (const k of referenced) t.equal((await stored(k)).length, 1, `${k} is stored`);

    // the periodic gc of registry serve: the count is in its log line
    known = await sessions();
    const r2 = await publish(lab, a.url, pub, box(lab, [stranger], 'acme/app', '6.0.0'));
    t.equal(r2.json?.code, 'UNTRUSTED_KEY', 'another refused upload');
    const [refused2] = await newSession(known);
    const c = await startRegistry(lab, [], { BOXSIG_REGISTRY_GC_INTERVAL_SECONDS: '1', BOXSIG_REGISTRY_GC_GRACE_SECONDS: '0' });
    t.teardown(() => c.stop());
    await until(() => /"endedUploads":1/.test(c.log()), 30_000).catch(() => undefined);
    const line = c
      .log()
      .split('\n')
      .find((l) => l.includes('garbage collected'));
    t.match(line ?? '', /"endedUploads":1/, 'the log line of the periodic gc counts the ended session', { log: c.log() });
    t.notOk(await session(refused2.id), 'the refused session is deleted by the periodic gc');
  });
}
