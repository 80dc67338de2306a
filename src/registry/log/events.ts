/**
 * What the registry appends to the transparency log, always inside the
 * transaction of the event itself: a publication (a provider became
 * downloadable), a withdrawal (a released version deleted by an org admin),
 * and every audited key event (actions `key.…` and `escrow.…`).
 */
import { createHash } from 'node:crypto';
import type { Db, Sql } from '../db/engine.js';
import { nowText } from '../db/engine.js';
import { fingerprintsIn, type LogEntry } from '../../tlog/entry.js';
import { appendEntry } from './store.js';

export interface PublishedProvider {
  org: string;
  /** ORG/NAME */
  box: string;
  version: string;
  provider: string;
  architecture: string;
  sha256: string;
  size: number;
  manifestSha256: string | null;
  signers: string[];
}

export async function logPublication(q: Sql, p: PublishedProvider, now: Date): Promise<number> {
  return appendEntry(q, {
    v: 1,
    kind: 'publication',
    org: p.org,
    box: p.box,
    version: p.version,
    provider: p.provider,
    architecture: p.architecture,
    sha256: p.sha256,
    size: p.size,
    manifest_sha256: p.manifestSha256,
    signers: [...new Set(p.signers.map((s) => s.toUpperCase()))].sort(),
    time: nowText(now),
  });
}

export async function logWithdrawal(q: Sql, w: { org: string; box: string; version: string }, now = new Date()): Promise<number> {
  return appendEntry(q, { v: 1, kind: 'withdrawal', org: w.org, box: w.box, version: w.version, time: nowText(now) });
}

/** Details larger than this are logged as their SHA-256 (an entry stays far below what clients accept). */
const MAX_DETAILS_BYTES = 16 * 1024;

function boundedDetails(details: Record<string, unknown>): unknown {
  const text = JSON.stringify(details);
  if (Buffer.byteLength(text) <= MAX_DETAILS_BYTES) return JSON.parse(text) as unknown;
  return { sha256: createHash('sha256').update(text).digest('hex'), bytes: Buffer.byteLength(text), truncated: true };
}

/** Org actions that change which keys count for an org's boxes: registered keys, certifications and revocations; pins. */
const ORG_KEY_ACTIONS = new Set(['org.keys', 'org.policy']);

/** Audit actions that are key events, and so go into the log too. */
export function isKeyEvent(action: string): boolean {
  return action.startsWith('key.') || action.startsWith('escrow.') || ORG_KEY_ACTIONS.has(action);
}

/**
 * Publications recorded before the log existed (a registry upgraded to schema
 * 2) are appended once, in their order, so that every box a catalog lists is
 * in the log. Idempotent; one transaction.
 */
export async function backfillPublications(db: Db): Promise<number> {
  const pending = await db.one<{ n: number }>('SELECT COUNT(*) AS n FROM publications WHERE log_index IS NULL');
  if (!Number(pending?.n)) return 0;
  return db.tx(async (q) => {
    // the log head's row lock first: a process starting at the same time waits, then finds nothing left
    await q.run('UPDATE log_head SET size = size WHERE id = 1');
    const rows = await q.query<PublicationRow>(
      `SELECT provider_id, org, box, version, provider, architecture, sha256, size, manifest_sha256, signers, published_at
         FROM publications WHERE log_index IS NULL ORDER BY seq`,
    );
    for (const r of rows) {
      const index = await logPublication(
        q,
        { ...r, size: Number(r.size), manifestSha256: r.manifest_sha256, signers: JSON.parse(r.signers) as string[] },
        new Date(r.published_at),
      );
      await q.run('UPDATE publications SET log_index = $2 WHERE provider_id = $1 AND log_index IS NULL', [r.provider_id, index]);
    }
    return rows.length;
  });
}

interface PublicationRow {
  provider_id: string;
  org: string;
  box: string;
  version: string;
  provider: string;
  architecture: string;
  sha256: string;
  size: number;
  manifest_sha256: string | null;
  signers: string;
  published_at: string;
}

export async function logKeyEvent(
  q: Sql,
  e: { orgId: string | null; action: string; target: string; details: Record<string, unknown> },
  now = new Date(),
): Promise<number> {
  const org = e.orgId ? ((await q.one<{ name: string }>('SELECT name FROM orgs WHERE id = $1', [e.orgId]))?.name ?? null) : null;
  const entry: LogEntry = {
    v: 1,
    kind: 'key',
    action: e.action,
    org,
    target: e.target,
    fingerprints: fingerprintsIn([e.target, e.details]).slice(0, 256),
    details: boundedDetails(e.details),
    time: nowText(now),
  };
  return appendEntry(q, entry);
}
