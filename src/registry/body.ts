/**
 * An upload body with a size limit and an idle limit, detachable from the
 * connection: the verifier may stop reading early (a refusal), and
 * destroying what it reads must not destroy the connection, so that the
 * client still gets an answer.
 */
import { PassThrough, type Readable } from 'node:stream';
import { BoxsigError } from '../errors.js';

export interface LimitedBody {
  stream: Readable;
  /** Whether the client's body was read to its end. */
  readonly ended: boolean;
  /** Fail the upload (shutdown): the verifier sees this error, a drain in progress stops, the connection is dropped. */
  fail(err: BoxsigError): void;
  /** The body's failure (the size or idle limit, a broken connection, fail()), once it failed. */
  readonly failure: BoxsigError | null;
  /** Call `cb` once, when the body fails (at once if it already has), even after its end (fail() at shutdown). */
  onFailure(cb: (err: BoxsigError) => void): void;
  /**
   * Read and discard whatever the client still sends (bounded by the size
   * and idle limits), so that it reads the answer; resolves at its end, or
   * false when the connection had to be dropped.
   */
  drain(): Promise<boolean>;
}

// long: one closure holds the body's counters, its idle timer, its failure and its drain, which every handler below shares
export function limitedBody(req: Readable, max: number, idleMs: number, what = 'the box'): LimitedBody {
  const stream = new PassThrough({ highWaterMark: 1024 * 1024 });
  let total = 0;
  let ended = false;
  let over = false;
  let failed = false;
  let stopDrain: (() => void) | null = null;
  let failure: BoxsigError | null = null;
  const failureHooks: Array<(err: BoxsigError) => void> = [];
  const failWith = (e: unknown) => {
    if (failure) return;
    failure = e instanceof BoxsigError ? e : new BoxsigError('NETWORK', `the upload was interrupted: ${(e as Error).message}`);
    for (const cb of failureHooks.splice(0)) cb(failure);
  };
  // Always listened to: the body may fail before anything reads it (a client that resets at once), and an
  // 'error' without a listener would end the process.
  stream.on('error', failWith);
  const dropConnection = (err: BoxsigError) => {
    failWith(err);
    failed = true;
    req.unpipe(stream);
    stream.destroy(err);
    stopDrain?.();
    req.destroy();
  };
  let idle: NodeJS.Timeout | null = null;
  const touch = () => {
    if (idle) clearTimeout(idle);
    if (ended || failed || !idleMs) return;
    idle = setTimeout(() => dropConnection(new BoxsigError('NETWORK', `the client sent nothing for ${Math.round(idleMs / 1000)} s`)), idleMs);
    idle.unref();
  };
  const onData = (chunk: Buffer) => {
    total += chunk.length;
    touch();
    if (total > max && !over) {
      over = true;
      req.unpipe(stream);
      req.pause();
      stream.destroy(new BoxsigError('LIMIT', `${what} is larger than this registry accepts (${max} bytes)`, { status: 413, limit: max }));
      stopDrain?.();
    }
  };
  req.on('data', onData);
  req.once('end', () => {
    ended = true;
    if (idle) clearTimeout(idle);
  });
  req.once('error', (e) => stream.destroy(new BoxsigError('NETWORK', `the upload was interrupted: ${e.message}`)));
  req.once('close', () => {
    if (idle) clearTimeout(idle);
    if (!ended) stream.destroy(new BoxsigError('NETWORK', 'the client closed the connection before the end of the upload'));
  });
  req.pipe(stream);
  touch();
  return {
    stream,
    get ended() {
      return ended;
    },
    fail: dropConnection,
    get failure() {
      return failure;
    },
    onFailure(cb) {
      if (failure) queueMicrotask(() => cb(failure!));
      else failureHooks.push(cb);
    },
    drain(): Promise<boolean> {
      req.unpipe(stream);
      if (ended) return Promise.resolve(true);
      if (over || failed || req.destroyed) return Promise.resolve(false);
      return new Promise((resolve) => {
        const done = (ok: boolean) => {
          stopDrain = null;
          req.off('end', onEnd);
          req.off('close', onClose);
          resolve(ok);
        };
        const onEnd = () => done(true);
        const onClose = () => done(ended);
        stopDrain = () => done(false);
        req.on('end', onEnd);
        req.on('close', onClose);
        touch();
        req.resume();
      });
    },
  };
}
