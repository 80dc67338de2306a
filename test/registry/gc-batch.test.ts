/**
 * One `registry gc` run collects every ended upload session past the grace
 * period, however many there are: they are read a batch at a time (memory
 * per batch is bounded), and a full batch is followed by the next.
 */
import t from 'tap';
import { openDatabase } from '../../src/registry/open.js';
import { FsBlobStore } from '../../src/registry/blobs/fs.js';
import { collectGarbage } from '../../src/registry/gc.js';

t.test('ended sessions beyond one batch are all collected in one run', async (t) => {
  const dir = t.testdir({});
  const db = await openDatabase({ data: dir, database: null });
  t.teardown(() => db.close());
  await db.run('PRAGMA foreign_keys = OFF'); // sessions without their org, box and token: only gc's part is under test
  const old = '2026-01-01T00:00:00.000Z';
  const insert = (id: string, state: string) =>
    db.run(
      `INSERT INTO uploads (id, provider_id, token_id, secret_hash, direct, state, created_at, updated_at, expires_at)
       VALUES ($1, 'p', 't', $2, 0, $3, $4, $4, $4)`,
      [id, `hash-${id}`, state, old],
    );
  for (let i = 0; i < 7; i++) await insert(`ended-${i}`, ['refused', 'failed', 'expired'][i % 3]);
  await insert('receiving', 'receiving');
  await db.run('UPDATE uploads SET heartbeat_at = $1 WHERE id = $2', [new Date().toISOString(), 'receiving']);
  const r = await collectGarbage(db, new FsBlobStore(dir), { leaseSeconds: 1e9, graceSeconds: 60, endedBatch: 3 });
  t.equal(r.endedUploads, 7, 'seven ended sessions, read three at a time, in one run');
  t.equal(r.deadUploads, 0, 'the upload in flight renewed its lease');
  const left = await db.query<{ id: string }>('SELECT id FROM uploads');
  t.same(
    left.map((x) => x.id),
    ['receiving'],
    'an upload in flight is kept',
  );
});
