/**
 * The transparency log in the registry's database (both engines):
 *
 * - log_head: one row (id 1): the tree size and root hash. Every append
 *   starts with `UPDATE log_head SET size = size + 1 … RETURNING size`: that
 *   row lock (PostgreSQL; SQLite's write transactions already run one at a
 *   time) orders appends across every registry process on the database, so
 *   the log never forks, and an append commits or rolls back with the event
 *   it records (same transaction).
 * - log_entries: the leaves (index, leaf hash, data, and the box it is about).
 * - log_hashes: the hash of every complete, aligned subtree (level, index) —
 *   two rows per leaf on average. Any inclusion or consistency proof, any
 *   root, is then O(log n) stored hashes read in one query.
 */
import { BoxsigError } from '../../errors.js';
import type { Sql } from '../db/engine.js';
import { nowText } from '../db/engine.js';
import { consistencyRanges, foldSubtrees, inclusionRanges, leafHash, nodeHash, subtreesOf, type Range, type Subtree } from '../../tlog/merkle.js';
import { encodeEntry, entryBox, type LogEntry } from '../../tlog/entry.js';

export interface LogHead {
  size: number;
  root: Buffer;
}

/** Entries one request may read. */
const MAX_ENTRIES_PER_PAGE = 1000;

const hex = (b: Buffer) => b.toString('hex');

/** Read stored subtree hashes (one query); a missing one is an internal error. */
async function readSubtrees(q: Sql, subtrees: Subtree[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const want = [...new Map(subtrees.map((s) => [`${s.level}:${s.index}`, s])).values()];
  for (let i = 0; i < want.length; i += 200) {
    const chunk = want.slice(i, i + 200);
    const where = chunk.map((_, j) => `(level = $${2 * j + 1} AND idx = $${2 * j + 2})`).join(' OR ');
    const rows = await q.query<{ level: number; idx: number; hash: string }>(
      `SELECT level, idx, hash FROM log_hashes WHERE ${where}`,
      chunk.flatMap((s) => [s.level, s.index]),
    );
    for (const r of rows) out.set(`${Number(r.level)}:${Number(r.idx)}`, Buffer.from(r.hash, 'hex'));
  }
  for (const s of want) {
    if (!out.has(`${s.level}:${s.index}`)) throw new BoxsigError('INTERNAL', `internal error: the log has no stored hash for subtree ${s.level}:${s.index}`);
  }
  return out;
}

/** The RFC 6962 hashes of several ranges, from stored subtrees (one query). */
async function rangeHashes(q: Sql, ranges: Range[]): Promise<Buffer[]> {
  const parts = ranges.map(subtreesOf);
  const stored = await readSubtrees(q, parts.flat());
  return parts.map((p) => foldSubtrees(p.map((s) => stored.get(`${s.level}:${s.index}`)!)));
}

/**
 * Append one entry, inside the caller's transaction (the event's own):
 * returns its leaf index.
 */
export async function appendEntry(q: Sql, entry: LogEntry): Promise<number> {
  const head = await q.one<{ size: number }>('UPDATE log_head SET size = size + 1 WHERE id = 1 RETURNING size');
  if (!head) throw new BoxsigError('INTERNAL', 'internal error: the log has no head row (schema migration 2 missing?)');
  const index = Number(head.size) - 1;
  const data = encodeEntry(entry);
  const leaf = leafHash(data);
  await q.run('INSERT INTO log_entries (idx, leaf_hash, kind, box, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
    index,
    hex(leaf),
    entry.kind,
    entryBox(entry),
    data.toString('utf8'),
    nowText(),
  ]);
  // the compact range of [0, index): its last subtrees are the left siblings this leaf completes
  const before = subtreesOf({ start: 0, end: index });
  const stored = await readSubtrees(q, before);
  const stack = before.map((s) => stored.get(`${s.level}:${s.index}`)!);
  let h = leaf;
  let level = 0;
  let i = index;
  await storeHash(q, 0, index, h);
  while (i % 2 === 1) {
    h = nodeHash(stack.pop()!, h);
    level++;
    i = (i - 1) / 2;
    await storeHash(q, level, i, h);
  }
  stack.push(h);
  await q.run('UPDATE log_head SET root = $1, updated_at = $2 WHERE id = 1', [hex(foldSubtrees(stack)), nowText()]);
  return index;
}

async function storeHash(q: Sql, level: number, index: number, h: Buffer): Promise<void> {
  await q.run('INSERT INTO log_hashes (level, idx, hash) VALUES ($1, $2, $3)', [level, index, hex(h)]);
}

export async function readHead(q: Sql): Promise<LogHead> {
  const r = await q.one<{ size: number; root: string }>('SELECT size, root FROM log_head WHERE id = 1');
  if (!r) throw new BoxsigError('INTERNAL', 'internal error: the log has no head row');
  return { size: Number(r.size), root: Buffer.from(r.root, 'hex') };
}

function checkSize(what: string, n: number, max: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new BoxsigError('USAGE', `${what} must be a tree size from 0 to ${max} (the log's current size)`, { status: 400 });
  }
}

/** The audit path of leaf `index` in the tree of `size` leaves. */
export async function inclusionProof(q: Sql, index: number, size: number): Promise<Buffer[]> {
  const head = await readHead(q);
  checkSize('size', size, head.size);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new BoxsigError('USAGE', `index must be below size ${size}`, { status: 400 });
  return rangeHashes(q, inclusionRanges(index, size));
}

/** The consistency proof between tree sizes `from` and `to`. */
export async function consistencyProof(q: Sql, from: number, to: number): Promise<Buffer[]> {
  const head = await readHead(q);
  checkSize('to', to, head.size);
  checkSize('from', from, to);
  return rangeHashes(q, consistencyRanges(from, to));
}

export interface EntryRow {
  index: number;
  data: string;
}

/**
 * Entries [start, end) with the compact range of [0, start): the hashes that,
 * with these leaves, give the root of the tree of `end` leaves — what a
 * monitor needs to check every entry against a checkpoint.
 */
export async function readEntries(q: Sql, start: number, end: number): Promise<{ prefix: Buffer[]; entries: EntryRow[] }> {
  const head = await readHead(q);
  checkSize('end', end, head.size);
  checkSize('start', start, end);
  const last = Math.min(end, start + MAX_ENTRIES_PER_PAGE);
  const rows = await q.query<{ idx: number; data: string }>('SELECT idx, data FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx', [start, last]);
  const prefixTrees = subtreesOf({ start: 0, end: start });
  const stored = await readSubtrees(q, prefixTrees);
  return {
    prefix: prefixTrees.map((s) => stored.get(`${s.level}:${s.index}`)!),
    entries: rows.map((r) => ({ index: Number(r.idx), data: r.data })),
  };
}

/** The index of the entry with this leaf hash (null: none). */
export async function findLeaf(q: Sql, leafHex: string): Promise<number | null> {
  const r = await q.one<{ idx: number }>('SELECT idx FROM log_entries WHERE leaf_hash = $1 ORDER BY idx LIMIT 1', [leafHex]);
  return r ? Number(r.idx) : null;
}

export async function readEntry(q: Sql, index: number): Promise<string | null> {
  const r = await q.one<{ data: string }>('SELECT data FROM log_entries WHERE idx = $1', [index]);
  return r?.data ?? null;
}
