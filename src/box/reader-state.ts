/**
 * The entry-by-entry state of readBox's single pass. The tar parser's events
 * arrive as onEntry / onData / onEntryEnd / onEof; the reader goes through two
 * phases:
 *
 * 1. prefix: the leading `.boxsig/` entries are checked and kept in memory;
 * 2. body: once the first other entry (or the end) arrives, the caller judges
 *    the prefix (onPrefix); every further entry is then checked against the
 *    signed list as it arrives, hashed, and optionally extracted.
 */
import { createHash, type Hash } from 'node:crypto';
import { BoxsigError, refuse } from '../errors.js';
import { LIMITS } from '../shared/limits.js';
import { foldName, PathRegistry, showPath } from '../archive/paths.js';
import type { TarEntry, TarEvent } from '../archive/tar.js';
import { BOXSIG_DIR, MANIFEST_PATH, type ManifestFile } from '../manifest/manifest.js';
import type { BoxsigPrefix, Expectation, FileSink, ReadHooks } from './reader.js';

const SIG_RE = /^\.boxsig\/(signatures|keys)\/([0-9A-F]{40}|[0-9A-F]{64})\.asc$/;

function isBoxsigPath(p: string): boolean {
  return p === BOXSIG_DIR || p.startsWith(BOXSIG_DIR + '/');
}

export function emptyPrefix(): BoxsigPrefix {
  return { present: false, manifest: null, signatures: new Map(), keys: new Map(), endOffset: 0, paths: [] };
}

/** The decompressed size a box checked against this expectation may reach, its prefix ending at `offset`. */
function expansionBound(offset: number, expectation: Expectation): number {
  let total = 0;
  for (const f of expectation.files.values()) total += f.size + 3 * 512 + 2 * LIMITS.maxMetaHeaderBytes;
  return offset + total + LIMITS.maxEntries * 512 + LIMITS.maxTrailingZeroBytes;
}

export interface EntryReaderOptions {
  /** Stop after the `.boxsig/` entries. */
  prefixOnly: boolean;
  /** Whether the stream inflated a member without gzip's CRC-32. */
  crcSkipped: () => boolean;
}

export class EntryReader {
  /** Every regular file outside `.boxsig/`, with size and SHA-256, in archive order. */
  readonly files: ManifestFile[] = [];
  /** Raw bytes of metadata.json (when not larger than the parse limit). */
  metadata: Buffer | null = null;
  /** Decompressed size beyond which the box is refused as a decompression bomb. */
  bound = LIMITS.maxUnboundedBytes;

  private phase: 'prefix' | 'body' = 'prefix';
  private expectation: Expectation | null = null;
  private readonly seen = new Set<string>();
  private readonly registry = new PathRegistry();

  // the entry being read: a `.boxsig/` file is kept whole; a body file is hashed, maybe kept (metadata.json) and written
  private prefixData: Buffer[] | null = null;
  private hash: Hash | null = null;
  private metadataData: Buffer[] | null = null;
  private sink: FileSink | null = null;

  constructor(
    readonly prefix: BoxsigPrefix,
    private readonly hooks: ReadHooks,
    private readonly options: EntryReaderOptions,
  ) {}

  /** One parser event; false stops the pass (prefixOnly, once the prefix is judged). */
  async onEvent(ev: TarEvent): Promise<boolean> {
    switch (ev.kind) {
      case 'entry':
        return this.onEntry(ev.entry);
      case 'data': {
        const w = this.onData(ev.chunk);
        if (w) await w;
        return true;
      }
      case 'entryEnd':
        await this.onEntryEnd(ev.entry);
        return true;
      case 'eof':
        return this.onEof(ev.offset);
    }
  }

  async onEntry(e: TarEntry): Promise<boolean> {
    if (this.phase === 'prefix') {
      if (this.acceptPrefixEntry(e)) {
        this.prefixData = e.type === 'file' ? [] : null;
        return true;
      }
      await this.endPrefix(e.headerOffset);
      if (this.options.prefixOnly) return false;
    }
    await this.startBodyEntry(e);
    return true;
  }

  onData(chunk: Buffer): void | Promise<void> {
    if (this.prefixData) {
      this.prefixData.push(Buffer.from(chunk));
      return;
    }
    this.hash!.update(chunk);
    if (this.metadataData) this.metadataData.push(Buffer.from(chunk));
    if (this.sink) return this.sink.write(chunk);
  }

  async onEntryEnd(e: TarEntry): Promise<void> {
    if (this.prefixData) {
      const data = Buffer.concat(this.prefixData);
      this.prefixData = null;
      this.keepPrefixFile(e.path, data);
    } else if (this.phase === 'body') {
      await this.endBodyEntry(e);
    }
  }

  async onEof(offset: number): Promise<boolean> {
    if (this.phase === 'prefix') {
      await this.endPrefix(offset);
      if (this.options.prefixOnly) return false;
    }
    return true;
  }

  /** After a refusal: close the file being extracted. */
  async abort(): Promise<void> {
    if (this.sink) await this.sink.close().catch(() => undefined);
  }

  /** After a complete pass: every file the signed manifest lists was in the box. */
  checkNothingMissing(): void {
    if (!this.expectation) return;
    const missing = [...this.expectation.files.keys()].filter((p) => !this.seen.has(p));
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

  // ------------------------------------------------------------ prefix phase

  /** Whether the entry belongs to the prefix (the root directory or `.boxsig/`); refuses a malformed `.boxsig/` entry. */
  private acceptPrefixEntry(e: TarEntry): boolean {
    if (e.dataOffset + e.size > LIMITS.maxPrefixBytes && isBoxsigPath(e.path)) {
      throw refuse('MALFORMED', `the .boxsig/ entries exceed ${LIMITS.maxPrefixBytes} bytes`);
    }
    if (e.path === '' && e.type === 'directory') {
      this.registry.add('', 'dir');
      return true;
    }
    if (!isBoxsigPath(e.path)) return false;
    this.prefix.present = true;
    if (e.type === 'directory') {
      if (![BOXSIG_DIR, `${BOXSIG_DIR}/signatures`, `${BOXSIG_DIR}/keys`].includes(e.path)) {
        throw refuse('MALFORMED', `unexpected directory ${showPath(e.path)} in .boxsig/`, { path: e.path });
      }
      this.registry.add(e.path, 'dir');
      this.prefix.paths.push(e.path + '/');
      return true;
    }
    this.checkPrefixFile(e);
    this.registry.add(e.path, 'file');
    this.prefix.paths.push(e.path);
    return true;
  }

  /** A file in `.boxsig/` is the manifest, a signature or a key, within its size limit and the signer limit. */
  private checkPrefixFile(e: TarEntry): void {
    if (e.path === MANIFEST_PATH) {
      if (e.size > LIMITS.maxManifestBytes) {
        throw refuse('MALFORMED', `manifest.json is ${e.size} bytes, more than the ${LIMITS.maxManifestBytes}-byte limit`);
      }
    } else if (SIG_RE.test(e.path)) {
      if (e.size > LIMITS.maxBoxsigFileBytes) throw refuse('MALFORMED', `${showPath(e.path)} is larger than ${LIMITS.maxBoxsigFileBytes} bytes`);
      const kind = SIG_RE.exec(e.path)![1];
      const map = kind === 'signatures' ? this.prefix.signatures : this.prefix.keys;
      if (map.size >= LIMITS.maxSigners) throw refuse('MALFORMED', `more than ${LIMITS.maxSigners} ${kind} in .boxsig/`);
    } else {
      throw refuse('MALFORMED', `unexpected file ${showPath(e.path)} in .boxsig/`, { path: e.path });
    }
  }

  private keepPrefixFile(path: string, data: Buffer): void {
    if (path === MANIFEST_PATH) this.prefix.manifest = data;
    else {
      const m = SIG_RE.exec(path)!;
      (m[1] === 'signatures' ? this.prefix.signatures : this.prefix.keys).set(m[2], data);
    }
  }

  /** The prefix is complete (it ends at `offset`): the caller judges it before any other entry is accepted. */
  private async endPrefix(offset: number): Promise<void> {
    this.phase = 'body';
    this.prefix.endOffset = offset;
    this.expectation = await this.hooks.onPrefix(this.prefix);
    if (this.options.crcSkipped() && !this.expectation) {
      throw new BoxsigError('INTERNAL', 'internal error: the box was read without its gzip CRC but is not checked against a manifest');
    }
    if (this.expectation) this.bound = expansionBound(offset, this.expectation);
    if (this.hooks.openFile && this.prefix.present) await this.extractPrefix(this.hooks.openFile);
  }

  /** The installed box keeps .boxsig/ so that it can be re-verified later. */
  private async extractPrefix(openFile: NonNullable<ReadHooks['openFile']>): Promise<void> {
    const { prefix, hooks } = this;
    await hooks.makeDir?.(BOXSIG_DIR);
    if (prefix.signatures.size) await hooks.makeDir?.(`${BOXSIG_DIR}/signatures`);
    if (prefix.keys.size) await hooks.makeDir?.(`${BOXSIG_DIR}/keys`);
    const writeOne = async (p: string, data: Buffer) => {
      const s = await openFile(p, 0o644);
      await s.write(data);
      await s.close();
    };
    if (prefix.manifest) await writeOne(MANIFEST_PATH, prefix.manifest);
    for (const [f, d] of prefix.signatures) await writeOne(`${BOXSIG_DIR}/signatures/${f}.asc`, d);
    for (const [f, d] of prefix.keys) await writeOne(`${BOXSIG_DIR}/keys/${f}.asc`, d);
  }

  // ------------------------------------------------------------ body phase

  private async startBodyEntry(e: TarEntry): Promise<void> {
    this.checkBodyPath(e);
    this.registry.add(e.path, e.type === 'directory' ? 'dir' : 'file');
    if (e.type === 'directory') {
      if (this.expectation?.files.get(e.path)) {
        throw refuse('TAMPERED', `${showPath(e.path)} is a directory in the archive but a file in the manifest`, { path: e.path });
      }
      if (e.path !== '') await this.hooks.makeDir?.(e.path);
      return;
    }
    this.checkListed(e);
    this.hash = createHash('sha256');
    this.metadataData = e.path === 'metadata.json' && e.size <= LIMITS.maxMetadataBytes ? [] : null;
    // 0644 whatever the tar header says: modes are not signed, so the network does not choose what is executable
    this.sink = this.hooks.openFile ? await this.hooks.openFile(e.path, 0o644) : null;
  }

  /** `.boxsig/` leads the archive, once, and nothing imitates it. */
  private checkBodyPath(e: TarEntry): void {
    const first = e.path.split('/')[0];
    if (isBoxsigPath(e.path)) {
      if (this.registry.has(e.path)) throw refuse('DUPLICATE_ENTRY', `${showPath(e.path)} appears twice in the archive`, { path: e.path });
      throw refuse('MALFORMED', `${showPath(e.rawPath)} comes after other entries: .boxsig/ must lead the archive`, { path: e.path });
    }
    if (first && foldName(first) === BOXSIG_DIR) {
      throw refuse('UNSAFE_ENTRY', `${showPath(e.path)} imitates the reserved .boxsig/ directory`, { path: e.path });
    }
  }

  /** A file is listed in the signed manifest, with its size. */
  private checkListed(e: TarEntry): void {
    if (!this.expectation) return;
    const f = this.expectation.files.get(e.path);
    if (!f) throw refuse('UNLISTED_FILE', `${showPath(e.path)} is not listed in the signed manifest`, { path: e.path });
    if (f.size !== e.size) {
      throw refuse('TAMPERED', `${showPath(e.path)} is ${e.size} bytes; the signed manifest says ${f.size}`, {
        path: e.path,
        size: e.size,
        expected: f.size,
      });
    }
  }

  private async endBodyEntry(e: TarEntry): Promise<void> {
    if (e.type === 'directory') return;
    const digest = this.hash!.digest('hex');
    this.hash = null;
    if (this.sink) {
      await this.sink.close();
      this.sink = null;
    }
    if (this.metadataData) {
      this.metadata = Buffer.concat(this.metadataData);
      this.metadataData = null;
    }
    this.checkDigest(e.path, digest);
    this.seen.add(e.path);
    this.files.push({ path: e.path, size: e.size, sha256: digest });
  }

  private checkDigest(path: string, digest: string): void {
    if (!this.expectation) return;
    const f = this.expectation.files.get(path)!;
    if (f.sha256 !== digest) {
      throw refuse('TAMPERED', `${showPath(path)} does not match its SHA-256 in the signed manifest`, {
        path,
        sha256: digest,
        expected: f.sha256,
      });
    }
  }
}
