/**
 * The transparency log's pure code (src/tlog/): RFC 6962 hashing, inclusion
 * and consistency proofs, compact ranges, C2SP signed notes and checkpoints,
 * catalog statements and log entries — against published vectors (RFC 6962's
 * reference test data as Certificate Transparency's implementations use it,
 * Go's sumdb/note test vectors) and against proofs produced by an
 * independent implementation (Go's golang.org/x/mod/sumdb/tlog, committed in
 * test/fixtures/tlog/go-vectors.json; see the README there).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompactRange,
  EMPTY_ROOT,
  consistencyRanges,
  foldSubtrees,
  inclusionRanges,
  leafHash,
  nodeHash,
  rootOf,
  subtreesOf,
  verifyConsistency,
  verifyInclusion,
  type Range,
} from '../../src/tlog/merkle.js';
import {
  checkpointText,
  generateSignerKey,
  openCheckpoint,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
} from '../../src/tlog/note.js';
import { entriesDigest, openStatement, signStatement } from '../../src/tlog/statement.js';
import { encodeEntry, fingerprintsIn, parseEntry, type LogEntry } from '../../src/tlog/entry.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const go = JSON.parse(fs.readFileSync(path.join(here, '../fixtures/tlog/go-vectors.json'), 'utf8')) as {
  roots: Record<string, string>;
  inclusion: Array<{ index: number; size: number; proof: string[] }>;
  consistency: Array<{ from: number; to: number; proof: string[] }>;
  note: { signerKey: string; verifierKey: string; text: string; signed: string };
};
const b64 = (s: string) => Buffer.from(s, 'base64');
const goLeaf = (i: number) => Buffer.from(`boxsig test leaf ${i}\n`);
const goLeaves = Array.from({ length: 1025 }, (_, i) => goLeaf(i));

/** Every hash of a tree of the first n leaves, by range (a naive, independent evaluation of RFC 6962's MTH). */
function mth(leaves: Buffer[], r: Range): Buffer {
  const n = r.end - r.start;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leafHash(leaves[r.start]);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(mth(leaves, { start: r.start, end: r.start + k }), mth(leaves, { start: r.start + k, end: r.end }));
}

t.test('RFC 6962 reference vectors: roots of the 8-leaf test tree', async (t) => {
  // the leaf inputs and roots of RFC 6962's reference test data (as in Certificate Transparency's implementations)
  const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];
  t.equal(rootOf([]).toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'the empty tree: SHA-256 of nothing');
  for (let n = 1; n <= 8; n++) t.equal(rootOf(leaves.slice(0, n)).toString('hex'), roots[n - 1], `root of ${n} leaves`);
});

t.test("Go's sumdb/tlog: tree hashes", async (t) => {
  for (const [size, root] of Object.entries(go.roots)) {
    t.equal(rootOf(goLeaves.slice(0, Number(size))).toString('base64'), root, `root of ${size} leaves`);
  }
});

t.test("Go's sumdb/tlog: inclusion proofs are produced the same and verify", async (t) => {
  let checked = 0;
  for (const v of go.inclusion) {
    const ours = inclusionRanges(v.index, v.size).map((r) => mth(goLeaves, r).toString('base64'));
    if (ours.join() !== v.proof.join()) t.fail(`inclusion of ${v.index} in ${v.size}: our proof differs from Go's`);
    const root = b64(go.roots[String(v.size)]);
    const leaf = leafHash(goLeaf(v.index));
    if (!verifyInclusion(v.index, v.size, leaf, v.proof.map(b64), root)) t.fail(`Go's inclusion proof of ${v.index} in ${v.size} does not verify`);
    // any change fails
    if (v.proof.length && verifyInclusion(v.index, v.size, leaf, v.proof.slice(1).map(b64), root)) t.fail('a shortened proof verifies');
    if (verifyInclusion(v.index, v.size, leafHash(goLeaf(v.index + 1)), v.proof.map(b64), root)) t.fail('another leaf verifies');
    if (v.size > 1 && verifyInclusion((v.index + 1) % v.size, v.size, leaf, v.proof.map(b64), root)) t.fail('another index verifies');
    checked++;
  }
  t.equal(checked, go.inclusion.length, `${checked} inclusion proofs`);
});

t.test("Go's sumdb/tlog: consistency proofs are produced the same and verify", async (t) => {
  let checked = 0;
  for (const v of go.consistency) {
    const ours = consistencyRanges(v.from, v.to).map((r) => mth(goLeaves, r).toString('base64'));
    if (ours.join() !== v.proof.join()) t.fail(`consistency ${v.from} → ${v.to}: our proof differs from Go's`);
    const r1 = rootOf(goLeaves.slice(0, v.from));
    const r2 = b64(go.roots[String(v.to)]);
    if (!verifyConsistency(v.from, v.to, v.proof.map(b64), r1, r2)) t.fail(`Go's consistency proof ${v.from} → ${v.to} does not verify`);
    if (v.proof.length && verifyConsistency(v.from, v.to, v.proof.slice(0, -1).map(b64), r1, r2)) t.fail('a shortened proof verifies');
    const forked = rootOf([...goLeaves.slice(0, v.from - 1), Buffer.from('forked')]);
    if (verifyConsistency(v.from, v.to, v.proof.map(b64), forked, r2)) t.fail(`a forked tree of ${v.from} verifies as a prefix of ${v.to}`);
    checked++;
  }
  t.equal(checked, go.consistency.length, `${checked} consistency proofs`);
});

t.test('proofs: edge cases', async (t) => {
  const root = rootOf(goLeaves.slice(0, 5));
  t.notOk(verifyInclusion(5, 5, leafHash(goLeaf(5)), [], root), 'an index beyond the tree');
  t.notOk(verifyInclusion(-1, 5, leafHash(goLeaf(0)), [], root), 'a negative index');
  t.ok(verifyInclusion(0, 1, leafHash(goLeaf(0)), [], rootOf([goLeaf(0)])), 'the one leaf of a tree of one');
  t.ok(verifyConsistency(5, 5, [], root, root), 'a tree is consistent with itself');
  t.notOk(verifyConsistency(5, 5, [], root, EMPTY_ROOT), 'not with another root of the same size');
  t.ok(verifyConsistency(0, 5, [], EMPTY_ROOT, root), 'the empty tree is a prefix of any');
  t.notOk(verifyConsistency(6, 5, [], root, root), 'a bigger tree is no prefix');
  t.notOk(verifyConsistency(2, 5, [Buffer.alloc(31)], root, root), 'a hash of the wrong length');
  t.throws(() => inclusionRanges(3, 3));
  t.throws(() => consistencyRanges(4, 3));
});

t.test('subtrees and compact ranges', async (t) => {
  for (const n of [0, 1, 2, 3, 5, 8, 13, 64, 100, 1025]) {
    const parts = subtreesOf({ start: 0, end: n });
    t.equal(parts.length, n.toString(2).replace(/0/g, '').length, `[0, ${n}) is popcount(${n}) complete subtrees`);
    const hashes = parts.map((p) => mth(goLeaves, { start: p.index * 2 ** p.level, end: (p.index + 1) * 2 ** p.level }));
    t.equal(foldSubtrees(hashes).toString('hex'), mth(goLeaves, { start: 0, end: n }).toString('hex'), `folding them gives MTH of ${n}`);
    // a compact range of [0, n) continued with leaves [n, 1025) gives the root of 1025
    const c = new CompactRange(n, hashes);
    for (let i = n; i < 1025; i++) c.append(goLeaves[i]);
    t.equal(c.root().toString('base64'), go.roots['1025'], `prefix ${n} + the rest: the root of 1025`);
  }
  t.throws(() => new CompactRange(3, []), /has 2 hashes/);
});

t.test("C2SP signed notes: Go's sumdb/note vectors", async (t) => {
  // golang.org/x/mod/sumdb/note note_test.go (TestSign, TestOpen)
  const peter = parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')!;
  t.ok(peter, 'the verifier key parses');
  const signer = parseSignerKey('PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz', 'test');
  const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const want = text + '\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
  t.equal(signNote(text, [signer]), want, 'the same signed note as Go');
  t.equal(signer.verifierKey, peter.verifierKey, 'the signer key gives the verifier key');
  t.equal(openNote(want, peter, 'note').text, text, 'it opens');
  const enochSig = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';
  t.equal(openNote(want + enochSig, peter, 'note').text, text, "another key's signature is ignored");
  t.throws(() => openNote(text + '\n' + enochSig, peter, 'note'), { code: 'BAD_SIGNATURE' }, 'signed only by another key');
  t.throws(() => openNote(want.replace('problem,', 'problem;'), peter, 'note'), { code: 'BAD_SIGNATURE' }, 'a changed text');
  for (const bad of [text, want.slice(0, -1), want.replace('— ', '-- '), want + 'x\n', `${text}\n— PeterNeumann !!\n`, want.replace('you', 'y\u0007u')]) {
    t.throws(() => openNote(bad, peter, 'note'), { code: 'MALFORMED' }, `malformed: ${JSON.stringify(bad.slice(-30))}`);
  }
  t.throws(() => openNote('x'.repeat(20000) + '\n\n' + want, peter, 'note'), { code: 'MALFORMED' }, 'too large');
  // verifier key manglings are refused (as Go's TestNewVerifier)
  const vkey = peter.verifierKey;
  for (let i = 0; i < vkey.length; i++) {
    const b = Buffer.from(vkey);
    b[i]++;
    if (parseVerifierKey(b.toString()) !== null) t.fail(`a mangled key is accepted: ${b}`);
  }
  t.equal(parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), null, 'an unknown algorithm');
});

t.test("C2SP checkpoints: the same bytes as Go's tlog + note, and checked", async (t) => {
  const signer = parseSignerKey(go.note.signerKey, 'test');
  t.equal(signer.verifierKey, go.note.verifierKey);
  const v = parseVerifierKey(go.note.verifierKey)!;
  const cp = { origin: 'boxsig.test/log', size: 1025, root: b64(go.roots['1025']) };
  t.equal(checkpointText(cp), go.note.text, 'checkpoint text');
  t.equal(signCheckpoint(cp, signer), go.note.signed, "signed: byte for byte Go's note.Sign");
  const opened = openCheckpoint(go.note.signed, v);
  t.equal(opened.size, 1025);
  t.equal(opened.root.toString('base64'), go.roots['1025']);
  const other = parseVerifierKey(generateSignerKey('boxsig.test/log').verifierKey)!;
  t.throws(() => openCheckpoint(go.note.signed, other), { code: 'BAD_SIGNATURE' }, 'a key of the same name but another key');
  const wrongOrigin = generateSignerKey('elsewhere');
  t.throws(
    () => openCheckpoint(signCheckpoint(cp, parseSignerKey(wrongOrigin.signerKey, 't')), parseVerifierKey(wrongOrigin.verifierKey)!),
    { code: 'MALFORMED' },
    "an origin that is not the key's name",
  );
  const s = parseSignerKey(go.note.signerKey, 't');
  for (const text of ['boxsig.test/log\n01\nAAAA\n', 'boxsig.test/log\n-1\n' + go.roots['1'] + '\n', 'boxsig.test/log\n1\nAAAA\n']) {
    t.throws(() => openCheckpoint(signNote(text, [s]), v), { code: 'MALFORMED' }, `refused: ${JSON.stringify(text)}`);
  }
  t.throws(() => parseSignerKey('PRIVATE+KEY+x+00000000+AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH', 'f'), { code: 'CONFIG' }, 'a wrong key ID');
});

t.test('catalog statements', async (t) => {
  const { signerKey, verifierKey } = generateSignerKey('reg.example/boxsig');
  const signer = parseSignerKey(signerKey, 't');
  const v = parseVerifierKey(verifierKey)!;
  const entries = [
    { version: '1.0.0', provider: 'virtualbox', architecture: 'amd64', checksumType: 'sha256', checksum: 'a'.repeat(64), logIndex: 3 },
    { version: '1.1.0', provider: 'virtualbox', checksumType: 'sha256', checksum: 'b'.repeat(64), logIndex: 7 },
  ];
  t.equal(entriesDigest(entries), entriesDigest([...entries].reverse()), 'the digest does not depend on the order');
  t.not(entriesDigest(entries), entriesDigest(entries.slice(0, 1)), 'it depends on every entry');
  t.not(entriesDigest(entries), entriesDigest([entries[0], { ...entries[1], logIndex: 8 }]), 'and on log indexes');
  const st = { origin: 'reg.example/boxsig', box: 'acme/web', serial: 8, expires: '2030-01-01T00:00:00.000Z', digest: entriesDigest(entries), logSize: 9 };
  t.same(openStatement(signStatement(st, signer), v), st, 'round trip');
  t.throws(() => openStatement(signStatement({ ...st, serial: 10 }, signer), v), { code: 'MALFORMED' }, 'a serial beyond the log');
  t.throws(
    () => openStatement(signCheckpoint({ origin: 'reg.example/boxsig', size: 1, root: EMPTY_ROOT }, signer), v),
    { code: 'MALFORMED' },
    'a checkpoint is no statement',
  );
  t.throws(() => openCheckpoint(signStatement(st, signer), v), { code: 'MALFORMED' }, 'and a statement is no checkpoint');
});

t.test('log entries: canonical, versioned', async (t) => {
  const e: LogEntry = {
    v: 1,
    kind: 'publication',
    org: 'acme',
    box: 'acme/web',
    version: '1.0.0',
    provider: 'virtualbox',
    architecture: 'amd64',
    sha256: 'a'.repeat(64),
    size: 10,
    manifest_sha256: null,
    signers: ['ABCD'],
    time: '2026-01-01T00:00:00.000Z',
  };
  const data = encodeEntry(e);
  t.match(data.toString(), /^\{"architecture":"amd64","box":"acme\/web","kind":"publication",/, 'keys sorted (RFC 8785)');
  t.same(parseEntry(data, 'entry'), e);
  t.throws(() => parseEntry(Buffer.from(JSON.stringify(e)), 'entry'), { code: 'MALFORMED' }, 'a non-canonical encoding');
  t.throws(() => parseEntry(encodeEntry({ ...e, v: 2 } as unknown as LogEntry), 'entry'), { code: 'MALFORMED' }, 'another version');
  t.throws(() => parseEntry(encodeEntry({ ...e, sha256: 'zz' }), 'entry'), { code: 'MALFORMED' }, 'a bad hash');
  t.same(fingerprintsIn({ a: ['x 0123456789abcdef0123456789abcdef01234567 y'], b: { c: 'F'.repeat(40) } }), [
    '0123456789ABCDEF0123456789ABCDEF01234567',
    'F'.repeat(40),
  ]);
});
