/**
 * Certifications: an organisation key vouches for a repository key by
 * certifying a user ID of the exact form `boxsig:<glob>` on it (what
 * `gpg --quick-sign-key` does); a recorded key can vouch for its successor
 * by certifying any of its user IDs.
 */
import * as openpgp from 'openpgp';
import { BoxsigError, usage } from '../errors.js';
import { globMatches, globProblem, globWithin } from '../policy/glob.js';
import { fingerprintOf, PGP_CONFIG, userIdsOf } from './keys.js';
import type { Enforcement } from './verify.js';

const cfg = (): openpgp.Config => ({ ...openpgp.config, ...PGP_CONFIG }) as openpgp.Config;

const CERT_TYPES = new Set([
  openpgp.enums.signature.certGeneric,
  openpgp.enums.signature.certPersona,
  openpgp.enums.signature.certCasual,
  openpgp.enums.signature.certPositive,
]);

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

/**
 * Check the certifications `certifier` made on the user IDs of `key`
 * (optionally only those accepted by `uidFilter`). Returns one result per
 * certification found, valid ones first.
 */
export async function checkCertifications(
  key: openpgp.PublicKey,
  certifier: openpgp.PublicKey,
  now: Date,
  revocation: Enforcement,
  uidFilter: (uid: string) => string | null = () => null,
): Promise<CertificationCheck[]> {
  const results: CertificationCheck[] = [];
  const certifierId = certifier.getKeyID();
  for (const user of key.users) {
    if (!user.userID) continue;
    const uid = user.userID.userID;
    const certs = user.otherCertifications.filter((c) => c.issuerKeyID.equals(certifierId));
    if (certs.length === 0) continue;
    const filtered = uidFilter(uid);
    if (filtered) {
      results.push({ ok: false, userId: uid, reason: filtered });
      continue;
    }
    // the user ID must be bound to the key by its owner (as GnuPG requires)
    try {
      await user.verify(now, cfg());
    } catch (e) {
      results.push({ ok: false, userId: uid, reason: `user ID has no valid self-signature (${(e as Error).message})` });
      continue;
    }
    for (const cert of certs) {
      const r: CertificationCheck = { ok: false, userId: uid, created: cert.created?.toISOString() };
      if (!CERT_TYPES.has(cert.signatureType!)) {
        results.push({ ...r, reason: 'not a certification signature' });
        continue;
      }
      try {
        await cert.verify(certifier.keyPacket, openpgp.enums.signature.certGeneric, { userID: user.userID, key: key.keyPacket }, now, undefined, cfg());
      } catch (e) {
        results.push({ ...r, reason: `certification does not verify (${(e as Error).message})` });
        continue;
      }
      if (await user.isRevoked(cert, certifier.keyPacket, now, cfg())) {
        results.push({ ...r, reason: 'the certification was revoked' });
        continue;
      }
      // the certifier must have been valid when it certified (expiry, revocation by reason and date)
      try {
        await certifier.verifyPrimaryKey(cert.created!, undefined, cfg());
        results.push({ ...r, ok: true });
      } catch (e) {
        const msg = (e as Error).message;
        const revoked = /revoked/i.test(msg);
        if (revoked && revocation === 'warn') {
          results.push({
            ...r,
            ok: true,
            revoked: true,
            warning: `certifying key ${fingerprintOf(certifier)} is revoked; accepted because the policy says revocation: warn`,
          });
        } else {
          results.push({ ...r, revoked, reason: `certifying key ${fingerprintOf(certifier)} was not valid when it certified (${msg})` });
        }
      }
    }
  }
  results.sort((a, b) => Number(b.ok) - Number(a.ok));
  return results;
}

/** Why a `boxsig:<glob>` user ID does not authorise `name` under `scope` (null: it does). */
export function scopeFilter(scope: string, name: string): (uid: string) => string | null {
  return (uid) => {
    if (!uid.startsWith(BOXSIG_UID_PREFIX)) return `user ID ${JSON.stringify(uid)} is not of the form boxsig:<glob>`;
    const glob = uid.slice(BOXSIG_UID_PREFIX.length);
    if (globProblem(glob)) return `user ID ${JSON.stringify(uid)} holds an invalid glob`;
    if (!globWithin(glob, scope)) return `certified glob "${glob}" is not inside the organisation scope "${scope}"`;
    if (!globMatches(glob, name)) return `certified glob "${glob}" does not cover box "${name}"`;
    return null;
  };
}

/** Certify the `boxsig:<glob>` user ID of `repoKey` with `orgKey` (a generic certification, type 0x10). */
export async function certifyScope(repoKey: openpgp.PublicKey, orgKey: openpgp.PrivateKey, glob: string, date = new Date()): Promise<openpgp.PublicKey> {
  const gp = globProblem(glob);
  if (gp) throw usage(`--scope ${JSON.stringify(glob)} ${gp}`);
  const uid = BOXSIG_UID_PREFIX + glob;
  const index = repoKey.users.findIndex((u) => u.userID?.userID === uid);
  if (index < 0) {
    throw usage(
      `the repository key ${fingerprintOf(repoKey)} has no user ID "${uid}" (it has: ${
        userIdsOf(repoKey)
          .map((u) => JSON.stringify(u))
          .join(', ') || 'none'
      })`,
      {},
      `its owner adds it first: boxsig key add-uid --key REPO.secret.asc --uid "${uid}" (or gpg --quick-add-uid FPR "${uid}")`,
    );
  }
  const user = repoKey.users[index];
  try {
    await user.verify(date, cfg());
  } catch (e) {
    throw usage(`the user ID "${uid}" has no valid self-signature: ${(e as Error).message}`);
  }
  try {
    const certified = await (user as unknown as { certify(k: openpgp.PrivateKey[], d: Date, c: openpgp.Config): Promise<typeof user> }).certify(
      [orgKey],
      date,
      cfg(),
    );
    const key = (repoKey as unknown as { clone(): openpgp.PublicKey }).clone();
    key.users[index] = certified;
    return key;
  } catch (e) {
    throw new BoxsigError('USAGE', `cannot certify with ${fingerprintOf(orgKey)}: ${(e as Error).message}`);
  }
}

/** Add a self-signed user ID to one's own key. */
export async function addUserId(key: openpgp.PrivateKey, uid: string): Promise<openpgp.PrivateKey> {
  if (key.users.some((u) => u.userID?.userID === uid)) throw usage(`the key already has the user ID ${JSON.stringify(uid)}`);
  // A new user ID packet with a self-certification modelled on the primary user's (expiry, flags, preferences).
  const packet = openpgp.UserIDPacket.fromObject({ name: uid });
  const list = new openpgp.PacketList();
  list.push(...key.toPacketList());
  const bound = await selfCertify(key, packet);
  list.push(packet, bound);
  return (await openpgp.readPrivateKey({ binaryKey: list.write(), config: PGP_CONFIG })) as openpgp.PrivateKey;
}

async function selfCertify(key: openpgp.PrivateKey, packet: openpgp.UserIDPacket): Promise<openpgp.SignaturePacket> {
  // Reuse the primary user's self-signature settings (expiry, preferences) for the new user ID.
  const { selfCertification } = await key.getPrimaryUser(undefined, undefined, cfg());
  const sig = new openpgp.SignaturePacket();
  const s = sig as unknown as Record<string, unknown>;
  s.signatureType = openpgp.enums.signature.certPositive;
  s.publicKeyAlgorithm = key.keyPacket.algorithm;
  s.hashAlgorithm = selfCertification.hashAlgorithm;
  s.keyFlags = selfCertification.keyFlags;
  s.keyExpirationTime = selfCertification.keyExpirationTime;
  s.keyNeverExpires = selfCertification.keyNeverExpires;
  s.preferredSymmetricAlgorithms = selfCertification.preferredSymmetricAlgorithms;
  s.preferredHashAlgorithms = selfCertification.preferredHashAlgorithms;
  s.preferredCompressionAlgorithms = selfCertification.preferredCompressionAlgorithms;
  s.features = selfCertification.features;
  const data = { userID: packet, key: key.keyPacket };
  await (sig as unknown as { sign(k: unknown, d: unknown, date?: Date, detached?: boolean, config?: openpgp.Config): Promise<void> }).sign(
    key.keyPacket,
    data,
    new Date(),
    undefined,
    cfg(),
  );
  return sig;
}
