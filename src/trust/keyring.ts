/**
 * The local keyring, in `$BOXSIG_HOME`: imported public keys (`keyring/<FPR>.asc`)
 * and revocation certificates (`revocations/`). Changed only under the trust
 * store's lock, every file written atomically (src/keys/files.ts).
 *
 * A key is stored as every packet ever seen for it (src/keys/cert.ts merges
 * copies as a union), so a revocation, an expiry or a certification
 * revocation is never lost, whatever order copies arrive in. A file that
 * cannot be read is a configuration error naming the file, never a verdict
 * on a box.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BoxsigError, describeCause } from '../errors.js';
import { mergeCert, splitCerts, userIdText, writeCert, type Cert, type Sig } from '../keys/cert.js';
import { writeKeyFile } from '../keys/files.js';
import { handleOf, openKey } from '../keys/handle.js';
import type { KeyData } from '../keys/keys.js';
import { readPackets, SIGTYPE, writePackets } from '../keys/packets.js';
import { armorPublicKey, dearmor, describeAlgorithm, expirationOf, userIdsOf, verifiesCryptographically, type PublicKey } from '../keys/pgp.js';
import { describeRevocation, keyRevocation, verifiedRevocations, withConcerningRevocations } from '../keys/revocation.js';
import type { KeySource } from '../keys/signers.js';
import type { TrustStore } from './store.js';
import { makeDirs } from '../shared/files.js';

export interface ImportedKey {
  fingerprint: string;
  userIds: string[];
  status: 'new' | 'updated' | 'unchanged';
  /** packets the keyring did not have */
  added: number;
  secretIgnored: boolean;
  /** the key's revocation after the import, if any */
  revoked: string | null;
}

export interface ImportedRevocation {
  /** the key that made it (fingerprint, or key ID) */
  issuer: string;
  kind: 'key' | 'subkey' | 'certification';
  /** it revokes a key (or certification) in the keyring now */
  applied: boolean;
  /** what it applies to */
  target?: string;
  note?: string;
}

export interface KeyListing {
  fingerprint: string;
  userIds: string[];
  algorithm: string;
  created: string;
  expires: string | null;
  revoked: { reason: string; hard: boolean; date: string | null; by?: string } | null;
}

export interface ImportResult {
  keys: ImportedKey[];
  revocations: ImportedRevocation[];
}

const KIND: ReadonlyMap<number, ImportedRevocation['kind']> = new Map([
  [SIGTYPE.keyRevocation, 'key'],
  [SIGTYPE.subkeyRevocation, 'subkey'],
  [SIGTYPE.certRevocation, 'certification'],
]);

function damaged(file: string, problem: string, repair: string): BoxsigError {
  return new BoxsigError('CONFIG', `the keyring file ${file} ${problem}; ${repair}`, { file }, repair);
}

function readLocal(file: string, repair: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw damaged(file, `cannot be read (${describeCause(e)})`, repair);
  }
}

async function localPackets(file: string, data: Buffer, repair: string): Promise<{ certs: Cert[]; bare: Sig[] }> {
  try {
    const text = data.toString('latin1');
    const bin = text.includes('-----BEGIN PGP') ? (await dearmor(text.slice(text.indexOf('-----BEGIN PGP')).replace(/^:/, ''))).data : data;
    return splitCerts(readPackets(bin));
  } catch (e) {
    throw damaged(file, `is damaged (${(e as Error).message})`, repair);
  }
}

const armored = (c: Cert) => armorPublicKey(writeCert(c));

export class Keyring implements KeySource {
  constructor(private readonly store: TrustStore) {}

  get keyDir(): string {
    return path.join(this.store.home, 'keyring');
  }
  get revocationDir(): string {
    return path.join(this.store.home, 'revocations');
  }

  private keyFile(fpr: string): string {
    return path.join(this.keyDir, `${fpr}.asc`);
  }

  /** The stored copy of a key, as stored (null if absent). */
  async stored(fpr: string): Promise<Cert | null> {
    const file = this.keyFile(fpr);
    const repair = `remove it and import the key again (boxsig key import KEY.asc)`;
    const data = readLocal(file, repair);
    if (!data) return null;
    const { certs } = await localPackets(file, data, repair);
    if (certs.length !== 1 || certs[0].info.fingerprint !== fpr) throw damaged(file, `does not hold the key ${fpr}`, repair);
    return certs[0];
  }

  /** Every stored revocation certificate (signature packets). */
  async storedRevocations(): Promise<Sig[]> {
    let names: string[];
    try {
      names = fs.readdirSync(this.revocationDir).filter((n) => n.endsWith('.asc'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw damaged(this.revocationDir, `cannot be read (${describeCause(e)})`, 'fix its permissions');
    }
    const out: Sig[] = [];
    for (const n of names.sort()) {
      const file = path.join(this.revocationDir, n);
      const repair = 'remove it and import the revocation certificate again (boxsig key import CERT.asc)';
      const data = readLocal(file, repair);
      if (data) out.push(...(await localPackets(file, data, repair)).bare);
    }
    return out;
  }

  /** The stored copy of a key with every stored revocation that may concern it (KeySource). */
  async cert(fpr: string): Promise<Cert | null> {
    const c = await this.stored(fpr);
    return c ? this.withRevocations(c) : null;
  }

  /** Any copy of a key (from the keyring or a box) with every stored revocation that may concern it (KeySource). */
  async withRevocations(c: Cert): Promise<Cert> {
    return withConcerningRevocations(c, await this.storedRevocations());
  }

  /** A key from the keyring, opened for the checks with every stored revocation; null if absent. */
  async get(fpr: string): Promise<PublicKey | null> {
    const c = await this.cert(fpr);
    return c ? openKey(c, (f) => this.cert(f)) : null;
  }

  /** The key with everything known about it, armored (key export). */
  async exportArmored(fpr: string): Promise<string | null> {
    const c = await this.cert(fpr);
    return c ? armored(c) : null;
  }

  /** Every key with its user IDs, algorithm, dates and revocation. */
  async list(): Promise<KeyListing[]> {
    const out: KeyListing[] = [];
    for (const fpr of this.fingerprints()) {
      const key = await this.get(fpr);
      if (!key) continue;
      const rev = keyRevocation((await handleOf(key)).revocations);
      const expires = await expirationOf(key);
      out.push({
        fingerprint: fpr,
        userIds: userIdsOf(key),
        algorithm: describeAlgorithm(key),
        created: key
          .getCreationTime()
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z'),
        expires: expires ? expires.toISOString().replace(/\.\d{3}Z$/, 'Z') : null,
        revoked: rev ? { reason: rev.reason, hard: rev.hard, date: rev.created?.toISOString() ?? null, ...(rev.designated ? { by: rev.issuer } : {}) } : null,
      });
    }
    return out;
  }

  has(fpr: string): boolean {
    return fs.existsSync(this.keyFile(fpr));
  }

  fingerprints(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.keyDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw damaged(this.keyDir, `cannot be read (${describeCause(e)})`, 'fix its permissions');
    }
    return names
      .filter((n) => /^[0-9A-F]{40,64}\.asc$/.test(n))
      .map((n) => n.slice(0, -4))
      .sort();
  }

  /** Merge keys and revocation certificates into the keyring (takes the lock). */
  async import(data: Pick<KeyData, 'certs' | 'bare'>): Promise<ImportResult> {
    return this.store.locked(async () => {
      const keys: ImportedKey[] = [];
      for (const c of data.certs) keys.push(await this.mergeLocked(c));
      const revocations: ImportedRevocation[] = [];
      for (const s of data.bare) revocations.push(await this.storeRevocationLocked(s));
      return { keys, revocations };
    });
  }

  /**
   * Merge a copy of a key into the keyring; the store's lock must be held.
   * Nothing is dropped: "unchanged" means the copy brought no new packet.
   */
  async mergeLocked(copy: Cert): Promise<ImportedKey> {
    const fpr = copy.info.fingerprint;
    const before = await this.stored(fpr);
    const { cert, added } = before ? mergeCert(before, { ...copy, hadSecret: false }) : { cert: copy, added: 1 };
    if (!before || added > 0) {
      makeDirs(this.keyDir, 0o700);
      this.store.assertLockHeld();
      writeKeyFile(this.keyFile(fpr), armored({ ...cert, hadSecret: false }));
    }
    const rev = keyRevocation(await verifiedRevocations((await this.cert(fpr)) ?? cert, (f) => this.cert(f)));
    return {
      fingerprint: fpr,
      userIds: cert.users.map(userIdText).filter((u): u is string => u !== null),
      status: !before ? 'new' : added > 0 ? 'updated' : 'unchanged',
      added: before ? added : 0,
      secretIgnored: copy.hadSecret,
      revoked: rev ? describeRevocation(rev) : null,
    };
  }

  /** The same for a key as the checks hold it (trust on first use records the signers' keys). */
  async mergeKeyLocked(key: PublicKey): Promise<ImportedKey> {
    return this.mergeLocked((await handleOf(key)).cert);
  }

  private async storeRevocationLocked(s: Sig): Promise<ImportedRevocation> {
    const issuer = s.info.hashedIssuerFingerprint ?? s.info.issuerFingerprints[0] ?? s.info.issuerKeyIds[0] ?? 'unknown';
    const name = `${issuer}-${createHash('sha256').update(s.info.identity).digest('hex').slice(0, 16)}.asc`;
    const file = path.join(this.revocationDir, name);
    if (!fs.existsSync(file)) {
      makeDirs(this.revocationDir, 0o700);
      this.store.assertLockHeld();
      writeKeyFile(file, armorPublicKey(writePackets([s.packet])), { secret: true });
    }
    return { issuer, kind: KIND.get(s.info.type) ?? 'key', ...(await this.whereItApplies(s)) };
  }

  /** What a stored revocation revokes in the keyring now. */
  private async whereItApplies(s: Sig): Promise<{ applied: boolean; target?: string; note?: string }> {
    for (const fpr of this.fingerprints()) {
      const c = await this.cert(fpr);
      if (!c) continue;
      if (s.info.type === SIGTYPE.certRevocation) {
        const hit = await this.revokedCertification(c, s);
        if (hit) return { applied: true, target: `${fpr} (user ID ${JSON.stringify(hit)})` };
        continue;
      }
      const revs = await verifiedRevocations(c, (f) => this.cert(f));
      const mine = revs.find(
        (r) => r.created?.getTime() === s.info.created?.getTime() && (r.issuer === s.info.hashedIssuerFingerprint || !s.info.hashedIssuerFingerprint),
      );
      if (mine) return { applied: true, target: mine.target === 'key' ? fpr : `${fpr} (subkey ${mine.target})` };
    }
    const note =
      s.info.type === SIGTYPE.keyRevocation
        ? 'it revokes no key in the keyring (yet): it applies when its key arrives, if it was made by that key or by a designated revoker the key names'
        : 'it revokes nothing in the keyring (yet): it applies when the key it concerns arrives';
    return { applied: false, note };
  }

  private async revokedCertification(c: Cert, s: Sig): Promise<string | null> {
    const issuerFpr = s.info.hashedIssuerFingerprint ?? s.info.issuerFingerprints[0];
    const issuer = issuerFpr ? await this.stored(issuerFpr) : null;
    if (!issuer) return null;
    for (const u of c.users) {
      if (await verifiesCryptographically(s.packet.body, issuer.primary.body, SIGTYPE.certRevocation, { key: c.primary.body, userId: u.packet.body })) {
        return userIdText(u) ?? '(user attribute)';
      }
    }
    return null;
  }

  remove(fpr: string): boolean {
    const f = this.keyFile(fpr);
    if (!fs.existsSync(f)) return false;
    fs.rmSync(f);
    return true;
  }
}
