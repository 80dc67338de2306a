/**
 * A loopback HTTP server whose routes can misbehave at the byte level: wrong
 * content encodings, truncated or over-long bodies, resets, broken chunked
 * encoding, redirect loops, stalls, basic authentication. Every request is
 * recorded with its headers, so tests can check what boxsig sent where.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Hit {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

/** What a route does with a request: answer normally, or write raw bytes to the socket. */
export type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, socket: net.Socket) => void;

export interface HostileServer {
  url: string;
  port: number;
  hits: Hit[];
  route(path: string, b: Behaviour): void;
  close(): Promise<void>;
}

export async function hostileServer(): Promise<HostileServer> {
  const routes = new Map<string, Behaviour>();
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    hits.push({ method: req.method ?? '', path: p, headers: req.headers });
    const b = routes.get(p);
    if (!b) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    b(req, res, res.socket as net.Socket);
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    route: (p, b) => routes.set(p, b),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- behaviours ---------------------------------------------------------------

/** Serve BODY with HEADERS (HEAD gets the headers only). */
export function send(body: Buffer | string, headers: http.OutgoingHttpHeaders = {}, status = 200): Behaviour {
  const buf = Buffer.from(body);
  return (req, res) => {
    res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': buf.length, ...headers });
    res.end(req.method === 'HEAD' ? undefined : buf);
  };
}

/** Raw HTTP/1.1 bytes: a status line and headers written by hand, then BODY, then FINISH. */
export function raw(head: string[], body: Buffer, finish: 'end' | 'reset' | 'hang' = 'end'): Behaviour {
  return (req, _res, socket) => {
    if (req.method === 'HEAD') {
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    socket.write(`${['HTTP/1.1 200 OK', ...head].join('\r\n')}\r\n\r\n`);
    if (finish === 'end') socket.end(body);
    else {
      socket.write(body);
      if (finish === 'reset') setTimeout(() => socket.resetAndDestroy(), 50);
    }
  };
}

export function redirect(location: string, status = 302): Behaviour {
  return (_req, res) => {
    res.writeHead(status, { location });
    res.end();
  };
}

/** Require basic authentication with USER and PASSWORD, then behave like INNER. */
export function basicAuth(user: string, password: string, inner: Behaviour): Behaviour {
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return (req, res, socket) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="boxes"', 'content-type': 'text/plain' });
      res.end('authentication required');
      return;
    }
    inner(req, res, socket);
  };
}

/** Headers, the first FIRST bytes of BODY, then nothing (a stalled download). */
export function stall(body: Buffer, first: number): Behaviour {
  return (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    if (req.method === 'HEAD') res.end();
    else res.write(body.subarray(0, first));
  };
}
