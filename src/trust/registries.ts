/**
 * What boxsig remembers of each boxsig registry it has read from, in
 * `$BOXSIG_HOME/registries.json`, next to trust.json and under the same lock:
 *
 * - the registry key (its C2SP verifier key), recorded on first use unless
 *   pinned in a config file (`registries`);
 * - the largest log checkpoint verified (size, root, the signed note): every
 *   later checkpoint must be consistent with it (a split view is refused);
 * - per box name: the serial and digest of the newest signed catalog seen
 *   (an older one is a rollback).
 *
 * Servers are keyed by URL origin and box names come from catalogs: both are
 * keys of Maps, never of plain objects. Written atomically under the trust
 * store's lock; a file that cannot be read is a CONFIG error naming it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BoxsigError } from '../errors.js';
import { isPlainObject } from '../shared/json.js';
import { writeFileAtomic } from '../shared/files.js';
import type { TrustStore } from './store.js';

const REGISTRIES_FORMAT = 1;

export interface SeenCheckpoint {
  size: number;
  /** base64, as in checkpoints */
  root: string;
  note: string;
}

export interface SeenCatalog {
  serial: number;
  digest: string;
  expires: string;
}

export interface RegistryRecord {
  /** The registry key (verifier key string). */
  key: string;
  firstSeen: string;
  checkpoint?: SeenCheckpoint;
  catalogs: Map<string, SeenCatalog>;
}

export type RegistriesState = Map<string, RegistryRecord>;

function registriesFile(store: TrustStore): string {
  return path.join(store.home, 'registries.json');
}

const bad = (file: string, what: string) => new BoxsigError('CONFIG', `${file}: ${what}; restore the file, or remove it to forget every registry`, { file });

function parseCheckpoint(v: unknown): SeenCheckpoint | undefined | null {
  if (v === undefined) return undefined;
  if (!isPlainObject(v) || !Number.isSafeInteger(v.size) || typeof v.root !== 'string' || typeof v.note !== 'string') return null;
  return { size: v.size as number, root: v.root, note: v.note };
}

export function parseRegistries(text: string, file: string): RegistriesState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(file, `not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(v) || v.format !== REGISTRIES_FORMAT || !isPlainObject(v.registries))
    throw bad(file, `not a boxsig registries file (format ${REGISTRIES_FORMAT})`);
  const out: RegistriesState = new Map();
  for (const [origin, r] of Object.entries(v.registries)) {
    if (!isPlainObject(r) || typeof r.key !== 'string' || typeof r.firstSeen !== 'string' || !isPlainObject(r.catalogs)) {
      throw bad(file, `registries[${JSON.stringify(origin)}] is not a record`);
    }
    const checkpoint = parseCheckpoint(r.checkpoint);
    if (checkpoint === null) throw bad(file, `registries[${JSON.stringify(origin)}].checkpoint is not a checkpoint`);
    const catalogs = new Map<string, SeenCatalog>();
    for (const [name, c] of Object.entries(r.catalogs)) {
      if (!isPlainObject(c) || !Number.isSafeInteger(c.serial) || typeof c.digest !== 'string' || typeof c.expires !== 'string') {
        throw bad(file, `registries[${JSON.stringify(origin)}].catalogs[${JSON.stringify(name)}] is not a record`);
      }
      catalogs.set(name, { serial: c.serial as number, digest: c.digest, expires: c.expires });
    }
    out.set(origin, { key: r.key, firstSeen: r.firstSeen, ...(checkpoint ? { checkpoint } : {}), catalogs });
  }
  return out;
}

export function serializeRegistries(state: RegistriesState): string {
  const registries = Object.fromEntries(
    [...state].map(([origin, r]) => [
      origin,
      { key: r.key, firstSeen: r.firstSeen, ...(r.checkpoint ? { checkpoint: r.checkpoint } : {}), catalogs: Object.fromEntries(r.catalogs) },
    ]),
  );
  return JSON.stringify({ format: REGISTRIES_FORMAT, registries }, null, 2) + '\n';
}

/** The state as it is now (no lock: the file is only ever replaced whole). */
export function readRegistries(store: TrustStore): RegistriesState {
  const file = registriesFile(store);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new BoxsigError('IO', `cannot read ${file}: ${(e as Error).message}`, { file });
  }
  return parseRegistries(text, file);
}

/**
 * Change the state under the trust store's lock: `fn` sees the state as it
 * is under the lock (it may refuse by throwing: nothing is written), and what
 * it leaves is written atomically if it changed.
 */
export async function updateRegistries<T>(store: TrustStore, fn: (state: RegistriesState) => T | Promise<T>): Promise<T> {
  return store.locked(async () => {
    const file = registriesFile(store);
    const state = readRegistries(store);
    const before = serializeRegistries(state);
    const result = await fn(state);
    const after = serializeRegistries(state);
    if (after !== before) writeFileAtomic(file, after, 0o600);
    return result;
  });
}
