/**
 * Catalog reads are served from a per-process cache, the rows they look up
 * (org and box) included, so that a read costs no query. The cache must
 * never serve what a change took away: a box made private is refused to
 * anonymous readers at once by the process that changed it and, through
 * SQLite's data_version, by another process on the same database; a box that
 * did not exist when it was asked for is served once it is created.
 * Engine-independent: the embedded engine, two processes.
 */
import t from 'tap';
import { engines, stopEngines } from './engines.js';
import { box, catalog, createOrg, key, newLab, publish, startRegistry, token, until } from './lab.js';

t.teardown(stopEngines);
const embedded = engines('all').available.find((e) => e.name === 'embedded')!;

const status = async (url: string, tok?: string) => (await fetch(url, { headers: tok ? { authorization: `Bearer ${tok}` } : {} })).status;

t.test('cached catalog reads follow every change, in the process that made it and in another', async (t) => {
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir));
  createOrg(lab, 'acme');
  const pub = token(lab, 'acme', 'publish');
  const reader = token(lab, 'acme', 'read');
  const a = await startRegistry(lab);
  t.teardown(() => a.stop());
  const b = await startRegistry(lab);
  t.teardown(() => b.stop());
  t.equal((await publish(lab, a.url, pub, box(lab, [key(lab)], 'acme/app', '1.0.0'), ['--release'])).code, 0);
  for (const r of [a, b]) {
    for (let i = 0; i < 3; i++) t.equal(await status(`${r.url}/acme/app`), 200, 'public: served (and cached)');
  }
  const spelled = await status(`${a.url}/Acme/APP`);

  const change = await fetch(`${a.url}/api/v1/box/acme/app`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${pub}`, 'content-type': 'application/json' },
    body: JSON.stringify({ box: { is_private: true } }),
  });
  t.equal(change.status, 200, 'the box is made private');
  t.equal(await status(`${a.url}/acme/app`), 404, 'the process that changed it refuses anonymous readers at once');
  t.equal(await status(`${a.url}/Acme/APP`), 404, `whatever the spelling (${spelled} before)`);
  await until(async () => (await status(`${b.url}/acme/app`)) === 404, 10_000);
  t.pass('the other process refuses them too, once it sees the commit');
  t.equal(await status(`${b.url}/acme/app`, reader), 200, 'a reader of the org is still served');
  t.equal(await status(`${a.url}/acme/app`), 404, 'and an anonymous read after it is still refused');

  t.equal(await status(`${a.url}/acme/later`), 404, 'a box that does not exist yet');
  const created = await fetch(`${b.url}/api/v1/boxes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${pub}`, 'content-type': 'application/json' },
    body: JSON.stringify({ box: { username: 'acme', name: 'later' } }),
  });
  t.equal(created.status, 200, 'is created through the other process');
  await until(async () => (await status(`${a.url}/acme/later`)) === 200, 10_000);
  t.same((await catalog(a.url, 'acme/later')).versions, [], 'and served, its absence was not remembered');
});
