/**
 * The embedded metadata engine: SQLite through better-sqlite3, in WAL mode,
 * one file under the data directory. Several processes may open it (the
 * server and the admin commands): SQLite's own locking serialises writers,
 * `BEGIN IMMEDIATE` takes the write lock up front, and `busy_timeout` waits
 * for it. Inside one process, an async mutex keeps the statements of one
 * transaction from interleaving with anything else on the connection.
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { BoxsigError } from '../../errors.js';
import { dbError, type Db, type Row, type Sql } from './engine.js';
import { makeDirs } from '../../shared/files.js';

const require = createRequire(import.meta.url);

/** `$1` → `@p1` (better-sqlite3 binds named parameters from an object). */
function translate(text: string): string {
  return text.replace(/\$(\d+)/g, '@p$1');
}

function bindings(params: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  params.forEach((v, i) => {
    out[`p${i + 1}`] = v === undefined ? null : typeof v === 'boolean' ? (v ? 1 : 0) : v;
  });
  return out;
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}

export class SqliteDb implements Db {
  readonly dialect = 'sqlite' as const;
  readonly description: string;
  readonly watching = true;
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private readonly mutex = new Mutex();
  private watchers: Array<(boxId: string | null) => void> = [];
  private pending: string[] | null = null;
  private dataVersion = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly file: string) {
    this.description = `embedded database ${file}`;
    makeDirs(path.dirname(file), 0o700);
    let Database: typeof BetterSqlite3;
    try {
      Database = require('better-sqlite3');
    } catch (e) {
      throw new BoxsigError('INTERNAL', `the embedded engine (better-sqlite3) cannot be loaded: ${(e as Error).message}`);
    }
    try {
      this.db = new Database(file, { timeout: 15_000 });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
    } catch (e) {
      throw new BoxsigError('CONFIG', `cannot open the embedded database ${file}: ${(e as Error).message}`, { file });
    }
  }

  private statement(text: string): BetterSqlite3.Statement {
    let s = this.statements.get(text);
    if (!s) {
      s = this.db.prepare(translate(text));
      this.statements.set(text, s);
    }
    return s;
  }

  /** Statements on the connection, for a caller that holds the mutex. */
  private readonly direct: Sql = {
    query: async <T>(text: string, params: unknown[] = []) => {
      const s = this.statement(text);
      return (s.reader ? s.all(bindings(params)) : (s.run(bindings(params)), [])) as T[];
    },
    one: async <T>(text: string, params: unknown[] = []) => {
      const s = this.statement(text);
      if (!s.reader) {
        s.run(bindings(params));
        return null;
      }
      return ((s.get(bindings(params)) as T | undefined) ?? null) as T | null;
    },
    run: async (text: string, params: unknown[] = []) => this.statement(text).run(bindings(params)).changes,
  };

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  query<T = Row>(text: string, params?: unknown[]): Promise<T[]> {
    return this.locked(() => this.direct.query<T>(text, params));
  }
  one<T = Row>(text: string, params?: unknown[]): Promise<T | null> {
    return this.locked(() => this.direct.one<T>(text, params));
  }
  run(text: string, params?: unknown[]): Promise<number> {
    return this.locked(() => this.direct.run(text, params));
  }

  async tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    return this.locked(async () => {
      this.begin();
      this.pending = [];
      let result: T;
      try {
        result = await fn(this.direct);
        this.db.exec('COMMIT');
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        this.pending = null;
        throw e;
      }
      const changed = this.pending;
      this.pending = null;
      for (const id of changed) for (const w of this.watchers) w(id);
      return result;
    });
  }

  async lock(): Promise<void> {
    // BEGIN IMMEDIATE already holds the database's write lock
  }

  /** BEGIN IMMEDIATE, retried while another process holds the write lock beyond busy_timeout. */
  private begin(): void {
    for (let attempt = 0; ; attempt++) {
      try {
        this.db.exec('BEGIN IMMEDIATE');
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== 'SQLITE_BUSY' || attempt >= 3) throw dbError(this.description, e);
      }
    }
  }

  async watch(changed: (boxId: string | null) => void): Promise<void> {
    this.watchers.push(changed);
    if (this.timer) return;
    this.dataVersion = this.readDataVersion();
    // other processes' commits change data_version; our own are announced directly
    this.timer = setInterval(() => {
      const v = this.readDataVersion();
      if (v !== this.dataVersion) {
        this.dataVersion = v;
        for (const w of this.watchers) w(null);
      }
    }, 250);
    this.timer.unref();
  }

  private readDataVersion(): number {
    return Number(this.db.pragma('data_version', { simple: true }));
  }

  async announce(_q: Sql, boxId: string): Promise<void> {
    this.pending?.push(boxId);
  }

  /** Every migration runs in one BEGIN IMMEDIATE transaction: SQLite's write lock orders them. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  /** An online, consistent copy of the database (SQLite's backup API), while processes keep using it. */
  async backup(destination: string): Promise<void> {
    const release = await this.mutex.lock();
    try {
      await this.db.backup(destination);
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const release = await this.mutex.lock();
    try {
      if (this.db.open) this.db.close();
    } finally {
      release();
    }
  }
}
