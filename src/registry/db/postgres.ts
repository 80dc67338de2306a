/**
 * PostgreSQL through `pg`: a pool for statements, READ COMMITTED
 * transactions ordered by row locks (`lock`) and unique constraints, retried
 * on deadlocks, and a dedicated connection that LISTENs for the changes
 * other registry processes commit. (SERIALIZABLE was tried first: on tables
 * this small every scan is sequential and takes relation-wide predicate
 * locks, so twenty concurrent publishes of one box failed with serialisation
 * errors even after eight retries.)
 */
import pg from 'pg';
import { BoxsigError } from '../../errors.js';
import { dbError, type Db, type Row, type Sql } from './engine.js';

const CHANNEL = 'boxsig_registry';
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 8;
/** pg_advisory_lock key of schema migrations ("boxsig" in ASCII). */
const MIGRATION_LOCK = 0x626f78736967;

// int8 (COUNT, SUM, BIGINT sizes) as numbers: sizes stay far below 2^53
pg.types.setTypeParser(20, (v: string) => Number(v));

/** The URL without its password, for messages and logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

/** Booleans are stored as INTEGER 0/1 on both engines. */
function values(params: unknown[]): unknown[] {
  return params.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v === undefined ? null : v));
}

function sqlOf(client: pg.Pool | pg.PoolClient): Sql {
  return {
    query: async <T>(text: string, params: unknown[] = []) => (await client.query(text, values(params))).rows as T[],
    one: async <T>(text: string, params: unknown[] = []) => ((await client.query(text, values(params))).rows[0] as T | undefined) ?? null,
    run: async (text: string, params: unknown[] = []) => (await client.query(text, values(params))).rowCount ?? 0,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PostgresDb implements Db {
  readonly dialect = 'postgres' as const;
  readonly description: string;
  private readonly pool: pg.Pool;
  private readonly plain: Sql;
  private listener: pg.Client | null = null;
  private watchers: Array<(boxId: string | null) => void> = [];
  private closed = false;
  watching = false;

  constructor(
    private readonly url: string,
    opts: { max?: number } = {},
  ) {
    this.description = `PostgreSQL ${redactUrl(url)}`;
    this.pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
    // an idle client that loses its server must not crash the process
    this.pool.on('error', () => undefined);
    this.plain = sqlOf(this.pool);
  }

  private wrap<T>(p: Promise<T>): Promise<T> {
    return p.catch((e) => {
      throw this.translate(e);
    });
  }

  private translate(e: unknown): unknown {
    const code = (e as { code?: string })?.code;
    if (code === '23505') return e; // unique violations are the caller's to interpret
    if (e instanceof BoxsigError) return e;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === '57P01' || code === '57P03') {
      return new BoxsigError('UNAVAILABLE', `${this.description} is not reachable: ${(e as Error).message}`);
    }
    return dbError(this.description, e);
  }

  query<T = Row>(text: string, params?: unknown[]): Promise<T[]> {
    return this.wrap(this.plain.query<T>(text, params));
  }
  one<T = Row>(text: string, params?: unknown[]): Promise<T | null> {
    return this.wrap(this.plain.one<T>(text, params));
  }
  run(text: string, params?: unknown[]): Promise<number> {
    return this.wrap(this.plain.run(text, params));
  }

  async tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (e) {
        throw this.translate(e);
      }
      try {
        await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
        const result = await fn(sqlOf(client));
        await client.query('COMMIT');
        return result;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        const code = (e as { code?: string })?.code;
        if (code && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS) {
          await sleep(Math.random() * 20 * attempt);
          continue;
        }
        throw this.translate(e);
      } finally {
        client.release();
      }
    }
  }

  async lock(q: Sql, table: 'boxes' | 'tokens', id: string): Promise<void> {
    await q.query(`SELECT id FROM ${table === 'boxes' ? 'boxes' : 'tokens'} WHERE id = $1 FOR UPDATE`, [id]);
  }

  async watch(changed: (boxId: string | null) => void): Promise<void> {
    this.watchers.push(changed);
    if (!this.listener) await this.listen();
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = null;
      this.watching = false;
      for (const w of this.watchers) w(null);
      client.end().catch(() => undefined);
      if (!this.closed) setTimeout(() => void this.listen().catch(() => undefined), 1000).unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      for (const w of this.watchers) w(n.payload || null);
    });
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.watching = true;
      // anything committed while nobody listened
      for (const w of this.watchers) w(null);
    } catch {
      lost();
    }
  }

  async announce(q: Sql, boxId: string): Promise<void> {
    await q.query(`SELECT pg_notify('${CHANNEL}', $1)`, [boxId]);
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.translate(e);
    }
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      client.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const l = this.listener;
    this.listener = null;
    this.watching = false;
    await l?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}
