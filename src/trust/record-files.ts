/**
 * The trust records of box names, one file per name in
 * `$BOXSIG_HOME/records/`: `<sha256 of the name>.json` holds the name and its
 * record. An `add` reads and writes the record of its own name only, so its
 * cost does not grow with the number of names recorded (issue 18). The file
 * name is a hash: no name, whatever it holds, reaches a path, and names that
 * differ only in case stay apart on a case-insensitive file system.
 *
 * Files are read when a name is first asked for and kept for the life of the
 * table; a table made under the store's lock reads what is current.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BoxsigError } from '../errors.js';
import { isPlainObject } from '../shared/json.js';

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
 * The records by name, as the record changes (src/trust/records.ts) see them.
 * A Map is one (tests and the registry use Maps); the store's is RecordFiles.
 */
export interface RecordTable {
  get(name: string): TrustRecord | undefined;
  has(name: string): boolean;
  set(name: string, record: TrustRecord): unknown;
  delete(name: string): boolean;
  /** Every record (reads every file: for listings only). */
  [Symbol.iterator](): Iterator<[string, TrustRecord]>;
}

/** One file to write (bytes) or remove (null), and what it held before (null: nothing). */
export interface RecordWrite {
  file: string;
  bytes: Buffer | null;
  previous: Buffer | null;
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Why a stored record cannot be used (null: it can). */
export function recordProblem(r: unknown): string | null {
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

const RECORD_FILE = /^[0-9a-f]{64}\.json$/;

/** The file name of a name's record. */
export function recordFileName(name: string): string {
  return `${createHash('sha256').update(name, 'utf8').digest('hex')}.json`;
}

/** A record file's text. */
export function serializeRecord(name: string, record: TrustRecord): Buffer {
  return Buffer.from(JSON.stringify({ name, record }, null, 2) + '\n');
}

/** A record file's bytes as its name and record; anything unusable is a CONFIG error naming the file. */
export function parseRecord(bytes: Buffer, file: string): { name: string; record: TrustRecord } {
  const damaged = (why: string, guess = true) => {
    // only a name whose record this file is: a guess from a file copied over another would point at the wrong record
    const seen = guess ? nameIn(bytes) : null;
    const name = seen && recordFileName(seen) === path.basename(file) ? seen : null;
    const forget = name ? `boxsig trust forget ${name}` : 'boxsig trust forget NAME';
    return new BoxsigError(
      'CONFIG',
      `${file}${name ? ` (the record of ${name}, it seems)` : ''}: ${why}; restore the file from a backup, or forget the name (${forget}, or delete the file): its next box is then trusted on first use`,
      { file },
    );
  };
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw damaged(`not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(v) || typeof v.name !== 'string') throw damaged('not a boxsig trust record');
  if (recordFileName(v.name) !== path.basename(file)) throw damaged(`holds the record of ${JSON.stringify(v.name)}, whose file has another name`, false);
  const p = recordProblem(v.record);
  if (p) throw damaged(`the record of ${JSON.stringify(v.name)} ${p}`);
  return { name: v.name, record: v.record as unknown as TrustRecord };
}

/** The name a damaged record file seems to hold (its text starts with it), shown only if it looks like a box name. */
function nameIn(bytes: Buffer): string | null {
  const m = /^\{\s*"name":\s*"([A-Za-z0-9._/-]{1,200})"/.exec(bytes.subarray(0, 512).toString('utf8'));
  return m ? m[1] : null;
}

function readOrNull(file: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new BoxsigError('IO', `cannot read the trust record ${file}: ${(e as Error).message}`);
  }
}

const sameBytes = (a: Buffer | null, b: Buffer | null) => (a === null || b === null ? a === b : a.equals(b));

interface Stored {
  file: string;
  bytes: Buffer | null;
}

export class RecordFiles implements RecordTable {
  /** What each file held when read (names never read are absent). */
  private readonly stored = new Map<string, Stored>();
  /** The records as the caller left them (undefined: none). */
  private readonly current = new Map<string, TrustRecord | undefined>();
  /** The files read (or found absent) so far. */
  private readonly files = new Set<string>();

  /**
   * @param legacy the records of a trust.json of format 1 (which held them
   *   all): they are the records, and the files are ignored, until the
   *   store's next change writes them out (`changes()`).
   */
  constructor(
    readonly dir: string,
    private readonly legacy: Map<string, TrustRecord> | null = null,
  ) {}

  get(name: string): TrustRecord | undefined {
    if (!this.current.has(name)) this.current.set(name, this.read(name));
    return this.current.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, record: TrustRecord): this {
    this.get(name);
    this.current.set(name, record);
    return this;
  }

  /** A damaged record can be deleted (that is how a user recovers from it): it was there. */
  delete(name: string): boolean {
    let had: boolean;
    try {
      had = this.has(name);
    } catch (e) {
      if (!(e instanceof BoxsigError && e.code === 'CONFIG' && this.stored.get(name)?.bytes)) throw e;
      had = true;
    }
    this.current.set(name, undefined);
    return had;
  }

  *[Symbol.iterator](): Iterator<[string, TrustRecord]> {
    for (const name of this.names()) {
      const r = this.get(name);
      if (r) yield [name, r];
    }
  }

  /**
   * The files to write or remove for the records as they are now: the
   * records that changed; after a trust.json of format 1, every record, and
   * the removal of any other file (left by a migration that did not finish).
   */
  changes(): RecordWrite[] {
    const out: RecordWrite[] = [];
    if (this.legacy) {
      const keep = new Set<string>();
      for (const [name, record] of this) {
        const file = recordFileName(name);
        keep.add(file);
        out.push({ file: path.join(this.dir, file), bytes: serializeRecord(name, record), previous: null });
      }
      for (const f of this.listFiles()) if (!keep.has(f)) out.push({ file: path.join(this.dir, f), bytes: null, previous: null });
      return out;
    }
    for (const [name, record] of this.current) {
      const was = this.stored.get(name)!;
      const bytes = record ? serializeRecord(name, record) : null;
      if (!sameBytes(bytes, was.bytes)) out.push({ file: was.file, bytes, previous: was.bytes });
    }
    return out;
  }

  private read(name: string): TrustRecord | undefined {
    if (this.legacy) return this.legacy.get(name);
    const file = path.join(this.dir, recordFileName(name));
    const bytes = readOrNull(file);
    this.stored.set(name, { file, bytes });
    this.files.add(file);
    if (!bytes) return undefined;
    const r = parseRecord(bytes, file);
    if (r.name !== name) throw new BoxsigError('CONFIG', `${file}: holds the record of ${JSON.stringify(r.name)}; restore the file, or remove it`, { file });
    return r.record;
  }

  /** Every recorded name (reading the files of names not read yet). */
  private names(): string[] {
    if (this.legacy) return [...new Set([...this.legacy.keys(), ...this.current.keys()])];
    for (const f of this.listFiles()) {
      const file = path.join(this.dir, f);
      if (this.files.has(file)) continue;
      const bytes = readOrNull(file);
      if (!bytes) continue; // removed since the listing
      const r = parseRecord(bytes, file);
      this.stored.set(r.name, { file, bytes });
      this.files.add(file);
      if (!this.current.has(r.name)) this.current.set(r.name, r.record);
    }
    return [...this.current.keys()];
  }

  private listFiles(): string[] {
    try {
      return fs.readdirSync(this.dir).filter((f) => RECORD_FILE.test(f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new BoxsigError('IO', `cannot read the trust records in ${this.dir}: ${(e as Error).message}`);
    }
  }
}
