/**
 * The transparency log and signed catalogs, end to end on real registries
 * (each database and each blob store: engines("each")), with the real CLI as publisher, consumer and monitor:
 * - publish answers carry a verified inclusion proof; `boxsig add ORG/NAME`
 *   checks the signed catalog, the entry's inclusion and the log's
 *   consistency, and records what it saw;
 * - a registry that shows one consumer a forked log (a proxy switching to a
 *   registry with the same key and another history) is refused: SPLIT_VIEW;
 * - `boxsig log monitor` shows a publication made with a stolen key;
 * - a replayed catalog (ROLLBACK), an expired one (STALE_CATALOG), one mixing
 *   two snapshots (MIXED_CATALOG), one stripped of its statement (UNSIGNED),
 *   and a changed registry key (KEY_CHANGED) are refused;
 * - several registry processes on one database never fork the log;
 * - plain `vagrant box add` still reads the signed catalog.
 */
import t from 'tap';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { boxsigAsync, requireTool } from '../helpers.js';
import { engines, reportUnavailable, type Engine } from './engines.js';
import { box, createOrg, getJson, key, mustAdmin, newLab, publish, startRegistry, token, vagrant, type Lab, type Running } from './lab.js';
import { generateSignerKey, parseSignerKey } from '../../src/tlog/note.js';
import { signStatement, openStatement } from '../../src/tlog/statement.js';
import { parseVerifierKey } from '../../src/tlog/note.js';

const { available, unavailable } = engines('each');
reportUnavailable(t, unavailable);

/** A consumer's `boxsig add ORG/NAME` through VAGRANT_SERVER_URL, with its own Vagrant home. */
function add(lab: Lab, server: string, name: string, args: string[] = []) {
  return boxsigAsync(['add', name, '--json', '--vagrant-home', path.join(lab.dir, `vh-${Math.random().toString(36).slice(2)}`), ...args], {
    env: { ...lab.env, VAGRANT_SERVER_URL: server },
  });
}

function monitor(lab: Lab, server: string, scope: string, args: string[] = []) {
  return boxsigAsync(['log', 'monitor', scope, '--registry', server, '--json', ...args], { env: lab.env });
}

interface Proxy {
  url: string;
  /** Where requests go. */
  upstream: string;
  /** Answer these paths (exactly) with this JSON text (or this body and content type) instead. */
  override: Map<string, string | { type: string; body: string }>;
  close(): Promise<void>;
}

/** A test proxy in front of a registry: forwards GET/HEAD, or answers with a rewritten catalog. */
async function startProxy(upstream: string): Promise<Proxy> {
  const p: Proxy = { url: '', upstream, override: new Map(), close: async () => undefined };
  const server = http.createServer(async (req, res) => {
    const fake = p.override.get(req.url ?? '');
    if (fake !== undefined) {
      const { type, body } = typeof fake === 'string' ? { type: 'application/json', body: fake } : fake;
      res.writeHead(200, { 'content-type': type });
      return res.end(req.method === 'HEAD' ? undefined : body);
    }
    try {
      const r = await fetch(`${p.upstream}${req.url}`, { method: req.method, headers: { accept: String(req.headers.accept ?? '*/*') }, redirect: 'manual' });
      const headers: Record<string, string> = {};
      for (const h of ['content-type', 'location', 'content-length']) if (r.headers.get(h)) headers[h] = r.headers.get(h)!;
      res.writeHead(r.status, headers);
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(await r.arrayBuffer()));
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  p.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  p.close = () => new Promise((r) => server.close(() => r()));
  return p;
}

async function rawCatalog(url: string, name: string): Promise<string> {
  return (await fetch(`${url}/${name}`)).text();
}

async function world(t: any, e: Engine, registryKey = generateSignerKey('boxes.test/acme').signerKey, sub = 'a') {
  if (!fs.existsSync(t.testdirName)) t.testdir({});
  const dir = path.join(t.testdirName, sub);
  fs.mkdirSync(dir, { recursive: true });
  const inst = await e.create(dir);
  t.teardown(() => inst.close());
  const lab = newLab(dir, inst, { BOXSIG_REGISTRY_KEY: registryKey });
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  createOrg(lab, 'acme');
  return { lab, reg, registryKey, pub: token(lab, 'acme', 'publish'), signer: key(lab, 'Acme CI <ci@acme.example>') };
}

for (const e of available) {
  t.test(`${e.name}: publish carries a verified inclusion proof; add checks the signed catalog and the log; monitor lists it`, async (t) => {
    const { lab, reg, pub, signer } = await world(t, e);
    const p1 = await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.0.0'), ['--release']);
    t.equal(p1.code, 0, p1.stderr);
    t.match(p1.json?.log, { index: 0, size: 1 }, 'the publish answer proves the publication is entry 0 of the signed log');
    const p2 = await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.1.0'), ['--release']);
    t.match(p2.json?.log, { index: 1, size: 2 });

    const a = await add(lab, reg.url, 'acme/web');
    t.equal(a.code, 0, a.stdout + a.stderr);
    t.match(a.json?.log, { registry: reg.url, index: 1, size: 2, serial: 2 }, 'the added box is entry 1 of the log; the catalog is serial 2');
    t.equal(a.json?.log?.firstUse, false, 'boxsig publish recorded the registry key already (same BOXSIG_HOME)');
    const human = await boxsigAsync(['add', 'acme/web', '--vagrant-home', path.join(lab.dir, 'vh-human'), '--box-version', '1.0.0'], {
      env: { ...lab.env, VAGRANT_SERVER_URL: reg.url, BOXSIG_HOME: path.join(lab.dir, 'other-home') },
    });
    t.match(human.stderr, /FIRST USE of the registry/, 'a first use is said loudly');
    const recorded = JSON.parse(fs.readFileSync(path.join(lab.env.BOXSIG_HOME!, 'registries.json'), 'utf8'));
    t.match(recorded.registries[reg.url], { checkpoint: { size: 2 }, catalogs: { 'acme/web': { serial: 2 } } }, 'what was verified is recorded');

    const m = await monitor(lab, reg.url, 'acme/web');
    t.equal(m.code, 0, m.stdout + m.stderr);
    t.same(
      m.json?.entries.map((x: any) => [x.index, x.kind, x.version, x.signers]),
      [
        [0, 'publication', '1.0.0', [signer.fingerprint]],
        [1, 'publication', '1.1.0', [signer.fingerprint]],
      ],
    );
    const since = await monitor(lab, reg.url, 'acme', ['--since', '1']);
    t.same(
      since.json?.entries.map((x: any) => x.version),
      ['1.1.0'],
      '--since: only what came after',
    );

    // the log endpoints refuse nonsense with a usage error, not a crash
    t.equal((await getJson(`${reg.url}/boxsig/v1/log/inclusion?index=5&size=2`)).status, 400);
    t.equal((await getJson(`${reg.url}/boxsig/v1/log/consistency?from=3&to=2`)).status, 400);
    t.equal((await getJson(`${reg.url}/boxsig/v1/log/entries?start=x&end=2`)).status, 400);

    // key events (audit actions key.*, escrow.*, org.policy) are logged in their transaction: registering a key is key.register
    const orgKey = key(lab, 'Acme Org <org@acme.example>');
    mustAdmin(lab, ['org', 'key', 'acme', orgKey.public]);
    const keys = await monitor(lab, reg.url, 'acme', ['--since', '2']);
    t.match(
      keys.json?.entries,
      [{ index: 2, kind: 'key', action: 'key.register', org: 'acme', fingerprints: [orgKey.fingerprint] }],
      'a registered org key is in the log',
    );
    const rows = await lab.inst.query<{ n: number }>('SELECT COUNT(*) AS n FROM log_entries');
    t.equal(Number(rows[0].n), 3);
  });
}

const embedded = available.find((e) => e.name === 'embedded')!;

t.test('a forked log (a registry with the same key and another history) is detected at the next add', async (t) => {
  const registryKey = generateSignerKey('boxes.test/acme').signerKey;
  const honest = await world(t, embedded, registryKey, 'honest');
  const evil = await world(t, embedded, registryKey, 'evil');
  t.equal((await publish(honest.lab, honest.reg.url, honest.pub, box(honest.lab, [honest.signer], 'acme/web', '1.0.0'), ['--release'])).code, 0);
  t.equal((await publish(honest.lab, honest.reg.url, honest.pub, box(honest.lab, [honest.signer], 'acme/db', '1.0.0'), ['--release'])).code, 0);
  // the forked registry's history omits acme/web 1.0.0, and holds a box the honest log never saw
  t.equal((await publish(evil.lab, evil.reg.url, evil.pub, box(evil.lab, [evil.signer], 'acme/db', '1.0.0'), ['--release'])).code, 0);
  t.equal((await publish(evil.lab, evil.reg.url, evil.pub, box(evil.lab, [evil.signer], 'acme/web', '6.6.6'), ['--release'])).code, 0);

  const proxy = await startProxy(honest.reg.url);
  t.teardown(() => proxy.close());
  const consumer = honest.lab;
  t.equal((await add(consumer, proxy.url, 'acme/db')).code, 0, 'the consumer sees the honest log first');
  proxy.upstream = evil.reg.url;
  const forked = await add(consumer, proxy.url, 'acme/web');
  t.equal(forked.code, 1, forked.stdout);
  t.equal(forked.json?.code, 'SPLIT_VIEW', 'the forked log is refused');
  t.match(forked.json?.message, /not an extension of the one it showed before/);
  proxy.upstream = honest.reg.url;
  t.equal((await add(consumer, proxy.url, 'acme/web')).code, 0, 'the honest log is still accepted');
});

t.test('boxsig log monitor shows a publication made with a stolen key', async (t) => {
  const { lab, reg, pub, signer } = await world(t, embedded);
  t.equal((await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.0.0'), ['--release'])).code, 0);
  const first = await monitor(lab, reg.url, 'acme/web');
  const size = first.json?.size;
  t.equal(size, 1);
  // the thief has the signing key (and a token): the registry accepts the box, the log records it
  const stolen = await publish(lab, reg.url, token(lab, 'acme', 'publish', 'thief'), box(lab, [signer], 'acme/web', '1.0.1'), ['--release']);
  t.equal(stolen.code, 0);
  const seen = await boxsigAsync(['log', 'monitor', 'acme/web', '--registry', reg.url, '--since', String(size)], { env: lab.env });
  t.equal(seen.code, 0, seen.stderr);
  t.match(
    seen.stdout,
    new RegExp(`published  acme/web 1\\.0\\.1 virtualbox .*signed by ${signer.fingerprint}`),
    'the publisher sees a version it never published',
  );
  t.notMatch(seen.stdout, /1\.0\.0/, 'and only what is new since its last look');
  t.match(seen.stdout, /next: boxsig log monitor acme\/web --registry .* --since 2/);
});

t.test('signed catalogs: replay, freeze, mix, strip and a changed registry key are refused', async (t) => {
  const { lab, reg, pub, signer, registryKey } = await world(t, embedded);
  t.equal((await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.0.0'), ['--release'])).code, 0);
  const old = await rawCatalog(reg.url, 'acme/web');
  t.equal((await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.1.0'), ['--release'])).code, 0);
  const current = await rawCatalog(reg.url, 'acme/web');
  const proxy = await startProxy(reg.url);
  t.teardown(() => proxy.close());
  t.equal((await add(lab, proxy.url, 'acme/web')).code, 0, 'the consumer has seen the current catalog');

  // replay: the catalog of an earlier snapshot, genuinely signed
  proxy.override.set('/acme/web', old);
  const replay = await add(lab, proxy.url, 'acme/web');
  t.equal(replay.json?.code, 'ROLLBACK', replay.stdout);
  t.match(replay.json?.message, /older \(serial 1\) than one already seen \(serial 2\)/);

  // freeze: a statement the registry signed long ago (its key signs it here, back-dated), served past its expiry
  const signerKey = parseSignerKey(registryKey, 'test');
  const cur = JSON.parse(current);
  const st = openStatement(cur.boxsig.statement, parseVerifierKey(signerKey.verifierKey)!);
  const frozen = { ...cur, boxsig: { ...cur.boxsig, statement: signStatement({ ...st, expires: '2020-01-01T00:00:00.000Z' }, signerKey) } };
  proxy.override.set('/acme/web', JSON.stringify(frozen));
  const stale = await add(lab, proxy.url, 'acme/web');
  t.equal(stale.json?.code, 'STALE_CATALOG', stale.stdout);
  t.match(stale.json?.message, /expired at 2020-01-01/);

  // mix: the current statement over entries of two snapshots
  const mixed = { ...cur, versions: JSON.parse(old).versions };
  proxy.override.set('/acme/web', JSON.stringify(mixed));
  const mix = await add(lab, proxy.url, 'acme/web');
  t.equal(mix.json?.code, 'MIXED_CATALOG', mix.stdout);
  const added = { ...cur, versions: [...cur.versions, { ...cur.versions[0], version: '9.9.9' }] };
  proxy.override.set('/acme/web', JSON.stringify(added));
  t.equal((await add(lab, proxy.url, 'acme/web')).json?.code, 'MIXED_CATALOG', 'a version slipped in');

  // strip: a plain catalog from a server known to sign its catalogs
  const { boxsig: _gone, ...plain } = cur;
  proxy.override.set('/acme/web', JSON.stringify(plain));
  const stripped = await add(lab, proxy.url, 'acme/web');
  t.equal(stripped.json?.code, 'UNSIGNED', stripped.stdout);

  // not a catalog at all (a box, served directly): a known registry must answer ORG/NAME with a signed catalog
  proxy.override.set('/acme/web', { type: 'application/octet-stream', body: 'not a catalog' });
  const direct = await add(lab, proxy.url, 'acme/web');
  t.equal(direct.json?.code, 'UNSIGNED', direct.stdout);
  t.match(direct.json?.message, /something other than a signed catalog/);

  // a statement signed by another key
  const other = parseSignerKey(generateSignerKey('boxes.test/acme').signerKey, 'other');
  proxy.override.set('/acme/web', JSON.stringify({ ...cur, boxsig: { ...cur.boxsig, key: other.verifierKey, statement: signStatement(st, other) } }));
  const changed = await add(lab, proxy.url, 'acme/web');
  t.equal(changed.json?.code, 'KEY_CHANGED', changed.stdout);
  t.match(changed.json?.message, /boxsig log forget/);
  proxy.override.set('/acme/web', JSON.stringify({ ...cur, boxsig: { ...cur.boxsig, statement: signStatement(st, other) } }));
  t.equal((await add(lab, proxy.url, 'acme/web')).json?.code, 'BAD_SIGNATURE', 'the recorded key is used, whatever key the catalog names');

  proxy.override.clear();
  t.equal((await add(lab, proxy.url, 'acme/web')).code, 0, 'the genuine catalog is still accepted');
  t.notOk(
    fs.readdirSync(lab.env.BOXSIG_HOME!).some((f) => /\.tmp-/.test(f)),
    'no debris in the trust store',
  );
});

t.test('a pinned registry key: first use is not blind, another key is refused', async (t) => {
  const { lab, reg, pub, signer, registryKey } = await world(t, embedded);
  t.equal((await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.0.0'), ['--release'])).code, 0);
  const project = path.join(lab.dir, 'project');
  fs.mkdirSync(project);
  const wrong = generateSignerKey('boxes.test/acme').verifierKey;
  fs.writeFileSync(path.join(project, 'boxsig.json'), JSON.stringify({ registries: { [reg.url]: { key: wrong } } }));
  const env = { ...lab.env, VAGRANT_SERVER_URL: reg.url, BOXSIG_HOME: path.join(lab.dir, 'fresh-home') };
  const refused = await boxsigAsync(['add', 'acme/web', '--json', '--vagrant-home', path.join(lab.dir, 'vh-pin')], { env, cwd: project });
  t.equal(refused.json?.code, 'KEY_CHANGED', refused.stdout);
  t.match(refused.json?.message, /pinned in .*boxsig\.json/);
  fs.writeFileSync(path.join(project, 'boxsig.json'), JSON.stringify({ registries: { [reg.url]: { key: parseSignerKey(registryKey, 'k').verifierKey } } }));
  const ok = await boxsigAsync(['add', 'acme/web', '--json', '--vagrant-home', path.join(lab.dir, 'vh-pin')], { env, cwd: project });
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.notMatch(ok.stderr, /FIRST USE/, 'a pinned key is no first use');
  const printed = await boxsigAsync(['registry', 'key', ...lab.inst.flags, '--json'], { env: lab.env });
  t.equal(printed.json?.key, parseSignerKey(registryKey, 'k').verifierKey, 'boxsig registry key prints the key to pin');
});

t.test('a registry upgraded from before the log appends its earlier publications at start', async (t) => {
  const { lab, reg, pub, signer, registryKey } = await world(t, embedded);
  t.equal((await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.0.0'), ['--release'])).code, 0);
  t.equal((await publish(lab, reg.url, pub, box(lab, [signer], 'acme/db', '1.0.0'), ['--release'])).code, 0);
  await reg.stop();
  // as schema 1 left it: publications, no log
  for (const sql of [
    'UPDATE publications SET log_index = NULL',
    'DELETE FROM log_entries',
    'DELETE FROM log_hashes',
    "UPDATE log_head SET size = 0, root = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
  ]) {
    await lab.inst.query(sql);
  }
  const again = await startRegistry(lab, [], { BOXSIG_REGISTRY_KEY: registryKey });
  t.teardown(() => again.stop());
  const a = await add(lab, again.url, 'acme/db', ['--box-version', '1.0.0']);
  t.equal(a.code, 0, a.stdout + a.stderr);
  t.match(a.json?.log, { index: 1, size: 2 }, 'the earlier publications are in the log, in their order');
});

t.test('plain vagrant box add still reads a signed catalog', async (t) => {
  if (!requireTool(t, 'vagrant', 'vagrant')) return;
  const { lab, reg, pub, signer } = await world(t, embedded);
  t.equal((await publish(lab, reg.url, pub, box(lab, [signer], 'acme/web', '1.0.0'), ['--release'])).code, 0);
  t.ok((await getJson(`${reg.url}/acme/web`)).json.boxsig?.statement, 'the catalog carries the signed statement');
  const v = await vagrant(lab, ['box', 'add', 'acme/web'], { VAGRANT_SERVER_URL: reg.url });
  t.equal(v.code, 0, v.out);
  t.match((await vagrant(lab, ['box', 'list'])).out, /acme\/web\s+\(virtualbox, 1\.0\.0\)/);
});

const shared = engines('shared').available[0];
if (shared) {
  t.test(`${shared.name}: concurrent publishes through two registry processes never fork the log`, async (t) => {
    const { lab, reg, pub, signer, registryKey } = await world(t, shared);
    const second: Running = await startRegistry(lab, [], { BOXSIG_REGISTRY_KEY: registryKey });
    t.teardown(() => second.stop());
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => publish(lab, i % 2 ? second.url : reg.url, pub, box(lab, [signer], `acme/app${i % 3}`, `1.0.${i}`), ['--release'])),
    );
    t.same(
      results.map((r) => r.code),
      [0, 0, 0, 0, 0, 0],
      results.map((r) => r.stderr).join(''),
    );
    const indexes = results.map((r) => r.json?.log?.index).sort((a, b) => a - b);
    t.same(indexes, [0, 1, 2, 3, 4, 5], 'one entry each, no index twice');
    const m = await monitor(lab, second.url, 'acme');
    t.equal(m.code, 0, m.stderr);
    t.equal(m.json?.entries.length, 6, "every entry, verified against the checkpoint's root");
  });
}
