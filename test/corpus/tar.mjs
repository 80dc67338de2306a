/**
 * A small, deliberately permissive tar writer for hostile test archives:
 * ustar, GNU and v7 headers, pax extended headers, GNU long-name records,
 * base-256 numbers, any type flag, any name bytes, checksums recomputed (or
 * not, on request). Independent of boxsig's own tar code, so that a bug there
 * is not mirrored here.
 */
export const BLOCK = 512;

/** Write `value` as an octal field of `len` bytes (len-1 digits + NUL), or base-256 when asked or when it does not fit. */
function numeric(buf, off, len, value, base256 = false) {
  const big = BigInt(value);
  if (!base256 && big < 8n ** BigInt(len - 1)) {
    const s = big.toString(8).padStart(len - 1, '0');
    buf.write(s, off, 'latin1');
    buf[off + len - 1] = 0;
    return;
  }
  // base-256: 0x80 marker, big-endian value in the remaining bytes
  let v = big;
  for (let i = len - 1; i >= 1; i--) {
    buf[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] = 0x80;
}

function putBytes(buf, off, len, value) {
  const b = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  b.copy(buf, off, 0, Math.min(len, b.length));
}

/** Sum of the header bytes with the checksum field counted as spaces. */
export function headerChecksum(block, signed = false) {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : block[i];
    sum += signed && v > 127 ? v - 256 : v;
  }
  return sum;
}

/** Recompute and store the checksum of a header block in place (6 octal digits, NUL, space). */
export function fixChecksum(block, signed = false) {
  const s = headerChecksum(block, signed).toString(8).padStart(6, '0');
  block.write(s, 148, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

/**
 * One header block.
 * opts: name (string or Buffer), prefix, mode, uid, gid, size, mtime, type
 * (one character), linkname, format ('ustar' | 'gnu' | 'v7'), base256Size,
 * rawSize (Buffer for the 12-byte size field), devmajor, devminor,
 * raw ([[offset, bytes]] written last, before the checksum),
 * checksum: 'signed' for the (legal) signed-byte sum,
 * checksum: false to leave a wrong checksum.
 */
export function header(opts) {
  const b = Buffer.alloc(BLOCK);
  const format = opts.format ?? 'ustar';
  putBytes(b, 0, 100, opts.name ?? '');
  numeric(b, 100, 8, opts.mode ?? (opts.type === '5' ? 0o755 : 0o644));
  numeric(b, 108, 8, opts.uid ?? 0);
  numeric(b, 116, 8, opts.gid ?? 0);
  if (opts.rawSize) opts.rawSize.copy(b, 124, 0, 12);
  else numeric(b, 124, 12, opts.size ?? 0, opts.base256Size ?? false);
  numeric(b, 136, 12, opts.mtime ?? 1_700_000_000);
  b.write(opts.type ?? '0', 156, 'latin1');
  putBytes(b, 157, 100, opts.linkname ?? '');
  if (format === 'ustar') {
    b.write('ustar\0', 257, 'latin1');
    b.write('00', 263, 'latin1');
  } else if (format === 'gnu') {
    b.write('ustar ', 257, 'latin1');
    b.write(' \0', 263, 'latin1');
  }
  if (format !== 'v7') {
    putBytes(b, 265, 32, opts.uname ?? 'root');
    putBytes(b, 297, 32, opts.gname ?? 'root');
    numeric(b, 329, 8, opts.devmajor ?? 0);
    numeric(b, 337, 8, opts.devminor ?? 0);
  }
  if (format === 'ustar' && opts.prefix) putBytes(b, 345, 155, opts.prefix);
  if (opts.raw) for (const [off, bytes] of opts.raw) Buffer.from(bytes).copy(b, off);
  if (opts.checksum !== false) fixChecksum(b, opts.checksum === 'signed');
  return b;
}

export function pad(data) {
  const n = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return n ? Buffer.concat([data, Buffer.alloc(n)]) : data;
}

/** A regular file entry (header + padded data). `size` may lie about data.length. */
export function file(name, data, opts = {}) {
  const d = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([header({ name, size: d.length, ...opts }), pad(d)]);
}

export function dir(name, opts = {}) {
  return header({ name, type: '5', size: 0, ...opts });
}

/** Encode pax records: [[key, value]] -> "LEN key=value\n"... */
export function paxRecords(records) {
  const parts = [];
  for (const [k, v] of records) {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.isBuffer(v) ? v : Buffer.from(String(v)), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), body]));
  }
  return Buffer.concat(parts);
}

/** A pax extended header ('x', or 'g' for global) with the given records. */
export function pax(records, opts = {}) {
  const data = Buffer.isBuffer(records) ? records : paxRecords(records);
  return Buffer.concat([header({ name: opts.name ?? 'PaxHeaders/entry', type: opts.global ? 'g' : 'x', size: data.length, ...opts.header }), pad(data)]);
}

/** A GNU long-name ('L') or long-link ('K') record. */
export function gnuLong(name, type = 'L', opts = {}) {
  const data = Buffer.concat([Buffer.isBuffer(name) ? name : Buffer.from(name), Buffer.alloc(1)]);
  return Buffer.concat([header({ name: '././@LongLink', type, size: data.length, format: 'gnu', ...opts }), pad(data)]);
}

/** End-of-archive marker: two zero blocks. */
export function end() {
  return Buffer.alloc(2 * BLOCK);
}

/**
 * Walk the header blocks of a (plain) tar archive without judging it: yields
 * { offset, block, size, type } for each header, following the sizes written
 * in the headers (octal or base-256). Stops at a zero block or at the end.
 */
export function* walkHeaders(tar) {
  let off = 0;
  while (off + BLOCK <= tar.length) {
    const block = tar.subarray(off, off + BLOCK);
    if (block.every((x) => x === 0)) return;
    const size = readSize(block);
    const type = String.fromCharCode(block[156]);
    yield { offset: off, block, size, type };
    if (size === null || size > tar.length) return;
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
}

export function readSize(block) {
  if (block[124] & 0x80) {
    let v = 0n;
    for (let i = 125; i < 136; i++) v = (v << 8n) | BigInt(block[i]);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(v);
  }
  const s = block
    .toString('latin1', 124, 136)
    .replace(/^ +/, '')
    .replace(/[\0 ].*$/s, '');
  if (!/^[0-7]*$/.test(s)) return null;
  return s === '' ? 0 : parseInt(s, 8);
}
