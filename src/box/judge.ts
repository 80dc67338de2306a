/**
 * Judging the `.boxsig/` material of a box: manifest, signatures, identity,
 * trust policy. Shared by archive verification, `add`, `verify --dir` and
 * `verify --installed`.
 */
import type * as openpgp from 'openpgp';
import { refuse } from '../errors.js';
import { checkSigners, keyLookups } from '../keys/signers.js';
import { parseManifest, type BoxIdentity, type Manifest } from '../manifest/manifest.js';
import { architecturesAgree } from '../manifest/names.js';
import { parseUntrustedJson, isPlainObject } from '../shared/json.js';
import { LIMITS } from '../shared/limits.js';
import { applyOverrides, resolvePolicy, type BoxPolicy, type ConfigLayer, type ResolvedPolicy } from '../policy/config.js';
import { checkSignaturesIntact, checkSignaturesRequired, decideTrust, type Decision, type Signer, type TrustPath } from '../policy/decide.js';
import type { TrustState } from '../trust/store.js';
import type { KeySource } from '../keys/signers.js';
import type { BoxsigPrefix, Expectation } from './reader.js';

/**
 * What judging reads from a trust store: the records and the keyring. A
 * TrustStore is one; the registry passes its view of an org (keys and
 * records from its database).
 */
export interface TrustView {
  readonly file: string;
  /** Where the record of a name is kept (default: `file`). */
  recordFile?(name: string): string;
  read(): TrustState;
  readonly keyring: KeySource;
}

export interface ExpectedIdentity {
  name?: string;
  version?: string;
  provider?: string;
  /** The architecture the box is installed for (absent or `unknown`: any). */
  architecture?: string;
}

export interface TrustOptions {
  store: TrustView;
  layers: ConfigLayer[];
  /** Flags that override the configuration for this run (e.g. --pin). */
  overrides?: BoxPolicy;
  now?: Date;
  mode?: 'verify' | 'add';
  allowDowngrade?: boolean;
  /** verify: refuse a valid signature by a signer that is neither pinned, certified nor recorded. */
  requireTrusted?: boolean;
}

/** A signer as reported: its signature check, and whether and why it is trusted. */
export type SignerReport = Pick<Signer, 'fingerprint' | 'signingKey' | 'userIds' | 'algorithm' | 'created' | 'valid' | 'code' | 'reason'> & {
  trusted: boolean;
  via?: TrustPath;
  explanation?: string;
};

export interface Verdict {
  signed: boolean;
  manifest: Manifest | null;
  manifestBytes: Buffer | null;
  box: BoxIdentity | null;
  signers: SignerReport[];
  decision: Decision | null;
  policy: ResolvedPolicy | null;
  warnings: string[];
  expectation: Expectation | null;
  /** The checked signers, with their keys (to decide again under the store lock). */
  checked: Signer[];
  /** Every key the box carries, as parsed. */
  boxKeys: Map<string, openpgp.PublicKey>;
}

function identityCheck(m: Manifest, expect: ExpectedIdentity): void {
  const diffs: string[] = [];
  if (expect.name !== undefined && expect.name !== m.box.name) diffs.push(`name is ${m.box.name}, expected ${expect.name}`);
  if (expect.version !== undefined && expect.version !== m.box.version) diffs.push(`version is ${m.box.version}, expected ${expect.version}`);
  if (expect.provider !== undefined && expect.provider !== m.box.provider) diffs.push(`provider is ${m.box.provider}, expected ${expect.provider}`);
  if (!architecturesAgree(expect.architecture, m.box.architecture)) diffs.push(`architecture is ${m.box.architecture}, expected ${expect.architecture}`);
  if (diffs.length) {
    throw refuse('WRONG_BOX', `this is not the box asked for: its signed ${diffs.join('; ')}`, {
      box: m.box,
      expected: expect,
    });
  }
}

/**
 * Judge a box's `.boxsig/` material. Returns the verdict with the expected
 * files (or null expectation for an unsigned box the policy lets through).
 */
export async function judge(prefix: BoxsigPrefix, expect: ExpectedIdentity, trust: TrustOptions): Promise<Verdict> {
  if (prefix.present && !prefix.manifest) {
    throw refuse('MALFORMED', '.boxsig/ has no manifest.json before the first file of the box (the .boxsig/ entries must lead the archive)');
  }
  if (!prefix.present) return judgeUnsigned(expect, trust, 'it has no .boxsig/ entries');
  const now = trust.now ?? new Date();
  const manifest = parseManifest(prefix.manifest!);
  if (prefix.signatures.size === 0) return judgeUnsignedManifest(manifest, expect, trust);
  const policy = policyFor(trust, manifest.box.name);
  const { signers, boxKeys } = await checkSigners(prefix, trust.store, policy, now);
  checkSignaturesIntact(signers);
  identityCheck(manifest, expect);
  const decision = await decideTrust({
    manifest,
    signers,
    policy,
    record: trust.store.read().boxes.get(manifest.box.name),
    storeFile: trust.store.recordFile?.(manifest.box.name) ?? trust.store.file,
    ...keyLookups(trust.store, boxKeys),
    now,
    mode: trust.mode ?? 'verify',
    allowDowngrade: trust.allowDowngrade,
    requireTrusted: trust.requireTrusted,
  });
  return {
    signed: true,
    manifest,
    manifestBytes: prefix.manifest,
    box: manifest.box,
    signers: reportSigners(signers, decision),
    decision,
    policy,
    warnings: [...policy.warnings, ...decision.warnings],
    expectation: expectationOf(manifest),
    checked: signers,
    boxKeys,
  };
}

function policyFor(trust: TrustOptions, name: string): ResolvedPolicy {
  return applyOverrides(resolvePolicy(trust.layers, name), trust.overrides ?? {});
}

/**
 * An unsigned box: only a name given by the caller (--name, the catalog, the
 * registry's target) can apply a policy that allows it; its version is the
 * caller's too (or Vagrant's 0). Nothing in the box names it.
 */
function judgeUnsigned(expect: ExpectedIdentity, trust: TrustOptions, why: string): Verdict {
  const name = expect.name;
  if (!name) {
    throw refuse('UNSIGNED', `the box is not signed (${why})`, {}, 'give --name to apply a policy that allows unsigned boxes');
  }
  const policy = policyFor(trust, name);
  const origin = policy.origin.signatures;
  checkSignaturesRequired(policy, name, `box ${name} is not signed (${why}) and the policy requires signatures${origin ? ` (${origin})` : ''}`);
  return unsignedVerdict(policy, `UNSIGNED: box ${name} carries no signature; accepted only because the policy (${origin}) says signatures: optional`);
}

/**
 * A manifest without signatures is unsigned bytes of the box: it names
 * nothing (not the name, not the version, not the policy). The box is judged
 * exactly as an unsigned one; its file list only serves to check the files
 * against, as the gzip CRC the reader then skips would.
 */
function judgeUnsignedManifest(manifest: Manifest, expect: ExpectedIdentity, trust: TrustOptions): Verdict {
  const verdict = judgeUnsigned(expect, trust, 'its .boxsig/ has a manifest but no signature');
  return { ...verdict, expectation: expectationOf(manifest) };
}

function unsignedVerdict(policy: ResolvedPolicy, warning: string): Verdict {
  return {
    signed: false,
    manifest: null,
    manifestBytes: null,
    box: null,
    signers: [],
    decision: null,
    policy,
    warnings: [...policy.warnings, warning],
    expectation: null,
    checked: [],
    boxKeys: new Map(),
  };
}

/** Each signer with the trust path that counted it, if any. */
function reportSigners(signers: Signer[], decision: Decision): SignerReport[] {
  const trustedBy = new Map(decision.trusted.map((t) => [t.fingerprint, t]));
  return signers.map((s) => {
    const t = trustedBy.get(s.fingerprint);
    return {
      fingerprint: s.fingerprint,
      signingKey: s.signingKey,
      userIds: s.userIds,
      algorithm: s.algorithm,
      created: s.created,
      valid: s.valid,
      ...(s.code ? { code: s.code, reason: s.reason } : {}),
      trusted: t !== undefined && !t.unknown,
      ...(t ? { via: t.via, explanation: t.explanation } : {}),
    };
  });
}

function expectationOf(m: Manifest): Expectation {
  return { files: new Map(m.files.map((f) => [f.path, { size: f.size, sha256: f.sha256 }])) };
}

/** The provider (and architecture) that metadata.json declares, if it parses. */
export function readMetadata(bytes: Buffer | null): { provider?: string; architecture?: string } | null {
  if (!bytes) return null;
  let v: unknown;
  try {
    v = parseUntrustedJson(bytes, 'metadata.json', LIMITS.maxMetadataBytes);
  } catch {
    return null;
  }
  if (!isPlainObject(v)) return null;
  const out: { provider?: string; architecture?: string } = {};
  if (typeof v.provider === 'string') out.provider = v.provider;
  if (typeof v.architecture === 'string') out.architecture = v.architecture;
  return out;
}

/** After the pass: metadata.json must agree with the signed provider. */
export function checkMetadataAgrees(verdict: Verdict, metadata: Buffer | null): void {
  if (!verdict.manifest) return;
  const md = readMetadata(metadata);
  if (md?.provider && md.provider !== verdict.manifest.box.provider) {
    throw refuse('WRONG_BOX', `metadata.json says provider ${md.provider}, but the signed manifest says ${verdict.manifest.box.provider}`);
  }
}
