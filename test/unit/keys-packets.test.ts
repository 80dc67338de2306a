/**
 * Unit tests of the pure key logic: packet framing, key and signature
 * packets, the union merge of key copies, the shape rules (algorithms,
 * versions, limits), revocation judgement by reason and date.
 */
import t from 'tap';
import { readPackets, writePacket, parseKeyPacket, parseSignaturePacket, PacketError, TAG } from '../../src/keys/packets.js';
import { mergeCert, splitCerts, writeCert, allSignatures, attachSignatures } from '../../src/keys/cert.js';
import { certProblem, keyPacketProblem, KEY_LIMITS } from '../../src/keys/shape.js';
import { describeRevocation, isHardReason, revocationAt, type Revocation } from '../../src/keys/revocation.js';
import {
  FLAGS,
  certification,
  detached,
  ed25519Key,
  keyPacket,
  keyRevocation,
  publicKey,
  rsaKey,
  selfCert,
  sigPacket,
  signatureBody,
  sp,
  subkeyBinding,
  subkeyPacket,
  uidPacket,
  withVersion,
  SIG,
} from '../pgp-craft.js';

const split = (b: Buffer) => splitCerts(readPackets(b));

t.test('framing: new and old headers, and what is refused', async (t) => {
  const body = Buffer.alloc(300, 7);
  const rows: Array<[string, Buffer, number | RegExp]> = [
    ['new format, 1-byte length', Buffer.from([0xcd, 3, 1, 2, 3]), 3],
    ['new format, 2-byte length', Buffer.from(writePacket({ tag: 13, body })), 300],
    ['new format, 5-byte length', Buffer.concat([Buffer.from([0xcd, 0xff, 0, 0, 1, 44]), body]), 300],
    ['old format, 1-byte length', Buffer.from([0xb4, 2, 9, 9]), 2],
    ['old format, 2-byte length', Buffer.concat([Buffer.from([0xb5, 1, 44]), body]), 300],
    ['old format, indeterminate length', Buffer.from([0xb7, 1, 2]), /indeterminate/],
    ['partial body length', Buffer.from([0xcd, 0xe1, 1, 2]), /partial body/],
    ['not a packet header', Buffer.from([0x41, 1]), /not a packet header/],
    ['truncated body', Buffer.from([0xcd, 9, 1]), /truncated/],
    ['truncated 2-byte length', Buffer.from([0xcd, 0xc5]), /truncated/],
  ];
  for (const [name, bytes, want] of rows) {
    if (typeof want === 'number') t.equal(readPackets(bytes)[0].body.length, want, name);
    else t.throws(() => readPackets(bytes), want, name);
  }
  for (const n of [0, 1, 191, 192, 8383, 8384, 70000]) {
    const p = { tag: TAG.userId, body: Buffer.alloc(n, 1) };
    t.equal(readPackets(writePacket(p))[0].body.length, n, `write/read round trip of ${n} bytes`);
  }
});

t.test('key packets: fingerprints, algorithms and sizes as OpenPGP.js and GnuPG compute them', async (t) => {
  const openpgp = await import('openpgp');
  const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'x' }], format: 'object' });
  const [primary, , , sub] = readPackets(privateKey.toPublic().write());
  const info = parseKeyPacket(primary.body);
  t.equal(info.fingerprint, privateKey.getFingerprint().toUpperCase(), 'primary fingerprint');
  t.match(info, { version: 4, algorithm: 22, curve: 'ed25519' });
  t.match(parseKeyPacket(sub.body), { algorithm: 18, curve: 'curve25519', fingerprint: privateKey.subkeys[0].getFingerprint().toUpperCase() });
  const rsa = rsaKey(2048);
  t.match(parseKeyPacket(rsa.body), { algorithm: 1, bits: 2048, exponentBits: 17, fingerprint: rsa.fpr });
  t.match(parseKeyPacket(withVersion(rsa, 6).body), { version: 6 });
  t.throws(() => parseKeyPacket(rsa.body.subarray(0, 20)), PacketError, 'a truncated key packet');
});

t.test('signature packets: subpackets, critical bits, issuers, identity', async (t) => {
  const k = ed25519Key();
  const data = Buffer.from('data');
  const plain = parseSignaturePacket(readPackets(detached(k, data))[0].body);
  t.match(plain, { version: 4, type: 0, algorithm: 22, hashedIssuerFingerprint: k.fpr, unknownCritical: [], unknownCriticalUnhashed: [] });
  t.ok(plain.created instanceof Date);
  const rows: Array<[string, Parameters<typeof detached>[2], Partial<ReturnType<typeof parseSignaturePacket>>]> = [
    ['critical 39 hashed', { hashed: [sp.raw(39, Buffer.alloc(2))] }, { unknownCritical: [39] }],
    ['critical 31 hashed', { hashed: [sp.raw(31, Buffer.alloc(4))] }, { unknownCritical: [31] }],
    ['non-critical 39', { hashed: [sp.raw(39, Buffer.alloc(2), false)] }, { unknownCritical: [] }],
    ['critical key flags (known)', { hashed: [sp.keyFlags(FLAGS.sign, true)] }, { unknownCritical: [] }],
    ['critical 100 unhashed', { unhashed: [sp.raw(100, Buffer.alloc(1))] }, { unknownCritical: [], unknownCriticalUnhashed: [100] }],
    ['reason for revocation', { hashed: [sp.reason(2, 'stolen')] }, { reasonCode: 2, reasonText: 'stolen' }],
    [
      'no issuer at all',
      { bare: true, hashed: [sp.created(new Date())], unhashed: [] },
      { issuerKeyIds: [], issuerFingerprints: [], hashedIssuerFingerprint: null },
    ],
  ];
  for (const [name, opts, want] of rows) t.match(parseSignaturePacket(readPackets(detached(k, data, opts))[0].body), want, name);
  // the same signature with another unsigned area: same identity unless the claimed issuer changes
  const body = signatureBody(k, data, { type: SIG.binary, created: new Date(1_700_000_000_000) });
  const a = parseSignaturePacket(body);
  t.equal(a.identity, a.identity);
  const mangled = parseSignaturePacket(signatureBody(k, data, { type: SIG.binary, created: new Date(1_700_000_000_000), unhashed: [sp.issuer(ed25519Key())] }));
  t.not(mangled.identity, a.identity, 'a copy claiming another issuer is kept apart');
  for (const [name, bytes] of [
    ['v3', Buffer.concat([Buffer.from([3]), body.subarray(1)])],
    ['truncated', body.subarray(0, body.length - 5)],
    ['trailing bytes', Buffer.concat([body, Buffer.from([0])])],
    ['subpacket overrun', Buffer.concat([body.subarray(0, 6), Buffer.from([0xff, 0, 0, 0, 9]), body.subarray(11)])],
  ] as const) {
    t.throws(() => parseSignaturePacket(bytes), PacketError, `${name} is refused`);
  }
});

t.test('merge: a union, in any order, junk first; nothing ever dropped', async (t) => {
  const k = ed25519Key(new Date(Date.now() - 7_200_000));
  const sub = ed25519Key(new Date(Date.now() - 7_200_000));
  const uid = 'M <m@example.org>';
  const junk = sigPacket(signatureBody(ed25519Key(), Buffer.alloc(0), { type: SIG.keyRevocation, unhashed: [sp.issuer(k)] }));
  const pieces = {
    base: publicKey(k, uid),
    junk: Buffer.concat([publicKey(k, uid), junk]),
    revocation: Buffer.concat([keyPacket(k), keyRevocation(k, k, 2), uidPacket(uid), selfCert(k, uid)]),
    certified: Buffer.concat([publicKey(k, uid), certification(ed25519Key(), k, uid)]),
    subkey: Buffer.concat([publicKey(k, uid), subkeyPacket(sub), subkeyBinding(k, sub, FLAGS.sign)]),
    newUid: Buffer.concat([publicKey(k, uid), uidPacket('N <n@example.org>'), selfCert(k, 'N <n@example.org>')]),
  };
  const names = Object.keys(pieces) as Array<keyof typeof pieces>;
  const all = new Set(names.flatMap((n) => allSignatures(split(pieces[n]).certs[0]).map((s) => s.info.identity)));
  const orders = [names, [...names].reverse(), ['junk', 'revocation', 'base', 'subkey', 'newUid', 'certified'] as Array<keyof typeof pieces>];
  for (const order of orders) {
    let c = split(pieces[order[0]]).certs[0];
    for (const n of order.slice(1)) {
      const r = mergeCert(c, split(pieces[n]).certs[0]);
      t.ok(r.added >= 0);
      c = r.cert;
    }
    t.same(new Set(allSignatures(c).map((s) => s.info.identity)), all, `${order.join(' → ')}: every signature kept`);
    t.equal(c.users.length, 2, 'both user IDs');
    t.equal(c.subkeys.length, 1, 'the subkey');
    const again = split(Buffer.from(writeCert(c))).certs[0];
    t.equal(allSignatures(again).length, all.size, 'written and read back whole');
    t.equal(mergeCert(c, split(pieces.revocation).certs[0]).added, 0, 'a copy with nothing new adds nothing ("unchanged" is true)');
  }
  const when = { created: new Date(Date.now() - 3_600_000) };
  const bare = attachSignatures(split(pieces.base).certs[0], split(Buffer.from(keyRevocation(k, k, 2, when))).bare);
  t.equal(bare.added, 1, 'a bare revocation attaches');
  t.equal(attachSignatures(bare.cert, split(Buffer.from(keyRevocation(k, k, 2, when))).bare).added, 0, 'the same one again adds nothing');
  t.equal(attachSignatures(bare.cert, split(Buffer.from(keyRevocation(k, k, 3, { created: new Date(Date.now() - 5000) }))).bare).added, 1, 'another one does');
});

t.test('shape: versions, algorithms, sizes, counts', async (t) => {
  const rows: Array<[string, ReturnType<typeof parseKeyPacket>, 'primary key' | 'subkey', RegExp | null]> = [
    ['Ed25519 legacy', parseKeyPacket(ed25519Key().body), 'primary key', null],
    ['RSA 2048', parseKeyPacket(rsaKey(2048).body), 'primary key', null],
    ['RSA 1024', parseKeyPacket(rsaKey(1024).body), 'primary key', /weak 1024-bit RSA/],
    ['algorithm 27', parseKeyPacket(ed25519Key(undefined, 27).body), 'primary key', /algorithm 27.*cannot verify/],
    ['algorithm 27 subkey', parseKeyPacket(ed25519Key(undefined, 27).body), 'subkey', /algorithm 27/],
    ['v5', parseKeyPacket(withVersion(ed25519Key(), 5).body), 'primary key', /v5 key/],
    ['v6', parseKeyPacket(withVersion(ed25519Key(), 6).body), 'primary key', /v6 key/],
    ['v3', parseKeyPacket(withVersion(ed25519Key(), 3).body), 'primary key', /obsolete v3/],
  ];
  for (const [name, info, role, want] of rows) {
    const p = keyPacketProblem(info, role);
    if (want) t.match(p, want, name);
    else t.equal(p, null, name);
  }
  t.equal(
    keyPacketProblem({ version: 4, algorithm: 17, created: new Date(), publicLength: 0, fingerprint: '', keyId: '' }, 'primary key')?.includes('DSA'),
    true,
    'DSA',
  );
  t.match(
    keyPacketProblem({ version: 4, algorithm: 19, curve: 'brainpoolP256r1', created: new Date(), publicLength: 0, fingerprint: '', keyId: '' }, 'primary key'),
    /curve/,
  );
  const k = ed25519Key();
  const many = (n: number) => {
    const parts = [keyPacket(k)];
    for (let i = 0; i < n; i++) parts.push(uidPacket(`u${i}`), selfCert(k, `u${i}`));
    return split(Buffer.concat(parts)).certs[0];
  };
  t.equal(certProblem(many(KEY_LIMITS.userIds)), null, 'at the user ID limit');
  t.match(certProblem(many(KEY_LIMITS.userIds + 1)), /more than the limit/, 'one past it');
});

t.test('revocations: hard ones apply to every signature, soft ones from their date', async (t) => {
  const at = new Date('2026-06-01T00:00:00Z');
  const rev = (code: number | null, created: string | null, target = 'key'): Revocation => ({
    target,
    issuer: 'X',
    designated: false,
    reasonCode: code,
    reason: '',
    text: '',
    created: created ? new Date(created) : null,
    hard: isHardReason(code),
  });
  const rows: Array<[string, Revocation, boolean]> = [
    ['compromised, later', rev(2, '2027-01-01T00:00:00Z'), true],
    ['no reason subpacket, later', rev(null, '2027-01-01T00:00:00Z'), true],
    ['unknown reason 7, later', rev(7, '2027-01-01T00:00:00Z'), true],
    ['superseded, later', rev(1, '2027-01-01T00:00:00Z'), false],
    ['superseded, earlier', rev(1, '2026-01-01T00:00:00Z'), true],
    ['retired, same second', rev(3, '2026-06-01T00:00:00Z'), true],
    ['retired, undated', rev(3, null), true],
    ['another subkey', rev(2, '2026-01-01T00:00:00Z', 'SUB2'), false],
    ['this subkey', rev(2, '2026-01-01T00:00:00Z', 'SUB1'), true],
  ];
  for (const [name, r, applies] of rows) t.equal(revocationAt([r], 'SUB1', at) !== null, applies, name);
  const hostile = { ...rev(2, '2026-01-01T00:00:00Z'), text: 'stolen\u001b[2J\nVERIFIED' };
  // control characters in untrusted text are what this looks for
  t.notMatch(describeRevocation(hostile), /[\u0000-\u001f]/, "the issuer's text never reaches a terminal raw");
  t.match(describeRevocation(hostile), /stolen\\x1b\[2J\\x0aVERIFIED/);
});
