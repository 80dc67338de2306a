/**
 * Where box bytes live: a directory (the embedded default) or an
 * S3-compatible object store. Blobs are content-addressed in the metadata
 * (a blob is its SHA-256, stored once, never modified); each object's key is
 * a unique name fixed before its upload starts, because the hash is known
 * only at the end of the single pass and S3 has no rename — naming objects by
 * hash would cost a server-side copy of every box after its upload.
 */
import type { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { BoxsigError } from '../../errors.js';

export interface BlobWriter {
  readonly key: string;
  /**
   * Append a chunk; resolves when the store can take more (backpressure):
   * callers await it. The store may keep the chunk until it is stored, so its
   * memory must not be reused.
   */
  write(chunk: Buffer): Promise<void> | void;
  /** Make the object complete and durable. */
  finish(): Promise<void>;
  /** Discard whatever was written, complete or not (idempotent, never throws). */
  abort(): Promise<void>;
}

export interface StoredObject {
  key: string;
  modified: Date;
  /** False for an upload in progress (a `.part` file, an S3 multipart upload). */
  complete: boolean;
  /** The S3 multipart upload id of an incomplete object. */
  uploadId?: string;
}

export interface BlobStore {
  readonly description: string;
  /** Whether downloads can be redirected to the store (presigned URLs). */
  readonly presigns: boolean;
  create(key: string): Promise<BlobWriter>;
  read(key: string, start?: number): Promise<{ stream: Readable; size: number }>;
  /** A URL the client can GET (or HEAD) the object from directly, valid for `seconds`. */
  presignedUrl(key: string, seconds: number, method?: 'GET' | 'HEAD'): Promise<string>;
  delete(object: StoredObject | string): Promise<void>;
  /**
   * Delete everything stored under one key: the complete object and every
   * unfinished upload of it (a `.part` file, S3 multipart uploads). Returns
   * how many were found and deleted; a missing key is 0, never an error.
   */
  deleteKey(key: string): Promise<number>;
  /** Every object and unfinished upload (for garbage collection). */
  list(): AsyncIterable<StoredObject>;
  /** Throws when the store cannot be reached (readiness). */
  check(): Promise<void>;
  close(): void;
}

const KEY_RE = /^objects\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A fresh, unique object key. */
export function newObjectKey(): string {
  return `objects/${randomUUID()}`;
}

/** Keys come from the database; a store never touches a key of another shape. */
export function checkKey(key: string): string {
  if (!KEY_RE.test(key)) throw new BoxsigError('INTERNAL', `internal error: ${JSON.stringify(key)} is not an object key of this registry`);
  return key;
}

export function isObjectKey(key: string): boolean {
  return KEY_RE.test(key);
}
