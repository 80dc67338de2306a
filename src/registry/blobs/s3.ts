/**
 * Blobs in an S3-compatible object store (AWS S3, Ceph RGW, OpenStack Swift
 * with s3api, Garage …): multipart uploads through @aws-sdk/lib-storage fed
 * while the box is verified, presigned GETs for downloads. Credentials come
 * from the SDK's usual chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * profiles, instance roles).
 *
 * Swift's s3api refuses the SDK's default streaming checksums ("aws-chunked
 * is not supported"): checksums are sent only when an operation requires
 * them, and paths are bucket-style (`forcePathStyle`).
 */
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
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
}

/** 8 MiB parts, 4 in flight: at most 32 MiB of box in memory per upload; 10,000 parts allow 80 GiB. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 4;

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

/** SigV4 takes the payload hash from this header when it is present, instead of hashing the body. */
const unsignedParts: BuildMiddleware<object, MetadataBearer> = (next, context) => async (args) => {
  const req = args.request as { headers?: Record<string, string> };
  if (context.commandName === 'UploadPartCommand' && req.headers) req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  return next(args);
};

export class S3BlobStore implements BlobStore {
  readonly description: string;
  readonly presigns = true;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

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
    });
    if (opts.signPayloads !== 'always' && !signsPayloads(opts.endpoint))
      this.client.middlewareStack.add(unsignedParts, { step: 'build', name: 'boxsigUnsignedParts' });
  }

  private objectName(key: string): string {
    return this.prefix + checkKey(key);
  }

  async create(key: string): Promise<BlobWriter> {
    return new S3Writer(key, this.client, this.bucket, this.objectName(key));
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

class S3Writer implements BlobWriter {
  private readonly body = new PassThrough({ highWaterMark: 1024 * 1024 });
  private readonly upload: Upload;
  private readonly done: Promise<unknown>;
  private failure: unknown = null;
  private finished = false;

  constructor(
    readonly key: string,
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly name: string,
  ) {
    this.upload = new Upload({
      client,
      params: { Bucket: bucket, Key: name, Body: this.body, ContentType: 'application/octet-stream' },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    this.done = this.upload.done().catch((e) => {
      this.failure = e;
      this.body.destroy();
      throw e;
    });
    this.done.catch(() => undefined);
  }

  write(chunk: Buffer): Promise<void> | void {
    if (this.failure) throw s3Error(`uploading ${this.key}`, this.failure);
    if (this.body.write(chunk)) return;
    return new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.body.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.body.off('drain', onDrain);
        reject(s3Error(`uploading ${this.key}`, this.failure ?? new Error('the upload stream closed')));
      };
      this.body.once('drain', onDrain);
      this.body.once('close', onClose);
    });
  }

  async finish(): Promise<void> {
    this.body.end();
    try {
      await this.done;
    } catch (e) {
      throw s3Error(`uploading ${this.key}`, e);
    }
    this.finished = true;
  }

  async abort(): Promise<void> {
    if (!this.finished) {
      this.body.destroy();
      await this.upload.abort().catch(() => undefined);
      await this.done.catch(() => undefined);
    }
    // a finished (or just-finishing) object is deleted; a missing one is fine
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.name })).catch(() => undefined);
  }
}
