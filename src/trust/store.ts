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
import { BoxsigError } from '../errors.js';
import { isPlainObject } from '../manifest/json.js';
import { FileLock, writeFileAtomic } from './lock.js';
import { Keyring } from './keyring.js';

export { Keyring, type ImportedKey, type ImportResult } from './keyring.js';

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
