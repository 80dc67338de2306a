/**
 * `boxsig strip BOX -o OUT`: drop the `.boxsig/` entries without touching the
 * rest of the box (no decompression of the disk image, no recompression).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { BoxsigError, refuse } from '../errors.js';
import { CHUNK_SIZE, LIMITS } from '../shared/limits.js';
import { inflateMember, isGzip, leadingMemberLength } from '../archive/gzip.js';
import { TarParser } from '../archive/tar.js';
import { readBox } from './reader.js';
import { boxFileSize, openBox } from './open.js';
import { fsyncDir, readRange, removeStaleSiblings, tempSibling } from '../shared/files.js';
import { removeOnInterrupt } from '../interrupt.js';

export interface StripResult {
  output: string;
  /** Bytes removed from the front of the box. */
  removed: number;
  hadSignature: boolean;
}

async function head(file: string, n: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Check that a leading member holds nothing but complete `.boxsig/` entries. */
function checkPrefixMember(tar: Buffer): void {
  const p = new TarParser();
  const events = p.push(tar, []);
  for (const ev of events) {
    if (ev.kind === 'entry' && !(ev.entry.path === '' || ev.entry.path === '.boxsig' || ev.entry.path.startsWith('.boxsig/'))) {
      throw refuse('MALFORMED', `the leading .boxsig gzip member also holds ${ev.entry.rawPath}`);
    }
    if (ev.kind === 'eof') throw refuse('MALFORMED', 'the leading .boxsig gzip member ends the archive');
  }
  p.checkPending();
  if (p.position !== tar.length) throw new BoxsigError('INTERNAL', 'internal: prefix parse length');
}

/**
 * Write BOX without its `.boxsig/` entries to OUTPUT, or in place (atomically,
 * keeping the file's mode) when OUTPUT is not given or names BOX itself.
 */
export async function stripBox(input: string, output?: string): Promise<StripResult> {
  const inStat = fs.statSync(path.resolve(input), { throwIfNoEntry: false });
  boxFileSize(input);
  const out = path.resolve(output ?? input);
  const inPlace = out === path.resolve(input);
  const first = await head(input, 128 * 1024);
  let start = 0;
  let had = false;
  if (isGzip(first)) {
    const len = leadingMemberLength(first);
    if (len !== null) {
      if (len > 4 * LIMITS.maxPrefixBytes) throw refuse('MALFORMED', 'the leading gzip member claims an impossible length');
      const member = len <= first.length ? first.subarray(0, len) : await readRange(input, 0, len, 'the box is shorter than its leading gzip member says');
      checkPrefixMember(inflateMember(member, 2 * LIMITS.maxPrefixBytes));
      start = len;
      had = true;
    } else {
      // no boxsig member: refuse if .boxsig/ hides inside the compressed data
      const r = await readBox(openBox(input), { onPrefix: async () => null }, { prefixOnly: true });
      if (r.prefix.present) {
        throw new BoxsigError(
          'USAGE',
          'this box carries .boxsig/ entries inside its compressed data; boxsig cannot remove them without recompressing',
          {},
          'use boxsig repackage to build a clean box',
        );
      }
    }
  } else {
    const r = await readBox(openBox(input), { onPrefix: async () => null }, { prefixOnly: true });
    if (r.prefix.present) {
      start = r.prefix.endOffset;
      had = true;
    }
  }
  if (inPlace && !had) return { output: out, removed: 0, hadSignature: false };
  removeStaleSiblings(out);
  const tmp = tempSibling(out, randomBytes(4).toString('hex'));
  const forget = removeOnInterrupt(tmp);
  try {
    await pipeline(fs.createReadStream(input, { start, highWaterMark: CHUNK_SIZE }), fs.createWriteStream(tmp, { flags: 'wx', highWaterMark: CHUNK_SIZE }));
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    if (inPlace && inStat) fs.chmodSync(tmp, inStat.mode & 0o777);
    fs.renameSync(tmp, out);
    fsyncDir(out);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  } finally {
    forget();
  }
  return { output: out, removed: start, hadSignature: had };
}
