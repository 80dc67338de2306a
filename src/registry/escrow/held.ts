/**
 * Secret keys the registry holds: an org key it certifies repository keys
 * with (when the org lets the registry hold it), and one escrow key per
 * escrow-signed box. Each is stored wrapped under the operator's
 * key-encryption key (kek.ts) with its identity (org id and fingerprint) as
 * associated data; the clear key exists only in the memory of the process
 * that signs or certifies with it, for the duration of that act.
 */
import { BoxsigError, usage } from '../../errors.js';
import { readSecretKey, generateKey } from '../../keys/keys.js';
import { certifyScope } from '../../keys/certify.js';
import { makeRevocationCertificate, publicCert } from '../../keys/revoke.js';
import { readKeyData } from '../../keys/keys.js';
import type { Cert } from '../../keys/cert.js';
import * as pgp from '../../keys/pgp.js';
import { nowText, type Sql } from '../db/engine.js';
import type { KeyEncryption } from './kek.js';

export type HeldKind = 'org' | 'escrow';
export type HeldState = 'active' | 'converting' | 'superseded';

export interface HeldRow {
  org_id: string;
  fingerprint: string;
  kind: HeldKind;
  box_id: string | null;
  wrapped: string;
  state: HeldState;
  successor: string | null;
  created_at: string;
  exported_at: string | null;
}

const COLUMNS = 'org_id, fingerprint, kind, box_id, wrapped, state, successor, created_at, exported_at';

const identity = (orgId: string, fingerprint: string) => `${orgId}/${fingerprint}`;

/** Wrap and store a secret key. */
export async function holdKey(
  q: Sql,
  kek: KeyEncryption,
  row: { orgId: string; kind: HeldKind; boxId: string | null; key: pgp.PrivateKey },
  now = nowText(),
): Promise<string> {
  if (!row.key.isDecrypted()) throw new BoxsigError('INTERNAL', 'internal error: a held key must be unlocked before it is wrapped');
  const fpr = pgp.fingerprintOf(row.key);
  const wrapped = await kek.wrap(Buffer.from(pgp.armorSecret(row.key), 'utf8'), identity(row.orgId, fpr));
  await q.run(
    `INSERT INTO held_keys (org_id, fingerprint, kind, box_id, wrapped, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $6)`,
    [row.orgId, fpr, row.kind, row.boxId, wrapped.toString('base64'), now],
  );
  return fpr;
}

/** Unwrap a held key (the clear key lives only in this process's memory). */
export async function unwrapHeld(kek: KeyEncryption, row: HeldRow): Promise<pgp.PrivateKey> {
  const plain = await kek.unwrap(Buffer.from(row.wrapped, 'base64'), identity(row.org_id, row.fingerprint));
  try {
    const key = await readSecretKey(plain, `the held key ${row.fingerprint}`);
    if (pgp.fingerprintOf(key) !== row.fingerprint) throw new Error(`it holds ${pgp.fingerprintOf(key)}`);
    return key;
  } finally {
    plain.fill(0);
  }
}

/** The escrow key a box signs with now (active, or converting to a self-managed key). */
export async function escrowKeyOf(q: Sql, boxId: string): Promise<HeldRow | null> {
  return q.one<HeldRow>(`SELECT ${COLUMNS} FROM held_keys WHERE box_id = $1 AND kind = 'escrow' AND state <> 'superseded'`, [boxId]);
}

/** Every escrow key the org has held for its boxes, superseded ones included. */
export async function escrowKeysOfOrg(q: Sql, orgId: string): Promise<HeldRow[]> {
  return q.query<HeldRow>(`SELECT ${COLUMNS} FROM held_keys WHERE org_id = $1 AND kind = 'escrow'`, [orgId]);
}

/** The org key the registry holds for the org, if it holds one. */
export async function heldOrgKey(q: Sql, orgId: string): Promise<HeldRow | null> {
  return q.one<HeldRow>(`SELECT ${COLUMNS} FROM held_keys WHERE org_id = $1 AND kind = 'org' AND state = 'active' ORDER BY created_at DESC LIMIT 1`, [orgId]);
}

/** The user IDs of a box's escrow key: the first says it is registry-managed (what `boxsig verify` shows). */
function escrowUserIds(full: string): string[] {
  return [`${full} (registry-managed escrow key)`, `boxsig:${full}`];
}

/** A new escrow key: v4 Ed25519 (GnuPG 2.2 and sqv 1.1 verify it), no passphrase (it is wrapped instead). */
export async function newEscrowKey(full: string, date = new Date()): Promise<pgp.PrivateKey> {
  const k = await generateKey({ userIds: escrowUserIds(full), type: 'ed25519', date });
  return pgp.readArmoredSecretKey(k.privateKey);
}

/** A new org key held by the registry (certify-capable v4 Ed25519). */
export async function newOrgKey(org: string, date = new Date()): Promise<pgp.PrivateKey> {
  const k = await generateKey({ userIds: [`${org} organisation key (held by the boxsig registry)`], type: 'ed25519', date });
  return pgp.readArmoredSecretKey(k.privateKey);
}

/** A secret key an admin hands to the registry (`org hold-key --import`): one key, unlocked. */
export async function importSecret(bytes: Buffer, what: string, passphrase: () => Promise<string | undefined>): Promise<pgp.PrivateKey> {
  const key = await readSecretKey(bytes, what);
  if (key.isDecrypted()) return key;
  const pass = await passphrase();
  if (pass === undefined) throw usage(`${what} is protected by a passphrase: give --passphrase-file FILE or set BOXSIG_PASSPHRASE`);
  try {
    return await pgp.unlock(key, pass);
  } catch (e) {
    throw usage(`cannot unlock ${what}: ${(e as Error).message}`);
  }
}

/** Certify the `boxsig:<glob>` user ID of `repo` with a held org key. */
export async function certifyWith(orgKey: pgp.PrivateKey, repo: Cert, glob: string, date = new Date()): Promise<Cert> {
  return certifyScope(repo, orgKey, glob, date);
}

/** The public part of a held key, as registered. */
export function publicOf(key: pgp.PrivateKey): Cert {
  return publicCert(key);
}

/** A `superseded` revocation of a held key by itself. */
export async function supersede(key: pgp.PrivateKey, successor: string, date: Date) {
  const r = await makeRevocationCertificate({ signer: key, reason: 'superseded', message: `converted to the self-managed key ${successor}`, date });
  const { bare } = await readKeyData(Buffer.from(r.armored), 'the revocation of an escrow key');
  return { armored: r.armored, sig: bare[0] };
}
