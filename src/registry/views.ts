/**
 * The JSON the real clients read (the Vagrant Cloud API v1 shapes, plus
 * `architecture` and `default_architecture` per provider as in API v2), and
 * the URLs of boxes.
 */
import type { BoxRow, OrgRow, ProviderRow, VersionRow } from './rows.js';

export interface Links {
  /** The registry's base URL as the client reaches it, without a trailing slash. */
  base: string;
}

const enc = encodeURIComponent;

export function downloadUrl(l: Links, org: string, box: string, version: string, provider: string, architecture: string): string {
  return `${l.base}/${enc(org)}/boxes/${enc(box)}/versions/${enc(version)}/providers/${enc(provider)}/${enc(architecture)}/vagrant.box`;
}

function apiVersionPath(org: string, box: string, version: string): string {
  return `/api/v1/box/${enc(org)}/${enc(box)}/version/${enc(version)}`;
}

/** Vagrant Cloud's version status: unreleased, active (released) — a deleted version is never shown. */
export function providerJson(l: Links, org: OrgRow, box: BoxRow, v: VersionRow, p: ProviderRow) {
  const ready = p.blob_sha256 !== null;
  return {
    name: p.name,
    architecture: p.architecture,
    default_architecture: Boolean(p.default_architecture),
    hosted: true,
    hosted_token: null,
    original_url: null,
    created_at: p.created_at,
    updated_at: p.updated_at,
    download_url: ready ? downloadUrl(l, org.name, box.name, v.version, p.name, p.architecture) : null,
    checksum: p.blob_sha256 ?? p.declared_checksum,
    checksum_type: p.blob_sha256 ? 'sha256' : p.declared_checksum_type,
    // boxsig's own fields
    size: p.size,
    signed: p.signed === null ? null : Boolean(p.signed),
    signers: p.signers ? (JSON.parse(p.signers) as unknown) : [],
    manifest_sha256: p.manifest_sha256,
    uploaded: ready,
  };
}

export function versionJson(l: Links, org: OrgRow, box: BoxRow, v: VersionRow, providers: ProviderRow[]) {
  const base = `${l.base}${apiVersionPath(org.name, box.name, v.version)}`;
  return {
    version: v.version,
    number: v.version,
    status: v.status,
    description_html: '',
    description_markdown: v.description,
    description: v.description,
    created_at: v.created_at,
    updated_at: v.updated_at,
    release_url: `${base}/release`,
    revoke_url: `${base}/revoke`,
    providers: providers.filter((p) => p.version_id === v.id).map((p) => providerJson(l, org, box, v, p)),
  };
}

export function boxJson(l: Links, org: OrgRow, box: BoxRow, versions: VersionRow[], providers: ProviderRow[]) {
  const shown = versions.filter((v) => v.status !== 'deleted');
  const current = shown.find((v) => v.status === 'active');
  return {
    tag: `${org.name}/${box.name}`,
    name: box.name,
    username: org.name,
    private: Boolean(box.private),
    short_description: box.short_description,
    description_html: '',
    description_markdown: box.description,
    description: box.description,
    created_at: box.created_at,
    updated_at: box.updated_at,
    downloads: 0,
    signing: box.signing,
    current_version: current ? versionJson(l, org, box, current, providers) : null,
    versions: shown.map((v) => versionJson(l, org, box, v, providers)),
  };
}

/** Summary of a box in an org listing (GET /api/v1/user/ORG). */
export function boxSummary(org: OrgRow, box: BoxRow) {
  return {
    tag: `${org.name}/${box.name}`,
    name: box.name,
    username: org.name,
    private: Boolean(box.private),
    short_description: box.short_description,
    description_markdown: box.description,
    created_at: box.created_at,
    updated_at: box.updated_at,
  };
}
