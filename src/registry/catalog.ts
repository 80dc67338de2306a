/**
 * Catalogs (Vagrant's box metadata JSON) as consumers read them: released
 * versions, and in them only the providers whose blob is complete — read in
 * one statement, so a catalog is always one committed state. Rendered
 * catalogs are cached per process and dropped when any registry process
 * commits a change to the box (PostgreSQL NOTIFY, SQLite's data_version);
 * while change notifications are not flowing, nothing is cached.
 *
 * Signed catalogs (issue 15): the same statement also reads the box's last
 * log index and the log head, so the catalog carries, in a top-level
 * `boxsig` object that Vagrant ignores, a statement signed by the registry
 * key (serial, expiry, digest of the entries, log size: tlog/statement.ts)
 * and the signed checkpoint of that log size; every provider entry carries
 * the `log_index` of its publication. A cached catalog is signed again once
 * half of its statement's lifetime has passed.
 */
import { randomBytes } from 'node:crypto';
import { compareVersions } from '../shared/version.js';
import type { Db } from './db/engine.js';
import { downloadUrl, type Links } from './views.js';
import type { NoteSigner } from '../tlog/note.js';
import { entriesDigest, signStatement, type StatementEntry } from '../tlog/statement.js';
import { checkpointNote } from './log/service.js';

interface CatalogRow {
  kind: 'p' | 's' | 'h';
  version: string;
  description: string;
  provider: string;
  architecture: string;
  default_architecture: number;
  sha256: string;
  size: number;
  n: number | null;
  root: string | null;
}

export interface CatalogBox {
  id: string;
  orgId: string;
  org: string;
  name: string;
  description: string;
  private: boolean;
}

interface Entry {
  boxId: string;
  /** Rendered with PLACEHOLDER_BASE: one entry per box, whatever the Host header of the clients. */
  json: string;
  /** When the statement in it must be renewed. */
  renewAt: number;
  /** The last base substituted, and the result (with a public URL configured, always the same). */
  last?: { base: string; json: string };
}

/**
 * Stands for the base URL in cached catalogs. The base comes from each
 * request's Host header (unless a public URL is configured): keyed by it, the
 * cache kept a copy of every catalog per Host value a client sent. Random per
 * process, so no text of a catalog can contain it.
 */
const PLACEHOLDER_BASE = `http://${randomBytes(16).toString('hex')}.invalid`;

/** The catalog text for a base URL (JSON-escaped: the Host header is client text). */
function withBase(e: Entry, base: string): string {
  if (e.last?.base !== base) e.last = { base, json: e.json.split(PLACEHOLDER_BASE).join(JSON.stringify(base).slice(1, -1)) };
  return e.last.json;
}

export class CatalogCache {
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every invalidation: a catalog read before it is not stored after it. */
  private epoch = 0;
  /** What a catalog read looks up before the catalog (the org and box rows of a path), dropped at every change. */
  private readonly lookups = new Map<string, unknown>();

  constructor(
    private readonly db: Db,
    private readonly enabled: boolean,
    private readonly signer: () => NoteSigner | null = () => null,
    private readonly ttlSeconds = 24 * 3600,
  ) {}

  async start(): Promise<void> {
    if (this.enabled) await this.db.watch((boxId) => this.invalidate(boxId));
  }

  invalidate(boxId: string | null): void {
    this.epoch++;
    this.lookups.clear();
    if (boxId === null) this.entries.clear();
    else for (const [k, e] of this.entries) if (e.boxId === boxId) this.entries.delete(k);
  }

  /**
   * `load()`'s answer, kept under `key` (null: not kept) like the catalogs when `keep` says so: a catalog
   * read then costs no query at all (two lookups per read capped 2 processes
   * on PostgreSQL at 0.07× nginx). Any change clears them all.
   */
  async lookup<T>(key: string | null, load: () => Promise<T>, keep: (value: T) => boolean): Promise<T> {
    const useCache = key !== null && this.enabled && this.db.watching;
    const hit = useCache ? (this.lookups.get(key) as T | undefined) : undefined;
    if (hit !== undefined) return hit;
    const epoch = this.epoch;
    const value = await load();
    if (keep(value) && useCache && epoch === this.epoch && this.db.watching) {
      if (this.lookups.size > 10_000) this.lookups.clear();
      this.lookups.set(key, value);
    }
    return value;
  }

  /** The catalog JSON text of a box (the caller has checked that the client may read it). */
  async get(box: CatalogBox, links: Links): Promise<string> {
    const key = box.id;
    const useCache = this.enabled && this.db.watching;
    const hit = useCache ? this.entries.get(key) : undefined;
    if (hit && hit.renewAt > Date.now()) return withBase(hit, links.base);
    const epoch = this.epoch;
    const now = new Date();
    const json = JSON.stringify(await render(this.db, box, { ...links, base: PLACEHOLDER_BASE }, { signer: this.signer(), now, ttlSeconds: this.ttlSeconds }));
    const entry: Entry = { boxId: box.id, json, renewAt: now.getTime() + (this.ttlSeconds * 1000) / 2 };
    if (useCache && epoch === this.epoch && this.db.watching) {
      if (this.entries.size > 10_000) this.entries.clear();
      this.entries.set(key, entry);
    }
    return withBase(entry, links.base);
  }
}

export interface Signing {
  signer: NoteSigner | null;
  now: Date;
  ttlSeconds: number;
}

/** The catalog's rows, the box's last log index and the log head: one statement, one committed state. */
async function readCatalog(db: Db, box: CatalogBox): Promise<CatalogRow[]> {
  return db.query<CatalogRow>(
    `SELECT 'p' AS kind, v.version, v.description, p.name AS provider, p.architecture, p.default_architecture,
            p.blob_sha256 AS sha256, p.size, pub.log_index AS n, NULL AS root
       FROM versions v JOIN providers p ON p.version_id = v.id LEFT JOIN publications pub ON pub.provider_id = p.id
      WHERE v.box_id = $1 AND v.status = 'active' AND p.blob_sha256 IS NOT NULL
     UNION ALL
     SELECT 's', NULL, NULL, NULL, NULL, NULL, NULL, NULL, (SELECT MAX(idx) FROM log_entries WHERE box = $2), NULL
     UNION ALL
     SELECT 'h', NULL, NULL, NULL, NULL, NULL, NULL, NULL, size, root FROM log_head WHERE id = 1`,
    [box.id, `${box.org}/${box.name}`],
  );
}

async function render(db: Db, box: CatalogBox, links: Links, signing?: Signing) {
  const all = await readCatalog(db, box);
  const rows = all.filter((r) => r.kind === 'p');
  const byVersion = new Map<string, { version: string; status: string; description: string; providers: Record<string, unknown>[] }>();
  const signed: StatementEntry[] = [];
  for (const r of rows) {
    let v = byVersion.get(r.version);
    if (!v) byVersion.set(r.version, (v = { version: r.version, status: 'active', description: r.description, providers: [] }));
    const logIndex = r.n === null ? null : Number(r.n);
    v.providers.push({
      name: r.provider,
      url: downloadUrl(links, box.org, box.name, r.version, r.provider, r.architecture),
      checksum: r.sha256,
      checksum_type: 'sha256',
      architecture: r.architecture,
      default_architecture: Boolean(r.default_architecture),
      size: r.size,
      ...(logIndex !== null ? { log_index: logIndex } : {}),
    });
    signed.push({ version: r.version, provider: r.provider, architecture: r.architecture, checksumType: 'sha256', checksum: r.sha256, logIndex });
  }
  const versions = [...byVersion.values()].sort((a, b) => -compareVersions(a.version, b.version));
  const catalog: Record<string, unknown> = { name: `${box.org}/${box.name}`, description: box.description, versions };
  if (signing?.signer) catalog.boxsig = signedSection(all, `${box.org}/${box.name}`, signed, signing.signer, signing);
  return catalog;
}

/** The `boxsig` object: the registry key, the signed statement and the checkpoint it names. */
function signedSection(all: CatalogRow[], name: string, entries: StatementEntry[], signer: NoteSigner, signing: Signing) {
  const last = all.find((r) => r.kind === 's')?.n;
  const head = all.find((r) => r.kind === 'h')!;
  const size = Number(head.n);
  const statement = signStatement(
    {
      origin: signer.name,
      box: name,
      serial: last === null || last === undefined ? 0 : Number(last) + 1,
      expires: new Date(signing.now.getTime() + signing.ttlSeconds * 1000).toISOString(),
      digest: entriesDigest(entries),
      logSize: size,
    },
    signer,
  );
  return { key: signer.verifierKey, statement, checkpoint: checkpointNote(signer, { size, root: Buffer.from(head.root!, 'hex') }) };
}
