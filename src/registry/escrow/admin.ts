/**
 * The org admin's key acts that need the registry's key-encryption key:
 * letting the registry hold the org key (`registry org hold-key`),
 * certifying a repository key with it (`registry org certify`), making a box
 * escrow-signed (`registry box create --escrow`, `registry escrow enable`),
 * converting it to a self-managed key (`registry escrow convert`), and
 * exporting an escrow key (`registry escrow export`). Each is one
 * transaction with its audit rows (`key.*`, `escrow.*`).
 */
import { BoxsigError, usage } from '../../errors.js';
import { readKeyData } from '../../keys/keys.js';
import { userIdText, writeCert, type Cert } from '../../keys/cert.js';
import { BOXSIG_UID_PREFIX } from '../../keys/certify.js';
import { writeKeyFile } from '../../keys/files.js';
import * as pgp from '../../keys/pgp.js';
import { globMatches } from '../../shared/glob.js';
import { operator, type Principal } from '../auth.js';
import { nowText, type Db, type Sql } from '../db/engine.js';
import { shown } from '../names.js';
import { audit, findBox, mustOrg, type BoxRow, type OrgRow } from '../rows.js';
import { auditKeyEvent, createBoxAsOperator, requireCertified } from '../admin.js';
import { upsertOrgKey } from '../trust.js';
import type { Registry } from '../registry.js';
import { certifyWith, escrowKeyOf, heldOrgKey, holdKey, newEscrowKey, newOrgKey, publicOf, unwrapHeld } from './held.js';
import { needKek, type KeyEncryption } from './kek.js';

function splitName(full: string): { org: string; box: string } {
  const i = full.indexOf('/');
  if (i <= 0 || i === full.length - 1) throw usage(`${shown(full)} must be ORG/NAME`);
  return { org: full.slice(0, i), box: full.slice(i + 1) };
}

async function mustBox(q: Sql, org: OrgRow, name: string): Promise<BoxRow> {
  const box = await findBox(q, org.id, name);
  if (!box) throw new BoxsigError('NOT_FOUND', `box ${shown(`${org.name}/${name}`)} does not exist`);
  return box;
}

export interface HeldOrgKey {
  org: string;
  fingerprint: string;
  publicKey: string;
}

/**
 * Let the registry hold the org key: a new one (`generate`), or an existing
 * secret key the admin hands over. Its public part is registered as the
 * org key; `require` makes uploads need chains to it.
 */
export async function holdOrgKey(
  db: Db,
  kekOrNull: KeyEncryption | null,
  orgName: string,
  source: { generate: true } | { key: pgp.PrivateKey },
  opts: { require?: boolean } = {},
  actor: Principal = operator(),
): Promise<HeldOrgKey> {
  const kek = needKek(kekOrNull, 'holding an org key');
  const key = 'generate' in source ? await newOrgKey(orgName) : source.key;
  const fpr = pgp.fingerprintOf(key);
  return db.tx(async (q) => {
    const org = await mustOrg(q, orgName);
    const held = await heldOrgKey(q, org.id);
    if (held) throw new BoxsigError('EXISTS', `the registry already holds the org key ${held.fingerprint} of ${org.name}`);
    await holdKey(q, kek, { orgId: org.id, kind: 'org', boxId: null, key });
    const r = await upsertOrgKey(q, org.id, publicOf(key), 'org');
    await audit(q, actor, org.id, 'key.register', org.name, { fingerprint: fpr, kind: 'org', held: true, kek: kek.id });
    if (opts.require) await requireCertified(q, actor, org, [r.fingerprint]);
    return { org: org.name, fingerprint: fpr, publicKey: pgp.armorPublicKey(pgp.publicBytes(key)) };
  });
}

/** The `boxsig:` user ID of `c` that covers `full`, preferring `boxsig:<full>` itself. */
function coveringUid(c: Cert, full: string): string | null {
  const uids = c.users.map((u) => userIdText(u) ?? '').filter((u) => u.startsWith(BOXSIG_UID_PREFIX));
  return uids.find((u) => u === BOXSIG_UID_PREFIX + full) ?? uids.find((u) => globMatches(u.slice(BOXSIG_UID_PREFIX.length), full)) ?? null;
}

async function oneKey(bytes: Buffer, what: string): Promise<Cert> {
  const { certs } = await readKeyData(bytes, what);
  if (certs.length !== 1) throw usage(`${what} must hold exactly one public key (it holds ${certs.length})`);
  if (certs[0].hadSecret) throw usage(`${what} holds a secret key: give the public key (the registry never needs a repository key's secret)`);
  return certs[0];
}

/** Certify a repository key's `boxsig:<glob>` user ID with the org key the registry holds, and register it. */
export async function certifyByRegistry(
  db: Db,
  kekOrNull: KeyEncryption | null,
  orgName: string,
  bytes: Buffer,
  file: string,
  glob: string,
  actor: Principal = operator(),
): Promise<{ org: string; fingerprint: string; certifiedBy: string; certified: string }> {
  const kek = needKek(kekOrNull, 'certifying with a held org key');
  const repo = await oneKey(bytes, file);
  return db.tx(async (q) => {
    const org = await mustOrg(q, orgName);
    const certified = await certifyHeld(q, kek, org, repo, glob, actor);
    return { org: org.name, fingerprint: repo.info.fingerprint, certifiedBy: certified.by, certified: certified.armored };
  });
}

async function certifyHeld(q: Sql, kek: KeyEncryption, org: OrgRow, repo: Cert, glob: string, actor: Principal | null, kind: 'repo' | 'escrow' = 'repo') {
  if (!glob.startsWith(`${org.name}/`)) throw usage(`--scope ${shown(glob)} must lie inside the organization (${org.name}/…)`);
  const held = await heldOrgKey(q, org.id);
  if (!held) {
    throw usage(
      `the registry holds no org key for ${org.name}`,
      {},
      `certify offline (boxsig key certify, gpg --quick-sign-key) and register it: boxsig registry org key ${org.name} REPO.certified.asc — or let the registry hold one: boxsig registry org hold-key ${org.name} --generate`,
    );
  }
  const orgKey = await unwrapHeld(kek, held);
  const cert = await certifyWith(orgKey, repo, glob);
  const r = await upsertOrgKey(q, org.id, cert, kind);
  await auditKeyEvent(
    q,
    actor,
    org,
    { ...r, status: r.status === 'unchanged' ? 'updated' : r.status, certifiedBy: [held.fingerprint] },
    { uid: BOXSIG_UID_PREFIX + glob },
  );
  return { by: held.fingerprint, armored: pgp.armorPublicKey(writeCert(cert)) };
}

export interface EscrowInfo {
  box: string;
  escrow: string;
  certifiedBy: string | null;
  state: string;
  successor?: string | null;
}

/** Create a box whose uploads the registry signs with a new escrow key (certified by the held org key, if any). */
export async function createEscrowBox(reg: Registry, kek: KeyEncryption | null, full: string, opts: { private?: boolean; description?: string } = {}) {
  needKek(kek, 'an escrow box');
  const created = await createBoxAsOperator(reg, full, opts);
  const escrow = await enableEscrow(reg.db, kek, full);
  return { box: created, escrow };
}

/**
 * Make a box escrow-signed: generate its key, wrap and hold it, register its
 * public part (certified by the org key when the registry holds it). Only
 * for a box with no released version: its consumers have trusted no key yet.
 */
export async function enableEscrow(db: Db, kekOrNull: KeyEncryption | null, full: string, actor: Principal = operator()): Promise<EscrowInfo> {
  const kek = needKek(kekOrNull, 'an escrow box');
  const { org: orgPart, box: boxPart } = splitName(full);
  const canonical = async (q: Sql) => {
    const org = await mustOrg(q, orgPart);
    return { org, box: await mustBox(q, org, boxPart) };
  };
  const probe = await db.tx(canonical);
  const name = `${probe.org.name}/${probe.box.name}`;
  const key = await newEscrowKey(name);
  return db.tx(async (q) => {
    const { org, box } = await canonical(q);
    await db.lock(q, 'boxes', box.id);
    if (await escrowKeyOf(q, box.id)) throw new BoxsigError('EXISTS', `${name} is already escrow-signed`);
    const released = await q.one<{ n: number }>(`SELECT COUNT(*) AS n FROM versions WHERE box_id = $1 AND released_at IS NOT NULL`, [box.id]);
    if (Number(released?.n) > 0) {
      throw usage(`${name} has released versions signed by its own keys; escrow signing is chosen when a box is created (consumers would see the key change)`);
    }
    const fpr = await holdKey(q, kek, { orgId: org.id, kind: 'escrow', boxId: box.id, key });
    let certifiedBy: string | null = null;
    if (await heldOrgKey(q, org.id)) certifiedBy = (await certifyHeld(q, kek, org, publicOf(key), name, actor, 'escrow')).by;
    else await upsertOrgKey(q, org.id, publicOf(key), 'escrow');
    await q.run(`UPDATE boxes SET signing = 'escrow', updated_at = $2 WHERE id = $1`, [box.id, nowText()]);
    await audit(q, actor, org.id, 'escrow.create', name, { fingerprint: fpr, certifiedBy, kek: kek.id });
    await db.announce(q, box.id);
    return { box: name, escrow: fpr, certifiedBy, state: 'active' };
  });
}

/**
 * Start converting an escrow box to a self-managed key: register the new key
 * (certified by the held org key when there is one, for consumers who trust
 * the org), and mark the escrow key converting: the next upload must be
 * signed by the new key; the registry co-signs it with the escrow key and
 * then revokes the escrow key as superseded (sign.ts).
 */
export async function startConversion(
  db: Db,
  kekOrNull: KeyEncryption | null,
  full: string,
  bytes: Buffer,
  file: string,
  actor: Principal = operator(),
): Promise<EscrowInfo> {
  const kek = needKek(kekOrNull, 'converting an escrow box');
  const successor = await oneKey(bytes, file);
  const { org: orgPart, box: boxPart } = splitName(full);
  return db.tx(async (q) => {
    const org = await mustOrg(q, orgPart);
    const box = await mustBox(q, org, boxPart);
    const name = `${org.name}/${box.name}`;
    await db.lock(q, 'boxes', box.id);
    const held = await escrowKeyOf(q, box.id);
    if (!held) throw usage(`${name} is not escrow-signed`);
    if (held.state === 'converting') throw new BoxsigError('EXISTS', `${name} is already converting to ${held.successor}`);
    const fpr = successor.info.fingerprint;
    if (fpr === held.fingerprint) throw usage('the new key must be another key than the escrow key');
    const uid = coveringUid(successor, name);
    if (!uid) {
      throw usage(`the new key ${fpr} has no user ID boxsig:${name} to certify`, {}, `boxsig key add-uid --key NEW.secret.asc --uid "boxsig:${name}"`);
    }
    const glob = uid.slice(BOXSIG_UID_PREFIX.length);
    let certifiedBy: string | null = null;
    if (await heldOrgKey(q, org.id)) {
      certifiedBy = (await certifyHeld(q, kek, org, successor, glob, actor)).by;
    } else {
      const r = await upsertOrgKey(q, org.id, successor, 'repo');
      await auditKeyEvent(q, actor, org, r);
    }
    // the escrow key certifies its successor too: a consumer who recorded the escrow key on first use
    // follows by certification rotation (a co-signature proves a rotation only when the manifest names
    // both signers, and the publisher's manifest cannot name a key the registry adds)
    const byEscrow = await certifyWith(await unwrapHeld(kek, held), successor, glob);
    const r = await upsertOrgKey(q, org.id, byEscrow, 'repo');
    await auditKeyEvent(q, actor, org, { ...r, status: r.status === 'unchanged' ? 'updated' : r.status, certifiedBy: [held.fingerprint] }, { uid });
    await q.run(`UPDATE held_keys SET state = 'converting', successor = $3, updated_at = $4 WHERE org_id = $1 AND fingerprint = $2`, [
      org.id,
      held.fingerprint,
      fpr,
      nowText(),
    ]);
    await audit(q, actor, org.id, 'escrow.convert', name, { stage: 'start', escrow: held.fingerprint, successor: fpr, certifiedBy });
    return { box: name, escrow: held.fingerprint, certifiedBy, state: 'converting', successor: fpr };
  });
}

/**
 * Export a box's escrow secret key to a new file (0600): an explicit act,
 * audited (`escrow.export`) in the same transaction that reads the key.
 */
export async function exportEscrow(db: Db, kekOrNull: KeyEncryption | null, full: string, out: string, actor: Principal = operator()) {
  const kek = needKek(kekOrNull, 'exporting an escrow key');
  const { org: orgPart, box: boxPart } = splitName(full);
  return db.tx(async (q) => {
    const org = await mustOrg(q, orgPart);
    const box = await mustBox(q, org, boxPart);
    const name = `${org.name}/${box.name}`;
    const rows = await q.query<{ fingerprint: string }>(
      `SELECT fingerprint FROM held_keys WHERE box_id = $1 AND kind = 'escrow' ORDER BY CASE WHEN state = 'superseded' THEN 1 ELSE 0 END, created_at DESC`,
      [box.id],
    );
    if (!rows.length) throw usage(`${name} has no escrow key`);
    const row = (await q.one<Parameters<typeof unwrapHeld>[1]>(
      `SELECT org_id, fingerprint, kind, box_id, wrapped, state, successor, created_at, exported_at FROM held_keys WHERE org_id = $1 AND fingerprint = $2`,
      [org.id, rows[0].fingerprint],
    ))!;
    const key = await unwrapHeld(kek, row);
    const now = nowText();
    await q.run('UPDATE held_keys SET exported_at = $3, updated_at = $3 WHERE org_id = $1 AND fingerprint = $2', [org.id, row.fingerprint, now]);
    await audit(q, actor, org.id, 'escrow.export', name, { fingerprint: row.fingerprint, state: row.state, to: out });
    // written last, exclusive and 0600 from the first byte: a failed write rolls the audit row back with it
    writeKeyFile(out, pgp.armorSecret(key), { secret: true, exclusive: true });
    return { box: name, fingerprint: row.fingerprint, state: row.state, file: out };
  });
}
