/**
 * The trust store and the `trust` commands: box names that are JavaScript
 * object members, forgetting keys, accepting rotated keys, crash debris,
 * locks, and reporting what was written.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { boxsig, boxsigAsync, isolatedEnv, makeBox, makeKey, must, sign, type KeyFiles, trustRecords } from './helpers.js';

function setup(t: any) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const base = makeBox(path.join(dir, 'base.box'));
  const home = env.BOXSIG_HOME!;
  const signBox = (name: string, version: string, keys: KeyFiles[]) => {
    const out = path.join(dir, `${name.replace(/\//g, '_')}-${version}-${keys.map((k) => k.fingerprint.slice(-4)).join('-')}.box`);
    const r = sign(base, keys, ['--name', name, '--version', version, '--fresh', '-o', out], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const run = (...args: string[]) => boxsig([...args, '--json'], { env, cwd: dir });
  const add = (box: string, ...args: string[]) => run('add', box, '--quiet', ...args);
  const state = () => ({ ...JSON.parse(fs.readFileSync(path.join(home, 'trust.json'), 'utf8')), boxes: trustRecords(home) });
  return { dir, env, home, signBox, run, add, state };
}

const MEMBER_NAMES = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf'];

t.test('box names that are JavaScript object members work in every command that stores or reads by name', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'M <m@example.org>', [], s.env);
  const k2 = makeKey(s.dir, 'M2 <m2@example.org>', [], s.env);
  for (const name of MEMBER_NAMES) {
    const first = s.add(s.signBox(name, '1.0', [k]));
    t.equal(first.code, 0, `add ${name}: ${first.stderr}`);
    t.match(first.json.recorded, [`first-use: ${k.fingerprint}`], `${name}: trusted on first use, not mistaken for a record`);
    t.equal(s.add(s.signBox(name, '1.1', [k])).code, 0, `add ${name} again`);
    t.equal(s.add(s.signBox(name, '1.2', [k2])).json.code, 'KEY_CHANGED', `${name}: a key change is still a key change`);
    const inst = s.run('verify', '--installed', name);
    t.equal(inst.code, 0, `verify --installed ${name}: ${inst.stderr}`);
    t.equal(inst.json.boxes.length, 2);
    // verify --dir --record on an extracted box
    const d = path.join(s.dir, `x-${name}`);
    fs.mkdirSync(d);
    must('tar', ['xzf', s.signBox(name, '2.0', [k]), '-C', d]);
    const rec = s.run('verify', '--dir', d, '--name', name, '--record');
    t.equal(rec.code, 0, `verify --dir --record ${name}: ${rec.stderr}`);
    t.equal(s.state().boxes[name].highestVersion, '2.0');
    const acc = s.run('trust', 'accept', name, k2.fingerprint);
    t.equal(acc.code, 0, `trust accept ${name}: ${acc.stderr}`);
    t.same(acc.json.keys, [k2.fingerprint]);
    const pin = s.run('trust', 'pin', name, k.fingerprint);
    t.equal(pin.code, 0, `trust pin ${name}: ${pin.stderr}`);
    t.same(pin.json.pins, [k.fingerprint]);
    const list = s.run('trust', 'list');
    t.same(list.json.pins[name], [k.fingerprint], `trust list shows the pin of ${name}`);
    t.same(list.json.boxes[name].keys, [k2.fingerprint], `trust list shows the record of ${name}`);
    const forget = s.run('trust', 'forget', name);
    t.equal(forget.code, 0, `trust forget ${name}: ${forget.stderr}`);
    t.equal(forget.json.removed, true);
    t.notOk(Object.hasOwn(s.state().boxes, name), `${name} is gone from the store`);
  }
  t.same(Object.keys(s.state().boxes), [], 'nothing else was recorded');
});

t.test('globs, claims and scopes named like object members, in trust pin and in boxsig.json', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'P <p@example.org>', [], s.env);
  const other = makeKey(s.dir, 'O <o@example.org>', [], s.env);
  const proto = s.run('trust', 'pin', '__proto__', k.fingerprint);
  t.equal(proto.code, 0, proto.stderr);
  t.same(s.state().pins.__proto__, [k.fingerprint], 'stored as a plain key of trust.json');
  t.same(Object.getPrototypeOf(s.state().pins), Object.prototype, 'and not as a prototype');
  t.same(s.run('trust', 'list').json.pins.__proto__, [k.fingerprint]);
  t.equal(s.run('trust', 'forget', '__proto__').json.removed, true);
  fs.writeFileSync(
    path.join(s.dir, 'boxsig.json'),
    '{"boxes": {"__proto__": {"threshold": 2}, "constructor": {"pin": ["' +
      other.fingerprint +
      '"]}, "acme/*": {"claims": {"constructor": "x"}}},' +
      ' "orgs": {"toString": ["' +
      other.fingerprint +
      '"]}}',
  );
  t.equal(s.run('verify', s.signBox('constructor', '1', [k])).json.code, 'UNTRUSTED_KEY', 'a pin for the name constructor applies to it');
  t.equal(s.run('verify', s.signBox('constructor', '2', [other])).code, 0, 'and lets its key in');
  t.equal(s.run('verify', s.signBox('toString', '1', [k])).json.code, 'UNTRUSTED_KEY', 'an org scope named toString covers the name toString');
  const claim = s.run('verify', s.signBox('acme/box', '1', [k]));
  t.equal(claim.json.code, 'CLAIM_MISMATCH', 'a required claim named constructor is missing, not found on the prototype');
  t.match(claim.json.message, /claim constructor is missing/);
  t.equal(s.run('verify', s.signBox('valueOf', '1', [k])).code, 0, 'no glob applies to valueOf');
});

t.test('debris of dead processes is removed by the next change to the store', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'D <d@example.org>', [], s.env);
  fs.mkdirSync(path.join(s.home, 'keyring'), { recursive: true });
  fs.mkdirSync(path.join(s.home, 'revocations'), { recursive: true });
  const dead = 999_999; // no such process
  const debris = [
    `trust.json.tmp-${dead}-0badf00d`,
    `trust.lock.stale-${dead}-deadbeef`,
    `trust.lock.new-${dead}-12345678`,
    `${'0a'.repeat(32)}.json.tmp-${dead}-abcdef00`,
    `keyring/${k.fingerprint}.asc.tmp-${dead}-abcdef01`,
    `keyring/.${k.fingerprint}.asc.tmp-${dead}-abcdef012345`,
    `revocations/${k.fingerprint}-0011223344556677.asc.tmp-${dead}-abcdef02`,
  ];
  for (const d of debris) fs.writeFileSync(path.join(s.home, d), 'half');
  const live = `trust.json.tmp-${process.pid}-01234567`; // this test's own process is alive
  fs.writeFileSync(path.join(s.home, live), 'in progress');
  const r = s.run('trust', 'pin', 'acme/*', k.fingerprint);
  t.equal(r.code, 0, r.stderr);
  for (const d of debris) t.notOk(fs.existsSync(path.join(s.home, d)), `removed ${d}`);
  t.ok(fs.existsSync(path.join(s.home, live)), 'a temporary file of a live process is kept');
  t.equal(s.run('trust', 'pin', 'acme/*', k.fingerprint).code, 0, 'recovery is idempotent');
  fs.rmSync(path.join(s.home, live));
  // key import goes through the same lock
  fs.writeFileSync(path.join(s.home, 'keyring', `${k.fingerprint}.asc.tmp-${dead}-abcdef03`), 'half');
  t.equal(s.run('key', 'import', k.public).code, 0);
  t.same(fs.readdirSync(path.join(s.home, 'keyring')), [`${k.fingerprint}.asc`], 'key import removed the debris in the keyring');
});

t.test('a lock that cannot be read is broken at once', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'L <l@example.org>', [], s.env);
  fs.mkdirSync(s.home, { recursive: true });
  const lock = path.join(s.home, 'trust.lock');
  for (const content of ['', '{"pid": 12', 'garbage']) {
    fs.writeFileSync(lock, content);
    const future = new Date(Date.now() + 3600_000); // no amount of waiting makes it look old
    fs.utimesSync(lock, future, future);
    const r = boxsig(['trust', 'pin', 'acme/*', k.fingerprint, '--json'], { env: s.env, timeout: 50_000 });
    t.equal(r.code, 0, `a lock holding ${JSON.stringify(content)} is broken: ${r.stderr}`);
    t.notOk(fs.existsSync(lock), 'and released');
  }
});

t.test('a full BOXSIG_HOME: the command fails with IO and leaves no lock and no debris', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'F <f@example.org>', [], s.env);
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') t.fail('mounting a small tmpfs needs root (CI runs as root)');
    else t.comment('SKIP: mounting a small tmpfs needs root');
    return;
  }
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'bsg-full-'));
  must('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt]);
  t.teardown(() => {
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  s.env.BOXSIG_HOME = s.home = mnt;
  t.equal(s.run('trust', 'pin', 'acme/a', k.fingerprint).code, 0, 'works while there is room');
  const filler = path.join(s.home, 'filler');
  must('sh', ['-c', `dd if=/dev/zero of='${filler}' bs=1k 2>/dev/null; true`]);
  const before = fs.readFileSync(path.join(s.home, 'trust.json'), 'utf8');
  const full = s.run('trust', 'pin', 'acme/b', k.fingerprint);
  t.equal(full.code, 3, 'a full disk is an I/O failure');
  t.equal(full.json.code, 'IO');
  t.same(fs.readdirSync(s.home).sort(), ['filler', 'trust.json'], 'no lock, no temporary file');
  // a box name's record is a file of its own: the same holds when it cannot be written
  const record = s.add(s.signBox('acme/full', '1.0', [k]));
  t.equal(record.code, 3, 'an add whose record cannot be written is an I/O failure');
  t.same(
    fs.readdirSync(s.home).sort(),
    ['filler', 'trust.json', ...(fs.existsSync(path.join(s.home, 'records')) ? ['records'] : [])],
    'no lock, no temporary file',
  );
  t.same(trustRecords(s.home), {}, 'and no record');
  t.equal(fs.readFileSync(path.join(s.home, 'trust.json'), 'utf8'), before, 'the store is unchanged');
  fs.rmSync(filler);
  const after = s.run('trust', 'pin', 'acme/b', k.fingerprint);
  t.equal(after.code, 0, 'the next command works at once');
  t.same(after.json.pins, [k.fingerprint]);
});

t.test('concurrent pin and forget of one name: each reports what it wrote', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'R <r@example.org>', [], s.env);
  for (let round = 0; round < 6; round++) {
    const [pin, forget] = await Promise.all([
      boxsigAsync(['trust', 'pin', 'acme/race', k.fingerprint, '--json'], { env: s.env }),
      boxsigAsync(['trust', 'forget', 'acme/race', '--json'], { env: s.env }),
    ]);
    t.equal(pin.code, 0, `round ${round}: pin ${pin.stderr}`);
    t.same(pin.json.pins, [k.fingerprint], 'the pin reports the pins it wrote');
    t.equal(forget.code, 0, `round ${round}: forget ${forget.stderr}`);
  }
});
