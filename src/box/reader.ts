/**
 * Reading a box in one pass: collects the leading `.boxsig/` entries, lets the
 * caller judge them (signature and trust) before a single byte of disk image
 * is accepted, then checks every further entry against the signed list as it
 * arrives, hashing (and optionally extracting) it on the way.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BoxsigError, refuse } from '../errors.js';
import { LIMITS } from '../shared/limits.js';
import { foldName, PathRegistry, showPath } from '../archive/paths.js';
import { BoxStream, type RawTap } from '../archive/stream.js';
import type { TarEntry, TarEvent } from '../archive/tar.js';
import { BOXSIG_DIR, MANIFEST_PATH, type ManifestFile } from '../manifest/manifest.js';

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

const SIG_RE = /^\.boxsig\/(signatures|keys)\/([0-9A-F]{40}|[0-9A-F]{64})\.asc$/;

function isBoxsigPath(p: string): boolean {
  return p === BOXSIG_DIR || p.startsWith(BOXSIG_DIR + '/');
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

// long: being split on branch split
export async function readBox(source: Readable, hooks: ReadHooks, opts: ReadOptions = {}): Promise<ReadResult> {
  const prefix: BoxsigPrefix = { present: false, manifest: null, signatures: new Map(), keys: new Map(), endOffset: 0, paths: [] };
  const stream = new BoxStream(source, opts.tap ?? {}, opts.manifestEnforced ? { bodyVerified: () => prefix.present } : {});
  const registry = new PathRegistry();
  const files: ManifestFile[] = [];
  let metadata: Buffer | null = null;

  let phase: 'prefix' | 'body' = 'prefix';
  let expectation: Expectation | null = null;
  const seen = new Set<string>();
  let bound = LIMITS.maxUnboundedBytes;

  // current entry state
  let cur: TarEntry | null = null;
  let curBuf: Buffer[] | null = null;
  let curHash: Hash | null = null;
  let curSink: FileSink | null = null;
  let curMeta: Buffer[] | null = null;

  const finishPrefix = async (offset: number) => {
    phase = 'body';
    prefix.endOffset = offset;
    expectation = await hooks.onPrefix(prefix);
    if (stream.crcSkipped && !expectation) {
      throw new BoxsigError('INTERNAL', 'internal error: the box was read without its gzip CRC but is not checked against a manifest');
    }
    if (expectation) {
      let total = 0;
      for (const f of expectation.files.values()) total += f.size + 3 * 512 + 2 * LIMITS.maxMetaHeaderBytes;
      bound = offset + total + LIMITS.maxEntries * 512 + LIMITS.maxTrailingZeroBytes;
    }
    if (hooks.openFile && prefix.present) {
      // the installed box keeps .boxsig/ so that it can be re-verified later
      await hooks.makeDir?.(BOXSIG_DIR);
      if (prefix.signatures.size) await hooks.makeDir?.(`${BOXSIG_DIR}/signatures`);
      if (prefix.keys.size) await hooks.makeDir?.(`${BOXSIG_DIR}/keys`);
      const writeOne = async (p: string, data: Buffer) => {
        const s = await hooks.openFile!(p, 0o644);
        await s.write(data);
        await s.close();
      };
      if (prefix.manifest) await writeOne(MANIFEST_PATH, prefix.manifest);
      for (const [f, d] of prefix.signatures) await writeOne(`${BOXSIG_DIR}/signatures/${f}.asc`, d);
      for (const [f, d] of prefix.keys) await writeOne(`${BOXSIG_DIR}/keys/${f}.asc`, d);
    }
  };

  const prefixEntry = (e: TarEntry): boolean => {
    // returns true when the entry belongs to the prefix
    if (e.dataOffset + e.size > LIMITS.maxPrefixBytes && isBoxsigPath(e.path)) {
      throw refuse('MALFORMED', `the .boxsig/ entries exceed ${LIMITS.maxPrefixBytes} bytes`);
    }
    if (e.path === '' && e.type === 'directory') {
      registry.add('', 'dir');
      return true;
    }
    if (!isBoxsigPath(e.path)) return false;
    prefix.present = true;
    if (e.type === 'directory') {
      if (![BOXSIG_DIR, `${BOXSIG_DIR}/signatures`, `${BOXSIG_DIR}/keys`].includes(e.path)) {
        throw refuse('MALFORMED', `unexpected directory ${showPath(e.path)} in .boxsig/`, { path: e.path });
      }
      registry.add(e.path, 'dir');
      prefix.paths.push(e.path + '/');
      return true;
    }
    if (e.path === MANIFEST_PATH) {
      if (e.size > LIMITS.maxManifestBytes) {
        throw refuse('MALFORMED', `manifest.json is ${e.size} bytes, more than the ${LIMITS.maxManifestBytes}-byte limit`);
      }
    } else if (SIG_RE.test(e.path)) {
      if (e.size > LIMITS.maxBoxsigFileBytes) throw refuse('MALFORMED', `${showPath(e.path)} is larger than ${LIMITS.maxBoxsigFileBytes} bytes`);
      const kind = SIG_RE.exec(e.path)![1];
      const map = kind === 'signatures' ? prefix.signatures : prefix.keys;
      if (map.size >= LIMITS.maxSigners) throw refuse('MALFORMED', `more than ${LIMITS.maxSigners} ${kind} in .boxsig/`);
    } else {
      throw refuse('MALFORMED', `unexpected file ${showPath(e.path)} in .boxsig/`, { path: e.path });
    }
    registry.add(e.path, 'file');
    prefix.paths.push(e.path);
    return true;
  };

  const startBodyEntry = async (e: TarEntry) => {
    const first = e.path.split('/')[0];
    if (isBoxsigPath(e.path)) {
      if (registry.has(e.path)) throw refuse('DUPLICATE_ENTRY', `${showPath(e.path)} appears twice in the archive`, { path: e.path });
      throw refuse('MALFORMED', `${showPath(e.rawPath)} comes after other entries: .boxsig/ must lead the archive`, { path: e.path });
    }
    if (first && foldName(first) === BOXSIG_DIR) {
      throw refuse('UNSAFE_ENTRY', `${showPath(e.path)} imitates the reserved .boxsig/ directory`, { path: e.path });
    }
    registry.add(e.path, e.type === 'directory' ? 'dir' : 'file');
    if (e.type === 'directory') {
      if (expectation) {
        const f = expectation.files.get(e.path);
        if (f) throw refuse('TAMPERED', `${showPath(e.path)} is a directory in the archive but a file in the manifest`, { path: e.path });
      }
      if (e.path !== '') await hooks.makeDir?.(e.path);
      return;
    }
    if (expectation) {
      const f = expectation.files.get(e.path);
      if (!f) throw refuse('UNLISTED_FILE', `${showPath(e.path)} is not listed in the signed manifest`, { path: e.path });
      if (f.size !== e.size) {
        throw refuse('TAMPERED', `${showPath(e.path)} is ${e.size} bytes; the signed manifest says ${f.size}`, {
          path: e.path,
          size: e.size,
          expected: f.size,
        });
      }
    }
    curHash = createHash('sha256');
    curMeta = e.path === 'metadata.json' && e.size <= LIMITS.maxMetadataBytes ? [] : null;
    // 0644 whatever the tar header says: modes are not signed, so the network does not choose what is executable
    curSink = hooks.openFile ? await hooks.openFile(e.path, 0o644) : null;
  };

  const endBodyEntry = async (e: TarEntry) => {
    if (e.type === 'directory') return;
    const digest = curHash!.digest('hex');
    curHash = null;
    if (curSink) {
      await curSink.close();
      curSink = null;
    }
    if (curMeta) {
      metadata = Buffer.concat(curMeta);
      curMeta = null;
    }
    if (expectation) {
      const f = (expectation as Expectation).files.get(e.path)!;
      if (f.sha256 !== digest) {
        throw refuse('TAMPERED', `${showPath(e.path)} does not match its SHA-256 in the signed manifest`, {
          path: e.path,
          sha256: digest,
          expected: f.sha256,
        });
      }
    }
    seen.add(e.path);
    files.push({ path: e.path, size: e.size, sha256: digest });
  };

  const handle = async (ev: TarEvent): Promise<boolean> => {
    switch (ev.kind) {
      case 'entry': {
        const e = ev.entry;
        if (phase === 'prefix') {
          if (prefixEntry(e)) {
            cur = e;
            curBuf = e.type === 'file' ? [] : null;
            return true;
          }
          await finishPrefix(e.headerOffset);
          if (opts.prefixOnly) return false;
        }
        cur = e;
        await startBodyEntry(e);
        return true;
      }
      case 'data': {
        if (curBuf) {
          curBuf.push(Buffer.from(ev.chunk));
          return true;
        }
        curHash!.update(ev.chunk);
        if (curMeta) curMeta.push(Buffer.from(ev.chunk));
        if (curSink) {
          const w = curSink.write(ev.chunk);
          if (w) await w;
        }
        return true;
      }
      case 'entryEnd': {
        const e = ev.entry;
        if (curBuf) {
          const data = Buffer.concat(curBuf);
          curBuf = null;
          if (e.path === MANIFEST_PATH) prefix.manifest = data;
          else {
            const m = SIG_RE.exec(e.path)!;
            (m[1] === 'signatures' ? prefix.signatures : prefix.keys).set(m[2], data);
          }
        } else if (phase === 'body') {
          await endBodyEntry(e);
        }
        cur = null;
        return true;
      }
      case 'eof': {
        if (phase === 'prefix') {
          await finishPrefix(ev.offset);
          if (opts.prefixOnly) return false;
        }
        return true;
      }
    }
  };

  let stopped = false;
  try {
    outer: for await (const batch of stream.events()) {
      for (const ev of batch) {
        if (!(await handle(ev))) {
          stopped = true;
          break outer;
        }
      }
      if (stream.parser.position > bound) {
        throw refuse('MALFORMED', `the box expands to more than ${bound} bytes (a decompression bomb?)`, { limit: bound });
      }
    }
  } catch (e) {
    if (curSink) await (curSink as FileSink).close().catch(() => undefined);
    if (
      opts.expectedChecksum &&
      e instanceof BoxsigError &&
      ['MALFORMED', 'TAMPERED', 'UNLISTED_FILE', 'MISSING_FILE', 'DUPLICATE_ENTRY', 'UNSAFE_ENTRY'].includes(e.code)
    ) {
      // A corrupt download looks like tampering: finish the checksum to tell them apart.
      try {
        await stream.drain();
        const sum = stream.checksum;
        if (sum !== null && sum !== opts.expectedChecksum.toLowerCase()) {
          throw refuse(
            'CHECKSUM_MISMATCH',
            `checksum mismatch: expected ${opts.expectedChecksum.toLowerCase()}, got ${sum} (the download is corrupt or was replaced)`,
            {
              expected: opts.expectedChecksum.toLowerCase(),
              actual: sum,
              cause: e.code,
            },
          );
        }
      } catch (inner) {
        if (inner instanceof BoxsigError && inner.code === 'CHECKSUM_MISMATCH') throw inner;
      }
    }
    stream.destroy();
    throw e;
  }
  if (stopped) stream.destroy();
  void cur;

  if (!stopped && expectation) {
    const missing = [...(expectation as Expectation).files.keys()].filter((p) => !seen.has(p));
    if (missing.length) {
      throw refuse(
        'MISSING_FILE',
        `${missing.map(showPath).join(', ')} ${missing.length === 1 ? 'is' : 'are'} listed in the signed manifest but not in the box`,
        {
          paths: missing,
        },
      );
    }
  }
  const info = stream.info!;
  return {
    files,
    metadata,
    prefix,
    compressed: info.compressed,
    leadingMember: info.leadingMember,
    rawBytes: stream.rawBytes,
    tarBytes: stream.parser.position,
    checksum: stopped ? null : stream.checksum,
    head: info.head,
  };
}
