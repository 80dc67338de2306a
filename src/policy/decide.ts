/**
 * The trust decision for one signed box, read as its policy: which valid
 * signers are trusted for the box name and why — through exactly one path:
 * pins where a pin applies, else organisation chains where an organisation
 * covers the name, else trust on first use and rotation — then the
 * threshold, claims, expiry, revocation and rollback. Each check is a small
 * function with one job that refuses with one stable code.
 */
import type * as openpgp from 'openpgp';
import { refuse } from '../errors.js';
import { namesSigner, type Manifest } from '../manifest/manifest.js';
import type { SignatureCheck } from '../keys/verify.js';
import { BOXSIG_UID_PREFIX, checkCertifications, nameFilter, scopeFilter } from '../keys/certify.js';
import type { ResolvedPolicy } from './config.js';
import type { RetiredKey, TrustRecord } from '../trust/record-files.js';
import type { KeyChange } from '../trust/records.js';
import { countTrusted } from './threshold.js';
import { compareVersions } from '../shared/version.js';

/** One signer of a box: the keys layer's verdict on its signature, and its key. */
export interface Signer extends SignatureCheck {
  /** The signer's key (from the box, merged with the keyring), when available. */
  key: openpgp.PublicKey | null;
}

export type TrustPath = 'pin' | 'org' | 'tofu-recorded' | 'tofu-first-use' | 'tofu-rotation' | 'tofu-certified' | 'tofu-replaced';

export interface TrustedSigner {
  fingerprint: string;
  signingKey: string;
  via: TrustPath;
  explanation: string;
  /** The keys trusted before this box that this signer's trust rests on (empty: it adds nothing to the threshold). */
  basis: string[];
  /** Not trusted yet: what `add` would do on first use (verify only). */
  unknown?: true;
}

/** What trust on first use changes in the record of the name. */
export type TofuAction = KeyChange;

export interface Decision {
  trusted: TrustedSigner[];
  /** Distinct trusted keys behind the box (what the threshold counts). */
  count: number;
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
  /** verify: a signer that is neither pinned, certified nor recorded is refused (UNTRUSTED_KEY). */
  requireTrusted?: boolean;
}

/** What the trust path found: the trusted signers and why the others are not. */
interface Findings {
  valid: Signer[];
  unusable: Signer[];
  trusted: Map<string, TrustedSigner>;
  /** Signers whose signature does not count, but that the trust path would have trusted. */
  wouldTrust: Set<string>;
  /** Why signers were not trusted (for the refusal message). */
  notes: string[];
  /** Chains that failed only because the organisation key is revoked. */
  revokedChains: string[];
  /** Signatures by keys the signed manifest does not name: ignored (why, for messages). */
  ignored: string[];
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
  const found = newFindings(input, input.policy);
  await trustThroughPath(input, found);
  const count = countTrusted([...found.trusted.values()]);
  if (count < input.policy.threshold) {
    checkNamedSignatures(input, found);
    checkLostSignatures(input, found, count);
    checkThreshold(input, found, count);
    checkNoKeyLeft(input, found);
    checkKeyChanged(input, found);
    checkRevokedChains(input, found);
    checkUsableSignatures(found);
    refuseUntrusted(input, found);
  }
  checkKnownSigners(input, found);
  checkClaims(input);
  const warnings = [...found.warnings, unknownSignerWarning(input, found), checkExpiry(input), checkRollback(input)];
  return decision(found, count, warnings);
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

/**
 * The signers the decision looks at: only those the signed manifest names,
 * when it names its signers. A detached signature is separable and addable
 * by anyone who has the box; a signature the manifest's own signers did not
 * commit to counts for nothing, whatever its key (reported).
 */
function newFindings({ manifest, signers: all }: DecideInput, policy: ResolvedPolicy): Findings {
  const signers = all.filter((s) => namesSigner(manifest, s.fingerprint));
  const ignored = all
    .filter((s) => !namesSigner(manifest, s.fingerprint))
    .map((s) => `the signature by ${s.fingerprint} is ignored: it is not named by the signed manifest, whose signers are ${manifest.signers!.join(', ')}`);
  return {
    valid: signers.filter((s) => s.valid),
    unusable: signers.filter((s) => !s.valid),
    trusted: new Map(),
    wouldTrust: new Set(),
    notes: [...policy.warnings, ...ignored],
    revokedChains: [],
    ignored,
    tofu: null,
    warnings: [...signers.flatMap((s) => s.warnings), ...ignored],
  };
}

function trust(found: Findings, s: Signer, via: TrustPath, explanation: string, basis = [s.fingerprint]): void {
  found.trusted.set(s.fingerprint, { fingerprint: s.fingerprint, signingKey: s.signingKey, via, explanation, basis });
}

/**
 * Exactly one path applies to a name. A pin narrows: where a pin applies,
 * only the pinned keys count (as apt's Signed-By). Where an organisation
 * covers the name, only its chains count. Trust on first use applies only
 * where neither does.
 */
async function trustThroughPath(input: DecideInput, found: Findings): Promise<void> {
  await trustThroughOnePath(input, found);
  await narrowToOwnPolicy(input, found);
}

async function trustThroughOnePath(input: DecideInput, found: Findings): Promise<void> {
  if (input.policy.pins.length) return trustPinned(input, found);
  if (input.policy.org) return trustOrganisationChains(input, found);
  return trustOnFirstUseOrRotation(input, found);
}

/**
 * A project layer narrows, never widens: where a project's pin or
 * organisation decided the path, a signer counts only if the user's own
 * policy trusts it too — the user's pins, organisations, or the record of
 * the name (trust on first use). A name the user has no word on (no own pin,
 * organisation or record) takes the project's path as it is.
 */
async function narrowToOwnPolicy(input: DecideInput, found: Findings): Promise<void> {
  const own = input.policy.own;
  if (!own || underTofu(input.policy)) return;
  if (!own.pins.length && !own.org && !input.record?.keys.length) return;
  const mine = newFindings(input, own);
  await trustThroughOnePath({ ...input, policy: own }, mine);
  const source = input.policy.pins.length ? input.policy.origin.pin : input.policy.org?.source;
  for (const fpr of [...found.trusted.keys()]) {
    if (mine.trusted.has(fpr)) continue;
    found.trusted.delete(fpr);
    found.notes.push(
      `${fpr} is trusted by ${source ?? 'a project file'} but not by your own configuration or record for ${input.manifest.box.name}: a project file narrows your trust, it never widens it`,
    );
  }
  for (const f of [...found.wouldTrust]) if (!mine.wouldTrust.has(f)) found.wouldTrust.delete(f);
  found.notes.push(...mine.notes.filter((n) => !found.notes.includes(n)));
  if (underTofu(own)) found.tofu = mine.tofu;
}

function underTofu(policy: ResolvedPolicy): boolean {
  return policy.pins.length === 0 && policy.org === null;
}

/** Pins: a signer whose primary fingerprint is pinned for the name. */
function trustPinned({ policy, manifest }: DecideInput, found: Findings): void {
  for (const s of found.valid) if (policy.pins.includes(s.fingerprint)) trust(found, s, 'pin', `pinned for ${policy.origin.pin ?? 'this box'}`);
  for (const s of found.unusable) if (policy.pins.includes(s.fingerprint)) found.wouldTrust.add(s.fingerprint);
  if (found.trusted.size) return;
  const signers = found.valid.map((s) => s.fingerprint).join(', ') || 'no valid key';
  const narrows = policy.org ? ` (a pin narrows: the organisation chains of "${policy.org.scope}" do not apply)` : '';
  found.notes.push(
    `signed by ${signers}, but ${manifest.box.name} is pinned to ${policy.pins.join(', ')} by ${policy.origin.pin ?? 'configuration'}${narrows}`,
  );
}

/** Organisation chains: a configured org key certified a `boxsig:<glob>` user ID covering the name. */
async function trustOrganisationChains(input: DecideInput, found: Findings): Promise<void> {
  for (const s of [...found.valid, ...found.unusable]) {
    if (!s.key) continue;
    for (const orgFpr of input.policy.org!.keys) {
      if (await trustOrganisationChain(input, found, s, orgFpr)) break;
    }
  }
}

/** One signer, one org key: true when the chain holds. */
async function trustOrganisationChain(input: DecideInput, found: Findings, s: Signer, orgFpr: string): Promise<boolean> {
  const { scope, source } = input.policy.org!;
  const orgKey = await input.orgKey(orgFpr);
  if (!orgKey) {
    found.notes.push(`organisation key ${orgFpr} for "${scope}" is not in the keyring (import it: boxsig key import ORG.asc)`);
    return false;
  }
  const checks = await checkCertifications(s.key!, orgKey, input.now, input.policy.revocation, scopeFilter(scope, input.manifest.box.name));
  const ok = checks.find((c) => c.ok);
  if (ok && !s.valid) found.wouldTrust.add(s.fingerprint);
  if (ok && s.valid) {
    if (ok.warning) found.warnings.push(ok.warning);
    const glob = ok.userId.slice(BOXSIG_UID_PREFIX.length);
    trust(found, s, 'org', `certified by organisation key ${orgFpr} for "${glob}" (scope "${scope}" from ${source})`);
  }
  if (ok) return true;
  if (checks.length === 0) found.notes.push(`key ${s.fingerprint} carries no certification by organisation key ${orgFpr}`);
  else found.notes.push(...checks.map((c) => `key ${s.fingerprint}: ${c.userId}: ${c.reason}`));
  const revokedCert = checks.find((c) => c.revoked);
  if (revokedCert && s.valid)
    found.revokedChains.push(`${s.fingerprint} is certified only by organisation key ${orgFpr}, which is revoked: ${revokedCert.reason}`);
  return false;
}

/**
 * Trust on first use, where nothing is pinned and no organisation covers the
 * name: the first box of a name never seen records its signers; once a name
 * has a record it is never first use again. Later boxes need a recorded key,
 * or a new key proven by one (co-signature, or certification of a
 * `boxsig:<glob>` user ID covering the name: rotation); a key that
 * `trust accept` replaced still vouches for the boxes it signed before.
 */
async function trustOnFirstUseOrRotation(input: DecideInput, found: Findings): Promise<void> {
  const { record } = input;
  if (!record) return trustFirstUse(input, found);
  for (const s of found.unusable) if (record.keys.includes(s.fingerprint)) found.wouldTrust.add(s.fingerprint);
  const byRecorded = found.valid.filter((s) => record.keys.includes(s.fingerprint));
  for (const s of byRecorded) trust(found, s, 'tofu-recorded', `recorded for ${input.manifest.box.name} on ${record.firstSeen.slice(0, 10)}`);
  const others = found.valid.filter((s) => !record.keys.includes(s.fingerprint));
  const newcomers = others.filter((s) => !trustReplaced(input, found, s));
  if (!newcomers.length) return;
  if (byRecorded.length && input.manifest.signers) return trustCoSigned(found, record.keys, byRecorded, newcomers);
  await trustCertifiedByRecorded(input, found, record.keys, newcomers);
  if (byRecorded.length) noteUnprovenCoSigners(input, found, newcomers);
}

/**
 * A co-signature on a manifest that names no signers proves nothing about the
 * new key: anyone can put a detached signature over the same bytes. Reported,
 * because an older boxsig recorded it as a rotation.
 */
function noteUnprovenCoSigners({ manifest }: DecideInput, found: Findings, newcomers: Signer[]): void {
  const unproven = newcomers.filter((s) => !found.trusted.has(s.fingerprint)).map((s) => s.fingerprint);
  if (!unproven.length) return;
  const note = `the co-signature by ${unproven.join(', ')} proves no key rotation for ${manifest.box.name}: the signed manifest does not name its signers, so a recorded key's signature does not vouch for ${plural(unproven.length, 'it', 'them')} (a publisher rotates by signing with the old and the new key at once, or by certifying the new key with the old one); ${plural(unproven.length, 'it counts', 'they count')} for nothing`;
  found.notes.push(note);
  found.warnings.push(note);
}

function trustFirstUse(input: DecideInput, found: Findings): void {
  const name = input.manifest.box.name;
  const explanation =
    input.mode === 'add'
      ? 'trusted on first use (now recorded)'
      : `valid signature by a key that is neither pinned, certified nor recorded for ${name}; boxsig add would trust it on first use and record it`;
  for (const s of found.valid) trust(found, s, 'tofu-first-use', explanation);
  if (input.mode === 'verify') for (const t of found.trusted.values()) t.unknown = true;
  for (const s of found.unusable) found.wouldTrust.add(s.fingerprint);
  const keys = found.valid.map((s) => s.fingerprint);
  if (keys.length) found.tofu = { kind: 'first-use', keys, added: keys };
}

/**
 * A key `trust accept` replaced: its signatures made before it was replaced,
 * on versions up to the highest accepted then, still count (true: handled,
 * trusted or not).
 */
function trustReplaced(input: DecideInput, found: Findings, s: Signer): boolean {
  const r = input.record!.retired?.find((x) => x.key === s.fingerprint);
  if (!r) return false;
  const why = replacedProblem(r, s, input.manifest.box.version);
  if (why) found.notes.push(`key ${s.fingerprint} ${why}`);
  else
    trust(
      found,
      s,
      'tofu-replaced',
      `recorded for ${input.manifest.box.name} until ${r.since.slice(0, 10)} (replaced by boxsig trust accept); signed before that`,
    );
  return true;
}

function replacedProblem(r: RetiredKey, s: Signer, version: string): string | null {
  if (r.distrusted) return `was distrusted on ${r.since.slice(0, 10)} (boxsig trust accept --distrust-old): none of its signatures count`;
  if (Date.parse(s.created) > Date.parse(r.since)) return `was replaced on ${r.since.slice(0, 10)}; signatures it made since do not count`;
  if (r.upTo && compareVersions(version, r.upTo) > 0) return `was replaced when ${r.upTo} was the highest version; it cannot have signed a later one before`;
  return null;
}

/**
 * Rotation by co-signature: a recorded key signed a manifest that names the
 * new key among its signers (so the recorded key's owner meant it). The new
 * key adds nothing to the threshold.
 */
function trustCoSigned(found: Findings, recorded: string[], byRecorded: Signer[], newcomers: Signer[]): void {
  const cosigners = byRecorded.map((r) => r.fingerprint).join(', ');
  for (const s of newcomers) trust(found, s, 'tofu-rotation', `co-signed with recorded key ${cosigners} (key rotation)`, []);
  const added = newcomers.map((s) => s.fingerprint);
  found.tofu = { kind: 'rotation', keys: [...recorded, ...added], added };
}

/** Rotation by certification: recorded keys certified a `boxsig:<glob>` user ID of the new key covering the name. */
async function trustCertifiedByRecorded(input: DecideInput, found: Findings, recorded: string[], newcomers: Signer[]): Promise<void> {
  const added: string[] = [];
  for (const s of newcomers) {
    const certifiers = s.key ? await recordedCertifiers(input, found, s, recorded) : [];
    if (!certifiers.length) continue;
    trust(found, s, 'tofu-certified', `certified by recorded key ${certifiers.join(', ')} (key rotation)`, certifiers);
    added.push(s.fingerprint);
  }
  if (added.length) found.tofu = { kind: 'certified', keys: [...recorded, ...added], added };
}

/** The recorded keys that certified a `boxsig:<glob>` user ID of the signer's key whose glob covers the name. */
async function recordedCertifiers(input: DecideInput, found: Findings, s: Signer, recorded: string[]): Promise<string[]> {
  const certifiers: string[] = [];
  for (const r of recorded) {
    const rk = await input.recordedKey(r);
    if (!rk) continue;
    const checks = await checkCertifications(s.key!, rk, input.now, input.policy.revocation, nameFilter(input.manifest.box.name));
    const ok = checks.find((c) => c.ok);
    if (ok?.warning) found.warnings.push(ok.warning);
    if (ok) certifiers.push(r);
    else found.notes.push(...checks.map((c) => `key ${s.fingerprint}: ${c.userId}: ${c.reason} (certified by recorded key ${r})`));
  }
  return certifiers;
}

/** Every signature is by a key the signed manifest does not name: none of its own signers signed it. */
function checkNamedSignatures({ manifest }: DecideInput, found: Findings): void {
  if (found.valid.length || found.unusable.length || !found.ignored.length) return;
  throw refuse('UNTRUSTED_KEY', `box ${manifest.box.name} carries no signature by a signer its manifest names:\n  ${found.ignored.join('\n  ')}`, {
    named: manifest.signers,
  });
}

/** A signer the trust path would have counted, whose signature does not count (revoked, expired, key missing). */
function checkLostSignatures({ policy }: DecideInput, found: Findings, count: number): void {
  const lost = found.unusable.find((s) => found.wouldTrust.has(s.fingerprint));
  if (!lost) return;
  const left = count ? ` (${count} of ${policy.threshold} required trusted signatures remain)` : '';
  throw refuse(lost.code!, `${lost.reason}${left}`, { fingerprint: lost.fingerprint });
}

/** Some signers are trusted, but they stand for fewer distinct keys trusted before this box than the threshold. */
function checkThreshold({ policy, manifest }: DecideInput, found: Findings, count: number): void {
  if (found.trusted.size === 0) return;
  const why = [...thresholdNotes([...found.trusted.values()]), ...found.ignored];
  throw refuse(
    'THRESHOLD_NOT_MET',
    `box ${manifest.box.name} has ${count} distinct trusted ${plural(count, 'key', 'keys')}; the policy (${policy.origin.threshold ?? 'threshold'}) requires ${policy.threshold}${why.length ? `:\n  ${why.join('\n  ')}` : ''}`,
    { trusted: [...found.trusted.keys()], count, threshold: policy.threshold },
  );
}

/** Why trusted signers count for less than their number. */
function thresholdNotes(trusted: TrustedSigner[]): string[] {
  const notes: string[] = [];
  for (const t of trusted) {
    if (t.basis.length === 0) notes.push(`${t.fingerprint} is trusted only because a recorded key co-signed this box; it does not count`);
    else if (t.basis[0] !== t.fingerprint) notes.push(`${t.fingerprint} counts as ${t.basis.join(' or ')}, the recorded key that certified it`);
  }
  const bySigningKey = new Map<string, string[]>();
  for (const t of trusted) bySigningKey.set(t.signingKey, [...(bySigningKey.get(t.signingKey) ?? []), t.fingerprint]);
  for (const [k, primaries] of bySigningKey) if (primaries.length > 1) notes.push(`${primaries.join(' and ')} sign with the same key ${k}; it counts once`);
  return notes;
}

/** A name with a record but no key left (the last one was forgotten): never first use again. */
function checkNoKeyLeft({ policy, record, manifest, storeFile }: DecideInput, found: Findings): void {
  if (!underTofu(policy) || !record || record.keys.length || !found.valid.length) return;
  const name = manifest.box.name;
  const fpr = found.valid[0].fingerprint;
  const accept = `boxsig trust accept ${name} ${fpr}`;
  throw refuse(
    'UNTRUSTED_KEY',
    [
      `box ${name} is signed by ${found.valid.map((s) => s.fingerprint).join(', ')}, but no key is trusted for ${name}:`,
      `  its record (first seen ${record.firstSeen.slice(0, 10)}${record.highestVersion ? `, highest version ${record.highestVersion}` : ''}) in ${storeFile} has no key left,`,
      '  and a name that has a record is never trusted on first use again. After checking the key, trust it with:',
      `  ${accept}    (or pin it: boxsig trust pin ${name} ${fpr})`,
    ].join('\n'),
    { name, signers: found.valid.map((s) => s.fingerprint), store: storeFile },
    accept,
  );
}

/** Under trust on first use, a box signed only by new keys that no recorded key proves. */
function checkKeyChanged(input: DecideInput, found: Findings): void {
  const { policy, record, manifest } = input;
  const replaced = new Set(record?.retired?.map((r) => r.key));
  const newFprs = found.valid.map((s) => s.fingerprint).filter((f) => !replaced.has(f));
  const tofu = underTofu(policy) || (policy.own !== undefined && underTofu(policy.own));
  if (!tofu || !record?.keys.length || !newFprs.length) return;
  const name = manifest.box.name;
  const accept = `boxsig trust accept ${name} ${newFprs[0]}`;
  throw refuse(
    'KEY_CHANGED',
    [
      `the signing key of ${name} changed.`,
      `  recorded (trusted on first use ${record.firstSeen.slice(0, 10)}): ${record.keys.join(', ')}`,
      `  this box is signed by:  ${newFprs.join(', ')}`,
      `  the record lives in ${input.storeFile}`,
      'The new key is neither co-signed by nor certified by a recorded key for this name.',
      ...found.notes.map((n) => `  ${n}`),
      'If the publisher really changed keys, check the new key through another channel and accept it with:',
      `  ${accept}`,
      '(boxes the recorded key signed before stay valid; add --distrust-old if it is compromised)',
    ].join('\n'),
    { name, recorded: record.keys, signers: newFprs, store: input.storeFile },
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

/** verify --require-trusted: a valid signature by an unknown signer is not enough. */
function checkKnownSigners({ requireTrusted, manifest }: DecideInput, found: Findings): void {
  const unknown = [...found.trusted.values()].filter((t) => t.unknown);
  if (!requireTrusted || !unknown.length) return;
  throw refuse(
    'UNTRUSTED_KEY',
    `box ${manifest.box.name}: the signature is valid, but the signer ${unknown.map((t) => t.fingerprint).join(', ')} is unknown (neither pinned, certified by an organisation nor recorded for ${manifest.box.name}), and --require-trusted was given`,
    { signers: unknown.map((t) => t.fingerprint) },
    `pin the key after checking it (boxsig trust pin ${manifest.box.name} ${unknown[0].fingerprint}), or add the box to trust it on first use`,
  );
}

function unknownSignerWarning({ manifest }: DecideInput, found: Findings): string | null {
  const unknown = [...found.trusted.values()].filter((t) => t.unknown);
  if (!unknown.length) return null;
  const name = manifest.box.name;
  return `the signature is valid, but the signer ${unknown.map((t) => t.fingerprint).join(', ')} is unknown: neither pinned, certified by an organisation nor recorded for ${name}. boxsig add would trust it on first use and record it; --require-trusted refuses unknown signers`;
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

function decision(found: Findings, count: number, warnings: Array<string | null>): Decision {
  const trusted = [...found.trusted.values()];
  const summary = trusted.map((t) => `${short(t.fingerprint)}: ${t.explanation}`).join('; ');
  return { trusted, count, warnings: warnings.filter((w): w is string => Boolean(w)), tofu: found.tofu, summary };
}
