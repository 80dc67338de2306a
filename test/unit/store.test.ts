/**
 * The trust store's state and records: names are Map keys (object member
 * names round-trip), trust.json is parsed once per content, an update reads
 * and writes the record files of the names it touches only (issue 18), a
 * trust.json of format 1 is written out as record files, record changes apply
 * the history cap everywhere.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { parseTrustFile, serializeTrustFile, TrustStore, type TrustState } from '../../src/trust/store.js';
import { parseRecord, recordFileName, serializeRecord, type TrustRecord } from '../../src/trust/record-files.js';
import { acceptKey, forgetKey, forgetName, MAX_HISTORY, pinKey, recordAcceptedBox } from '../../src/trust/records.js';

const fpr = (c: string) => c.repeat(40);
const [A, B, C] = ['A', 'B', 'C'].map(fpr);
const T = '2026-01-01T00:00:00Z';

const empty = (): TrustState => ({ pins: new Map(), boxes: new Map() });
const rec = (keys: string[]): TrustRecord => ({ keys, firstSeen: T, updated: T, highestVersion: '1', history: [] });
const inlineStore = (pins: Record<string, string[]>, boxes: Record<string, TrustRecord>) => JSON.stringify({ format: 1, pins, boxes }, null, 2);

t.test('names that are object members round-trip through trust.json and the record files', async (t) => {
  const store = new TrustStore(path.join(t.testdir({}), 'home'));
  const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
  await store.update((s) => {
    for (const n of names) {
      pinKey(s, n, A);
      recordAcceptedBox(s, { name: n, version: '1', time: T, keyChange: { kind: 'first-use', keys: [A], added: [A] }, newHighest: true });
    }
  });
  const raw = JSON.parse(fs.readFileSync(store.file, 'utf8'));
  t.same(Object.keys(raw.pins).sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
  t.equal(Object.getPrototypeOf(raw.pins), Object.prototype, 'no prototype was replaced');
  t.same(fs.readdirSync(store.recordsDir).sort(), names.map(recordFileName).sort(), 'one file per name, named by its hash');
  const back = new TrustStore(store.home).read();
  t.same([...back.boxes].map(([n]) => n).sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
  t.same(back.boxes.get('__proto__')!.keys, [A]);
  t.same(back.pins.get('__proto__'), [A]);
  t.equal(back.boxes.get('valueOf'), undefined, 'a name that was never recorded is not found on a prototype');
  t.equal(parseTrustFile(serializeTrustFile(back.pins), 'trust.json').pins.get('constructor')![0], A);
});

t.test('a damaged trust.json or record file is a CONFIG error naming the file', async (t) => {
  const rows: Array<[string, RegExp]> = [
    ['{', /trust\.json: not valid JSON/],
    ['[]', /not a boxsig trust store/],
    ['{"format":3,"pins":{}}', /not a boxsig trust store/],
    ['{"format":2,"pins":{},"boxes":{}}', /not a boxsig trust store/],
    ['{"format":1,"pins":{}}', /not a boxsig trust store/],
    ['{"format":2,"pins":{"a/*":"x"}}', /pins\["a\/\*"\] is not a list/],
    ['{"format":1,"pins":{},"boxes":{"a/b":{"keys":"x"}}}', /boxes\["a\/b"\] "keys" is not a list/],
    ['{"format":1,"pins":{},"boxes":{"a/b":{"keys":[],"firstSeen":"t","updated":"t"}}}', /"history" is not a list/],
  ];
  for (const [text, msg] of rows) t.throws(() => parseTrustFile(text, '/h/trust.json'), { code: 'CONFIG', message: msg }, text);
  const file = `/h/records/${recordFileName('a/b')}`;
  const records: Array<[string, RegExp]> = [
    ['{', /records\/[0-9a-f]{64}\.json: not valid JSON.*forget the name \(boxsig trust forget NAME, or delete the file\)/],
    [
      '{\n  "name": "a/b",\n  "record": {\n    "ke',
      /\.json \(the record of a\/b, it seems\): not valid JSON.*\(boxsig trust forget a\/b, or delete the file\)/,
    ],
    ['{"record":{}}', /not a boxsig trust record/],
    ['{\n  "name": "a/c",\n  "record": {', /^\/h\/records\/[0-9a-f]{64}\.json: not valid JSON.*\(boxsig trust forget NAME, or delete the file\)/], // another name's text: not named
    [JSON.stringify({ name: 'a/c', record: rec([A]) }), /holds the record of "a\/c", whose file has another name/],
    [JSON.stringify({ name: 'a/b', record: { keys: 'x' } }), /the record of "a\/b" "keys" is not a list/],
  ];
  for (const [text, msg] of records) t.throws(() => parseRecord(Buffer.from(text), file), { code: 'CONFIG', message: msg }, text);
  t.same(parseRecord(serializeRecord('a/b', rec([A])), file), { name: 'a/b', record: rec([A]) });

  const store = new TrustStore(path.join(t.testdir({}), 'home'));
  await store.update((s) => void s.boxes.set('a/b', rec([A])));
  fs.writeFileSync(store.recordFile('a/b'), '{"name":');
  t.throws(() => store.read().boxes.get('a/b'), { code: 'CONFIG', message: new RegExp(`${recordFileName('a/b')}: not valid JSON`) });
  t.equal(store.read().boxes.get('a/c'), undefined, 'another name is still read');
  t.same(
    await store.update((s) => forgetName(s, 'a/b')),
    { record: true, pins: false, keysLeft: null },
    'trust forget removes a damaged record (what its message says to do)',
  );
  t.notOk(fs.existsSync(store.recordFile('a/b')));
  fs.writeFileSync(store.recordFile('a/b'), '{"name":');
  await t.rejects(
    store.update((s) => forgetKey(s, 'a/b', A, T)),
    { code: 'CONFIG' },
    'forgetting one key of a damaged record is refused: nothing is guessed',
  );
});

t.test('an update reads and writes the records of the names it touches, nothing else', async (t) => {
  const home = path.join(t.testdir({}), 'home');
  const store = new TrustStore(home);
  await store.update((s) => {
    pinKey(s, 'acme/*', A);
    for (let i = 0; i < 500; i++) s.boxes.set(`org/box-${i}`, rec([A]));
  });
  const file = store.file;
  const parse = JSON.parse;
  let parses = 0;
  JSON.parse = ((text: string, ...rest: unknown[]) => {
    if (typeof text === 'string' && text.includes('"format": 2')) parses++;
    return (parse as (...a: unknown[]) => unknown)(text, ...rest);
  }) as typeof JSON.parse;
  const reads: string[] = [];
  const readFile = fs.readFileSync;
  fs.readFileSync = ((p: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (typeof p === 'string' && p.startsWith(store.recordsDir)) reads.push(path.basename(p));
    return (readFile as (...a: unknown[]) => unknown)(p, ...rest);
  }) as typeof fs.readFileSync;
  const open = fs.openSync;
  let opened = 0;
  fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    if (p === file) opened++;
    return (open as (...a: unknown[]) => number)(p, ...rest);
  }) as typeof fs.openSync;
  t.teardown(() => {
    JSON.parse = parse;
    fs.readFileSync = readFile;
    fs.openSync = open;
  });

  const fresh = new TrustStore(home); // another process: nothing cached
  const first = fresh.read();
  t.equal(parses, 1, 'trust.json is parsed');
  t.equal(fresh.read().pins, first.pins, 'reading again parses nothing');
  t.equal(opened, 1, 'and does not even read trust.json while it is the same file');
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000)); // same bytes, another identity
  t.equal(fresh.read().pins, first.pins, 'the same bytes under another identity are not parsed again');
  t.equal(opened, 2, 'but they are read');
  t.same(reads, [], 'no record was read for the pins');
  t.same(first.boxes.get('org/box-7')!.keys, [A]);
  t.same(reads, [recordFileName('org/box-7')], 'a record is read when its name is asked for, and no other');

  // what an add does: one locked update that records the box
  reads.length = 0;
  const trustIno = fs.statSync(file).ino;
  const other = fs.statSync(fresh.recordFile('org/box-8')).ino;
  await fresh.update((s) => {
    recordAcceptedBox(s, { name: 'acme/web', version: '1', time: T, keyChange: { kind: 'first-use', keys: [B], added: [B] }, newHighest: true });
  });
  t.same(reads, [recordFileName('acme/web')], 'the update read the record of its name only (absent)');
  t.equal(parses, 1, 'trust.json was not parsed again');
  t.equal(fs.statSync(file).ino, trustIno, 'trust.json was not written: the pins did not change');
  t.equal(fs.statSync(fresh.recordFile('org/box-8')).ino, other, 'nor any other record');
  t.same(new TrustStore(home).read().boxes.get('acme/web')!.keys, [B], 'the record is written');
  const written = fs.statSync(fresh.recordFile('acme/web')).ino;
  await fresh.update((s) => void s.boxes.get('acme/web'));
  t.equal(fs.statSync(fresh.recordFile('acme/web')).ino, written, 'an update that changes nothing writes nothing');
  await fresh.update((s) => void forgetName(s, 'acme/web'));
  t.notOk(fs.existsSync(fresh.recordFile('acme/web')), 'a forgotten name has no file');

  // another process changes the store: the next read sees it
  await store.update((s) => void pinKey(s, 'other/*', C));
  t.same(fresh.read().pins.get('other/*'), [C], 'a change by someone else is read');
  t.equal(fresh.read().boxes.get('acme/web'), undefined, 'and so is a forgotten name');
});

t.test('a failed action after the write puts every file back', async (t) => {
  const store = new TrustStore(path.join(t.testdir({}), 'home'));
  await store.update((s) => {
    pinKey(s, 'acme/*', A);
    s.boxes.set('acme/old', rec([A]));
  });
  const before = fs.readFileSync(store.file, 'utf8');
  const old = fs.readFileSync(store.recordFile('acme/old'), 'utf8');
  await t.rejects(
    store.update(
      (s) => {
        pinKey(s, 'acme/*', B);
        s.boxes.get('acme/old')!.keys.push(B);
        s.boxes.set('acme/new', rec([C]));
      },
      {
        afterWrite: async () => {
          throw new Error('install failed');
        },
      },
    ),
    /install failed/,
  );
  t.equal(fs.readFileSync(store.file, 'utf8'), before, 'the pins are as before');
  t.equal(fs.readFileSync(store.recordFile('acme/old'), 'utf8'), old, 'a changed record is as before');
  t.notOk(fs.existsSync(store.recordFile('acme/new')), 'a new record is gone');
  t.same(store.read().pins.get('acme/*'), [A], 'and so is what is read next');
  t.same(store.read().boxes.get('acme/old')!.keys, [A]);
});

t.test('a trust.json of format 1 is read as it is, and written out as record files by the next change', async (t) => {
  const home = t.testdir({
    home: {
      'trust.json': inlineStore(
        { 'a/*': [A] },
        Object.fromEntries([
          ['a/b', rec([A])],
          ['__proto__', rec([B])],
        ]),
      ),
    },
  });
  const store = new TrustStore(path.join(home, 'home'));
  const inline = store.read();
  t.same(inline.boxes.get('a/b')!.keys, [A], 'the inline records are read');
  t.same(inline.pins.get('a/*'), [A]);
  // a migration that was killed before trust.json was replaced left a record file of a name since forgotten
  fs.mkdirSync(store.recordsDir);
  fs.writeFileSync(store.recordFile('gone/name'), serializeRecord('gone/name', rec([C])));
  t.equal(store.read().boxes.get('gone/name'), undefined, 'record files are ignored while trust.json holds the records');

  await t.rejects(
    store.update((s) => void s.boxes.set('a/new', rec([C])), {
      afterWrite: async () => {
        throw new Error('install failed');
      },
    }),
  );
  t.equal(JSON.parse(fs.readFileSync(store.file, 'utf8')).format, 1, 'a failed action puts format 1 back');
  t.equal(store.read().boxes.get('a/new'), undefined, 'and its records with it');

  await store.update((s) => void s.boxes.set('a/new', rec([C])));
  t.same(JSON.parse(fs.readFileSync(store.file, 'utf8')), { format: 2, pins: { 'a/*': [A] } }, 'trust.json holds the pins only');
  t.same(fs.readdirSync(store.recordsDir).sort(), ['a/b', '__proto__', 'a/new'].map(recordFileName).sort(), 'every record has its file, no other file is left');
  const after = new TrustStore(store.home).read();
  t.same([...after.boxes].map(([n, r]) => [n, r.keys]).sort(), [
    ['__proto__', [B]],
    ['a/b', [A]],
    ['a/new', [C]],
  ]);
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
    `${recordFileName('a/b')}.tmp-${dead}-0badf00d`,
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
