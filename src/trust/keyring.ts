/**
 * The local keyring, in `$BOXSIG_HOME`: imported public keys (`keyring/<FPR>.asc`)
 * and revocation certificates (`revocations/`). Changed only under the trust
 * store's lock, every file written atomically.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';
import { applyRevocations, fingerprintOf, publicArmored, readKeyMaterial, revocationIssuer, type Key, type KeyMaterial } from '../keys/keys.js';
import { writeFileAtomic } from './lock.js';
import type { TrustStore } from './store.js';

export interface ImportedKey {
  fingerprint: string;
  userIds: string[];
  status: 'new' | 'updated' | 'unchanged';
  secretIgnored: boolean;
}

export interface ImportResult {
  keys: ImportedKey[];
  revocations: Array<{ issuer: string; applied: boolean }>;
}

export class Keyring {
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

  /** Stored revocation certificates (armored). */
  revocations(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.revocationDir).filter((n) => n.endsWith('.asc'));
    } catch {
      return [];
    }
    return names.sort().map((n) => fs.readFileSync(path.join(this.revocationDir, n), 'utf8'));
  }

  /** A key from the keyring, with every stored revocation applied; null if absent. */
  async get(fpr: string): Promise<openpgp.PublicKey | null> {
    let data: Buffer;
    try {
      data = fs.readFileSync(this.keyFile(fpr));
    } catch {
      return null;
    }
    const m = await readKeyMaterial(data, this.keyFile(fpr));
    const key = m.keys[0] as openpgp.PublicKey | undefined;
    if (!key) return null;
    return applyRevocations(key, this.revocations());
  }

  has(fpr: string): boolean {
    return fs.existsSync(this.keyFile(fpr));
  }

  fingerprints(): string[] {
    try {
      return fs
        .readdirSync(this.keyDir)
        .filter((n) => /^[0-9A-F]{40,64}\.asc$/.test(n))
        .map((n) => n.slice(0, -4))
        .sort();
    } catch {
      return [];
    }
  }

  /** Merge keys and revocation certificates into the keyring (takes the lock). */
  async import(material: KeyMaterial): Promise<ImportResult> {
    return this.store.locked(async () => {
      fs.mkdirSync(this.keyDir, { recursive: true, mode: 0o700 });
      const result: ImportResult = { keys: [], revocations: [] };
      for (const k of material.keys) {
        result.keys.push(await this.mergeKey(k));
      }
      for (const r of material.revocations) {
        fs.mkdirSync(this.revocationDir, { recursive: true, mode: 0o700 });
        const { keyId, fingerprint } = await revocationIssuer(r);
        const name = `${fingerprint ?? keyId}-${createHash('sha256').update(r).digest('hex').slice(0, 16)}.asc`;
        const file = path.join(this.revocationDir, name);
        if (!fs.existsSync(file)) {
          this.store.assertLockHeld();
          writeFileAtomic(file, r, 0o600);
        }
        // applied now if the key is known; otherwise when it arrives (in a box or by import)
        let applied = false;
        for (const fpr of this.fingerprints()) {
          if (fpr === fingerprint || fpr.endsWith(keyId)) {
            const key = await this.get(fpr);
            if (key && (await key.isRevoked())) applied = true;
          }
        }
        result.revocations.push({ issuer: fingerprint ?? keyId, applied });
      }
      return result;
    });
  }

  private async mergeKey(k: Key): Promise<ImportedKey> {
    const fpr = fingerprintOf(k);
    const pub = (k.isPrivate() ? k.toPublic() : k) as openpgp.PublicKey;
    const file = this.keyFile(fpr);
    let status: ImportedKey['status'] = 'new';
    let merged = pub;
    if (fs.existsSync(file)) {
      const m = await readKeyMaterial(fs.readFileSync(file), file);
      const existing = m.keys[0] as openpgp.PublicKey;
      merged = (await existing.update(pub)) as openpgp.PublicKey;
      const before = publicArmored(existing);
      status = publicArmored(merged) === before ? 'unchanged' : 'updated';
    }
    if (status !== 'unchanged') {
      this.store.assertLockHeld();
      writeFileAtomic(file, publicArmored(merged), 0o644);
    }
    return { fingerprint: fpr, userIds: merged.getUserIDs(), status, secretIgnored: k.isPrivate() };
  }

  remove(fpr: string): boolean {
    const f = this.keyFile(fpr);
    if (!fs.existsSync(f)) return false;
    fs.rmSync(f);
    return true;
  }
}
