/**
 * The engines the registry tests run against, each isolated per test:
 * - `embedded`: `--data DIR` (better-sqlite3 + a blob directory), always;
 * - `postgres`: PostgreSQL metadata (a fresh database per test) + blobs in
 *   DIR — from BOXSIG_TEST_DATABASE_URL, or, when that is unset, a private
 *   PostgreSQL 15 cluster this helper starts in /tmp (initdb + pg_ctl);
 * - `postgres+s3`: PostgreSQL + an S3-compatible store (a fresh key prefix
 *   per test) from BOXSIG_TEST_S3_ENDPOINT, BOXSIG_TEST_S3_BUCKET,
 *   BOXSIG_TEST_S3_REGION and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
 * On CI (CI=true) an engine that cannot be provided is a failure, never a
 * skip. Adding an engine is one entry in `engines()`.
 *
 * TODO(merge): the infra branch's test/engines.ts provides the same
 * variables from .ci/run; this helper only starts its own PostgreSQL when
 * they are absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { S3BlobStore } from '../../src/registry/blobs/s3.js';
import { generateSignerKey } from '../../src/tlog/note.js';

export interface Engine {
  name: 'embedded' | 'postgres' | 'postgres+s3';
  /** A fresh, isolated registry: the flags of `registry serve` and of the admin commands. */
  create(dir: string): Promise<EngineInstance>;
}

export interface EngineInstance {
  engine: Engine['name'];
  flags: string[];
  env: NodeJS.ProcessEnv;
  /** Keys of every object (complete or not) in the blob store. */
  objects(): Promise<string[]>;
  /** Rows of a query on the registry's database. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
const onCI = process.env.CI === 'true';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

let privateCluster: Promise<{ url: string; stop(): void }> | null = null;

/** A throwaway PostgreSQL 15 cluster owned by the `postgres` user, on a free port. */
async function startPrivateCluster(): Promise<{ url: string; stop(): void }> {
  const dir = fs.mkdtempSync('/tmp/bsg-pg-');
  const data = path.join(dir, 'data');
  fs.chmodSync(dir, 0o755);
  const asPostgres = (args: string[]) => {
    const r =
      process.getuid?.() === 0
        ? spawnSync('runuser', ['-u', 'postgres', '--', ...args], { encoding: 'utf8' })
        : spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  };
  if (process.getuid?.() === 0) spawnSync('chown', ['postgres:postgres', dir]);
  asPostgres([`${PG_BIN}/initdb`, '-D', data, '--auth=trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  asPostgres([
    `${PG_BIN}/pg_ctl`,
    '-D',
    data,
    '-w',
    '-l',
    path.join(dir, 'log'),
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
    'start',
  ]);
  const stop = () => {
    asPostgres([`${PG_BIN}/pg_ctl`, '-D', data, '-m', 'immediate', 'stop']);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => {
    try {
      stop();
    } catch {
      /* already stopped */
    }
  });
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
}

async function adminUrl(): Promise<string> {
  if (process.env.BOXSIG_TEST_DATABASE_URL) return process.env.BOXSIG_TEST_DATABASE_URL;
  privateCluster ??= startPrivateCluster();
  return (await privateCluster).url;
}

/** A fresh database on the server for one test. */
async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = await adminUrl();
  const name = `boxsig_t_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await d.end();
    },
  };
}

function dirObjects(dir: string): string[] {
  const d = path.join(dir, 'blobs', 'objects');
  return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
}

async function sqliteQuery<T>(dir: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const { SqliteDb } = await import('../../src/registry/db/sqlite.js');
  const db = new SqliteDb(path.join(dir, 'registry.db'));
  try {
    return await db.query<T>(sql, params);
  } finally {
    await db.close();
  }
}

async function pgQuery<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

const embedded: Engine = {
  name: 'embedded',
  async create(dir) {
    const data = path.join(dir, 'registry');
    return {
      engine: 'embedded',
      flags: ['--data', data],
      env: {},
      objects: async () => dirObjects(data),
      query: (sql, params) => sqliteQuery(data, sql, params),
      close: async () => undefined,
    };
  },
};

const postgres: Engine = {
  name: 'postgres',
  async create(dir) {
    const data = path.join(dir, 'registry');
    const db = await freshDatabase();
    return {
      engine: 'postgres',
      flags: ['--database', db.url, '--data', data],
      env: {},
      objects: async () => dirObjects(data),
      query: (sql, params) => pgQuery(db.url, sql, params),
      close: () => db.drop(),
    };
  },
};

function s3Settings(): { endpoint: string; bucket: string; region: string } | null {
  const e = process.env;
  if (!e.BOXSIG_TEST_S3_ENDPOINT || !e.BOXSIG_TEST_S3_BUCKET || !e.BOXSIG_TEST_S3_REGION || !e.AWS_ACCESS_KEY_ID) return null;
  return { endpoint: e.BOXSIG_TEST_S3_ENDPOINT, bucket: e.BOXSIG_TEST_S3_BUCKET, region: e.BOXSIG_TEST_S3_REGION };
}

const postgresS3: Engine = {
  name: 'postgres+s3',
  async create() {
    const s3 = s3Settings()!;
    const prefix = `boxsig-test-${randomBytes(6).toString('hex')}/`;
    const db = await freshDatabase();
    const store = new S3BlobStore({ ...s3, prefix });
    return {
      engine: 'postgres+s3',
      flags: ['--database', db.url, '--s3-endpoint', s3.endpoint, '--s3-bucket', s3.bucket, '--s3-region', s3.region, '--s3-prefix', prefix],
      // no data directory to keep a generated registry key in: the operator gives one (issue 15)
      env: { BOXSIG_REGISTRY_KEY: generateSignerKey(`boxsig-test-${prefix.slice(12, 24)}`).signerKey },
      async objects() {
        const keys: string[] = [];
        for await (const o of store.list()) keys.push(o.complete ? o.key : `${o.key} (unfinished)`);
        return keys.sort();
      },
      query: (sql, params) => pgQuery(db.url, sql, params),
      async close() {
        for await (const o of store.list()) await store.delete(o).catch(() => undefined);
        store.close();
        await db.drop();
      },
    };
  },
};

function postgresAvailable(): string | null {
  if (process.env.BOXSIG_TEST_DATABASE_URL) return null;
  if (!fs.existsSync(`${PG_BIN}/initdb`)) return `PostgreSQL 15 is not installed (apt-get install -y postgresql-15) and BOXSIG_TEST_DATABASE_URL is not set`;
  if (process.getuid?.() === 0 && spawnSync('id', ['postgres']).status !== 0) return 'there is no postgres user to run a private cluster';
  return null;
}

export interface Unavailable {
  name: string;
  reason: string;
}

/**
 * The engines to run on. `which`:
 * - `all`: every engine — for what is stored and removed, where the database
 *   and the blob store meet (refusals, collection);
 * - `each`: each database and each blob store once: embedded (SQLite and a
 *   directory) and postgres+s3 (PostgreSQL and S3); `postgres` (PostgreSQL and
 *   a directory) only pairs parts those two cover, and runs here only when
 *   there is no S3 store;
 * - `shared`: only those with PostgreSQL (the scale-out tests need a shared
 *   database).
 */
export function engines(which: 'all' | 'each' | 'shared' = 'all'): { available: Engine[]; unavailable: Unavailable[] } {
  const available: Engine[] = [];
  const unavailable: Unavailable[] = [];
  if (which !== 'shared') available.push(embedded);
  const pgProblem = postgresAvailable();
  if (pgProblem) unavailable.push({ name: 'postgres', reason: pgProblem });
  else available.push(postgres);
  const s3 = s3Settings();
  if (!s3)
    unavailable.push({
      name: 'postgres+s3',
      reason: 'BOXSIG_TEST_S3_ENDPOINT, BOXSIG_TEST_S3_BUCKET, BOXSIG_TEST_S3_REGION and AWS_* are not set (scripts/services/swift.sh starts a local Swift)',
    });
  else if (!pgProblem) available.push(postgresS3);
  if (which === 'each' && available.some((e) => e.name === 'postgres+s3')) available.splice(available.indexOf(postgres), 1);
  // BOXSIG_TEST_REGISTRY_ENGINES=postgres+s3 (comma-separated) runs only those, for a quicker local run
  const only = process.env.BOXSIG_TEST_REGISTRY_ENGINES?.split(',').filter(Boolean);
  if (only?.length) return { available: available.filter((e) => only.includes(e.name)), unavailable: unavailable.filter((u) => only.includes(u.name)) };
  return { available, unavailable };
}

/** Report the engines that cannot run: a failure on CI, a visible skip locally. */
export function reportUnavailable(t: { fail(m: string): unknown; comment(m: string): unknown }, unavailable: Unavailable[]): void {
  for (const u of unavailable) {
    if (onCI) t.fail(`registry engine ${u.name} is required on CI: ${u.reason}`);
    else t.comment(`SKIP engine ${u.name}: ${u.reason}`);
  }
}

/** Stop the private cluster (call from the test file's teardown). */
export async function stopEngines(): Promise<void> {
  if (privateCluster) {
    const c = await privateCluster;
    privateCluster = null;
    c.stop();
  }
}
