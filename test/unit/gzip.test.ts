/**
 * Gzip member framing, as tables: boxsig's leading member (the marker that
 * tells its length, padding to an exact length), member headers (RFC 1952
 * §2.3, checked as zlib checks them), the sniffing of other compressions, and
 * the inflation of one member. Pure logic: runs in milliseconds.
 */
import t from 'tap';
import zlib from 'node:zlib';
import {
  buildLeadingMember,
  crc32,
  inflateLeadingMember,
  inflateMember,
  isGzip,
  leadingMemberLength,
  parseMemberHeader,
  sniffUnsupported,
} from '../../src/archive/gzip.js';

const payload = Buffer.from('the .boxsig/ entries '.repeat(40));

t.test('the leading member says its own length and inflates to its payload', async (t) => {
  const m = buildLeadingMember(payload)!;
  t.equal(leadingMemberLength(m), m.length);
  t.same(inflateMember(m, 1 << 20), payload);
  t.same(inflateLeadingMember(m, m.length, 1 << 20), payload);
  t.same(zlib.gunzipSync(m), payload, 'any gzip reader reads it');
});

t.test('the leading member is padded to an exact length through its comment', async (t) => {
  const natural = buildLeadingMember(payload)!.length;
  for (const extra of [0, 1, 2, 100, 4096]) {
    const m = buildLeadingMember(payload, natural + extra);
    t.equal(m?.length, natural + extra, `+${extra}`);
    t.equal(leadingMemberLength(m!), natural + extra);
    t.same(zlib.gunzipSync(m!), payload);
  }
  t.equal(buildLeadingMember(payload, natural - 1), null, 'a payload that does not fit');
});

t.test('a member followed by the original stream is one valid gzip stream', async (t) => {
  const m = buildLeadingMember(payload)!;
  const rest = zlib.gzipSync(Buffer.from('disk image'));
  t.same(zlib.gunzipSync(Buffer.concat([m, rest])).toString(), payload.toString() + 'disk image');
  t.equal(leadingMemberLength(Buffer.concat([m, rest])), m.length);
});

t.test('what is not a boxsig leading member', async (t) => {
  const rows: Array<[string, Buffer]> = [
    ['plain gzip', zlib.gzipSync(payload)],
    ['a tar', Buffer.alloc(1024)],
    ['too short', Buffer.from([0x1f, 0x8b, 8, 4])],
    ['gzip with another FEXTRA subfield', withExtra([0x41, 0x70, 2, 0, 1, 2])],
    ['a marker of another version', withExtra([0x42, 0x53, 9, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0])],
    ['a subfield that overruns XLEN', withExtra([0x42, 0x53, 20, 0, 1])],
    ['a length beyond 2^53', withExtra([0x42, 0x53, 9, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
  ];
  for (const [name, head] of rows) t.equal(leadingMemberLength(head), null, name);
});

/** A gzip header with FEXTRA holding `extra`, then an empty deflate stream. */
function withExtra(extra: number[]): Buffer {
  const h = Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255, extra.length & 0xff, extra.length >> 8, ...extra]);
  return Buffer.concat([h, zlib.deflateRawSync(Buffer.alloc(0)), Buffer.alloc(8)]);
}

t.test('member headers', async (t) => {
  const base = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
  const rows: Array<[string, number[], number | null | string]> = [
    ['the fixed 10 bytes', base, 10],
    ['too short to tell', base.slice(0, 9), null],
    ['FEXTRA', [0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 2, 0, 9, 9], 14],
    ['FEXTRA, length not there yet', [0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 2], null],
    ['FNAME', [0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0], 13],
    ['FNAME without its NUL yet', [0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3, 0x61], null],
    ['FNAME and FCOMMENT', [0x1f, 0x8b, 8, 24, 0, 0, 0, 0, 0, 3, 0x61, 0, 0x62, 0], 14],
    ['bad magic', [0x1f, 0x8c, 8, 0, 0, 0, 0, 0, 0, 3], 'incorrect header check'],
    ['not deflate', [0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 3], 'unknown compression method'],
    ['reserved flags', [0x1f, 0x8b, 8, 0x20, 0, 0, 0, 0, 0, 3], 'unknown header flags set'],
  ];
  for (const [name, bytes, want] of rows) {
    if (typeof want === 'string') t.throws(() => parseMemberHeader(Buffer.from(bytes)), { code: 'MALFORMED', message: new RegExp(want) }, name);
    else t.equal(parseMemberHeader(Buffer.from(bytes)), want, name);
  }
  const fhcrc = Buffer.from([0x1f, 0x8b, 8, 2, 0, 0, 0, 0, 0, 3, 0, 0]);
  fhcrc.writeUInt16LE(crc32(fhcrc.subarray(0, 10)) & 0xffff, 10);
  t.equal(parseMemberHeader(fhcrc), 12, 'FHCRC that matches');
  fhcrc[10] ^= 1;
  t.throws(() => parseMemberHeader(fhcrc), { code: 'MALFORMED', message: /header crc mismatch/ }, 'FHCRC that does not');
});

t.test('inflateLeadingMember answers null for anything but one clean member of that length', async (t) => {
  const m = buildLeadingMember(payload)!;
  t.equal(inflateLeadingMember(m, m.length + 1, 1 << 20), null, 'longer than the head');
  t.equal(inflateLeadingMember(m.subarray(0, m.length - 1), m.length - 1, 1 << 20), null, 'cut short');
  const badCrc = Buffer.from(m);
  badCrc[badCrc.length - 8] ^= 1;
  t.equal(inflateLeadingMember(badCrc, m.length, 1 << 20), null, 'CRC-32 differs');
  const badSize = Buffer.from(m);
  badSize[badSize.length - 4] ^= 1;
  t.equal(inflateLeadingMember(badSize, m.length, 1 << 20), null, 'ISIZE differs');
  t.equal(inflateLeadingMember(m, m.length, 10), null, 'more output than allowed');
});

t.test('inflateMember refuses what is not exactly one member', async (t) => {
  const m = buildLeadingMember(payload)!;
  t.throws(() => inflateMember(m.subarray(0, m.length - 3), 1 << 20), { code: 'MALFORMED' }, 'truncated');
  t.throws(
    () => inflateMember(Buffer.concat([zlib.gzipSync(Buffer.from('a')), zlib.gzipSync(Buffer.from('bc'))]), 1 << 20),
    { code: 'MALFORMED' },
    'two members',
  );
});

t.test('sniffing', async (t) => {
  t.ok(isGzip(Buffer.from([0x1f, 0x8b])));
  t.notOk(isGzip(Buffer.from([0x1f])));
  const rows: Array<[string, number[], string | null]> = [
    ['bzip2', [...Buffer.from('BZh91AY')], 'bzip2'],
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0], 'xz'],
    ['zstd', [0x28, 0xb5, 0x2f, 0xfd, 0, 0], 'zstd'],
    ['lz4', [0x04, 0x22, 0x4d, 0x18, 0, 0], 'lz4'],
    ['zip', [...Buffer.from('PK\x03\x04..')], 'zip'],
    ['tar', [...Buffer.from('metadata.json\0')], null],
    ['gzip', [0x1f, 0x8b, 8, 0], null],
  ];
  for (const [name, head, want] of rows) t.equal(sniffUnsupported(Buffer.from(head)), want, name);
});

t.test('crc32 is the CRC-32 of gzip', async (t) => {
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  t.equal(crc32(Buffer.alloc(0)), 0);
});
