/**
 * Revocations, judged by boxsig (not by OpenPGP.js, whose judgement depends
 * on "now" and on which copy of a key it saw first).
 *
 * - A key revocation (0x20) counts when it verifies by the key itself or by
 *   a designated revoker the key names in a self-signature (subpacket 12, as
 *   `gpg --edit-key addrevoker` writes it) whose key is known.
 * - A subkey revocation (0x28) counts when it verifies by the primary key.
 * - Only the cryptography decides whether a revocation counts: its creation
 *   time (even in the future) and its own expiry do not (GnuPG and Sequoia
 *   agree). A hard revocation (compromised, no reason, or any reason boxsig
 *   does not know) applies to every signature whenever it was made; a soft
 *   one (superseded, retired) to signatures made at or after its date.
 */
import { CERTIFICATION_TYPES, SIGTYPE } from './packets.js';
import { attachSignatures, type Cert, type Sig } from './cert.js';
import { verifiesCryptographically } from './pgp.js';

export interface Revocation {
  /** the primary key, or the fingerprint of the revoked subkey */
  target: 'key' | string;
  /** fingerprint of the key that made it */
  issuer: string;
  designated: boolean;
  reasonCode: number | null;
  reason: string;
  text: string;
  created: Date | null;
  hard: boolean;
}

const REASON_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'no reason given'],
  [1, 'superseded'],
  [2, 'compromised'],
  [3, 'retired'],
  [32, 'user ID no longer valid'],
]);

const SOFT_REASONS = new Set([1, 3, 32]);

export function isHardReason(code: number | null): boolean {
  return code === null || !SOFT_REASONS.has(code);
}

function reasonName(code: number | null): string {
  return code === null ? 'no reason given' : (REASON_NAMES.get(code) ?? `reason ${code}`);
}

/** Find a known key by fingerprint (keyring, or a key carried in the box). */
export type CertLookup = (fingerprint: string) => Promise<Cert | null>;

/** Designated revokers the key names in self-signatures that verify (fingerprints). */
export async function designatedRevokers(cert: Cert): Promise<string[]> {
  const found = new Set<string>();
  const primary = cert.primary.body;
  for (const s of cert.direct) {
    if (s.info.type !== SIGTYPE.direct || !s.info.revocationKeys.length) continue;
    if (await verifiesCryptographically(s.packet.body, primary, SIGTYPE.direct, { key: primary }))
      for (const r of s.info.revocationKeys) found.add(r.fingerprint);
  }
  for (const u of cert.users) {
    for (const s of u.sigs) {
      if (!CERTIFICATION_TYPES.has(s.info.type) || !s.info.revocationKeys.length) continue;
      if (await verifiesCryptographically(s.packet.body, primary, s.info.type, { key: primary, userId: u.packet.body }))
        for (const r of s.info.revocationKeys) found.add(r.fingerprint);
    }
  }
  found.delete(cert.info.fingerprint);
  return [...found];
}

function describe(s: Sig, target: Revocation['target'], issuer: string, designated: boolean): Revocation {
  return {
    target,
    issuer,
    designated,
    reasonCode: s.info.reasonCode,
    reason: reasonName(s.info.reasonCode),
    text: s.info.reasonText ?? '',
    created: s.info.created,
    hard: isHardReason(s.info.reasonCode),
  };
}

/**
 * Which key a revocation is tried against: the one it names (a signed
 * issuer fingerprint, else the unsigned issuer fields — used only to choose
 * whom to ask, the cryptography decides); one naming nobody is tried
 * against the key itself only (as GnuPG does). This bounds the work to one
 * verification per revocation.
 */
export function claimsIssuer(s: Sig, fpr: string, own: boolean): boolean {
  const i = s.info;
  if (i.hashedIssuerFingerprint) return i.hashedIssuerFingerprint === fpr;
  if (!i.issuerFingerprints.length && !i.issuerKeyIds.length) return own;
  return i.issuerFingerprints.includes(fpr) || i.issuerKeyIds.includes(fpr.slice(-16));
}

/** Every revocation of the key and its subkeys that verifies. */
export async function verifiedRevocations(cert: Cert, lookup: CertLookup): Promise<Revocation[]> {
  const out: Revocation[] = [];
  const primary = cert.primary.body;
  const own = cert.info.fingerprint;
  const keyRevocations = cert.direct.filter((s) => s.info.type === SIGTYPE.keyRevocation);
  if (keyRevocations.length) {
    const revokers: Array<{ fpr: string; body: Uint8Array }> = [{ fpr: own, body: primary }];
    for (const fpr of await designatedRevokers(cert)) {
      const r = await lookup(fpr);
      if (r) revokers.push({ fpr, body: r.primary.body });
    }
    for (const s of keyRevocations) {
      for (const r of revokers) {
        if (!claimsIssuer(s, r.fpr, r.fpr === own)) continue;
        if (await verifiesCryptographically(s.packet.body, r.body, SIGTYPE.keyRevocation, { key: primary })) {
          out.push(describe(s, 'key', r.fpr, r.fpr !== own));
          break;
        }
      }
    }
  }
  const strays = cert.direct.filter((s) => s.info.type === SIGTYPE.subkeyRevocation);
  for (const k of cert.subkeys) {
    for (const s of [...k.sigs.filter((x) => x.info.type === SIGTYPE.subkeyRevocation), ...strays]) {
      if (!claimsIssuer(s, own, true)) continue;
      if (await verifiesCryptographically(s.packet.body, primary, SIGTYPE.subkeyRevocation, { key: primary, bind: k.packet.body })) {
        out.push(describe(s, k.info.fingerprint, own, false));
      }
    }
  }
  return out;
}

/**
 * The revocation that invalidates a signature made at `at` by the (sub)key
 * `signingKey` (null: none). Hard revocations first.
 */
export function revocationAt(revocations: Revocation[], signingKey: string | null, at: Date): Revocation | null {
  const applies = (r: Revocation) => (r.target === 'key' || r.target === signingKey) && (r.hard || r.created === null || r.created.getTime() <= at.getTime());
  return revocations.filter(applies).sort((a, b) => Number(b.hard) - Number(a.hard))[0] ?? null;
}

/** The key's own revocation state "now" for listings: the strongest key revocation, if any. */
export function keyRevocation(revocations: Revocation[]): Revocation | null {
  return revocations.filter((r) => r.target === 'key').sort((a, b) => Number(b.hard) - Number(a.hard))[0] ?? null;
}

/** The revocation's own text is the issuer's: control characters are shown escaped, never sent to a terminal. */
// eslint-disable-next-line no-control-regex -- control characters in untrusted text are what this looks for
const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 200);

export function describeRevocation(r: Revocation): string {
  const by = r.designated ? `, by designated revoker ${r.issuer}` : '';
  return `${r.reason}${r.text ? `: ${printable(r.text)}` : ''}, ${r.created?.toISOString() ?? 'undated'}${by}`;
}

/**
 * A copy of a key with every revocation of `revocations` that may concern it
 * attached: revocations by the key itself or by a designated revoker it names,
 * certification revocations (0x30, judged later against their issuer), and
 * revocations naming no issuer. Revocations arrive before or after their key
 * and are never lost; each is verified where it is used.
 */
export async function withConcerningRevocations(c: Cert, revocations: readonly Sig[]): Promise<Cert> {
  if (revocations.length === 0) return c;
  const ids = new Set([c.info.fingerprint, c.info.keyId]);
  for (const r of await designatedRevokers(c)) ids.add(r).add(r.slice(-16));
  const concerns = (s: Sig) =>
    s.info.type === SIGTYPE.certRevocation ||
    [...s.info.issuerFingerprints, ...s.info.issuerKeyIds].some((i) => ids.has(i)) ||
    (!s.info.issuerFingerprints.length && !s.info.issuerKeyIds.length);
  const found = revocations.filter(concerns);
  return found.length ? attachSignatures(c, found).cert : c;
}
