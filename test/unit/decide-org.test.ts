/**
 * The trust decision through organisation chains, as a table: real keys made
 * in-process (Ed25519, milliseconds each), one repository key certified by an
 * organisation key for a `boxsig:<glob>` user ID, and the outcome for each
 * situation (scope, name, which org key the keyring holds). No files, no
 * child processes. test/unit/decide.test.ts has the other paths.
 */
import t from 'tap';
import { decideTrust, type DecideInput, type Signer } from '../../src/policy/decide.js';
import { resolvePolicy, type ResolvedPolicy } from '../../src/policy/config.js';
import { newKey, readArmoredSecretKey, type PublicKey } from '../../src/keys/pgp.js';
import { readKeyData } from '../../src/keys/keys.js';
import { certifyScope } from '../../src/keys/certify.js';
import { openKey } from '../../src/keys/handle.js';
import { BoxsigError } from '../../src/errors.js';

async function publicKeyOf(armored: string, certifiedBy?: { armored: string; glob: string }): Promise<PublicKey> {
  let cert = (await readKeyData(Buffer.from(armored), 'key')).certs[0];
  if (certifiedBy) cert = await certifyScope(cert, await readArmoredSecretKey(certifiedBy.armored), certifiedBy.glob, new Date('2026-01-02T00:00:00Z'));
  return openKey(cert);
}

const made = { expiresIn: 0, type: 'ed25519' as const, date: new Date('2026-01-01T00:00:00Z') };
const org = await newKey({ ...made, userIds: ['Acme <keys@acme.example>'] });
const other = await newKey({ ...made, userIds: ['Other org'] });
const repo = await newKey({ ...made, userIds: ['Acme builds', 'boxsig:acme/web-*'] });
const orgPublic = await publicKeyOf(org.publicKey);
const certified = await publicKeyOf(repo.publicKey, { armored: org.privateKey, glob: 'acme/web-*' });
const uncertified = await publicKeyOf(repo.publicKey);

function signer(key: PublicKey): Signer {
  return {
    fingerprint: repo.fingerprint,
    signingKey: repo.fingerprint,
    userIds: ['Acme builds'],
    algorithm: 'EdDSA',
    created: '2026-03-01T00:00:00Z',
    valid: true,
    warnings: [],
    key,
  };
}

interface Row {
  name: string;
  box?: string;
  scope?: string;
  orgKeys?: string[];
  key?: PublicKey;
  /** the org keys the keyring holds (default: the Acme org key) */
  keyring?: string[];
  policy?: Partial<ResolvedPolicy>;
  trusted?: 'org';
  refused?: string;
  message?: RegExp;
}

const ROWS: Row[] = [
  { name: 'a key certified for a glob that covers the name, inside the scope', trusted: 'org' },
  { name: 'the certified glob does not match the name', box: 'acme/db-1', refused: 'UNTRUSTED_KEY' },
  { name: 'the certified glob lies outside the scope', scope: 'acme/web-prod-*', box: 'acme/web-prod-1', refused: 'UNTRUSTED_KEY' },
  { name: 'the key carries no certification', key: uncertified, refused: 'UNTRUSTED_KEY', message: /carries no certification/ },
  { name: 'certified by another organisation than the configured one', orgKeys: [other.fingerprint], keyring: [other.fingerprint], refused: 'UNTRUSTED_KEY' },
  { name: 'the org key is not in the keyring', keyring: [], refused: 'UNTRUSTED_KEY', message: /not in the keyring/ },
  { name: 'one of two org keys certified it', orgKeys: [other.fingerprint, org.fingerprint], keyring: [other.fingerprint, org.fingerprint], trusted: 'org' },
  { name: 'an org chain counts once toward a threshold of 2', policy: { threshold: 2 }, refused: 'THRESHOLD_NOT_MET' },
  { name: 'a pin narrows: the chain does not apply', policy: { pins: [other.fingerprint] }, refused: 'UNTRUSTED_KEY', message: /a pin narrows/ },
];

const publicKeys: Record<string, PublicKey> = { [org.fingerprint]: orgPublic, [other.fingerprint]: await publicKeyOf(other.publicKey) };

function input(row: Row): DecideInput {
  const box = row.box ?? 'acme/web-1';
  const scope = row.scope ?? 'acme/*';
  const policy: ResolvedPolicy = {
    ...resolvePolicy([], box),
    org: { scope, keys: row.orgKeys ?? [org.fingerprint], source: 'boxsig.json' },
    ...row.policy,
  };
  const keyring = row.keyring ?? [org.fingerprint];
  return {
    manifest: { format: 1, box: { name: box, version: '1.0.0', provider: 'virtualbox' }, created: '2026-03-01T00:00:00Z', claims: {}, files: [] },
    signers: [signer(row.key ?? certified)],
    policy,
    record: undefined,
    storeFile: '/home/u/.config/boxsig/trust.json',
    orgKey: async (fpr) => (keyring.includes(fpr) ? publicKeys[fpr] : null),
    recordedKey: async () => null,
    now: new Date('2026-06-01T00:00:00Z'),
    mode: 'add',
  };
}

for (const row of ROWS) {
  t.test(row.name, async (t) => {
    try {
      const d = await decideTrust(input(row));
      t.equal(row.refused, undefined, 'accepted');
      t.same(
        d.trusted.map((s) => s.via),
        [row.trusted],
      );
      t.equal(d.tofu, null, 'an org chain records nothing');
    } catch (e) {
      if (!(e instanceof BoxsigError)) throw e;
      t.equal(e.code, row.refused, e.message);
      if (row.message) t.match(e.message, row.message);
    }
  });
}
