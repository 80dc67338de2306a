/**
 * `boxsig registry serve`: open the engines, listen, collect garbage
 * periodically, and shut down gracefully — on SIGTERM or SIGINT the process
 * stops being ready, stops accepting requests, lets uploads in flight finish
 * for the grace period, then discards what is left (nothing half published:
 * an upload is published by one transaction or not at all). A second signal
 * discards the uploads at once.
 */
import type { FastifyInstance } from 'fastify';
import type { RegistryConfig } from './config.js';
import { collectGarbage } from './gc.js';
import { buildApp } from './http.js';
import { openRegistry } from './open.js';
import type { Log, Registry } from './registry.js';

/** How long discarded uploads have to receive their 503 before their connections are closed. */
const CLOSE_AFTER_ABORT_MS = 2000;

export interface RunningRegistry {
  url: string;
  app: FastifyInstance;
  reg: Registry;
  /** Graceful shutdown (what SIGTERM does). */
  stop(reason?: string): Promise<void>;
}

export interface ServeOptions {
  /** JSON log lines to stdout (default), or silent. */
  log?: boolean;
  /** Install SIGTERM/SIGINT handlers (the CLI does). */
  signals?: boolean;
}

function loggerOptions(config: RegistryConfig) {
  return {
    level: config.logLevel,
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '…' },
    base: { pid: process.pid, service: 'boxsig-registry' },
  };
}

export async function serve(config: RegistryConfig, opts: ServeOptions = {}): Promise<RunningRegistry> {
  const logEnabled = opts.log ?? true;
  // the app is built first so that the registry logs through its logger
  // eslint-disable-next-line prefer-const -- assigned once, below, but the logger closes over it first
  let app!: FastifyInstance;
  const log: Log = {
    info: (o, m) => app?.log.info(o, m),
    warn: (o, m) => app?.log.warn(o, m),
    error: (o, m) => app?.log.error(o, m),
  };
  const reg = await openRegistry(config, log);
  let storeCheckedAt = 0;
  app = buildApp(reg, {
    logger: logEnabled ? loggerOptions(config) : false,
    ready: async () => {
      if (Date.now() - storeCheckedAt < 5000) return;
      await reg.blobs.check();
      storeCheckedAt = Date.now();
    },
  });
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (e) {
    await reg.close();
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  app.log.info({ url, database: reg.db.description, blobs: reg.blobs.description, publicUrl: config.publicUrl }, 'registry listening');

  const gc = startGc(reg, config);
  let stopping: Promise<void> | null = null;
  const stop = (reason = 'stop requested'): Promise<void> => {
    if (stopping) {
      reg.abortUploads('the registry is stopping now; upload again');
      app.server.closeAllConnections();
      return stopping;
    }
    stopping = (async () => {
      reg.closing = true;
      app.log.info({ reason, uploadsInFlight: reg.uploadsInFlight, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
      // after the grace period: uploads are discarded (their clients get 503), then every connection
      // still open — an unfinished request, a slow reader — is closed, so that close() can end
      let last: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        reg.abortUploads('the registry is shutting down; upload again');
        last = setTimeout(() => app.server.closeAllConnections(), CLOSE_AFTER_ABORT_MS);
      }, config.shutdownGraceSeconds * 1000);
      try {
        await app.close();
        // an upload discarded at the end of the grace period is recorded as failed before the database closes
        await reg.quiesce();
      } finally {
        clearTimeout(timer);
        clearTimeout(last);
        gc.stop();
        await reg.close();
      }
      app.log.info({}, 'stopped');
    })();
    return stopping;
  };
  if (opts.signals) {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void stop(sig));
  }
  return { url, app, reg, stop };
}

function startGc(reg: Registry, config: RegistryConfig): { stop(): void } {
  if (!config.gcIntervalSeconds) return { stop() {} };
  let running = false;
  const run = async () => {
    if (running || reg.closing) return;
    running = true;
    try {
      await collectGarbage(reg.db, reg.blobs, { leaseSeconds: config.leaseSeconds, graceSeconds: config.gcGraceSeconds }, reg.log);
    } catch (e) {
      reg.log.warn({ err: (e as Error).message }, 'garbage collection failed');
    } finally {
      running = false;
    }
  };
  // jittered, so that several processes do not collect in step
  const every = config.gcIntervalSeconds * 1000;
  const timer = setInterval(() => void run(), every * (0.75 + Math.random() * 0.5));
  timer.unref();
  const first = setTimeout(() => void run(), Math.min(every, 5000));
  first.unref();
  return {
    stop() {
      clearInterval(timer);
      clearTimeout(first);
    },
  };
}
