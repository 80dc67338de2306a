/**
 * One streaming pass over the bytes of a box: raw bytes (optionally hashed for
 * a checksum, counted for progress, copied for signing) -> core zlib inflate
 * (when gzip) -> the lean tar parser. Memory stays bounded by a few chunks.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { BoxsigError, refuse, toBoxsigError } from '../errors.js';
import { CHUNK_SIZE } from './limits.js';
import { isGzip, leadingMemberLength, sniffUnsupported } from './gzip.js';
import { TarParser, type TarEvent } from './tar.js';

export interface RawTap {
  /** Hash the raw bytes with this algorithm (sha256, sha512, sha1, md5, sha384). */
  checksumAlgorithm?: string;
  /** Called for every raw chunk, in order, with its offset; may apply backpressure. */
  onRaw?: (chunk: Buffer, offset: number) => void | Promise<void>;
  /** Called with the total raw bytes read so far. */
  onProgress?: (rawBytes: number) => void;
}

export interface StreamInfo {
  compressed: boolean;
  /** Length of boxsig's own leading gzip member, when the box starts with one. */
  leadingMember: number | null;
  /** The first raw bytes (at least the gzip member header when available). */
  head: Buffer;
}

export class BoxStream {
  rawBytes = 0;
  info: StreamInfo | null = null;
  readonly parser = new TarParser();
  private hash: Hash | null = null;
  private digestValue: string | null = null;
  private iterator: AsyncIterator<Buffer>;
  private gunzip: zlib.Gunzip | null = null;
  private source: Readable;

  constructor(
    source: Readable,
    private readonly tap: RawTap = {},
  ) {
    this.source = source;
    this.iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    if (tap.checksumAlgorithm) {
      try {
        this.hash = createHash(tap.checksumAlgorithm);
      } catch {
        throw new BoxsigError('USAGE', `unsupported checksum type ${JSON.stringify(tap.checksumAlgorithm)}`);
      }
    }
  }

  /** Hex digest of all raw bytes (available after the stream has been consumed, or after drain()). */
  get checksum(): string | null {
    if (!this.hash) return null;
    if (this.digestValue === null) this.digestValue = this.hash.digest('hex');
    return this.digestValue;
  }

  private async nextRaw(): Promise<Buffer | null> {
    const r = await this.iterator.next();
    if (r.done) return null;
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    const offset = this.rawBytes;
    this.rawBytes += chunk.length;
    this.hash?.update(chunk);
    if (this.tap.onRaw) await this.tap.onRaw(chunk, offset);
    this.tap.onProgress?.(this.rawBytes);
    return chunk;
  }

  /**
   * Read the remaining raw bytes without parsing them (to finish a checksum
   * after a refusal, when telling a corrupt download from a tampered box).
   */
  async drain(): Promise<void> {
    this.gunzip?.destroy();
    this.gunzip = null;
    while ((await this.nextRaw()) !== null) {
      /* hashing happens in nextRaw */
    }
  }

  destroy(): void {
    this.gunzip?.destroy();
    this.source.destroy();
  }

  /**
   * Yield batches of tar events. Throws BoxsigError (MALFORMED for bad gzip,
   * tar or trailing data). The caller must consume to the end or call destroy().
   */
  async *events(): AsyncGenerator<TarEvent[]> {
    // Sniff: gather enough bytes to recognise gzip and boxsig's leading member.
    const headChunks: Buffer[] = [];
    let headLen = 0;
    let ended = false;
    while (headLen < 64 * 1024) {
      const c = await this.nextRaw();
      if (c === null) {
        ended = true;
        break;
      }
      headChunks.push(c);
      headLen += c.length;
    }
    const head = Buffer.concat(headChunks);
    if (head.length === 0) throw refuse('MALFORMED', 'the box is empty (0 bytes)');
    const unsupported = sniffUnsupported(head);
    if (unsupported) {
      throw refuse('MALFORMED', `the box is ${unsupported}-compressed; boxsig reads plain tar and gzip boxes`, { compression: unsupported });
    }
    const compressed = isGzip(head);
    this.info = { compressed, leadingMember: compressed ? leadingMemberLength(head) : null, head: head.subarray(0, 64 * 1024) };

    if (!compressed) {
      const out: TarEvent[] = [];
      this.parser.push(head, out);
      if (out.length) yield out;
      if (!ended) {
        for (;;) {
          const c = await this.nextRaw();
          if (c === null) break;
          const batch = this.parser.push(c, []);
          if (batch.length) yield batch;
        }
      }
      this.parser.end();
      return;
    }

    // a few chunks of read-ahead let inflation (thread pool) overlap hashing (main thread)
    const gunzip = zlib.createGunzip({ chunkSize: CHUNK_SIZE, readableHighWaterMark: 4 * CHUNK_SIZE } as zlib.ZlibOptions);
    this.gunzip = gunzip;
    const self = this;
    async function* raw(): AsyncGenerator<Buffer> {
      yield head;
      if (ended) return;
      for (;;) {
        const c = await self.nextRaw();
        if (c === null) return;
        yield c;
      }
    }
    const input = Readable.from(raw(), { objectMode: false, highWaterMark: CHUNK_SIZE });
    let feedError: unknown = null;
    input.on('error', (e) => {
      feedError = e;
      gunzip.destroy(e);
    });
    input.pipe(gunzip);
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        const batch = this.parser.push(chunk, []);
        if (batch.length) yield batch;
      }
    } catch (e) {
      if (feedError) throw toBoxsigError(feedError);
      if (e instanceof BoxsigError) throw e;
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code.startsWith('Z_') || code === 'ERR_STREAM_PREMATURE_CLOSE') {
        const msg = /unexpected end of file/.test((e as Error).message) ? 'the gzip stream is truncated' : `corrupt gzip data (${(e as Error).message})`;
        throw refuse('MALFORMED', msg, { zlib: code });
      }
      throw toBoxsigError(e);
    } finally {
      input.destroy();
      gunzip.destroy();
    }
    if (feedError) throw toBoxsigError(feedError);
    const consumed = gunzip.bytesWritten;
    if (consumed < this.rawBytes) {
      throw refuse('MALFORMED', `${this.rawBytes - consumed} bytes of trailing data after the end of the gzip stream`, {
        trailing: this.rawBytes - consumed,
      });
    }
    this.parser.end();
  }
}
