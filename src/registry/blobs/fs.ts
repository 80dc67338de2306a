/**
 * Blobs in a directory (the embedded default): `DIR/blobs/objects/<uuid>`.
 * An object is written as `<uuid>.part` with several positional writes in
 * flight (so that disk writes overlap the verification), fsynced, then renamed
 * to its final name: a complete name is always a complete object.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BoxsigError, ioError } from '../../errors.js';
import { CHUNK_SIZE } from '../../shared/limits.js';
import { fsyncDir, makeDirs } from '../../shared/files.js';
import { checkKey, isObjectKey, type BlobStore, type BlobWriter, type StoredObject } from './store.js';

const PART = '.part';
const MAX_IN_FLIGHT = 8;

export class FsBlobStore implements BlobStore {
  readonly description: string;
  readonly presigns = false;
  private readonly root: string;

  constructor(dir: string) {
    this.root = path.join(path.resolve(dir), 'blobs');
    this.description = `directory ${this.root}`;
    makeDirs(path.join(this.root, 'objects'), 0o700);
  }

  private file(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  async create(key: string): Promise<BlobWriter> {
    const final = this.file(key);
    const part = final + PART;
    const fh = await fs.promises.open(part, 'wx', 0o640).catch((e) => {
      throw ioError(`cannot create ${part}`, e);
    });
    return new FsWriter(key, fh, part, final);
  }

  async read(key: string, start = 0): Promise<{ stream: Readable; size: number }> {
    const file = this.file(key);
    let size: number;
    try {
      size = (await fs.promises.stat(file)).size;
    } catch (e) {
      throw new BoxsigError('NOT_FOUND', `the stored object ${key} is missing`, { errno: (e as NodeJS.ErrnoException).code });
    }
    return { stream: fs.createReadStream(file, { start, highWaterMark: CHUNK_SIZE }), size };
  }

  async presignedUrl(): Promise<string> {
    throw new BoxsigError('INTERNAL', 'internal error: a directory store cannot presign URLs');
  }

  async delete(object: StoredObject | string): Promise<void> {
    const key = typeof object === 'string' ? object : object.key;
    const file = this.file(key);
    await fs.promises.rm(file, { force: true });
    await fs.promises.rm(file + PART, { force: true });
  }

  async deleteKey(key: string): Promise<number> {
    const file = this.file(key);
    let n = 0;
    for (const f of [file, file + PART]) {
      try {
        await fs.promises.rm(f);
        n++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot delete ${f}`, e);
      }
    }
    return n;
  }

  async *list(): AsyncIterable<StoredObject> {
    const dir = path.join(this.root, 'objects');
    for (const name of await fs.promises.readdir(dir)) {
      const complete = !name.endsWith(PART);
      const key = `objects/${complete ? name : name.slice(0, -PART.length)}`;
      if (!isObjectKey(key)) continue;
      try {
        const st = await fs.promises.stat(path.join(dir, name));
        yield { key, modified: st.mtime, complete };
      } catch {
        // deleted meanwhile
      }
    }
  }

  async check(): Promise<void> {
    await fs.promises.access(path.join(this.root, 'objects'), fs.constants.W_OK).catch((e) => {
      throw ioError(`the blob directory ${this.root} is not writable`, e);
    });
  }

  close(): void {}
}

class FsWriter implements BlobWriter {
  private position = 0;
  private inflight: Promise<void>[] = [];
  private failure: unknown = null;
  private closed = false;

  constructor(
    readonly key: string,
    private readonly fh: fs.promises.FileHandle,
    private readonly part: string,
    private readonly final: string,
  ) {}

  write(chunk: Buffer): Promise<void> | void {
    if (this.failure) throw ioError(`cannot write ${this.part}`, this.failure);
    const at = this.position;
    this.position += chunk.length;
    this.inflight.push(this.writeAt(chunk, at).catch((e) => void (this.failure ??= e)));
    if (this.inflight.length >= MAX_IN_FLIGHT) return this.inflight.shift();
  }

  private async writeAt(chunk: Buffer, at: number): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, at + off);
      off += bytesWritten;
    }
  }

  async finish(): Promise<void> {
    await Promise.all(this.inflight);
    this.inflight = [];
    if (this.failure) throw ioError(`cannot write ${this.part}`, this.failure);
    try {
      await this.fh.sync();
      await this.close();
      await fs.promises.rename(this.part, this.final);
      fsyncDir(this.final);
    } catch (e) {
      throw ioError(`cannot store ${this.final}`, e);
    }
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.inflight);
    await this.close().catch(() => undefined);
    await fs.promises.rm(this.part, { force: true }).catch(() => undefined);
    await fs.promises.rm(this.final, { force: true }).catch(() => undefined);
  }
}
