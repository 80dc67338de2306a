/**
 * Loopback HTTP(S) servers and a forward proxy for the add tests.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface Route {
  file?: string;
  body?: string | Buffer;
  contentType?: string;
  status?: number;
  redirect?: string;
  /** bytes per 50 ms tick (slow downloads) */
  rate?: number;
  /** accept the request and never answer */
  hang?: boolean;
  /**
   * send only the first HOLD bytes of the file, then nothing more until the
   * client goes away (a transfer that is certainly in progress, whatever the
   * speed of the machine); `onHold` is called once they were handed to the socket
   */
  hold?: number;
  onHold?: () => void;
}

export interface Served {
  url: string;
  port: number;
  hits: string[];
  close(): Promise<void>;
}

function handler(routes: Record<string, Route>, hits: string[]) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    hits.push(`${req.method} ${p}`);
    const r = routes[p];
    if (!r) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (r.hang) return;
    if (r.redirect) {
      res.writeHead(302, { location: r.redirect });
      res.end();
      return;
    }
    const body = r.file ? null : Buffer.from(r.body ?? '');
    const size = r.file ? fs.statSync(r.file).size : body!.length;
    res.writeHead(r.status ?? 200, { 'content-type': r.contentType ?? 'application/octet-stream', 'content-length': size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (body) {
      res.end(body);
      return;
    }
    if (r.hold !== undefined) {
      const head = Buffer.alloc(Math.min(r.hold, size));
      const fd = fs.openSync(r.file!, 'r');
      fs.readSync(fd, head, 0, head.length, 0);
      fs.closeSync(fd);
      const onHold = r.onHold;
      res.flushHeaders();
      res.write(head, () => onHold?.());
      return;
    }
    if (!r.rate) {
      fs.createReadStream(r.file!).pipe(res);
      return;
    }
    const fd = fs.openSync(r.file!, 'r');
    let pos = 0;
    const buf = Buffer.alloc(r.rate);
    const timer = setInterval(() => {
      const n = fs.readSync(fd, buf, 0, r.rate!, pos);
      if (n <= 0) {
        clearInterval(timer);
        fs.closeSync(fd);
        res.end();
        return;
      }
      pos += n;
      res.write(Buffer.from(buf.subarray(0, n)));
    }, 50);
    res.on('close', () => {
      clearInterval(timer);
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
    });
  };
}

export async function serve(routes: Record<string, Route>, tls?: { key: string; cert: string }): Promise<Served> {
  const hits: string[] = [];
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler(routes, hits)) : http.createServer(handler(routes, hits));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A minimal forward proxy (absolute-URI requests and CONNECT). */
export async function proxy(): Promise<Served> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    const u = new URL(req.url!);
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.on('connect', (req, socket, head) => {
    hits.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const up = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A self-signed certificate for 127.0.0.1 made with openssl. */
export function selfSigned(dir: string, must: (cmd: string, args: string[]) => string): { key: string; cert: string; certFile: string } {
  const key = path.join(dir, 'tls.key');
  const cert = path.join(dir, 'tls.crt');
  must('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8'), certFile: cert };
}
