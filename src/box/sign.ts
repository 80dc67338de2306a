/**
 * `boxsig sign`: one streaming pass that hashes every file of the box while
 * copying its (compressed) bytes, untouched, behind a reserved gap; the
 * `.boxsig/` entries are then written into that gap. A gzip box keeps its
 * original gzip members byte for byte: the `.boxsig/` entries live in their
 * own leading member. Signing a signed box replaces the old `.boxsig/`
 * entries; when nothing but the signers changes, the old manifest is kept so
 * that earlier signatures stay valid next to the new ones (co-signing).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BoxsigError, refuse, usage, ioError } from '../errors.js';
import { BLOCK } from '../archive/tar.js';
import { CHUNK_SIZE, LIMITS } from '../shared/limits.js';
import { buildGzipPrefix, buildPlainPrefix, type PrefixFile } from '../archive/writer.js';
import { inflateMember, isGzip, leadingMemberLength } from '../archive/gzip.js';
import type { Manifest, ManifestFile, BoxIdentity } from '../manifest/manifest.js';
import type { ManifestSigner } from '../keys/signer.js';
import { checkSignOptions, chooseManifest, identifyBox, signManifest } from './sign-manifest.js';
import { readBox, type BoxsigPrefix, type ReadResult } from './reader.js';
import { boxFileSize, openBox } from './open.js';
import { fsyncDir, readRange, removeStaleSiblings, tempSibling, makeDirs } from '../shared/files.js';
import { removeOnInterrupt } from '../interrupt.js';

export interface SignOptions {
  signers: ManifestSigner[];
  name?: string;
  version?: string;
  provider?: string;
  /** The architecture to sign (default: what metadata.json states, else what the old manifest stated); metadata.json must agree. */
  architecture?: string;
  /** Duration ("90d") or date; the manifest expires then. */
  expires?: string;
  claims?: Record<string, string>;
  /** Output path; default: replace the input. */
  output?: string;
  /** Always write a fresh manifest (drop existing signatures). */
  fresh?: boolean;
  now?: Date;
  onProgress?: (bytes: number) => void;
}

export interface SignResult {
  output: string;
  box: BoxIdentity;
  manifest: Manifest;
  signers: string[];
  /** Signatures kept from the input box (co-signing). */
  kept: string[];
  dropped: Array<{ fingerprint: string; reason: string }>;
  compressed: boolean;
  files: ManifestFile[];
  bytes: number;
  warnings: string[];
}

function tempPath(target: string): string {
  return tempSibling(target, randomBytes(4).toString('hex'));
}

/** The reader's entry limit, met while reading the box to sign, is the signer's usage error, not a refusal. */
function tooManyEntries(e: unknown): unknown {
  if (e instanceof BoxsigError && e.code === 'MALFORMED' && /^more than \d+ entries in the archive$/.test(e.message)) {
    return usage(`the box holds more than ${LIMITS.maxEntries} entries (files and directories), more than boxsig verifies (docs/SECURITY.md, resource limits)`);
  }
  return e;
}

async function writeAll(fh: fs.promises.FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

/**
 * The steps, in order: check the options; reserve a gap in a temporary file;
 * in one pass, read (hash) the box while copying its raw bytes behind the gap,
 * leaving out the old `.boxsig/` entries; check that what was left out is
 * exactly those; choose the manifest and sign it; write the `.boxsig/` entries
 * into the gap; rename the result over the output.
 */
export async function signBox(input: string, opts: SignOptions): Promise<SignResult> {
  const request = checkSignOptions(opts);
  const output = path.resolve(opts.output ?? input);
  boxFileSize(input);
  const inStat = fs.statSync(input);
  const gap = reservedGap(opts.signers);
  const out = await TempOutput.create(output);
  try {
    const copy = new TailCopy(out.fh, gap);
    const { read, old, bodyDirs } = await readAndCopy(input, copy, opts.onProgress);
    await checkLeftOut(input, read, old);
    const tailLength = await copy.finish(read.rawBytes);
    const target = identifyBox(input, read, opts, old);
    const choice = await chooseManifest(target, read, old, opts, request);
    const prefix = await signManifest(choice, opts.signers, request.now, read.files.length + bodyDirs);
    const mtime = new Date(Date.parse(choice.manifest.created));
    const prefixLength = await out.writePrefix(prefixBuilder(read.compressed, prefix.files, mtime), copy.reserve, tailLength);
    out.install(inStat.mode & 0o777);
    return {
      output,
      box: choice.manifest.box,
      manifest: choice.manifest,
      signers: prefix.signers,
      kept: [...choice.kept.keys()],
      dropped: choice.dropped,
      compressed: read.compressed,
      files: choice.manifest.files,
      bytes: prefixLength + tailLength,
      warnings: target.warnings,
    };
  } finally {
    await out.cleanup();
  }
}

interface Gap {
  wanted: number;
  /** The most a plain tar's gap may take. */
  plainCap: number;
}

/**
 * The gap reserved for the .boxsig/ entries in front of the copied bytes. If
 * they turn out larger, the tail is copied once more (slower, still correct).
 * A plain-tar gap is filled with a pax comment, which must stay under the
 * parser's extended-header limit.
 */
function reservedGap(signers: ManifestSigner[]): Gap {
  const keyBytes = signers.reduce((n, s) => n + s.publicKey.length, 0);
  const wanted = Math.ceil((16 * 1024 + 2 * keyBytes + 4 * 1024 * signers.length) / BLOCK) * BLOCK;
  const plainCap = Math.floor((LIMITS.maxMetaHeaderBytes - 4 * BLOCK) / BLOCK) * BLOCK;
  return { wanted, plainCap };
}

/**
 * The copy half of the single pass: every raw chunk of the input is written,
 * untouched, behind the gap, except the leading bytes that hold the old
 * `.boxsig/` entries. Chunks wait in a queue until that length is known: for
 * gzip from the first chunk, for a plain tar once the reader has found where
 * the old entries end.
 */
class TailCopy {
  /** Where the tail starts in the output: the length of the gap. */
  reserve: number;
  private compressed: boolean | null = null;
  /** Raw bytes of the input to leave out (old .boxsig/ entries), once known. */
  private skip: number | null = null;
  private readonly queue: Array<{ chunk: Buffer; offset: number }> = [];
  /** Bytes of the tail written so far. */
  private written = 0;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly gap: Gap,
  ) {
    this.reserve = gap.wanted;
  }

  async onRaw(chunk: Buffer, offset: number): Promise<void> {
    if (this.compressed === null) {
      this.compressed = isGzip(chunk);
      if (!this.compressed) this.reserve = Math.min(this.gap.wanted, this.gap.plainCap);
      // gzip: boxsig's own leading member announces its length in its header
      if (this.compressed) this.skip = leadingMemberLength(chunk) ?? 0;
    }
    this.queue.push({ chunk, offset });
    if (this.skip !== null) await this.flush();
  }

  /** The reader has reached the end of the old `.boxsig/` entries. */
  onPrefix(prefix: BoxsigPrefix): void {
    // plain tar: the old .boxsig/ entries end where the parser says
    if (!this.compressed) this.skip = prefix.present ? prefix.endOffset : 0;
  }

  /** After the pass: writes what is still queued and returns the length of the tail. */
  async finish(rawBytes: number): Promise<number> {
    if (this.skip === null) this.skip = 0;
    await this.flush();
    const tailLength = rawBytes - this.skip;
    if (this.written !== tailLength) throw new BoxsigError('INTERNAL', `internal error: copied ${this.written} of ${tailLength} bytes`);
    return tailLength;
  }

  private async flush(): Promise<void> {
    const skip = this.skip!;
    while (this.queue.length) {
      const { chunk, offset } = this.queue.shift()!;
      const end = offset + chunk.length;
      if (end <= skip) continue;
      const part = offset >= skip ? chunk : chunk.subarray(skip - offset);
      await writeAll(this.fh, part, this.reserve + this.written);
      this.written += part.length;
    }
  }
}

/** The single pass: the reader hashes every file while the copy writes the raw bytes behind the gap. */
async function readAndCopy(
  input: string,
  copy: TailCopy,
  onProgress: SignOptions['onProgress'],
): Promise<{ read: ReadResult; old: BoxsigPrefix | null; bodyDirs: number }> {
  let old: BoxsigPrefix | null = null;
  let bodyDirs = 0;
  const read = await readBox(
    openBox(input),
    {
      onPrefix: async (prefix) => {
        old = prefix.present ? prefix : null;
        copy.onPrefix(prefix);
        return null;
      },
      makeDir: async () => {
        bodyDirs++;
      },
    },
    { tap: { onProgress, onRaw: (chunk, offset) => copy.onRaw(chunk, offset) } },
  ).catch((e) => {
    throw tooManyEntries(e);
  });
  return { read, old, bodyDirs };
}

/** What the copy left out of a gzip box is exactly the old .boxsig/ entries: boxsig's own leading member. */
async function checkLeftOut(input: string, read: ReadResult, old: BoxsigPrefix | null): Promise<void> {
  if (!read.compressed) return;
  if (read.leadingMember !== null) {
    if (read.leadingMember > 4 * LIMITS.maxPrefixBytes) throw refuse('MALFORMED', 'the leading gzip member claims an impossible length');
    const member = await readRange(input, 0, read.leadingMember, 'the box is shorter than its leading gzip member says');
    const inflated = inflateMember(member, 2 * LIMITS.maxPrefixBytes);
    if (!old || inflated.length !== old.endOffset) {
      throw refuse('MALFORMED', "the leading gzip member is marked as boxsig's but does not hold exactly the .boxsig/ entries");
    }
  } else if (old) {
    throw new BoxsigError(
      'USAGE',
      'this box carries .boxsig/ entries inside its compressed data (it was repacked by hand); boxsig cannot remove them without recompressing',
      {},
      'rebuild the box without .boxsig/ (tar --exclude=.boxsig) or use boxsig repackage',
    );
  }
}

/** Builds the .boxsig/ entries padded to `length` (null if they do not fit), or unpadded: a gzip member or plain tar entries. */
function prefixBuilder(compressed: boolean, files: PrefixFile[], mtime: Date): (length?: number) => Buffer | null {
  return (length) => (compressed ? buildGzipPrefix(files, mtime, length) : buildPlainPrefix(files, mtime, length));
}

/**
 * The signed box being written next to its target: the gap and the copied
 * tail, then the prefix in the gap; renamed over the target once complete,
 * removed if anything fails.
 */
class TempOutput {
  private done = false;
  /** The file that becomes the output: the first one, or a second one when the prefix outgrows the gap. */
  private finalTmp: string;
  private forgetFinal = () => {};

  private constructor(
    private readonly output: string,
    private readonly tmp: string,
    readonly fh: fs.promises.FileHandle,
    private readonly forgetTmp: () => void,
  ) {
    this.finalTmp = tmp;
  }

  static async create(output: string): Promise<TempOutput> {
    makeDirs(path.dirname(output));
    removeStaleSiblings(output);
    const tmp = tempPath(output);
    const forgetTmp = removeOnInterrupt(tmp);
    // read back when the .boxsig/ entries outgrow the gap: opened for reading and writing
    const fh = await fs.promises.open(tmp, 'wx+', 0o644).catch((e) => {
      forgetTmp();
      throw ioError(`cannot write next to ${output}`, e);
    });
    return new TempOutput(output, tmp, fh, forgetTmp);
  }

  /** Writes the prefix into the gap, or in front of a second copy of the tail when it does not fit; returns its length. */
  async writePrefix(build: (length?: number) => Buffer | null, reserve: number, tailLength: number): Promise<number> {
    const padded = build(reserve);
    if (padded) {
      await writeAll(this.fh, padded, 0);
      await this.fh.sync();
      await this.fh.close();
      return padded.length;
    }
    const prefixBytes = build()!;
    await this.copyWithoutGap(prefixBytes, reserve, tailLength);
    return prefixBytes.length;
  }

  /** The prefix did not fit in the gap: write it unpadded and copy the tail once more. */
  private async copyWithoutGap(prefixBytes: Buffer, reserve: number, tailLength: number): Promise<void> {
    this.finalTmp = tempPath(this.output);
    this.forgetFinal = removeOnInterrupt(this.finalTmp);
    const out = await fs.promises.open(this.finalTmp, 'wx', 0o644);
    try {
      await writeAll(out, prefixBytes, 0);
      const buf = Buffer.allocUnsafe(CHUNK_SIZE);
      let pos = 0;
      while (pos < tailLength) {
        const { bytesRead } = await this.fh.read(buf, 0, Math.min(CHUNK_SIZE, tailLength - pos), reserve + pos);
        if (bytesRead === 0) break;
        await writeAll(out, buf.subarray(0, bytesRead), prefixBytes.length + pos);
        pos += bytesRead;
      }
      if (pos !== tailLength) throw new BoxsigError('INTERNAL', `internal error: copied ${pos} of ${tailLength} bytes`);
      await out.sync();
    } finally {
      await out.close();
      await this.fh.close();
      fs.rmSync(this.tmp, { force: true });
    }
  }

  /** Renames the complete file over the target, with the input's mode. */
  install(mode: number): void {
    fs.chmodSync(this.finalTmp, mode);
    fs.renameSync(this.finalTmp, this.output);
    fsyncDir(this.output);
    this.done = true;
    this.forgetFinal();
  }

  async cleanup(): Promise<void> {
    if (!this.done) {
      await this.fh.close().catch(() => undefined);
      fs.rmSync(this.tmp, { force: true });
      fs.rmSync(this.finalTmp, { force: true });
    }
    this.forgetTmp();
    this.forgetFinal();
  }
}
