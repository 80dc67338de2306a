/**
 * The trust decision for one signed box: which valid signers are trusted and
 * why (pin, organisation chain, trust on first use, rotation), whether the
 * threshold is met, claims, expiry and rollback. Refusals carry the stable
 * codes of PRODUCT.md.
 */
import type * as openpgp from 'openpgp';
import { refuse } from '../errors.js';
import type { Manifest } from '../manifest/manifest.js';
import type { SignatureCheck } from '../keys/verify.js';
import { checkCertifications, nameFilter, scopeFilter } from '../keys/certify.js';
import type { ResolvedPolicy } from './config.js';
import type { TrustRecord } from '../trust/store.js';
import { compareVersions } from './version.js';

export interface Signer extends SignatureCheck {
  /** The signer's key (from the box, merged with the keyring), when available. */
  key: openpgp.PublicKey | null;
}

export interface TrustedSigner {
  fingerprint: string;
  via: 'pin' | 'org' | 'tofu-recorded' | 'tofu-first-use' | 'tofu-rotation' | 'tofu-certified';
  explanation: string;
}

export interface TofuAction {
  kind: 'first-use' | 'rotation' | 'certified';
  /** Keys the record should hold afterwards. */
  keys: string[];
  added: string[];
}

export interface Decision {
  trusted: TrustedSigner[];
  warnings: string[];
  tofu: TofuAction | null;
  /** A human summary of the trust path. */
  summary: string;
}

export interface DecideInput {
  manifest: Manifest;
  signers: Signer[];
  policy: ResolvedPolicy;
  /** The TOFU record for this name (undefined: never seen). */
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

const short = (f: string) => f.slice(-16);

export async function decideTrust(input: DecideInput): Promise<Decision> {
  const { manifest, signers, policy, record, now } = input;
  const name = manifest.box.name;
  const warnings: string[] = [];
  for (const s of signers) warnings.push(...s.warnings);

  if (signers.length === 0) {
    throw refuse('UNSIGNED', `box ${name} has a manifest but no signature`, { name });
  }
  const bad = signers.find((s) => !s.valid && (s.code === 'BAD_SIGNATURE' || s.code === 'MALFORMED'));
  if (bad) {
    throw refuse(bad.code!, `signature ${bad.fingerprint} is invalid: ${bad.reason}`, { fingerprint: bad.fingerprint });
  }
  const valid = signers.filter((s) => s.valid);
  const unusable = signers.filter((s) => !s.valid);

  const trusted = new Map<string, TrustedSigner>();
  const notes: string[] = [];
  const covered = policy.pins.length > 0 || policy.org !== null;

  // 1. pins
  if (policy.pins.length) {
    for (const s of valid) {
      if (policy.pins.includes(s.fingerprint)) {
        trusted.set(s.fingerprint, { fingerprint: s.fingerprint, via: 'pin', explanation: `pinned for ${policy.origin.pin ?? 'this box'}` });
      }
    }
    if (trusted.size === 0)
      notes.push(
        `signed by ${valid.map((s) => s.fingerprint).join(', ') || 'no valid key'}, but ${name} is pinned to ${policy.pins.join(', ')} by ${policy.origin.pin ?? 'configuration'}`,
      );
  }

  // 2. organisation chains
  const chainNotes: string[] = [];
  const orgWouldTrust = new Set<string>();
  /** Chains that failed only because the organisation key is revoked. */
  const revokedChains: string[] = [];
  if (policy.org) {
    const { scope, keys: orgFprs, source } = policy.org;
    for (const s of [...valid, ...unusable]) {
      if (trusted.has(s.fingerprint) || !s.key) continue;
      for (const orgFpr of orgFprs) {
        const orgKey = await input.orgKey(orgFpr);
        if (!orgKey) {
          chainNotes.push(`organisation key ${orgFpr} for "${scope}" is not in the keyring (import it: boxsig key import ORG.asc)`);
          continue;
        }
        const checks = await checkCertifications(s.key, orgKey, now, policy.revocation, scopeFilter(scope, name));
        const ok = checks.find((c) => c.ok);
        if (ok) {
          if (!s.valid) {
            orgWouldTrust.add(s.fingerprint);
            continue;
          }
          if (ok.warning) warnings.push(ok.warning);
          trusted.set(s.fingerprint, {
            fingerprint: s.fingerprint,
            via: 'org',
            explanation: `certified by organisation key ${orgFpr} for "${ok.userId.slice('boxsig:'.length)}" (scope "${scope}" from ${source})`,
          });
          break;
        }
        if (checks.length === 0) chainNotes.push(`key ${s.fingerprint} carries no certification by organisation key ${orgFpr}`);
        else chainNotes.push(...checks.map((c) => `key ${s.fingerprint}: ${c.userId}: ${c.reason}`));
        const revokedCert = checks.find((c) => c.revoked);
        if (revokedCert && s.valid)
          revokedChains.push(`${s.fingerprint} is certified only by organisation key ${orgFpr}, which is revoked: ${revokedCert.reason}`);
      }
    }
  }

  // 3. trust on first use, where nothing is pinned and no organisation covers the name
  let tofu: TofuAction | null = null;
  const recorded = record?.keys ?? [];
  if (!covered) {
    if (recorded.length === 0) {
      for (const s of valid) {
        trusted.set(s.fingerprint, {
          fingerprint: s.fingerprint,
          via: 'tofu-first-use',
          explanation:
            input.mode === 'add' ? 'trusted on first use (now recorded)' : 'not pinned and never seen before (boxsig add would trust it on first use)',
        });
      }
      if (valid.length) tofu = { kind: 'first-use', keys: valid.map((s) => s.fingerprint), added: valid.map((s) => s.fingerprint) };
    } else {
      const byRecorded = valid.filter((s) => recorded.includes(s.fingerprint));
      for (const s of byRecorded) {
        trusted.set(s.fingerprint, {
          fingerprint: s.fingerprint,
          via: 'tofu-recorded',
          explanation: `recorded for ${name} on ${record!.firstSeen.slice(0, 10)}`,
        });
      }
      const newcomers = valid.filter((s) => !recorded.includes(s.fingerprint));
      if (byRecorded.length && newcomers.length) {
        for (const s of newcomers) {
          trusted.set(s.fingerprint, {
            fingerprint: s.fingerprint,
            via: 'tofu-rotation',
            explanation: `co-signed with recorded key ${byRecorded.map((r) => r.fingerprint).join(', ')} (key rotation)`,
          });
        }
        tofu = { kind: 'rotation', keys: [...recorded, ...newcomers.map((s) => s.fingerprint)], added: newcomers.map((s) => s.fingerprint) };
      } else if (!byRecorded.length) {
        // a new key is proven when a recorded key certified it
        for (const s of newcomers) {
          if (!s.key) continue;
          for (const r of recorded) {
            const rk = await input.recordedKey(r);
            if (!rk) continue;
            const checks = await checkCertifications(s.key, rk, now, policy.revocation, nameFilter(name));
            const ok = checks.find((c) => c.ok);
            if (ok) {
              if (ok.warning) warnings.push(ok.warning);
              trusted.set(s.fingerprint, { fingerprint: s.fingerprint, via: 'tofu-certified', explanation: `certified by recorded key ${r} (key rotation)` });
              break;
            }
          }
        }
        const certified = [...trusted.values()].filter((t) => t.via === 'tofu-certified').map((t) => t.fingerprint);
        if (certified.length) tofu = { kind: 'certified', keys: [...recorded, ...certified], added: certified };
      }
    }
  }

  // 4. threshold
  const need = policy.threshold;
  if (trusted.size < need) {
    const wouldTrust = (s: Signer) =>
      policy.pins.includes(s.fingerprint) || orgWouldTrust.has(s.fingerprint) || (!covered && (recorded.includes(s.fingerprint) || recorded.length === 0));
    const lost = unusable.find((s) => wouldTrust(s));
    if (lost) {
      throw refuse(lost.code!, `${lost.reason}${trusted.size ? ` (${trusted.size} of ${need} required trusted signatures remain)` : ''}`, {
        fingerprint: lost.fingerprint,
      });
    }
    if (trusted.size > 0) {
      throw refuse(
        'THRESHOLD_NOT_MET',
        `box ${name} has ${trusted.size} trusted signature${trusted.size === 1 ? '' : 's'}; the policy (${policy.origin.threshold ?? 'threshold'}) requires ${need} distinct trusted keys`,
        {
          trusted: [...trusted.keys()],
          threshold: need,
        },
      );
    }
    if (!covered && recorded.length && valid.length) {
      const newFprs = valid.map((s) => s.fingerprint);
      throw refuse(
        'KEY_CHANGED',
        [
          `the signing key of ${name} changed.`,
          `  recorded (trusted on first use ${record!.firstSeen.slice(0, 10)}): ${recorded.join(', ')}`,
          `  this box is signed by:  ${newFprs.join(', ')}`,
          `  the record lives in ${input.storeFile}`,
          'The new key is neither co-signed by nor certified by a recorded key. If the publisher really changed keys, accept it with:',
          `  boxsig trust accept ${name} ${newFprs[0]}`,
        ].join('\n'),
        { name, recorded, signers: newFprs, store: input.storeFile },
        `boxsig trust accept ${name} ${newFprs[0]}`,
      );
    }
    if (revokedChains.length) {
      throw refuse('KEY_REVOKED', `box ${name}: ${revokedChains.join('; ')}`, { signers: valid.map((s) => s.fingerprint) });
    }
    if (valid.length === 0 && unusable.length) {
      const u = unusable[0];
      throw refuse(u.code!, u.reason ?? 'signature not usable', { fingerprint: u.fingerprint });
    }
    const why = [...notes, ...chainNotes];
    throw refuse(
      'UNTRUSTED_KEY',
      `box ${name} is signed by ${valid.map((s) => `${s.fingerprint} (${s.userIds[0] ?? 'no user ID'})`).join(', ')}, which ${valid.length === 1 ? 'is' : 'are'} not trusted for it${why.length ? ':\n  ' + why.join('\n  ') : ''}`,
      { signers: valid.map((s) => s.fingerprint), pins: policy.pins, org: policy.org },
    );
  }

  // 5. claims
  for (const [k, v] of Object.entries(policy.claims)) {
    const got = manifest.claims[k];
    if (got !== v) {
      throw refuse(
        'CLAIM_MISMATCH',
        `claim ${k} is ${got === undefined ? 'missing' : JSON.stringify(got)}; the policy (${policy.origin.claims ?? 'claims'}) requires ${JSON.stringify(v)}`,
        { claim: k, expected: v, actual: got ?? null },
      );
    }
  }

  // 6. manifest expiry
  if (manifest.expires && now.getTime() >= Date.parse(manifest.expires)) {
    const msg = `the signed manifest of ${name} ${manifest.box.version} expired on ${manifest.expires}`;
    if (policy.expiry === 'enforce') throw refuse('EXPIRED', `${msg}; ask the publisher for a fresh signature`, { expires: manifest.expires });
    warnings.push(`${msg}; accepted because the policy says expiry: warn`);
  }

  // 7. rollback (only when adding)
  if (input.mode === 'add' && record?.highestVersion && compareVersions(manifest.box.version, record.highestVersion) < 0) {
    const msg = `${name} ${manifest.box.version} is older than ${record.highestVersion}, the highest version already accepted`;
    if (input.allowDowngrade) warnings.push(`${msg}; accepted because of --allow-downgrade`);
    else if (policy.rollback === 'warn') warnings.push(`${msg}; accepted because the policy says rollback: warn`);
    else {
      throw refuse(
        'ROLLBACK',
        `${msg} (a rollback?); add it deliberately with --allow-downgrade`,
        {
          version: manifest.box.version,
          highest: record.highestVersion,
        },
        'boxsig add … --allow-downgrade',
      );
    }
  }

  const list = [...trusted.values()];
  const summary = list.map((t) => `${short(t.fingerprint)}: ${t.explanation}`).join('; ');
  return { trusted: list, warnings, tofu, summary };
}
