/**
 * HTTP(S) with Node's built-in fetch. Node 20's fetch ignores the usual proxy
 * variables, so requests go through undici's EnvHttpProxyAgent (HTTP_PROXY,
 * HTTPS_PROXY, NO_PROXY, lower-case too), which also carries the timeouts and
 * TLS options. Errors become NETWORK errors a person can act on.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { BoxsigError, describeCause } from '../errors.js';

export interface HttpOptions {
  /** Accept any TLS certificate (like `vagrant box add --insecure`). */
  insecure?: boolean;
  /** Extra CA certificate file (PEM). */
  caCert?: string;
  /** Seconds for connecting and for each wait for data (default 30, or BOXSIG_HTTP_TIMEOUT). */
  timeout?: number;
}

export interface HttpResponse {
  status: number;
  url: string;
  contentType: string;
  size: number | undefined;
  body: Readable;
}

let dispatcherCache: { key: string; dispatcher: unknown } | null = null;

async function dispatcher(opts: HttpOptions): Promise<unknown> {
  const timeout = (opts.timeout ?? Number(process.env.BOXSIG_HTTP_TIMEOUT ?? 30)) * 1000;
  const key = JSON.stringify([opts.insecure, opts.caCert, timeout]);
  if (dispatcherCache?.key === key) return dispatcherCache.dispatcher;
  quietUndiciWarning();
  const { EnvHttpProxyAgent } = await import('undici');
  const connect: Record<string, unknown> = { timeout };
  if (opts.insecure) connect.rejectUnauthorized = false;
  if (opts.caCert) {
    const tls = await import('node:tls');
    connect.ca = [...tls.rootCertificates, fs.readFileSync(opts.caCert, 'utf8')];
  }
  const d = new EnvHttpProxyAgent({ connect, headersTimeout: timeout, bodyTimeout: Math.max(timeout, 60_000) });
  dispatcherCache = { key, dispatcher: d };
  return d;
}

/** EnvHttpProxyAgent announces itself as experimental on every run; that is noise for users. */
function quietUndiciWarning(): void {
  const original = process.emitWarning;
  if ((original as { boxsigQuiet?: boolean }).boxsigQuiet) return;
  const quiet = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'UNDICI-EHPA') return;
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  (quiet as { boxsigQuiet?: boolean }).boxsigQuiet = true;
  process.emitWarning = quiet;
}

const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS|ERR_SSL|HOSTNAME_MISMATCH|ERR_OSSL)/;

export function networkError(url: string, e: unknown): BoxsigError {
  if (e instanceof BoxsigError) return e;
  const err = e as Error & { cause?: unknown };
  const cause = (err.cause ?? err) as NodeJS.ErrnoException;
  const code = cause?.code ?? '';
  const host = safeHost(url);
  let message: string;
  if (TLS_CODES.test(code) || /certificate|SSL|TLS/i.test(cause?.message ?? '')) {
    message = `TLS error talking to ${host}: ${cause.message} (for a private CA give --cacert FILE or set NODE_EXTRA_CA_CERTS; --insecure skips the check)`;
  } else if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    message = `timed out connecting to ${host}`;
  } else if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    message = `${host} did not answer in time`;
  } else if (code === 'UND_ERR_BODY_TIMEOUT') {
    message = `the download from ${host} stalled (no data in time)`;
  } else if (code === 'ECONNREFUSED') {
    message = `connection refused by ${host}`;
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    message = `cannot resolve host ${host}`;
  } else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') {
    message = `the connection to ${host} was reset`;
  } else {
    message = `request to ${url} failed: ${describeCause(cause)}`;
  }
  return new BoxsigError('NETWORK', message, { url, errno: code || undefined });
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Remove credentials from a URL before showing or recording it. */
export function scrubUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return url;
  }
}

export async function httpRequest(url: string, opts: HttpOptions & { method?: 'GET' | 'HEAD'; accept?: string } = {}): Promise<HttpResponse> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: opts.method ?? 'GET',
      redirect: 'follow',
      headers: { 'user-agent': 'boxsig', ...(opts.accept ? { accept: opts.accept } : {}) },
      // undici's dispatcher option (not in the DOM typings)
      ...({ dispatcher: await dispatcher(opts) } as object),
    });
  } catch (e) {
    throw networkError(url, e);
  }
  if (!res.ok) {
    res.body?.cancel().catch(() => undefined);
    throw new BoxsigError('NETWORK', `${scrubUrl(url)}: HTTP ${res.status} ${res.statusText}${res.status === 404 ? ' (not found)' : ''}`, {
      url: scrubUrl(url),
      status: res.status,
    });
  }
  const len = res.headers.get('content-length');
  const body = res.body ? Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) : Readable.from([]);
  body.on('error', () => undefined);
  return {
    status: res.status,
    url: res.url || url,
    contentType: res.headers.get('content-type') ?? '',
    size: len && /^\d+$/.test(len) ? Number(len) : undefined,
    body: wrapErrors(body, url),
  };
}

/** Make stream errors NETWORK errors too. */
function wrapErrors(body: Readable, url: string): Readable {
  const out = new Readable({ read() {}, highWaterMark: 1024 * 1024 });
  body.on('data', (c) => {
    if (!out.push(c)) body.pause();
  });
  out._read = () => body.resume();
  body.on('end', () => out.push(null));
  body.on('error', (e) => out.destroy(networkError(url, e)));
  out._destroy = (err, cb) => {
    body.destroy();
    cb(err);
  };
  return out;
}

/** Read a whole (small) body with a size limit. */
export async function readLimited(body: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new BoxsigError('MALFORMED', `${what} is larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
