/**
 * A lean, strict, push-based tar parser.
 *
 * It understands exactly what GNU tar and bsdtar agree on for regular files
 * and directories: ustar, GNU and v7 headers, pax extended headers (`path`,
 * `size` and metadata-only keywords), GNU long names, base-256 sizes. Anything
 * whose meaning could differ between extractors (links, devices, sparse files,
 * conflicting long-name records, unknown pax keywords, data after the
 * end-of-archive marker) is refused, so that what boxsig verifies is what
 * Vagrant extracts.
 *
 * The parser never copies file data: `data` events carry sub-arrays of the
 * chunks it is given.
 */
import { refuse } from '../errors.js';
import { LIMITS } from '../shared/limits.js';
import { decodeName, normalizeEntryPath, showPath } from './paths.js';

export const BLOCK = 512;

export interface TarEntry {
  /** Normalised path ('' for the root directory entry `./`). */
  path: string;
  /** The name as written in the archive (after pax/long-name overrides). */
  rawPath: string;
  type: 'file' | 'directory';
  size: number;
  mode: number;
  /** Offset of the first header block belonging to this entry (pax/long-name included). */
  headerOffset: number;
  /** Offset of the first data byte. */
  dataOffset: number;
}

export type TarEvent =
  { kind: 'entry'; entry: TarEntry } | { kind: 'data'; chunk: Buffer } | { kind: 'entryEnd'; entry: TarEntry } | { kind: 'eof'; offset: number };

type State = 'header' | 'data' | 'pad' | 'meta' | 'eof';

interface PendingMeta {
  type: 'x' | 'g' | 'L';
  size: number;
  chunks: Buffer[];
  got: number;
}

/** Pax keywords that only carry metadata boxsig does not use, and which do not change what is extracted where. */
const PAX_IGNORED = new Set(['mtime', 'atime', 'ctime', 'uid', 'gid', 'uname', 'gname', 'comment', 'charset']);
const PAX_IGNORED_PREFIXES = ['SCHILY.xattr.', 'LIBARCHIVE.xattr.', 'SCHILY.acl.'];
const PAX_IGNORED_VENDOR = new Set(['SCHILY.fflags', 'SCHILY.dev', 'SCHILY.ino', 'SCHILY.nlink', 'LIBARCHIVE.creationtime']);

export class TarParser {
  /** An error found after events that push() returned (see push). */
  private pending: unknown = null;
  private state: State = 'header';
  /** Absolute offset in the decompressed stream of the next byte to be consumed. */
  private offset = 0;
  private headerBuf = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private remaining = 0;
  private padRemaining = 0;
  private current: TarEntry | null = null;
  private meta: PendingMeta | null = null;
  private paxPath: string | null = null;
  private paxSize: number | null = null;
  private paxSeen = false;
  private longName: string | null = null;
  private entryStart = -1;
  /** Extended headers seen since the last entry. */
  private metaRun = 0;
  private trailingZeros = 0;
  private entries = 0;

  /** Total decompressed bytes consumed so far. */
  get position(): number {
    return this.offset;
  }

  get ended(): boolean {
    return this.state === 'eof';
  }

  /**
   * Feed bytes; returns the events they complete, in order. An error found
   * after some of them (a bad header after a file's last bytes) is kept and
   * thrown by the next push() or end(): the events before it are handled
   * first, as they would be had the bytes come in two chunks, so that the
   * outcome does not depend on where chunks happen to end (a file's hash
   * mismatch, TAMPERED, is not hidden by the damaged header after it).
   */
  push(chunk: Buffer, out: TarEvent[] = []): TarEvent[] {
    if (this.pending) throw this.pending;
    const before = out.length;
    try {
      return this.parse(chunk, out);
    } catch (e) {
      if (out.length === before) throw e;
      this.pending = e;
      return out;
    }
  }

  private parse(chunk: Buffer, out: TarEvent[]): TarEvent[] {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case 'header': {
          const need = BLOCK - this.headerFill;
          if (this.headerFill === 0 && len - pos >= BLOCK) {
            // fast path: a whole header block in this chunk
            this.offset += BLOCK;
            this.onHeader(chunk.subarray(pos, pos + BLOCK), out);
            pos += BLOCK;
          } else {
            const take = Math.min(need, len - pos);
            chunk.copy(this.headerBuf, this.headerFill, pos, pos + take);
            this.headerFill += take;
            pos += take;
            this.offset += take;
            if (this.headerFill === BLOCK) {
              this.headerFill = 0;
              this.onHeader(this.headerBuf, out);
            }
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, len - pos);
          if (take > 0) out.push({ kind: 'data', chunk: chunk.subarray(pos, pos + take) });
          pos += take;
          this.offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.finishData(out);
          break;
        }
        case 'pad': {
          const take = Math.min(this.padRemaining, len - pos);
          pos += take;
          this.offset += take;
          this.padRemaining -= take;
          if (this.padRemaining === 0) this.state = 'header';
          break;
        }
        case 'meta': {
          const m = this.meta!;
          const take = Math.min(m.size - m.got, len - pos);
          m.chunks.push(Buffer.from(chunk.subarray(pos, pos + take)));
          m.got += take;
          pos += take;
          this.offset += take;
          if (m.got === m.size) this.finishMeta();
          break;
        }
        case 'eof': {
          // everything after the end-of-archive marker must be zero padding
          const rest = chunk.subarray(pos);
          for (let i = 0; i < rest.length; i++) {
            if (rest[i] !== 0) {
              throw refuse('MALFORMED', `data after the end-of-archive marker at offset ${this.offset + i}`, { offset: this.offset + i });
            }
          }
          this.trailingZeros += rest.length;
          this.offset += rest.length;
          pos = len;
          if (this.trailingZeros > LIMITS.maxTrailingZeroBytes) {
            throw refuse('MALFORMED', `more than ${LIMITS.maxTrailingZeroBytes} bytes of padding after the end of the archive`);
          }
          break;
        }
      }
    }
    return out;
  }

  /** Throw the error push() kept, if any (for a caller that feeds one buffer and does not call end()). */
  checkPending(): void {
    if (this.pending) throw this.pending;
  }

  /** Call at the end of the input: refuses truncated archives. */
  end(): void {
    if (this.pending) throw this.pending;
    if (this.state === 'eof') return;
    if (this.state === 'header' && this.headerFill === 0 && this.offset === 0) {
      throw refuse('MALFORMED', 'the box is empty');
    }
    const where = this.current ? ` inside ${showPath(this.current.rawPath)}` : '';
    throw refuse('MALFORMED', `the archive is truncated${where} (no end-of-archive marker after ${this.offset} bytes)`, {
      offset: this.offset,
    });
  }

  private finishData(out: TarEvent[]): void {
    const e = this.current!;
    out.push({ kind: 'entryEnd', entry: e });
    this.current = null;
    this.padRemaining = (BLOCK - (e.size % BLOCK)) % BLOCK;
    this.state = this.padRemaining > 0 ? 'pad' : 'header';
  }

  // long: one switch over the entry types, each case a refusal or one assignment; the cases read best side by side
  private onHeader(block: Buffer, out: TarEvent[]): void {
    if (isZeroBlock(block)) {
      if (this.meta || this.paxSeen || this.longName !== null) {
        throw refuse('MALFORMED', 'end-of-archive marker after an extended header that applies to nothing');
      }
      this.state = 'eof';
      out.push({ kind: 'eof', offset: this.blockStart() });
      return;
    }
    const h = decodeHeader(block, this.blockStart());
    if (this.entryStart < 0) this.entryStart = this.blockStart();
    switch (h.typeflag) {
      case 'x':
      case 'g':
      case 'L': {
        if (h.typeflag === 'x' && this.paxSeen) throw refuse('MALFORMED', 'two pax extended headers for one entry');
        if (h.typeflag === 'L' && this.longName !== null) throw refuse('MALFORMED', 'two GNU long-name records for one entry');
        if (++this.metaRun > LIMITS.maxExtendedHeadersPerEntry) {
          throw refuse('MALFORMED', `more than ${LIMITS.maxExtendedHeadersPerEntry} extended headers in a row at offset ${this.blockStart()}`, {
            offset: this.blockStart(),
          });
        }
        if (h.size > LIMITS.maxMetaHeaderBytes) {
          throw refuse('MALFORMED', `extended header of ${h.size} bytes exceeds the ${LIMITS.maxMetaHeaderBytes}-byte limit`);
        }
        this.meta = { type: h.typeflag, size: h.size, chunks: [], got: 0 };
        if (h.size === 0) this.finishMeta();
        else this.state = 'meta';
        return;
      }
      case 'K':
        throw refuse('UNSAFE_ENTRY', 'the archive contains a link (GNU long link name record)');
      case '1':
        throw refuse('UNSAFE_ENTRY', `hard link ${showPath(this.entryName(h))} in archive`, { path: this.entryName(h) });
      case '2':
        throw refuse('UNSAFE_ENTRY', `symbolic link ${showPath(this.entryName(h))} in archive`, { path: this.entryName(h) });
      case '3':
      case '4':
        throw refuse('UNSAFE_ENTRY', `device node ${showPath(this.entryName(h))} in archive`, { path: this.entryName(h) });
      case '6':
        throw refuse('UNSAFE_ENTRY', `FIFO ${showPath(this.entryName(h))} in archive`, { path: this.entryName(h) });
      case '0':
      case '\0':
      case '5':
        break;
      default:
        throw refuse('UNSAFE_ENTRY', `unsupported tar entry type ${JSON.stringify(h.typeflag)} for ${showPath(this.entryName(h))}`, {
          path: this.entryName(h),
        });
    }
    const rawPath = this.entryName(h);
    const size = this.paxSize ?? h.size;
    const isDir = h.typeflag === '5';
    if (!isDir && rawPath.endsWith('/')) {
      throw refuse('UNSAFE_ENTRY', `regular file ${showPath(rawPath)} has a name ending in "/" (extractors disagree on what it is)`, {
        path: rawPath,
      });
    }
    if (isDir && size !== 0) throw refuse('MALFORMED', `directory ${showPath(rawPath)} has a non-zero size`, { path: rawPath });
    const path = normalizeEntryPath(rawPath);
    if (path === '' && !isDir) throw refuse('UNSAFE_ENTRY', 'a regular file named "."');
    if (++this.entries > LIMITS.maxEntries) throw refuse('MALFORMED', `more than ${LIMITS.maxEntries} entries in the archive`);
    const entry: TarEntry = {
      path,
      rawPath,
      type: isDir ? 'directory' : 'file',
      size,
      mode: h.mode,
      headerOffset: this.entryStart,
      dataOffset: this.offset,
    };
    this.paxPath = null;
    this.paxSize = null;
    this.paxSeen = false;
    this.longName = null;
    this.entryStart = -1;
    this.metaRun = 0;
    out.push({ kind: 'entry', entry });
    this.current = entry;
    if (size === 0) {
      this.finishData(out);
    } else {
      this.remaining = size;
      this.state = 'data';
    }
  }

  /** Offset of the header block being processed (`offset` already points past it). */
  private blockStart(): number {
    return this.offset - BLOCK;
  }

  private entryName(h: Header): string {
    if (this.paxPath !== null) return this.paxPath;
    if (this.longName !== null) return this.longName;
    return h.name;
  }

  private finishMeta(): void {
    const m = this.meta!;
    this.meta = null;
    const data = Buffer.concat(m.chunks);
    this.padRemaining = (BLOCK - (m.size % BLOCK)) % BLOCK;
    this.state = this.padRemaining > 0 ? 'pad' : 'header';
    if (m.type === 'L') {
      const nul = data.indexOf(0);
      const name = decodeName(nul >= 0 ? data.subarray(0, nul) : data, 'GNU long name');
      if (nul >= 0 && !isZero(data.subarray(nul))) throw refuse('MALFORMED', 'GNU long-name record has data after its terminating NUL');
      if (this.paxPath !== null) throw refuse('MALFORMED', 'both a pax path and a GNU long name for one entry');
      this.longName = name;
      return;
    }
    const records = parsePax(data);
    if (m.type === 'g') {
      for (const [k] of records) {
        if (!isIgnoredPaxKey(k)) {
          throw refuse('MALFORMED', `pax global header sets ${JSON.stringify(k)}, which boxsig does not support`, { keyword: k });
        }
      }
      return;
    }
    this.paxSeen = true;
    for (const [k, v] of records) {
      if (k === 'path') {
        if (this.longName !== null) throw refuse('MALFORMED', 'both a pax path and a GNU long name for one entry');
        this.paxPath = v;
      } else if (k === 'size') {
        if (!/^[0-9]{1,16}$/.test(v)) throw refuse('MALFORMED', `invalid pax size ${JSON.stringify(v)}`);
        const n = Number(v);
        if (!Number.isSafeInteger(n)) throw refuse('MALFORMED', `pax size ${v} is too large`);
        this.paxSize = n;
      } else if (k === 'linkpath' || k === 'LIBARCHIVE.symlinktype') {
        // only meaningful for links, which are refused when their header arrives
      } else if (k === 'hdrcharset') {
        if (v !== 'ISO-IR 10646 2000 UTF-8') throw refuse('MALFORMED', `pax hdrcharset ${JSON.stringify(v)} is not supported`);
      } else if (k.startsWith('GNU.sparse.') || k === 'SCHILY.realsize') {
        throw refuse('UNSAFE_ENTRY', 'sparse files are not supported in boxes');
      } else if (!isIgnoredPaxKey(k)) {
        throw refuse('MALFORMED', `unsupported pax keyword ${JSON.stringify(k)}`, { keyword: k });
      }
    }
  }
}

function isIgnoredPaxKey(k: string): boolean {
  return PAX_IGNORED.has(k) || PAX_IGNORED_VENDOR.has(k) || PAX_IGNORED_PREFIXES.some((p) => k.startsWith(p));
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function isZeroBlock(b: Uint8Array): boolean {
  // compare as 64 words for speed
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < BLOCK; i += 8) {
    if (buf.readBigUInt64LE(i) !== 0n) return false;
  }
  return true;
}

/** Parse pax records "LEN key=value\n"; refuses malformed and repeated keywords. */
export function parsePax(data: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  let pos = 0;
  while (pos < data.length) {
    // NUL padding after the records: bsdtar warns "malformed pax extended attributes" and fails
    if (data[pos] === 0) throw refuse('MALFORMED', 'NUL bytes after the pax records');
    const sp = data.indexOf(0x20, pos);
    if (sp < 0 || sp - pos > 12) throw refuse('MALFORMED', 'malformed pax record length');
    const lenStr = data.toString('latin1', pos, sp);
    if (!/^[1-9][0-9]*$/.test(lenStr)) throw refuse('MALFORMED', `malformed pax record length ${JSON.stringify(lenStr)}`);
    const rlen = Number(lenStr);
    if (pos + rlen > data.length || rlen < sp - pos + 4) throw refuse('MALFORMED', 'pax record overruns its header');
    if (data[pos + rlen - 1] !== 0x0a) throw refuse('MALFORMED', 'pax record does not end in a newline');
    const rec = data.subarray(sp + 1, pos + rlen - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw refuse('MALFORMED', 'pax record without a keyword');
    const key = decodeName(rec.subarray(0, eq), 'pax keyword');
    const value = decodeName(rec.subarray(eq + 1), `pax ${key} value`);
    if (seen.has(key)) throw refuse('MALFORMED', `pax keyword ${JSON.stringify(key)} appears twice in one header`);
    seen.add(key);
    out.push([key, value]);
    pos += rlen;
  }
  return out;
}

interface Header {
  name: string;
  mode: number;
  size: number;
  typeflag: string;
}

function decodeHeader(b: Buffer, offset: number): Header {
  // checksum: sum of all bytes with the checksum field counted as spaces; accept signed or unsigned sums
  const stored = parseOctal(b, 148, 8, 'checksum', offset);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) {
    throw refuse('MALFORMED', `tar header checksum mismatch at offset ${offset} (not a tar archive, or corrupt)`, { offset });
  }
  const magic = b.toString('latin1', 257, 263);
  const version = b.toString('latin1', 263, 265);
  let usePrefix: boolean;
  if (magic === 'ustar\0' && version === '00') usePrefix = true;
  else if (magic === 'ustar ' && version === ' \0') usePrefix = false;
  else if (isZero(b.subarray(257, 265))) usePrefix = false;
  else throw refuse('MALFORMED', `unknown tar header format at offset ${offset}`, { offset });

  const typeflag = String.fromCharCode(b[156]);
  let name = cString(b, 0, 100, 'entry name');
  if (usePrefix) {
    const prefix = cString(b, 345, 155, 'entry name prefix');
    if (prefix) name = `${prefix}/${name}`;
  }
  const size = parseNumeric(b, 124, 12, 'size', offset);
  // Numeric fields boxsig does not use must still be numbers: GNU tar reports
  // garbage in any of them as an error (exit status 2) and bsdtar refuses to
  // open an archive whose first header has one, so Vagrant could not extract
  // a box boxsig had accepted.
  const mode = parseNumeric(b, 100, 8, 'mode', offset);
  parseNumeric(b, 108, 8, 'uid', offset);
  parseNumeric(b, 116, 8, 'gid', offset);
  parseNumeric(b, 136, 12, 'mtime', offset, true);
  if (magic === 'ustar\0' || magic === 'ustar ') {
    parseNumeric(b, 329, 8, 'devmajor', offset);
    parseNumeric(b, 337, 8, 'devminor', offset);
  }
  if (magic === 'ustar ') {
    // GNU headers keep atime, ctime, a multi-volume offset, an old-style sparse
    // map, an "extended" flag and a real size where ustar keeps its prefix.
    // libarchive honours the sparse flag and the real size on any entry type
    // (GNU tar does not), so anything but zeros there would make bsdtar
    // extract other bytes than boxsig verified.
    parseNumeric(b, 345, 12, 'atime', offset, true);
    parseNumeric(b, 357, 12, 'ctime', offset, true);
    if (!isZero(b.subarray(369, 500))) {
      throw refuse('MALFORMED', `GNU tar header at offset ${offset} has sparse, multi-volume or real-size data`, { offset });
    }
  }
  return { name, mode, size, typeflag };
}

function cString(b: Buffer, start: number, len: number, what: string): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return decodeName(nul >= 0 ? field.subarray(0, nul) : field, what);
}

function parseNumeric(b: Buffer, start: number, len: number, what: string, offset: number, signedAllowed = false): number {
  const first = b[start];
  if (first & 0x80) {
    if (first === 0xff && signedAllowed) return -1; // a negative base-256 time (before 1970): valid, and unused
    if (first !== 0x80) throw refuse('MALFORMED', `negative or oversized base-256 ${what} at offset ${offset}`);
    let v = 0n;
    for (let i = start + 1; i < start + len; i++) v = (v << 8n) | BigInt(b[i]);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw refuse('MALFORMED', `${what} too large at offset ${offset}`);
    return Number(v);
  }
  return parseOctal(b, start, len, what, offset);
}

function parseOctal(b: Buffer, start: number, len: number, what: string, offset: number): number {
  let i = start;
  const end = start + len;
  while (i < end && b[i] === 0x20) i++;
  // a field of nothing but spaces is an error for GNU tar ("Blanks in header")
  if (i === end) throw refuse('MALFORMED', `blank ${what} field in tar header at offset ${offset}`, { offset });
  let v = 0;
  let digits = 0;
  while (i < end && b[i] >= 0x30 && b[i] <= 0x37) {
    v = v * 8 + (b[i] - 0x30);
    i++;
    digits++;
  }
  // terminated by space or NUL; nothing but spaces and NULs after
  for (; i < end; i++) {
    if (b[i] !== 0 && b[i] !== 0x20) throw refuse('MALFORMED', `invalid ${what} field in tar header at offset ${offset}`, { offset });
  }
  if (digits === 0 && what === 'checksum') throw refuse('MALFORMED', `invalid checksum field in tar header at offset ${offset}`, { offset });
  if (!Number.isSafeInteger(v)) throw refuse('MALFORMED', `${what} too large at offset ${offset}`);
  return v;
}
