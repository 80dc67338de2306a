/**
 * Trust policy configuration: the user config (`$BOXSIG_HOME/config.json`,
 * managed with `conf`), the project file `boxsig.json` (current directory or
 * a parent), the Vagrantfile (through the plugin) and command-line flags,
 * merged in that order. Per box-name glob, the most specific glob that sets a
 * field decides it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BoxsigError, configError } from '../errors.js';
import { normalizeFingerprint } from '../keys/keys.js';
import { isPlainObject, parseUntrustedJson } from '../shared/json.js';
import { claimProblem } from '../manifest/manifest.js';
import { globProblem, matchingGlobs } from '../shared/glob.js';
import { parseVerifierKey } from '../tlog/note.js';

export type Enforcement = 'enforce' | 'warn';

export interface BoxPolicy {
  pin?: string[];
  threshold?: number;
  signatures?: 'required' | 'optional';
  /** claim name -> required value */
  claims?: Map<string, string>;
  expiry?: Enforcement;
  revocation?: Enforcement;
  rollback?: Enforcement;
}

/** A configuration document. Globs, scopes and claim names are Map keys (never keys of plain objects). */
export interface ConfigDoc {
  boxes: Map<string, BoxPolicy>;
  orgs: Map<string, string[]>;
  /** boxsig registries: URL origin -> the registry key (C2SP verifier key) its catalogs and log must be signed with. */
  registries?: Map<string, string>;
}

/**
 * Whose a layer is: the user's own (pins of `boxsig trust pin`, the user
 * config) or a project's (boxsig.json, the Vagrantfile's config.boxsig). A
 * project layer never widens or removes the user's own pins.
 */
export type LayerKind = 'store' | 'user' | 'project' | 'vagrantfile';

export interface ConfigLayer {
  /** Where it came from: a file path, "Vagrantfile (config.boxsig)", "… (boxsig trust pin)". */
  source: string;
  doc: ConfigDoc;
  /** Default: the user's own. */
  kind?: LayerKind;
}

export interface ResolvedPolicy {
  name: string;
  /** Pinned primary fingerprints (empty: none). */
  pins: string[];
  threshold: number;
  signatures: 'required' | 'optional';
  claims: Map<string, string>;
  expiry: Enforcement;
  revocation: Enforcement;
  rollback: Enforcement;
  /** The organisation scope covering the name, and its key fingerprints. */
  org: { scope: string; keys: string[]; source: string } | null;
  /** field -> "glob (source)" that decided it */
  origin: Record<string, string>;
  /** Every configuration source that was read, earliest first. */
  sources: string[];
  /** What a project layer tried to weaken in the user's own configuration. */
  warnings: string[];
  /**
   * The policy of the user's own layers alone, when a project layer (boxsig.json,
   * the Vagrantfile) took part: a signer trusted through a project's pin or
   * organisation must also be trusted by the user's own pins, organisations or
   * trust-on-first-use record (a project narrows, never widens).
   */
  own?: ResolvedPolicy;
}

const POLICY_FIELDS = ['pin', 'threshold', 'signatures', 'claims', 'expiry', 'revocation', 'rollback'] as const;

/** Validate a configuration document; errors name the file and the field. */
export function validateConfig(raw: unknown, file: string): ConfigDoc {
  if (!isPlainObject(raw)) throw configError(file, '(top level)', 'must be a JSON object');
  const doc: ConfigDoc = { boxes: new Map(), orgs: new Map() };
  for (const k of Object.keys(raw)) {
    if (k !== 'boxes' && k !== 'orgs' && k !== 'registries' && k !== '$schema' && k !== 'comment') {
      throw configError(file, k, 'unknown field (expected "boxes", "orgs" and "registries")');
    }
  }
  if (raw.registries !== undefined) doc.registries = validateRegistries(raw.registries, file);
  if (raw.boxes !== undefined) doc.boxes = validateBoxes(raw.boxes, file);
  if (raw.orgs !== undefined) doc.orgs = validateOrgs(raw.orgs, file);
  return doc;
}

/** `boxes`: box-name globs mapped to policies. */
function validateBoxes(boxes: unknown, file: string): Map<string, BoxPolicy> {
  if (!isPlainObject(boxes)) throw configError(file, 'boxes', 'must be an object mapping box-name globs to policies');
  const out = new Map<string, BoxPolicy>();
  for (const [glob, pol] of Object.entries(boxes)) {
    const f = `boxes["${glob}"]`;
    const gp = globProblem(glob);
    if (gp) throw configError(file, f, `glob ${gp}`);
    if (!isPlainObject(pol)) throw configError(file, f, 'must be an object');
    out.set(glob, validateBoxPolicy(pol, file, f));
  }
  return out;
}

/** One box policy; `f` names it in errors. */
function validateBoxPolicy(pol: Record<string, unknown>, file: string, f: string): BoxPolicy {
  const out: BoxPolicy = {};
  for (const [key, v] of Object.entries(pol)) {
    const ff = `${f}.${key}`;
    switch (key) {
      case 'pin': {
        const list = typeof v === 'string' ? [v] : v;
        if (!Array.isArray(list)) throw configError(file, ff, 'must be a list of fingerprints');
        out.pin = fingerprintList(list, file, ff);
        break;
      }
      case 'threshold':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 32) throw configError(file, ff, 'must be an integer from 1 to 32');
        out.threshold = v;
        break;
      case 'signatures':
        if (v !== 'required' && v !== 'optional') throw configError(file, ff, 'must be "required" or "optional"');
        out.signatures = v;
        break;
      case 'claims':
        if (!isPlainObject(v)) throw configError(file, ff, 'must be an object of string claims');
        for (const [ck, cv] of Object.entries(v)) {
          const p = claimProblem(ck, cv);
          if (p) throw configError(file, `${ff}.${ck}`, p);
        }
        out.claims = new Map(Object.entries(v as Record<string, string>));
        break;
      case 'expiry':
      case 'revocation':
      case 'rollback':
        if (v !== 'enforce' && v !== 'warn') throw configError(file, ff, 'must be "enforce" or "warn"');
        out[key] = v;
        break;
      case 'comment':
        break;
      default:
        throw configError(file, ff, `unknown field (expected one of ${POLICY_FIELDS.join(', ')})`);
    }
  }
  return out;
}

/** `orgs`: organisation scopes mapped to org key fingerprints. */
function validateOrgs(orgs: unknown, file: string): Map<string, string[]> {
  if (!isPlainObject(orgs)) throw configError(file, 'orgs', 'must be an object mapping scopes to org key fingerprints');
  const out = new Map<string, string[]>();
  for (const [scope, keys] of Object.entries(orgs)) {
    const f = `orgs["${scope}"]`;
    const gp = globProblem(scope);
    if (gp) throw configError(file, f, `scope ${gp}`);
    const list = typeof keys === 'string' ? [keys] : keys;
    if (!Array.isArray(list) || list.length === 0) throw configError(file, f, 'must be a non-empty list of fingerprints');
    out.set(scope, fingerprintList(list, file, f));
  }
  return out;
}

function fingerprintList(list: unknown[], file: string, f: string): string[] {
  return list.map((x, i) => {
    const fp = typeof x === 'string' ? normalizeFingerprint(x) : null;
    if (!fp) throw configError(file, `${f}[${i}]`, `${JSON.stringify(x)} is not a 40-hex-digit OpenPGP fingerprint`);
    return fp;
  });
}

/** `registries`: {"https://boxes.example": {"key": "<name>+<id>+<base64>"}}, keyed by URL origin. */
function validateRegistries(raw: unknown, file: string): Map<string, string> {
  if (!isPlainObject(raw)) throw configError(file, 'registries', 'must be an object mapping registry URLs to {"key": …}');
  const out = new Map<string, string>();
  for (const [url, v] of Object.entries(raw)) {
    const f = `registries["${url}"]`;
    const origin = registryOrigin(url);
    if (!origin) throw configError(file, f, 'must be an http(s) URL of a registry');
    if (!isPlainObject(v) || typeof v.key !== 'string' || !parseVerifierKey(v.key)) {
      throw configError(file, `${f}.key`, 'must be the registry key as `boxsig registry key` prints it (<name>+<8 hex>+<base64>)');
    }
    out.set(origin, v.key);
  }
  return out;
}

/** The origin (scheme://host[:port]) of an http(s) URL, the key registries are remembered and pinned by. */
export function registryOrigin(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

/**
 * A configuration document as JSON (the boxsig.json format), for storing or
 * printing: Maps become objects built with defined properties (a glob such as
 * "__proto__" stays an ordinary key; JSON.parse of the result reads it back
 * as validateConfig expects).
 */
export function configToJson(doc: ConfigDoc): Record<string, unknown> {
  const obj = <V>(m: Map<string, V>, f: (v: V) => unknown) => Object.fromEntries([...m].map(([k, v]) => [k, f(v)]));
  return {
    boxes: obj(doc.boxes, (p) => ({ ...p, ...(p.claims ? { claims: obj(p.claims, (v) => v) } : {}) })),
    orgs: obj(doc.orgs, (v) => v),
    ...(doc.registries ? { registries: obj(doc.registries, (key) => ({ key })) } : {}),
  };
}

export function readConfigFile(file: string): ConfigDoc {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new BoxsigError('CONFIG', `${file}: cannot read: ${(e as Error).message}`, { file });
  }
  let raw: unknown;
  try {
    raw = parseUntrustedJson(bytes, file, 4 * 1024 * 1024);
  } catch (e) {
    if (e instanceof BoxsigError) throw new BoxsigError('CONFIG', `${file}: ${e.message.replace(`${file} `, '')}`, { file });
    throw e;
  }
  return validateConfig(raw, file);
}

/** The project file: `boxsig.json` in `dir` or its nearest parent that has one. */
export function findProjectFile(dir: string): string | null {
  let d = path.resolve(dir);
  for (;;) {
    const f = path.join(d, 'boxsig.json');
    if (fs.existsSync(f)) return f;
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/**
 * A project file found in the current directory or a parent must be yours
 * (or root's) and not writable by every user — as git refuses a repository
 * owned by someone else: anyone who can write a parent directory (think of
 * /tmp) could otherwise replace your pins. A file named with --config is used
 * as given.
 */
export function checkProjectFileOwner(file: string): void {
  const me = process.getuid?.();
  if (me === undefined) return; // no POSIX owners (Windows)
  let stats: fs.Stats[];
  try {
    stats = [fs.lstatSync(file), fs.statSync(file)];
  } catch (e) {
    throw new BoxsigError('CONFIG', `${file}: cannot read: ${(e as Error).message}`, { file });
  }
  const hint = `if you trust it, name it explicitly with --config ${file}; otherwise remove it`;
  for (const st of stats) {
    if (st.uid !== me && st.uid !== 0) {
      throw new BoxsigError(
        'CONFIG',
        `${file} belongs to user ${st.uid}, not to you (${me}) or root: boxsig does not use a project file someone else controls`,
        { file, owner: st.uid },
        hint,
      );
    }
    if (!st.isSymbolicLink() && st.mode & 0o002) {
      throw new BoxsigError('CONFIG', `${file} is writable by every user: boxsig does not use a project file anyone can change`, { file }, hint);
    }
  }
}

/**
 * Resolve the policy for one box name over the layers (earlier layers first):
 * for each field, the most specific glob that sets it; for a glob, the latest
 * layer. Then the user's own pins are kept where a project layer would widen
 * or remove them (with a warning), and every other weakening is said.
 */
export function resolvePolicy(layers: ConfigLayer[], name: string): ResolvedPolicy {
  const resolved = resolveFields(layers, name);
  resolved.sources = layers.map((l) => l.source);
  if (layers.some((l) => !isOwn(l))) {
    const own = resolveFields(layers.filter(isOwn), name);
    guardOwnPolicy(resolved, own);
    Object.defineProperty(resolved, 'own', { value: own, enumerable: false });
  }
  return resolved;
}

/**
 * The entries of a Map — or of a plain object, for library callers that
 * still build configuration documents as objects (own properties only).
 */
function entriesOf<V>(m: Map<string, V> | Record<string, V> | undefined): Iterable<[string, V]> {
  if (m === undefined) return [];
  return m instanceof Map ? m : Object.entries(m);
}

const isOwn = (l: ConfigLayer) => l.kind === undefined || l.kind === 'store' || l.kind === 'user';

interface MergedGlob {
  policy: BoxPolicy;
  /** field -> source of the layer that set it */
  source: Record<string, string>;
}

/** For each glob, later layers override earlier ones field by field. */
function mergeLayers(layers: ConfigLayer[]): { boxes: Map<string, MergedGlob>; orgs: Map<string, { keys: string[]; source: string }> } {
  const boxes = new Map<string, MergedGlob>();
  const orgs = new Map<string, { keys: string[]; source: string }>();
  for (const layer of layers) {
    for (const [glob, pol] of entriesOf(layer.doc.boxes)) {
      const cur = boxes.get(glob) ?? { policy: {}, source: {} };
      for (const f of POLICY_FIELDS) {
        if (pol[f] === undefined) continue;
        (cur.policy as Record<string, unknown>)[f] = f === 'claims' ? new Map(entriesOf(pol.claims)) : pol[f];
        cur.source[f] = layer.source;
      }
      boxes.set(glob, cur);
    }
    for (const [scope, keys] of entriesOf(layer.doc.orgs)) orgs.set(scope, { keys, source: layer.source });
  }
  return { boxes, orgs };
}

function defaults(name: string): ResolvedPolicy {
  return {
    name,
    pins: [],
    threshold: 1,
    signatures: 'required',
    claims: new Map(),
    expiry: 'enforce',
    revocation: 'enforce',
    rollback: 'enforce',
    org: null,
    origin: {},
    sources: [],
    warnings: [],
  };
}

function resolveFields(layers: ConfigLayer[], name: string): ResolvedPolicy {
  const { boxes, orgs } = mergeLayers(layers);
  const matching = matchingGlobs(boxes.keys(), name);
  const resolved = defaults(name);
  for (const f of POLICY_FIELDS) {
    const g = matching.find((m) => boxes.get(m)!.policy[f] !== undefined);
    if (g === undefined) continue;
    const entry = boxes.get(g)!;
    const v = entry.policy[f];
    if (f === 'pin') resolved.pins = [...(v as string[])];
    else if (f === 'claims') resolved.claims = new Map(v as Map<string, string>);
    else (resolved as unknown as Record<string, unknown>)[f] = v;
    resolved.origin[f] = `"${g}" (${entry.source[f]})`;
  }
  const orgMatch = matchingGlobs(orgs.keys(), name)[0];
  if (orgMatch !== undefined) {
    const o = orgs.get(orgMatch)!;
    resolved.org = { scope: orgMatch, keys: o.keys, source: o.source };
  }
  return resolved;
}

/**
 * The rule for project layers (boxsig.json, the Vagrantfile): where the
 * user's own configuration pins a name, a project may narrow the pins (keep
 * some of them) but not widen or remove them — keys it adds are ignored, and
 * pins it drops stay. Any other field it makes weaker than the user's own
 * setting (fewer signatures, optional signatures, warn instead of enforce,
 * fewer required claims) applies, and is said.
 */
function guardOwnPolicy(p: ResolvedPolicy, own: ResolvedPolicy): void {
  if (own.pins.length && p.origin.pin !== own.origin.pin) {
    const kept = p.pins.filter((k) => own.pins.includes(k));
    const ignored = p.pins.filter((k) => !own.pins.includes(k));
    if (ignored.length || !kept.length) {
      p.warnings.push(
        `${p.origin.pin} pins ${p.name} to ${p.pins.join(', ') || 'nothing'}, but your own configuration (${own.origin.pin}) pins it to ${own.pins.join(', ')}: ` +
          `a project file cannot widen or remove your pins, so ${kept.length ? `only ${kept.join(', ')} count${kept.length === 1 ? 's' : ''}` : 'your pins apply'} (edit your own configuration to change them)`,
      );
      p.pins = kept.length ? kept : [...own.pins];
      if (!kept.length) p.origin.pin = own.origin.pin;
    }
  }
  const weaker: string[] = [];
  if (p.threshold < own.threshold) weaker.push(`threshold ${own.threshold} -> ${p.threshold}`);
  if (p.signatures === 'optional' && own.signatures === 'required' && own.origin.signatures) weaker.push('signatures required -> optional');
  for (const f of ['expiry', 'revocation', 'rollback'] as const)
    if (p[f] === 'warn' && own[f] === 'enforce' && own.origin[f]) weaker.push(`${f} enforce -> warn`);
  for (const [k, v] of own.claims) if (p.claims.get(k) !== v) weaker.push(`claim ${k} no longer required to be ${JSON.stringify(v)}`);
  if (weaker.length) p.warnings.push(`a project configuration weakens your own policy for ${p.name}: ${weaker.join('; ')} (${projectOrigins(p, own)})`);
}

function projectOrigins(p: ResolvedPolicy, own: ResolvedPolicy): string {
  return [
    ...new Set(
      Object.keys(p.origin)
        .filter((f) => p.origin[f] !== own.origin[f])
        .map((f) => p.origin[f]),
    ),
  ].join(', ');
}

/** Command-line flags override whatever the layers resolved, for this run only. */
export function applyOverrides(p: ResolvedPolicy, o: BoxPolicy): ResolvedPolicy {
  const out: ResolvedPolicy = { ...p, origin: { ...p.origin } };
  // a pin given on the command line is the user's own decision for this run; otherwise the own policy still narrows
  if (p.own && !(o.pin && o.pin.length)) Object.defineProperty(out, 'own', { value: p.own, enumerable: false });
  for (const f of POLICY_FIELDS) {
    const v = o[f];
    if (v === undefined || (f === 'pin' && (v as string[]).length === 0)) continue;
    (out as unknown as Record<string, unknown>)[f === 'pin' ? 'pins' : f] = f === 'claims' ? new Map(entriesOf(o.claims)) : v;
    out.origin[f] = 'command line';
  }
  return out;
}
