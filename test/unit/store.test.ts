/**
 * The trust store's state and records: names are Map keys (object member
 * names round-trip), one parse per content and one serialisation and write
 * per change, record changes with the history cap applied everywhere.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { parseState, serializeState, TrustStore, type TrustState } from '../../src/trust/store.js';
import { acceptKey, forgetKey, forgetName, MAX_HISTORY, pinKey, recordAcceptedBox } from '../../src/trust/records.js';

const fpr = (c: string) => c.repeat(40);
const [A, B, C] = ['A', 'B', 'C'].map(fpr);
const T = '2026-01-01T00:00:00Z';

const empty = (): TrustState => ({ format: 1, pins: new Map(), boxes: new Map() });

t.test('names that are object members round-trip through trust.json', async (t) => {
  const s = empty();
  for (const n of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    pinKey(s, n, A);
    recordAcceptedBox(s, { name: n, version: '1', time: T, keyChange: { kind: 'first-use', keys: [A], added: [A] }, newHighest: true });
  }
  const text = serializeState(s);
  const raw = JSON.parse(text);
  t.same(Object.keys(raw.boxes).sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
  t.equal(Object.getPrototypeOf(raw.pins), Object.prototype, 'no prototype was replaced');
  const back = parseState(text, 'trust.json');
  t.same([...back.boxes.keys()].sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
  t.same(back.pins.get('__proto__'), [A]);
  t.equal(back.boxes.get('valueOf'), undefined, 'a name that was never recorded is not found on a prototype');
});

t.test('a damaged trust.json is a CONFIG error naming the file', async (t) => {
  const rows: Array<[string, RegExp]> = [
    ['{', /trust\.json: not valid JSON/],
    ['[]', /not a boxsig trust store/],
    ['{"format":2,"pins":{},"boxes":{}}', /not a boxsig trust store/],
    ['{"format":1,"pins":{"a/*":"x"},"boxes":{}}', /pins\["a\/\*"\] is not a list/],
    ['{"format":1,"pins":{},"boxes":{"a/b":{"keys":"x"}}}', /boxes\["a\/b"\] "keys" is not a list/],
    ['{"format":1,"pins":{},"boxes":{"a/b":{"keys":[],"firstSeen":"t","updated":"t"}}}', /"history" is not a list/],
  ];
  for (const [text, msg] of rows) t.throws(() => parseState(text, '/h/trust.json'), { code: 'CONFIG', message: msg }, text);
});

t.test('one parse per content, one serialisation and one write per change', async (t) => {
  const dir = t.testdir({});
  const store = new TrustStore(path.join(dir, 'home'));
  await store.update((s) => void pinKey(s, 'acme/*', A));
  const file = store.file;
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  let parses = 0;
  let serialisations = 0;
  JSON.parse = ((text: string, ...rest: unknown[]) => {
    if (typeof text === 'string' && text.includes('"format": 1')) parses++;
    return (parse as (...a: unknown[]) => unknown)(text, ...rest);
  }) as typeof JSON.parse;
  JSON.stringify = ((v: unknown, ...rest: unknown[]) => {
    if (v && typeof v === 'object' && 'format' in v && 'boxes' in v) serialisations++;
    return (stringify as (...a: unknown[]) => string)(v, ...rest);
  }) as typeof JSON.stringify;
  t.teardown(() => {
    JSON.parse = parse;
    JSON.stringify = stringify;
  });

  const fresh = new TrustStore(store.home); // another process: nothing cached
  const first = fresh.read();
  const open = fs.openSync;
  let opened = 0;
  fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    if (p === file) opened++;
    return (open as (...a: unknown[]) => number)(p, ...rest);
  }) as typeof fs.openSync;
  t.equal(fresh.read(), first, 'reading again parses nothing');
  t.equal(opened, 0, 'and does not even read the file while it is the same file');
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000)); // same bytes, another identity
  t.equal(fresh.read(), first, 'the same bytes under another identity are not parsed again');
  fs.openSync = open;
  t.equal(opened, 1, 'but they are read');
  const inode = fs.statSync(file).ino;
  // what an add does: config layers and the decision read, then one locked update that records the box
  await fresh.update((s) => {
    t.equal(s, first, 'the update works on the state already parsed');
    recordAcceptedBox(s, { name: 'acme/web', version: '1', time: T, keyChange: { kind: 'first-use', keys: [B], added: [B] }, newHighest: true });
  });
  t.equal(parses, 1, 'trust.json was parsed once');
  t.equal(serialisations, 1, 'and serialised once');
  t.not(fs.statSync(file).ino, inode, 'and written (atomically: a new file)');
  const written = fs.statSync(file).ino;
  await fresh.update(() => undefined);
  t.equal(fs.statSync(file).ino, written, 'an update that changes nothing writes nothing');
  t.equal(parses, 1, 'and parses nothing');

  // another process changes the store: the next read sees it
  await store.update((s) => void pinKey(s, 'other/*', C));
  t.same(fresh.read().pins.get('other/*'), [C], 'a change by someone else is read');
});

t.test('a failed action after the write puts the record back', async (t) => {
  const dir = t.testdir({});
  const store = new TrustStore(path.join(dir, 'home'));
  await store.update((s) => void pinKey(s, 'acme/*', A));
  const before = fs.readFileSync(store.file, 'utf8');
  await t.rejects(
    store.update((s) => void pinKey(s, 'acme/*', B), {
      afterWrite: async () => {
        throw new Error('install failed');
      },
    }),
    /install failed/,
  );
  t.equal(fs.readFileSync(store.file, 'utf8'), before, 'the record is as before');
  t.same(store.read().pins.get('acme/*'), [A], 'and so is what is read next');
});

t.test('accepting a key retires the keys it replaces; --keep keeps them; --distrust-old distrusts them', async (t) => {
  const s = empty();
  recordAcceptedBox(s, { name: 'a/b', version: '1.0', time: T, keyChange: { kind: 'first-use', keys: [A], added: [A] }, newHighest: true });
  const r = acceptKey(s, 'a/b', B, { time: '2026-02-01T00:00:00Z' });
  t.same(r.keys, [B]);
  t.same(r.replaced, [{ key: A, since: '2026-02-01T00:00:00Z', upTo: '1.0' }]);
  t.same(s.boxes.get('a/b')!.retired, r.replaced);
  t.same(acceptKey(s, 'a/b', A, { time: '2026-03-01T00:00:00Z' }).keys, [A], 'accepting the old key again');
  t.same(
    s.boxes.get('a/b')!.retired!.map((x) => x.key),
    [B],
    'the old key is current again, the one it replaces is retired',
  );
  t.same(acceptKey(s, 'a/b', C, { time: T, keep: true }).keys, [A, C], '--keep adds');
  const d = acceptKey(s, 'a/b', B, { time: T, distrustOld: true });
  t.same(
    d.replaced.map((x) => [x.key, x.distrusted]),
    [
      [A, true],
      [C, true],
    ],
  );
  t.same(acceptKey(empty(), 'new/name', A, { time: T }), { keys: [A], replaced: [] }, 'a name never seen');
});

t.test('the history cap applies to every change', async (t) => {
  const s = empty();
  for (let i = 0; i < MAX_HISTORY + 10; i++) {
    recordAcceptedBox(s, { name: 'a/b', version: `${i + 1}`, time: T, keyChange: null, newHighest: true });
    acceptKey(s, 'a/b', i % 2 ? A : B, { time: T });
    forgetKey(s, 'a/b', C, T);
  }
  t.equal(s.boxes.get('a/b')!.history.length, MAX_HISTORY);
  t.equal(s.boxes.get('a/b')!.history.at(-1)!.event, 'accepted-key');
});

t.test('forgetting keys and names', async (t) => {
  const s = empty();
  recordAcceptedBox(s, { name: 'a/b', version: '1', time: T, keyChange: { kind: 'first-use', keys: [A, B], added: [A, B] }, newHighest: true });
  pinKey(s, 'a/b', A);
  t.same(forgetKey(s, 'a/b', A, T), { record: true, pins: true, keysLeft: [B] });
  t.equal(s.pins.has('a/b'), false, 'the last pin of a glob removes the glob');
  t.same(forgetKey(s, 'a/b', B, T), { record: true, pins: false, keysLeft: [] });
  t.ok(s.boxes.has('a/b'), 'forgetting the last key keeps the record');
  t.same(forgetKey(s, 'a/b', B, T), { record: false, pins: false, keysLeft: [] }, 'nothing left to forget');
  t.same(forgetName(s, 'a/b'), { record: true, pins: false, keysLeft: null });
  t.same(forgetName(s, 'a/b'), { record: false, pins: false, keysLeft: null });
});

t.test('recover(): the recovery step removes what dead processes left, without the lock, idempotently', async (t) => {
  const dir = t.testdir({ home: { keyring: {}, revocations: {} } });
  const store = new TrustStore(path.join(dir, 'home'));
  const dead = 999_999;
  const debris = [
    `trust.json.tmp-${dead}-0badf00d`,
    `trust.lock.stale-${dead}-deadbeef`,
    `keyring/.${A}.asc.tmp-${dead}-0123456789ab`,
    `revocations/x.asc.tmp-${dead}-01234567`,
  ];
  for (const d of debris) fs.writeFileSync(path.join(store.home, d), 'half');
  fs.writeFileSync(
    path.join(store.home, 'trust.lock'),
    JSON.stringify({ pid: dead, token: 't', host: (await import('node:os')).hostname(), time: Date.now() }),
  );
  const live = `trust.json.tmp-${process.pid}-01234567`;
  fs.writeFileSync(path.join(store.home, live), 'in progress');
  t.same(
    store
      .recover()
      .map((p) => path.relative(store.home, p))
      .sort(),
    [...debris].sort(),
  );
  t.same(fs.readdirSync(store.home).sort(), ['keyring', 'revocations', live], 'the dead lock is broken, a live temporary file is kept');
  t.same(store.recover(), [], 'idempotent');
  t.same(new TrustStore(path.join(dir, 'nowhere')).recover(), [], 'nothing to do without a home');
});
