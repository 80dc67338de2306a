/**
 * The trust decision for one signed box, read as its policy: which valid
 * signers are trusted for the box name and why (pins, organisation chains,
 * first use and rotation), then the threshold, claims, expiry, revocation and
 * rollback. Each check is a small function with one job that refuses with one
 * stable code.
 */
import type * as openpgp from 'openpgp';
import { refuse } from '../errors.js';
import type { Manifest } from '../manifest/manifest.js';
import type { SignatureCheck } from '../keys/verify.js';
import { checkCertifications, scopeFilter } from '../keys/certify.js';
import type { ResolvedPolicy } from './config.js';
import type { TrustRecord } from '../trust/store.js';
import type { KeyChange } from '../trust/records.js';
import { compareVersions } from './version.js';

/** One signer of a box: the keys layer's verdict on its signature, and its key. */
export interface Signer extends SignatureCheck {
  /** The signer's key (from the box, merged with the keyring), when available. */
  key: openpgp.PublicKey | null;
}

export type TrustPath = 'pin' | 'org' | 'tofu-recorded' | 'tofu-first-use' | 'tofu-rotation' | 'tofu-certified';

export interface TrustedSigner {
  fingerprint: string;
  via: TrustPath;
  explanation: string;
}

/** What trust on first use changes in the record of the name. */
export type TofuAction = KeyChange;

export interface Decision {
  trusted: TrustedSigner[];
  warnings: string[];
  tofu: TofuAction | null;
  /** A human summary of the trust path. */
  summary: string;
}

export interface DecideInput {
  manifest: Manifest;
  /** Every signer, none of them with a bad signature (see checkSignaturesIntact). */
  signers: Signer[];
  policy: ResolvedPolicy;
  /** The record of this name in the trust store (undefined: never seen). */
  record: TrustRecord | undefined;
  /** Where the record lives (for messages). */
  storeFile: string;
  /** Look up an org key (keyring, or the box's keys). */
  orgKey: (fpr: string) => Promise<openpgp.PublicKey | null>;
  /** Look up a key recorded by TOFU (for certifications by a recorded key). */
  recordedKey: (fpr: string) => Promise<openpgp.PublicKey | null>;
  now: Date;
  /** add records TOFU and checks rollback; verify only reads. */
  mode: 'verify' | 'add';
  allowDowngrade?: boolean;
}

/** What the trust paths found: the trusted signers and why the others are not. */
interface Findings {
  valid: Signer[];
  unusable: Signer[];
  trusted: Map<string, TrustedSigner>;
  /** Signers whose signature does not count, but that a trust path would have trusted. */
  wouldTrust: Set<string>;
  /** Why signers were not trusted (for the UNTRUSTED_KEY message). */
  notes: string[];
  /** Chains that failed only because the organisation key is revoked. */
  revokedChains: string[];
  tofu: TofuAction | null;
  warnings: string[];
}

const short = (f: string) => f.slice(-16);
const plural = (n: number, one: string, many: string) => (n === 1 ? one : many);

/**
 * The policy. Preconditions, checked once by the caller before anything is
 * judged: the box has signatures (checkSignaturesRequired) and none of them is
 * bad (checkSignaturesIntact).
 */
export async function decideTrust(input: DecideInput): Promise<Decision> {
  const found = newFindings(input.signers);
  trustPinned(input, found);
  await trustOrganisationChains(input, found);
  await trustOnFirstUseOrRotation(input, found);
  if (found.trusted.size < input.policy.threshold) {
    checkLostSignatures(input, found);
    checkThreshold(input, found);
    checkKeyChanged(input, found);
    checkRevokedChains(input, found);
    checkUsableSignatures(found);
    refuseUntrusted(input, found);
  }
  checkClaims(input);
  const warnings = [...found.warnings, checkExpiry(input), checkRollback(input)].filter((w): w is string => Boolean(w));
  return decision(found, warnings);
}

/** A box without signatures is refused unless its policy makes them optional. */
export function checkSignaturesRequired(policy: ResolvedPolicy, name: string, what: string): void {
  if (policy.signatures === 'optional') return;
  throw refuse('UNSIGNED', what, { name });
}

/** A signature that does not verify refuses the whole box: something tampered with it. */
export function checkSignaturesIntact(signers: Signer[]): void {
  const bad = signers.find((s) => !s.valid && (s.code === 'BAD_SIGNATURE' || s.code === 'MALFORMED'));
  if (bad) throw refuse(bad.code!, `signature ${bad.fingerprint} is invalid: ${bad.reason}`, { fingerprint: bad.fingerprint });
}

function newFindings(signers: Signer[]): Findings {
  return {
    valid: signers.filter((s) => s.valid),
    unusable: signers.filter((s) => !s.valid),
    trusted: new Map(),
    wouldTrust: new Set(),
    notes: [],
    revokedChains: [],
    tofu: null,
    warnings: signers.flatMap((s) => s.warnings),
  };
}

function trust(found: Findings, fingerprint: string, via: TrustPath, explanation: string): void {
  found.trusted.set(fingerprint, { fingerprint, via, explanation });
}

/** Nothing pinned and no organisation covering the name: trust on first use applies. */
function underTofu(policy: ResolvedPolicy): boolean {
  return policy.pins.length === 0 && policy.org === null;
}

/** Pins: a signer whose primary fingerprint is pinned for the name. */
function trustPinned({ policy, manifest }: DecideInput, found: Findings): void {
  if (!policy.pins.length) return;
  for (const s of found.valid) if (policy.pins.includes(s.fingerprint)) trust(found, s.fingerprint, 'pin', `pinned for ${policy.origin.pin ?? 'this box'}`);
  for (const s of found.unusable) if (policy.pins.includes(s.fingerprint)) found.wouldTrust.add(s.fingerprint);
  if (found.trusted.size === 0) {
    found.notes.push(
      `signed by ${found.valid.map((s) => s.fingerprint).join(', ') || 'no valid key'}, but ${manifest.box.name} is pinned to ${policy.pins.join(', ')} by ${policy.origin.pin ?? 'configuration'}`,
    );
  }
}

/** Organisation chains: a configured org key certified a `boxsig:<glob>` user ID covering the name. */
async function trustOrganisationChains(input: DecideInput, found: Findings): Promise<void> {
  const { policy, now, manifest } = input;
  if (!policy.org) return;
  const { scope, keys: orgFprs, source } = policy.org;
  for (const s of [...found.valid, ...found.unusable]) {
    if (found.trusted.has(s.fingerprint) || !s.key) continue;
    for (const orgFpr of orgFprs) {
      const orgKey = await input.orgKey(orgFpr);
      if (!orgKey) {
        found.notes.push(`organisation key ${orgFpr} for "${scope}" is not in the keyring (import it: boxsig key import ORG.asc)`);
        continue;
      }
      const checks = await checkCertifications(s.key, orgKey, now, policy.revocation, scopeFilter(scope, manifest.box.name));
      const ok = checks.find((c) => c.ok);
      if (ok && !s.valid) {
        found.wouldTrust.add(s.fingerprint);
        continue;
      }
      if (ok) {
        if (ok.warning) found.warnings.push(ok.warning);
        const glob = ok.userId.slice('boxsig:'.length);
        trust(found, s.fingerprint, 'org', `certified by organisation key ${orgFpr} for "${glob}" (scope "${scope}" from ${source})`);
        break;
      }
      if (checks.length === 0) found.notes.push(`key ${s.fingerprint} carries no certification by organisation key ${orgFpr}`);
      else found.notes.push(...checks.map((c) => `key ${s.fingerprint}: ${c.userId}: ${c.reason}`));
      const revokedCert = checks.find((c) => c.revoked);
      if (revokedCert && s.valid) {
        found.revokedChains.push(`${s.fingerprint} is certified only by organisation key ${orgFpr}, which is revoked: ${revokedCert.reason}`);
      }
    }
  }
}

/**
 * Trust on first use, where nothing is pinned and no organisation covers the
 * name: the first box records its signers; later boxes need a recorded key,
 * or a new key proven by one (co-signature or certification: rotation).
 */
async function trustOnFirstUseOrRotation(input: DecideInput, found: Findings): Promise<void> {
  if (!underTofu(input.policy)) return;
  const recorded = input.record?.keys ?? [];
  for (const s of found.unusable) if (recorded.length === 0 || recorded.includes(s.fingerprint)) found.wouldTrust.add(s.fingerprint);
  if (recorded.length === 0) return trustFirstUse(input, found);
  const byRecorded = found.valid.filter((s) => recorded.includes(s.fingerprint));
  for (const s of byRecorded)
    trust(found, s.fingerprint, 'tofu-recorded', `recorded for ${input.manifest.box.name} on ${input.record!.firstSeen.slice(0, 10)}`);
  const newcomers = found.valid.filter((s) => !recorded.includes(s.fingerprint));
  if (!newcomers.length) return;
  if (byRecorded.length) return trustCoSigned(found, recorded, byRecorded, newcomers);
  await trustCertifiedByRecorded(input, found, recorded, newcomers);
}

function trustFirstUse(input: DecideInput, found: Findings): void {
  const explanation =
    input.mode === 'add' ? 'trusted on first use (now recorded)' : 'not pinned and never seen before (boxsig add would trust it on first use)';
  for (const s of found.valid) trust(found, s.fingerprint, 'tofu-first-use', explanation);
  const keys = found.valid.map((s) => s.fingerprint);
  if (keys.length) found.tofu = { kind: 'first-use', keys, added: keys };
}

/** Rotation by co-signature: a recorded key signed the same box. */
function trustCoSigned(found: Findings, recorded: string[], byRecorded: Signer[], newcomers: Signer[]): void {
  const cosigners = byRecorded.map((r) => r.fingerprint).join(', ');
  for (const s of newcomers) trust(found, s.fingerprint, 'tofu-rotation', `co-signed with recorded key ${cosigners} (key rotation)`);
  const added = newcomers.map((s) => s.fingerprint);
  found.tofu = { kind: 'rotation', keys: [...recorded, ...added], added };
}

/** Rotation by certification: a recorded key certified the new key. */
async function trustCertifiedByRecorded(input: DecideInput, found: Findings, recorded: string[], newcomers: Signer[]): Promise<void> {
  const added: string[] = [];
  for (const s of newcomers) {
    const certifier = s.key ? await recordedCertifier(input, found, s.key, recorded) : null;
    if (!certifier) continue;
    trust(found, s.fingerprint, 'tofu-certified', `certified by recorded key ${certifier} (key rotation)`);
    added.push(s.fingerprint);
  }
  if (added.length) found.tofu = { kind: 'certified', keys: [...recorded, ...added], added };
}

/** The recorded key that certified `key`, if any. */
async function recordedCertifier(input: DecideInput, found: Findings, key: openpgp.PublicKey, recorded: string[]): Promise<string | null> {
  for (const r of recorded) {
    const rk = await input.recordedKey(r);
    if (!rk) continue;
    const ok = (await checkCertifications(key, rk, input.now, input.policy.revocation)).find((c) => c.ok);
    if (!ok) continue;
    if (ok.warning) found.warnings.push(ok.warning);
    return r;
  }
  return null;
}

/** A signer a trust path would have counted, whose signature does not count (revoked, expired, key missing). */
function checkLostSignatures({ policy }: DecideInput, found: Findings): void {
  const lost = found.unusable.find((s) => found.wouldTrust.has(s.fingerprint));
  if (!lost) return;
  const left = found.trusted.size ? ` (${found.trusted.size} of ${policy.threshold} required trusted signatures remain)` : '';
  throw refuse(lost.code!, `${lost.reason}${left}`, { fingerprint: lost.fingerprint });
}

/** Some signers are trusted, but fewer than the threshold. */
function checkThreshold({ policy, manifest }: DecideInput, found: Findings): void {
  const n = found.trusted.size;
  if (n === 0) return;
  throw refuse(
    'THRESHOLD_NOT_MET',
    `box ${manifest.box.name} has ${n} trusted ${plural(n, 'signature', 'signatures')}; the policy (${policy.origin.threshold ?? 'threshold'}) requires ${policy.threshold} distinct trusted keys`,
    { trusted: [...found.trusted.keys()], threshold: policy.threshold },
  );
}

/** Under trust on first use, a box signed only by keys that are neither recorded nor proven by one. */
function checkKeyChanged(input: DecideInput, found: Findings): void {
  const { policy, record, manifest } = input;
  const recorded = record?.keys ?? [];
  if (!underTofu(policy) || !recorded.length || !found.valid.length) return;
  const name = manifest.box.name;
  const newFprs = found.valid.map((s) => s.fingerprint);
  const accept = `boxsig trust accept ${name} ${newFprs[0]}`;
  throw refuse(
    'KEY_CHANGED',
    [
      `the signing key of ${name} changed.`,
      `  recorded (trusted on first use ${record!.firstSeen.slice(0, 10)}): ${recorded.join(', ')}`,
      `  this box is signed by:  ${newFprs.join(', ')}`,
      `  the record lives in ${input.storeFile}`,
      'The new key is neither co-signed by nor certified by a recorded key. If the publisher really changed keys, accept it with:',
      `  ${accept}`,
    ].join('\n'),
    { name, recorded, signers: newFprs, store: input.storeFile },
    accept,
  );
}

/** A chain that failed only because its organisation key is revoked. */
function checkRevokedChains({ manifest }: DecideInput, found: Findings): void {
  if (!found.revokedChains.length) return;
  throw refuse('KEY_REVOKED', `box ${manifest.box.name}: ${found.revokedChains.join('; ')}`, { signers: found.valid.map((s) => s.fingerprint) });
}

/** No signature counts at all: the first signer's own reason. */
function checkUsableSignatures(found: Findings): void {
  if (found.valid.length || !found.unusable.length) return;
  const u = found.unusable[0];
  throw refuse(u.code!, u.reason ?? 'signature not usable', { fingerprint: u.fingerprint });
}

function refuseUntrusted({ policy, manifest }: DecideInput, found: Findings): never {
  const signers = found.valid.map((s) => `${s.fingerprint} (${s.userIds[0] ?? 'no user ID'})`).join(', ');
  const why = found.notes.length ? ':\n  ' + found.notes.join('\n  ') : '';
  throw refuse('UNTRUSTED_KEY', `box ${manifest.box.name} is signed by ${signers}, which ${plural(found.valid.length, 'is', 'are')} not trusted for it${why}`, {
    signers: found.valid.map((s) => s.fingerprint),
    pins: policy.pins,
    org: policy.org,
  });
}

/** Every claim the policy requires, with the required value. */
function checkClaims({ policy, manifest }: DecideInput): void {
  for (const [k, v] of policy.claims) {
    const got = Object.hasOwn(manifest.claims, k) ? manifest.claims[k] : undefined;
    if (got === v) continue;
    throw refuse(
      'CLAIM_MISMATCH',
      `claim ${k} is ${got === undefined ? 'missing' : JSON.stringify(got)}; the policy (${policy.origin.claims ?? 'claims'}) requires ${JSON.stringify(v)}`,
      { claim: k, expected: v, actual: got ?? null },
    );
  }
}

/** The signed manifest's own expiry (a warning when the policy says expiry: warn). */
function checkExpiry({ manifest, policy, now }: DecideInput): string | null {
  if (!manifest.expires || now.getTime() < Date.parse(manifest.expires)) return null;
  const msg = `the signed manifest of ${manifest.box.name} ${manifest.box.version} expired on ${manifest.expires}`;
  if (policy.expiry === 'enforce') throw refuse('EXPIRED', `${msg}; ask the publisher for a fresh signature`, { expires: manifest.expires });
  return `${msg}; accepted because the policy says expiry: warn`;
}

function checkRollback({ mode, manifest, record, policy, allowDowngrade }: DecideInput): string | null {
  if (mode !== 'add') return null;
  return checkVersionRollback({ name: manifest.box.name, version: manifest.box.version, highest: record?.highestVersion, policy, allowDowngrade });
}

/**
 * Rollback: a version lower than the highest accepted for the name (signed or
 * not) is refused, unless --allow-downgrade or the policy says rollback: warn.
 */
export function checkVersionRollback(o: {
  name: string;
  version: string;
  highest: string | undefined;
  policy: Pick<ResolvedPolicy, 'rollback'>;
  allowDowngrade?: boolean;
}): string | null {
  if (!o.highest || compareVersions(o.version, o.highest) >= 0) return null;
  const msg = `${o.name} ${o.version} is older than ${o.highest}, the highest version already accepted`;
  if (o.allowDowngrade) return `${msg}; accepted because of --allow-downgrade`;
  if (o.policy.rollback === 'warn') return `${msg}; accepted because the policy says rollback: warn`;
  throw refuse(
    'ROLLBACK',
    `${msg} (a rollback?); add it deliberately with --allow-downgrade`,
    { version: o.version, highest: o.highest },
    'boxsig add … --allow-downgrade',
  );
}

/** Whether `version` becomes the highest accepted version of the name. */
export function isNewHighest(version: string, highest: string | undefined): boolean {
  return !highest || compareVersions(version, highest) > 0;
}

function decision(found: Findings, warnings: string[]): Decision {
  const trusted = [...found.trusted.values()];
  const summary = trusted.map((t) => `${short(t.fingerprint)}: ${t.explanation}`).join('; ');
  return { trusted, warnings, tofu: found.tofu, summary };
}
