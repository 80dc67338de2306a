/**
 * Box versions compared exactly as Vagrant compares them: RubyGems'
 * `Gem::Version` (`2.0.0-1` is a pre-release below `2.0.0`; `1.0` equals `1`;
 * letters make a pre-release), and version constraints exactly as
 * `vagrant box add --box-version` reads them: comma-separated
 * `Gem::Requirement`s (`>= 1.2, < 2`, `~> 1.2`).
 *
 * The algorithms follow rubygems/version.rb and rubygems/requirement.rb;
 * test/unit/version.test.ts checks them against the real Ruby.
 */
import { BoxsigError, usage } from '../errors.js';

/** Gem::Version::VERSION_PATTERN (Ruby's atomic group is not needed: "." and "-" separate unambiguously). */
const VERSION_PATTERN = '[0-9]+(?:\\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?';
/** Ruby's \s (JavaScript's \s also matches Unicode spaces, which Ruby's does not). */
const SPACE = '[ \\t\\r\\n\\f\\v]';
const ANCHORED_VERSION = new RegExp(`^${SPACE}*(?:${VERSION_PATTERN})?${SPACE}*$`);
const REQUIREMENT = new RegExp(`^${SPACE}*(=|!=|>=|<=|>|<|~>)?${SPACE}*(${VERSION_PATTERN})${SPACE}*$`);

type Segment = bigint | string;

/** Gem::Version.correct?: whether RubyGems accepts the string as a version. */
export function isGemVersion(v: string): boolean {
  return ANCHORED_VERSION.test(v);
}

/** The normalised version string: stripped, "" is "0", every "-" becomes ".pre.". */
function normalise(v: string): string {
  if (!isGemVersion(v)) throw new BoxsigError('MALFORMED', `${JSON.stringify(v)} is not a version RubyGems (and so Vagrant) accepts`);
  const s = v.replace(new RegExp(`^${SPACE}+|${SPACE}+$`, 'g'), '');
  return s === '' ? '0' : s.replaceAll('-', '.pre.');
}

/** Numbers and runs of letters, in order (Gem::Version#segments). */
function segments(normalised: string): Segment[] {
  return (normalised.match(/[0-9]+|[a-z]+/gi) ?? []).map((s) => (/^[0-9]/.test(s) ? BigInt(s) : s));
}

function dropTrailingZeros(list: Segment[]): Segment[] {
  let end = list.length;
  while (end > 0 && list[end - 1] === 0n) end--;
  return list.slice(0, end);
}

/** Gem::Version#canonical_segments: trailing zeros dropped from the release part and from the pre-release part. */
function canonicalSegments(normalised: string): Segment[] {
  const all = segments(normalised);
  const firstString = all.findIndex((s) => typeof s === 'string');
  const cut = firstString < 0 ? all.length : firstString;
  return [...dropTrailingZeros(all.slice(0, cut)), ...dropTrailingZeros(all.slice(cut))];
}

function compareSegments(x: Segment[], y: Segment[]): number {
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const p = x[i] ?? 0n;
    const q = y[i] ?? 0n;
    if (p === q) continue;
    if (typeof p === 'string' && typeof q !== 'string') return -1;
    if (typeof p !== 'string' && typeof q === 'string') return 1;
    return p < q ? -1 : 1;
  }
  return 0;
}

/** Gem::Version#<=>: negative, zero or positive. Throws MALFORMED for a string RubyGems refuses. */
export function compareVersions(a: string, b: string): number {
  const x = normalise(a);
  const y = normalise(b);
  if (x === y) return 0;
  return compareSegments(canonicalSegments(x), canonicalSegments(y));
}

/** A version parsed once, to sort many (a catalog) without parsing each string at every comparison. */
export type VersionKey = readonly Segment[];

export function versionKey(v: string): VersionKey {
  return canonicalSegments(normalise(v));
}

/** Gem::Version#<=> on parsed versions: the same order as compareVersions. */
export function compareVersionKeys(x: VersionKey, y: VersionKey): number {
  return compareSegments(x as Segment[], y as Segment[]);
}

/** Gem::Version#prerelease?: the version holds a letter (a "-" counts: it becomes ".pre."). */
export function isPrerelease(v: string): boolean {
  return /[a-zA-Z]/.test(normalise(v));
}

/** Gem::Version#release: the version without its pre-release part. */
function release(v: string): string {
  const segs = segments(normalise(v));
  if (!segs.some((s) => typeof s === 'string')) return v;
  while (segs.some((s) => typeof s === 'string')) segs.pop();
  return segs.join('.');
}

/** Gem::Version#bump: 5.3.1 => 5.4, 5.3.1.b.2 => 5.4, 5 => 6. */
function bump(v: string): string {
  const segs = segments(normalise(v));
  while (segs.some((s) => typeof s === 'string')) segs.pop();
  if (segs.length > 1) segs.pop();
  segs[segs.length - 1] = (segs[segs.length - 1] as bigint) + 1n;
  return segs.join('.');
}

export type Constraint = { op: '=' | '!=' | '>' | '<' | '>=' | '<=' | '~>'; version: string };

/** Ruby's String#strip: ASCII whitespace and NUL at both ends. */
function rubyStrip(s: string): string {
  return s.replace(/^[\0\t\n\v\f\r ]+|[\0\t\n\v\f\r ]+$/g, '');
}

/** Comma-separated requirements, each read as Gem::Requirement.new(part.strip) (what Vagrant does). */
export function parseConstraints(spec: string): Constraint[] {
  const parts = spec.split(',');
  while (parts.length && parts[parts.length - 1] === '') parts.pop(); // Ruby's split drops trailing empty fields
  if (parts.length === 0) throw usage(`empty version constraint ${JSON.stringify(spec)}`);
  return parts.map((p) => {
    const m = REQUIREMENT.exec(rubyStrip(p));
    if (!m) throw usage(`invalid version constraint ${JSON.stringify(rubyStrip(p))} (examples: "1.2.3", ">= 1.2", "~> 1.2, != 1.2.5")`);
    return { op: (m[1] ?? '=') as Constraint['op'], version: m[2] };
  });
}

/** Gem::Requirement#satisfied_by? for every constraint. */
export function satisfies(version: string, constraints: Constraint[]): boolean {
  return constraints.every(({ op, version: c }) => {
    const r = compareVersions(version, c);
    switch (op) {
      case '=':
        return r === 0;
      case '!=':
        return r !== 0;
      case '>':
        return r > 0;
      case '<':
        return r < 0;
      case '>=':
        return r >= 0;
      case '<=':
        return r <= 0;
      case '~>':
        return r >= 0 && compareVersions(release(version), bump(c)) < 0;
    }
  });
}
