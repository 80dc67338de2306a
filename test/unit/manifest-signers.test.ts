/**
 * The manifest's optional `signers` field (docs/FORMAT.md): 1 to 32 primary
 * fingerprints, upper-case hex, sorted, each once; anything else is MALFORMED.
 */
import t from 'tap';
import { buildManifest, namesSigner, parseManifest, serializeManifest } from '../../src/manifest/manifest.js';
import { BoxsigError } from '../../src/errors.js';

const [A, B, C] = ['A', 'B', 'C'].map((c) => c.repeat(40));
const base = buildManifest({
  box: { name: 'acme/web', version: '1.0.0', provider: 'virtualbox' },
  created: new Date('2026-01-01T00:00:00Z'),
  files: [{ path: 'metadata.json', size: 2, sha256: '0'.repeat(64) }],
});
const bytes = (signers: unknown) => serializeManifest({ ...base, signers } as never);

t.test('accepted and refused values', async (t) => {
  const rows: Array<[string, unknown, boolean]> = [
    ['one key', [A], true],
    ['three keys, sorted', [A, B, C], true],
    ['a v5-length fingerprint', ['D'.repeat(64)], true],
    ['empty', [], false],
    ['not a list', A, false],
    ['unsorted', [B, A], false],
    ['a key twice', [A, A], false],
    ['lower case', [A.toLowerCase()], false],
    ['a short key ID', ['ABCDEF0123456789'], false],
    ['a number', [1], false],
    ['33 keys', Array.from({ length: 33 }, (_, i) => i.toString(16).toUpperCase().padStart(40, '0')), false],
  ];
  for (const [name, value, ok] of rows) {
    const got = (() => {
      try {
        return parseManifest(bytes(value));
      } catch (e) {
        return e;
      }
    })();
    if (ok) t.same((got as any).signers, value, name);
    else t.equal((got as BoxsigError).code, 'MALFORMED', name);
  }
});

t.test('a manifest without the field names every signer; with it, only the listed ones', async (t) => {
  t.ok(namesSigner(base, A), 'no field: any key');
  t.ok(namesSigner({ signers: [A, B] }, B));
  t.notOk(namesSigner({ signers: [A, B] }, C));
  t.same(buildManifest({ ...base, created: new Date(base.created), expires: undefined, signers: [B, A, B] }).signers, [A, B], 'sign writes them sorted, once');
  t.notOk('signers' in base, 'and nothing when not asked');
});
