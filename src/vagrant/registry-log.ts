/**
 * The client side of a boxsig registry's signed catalogs and transparency
 * log: what `boxsig add ORG/NAME`, `boxsig publish` and `boxsig log monitor`
 * check, trusting the server for nothing but its registry key.
 *
 * - The registry key: pinned per server in a config file (`registries`), else
 *   recorded on first use (said loudly) in $BOXSIG_HOME/registries.json; a
 *   different key later is KEY_CHANGED.
 * - Every checkpoint must be consistent with the largest one seen before
 *   (a consistency proof from the server, verified here): else SPLIT_VIEW.
 * - A catalog's statement: signed by the key, not expired (STALE_CATALOG), not
 *   older than the one seen for the box (ROLLBACK; the same serial with other
 *   entries: SPLIT_VIEW), and its digest must be the catalog's own entries
 *   (MIXED_CATALOG). The entry chosen must be in the log (inclusion proof in
 *   the statement's checkpoint), as a publication of exactly that box.
 *
 * What was verified is recorded under the trust store's lock, checked again
 * against what other processes recorded meanwhile.
 */
import { BoxsigError, refuse } from '../errors.js';
import { isPlainObject, parseUntrustedJson } from '../shared/json.js';
import { registryOrigin, type ConfigLayer } from '../policy/config.js';
import { readRegistries, updateRegistries, type RegistryRecord, type SeenCheckpoint } from '../trust/registries.js';
import type { TrustStore } from '../trust/store.js';
import { CompactRange, leafHash, verifyConsistency, verifyInclusion } from '../tlog/merkle.js';
import { MAX_NOTE_BYTES, openCheckpoint, parseVerifierKey, type Checkpoint, type NoteVerifier } from '../tlog/note.js';
import { entriesDigest, openStatement, type CatalogStatement, type StatementEntry } from '../tlog/statement.js';
import { parseEntry, type LogEntry, type PublicationEntry } from '../tlog/entry.js';
import { httpRequest, readLimited, type HttpOptions } from './http.js';
import { escapeLine } from '../shared/terminal.js';

export interface RegistryContext {
  /** The registry's URL origin (scheme://host[:port]). */
  origin: string;
  http: HttpOptions;
  store: TrustStore;
  layers: ConfigLayer[];
  now: Date;
  onInfo?: (line: string) => void;
}

const MAX_PROOF_BYTES = 64 * 1024;
const MAX_PAGE_BYTES = 128 * 1024 * 1024;

// ---- talking to the registry ----

async function fetchText(ctx: RegistryContext, path: string, limit: number): Promise<string> {
  const r = await httpRequest(`${ctx.origin}${path}`, { ...ctx.http });
  return (await readLimited(r.body, limit, `${ctx.origin}${path}`)).toString('utf8');
}

async function fetchJson(ctx: RegistryContext, path: string, limit = MAX_PROOF_BYTES): Promise<Record<string, unknown>> {
  const text = await fetchText(ctx, path, limit);
  const v = parseUntrustedJson(text, `the answer of ${ctx.origin}${path}`, limit);
  if (!isPlainObject(v)) throw refuse('MALFORMED', `the answer of ${ctx.origin}${path} is not a JSON object`);
  return v;
}

function hashList(v: unknown, what: string): Buffer[] {
  if (!Array.isArray(v) || v.length > 128 || !v.every((h) => typeof h === 'string')) throw refuse('MALFORMED', `${what} is not a list of hashes`);
  return v.map((h) => Buffer.from(h as string, 'base64'));
}

// ---- the registry key ----

/** The keys config files pin for this server (each must be met: pins narrow). */
function pinnedKeys(layers: ConfigLayer[], origin: string): Array<{ key: string; source: string }> {
  return layers.flatMap((l) => {
    const k = l.doc.registries?.get(origin);
    return k ? [{ key: k, source: l.source }] : [];
  });
}

const short = (k: string) => escapeLine(k.length > 80 ? `${k.slice(0, 77)}…` : k);

/**
 * The verifier for the registry: the pinned key, else the recorded one,
 * else (first use) the key the server offers. `offered`: the key the
 * server presents, if any.
 */
function registryVerifier(ctx: RegistryContext, offered: string | null): { verifier: NoteVerifier; firstUse: boolean } {
  const pins = pinnedKeys(ctx.layers, ctx.origin);
  for (const p of pins.slice(1)) {
    if (p.key !== pins[0].key) {
      throw new BoxsigError('CONFIG', `${p.source} and ${pins[0].source} pin different keys for the registry ${ctx.origin}; keep one`);
    }
  }
  const known = readRegistries(ctx.store).get(ctx.origin);
  const expected = pins[0]?.key ?? known?.key;
  if (expected) {
    if (offered !== null && offered !== expected) throw keyChanged(ctx, expected, offered, pins[0]?.source ?? null, known);
    return { verifier: parseVerifierKey(expected)!, firstUse: false };
  }
  const v = offered === null ? null : parseVerifierKey(offered);
  if (!v) throw refuse('MALFORMED', `the registry ${ctx.origin} presents no valid registry key`);
  return { verifier: v, firstUse: true };
}

function keyChanged(ctx: RegistryContext, expected: string, offered: string, pinnedIn: string | null, known: RegistryRecord | undefined): BoxsigError {
  const where = pinnedIn ? `pinned in ${pinnedIn}` : `recorded on first use ${known?.firstSeen ?? ''} in ${ctx.store.home}/registries.json`;
  return refuse(
    'KEY_CHANGED',
    [
      `the registry ${ctx.origin} presents the key ${short(offered)}, but its key is ${short(expected)} (${where}).`,
      'Someone may be impersonating the registry, or serving a copy of it. If its operator really changed the key, check the new one with them',
      pinnedIn ? `and pin it in ${pinnedIn} ("registries").` : `and forget the old one: boxsig log forget ${ctx.origin}`,
    ].join('\n'),
    { expected, offered },
  );
}

// ---- checkpoints ----

/** Is `cp` consistent with what was seen before (`seen`)? Refuses a split view. */
async function checkConsistent(ctx: RegistryContext, seen: SeenCheckpoint | undefined, cp: Checkpoint): Promise<void> {
  if (!seen) return;
  const seenRoot = Buffer.from(seen.root, 'base64');
  const splitView = (why: string) =>
    refuse(
      'SPLIT_VIEW',
      `the registry ${ctx.origin} shows a log that is not an extension of the one it showed before (${why}): it serves different histories to different readers, or its log was rewritten. Keep the evidence: the checkpoint seen before is in ${ctx.store.home}/registries.json`,
      { seen: seen.size, now: cp.size },
    );
  if (seen.size === cp.size) {
    if (!seenRoot.equals(cp.root)) throw splitView(`two different trees of ${cp.size} entries`);
    return;
  }
  const [a, b] = seen.size < cp.size ? [{ size: seen.size, root: seenRoot }, cp] : [cp, { size: seen.size, root: seenRoot }];
  const r = await fetchJson(ctx, `/boxsig/v1/log/consistency?from=${a.size}&to=${b.size}`);
  const proof = hashList(r.proof, 'the consistency proof');
  if (!verifyConsistency(a.size, b.size, proof, a.root, b.root))
    throw splitView(`no valid proof that the tree of ${a.size} entries is a prefix of the tree of ${b.size}`);
}

/** Record a verified checkpoint (and the key on first use), under the lock, checked again against what is there now. */
async function recordSeen(
  ctx: RegistryContext,
  verifier: NoteVerifier,
  cp: Checkpoint,
  catalog?: { name: string; statement: CatalogStatement },
): Promise<void> {
  // another process may record a checkpoint between our check and the lock: check again (rarely more than once)
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = readRegistries(ctx.store).get(ctx.origin)?.checkpoint;
    await checkConsistent(ctx, before, cp);
    const done = await updateRegistries(ctx.store, (state) => {
      const rec: RegistryRecord = state.get(ctx.origin) ?? { key: verifier.verifierKey, firstSeen: ctx.now.toISOString(), catalogs: new Map() };
      if (rec.key !== verifier.verifierKey && !pinnedKeys(ctx.layers, ctx.origin).length) throw keyChanged(ctx, rec.key, verifier.verifierKey, null, rec);
      if ((rec.checkpoint?.note ?? null) !== (before?.note ?? null)) return false;
      if (catalog) checkCatalogRecord(ctx, rec, catalog.name, catalog.statement);
      if (!rec.checkpoint || cp.size > rec.checkpoint.size) rec.checkpoint = { size: cp.size, root: cp.root.toString('base64'), note: cp.note! };
      if (catalog) rec.catalogs.set(catalog.name, { serial: catalog.statement.serial, digest: catalog.statement.digest, expires: catalog.statement.expires });
      rec.key = verifier.verifierKey;
      state.set(ctx.origin, rec);
      return true;
    });
    if (done) return;
  }
  throw new BoxsigError('IO', `the record of the registry ${ctx.origin} keeps changing under this process; try again`);
}

/** The statement against the newest one seen for the box: never older, never another content under the same serial. */
function checkCatalogRecord(ctx: RegistryContext, rec: RegistryRecord | undefined, name: string, st: CatalogStatement): void {
  const seen = rec?.catalogs.get(name);
  if (!seen) return;
  if (st.serial < seen.serial) {
    throw refuse(
      'ROLLBACK',
      `the catalog of ${name} from ${ctx.origin} is older (serial ${st.serial}) than one already seen (serial ${seen.serial}): a mirror, cache or attacker replays an earlier catalog, which can hide newer versions (security fixes). Try again later or from the registry itself`,
      { serial: st.serial, seen: seen.serial },
    );
  }
  if (st.serial === seen.serial && st.digest !== seen.digest) {
    throw refuse(
      'SPLIT_VIEW',
      `the registry ${ctx.origin} signed two different catalogs of ${name} under serial ${st.serial}: it shows different readers different boxes`,
      { serial: st.serial },
    );
  }
}

// ---- signed catalogs ----

interface RawProvider {
  name: string;
  architecture?: string;
  checksum_type?: string;
  checksum?: string;
  log_index?: number;
}

/** The catalog's provider entries as the statement's digest covers them. */
function statementEntries(raw: Record<string, unknown>, what: string): Array<StatementEntry & { raw: RawProvider }> {
  const out: Array<StatementEntry & { raw: RawProvider }> = [];
  for (const v of Array.isArray(raw.versions) ? raw.versions : []) {
    if (!isPlainObject(v)) continue;
    for (const p of Array.isArray(v.providers) ? v.providers : []) {
      if (!isPlainObject(p)) continue;
      const li = p.log_index;
      if (li !== undefined && !(Number.isSafeInteger(li) && (li as number) >= 0)) throw refuse('MALFORMED', `${what}: a log_index is not a number`);
      out.push({
        version: String(v.version),
        provider: String(p.name),
        ...(typeof p.architecture === 'string' ? { architecture: p.architecture } : {}),
        checksumType: typeof p.checksum_type === 'string' ? p.checksum_type.toLowerCase() : 'sha256',
        checksum: typeof p.checksum === 'string' ? p.checksum.trim().toLowerCase() : '',
        logIndex: li === undefined ? null : (li as number),
        raw: p as unknown as RawProvider,
      });
    }
  }
  return out;
}

export interface CatalogPick {
  name: string;
  version: string;
  provider: string;
  architecture?: string;
  checksum?: string;
}

class SignedCatalog {
  constructor(
    private readonly ctx: RegistryContext,
    readonly verifier: NoteVerifier,
    readonly statement: CatalogStatement,
    readonly checkpoint: Checkpoint,
    private readonly entries: Array<StatementEntry & { raw: RawProvider }>,
    readonly firstUse: boolean,
  ) {}

  /**
   * The entry `add` chose must be in the log as a publication of exactly
   * that box (inclusion proof in the statement's checkpoint); then what was
   * verified is recorded.
   */
  async verifyChoice(pick: CatalogPick): Promise<{ index: number; entry: PublicationEntry }> {
    const e = this.entries.find(
      (x) => x.version === pick.version && x.provider === pick.provider && x.architecture === pick.architecture && (x.checksum || undefined) === pick.checksum,
    );
    const notLogged = (why: string) =>
      refuse(
        'SPLIT_VIEW',
        `${pick.name} ${pick.version} (${pick.provider}) from ${this.ctx.origin} is not in the registry's public log: ${why}. Nobody watching the log can have seen it`,
      );
    if (!e || e.logIndex === null) throw notLogged('the catalog names no log entry for it');
    const index = e.logIndex;
    if (index >= this.checkpoint.size) throw notLogged(`its log entry ${index} is beyond the checkpoint (${this.checkpoint.size} entries)`);
    const r = await fetchJson(this.ctx, `/boxsig/v1/log/inclusion?index=${index}&size=${this.checkpoint.size}`);
    if (typeof r.data !== 'string') throw refuse('MALFORMED', `the registry gave no log entry ${index}`);
    const data = Buffer.from(r.data, 'utf8');
    if (!verifyInclusion(index, this.checkpoint.size, leafHash(data), hashList(r.proof, 'the inclusion proof'), this.checkpoint.root)) {
      throw notLogged(`the registry gave no valid proof that entry ${index} is in its signed log`);
    }
    const entry = parseEntry(data, `log entry ${index}`);
    const same =
      entry.kind === 'publication' &&
      entry.box === pick.name &&
      entry.version === pick.version &&
      entry.provider === pick.provider &&
      (pick.architecture === undefined || entry.architecture === pick.architecture) &&
      (e.checksumType !== 'sha256' || entry.sha256 === e.checksum);
    if (!same) throw notLogged(`log entry ${index} records something else (${describeEntry(entry)})`);
    await recordSeen(this.ctx, this.verifier, this.checkpoint, { name: pick.name, statement: this.statement });
    if (this.firstUse) {
      this.ctx.onInfo?.(
        `FIRST USE of the registry ${this.ctx.origin}: its key ${short(this.verifier.verifierKey)} is recorded; pin it in boxsig.json ("registries") to make first use safe too`,
      );
    }
    return { index, entry: entry as PublicationEntry };
  }
}

/**
 * A catalog read from `url`: if it comes from a boxsig registry (it carries a
 * `boxsig` statement, or the server is pinned or known), check its statement
 * and checkpoint; null for a plain catalog from any other server.
 */
export async function checkSignedCatalog(
  url: string,
  bytes: Uint8Array,
  catalogName: string,
  opts: Omit<RegistryContext, 'origin'>,
): Promise<SignedCatalog | null> {
  const origin = registryOrigin(url);
  if (!origin) return null;
  const ctx: RegistryContext = { ...opts, origin };
  const raw = parseUntrustedJson(bytes, `catalog ${url}`, bytes.length + 1) as Record<string, unknown>;
  const section = raw.boxsig;
  const known = readRegistries(ctx.store).get(origin);
  const pinned = pinnedKeys(ctx.layers, origin).length > 0;
  if (section === undefined) {
    if (!known && !pinned) return null;
    throw refuse(
      'UNSIGNED',
      `the catalog of ${catalogName} from ${origin} carries no signed statement, but that server is a boxsig registry (its key is ${pinned ? 'pinned' : 'recorded'}): a mirror, proxy or attacker removed it, or serves a plain copy`,
    );
  }
  if (!isPlainObject(section) || typeof section.statement !== 'string' || typeof section.checkpoint !== 'string') {
    throw refuse('MALFORMED', `catalog ${url}: "boxsig" must hold a statement and a checkpoint`);
  }
  if (section.statement.length > MAX_NOTE_BYTES || section.checkpoint.length > MAX_NOTE_BYTES)
    throw refuse('MALFORMED', `catalog ${url}: its notes are too large`);
  const { verifier, firstUse } = registryVerifier(ctx, typeof section.key === 'string' ? section.key : null);
  const st = openStatement(section.statement, verifier, `the catalog statement of ${catalogName}`);
  const cp = openCheckpoint(section.checkpoint, verifier, `the checkpoint in the catalog of ${catalogName}`);
  if (st.box !== catalogName) {
    throw refuse('MIXED_CATALOG', `the catalog of ${catalogName} from ${origin} comes with the signed statement of another box (${escapeLine(st.box)})`);
  }
  if (Date.parse(st.expires) <= ctx.now.getTime()) {
    throw refuse(
      'STALE_CATALOG',
      `the catalog of ${catalogName} from ${origin} expired at ${st.expires}: the registry renews it, so this is a frozen copy (a mirror or cache that stopped updating, or an attacker holding back newer versions). Try again later or from the registry itself`,
      { expires: st.expires },
    );
  }
  if (cp.size !== st.logSize)
    throw refuse('MIXED_CATALOG', `the catalog of ${catalogName} names log size ${st.logSize} but comes with a checkpoint of ${cp.size}`);
  const entries = statementEntries(raw, `catalog ${url}`);
  if (entriesDigest(entries) !== st.digest) {
    throw refuse(
      'MIXED_CATALOG',
      `the catalog of ${catalogName} from ${origin} does not list the entries the registry signed together (digest mismatch): versions were added, removed or changed on the way, or taken from different snapshots`,
    );
  }
  checkCatalogRecord(ctx, known, catalogName, st);
  await checkConsistent(ctx, known?.checkpoint, cp);
  return new SignedCatalog(ctx, verifier, st, cp, entries, firstUse);
}

/**
 * `boxsig add ORG/NAME` from a server known (or pinned) as a boxsig registry
 * must get a signed catalog: anything else would skip every check above.
 */
export function refuseUnlessPlainServer(url: string, name: string, opts: Omit<RegistryContext, 'origin'>): void {
  const origin = registryOrigin(url);
  if (!origin) return;
  if (!readRegistries(opts.store).has(origin) && !pinnedKeys(opts.layers, origin).length) return;
  throw refuse(
    'UNSIGNED',
    `${origin} is a boxsig registry, but it answered ${name} with something other than a signed catalog: a mirror, proxy or attacker stands in for it`,
  );
}

function describeEntry(e: LogEntry): string {
  if (e.kind === 'publication') return escapeLine(`${e.box} ${e.version} ${e.provider} ${e.architecture} ${e.sha256.slice(0, 12)}…`);
  if (e.kind === 'withdrawal') return escapeLine(`withdrawal of ${e.box} ${e.version}`);
  return escapeLine(`key event ${e.action}`);
}

// ---- publish: the answer's proofs ----

export interface PublishedLogEntry {
  index: number;
  size: number;
}

/**
 * `boxsig publish`: the registry's answer carries the log entries of what it
 * published and inclusion proofs in a checkpoint. Each must verify, and
 * record exactly the box sent.
 */
export async function verifyPublishProofs(
  ctx: RegistryContext,
  log: unknown,
  expect: { name: string; version: string; provider: string; sha256: string },
): Promise<PublishedLogEntry> {
  const missing = (why: string) => refuse('SPLIT_VIEW', `the registry ${ctx.origin} published ${expect.name} ${expect.version} but ${why}`);
  if (!isPlainObject(log) || typeof log.checkpoint !== 'string' || !Array.isArray(log.entries)) throw missing('gave no proof that it is in its public log');
  const key = await fetchJson(ctx, '/boxsig/v1/log/key');
  const { verifier, firstUse } = registryVerifier(ctx, typeof key.verifierKey === 'string' ? key.verifierKey : null);
  const cp = openCheckpoint(log.checkpoint, verifier, 'the checkpoint of the publish answer');
  for (const e of log.entries) {
    if (!isPlainObject(e) || typeof e.data !== 'string' || !Number.isSafeInteger(e.index)) continue;
    const data = Buffer.from(e.data, 'utf8');
    const entry = parseEntry(data, `log entry ${e.index}`);
    if (
      entry.kind !== 'publication' ||
      entry.box !== expect.name ||
      entry.version !== expect.version ||
      entry.provider !== expect.provider ||
      entry.sha256 !== expect.sha256
    )
      continue;
    if (!verifyInclusion(e.index as number, cp.size, leafHash(data), hashList(e.proof, 'the inclusion proof'), cp.root))
      throw missing(`its proof for log entry ${e.index} does not verify`);
    await recordSeen(ctx, verifier, cp);
    if (firstUse) ctx.onInfo?.(`first use of the registry ${ctx.origin}: its key ${short(verifier.verifierKey)} is recorded`);
    return { index: e.index as number, size: cp.size };
  }
  throw missing('its public log has no entry for exactly the box sent');
}

// ---- monitoring ----

export interface MonitorResult {
  ok: true;
  registry: string;
  /** The checkpoint everything was verified against. */
  size: number;
  since: number;
  entries: Array<{ index: number } & LogEntry>;
}

/**
 * Every log entry about ORG or ORG/NAME in [since, size) of the registry's
 * latest checkpoint, verified: the compact range the server gives for
 * [0, since), with every entry after it, must hash to the signed root.
 */
export async function monitorLog(ctx: RegistryContext, scope: string, since: number | undefined): Promise<MonitorResult> {
  const key = await fetchJson(ctx, '/boxsig/v1/log/key');
  const { verifier, firstUse } = registryVerifier(ctx, typeof key.verifierKey === 'string' ? key.verifierKey : null);
  const cp = openCheckpoint(await fetchText(ctx, '/boxsig/v1/log/checkpoint', MAX_NOTE_BYTES), verifier);
  const known = readRegistries(ctx.store).get(ctx.origin);
  await checkConsistent(ctx, known?.checkpoint, cp);
  const start = since ?? 0;
  if (start > cp.size) throw new BoxsigError('USAGE', `--since ${start} is beyond the registry's log (${cp.size} entries)`);
  const [org, name] = scope.includes('/') ? [scope.slice(0, scope.indexOf('/')), scope] : [scope, null];
  const matches = (e: LogEntry) => (name ? e.kind !== 'key' && e.box === name : e.org === org);
  let range: CompactRange | null = null;
  const found: MonitorResult['entries'] = [];
  let next = start;
  while (next < cp.size || range === null) {
    const page = await fetchJson(ctx, `/boxsig/v1/log/entries?start=${next}&end=${cp.size}`, MAX_PAGE_BYTES);
    range ??= new CompactRange(start, hashList(page.prefix, 'the log prefix'));
    const list = Array.isArray(page.entries) ? page.entries : [];
    if (next < cp.size && !list.length) throw refuse('MALFORMED', `the registry gave no log entries from ${next}`);
    for (const item of list) {
      if (!isPlainObject(item) || item.index !== next || typeof item.data !== 'string')
        throw refuse('MALFORMED', `the registry's log entries are not in order at ${next}`);
      const data = Buffer.from(item.data, 'utf8');
      range.append(data);
      const entry = parseEntry(data, `log entry ${next}`);
      if (matches(entry)) found.push({ index: next, ...entry });
      next++;
    }
    if (next >= cp.size) break;
  }
  if (!range!.root().equals(cp.root)) {
    throw refuse(
      'SPLIT_VIEW',
      `the log entries ${ctx.origin} served from ${start} do not make up its signed checkpoint of ${cp.size} entries: it hides or changes entries`,
    );
  }
  await recordSeen(ctx, verifier, cp);
  if (firstUse) ctx.onInfo?.(`first use of the registry ${ctx.origin}: its key ${short(verifier.verifierKey)} is recorded`);
  return { ok: true, registry: ctx.origin, size: cp.size, since: start, entries: found };
}

/** `boxsig log forget SERVER`: forget a registry's key, checkpoint and catalogs (after its operator changed the key). */
export async function forgetRegistry(store: TrustStore, url: string): Promise<boolean> {
  const origin = registryOrigin(url);
  if (!origin) throw new BoxsigError('USAGE', `${escapeLine(url)} is not an http(s) URL`);
  return updateRegistries(store, (state) => state.delete(origin));
}
