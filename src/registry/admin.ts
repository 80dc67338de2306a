/**
 * What an operator does on the registry's database directly (the
 * `boxsig registry org|token|box|key|audit|gc` commands): safe while
 * registry processes run on the same database, audited like every write.
 */
import { BoxsigError, usage } from '../errors.js';
import { readKeyData } from '../keys/keys.js';
import { newToken, operator, type Principal } from './auth.js';
import { isUniqueViolation, nowText, type Db, type Sql } from './db/engine.js';
import { fold, memberName, orgName, shown, type Role } from './names.js';
import { audit, mustOrg, newId, type OrgRow } from './rows.js';
import { parsePolicy, policySource, requireCertifiedPolicy, storeRevocation, upsertOrgKey, type OrgKeyKind, type RegisteredKey } from './trust.js';
import { configToJson } from '../policy/config.js';
import type { Registry } from './registry.js';
import { collectGarbage, type GcResult } from './gc.js';

/** Org names that would shadow the registry's own paths. */
const RESERVED = new Set(['api', 'boxsig', 'healthz', 'readyz', 'boxes', 'static']);

export interface OrgSummary {
  name: string;
  created: string;
  policy: unknown;
  boxes: number;
  tokens: number;
}

export async function createOrg(db: Db, name: string, policyText: string | null, actor: Principal = operator()): Promise<OrgSummary> {
  const org = orgName(name);
  if (RESERVED.has(fold(org))) throw usage(`${shown(org)} is reserved by the registry's own paths; choose another organization name`);
  const text = policyText ?? '{}';
  const doc = parsePolicy(text, policySource(org));
  const now = nowText();
  try {
    await db.tx(async (q) => {
      const id = newId();
      await q.run('INSERT INTO orgs (id, name, folded, policy, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)', [
        id,
        org,
        fold(org),
        JSON.stringify(configToJson(doc)),
        now,
      ]);
      await audit(q, actor, id, 'org.create', org, { policy: configToJson(doc) });
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new BoxsigError('EXISTS', `organization ${org} already exists`);
    throw e;
  }
  return { name: org, created: now, policy: configToJson(doc), boxes: 0, tokens: 0 };
}

export async function setPolicy(db: Db, name: string, policyText: string, actor: Principal = operator()): Promise<OrgSummary> {
  return db.tx(async (q) => {
    const org = await mustOrg(q, name);
    const doc = parsePolicy(policyText, policySource(org.name));
    await q.run('UPDATE orgs SET policy = $2, updated_at = $3 WHERE id = $1', [org.id, JSON.stringify(configToJson(doc)), nowText()]);
    await audit(q, actor, org.id, 'org.policy', org.name, { policy: configToJson(doc) });
    return { name: org.name, created: org.created_at, policy: configToJson(doc), boxes: 0, tokens: 0 };
  });
}

export async function listOrgs(db: Db): Promise<OrgSummary[]> {
  const rows = await db.query<OrgRow & { boxes: number; tokens: number }>(
    `SELECT o.id, o.name, o.policy, o.created_at, o.updated_at,
            (SELECT COUNT(*) FROM boxes b WHERE b.org_id = o.id) AS boxes,
            (SELECT COUNT(*) FROM tokens t WHERE t.org_id = o.id AND t.revoked_at IS NULL) AS tokens
       FROM orgs o ORDER BY o.folded`,
  );
  return rows.map((r) => ({ name: r.name, created: r.created_at, policy: JSON.parse(r.policy), boxes: Number(r.boxes), tokens: Number(r.tokens) }));
}

export interface TokenInfo {
  id: string;
  org: string;
  role: Role;
  member: string;
  description: string;
  created: string;
  expires: string | null;
  revoked: string | null;
}

export async function createToken(
  db: Db,
  opts: { org: string; role: Role; member?: string; description?: string; expires?: Date },
  actor: Principal = operator(),
): Promise<TokenInfo & { token: string }> {
  const member = memberName(opts.member ?? (actor.kind === 'operator' ? actor.user : 'token'));
  const { token, hash, id } = newToken();
  const now = nowText();
  const expires = opts.expires ? nowText(opts.expires) : null;
  return db.tx(async (q) => {
    const org = await mustOrg(q, opts.org);
    await q.run('INSERT INTO tokens (id, org_id, role, member, hash, description, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
      id,
      org.id,
      opts.role,
      member,
      hash,
      opts.description ?? '',
      now,
      expires,
    ]);
    await audit(q, actor, org.id, 'token.create', `${org.name} ${opts.role} ${member}`, { token: id, expires });
    return { token, id, org: org.name, role: opts.role, member, description: opts.description ?? '', created: now, expires, revoked: null };
  });
}

export async function listTokens(db: Db, orgName: string): Promise<TokenInfo[]> {
  const org = await mustOrg(db, orgName);
  const rows = await db.query<{
    id: string;
    role: Role;
    member: string;
    description: string;
    created_at: string;
    expires_at: string | null;
    revoked_at: string | null;
  }>('SELECT id, role, member, description, created_at, expires_at, revoked_at FROM tokens WHERE org_id = $1 ORDER BY created_at', [org.id]);
  return rows.map((r) => ({
    id: r.id,
    org: org.name,
    role: r.role,
    member: r.member,
    description: r.description,
    created: r.created_at,
    expires: r.expires_at,
    revoked: r.revoked_at,
  }));
}

export async function revokeToken(db: Db, id: string, actor: Principal = operator()): Promise<TokenInfo> {
  return db.tx(async (q) => {
    const r = await q.one<{
      id: string;
      org_id: string;
      org: string;
      role: Role;
      member: string;
      description: string;
      created_at: string;
      expires_at: string | null;
    }>(
      `SELECT t.id, t.org_id, o.name AS org, t.role, t.member, t.description, t.created_at, t.expires_at FROM tokens t JOIN orgs o ON o.id = t.org_id WHERE t.id = $1`,
      [id],
    );
    if (!r) throw new BoxsigError('NOT_FOUND', `token ${shown(id)} does not exist (boxsig registry token list --org ORG shows the ids)`);
    const now = nowText();
    await q.run('UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, now]);
    await audit(q, actor, r.org_id, 'token.revoke', `${r.org} ${r.role} ${r.member}`, { token: id });
    return { id, org: r.org, role: r.role, member: r.member, description: r.description, created: r.created_at, expires: r.expires_at, revoked: now };
  });
}

/**
 * Register an org's public keys, certified repository keys and revocation
 * certificates (an offline org key: only its public part ever reaches the
 * registry). A key already registered is merged with the new copy, packet by
 * packet (src/keys/cert.ts): a revocation, an expiry or a certification
 * revocation registered once is never lost by a later upload of the key.
 * Each event is audited as `key.register`, `key.certify` or `key.revoke`.
 * `require`: uploads to the org must from now on be signed by a key an org
 * key certified for the box's name (the policy's `orgs` entry for ORG/*).
 */
async function addOrgKeys(
  db: Db,
  orgName: string,
  bytes: Buffer,
  file: string,
  opts: { kind?: OrgKeyKind; require?: boolean } = {},
  actor: Principal = operator(),
) {
  const data = await readKeyData(bytes, file);
  if (!data.certs.length && !data.bare.length) throw usage(`${file} holds no OpenPGP public key or revocation certificate`);
  return db.tx(async (q) => {
    const org = await mustOrg(q, orgName);
    const now = nowText();
    const added: string[] = [];
    const registered: RegisteredKey[] = [];
    for (const copy of data.certs) {
      const r = await upsertOrgKey(q, org.id, copy, opts.kind ?? null, now);
      await auditKeyEvent(q, actor, org, r);
      registered.push(r);
      if (!added.includes(r.fingerprint)) added.push(r.fingerprint);
    }
    const revocations: string[] = [];
    for (const s of data.bare) {
      const r = await storeRevocation(q, org.id, s, now);
      if (r.added) await audit(q, actor, org.id, 'key.revoke', org.name, { fingerprint: r.issuer, revocation: r.sha256 });
      revocations.push(r.issuer);
    }
    if (opts.require) await requireCertified(q, actor, org, orgKeysOf(registered));
    return { org: org.name, keys: added, registered, revocations };
  });
}

/** `key.register` for a new key, `key.certify` when certifications of its boxsig: user IDs arrived. */
export async function auditKeyEvent(q: Sql, actor: Principal | null, org: OrgRow, r: RegisteredKey, extra: Record<string, unknown> = {}): Promise<void> {
  if (r.status === 'new') await audit(q, actor, org.id, 'key.register', org.name, { fingerprint: r.fingerprint, kind: r.kind, ...extra });
  if (r.status !== 'unchanged' && r.certifiedBy.length) {
    await audit(q, actor, org.id, 'key.certify', org.name, { fingerprint: r.fingerprint, kind: r.kind, certifiedBy: r.certifiedBy, ...extra });
  }
}

function orgKeysOf(registered: RegisteredKey[]): string[] {
  const orgKeys = registered.filter((r) => r.kind === 'org').map((r) => r.fingerprint);
  if (!orgKeys.length) throw usage('--require needs an org key among the keys given (they hold only repository keys or revocations)');
  return orgKeys;
}

/** `addOrgKeys` of several files in one transaction (`registry org key ORG FILE…`). */
export async function addOrgKeyFiles(
  db: Db,
  orgName: string,
  files: Array<{ bytes: Buffer; file: string }>,
  opts: { require?: boolean } = {},
  actor: Principal = operator(),
) {
  const results = [];
  for (const f of files) results.push(await addOrgKeys(db, orgName, f.bytes, f.file, {}, actor));
  if (opts.require) {
    const orgKeys = orgKeysOf(results.flatMap((r) => r.registered));
    await db.tx(async (q) => requireCertified(q, actor, await mustOrg(q, orgName), orgKeys));
  }
  return results;
}

/** Make the org policy require chains to `orgKeys` for every box of the org (audited as org.policy). */
export async function requireCertified(q: Sql, actor: Principal | null, org: OrgRow, orgKeys: string[]): Promise<void> {
  const text = requireCertifiedPolicy(org.policy, org.name, orgKeys);
  const doc = parsePolicy(text, policySource(org.name));
  await q.run('UPDATE orgs SET policy = $2, updated_at = $3 WHERE id = $1', [org.id, JSON.stringify(configToJson(doc)), nowText()]);
  await audit(q, actor, org.id, 'org.policy', org.name, { policy: configToJson(doc), requireCertified: orgKeys });
}

export interface BoxSummaryRow {
  name: string;
  private: boolean;
  signing: string;
  versions: number;
  released: number;
}

export async function listBoxes(db: Db, orgFilter?: string): Promise<BoxSummaryRow[]> {
  const rows = await db.query<{ org: string; name: string; private: number; signing: string; versions: number; released: number }>(
    `SELECT o.name AS org, b.name, b.private, b.signing,
            (SELECT COUNT(*) FROM versions v WHERE v.box_id = b.id AND v.status <> 'deleted') AS versions,
            (SELECT COUNT(*) FROM versions v WHERE v.box_id = b.id AND v.status = 'active') AS released
       FROM boxes b JOIN orgs o ON o.id = b.org_id ${orgFilter ? 'WHERE o.folded = $1' : ''} ORDER BY o.folded, b.folded`,
    orgFilter ? [fold(orgFilter)] : [],
  );
  return rows.map((r) => ({
    name: `${r.org}/${r.name}`,
    private: Boolean(r.private),
    signing: r.signing,
    versions: Number(r.versions),
    released: Number(r.released),
  }));
}

/** Create a box as the operator (the API lets publishers create boxes too). */
export async function createBoxAsOperator(reg: Registry, full: string, opts: { private?: boolean; description?: string }) {
  const i = full.indexOf('/');
  if (i <= 0) throw usage(`${shown(full)} must be ORG/NAME`);
  return reg.createBox(
    operator(),
    full.slice(0, i),
    { username: full.slice(0, i), name: full.slice(i + 1), is_private: opts.private ?? false, short_description: opts.description },
    {
      base: reg.config.publicUrl ?? 'http://registry.invalid',
    },
  );
}

export interface AuditLine {
  seq: number;
  at: string;
  actor: string;
  org: string | null;
  action: string;
  target: string;
  details: unknown;
}

export async function auditLog(db: Db, opts: { org?: string; limit?: number } = {}): Promise<AuditLine[]> {
  const limit = Math.min(Math.max(opts.limit ?? 100, 1), 10_000);
  const org = opts.org ? await mustOrg(db, opts.org) : null;
  const rows = await db.query<{ seq: number; at: string; actor: string; org: string | null; action: string; target: string; details: string }>(
    `SELECT a.seq, a.at, a.actor, o.name AS org, a.action, a.target, a.details FROM audit a LEFT JOIN orgs o ON o.id = a.org_id
      ${org ? 'WHERE a.org_id = $1' : ''} ORDER BY a.seq DESC LIMIT ${limit}`,
    org ? [org.id] : [],
  );
  return rows
    .reverse()
    .map((r) => ({ seq: Number(r.seq), at: r.at, actor: r.actor, org: r.org, action: r.action, target: r.target, details: JSON.parse(r.details) }));
}

export async function runGc(reg: Registry, graceSeconds?: number): Promise<GcResult> {
  return collectGarbage(reg.db, reg.blobs, { leaseSeconds: reg.config.leaseSeconds, graceSeconds: graceSeconds ?? reg.config.gcGraceSeconds }, reg.log);
}
