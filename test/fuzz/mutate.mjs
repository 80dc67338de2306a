/**
 * Seeded mutations of signed boxes for the fuzzer: raw bit flips and byte
 * edits, truncation, appended data, gzip header and trailer edits,
 * recompression into several members, and — on the tar stream inside —
 * header field edits with the checksum recomputed (so that the edit reaches
 * the parser), block splicing, duplication and deletion, inserted hostile
 * entries and pax record edits.
 */
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import * as tar from '../corpus/tar.mjs';

const BLOCK = 512;

/** mulberry32 seeded from sha256(seed:index): independent, reproducible streams per case. */
export function caseRng(seed, index) {
  let a = createHash('sha256').update(`${seed}:${index}`).digest().readUInt32LE(0);
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (arr) => arr[Math.floor(next() * arr.length)],
  };
}

function gunzipAll(b) {
  return zlib.gunzipSync(b);
}

/** gzip `t` as 1 to 4 members cut at random places. */
function regzip(t, rng) {
  const n = rng.chance(0.5) ? 1 : 2 + rng.int(3);
  const cuts = [0, ...Array.from({ length: n - 1 }, () => rng.int(t.length + 1)).sort((a, b) => a - b), t.length];
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(zlib.gzipSync(t.subarray(cuts[i], cuts[i + 1]), { level: rng.pick([1, 6, 9]) }));
  return { bytes: Buffer.concat(parts), members: n };
}

const HOSTILE_NAMES = [
  '../escaped.txt',
  '/tmp/boxsig-fuzz-absolute.txt',
  './../x',
  'a/../../x',
  'sub\\..\\x',
  '.boxsig/manifest.json',
  '.boxsig/extra',
  '.BOXSIG/x',
  'metadata.json',
  'Vagrantfile',
  'VAGRANTFILE',
  'Vagrantfile.',
  'Vagrantfile/',
  '',
  '.',
  '..',
  './',
  'C:x',
  'x\ny',
  'caf\u0065\u0301.txt',
  'x'.repeat(100),
];
const TYPEFLAGS = ['0', '\0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'V', 'M', 'D', 'N', 'A', 'Z', '\xff'];

function cName(block) {
  const f = block.subarray(0, 100);
  const nul = f.indexOf(0);
  return f.subarray(0, nul < 0 ? 100 : nul).toString('utf8');
}

function writeField(block, off, len, bytes) {
  block.fill(0, off, off + len);
  Buffer.from(bytes).copy(block, off, 0, len);
}

function octalField(value, len) {
  const s = Math.max(0, Math.floor(value)).toString(8);
  if (s.length > len - 1) return null;
  return Buffer.from(s.padStart(len - 1, '0') + '\0', 'latin1');
}

function base256Field(value, len) {
  const b = Buffer.alloc(len);
  let v = BigInt(Math.max(0, Math.floor(value)));
  for (let i = len - 1; i >= 1; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b[0] = 0x80;
  return b;
}

/** Header-field edit on a copy of the tar stream; the checksum is recomputed (usually). */
function editHeader(t, rng, ops) {
  const headers = [...tar.walkHeaders(t)];
  if (!headers.length) return t;
  const h = rng.pick(headers);
  const out = Buffer.from(t);
  const block = out.subarray(h.offset, h.offset + BLOCK);
  const field = rng.pick([
    'size',
    'size',
    'typeflag',
    'typeflag',
    'name',
    'name',
    'name',
    'prefix',
    'magic',
    'linkname',
    'mode',
    'mtime',
    'uid',
    'uname',
    'checksum',
  ]);
  const size = h.size ?? 0;
  switch (field) {
    case 'size': {
      const v = rng.pick([size + 1, size - 1, size + 512, size - 512, 0, size * 2, 2 ** 33, rng.int(1 << 20), size]);
      const enc = rng.chance(0.25) ? base256Field(v, 12) : (octalField(v, 12) ?? base256Field(v, 12));
      writeField(block, 124, 12, enc);
      ops.push(`header@${h.offset} size ${size} -> ${v}${enc[0] & 0x80 ? ' (base-256)' : ''}`);
      break;
    }
    case 'typeflag': {
      const f = rng.pick(TYPEFLAGS);
      block.write(f, 156, 'latin1');
      ops.push(`header@${h.offset} typeflag ${JSON.stringify(h.type)} -> ${JSON.stringify(f)}`);
      break;
    }
    case 'name': {
      const old = cName(block);
      const others = headers.map((x) => cName(x.block));
      const n = rng.pick([
        () => rng.pick(HOSTILE_NAMES),
        () => rng.pick(others),
        () => `./${old}`,
        () => `../${old}`,
        () => `/${old}`,
        () => `${old}/`,
        () => old.toUpperCase(),
        () => old.slice(0, -1),
        () => `${old}\0junk`,
        () => old.replace(/[a-z]/, (c) => c.toUpperCase()),
      ])();
      writeField(block, 0, 100, Buffer.from(n, 'utf8'));
      ops.push(`header@${h.offset} name ${JSON.stringify(old)} -> ${JSON.stringify(n)}`);
      break;
    }
    case 'prefix': {
      const p = rng.pick(['..', 'sub', '/abs', '.boxsig', 'x'.repeat(155)]);
      writeField(block, 345, 155, Buffer.from(p));
      ops.push(`header@${h.offset} prefix -> ${JSON.stringify(p.slice(0, 20))}`);
      break;
    }
    case 'magic': {
      const m = rng.pick(['ustar\x0000', 'ustar  \x00', '\0\0\0\0\0\0\0\0', 'ustar\x00  ', 'garbage!']);
      block.write(m, 257, 'latin1');
      ops.push(`header@${h.offset} magic -> ${JSON.stringify(m)}`);
      break;
    }
    case 'linkname': {
      const l = rng.pick(['/etc/passwd', '../x', 'metadata.json', '']);
      writeField(block, 157, 100, Buffer.from(l));
      ops.push(`header@${h.offset} linkname -> ${JSON.stringify(l)}`);
      break;
    }
    case 'mode':
    case 'mtime':
    case 'uid': {
      const [off, len] = { mode: [100, 8], mtime: [136, 12], uid: [108, 8] }[field];
      const v = rng.chance(0.7)
        ? octalField(rng.int(8 ** (len - 1)), len)
        : Buffer.from(rng.pick(['garbage!!!!!', '\xff\xff\xff\xff\xff\xff\xff\xff', '        ']).slice(0, len), 'latin1');
      writeField(block, off, len, v);
      ops.push(`header@${h.offset} ${field} edited`);
      break;
    }
    case 'uname': {
      writeField(block, 265, 32, Buffer.from(rng.pick(['builder', '', '\u00e9t\u00e9', 'x'.repeat(32)])));
      ops.push(`header@${h.offset} uname edited`);
      break;
    }
    case 'checksum': {
      block[148 + rng.int(8)] ^= 1 << rng.int(8);
      ops.push(`header@${h.offset} checksum corrupted`);
      return out;
    }
  }
  if (rng.chance(0.95)) tar.fixChecksum(block, rng.chance(0.1));
  else ops.push('(checksum left stale)');
  return out;
}

/** Splice, duplicate or delete 512-byte block ranges. */
function blockOp(t, rng, ops) {
  const blocks = Math.floor(t.length / BLOCK);
  if (blocks < 2) return t;
  const a = rng.int(blocks);
  const len = 1 + rng.int(Math.min(8, blocks - a));
  const seg = t.subarray(a * BLOCK, (a + len) * BLOCK);
  const dest = rng.int(blocks + 1) * BLOCK;
  switch (rng.pick(['duplicate', 'delete', 'overwrite', 'swap'])) {
    case 'duplicate':
      ops.push(`blocks ${a}+${len} duplicated at block ${dest / BLOCK}`);
      return Buffer.concat([t.subarray(0, dest), seg, t.subarray(dest)]);
    case 'delete':
      ops.push(`blocks ${a}+${len} deleted`);
      return Buffer.concat([t.subarray(0, a * BLOCK), t.subarray((a + len) * BLOCK)]);
    case 'overwrite': {
      const out = Buffer.from(t);
      seg.copy(out, Math.min(dest, out.length - seg.length));
      ops.push(`blocks ${a}+${len} copied over block ${dest / BLOCK}`);
      return out;
    }
    default: {
      const b = rng.int(blocks);
      const out = Buffer.from(t);
      const x = Buffer.from(t.subarray(a * BLOCK, (a + 1) * BLOCK));
      t.copy(out, a * BLOCK, b * BLOCK, (b + 1) * BLOCK);
      x.copy(out, b * BLOCK);
      ops.push(`blocks ${a} and ${b} swapped`);
      return out;
    }
  }
}

/** Insert a crafted entry at a header boundary (or at the end-of-archive marker). */
function insertEntry(t, rng, ops) {
  const headers = [...tar.walkHeaders(t)];
  const boundaries = headers.map((h) => h.offset);
  const last = headers.at(-1);
  if (last && last.size !== null) boundaries.push(last.offset + BLOCK + Math.ceil(last.size / BLOCK) * BLOCK);
  const at = boundaries.length ? rng.pick(boundaries) : 0;
  const files = headers.filter((h) => h.type === '0' || h.type === '\0');
  const src = files.length ? rng.pick(files) : null;
  const srcName = src ? cName(src.block) : 'metadata.json';
  const srcData = src ? t.subarray(src.offset + BLOCK, src.offset + BLOCK + (src.size ?? 0)) : Buffer.alloc(0);
  const [label, entry] = rng.pick([
    () => ['symlink', tar.header({ name: 'link', type: '2', linkname: '/etc/passwd' })],
    () => ['hard link', tar.header({ name: 'hl', type: '1', linkname: srcName })],
    () => ['duplicate (same bytes)', tar.file(srcName, srcData)],
    () => ['duplicate (other bytes)', tar.file(srcName, Buffer.concat([srcData.subarray(0, Math.max(0, srcData.length - 1)), Buffer.from('!')]))],
    () => ['unlisted file', tar.file(rng.pick(['evil.sh', 'sub/evil', 'EVIL']), 'echo pwned\n')],
    () => ['hostile name', tar.file(rng.pick(HOSTILE_NAMES), 'x')],
    () => ['pax path', tar.pax([['path', rng.pick([...HOSTILE_NAMES, srcName])]])],
    () => ['pax size', tar.pax([['size', String(rng.int(4096))]])],
    () => ['pax comment', tar.pax([['comment', 'harmless']])],
    () => ['pax global', tar.pax([['comment', 'global']], { global: true })],
    () => ['GNU long name', tar.gnuLong(rng.pick([`${'l'.repeat(120)}.txt`, srcName, '../x']))],
    () => ['directory', tar.dir(rng.pick(['dir/', `${srcName}/`, '.boxsig/', './']))],
    () => ['device', tar.header({ name: 'dev', type: rng.pick(['3', '4', '6']) })],
    () => ['.boxsig file', tar.file(rng.pick(['.boxsig/manifest.json', '.boxsig/signatures/x.asc', '.boxsig/keys/AB.asc']), '{}')],
    () => ['zero block', Buffer.alloc(BLOCK)],
  ])();
  ops.push(`${label} inserted at ${at}`);
  return Buffer.concat([t.subarray(0, at), entry, t.subarray(at)]);
}

/** Rewrite the records of a pax header (path/size changes), re-padding it. */
function paxEdit(t, rng, ops) {
  const xs = [...tar.walkHeaders(t)].filter((h) => h.type === 'x' && h.size !== null);
  if (!xs.length) return insertEntry(t, rng, ops);
  const h = rng.pick(xs);
  const dataEnd = h.offset + BLOCK + h.size;
  const text = t.subarray(h.offset + BLOCK, dataEnd).toString('utf8');
  const records = [...text.matchAll(/\d+ ([^=\n]+)=([^\n]*)\n/g)].map((m) => [m[1], m[2]]);
  const kind = rng.pick(['path', 'size', 'drop', 'dup', 'linkpath', 'unknown']);
  if (kind === 'path') records.push(['path', rng.pick(HOSTILE_NAMES) || 'x']);
  else if (kind === 'size') records.push(['size', String(rng.pick([0, 1, 511, 512, 4096, 99999999]))]);
  else if (kind === 'drop') records.splice(rng.int(records.length + 1), 1);
  else if (kind === 'dup' && records.length) records.push(records[0]);
  else if (kind === 'linkpath') records.push(['linkpath', '/etc/passwd']);
  else records.push([rng.pick(['VENDOR.x', 'GNU.sparse.map', 'SCHILY.realsize', 'charset', 'hdrcharset']), '1']);
  const seen = new Set();
  const uniq = kind === 'dup' ? records : records.filter(([k]) => (seen.has(k) ? false : (seen.add(k), true)));
  const replaced = tar.pax(tar.paxRecords(uniq));
  ops.push(`pax header@${h.offset} ${kind}`);
  return Buffer.concat([t.subarray(0, h.offset), replaced, t.subarray(h.offset + BLOCK + Math.ceil(h.size / BLOCK) * BLOCK)]);
}

function flipBits(b, rng, ops, label, window = b.length) {
  const out = Buffer.from(b);
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    const pos = rng.int(Math.max(1, Math.min(window, out.length)));
    out[pos] ^= 1 << rng.int(8);
  }
  ops.push(`${n} bit(s) flipped in ${label}${window < b.length ? ` (first ${window} bytes)` : ''}`);
  return out;
}

function setByte(b, rng, ops, label) {
  const out = Buffer.from(b);
  const pos = rng.int(out.length);
  const v = rng.pick([0, 0xff, 0x20, 0x2f, 0x2e, 0x30, 0x37, 0x80, 0x0a]);
  out[pos] = v;
  ops.push(`byte ${pos} of ${label} set to 0x${v.toString(16)}`);
  return out;
}

function truncate(b, rng, ops, label) {
  const cut = rng.int(b.length);
  ops.push(`${label} truncated to ${cut} bytes`);
  return b.subarray(0, cut);
}

function appendTar(t, rng, ops) {
  const [label, extra] = rng.pick([
    () => ['zero padding (10 KiB)', Buffer.alloc(10 * 1024)],
    () => ['zero padding (2 MiB)', Buffer.alloc(2 * 1024 * 1024)],
    () => ['garbage', Buffer.from('garbage after the archive')],
    () => ['an entry', tar.file('after-end.sh', 'echo pwned\n')],
  ])();
  ops.push(`${label} appended to the tar stream`);
  return Buffer.concat([t, extra]);
}

/** Edit a gzip member header or trailer. */
function gzipEdit(raw, rng, ops) {
  const out = Buffer.from(raw);
  const what = rng.pick(['flags', 'mtime', 'xfl-os', 'xlen', 'marker-length', 'method', 'trailer', 'second-member']);
  switch (what) {
    case 'flags':
      out[3] ^= 1 << rng.int(8);
      break;
    case 'mtime':
      out.writeUInt32LE(rng.int(2 ** 32), 4);
      break;
    case 'xfl-os':
      out[8] = rng.int(256);
      out[9] = rng.int(256);
      break;
    case 'xlen':
      out[10] = rng.int(256);
      break;
    case 'marker-length':
      // the "BS" subfield records the leading member's length (used by sign and strip)
      if (out[12] === 0x42 && out[13] === 0x53) out.writeBigUInt64LE(BigInt(rng.int(2 ** 20)), 17);
      break;
    case 'method':
      out[2] = rng.pick([0, 7, 9, 255]);
      break;
    case 'trailer':
      out[out.length - 1 - rng.int(8)] ^= 1 << rng.int(8);
      break;
    case 'second-member': {
      // the header of the member after boxsig's leading one
      if (out[12] === 0x42 && out[13] === 0x53) {
        const len = Number(out.readBigUInt64LE(17));
        if (len + 10 < out.length) out[len + rng.pick([3, 4, 8, 9])] ^= 1 << rng.int(8);
      }
      break;
    }
  }
  ops.push(`gzip ${what} edited`);
  return out;
}

function appendRaw(raw, rng, ops) {
  const [label, extra] = rng.pick([
    () => ['garbage', Buffer.from('trailing garbage')],
    () => ['zero bytes', Buffer.alloc(64)],
    () => ['a gzip member of garbage', zlib.gzipSync(Buffer.from('not tar'))],
    () => ['a gzip member of zeros (2 MiB)', zlib.gzipSync(Buffer.alloc(2 * 1024 * 1024))],
    () => ['a gzip member of zeros (4 KiB)', zlib.gzipSync(Buffer.alloc(4096))],
    () => ['a gzip member holding an entry', zlib.gzipSync(tar.file('after.sh', 'echo pwned\n'))],
  ])();
  ops.push(`${label} appended`);
  return Buffer.concat([raw, extra]);
}

/**
 * Mutate `base` ({ raw, tar, compressed }) with 1-3 operations. Returns the
 * box bytes and a description of what was done.
 */
export function mutate(base, rng) {
  const ops = [];
  const count = rng.chance(0.6) ? 1 : rng.chance(0.75) ? 2 : 3;
  // work on the tar stream (recompressed at the end) or on the raw bytes
  const tarLevel = !base.compressed || rng.chance(0.7);
  if (tarLevel) {
    let t = base.tar;
    for (let i = 0; i < count; i++) {
      const op = rng.pick(['header', 'header', 'header', 'blocks', 'insert', 'insert', 'pax', 'flip', 'flip-head', 'setbyte', 'truncate', 'append', 'none']);
      if (op === 'header') t = editHeader(t, rng, ops);
      else if (op === 'blocks') t = blockOp(t, rng, ops);
      else if (op === 'insert') t = insertEntry(t, rng, ops);
      else if (op === 'pax') t = paxEdit(t, rng, ops);
      else if (op === 'flip') t = flipBits(t, rng, ops, 'the tar stream');
      else if (op === 'flip-head') t = flipBits(t, rng, ops, 'the tar stream', 8 * 1024);
      else if (op === 'setbyte') t = setByte(t, rng, ops, 'the tar stream');
      else if (op === 'truncate') t = truncate(t, rng, ops, 'the tar stream');
      else if (op === 'append') t = appendTar(t, rng, ops);
      else ops.push('tar stream unchanged');
    }
    if (!base.compressed) return { bytes: t, ops };
    const { bytes, members } = regzip(t, rng);
    ops.push(`recompressed as ${members} gzip member(s)`);
    return { bytes, ops };
  }
  let raw = base.raw;
  for (let i = 0; i < count; i++) {
    const op = rng.pick(['flip', 'flip-head', 'gzip', 'gzip', 'truncate', 'append', 'setbyte']);
    if (op === 'flip') raw = flipBits(raw, rng, ops, 'the raw bytes');
    else if (op === 'flip-head') raw = flipBits(raw, rng, ops, 'the raw bytes', 64);
    else if (op === 'gzip') raw = gzipEdit(raw, rng, ops);
    else if (op === 'truncate') raw = truncate(raw, rng, ops, 'the raw bytes');
    else if (op === 'append') raw = appendRaw(raw, rng, ops);
    else raw = setByte(raw, rng, ops, 'the raw bytes');
  }
  return { bytes: raw, ops };
}

export { gunzipAll };
