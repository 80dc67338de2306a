/**
 * Rows of the registry's tables, the queries that find them by the names of
 * an API path, and the audit record every write adds in its transaction.
 */
import { randomUUID } from 'node:crypto';
import { BoxsigError, usage } from '../errors.js';
import { compareVersions } from '../shared/version.js';
import { actorOf, type Principal } from './auth.js';
import { nowText, type Sql } from './db/engine.js';
import { fold, isLookupName, shown } from './names.js';
import { isKeyEvent, logKeyEvent } from './log/events.js';

export interface OrgRow {
  id: string;
  name: string;
  policy: string;
  created_at: string;
  updated_at: string;
}

export interface BoxRow {
  id: string;
  org_id: string;
  name: string;
  private: number;
  signing: 'self' | 'escrow';
  short_description: string;
  description: string;
  created_at: string;
  updated_at: string;
}

export type VersionStatus = 'unreleased' | 'active' | 'deleted';

export interface VersionRow {
  id: string;
  box_id: string;
  version: string;
  status: VersionStatus;
  description: string;
  created_at: string;
  updated_at: string;
  released_at: string | null;
}

export interface ProviderRow {
  id: string;
  version_id: string;
  name: string;
  architecture: string;
  default_architecture: number;
  declared_checksum: string | null;
  declared_checksum_type: string | null;
  blob_sha256: string | null;
  size: number | null;
  signed: number | null;
  manifest: string | null;
  manifest_sha256: string | null;
  signers: string | null;
  uploaded_at: string | null;
  created_at: string;
  updated_at: string;
}

export const newId = (): string => randomUUID();

export function notFound(what: string): BoxsigError {
  return new BoxsigError('NOT_FOUND', `${what} does not exist`);
}

export async function findOrg(q: Sql, name: string): Promise<OrgRow | null> {
  if (!isLookupName(name)) return null;
  return q.one<OrgRow>('SELECT id, name, policy, created_at, updated_at FROM orgs WHERE folded = $1', [fold(name)]);
}

export async function mustOrg(q: Sql, name: string): Promise<OrgRow> {
  const org = await findOrg(q, name);
  if (!org) throw notFound(`organization ${shown(name)}`);
  return org;
}

export async function findBox(q: Sql, orgId: string, name: string): Promise<BoxRow | null> {
  if (!isLookupName(name)) return null;
  return q.one<BoxRow>(
    `SELECT id, org_id, name, private, signing, short_description, description, created_at, updated_at
       FROM boxes WHERE org_id = $1 AND folded = $2`,
    [orgId, fold(name)],
  );
}

export async function findVersion(q: Sql, boxId: string, version: string): Promise<VersionRow | null> {
  return q.one<VersionRow>(
    `SELECT id, box_id, version, status, description, created_at, updated_at, released_at
       FROM versions WHERE box_id = $1 AND version = $2`,
    [boxId, version],
  );
}

export async function versionsOf(q: Sql, boxId: string): Promise<VersionRow[]> {
  const rows = await q.query<VersionRow>(
    `SELECT id, box_id, version, status, description, created_at, updated_at, released_at FROM versions WHERE box_id = $1`,
    [boxId],
  );
  return rows.sort((a, b) => -compareVersions(a.version, b.version));
}

const PROVIDER_COLUMNS = `id, version_id, name, architecture, default_architecture, declared_checksum, declared_checksum_type,
  blob_sha256, size, signed, manifest, manifest_sha256, signers, uploaded_at, created_at, updated_at`;

export async function providersOf(q: Sql, versionIds: string[]): Promise<ProviderRow[]> {
  if (!versionIds.length) return [];
  const out: ProviderRow[] = [];
  for (const id of versionIds) {
    out.push(...(await q.query<ProviderRow>(`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE version_id = $1 ORDER BY name, architecture`, [id])));
  }
  return out;
}

/**
 * The provider named in a path: with an architecture, exactly that one;
 * without, the only one of that name, else the one marked
 * default_architecture (as Vagrant 2.4 falls back to it).
 */
export async function findProvider(q: Sql, versionId: string, name: string, architecture?: string): Promise<ProviderRow | null> {
  const rows = await q.query<ProviderRow>(`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE version_id = $1 AND name = $2`, [versionId, name]);
  if (architecture !== undefined) return rows.find((r) => r.architecture === architecture) ?? null;
  if (rows.length <= 1) return rows[0] ?? null;
  const def = rows.filter((r) => r.default_architecture);
  if (def.length === 1) return def[0];
  throw usage(`provider ${name} has several architectures (${rows.map((r) => r.architecture).join(', ')}): name one in the path (…/provider/${name}/ARCH)`);
}

/** A version that compares equal to another one (1.0 and 1.0.0 are the same for Vagrant) is a duplicate. */
export function sameVersion(rows: VersionRow[], version: string): VersionRow | undefined {
  return rows.find((r) => compareVersions(r.version, version) === 0);
}

export async function audit(
  q: Sql,
  actor: Principal | null,
  orgId: string | null,
  action: string,
  target: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  // key events go into the transparency log too, in the same transaction (issue 15)
  if (isKeyEvent(action)) await logKeyEvent(q, { orgId, action, target, details });
  await q.run('INSERT INTO audit (at, actor, org_id, action, target, details) VALUES ($1, $2, $3, $4, $5, $6)', [
    nowText(),
    actorOf(actor),
    orgId,
    action,
    target,
    JSON.stringify(details),
  ]);
}
