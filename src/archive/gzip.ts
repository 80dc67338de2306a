/**
 * The gzip framing boxsig uses for the `.boxsig/` entries of a compressed box.
 *
 * A signed gzip box is the concatenation of a small leading gzip member that
 * holds the `.boxsig/` tar entries and the untouched bytes of the original box.
 * Concatenated members are one valid gzip stream (RFC 1952 §2.2), so every
 * tool reads one tar archive. The leading member marks itself with an extra
 * field (subfield id "BS") that records its own length, so that re-signing and
 * `strip` can drop it without decompressing or recompressing anything else.
 * The member may be padded to an exact length with its FCOMMENT field.
 */
import zlib from 'node:zlib';
import { refuse } from '../errors.js';

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

/** Subfield id of the boxsig marker. */
const SI1 = 0x42; // 'B'
const SI2 = 0x53; // 'S'
const MARKER_VERSION = 1;
/** payload: version (1) + member length (8, little-endian) */
const MARKER_PAYLOAD = 9;

export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Other compressions bsdtar would accept but boxsig does not. */
export function sniffUnsupported(head: Uint8Array): string | null {
  const b = Buffer.from(head.buffer, head.byteOffset, Math.min(head.byteLength, 8));
  if (b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.length >= 4 && b.readUInt32LE(0) === 0x184d2204) return 'lz4';
  if (b.length >= 4 && b.subarray(0, 4).toString('latin1') === 'PK\x03\x04') return 'zip';
  return null;
}

/**
 * If `head` starts with a boxsig leading member, return its total length in
 * bytes; otherwise null. Needs the first few hundred bytes (the member header).
 */
export function leadingMemberLength(head: Uint8Array): number | null {
  if (!isGzip(head) || head.length < 12) return null;
  const flg = head[3];
  if (head[2] !== 8 || !(flg & FEXTRA)) return null;
  const xlen = head[10] | (head[11] << 8);
  if (head.length < 12 + xlen) return null;
  let p = 12;
  const end = 12 + xlen;
  while (p + 4 <= end) {
    const si1 = head[p];
    const si2 = head[p + 1];
    const len = head[p + 2] | (head[p + 3] << 8);
    if (p + 4 + len > end) return null;
    if (si1 === SI1 && si2 === SI2 && len === MARKER_PAYLOAD && head[p + 4] === MARKER_VERSION) {
      const b = Buffer.from(head.buffer, head.byteOffset + p + 5, 8);
      const n = b.readBigUInt64LE(0);
      if (n > BigInt(Number.MAX_SAFE_INTEGER)) return null;
      return Number(n);
    }
    p += 4 + len;
  }
  return null;
}

/**
 * Decompress one complete gzip member held in memory (the small `.boxsig/`
 * member), refusing anything that is not exactly one member.
 */
export function inflateMember(member: Buffer, maxOutput: number): Buffer {
  let out: Buffer;
  try {
    out = zlib.gunzipSync(member, { maxOutputLength: maxOutput });
  } catch (e) {
    throw refuse('MALFORMED', `the leading .boxsig gzip member is corrupt: ${(e as Error).message}`);
  }
  const isize = member.readUInt32LE(member.length - 4);
  if (isize !== out.length % 2 ** 32) throw refuse('MALFORMED', 'the leading .boxsig gzip member is not a single gzip member');
  return out;
}

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(data) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const PAD_TEXT = 'boxsig padding ';

/**
 * Build the leading gzip member for `payload` (the `.boxsig/` tar entries).
 * With `exactLength`, the member is padded through its comment field to exactly
 * that many bytes; returns null if the payload does not fit.
 */
export function buildLeadingMember(payload: Buffer, exactLength?: number): Buffer | null {
  const deflated = zlib.deflateRawSync(payload, { level: 9 });
  const fixed = 10 + 2 + 4 + MARKER_PAYLOAD; // header, XLEN, subfield header, payload
  const withoutComment = fixed + deflated.length + 8;
  let commentLen = 0; // bytes before the terminating NUL
  let flags = FEXTRA;
  if (exactLength !== undefined) {
    if (exactLength === withoutComment) {
      commentLen = -1;
    } else {
      commentLen = exactLength - withoutComment - 1;
      if (commentLen < 0) return null;
      flags |= FCOMMENT;
    }
  } else {
    commentLen = -1;
  }
  const total = withoutComment + (commentLen >= 0 ? commentLen + 1 : 0);
  const out = Buffer.alloc(total);
  out[0] = 0x1f;
  out[1] = 0x8b;
  out[2] = 8;
  out[3] = flags;
  out.writeUInt32LE(0, 4); // mtime: none, so the member is deterministic
  out[8] = 2; // XFL: maximum compression
  out[9] = 255; // OS: unknown
  out.writeUInt16LE(4 + MARKER_PAYLOAD, 10);
  out[12] = SI1;
  out[13] = SI2;
  out.writeUInt16LE(MARKER_PAYLOAD, 14);
  out[16] = MARKER_VERSION;
  out.writeBigUInt64LE(BigInt(total), 17);
  let p = fixed;
  if (commentLen >= 0) {
    for (let i = 0; i < commentLen; i++) out[p + i] = PAD_TEXT.charCodeAt(i % PAD_TEXT.length);
    p += commentLen;
    out[p++] = 0;
  }
  deflated.copy(out, p);
  p += deflated.length;
  out.writeUInt32LE(crc32(payload), p);
  out.writeUInt32LE(payload.length % 2 ** 32, p + 4);
  return out;
}

/** Longest gzip member header boxsig reads (FEXTRA, FNAME and FCOMMENT together). */
const MAX_MEMBER_HEADER = 1024 * 1024;

/**
 * Parse a gzip member header at the start of `buf` (RFC 1952 §2.3), checking
 * what zlib checks: magic, method 8, no reserved flags, the header CRC-16
 * when FHCRC is set. Returns its length, or null when `buf` is too short to
 * tell. Throws MALFORMED for a bad header.
 */
export function parseMemberHeader(buf: Buffer): number | null {
  if (buf.length < 10) return null;
  const bad = (why: string) => refuse('MALFORMED', `corrupt gzip data (${why})`);
  if (buf[0] !== 0x1f || buf[1] !== 0x8b) throw bad('incorrect header check');
  if (buf[2] !== 8) throw bad('unknown compression method');
  const flg = buf[3];
  if (flg & 0xe0) throw bad('unknown header flags set');
  let p = 10;
  if (flg & FEXTRA) {
    if (buf.length < 12) return null;
    p += 2 + buf.readUInt16LE(10);
  }
  for (const f of [FNAME, FCOMMENT]) {
    if (flg & f) {
      const nul = buf.indexOf(0, p);
      if (nul < 0) {
        if (buf.length > MAX_MEMBER_HEADER) throw refuse('MALFORMED', `a gzip member header is longer than ${MAX_MEMBER_HEADER} bytes`);
        return null;
      }
      p = nul + 1;
    }
  }
  if (flg & FHCRC) {
    if (buf.length < p + 2) return null;
    if ((crc32(buf.subarray(0, p)) & 0xffff) !== buf.readUInt16LE(p)) throw bad('header crc mismatch');
    p += 2;
  }
  if (p > MAX_MEMBER_HEADER) throw refuse('MALFORMED', `a gzip member header is longer than ${MAX_MEMBER_HEADER} bytes`);
  return buf.length >= p ? p : null;
}

/**
 * Inflate boxsig's leading member when it lies wholly in `head` and is
 * exactly one clean member of `length` bytes (header, deflate data, matching
 * CRC-32 and size). Returns null otherwise: the caller then reads the box as
 * one gzip stream, with zlib's own checks and refusals.
 */
export function inflateLeadingMember(head: Buffer, length: number, maxOutput: number): Buffer | null {
  if (length > head.length || length < 18) return null;
  try {
    const member = head.subarray(0, length);
    const hlen = parseMemberHeader(member);
    if (hlen === null || hlen + 8 > length) return null;
    const { buffer, engine } = zlib.inflateRawSync(member.subarray(hlen, length - 8), { info: true, maxOutputLength: maxOutput }) as unknown as {
      buffer: Buffer;
      engine: zlib.InflateRaw;
    };
    if (engine.bytesWritten !== length - 8 - hlen) return null;
    if (member.readUInt32LE(length - 8) !== crc32(buffer) || member.readUInt32LE(length - 4) !== buffer.length % 2 ** 32) return null;
    return buffer;
  } catch {
    return null;
  }
}
