/**
 * HTTP(S) downloads with undici's request API, through its EnvHttpProxyAgent
 * (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, lower-case too), which also carries the
 * timeouts and TLS options.
 *
 * - The bytes are never decoded: boxsig asks for the identity encoding and
 *   hashes what it receives, whatever Content-Encoding a server claims (a
 *   catalog's checksum is over the file, as for Vagrant, which runs curl
 *   without --compressed). No decompressor of the HTTP client is on the path.
 * - `https://user:password@host/…` works as in Vagrant: the credentials go in
 *   a basic Authorization header, to that origin only (also after a redirect
 *   back to it, and for later requests of this process to it, such as a box
 *   on the catalog's server); never to another origin, never printed.
 * - Redirects are followed here (at most MAX_REDIRECTS), to http(s) URLs only.
 * - Every failure, on the request or later in the body, is a NETWORK error
 *   naming the host or the scrubbed URL.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BoxsigError, describeCause, usage } from '../errors.js';
import { scrubUrl, splitCredentials } from '../shared/urls.js';

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
  /** Seconds for connecting and for each wait for data (default 30 s, 60 s for a wait within a body; or BOXSIG_HTTP_TIMEOUT for both). */
  timeout?: number;
}

export interface HttpResponse {
  status: number;
  /** The final URL, after redirects, without credentials. */
  url: string;
  contentType: string;
  size: number | undefined;
  body: Readable;
}

/** As curl's default in Vagrant's downloader is generous, but a loop must end. */
const MAX_REDIRECTS = 10;

// ---- the dispatcher (proxy, TLS, timeouts) --------------------------------------

let dispatcherCache: { key: string; dispatcher: unknown } | null = null;

function timeouts(opts: HttpOptions): { connect: number; body: number } {
  const given = opts.timeout ?? (process.env.BOXSIG_HTTP_TIMEOUT !== undefined ? Number(process.env.BOXSIG_HTTP_TIMEOUT) : undefined);
  if (given !== undefined && !(Number.isFinite(given) && given > 0)) {
    throw usage(`the network timeout must be a positive number of seconds, not ${JSON.stringify(String(given))}`);
  }
  return given !== undefined ? { connect: given * 1000, body: given * 1000 } : { connect: 30_000, body: 60_000 };
}

async function dispatcher(opts: HttpOptions): Promise<unknown> {
  const t = timeouts(opts);
  const key = JSON.stringify([opts.insecure, opts.caCert, opts.caPath, opts.clientCert, t]);
  if (dispatcherCache?.key === key) return dispatcherCache.dispatcher;
  quietUndiciWarning();
  const { EnvHttpProxyAgent } = await import('undici');
  const connect: Record<string, unknown> = { timeout: t.connect };
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
  const d = new EnvHttpProxyAgent({ connect, headersTimeout: t.connect, bodyTimeout: t.body });
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
      // eslint-disable-next-line no-control-regex -- control characters in untrusted text are what this looks for
      if (!m || !HEADER_NAME.test(m[1]) || /[\x00-\x08\x0a-\x1f\x7f]/.test(m[2])) bad(`a header for ${host} is not of the form "Name: value" on one line`);
      headers.push([m![1], m![2]]);
    }
    out.set(host.toLowerCase(), headers);
  }
  return out;
}

/**
 * Vagrant's token, as Vagrant sends it: `VAGRANT_CLOUD_TOKEN` goes as
 * `Authorization: Bearer …` to the host of `VAGRANT_SERVER_URL` (default
 * vagrantcloud.com) and to no other host — nor after a redirect to another
 * host, since host headers are chosen per request. An Authorization header
 * already given for that host (BOXSIG_HTTP_HEADERS: the plugin) wins.
 */
export function withServerToken(hostHeaders: HostHeaders | undefined, env: NodeJS.ProcessEnv = process.env): HostHeaders | undefined {
  const token = env.VAGRANT_CLOUD_TOKEN;
  if (!token) return hostHeaders;
  // eslint-disable-next-line no-control-regex -- control characters in untrusted text are what this looks for
  if (/[\x00-\x1f\x7f]/.test(token)) throw new BoxsigError('CONFIG', 'VAGRANT_CLOUD_TOKEN holds a control character');
  let host: string;
  try {
    host = new URL(env.VAGRANT_SERVER_URL ?? DEFAULT_SERVER).hostname.toLowerCase();
  } catch {
    throw new BoxsigError('CONFIG', 'VAGRANT_SERVER_URL is not a URL');
  }
  const out: HostHeaders = new Map(hostHeaders ?? []);
  const given = out.get(host) ?? [];
  if (!given.some(([name]) => name.toLowerCase() === 'authorization')) out.set(host, [...given, ['Authorization', `Bearer ${token}`]]);
  return out;
}

/** Where `boxsig add ORG/NAME` looks when VAGRANT_SERVER_URL is not set (as Vagrant). */
export const DEFAULT_SERVER = 'https://vagrantcloud.com';

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

// ---- errors -----------------------------------------------------------------------

const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS|ERR_SSL|HOSTNAME_MISMATCH|ERR_OSSL)/;

/** Any failure of a request or of its body, as a NETWORK error a person can act on. */
function networkError(url: string | URL, e: unknown): BoxsigError {
  if (e instanceof BoxsigError) return e;
  const err = e as Error & { cause?: unknown };
  const cause = (err?.cause ?? err) as NodeJS.ErrnoException;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const host = safeHost(url);
  const shown = scrubUrl(url);
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
  } else if (code === 'ECONNRESET') {
    message = `the connection to ${host} was reset`;
  } else if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') {
    message = `the connection to ${host} was closed before the download finished`;
  } else if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    message = `the download from ${host} ended before the length its server announced (Content-Length)`;
  } else if (code.startsWith('HPE_') || cause?.name === 'HTTPParserError') {
    message = `${host} sent an invalid HTTP response (${cause.message.replace(/^Response does not match the HTTP\/1.1 protocol \((.*)\)$/, '$1')})`;
  } else {
    message = `request to ${shown} failed: ${describeCause(cause)}`;
  }
  return new BoxsigError('NETWORK', message, { url: shown, errno: code || undefined });
}

function safeHost(url: string | URL): string {
  try {
    return new URL(String(url)).host;
  } catch {
    return scrubUrl(url);
  }
}

// ---- credentials ------------------------------------------------------------------

/** Basic credentials given in a URL, by origin: sent to that origin only. */
const credentials = new Map<string, string>();

/** Parse a URL the user or a catalog gave, remember its credentials, return it without them. */
function requestUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw usage(`${scrubUrl(url)} is not a valid URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usage(`${scrubUrl(u)} is not an http(s) URL`);
  const { url: clean, authorization } = splitCredentials(u);
  if (authorization) credentials.set(clean.origin, authorization);
  return clean;
}

/** Where a redirect points: an http(s) URL; user info in a Location is ignored. */
function redirectTarget(from: URL, status: number, location: string | undefined): URL {
  if (!location) throw new BoxsigError('NETWORK', `${scrubUrl(from)}: HTTP ${status} redirect without a Location`, { url: scrubUrl(from), status });
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new BoxsigError('NETWORK', `${scrubUrl(from)}: HTTP ${status} redirect to an invalid URL`, { url: scrubUrl(from), status });
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new BoxsigError('NETWORK', `${scrubUrl(from)} redirected to ${scrubUrl(next)}, which is not an http(s) URL`, { url: scrubUrl(from), status });
  }
  return splitCredentials(next).url;
}

// ---- requests ---------------------------------------------------------------------

/**
 * Requests in flight (from the first byte sent to the end of the body), so
 * that a fatal error elsewhere can fail them: see abortRequests.
 */
const inFlight = new Set<AbortController>();

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function httpRequest(url: string, opts: HttpOptions & { method?: 'GET' | 'HEAD'; accept?: string } = {}): Promise<HttpResponse> {
  const method = opts.method ?? 'GET';
  const d = await dispatcher(opts);
  const { request } = await import('undici');
  let current = requestUrl(url);
  const controller = new AbortController();
  inFlight.add(controller);
  // an abort carries the fatal error itself; anything else is a network failure
  const failure = (at: URL, e: unknown) => (controller.signal.aborted ? controller.signal.reason : networkError(at, e));
  try {
    for (let hops = 0; ; hops++) {
      const authorization = credentials.get(current.origin);
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(current, {
          method,
          headers: {
            // per-host headers (the plugin's token) go to their host only, hop by hop
            ...headersFor(current.href, opts.hostHeaders),
            'user-agent': 'boxsig',
            'accept-encoding': 'identity',
            ...(opts.accept ? { accept: opts.accept } : {}),
            ...(authorization ? { authorization } : {}),
          },
          dispatcher: d as import('undici').Dispatcher,
          signal: controller.signal,
          highWaterMark: 1024 * 1024,
        });
      } catch (e) {
        throw failure(current, e);
      }
      const status = res.statusCode;
      if (status >= 300 && status < 400 && status !== 304) {
        discard(res.body);
        if (hops >= MAX_REDIRECTS) {
          throw new BoxsigError('NETWORK', `too many redirects (more than ${MAX_REDIRECTS}) from ${scrubUrl(url)}`, { url: scrubUrl(url) });
        }
        current = redirectTarget(current, status, header(res.headers, 'location'));
        continue;
      }
      if (status < 200 || status >= 300) {
        discard(res.body);
        throw await statusError(current, status);
      }
      const len = header(res.headers, 'content-length');
      const body = method === 'HEAD' ? emptyBody(res.body, controller) : track(res.body, controller, (e) => failure(current, e));
      return {
        status,
        url: current.href,
        contentType: header(res.headers, 'content-type') ?? '',
        size: len && /^\d+$/.test(len) ? Number(len) : undefined,
        body,
      };
    }
  } catch (e) {
    inFlight.delete(controller);
    throw e;
  }
}

async function statusError(at: URL, status: number): Promise<BoxsigError> {
  const shown = scrubUrl(at);
  const { STATUS_CODES } = await import('node:http');
  const text = `${STATUS_CODES[status] ?? ''}${status === 404 ? ' (not found)' : ''}`;
  return new BoxsigError('NETWORK', `${shown}: HTTP ${status}${text ? ` ${text}` : ''}`, { url: shown, status });
}

function discard(body: Readable): void {
  body.on('error', () => undefined).destroy();
}

function emptyBody(body: Readable, controller: AbortController): Readable {
  discard(body);
  inFlight.delete(controller);
  return Readable.from([]);
}

/** The body, with every error mapped by FAILURE, in flight until it ends or fails. */
function track(body: Readable, controller: AbortController, failure: (e: unknown) => unknown): Readable {
  const out = new Readable({ read() {}, highWaterMark: 1024 * 1024 });
  const settle = () => inFlight.delete(controller);
  body.on('data', (c) => {
    if (!out.push(c)) body.pause();
  });
  out._read = () => body.resume();
  body.on('end', () => {
    settle();
    out.push(null);
  });
  body.on('error', (e) => {
    settle();
    out.destroy(failure(e) as Error);
  });
  out._destroy = (err, cb) => {
    settle();
    discard(body);
    cb(err);
  };
  return out;
}

/**
 * Fail every request in flight with REASON (an error thrown where nothing
 * could catch it, such as an assertion inside the HTTP client): whoever waits
 * for them then fails with REASON and cleans up as after any other error.
 * Returns how many there were.
 */
export function abortRequests(reason: unknown): number {
  const n = inFlight.size;
  for (const c of [...inFlight]) c.abort(reason instanceof Error ? reason : new Error(String(reason)));
  inFlight.clear();
  return n;
}

/** Read a whole (small) body with a size limit. */
export async function readLimited(body: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new BoxsigError('MALFORMED', `${scrubUrl(what)} is larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
