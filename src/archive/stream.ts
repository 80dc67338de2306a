/**
 * One streaming pass over the bytes of a box: raw bytes (optionally hashed for
 * a checksum, counted for progress, copied for signing) -> core zlib inflate
 * (when gzip) -> the lean tar parser. Memory stays bounded by a few chunks.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { BoxsigError, refuse, toBoxsigError } from '../errors.js';
import { CHUNK_SIZE, LIMITS } from '../shared/limits.js';
import { inflateLeadingMember, isGzip, leadingMemberLength, parseMemberHeader, sniffUnsupported } from './gzip.js';
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

export interface StreamOptions {
  /**
   * Asked once boxsig's leading gzip member has been parsed: true when every
   * later byte will be checked against a signed manifest (or the box refused).
   * The next member is then inflated without zlib's CRC-32 — the SHA-256 of
   * every file is a stronger check of the same bytes.
   */
  bodyVerified?: () => boolean;
}

export class BoxStream {
  rawBytes = 0;
  info: StreamInfo | null = null;
  readonly parser = new TarParser();
  private hash: Hash | null = null;
  private digestValue: string | null = null;
  private iterator: AsyncIterator<Buffer>;
  private gunzip: Transform | null = null;
  /** The raw-member feeder, while it runs. */
  private feeding: Promise<void> | null = null;
  /** Whether a member was inflated without zlib's CRC-32 check (see events()). */
  crcSkipped = false;
  private source: Readable;

  constructor(
    source: Readable,
    private readonly tap: RawTap = {},
    private readonly options: StreamOptions = {},
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
    await this.feeding;
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

    const feed = new RawFeed(() => this.nextRaw(), head, ended);
    const lead = this.info.leadingMember;
    const leading = lead !== null && this.options.bodyVerified ? inflateLeadingMember(head, lead, LIMITS.maxPrefixBytes + 64 * 1024) : null;
    let offset = 0;
    if (leading) {
      // boxsig's own leading member: exactly one clean member, checked here in full
      feed.skip(lead!);
      offset = lead!;
      const batch = this.parser.push(leading, []);
      if (batch.length) yield batch;
      // Every byte after .boxsig/ is checked against the signed manifest (SHA-256 per file) or
      // the box is refused, so the next member is inflated without zlib's CRC-32 (as bsdtar does).
      if (this.options.bodyVerified!()) {
        this.crcSkipped = true;
        offset += yield* this.rawMember(feed);
      }
    }
    if (!(await feed.atEnd())) {
      if (offset > 0 && !(await feed.startsWithGzip())) {
        throw refuse('MALFORMED', `${this.rawBytes - offset} bytes of trailing data after the end of the gzip stream`, { trailing: this.rawBytes - offset });
      }
      yield* this.gunzipRest(feed, offset);
    }
    this.parser.end();
  }

  /**
   * One gzip member through raw inflate: header, deflate data, then the
   * trailer's size check (its CRC-32 is not computed; see events()).
   * Returns the member's length in raw bytes; leaves what follows in `feed`.
   */
  // long: the inflate loop of one raw gzip member, per chunk on the hot path; its state lives in locals so that no call per chunk is added
  private async *rawMember(feed: RawFeed): AsyncGenerator<TarEvent[], number> {
    const header = await feed.header();
    const inf = zlib.createInflateRaw({ chunkSize: CHUNK_SIZE, readableHighWaterMark: 4 * CHUNK_SIZE } as zlib.ZlibOptions);
    this.gunzip = inf;
    // raw chunks written to the inflater and not known to be fully consumed
    const window: { buf: Buffer; end: number }[] = [];
    let fed = 0;
    let done = 0; // end offset of the last write zlib has finished with
    let stop = false;
    let feedError: unknown = null;
    // zlib stops consuming input at the end of the deflate data: a finished write it did not use up
    const ended = () => inf.bytesWritten < done;
    // zlib never calls back a write it failed on: an error or destroy() settles every pending write
    const closed = new Promise<void>((resolve) => inf.once('close', resolve));
    const feeder = (async () => {
      const inFlight: Promise<void>[] = [];
      try {
        for (;;) {
          // two writes queued: zlib always has the next chunk while the one after is being read
          while (inFlight.length >= 2) await inFlight.shift();
          while (window.length && window[0].end <= inf.bytesWritten) window.shift();
          if (stop || ended() || feedError) break;
          const c = await feed.next();
          if (stop || ended() || feedError) {
            if (c) feed.unshift(c);
            break;
          }
          if (c === null) {
            inf.end();
            break;
          }
          fed += c.length;
          const end = fed;
          window.push({ buf: c, end });
          const written = new Promise<void>((resolve) =>
            inf.write(c, (e) => {
              if (e) feedError ??= e;
              else done = end;
              resolve();
            }),
          );
          inFlight.push(Promise.race([written, closed]));
        }
        await Promise.all(inFlight);
      } catch (e) {
        feedError ??= e;
        inf.destroy(e as Error);
        await Promise.all(inFlight);
      }
    })();
    this.feeding = feeder;
    let produced = 0;
    let complete = false;
    try {
      for await (const chunk of inf as AsyncIterable<Buffer>) {
        produced += chunk.length;
        const batch = this.parser.push(chunk, []);
        if (batch.length) yield batch;
      }
      complete = true;
    } catch (e) {
      stop = true;
      inf.destroy();
      await feeder;
      throw this.inflateError(feedError ?? e);
    } finally {
      stop = true;
      // abandoned by the consumer (a refusal): release the writes still queued in zlib
      if (!complete) inf.destroy();
    }
    await feeder;
    this.feeding = null;
    if (feedError) throw this.inflateError(feedError);
    // give back what follows the deflate data
    const consumed = inf.bytesWritten;
    const rest: Buffer[] = [];
    for (const w of window) {
      const start = w.end - w.buf.length;
      if (w.end > consumed) rest.push(w.buf.subarray(Math.max(0, consumed - start)));
    }
    inf.destroy();
    this.gunzip = null;
    feed.unshift(...rest);
    const trailer = await feed.take(8);
    if (!trailer) throw refuse('MALFORMED', 'the gzip stream is truncated');
    if (trailer.readUInt32LE(4) !== produced % 2 ** 32) throw refuse('MALFORMED', 'corrupt gzip data (incorrect length check)', { zlib: 'Z_DATA_ERROR' });
    return header + consumed + 8;
  }

  /** The rest of the box as one gzip stream (any number of members), through zlib with its checks. */
  private async *gunzipRest(feed: RawFeed, offset: number): AsyncGenerator<TarEvent[]> {
    // a few chunks of read-ahead let inflation (thread pool) overlap hashing (main thread)
    const gunzip = zlib.createGunzip({ chunkSize: CHUNK_SIZE, readableHighWaterMark: 4 * CHUNK_SIZE } as zlib.ZlibOptions);
    this.gunzip = gunzip;
    async function* raw(): AsyncGenerator<Buffer> {
      for (;;) {
        const c = await feed.next();
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
      throw this.inflateError(feedError ?? e);
    } finally {
      input.destroy();
      gunzip.destroy();
    }
    if (feedError) throw toBoxsigError(feedError);
    const consumed = offset + gunzip.bytesWritten;
    if (consumed < this.rawBytes) {
      throw refuse('MALFORMED', `${this.rawBytes - consumed} bytes of trailing data after the end of the gzip stream`, {
        trailing: this.rawBytes - consumed,
      });
    }
  }

  private inflateError(e: unknown): BoxsigError {
    if (e instanceof BoxsigError) return e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('Z_') || code === 'ERR_STREAM_PREMATURE_CLOSE') {
      const msg = /unexpected end of file/.test((e as Error).message) ? 'the gzip stream is truncated' : `corrupt gzip data (${(e as Error).message})`;
      return refuse('MALFORMED', msg, { zlib: code });
    }
    return toBoxsigError(e);
  }
}

/**
 * The raw bytes of a box as a queue that can be read ahead of and pushed back
 * into, so that gzip members can be taken apart without copying the data.
 */
class RawFeed {
  private queue: Buffer[];
  constructor(
    private readonly pull: () => Promise<Buffer | null>,
    first: Buffer,
    private eof: boolean,
  ) {
    this.queue = first.length ? [first] : [];
  }

  async next(): Promise<Buffer | null> {
    const q = this.queue.shift();
    if (q) return q;
    if (this.eof) return null;
    const c = await this.pull();
    if (c === null) this.eof = true;
    return c;
  }

  unshift(...bufs: Buffer[]): void {
    this.queue.unshift(...bufs.filter((b) => b.length));
  }

  /** Drop `n` bytes that are already queued. */
  skip(n: number): void {
    while (n > 0 && this.queue.length) {
      const b = this.queue[0];
      if (b.length <= n) {
        n -= b.length;
        this.queue.shift();
      } else {
        this.queue[0] = b.subarray(n);
        n = 0;
      }
    }
    if (n > 0) throw new BoxsigError('INTERNAL', 'internal error: skipped past the queued bytes');
  }

  /** Make at least `n` bytes available in the first queued buffer (false at the end of input). */
  private async gather(n: number): Promise<boolean> {
    for (;;) {
      const have = this.queue.reduce((a, b) => a + b.length, 0);
      if (have >= n) {
        if (this.queue[0].length < n) this.queue = [Buffer.concat(this.queue)];
        return true;
      }
      if (this.eof) return false;
      const c = await this.pull();
      if (c === null) {
        this.eof = true;
        if (this.queue.length > 1) this.queue = [Buffer.concat(this.queue)];
        return false;
      }
      this.queue.push(c);
    }
  }

  async atEnd(): Promise<boolean> {
    return !(await this.gather(1));
  }

  async startsWithGzip(): Promise<boolean> {
    await this.gather(2);
    const b = this.queue[0];
    return b !== undefined && b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
  }

  /** Take exactly `n` bytes (null when the input ends first). */
  async take(n: number): Promise<Buffer | null> {
    if (!(await this.gather(n))) return null;
    const b = this.queue[0];
    const out = Buffer.from(b.subarray(0, n));
    if (b.length === n) this.queue.shift();
    else this.queue[0] = b.subarray(n);
    return out;
  }

  /** Consume a gzip member header; returns its length. */
  async header(): Promise<number> {
    for (let want = 10; ;) {
      const ok = await this.gather(want);
      const b = this.queue[0] ?? Buffer.alloc(0);
      const len = parseMemberHeader(ok ? b : Buffer.concat(this.queue));
      if (len !== null) {
        this.skip(len);
        return len;
      }
      if (!ok) throw refuse('MALFORMED', 'the gzip stream is truncated');
      want = b.length + 1;
    }
  }
}
