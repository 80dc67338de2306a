/**
 * `boxsig verify BOX` and `boxsig inspect BOX`.
 */
import { openBox } from './open.js';
import { BoxsigError, refuse } from '../errors.js';
import type { ManifestFile, BoxIdentity, Manifest } from '../manifest/manifest.js';
import { TrustStore } from '../trust/store.js';
import { loadLayers } from '../policy/load.js';
import type { BoxPolicy, ConfigLayer } from '../policy/config.js';
import { checkMetadataAgrees, judge, type ExpectedIdentity, type SignerReport, type Verdict } from './judge.js';
import { checkSigners } from '../keys/signers.js';
import { readBox, type ReadHooks, type ReadResult } from './reader.js';
import { parseManifest } from '../manifest/manifest.js';
import { checkBoxDir, readDirPrefix } from './dir.js';
import { commitTrust } from './commit.js';
import { scrubUrl } from '../shared/urls.js';
import { checkArchitecture } from './architecture.js';

export interface VerifyOptions {
  expect?: ExpectedIdentity;
  /** --pin: only these signers count (overrides configured pins). */
  pins?: string[];
  /** More flag overrides. */
  overrides?: BoxPolicy;
  /** Configuration layers; loaded from the user config and boxsig.json when absent. */
  layers?: ConfigLayer[];
  store?: TrustStore;
  cwd?: string;
  now?: Date;
  onProgress?: (bytes: number) => void;
  /** Refuse (UNTRUSTED_KEY) a valid signature by a signer that is neither pinned, certified nor recorded. */
  requireTrusted?: boolean;
}

export interface VerifyResult {
  ok: true;
  signed: boolean;
  box: BoxIdentity | null;
  created: string | null;
  expires: string | null;
  claims: Record<string, string>;
  files: ManifestFile[];
  signers: SignerReport[];
  trust: string;
  warnings: string[];
  bytes: number;
  /** Every configuration source that applied (files, the Vagrantfile, trust store pins). */
  config: string[];
}

export async function defaultTrust(opts: { store?: TrustStore; layers?: ConfigLayer[]; cwd?: string }): Promise<{ store: TrustStore; layers: ConfigLayer[] }> {
  const store = opts.store ?? new TrustStore();
  const layers = opts.layers ?? (await loadLayers({ store, cwd: opts.cwd }));
  return { store, layers };
}

export function overridesFrom(opts: { pins?: string[]; overrides?: BoxPolicy }): BoxPolicy {
  return { ...(opts.overrides ?? {}), ...(opts.pins && opts.pins.length ? { pin: opts.pins } : {}) };
}

function resultOf(verdict: Verdict, read: Pick<ReadResult, 'files' | 'rawBytes'>): VerifyResult {
  const m = verdict.manifest;
  return {
    ok: true,
    signed: verdict.signed,
    box: verdict.box,
    created: m?.created ?? null,
    expires: m?.expires ?? null,
    claims: m?.claims ?? {},
    files: read.files,
    signers: verdict.signers,
    trust: verdict.decision?.summary ?? (verdict.signed ? '' : 'unsigned (allowed by policy)'),
    warnings: verdict.warnings,
    bytes: read.rawBytes,
    config: verdict.policy?.sources ?? [],
  };
}

/** Verify a box file in one streaming pass. Throws BoxsigError with a stable code on refusal. */
export async function verifyBox(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const { store, layers } = await defaultTrust(opts);
  let verdict: Verdict | null = null;
  const hooks: ReadHooks = {
    onPrefix: async (prefix) => {
      verdict = await judge(prefix, opts.expect ?? {}, {
        store,
        layers,
        overrides: overridesFrom(opts),
        now: opts.now,
        mode: 'verify',
        requireTrusted: opts.requireTrusted,
      });
      return verdict.expectation;
    },
  };
  const read = await readBox(openBox(path), hooks, { tap: { onProgress: opts.onProgress }, manifestEnforced: true });
  const v = verdict as Verdict | null;
  if (!v) throw new BoxsigError('INTERNAL', 'internal error: the box was never judged');
  checkMetadataAgrees(v, read.metadata);
  return withWarning(resultOf(v, read), checkArchitecture(v, read.metadata, opts.expect?.architecture, opts.expect?.architecture !== undefined));
}

export interface InspectResult {
  signed: boolean;
  compressed: boolean;
  manifest: Manifest | null;
  signers: Array<{
    fingerprint: string;
    userIds: string[];
    algorithm: string;
    created: string;
    /** cryptographic validity only (no trust judgement) */
    valid: boolean;
    problem?: string;
  }>;
  keys: string[];
}

/** Read only the `.boxsig/` entries and describe them, without judging trust. */
export async function inspectBox(path: string, opts: { now?: Date } = {}): Promise<InspectResult> {
  let out: InspectResult | null = null;
  const read = await readBox(
    openBox(path),
    {
      onPrefix: async (prefix) => {
        if (!prefix.present || !prefix.manifest) {
          if (prefix.present && !prefix.manifest) throw refuse('MALFORMED', '.boxsig/ has no manifest.json');
          out = { signed: false, compressed: false, manifest: null, signers: [], keys: [] };
          return null;
        }
        const manifest = parseManifest(prefix.manifest);
        const { signers } = await checkSigners(prefix, null, { revocation: 'enforce', expiry: 'enforce' }, opts.now ?? new Date());
        out = {
          signed: signers.length > 0,
          compressed: false,
          manifest,
          signers: signers.map((s) => ({
            fingerprint: s.fingerprint,
            userIds: s.userIds,
            algorithm: s.algorithm,
            created: s.created,
            valid: s.valid,
            ...(s.valid ? {} : { problem: `${s.code}: ${s.reason}` }),
          })),
          keys: [...prefix.keys.keys()],
        };
        return null;
      },
    },
    { prefixOnly: true },
  );
  const r = out as InspectResult | null;
  if (!r) throw new BoxsigError('INTERNAL', 'internal error: nothing inspected');
  r.compressed = read.compressed;
  return r;
}

export interface VerifyDirOptions extends VerifyOptions {
  /** Act as the trust-updating step of an add (TOFU record, highest version). */
  record?: boolean;
  source?: string;
  allowDowngrade?: boolean;
}

/** Verify an extracted box directory with the same checks and codes as an archive. */
export async function verifyDir(dir: string, opts: VerifyDirOptions = {}): Promise<VerifyResult & { recorded: string[] }> {
  const { store, layers } = await defaultTrust(opts);
  const now = opts.now ?? new Date();
  const prefix = readDirPrefix(dir);
  const verdict = await judge(prefix, opts.expect ?? {}, {
    store,
    layers,
    overrides: overridesFrom(opts),
    now,
    mode: opts.record ? 'add' : 'verify',
    allowDowngrade: opts.allowDowngrade,
    requireTrusted: opts.requireTrusted,
  });
  const { files, metadata } = await checkBoxDir(dir, verdict.expectation, opts.onProgress ? countingProgress(opts.onProgress) : undefined);
  checkMetadataAgrees(verdict, metadata);
  const archWarning = checkArchitecture(verdict, metadata, opts.expect?.architecture, opts.expect?.architecture !== undefined);
  const result = withWarning(resultOf(verdict, { files, rawBytes: files.reduce((n, f) => n + f.size, 0) }), archWarning);
  const recorded: string[] = [];
  if (opts.record) {
    const name = verdict.box?.name ?? opts.expect?.name;
    const version = verdict.box?.version ?? opts.expect?.version ?? '0';
    if (!name) throw new BoxsigError('USAGE', '--record needs --name for an unsigned box');
    const c = await commitTrust({
      store,
      verdict,
      identity: { name, version },
      source: opts.source !== undefined ? scrubUrl(opts.source) : undefined,
      now,
      allowDowngrade: opts.allowDowngrade,
    });
    for (const e of c.recorded) recorded.push(`${e.event}: ${(e.keys ?? []).join(', ')}`);
    if (c.decision) {
      result.trust = c.decision.summary;
      result.warnings = [...new Set([...result.warnings, ...c.decision.warnings])];
    }
  }
  return { ...result, recorded };
}

/** The result with one more warning (the architecture check's), if any. */
function withWarning(r: VerifyResult, warning: string | null): VerifyResult {
  return warning ? { ...r, warnings: [...r.warnings, warning] } : r;
}

function countingProgress(cb: (n: number) => void): (n: number) => void {
  let total = 0;
  return (n) => {
    total += n;
    cb(total);
  };
}
