/**
 * What the registry appends to the transparency log, always inside the
 * transaction of the event itself: a publication (a provider became
 * downloadable), a withdrawal (a released version deleted by an org admin),
 * and every audited key event (actions `key.…` and `escrow.…`).
 */
import type { Sql } from '../db/engine.js';
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

/** Audit actions that are key events, and so go into the log too. */
export function isKeyEvent(action: string): boolean {
  return action.startsWith('key.') || action.startsWith('escrow.');
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
    fingerprints: fingerprintsIn([e.target, e.details]),
    details: JSON.parse(JSON.stringify(e.details)) as unknown,
    time: nowText(now),
  };
  return appendEntry(q, entry);
}
