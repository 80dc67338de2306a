/**
 * Registry configuration: built-in defaults, then a JSON config file
 * (`--config FILE` or BOXSIG_REGISTRY_CONFIG), then BOXSIG_REGISTRY_*
 * environment variables, then command-line flags — later ones win. S3
 * credentials are never configured here: the AWS SDK reads AWS_* variables,
 * profiles or instance roles. Every problem is a CONFIG error naming where
 * the value came from.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BoxsigError } from '../errors.js';
import { isPlainObject, parseUntrustedJson } from '../shared/json.js';
import type { S3Options } from './blobs/s3.js';

export interface RegistryConfig {
  listen: { host: string; port: number };
  /** The URL clients reach this registry by (behind a load balancer); default: from each request's Host. */
  publicUrl: string | null;
  /** Embedded default: blobs (unless S3) and metadata (unless a database URL) under this directory. */
  data: string | null;
  /** PostgreSQL connection URL. */
  database: string | null;
  s3: S3Options | null;
  /** Box downloads: a redirect to a presigned object-store URL, or proxied through the registry. */
  downloads: 'redirect' | 'proxy';
  presignSeconds: number;
  maxBoxBytes: number;
  /** Uploads one token may have in flight at once, over every registry process. */
  uploadsPerToken: number;
  /** How long an upload URL stays valid. */
  uploadSessionSeconds: number;
  /** An upload whose client sends nothing for this long is dropped. */
  uploadIdleSeconds: number;
  /** Any other request must have sent its whole body within this time (JSON bodies are small). */
  requestBodySeconds: number;
  /** Every request must have sent its request line and headers within this time (slow-loris). */
  headersSeconds: number;
  /**
   * Connections one client address may hold open at once to this process (0:
   * no limit); null: 256, or no limit with `trustProxy` (every connection then
   * comes from the proxy: cap per client there).
   */
  connectionsPerClient: number | null;
  /** On SIGTERM: how long uploads in flight may take to finish before they are discarded. */
  shutdownGraceSeconds: number;
  /** A receiving upload whose process has not renewed its lease for this long is dead. */
  leaseSeconds: number;
  gcIntervalSeconds: number;
  /** Objects younger than this are never collected. */
  gcGraceSeconds: number;
  trustProxy: boolean;
  logLevel: string;
  catalogCache: boolean;
  /** The registry's signing key (checkpoints, catalog statements): a file; default: generated in `data` (log/key.ts). */
  keyFile: string | null;
  /** How long a signed catalog statement stays valid (it is renewed by the registry before). */
  catalogTtlSeconds: number;
  /** The key-encryption key of held keys (escrow): a file; else BOXSIG_REGISTRY_ESCROW_KEY (src/registry/escrow/kek.ts). */
  escrowKeyFile: string | null;
}

const DEFAULTS: RegistryConfig = {
  listen: { host: '127.0.0.1', port: 8484 },
  publicUrl: null,
  data: null,
  database: null,
  s3: null,
  downloads: 'redirect',
  presignSeconds: 900,
  maxBoxBytes: 64 * 1024 ** 3,
  uploadsPerToken: 4,
  uploadSessionSeconds: 24 * 3600,
  uploadIdleSeconds: 120,
  requestBodySeconds: 30,
  headersSeconds: 60,
  connectionsPerClient: null,
  shutdownGraceSeconds: 30,
  leaseSeconds: 60,
  gcIntervalSeconds: 300,
  gcGraceSeconds: 900,
  trustProxy: false,
  logLevel: 'info',
  catalogCache: true,
  keyFile: null,
  catalogTtlSeconds: 24 * 3600,
  escrowKeyFile: null,
};

/** Flags of `registry serve` and the admin commands (all optional). */
export interface ConfigFlags {
  config?: string;
  data?: string;
  database?: string;
  s3Endpoint?: string;
  s3Bucket?: string;
  s3Region?: string;
  s3Prefix?: string;
  listen?: string;
  publicUrl?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Setter = (c: RegistryConfig, v: unknown, where: string) => void;

const bad = (where: string, msg: string) => new BoxsigError('CONFIG', `${where}: ${msg}`, { field: where });

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || !v) throw bad(where, 'must be a non-empty string');
  return v;
}

function int(v: unknown, where: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw bad(where, `must be an integer from ${min} to ${max}`);
  return n;
}

/** A byte size: 1048576, "512M", "64G", "1T" (binary units). */
export function parseSize(v: unknown, where: string): number {
  if (typeof v === 'number') return int(v, where, 1);
  const m = typeof v === 'string' ? /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(v.trim()) : null;
  if (!m) throw bad(where, 'must be a size such as 68719476736, 512M or 64G');
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return int(Number(m[1]) * unit, where, 1);
}

function bool(v: unknown, where: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw bad(where, 'must be true or false');
}

export function parseListen(v: unknown, where: string): { host: string; port: number } {
  const s = str(v, where);
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d{1,5})$/.exec(s) ?? /^()()(\d{1,5})$/.exec(s);
  if (!m) throw bad(where, 'must be HOST:PORT, [IPv6]:PORT or PORT');
  return { host: m[1] || m[2] || '127.0.0.1', port: int(Number(m[3]), where, 0, 65535) };
}

function url(v: unknown, where: string, schemes: string[]): string {
  const s = str(v, where);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw bad(where, 'is not a URL');
  }
  if (!schemes.includes(u.protocol)) throw bad(where, `must be a ${schemes.join(' or ')} URL`);
  return s;
}

function s3(c: RegistryConfig): S3Options {
  return (c.s3 ??= { bucket: '', region: '' });
}

const SETTERS = new Map<string, Setter>([
  ['listen', (c, v, w) => (c.listen = parseListen(v, w))],
  ['publicUrl', (c, v, w) => (c.publicUrl = url(v, w, ['http:', 'https:']).replace(/\/+$/, ''))],
  ['data', (c, v, w) => (c.data = path.resolve(str(v, w)))],
  ['database', (c, v, w) => (c.database = url(v, w, ['postgres:', 'postgresql:']))],
  ['s3Endpoint', (c, v, w) => (s3(c).endpoint = url(v, w, ['http:', 'https:']))],
  ['s3Bucket', (c, v, w) => (s3(c).bucket = str(v, w))],
  ['s3Region', (c, v, w) => (s3(c).region = str(v, w))],
  ['s3Prefix', (c, v, w) => (s3(c).prefix = str(v, w))],
  [
    's3SignPayloads',
    (c, v, w) => {
      if (v !== 'auto' && v !== 'always') throw bad(w, 'must be "auto" (sign parts over plain http to another host) or "always"');
      s3(c).signPayloads = v;
    },
  ],
  [
    'downloads',
    (c, v, w) => {
      if (v !== 'redirect' && v !== 'proxy') throw bad(w, 'must be "redirect" or "proxy"');
      c.downloads = v;
    },
  ],
  ['presignSeconds', (c, v, w) => (c.presignSeconds = int(v, w, 10, 7 * 24 * 3600))],
  ['maxBoxBytes', (c, v, w) => (c.maxBoxBytes = parseSize(v, w))],
  ['uploadsPerToken', (c, v, w) => (c.uploadsPerToken = int(v, w, 1, 1000))],
  ['uploadSessionSeconds', (c, v, w) => (c.uploadSessionSeconds = int(v, w, 60))],
  ['uploadIdleSeconds', (c, v, w) => (c.uploadIdleSeconds = int(v, w, 1, 24 * 3600))],
  ['requestBodySeconds', (c, v, w) => (c.requestBodySeconds = int(v, w, 1, 3600))],
  ['headersSeconds', (c, v, w) => (c.headersSeconds = int(v, w, 1, 3600))],
  ['connectionsPerClient', (c, v, w) => (c.connectionsPerClient = int(v, w, 0, 1_000_000))],
  ['shutdownGraceSeconds', (c, v, w) => (c.shutdownGraceSeconds = int(v, w, 0, 24 * 3600))],
  ['leaseSeconds', (c, v, w) => (c.leaseSeconds = int(v, w, 4, 3600))],
  ['gcIntervalSeconds', (c, v, w) => (c.gcIntervalSeconds = int(v, w, 0))],
  ['gcGraceSeconds', (c, v, w) => (c.gcGraceSeconds = int(v, w, 0))],
  ['trustProxy', (c, v, w) => (c.trustProxy = bool(v, w))],
  [
    'logLevel',
    (c, v, w) => {
      if (typeof v !== 'string' || !LOG_LEVELS.includes(v)) throw bad(w, `must be one of ${LOG_LEVELS.join(', ')}`);
      c.logLevel = v;
    },
  ],
  ['catalogCache', (c, v, w) => (c.catalogCache = bool(v, w))],
  ['keyFile', (c, v, w) => (c.keyFile = path.resolve(str(v, w)))],
  ['catalogTtlSeconds', (c, v, w) => (c.catalogTtlSeconds = int(v, w, 60, 366 * 24 * 3600))],
  ['escrowKeyFile', (c, v, w) => (c.escrowKeyFile = path.resolve(str(v, w)))],
]);

/** Environment variable → config field. */
const ENV = new Map<string, string>([
  ['BOXSIG_REGISTRY_LISTEN', 'listen'],
  ['BOXSIG_REGISTRY_PUBLIC_URL', 'publicUrl'],
  ['BOXSIG_REGISTRY_DATA', 'data'],
  ['BOXSIG_REGISTRY_DATABASE_URL', 'database'],
  ['BOXSIG_REGISTRY_S3_ENDPOINT', 's3Endpoint'],
  ['BOXSIG_REGISTRY_S3_BUCKET', 's3Bucket'],
  ['BOXSIG_REGISTRY_S3_REGION', 's3Region'],
  ['BOXSIG_REGISTRY_S3_PREFIX', 's3Prefix'],
  ['BOXSIG_REGISTRY_S3_SIGN_PAYLOADS', 's3SignPayloads'],
  ['BOXSIG_REGISTRY_DOWNLOADS', 'downloads'],
  ['BOXSIG_REGISTRY_MAX_BOX_BYTES', 'maxBoxBytes'],
  ['BOXSIG_REGISTRY_UPLOADS_PER_TOKEN', 'uploadsPerToken'],
  ['BOXSIG_REGISTRY_UPLOAD_IDLE_SECONDS', 'uploadIdleSeconds'],
  ['BOXSIG_REGISTRY_REQUEST_BODY_SECONDS', 'requestBodySeconds'],
  ['BOXSIG_REGISTRY_HEADERS_SECONDS', 'headersSeconds'],
  ['BOXSIG_REGISTRY_CONNECTIONS_PER_CLIENT', 'connectionsPerClient'],
  ['BOXSIG_REGISTRY_SHUTDOWN_GRACE_SECONDS', 'shutdownGraceSeconds'],
  ['BOXSIG_REGISTRY_LEASE_SECONDS', 'leaseSeconds'],
  ['BOXSIG_REGISTRY_GC_INTERVAL_SECONDS', 'gcIntervalSeconds'],
  ['BOXSIG_REGISTRY_GC_GRACE_SECONDS', 'gcGraceSeconds'],
  ['BOXSIG_REGISTRY_TRUST_PROXY', 'trustProxy'],
  ['BOXSIG_REGISTRY_LOG_LEVEL', 'logLevel'],
  ['BOXSIG_REGISTRY_KEY_FILE', 'keyFile'],
  ['BOXSIG_REGISTRY_CATALOG_TTL_SECONDS', 'catalogTtlSeconds'],
  ['BOXSIG_REGISTRY_ESCROW_KEY_FILE', 'escrowKeyFile'],
]);

/** The config file's `s3` object uses endpoint/bucket/region/prefix/signPayloads. */
const S3_FIELDS = new Map([
  ['endpoint', 's3Endpoint'],
  ['bucket', 's3Bucket'],
  ['region', 's3Region'],
  ['prefix', 's3Prefix'],
  ['signPayloads', 's3SignPayloads'],
]);

function applyFile(c: RegistryConfig, file: string): void {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new BoxsigError('CONFIG', `${file}: cannot read: ${(e as Error).message}`, { file });
  }
  let raw: unknown;
  try {
    raw = parseUntrustedJson(bytes, file, 1024 * 1024);
  } catch (e) {
    throw new BoxsigError('CONFIG', (e as Error).message, { file });
  }
  if (!isPlainObject(raw)) throw bad(file, 'must be a JSON object');
  for (const [k, v] of Object.entries(raw)) {
    if (k === 's3') {
      if (!isPlainObject(v)) throw bad(`${file}: s3`, 'must be an object with endpoint, bucket, region, prefix, signPayloads');
      for (const [sk, sv] of Object.entries(v)) {
        const field = S3_FIELDS.get(sk);
        if (!field) throw bad(`${file}: s3.${sk}`, 'unknown field (expected endpoint, bucket, region, prefix, signPayloads)');
        SETTERS.get(field)!(c, sv, `${file}: s3.${sk}`);
      }
      continue;
    }
    const set = k === 'comment' ? () => undefined : SETTERS.get(k);
    if (!set || S3_FIELDS.has(k))
      throw bad(`${file}: ${k}`, `unknown field (expected ${[...SETTERS.keys()].filter((f) => !f.startsWith('s3')).join(', ')}, s3)`);
    set(c, v, `${file}: ${k}`);
  }
}

/**
 * The configuration of `registry serve` (`need: 'all'`: metadata and blobs)
 * or of an admin command (`need: 'metadata'`: the database only).
 */
export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env, need: 'all' | 'metadata' = 'all'): RegistryConfig {
  const c: RegistryConfig = structuredClone(DEFAULTS);
  const file = flags.config ?? env.BOXSIG_REGISTRY_CONFIG;
  if (file) applyFile(c, file);
  for (const [name, field] of ENV) {
    const v = env[name];
    if (v !== undefined && v !== '') SETTERS.get(field)!(c, v, name);
  }
  const flagFields: Array<[keyof ConfigFlags, string, string]> = [
    ['listen', 'listen', '--listen'],
    ['publicUrl', 'publicUrl', '--public-url'],
    ['data', 'data', '--data'],
    ['database', 'database', '--database'],
    ['s3Endpoint', 's3Endpoint', '--s3-endpoint'],
    ['s3Bucket', 's3Bucket', '--s3-bucket'],
    ['s3Region', 's3Region', '--s3-region'],
    ['s3Prefix', 's3Prefix', '--s3-prefix'],
  ];
  for (const [flag, field, name] of flagFields) if (flags[flag] !== undefined) SETTERS.get(field)!(c, flags[flag], name);
  return checkComplete(c, need);
}

function checkComplete(c: RegistryConfig, need: 'all' | 'metadata'): RegistryConfig {
  if (c.s3 && (!c.s3.bucket || !c.s3.region)) {
    throw new BoxsigError('CONFIG', 'S3 storage needs a bucket and a region (--s3-bucket, --s3-region, or "s3" in the config file)');
  }
  if (need === 'metadata' && !c.data && !c.database) {
    throw new BoxsigError('CONFIG', 'no registry database: give --data DIR (embedded) or --database URL (PostgreSQL), as for registry serve');
  }
  if (need === 'all' && !c.data && (!c.database || !c.s3)) {
    const missing = [!c.database && 'metadata (--database URL)', !c.s3 && 'blobs (--s3-endpoint/--s3-bucket/--s3-region)'].filter(Boolean).join(' and ');
    throw new BoxsigError(
      'CONFIG',
      `no --data DIR for the embedded ${missing}: give --data DIR, or a database and an object store`,
      {},
      'boxsig registry serve --data ./registry',
    );
  }
  if (c.downloads === 'redirect' && !c.s3) c.downloads = 'proxy';
  return c;
}

/** Without a setting: 256 connections per client address (a NAT of many CI runners, wrk with its default 64), none behind a trusted proxy (whose address every connection has). */
export const CONNECTIONS_PER_CLIENT = 256;

export function connectionsPerClient(c: Pick<RegistryConfig, 'connectionsPerClient' | 'trustProxy'>): number {
  return c.connectionsPerClient ?? (c.trustProxy ? 0 : CONNECTIONS_PER_CLIENT);
}
