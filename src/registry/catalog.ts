/**
 * Catalogs (Vagrant's box metadata JSON) as consumers read them: released
 * versions, and in them only the providers whose blob is complete — read in
 * one statement, so a catalog is always one committed state. Rendered
 * catalogs are cached per process and dropped when any registry process
 * commits a change to the box (PostgreSQL NOTIFY, SQLite's data_version);
 * while change notifications are not flowing, nothing is cached.
 */
import { randomBytes } from 'node:crypto';
import { compareVersions } from '../policy/version.js';
import type { Db } from './db/engine.js';
import { downloadUrl, type Links } from './views.js';

interface CatalogRow {
  version: string;
  description: string;
  provider: string;
  architecture: string;
  default_architecture: number;
  sha256: string;
  size: number;
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

  constructor(
    private readonly db: Db,
    private readonly enabled: boolean,
  ) {}

  async start(): Promise<void> {
    if (this.enabled) await this.db.watch((boxId) => this.invalidate(boxId));
  }

  invalidate(boxId: string | null): void {
    this.epoch++;
    if (boxId === null) this.entries.clear();
    else for (const [k, e] of this.entries) if (e.boxId === boxId) this.entries.delete(k);
  }

  /** The catalog JSON text of a box (the caller has checked that the client may read it). */
  async get(box: CatalogBox, links: Links): Promise<string> {
    const key = box.id;
    const useCache = this.enabled && this.db.watching;
    const hit = useCache ? this.entries.get(key) : undefined;
    if (hit) return withBase(hit, links.base);
    const epoch = this.epoch;
    const entry: Entry = { boxId: box.id, json: JSON.stringify(await render(this.db, box, { ...links, base: PLACEHOLDER_BASE })) };
    if (useCache && epoch === this.epoch && this.db.watching) {
      if (this.entries.size > 10_000) this.entries.clear();
      this.entries.set(key, entry);
    }
    return withBase(entry, links.base);
  }
}

export async function render(db: Db, box: CatalogBox, links: Links) {
  const rows = await db.query<CatalogRow>(
    `SELECT v.version, v.description, p.name AS provider, p.architecture, p.default_architecture, p.blob_sha256 AS sha256, p.size
       FROM versions v JOIN providers p ON p.version_id = v.id
      WHERE v.box_id = $1 AND v.status = 'active' AND p.blob_sha256 IS NOT NULL`,
    [box.id],
  );
  const byVersion = new Map<string, { version: string; status: string; description: string; providers: unknown[] }>();
  for (const r of rows) {
    let v = byVersion.get(r.version);
    if (!v) byVersion.set(r.version, (v = { version: r.version, status: 'active', description: r.description, providers: [] }));
    v.providers.push({
      name: r.provider,
      url: downloadUrl(links, box.org, box.name, r.version, r.provider, r.architecture),
      checksum: r.sha256,
      checksum_type: 'sha256',
      architecture: r.architecture,
      default_architecture: Boolean(r.default_architecture),
      size: r.size,
    });
  }
  const versions = [...byVersion.values()].sort((a, b) => -compareVersions(a.version, b.version));
  return { name: `${box.org}/${box.name}`, description: box.description, versions };
}
