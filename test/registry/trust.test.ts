/**
 * Uploads are judged by the org's policy with the rules and codes of
 * `boxsig add`: trust on first use (recorded by the registry, rotation by
 * co-signing, KEY_CHANGED naming the registry's remedy), organisation-key
 * chains (keys registered with `registry org key`), thresholds, required
 * claims, revocations registered by the org.
 */
import t from 'tap';
import path from 'node:path';
import { boxsig, makeKey } from '../helpers.js';
import { engines } from './engines.js';
import { box, createOrg, key, mustAdmin, newLab, publish, startRegistry, token, type Lab } from './lab.js';

const embedded = engines('all').available.find((e) => e.name === 'embedded')!;

async function setup(t: any): Promise<{ lab: Lab; url: string }> {
  const dir = t.testdir({});
  const lab = newLab(dir, await embedded.create(dir));
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());
  return { lab, url: reg.url };
}

t.test('trust on first use at the registry: rotation by co-signing, KEY_CHANGED otherwise', async (t) => {
  const { lab, url } = await setup(t);
  createOrg(lab, 'tofu');
  const pub = token(lab, 'tofu', 'publish');
  const a = key(lab, 'A <a@tofu.example>');
  const b = key(lab, 'B <b@tofu.example>');
  t.equal((await publish(lab, url, pub, box(lab, [a], 'tofu/app', '1.0.0'))).code, 0, 'the first key is trusted on first use');
  const changed = await publish(lab, url, pub, box(lab, [b], 'tofu/app', '1.1.0'));
  t.equal(changed.json?.code, 'KEY_CHANGED', 'another key alone: KEY_CHANGED');
  t.match(changed.json?.message, /Co-sign with the recorded key, or have an admin of tofu pin the new key/);
  t.notMatch(changed.json?.message, /boxsig trust accept/, 'no advice that does not apply to a registry');
  t.equal((await publish(lab, url, pub, box(lab, [a, b], 'tofu/app', '1.2.0'))).code, 0, 'co-signed by the recorded key: rotation');
  t.equal((await publish(lab, url, pub, box(lab, [b], 'tofu/app', '1.3.0'))).code, 0, 'the new key alone from then on');
  t.equal((await publish(lab, url, pub, box(lab, [b], 'tofu/other', '1.0.0'))).code, 0, 'each box has its own record');
});

t.test('organisation chains, thresholds, claims and revocations from the org policy', async (t) => {
  const { lab, url } = await setup(t);
  const org = key(lab, 'Chain Org <org@chain.example>');
  const repo = makeKey(lab.dir, ['Chain Web <web@chain.example>', 'boxsig:chain/web'], [], lab.env);
  const stray = key(lab, 'Stray <stray@chain.example>');
  const certified = path.join(lab.dir, 'repo.certified.asc');
  const c = boxsig(['key', 'certify', '--org-key', org.secret, '--scope', 'chain/web', repo.public, '-o', certified], { env: lab.env });
  t.equal(c.code, 0, c.stderr);
  const a = key(lab, 'A <a@chain.example>');
  const b = key(lab, 'B <b@chain.example>');
  createOrg(lab, 'chain', {
    orgs: { 'chain/*': [org.fingerprint] },
    boxes: { 'chain/db': { pin: [a.fingerprint, b.fingerprint], threshold: 2, claims: { builder: 'ci-prod' } } },
  });
  const keys = mustAdmin(lab, ['org', 'key', 'chain', org.public, certified]);
  t.same([...keys.keys].sort(), [org.fingerprint, repo.fingerprint].sort(), 'the org key and the certified repository key are registered');
  const pub = token(lab, 'chain', 'publish');

  t.equal((await publish(lab, url, pub, box(lab, [repo], 'chain/web', '1.0.0'))).code, 0, 'a repository key certified by the org key');
  const strayR = await publish(lab, url, pub, box(lab, [stray], 'chain/web', '1.0.1'));
  t.equal(strayR.json?.code, 'UNTRUSTED_KEY', 'an uncertified key under the org scope: UNTRUSTED_KEY');
  t.match(strayR.json?.message, /carries no certification by organisation key/);

  const one = await publish(lab, url, pub, box(lab, [a], 'chain/db', '1.0.0', {}, ['--claim', 'builder=ci-prod']));
  t.equal(one.json?.code, 'THRESHOLD_NOT_MET', 'one of two required keys: THRESHOLD_NOT_MET');
  const noClaim = await publish(lab, url, pub, box(lab, [a, b], 'chain/db', '1.0.1'));
  t.equal(noClaim.json?.code, 'CLAIM_MISMATCH', 'a required claim missing: CLAIM_MISMATCH');
  t.equal((await publish(lab, url, pub, box(lab, [a, b], 'chain/db', '1.0.2', {}, ['--claim', 'builder=ci-prod']))).code, 0, 'both keys and the claim');

  // the org registers a's revocation (compromised): boxes signed by a no longer meet the threshold
  const rev = path.join(lab.dir, 'a.rev');
  t.equal(boxsig(['key', 'revoke', '--key', a.secret, '--reason', 'compromised', '-o', rev], { env: lab.env }).code, 0);
  const r = mustAdmin(lab, ['org', 'key', 'chain', rev]);
  t.same(r.revocations, [a.fingerprint]);
  const revoked = await publish(lab, url, pub, box(lab, [a, b], 'chain/db', '1.0.3', {}, ['--claim', 'builder=ci-prod']));
  t.equal(revoked.json?.code, 'KEY_REVOKED', 'a key the org revoked: KEY_REVOKED');
});
