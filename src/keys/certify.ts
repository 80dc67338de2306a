/**
 * Certifications: an organisation key vouches for a repository key by
 * certifying a user ID of the exact form `boxsig:<glob>` on it (what
 * `gpg --quick-sign-key` does); a recorded key vouches for its successor the
 * same way. Only `boxsig:<glob>` user IDs whose glob covers the box name
 * count: an ordinary web-of-trust signature on "Bob <bob@example.org>" says
 * nothing about which boxes Bob may sign.
 *
 * A certification stops counting when the certifier revokes it (0x30, made
 * at or after the certification, wherever it arrived from: inside the key,
 * inside a box, or imported bare), when the certifier is revoked (by the
 * reason rule of src/keys/revocation.ts), or when the owner revokes the
 * user ID.
 */
import { BoxsigError, usage } from '../errors.js';
import { globMatches, globProblem, globWithin } from '../shared/glob.js';
import { mergeCert, userIdText, writeCert, type Cert, type Component, type Sig } from './cert.js';
import { handleOf, openKey } from './handle.js';
import { CERTIFICATION_TYPES, SIGTYPE, TAG, parseSignaturePacket, writePackets } from './packets.js';
import { claimsIssuer, describeRevocation, revocationAt } from './revocation.js';
import * as pgp from './pgp.js';
import type { Enforcement } from './verify.js';

export const BOXSIG_UID_PREFIX = 'boxsig:';

export interface CertificationCheck {
  ok: boolean;
  userId: string;
  created?: string;
  /** why it does not count */
  reason?: string;
  /** the certifier's key was revoked (and the policy said warn) */
  warning?: string;
  revoked?: boolean;
}

/** Why a user ID does not qualify (null: it does). */
export type UidFilter = (uid: string) => string | null;

interface Certifier {
  fingerprint: string;
  keyId: string;
  body: Uint8Array;
}

/**
 * When the certifier revoked its certifications of this user ID (0x30
 * signatures that verify, filed with the user ID or arriving bare): their
 * creation times, each revocation verified once.
 */
async function certifierRevocations(cert: Cert, user: Component, c: Certifier): Promise<Array<Date | null>> {
  const out: Array<Date | null> = [];
  for (const s of [...user.sigs, ...cert.direct]) {
    if (s.info.type !== SIGTYPE.certRevocation || !claimsIssuer(s, c.fingerprint, false)) continue;
    if (await pgp.verifiesCryptographically(s.packet.body, c.body, SIGTYPE.certRevocation, { key: cert.primary.body, userId: user.packet.body })) {
      out.push(s.info.created);
    }
  }
  return out;
}

/** A revocation revokes the certifications made before it (or at the same second); an undated one, all. */
const revokes = (revocations: Array<Date | null>, certified: Date) => revocations.some((r) => r === null || r.getTime() >= certified.getTime());

/**
 * Check the certifications `certifier` made on the user IDs of `key` that
 * `uidFilter` accepts (`nameFilter(name)` or `scopeFilter(scope, name)`).
 * Returns one result per certification found, valid ones first.
 */
export async function checkCertifications(
  key: pgp.PublicKey,
  certifier: pgp.PublicKey,
  now: Date,
  revocation: Enforcement,
  uidFilter: UidFilter,
): Promise<CertificationCheck[]> {
  const h = await handleOf(key);
  const ch = await handleOf(certifier);
  const c: Certifier = { fingerprint: ch.cert.info.fingerprint, keyId: ch.cert.info.keyId, body: ch.cert.primary.body };
  const results: CertificationCheck[] = [];
  for (const user of h.cert.users) {
    const uid = userIdText(user);
    if (uid === null) continue;
    const certs = user.sigs.filter((s) => CERTIFICATION_TYPES.has(s.info.type) && claimsIssuer(s, c.fingerprint, false));
    if (certs.length === 0) continue;
    const filtered = uidFilter(uid);
    if (filtered) {
      results.push({ ok: false, userId: uid, reason: filtered });
      continue;
    }
    const bound = await pgp.userIdValidAt(h.view, user.packet.body, now);
    if (!bound.ok) {
      results.push({ ok: false, userId: uid, reason: `user ID has no valid self-signature (${bound.reason})` });
      continue;
    }
    const revoked = await certifierRevocations(h.cert, user, c);
    for (const s of certs) results.push(await checkOne(h.cert, user, uid, s, c, ch, now, revocation, revoked));
  }
  results.sort((a, b) => Number(b.ok) - Number(a.ok));
  return results;
}

async function checkOne(
  cert: Cert,
  user: Component,
  uid: string,
  s: Sig,
  c: Certifier,
  ch: Awaited<ReturnType<typeof handleOf>>,
  now: Date,
  revocation: Enforcement,
  revokedAt: Array<Date | null>,
): Promise<CertificationCheck> {
  const created = s.info.created;
  const r: CertificationCheck = { ok: false, userId: uid, created: created?.toISOString() };
  if (!created) return { ...r, reason: 'certification has no creation time' };
  if (s.info.unknownCritical.length) return { ...r, reason: 'certification carries a critical subpacket boxsig does not understand' };
  if (!(await pgp.verifiesCryptographically(s.packet.body, c.body, s.info.type, { key: cert.primary.body, userId: user.packet.body }))) {
    return { ...r, reason: 'certification does not verify' };
  }
  if (created.getTime() > now.getTime()) return { ...r, reason: 'certification is dated in the future' };
  if (s.info.expiresAfter && now.getTime() >= created.getTime() + s.info.expiresAfter * 1000) return { ...r, reason: 'the certification has expired' };
  if (revokes(revokedAt, created)) return { ...r, reason: 'the certification was revoked' };
  const rev = revocationAt(ch.revocations, null, created);
  if (rev) {
    const why = `certifying key ${c.fingerprint} is revoked (${describeRevocation(rev)})`;
    if (revocation !== 'warn') return { ...r, revoked: true, reason: `${why}; it was not valid when it certified` };
    r.warning = `${why}; accepted because the policy says revocation: warn`;
    r.revoked = true;
  }
  const valid = await pgp.primaryValidAt(ch.view, created);
  if (!valid.ok) return { ...r, ok: false, reason: `certifying key ${c.fingerprint} was not valid when it certified (${valid.reason})` };
  return { ...r, ok: true };
}

function globOfUid(uid: string): { glob: string } | { problem: string } {
  if (!uid.startsWith(BOXSIG_UID_PREFIX)) return { problem: `user ID ${JSON.stringify(uid)} is not of the form boxsig:<glob>` };
  const glob = uid.slice(BOXSIG_UID_PREFIX.length);
  if (globProblem(glob)) return { problem: `user ID ${JSON.stringify(uid)} holds an invalid glob` };
  return { glob };
}

/** Only `boxsig:<glob>` user IDs whose glob covers `name` (rotation by certification). */
export function nameFilter(name: string): UidFilter {
  return (uid) => {
    const g = globOfUid(uid);
    if ('problem' in g) return g.problem;
    if (!globMatches(g.glob, name)) return `certified glob "${g.glob}" does not cover box "${name}"`;
    return null;
  };
}

/** Only `boxsig:<glob>` user IDs whose glob lies inside the organisation's `scope` and covers `name`. */
export function scopeFilter(scope: string, name: string): UidFilter {
  const byName = nameFilter(name);
  return (uid) => {
    const g = globOfUid(uid);
    if ('problem' in g) return g.problem;
    if (!globWithin(g.glob, scope)) return `certified glob "${g.glob}" is not inside the organisation scope "${scope}"`;
    return byName(uid);
  };
}

/**
 * Certify the `boxsig:<glob>` user ID of `repo` with the primary key of
 * `org` (a generic certification, type 0x10, as `gpg --quick-sign-key`
 * makes). The org key needs the certify capability only: a GnuPG
 * certify-only (`[C]`) key works. Returns the repository key with every
 * packet it had plus the certification.
 */
export async function certifyScope(repo: Cert, org: pgp.PrivateKey, glob: string, date = new Date()): Promise<Cert> {
  const gp = globProblem(glob);
  if (gp) throw usage(`--scope ${JSON.stringify(glob)} ${gp}`);
  const uid = BOXSIG_UID_PREFIX + glob;
  const user = repo.users.find((u) => userIdText(u) === uid);
  if (!user) {
    const have = repo.users.map(userIdText).filter((u): u is string => u !== null);
    throw usage(
      `the repository key ${repo.info.fingerprint} has no user ID "${uid}" (it has: ${have.map((u) => JSON.stringify(u)).join(', ') || 'none'})`,
      {},
      `its owner adds it first: boxsig key add-uid --key REPO.secret.asc --uid "${uid}" (or gpg --quick-add-uid FPR "${uid}")`,
    );
  }
  const view = await openKey(repo);
  const bound = await pgp.userIdValidAt(view, user.packet.body, date);
  if (!bound.ok) throw usage(`the user ID "${uid}" has no valid self-signature: ${bound.reason}`);
  let body: Uint8Array;
  try {
    body = await pgp.makeCertification(org, repo.primary.body, user.packet.body, date);
  } catch (e) {
    throw new BoxsigError('USAGE', `cannot certify with ${pgp.fingerprintOf(org)}: ${(e as Error).message}`);
  }
  const certified: Cert = {
    ...repo,
    users: repo.users.map((u) => (u === user ? { ...u, sigs: [...u.sigs, { packet: { tag: TAG.signature, body }, info: parseSignaturePacket(body) }] } : u)),
  };
  return mergeCert(repo, certified).cert;
}

/** Add a self-signed user ID to one's own key. */
export async function addUserId(key: pgp.PrivateKey, uid: string, date = new Date()): Promise<pgp.PrivateKey> {
  if (pgp.userIdsOf(key).includes(uid)) throw usage(`the key already has the user ID ${JSON.stringify(uid)}`);
  const uidBytes = Buffer.from(uid, 'utf8');
  const sig = await pgp.makeSelfCertification(key, uidBytes, date);
  return pgp.secretKeyWith(
    key,
    writePackets([
      { tag: TAG.userId, body: uidBytes },
      { tag: TAG.signature, body: sig },
    ]),
  );
}

/**
 * `boxsig key certify`: the repository key certified for GLOB by the org key,
 * armored together with the org's public key (what a repository needs to
 * embed: `boxsig sign --cert`).
 */
export async function certifyForScope(repo: Cert, org: pgp.PrivateKey, glob: string): Promise<{ repository: string; org: string; armored: string }> {
  const certified = await certifyScope(repo, org, glob);
  const armored = pgp.armorPublicKey(Buffer.concat([writeCert({ ...certified, hadSecret: false }), pgp.publicBytes(org)]));
  return { repository: certified.info.fingerprint, org: pgp.fingerprintOf(org), armored };
}
