/**
 * The rules of the trust decision, end to end with real keys and boxes:
 * a pin narrows, thresholds count keys trusted before the box, rotation by
 * certification needs a boxsig:<glob> user ID, a name with a record is never
 * first use again, accepting a key keeps older boxes valid, verify names
 * unknown signers, config files someone else owns are refused, versions
 * order as RubyGems.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, gnupgHome, gpgKey, isolatedEnv, makeBox, makeKey, must, requireTool, sign, type KeyFiles } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(t: any) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const base = makeBox(path.join(dir, 'base.box'));
  const cfg = (doc: unknown) => fs.writeFileSync(path.join(dir, 'boxsig.json'), JSON.stringify(doc));
  const signBox = (name: string, version: string, keys: KeyFiles[], extra: string[] = []) => {
    const out = path.join(dir, `${name.replace('/', '_')}-${version}-${keys.map((k) => k.fingerprint.slice(-4)).join('-')}.box`);
    const r = sign(base, keys, ['--name', name, '--version', version, '--fresh', '-o', out, ...extra], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const verify = (box: string, ...args: string[]) => boxsig(['verify', box, '--json', ...args], { env, cwd: dir });
  const add = (box: string, ...args: string[]) => boxsig(['add', box, '--json', '--quiet', ...args], { env, cwd: dir });
  return { dir, env, cfg, signBox, verify, add };
}

t.test('versions order as RubyGems: an old pre-release after the release is a rollback', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'V <v@acme.example>', [], s.env);
  t.equal(s.add(s.signBox('acme/ver', '2.0.0', [k])).code, 0);
  const pre = s.add(s.signBox('acme/ver', '2.0.0-1', [k]));
  t.equal(pre.json.code, 'ROLLBACK', '2.0.0-1 is a pre-release of 2.0.0, so older');
  t.match(pre.json.message, /2\.0\.0-1 is older than 2\.0\.0/);
  t.equal(s.add(s.signBox('acme/ver', '2.0.0.1', [k])).code, 0, '2.0.0.1 is newer');
});

t.test('a pin narrows: an organisation chain does not widen it (as apt Signed-By)', async (t) => {
  const s = setup(t);
  const org = makeKey(s.dir, 'Org <org@acme.example>', [], s.env);
  const pinned = makeKey(s.dir, 'Pinned <p@acme.example>', [], s.env);
  const repo = makeKey(s.dir, ['Repo <r@acme.example>', 'boxsig:acme/*'], [], s.env);
  const cert = path.join(s.dir, 'repo.certified.asc');
  t.equal(boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'acme/*', repo.public, '-o', cert], { env: s.env }).code, 0);
  t.equal(boxsig(['key', 'import', org.public, cert], { env: s.env }).code, 0);
  s.cfg({ boxes: { 'acme/ubuntu-24.04': { pin: [pinned.fingerprint] } }, orgs: { 'acme/*': [org.fingerprint] } });
  const narrowed = s.verify(s.signBox('acme/ubuntu-24.04', '1.0', [repo]));
  t.equal(narrowed.json.code, 'UNTRUSTED_KEY', 'an org-certified key does not widen a pin');
  t.match(narrowed.json.message, /pinned to .*\(a pin narrows/);
  t.equal(s.verify(s.signBox('acme/ubuntu-24.04', '1.0', [pinned])).code, 0, 'the pinned key is accepted');
  const other = s.verify(s.signBox('acme/debian-12', '1.0', [repo]));
  t.equal(other.code, 0, 'where no pin applies, the chain counts');
  t.equal(other.json.signers[0].via, 'org');
  // a pin recorded with boxsig trust pin narrows a recorded TOFU key the same way
  fs.rmSync(path.join(s.dir, 'boxsig.json'));
  t.equal(s.add(s.signBox('acme/tofu', '1.0', [repo])).code, 0);
  t.equal(boxsig(['trust', 'pin', 'acme/tofu', pinned.fingerprint], { env: s.env }).code, 0);
  t.equal(s.add(s.signBox('acme/tofu', '1.1', [repo])).json.code, 'UNTRUSTED_KEY', 'the recorded key does not widen the pin');
});

t.test('thresholds count only keys trusted before the box (rotation does not count)', async (t) => {
  const s = setup(t);
  const [a1, a2] = ['A1', 'A2'].map((n) => makeKey(s.dir, `${n} <${n}@acme.example>`, [], s.env));
  const [n1, n2] = ['N1', 'N2'].map((n) => makeKey(s.dir, [`${n} <${n}@acme.example>`, 'boxsig:acme/th'], [], s.env));
  s.cfg({ boxes: { 'acme/th': { threshold: 2 } } });
  const first = s.add(s.signBox('acme/th', '1.0', [a1, a2]));
  t.equal(first.code, 0, first.stderr);
  const fresh = s.add(s.signBox('acme/th', '1.1', [a1, n1]));
  t.equal(fresh.json.code, 'THRESHOLD_NOT_MET', 'a recorded key plus a key made a minute ago is one trusted key');
  t.match(fresh.json.message, /trusted only because a recorded key co-signed this box; it does not count/);
  // two new keys certified by one recorded key count once, as that key
  for (const n of [n1, n2]) {
    const c = path.join(s.dir, `${n.fingerprint}.certified.asc`);
    t.equal(boxsig(['key', 'certify', '--org-key', a1.secret, '--scope', 'acme/th', n.public, '-o', c], { env: s.env }).code, 0);
    t.equal(boxsig(['key', 'import', c], { env: s.env }).code, 0);
  }
  const certified = s.add(s.signBox('acme/th', '1.2', [n1, n2]));
  t.equal(certified.json.code, 'THRESHOLD_NOT_MET', 'two new keys certified by one recorded key');
  t.match(certified.json.message, /counts as .*the recorded key that certified it/);
  const rotated = s.add(s.signBox('acme/th', '1.3', [a1, a2, n1]));
  t.equal(rotated.code, 0, 'two recorded keys can rotate a third in');
  t.match(rotated.json.recorded, [`rotation: ${n1.fingerprint}`]);
  t.equal(s.add(s.signBox('acme/th', '1.4', [a1, n1])).code, 0, 'from then on the rotated key counts');
});

t.test('one signing subkey bound to two pinned primaries counts once', async (t) => {
  const s = setup(t);
  const openpgp = await import('openpgp');
  const E = openpgp.enums;
  const cfg = openpgp.config;
  const gen = (name: string, subkeys: Array<{ sign: boolean }>) =>
    openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name, email: `${name}@acme.example` }], subkeys, format: 'object' });
  const { privateKey: one } = await gen('one', [{ sign: true }]);
  const { privateKey: bare } = await gen('two', []);
  // bind one's signing subkey to a second primary too, with a valid back-signature
  const sub = one.subkeys[0].keyPacket;
  const data = { key: bare.keyPacket, bind: sub };
  const back = new openpgp.SignaturePacket();
  Object.assign(back, { signatureType: E.signature.keyBinding, publicKeyAlgorithm: sub.algorithm, hashAlgorithm: E.hash.sha512 });
  // openpgp's typings omit the config argument that sign() takes
  await (back as any).sign(sub, data, new Date(), false, cfg);
  const bind = new openpgp.SignaturePacket();
  const flags = { keyFlags: [E.keyFlags.signData], embeddedSignature: back };
  Object.assign(bind, { signatureType: E.signature.subkeyBinding, publicKeyAlgorithm: bare.keyPacket.algorithm, hashAlgorithm: E.hash.sha512, ...flags });
  await (bind as any).sign(bare.keyPacket, data, new Date(), false, cfg);
  const packets = bare.toPacketList();
  packets.push(sub, bind);
  const two = new openpgp.PrivateKey(packets);
  const files = [one, two].map((k, i): KeyFiles => {
    const secret = path.join(s.dir, `shared-${i}.secret.asc`);
    fs.writeFileSync(secret, k.armor());
    return { fingerprint: k.getFingerprint().toUpperCase(), secret, public: '', revocation: '' };
  });
  s.cfg({ boxes: { 'acme/shared': { pin: files.map((f) => f.fingerprint), threshold: 2 } } });
  const r = s.verify(s.signBox('acme/shared', '1.0', files));
  t.equal(r.json.code, 'THRESHOLD_NOT_MET', 'one signature counted for two signers');
  t.match(r.json.message, /sign with the same key .*it counts once/);
});

t.test('rotation by certification needs a certified boxsig:<glob> user ID covering the name', async (t) => {
  if (!requireTool(t, 'gpg', 'gnupg')) return;
  const s = setup(t);
  const home = gnupgHome(t);
  const old = gpgKey(t, s.dir, 'Old <old@acme.example>', 'ed25519', 'sign,cert', home);
  const bob = gpgKey(t, s.dir, 'Bob <bob@example.org>', 'ed25519', 'sign', home);
  const genv = { ...process.env, GNUPGHOME: home };
  const gpg = (...args: string[]) => must('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: genv });
  const oldKey: KeyFiles = { fingerprint: old.fingerprint, secret: old.secret, public: old.public, revocation: '' };
  const bobKey: KeyFiles = { fingerprint: bob.fingerprint, secret: bob.secret, public: bob.public, revocation: '' };
  t.equal(s.add(s.signBox('acme/rot6', '1.0', [oldKey])).code, 0, 'first use records the old key');
  // an ordinary web-of-trust certification of Bob's key by the recorded key
  gpg('-u', old.fingerprint, '--quick-sign-key', bob.fingerprint, 'Bob <bob@example.org>');
  const bobPub = path.join(s.dir, 'bob.asc');
  fs.writeFileSync(bobPub, gpg('--armor', '--export', bob.fingerprint));
  t.equal(boxsig(['key', 'import', bobPub], { env: s.env }).code, 0);
  const wot = s.add(s.signBox('acme/rot6', '1.1', [bobKey]));
  t.equal(wot.json.code, 'KEY_CHANGED', 'an unrelated certification hands no name over');
  t.match(wot.json.message, /not of the form boxsig:<glob>/);
  // a certified boxsig: user ID for another name does not either
  gpg('--quick-add-uid', bob.fingerprint, 'boxsig:acme/other');
  gpg('-u', old.fingerprint, '--quick-sign-key', bob.fingerprint, 'boxsig:acme/other');
  fs.writeFileSync(bobPub, gpg('--armor', '--export', bob.fingerprint));
  t.equal(boxsig(['key', 'import', bobPub], { env: s.env }).code, 0);
  t.equal(s.add(s.signBox('acme/rot6', '1.1', [bobKey])).json.code, 'KEY_CHANGED', 'a boxsig: user ID for another name');
  gpg('--quick-add-uid', bob.fingerprint, 'boxsig:acme/rot*');
  gpg('-u', old.fingerprint, '--quick-sign-key', bob.fingerprint, 'boxsig:acme/rot*');
  fs.writeFileSync(bobPub, gpg('--armor', '--export', bob.fingerprint));
  t.equal(boxsig(['key', 'import', bobPub], { env: s.env }).code, 0);
  fs.writeFileSync(bobKey.secret, gpg('--armor', '--export-secret-keys', bob.fingerprint));
  const ok = s.add(s.signBox('acme/rot6', '1.2', [bobKey]));
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.json.recorded, [`rotation: ${bob.fingerprint}`], 'a certified boxsig:<glob> covering the name hands it over');
});

t.test('forgetting the last key of a name does not reopen trust on first use', async (t) => {
  const s = setup(t);
  const a = makeKey(s.dir, 'A <a@acme.example>', [], s.env);
  const b = makeKey(s.dir, 'B <b@acme.example>', [], s.env);
  t.equal(s.add(s.signBox('acme/fg', '1.0', [a])).code, 0);
  const f = boxsig(['trust', 'forget', 'acme/fg', '--key', a.fingerprint, '--json'], { env: s.env });
  t.equal(f.code, 0, f.stderr);
  t.same(f.json.keysLeft, []);
  t.match(f.json.next, /no trusted key any more.*boxsig trust accept acme\/fg FPR/s, 'says what happens next');
  const human = boxsig(['trust', 'forget', 'acme/fg', '--key', a.fingerprint], { env: s.env });
  t.match(human.stdout + human.stderr, /nothing recorded|no trusted key/);
  const next = s.add(s.signBox('acme/fg', '1.1', [b]));
  t.equal(next.json.code, 'UNTRUSTED_KEY', 'the next box from any key is not "first use"');
  t.match(next.json.message, /never trusted on first use again/);
  t.match(next.json.message, `boxsig trust accept acme/fg ${b.fingerprint}`);
  t.equal(s.add(s.signBox('acme/fg', '1.1', [a])).json.code, 'UNTRUSTED_KEY', 'nor from the forgotten key');
  t.equal(boxsig(['trust', 'accept', 'acme/fg', b.fingerprint], { env: s.env }).code, 0);
  t.equal(s.add(s.signBox('acme/fg', '1.2', [b])).code, 0, 'an explicit accept trusts the key');
  t.equal(s.add(s.signBox('acme/fg', '1.0.1', [b])).json.code, 'ROLLBACK', 'and the highest version was kept');
});

t.test('accepting a rotated key keeps older boxes valid; --distrust-old names the affected boxes', async (t) => {
  const s = setup(t);
  const a = makeKey(s.dir, 'A <a@acme.example>', [], s.env);
  const b = makeKey(s.dir, 'B <b@acme.example>', [], s.env);
  t.equal(s.add(s.signBox('acme/acc', '1.0', [a])).code, 0);
  const changed = s.add(s.signBox('acme/acc', '2.0', [b]));
  t.equal(changed.json.code, 'KEY_CHANGED');
  const printed = /boxsig (trust accept \S+ \S+)/.exec(changed.json.message)![1].split(' ');
  t.equal(boxsig([...printed], { env: s.env }).code, 0, 'the printed command, as printed');
  t.equal(s.add(s.signBox('acme/acc', '2.0', [b])).code, 0, 'the new key is accepted');
  const installed = () => {
    const r = boxsig(['verify', '--installed', 'acme/acc', '--json'], { env: s.env, cwd: s.dir });
    return Object.fromEntries(r.json.boxes.map((x: any) => [x.version, x.ok ? 'ok' : x.code]));
  };
  t.same(installed(), { '1.0': 'ok', '2.0': 'ok' }, 'the box the old key signed before stays valid');
  await sleep(1100);
  t.equal(s.add(s.signBox('acme/acc', '3.0', [a])).json.code, 'UNTRUSTED_KEY', 'a new box needs the new key');
  t.equal(boxsig(['trust', 'accept', 'acme/acc', a.fingerprint], { env: s.env }).code, 0, 'accepting the old key again');
  t.same(installed(), { '1.0': 'ok', '2.0': 'ok' }, 'does not flip the boxes of the key it replaces');
  const d = boxsig(['trust', 'accept', 'acme/acc', b.fingerprint, '--distrust-old', '--json'], { env: s.env });
  t.equal(d.code, 0, d.stderr);
  t.same(
    d.json.affected.map((x: any) => x.version),
    ['1.0'],
    'the message names the installed boxes the distrusted key signed',
  );
  const human = boxsig(['trust', 'accept', 'acme/acc', b.fingerprint, '--distrust-old'], { env: s.env });
  t.equal(human.code, 0);
  t.same(installed(), { '1.0': 'UNTRUSTED_KEY', '2.0': 'ok' }, 'a distrusted key vouches for nothing');
  const list = boxsig(['trust', 'list', '--json'], { env: s.env }).json.boxes['acme/acc'];
  t.ok(list.history.length <= 50);
  t.same(
    list.retired.map((r: any) => [r.key, r.distrusted]),
    [[a.fingerprint, true]],
  );
});

t.test('verify of a box whose signer is unknown says so; --require-trusted refuses it', async (t) => {
  const s = setup(t);
  const k = makeKey(s.dir, 'U <u@acme.example>', [], s.env);
  const box = s.signBox('acme/unknown', '1.0', [k]);
  const v = s.verify(box);
  t.equal(v.code, 0, v.stderr);
  t.equal(v.json.signers[0].trusted, false, 'the signer is not trusted');
  t.equal(v.json.signers[0].valid, true, 'but its signature is valid');
  t.match(v.json.signers[0].explanation, /boxsig add would trust it on first use/);
  t.match(v.json.warnings.join('\n'), /the signature is valid, but the signer .* is unknown/);
  const human = boxsig(['verify', box], { env: s.env, cwd: s.dir });
  t.match(human.stdout, /valid, signer unknown/);
  t.match(human.stderr, /signature is valid, but the signer .* is unknown.*boxsig add would trust it on first use/s);
  const strict = s.verify(box, '--require-trusted');
  t.equal(strict.code, 1);
  t.equal(strict.json.code, 'UNTRUSTED_KEY');
  t.equal(s.add(box).code, 0);
  const known = s.verify(box, '--require-trusted');
  t.equal(known.code, 0, 'once recorded, the signer is known');
  t.equal(known.json.signers[0].trusted, true);
});

t.test('config files: a project file someone else owns is refused; a project cannot widen your pins; every file is named', async (t) => {
  const s = setup(t);
  const a = makeKey(s.dir, 'A <a@acme.example>', [], s.env);
  const b = makeKey(s.dir, 'B <b@acme.example>', [], s.env);
  const sub = path.join(s.dir, 'project', 'sub');
  fs.mkdirSync(sub, { recursive: true });
  const projectFile = path.join(s.dir, 'project', 'boxsig.json');
  const box = s.signBox('acme/cfg', '1.0', [b]);
  const verifyIn = (cwd: string, ...args: string[]) => boxsig(['verify', box, '--json', ...args], { env: s.env, cwd });
  fs.writeFileSync(projectFile, JSON.stringify({ boxes: { 'acme/*': { pin: [b.fingerprint] } } }));
  if (process.getuid?.() === 0) {
    fs.chownSync(projectFile, 65534, 65534);
    const r = verifyIn(sub);
    t.equal(r.code, 2, 'a project file owned by another user is a configuration error');
    t.equal(r.json.code, 'CONFIG');
    t.match(r.json.message, `${projectFile} belongs to user 65534`);
    t.equal(verifyIn(sub, '--config', projectFile).code, 0, 'named explicitly with --config, it is used');
    fs.chownSync(projectFile, 0, 0);
  } else t.comment('SKIP: changing the owner of a file needs root');
  fs.chmodSync(projectFile, 0o666);
  t.equal(verifyIn(sub).json.code, 'CONFIG', 'a project file anyone can write is refused');
  fs.chmodSync(projectFile, 0o644);
  const ok = verifyIn(sub);
  t.equal(ok.code, 0, ok.stderr);
  t.same(ok.json.config, [projectFile], '--json names the config files that applied');
  // the user's own pin: the project cannot widen it
  fs.mkdirSync(s.env.BOXSIG_HOME!, { recursive: true });
  const userConfig = path.join(s.env.BOXSIG_HOME!, 'config.json');
  fs.writeFileSync(userConfig, JSON.stringify({ boxes: { 'acme/*': { pin: [a.fingerprint], threshold: 1 } } }));
  const narrowed = verifyIn(sub);
  t.equal(narrowed.json.code, 'UNTRUSTED_KEY', "the project's pin does not replace the user's");
  t.match(narrowed.json.message, /a project file cannot widen or remove your pins/);
  const byA = boxsig(['verify', s.signBox('acme/cfg', '1.0', [a]), '--json'], { env: s.env, cwd: sub });
  t.equal(byA.code, 0, byA.stderr);
  t.same(byA.json.config, [userConfig, projectFile]);
  t.match(byA.json.warnings.join('\n'), /cannot widen or remove your pins/);
  const human = boxsig(['verify', s.signBox('acme/cfg', '1.0', [a])], { env: s.env, cwd: sub });
  t.match(human.stdout, `config    ${userConfig}, ${projectFile}`);
  // other weakenings apply, and are said
  fs.writeFileSync(projectFile, JSON.stringify({ boxes: { 'acme/*': { revocation: 'warn' } } }));
  fs.writeFileSync(userConfig, JSON.stringify({ boxes: { 'acme/*': { pin: [a.fingerprint], revocation: 'enforce' } } }));
  const weaker = boxsig(['verify', s.signBox('acme/cfg', '1.0', [a]), '--json'], { env: s.env, cwd: sub });
  t.equal(weaker.code, 0, weaker.stderr);
  t.match(weaker.json.warnings.join('\n'), /weakens your own policy for acme\/cfg: revocation enforce -> warn/);
  const added = s.add(s.signBox('acme/cfg', '1.0', [a]));
  t.same(added.json.config, [userConfig], 'add names the config files too');
});
