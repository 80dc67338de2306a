/**
 * Vagrant box catalogs ("metadata" JSON: name, versions[].providers[] with
 * url, checksum_type, checksum), and choosing an entry the way
 * `vagrant box add` does: the highest version satisfying the constraints that
 * has the provider.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BoxsigError, refuse, usage } from '../errors.js';
import { isPlainObject, parseUntrustedJson } from '../manifest/json.js';
import { LIMITS } from '../archive/limits.js';
import { identityProblems } from '../manifest/names.js';
import { compareVersions, parseConstraints, satisfies } from '../policy/version.js';

export interface CatalogProvider {
  name: string;
  url: string;
  checksum_type?: string;
  checksum?: string;
  architecture?: string;
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
      unsafe({ provider: pp.name, ...(typeof pp.architecture === 'string' ? { architecture: pp.architecture } : {}) });
      const prov: CatalogProvider = { name: pp.name as string, url: pp.url as string };
      if (typeof pp.checksum === 'string' && pp.checksum) {
        const t = typeof pp.checksum_type === 'string' ? pp.checksum_type.toLowerCase() : 'sha256';
        if (!CHECKSUM_TYPES.includes(t)) bad(`version ${vv.version}: unsupported checksum_type ${JSON.stringify(pp.checksum_type)}`);
        prov.checksum = pp.checksum.trim().toLowerCase();
        prov.checksum_type = t;
      }
      if (typeof pp.architecture === 'string') prov.architecture = pp.architecture;
      providers.push(prov);
    }
    versions.push({ version: vv.version as string, providers });
  }
  return { name: o.name as string, ...(typeof o.description === 'string' ? { description: o.description } : {}), versions };
}

export interface CatalogChoice {
  name: string;
  version: string;
  provider: string;
  /** Absolute URL or local path of the box. */
  url: string;
  checksum?: string;
  checksumType?: string;
}

/**
 * Resolve a provider URL the way Vagrant 2.3 does: anything without a scheme
 * is a local path relative to the current directory; `file://` URLs are paths.
 */
export function resolveBoxUrl(url: string, cwd: string): string {
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
  opts: { constraint?: string; provider?: string; name?: string; cwd: string; source: string },
): CatalogChoice {
  if (opts.name && opts.name !== catalog.name) {
    throw refuse('WRONG_BOX', `the catalog ${opts.source} is for box ${JSON.stringify(catalog.name)}, not ${opts.name}`, {
      expected: opts.name,
      catalog: catalog.name,
    });
  }
  const constraints = parseConstraints(opts.constraint ?? '>= 0');
  const sorted = [...catalog.versions].sort((a, b) => -compareVersions(a.version, b.version));
  const matching = sorted.filter((v) => satisfies(v.version, constraints));
  const withProvider = opts.provider
    ? matching.filter((v) => v.providers.some((p) => p.name === opts.provider))
    : matching.filter((v) => v.providers.length > 0);
  const chosen = withProvider[0];
  if (!chosen) {
    if (matching.length && opts.provider) {
      throw new BoxsigError('USAGE', `${catalog.name}: no version matching ${JSON.stringify(opts.constraint ?? '>= 0')} has provider ${opts.provider}`);
    }
    throw new BoxsigError(
      'USAGE',
      `${catalog.name}: no version matches ${JSON.stringify(opts.constraint ?? '>= 0')} (available: ${sorted.map((v) => v.version).join(', ') || 'none'})`,
    );
  }
  let provider: CatalogProvider | undefined;
  if (opts.provider) provider = chosen.providers.find((p) => p.name === opts.provider);
  else if (chosen.providers.length === 1) provider = chosen.providers[0];
  else {
    throw usage(
      `${catalog.name} ${chosen.version} has several providers (${chosen.providers
        .map((p) => p.name)
        .sort()
        .join(', ')}): choose one with --provider`,
    );
  }
  const p = provider!;
  return {
    name: catalog.name,
    version: chosen.version,
    provider: p.name,
    url: resolveBoxUrl(p.url, opts.cwd),
    ...(p.checksum ? { checksum: p.checksum, checksumType: p.checksum_type } : {}),
  };
}
