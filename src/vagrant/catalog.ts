/**
 * Vagrant box catalogs ("metadata" JSON: name, versions[].providers[] with
 * url, checksum_type, checksum, architecture, default_architecture), and
 * choosing an entry the way Vagrant 2.4's `vagrant box add` does
 * (lib/vagrant/box_metadata.rb, lib/vagrant/action/builtin/box_add.rb): the
 * highest version satisfying the constraints that has the provider for the
 * architecture asked for.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { refuse, usage } from '../errors.js';
import { isPlainObject, parseUntrustedJson } from '../shared/json.js';
import { LIMITS } from '../shared/limits.js';
import { identityProblems, UNKNOWN_ARCHITECTURE } from '../manifest/names.js';
import { compareVersionKeys, parseConstraints, satisfies, versionKey } from '../shared/version.js';

export interface CatalogProvider {
  name: string;
  url: string;
  checksum_type?: string;
  checksum?: string;
  architecture?: string;
  /** Vagrant Cloud's flag for the entry to use when none is for the host (only honoured for `unknown`, as Vagrant 2.4 does). */
  default_architecture?: boolean;
}

export interface CatalogVersion {
  version: string;
  providers: CatalogProvider[];
}

export interface Catalog {
  name: string;
  description?: string;
  versions: CatalogVersion[];
}

export const CHECKSUM_TYPES = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'];

export function parseCatalog(bytes: Uint8Array, source: string): Catalog {
  const v = parseUntrustedJson(bytes, `catalog ${source}`, LIMITS.maxCatalogBytes);
  const bad = (m: string): never => {
    throw refuse('MALFORMED', `catalog ${source}: ${m}`);
  };
  if (!isPlainObject(v)) bad('not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || !o.name) bad('no "name"');
  // the server controls every string here: the box name, each version and provider pass the names check first
  const unsafe = (id: Parameters<typeof identityProblems>[0]) => {
    const problems = identityProblems(id);
    if (problems.length) throw refuse('UNSAFE_ENTRY', `catalog ${source}: box ${problems.join('; ')}`);
  };
  unsafe({ name: o.name });
  if (!Array.isArray(o.versions)) bad('no "versions" list');
  const versions: CatalogVersion[] = [];
  for (const ver of o.versions as unknown[]) {
    if (!isPlainObject(ver) || typeof ver.version !== 'string') bad('a version entry has no "version" string');
    const vv = ver as Record<string, unknown>;
    unsafe({ version: vv.version });
    const providers: CatalogProvider[] = [];
    for (const p of (Array.isArray(vv.providers) ? vv.providers : []) as unknown[]) {
      if (!isPlainObject(p) || typeof p.name !== 'string' || typeof p.url !== 'string') bad(`version ${vv.version}: a provider has no "name" or "url"`);
      const pp = p as Record<string, unknown>;
      const arch = present(pp.architecture);
      const defaultArch = present(pp.default_architecture);
      if (arch !== undefined && typeof arch !== 'string') bad(`version ${vv.version}: provider ${JSON.stringify(pp.name)} has a non-string "architecture"`);
      if (defaultArch !== undefined && typeof defaultArch !== 'boolean')
        bad(`version ${vv.version}: provider ${JSON.stringify(pp.name)} has a non-boolean "default_architecture"`);
      unsafe({ provider: pp.name, ...(arch !== undefined ? { architecture: arch } : {}) });
      const prov: CatalogProvider = { name: pp.name as string, url: pp.url as string };
      if (typeof pp.checksum === 'string' && pp.checksum) {
        const t = typeof pp.checksum_type === 'string' ? pp.checksum_type.toLowerCase() : 'sha256';
        if (!CHECKSUM_TYPES.includes(t)) bad(`version ${vv.version}: unsupported checksum_type ${JSON.stringify(pp.checksum_type)}`);
        prov.checksum = pp.checksum.trim().toLowerCase();
        prov.checksum_type = t;
      }
      if (arch !== undefined) prov.architecture = arch as string;
      if (defaultArch !== undefined) prov.default_architecture = defaultArch as boolean;
      providers.push(prov);
    }
    versions.push({ version: vv.version as string, providers });
  }
  return { name: o.name as string, ...(typeof o.description === 'string' ? { description: o.description } : {}), versions };
}

/** A JSON value that is there: null counts as absent (Ruby's nil), as Vagrant reads it. */
function present(v: unknown): unknown {
  return v === null ? undefined : v;
}

export interface CatalogChoice {
  name: string;
  version: string;
  provider: string;
  /** Absolute URL or local path of the box. */
  url: string;
  checksum?: string;
  checksumType?: string;
  /** The architecture the chosen entry states (`unknown` included); absent for an entry without architecture information. */
  architecture?: string;
  /**
   * The architecture directory Vagrant 2.4 installs the entry under: its
   * architecture, except `unknown` marked as the default (a box from before
   * architecture support) and an entry without architecture information,
   * which go into the legacy layout (box_add.rb, `arch_name`).
   */
  directoryArchitecture?: string;
}

/** What architecture is asked for: Vagrant's `:auto` (the host's) or one given explicitly. */
export type ArchitectureWanted = { auto: true; host: string } | { auto: false; architecture: string };

function hasArchitectureInfo(p: CatalogProvider): boolean {
  return p.architecture !== undefined || p.default_architecture !== undefined;
}

/**
 * Vagrant 2.4's `BoxMetadata::Version#provider(name, architecture)`: the
 * entry of provider `name` for the architecture wanted. Explicit: only an
 * entry stating that architecture. Auto: the host's, else an `unknown` entry
 * marked `default_architecture`, else the one entry of the provider when the
 * catalog states no architecture for it. (Vagrant takes that last one when
 * it lacks only `default_architecture`; boxsig requires it to state no
 * architecture either, so that an entry stating another architecture is
 * never installed on this host without being asked for.)
 */
function providerEntry(v: CatalogVersion, name: string, want: ArchitectureWanted): CatalogProvider | undefined {
  const entries = v.providers.filter((p) => p.name === name);
  if (!want.auto) return entries.find((p) => p.architecture === want.architecture);
  return (
    entries.find((p) => p.architecture === want.host) ??
    entries.find((p) => p.architecture === UNKNOWN_ARCHITECTURE && p.default_architecture === true) ??
    (entries.length === 1 && !hasArchitectureInfo(entries[0]) ? entries[0] : undefined)
  );
}

function describeEntry(p: CatalogProvider): string {
  if (!hasArchitectureInfo(p)) return `${p.name} (no architecture)`;
  return `${p.name} (${p.architecture ?? 'no architecture'}${p.default_architecture ? ', default' : ''})`;
}

/** The catalog's versions, newest first; each version string is parsed once (a catalog may list many). */
function newestFirst(versions: CatalogVersion[]): CatalogVersion[] {
  return versions
    .map((v) => ({ v, key: versionKey(v.version) }))
    .sort((a, b) => -compareVersionKeys(a.key, b.key))
    .map((x) => x.v);
}

/** What the matching versions offer, for a refusal: at most 10 versions. */
function offered(versions: CatalogVersion[]): string {
  const shown = versions.slice(0, 10).map((v) => `${v.version}: ${v.providers.map(describeEntry).join(', ') || 'nothing'}`);
  return shown.join('; ') + (versions.length > 10 ? `; and ${versions.length - 10} older versions` : '');
}

function wantedText(want: ArchitectureWanted): string {
  return want.auto ? `this host's architecture ${want.host} (nor an "unknown" one marked default_architecture)` : `architecture ${want.architecture}`;
}

/**
 * Resolve a provider URL the way Vagrant 2.3 does: anything without a scheme
 * is a local path relative to the current directory; `file://` URLs are paths.
 */
function resolveBoxUrl(url: string, cwd: string): string {
  if (/^[a-z0-9]+:/i.test(url) && !/^[a-z]:[\\/]/i.test(url)) {
    if (url.toLowerCase().startsWith('file://')) {
      try {
        return fileURLToPath(url);
      } catch {
        return decodeURIComponent(url.replace(/^file:\/\//i, ''));
      }
    }
    return url;
  }
  return path.resolve(cwd, url);
}

export function chooseFromCatalog(
  catalog: Catalog,
  opts: { constraint?: string; provider?: string; architecture?: string; host: string; name?: string; cwd: string; source: string },
): CatalogChoice {
  if (opts.name && opts.name !== catalog.name) {
    throw refuse('WRONG_BOX', `the catalog ${opts.source} is for box ${JSON.stringify(catalog.name)}, not ${opts.name}`, {
      expected: opts.name,
      catalog: catalog.name,
    });
  }
  const want: ArchitectureWanted = opts.architecture !== undefined ? { auto: false, architecture: opts.architecture } : { auto: true, host: opts.host };
  const constraint = JSON.stringify(opts.constraint ?? '>= 0');
  const constraints = parseConstraints(opts.constraint ?? '>= 0');
  const sorted = newestFirst(catalog.versions);
  const matching = sorted.filter((v) => satisfies(v.version, constraints));
  const names = (v: CatalogVersion) => [...new Set(v.providers.map((p) => p.name))].filter((n) => !opts.provider || n === opts.provider);
  const usable = (v: CatalogVersion) => names(v).filter((n) => providerEntry(v, n, want) !== undefined);
  const chosen = matching.find((v) => usable(v).length > 0);
  if (!chosen) {
    const withProvider = matching.filter((v) => names(v).length > 0);
    if (withProvider.length) {
      const statesNone = !withProvider.some((v) => v.providers.some(hasArchitectureInfo));
      throw usage(
        `${catalog.name}: no version matching ${constraint} offers ${opts.provider ?? 'a box'} for ${wantedText(want)}; offered: ${offered(withProvider)}`,
        {},
        statesNone
          ? 'the catalog states no architecture, so none can be chosen from it (as in Vagrant 2.4): add without --architecture, or add the box file itself with --architecture'
          : 'choose one with --architecture (or set VAGRANT_HOST_ARCHITECTURE, as for Vagrant)',
      );
    }
    if (matching.length && opts.provider) throw usage(`${catalog.name}: no version matching ${constraint} has provider ${opts.provider}`);
    const available =
      sorted
        .slice(0, 10)
        .map((v) => v.version)
        .join(', ') + (sorted.length > 10 ? ` and ${sorted.length - 10} older` : '');
    throw usage(`${catalog.name}: no version matches ${constraint} (available: ${available || 'none'})`);
  }
  const candidates = usable(chosen);
  if (candidates.length > 1) {
    throw usage(`${catalog.name} ${chosen.version} has several providers (${candidates.sort().join(', ')}): choose one with --provider`);
  }
  const p = providerEntry(chosen, candidates[0], want)!;
  const unknownDefault = p.architecture === UNKNOWN_ARCHITECTURE && p.default_architecture === true;
  return {
    name: catalog.name,
    version: chosen.version,
    provider: p.name,
    url: resolveBoxUrl(p.url, opts.cwd),
    ...(p.checksum ? { checksum: p.checksum, checksumType: p.checksum_type } : {}),
    ...(p.architecture !== undefined ? { architecture: p.architecture } : {}),
    ...(p.architecture !== undefined && !unknownDefault ? { directoryArchitecture: p.architecture } : {}),
  };
}
