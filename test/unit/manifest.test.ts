/**
 * Manifest parsing as a table: each row changes one thing in a valid manifest
 * and says whether parseManifest accepts it, or which problem its MALFORMED
 * refusal names. Pure logic: runs in milliseconds.
 */
import t from 'tap';
import { parseManifest, serializeManifest, type Manifest } from '../../src/manifest/manifest.js';
import { canonicalJson } from '../../src/shared/json.js';

const HASH = 'a'.repeat(64);
const [A, B] = ['A', 'B'].map((c) => c.repeat(40));

function valid(): Manifest {
  return {
    format: 1,
    box: { name: 'acme/web', version: '1.2.3', provider: 'virtualbox' },
    created: '2026-01-01T00:00:00Z',
    claims: { builder: 'ci-prod' },
    files: [
      { path: 'box.ovf', size: 10, sha256: HASH },
      { path: 'metadata.json', size: 2, sha256: HASH },
    ],
  };
}

/** A manifest changed by `edit`, in canonical form unless `raw` gives the bytes. */
type Edit = (m: Record<string, any>) => void;

interface Row {
  name: string;
  edit?: Edit;
  raw?: (canonical: string) => string;
  /** a pattern of the refusal's message; absent: accepted */
  refused?: RegExp;
}

const ROWS: Row[] = [
  { name: 'a valid manifest' },
  { name: 'with an architecture', edit: (m) => (m.box.architecture = 'amd64') },
  { name: 'with an expiry', edit: (m) => (m.expires = '2027-01-01T00:00:00Z') },
  { name: 'naming its signers', edit: (m) => (m.signers = [A, B]) },
  { name: 'without claims fields', edit: (m) => (m.claims = {}) },

  { name: 'not canonical: whitespace', raw: (c) => c.replace('{', '{ '), refused: /not in canonical form/ },
  { name: 'not canonical: a duplicate key', raw: (c) => c.replace('"format":1', '"format":1,"format":1'), refused: /duplicate|canonical/ },
  { name: 'not JSON', raw: () => '{', refused: /./ },
  { name: 'not an object', raw: () => '[]', refused: /not a JSON object/ },
  { name: 'a newer format', edit: (m) => (m.format = 2), refused: /newer than this boxsig/ },
  { name: 'an unknown format', edit: (m) => (m.format = '1'), refused: /unknown format/ },
  { name: 'an unknown field', edit: (m) => (m.extra = 1), refused: /unknown field "extra"/ },
  { name: 'an unknown box field', edit: (m) => (m.box.owner = 'x'), refused: /unknown box field "owner"/ },
  { name: 'an invalid name', edit: (m) => (m.box.name = '../etc'), refused: /box name/ },
  { name: 'a name with a Vagrant escape', edit: (m) => (m.box.name = 'acme-VAGRANTSLASH-web'), refused: /box name/ },
  { name: 'an invalid version', edit: (m) => (m.box.version = 'one'), refused: /box version/ },
  { name: 'an invalid provider', edit: (m) => (m.box.provider = 'a/b'), refused: /box provider/ },
  { name: 'an invalid architecture', edit: (m) => (m.box.architecture = 'x y'), refused: /box architecture/ },
  { name: 'a non-UTC time', edit: (m) => (m.created = '2026-01-01T00:00:00+01:00'), refused: /"created" must be a UTC time/ },
  { name: 'a time with milliseconds', edit: (m) => (m.created = '2026-01-01T00:00:00.000Z'), refused: /"created"/ },
  { name: 'an impossible date', edit: (m) => (m.expires = '2026-02-30T00:00:00Z'), refused: /"expires"/ },
  { name: 'claims that are not an object', edit: (m) => (m.claims = []), refused: /"claims" must be an object/ },
  { name: 'a claim that is not a string', edit: (m) => (m.claims.n = 1), refused: /claim n must be a string/ },
  { name: 'a claim with a newline', edit: (m) => (m.claims.x = 'a\nb'), refused: /one line of visible text/ },
  { name: 'files that are not a list', edit: (m) => (m.files = {}), refused: /"files" must be an array/ },
  { name: 'no metadata.json', edit: (m) => m.files.splice(1, 1), refused: /no metadata.json/ },
  { name: 'a file inside .boxsig/', edit: (m) => m.files.unshift({ path: '.boxsig/x', size: 1, sha256: HASH }), refused: /inside \.boxsig/ },
  { name: 'an absolute file path', edit: (m) => m.files.unshift({ path: '/etc/passwd', size: 1, sha256: HASH }), refused: /unsafe/ },
  { name: 'a .. file path', edit: (m) => m.files.unshift({ path: '../x', size: 1, sha256: HASH }), refused: /unsafe/ },
  { name: 'a path not in normal form', edit: (m) => m.files.unshift({ path: './a', size: 1, sha256: HASH }), refused: /normal form/ },
  { name: 'a file listed twice', edit: (m) => m.files.push({ path: 'metadata.json', size: 2, sha256: HASH }), refused: /listed twice/ },
  { name: 'names that collide once folded', edit: (m) => m.files.unshift({ path: 'Box.ovf', size: 1, sha256: HASH }), refused: /./ },
  { name: 'a negative size', edit: (m) => (m.files[0].size = -1), refused: /size of "?box.ovf"? is invalid/ },
  { name: 'a fractional size', edit: (m) => (m.files[0].size = 1.5), refused: /size of/ },
  { name: 'an upper-case hash', edit: (m) => (m.files[0].sha256 = 'A'.repeat(64)), refused: /sha256 of/ },
  { name: 'an unknown file field', edit: (m) => (m.files[0].mode = 420), refused: /unknown file field "mode"/ },
  { name: 'empty signers', edit: (m) => (m.signers = []), refused: /"signers" must be a list/ },
  { name: 'signers not sorted', edit: (m) => (m.signers = [B, A]), refused: /not sorted/ },
  { name: 'a signer twice', edit: (m) => (m.signers = [A, A]), refused: /not sorted, or names a key twice/ },
  { name: 'a lower-case signer', edit: (m) => (m.signers = [A.toLowerCase()]), refused: /upper-case hex fingerprint/ },
];

function bytesOf(row: Row): Buffer {
  const m = structuredClone(valid()) as Record<string, any>;
  row.edit?.(m);
  const canonical = canonicalJson(m);
  return Buffer.from(row.raw ? row.raw(canonical) : canonical);
}

for (const row of ROWS) {
  t.test(row.name, async (t) => {
    const bytes = bytesOf(row);
    if (!row.refused) {
      const m = parseManifest(bytes);
      t.same(serializeManifest(m), bytes, 'the parsed manifest serialises to the same bytes');
      return;
    }
    t.throws(() => parseManifest(bytes), { code: 'MALFORMED', message: row.refused });
  });
}

t.test('serializeManifest sorts files by path and keys canonically', async (t) => {
  const m = valid();
  const reversed = { ...m, files: [...m.files].reverse() };
  t.same(serializeManifest(reversed), serializeManifest(m));
  t.match(serializeManifest(m).toString(), /^\{"box":\{"name":"acme\/web","provider":"virtualbox","version":"1.2.3"\},"claims"/);
});
