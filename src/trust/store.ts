/**
 * The trust store, in `$BOXSIG_HOME` (default: the user config directory,
 * `~/.config/boxsig` on Linux):
 *
 *   trust.json   the format, and the pins (`boxsig trust pin`)
 *   records/     one file per box name: its TOFU record (keys, first seen,
 *                source, the highest accepted version, history)
 *                (src/trust/record-files.ts)
 *   keyring/     imported public keys, one `<FPR>.asc` each
 *   revocations/ imported revocation certificates
 *   trust.lock   held while any of the above is being changed
 *
 * Every change happens under the lock and each file is written atomically
 * (temporary file + fsync + rename), so concurrent boxsig processes never
 * lose a record and a kill at any instant leaves every file whole. A
 * trust.json of format 1 (every record inline) is read as it is and written
 * out as record files by the next change, trust.json last.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BoxsigError } from '../errors.js';
import { isPlainObject } from '../shared/json.js';
import { FileLock } from './lock.js';
import { writeFileAtomic, makeDirs, fsyncDir } from '../shared/files.js';
import { Keyring } from './keyring.js';
import { RecordFiles, recordFileName, recordProblem, type RecordTable, type RecordWrite, type TrustRecord } from './record-files.js';

const TRUST_FORMAT = 2;
/** trust.json with every record inline (boxsig before the record files). */
const INLINE_FORMAT = 1;

/**
 * The state as commands see it. Names and globs come from boxes, catalogs and
 * users, so they are keys of Maps (or of the record table), never of plain
 * objects (`constructor` and `__proto__` are valid box names).
 */
export interface TrustState {
  /** glob -> pinned fingerprints (`boxsig trust pin`) */
  pins: Map<string, string[]>;
  boxes: RecordTable;
}

export function defaultHome(): string {
  if (process.env.BOXSIG_HOME) return path.resolve(process.env.BOXSIG_HOME);
  const home = os.homedir();
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Preferences', 'boxsig');
  if (process.platform === 'win32') return path.join(process.env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'boxsig', 'Config');
  return path.join(process.env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'boxsig');
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** What trust.json holds: the pins, and for format 1 every record. */
export interface TrustFile {
  pins: Map<string, string[]>;
  /** The records of a trust.json of format 1 (null: format 2, the records are files). */
  inline: Map<string, TrustRecord> | null;
}

/** trust.json's text; anything unusable is a CONFIG error naming the file. */
export function parseTrustFile(text: string, file: string): TrustFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new BoxsigError('CONFIG', `${file}: not valid JSON (${(e as Error).message}); restore it or remove it to start over`, { file });
  }
  const inline = isPlainObject(v) && v.format === INLINE_FORMAT;
  if (!isPlainObject(v) || !isPlainObject(v.pins) || (inline ? !isPlainObject(v.boxes) : v.format !== TRUST_FORMAT || 'boxes' in v)) {
    throw new BoxsigError('CONFIG', `${file}: not a boxsig trust store (format ${TRUST_FORMAT}, or ${INLINE_FORMAT} from an earlier boxsig)`, { file });
  }
  const out: TrustFile = { pins: new Map(), inline: inline ? new Map() : null };
  for (const [glob, fprs] of Object.entries(v.pins)) {
    if (!isStringList(fprs)) throw new BoxsigError('CONFIG', `${file}: pins[${JSON.stringify(glob)}] is not a list of fingerprints`, { file });
    out.pins.set(glob, fprs);
  }
  for (const [name, rec] of Object.entries(inline ? (v.boxes as Record<string, unknown>) : {})) {
    const p = recordProblem(rec);
    if (p) throw new BoxsigError('CONFIG', `${file}: boxes[${JSON.stringify(name)}] ${p}; restore the file or forget the name`, { file });
    out.inline!.set(name, rec as unknown as TrustRecord);
  }
  return out;
}

/** trust.json's text (objects built with Object.fromEntries keep `__proto__` as a plain key). */
export function serializeTrustFile(pins: Map<string, string[]>): string {
  return JSON.stringify({ format: TRUST_FORMAT, pins: Object.fromEntries(pins) }, null, 2) + '\n';
}

/** The last state read, with the bytes it was parsed from. */
interface Snapshot extends TrustFile {
  bytes: Buffer | null;
  /** The file's identity when it was read (device, inode, size, times); null: no file. */
  id: string | null;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

const identity = (st: fs.BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

export class TrustStore {
  readonly home: string;
  readonly file: string;
  /** The record files (src/trust/record-files.ts). */
  readonly recordsDir: string;
  readonly keyring: Keyring;
  private readonly lock: FileLock;
  private snapshot: Snapshot | null = null;

  constructor(home = defaultHome()) {
    this.home = home;
    this.file = path.join(home, 'trust.json');
    this.recordsDir = path.join(home, 'records');
    this.lock = new FileLock(path.join(home, 'trust.lock'));
    this.keyring = new Keyring(this);
  }

  ensureHome(): void {
    makeDirs(this.home, 0o700);
  }

  /**
   * The current state (no lock needed: every file is only ever replaced
   * whole). trust.json is parsed once per content: while it is the same file
   * (same identity), it is not even read again. Each record file is read
   * when its name is first asked for, once per state returned. Callers other
   * than update() must not change the state.
   */
  read(): TrustState {
    const id = this.currentId();
    const snap = this.snapshot && id === this.snapshot.id ? this.snapshot : this.load();
    return { pins: snap.pins, boxes: new RecordFiles(this.recordsDir, snap.inline) };
  }

  /** Where the record of a name is kept. */
  recordFile(name: string): string {
    return path.join(this.recordsDir, recordFileName(name));
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
    const parsed = bytes ? parseTrustFile(bytes.toString('utf8'), this.file) : { pins: new Map<string, string[]>(), inline: null };
    this.snapshot = { bytes, id, ...parsed };
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
   * Run `fn` on the current state under the lock and write what it changed,
   * once: the record files of the names it changed, then trust.json if the
   * pins changed (each file atomically). Debris of dead processes is removed
   * first. Retries if the lock was lost to a stale-lock breaker. If
   * `afterWrite` fails, every file written is put back as it was.
   */
  async update<T>(fn: (state: TrustState) => T | Promise<T>, hooks: { afterWrite?: () => Promise<void> } = {}): Promise<T> {
    return this.locked(async () => {
      const before = this.load();
      const boxes = new RecordFiles(this.recordsDir, before.inline);
      try {
        const result = await fn({ pins: before.pins, boxes });
        const records = boxes.changes();
        // compared as bytes; format 1 is always written out (after its records: trust.json is the commit)
        const bytes = Buffer.from(serializeTrustFile(before.pins));
        const pinsChanged = before.bytes === null || before.inline !== null || !bytes.equals(before.bytes);
        this.writeRecords(records);
        if (pinsChanged) this.write(bytes, before.pins);
        if (hooks.afterWrite) {
          // after format 1, putting trust.json back is enough: the record files are ignored again
          const undo = { records: before.inline ? [] : records, trust: pinsChanged ? before.bytes : undefined };
          await this.runAfterWrite(hooks.afterWrite, undo);
        }
        return result;
      } catch (e) {
        this.snapshot = null; // fn may have changed the state it was given
        throw e;
      }
    });
  }

  private writeRecords(records: RecordWrite[]): void {
    if (!records.length) return;
    this.lock.assertHeld();
    makeDirs(this.recordsDir, 0o700);
    for (const [i, w] of records.entries()) {
      // a migration writes every record: still the owner before each, and seen to be at work all along
      if (i > 0) {
        this.lock.assertHeld();
        this.lock.refresh();
      }
      this.writeRecord(w.file, w.bytes);
    }
  }

  /** Temporary files are written in the home, where the recovery step looks (not in records/, which can be large). */
  private writeRecord(file: string, bytes: Buffer | null): void {
    if (bytes) return writeFileAtomic(file, bytes, 0o600, this.home);
    fs.rmSync(file, { force: true });
    fsyncDir(file);
  }

  private write(bytes: Buffer, pins: Map<string, string[]>): void {
    this.lock.assertHeld();
    writeFileAtomic(this.file, bytes, 0o600);
    this.snapshot = { bytes, id: this.currentId(), pins, inline: null };
  }

  /** The action the records describe did not happen: put every file back as it was. */
  private async runAfterWrite(afterWrite: () => Promise<void>, undo: { records: RecordWrite[]; trust: Buffer | null | undefined }): Promise<void> {
    try {
      await afterWrite();
    } catch (e) {
      // a lock lost meanwhile (another host broke it): putting files back could undo what its new owner wrote
      if (!this.lock.held()) throw e;
      if (undo.trust !== undefined) {
        if (undo.trust === null) fs.rmSync(this.file, { force: true });
        else writeFileAtomic(this.file, undo.trust, 0o600);
      }
      for (const w of undo.records) this.writeRecord(w.file, w.previous);
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
