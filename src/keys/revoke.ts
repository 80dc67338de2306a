/**
 * Revocation certificates: made by the key itself (`boxsig key revoke --key
 * SECRET.asc`) or by a designated revoker the key names (`--key
 * OFFICER.secret.asc --target REPO.public.asc`, what `gpg --desig-revoke`
 * makes), as a bare key-revocation signature (0x20) in ASCII armor that
 * `boxsig key import`, `gpg --import` and Sequoia read.
 */
import { usage } from '../errors.js';
import type { KeyData } from './keys.js';
import { splitCerts, type Cert } from './cert.js';
import { designatedRevokers } from './revocation.js';
import { readPackets, writePackets, TAG } from './packets.js';
import * as pgp from './pgp.js';

const REVOCATION_REASONS: ReadonlyMap<string, number> = new Map([
  ['compromised', pgp.REASON.compromised],
  ['superseded', pgp.REASON.superseded],
  ['retired', pgp.REASON.retired],
  ['unspecified', pgp.REASON.noReason],
]);

export interface RevocationRequest {
  /** the unlocked secret key that signs the revocation */
  signer: pgp.PrivateKey;
  /** the key to revoke, when it is not `signer` itself (designated revoker) */
  target?: Cert;
  reason: string;
  message?: string;
  date?: Date;
}

export interface RevocationCertificate {
  /** fingerprint of the revoked key */
  fingerprint: string;
  /** fingerprint of the key that made the certificate */
  by: string;
  reason: string;
  armored: string;
}

export function reasonCode(reason: string): number {
  const code = REVOCATION_REASONS.get(reason);
  if (code === undefined) throw usage(`--reason must be one of ${[...REVOCATION_REASONS.keys()].join(', ')}`);
  return code;
}

export async function makeRevocationCertificate(req: RevocationRequest): Promise<RevocationCertificate> {
  const code = reasonCode(req.reason);
  const by = pgp.fingerprintOf(req.signer);
  const targetBody = req.target ? req.target.primary.body : publicCert(req.signer).primary.body;
  const fingerprint = req.target ? req.target.info.fingerprint : by;
  if (req.target && fingerprint !== by && !(await designatedRevokers(req.target)).includes(by)) {
    throw usage(
      `the key ${fingerprint} does not name ${by} as a designated revoker, so a revocation made with it would not count (for boxsig, GnuPG or Sequoia)`,
      {},
      `the key's owner names it first: boxsig key generate --revoker ORG.public.asc …, or gpg --edit-key ${fingerprint} addrevoker`,
    );
  }
  const sig = await pgp.makeKeyRevocation(req.signer, targetBody, code, req.message ?? '', req.date ?? new Date());
  const comment = `revocation certificate for ${fingerprint} (${req.reason})${by !== fingerprint ? ` by designated revoker ${by}` : ''}`;
  return { fingerprint, by, reason: req.reason, armored: pgp.armorPublicKey(writePackets([{ tag: TAG.signature, body: sig }]), comment) };
}

/** The public part of an own key, in boxsig's structure. */
export function publicCert(key: pgp.AnyKey): Cert {
  return splitCerts(readPackets(pgp.publicBytes(key))).certs[0];
}

/** Whether key data holds a revocation certificate (a bare one, or a key carrying its own revocation). */
export function holdsRevocation(d: KeyData): boolean {
  return d.bare.length > 0 || d.certs.some((c) => c.direct.some((s) => s.info.type === 0x20));
}
