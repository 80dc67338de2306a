/**
 * Garbage collection, safe to run in every registry process at once:
 * - uploads whose process stopped renewing its lease (killed mid-upload)
 *   become `failed`; upload URLs past their expiry become `expired`;
 * - ended upload sessions (refused, failed, expired) that ended longer ago
 *   than the grace period are deleted, with whatever is still stored under
 *   their object key (an object, an unfinished multipart upload) unless a
 *   blob row names that key; the row is deleted first, by one conditional
 *   statement, so that of several processes collecting at once exactly one
 *   deletes each session (and counts it), and a session claimed again
 *   meanwhile (a retry of a refused or failed upload) is never deleted;
 * - blob rows no provider references any more (a replaced unreleased box, a
 *   deleted version) are removed, older than the grace period;
 * - objects and unfinished multipart uploads that no blob row references and
 *   no live upload is writing are deleted, older than the grace period.
 * An object is never deleted while a live upload owns its key or a blob row
 * names it, and every key is registered in the database before its first
 * byte is written — so nothing that can still be published is collected.
 */
import { nowText, type Db } from './db/engine.js';
import { isObjectKey, type BlobStore } from './blobs/store.js';
import type { Log } from './registry.js';

export interface GcOptions {
  leaseSeconds: number;
  graceSeconds: number;
  now?: Date;
  /** Ended sessions read at a time (default ENDED_BATCH; tests use a small one). */
  endedBatch?: number;
}

export interface GcResult {
  deadUploads: number;
  expiredUploads: number;
  /** Ended upload sessions (refused, failed, expired) deleted after the grace period. */
  endedUploads: number;
  blobRows: number;
  objects: number;
  keptObjects: number;
}

/** Upload sessions that ended (a refused or failed one may be retried with its URL until the URL expires). */
const ENDED = `('refused', 'failed', 'expired')`;

const ago = (now: Date, seconds: number) => nowText(new Date(now.getTime() - seconds * 1000));

export async function collectGarbage(db: Db, blobs: BlobStore, opts: GcOptions, log?: Log): Promise<GcResult> {
  const now = opts.now ?? new Date();
  const result: GcResult = { deadUploads: 0, expiredUploads: 0, endedUploads: 0, blobRows: 0, objects: 0, keptObjects: 0 };
  result.deadUploads = await db.run(
    `UPDATE uploads SET state = 'failed', code = 'UNAVAILABLE', message = $2, updated_at = $3
      WHERE state = 'receiving' AND (heartbeat_at IS NULL OR heartbeat_at < $1)`,
    [ago(now, opts.leaseSeconds), 'the registry process receiving this upload stopped before it finished; upload again', nowText(now)],
  );
  result.expiredUploads = await db.run(`UPDATE uploads SET state = 'expired', updated_at = $2 WHERE state = 'open' AND expires_at < $1`, [
    nowText(now),
    nowText(now),
  ]);
  const cutoff = ago(now, opts.graceSeconds);
  await collectEndedUploads(db, blobs, cutoff, result, opts.endedBatch);
  const unreferenced = await db.query<{ sha256: string }>(
    `SELECT sha256 FROM blobs WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM providers p WHERE p.blob_sha256 = blobs.sha256)`,
    [cutoff],
  );
  for (const { sha256 } of unreferenced) {
    // a provider may reference it again meanwhile: the condition is checked again, and the foreign key refuses the rest
    const n = await db
      .run(`DELETE FROM blobs WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM providers p WHERE p.blob_sha256 = blobs.sha256)`, [sha256])
      .catch(() => 0);
    result.blobRows += n;
  }
  for await (const o of blobs.list()) {
    if (o.modified.getTime() > now.getTime() - opts.graceSeconds * 1000) {
      result.keptObjects++;
      continue;
    }
    const owner = await db.one<{ n: number }>(
      `SELECT (SELECT COUNT(*) FROM blobs WHERE object_key = $1) + (SELECT COUNT(*) FROM uploads WHERE object_key = $1 AND state = 'receiving') AS n`,
      [o.key],
    );
    if (Number(owner?.n ?? 0) > 0) {
      result.keptObjects++;
      continue;
    }
    await blobs.delete(o);
    result.objects++;
  }
  if (result.deadUploads || result.expiredUploads || result.endedUploads || result.blobRows || result.objects) log?.info({ gc: result }, 'garbage collected');
  return result;
}

/** Ended sessions are read this many at a time (memory per batch is bounded; a run takes them all). */
const ENDED_BATCH = 1000;

/**
 * Ended upload sessions past the grace period, and what is stored under their
 * object keys. A session is deleted by one statement that checks again that
 * it is still ended and old (claim() may have taken a refused or failed
 * session for a retry, and another process may have deleted it): only the
 * process whose statement deleted the row touches its object. An object key
 * is fresh for every claim, so no live upload writes under an ended session's
 * key; a key a blob row names (never the case today) is left alone all the
 * same. A process killed between the two steps leaves an object no row
 * names, which the scan of the store collects.
 */
async function collectEndedUploads(db: Db, blobs: BlobStore, cutoff: string, result: GcResult, batch = ENDED_BATCH): Promise<void> {
  // a full batch may be followed by more; rows deleted meanwhile by another process are simply not read again
  for (;;) {
    const ended = await db.query<{ id: string; object_key: string | null }>(
      `SELECT id, object_key FROM uploads WHERE state IN ${ENDED} AND updated_at < $1 ORDER BY updated_at, id LIMIT ${batch}`,
      [cutoff],
    );
    for (const row of ended) await collectEnded(db, blobs, cutoff, row, result);
    if (ended.length < batch) return;
  }
}

async function collectEnded(db: Db, blobs: BlobStore, cutoff: string, row: { id: string; object_key: string | null }, result: GcResult): Promise<void> {
  const n = await db.run(`DELETE FROM uploads WHERE id = $1 AND state IN ${ENDED} AND updated_at < $2`, [row.id, cutoff]);
  if (!n) return;
  result.endedUploads += n;
  const key = row.object_key;
  if (!key || !isObjectKey(key)) return;
  const owner = await db.one<{ n: number }>(
    `SELECT (SELECT COUNT(*) FROM blobs WHERE object_key = $1) + (SELECT COUNT(*) FROM uploads WHERE object_key = $1 AND state = 'receiving') AS n`,
    [key],
  );
  if (Number(owner?.n ?? 0) > 0) return;
  result.objects += await blobs.deleteKey(key);
}
