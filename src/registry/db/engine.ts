/**
 * The metadata engine seen by the registry: PostgreSQL (`pg`) or the embedded
 * engine (better-sqlite3), behind one small interface. SQL is written once,
 * in the subset both understand: `$1`-style parameters, TEXT timestamps
 * (ISO 8601 UTC, compared as strings), INTEGER booleans, `ON CONFLICT`,
 * `RETURNING`. Concurrent writers are ordered by unique constraints and by
 * one row lock per box (`lock`): on PostgreSQL, READ COMMITTED transactions
 * that lock the box row before reading what they change; on SQLite, write
 * transactions that run one at a time (BEGIN IMMEDIATE). So concurrent
 * registry processes on one database never lose an update, and never
 * publish a version twice.
 *
 * A transaction body must only talk to the database: never to the object
 * store or the network (the embedded engine holds its write lock for it).
 */
import { BoxsigError } from '../../errors.js';

export type Row = Record<string, unknown>;
export type Dialect = 'postgres' | 'sqlite';

export interface Sql {
  /** Every row of a statement. */
  query<T = Row>(text: string, params?: unknown[]): Promise<T[]>;
  /** The first row, or null. */
  one<T = Row>(text: string, params?: unknown[]): Promise<T | null>;
  /** Run a statement; returns the number of rows it changed. */
  run(text: string, params?: unknown[]): Promise<number>;
}

export interface Db extends Sql {
  readonly dialect: Dialect;
  /** A human description without credentials (for logs and errors). */
  readonly description: string;
  /** Run `fn` in one transaction (retried on a deadlock or serialisation conflict). */
  tx<T>(fn: (q: Sql) => Promise<T>): Promise<T>;
  /**
   * Inside a transaction: lock one row of `boxes` or `tokens` until the end
   * of the transaction; writers of one box (or one token's uploads) take
   * turns, and what they read after the lock is current. (SQLite: a no-op,
   * its write transactions already run one at a time.)
   */
  lock(q: Sql, table: 'boxes' | 'tokens', id: string): Promise<void>;
  /**
   * Subscribe to changes committed by any process on this database (catalog
   * cache invalidation). `changed(null)` means "anything may have changed".
   */
  watch(changed: (boxId: string | null) => void): Promise<void>;
  /** Whether watch() currently delivers every change (a cache may be trusted). */
  readonly watching: boolean;
  /** Inside a transaction: tell every watcher that this box changed (sent at commit). */
  announce(q: Sql, boxId: string): Promise<void>;
  /** Run `fn` while holding the database-wide lock that orders migrations between processes. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A unique constraint was violated (a concurrent insert won): callers turn it into EXISTS. */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** A database failure as the registry reports it (never with the connection string). */
export function dbError(what: string, e: unknown): BoxsigError {
  if (e instanceof BoxsigError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new BoxsigError('IO', `${what}: ${msg}`, { errno: (e as { code?: string })?.code });
}

/** Now, as the registry stores times: ISO 8601 UTC with milliseconds (sorts as text). */
export function nowText(d = new Date()): string {
  return d.toISOString();
}
