/**
 * boxsig add against servers that misbehave (issue 16, classes 3 and 6):
 * credentials in URLs (basic auth in a header, same origin only, never
 * printed or stored), content encodings (identity asked for, the bytes as
 * received are hashed), and every failure — including one thrown inside a
 * dependency — ends with the right exit status, exactly one JSON object under
 * --json, no stack trace and nothing left in the Vagrant home.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { ROOT, boxsigAsync, isolatedEnv, makeBox, makeKey, sign, type KeyFiles, type RunResult, trustStoreText } from './helpers.js';
import { basicAuth, hostileServer, raw, redirect, send, stall, type HostileServer } from './hostile-server.js';

const USER = 'deploy';
const PASSWORD = 'pw-0f9d8c7b6a5e4d3c';
const QUERY_SECRET = 'qs-1a2b3c4d5e6f7a8b';

interface World {
  dir: string;
  env: NodeJS.ProcessEnv;
  key: KeyFiles;
  box: string;
  boxBytes: Buffer;
  sha256: string;
}

function world(t: any): World {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const base = makeBox(path.join(dir, 'base.box'));
  const box = path.join(dir, 'web-1.box');
  const r = sign(base, [key], ['--name', 'acme/web', '--version', '1.0.0', '-o', box], env);
  if (r.code !== 0) throw new Error(r.stderr);
  const boxBytes = fs.readFileSync(box);
  return { dir, env, key, box, boxBytes, sha256: crypto.createHash('sha256').update(boxBytes).digest('hex') };
}

async function server(t: any): Promise<HostileServer> {
  const s = await hostileServer();
  t.teardown(() => s.close());
  return s;
}

/** Every file name and content under DIR (recursively), for secret searches. */
function everythingUnder(dir: string): string {
  if (!fs.existsSync(dir)) return '';
  let all = '';
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath ?? (e as any).path, e.name);
    all += `${p}\n`;
    if (e.isFile()) all += fs.readFileSync(p, 'latin1');
  }
  return all;
}

function noSecret(t: any, what: string, text: string, secrets = [PASSWORD]) {
  for (const s of secrets) t.notOk(text.includes(s), `${what} does not contain the secret ${s.slice(0, 3)}…`);
}

function entries(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/**
 * The error contract: exit status, exactly one JSON object with ok:false and
 * the code, one error line on stderr, no stack trace, nothing installed and no
 * staging directory left.
 */
function failsCleanly(t: any, w: World, r: RunResult, exit: number, code: string | string[], what: string) {
  t.equal(r.code, exit, `${what}: exit ${exit}`, { stderr: r.stderr });
  let parsed: any = null;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    parsed = null;
  }
  t.ok(parsed, `${what}: stdout is exactly one JSON object`, { stdout: r.stdout });
  t.equal(parsed?.ok, false, `${what}: ok is false`);
  if (Array.isArray(code)) t.ok(code.includes(parsed?.code), `${what}: code ${parsed?.code} is one of ${code.join(', ')}`);
  else t.equal(parsed?.code, code, `${what}: code ${code}`);
  t.equal(r.stderr.match(/^boxsig: (error|REFUSED)/gm)?.length, 1, `${what}: one error line`, { stderr: r.stderr });
  t.notMatch(r.stderr, /^\s+at .*:\d+:\d+\)?$/m, `${what}: no stack trace`);
  const home = w.env.VAGRANT_HOME!;
  t.same(entries(path.join(home, 'tmp')), [], `${what}: no staging debris`);
  t.same(entries(path.join(home, 'boxes')), [], `${what}: nothing installed`);
}

t.test('credentials in URLs: basic auth in a header, to the same origin only, never printed or stored', async (t) => {
  const w = world(t);
  const a = await server(t);
  const b = await server(t);
  const auth = (inner: Parameters<typeof basicAuth>[2]) => basicAuth(USER, PASSWORD, inner);
  const catalog = {
    name: 'acme/web',
    versions: [{ version: '1.0.0', providers: [{ name: 'virtualbox', url: `${a.url}/private/old/web-1.box`, checksum_type: 'sha256', checksum: w.sha256 }] }],
  };
  a.route('/private/acme/web', auth(send(JSON.stringify(catalog), { 'content-type': 'application/json' })));
  a.route('/private/old/web-1.box', auth(redirect(`${a.url}/private/boxes/web-1.box`)));
  a.route('/private/boxes/web-1.box', auth(send(w.boxBytes)));
  a.route('/private/elsewhere.box', auth(redirect(`${b.url}/public/web-1.box`)));
  a.route('/private/key.asc', auth(send(fs.readFileSync(w.key.public))));
  b.route('/public/web-1.box', send(w.boxBytes));
  const withCreds = (u: string) => u.replace('http://', `http://${USER}:${PASSWORD}@`);
  const outputs: string[] = [];
  const run = async (args: string[], env: NodeJS.ProcessEnv = w.env) => {
    const r = await boxsigAsync(args, { env });
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  // a catalog behind basic auth; its box on the same origin, through a redirect
  let r = await run(['add', withCreds(`${a.url}/private/acme/web`), '--json']);
  t.equal(r.code, 0, 'the add succeeds', { stderr: r.stderr });
  t.equal(r.json?.metadataUrl, `${a.url}/private/acme/web`, 'metadata_url without the credentials');
  t.equal(r.json?.source, `${a.url}/private/boxes/web-1.box`);
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  t.same(
    a.hits.map((h) => `${h.method} ${h.path} ${h.headers.authorization === expected ? 'auth' : 'none'}`),
    ['HEAD /private/acme/web auth', 'GET /private/acme/web auth', 'GET /private/old/web-1.box auth', 'GET /private/boxes/web-1.box auth'],
    'the credentials went in a header to every request of that origin',
  );

  // the same, human output, through VAGRANT_SERVER_URL
  r = await run(['add', 'acme/web', '--force'], { ...w.env, VAGRANT_SERVER_URL: withCreds(`${a.url}/private`) });
  t.equal(r.code, 0, 'org/name on a VAGRANT_SERVER_URL with credentials', { stderr: r.stderr });
  t.match(r.stderr, `from ${a.url}/private/old/web-1.box`, 'the box URL is shown, without credentials');

  // a redirect to another origin does not take the credentials along
  r = await run(['add', withCreds(`${a.url}/private/elsewhere.box`), '--name', 'acme/web', '--force', '--json']);
  t.equal(r.code, 0, 'the box from the other origin is added', { stderr: r.stderr });
  t.ok(b.hits.length > 0, 'the other origin was asked');
  t.ok(
    b.hits.every((h) => h.headers.authorization === undefined),
    'no Authorization header to the other origin',
  );

  // wrong password: a NETWORK failure that names the URL without the secret
  r = await run(['add', `http://${USER}:wrong-${PASSWORD}@127.0.0.1:${a.port}/private/boxes/web-1.box`, '--name', 'acme/web', '--force', '--json']);
  t.equal(r.code, 3);
  t.equal(r.json?.code, 'NETWORK');
  t.match(r.json?.message, /HTTP 401/);

  // secret-looking query parameters are redacted wherever a URL is shown
  r = await run(['add', `${a.url}/missing.box?X-Amz-Signature=${QUERY_SECRET}&token=${QUERY_SECRET}&arch=amd64`, '--name', 'acme/web', '--json']);
  t.equal(r.code, 3);
  t.match(r.json?.message, /X-Amz-Signature=REDACTED&token=REDACTED&arch=amd64/, 'other parameters stay');

  // key import from a URL with credentials
  r = await run(['key', 'import', withCreds(`${a.url}/private/key.asc`), '--json']);
  t.equal(r.code, 0, 'key import with basic auth', { stderr: r.stderr });
  t.equal(r.json?.imported?.[0]?.source, `${a.url}/private/key.asc`);

  // verify --dir --record --source (what the Vagrant plugin passes) stores the scrubbed URL
  r = await run(['trust', 'forget', 'acme/web']);
  t.equal(r.code, 0);
  const installed = path.join(w.env.VAGRANT_HOME!, 'boxes', 'acme-VAGRANTSLASH-web', '1.0.0', 'virtualbox');
  r = await run([
    'verify',
    '--dir',
    installed,
    '--name',
    'acme/web',
    '--version',
    '1.0.0',
    '--provider',
    'virtualbox',
    '--record',
    '--source',
    withCreds(`${a.url}/private/old/web-1.box?access_token=${QUERY_SECRET}`),
    '--json',
  ]);
  t.equal(r.code, 0, 'verify --dir --record', { stderr: r.stderr });
  const trust = trustStoreText(w.env.BOXSIG_HOME!);
  t.match(trust, `${a.url}/private/old/web-1.box?access_token=REDACTED`, 'the trust record keeps the scrubbed source');
  r = await run(['trust', 'list']);
  t.equal(r.code, 0);

  noSecret(t, 'stdout and stderr of every command', outputs.join('\n'), [PASSWORD, QUERY_SECRET]);
  noSecret(t, 'BOXSIG_HOME', everythingUnder(w.env.BOXSIG_HOME!), [PASSWORD, QUERY_SECRET]);
  noSecret(t, 'VAGRANT_HOME', everythingUnder(w.env.VAGRANT_HOME!), [PASSWORD, QUERY_SECRET]);
});

t.test('content encodings: identity is asked for and the bytes as received are hashed', async (t) => {
  const w = world(t);
  const s = await server(t);
  // A .box is a gzip file: servers that map .gz-like files to "Content-Encoding: gzip" send it as is.
  for (const enc of ['gzip', 'br', 'deflate', 'x-unknown', 'gzip, br']) {
    const p = `/label-${enc.replace(/\W+/g, '-')}.box`;
    s.route(p, send(w.boxBytes, { 'content-encoding': enc }));
    const r = await boxsigAsync(['add', `${s.url}${p}`, '--name', 'acme/web', '--checksum', w.sha256, '--force', '--json'], { env: w.env });
    t.equal(r.code, 0, `Content-Encoding: ${enc} on the file's own bytes: added, the checksum is over the file`, { stderr: r.stderr });
    t.equal(r.json?.checksum, w.sha256);
  }
  t.ok(
    s.hits.filter((h) => h.method === 'GET').every((h) => h.headers['accept-encoding'] === 'identity'),
    'every request asks for the identity encoding',
  );
  fs.rmSync(path.join(w.env.VAGRANT_HOME!, 'boxes'), { recursive: true, force: true });

  // A server that really encodes the box: the bytes received are not the file, so the checksum is refused.
  const gz = zlib.gzipSync(w.boxBytes);
  s.route('/encoded.box', send(gz, { 'content-encoding': 'gzip' }));
  let r = await boxsigAsync(['add', `${s.url}/encoded.box`, '--name', 'acme/web', '--checksum', w.sha256, '--json'], { env: w.env });
  failsCleanly(t, w, r, 1, 'CHECKSUM_MISMATCH', 'a gzip-encoded box with the file checksum');
  // ... and without a checksum the archive is what is wrong
  r = await boxsigAsync(['add', `${s.url}/encoded.box`, '--name', 'acme/web', '--json'], { env: w.env });
  failsCleanly(t, w, r, 1, 'MALFORMED', 'a gzip-encoded box without a checksum');
  // brotli "encoding" of garbage: never decoded, so never a decoder crash
  s.route('/garbage-br.box', send(crypto.randomBytes(200_000), { 'content-encoding': 'br' }));
  r = await boxsigAsync(['add', `${s.url}/garbage-br.box`, '--name', 'acme/web', '--json'], { env: w.env });
  failsCleanly(t, w, r, 1, 'MALFORMED', 'random bytes labelled br');
});

t.test('misbehaving servers: every failure keeps the error contract', async (t) => {
  const w = world(t);
  const s = await server(t);
  const n = w.boxBytes.length;
  const cases: Array<{ what: string; route: Parameters<HostileServer['route']>[1]; exit: number; code: string | string[]; message: RegExp; args?: string[] }> =
    [
      {
        what: 'a body shorter than its Content-Length',
        route: raw([`content-length: ${n + 5000}`], w.boxBytes),
        exit: 3,
        code: 'NETWORK',
        message: /ended before|closed|reset/,
      },
      {
        what: 'a reset in the middle of the body',
        route: raw([`content-length: ${n}`], w.boxBytes.subarray(0, n >> 1), 'reset'),
        exit: 3,
        code: 'NETWORK',
        message: /reset|closed/,
      },
      {
        what: 'a body longer than its Content-Length',
        route: raw([`content-length: ${n - 5000}`], w.boxBytes),
        exit: 1,
        code: 'MALFORMED',
        message: /truncated/,
      },
      {
        what: 'an invalid chunked encoding',
        route: raw(['transfer-encoding: chunked'], Buffer.concat([Buffer.from('10\r\n'), w.boxBytes.subarray(0, 16), Buffer.from('\r\nZZZ\r\nxx')])),
        exit: 3,
        code: 'NETWORK',
        message: /HTTP/,
      },
      { what: 'not HTTP at all', route: (_q, _r, sock) => sock.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'), exit: 3, code: 'NETWORK', message: /HTTP|closed/ },
      { what: 'a redirect loop', route: redirect('/loop.box'), exit: 3, code: 'NETWORK', message: /redirect/ },
      { what: 'a redirect to a local file', route: redirect('file:///etc/passwd'), exit: 3, code: 'NETWORK', message: /redirect.*file:/ },
      { what: 'a redirect without a location', route: (_q, res) => res.writeHead(302).end(), exit: 3, code: 'NETWORK', message: /redirect/ },
      { what: 'a stalled body with --timeout 1', route: stall(w.boxBytes, 100_000), exit: 3, code: 'NETWORK', message: /stalled/, args: ['--timeout', '1'] },
      { what: 'no answer with --timeout 1', route: () => undefined, exit: 3, code: 'NETWORK', message: /did not answer/, args: ['--timeout', '1'] },
      { what: 'HTTP 500', route: send('oops', {}, 500), exit: 3, code: 'NETWORK', message: /HTTP 500/ },
    ];
  for (const [i, c] of cases.entries()) {
    const p = i === 5 ? '/loop.box' : `/case-${i}.box`;
    s.route(p, c.route);
    const r = await boxsigAsync(['add', `${s.url}${p}`, '--name', 'acme/web', ...(c.args ?? []), '--json'], { env: w.env, timeout: 120_000 });
    failsCleanly(t, w, r, c.exit, c.code, c.what);
    t.match(r.json?.message ?? '', c.message, `${c.what}: ${r.json?.message}`);
  }
  t.test('a bad --timeout is a usage error', async (t) => {
    const r = await boxsigAsync(['add', `${s.url}/case-0.box`, '--name', 'acme/web', '--timeout', 'soon', '--json'], { env: w.env });
    failsCleanly(t, w, r, 2, 'USAGE', '--timeout soon');
  });
});

t.test('an exception thrown inside a dependency keeps the error contract', async (t) => {
  const w = world(t);
  const s = await server(t);
  s.route('/web.box', send(w.boxBytes));
  const preload = path.join(ROOT, 'test', 'fixtures', 'throw-in-socket.mjs');
  const env = { ...w.env, NODE_OPTIONS: `--import=${preload}`, BOXSIG_TEST_THROW_PORT: String(s.port), BOXSIG_TEST_THROW_AFTER: '3' };
  // chunk 1 answers the HEAD; 2 carries the GET's headers; later ones the body
  for (const after of ['1', '2', '3', '6']) {
    const r = await boxsigAsync(['add', `${s.url}/web.box`, '--name', 'acme/web', '--json'], { env: { ...env, BOXSIG_TEST_THROW_AFTER: after } });
    failsCleanly(t, w, r, 3, 'INTERNAL', `an assertion in a socket callback at chunk ${after}`);
    t.match(r.json?.message, /simulated assertion/);
  }
  // human output: one error line too
  const h = await boxsigAsync(['add', `${s.url}/web.box`, '--name', 'acme/web'], { env });
  t.equal(h.code, 3);
  t.equal(h.stderr.match(/^boxsig: error \(INTERNAL\)/gm)?.length, 1, 'one error line', { stderr: h.stderr });
  t.same(entries(path.join(w.env.VAGRANT_HOME!, 'tmp')), [], 'no staging debris');
});
