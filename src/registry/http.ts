/**
 * The registry's HTTP surface (Fastify 5):
 * - the Vagrant Cloud API v1 subset Vagrant 2.3 and Packer 1.6 use, under /api/v1;
 * - catalogs at GET/HEAD /ORG/NAME and box downloads (a redirect to a
 *   presigned object-store URL, or proxied);
 * - boxsig's own endpoints under /boxsig/v1; health (/healthz) and readiness (/readyz).
 * Errors are `{"errors": ["CODE: message"]}`, the shape both clients print.
 * Logs are JSON lines; tokens and upload URLs never appear in them.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BoxsigError, toBoxsigError } from '../errors.js';
import { parseUntrustedJson } from '../shared/json.js';
import type { Principal } from './auth.js';
import type { Registry, BoxPath, VersionPath, ProviderPath } from './registry.js';
import type { Links } from './views.js';
import { registerLogRoutes } from './log/http.js';
import { publicationProofs } from './log/service.js';
import { findBox, findOrg } from './rows.js';
import { certifyByApi, registerKeysByApi } from './escrow/api.js';
import { connectionsPerClient } from './config.js';
import type { Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';

const JSON_LIMIT = 1024 * 1024;

/** HTTP status of each error code. */
export function statusOf(e: BoxsigError): number {
  const s = e.details.status;
  if (typeof s === 'number') return s;
  if (e.refused) return 422;
  switch (e.code) {
    case 'USAGE':
    case 'CONFIG':
      return 400;
    case 'DENIED':
      return 401;
    case 'NOT_FOUND':
      return 404;
    case 'EXISTS':
      return 409;
    case 'LIMIT':
      return 429;
    case 'UNAVAILABLE':
      return 503;
    case 'NETWORK':
      return 400;
    default:
      return 500;
  }
}

/** Server-side failures whose text names the engines (database URL, driver errors): logged, never answered. */
const HIDDEN = new Map<string, string>([
  ['INTERNAL', 'internal error (see the registry log)'],
  ['IO', 'the registry cannot reach its storage (see the registry log)'],
]);

export function errorBody(e: BoxsigError): { errors: string[]; code: string } {
  const msg = HIDDEN.get(e.code) ?? e.message;
  return { errors: [`${e.code}: ${msg}`], code: e.code };
}

/** Upload secrets and tokens out of logged URLs. */
export function scrubUrl(url: string): string {
  return url.replace(/\/upload\/[^/?#]+/g, '/upload/…').replace(/([?&]access_token=)[^&#]*/gi, '$1…');
}

interface Params {
  org: string;
  box: string;
  version: string;
  provider: string;
  arch: string;
  secret: string;
}

export interface AppOptions {
  /** Extra health detail for /readyz. */
  ready?: () => Promise<void>;
  logger?: boolean | object;
}

// long: the route table: one short handler per endpoint, in the order of docs/REGISTRY.md
export function buildApp(reg: Registry, opts: AppOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? false,
    trustProxy: reg.config.trustProxy,
    bodyLimit: JSON_LIMIT,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 256, ignoreTrailingSlash: true },
    // one line per request, written by the onResponse hook below with the URL scrubbed
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: 0,
    // slow-loris: the request line and headers within headersSeconds (checked every second or so; a 408 and the connection closed)
    http: {
      headersTimeout: reg.config.headersSeconds * 1000,
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, reg.config.headersSeconds * 250)),
    },
  });
  limitConnectionsPerClient(app, connectionsPerClient(reg.config));

  app.removeAllContentTypeParsers();
  // Vagrant sends Content-Type: application/json on every request, with or without a body
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: JSON_LIMIT }, (_req, body, done) => {
    const buf = body as Buffer;
    if (buf.length === 0) return done(null, {});
    try {
      done(null, parseUntrustedJson(buf, 'the request body', JSON_LIMIT));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  // anything else (box uploads) is left unread for the route to stream
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  app.setErrorHandler((err, req, reply) => {
    const be = fastifyError(err);
    if (HIDDEN.has(be.code)) req.log.error({ err: be.message, code: be.code, stack: be.details.stack }, 'internal error');
    reply.code(statusOf(be)).header('content-type', 'application/json').send(errorBody(be));
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(new BoxsigError('NOT_FOUND', `${req.method} ${scrubUrl(req.url.split('?')[0])} is not an endpoint of this registry`)));
  });
  // while shutting down, no connection is kept alive after its answer (close() waits for them)
  app.addHook('onSend', async (req, reply, payload) => {
    if (reg.closing) reply.header('connection', 'close');
    // any answer given before its request's body ended (a refusal, a GET with a body, a 404, a body over the JSON limit): bounded
    closeIfUnread(req, reply);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    req.log.info({ method: req.method, url: scrubUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  const links = (req: FastifyRequest): Links => ({ base: reg.config.publicUrl ?? `${req.protocol}://${req.host}` });
  // one lookup per request: the write guard below asks first, the handler again
  const principals = new WeakMap<FastifyRequest, Promise<Principal | null>>();
  const who = (req: FastifyRequest): Promise<Principal | null> => {
    let p = principals.get(req);
    if (!p) principals.set(req, (p = reg.principal(req.headers.authorization, (req.query as Record<string, unknown> | undefined)?.access_token)));
    return p;
  };
  guardRequests(app, reg, who);
  continueWhenRead(app);
  const boxPath = (p: Params): BoxPath => ({ org: p.org, box: p.box });
  const versionPath = (p: Params): VersionPath => ({ ...boxPath(p), version: p.version });
  const providerPath = (p: Params): ProviderPath => ({ ...versionPath(p), provider: p.provider, ...(p.arch !== undefined ? { architecture: p.arch } : {}) });
  type Handler = (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => Promise<unknown>;
  const json =
    (fn: (req: FastifyRequest<{ Params: Params }>, p: Principal | null) => Promise<unknown>): Handler =>
    async (req, reply) => {
      const body = await fn(req, await who(req));
      reply.header('cache-control', 'no-store');
      return reply.code(200).send(body);
    };

  // ---- health ----
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    if (reg.closing) return reply.code(503).send(errorBody(new BoxsigError('UNAVAILABLE', 'shutting down')));
    try {
      await reg.db.one('SELECT 1 AS ok');
      await opts.ready?.();
    } catch (e) {
      return reply.code(503).send(errorBody(new BoxsigError('UNAVAILABLE', toBoxsigError(e).message)));
    }
    return { ok: true, uploadsInFlight: reg.uploadsInFlight };
  });

  // ---- Vagrant Cloud API v1 ----
  const api = '/api/v1';
  app.get(`${api}/authenticate`, async (req) => {
    const p = await who(req);
    if (!p) throw new BoxsigError('DENIED', 'no token: set VAGRANT_CLOUD_TOKEN (or BOXSIG_REGISTRY_TOKEN for boxsig publish)');
    const username = p.kind === 'token' ? p.org : p.user;
    return { user: { username, email: null, avatar_url: null }, boxsig: p.kind === 'token' ? { org: p.org, role: p.role, member: p.member } : {} };
  });
  app.get(
    `${api}/user/:org`,
    json((req, p) => reg.orgView(p, req.params.org)),
  );
  app.get(
    `${api}/organization/:org`,
    json((req, p) => reg.orgView(p, req.params.org)),
  );
  app.post(
    `${api}/boxes`,
    json((req, p) => reg.createBox(p, orgOfBody(req.body), req.body, links(req))),
  );
  app.get(
    `${api}/box/:org/:box`,
    json((req, p) => reg.getBox(p, boxPath(req.params), links(req))),
  );
  app.put(
    `${api}/box/:org/:box`,
    json((req, p) => reg.updateBox(p, boxPath(req.params), req.body, links(req))),
  );
  app.delete(
    `${api}/box/:org/:box`,
    json((req, p) => reg.deleteBox(p, boxPath(req.params), links(req))),
  );
  app.post(
    `${api}/box/:org/:box/versions`,
    json((req, p) => reg.createVersion(p, boxPath(req.params), req.body, links(req))),
  );
  const v = `${api}/box/:org/:box/version/:version`;
  app.get(
    v,
    json((req, p) => reg.getVersion(p, versionPath(req.params), links(req))),
  );
  app.put(
    v,
    json((req, p) => reg.updateVersion(p, versionPath(req.params), req.body, links(req))),
  );
  app.delete(
    v,
    json((req, p) => reg.deleteVersion(p, versionPath(req.params), links(req))),
  );
  app.put(
    `${v}/release`,
    json(async (req, p) => withLogProofs(reg, await reg.releaseVersion(p, versionPath(req.params), links(req)), versionPath(req.params))),
  );
  app.put(
    `${v}/revoke`,
    json((req, p) => reg.revokeVersion(p, versionPath(req.params))),
  );
  app.post(
    `${v}/providers`,
    json((req, p) => reg.createProvider(p, versionPath(req.params), req.body, links(req))),
  );
  for (const pp of [`${v}/provider/:provider`, `${v}/provider/:provider/:arch`]) {
    app.get(
      pp,
      json((req, p) => reg.getProvider(p, providerPath(req.params), links(req))),
    );
    app.put(
      pp,
      json((req, p) => reg.updateProvider(p, providerPath(req.params), req.body, links(req))),
    );
    app.delete(
      pp,
      json((req, p) => reg.deleteProvider(p, providerPath(req.params), links(req))),
    );
    app.get(
      `${pp}/upload`,
      json((req, p) => reg.startUpload(p, providerPath(req.params), false, links(req))),
    );
    app.get(
      `${pp}/upload/direct`,
      json((req, p) => reg.startUpload(p, providerPath(req.params), true, links(req))),
    );
  }
  app.put(`${api}/upload/:secret`, (req, reply) => receive(reg, req as FastifyRequest<{ Params: Params }>, reply, links(req)));
  app.put(
    `${api}/upload/:secret/complete`,
    json((req, p) => reg.completeUpload(p, req.params.secret, links(req))),
  );

  // ---- boxsig's own ----
  app.get('/boxsig/v1/orgs/:org/keys', async (req) => reg.orgKeys((req.params as Params).org));
  registerLogRoutes(app, reg);
  app.get(
    '/boxsig/v1/orgs/:org/boxes/:box/keys',
    json((req, p) => reg.boxKeys(p, boxPath(req.params))),
  );
  app.post(
    '/boxsig/v1/orgs/:org/keys',
    json((req, p) => registerKeysByApi(reg, p, req.params.org, req.body)),
  );
  app.post(
    '/boxsig/v1/orgs/:org/certify',
    json((req, p) => certifyByApi(reg, p, req.params.org, req.body)),
  );

  // ---- consumers: catalogs and downloads ----
  const catalog: Handler = async (req, reply) => {
    const text = await reg.catalog(await who(req), boxPath(req.params), links(req));
    reply.header('content-type', 'application/json').header('cache-control', 'no-cache');
    return reply.code(200).send(req.method === 'HEAD' ? undefined : text);
  };
  app.get('/:org/:box', catalog);
  app.get('/:org/boxes/:box', catalog);
  const download: Handler = async (req, reply) => sendBox(reg, req, reply, await who(req), providerPath(req.params));
  // HEAD is its own route: Fastify's automatic one would read the whole object to discard it
  for (const url of [
    '/:org/boxes/:box/versions/:version/providers/:provider/:arch/vagrant.box',
    '/:org/boxes/:box/versions/:version/providers/:provider/vagrant.box',
  ]) {
    app.route({ method: 'GET', url, handler: download, exposeHeadRoute: false });
    app.head(url, download);
  }
  return app;
}

/** The upload route streams its own body, under its own size and idle limits (body.ts). */
const UPLOAD_ROUTE = '/api/v1/upload/:secret';

/**
 * Cheap checks before any body is read: every request but an upload must
 * have sent its whole body within `requestBodySeconds` (a client that
 * trickles is dropped), and a write (any method but GET and HEAD) needs a
 * valid token before its body is parsed — an anonymous client gets 401 and
 * the connection is closed after a bounded linger, nothing of its body
 * buffered (closeIfUnread, from onSend).
 */
function guardRequests(app: FastifyInstance, reg: Registry, who: (req: FastifyRequest) => Promise<Principal | null>): void {
  const deadlines = new WeakMap<FastifyRequest, NodeJS.Timeout>();
  const clear = async (req: FastifyRequest) => clearTimeout(deadlines.get(req));
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.url === UPLOAD_ROUTE) {
      // a box, whatever the client calls it: never buffered by the JSON parser (its body is streamed)
      req.headers['content-type'] = 'application/octet-stream';
      return;
    }
    const timer = setTimeout(() => req.raw.socket?.destroy(), reg.config.requestBodySeconds * 1000);
    timer.unref();
    deadlines.set(req, timer);
    req.raw.once('close', () => clearTimeout(timer));
    if (req.method === 'GET' || req.method === 'HEAD') return;
    // a refusal here is answered before the body is read: onSend bounds what is read of it after
    if (await who(req)) return;
    throw new BoxsigError('DENIED', 'a write needs a valid token (VAGRANT_CLOUD_TOKEN, or BOXSIG_REGISTRY_TOKEN for boxsig publish)');
  });
  // the body is in once the handler runs; an answer before it (an error) leaves the deadline to an unfinished body
  app.addHook('preHandler', clear);
  app.addHook('onResponse', async (req) => {
    if (req.raw.complete) await clear(req);
  });
}

/**
 * `Expect: 100-continue` (curl sends it with a large PUT, `vagrant cloud
 * publish` among others): by default Node answers `100 Continue` at once,
 * before any check, and the client starts sending a box that is then refused.
 * Here the 100 goes out only when the body is about to be read: for a JSON
 * request once its token was checked (preParsing runs after onRequest), for
 * an upload once its session was claimed (receiveUpload calls `beforeBody`).
 * A refusal before that is answered without it, and the client never sends
 * the body (what it sends anyway is bounded by closeIfUnread).
 */
function continueWhenRead(app: FastifyInstance): void {
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.set(req, res);
    app.server.emit('request', req, res);
  });
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (req.routeOptions.url !== UPLOAD_ROUTE) sendContinue(req.raw);
    return payload;
  });
}

const awaitingContinue = new WeakMap<IncomingMessage, ServerResponse>();

/** The request's body is about to be read: tell a client that waits for it to send (once). */
function sendContinue(req: IncomingMessage): void {
  const res = awaitingContinue.get(req);
  if (!res) return;
  awaitingContinue.delete(req);
  if (!res.headersSent) res.writeContinue();
}

/**
 * At most `max` connections open at once from one client address (per
 * process): a client that opens more has the extra ones closed at once,
 * before anything is read from them, so that one client cannot hold every
 * socket of the process (slow-loris, idle keep-alive). The address is the
 * TCP peer's: behind a proxy it is the proxy's (connectionsPerClient).
 */
function limitConnectionsPerClient(app: FastifyInstance, max: number): void {
  if (!max) return;
  const open = new Map<string, number>();
  let warned = 0;
  app.server.on('connection', (socket: Socket) => {
    const who = socket.remoteAddress ?? '';
    const n = (open.get(who) ?? 0) + 1;
    if (n > max) {
      socket.destroy();
      if (Date.now() - warned > 60_000) {
        warned = Date.now();
        app.log.warn({ client: who, connections: max }, 'a client reached its limit of connections; extra ones are closed');
      }
      return;
    }
    open.set(who, n);
    socket.once('close', () => {
      const left = (open.get(who) ?? 1) - 1;
      if (left > 0) open.set(who, left);
      else open.delete(who);
    });
  });
}

/** A release answer with the log entries of what it published and their inclusion proofs (a field Vagrant and Packer ignore). */
async function withLogProofs(reg: Registry, view: object, path: VersionPath): Promise<object> {
  const org = await findOrg(reg.db, path.org);
  const box = org && (await findBox(reg.db, org.id, path.box));
  if (!org || !box) return view;
  const version = (view as { version?: string }).version ?? path.version;
  const log = await publicationProofs(reg.db, reg.signer, { box: `${org.name}/${box.name}`, version });
  return log ? { ...view, boxsig_log: log } : view;
}

function orgOfBody(body: unknown): string {
  const b = body as Record<string, unknown> | undefined;
  const inner = b && typeof b.box === 'object' && b.box ? (b.box as Record<string, unknown>) : b;
  const org = inner?.username ?? inner?.organization;
  if (typeof org !== 'string') throw new BoxsigError('USAGE', 'the request names no organization ("username")');
  return org;
}

/** Fastify's own errors (bad JSON, body too large) and ours, as BoxsigErrors. */
function fastifyError(err: unknown): BoxsigError {
  if (err instanceof BoxsigError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new BoxsigError('LIMIT', 'the request body is too large', { status: 413 });
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new BoxsigError('USAGE', e.message ?? 'bad request', { status: e.statusCode });
  }
  return toBoxsigError(err);
}

/** PUT upload_path: a direct upload answers 200 once received (its verdict comes with the callback); a plain upload answers the verdict. */
async function receive(reg: Registry, req: FastifyRequest<{ Params: Params }>, reply: FastifyReply, l: Links): Promise<unknown> {
  // cheap first: a declared length over the limit is refused before anything is claimed or read (the rest: closeIfUnread)
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > reg.config.maxBoxBytes) {
    throw new BoxsigError('LIMIT', `the box is larger than this registry accepts (${reg.config.maxBoxBytes} bytes)`, {
      status: 413,
      limit: reg.config.maxBoxBytes,
    });
  }
  const outcome = await reg.receive(req.params.secret, req.raw, () => sendContinue(req.raw));
  if (outcome.state === 'refused') {
    if (outcome.direct) return reply.code(200).send({ received: true });
    return reply.code(statusOf(outcome.error)).send(errorBody(outcome.error));
  }
  const t = outcome.target;
  const provider = await reg
    .getProvider(null, { org: t.org, box: t.box, version: t.version, provider: t.provider, architecture: t.architecture }, l)
    .catch(() => null);
  const log = await publicationProofs(reg.db, reg.signer, { box: `${t.org}/${t.box}`, version: t.version, provider: t.provider, architecture: t.architecture });
  const signedHere = outcome.received.sha256 !== outcome.sha256 ? { uploaded: outcome.received } : {};
  return reply.code(200).send({
    received: true,
    sha256: outcome.sha256,
    size: outcome.size,
    ...signedHere,
    warnings: outcome.warnings,
    ...(provider ? { provider } : {}),
    ...(log ? { boxsig_log: log } : {}),
  });
}

/**
 * When the client's body was not read to its end (too large, refused before
 * it was read, a body on a GET, shutdown), the answer goes first and the rest
 * of the body is then read and thrown away — at most LINGER_BYTES from now,
 * and for at most LINGER_MS after the answer — before the socket is closed.
 * Closing a socket with unread data resets it, and a client still sending
 * then sees EPIPE or ECONNRESET instead of the answer. The answer does not
 * say `Connection: close`: with it, Node closes the socket as soon as the
 * answer is written. The bytes are counted from the refusal, not from the
 * answer: once an answer is finished Node "dumps" an unread body, reading and
 * dropping it without a data event, and so without any bound. A body that
 * does end within the bounds leaves an ordinary keep-alive connection. Called
 * from onSend, for every answer.
 */
function closeIfUnread(req: FastifyRequest, reply: FastifyReply): void {
  const raw = req.raw;
  if (raw.complete || lingering.has(raw)) return;
  lingering.add(raw);
  let discarded = 0;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(timer);
    raw.socket?.destroy();
  };
  raw.on('data', (c: Buffer) => {
    discarded += c.length;
    if (discarded > LINGER_BYTES) stop();
  });
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
  raw.once('error', stop);
  reply.raw.once('finish', () => {
    if (raw.complete) return;
    timer = setTimeout(stop, LINGER_MS);
    timer.unref();
  });
  raw.resume();
}

const lingering = new WeakSet<FastifyRequest['raw']>();
const LINGER_MS = 5000;
const LINGER_BYTES = 64 * 1024 * 1024;

async function sendBox(reg: Registry, req: FastifyRequest, reply: FastifyReply, p: Principal | null, path: ProviderPath): Promise<unknown> {
  const blob = await reg.download(p, path);
  reply.header('cache-control', 'private, no-store');
  if (reg.config.downloads === 'redirect' && reg.blobs.presigns) {
    return reply.redirect(await reg.blobs.presignedUrl(blob.key, reg.config.presignSeconds, req.method === 'HEAD' ? 'HEAD' : 'GET'), 302);
  }
  const start = rangeStart(req.headers.range, blob.size);
  reply.header('content-type', 'application/octet-stream').header('accept-ranges', 'bytes').header('etag', `"${blob.sha256}"`);
  if (start === null) {
    reply.header('content-range', `bytes */${blob.size}`);
    return reply.code(416).send();
  }
  // HEAD opens the object too: it answers only for a complete object of the right size
  const { stream, size } = await reg.blobs.read(blob.key, start);
  if (size !== blob.size) {
    stream.destroy();
    throw new BoxsigError('INTERNAL', `internal error: the stored object of ${blob.sha256} has ${size} bytes, not ${blob.size}`);
  }
  reply.header('content-length', String(blob.size - start));
  if (start > 0) reply.code(206).header('content-range', `bytes ${start}-${blob.size - 1}/${blob.size}`);
  if (req.method === 'HEAD') {
    stream.destroy();
    return reply.send();
  }
  return reply.send(stream);
}

/** `Range: bytes=N-` (what curl sends to resume); anything else is served whole. null: unsatisfiable. */
function rangeStart(header: string | undefined, size: number): number | null {
  const m = header ? /^bytes=(\d+)-$/.exec(header.trim()) : null;
  if (!m) return 0;
  const n = Number(m[1]);
  return n < size ? n : null;
}
