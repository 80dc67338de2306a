/**
 * Blobs in an S3-compatible object store (AWS S3, Ceph RGW, OpenStack Swift
 * with s3api, Garage …): multipart uploads fed while the box is verified
 * (S3Writer), presigned GETs for downloads. Credentials come
 * from the SDK's usual chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * profiles, instance roles).
 *
 * Swift's s3api refuses the SDK's default streaming checksums ("aws-chunked
 * is not supported"): checksums are sent only when an operation requires
 * them, and paths are bucket-style (`forcePathStyle`).
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { BuildMiddleware, MetadataBearer } from '@smithy/types';
import { BoxsigError } from '../../errors.js';
import { checkKey, isObjectKey, type BlobStore, type BlobWriter, type StoredObject } from './store.js';

export interface S3Options {
  endpoint?: string;
  bucket: string;
  region: string;
  /** Key prefix inside the bucket (several registries may share one bucket). */
  prefix?: string;
  forcePathStyle?: boolean;
  /** 'always': every part carries its SHA-256 in its signature, whatever the endpoint (default 'auto': signsPayloads). */
  signPayloads?: 'auto' | 'always';
  /** The largest object the registry may write (its box size limit): sets the part size (partSizeFor). */
  largestObject?: number;
  /** A request whose connection is silent this long fails (and may be sent again); default 60 s. */
  idleTimeoutMs?: number;
}

/**
 * Parts of at least 8 MiB, 4 in flight: at most about 40 MiB of box in memory
 * per upload (the parts in flight and the one being gathered). A part whose
 * store did not answer is sent up to 3 times.
 */
const MiB = 1024 * 1024;
const PART_SIZE = 8 * MiB;
const QUEUE_SIZE = 4;
/**
 * S3 allows 10,000 parts per upload. A part is never shorter than the part
 * size (but the last), so an object of the largest size takes at most 9,000;
 * the rest is room for what an escrow signature adds to a box.
 */
const MAX_PARTS = 9_000;

/**
 * The part size for objects up to `largest` bytes: 8 MiB, or more when
 * 9,000 parts of 8 MiB (about 70 GiB) would not hold the largest box the
 * registry accepts (its `maxBoxBytes`).
 */
export function partSizeFor(largest: number | undefined): number {
  if (!largest || largest <= PART_SIZE * MAX_PARTS) return PART_SIZE;
  return Math.ceil(largest / MAX_PARTS / MiB) * MiB;
}
const ATTEMPTS = 3;
/**
 * A chunk is kept as it came (no copy) unless it is smaller than this: small
 * chunks are copied together, so that a part is at most a few hundred
 * buffers whatever size the client's writes arrive in (a client trickling
 * bytes would otherwise have the registry keep a buffer per byte).
 */
const SMALL_CHUNK = 16 * 1024;
const GATHER_SIZE = 256 * 1024;

function s3Error(what: string, e: unknown): BoxsigError {
  if (e instanceof BoxsigError) return e;
  const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const status = err.$metadata?.httpStatusCode;
  if (err.name === 'NoSuchKey' || status === 404) return new BoxsigError('NOT_FOUND', `${what}: not found in the object store`);
  if (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.name === 'TimeoutError') {
    return new BoxsigError('UNAVAILABLE', `${what}: the object store is not reachable (${err.message})`);
  }
  return new BoxsigError('IO', `${what}: ${err.name ?? 'error'}: ${err.message ?? String(e)}${status ? ` (HTTP ${status})` : ''}`);
}

/**
 * Whether the parts of an upload carry the SHA-256 of their bytes in their
 * SigV4 signature. That hash guards the bytes on the wire, and costs the
 * registry a second SHA-256 of every box (it already hashes each box once,
 * for its address). TLS (https, the default AWS endpoint) and loopback (no
 * wire) guard them already: their parts are sent as UNSIGNED-PAYLOAD. Plain
 * http to another host keeps the hash. Every download is checked against
 * the box's SHA-256 by its client all the same.
 */
export function signsPayloads(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  const u = new URL(endpoint);
  if (u.protocol === 'https:') return false;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return !(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host));
}

export class S3BlobStore implements BlobStore {
  readonly description: string;
  readonly presigns = true;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  /** Whether each part's SHA-256 is in its signature (signsPayloads). */
  readonly signParts: boolean;
  /** Bytes at which an upload's chunks are sent as a part (partSizeFor). */
  readonly partSize: number;

  constructor(opts: S3Options) {
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ? opts.prefix.replace(/\/*$/, '/') : '';
    this.description = `s3://${opts.bucket}/${this.prefix}${opts.endpoint ? ` at ${opts.endpoint}` : ''}`;
    // the SDK is pinned on purpose (later releases need Node 22): its Node-version notice is noise in the registry's log
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      region: opts.region,
      forcePathStyle: opts.forcePathStyle ?? true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // a store that stops answering fails the request instead of holding its upload (and shutdown) for ever
      requestHandler: { connectionTimeout: 10_000, socketTimeout: opts.idleTimeoutMs ?? 60_000 },
      logger: sdkLogger,
    });
    this.signParts = opts.signPayloads === 'always' || signsPayloads(opts.endpoint);
    this.partSize = partSizeFor(opts.largestObject);
  }

  private objectName(key: string): string {
    return this.prefix + checkKey(key);
  }

  async create(key: string): Promise<BlobWriter> {
    return new S3Writer(key, this.client, this.bucket, this.objectName(key), this.signParts, this.partSize);
  }

  async read(key: string, start = 0): Promise<{ stream: Readable; size: number }> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectName(key), ...(start ? { Range: `bytes=${start}-` } : {}) }),
      );
      const total = r.ContentRange ? Number(r.ContentRange.split('/')[1]) : Number(r.ContentLength ?? 0);
      return { stream: r.Body as Readable, size: total };
    } catch (e) {
      throw s3Error(`object ${key}`, e);
    }
  }

  async presignedUrl(key: string, seconds: number, method: 'GET' | 'HEAD' = 'GET'): Promise<string> {
    const input = { Bucket: this.bucket, Key: this.objectName(key) };
    // a presigned URL is valid for one method: a HEAD redirected to a GET URL is refused (403)
    const command = method === 'HEAD' ? new HeadObjectCommand(input) : new GetObjectCommand(input);
    return getSignedUrl(this.client, command, { expiresIn: seconds });
  }

  async delete(object: StoredObject | string): Promise<void> {
    const o: StoredObject = typeof object === 'string' ? { key: object, complete: true, modified: new Date() } : object;
    try {
      if (!o.complete && o.uploadId) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectName(o.key), UploadId: o.uploadId }));
      } else {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectName(o.key) }));
      }
    } catch (e) {
      const err = s3Error(`deleting ${o.key}`, e);
      if (err.code !== 'NOT_FOUND') throw err;
    }
  }

  async deleteKey(key: string): Promise<number> {
    const name = this.objectName(key);
    let n = 0;
    try {
      // the object's own name is a prefix of no other key (keys are fixed-length UUIDs)
      const objects = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: name, MaxKeys: 10 }));
      if ((objects.Contents ?? []).some((o) => o.Key === name)) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: name }));
        n++;
      }
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      do {
        const r = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: name, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
        );
        for (const u of r.Uploads ?? []) {
          if (u.Key !== name || !u.UploadId) continue;
          await this.delete({ key, complete: false, uploadId: u.UploadId, modified: u.Initiated ?? new Date(0) });
          n++;
        }
        keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
        idMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
      } while (keyMarker);
    } catch (e) {
      const err = s3Error(`deleting ${key}`, e);
      if (err.code !== 'NOT_FOUND') throw err;
    }
    return n;
  }

  async *list(): AsyncIterable<StoredObject> {
    const Prefix = `${this.prefix}objects/`;
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken: token })).catch((e) => {
        throw s3Error('listing objects', e);
      });
      for (const o of r.Contents ?? []) {
        const key = (o.Key ?? '').slice(this.prefix.length);
        if (isObjectKey(key)) yield { key, modified: o.LastModified ?? new Date(0), complete: true };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const r = await this.client
        .send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }))
        .catch((e) => {
          throw s3Error('listing multipart uploads', e);
        });
      for (const u of r.Uploads ?? []) {
        const key = (u.Key ?? '').slice(this.prefix.length);
        if (isObjectKey(key) && u.UploadId) yield { key, modified: u.Initiated ?? new Date(0), complete: false, uploadId: u.UploadId };
      }
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      idMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      throw s3Error(`bucket ${this.bucket}`, e);
    }
  }

  close(): void {
    this.client.destroy();
  }
}

/**
 * The SDK says nothing: each failure reaches the writer as an error (and the
 * registry's log from there). Without a logger of its own, the SDK would
 * print a warning on the console for every part that fails ("non-retryable
 * streaming request": the writer sends parts again itself).
 */
const sdkLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** How long abort() waits for each cleanup request; what it leaves is garbage collection's (gc.ts). */
const CLEANUP_MS = 15_000;

/** Whether a failed request is worth sending again: no answer, a server error, throttling. */
function retryable(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (err.name === 'AbortError') return false;
  const status = err.$metadata?.httpStatusCode;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

/** Sets the payload hash SigV4 signs: the part's SHA-256, or UNSIGNED-PAYLOAD. */
function payloadHash<I extends object, O extends MetadataBearer>(value: string): BuildMiddleware<I, O> {
  return (next) => async (args) => {
    const req = args.request as { headers?: Record<string, string> };
    if (req.headers) req.headers['x-amz-content-sha256'] = value;
    return next(args);
  };
}

/**
 * A multipart upload fed chunk by chunk, without copying: a part is the
 * chunks received since the last one, sent as soon as they reach the part size
 * (S3 needs every part but the last to be at least 5 MiB, not equal sizes).
 * lib-storage's Upload joined the chunks of every part into one new buffer,
 * a copy of every box that cost more CPU than its SHA-256 (only chunks
 * under SMALL_CHUNK are copied here). A box smaller
 * than a part is one PutObject. A part is sent again (up to ATTEMPTS) when
 * the store did not answer or answered with a server error: the SDK does not
 * retry a streamed body, and the part's chunks are kept until it is stored.
 */
class S3Writer implements BlobWriter {
  private chunks: Buffer[] = [];
  /** Bytes of the next part (in chunks and gathered). */
  private buffered = 0;
  private gather: Buffer | null = null;
  private gathered = 0;
  /** Bytes written in all. */
  private written = 0;
  private partHash: Hash | null;
  private partCount = 0;
  private readonly parts: Array<{ PartNumber: number; ETag: string }> = [];
  private uploadId: Promise<string> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly aborter = new AbortController();
  /** Settles when abort() is called (so that nothing waits on a store that no longer matters). */
  private readonly aborted = new Promise<void>((resolve) => this.aborter.signal.addEventListener('abort', () => resolve(), { once: true }));
  private failure: unknown = null;
  private state: 'open' | 'finishing' | 'finished' | 'aborted' = 'open';

  constructor(
    readonly key: string,
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly name: string,
    private readonly signParts: boolean,
    private readonly partSize: number,
  ) {
    this.partHash = signParts ? createHash('sha256') : null;
  }

  private check(): void {
    if (this.failure) throw s3Error(`uploading ${this.key}`, this.failure);
    if (this.aborter.signal.aborted) throw new BoxsigError('IO', `uploading ${this.key}: the upload was discarded`);
    if (this.state !== 'open') throw new BoxsigError('INTERNAL', `internal error: ${this.key} is ${this.state}`);
  }

  write(chunk: Buffer): Promise<void> | void {
    this.check();
    if (chunk.length === 0) return;
    if (chunk.length < SMALL_CHUNK) {
      if (this.gathered + chunk.length > GATHER_SIZE) this.flushGathered();
      this.gather ??= Buffer.allocUnsafeSlow(GATHER_SIZE);
      chunk.copy(this.gather, this.gathered);
      this.gathered += chunk.length;
    } else {
      this.flushGathered();
      this.chunks.push(chunk);
    }
    this.buffered += chunk.length;
    this.written += chunk.length;
    this.partHash?.update(chunk);
    if (this.buffered < this.partSize) return;
    this.sendPart();
    if (this.inFlight.size >= QUEUE_SIZE) return this.room();
  }

  /** Backpressure: resolves when a part in flight is stored; rejects when the upload failed or was aborted. */
  private async room(): Promise<void> {
    await Promise.race([...this.inFlight, this.aborted]);
    this.check();
  }

  /** Small chunks gathered so far become one chunk of the part, copied out (the gathering buffer is reused). */
  private flushGathered(): void {
    if (this.gathered === 0) return;
    this.chunks.push(Buffer.from(this.gather!.subarray(0, this.gathered)));
    this.gathered = 0;
  }

  private takeBuffered(): { chunks: Buffer[]; size: number; sha256: string | null } {
    this.flushGathered();
    const taken = { chunks: this.chunks, size: this.buffered, sha256: this.partHash?.digest('hex') ?? null };
    this.chunks = [];
    this.buffered = 0;
    this.partHash = this.signParts ? createHash('sha256') : null;
    return taken;
  }

  private sendPart(): void {
    const { chunks, size, sha256 } = this.takeBuffered();
    const PartNumber = ++this.partCount;
    const sent = (async () => {
      try {
        const UploadId = await this.start();
        const out = await this.send(
          (Body) => new UploadPartCommand({ Bucket: this.bucket, Key: this.name, UploadId, PartNumber, Body, ContentLength: size }),
          chunks,
          sha256,
        );
        if (!out.ETag) throw new Error(`the store gave no ETag for part ${PartNumber}`);
        this.parts.push({ PartNumber, ETag: out.ETag });
      } catch (e) {
        this.failure ??= e;
      }
    })();
    this.inFlight.add(sent);
    void sent.then(() => this.inFlight.delete(sent));
  }

  /** The multipart upload, created once, with the first part (never aborted halfway: abort() aborts what it created). */
  private start(): Promise<string> {
    this.uploadId ??= this.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.name, ContentType: 'application/octet-stream' }), {
        abortSignal: this.aborter.signal,
      })
      .then((r) => {
        if (!r.UploadId) throw new Error('the store gave no upload id');
        return r.UploadId;
      });
    return this.uploadId;
  }

  private async send(
    make: (body: Readable | string) => UploadPartCommand | PutObjectCommand,
    chunks: Buffer[],
    sha256: string | null,
  ): Promise<{ ETag?: string }> {
    for (let attempt = 1; ; attempt++) {
      const command = make(chunks.length ? Readable.from(chunks) : '');
      const hash = sha256 ?? 'UNSIGNED-PAYLOAD';
      const step = { step: 'build', name: 'boxsigPayloadHash' } as const;
      const options = { abortSignal: this.aborter.signal };
      try {
        if (command instanceof UploadPartCommand) {
          command.middlewareStack.add(payloadHash(hash), step);
          return await this.client.send(command, options);
        }
        command.middlewareStack.add(payloadHash(hash), step);
        return await this.client.send(command, options);
      } catch (e) {
        if (attempt >= ATTEMPTS || this.aborter.signal.aborted || !retryable(e)) throw e;
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 200 * attempt)), this.aborted]);
      }
    }
  }

  async finish(): Promise<void> {
    this.check();
    this.state = 'finishing';
    try {
      if (this.partCount === 0) {
        const { chunks, size, sha256 } = this.takeBuffered();
        await this.send(
          (Body) => new PutObjectCommand({ Bucket: this.bucket, Key: this.name, Body, ContentLength: size, ContentType: 'application/octet-stream' }),
          chunks,
          sha256,
        );
      } else {
        if (this.buffered > 0) this.sendPart();
        await Promise.all([...this.inFlight]);
        if (this.failure) throw this.failure;
        const UploadId = await this.start();
        const Parts = [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber);
        await this.complete(UploadId, Parts);
      }
      // abort() meanwhile deleted what was stored
      if (this.aborter.signal.aborted) throw new BoxsigError('IO', `uploading ${this.key}: the upload was discarded`);
    } catch (e) {
      this.failure ??= e;
      throw s3Error(`uploading ${this.key}`, e);
    }
    this.state = 'finished';
  }

  private async complete(UploadId: string, Parts: Array<{ PartNumber: number; ETag: string }>): Promise<void> {
    try {
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.name, UploadId, MultipartUpload: { Parts } }), {
        abortSignal: this.aborter.signal,
      });
    } catch (e) {
      // the store completed it but its answer was lost: the SDK sent it again, and the upload is gone
      if ((e as { name?: string }).name !== 'NoSuchUpload' || this.aborter.signal.aborted) throw e;
      const head = await this.client
        .send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.name }), { abortSignal: this.aborter.signal })
        .catch(() => null);
      if (head?.ContentLength !== this.written) throw e;
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'finished' && this.state !== 'aborted') {
      this.state = 'aborted';
      this.aborter.abort();
      this.chunks = [];
      this.gather = null;
      this.gathered = 0;
      await Promise.all([...this.inFlight]);
      const UploadId = await this.uploadId?.catch(() => null);
      if (UploadId) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.name, UploadId }), { abortSignal: AbortSignal.timeout(CLEANUP_MS) })
          .catch(() => undefined);
      }
    }
    // a finished (or just-finishing) object is deleted; a missing one is fine
    await this.client
      .send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.name }), { abortSignal: AbortSignal.timeout(CLEANUP_MS) })
      .catch(() => undefined);
  }
}
