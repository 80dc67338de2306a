/**
 * The trust an upload is judged by: the org's policy (a boxsig.json
 * document, given to `registry org create --policy`), the public keys and
 * revocations the org registered, and the keys the registry trusted on first
 * use for the box — presented to boxsig's own judge as a trust store, so
 * that uploads get exactly the rules and codes of `boxsig add`.
 */
import { createHash } from 'node:crypto';
import { BoxsigError } from '../errors.js';
import { readKeyData } from '../keys/keys.js';
import { mergeCert, userIdText, writeCert, type Cert, type Sig } from '../keys/cert.js';
import { BOXSIG_UID_PREFIX } from '../keys/certify.js';
import { CERTIFICATION_TYPES, SIGTYPE, writePackets } from '../keys/packets.js';
import { armorPublicKey } from '../keys/pgp.js';
import { globMatches, globProblem } from '../shared/glob.js';
import { claimsIssuer, isHardReason } from '../keys/revocation.js';
import { memoryKeySource } from '../keys/signers.js';
import { parseUntrustedJson } from '../shared/json.js';
import { validateConfig, type ConfigDoc, type ConfigLayer } from '../policy/config.js';
import { decideTrust, type Decision } from '../policy/decide.js';
import { type TrustView, type Verdict } from '../box/judge.js';
import { keyLookups } from '../keys/signers.js';
import type { TrustState } from '../trust/store.js';
import type { TrustRecord } from '../trust/record-files.js';
import { nowText, type Sql } from './db/engine.js';
import { lowerCaseGlobProblem } from './names.js';

const MAX_POLICY_BYTES = 1024 * 1024;

/** Validate a policy document (the boxsig.json format) given by an admin. */
export function parsePolicy(bytes: Uint8Array | string, source: string): ConfigDoc {
  let raw: unknown;
  try {
    raw = parseUntrustedJson(bytes, source, MAX_POLICY_BYTES);
  } catch (e) {
    throw new BoxsigError('CONFIG', `${source}: ${(e as Error).message}`);
  }
  const doc = validateConfig(raw, source);
  for (const glob of [...doc.boxes.keys(), ...doc.orgs.keys()]) {
    const problem = lowerCaseGlobProblem(glob);
    if (problem) throw new BoxsigError('CONFIG', `${source}: ${problem}`);
  }
  return doc;
}

export function policySource(org: string): string {
  return `the registry policy of org ${org}`;
}

export function policyLayers(org: { name: string; policy: string }): ConfigLayer[] {
  const source = policySource(org.name);
  return [{ source, doc: parsePolicy(org.policy, source) }];
}

interface SignerRow {
  fingerprint: string;
  first_seen: string;
  version: string;
  /** JSON list of the recorded keys that vouched for this one (rotation); null: first use. */
  vouched_by: string | null;
}

async function orgRevocations(q: Sql, orgId: string, orgName: string): Promise<Sig[]> {
  const revRows = await q.query<{ armored: string }>('SELECT armored FROM revocations WHERE org_id = $1 ORDER BY sha256', [orgId]);
  const revocations = [];
  for (const r of revRows) revocations.push(...(await readKeyData(Buffer.from(r.armored), `a revocation registered by org ${orgName}`)).bare);
  return revocations;
}

/** The box's first-use record as it is now, without the keys whose vouchers the org revoked (provenance). */
async function currentRecord(q: Sql, boxId: string, revocations: Sig[]): Promise<TrustRecord | undefined> {
  const rows = await q.query<SignerRow>('SELECT fingerprint, first_seen, version, vouched_by FROM box_signers WHERE box_id = $1', [boxId]);
  return recordOf(withoutRevokedVouchers(rows, revocations));
}

/** The org's keys, revocations and the box's first-use record, loaded once per upload. */
export async function orgTrustView(q: Sql, orgId: string, orgName: string, boxId: string, fullName: string): Promise<TrustView> {
  const keyRows = await q.query<{ fingerprint: string; armored: string }>('SELECT fingerprint, armored FROM org_keys WHERE org_id = $1', [orgId]);
  const revocations = await orgRevocations(q, orgId, orgName);
  const record = await currentRecord(q, boxId, revocations);
  const certs = [];
  for (const r of keyRows) certs.push(...(await readKeyData(Buffer.from(r.armored), `key ${r.fingerprint} of org ${orgName}`)).certs);
  return {
    file: `the registry's first-use record of ${fullName}`,
    read(): TrustState {
      const boxes = new Map<string, TrustRecord>();
      if (record) boxes.set(fullName, record);
      return { pins: new Map(), boxes };
    },
    keyring: memoryKeySource(certs, revocations),
  };
}

/** A record stays a record when every key of it is dropped: the name is never first use again. */
function recordOf(rows: Array<SignerRow & { dropped?: boolean }>): TrustRecord | undefined {
  if (!rows.length) return undefined;
  const first = rows.map((r) => r.first_seen).sort()[0];
  const keys = rows.filter((r) => !r.dropped).map((r) => r.fingerprint);
  return { keys: keys.sort(), firstSeen: first, updated: first, history: [] };
}

/**
 * A key added to the record by rotation rests on the recorded keys that
 * vouched for it (co-signed, or certified it). When the org registered a
 * revocation of a voucher that applies when it vouched — compromised (or no
 * reason) at any time, superseded or retired before the key was added — its
 * vouching does not count; a key none of whose vouchers count is dropped,
 * and so, in turn, are the keys it vouched for. Revocations come only from
 * the org's admins and can only take trust away.
 */
function withoutRevokedVouchers<R extends SignerRow>(rows: R[], revocations: readonly Sig[]): Array<R & { dropped: boolean }> {
  const out = rows.map((r) => ({ ...r, dropped: false }));
  const byFpr = new Map(out.map((r) => [r.fingerprint, r]));
  for (let changed = true; changed;) {
    changed = false;
    for (const r of out) {
      if (r.dropped || r.vouched_by === null) continue;
      const vouchers = JSON.parse(r.vouched_by) as string[];
      const counts = (v: string) => byFpr.get(v)?.dropped !== true && !revokedWhenVouching(v, r.first_seen, revocations);
      if (!vouchers.some(counts)) r.dropped = changed = true;
    }
  }
  return out;
}

function revokedWhenVouching(voucher: string, added: string, revocations: readonly Sig[]): boolean {
  const addedSecond = Math.floor(Date.parse(added) / 1000) * 1000;
  return revocations.some(
    (s) =>
      s.info.type === SIGTYPE.keyRevocation &&
      claimsIssuer(s, voucher, false) &&
      (isHardReason(s.info.reasonCode) || !s.info.created || s.info.created.getTime() < addedSecond),
  );
}

/** The recorded keys a key added by trust on first use rests on (null: first use itself). */
function vouchersOf(decision: Decision, fpr: string): string[] | null {
  if (decision.tofu?.kind === 'first-use') return null;
  const t = decision.trusted.find((x) => x.fingerprint === fpr);
  if (t?.via === 'tofu-certified') return t.basis;
  return decision.trusted.filter((x) => x.via === 'tofu-recorded' || x.via === 'tofu-replaced').map((x) => x.fingerprint);
}

/**
 * At commit, under the transaction: decide trust again against the
 * first-use record as it is now (two concurrent first uploads of a box
 * signed by different keys cannot both be trusted), and record what trust on
 * first use added.
 */
export async function commitSigners(
  q: Sql,
  view: TrustView,
  verdict: Verdict,
  box: { id: string; orgId: string; org: string },
  now: Date,
): Promise<Decision | null> {
  const boxId = box.id;
  const revocations = await orgRevocations(q, box.orgId, box.org);
  if (!verdict.signed || !verdict.manifest || !verdict.policy || !verdict.decision) return null;
  const current = await currentRecord(q, boxId, revocations);
  const decision = await decideTrust({
    manifest: verdict.manifest,
    signers: verdict.checked,
    policy: verdict.policy,
    record: current,
    storeFile: view.file,
    ...keyLookups(view, verdict.boxKeys),
    now,
    mode: 'add',
  });
  for (const fpr of decision.tofu?.added ?? []) {
    const vouchers = vouchersOf(decision, fpr);
    await q.run(
      `INSERT INTO box_signers (box_id, fingerprint, first_seen, version, vouched_by) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (box_id, fingerprint) DO UPDATE SET first_seen = excluded.first_seen, version = excluded.version, vouched_by = excluded.vouched_by`,
      [boxId, fpr, nowText(now), verdict.manifest.box.version, vouchers === null ? null : JSON.stringify(vouchers)],
    );
  }
  return decision;
}

// ---- org keys, certifications and revocations the org registered (issue 15) ----

export type OrgKeyKind = 'org' | 'repo' | 'escrow';

export interface RegisteredKey {
  fingerprint: string;
  kind: OrgKeyKind;
  /** 'new', 'updated' (packets were added: a certification, a revocation) or 'unchanged' */
  status: 'new' | 'updated' | 'unchanged';
  /** the keys that certified its `boxsig:` user IDs (claimed by the certifications; checked where they are used) */
  certifiedBy: string[];
}

/** The keys a key's `boxsig:` user IDs claim certifications from (other than itself). */
export function boxsigCertifiers(c: Cert): string[] {
  const out = new Set<string>();
  for (const u of c.users) {
    if (!(userIdText(u) ?? '').startsWith(BOXSIG_UID_PREFIX)) continue;
    for (const s of u.sigs) {
      if (!CERTIFICATION_TYPES.has(s.info.type)) continue;
      const f = s.info.hashedIssuerFingerprint ?? s.info.issuerFingerprints[0];
      if (f && f !== c.info.fingerprint) out.add(f);
    }
  }
  return [...out].sort();
}

/**
 * Register a public key of the org, or merge a new copy into the registered
 * one packet by packet (a revocation, an expiry or a certification
 * revocation registered once is never lost). A key whose `boxsig:` user IDs
 * carry certifications is a repository key; an escrow key stays one.
 */
export async function upsertOrgKey(q: Sql, orgId: string, copy: Cert, kind: OrgKeyKind | null, now = nowText()): Promise<RegisteredKey> {
  const fpr = copy.info.fingerprint;
  const row = await q.one<{ armored: string; kind: OrgKeyKind }>('SELECT armored, kind FROM org_keys WHERE org_id = $1 AND fingerprint = $2', [orgId, fpr]);
  let cert: Cert = { ...copy, hadSecret: false };
  let status: RegisteredKey['status'] = 'new';
  if (row) {
    const [stored] = (await readKeyData(Buffer.from(row.armored), `the registered key ${fpr}`)).certs;
    const merged = stored ? mergeCert(stored, cert) : { cert, added: 1 };
    cert = merged.cert;
    status = merged.added > 0 ? 'updated' : 'unchanged';
  }
  const certifiedBy = boxsigCertifiers(cert);
  const finalKind: OrgKeyKind = row?.kind === 'escrow' ? 'escrow' : (kind ?? (certifiedBy.length ? 'repo' : (row?.kind ?? 'org')));
  await q.run(
    `INSERT INTO org_keys (org_id, fingerprint, kind, armored, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
     ON CONFLICT (org_id, fingerprint) DO UPDATE SET armored = excluded.armored, kind = excluded.kind, updated_at = excluded.updated_at`,
    [orgId, fpr, finalKind, armorPublicKey(writeCert(cert)), now],
  );
  return { fingerprint: fpr, kind: finalKind, status, certifiedBy };
}

/** Store a revocation certificate (only ever added; the same one twice is one row). Returns its issuer and whether it was new. */
export async function storeRevocation(q: Sql, orgId: string, s: Sig, now = nowText()): Promise<{ issuer: string; sha256: string; added: boolean }> {
  const armored = armorPublicKey(writePackets([s.packet]));
  const issuer = s.info.hashedIssuerFingerprint ?? s.info.issuerFingerprints[0] ?? s.info.issuerKeyIds[0] ?? 'unknown';
  const sha256 = createHash('sha256').update(s.info.identity).digest('hex');
  const n = await q.run('INSERT INTO revocations (org_id, sha256, issuer, armored, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [
    orgId,
    sha256,
    issuer,
    armored,
    now,
  ]);
  return { issuer, sha256, added: Number(n) > 0 };
}

/** The `boxsig:` globs of a key's user IDs. */
function boxsigGlobs(c: Cert): string[] {
  return c.users
    .map((u) => userIdText(u) ?? '')
    .filter((u) => u.startsWith(BOXSIG_UID_PREFIX))
    .map((u) => u.slice(BOXSIG_UID_PREFIX.length))
    .filter((g) => !globProblem(g));
}

export interface BoxKeys {
  org: string;
  box: string;
  /** the org's keys, and the repository and escrow keys with a `boxsig:` user ID covering the box */
  keys: Array<{ fingerprint: string; kind: OrgKeyKind; armored: string }>;
  /** every revocation certificate the org registered (they only ever accumulate) */
  revocations: string[];
}

/**
 * What a consumer needs to check a box's chain when the box lacks it: the
 * org keys, the keys that may sign the box (with their certifications), and
 * the revocations. Nothing here is trusted by being served: a consumer counts
 * a certification only by an org key whose fingerprint it configured.
 */
export async function keysForBox(q: Sql, orgId: string, orgName: string, box: string): Promise<BoxKeys> {
  const full = `${orgName}/${box}`;
  const rows = await q.query<{ fingerprint: string; kind: OrgKeyKind; armored: string }>(
    'SELECT fingerprint, kind, armored FROM org_keys WHERE org_id = $1 ORDER BY fingerprint',
    [orgId],
  );
  const keys: BoxKeys['keys'] = [];
  for (const r of rows) {
    if (r.kind !== 'org') {
      const [c] = (await readKeyData(Buffer.from(r.armored), `the registered key ${r.fingerprint}`)).certs;
      if (!c || !boxsigGlobs(c).some((g) => globMatches(g, full))) continue;
    }
    keys.push({ fingerprint: r.fingerprint, kind: r.kind, armored: r.armored });
  }
  const revocations = (await q.query<{ armored: string }>('SELECT armored FROM revocations WHERE org_id = $1 ORDER BY sha256', [orgId])).map((r) => r.armored);
  return { org: orgName, box, keys, revocations };
}

/**
 * The org setting "uploads must be signed by a key the org key certified for
 * the box's name": the policy's `orgs` entry for `ORG/*` names the org keys
 * (judged like a consumer's `orgs` configuration: UNTRUSTED_KEY otherwise).
 */
export function requireCertifiedPolicy(policy: string, org: string, orgKeys: string[]): string {
  const doc = JSON.parse(policy) as { boxes?: unknown; orgs?: Record<string, string[]> };
  const orgs = new Map(Object.entries(doc.orgs ?? {}));
  const scope = `${org}/*`;
  orgs.set(scope, [...new Set([...(orgs.get(scope) ?? []), ...orgKeys])].sort());
  return JSON.stringify({ ...doc, orgs: Object.fromEntries(orgs) });
}
