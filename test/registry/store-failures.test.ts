/**
 * An object store that misbehaves: a fake S3 endpoint on loopback that can
 * hang requests or lose answers, against the registry's S3 writer and a
 * real registry process. Nothing waits on a silent store for ever: an
 * upload it holds ends with its client (the idle limit) and leaves nothing
 * behind, abort() settles at once, finish() never reports a discarded
 * upload as stored, and an answer the store lost after completing is not
 * taken for a failure. (test/engines.test.ts runs the writer against Swift.)
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { S3BlobStore } from '../../src/registry/blobs/s3.js';
import { newObjectKey } from '../../src/registry/blobs/store.js';
import { engines, stopEngines } from './engines.js';
import { box, createOrg, key, newLab, sleep, startRegistry, token, until, uploadUrl } from './lab.js';
import { pseudoRandom, requireTool } from '../helpers.js';

const MiB = 1024 * 1024;
t.teardown(stopEngines);
type Kind = 'create' | 'part' | 'complete' | 'abort' | 'delete' | 'put' | 'head' | 'other';

interface FakeStore {
  endpoint: string;
  /** Every request, as "kind part", in order. */
  log: string[];
  objects: Map<string, Buffer>;
  /** Multipart uploads created and neither completed nor aborted. */
  open: Set<string>;
}

/**
 * A minimal S3 endpoint. `behave` may take a request over (return true):
 * 'hang' reads the body and never answers; 'lose' does the work, then drops
 * the connection without an answer.
 */
async function fakeStore(t: Test, behave: (kind: Kind, part: number, attempt: number) => 'hang' | 'lose' | null = () => null): Promise<FakeStore> {
  const store: FakeStore = { endpoint: '', log: [], objects: new Map(), open: new Set() };
  const parts = new Map<string, Buffer>();
  const attempts = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  let ids = 0;
  const server = http.createServer(async (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const q = u.searchParams;
    const kind: Kind =
      req.method === 'POST' && q.has('uploads')
        ? 'create'
        : req.method === 'PUT' && q.has('partNumber')
          ? 'part'
          : req.method === 'POST' && q.has('uploadId')
            ? 'complete'
            : req.method === 'DELETE' && q.has('uploadId')
              ? 'abort'
              : req.method === 'DELETE'
                ? 'delete'
                : req.method === 'PUT'
                  ? 'put'
                  : req.method === 'HEAD'
                    ? 'head'
                    : 'other';
    const part = Number(q.get('partNumber') ?? 0);
    const attempt = (attempts.get(`${kind}:${part}`) ?? 0) + 1;
    attempts.set(`${kind}:${part}`, attempt);
    store.log.push(part ? `${kind} ${part}` : kind);
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return; // the client gave up on the request (an abort)
    }
    const body = Buffer.concat(chunks);
    const how = behave(kind, part, attempt);
    if (how === 'hang') return;
    const answer = (status: number, text = '', headers: Record<string, string> = {}) => {
      if (how === 'lose') return res.socket?.destroy();
      res.writeHead(status, { 'content-type': 'application/xml', ...headers });
      res.end(text);
    };
    const id = q.get('uploadId') ?? '';
    switch (kind) {
      case 'create': {
        const newId = `up${++ids}`;
        store.open.add(newId);
        return answer(200, `<InitiateMultipartUploadResult><UploadId>${newId}</UploadId></InitiateMultipartUploadResult>`);
      }
      case 'part':
        parts.set(`${id}:${part}`, body);
        return answer(200, '', { etag: `"${crypto.createHash('md5').update(body).digest('hex')}"` });
      case 'complete': {
        if (!store.open.has(id)) return answer(404, '<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>');
        const numbers = [...body.toString().matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
        store.objects.set(u.pathname, Buffer.concat(numbers.map((n) => parts.get(`${id}:${n}`) ?? Buffer.alloc(0))));
        store.open.delete(id);
        return answer(200, '<CompleteMultipartUploadResult><ETag>"x-1"</ETag></CompleteMultipartUploadResult>');
      }
      case 'abort':
        store.open.delete(id);
        return answer(204);
      case 'delete':
        store.objects.delete(u.pathname);
        return answer(204);
      case 'put':
        store.objects.set(u.pathname, body);
        return answer(200, '', { etag: '"e"' });
      case 'head': {
        const o = store.objects.get(u.pathname);
        if (u.pathname.split('/').filter(Boolean).length === 1) return answer(200); // the bucket
        return o ? answer(200, '', { 'content-length': String(o.length) }) : answer(404);
      }
      default:
        return answer(200, '<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>');
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  store.endpoint = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return store;
}

const settled = <T>(p: Promise<T>, ms: number) =>
  Promise.race([
    p.then(
      () => 'resolved',
      (e: { code?: string }) => `rejected ${e.code ?? ''}`.trim(),
    ),
    new Promise<string>((r) => setTimeout(() => r('pending'), ms).unref()),
  ]);

function writerOn(t: Test, endpoint: string, idleTimeoutMs = 60_000) {
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  const store = new S3BlobStore({ endpoint, bucket: 'b', region: 'r', idleTimeoutMs });
  t.teardown(() => store.close());
  return store;
}

/** A registry process (embedded database) whose blobs go to `fake`, and a signed box of `mib` MiB sent to it by curl. */
async function registryOn(t: Test, fake: FakeStore, env: NodeJS.ProcessEnv, mib: number, seed: number) {
  const embedded = engines('all').available.find((e) => e.name === 'embedded')!;
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir), { ...env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const file = box(lab, [key(lab)], 'acme/app', '1.0.0', {
    files: { Vagrantfile: 'Vagrant.configure("2") do |config| end\n', 'box-disk1.vmdk': pseudoRandom(mib * MiB, seed) },
  });
  const reg = await startRegistry(lab, ['--s3-endpoint', fake.endpoint, '--s3-bucket', 'b', '--s3-region', 'r']);
  t.teardown(() => reg.stop('SIGKILL'));
  const up = await uploadUrl(reg.url, pub, 'acme/app', '1.0.0');
  const curl = spawn('curl', ['-sS', '-m', '60', '-X', 'PUT', '-T', file, '-H', 'Content-Type: application/octet-stream', up.upload_path], { stdio: 'ignore' });
  t.teardown(() => curl.kill());
  return { lab, reg, curl };
}

t.test('a store that never answers a part: abort() settles at once, the waiting write fails, the upload is aborted and deleted', async (t) => {
  const fake = await fakeStore(t, (kind) => (kind === 'part' ? 'hang' : null));
  const store = writerOn(t, fake.endpoint);
  const w = await store.create(newObjectKey());
  const data = pseudoRandom(MiB, 7);
  let waiting: Promise<void> | void = undefined;
  for (let i = 0; i < 64 && !waiting; i++) waiting = w.write(data);
  t.ok(waiting, 'after 4 parts in flight, write() waits');
  t.equal(await settled(Promise.resolve(waiting), 300), 'pending', 'and keeps waiting while the store is silent');
  t.equal(await settled(w.abort(), 5000), 'resolved', 'abort() settles without the store answering the parts');
  t.equal(await settled(Promise.resolve(waiting), 100), 'rejected IO', 'the write that waited fails');
  t.ok(fake.log.includes('abort') && fake.log.includes('delete'), `the multipart upload is aborted and the object deleted (${fake.log.join(', ')})`);
  t.equal(fake.open.size, 0, 'no multipart upload left');
});

t.test('a silent store fails the upload after the idle timeout (bounded), instead of holding it', async (t) => {
  const fake = await fakeStore(t, (kind) => (kind === 'part' ? 'hang' : null));
  const store = writerOn(t, fake.endpoint, 500);
  const w = await store.create(newObjectKey());
  const data = pseudoRandom(MiB, 8);
  const outcome = (async () => {
    for (let i = 0; i < 64; i++) await w.write(data);
    await w.finish();
  })();
  const result = await settled(outcome, 20_000);
  t.equal(result, 'rejected UNAVAILABLE', 'the writes fail (the store is not reachable) once every attempt of a part timed out');
  await w.abort();
  t.equal(fake.open.size, 0, 'no multipart upload left');
  t.equal(fake.log.filter((l) => l === 'part 1').length, 3, 'the part was sent 3 times');
});

t.test('abort() during finish(): finish does not report the discarded upload as stored', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const fake = await fakeStore(t);
  const store = writerOn(t, fake.endpoint);
  const w = await store.create(newObjectKey());
  const data = pseudoRandom(MiB, 9);
  for (let i = 0; i < 9; i++) await w.write(data);
  // hold the last part until abort() has run
  const client = (store as unknown as { client: { middlewareStack: { add: (m: unknown, o: unknown) => void } } }).client;
  client.middlewareStack.add(
    (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      if (context.commandName === 'CompleteMultipartUploadCommand') await gate;
      return next(args);
    },
    { step: 'initialize', name: 'testHoldComplete' },
  );
  const finishing = w.finish();
  await until(() => fake.log.includes('part 2'));
  const aborting = w.abort();
  release();
  t.equal(await settled(finishing, 5000), 'rejected IO', 'finish() fails');
  await aborting;
  t.equal(fake.objects.size, 0, 'nothing is stored');
  t.equal(fake.open.size, 0, 'no multipart upload left');
});

t.test('the store completed the upload but its answer was lost: the object is there, so finish() succeeds', async (t) => {
  const fake = await fakeStore(t, (kind, _part, attempt) => (kind === 'complete' && attempt === 1 ? 'lose' : null));
  const store = writerOn(t, fake.endpoint);
  const key = newObjectKey();
  const w = await store.create(key);
  const data = pseudoRandom(10 * MiB, 10);
  for (let i = 0; i < data.length; i += MiB) await w.write(data.subarray(i, i + MiB));
  await w.finish();
  t.same(
    fake.log.filter((l) => l === 'complete' || l === 'head'),
    ['complete', 'complete', 'head'],
    'sent again by the SDK, told the upload is gone, the object checked',
  );
  const stored = [...fake.objects.values()][0];
  t.ok(stored?.equals(data), 'the object holds the bytes written');
});

t.test('a registry on a silent store: the upload ends with its client, the store is told to discard it, and the process stops on SIGTERM', async (t) => {
  if (!requireTool(t, 'curl', 'curl')) return;
  const fake = await fakeStore(t, (kind) => (kind === 'part' ? 'hang' : null));
  const { lab, reg, curl } = await registryOn(t, fake, { BOXSIG_REGISTRY_UPLOAD_IDLE_SECONDS: '2', BOXSIG_REGISTRY_SHUTDOWN_GRACE_SECONDS: '1' }, 60, 11);
  await new Promise((r) => curl.on('close', r));
  await until(() => fake.log.includes('abort') && fake.log.includes('delete'), 15_000);
  t.pass(`the store was told to discard the upload: ${fake.log.filter((l) => !l.startsWith('part')).join(', ')}`);
  t.equal(fake.open.size, 0, 'no multipart upload left');
  const code = await Promise.race([reg.stop(), new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
  t.equal(code, 0, 'the process exits 0 on SIGTERM');
  const session = await lab.inst.query<{ state: string; code: string }>('SELECT state, code FROM uploads');
  t.match(session, [{ state: 'failed', code: 'NETWORK' }], 'the upload session failed with NETWORK (the idle limit)');
});

t.test('a client that resets its connection as soon as its upload is accepted does not bring the registry down', async (t) => {
  // on PostgreSQL (where configured) the upload's first transaction is slow enough to reset during it
  const available = engines('all').available;
  const engine = available.find((e) => e.name === 'postgres') ?? available.find((e) => e.name === 'embedded')!;
  const dir = t.testdir({});
  const lab = newLab(dir, await engine.create(dir));
  t.teardown(() => lab.inst.close());
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop('SIGKILL'));
  for (let i = 0; i < 8; i++) {
    const up = new URL((await uploadUrl(reg.url, pub, 'acme/app', `1.0.${i}`)).upload_path);
    const socket = net.connect(Number(up.port), up.hostname);
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.write(
      `PUT ${up.pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${64 * MiB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await until(() => answer.includes('100 Continue'), 10_000);
    socket.write(Buffer.alloc(4096));
    await (i % 2 ? sleep(5) : new Promise((r) => setImmediate(r)));
    socket.resetAndDestroy();
  }
  await sleep(500);
  t.equal(reg.proc.exitCode, null, 'the registry is still running');
  t.equal((await fetch(`${reg.url}/healthz`)).status, 200, 'and answers');
  await until(async () => (await lab.inst.query<{ state: string }>("SELECT state FROM uploads WHERE state = 'receiving'")).length === 0, 10_000);
  const states = await lab.inst.query<{ state: string; code: string }>('SELECT DISTINCT state, code FROM uploads');
  t.same(states, [{ state: 'failed', code: 'NETWORK' }], 'every upload failed with NETWORK');
});

t.test('shutdown with an upload waiting for the store to complete it: the upload is discarded, the process exits', async (t) => {
  if (!requireTool(t, 'curl', 'curl')) return;
  const fake = await fakeStore(t, (kind) => (kind === 'complete' ? 'hang' : null));
  const { lab, reg } = await registryOn(t, fake, { BOXSIG_REGISTRY_SHUTDOWN_GRACE_SECONDS: '1' }, 20, 12);
  await until(() => fake.log.includes('complete'), 30_000);
  const code = await Promise.race([reg.stop(), new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
  t.equal(code, 0, 'SIGTERM: the process exits 0 although the store never answers');
  t.ok(fake.log.includes('abort'), `the store was told to discard the upload (${fake.log.filter((l) => !l.startsWith('part')).join(', ')})`);
  t.equal(fake.objects.size, 0, 'nothing is stored');
  const session = await lab.inst.query<{ state: string; code: string }>('SELECT state, code FROM uploads');
  t.match(session, [{ state: 'failed', code: 'UNAVAILABLE' }], 'the upload session failed: the registry was shutting down');
});
