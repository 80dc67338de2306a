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
import { isPlainObject } from '../shared/json.js';
import { FileLock } from './lock.js';
import { writeFileAtomic, makeDirs } from '../shared/files.js';
import { Keyring } from './keyring.js';

const TRUST_FORMAT = 1;

export interface HistoryEvent {
  time: string;
  event: 'first-use' | 'rotation' | 'accepted-key' | 'forgot-key' | 'pinned' | 'version';
  keys?: string[];
  version?: string;
  source?: string;
  note?: string;
}

/** A key that `boxsig trust accept` replaced: its earlier signatures stay valid, unless it is distrusted. */
export interface RetiredKey {
  key: string;
  /** When it was replaced: signatures it made later do not count. */
  since: string;
  /** The highest version accepted while it was recorded: it cannot have signed a later one before. */
  upTo?: string;
  /** The user said the key is not to be trusted any more: none of its signatures count. */
  distrusted?: true;
}

export interface TrustRecord {
  /** Keys trusted on first use (or accepted since) for this box name. */
  keys: string[];
  firstSeen: string;
  updated: string;
  source?: string;
  /** Highest version accepted for this name (rollback protection). */
  highestVersion?: string;
  /** Keys replaced by `boxsig trust accept`. */
  retired?: RetiredKey[];
  history: HistoryEvent[];
}

/**
 * The state in memory. Names and globs come from boxes, catalogs and users,
 * so they are keys of Maps, never of plain objects (`constructor` and
 * `__proto__` are valid box names); trust.json holds them as JSON objects.
 */
export interface TrustState {
  format: typeof TRUST_FORMAT;
  /** glob -> pinned fingerprints (`boxsig trust pin`) */
  pins: Map<string, string[]>;
  boxes: Map<string, TrustRecord>;
}

export function defaultHome(): string {
  if (process.env.BOXSIG_HOME) return path.resolve(process.env.BOXSIG_HOME);
  const home = os.homedir();
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Preferences', 'boxsig');
  if (process.platform === 'win32') return path.join(process.env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'boxsig', 'Config');
  return path.join(process.env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'boxsig');
}

function emptyState(): TrustState {
  return { format: TRUST_FORMAT, pins: new Map(), boxes: new Map() };
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Why a stored record cannot be used (null: it can). */
function recordProblem(r: unknown): string | null {
  if (!isPlainObject(r)) return 'is not an object';
  if (!isStringList(r.keys)) return '"keys" is not a list of fingerprints';
  if (typeof r.firstSeen !== 'string' || typeof r.updated !== 'string') return '"firstSeen" or "updated" is missing';
  if (!Array.isArray(r.history)) return '"history" is not a list';
  if (r.highestVersion !== undefined && typeof r.highestVersion !== 'string') return '"highestVersion" is not a string';
  if (
    r.retired !== undefined &&
    !(Array.isArray(r.retired) && r.retired.every((x) => isPlainObject(x) && typeof x.key === 'string' && typeof x.since === 'string'))
  ) {
    return '"retired" is not a list of {key, since}';
  }
  return null;
}

/** trust.json's text as the state in memory; anything unusable is a CONFIG error naming the file. */
export function parseState(text: string, file: string): TrustState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new BoxsigError('CONFIG', `${file}: not valid JSON (${(e as Error).message}); restore it or remove it to start over`, { file });
  }
  if (!isPlainObject(v) || v.format !== TRUST_FORMAT || !isPlainObject(v.boxes) || !isPlainObject(v.pins)) {
    throw new BoxsigError('CONFIG', `${file}: not a boxsig trust store (format ${TRUST_FORMAT})`, { file });
  }
  const state = emptyState();
  for (const [glob, fprs] of Object.entries(v.pins)) {
    if (!isStringList(fprs)) throw new BoxsigError('CONFIG', `${file}: pins[${JSON.stringify(glob)}] is not a list of fingerprints`, { file });
    state.pins.set(glob, fprs);
  }
  for (const [name, rec] of Object.entries(v.boxes)) {
    const p = recordProblem(rec);
    if (p) throw new BoxsigError('CONFIG', `${file}: boxes[${JSON.stringify(name)}] ${p}; restore the file or forget the name`, { file });
    state.boxes.set(name, rec as unknown as TrustRecord);
  }
  return state;
}

/** The state as trust.json's text (JSON objects built with Object.fromEntries keep `__proto__` as a plain key). */
export function serializeState(state: TrustState): string {
  const doc = { format: state.format, pins: Object.fromEntries(state.pins), boxes: Object.fromEntries(state.boxes) };
  return JSON.stringify(doc, null, 2) + '\n';
}

/** The last state read, with the bytes it was parsed from. */
interface Snapshot {
  bytes: Buffer | null;
  /** The file's identity when it was read (device, inode, size, times); null: no file. */
  id: string | null;
  state: TrustState;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

const identity = (st: fs.BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

export class TrustStore {
  readonly home: string;
  readonly file: string;
  readonly keyring: Keyring;
  private readonly lock: FileLock;
  private snapshot: Snapshot | null = null;

  constructor(home = defaultHome()) {
    this.home = home;
    this.file = path.join(home, 'trust.json');
    this.lock = new FileLock(path.join(home, 'trust.lock'));
    this.keyring = new Keyring(this);
  }

  ensureHome(): void {
    makeDirs(this.home, 0o700);
  }

  /**
   * The current state (no lock needed: the file is only ever replaced whole).
   * Parsed once per content: while the file is the same (same identity), it
   * is not even read again — `verify --installed` reads it once for all the
   * boxes. Callers other than update() must not change the state.
   */
  read(): TrustState {
    const id = this.currentId();
    if (this.snapshot && id === this.snapshot.id) return this.snapshot.state;
    return this.load().state;
  }

  private currentId(): string | null {
    try {
      return identity(fs.statSync(this.file, { bigint: true }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new BoxsigError('IO', `cannot read the trust store ${this.file}: ${(e as Error).message}`);
    }
  }

  /** Read the bytes (always: under the lock an identity is not proof enough), and parse them only if they changed. */
  private load(): Snapshot {
    const { bytes, id } = this.readBytes();
    if (this.snapshot && sameBytes(this.snapshot.bytes, bytes)) {
      this.snapshot.id = id;
      return this.snapshot;
    }
    this.snapshot = { bytes, id, state: bytes ? parseState(bytes.toString('utf8'), this.file) : emptyState() };
    return this.snapshot;
  }

  private readBytes(): { bytes: Buffer | null; id: string | null } {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: null, id: null };
      throw new BoxsigError('IO', `cannot read the trust store ${this.file}: ${(e as Error).message}`);
    }
    try {
      return { id: identity(fs.fstatSync(fd, { bigint: true })), bytes: fs.readFileSync(fd) };
    } catch (e) {
      throw new BoxsigError('IO', `cannot read the trust store ${this.file}: ${(e as Error).message}`);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Run `fn` on the current state under the lock and write the state it
   * leaves, once, if it changed (serialised once, written atomically). Debris
   * of dead processes is removed first. Retries if the lock was lost to a
   * stale-lock breaker.
   */
  async update<T>(fn: (state: TrustState) => T | Promise<T>, hooks: { afterWrite?: () => Promise<void> } = {}): Promise<T> {
    return this.locked(async () => {
      const before = this.load();
      try {
        const result = await fn(before.state);
        // compared as bytes: decoding a large store into a string again would cost as much as parsing it
        const bytes = Buffer.from(serializeState(before.state));
        const changed = before.bytes === null || !bytes.equals(before.bytes);
        if (changed) this.write(bytes, before.state);
        if (hooks.afterWrite) await this.runAfterWrite(hooks.afterWrite, changed ? before.bytes : undefined);
        return result;
      } catch (e) {
        this.snapshot = null; // fn may have changed the state it was given
        throw e;
      }
    });
  }

  private write(bytes: Buffer, state: TrustState): void {
    this.lock.assertHeld();
    writeFileAtomic(this.file, bytes, 0o600);
    this.snapshot = { bytes, id: this.currentId(), state };
  }

  /** The action the record describes did not happen: put the record back as it was (`previous`: the bytes before). */
  private async runAfterWrite(afterWrite: () => Promise<void>, previous: Buffer | null | undefined): Promise<void> {
    try {
      await afterWrite();
    } catch (e) {
      if (previous !== undefined) {
        if (previous === null) fs.rmSync(this.file, { force: true });
        else writeFileAtomic(this.file, previous, 0o600);
      }
      throw e;
    }
  }

  /**
   * Run `fn` under the lock (every change to trust.json, the keyring and the
   * revocations goes through here), after removing what dead processes left:
   * temporary files and the leftovers of broken locks.
   */
  async locked<T>(fn: () => T | Promise<T>): Promise<T> {
    this.ensureHome();
    for (let attempt = 0; ; attempt++) {
      await this.lock.acquire();
      try {
        this.removeDebris();
        return await fn();
      } catch (e) {
        if (e instanceof BoxsigError && e.details.retry && attempt < 5) continue;
        throw e;
      } finally {
        this.lock.release();
      }
    }
  }
  /**
   * The store's part of the recovery step that runs before every mutating
   * command: break a lock whose owner died and remove the temporary files
   * and set-aside locks of dead processes. Safe without the lock (files of
   * live processes are kept) and idempotent. Returns what was removed.
   */
  recover(): string[] {
    if (!fs.existsSync(this.home)) return [];
    this.lock.breakIfStale();
    return this.removeDebris();
  }

  private removeDebris(): string[] {
    return this.lock.removeDebris([this.home, path.join(this.home, 'keyring'), path.join(this.home, 'revocations')]);
  }

  assertLockHeld(): void {
    this.lock.assertHeld();
  }
}
