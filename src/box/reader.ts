/**
 * Reading a box in one pass: collects the leading `.boxsig/` entries, lets the
 * caller judge them (signature and trust) before a single byte of disk image
 * is accepted, then checks every further entry against the signed list as it
 * arrives, hashing (and optionally extracting) it on the way.
 */
import type { Readable } from 'node:stream';
import { BoxsigError, refuse } from '../errors.js';
import { BoxStream, type RawTap } from '../archive/stream.js';
import type { ManifestFile } from '../manifest/manifest.js';
import { EntryReader, emptyPrefix } from './reader-state.js';

export interface BoxsigPrefix {
  /** Whether the box starts with `.boxsig/` entries at all. */
  present: boolean;
  manifest: Buffer | null;
  /** primary fingerprint -> armored signature */
  signatures: Map<string, Buffer>;
  /** primary fingerprint -> armored public key */
  keys: Map<string, Buffer>;
  /** Decompressed offset where the `.boxsig/` entries end. */
  endOffset: number;
  /** Every path of the prefix in archive order (directories end in '/'). */
  paths: string[];
}

export interface Expectation {
  files: Map<string, { size: number; sha256: string }>;
}

export interface FileSink {
  write(chunk: Buffer): void | Promise<void>;
  close(): Promise<void>;
}

export interface ReadHooks {
  /**
   * Called once the `.boxsig/` entries are complete (or absent), before any
   * other entry is accepted. Return the expected files to check every further
   * entry against them, or null to just hash what comes. Throw to refuse.
   */
  onPrefix(prefix: BoxsigPrefix): Promise<Expectation | null>;
  /** Extraction: open a file for writing (paths are normalised and safe). */
  openFile?(path: string, mode: number): Promise<FileSink>;
  /** Extraction: create a directory. */
  makeDir?(path: string): Promise<void>;
}

export interface ReadResult {
  /** Every regular file outside `.boxsig/`, with size and SHA-256, in archive order. */
  files: ManifestFile[];
  /** Raw bytes of metadata.json (when not larger than the parse limit). */
  metadata: Buffer | null;
  prefix: BoxsigPrefix;
  compressed: boolean;
  leadingMember: number | null;
  rawBytes: number;
  /** Decompressed size of the tar stream. */
  tarBytes: number;
  checksum: string | null;
  /** First raw bytes of the box. */
  head: Buffer;
}

export interface ReadOptions {
  tap?: RawTap;
  /** Stop after the `.boxsig/` entries (inspect). */
  prefixOnly?: boolean;
  /** Keep hashing the raw input after a refusal, to report CHECKSUM_MISMATCH for a corrupt download instead. */
  expectedChecksum?: string;
  /**
   * The caller's onPrefix returns an expectation whenever `.boxsig/` entries
   * are present (or refuses the box): every later byte is then checked against
   * the manifest, and gzip's CRC-32 of that data need not be computed.
   */
  manifestEnforced?: boolean;
}

export async function readBox(source: Readable, hooks: ReadHooks, opts: ReadOptions = {}): Promise<ReadResult> {
  const prefix = emptyPrefix();
  const stream = new BoxStream(source, opts.tap ?? {}, opts.manifestEnforced ? { bodyVerified: () => prefix.present } : {});
  const reader = new EntryReader(prefix, hooks, { prefixOnly: opts.prefixOnly === true, crcSkipped: () => stream.crcSkipped });
  let stopped: boolean;
  try {
    stopped = await pump(stream, reader);
  } catch (e) {
    await reader.abort();
    if (opts.expectedChecksum) await refuseCorruptDownload(stream, e, opts.expectedChecksum.toLowerCase());
    stream.destroy();
    throw e;
  }
  if (stopped) stream.destroy();
  else reader.checkNothingMissing();
  return resultOf(stream, reader, stopped);
}

/** Feeds the parser's events to the reader, batch by batch, within its size bound; true when the reader stopped early. */
async function pump(stream: BoxStream, reader: EntryReader): Promise<boolean> {
  for await (const batch of stream.events()) {
    for (const ev of batch) {
      if (!(await reader.onEvent(ev))) return true;
    }
    if (stream.parser.position > reader.bound) {
      throw refuse('MALFORMED', `the box expands to more than ${reader.bound} bytes (a decompression bomb?)`, { limit: reader.bound });
    }
  }
  return false;
}

const CORRUPTION_LOOKALIKES = ['MALFORMED', 'TAMPERED', 'UNLISTED_FILE', 'MISSING_FILE', 'DUPLICATE_ENTRY', 'UNSAFE_ENTRY'];

/** A corrupt download looks like tampering: finish the checksum to tell them apart, and refuse with CHECKSUM_MISMATCH if it differs. */
async function refuseCorruptDownload(stream: BoxStream, e: unknown, expected: string): Promise<void> {
  if (!(e instanceof BoxsigError) || !CORRUPTION_LOOKALIKES.includes(e.code)) return;
  try {
    await stream.drain();
    const sum = stream.checksum;
    if (sum !== null && sum !== expected) {
      throw refuse('CHECKSUM_MISMATCH', `checksum mismatch: expected ${expected}, got ${sum} (the download is corrupt or was replaced)`, {
        expected,
        actual: sum,
        cause: e.code,
      });
    }
  } catch (inner) {
    if (inner instanceof BoxsigError && inner.code === 'CHECKSUM_MISMATCH') throw inner;
  }
}

function resultOf(stream: BoxStream, reader: EntryReader, stopped: boolean): ReadResult {
  const info = stream.info!;
  return {
    files: reader.files,
    metadata: reader.metadata,
    prefix: reader.prefix,
    compressed: info.compressed,
    leadingMember: info.leadingMember,
    rawBytes: stream.rawBytes,
    tarBytes: stream.parser.position,
    checksum: stopped ? null : stream.checksum,
    head: info.head,
  };
}
