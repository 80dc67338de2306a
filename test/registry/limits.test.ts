/**
 * Per-client connection limits (issue 14, "limits"): one client address holds
 * at most `connectionsPerClient` connections to a registry process (extra ones
 * are closed before anything is read from them), and a client that trickles
 * its request headers (slow-loris) is answered 408 and closed after
 * `headersSeconds`. Engine-independent: the embedded engine.
 */
import t from 'tap';
import net from 'node:net';
import { connectionsPerClient, CONNECTIONS_PER_CLIENT } from '../../src/registry/config.js';
import { engines, stopEngines } from './engines.js';
import { getJson, newLab, startRegistry } from './lab.js';

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
