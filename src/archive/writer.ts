/**
 * Writing the `.boxsig/` entries that lead a signed box.
 */
import { Header } from 'tar';
import { BLOCK } from './tar.js';
import { buildLeadingMember } from './gzip.js';

export interface PrefixFile {
  path: string;
  data: Buffer;
}

function header(path: string, type: 'File' | 'Directory' | 'ExtendedHeader', size: number, mtime: Date): Buffer {
  const h = new Header({
    path,
    type,
    size,
    mode: type === 'Directory' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    mtime,
  });
  const block = Buffer.alloc(BLOCK);
  h.encode(block, 0);
  if (h.needPax) throw new Error(`internal: ${path} needs a pax header`);
  return block;
}

function padded(data: Buffer): Buffer[] {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return pad ? [data, Buffer.alloc(pad)] : [data];
}

/** A pax extended header whose only record is a `comment` filling exactly `blocks` data blocks. */
function paxPadding(blocks: number, mtime: Date): Buffer {
  const bodyLen = blocks * BLOCK;
  const digits = String(bodyLen).length;
  const textLen = bodyLen - digits - 1 - 'comment='.length - 1;
  const text = 'boxsig padding '.repeat(Math.ceil(textLen / 15)).slice(0, textLen);
  const body = Buffer.from(`${bodyLen} comment=${text}\n`, 'latin1');
  if (body.length !== bodyLen) throw new Error('internal: pax padding length');
  return Buffer.concat([header('PaxHeader/.boxsig', 'ExtendedHeader', bodyLen, mtime), body]);
}

/**
 * The tar entries of `.boxsig/` (no end-of-archive marker: the original
 * archive follows). Directories are written before their contents, as every
 * tar does.
 */
function buildPrefixTar(files: PrefixFile[], mtime: Date, paddingBlocks = 0): Buffer {
  const parts: Buffer[] = [];
  if (paddingBlocks > 0) parts.push(paxPadding(paddingBlocks, mtime));
  const dirs = new Set<string>(['.boxsig/']);
  for (const f of files) {
    const i = f.path.lastIndexOf('/');
    dirs.add(f.path.slice(0, i + 1));
  }
  const written = new Set<string>();
  for (const f of files) {
    const parents = ['.boxsig/', f.path.slice(0, f.path.lastIndexOf('/') + 1)];
    for (const d of parents) {
      if (dirs.has(d) && !written.has(d)) {
        parts.push(header(d, 'Directory', 0, mtime));
        written.add(d);
      }
    }
    parts.push(header(f.path, 'File', f.data.length, mtime), ...padded(f.data));
  }
  return Buffer.concat(parts);
}

/** Plain-tar prefix padded (with a pax comment) to exactly `length` bytes, or null if it does not fit. */
export function buildPlainPrefix(files: PrefixFile[], mtime: Date, length?: number): Buffer | null {
  const bare = buildPrefixTar(files, mtime);
  if (length === undefined || length === bare.length) return bare;
  const spare = length - bare.length;
  if (spare < 2 * BLOCK || spare % BLOCK !== 0) return null;
  return buildPrefixTar(files, mtime, spare / BLOCK - 1);
}

/** Gzip prefix (one leading member), padded to exactly `length` bytes, or null if it does not fit. */
export function buildGzipPrefix(files: PrefixFile[], mtime: Date, length?: number): Buffer | null {
  return buildLeadingMember(buildPrefixTar(files, mtime), length);
}
