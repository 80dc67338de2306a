/**
 * Box names, versions, providers and architectures: the ONE validation every
 * such string passes, whatever its source (signed manifest, catalog, flags,
 * Vagrantfile, a directory name in the Vagrant home), before it reaches a
 * trust decision or a path. docs/SECURITY.md, "names, paths and the install
 * path", lists the rules.
 *
 * Vagrant stores box `org/name` in a directory called
 * `org-VAGRANTSLASH-name` (and `:` as `-VAGRANTCOLON-` on Windows) and turns
 * every such escape back when it lists boxes. A name that contains an escape
 * (in any case: macOS and Windows fold case) would share a directory with
 * another name, so escapes are refused and the mapping is checked both ways.
 */

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*(\/[A-Za-z0-9][A-Za-z0-9._+-]*)?$/;
// RubyGems-style versions as Vagrant reads them: 1.2.3, 2024.01.05, 1.0.rc1, 1.0.0-rc.1
const VERSION_RE = /^[0-9]+(\.[0-9A-Za-z]+)*(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$/;
const PROVIDER_RE = /^[a-z0-9][a-z0-9_-]*$/;
const ARCH_RE = /^[a-z0-9][a-z0-9_]*$/;
/** Vagrant's escapes, without their dashes and in any case: no substring of a name may spell one. */
const ESCAPE_RE = /vagrant(slash|colon)/i;

const VAGRANT_SLASH = '-VAGRANTSLASH-';
const VAGRANT_COLON = '-VAGRANTCOLON-';

/** Vagrant's `dir_name`: the directory under `boxes/` that holds a box name. */
export function boxDirName(name: string): string {
  return name.replaceAll('/', VAGRANT_SLASH);
}

/** Vagrant's `undir_name`: the box name Vagrant lists for a directory under `boxes/`. */
export function boxNameFromDir(dir: string): string {
  return dir.replaceAll(VAGRANT_COLON, ':').replaceAll(VAGRANT_SLASH, '/');
}

export function nameProblem(name: string): string | null {
  if (name.length > 200) return 'is longer than 200 characters';
  if (ESCAPE_RE.test(name))
    return `spells one of Vagrant's directory escapes (${VAGRANT_SLASH}, ${VAGRANT_COLON}), so it would share a directory with another name`;
  if (!NAME_RE.test(name)) return 'must look like "org/box" (letters, digits, ".", "_", "+", "-"; one "/")';
  if (boxNameFromDir(boxDirName(name)) !== name) return 'does not map to one directory and back';
  return null;
}

export function versionProblem(v: string): string | null {
  if (v.length > 64) return 'is longer than 64 characters';
  if (!VERSION_RE.test(v)) return 'must look like "1.2.3" (dot-separated digits and letters, optionally "-rc.1")';
  return null;
}

export function providerProblem(p: string): string | null {
  if (p.length > 64) return 'is longer than 64 characters';
  if (!PROVIDER_RE.test(p)) return 'must be lower-case letters, digits, "_" and "-"';
  return null;
}

export function architectureProblem(a: string): string | null {
  if (a.length > 32 || !ARCH_RE.test(a)) return 'must be lower-case letters, digits and "_" (at most 32)';
  return null;
}

/** What Vagrant 2.4's catalogs say when the publisher did not state an architecture. */
export const UNKNOWN_ARCHITECTURE = 'unknown';

/** An architecture that states something: present and not `unknown`. */
export function statedArchitecture(a: string | undefined | null): string | undefined {
  return a && a !== UNKNOWN_ARCHITECTURE ? a : undefined;
}

/**
 * The one rule that binds a box's architecture: what it states (the signed
 * manifest, or metadata.json) must be the architecture it is installed for.
 * An absent or `unknown` architecture on either side binds nothing.
 */
export function architecturesAgree(installedFor: string | undefined, stated: string | undefined): boolean {
  const a = statedArchitecture(installedFor);
  const b = statedArchitecture(stated);
  return a === undefined || b === undefined || a === b;
}

export interface IdentityStrings {
  name?: unknown;
  version?: unknown;
  provider?: unknown;
  architecture?: unknown;
}

/**
 * Every problem of the identity strings that are present, as
 * `field "value" problem` (values JSON-quoted, so control characters are
 * escaped). An empty list means every present field is valid.
 */
export function identityProblems(id: IdentityStrings): string[] {
  const checks: Array<[keyof IdentityStrings, (s: string) => string | null]> = [
    ['name', nameProblem],
    ['version', versionProblem],
    ['provider', providerProblem],
    ['architecture', architectureProblem],
  ];
  const out: string[] = [];
  for (const [field, check] of checks) {
    const v = id[field];
    if (v === undefined) continue;
    const p = typeof v === 'string' ? check(v) : 'is not a string';
    if (p) out.push(`${field} ${JSON.stringify(v)} ${p}`);
  }
  return out;
}
