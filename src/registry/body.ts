/**
 * An upload body with a size limit, detachable from the connection: the
 * verifier may stop reading early (a refusal), and destroying what it reads
 * must not destroy the connection, so that the client still gets an answer.
 */
import { PassThrough, type Readable } from 'node:stream';
import { BoxsigError } from '../errors.js';

export interface LimitedBody {
  stream: Readable;
  /** Whether the client's body was read to its end. */
  readonly ended: boolean;
  /** Fail the stream (shutdown, a lease lost): the verifier sees this error. */
  fail(err: BoxsigError): void;
  /** Read and discard whatever the client still sends (bounded by the limit); resolves at its end. */
  drain(): Promise<boolean>;
}

export function limitedBody(req: Readable, max: number, what = 'the box'): LimitedBody {
  const stream = new PassThrough({ highWaterMark: 1024 * 1024 });
  let total = 0;
  let ended = false;
  let over = false;
  const onData = (chunk: Buffer) => {
    total += chunk.length;
    if (total > max && !over) {
      over = true;
      stream.destroy(new BoxsigError('LIMIT', `${what} is larger than this registry accepts (${max} bytes)`, { status: 413, limit: max }));
      req.unpipe(stream);
      req.pause();
    }
  };
  req.on('data', onData);
  req.once('end', () => (ended = true));
  req.once('error', (e) => stream.destroy(new BoxsigError('NETWORK', `the upload was interrupted: ${e.message}`)));
  req.once('aborted', () => stream.destroy(new BoxsigError('NETWORK', 'the client closed the connection before the end of the upload')));
  req.pipe(stream);
  return {
    stream,
    get ended() {
      return ended;
    },
    fail(err: BoxsigError) {
      req.unpipe(stream);
      stream.destroy(err);
    },
    drain(): Promise<boolean> {
      req.unpipe(stream);
      if (ended) return Promise.resolve(true);
      if (over || req.destroyed) return Promise.resolve(false);
      return new Promise((resolve) => {
        const done = (ok: boolean) => {
          req.off('end', onEnd);
          req.off('close', onClose);
          req.off('data', check);
          resolve(ok);
        };
        const onEnd = () => done(true);
        const onClose = () => done(ended);
        const check = () => {
          if (over) {
            req.destroy();
            done(false);
          }
        };
        req.on('end', onEnd);
        req.on('close', onClose);
        req.on('data', check);
        req.resume();
      });
    },
  };
}
