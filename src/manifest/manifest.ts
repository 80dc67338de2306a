/**
 * `.boxsig/manifest.json`: the signed statement about a box. Layout and
 * canonical form are documented in docs/FORMAT.md.
 */
import { refuse, usage } from '../errors.js';
import { LIMITS } from '../shared/limits.js';
import { normalizeEntryPath, PathRegistry, showPath } from '../archive/paths.js';
import { canonicalJson, isPlainObject, parseUntrustedJson } from '../shared/json.js';
import { firstUnsafe } from '../shared/terminal.js';
import { architectureProblem, nameProblem, providerProblem, versionProblem } from './names.js';

export const MANIFEST_FORMAT = 1;
export const BOXSIG_DIR = '.boxsig';
export const MANIFEST_PATH = '.boxsig/manifest.json';

export interface BoxIdentity {
  name: string;
  version: string;
  provider: string;
  architecture?: string;
}

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  box: BoxIdentity;
  /** RFC 3339 UTC, whole seconds: 2026-11-23T12:00:00Z */
  created: string;
  expires?: string;
  claims: Record<string, string>;
  files: ManifestFile[];
  /**
   * The primary fingerprints of the keys meant to sign this manifest (sorted,
   * unique). Each signer's signature commits to the others: only a manifest
   * that names its signers lets a co-signature prove a key rotation, and a
   * signature by a key it does not name counts for nothing.
   */
  signers?: string[];
}

const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const CLAIM_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const FPR_RE = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;

export const MAX_CLAIM_VALUE = 4096;

/**
 * The one check of a claim, wherever it comes from (`sign --claim`, the
 * Packer helper, a manifest being verified): a name of 1-64 letters, digits,
 * "_", ".", ":", "/", "-" starting with a letter or digit; a value of at most
 * 4096 characters of one line of visible text — no control characters
 * (newline, carriage return, tab, ESC, DEL, C1) and no invisible or
 * directional formatting characters, so that a claim can neither split a
 * line-based list nor rewrite a terminal.
 */
export function claimProblem(k: string, v: unknown): string | null {
  if (!CLAIM_KEY_RE.test(k)) return `claim name ${JSON.stringify(k)} must be 1-64 letters, digits, "_", ".", ":", "/", "-", starting with a letter or digit`;
  if (typeof v !== 'string') return `claim ${k} must be a string`;
  if (v.length > MAX_CLAIM_VALUE) return `claim ${k} is longer than ${MAX_CLAIM_VALUE} characters`;
  if (!v.isWellFormed()) return `claim ${k} is not well-formed Unicode`;
  const bad = firstUnsafe(v);
  if (bad) return `claim ${k} contains ${bad}: a claim value is one line of visible text`;
  return null;
}

export function formatTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Serialise a manifest in its canonical form (the exact bytes that are signed). */
export function serializeManifest(m: Manifest): Buffer {
  const files = [...m.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return Buffer.from(canonicalJson({ ...m, files }), 'utf8');
}

/** Whether a key's signature belongs to the manifest: it names that key among its signers, or names no signers at all. */
export function namesSigner(m: Pick<Manifest, 'signers'>, fingerprint: string): boolean {
  return m.signers === undefined || m.signers.includes(fingerprint);
}

/** Build and validate a manifest from the signer's inputs (problems are usage errors). */
export function buildManifest(input: {
  box: BoxIdentity;
  created: Date;
  expires?: Date;
  claims?: Record<string, string>;
  files: ManifestFile[];
  signers?: string[];
}): Manifest {
  const { box } = input;
  const problems: string[] = [];
  const n = nameProblem(box.name);
  if (n) problems.push(`--name ${JSON.stringify(box.name)} ${n}`);
  const v = versionProblem(box.version);
  if (v) problems.push(`--version ${JSON.stringify(box.version)} ${v}`);
  const p = providerProblem(box.provider);
  if (p) problems.push(`--provider ${JSON.stringify(box.provider)} ${p}`);
  if (box.architecture !== undefined) {
    const a = architectureProblem(box.architecture);
    if (a) problems.push(`architecture ${JSON.stringify(box.architecture)} ${a}`);
  }
  for (const [k, val] of Object.entries(input.claims ?? {})) {
    const c = claimProblem(k, val);
    if (c) problems.push(c);
  }
  if (input.expires && input.expires.getTime() <= input.created.getTime()) problems.push('--expires must be in the future');
  if (problems.length) throw usage(problems.join('; '));
  const m: Manifest = {
    format: MANIFEST_FORMAT,
    box: { ...box },
    created: formatTime(input.created),
    claims: { ...(input.claims ?? {}) },
    files: [...input.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
  if (box.architecture === undefined) delete m.box.architecture;
  if (input.expires) m.expires = formatTime(input.expires);
  if (input.signers) m.signers = [...new Set(input.signers)].sort();
  return m;
}

function bad(msg: string): never {
  throw refuse('MALFORMED', `manifest: ${msg}`);
}

/** `signers`: 1 to 32 primary fingerprints, upper-case hex, sorted, each once. */
function checkSignersField(v: unknown): void {
  if (!Array.isArray(v) || v.length === 0 || v.length > LIMITS.maxSigners) bad(`"signers" must be a list of 1 to ${LIMITS.maxSigners} fingerprints`);
  let prev = '';
  for (const f of v as unknown[]) {
    if (typeof f !== 'string' || !FPR_RE.test(f)) bad(`"signers" holds ${JSON.stringify(f).slice(0, 80)}, not an upper-case hex fingerprint`);
    if (!(prev < f)) bad('"signers" is not sorted, or names a key twice');
    prev = f;
  }
}

/**
 * Parse and validate `.boxsig/manifest.json` bytes. The bytes must be exactly
 * the canonical serialisation of what they contain: this refuses duplicate
 * keys, reordered files and any other second spelling of the same statement.
 */
export function parseManifest(bytes: Uint8Array): Manifest {
  const v = parseUntrustedJson(bytes, 'manifest.json', LIMITS.maxManifestBytes);
  if (!isPlainObject(v)) bad('not a JSON object');
  if (v.format !== MANIFEST_FORMAT) {
    if (typeof v.format === 'number' && v.format > MANIFEST_FORMAT) {
      bad(`format ${v.format} is newer than this boxsig understands (${MANIFEST_FORMAT}); upgrade boxsig`);
    }
    bad(`unknown format ${JSON.stringify(v.format)}`);
  }
  const allowed = new Set(['format', 'box', 'created', 'expires', 'claims', 'files', 'signers']);
  for (const k of Object.keys(v)) if (!allowed.has(k)) bad(`unknown field ${JSON.stringify(k)}`);

  const box = v.box;
  if (!isPlainObject(box)) bad('"box" must be an object');
  for (const k of Object.keys(box)) if (!['name', 'version', 'provider', 'architecture'].includes(k)) bad(`unknown box field ${JSON.stringify(k)}`);
  for (const [field, check] of [
    ['name', nameProblem],
    ['version', versionProblem],
    ['provider', providerProblem],
  ] as const) {
    const value = box[field];
    const problem = typeof value === 'string' ? check(value) : 'is not a string';
    if (problem) bad(`box ${field} ${JSON.stringify(value)} is invalid: it ${problem}`);
  }
  if (box.architecture !== undefined && (typeof box.architecture !== 'string' || architectureProblem(box.architecture))) {
    bad(`box architecture ${JSON.stringify(box.architecture)} is invalid`);
  }
  for (const f of ['created', 'expires'] as const) {
    const t = v[f];
    if (t === undefined && f === 'expires') continue;
    if (typeof t !== 'string' || !TIME_RE.test(t) || Number.isNaN(Date.parse(t)) || formatTime(new Date(t)) !== t) {
      bad(`"${f}" must be a UTC time like 2026-01-31T12:00:00Z`);
    }
  }
  if (!isPlainObject(v.claims)) bad('"claims" must be an object');
  for (const [k, val] of Object.entries(v.claims)) {
    const c = claimProblem(k, val);
    if (c) bad(c);
  }
  if (!Array.isArray(v.files)) bad('"files" must be an array');
  if (v.files.length > LIMITS.maxEntries) bad(`more than ${LIMITS.maxEntries} files`);
  const reg = new PathRegistry();
  let prev: string | null = null;
  let hasMetadata = false;
  for (const f of v.files as unknown[]) {
    if (!isPlainObject(f)) bad('a file entry is not an object');
    for (const k of Object.keys(f)) if (!['path', 'size', 'sha256'].includes(k)) bad(`unknown file field ${JSON.stringify(k)}`);
    if (typeof f.path !== 'string') bad('a file path is not a string');
    let norm: string;
    try {
      norm = normalizeEntryPath(f.path);
    } catch (e) {
      bad(`file path ${showPath(f.path)} is unsafe: ${(e as Error).message}`);
    }
    if (norm !== f.path || norm === '') bad(`file path ${showPath(f.path)} is not in normal form`);
    if (norm === BOXSIG_DIR || norm.startsWith(BOXSIG_DIR + '/')) bad(`file path ${showPath(f.path)} is inside .boxsig/`);
    if (prev !== null && !(prev < norm)) bad(`files are not sorted by path, or ${showPath(norm)} is listed twice`);
    prev = norm;
    try {
      reg.add(norm, 'file');
    } catch (e) {
      bad((e as Error).message);
    }
    if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) bad(`size of ${showPath(norm)} is invalid`);
    if (typeof f.sha256 !== 'string' || !SHA256_RE.test(f.sha256)) bad(`sha256 of ${showPath(norm)} is invalid`);
    if (norm === 'metadata.json') hasMetadata = true;
  }
  if (!hasMetadata) bad('the box has no metadata.json');
  if (v.signers !== undefined) checkSignersField(v.signers);
  const m = v as unknown as Manifest;
  const canonical = serializeManifest(m);
  if (!Buffer.from(bytes).equals(canonical)) {
    bad('not in canonical form (duplicate keys, whitespace or key order differ from docs/FORMAT.md)');
  }
  return m;
}
