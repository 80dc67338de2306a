/**
 * The trust decision as a table: each row is a situation (policy, record,
 * signers) and the outcome (trusted signers and their paths, or the refusal
 * code). Pure logic, no keys, no archives: a rule change fails here in
 * milliseconds. Organisation chains and certifications need real keys and
 * are tested end to end in test/trust.test.ts.
 */
import t from 'tap';
import { checkSignaturesIntact, checkSignaturesRequired, decideTrust, type DecideInput, type Signer } from '../../src/policy/decide.js';
import { resolvePolicy, type ResolvedPolicy } from '../../src/policy/config.js';
import { countTrusted } from '../../src/policy/threshold.js';
import type { TrustRecord } from '../../src/trust/record-files.js';
import { BoxsigError } from '../../src/errors.js';

const fpr = (c: string) => c.repeat(40);
const [A, B, C, D] = ['A', 'B', 'C', 'D'].map(fpr);

function signer(fingerprint: string, o: Partial<Signer> = {}): Signer {
  return {
    fingerprint,
    signingKey: fingerprint,
    userIds: [`${fingerprint[0]} <${fingerprint[0].toLowerCase()}@example.org>`],
    algorithm: 'EdDSA',
    created: '2026-01-01T00:00:00Z',
    valid: true,
    warnings: [],
    key: null,
    ...o,
  };
}
const revoked = (f: string) => signer(f, { valid: false, code: 'KEY_REVOKED', reason: `key ${f} is revoked` });

function record(keys: string[], o: Partial<TrustRecord> = {}): TrustRecord {
  return { keys, firstSeen: '2026-01-01T00:00:00Z', updated: '2026-01-01T00:00:00Z', history: [], ...o };
}

interface Row {
  name: string;
  signers: Signer[];
  policy?: Partial<ResolvedPolicy>;
  record?: TrustRecord;
  mode?: 'verify' | 'add';
  claims?: Record<string, string>;
  version?: string;
  expires?: string;
  allowDowngrade?: boolean;
  requireTrusted?: boolean;
  /** expected: a refusal code, or the trusted signers with their paths */
  refused?: string;
  trusted?: Record<string, string>;
  tofu?: { kind: string; added: string[] } | null;
  warning?: RegExp;
  /** the signers the signed manifest names (absent: it names none) */
  named?: string[];
}

function input(row: Row): DecideInput {
  const policy: ResolvedPolicy = { ...resolvePolicy([], 'acme/web'), ...row.policy };
  return {
    manifest: {
      format: 1,
      box: { name: 'acme/web', version: row.version ?? '1.0.0', provider: 'virtualbox' },
      created: '2026-01-01T00:00:00Z',
      ...(row.expires ? { expires: row.expires } : {}),
      claims: row.claims ?? {},
      files: [],
      ...(row.named ? { signers: row.named } : {}),
    },
    signers: row.signers,
    policy,
    record: row.record,
    storeFile: '/home/u/.config/boxsig/trust.json',
    orgKey: async () => null,
    recordedKey: async () => null,
    now: new Date('2026-06-01T00:00:00Z'),
    mode: row.mode ?? 'add',
    allowDowngrade: row.allowDowngrade,
    requireTrusted: row.requireTrusted,
  };
}

const rows: Row[] = [
  // pins
  { name: 'a pinned signer is trusted', signers: [signer(A)], policy: { pins: [A] }, trusted: { [A]: 'pin' }, tofu: null },
  { name: 'a signer that is not pinned is refused', signers: [signer(B)], policy: { pins: [A] }, refused: 'UNTRUSTED_KEY' },
  { name: 'pins: an outsider next to a pinned signer does not count', signers: [signer(A), signer(B)], policy: { pins: [A] }, trusted: { [A]: 'pin' } },
  { name: 'pins: a revoked pinned key is reported as revoked', signers: [revoked(A)], policy: { pins: [A] }, refused: 'KEY_REVOKED' },
  { name: 'pins: 2 of 3 pinned', signers: [signer(A), signer(C)], policy: { pins: [A, B, C], threshold: 2 }, trusted: { [A]: 'pin', [C]: 'pin' } },
  { name: 'pins: 1 of a threshold of 2', signers: [signer(A), signer(D)], policy: { pins: [A, B, C], threshold: 2 }, refused: 'THRESHOLD_NOT_MET' },
  {
    name: 'pins: a lost pinned signature below the threshold names its cause',
    signers: [signer(A), revoked(B)],
    policy: { pins: [A, B], threshold: 2 },
    refused: 'KEY_REVOKED',
  },
  {
    name: 'org scope without the org key in the keyring: untrusted',
    signers: [signer(A)],
    policy: { org: { scope: 'acme/*', keys: [D], source: 'boxsig.json' } },
    refused: 'UNTRUSTED_KEY',
  },
  // trust on first use
  {
    name: 'first use trusts and records every valid signer',
    signers: [signer(A), signer(B)],
    trusted: { [A]: 'tofu-first-use', [B]: 'tofu-first-use' },
    tofu: { kind: 'first-use', added: [A, B] },
  },
  { name: 'first use in verify mode says what add would do', mode: 'verify', signers: [signer(A)], trusted: { [A]: 'tofu-first-use' } },
  { name: 'a recorded key is trusted', signers: [signer(A)], record: record([A]), trusted: { [A]: 'tofu-recorded' }, tofu: null },
  { name: 'a new key with no proof is a key change', signers: [signer(B)], record: record([A]), refused: 'KEY_CHANGED' },
  {
    name: 'a new key co-signed by a recorded key, on a manifest naming both, is a rotation',
    signers: [signer(A), signer(B)],
    named: [A, B],
    record: record([A]),
    trusted: { [A]: 'tofu-recorded', [B]: 'tofu-rotation' },
    tofu: { kind: 'rotation', added: [B] },
  },
  {
    name: 'a co-signature on a manifest that names no signers proves no rotation',
    signers: [signer(A), signer(B)],
    record: record([A]),
    trusted: { [A]: 'tofu-recorded' },
    tofu: null,
    warning: /co-signature by B{40} proves no key rotation/,
  },
  {
    name: 'a signature the manifest does not name is ignored: no rotation',
    signers: [signer(A), signer(B), signer(C)],
    named: [A, B],
    record: record([A]),
    trusted: { [A]: 'tofu-recorded', [B]: 'tofu-rotation' },
    tofu: { kind: 'rotation', added: [B] },
    warning: /signature by C{40} is ignored: it is not named by the signed manifest/,
  },
  {
    name: 'a signature the manifest does not name is ignored: not recorded on first use',
    signers: [signer(A), signer(C)],
    named: [A],
    trusted: { [A]: 'tofu-first-use' },
    tofu: { kind: 'first-use', added: [A] },
  },
  {
    name: 'a signature the manifest does not name is ignored: not even a pinned one',
    signers: [signer(C)],
    named: [A],
    policy: { pins: [C] },
    refused: 'UNTRUSTED_KEY',
  },
  {
    name: 'a signature the manifest does not name is ignored: only it signed',
    signers: [signer(C)],
    named: [A],
    record: record([A]),
    refused: 'UNTRUSTED_KEY',
  },
  { name: 'a revoked recorded key is reported as revoked', signers: [revoked(A)], record: record([A]), refused: 'KEY_REVOKED' },
  {
    name: 'the only signature does not count: its own code',
    signers: [signer(A, { valid: false, code: 'KEY_EXPIRED', reason: 'expired' })],
    policy: { pins: [B] },
    refused: 'KEY_EXPIRED',
  },
  // a pin narrows
  {
    name: 'a pin narrows: an organisation scope does not widen it',
    signers: [signer(B)],
    policy: { pins: [A], org: { scope: 'acme/*', keys: [D], source: 'boxsig.json' } },
    refused: 'UNTRUSTED_KEY',
  },
  { name: 'a pin narrows: a recorded key does not widen it', signers: [signer(B)], policy: { pins: [A] }, record: record([B]), refused: 'UNTRUSTED_KEY' },
  { name: 'a pin narrows: no first use either', signers: [signer(B)], policy: { pins: [A] }, refused: 'UNTRUSTED_KEY' },
  { name: 'an organisation scope: no first use', signers: [signer(B)], policy: { org: { scope: 'acme/*', keys: [D], source: 'x' } }, refused: 'UNTRUSTED_KEY' },
  // a name with a record is never first use again
  { name: 'a record without keys is not first use', signers: [signer(A)], record: record([]), refused: 'UNTRUSTED_KEY' },
  // thresholds count keys trusted before this box
  {
    name: 'threshold 2: a recorded key and a co-signing newcomer count once',
    signers: [signer(A), signer(B)],
    named: [A, B],
    policy: { threshold: 2 },
    record: record([A]),
    refused: 'THRESHOLD_NOT_MET',
  },
  {
    name: 'threshold 2: two recorded keys rotate in a third',
    signers: [signer(A), signer(B), signer(C)],
    named: [A, B, C],
    policy: { threshold: 2 },
    record: record([A, B]),
    trusted: { [A]: 'tofu-recorded', [B]: 'tofu-recorded', [C]: 'tofu-rotation' },
    tofu: { kind: 'rotation', added: [C] },
  },
  {
    name: 'threshold 2: two pinned primaries sharing one signing subkey count once',
    signers: [signer(A, { signingKey: D }), signer(B, { signingKey: D })],
    policy: { pins: [A, B], threshold: 2 },
    refused: 'THRESHOLD_NOT_MET',
  },
  {
    name: 'threshold 2: first use of two keys sharing a subkey',
    signers: [signer(A, { signingKey: D }), signer(B, { signingKey: D })],
    policy: { threshold: 2 },
    refused: 'THRESHOLD_NOT_MET',
  },
  {
    name: 'threshold 2: first use of two distinct keys',
    signers: [signer(A), signer(B)],
    policy: { threshold: 2 },
    trusted: { [A]: 'tofu-first-use', [B]: 'tofu-first-use' },
  },
  // keys replaced by trust accept
  {
    name: 'a replaced key still vouches for what it signed before',
    signers: [signer(A, { created: '2026-02-01T00:00:00Z' })],
    record: record([B], { highestVersion: '1.0.0', retired: [{ key: A, since: '2026-03-01T00:00:00Z', upTo: '1.0.0' }] }),
    mode: 'verify',
    trusted: { [A]: 'tofu-replaced' },
  },
  {
    name: 'a replaced key does not vouch for what it signed since',
    signers: [signer(A, { created: '2026-04-01T00:00:00Z' })],
    record: record([B], { retired: [{ key: A, since: '2026-03-01T00:00:00Z' }] }),
    mode: 'verify',
    refused: 'UNTRUSTED_KEY',
  },
  {
    name: 'a replaced key does not vouch for a version above the highest of its time',
    signers: [signer(A, { created: '2026-02-01T00:00:00Z' })],
    version: '1.1.0',
    record: record([B], { retired: [{ key: A, since: '2026-03-01T00:00:00Z', upTo: '1.0.0' }] }),
    mode: 'verify',
    refused: 'UNTRUSTED_KEY',
  },
  {
    name: 'a distrusted key vouches for nothing',
    signers: [signer(A, { created: '2026-02-01T00:00:00Z' })],
    record: record([B], { retired: [{ key: A, since: '2026-03-01T00:00:00Z', distrusted: true }] }),
    mode: 'verify',
    refused: 'UNTRUSTED_KEY',
  },
  {
    name: 'a replaced key does not rotate a newcomer in',
    signers: [signer(A, { created: '2026-02-01T00:00:00Z' }), signer(C)],
    record: record([B], { retired: [{ key: A, since: '2026-03-01T00:00:00Z' }] }),
    trusted: { [A]: 'tofu-replaced' },
    tofu: null,
  },
  // verify: an unknown signer
  { name: 'verify --require-trusted refuses an unknown signer', mode: 'verify', requireTrusted: true, signers: [signer(A)], refused: 'UNTRUSTED_KEY' },
  {
    name: 'verify --require-trusted accepts a recorded signer',
    mode: 'verify',
    requireTrusted: true,
    signers: [signer(A)],
    record: record([A]),
    trusted: { [A]: 'tofu-recorded' },
  },
  {
    name: 'verify says an unknown signer is unknown',
    mode: 'verify',
    signers: [signer(A)],
    trusted: { [A]: 'tofu-first-use' },
    warning: /signer A{40} is unknown/,
  },
  // claims
  {
    name: 'a required claim is present',
    signers: [signer(A)],
    policy: { pins: [A], claims: new Map([['builder', 'ci']]) },
    claims: { builder: 'ci' },
    trusted: { [A]: 'pin' },
  },
  {
    name: 'a required claim differs',
    signers: [signer(A)],
    policy: { pins: [A], claims: new Map([['builder', 'ci']]) },
    claims: { builder: 'laptop' },
    refused: 'CLAIM_MISMATCH',
  },
  { name: 'a required claim is missing', signers: [signer(A)], policy: { pins: [A], claims: new Map([['builder', 'ci']]) }, refused: 'CLAIM_MISMATCH' },
  // expiry
  { name: 'an expired manifest is refused', signers: [signer(A)], policy: { pins: [A] }, expires: '2026-02-01T00:00:00Z', refused: 'EXPIRED' },
  {
    name: 'expiry: warn accepts an expired manifest with a warning',
    signers: [signer(A)],
    policy: { pins: [A], expiry: 'warn' },
    expires: '2026-02-01T00:00:00Z',
    trusted: { [A]: 'pin' },
    warning: /expired/,
  },
  { name: 'a manifest that expires later is fine', signers: [signer(A)], policy: { pins: [A] }, expires: '2027-01-01T00:00:00Z', trusted: { [A]: 'pin' } },
  // rollback
  {
    name: 'a lower version than the highest accepted is a rollback',
    signers: [signer(A)],
    record: record([A], { highestVersion: '2.0.0' }),
    version: '1.9.9',
    refused: 'ROLLBACK',
  },
  {
    name: '--allow-downgrade accepts it with a warning',
    signers: [signer(A)],
    record: record([A], { highestVersion: '2.0.0' }),
    version: '1.9.9',
    allowDowngrade: true,
    trusted: { [A]: 'tofu-recorded' },
    warning: /allow-downgrade/,
  },
  {
    name: 'rollback: warn accepts it with a warning',
    signers: [signer(A)],
    policy: { rollback: 'warn' },
    record: record([A], { highestVersion: '2.0.0' }),
    version: '1.9.9',
    trusted: { [A]: 'tofu-recorded' },
    warning: /rollback: warn/,
  },
  {
    name: 'verify does not judge rollback',
    mode: 'verify',
    signers: [signer(A)],
    record: record([A], { highestVersion: '2.0.0' }),
    version: '1.9.9',
    trusted: { [A]: 'tofu-recorded' },
  },
  {
    name: 'the same version again is not a rollback',
    signers: [signer(A)],
    record: record([A], { highestVersion: '2.0.0' }),
    version: '2.0.0',
    trusted: { [A]: 'tofu-recorded' },
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const got = await decideTrust(input(row)).then(
      (d) => d,
      (e: unknown) => e,
    );
    if (row.refused) {
      t.ok(got instanceof BoxsigError, 'refused');
      t.equal((got as BoxsigError).code, row.refused);
      return;
    }
    if (got instanceof Error) throw got;
    const d = got as Awaited<ReturnType<typeof decideTrust>>;
    t.same(Object.fromEntries(d.trusted.map((x) => [x.fingerprint, x.via])), row.trusted);
    if (row.tofu !== undefined) t.same(d.tofu && { kind: d.tofu.kind, added: d.tofu.added }, row.tofu);
    if (row.warning) t.match(d.warnings.join('\n'), row.warning);
  });
}

t.test('the preconditions are checked once, before the decision', async (t) => {
  const optional = { ...resolvePolicy([], 'x/y'), signatures: 'optional' as const };
  t.doesNotThrow(() => checkSignaturesRequired(optional, 'x/y', 'unsigned'), 'signatures: optional');
  t.throws(() => checkSignaturesRequired(resolvePolicy([], 'x/y'), 'x/y', 'unsigned'), { code: 'UNSIGNED' });
  t.throws(() => checkSignaturesIntact([signer(A), signer(B, { valid: false, code: 'BAD_SIGNATURE', reason: 'does not match' })]), { code: 'BAD_SIGNATURE' });
  t.throws(() => checkSignaturesIntact([signer(A, { valid: false, code: 'MALFORMED', reason: 'unparseable' })]), { code: 'MALFORMED' });
  t.doesNotThrow(() => checkSignaturesIntact([signer(A), revoked(B)]), 'a revoked key is not a bad signature');
});

t.test('the threshold counts distinct keys trusted before the box, and distinct signing keys', async (t) => {
  const rows: Array<[string, Array<[string, string[]]>, number]> = [
    ['one signer', [['k1', [A]]], 1],
    [
      'two signers',
      [
        ['k1', [A]],
        ['k2', [B]],
      ],
      2,
    ],
    [
      'a co-signed newcomer adds nothing',
      [
        ['k1', [A]],
        ['k2', []],
      ],
      1,
    ],
    [
      'two newcomers certified by one recorded key count once',
      [
        ['k1', [A]],
        ['k2', [A]],
      ],
      1,
    ],
    [
      'one subkey bound to two primaries counts once',
      [
        ['k1', [A]],
        ['k1', [B]],
      ],
      1,
    ],
    ['a newcomer certified by two recorded keys is one signature', [['k1', [A, B]]], 1],
    [
      'the matching finds the best assignment',
      [
        ['k1', [A, B]],
        ['k2', [A]],
      ],
      2,
    ],
    [
      'three signing keys, two of them only for A',
      [
        ['k1', [A]],
        ['k2', [A]],
        ['k3', [B]],
        ['k3', [C]],
      ],
      2,
    ],
    ['nothing trusted', [], 0],
  ];
  for (const [name, signers, want] of rows) t.equal(countTrusted(signers.map(([signingKey, basis]) => ({ signingKey, basis }))), want, name);
});
