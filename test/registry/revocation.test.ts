/**
 * Revocations registered after a release, end to end (issue 14, embedded
 * engine): an org key certifies three repository keys; a box signed by each
 * is published and released, and added by a consumer who configured only the
 * org fingerprint. Then the org registers, with `boxsig registry org key`:
 * - a `compromised` revocation of key A: its released box is refused at every
 *   later `boxsig add` (KEY_REVOKED) — a fresh consumer's, and a `--force`
 *   re-add by the consumer who installed it before (who learns the revocation
 *   from the registry, and `verify --installed` then flags the box);
 * - a `superseded` revocation of key C: its box, signed before, stays valid
 *   (docs/TRUST.md: a soft revocation keeps earlier signatures), and a box C
 *   signs afterwards is refused at upload;
 * - a `compromised` revocation of the org key itself: the chains through it
 *   are gone, B's released box is refused at add.
 * The catalog keeps listing the released versions (released boxes are
 * immutable); the keys endpoint serves every revocation, which is how
 * consumers learn them.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, boxsigAsync, makeBox, makeKey, sign, type KeyFiles } from '../helpers.js';
import { engines, stopEngines } from './engines.js';
import { catalog, createOrg, getJson, mustAdmin, newLab, publish, sleep, startRegistry, token } from './lab.js';

t.teardown(stopEngines);
const embedded = engines('all').available.find((e) => e.name === 'embedded')!;

t.test('revocations registered after a release reach boxsig add through the registry', async (t) => {
  const dir = t.testdir({});
  const inst = await embedded.create(dir);
  t.teardown(() => inst.close());
  const lab = newLab(dir, inst);
  const reg = await startRegistry(lab);
  t.teardown(() => reg.stop());

  const orgKey = makeKey(dir, 'Acme Org <org@acme.example>', [], lab.env);
  const certified = (uids: string[], scope: string): KeyFiles & { cert: string } => {
    const k = makeKey(dir, uids, [], lab.env);
    const cert = path.join(dir, `${k.fingerprint}.certified.asc`);
    const r = boxsig(['key', 'certify', '--org-key', orgKey.secret, '--scope', scope, k.public, '-o', cert], { env: lab.env });
    if (r.code !== 0) throw new Error(`key certify failed: ${r.stderr}`);
    return { ...k, cert };
  };
  const a = certified(['App Builds <app@acme.example>', 'boxsig:acme/app'], 'acme/app');
  const b = certified(['DB Builds <db@acme.example>', 'boxsig:acme/db'], 'acme/db');
  const c = certified(['Web Builds <web@acme.example>', 'boxsig:acme/web'], 'acme/web');
  createOrg(lab, 'acme');
  mustAdmin(lab, ['org', 'key', 'acme', orgKey.public, a.cert, b.cert, c.cert, '--require']);
  const pub = token(lab, 'acme', 'publish');

  const signed = (k: KeyFiles & { cert: string }, name: string, version: string) => {
    const f = path.join(dir, `${name.replace('/', '-')}-${version}.box`);
    makeBox(f);
    const r = sign(f, [k], ['--name', name, '--version', version, '--cert', k.cert], lab.env);
    if (r.code !== 0) throw new Error(`sign failed: ${r.stderr}`);
    return f;
  };
  for (const [k, name] of [
    [a, 'acme/app'],
    [b, 'acme/db'],
    [c, 'acme/web'],
  ] as const) {
    const r = await publish(lab, reg.url, pub, signed(k, name, '1.0.0'), ['--release']);
    t.equal(r.code, 0, `${name} 1.0.0 is published and released`, { out: r.stdout + r.stderr });
  }

  /** A consumer who configured only the org fingerprint, adding from the registry. */
  const consumer = (name: string) => {
    const home = path.join(dir, name);
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'boxsig.json'), JSON.stringify({ orgs: { 'acme/*': [orgKey.fingerprint] } }));
    const env = { ...lab.env, BOXSIG_HOME: path.join(home, 'boxsig'), VAGRANT_HOME: path.join(home, 'vagrant'), VAGRANT_SERVER_URL: reg.url };
    return {
      add: (box: string, args: string[] = []) => boxsigAsync(['add', box, ...args, '--json'], { env, cwd: home }),
      verifyInstalled: (box: string) => boxsigAsync(['verify', '--installed', box, '--json'], { env, cwd: home }),
    };
  };
  const early = consumer('early');
  for (const name of ['acme/app', 'acme/db', 'acme/web']) {
    const r = await early.add(name);
    t.equal(r.json?.ok, true, `before any revocation, ${name} is added`, { out: r.stdout + r.stderr });
  }

  // signatures and revocations are dated in seconds: the revocations come strictly after the release
  await sleep(1100);
  const revoke = (k: KeyFiles, reason: string) => {
    const out = path.join(dir, `${k.fingerprint}.${reason}.rev.asc`);
    const r = boxsig(['key', 'revoke', '--key', k.secret, '--reason', reason, '-o', out], { env: lab.env });
    if (r.code !== 0) throw new Error(`key revoke failed: ${r.stderr}`);
    return out;
  };
  const reg1 = mustAdmin(lab, ['org', 'key', 'acme', revoke(a, 'compromised'), revoke(c, 'superseded')]);
  t.same([...reg1.revocations].sort(), [a.fingerprint, c.fingerprint].sort(), 'the two revocations are registered');

  const served = await getJson(`${reg.url}/boxsig/v1/orgs/acme/boxes/app/keys`);
  t.equal(served.json?.revocations?.length, 2, 'the keys endpoint serves every revocation the org registered');
  const cat = await catalog(reg.url, 'acme/app');
  t.same(
    cat.versions.map((v: any) => v.version),
    ['1.0.0'],
    'the catalog still lists the released version (released boxes are immutable; consumers refuse it)',
  );

  const late = consumer('late');
  const ra = await late.add('acme/app');
  t.equal(ra.json?.code, 'KEY_REVOKED', 'a fresh consumer refuses the box of the key revoked as compromised after the release', {
    out: ra.stdout + ra.stderr,
  });
  const rc = await late.add('acme/web');
  t.equal(rc.json?.ok, true, 'a box signed before its key was superseded is still added', { out: rc.stdout + rc.stderr });
  const rb = await late.add('acme/db');
  t.equal(rb.json?.ok, true, 'the untouched key B still works', { out: rb.stdout + rb.stderr });

  // the consumer who added before: adding again (--force) learns the revocation and refuses; the installed box is flagged
  const again = await early.add('acme/app', ['--force']);
  t.equal(again.json?.code, 'KEY_REVOKED', 'a re-add by the early consumer is refused', { out: again.stdout + again.stderr });
  const check = await early.verifyInstalled('acme/app');
  t.not(check.code, 0, 'verify --installed flags the box the early consumer installed before', { out: check.stdout + check.stderr });
  t.match(check.stdout + check.stderr, /KEY_REVOKED/, 'as KEY_REVOKED');

  // the registry refuses what the superseded key signs now
  const after = await publish(lab, reg.url, pub, signed(c, 'acme/web', '2.0.0'));
  t.equal(after.json?.code, 'KEY_REVOKED', 'a box the superseded key signs after its revocation is refused at upload', {
    out: after.stdout + after.stderr,
  });

  // the org key itself is revoked as compromised: no chain through it counts any more
  await sleep(1100);
  mustAdmin(lab, ['org', 'key', 'acme', revoke(orgKey, 'compromised')]);
  const last = consumer('last');
  const rdb = await last.add('acme/db');
  t.not(rdb.json?.ok, true, 'after the org key is revoked, a box certified through it is refused', { out: rdb.stdout + rdb.stderr });
  t.match(rdb.json?.code, /^(KEY_REVOKED|UNTRUSTED_KEY)$/, `with ${rdb.json?.code}`);
  const rdb2 = await early.add('acme/db', ['--force']);
  t.not(rdb2.json?.ok, true, 'and a re-add by the early consumer too', { out: rdb2.stdout + rdb2.stderr });
  const checkDb = await early.verifyInstalled('acme/db');
  t.not(checkDb.code, 0, "verify --installed flags the early consumer's box certified through the revoked org key", {
    out: checkDb.stdout + checkDb.stderr,
  });
});
