/**
 * The registry's storage engines in tests.
 *
 * `engines(t)` lists the engines a test file runs against: always the embedded default
 * (`--data DIR`), and PostgreSQL + an S3 store when the environment names them (on CI
 * `.ci/run` starts PostgreSQL 15 and a one-node OpenStack Swift with s3api and sets the
 * variables below). Each engine's `setup(t)` gives one test its own storage — a fresh
 * directory, a fresh database, a fresh bucket — removed at the test's teardown, so test
 * files running in parallel never see each other's data:
 *
 *   for (const engine of engines(t)) {
 *     t.test(`publish (${engine.name})`, async (t) => {
 *       const store = await engine.setup(t);
 *       spawn(CLI, ['registry', 'serve', ...store.args], { env: { ...process.env, ...store.env } });
 *     });
 *   }
 *
 * Variables (printed by scripts/services/postgres.sh and scripts/services/swift.sh):
 *   BOXSIG_TEST_DATABASE_URL   postgresql://USER:PASSWORD@HOST:PORT/DB; USER needs CREATEDB
 *   BOXSIG_TEST_S3_ENDPOINT    e.g. http://127.0.0.1:8080
 *   BOXSIG_TEST_S3_REGION      the region the store signs with (Swift: s3api's `location`)
 *   BOXSIG_TEST_S3_BUCKET      an existing bucket; per-test buckets are named after it
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
 * On CI (CI=true) a missing variable is a failure; locally the external engine is skipped
 * with the commands that start it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import pg from 'pg';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';

export const DATABASE_VARIABLES = ['BOXSIG_TEST_DATABASE_URL'] as const;
export const S3_VARIABLES = [
  'BOXSIG_TEST_S3_ENDPOINT',
  'BOXSIG_TEST_S3_REGION',
  'BOXSIG_TEST_S3_BUCKET',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
] as const;

/** How to start the engines locally (named in every skip and failure). */
export const START_ENGINES = 'eval "$(sudo scripts/services/postgres.sh)" && eval "$(sudo scripts/services/swift.sh)"';

export interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ExternalEngines {
  /** the database the variables name (tests get their own, see freshDatabase) */
  databaseUrl: string;
  s3: S3Target;
}

/** One test's storage. */
export interface EngineInstance {
  engine: EngineName;
  /** a fresh directory, always (the embedded engine's --data) */
  dataDir: string;
  /** a fresh database, dropped at teardown (external engine only) */
  databaseUrl: string | null;
  /** a fresh bucket, emptied and deleted at teardown (external engine only) */
  s3: S3Target | null;
  /** the storage flags of `boxsig registry serve` and the admin commands (REGISTRY.md) */
  args: string[];
  /** what a registry process needs in its environment: the S3 credentials */
  env: Record<string, string>;
}

export type EngineName = 'embedded' | 'postgres+s3';

export interface Engine {
  name: EngineName;
  setup(t: Teardown): Promise<EngineInstance>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}
interface Commenter {
  comment(...msg: unknown[]): unknown;
}

const onCI = () => process.env.CI === 'true';

/**
 * The S3 client settings an S3-compatible store such as Swift's s3api needs with
 * @aws-sdk/client-s3 v3 (what the registry must use too):
 * - `forcePathStyle`: buckets in the path (http://host:port/bucket/key); a local store has no
 *   per-bucket DNS names;
 * - `requestChecksumCalculation: 'WHEN_REQUIRED'`: by default the SDK (since 3.729) sends a
 *   stream body as `aws-chunked` with a trailing CRC32, which Swift refuses ("Transfering
 *   payloads in multiple chunks using aws-chunked is not supported"): a PutObject of a stream
 *   fails (lib-storage's Upload buffers its parts and gets through either way);
 * - `responseChecksumValidation: 'WHEN_REQUIRED'`: do not expect checksums Swift never sends;
 * - the region is part of every SigV4 signature: it must be exactly the store's (s3api's
 *   `location`), or every request is refused.
 * Swift's s3api also needs `Content-MD5` on DeleteObjects, which this SDK no longer sends
 * (it sends a CRC32): delete objects one by one (DeleteObject).
 */
export function s3ClientConfig(s3: S3Target): S3ClientConfig {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export function s3Client(s3: S3Target): S3Client {
  return new S3Client(s3ClientConfig(s3));
}

function missing(names: readonly string[]): string[] {
  return names.filter((n) => !process.env[n]);
}

function checkUrl(name: string, value: string, protocols: string[]): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`${name} is not a URL: ${JSON.stringify(value)}`);
  }
  if (!protocols.includes(u.protocol)) throw new Error(`${name} must be a ${protocols.join(' or ')} URL, not ${u.protocol}`);
}

/**
 * The external engines the environment names, or null when none is configured. A partial or
 * malformed configuration throws; so does a missing one on CI (CI=true), where the registry
 * must be tested against the real engines.
 */
export function externalEngines(): ExternalEngines | null {
  const absent = missing([...DATABASE_VARIABLES, ...S3_VARIABLES]);
  const all = DATABASE_VARIABLES.length + S3_VARIABLES.length;
  if (absent.length === all && !onCI()) return null;
  if (absent.length) {
    const why = onCI() ? 'on CI the registry tests need the real engines (.ci/run starts them)' : 'the engines are configured only in part';
    throw new Error(`${absent.join(', ')} ${absent.length === 1 ? 'is' : 'are'} not set: ${why}; locally: ${START_ENGINES}`);
  }
  const env = process.env as Record<string, string>;
  checkUrl('BOXSIG_TEST_DATABASE_URL', env.BOXSIG_TEST_DATABASE_URL, ['postgres:', 'postgresql:']);
  checkUrl('BOXSIG_TEST_S3_ENDPOINT', env.BOXSIG_TEST_S3_ENDPOINT, ['http:', 'https:']);
  return {
    databaseUrl: env.BOXSIG_TEST_DATABASE_URL,
    s3: {
      endpoint: env.BOXSIG_TEST_S3_ENDPOINT,
      region: env.BOXSIG_TEST_S3_REGION,
      bucket: env.BOXSIG_TEST_S3_BUCKET,
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    },
  };
}

/**
 * The engines to run a registry test against: the embedded default always, PostgreSQL + S3
 * when configured. Locally an unconfigured external engine is skipped with a comment on `t`
 * naming the scripts that start it; on CI it throws.
 */
export function engines(t?: Commenter): Engine[] {
  const list: Engine[] = [{ name: 'embedded', setup: setupEmbedded }];
  const ext = externalEngines();
  if (ext) list.push({ name: 'postgres+s3', setup: (tt) => setupExternal(tt, ext) });
  else t?.comment(`SKIP: PostgreSQL + S3 engine not configured (${[...DATABASE_VARIABLES, ...S3_VARIABLES].join(', ')}): ${START_ENGINES}`);
  return list;
}

/** A name no other test, process or run uses: lower-case letters, digits and `sep`. */
function uniqueName(prefix: string, sep: string): string {
  return [prefix, 't', process.pid.toString(36), crypto.randomBytes(5).toString('hex')].join(sep);
}

function freshDir(t: Teardown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-engine-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function setupEmbedded(t: Teardown): Promise<EngineInstance> {
  const dataDir = freshDir(t);
  return { engine: 'embedded', dataDir, databaseUrl: null, s3: null, args: ['--data', dataDir], env: {} };
}

async function setupExternal(t: Teardown, ext: ExternalEngines): Promise<EngineInstance> {
  const dataDir = freshDir(t);
  const databaseUrl = await freshDatabase(t, ext.databaseUrl);
  const s3 = await freshBucket(t, ext.s3);
  return {
    engine: 'postgres+s3',
    dataDir,
    databaseUrl,
    s3,
    args: ['--database', databaseUrl, '--s3-endpoint', s3.endpoint, '--s3-bucket', s3.bucket, '--s3-region', s3.region],
    env: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
  };
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (e) {
    throw new Error(`PostgreSQL at ${redact(url)} is not reachable (${(e as Error).message}); start it with scripts/services/postgres.sh`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A new, empty database owned by the variables' role, dropped (with any connection still
 * open to it) at teardown. Returns its URL.
 */
export async function freshDatabase(t: Teardown, baseUrl: string): Promise<string> {
  const name = uniqueName('boxsig', '_');
  await withClient(baseUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  t.teardown(() => withClient(baseUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)));
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A new bucket named after the configured one, emptied and deleted at teardown. */
export async function freshBucket(t: Teardown, base: S3Target): Promise<S3Target> {
  const s3 = { ...base, bucket: uniqueName(base.bucket, '-') };
  const client = s3Client(s3);
  try {
    await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
  } catch (e) {
    client.destroy();
    throw new Error(
      `cannot create bucket ${s3.bucket} at ${s3.endpoint} (${(e as Error).name}: ${(e as Error).message}); start the store with scripts/services/swift.sh`,
    );
  }
  t.teardown(async () => {
    try {
      await removeBucket(client, s3.bucket);
    } finally {
      client.destroy();
    }
  });
  return s3;
}

/** Abort unfinished multipart uploads, delete every object, then the bucket. */
export async function removeBucket(client: S3Client, bucket: string): Promise<void> {
  let uploads;
  do {
    uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  } while (uploads.IsTruncated);
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}
