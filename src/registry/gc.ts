/**
 * Garbage collection, safe to run in every registry process at once:
 * - uploads whose process stopped renewing its lease (killed mid-upload)
 *   become `failed`; upload URLs past their expiry become `expired`;
 * - blob rows no provider references any more (a replaced unreleased box, a
 *   deleted version) are removed, older than the grace period;
 * - objects and unfinished multipart uploads that no blob row references and
 *   no live upload is writing are deleted, older than the grace period.
 * An object is never deleted while a live upload owns its key or a blob row
 * names it, and every key is registered in the database before its first
 * byte is written — so nothing that can still be published is collected.
 */
import { nowText, type Db } from './db/engine.js';
import type { BlobStore } from './blobs/store.js';
import type { Log } from './registry.js';

export interface GcOptions {
  leaseSeconds: number;
  graceSeconds: number;
  now?: Date;
}

export interface GcResult {
  deadUploads: number;
  expiredUploads: number;
  blobRows: number;
  objects: number;
  keptObjects: number;
}

const ago = (now: Date, seconds: number) => nowText(new Date(now.getTime() - seconds * 1000));

export async function collectGarbage(db: Db, blobs: BlobStore, opts: GcOptions, log?: Log): Promise<GcResult> {
  const now = opts.now ?? new Date();
  const result: GcResult = { deadUploads: 0, expiredUploads: 0, blobRows: 0, objects: 0, keptObjects: 0 };
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
  if (result.deadUploads || result.expiredUploads || result.blobRows || result.objects) log?.info({ gc: result }, 'garbage collected');
  return result;
}
