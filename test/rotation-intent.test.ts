/**
 * A co-signature proves a key rotation only when the recorded key's own
 * signature commits to the new key: the signed manifest names its intended
 * signers. Detached signatures are separable and addable, so anyone on the
 * download path can put their own signature over a legitimate manifest next
 * to the publisher's (the third outside test's finding 1): that must record
 * nothing, count for nothing, and be reported.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as corpus from './corpus/generate.mjs';
import * as tar from './corpus/tar.mjs';
import { boxsig, isolatedEnv, makeBox, makeKey, must, sign, type KeyFiles } from './helpers.js';

function setup(t: any) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const base = makeBox(path.join(dir, 'base.box'));
  let n = 0;
  const signBox = (name: string, version: string, keys: KeyFiles[]) => {
    const out = path.join(dir, `box-${n++}.box`);
    const r = sign(base, keys, ['--name', name, '--version', version, '--fresh', '-o', out], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const add = (box: string) => boxsig(['add', box, '--json', '--quiet'], { env, cwd: dir });
  const record = (name: string) => boxsig(['trust', 'list', '--json'], { env }).json.boxes[name];
  const cfg = (doc: unknown) => fs.writeFileSync(path.join(dir, 'boxsig.json'), JSON.stringify(doc));
  return { dir, env, signBox, add, record, cfg, next: () => path.join(dir, `box-${n++}.box`) };
}

/** What an attacker on the path does: the box byte for byte, plus their own detached signatures over the same manifest. */
async function addCoSignatures(box: string, out: string, attackers: any[]): Promise<void> {
  const x = `${out}.d`;
  fs.mkdirSync(x, { recursive: true });
  must('tar', ['-xzf', box, '-C', x]);
  const manifest = fs.readFileSync(path.join(x, '.boxsig/manifest.json'));
  const read = (sub: string) =>
    fs.readdirSync(path.join(x, '.boxsig', sub)).map((f) => ({ fpr: f.replace(/\.asc$/, ''), armored: fs.readFileSync(path.join(x, '.boxsig', sub, f)) }));
  const signatures = read('signatures');
  const keys = read('keys');
  for (const k of attackers) {
    signatures.push({ fpr: corpus.fpr(k), armored: Buffer.from(await corpus.signDetached(manifest, k)) });
    keys.push({ fpr: corpus.fpr(k), armored: Buffer.from(corpus.armoredPublic(k)) });
  }
  const byFpr = (a: { fpr: string }, b: { fpr: string }) => (a.fpr < b.fpr ? -1 : 1);
  const files = JSON.parse(manifest.toString()).files.map((f: any) => ({ path: f.path, data: fs.readFileSync(path.join(x, f.path)) }));
  const prefix = corpus.prefixEntries({ manifest, signatures: signatures.sort(byFpr), keys: keys.sort(byFpr) });
  fs.writeFileSync(out, zlib.gzipSync(Buffer.concat([prefix, corpus.bodyEntries(files), tar.end()])));
}

/**
 * A box made by hand: signed by `signedBy`, its manifest naming `named` as
 * its signers (null: a manifest that names none, as an older boxsig wrote).
 */
async function craftBox(out: string, box: { name: string; version: string }, signedBy: any[], named: any[] | null): Promise<string> {
  const files = [
    { path: 'metadata.json', data: Buffer.from('{"provider":"virtualbox"}') },
    { path: 'Vagrantfile', data: Buffer.from('system("echo attacker")\n') },
  ];
  const m = JSON.parse(corpus.manifestFor(files, { box: { ...box, provider: 'virtualbox' } }).toString());
  const manifest = Buffer.from(corpus.canonical(named ? { ...m, signers: named.map(corpus.fpr).sort() } : m));
  const byFpr = (a: { fpr: string }, b: { fpr: string }) => (a.fpr < b.fpr ? -1 : 1);
  const signatures = [];
  for (const k of signedBy) signatures.push({ fpr: corpus.fpr(k), armored: Buffer.from(await corpus.signDetached(manifest, k)) });
  const keys = signedBy.map((k) => ({ fpr: corpus.fpr(k), armored: Buffer.from(corpus.armoredPublic(k)) }));
  const prefix = corpus.prefixEntries({ manifest, signatures: signatures.sort(byFpr), keys: keys.sort(byFpr) });
  fs.writeFileSync(out, zlib.gzipSync(Buffer.concat([prefix, corpus.bodyEntries(files), tar.end()])));
  return out;
}

t.test('a co-signature added on the path to a one-key box records nothing', async (t) => {
  const s = setup(t);
  const publisher = makeKey(s.dir, 'Publisher <p@acme.example>', [], s.env);
  const mallory = await corpus.newKey({ uid: 'Mallory' });
  t.equal(s.add(s.signBox('acme/web', '1.0.0', [publisher])).code, 0, 'first use records the publisher');
  const mitm = s.next();
  await addCoSignatures(s.signBox('acme/web', '1.1.0', [publisher]), mitm, [mallory]);
  const update = s.add(mitm);
  t.equal(update.code, 0, `the publisher's update is still accepted (${update.stderr.trim()})`);
  t.same(update.json.recorded ?? [], [], 'no rotation is recorded');
  t.match(update.json.warnings.join('\n'), corpus.fpr(mallory), 'the extra signature is reported');
  t.same(s.record('acme/web').keys, [publisher.fingerprint], 'the record holds the publisher alone');
  const evil = s.add(await craftBox(s.next(), { name: 'acme/web', version: '1.2.0' }, [mallory], [mallory]));
  t.equal(evil.json?.code, 'KEY_CHANGED', "the attacker's own box is a key change");
});

t.test('two co-signatures added on the path do not defeat a threshold', async (t) => {
  const s = setup(t);
  s.cfg({ boxes: { 'acme/*': { threshold: 2 } } });
  const [p1, p2] = ['P1', 'P2'].map((u) => makeKey(s.dir, `${u} <${u}@acme.example>`, [], s.env));
  const [m1, m2] = [await corpus.newKey({ uid: 'M1' }), await corpus.newKey({ uid: 'M2' })];
  t.equal(s.add(s.signBox('acme/th', '1.0.0', [p1, p2])).code, 0, 'first use records both publisher keys');
  const mitm = s.next();
  await addCoSignatures(s.signBox('acme/th', '1.1.0', [p1, p2]), mitm, [m1, m2]);
  const update = s.add(mitm);
  t.equal(update.code, 0, update.stderr);
  t.same(update.json.recorded ?? [], [], 'no rotation is recorded');
  t.same(s.record('acme/th').keys, [p1.fingerprint, p2.fingerprint].sort());
  const evil = s.add(await craftBox(s.next(), { name: 'acme/th', version: '2.0.0' }, [m1, m2], [m1, m2]));
  t.not(evil.code, 0, "the attacker's own box is refused");
  t.equal(evil.json?.code, 'KEY_CHANGED');
});

t.test('co-signatures on a manifest that names no signers (an older boxsig) prove no rotation', async (t) => {
  const s = setup(t);
  s.cfg({ boxes: { 'acme/*': { threshold: 2 } } });
  const [p1, p2, m1, m2] = await Promise.all(['P1', 'P2', 'M1', 'M2'].map((uid) => corpus.newKey({ uid })));
  const first = s.add(await craftBox(s.next(), { name: 'acme/old', version: '1.0.0' }, [p1, p2], null));
  t.equal(first.code, 0, first.stderr);
  const update = s.add(await craftBox(s.next(), { name: 'acme/old', version: '1.1.0' }, [p1, p2, m1, m2], null));
  t.equal(update.code, 0, `signed by both recorded keys (${update.stderr.trim()})`);
  t.same(update.json.recorded ?? [], [], 'no rotation is recorded');
  t.match(update.json.warnings.join('\n'), /proves no key rotation/);
  t.equal(s.add(await craftBox(s.next(), { name: 'acme/old', version: '2.0.0' }, [m1, m2], [m1, m2])).json?.code, 'KEY_CHANGED');
});

t.test('a signature by a key the manifest does not name is ignored, even a pinned one', async (t) => {
  const s = setup(t);
  const [a, b, x] = await Promise.all(['A', 'B', 'X'].map((uid) => corpus.newKey({ uid })));
  s.cfg({ boxes: { 'acme/pin': { pin: [a, x].map(corpus.fpr), threshold: 2 } } });
  const box = await craftBox(s.next(), { name: 'acme/pin', version: '1.0.0' }, [a, b, x], [a, b]);
  const r = boxsig(['verify', box, '--json'], { env: s.env, cwd: s.dir });
  t.equal(r.json?.code, 'THRESHOLD_NOT_MET', 'X signed, but the manifest names A and B only');
  t.match(r.json?.message, /not named by the signed manifest/);
  const named = await craftBox(s.next(), { name: 'acme/pin', version: '1.0.0' }, [a, b, x], [a, b, x]);
  t.equal(boxsig(['verify', named, '--json'], { env: s.env, cwd: s.dir }).code, 0, 'named, X counts');
});

t.test('a rotation the recorded key signed for still works; a later co-signature is not one', async (t) => {
  const s = setup(t);
  const old = makeKey(s.dir, 'Old <old@acme.example>', [], s.env);
  const next = makeKey(s.dir, 'New <new@acme.example>', [], s.env);
  t.equal(s.add(s.signBox('acme/rot', '1.0.0', [old])).code, 0);
  // signed with both keys at once: the manifest names both, the old key's signature commits to the new key
  const both = s.signBox('acme/rot', '1.1.0', [old, next]);
  const inspect = boxsig(['inspect', both, '--json'], { env: s.env });
  t.same(inspect.json.manifest?.signers, [old.fingerprint, next.fingerprint].sort(), 'the manifest names its signers');
  const rotated = s.add(both);
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.json.recorded, [`rotation: ${next.fingerprint}`]);
  t.equal(s.add(s.signBox('acme/rot', '1.2.0', [next])).code, 0, 'the new key alone is accepted afterwards');

  // adding a co-signer to a box already signed by one key keeps its manifest, which names no signers
  const other = makeKey(s.dir, 'Other <o@acme.example>', [], s.env);
  const one = s.signBox('acme/rot', '1.3.0', [next]);
  const co = sign(one, [other], ['-o', s.next()], s.env);
  t.equal(co.code, 0, co.stderr);
  t.same(co.json.kept, [next.fingerprint], 'the first signature is kept');
  t.match(co.json.warnings.join('\n'), /proves no key rotation/, 'sign says what the co-signature does not do');
  const added = s.add(co.json.output);
  t.equal(added.code, 0, added.stderr);
  t.same(added.json.recorded ?? [], [], 'a co-signature the manifest does not name is no rotation');
});

t.test('the registry decides the same: a co-signature added to an upload records nothing', async (t) => {
  const { engines } = await import('./registry/engines.js');
  const { box, createOrg, key, newLab, publish, startRegistry, token } = await import('./registry/lab.js');
  const embedded = engines('all').available.find((e) => e.name === 'embedded')!;
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir));
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  createOrg(lab, 'tofu');
  const pub = token(lab, 'tofu', 'publish');
  const [a, m] = [key(lab, 'A <a@tofu.example>'), key(lab, 'M <m@evil.example>')];
  t.equal((await publish(lab, reg.url, pub, box(lab, [a], 'tofu/app', '1.0.0'))).code, 0, 'first use records A');
  const mitm = path.join(dir, 'mitm.box');
  const co = sign(box(lab, [a], 'tofu/app', '1.1.0'), [m], ['-o', mitm], lab.env);
  t.equal(co.code, 0, co.stderr);
  const up = await publish(lab, reg.url, pub, mitm);
  t.equal(up.code, 0, `signed by the recorded key (${up.stderr.trim()})`);
  const evil = await publish(lab, reg.url, pub, box(lab, [m], 'tofu/app', '1.2.0'));
  t.equal(evil.json?.code, 'KEY_CHANGED', 'the co-signer was not recorded by the registry');
});
