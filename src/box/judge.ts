/**
 * Judging the `.boxsig/` material of a box: manifest, signatures, identity,
 * trust policy. Shared by archive verification, `add`, `verify --dir` and
 * `verify --installed`.
 */
import type * as openpgp from 'openpgp';
import { refuse, usage } from '../errors.js';
import { checkSigners, keyLookups } from '../keys/signers.js';
import { parseManifest, type BoxIdentity, type Manifest } from '../manifest/manifest.js';
import { architecturesAgree } from '../manifest/names.js';
import { parseUntrustedJson, isPlainObject } from '../manifest/json.js';
import { LIMITS } from '../archive/limits.js';
import { applyOverrides, resolvePolicy, type BoxPolicy, type ConfigLayer, type ResolvedPolicy } from '../policy/config.js';
import { decideTrust, type Decision, type Signer } from '../policy/decide.js';
import { TrustStore } from '../trust/store.js';
import type { BoxsigPrefix, Expectation } from './reader.js';

export interface ExpectedIdentity {
  name?: string;
  version?: string;
  provider?: string;
  /** The architecture the box is installed for (absent or `unknown`: any). */
  architecture?: string;
}

export interface TrustOptions {
  store: TrustStore;
  layers: ConfigLayer[];
  /** Flags that override the configuration for this run (e.g. --pin). */
  overrides?: BoxPolicy;
  now?: Date;
  mode?: 'verify' | 'add';
  allowDowngrade?: boolean;
}

export interface SignerReport {
  fingerprint: string;
  signingKey: string;
  userIds: string[];
  algorithm: string;
  created: string;
  valid: boolean;
  code?: string;
  reason?: string;
  trusted: boolean;
  via?: string;
  explanation?: string;
}

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
  /** Keys of the signers, as parsed (for recording in the keyring). */
  signerKeys: Map<string, openpgp.PublicKey>;
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
  const now = trust.now ?? new Date();
  const mode = trust.mode ?? 'verify';
  const policyFor = (name: string) => applyOverrides(resolvePolicy(trust.layers, name), trust.overrides ?? {});

  if (prefix.present && !prefix.manifest) {
    throw refuse('MALFORMED', '.boxsig/ has no manifest.json before the first file of the box (the .boxsig/ entries must lead the archive)');
  }
  if (!prefix.present) {
    const name = expect.name;
    if (!name) {
      throw refuse('UNSIGNED', 'the box is not signed (it has no .boxsig/ entries)', {}, 'give --name to apply a policy that allows unsigned boxes');
    }
    const policy = policyFor(name);
    if (policy.signatures !== 'optional') {
      throw refuse(
        'UNSIGNED',
        `box ${name} is not signed and the policy requires signatures${policy.origin.signatures ? ` (${policy.origin.signatures})` : ''}`,
        { name },
      );
    }
    return {
      signed: false,
      manifest: null,
      manifestBytes: null,
      box: null,
      signers: [],
      decision: null,
      policy,
      warnings: [`UNSIGNED: box ${name} carries no signature; accepted only because the policy (${policy.origin.signatures}) says signatures: optional`],
      expectation: null,
      signerKeys: new Map(),
    };
  }
  const manifest = parseManifest(prefix.manifest!);
  const policy = policyFor(manifest.box.name);
  if (prefix.signatures.size === 0) {
    if (policy.signatures === 'optional') {
      identityCheck(manifest, expect);
      return {
        signed: false,
        manifest,
        manifestBytes: prefix.manifest,
        box: manifest.box,
        signers: [],
        decision: null,
        policy,
        warnings: [`UNSIGNED: the manifest of ${manifest.box.name} carries no signature; accepted only because the policy says signatures: optional`],
        expectation: expectationOf(manifest),
        signerKeys: new Map(),
      };
    }
    throw refuse('UNSIGNED', `box ${manifest.box.name} has a manifest but no signature`, { name: manifest.box.name });
  }
  const { signers, boxKeys } = await checkSigners(prefix, trust.store, policy, now);
  // a signature that does not verify is refused before anything else is judged
  const bad = signers.find((s) => s.code === 'BAD_SIGNATURE');
  if (bad) throw refuse('BAD_SIGNATURE', `signature ${bad.fingerprint} is invalid: ${bad.reason}`, { fingerprint: bad.fingerprint });
  identityCheck(manifest, expect);

  const state = trust.store.read();
  const record = state.boxes[manifest.box.name];
  const decision = await decideTrust({
    manifest,
    signers,
    policy,
    record,
    storeFile: trust.store.file,
    ...keyLookups(trust.store, boxKeys),
    now,
    mode,
    allowDowngrade: trust.allowDowngrade,
  });
  const trustedBy = new Map(decision.trusted.map((t) => [t.fingerprint, t]));
  const reports: SignerReport[] = signers.map((s) => {
    const t = trustedBy.get(s.fingerprint);
    return {
      fingerprint: s.fingerprint,
      signingKey: s.signingKey,
      userIds: s.userIds,
      algorithm: s.algorithm,
      created: s.created,
      valid: s.valid,
      ...(s.code ? { code: s.code, reason: s.reason } : {}),
      trusted: Boolean(t),
      ...(t ? { via: t.via, explanation: t.explanation } : {}),
    };
  });
  return {
    signed: true,
    manifest,
    manifestBytes: prefix.manifest,
    box: manifest.box,
    signers: reports,
    decision,
    policy,
    warnings: decision.warnings,
    expectation: expectationOf(manifest),
    signerKeys: new Map(signers.filter((s) => s.key).map((s) => [s.fingerprint, s.key!])),
  };
}

export { checkSigners, keyLookups };

export function expectationOf(m: Manifest): Expectation {
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

export { usage };
