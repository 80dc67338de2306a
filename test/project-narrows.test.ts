/**
 * A project layer (a cloned boxsig.json) narrows, never widens, the user's own
 * trust: its pin or organisation cannot replace the key a trust-on-first-use
 * record holds, nor the organisation key of the user's own config.json. The
 * third outside test's finding 3, end to end with real keys and boxes.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, isolatedEnv, makeBox, makeKey, sign, type KeyFiles } from './helpers.js';

function setup(t: any) {
  const dir = t.testdir({ clone: {} });
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const base = makeBox(path.join(dir, 'base.box'));
  const clone = path.join(dir, 'clone');
  const project = (doc: unknown) => fs.writeFileSync(path.join(clone, 'boxsig.json'), JSON.stringify(doc));
  const own = (doc: unknown) => {
    fs.mkdirSync(env.BOXSIG_HOME as string, { recursive: true });
    fs.writeFileSync(path.join(env.BOXSIG_HOME as string, 'config.json'), JSON.stringify(doc));
  };
  let n = 0;
  const signBox = (name: string, version: string, keys: KeyFiles[], extra: string[] = []) => {
    const out = path.join(dir, `box-${n++}.box`);
    const r = sign(base, keys, ['--name', name, '--version', version, '--fresh', '-o', out, ...extra], env);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  const add = (box: string, cwd = dir) => boxsig(['add', box, '--json', '--quiet'], { env, cwd });
  const highest = (name: string) => boxsig(['trust', 'list', '--json'], { env }).json.boxes[name]?.highestVersion;
  const key = (uid: string | string[]) => makeKey(dir, uid, [], env);
  const certify = (org: KeyFiles, repo: KeyFiles, scope: string) => {
    const out = path.join(dir, `${repo.fingerprint}.certified.asc`);
    const r = boxsig(['key', 'certify', '--org-key', org.secret, '--scope', scope, repo.public, '-o', out], { env });
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  return { dir, env, clone, project, own, signBox, add, highest, key, certify };
}

t.test('a project pin or organisation over a trust-on-first-use record is a key change', async (t) => {
  const s = setup(t);
  const publisher = s.key('Publisher <p@acme.example>');
  const attacker = s.key(['Attacker <m@evil.example>', 'boxsig:acme/*']);
  const attackerOrg = s.key('Attacker Org <org@evil.example>');
  const cert = s.certify(attackerOrg, attacker, 'acme/*');
  t.equal(s.add(s.signBox('acme/web', '1.0.0', [publisher])).code, 0, 'first use records the publisher');
  const evil = s.signBox('acme/web', '99.0.0', [attacker], ['--cert', cert]);
  t.equal(s.add(evil).json.code, 'KEY_CHANGED', 'control: outside the project, a key change');

  s.project({ boxes: { 'acme/web': { pin: [attacker.fingerprint] } } });
  const pinned = s.add(evil, s.clone);
  t.equal(pinned.json?.code, 'KEY_CHANGED', 'a project pin does not replace the recorded key');
  t.match(pinned.json?.message, publisher.fingerprint, 'names the recorded key');
  t.match(pinned.json?.message, /narrows your trust, it never widens it/);
  t.equal(s.highest('acme/web'), '1.0.0', 'the highest version is unchanged');

  s.project({ orgs: { 'acme/*': [attackerOrg.fingerprint] } });
  const viaOrg = s.add(evil, s.clone);
  t.equal(viaOrg.json?.code, 'KEY_CHANGED', 'a project organisation does not replace the recorded key');
  t.equal(s.highest('acme/web'), '1.0.0', 'the highest version is unchanged');

  s.project({ boxes: { 'acme/web': { pin: [publisher.fingerprint] } } });
  const narrowed = s.add(s.signBox('acme/web', '1.1.0', [publisher]), s.clone);
  t.equal(narrowed.code, 0, `a project pin that names the recorded key still works (${narrowed.stderr.trim()})`);
  t.equal(s.highest('acme/web'), '1.1.0');

  s.project({ boxes: { 'acme/*': { pin: [attacker.fingerprint] } } });
  const fresh = s.add(s.signBox('acme/new', '1.0.0', [attacker]), s.clone);
  t.equal(fresh.code, 0, `a name the user has no word on takes the project's pin (${fresh.stderr.trim()})`);
  t.equal(fresh.json?.signers?.[0]?.via, 'pin');
});

t.test("a project pin or organisation over the user's own organisation key is refused", async (t) => {
  const s = setup(t);
  const org = s.key('Acme Org <org@acme.example>');
  const repo = s.key(['Acme Repo <repo@acme.example>', 'boxsig:acme/*']);
  const attacker = s.key(['Attacker <m@evil.example>', 'boxsig:acme/*']);
  const attackerOrg = s.key('Attacker Org <org@evil.example>');
  const good = s.signBox('acme/web', '1.0.0', [repo], ['--cert', s.certify(org, repo, 'acme/*')]);
  const evil = s.signBox('acme/web', '99.0.0', [attacker], ['--cert', s.certify(attackerOrg, attacker, 'acme/*')]);
  s.own({ orgs: { 'acme/*': [org.fingerprint] } });
  t.equal(s.add(evil).json.code, 'UNTRUSTED_KEY', 'control: outside the project, refused');

  s.project({ boxes: { 'acme/web': { pin: [attacker.fingerprint] } } });
  const pinned = s.add(evil, s.clone);
  t.equal(pinned.json?.code, 'UNTRUSTED_KEY', "a project pin does not replace the user's organisation");
  t.match(pinned.json?.message, /narrows your trust, it never widens it/);

  s.project({ orgs: { 'acme/*': [attackerOrg.fingerprint] } });
  const viaOrg = s.add(evil, s.clone);
  t.equal(viaOrg.json?.code, 'UNTRUSTED_KEY', "a project organisation does not replace the user's");
  t.equal(s.highest('acme/web'), undefined, 'nothing was recorded');

  s.project({ boxes: { 'acme/web': { pin: [repo.fingerprint] } } });
  const ok = s.add(good, s.clone);
  t.equal(ok.code, 0, `a project pin of a key the user's organisation certified works (${ok.stderr.trim()})`);
});
