/**
 * The transparency log's entries: version 1, one RFC 8785 canonical JSON
 * object per leaf (the leaf's data is exactly its UTF-8 bytes), so that one
 * event has exactly one encoding. Kinds:
 *
 * - `publication`: a provider became downloadable (released version,
 *   uploaded box): org, box (ORG/NAME), version, provider, architecture,
 *   sha256 and size of the box file, manifest_sha256 (null: unsigned box),
 *   signers (the trusted signers' primary fingerprints, sorted), time.
 * - `withdrawal`: an org admin deleted a released version: org, box, version,
 *   time (its number is never used again; the catalog no longer lists it).
 * - `key`: a key event (registration, certification, revocation, escrow
 *   creation, conversion, export): action (`key.…` or `escrow.…`), org,
 *   target, fingerprints (every fingerprint the event names, sorted),
 *   details (the event's own record), time.
 *
 * Pure code: the registry encodes, clients (boxsig add, boxsig log monitor)
 * parse what they verified against a checkpoint.
 */
import { refuse } from '../errors.js';
import { canonicalJson, isPlainObject, parseUntrustedJson } from '../shared/json.js';

const ENTRY_VERSION = 1;
/** An entry is small; a bigger one is refused before it is parsed. */
const MAX_ENTRY_BYTES = 64 * 1024;

export interface PublicationEntry {
  v: 1;
  kind: 'publication';
  org: string;
  box: string;
  version: string;
  provider: string;
  architecture: string;
  sha256: string;
  size: number;
  manifest_sha256: string | null;
  signers: string[];
  time: string;
}

export interface WithdrawalEntry {
  v: 1;
  kind: 'withdrawal';
  org: string;
  box: string;
  version: string;
  time: string;
}

export interface KeyEntry {
  v: 1;
  kind: 'key';
  action: string;
  org: string | null;
  target: string;
  fingerprints: string[];
  details: unknown;
  time: string;
}

export type LogEntry = PublicationEntry | WithdrawalEntry | KeyEntry;

/** The leaf data of an entry. */
export function encodeEntry(e: LogEntry): Buffer {
  return Buffer.from(canonicalJson(e), 'utf8');
}

/** The box an entry is about (null: a key event without a box). */
export function entryBox(e: LogEntry): string | null {
  return e.kind === 'key' ? null : e.box;
}

/** Every OpenPGP fingerprint (40 or 64 hex digits) named anywhere in a value, upper-case, sorted, once each. */
export function fingerprintsIn(v: unknown): string[] {
  const found = new Set<string>();
  const walk = (x: unknown, depth: number): void => {
    if (depth > 16) return;
    if (typeof x === 'string') {
      for (const m of x.matchAll(/\b(?:[0-9A-Fa-f]{64}|[0-9A-Fa-f]{40})\b/g)) found.add(m[0].toUpperCase());
    } else if (Array.isArray(x)) for (const y of x) walk(y, depth + 1);
    else if (isPlainObject(x)) for (const y of Object.values(x)) walk(y, depth + 1);
  };
  walk(v, 0);
  return [...found].sort();
}

const str = (v: unknown): v is string => typeof v === 'string';
const hex64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

/**
 * An entry read from the log. It must be canonical (re-encoding gives the
 * same bytes) and of a known form; anything else is MALFORMED.
 */
export function parseEntry(data: Uint8Array, what: string): LogEntry {
  if (data.length > MAX_ENTRY_BYTES) throw refuse('MALFORMED', `${what} is larger than ${MAX_ENTRY_BYTES} bytes`);
  const v = parseUntrustedJson(data, what, MAX_ENTRY_BYTES);
  const bad = (why: string) => refuse('MALFORMED', `${what}: ${why}`);
  if (!isPlainObject(v) || v.v !== ENTRY_VERSION) throw bad(`not a version ${ENTRY_VERSION} log entry`);
  if (canonicalJson(v) !== Buffer.from(data).toString('utf8')) throw bad('not in canonical form');
  if (!str(v.time)) throw bad('no time');
  switch (v.kind) {
    case 'publication':
      if (![v.org, v.box, v.version, v.provider, v.architecture].every(str)) throw bad('a publication names org, box, version, provider and architecture');
      if (!hex64(v.sha256) || !(v.manifest_sha256 === null || hex64(v.manifest_sha256))) throw bad('a publication has SHA-256 hashes in hex');
      if (!Number.isSafeInteger(v.size) || !Array.isArray(v.signers) || !v.signers.every(str)) throw bad('a publication has a size and a list of signers');
      return v as unknown as PublicationEntry;
    case 'withdrawal':
      if (![v.org, v.box, v.version].every(str)) throw bad('a withdrawal names org, box and version');
      return v as unknown as WithdrawalEntry;
    case 'key':
      if (!str(v.action) || !str(v.target) || !(v.org === null || str(v.org))) throw bad('a key event names its action, org and target');
      if (!Array.isArray(v.fingerprints) || !v.fingerprints.every(str)) throw bad('a key event lists fingerprints');
      return v as unknown as KeyEntry;
    default:
      throw bad(`unknown kind ${JSON.stringify(v.kind)}`);
  }
}
