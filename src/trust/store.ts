/**
 * The trust store, in `$BOXSIG_HOME` (default: the user config directory,
 * `~/.config/boxsig` on Linux):
 *
 *   trust.json   pins, TOFU records (name -> fingerprints, first seen, source),
 *                the highest accepted version per name
 *   keyring/     imported public keys, one `<FPR>.asc` each
 *   revocations/ imported revocation certificates
 *   trust.lock   held while any of the above is being changed
 *
 * Every change happens under the lock and is written atomically (temporary
 * file + fsync + rename), so concurrent boxsig processes never lose a record
 * and a kill at any instant leaves every file whole.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';
import { BoxsigError } from '../errors.js';
import { isPlainObject } from '../manifest/json.js';
import { applyRevocations, fingerprintOf, publicArmored, readKeyMaterial, revocationIssuer, type Key, type KeyMaterial } from '../keys/keys.js';
import { FileLock, writeFileAtomic } from './lock.js';

export const TRUST_FORMAT = 1;

export interface HistoryEvent {
  time: string;
  event: 'first-use' | 'rotation' | 'accepted-key' | 'pinned' | 'version';
  keys?: string[];
  version?: string;
  source?: string;
  note?: string;
}

export interface TrustRecord {
  /** Keys trusted on first use (or accepted since) for this box name. */
  keys: string[];
  firstSeen: string;
  updated: string;
  source?: string;
  /** Highest version accepted for this name (rollback protection). */
  highestVersion?: string;
  history: HistoryEvent[];
}

export interface TrustState {
  format: typeof TRUST_FORMAT;
  /** glob -> pinned fingerprints (`boxsig trust pin`) */
  pins: Record<string, string[]>;
  boxes: Record<string, TrustRecord>;
}

export function defaultHome(): string {
  if (process.env.BOXSIG_HOME) return path.resolve(process.env.BOXSIG_HOME);
  const home = os.homedir();
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Preferences', 'boxsig');
  if (process.platform === 'win32') return path.join(process.env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'boxsig', 'Config');
  return path.join(process.env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'boxsig');
}

function emptyState(): TrustState {
  return { format: TRUST_FORMAT, pins: {}, boxes: {} };
}

export class TrustStore {
  readonly home: string;
  readonly file: string;
  readonly keyring: Keyring;
  private readonly lock: FileLock;

  constructor(home = defaultHome()) {
    this.home = home;
    this.file = path.join(home, 'trust.json');
    this.lock = new FileLock(path.join(home, 'trust.lock'));
    this.keyring = new Keyring(this);
  }

  ensureHome(): void {
    fs.mkdirSync(this.home, { recursive: true, mode: 0o700 });
  }

  /** Read the current state (no lock needed: the file is only ever replaced whole). */
  read(): TrustState {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw new BoxsigError('IO', `cannot read the trust store ${this.file}: ${(e as Error).message}`);
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new BoxsigError('CONFIG', `${this.file}: not valid JSON (${(e as Error).message}); restore it or remove it to start over`, { file: this.file });
    }
    if (!isPlainObject(v) || v.format !== TRUST_FORMAT || !isPlainObject(v.boxes) || !isPlainObject(v.pins)) {
      throw new BoxsigError('CONFIG', `${this.file}: not a boxsig trust store (format ${TRUST_FORMAT})`, { file: this.file });
    }
    return v as unknown as TrustState;
  }

  /**
   * Run `fn` on the current state under the lock and write what it returns
   * (or the mutated state). Retries if the lock was lost to a stale-lock breaker.
   */
  async update<T>(fn: (state: TrustState) => T | Promise<T>, hooks: { afterWrite?: () => Promise<void> } = {}): Promise<T> {
    this.ensureHome();
    for (let attempt = 0; ; attempt++) {
      await this.lock.acquire();
      try {
        const state = this.read();
        const before = JSON.stringify(state);
        const result = await fn(state);
        const changed = JSON.stringify(state) !== before;
        if (changed) {
          this.lock.assertHeld();
          writeFileAtomic(this.file, JSON.stringify(state, null, 2) + '\n', 0o600);
        }
        if (hooks.afterWrite) {
          try {
            await hooks.afterWrite();
          } catch (e) {
            // the action the record describes did not happen: put the record back
            if (changed) writeFileAtomic(this.file, JSON.stringify(JSON.parse(before), null, 2) + '\n', 0o600);
            throw e;
          }
        }
        return result;
      } catch (e) {
        if (e instanceof BoxsigError && e.details.retry && attempt < 5) continue;
        throw e;
      } finally {
        this.lock.release();
      }
    }
  }

  /** Run `fn` under the lock without touching trust.json (keyring changes). */
  async locked<T>(fn: () => T | Promise<T>): Promise<T> {
    this.ensureHome();
    await this.lock.acquire();
    try {
      return await fn();
    } finally {
      this.lock.release();
    }
  }

  assertLockHeld(): void {
    this.lock.assertHeld();
  }
}

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
