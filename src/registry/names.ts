/**
 * Names in the registry's API paths and bodies, validated in one place before
 * they reach a query, an object key or a message: the same rules as box
 * names, versions, providers and architectures everywhere in boxsig. Org and
 * box names are unique regardless of case, so that no two boxes of the
 * registry land in the same directory of a case-insensitive Vagrant home.
 */
import { usage } from '../errors.js';
import { architectureProblem, nameProblem, providerProblem, versionProblem } from '../manifest/names.js';

const PART_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const ROLES = ['read', 'publish', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const UNKNOWN_ARCHITECTURE = 'unknown';

/**
 * Show untrusted text in a message: quoted, control characters escaped,
 * shortened. A value that is not a string is described by its type, never
 * converted: a client's object may carry a `toString` that is not a function.
 */
export function shown(v: unknown): string {
  if (typeof v !== 'string') return describe(v);
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? '(an array)' : `(a${typeof v === 'object' ? 'n object' : ` ${typeof v}`})`;
}

/**
 * Whether a name from a path or a body can name an org or a box at all
 * (checked before any query, which it never reaches otherwise: a NUL byte
 * makes PostgreSQL fail). Any case: lookups fold it.
 */
export function isLookupName(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 200 && PART_RE.test(v);
}

/**
 * One spelling per name: the registry finds orgs and boxes whatever the case
 * of a path, while policies, certified scopes and Vagrant match names as
 * written; so a name is its own case-folded form (lower case), and
 * `acme/Ubuntu` cannot be another box than `acme/ubuntu` for the policy.
 */
function checkLowerCase(what: string, name: string): void {
  if (name !== fold(name)) {
    throw usage(
      `${what} ${shown(name)} has upper-case letters: names are lower case at this registry (it finds a box whatever the case of a path, and its policy matches names as written); use ${shown(fold(name))}`,
    );
  }
}

export function orgName(v: unknown): string {
  if (typeof v !== 'string' || v.length > 100 || !PART_RE.test(v)) {
    throw usage(`organization name ${shown(v)} must be letters, digits, ".", "_", "+" or "-" (at most 100)`);
  }
  checkLowerCase('organization name', v);
  return v;
}

/** The short name of a box inside its org (the part after "ORG/"). */
export function boxName(org: string, v: unknown): string {
  if (typeof v !== 'string' || !PART_RE.test(v)) throw usage(`box name ${shown(v)} must be letters, digits, ".", "_", "+" or "-"`);
  const p = nameProblem(`${org}/${v}`);
  if (p) throw usage(`box name ${shown(`${org}/${v}`)} ${p}`);
  checkLowerCase('box name', `${org}/${v}`);
  return v;
}

/** A policy glob with upper-case letters matches no name of this registry: refused rather than silently inert. */
export function lowerCaseGlobProblem(glob: string): string | null {
  return glob === fold(glob) ? null : `${shown(glob)} has upper-case letters, and names are lower case at this registry: write ${shown(fold(glob))}`;
}

export function versionName(v: unknown): string {
  const p = typeof v === 'string' ? versionProblem(v) : 'must be a string';
  if (p) throw usage(`version ${shown(v)} ${p}`);
  return v as string;
}

export function providerName(v: unknown): string {
  const p = typeof v === 'string' ? providerProblem(v) : 'must be a string';
  if (p) throw usage(`provider ${shown(v)} ${p}`);
  return v as string;
}

export function architectureName(v: unknown): string {
  if (v === undefined || v === null || v === '') return UNKNOWN_ARCHITECTURE;
  const p = typeof v === 'string' ? architectureProblem(v) : 'must be a string';
  if (p) throw usage(`architecture ${shown(v)} ${p}`);
  return v as string;
}

export function roleName(v: unknown): Role {
  if (typeof v !== 'string' || !(ROLES as readonly string[]).includes(v)) throw usage(`role ${shown(v)} must be one of ${ROLES.join(', ')}`);
  return v as Role;
}

/** The case-folded form that must be unique. */
export function fold(name: string): string {
  return name.toLowerCase();
}

/** A member name (the holder of a token): printable, no control characters, at most 100 characters. */
export function memberName(v: unknown): string {
  if (typeof v !== 'string' || !v || v.length > 100 || !/^[\p{L}\p{N} ._@+-]+$/u.test(v)) {
    throw usage(`member ${shown(v)} must be 1-100 letters, digits, spaces, ".", "_", "@", "+" or "-"`);
  }
  return v;
}

/** Free text from a client (descriptions): bounded, without control characters except newlines and tabs. */
export function freeText(v: unknown, what: string, max = 10_000): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw usage(`${what} must be a string`);
  if (v.length > max) throw usage(`${what} is longer than ${max} characters`);
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '');
}
