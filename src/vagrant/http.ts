/**
 * HTTP(S) with Node's built-in fetch. Node 20's fetch ignores the usual proxy
 * variables, so requests go through undici's EnvHttpProxyAgent (HTTP_PROXY,
 * HTTPS_PROXY, NO_PROXY, lower-case too), which also carries the timeouts and
 * TLS options. Errors become NETWORK errors a person can act on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BoxsigError, describeCause } from '../errors.js';

export interface HttpOptions {
  /** Accept any TLS certificate (like `vagrant box add --insecure`). */
  insecure?: boolean;
  /** Extra CA certificate file (PEM). */
  caCert?: string;
  /** Directory of extra CA certificates (PEM files, like curl's --capath). */
  caPath?: string;
  /** Client certificate for TLS, PEM with the certificate and its key (like curl's --cert). */
  clientCert?: string;
  /** Headers sent only to the hosts they are listed for (see parseHostHeaders). */
  hostHeaders?: HostHeaders;
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
  const key = JSON.stringify([opts.insecure, opts.caCert, opts.caPath, opts.clientCert, timeout]);
  if (dispatcherCache?.key === key) return dispatcherCache.dispatcher;
  quietUndiciWarning();
  const { EnvHttpProxyAgent } = await import('undici');
  const connect: Record<string, unknown> = { timeout };
  if (opts.insecure) connect.rejectUnauthorized = false;
  if (opts.caCert || opts.caPath) {
    const tls = await import('node:tls');
    connect.ca = [...tls.rootCertificates, ...extraCaCertificates(opts)];
  }
  if (opts.clientCert) {
    const pem = readTlsFile(opts.clientCert, '--cert');
    connect.cert = pem;
    connect.key = pem;
  }
  const d = new EnvHttpProxyAgent({ connect, headersTimeout: timeout, bodyTimeout: Math.max(timeout, 60_000) });
  dispatcherCache = { key, dispatcher: d };
  return d;
}

const MAX_TLS_FILE = 1024 * 1024;

function readTlsFile(file: string, what: string): string {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_TLS_FILE) throw new Error(`not a PEM file of at most ${MAX_TLS_FILE} bytes`);
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new BoxsigError('USAGE', `${what} ${file}: ${describeCause(e)}`);
  }
}

/** The PEM certificates of --cacert and of the files in --capath (curl's hashed directory layout or plain .pem files). */
function extraCaCertificates(opts: HttpOptions): string[] {
  const pems: string[] = [];
  if (opts.caCert) pems.push(readTlsFile(opts.caCert, '--cacert'));
  if (opts.caPath) {
    let names: string[];
    try {
      names = fs.readdirSync(opts.caPath).sort();
    } catch (e) {
      throw new BoxsigError('USAGE', `--capath ${opts.caPath}: ${describeCause(e)}`);
    }
    for (const name of names) {
      const file = path.join(opts.caPath, name);
      if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
      const text = readTlsFile(file, '--capath');
      if (text.includes('-----BEGIN CERTIFICATE-----')) pems.push(text);
    }
  }
  return pems;
}

/**
 * Extra request headers per host, for integrations that authenticate the way
 * their host tool does (the Vagrant plugin passes the `Authorization` header
 * Vagrant would send to its box server). Keys are host names (no port,
 * compared case-insensitively, as Vagrant compares them); a header goes only to
 * requests whose URL has that host, and fetch drops `Authorization` on a
 * redirect to another origin.
 */
export type HostHeaders = Map<string, Array<[string, string]>>;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parse `{"host": ["Name: value", …]}` (e.g. from BOXSIG_HTTP_HEADERS); a CONFIG error names what is wrong, never the values. */
export function parseHostHeaders(json: string, source: string): HostHeaders {
  const bad = (m: string): never => {
    throw new BoxsigError('CONFIG', `${source}: ${m}`);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    bad('not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('must be a JSON object of host names to lists of "Name: value" headers');
  const out: HostHeaders = new Map();
  for (const [host, list] of Object.entries(doc as object)) {
    if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) bad(`${JSON.stringify(host)} is not a host name`);
    if (!Array.isArray(list)) bad(`the headers of ${host} must be a list`);
    const headers: Array<[string, string]> = [];
    for (const h of list as unknown[]) {
      const m = typeof h === 'string' ? /^([^:]+):[ \t]*(.*)$/s.exec(h) : null;
      if (!m || !HEADER_NAME.test(m[1]) || /[\x00-\x08\x0a-\x1f\x7f]/.test(m[2])) bad(`a header for ${host} is not of the form "Name: value" on one line`);
      headers.push([m![1], m![2]]);
    }
    out.set(host.toLowerCase(), headers);
  }
  return out;
}

function headersFor(url: string, hostHeaders: HostHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (!hostHeaders?.size) return out;
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return out;
  }
  for (const [name, value] of hostHeaders.get(host) ?? []) out[name.toLowerCase()] = value;
  return out;
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
      headers: { ...headersFor(url, opts.hostHeaders), 'user-agent': 'boxsig', ...(opts.accept ? { accept: opts.accept } : {}) },
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
