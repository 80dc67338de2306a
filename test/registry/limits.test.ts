/**
 * Per-client connection limits (issue 14, "limits"): one client address holds
 * at most `connectionsPerClient` connections to a registry process (extra ones
 * are closed before anything is read from them), and a client that trickles
 * its request headers (slow-loris) is answered 408 and closed after
 * `headersSeconds`. A body refused before it was read (too large) is read
 * and discarded for a bounded time after the answer, so that a client still
 * sending reads the answer instead of a reset. Engine-independent: the
 * embedded engine.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import http from 'node:http';
import { connectionsPerClient, CONNECTIONS_PER_CLIENT } from '../../src/registry/config.js';
import { engines, stopEngines } from './engines.js';
import { createOrg, getJson, newLab, startRegistry, token, uploadUrl } from './lab.js';

t.teardown(stopEngines);
const embedded = engines('all').available.find((e) => e.name === 'embedded')!;

interface Held {
  socket: net.Socket;
  data: () => string;
  closed: Promise<number>;
}

/** A connection that sends a request head without its end, and never finishes it. */
function slowLoris(port: number, started: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => (data += d));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
    socket.once('connect', () => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: registry\r\nX-Slow: ');
      resolve({ socket, data: () => data, closed });
    });
    socket.once('error', reject);
  });
}

t.test('connections per client, and request heads within headersSeconds', async (t) => {
  const dir = t.testdir({});
  const inst = await embedded.create(dir);
  t.teardown(() => inst.close());
  const lab = newLab(dir, inst);
  const reg = await startRegistry(lab, [], { BOXSIG_REGISTRY_CONNECTIONS_PER_CLIENT: '3', BOXSIG_REGISTRY_HEADERS_SECONDS: '2' });
  t.teardown(() => reg.stop());
  const port = Number(new URL(reg.url).port);

  const started = Date.now();
  const held = [await slowLoris(port, started), await slowLoris(port, started), await slowLoris(port, started)];
  await new Promise((r) => setTimeout(r, 200));
  const extra = await slowLoris(port, Date.now());
  const extraAfter = await extra.closed;
  t.ok(extraAfter < 1500, `a fourth connection from the same address is closed at once (${extraAfter} ms)`);
  t.equal(extra.data(), '', 'nothing was answered on it: it was never read');

  const after = await Promise.all(held.map((h) => h.closed));
  for (const [i, ms] of after.entries()) {
    t.ok(ms >= 1500 && ms < 8000, `slow-loris connection ${i + 1} is closed after headersSeconds (${ms} ms)`);
    t.match(held[i].data(), /^HTTP\/1\.1 408/, 'with 408 Request Timeout');
  }
  const ok = await getJson(`${reg.url}/healthz`);
  t.equal(ok.status, 200, 'once they are closed, the client is served again');
  t.match(reg.log(), /limit of connections/, 'the limit is logged');
});

t.test('the default limit, and none behind a trusted proxy', async (t) => {
  t.equal(connectionsPerClient({ connectionsPerClient: null, trustProxy: false }), CONNECTIONS_PER_CLIENT);
  t.equal(connectionsPerClient({ connectionsPerClient: null, trustProxy: true }), 0, 'behind a proxy every connection has its address: no limit');
  t.equal(connectionsPerClient({ connectionsPerClient: 10, trustProxy: true }), 10, 'unless set');
  t.equal(connectionsPerClient({ connectionsPerClient: 0, trustProxy: false }), 0, '0: no limit');
});

/** A registry with a 1 MiB box limit, and an upload URL of acme/app 1.0.0 on it. */
async function smallRegistry(t: Test) {
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir), { BOXSIG_REGISTRY_MAX_BOX_BYTES: '1M' });
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  const up = new URL((await uploadUrl(reg.url, pub, 'acme/app', '1.0.0')).upload_path);
  return { reg, up, pub };
}

t.test('a body refused before it is read: the answer first, then the rest is discarded for a bounded time, not reset', async (t) => {
  const { up } = await smallRegistry(t);
  const socket = net.connect(Number(up.port), up.hostname);
  t.teardown(() => socket.destroy());
  let answer = '';
  let failed: string | null = null;
  socket.on('data', (d) => (answer += d));
  socket.on('error', (e: NodeJS.ErrnoException) => (failed = e.code ?? e.message));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(`PUT ${up.pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
  const chunk = Buffer.alloc(64 * 1024);
  const sendFor = async (ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end && !socket.destroyed) {
      if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await sendFor(300);
  t.match(answer, /^HTTP\/1\.1 413 /, 'the box over the limit is answered 413 while its client is still sending');
  t.match(answer, /LIMIT: the box is larger than this registry accepts/);
  t.notMatch(answer, /connection: close/i, 'the answer does not close the connection at once');
  await sendFor(1000);
  t.equal(failed, null, 'a client that keeps sending after the answer is not reset at once');
  t.notOk(socket.destroyed, 'the connection is still open while the rest is discarded');
  await closed;
  t.pass('and it is closed after the bounded linger');
});

/** A raw connection that sends HEAD, then as many bytes as the server takes, for at most `ms`; the bytes it could send. */
async function flood(port: number, head: string, ms: number): Promise<{ answer: string; sent: number; closed: boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  let answer = '';
  let closed = false;
  socket.on('data', (d) => (answer += d));
  socket.on('error', () => undefined);
  socket.once('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(head);
  const chunk = Buffer.alloc(1024 * 1024);
  const end = Date.now() + ms;
  while (!closed && Date.now() < end) {
    if (!socket.write(chunk))
      await Promise.race([new Promise((r) => socket.once('drain', r)), new Promise((r) => socket.once('close', r)), new Promise((r) => setTimeout(r, 200))]);
  }
  const sent = socket.bytesWritten;
  socket.destroy();
  return { answer, sent, closed };
}

t.test('what a refused or unread body may still cost is bounded in bytes and in time, on every route', async (t) => {
  const { reg, up } = await smallRegistry(t);
  const port = Number(new URL(reg.url).port);
  const bound = 64 * 1024 * 1024 + 32 * 1024 * 1024; // the linger's 64 MiB, and what socket buffers hold
  for (const [what, head] of [
    ['an anonymous write', `PUT /api/v1/box/acme/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n`],
    ['a box over the size limit', `PUT ${up.pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000000000\r\n\r\n`],
    ['an unknown upload URL, chunked', `PUT /api/v1/upload/${'A'.repeat(43)} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n`],
    ['a GET with a body', `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n`],
  ]) {
    const f = await flood(port, head, 30_000);
    t.match(f.answer, /^HTTP\/1\.1 [0-9]{3} /, `${what}: answered`);
    t.ok(f.closed, `${what}: the connection is closed while the client still sends`);
    t.ok(f.sent < bound, `${what}: the server read at most its linger's bound (${Math.round(f.sent / 1048576)} MiB sent)`);
  }
  // a client that trickles a body the server will never use is closed after the linger, not kept for ever
  const slow = net.connect(port, '127.0.0.1');
  t.teardown(() => slow.destroy());
  slow.on('error', () => undefined);
  const slowClosed = new Promise<void>((r) => slow.once('close', () => r()));
  await new Promise<void>((r) => slow.once('connect', () => r()));
  slow.write('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n');
  const trickle = setInterval(() => slow.write('x'), 200);
  t.teardown(() => clearInterval(trickle));
  const waited = await Promise.race([slowClosed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000))]);
  clearInterval(trickle);
  t.ok(waited, 'a trickled body on a GET: the connection is closed after the linger');
});

/** A PUT or POST that says `Expect: 100-continue` and sends its body only if told to continue. */
function expectContinue(url: URL, method: string, body: Buffer, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; continued: boolean; text: string }>((resolve, reject) => {
    let continued = false;
    const req = http.request(url, {
      method,
      headers: { expect: '100-continue', 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...headers },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, text }));
      if (!continued) req.destroy(); // refused before the body: it is never sent
    });
    req.on('error', (e) => (continued ? reject(e) : undefined));
    req.flushHeaders();
  });
}

t.test('Expect: 100-continue: a refusal before the body is answered without 100 Continue, so the body is never sent', async (t) => {
  const { reg, up, pub } = await smallRegistry(t);
  const big = Buffer.alloc(2 * 1024 * 1024);
  const small = Buffer.from('not a box at all, but small enough');

  const unknown = await expectContinue(new URL(`${reg.url}/api/v1/upload/${'x'.repeat(43)}`), 'PUT', small);
  t.equal(unknown.status, 404, 'an unknown upload URL is answered 404');
  t.equal(unknown.continued, false, 'without 100 Continue');
  const tooBig = await expectContinue(up, 'PUT', big);
  t.equal(tooBig.status, 413, 'a declared length over the limit is answered 413');
  t.equal(tooBig.continued, false, 'without 100 Continue');
  const anonymous = await expectContinue(new URL(`${reg.url}/api/v1/boxes`), 'POST', Buffer.from('{}'), { 'content-type': 'application/json' });
  t.equal(anonymous.status, 401, 'an anonymous write is answered 401');
  t.equal(anonymous.continued, false, 'without 100 Continue');

  const claimed = await expectContinue(up, 'PUT', small);
  t.equal(claimed.continued, true, 'an upload URL that is claimed is told to continue');
  t.match(JSON.parse(claimed.text), { code: 'MALFORMED' }, 'and its body is read and judged');
  const json = await expectContinue(new URL(`${reg.url}/api/v1/boxes`), 'POST', Buffer.from(JSON.stringify({ box: { username: 'acme', name: 'web' } })), {
    'content-type': 'application/json',
    authorization: `Bearer ${pub}`,
  });
  t.equal(json.continued, true, 'a write with a valid token is told to continue');
  t.ok(json.status < 300, `and its body is read (${json.status} ${json.text})`);
});
