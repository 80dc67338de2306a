/**
 * Escrow signing (issue 15): an unsigned box published with the real
 * `vagrant cloud publish` to an escrow box is downloadable signed by the
 * registry's escrow key (verified by boxsig, GnuPG and sqv); the escrow
 * private key is nowhere in clear in the database or the object store;
 * converting to a self-managed key moves a trust-on-first-use consumer over
 * with no KEY_CHANGED; a box signed by the old escrow key after its
 * revocation is refused at upload and at add. Embedded and PostgreSQL engines.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as openpgp from 'openpgp';
import { boxsig, boxsigAsync, makeBox, makeKey, requireTool, sign, type KeyFiles } from '../helpers.js';
import { engines, reportUnavailable, stopEngines, type EngineInstance } from './engines.js';
import { S3BlobStore } from '../../src/registry/blobs/s3.js';
import { signBox } from '../../src/box/sign.js';
import { signerFromKey } from '../../src/keys/signer.js';
import { readSecretKey } from '../../src/keys/keys.js';
import { catalog, createOrg, mustAdmin, newLab, publish, startRegistry, token, vagrantPublish, type Lab } from './lab.js';

const { available, unavailable } = engines('each');
t.teardown(stopEngines);
reportUnavailable(t, unavailable);

async function download(url: string, name: string, version: string, file: string): Promise<{ sha256: string; checksum: string }> {
  const cat = await catalog(url, name);
  const v = cat.versions.find((x: any) => x.version === version);
  const p = v.providers[0];
  const res = await fetch(p.url);
  if (res.status !== 200) throw new Error(`download ${p.url}: ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  fs.writeFileSync(file, bytes);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), checksum: p.checksum };
}

/** A consumer of its own (trust store and Vagrant home), adding ORG/NAME from the registry. */
function consumer(lab: Lab, url: string, name: string) {
  const home = path.join(lab.dir, `consumer-${name}`);
  fs.mkdirSync(home, { recursive: true });
  const env = { ...lab.env, BOXSIG_HOME: path.join(home, 'boxsig'), VAGRANT_HOME: path.join(home, 'vagrant'), VAGRANT_SERVER_URL: url };
  return {
    env,
    add: (args: string[]) => boxsigAsync(['add', ...args, '--json'], { env, cwd: home }),
  };
}

/** Everything readable of the stored metadata and blobs, for a search of secret material. */
async function storedBytes(lab: Lab, inst: EngineInstance): Promise<Buffer> {
  const parts: Buffer[] = [];
  const data = path.join(lab.dir, 'registry');
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const n of fs.readdirSync(d)) {
      const f = path.join(d, n);
      if (fs.statSync(f).isDirectory()) walk(f);
      else parts.push(fs.readFileSync(f));
    }
  };
  walk(data);
  if (inst.engine === 'postgres+s3') {
    const flag = (f: string) => inst.flags[inst.flags.indexOf(f) + 1];
    const store = new S3BlobStore({ endpoint: flag('--s3-endpoint'), bucket: flag('--s3-bucket'), region: flag('--s3-region'), prefix: flag('--s3-prefix') });
    try {
      for (const key of await inst.objects()) {
        if (key.endsWith('(unfinished)')) continue;
        const { stream } = await store.read(key);
        for await (const c of stream) parts.push(c as Buffer);
      }
    } finally {
      store.close();
    }
  }
  if (inst.engine !== 'embedded') {
    const url = inst.flags[inst.flags.indexOf('--database') + 1];
    const dump = spawnSync('pg_dump', ['--no-owner', url], { maxBuffer: 256 * 1024 * 1024 });
    if (dump.status !== 0) throw new Error(`pg_dump failed: ${dump.stderr}`);
    parts.push(dump.stdout);
  }
  return Buffer.concat(parts);
}

/** The forms the escrow secret could take in clear: its armored lines, its secret packet, its private scalar. */
async function secretForms(armored: string): Promise<Buffer[]> {
  const key = await openpgp.readPrivateKey({ armoredKey: armored });
  const packet = key.keyPacket.write();
  const params = (key.keyPacket as any).privateParams as Record<string, Uint8Array>;
  const scalar = Buffer.from(Object.values(params)[0]);
  const lines = armored.split('\n').filter((l) => l.length >= 60);
  return [
    scalar,
    Buffer.from(scalar.toString('hex')),
    Buffer.from(scalar.toString('base64')),
    Buffer.from(packet),
    Buffer.from(Buffer.from(packet).toString('base64').slice(0, 60)),
    ...lines.slice(1, 4).map((l) => Buffer.from(l)),
  ];
}

/** Verify a downloaded box's signature by `fpr` with GnuPG and sqv, from its own .boxsig/ files. */
function verifyByHand(t: any, file: string, fpr: string): void {
  const dir = fs.mkdtempSync('/tmp/bsg-esc-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const x = spawnSync('tar', ['xzf', file, '-C', dir, '.boxsig']);
  t.equal(x.status, 0, 'tar extracts .boxsig/ of the signed box', { stderr: String(x.stderr) });
  const manifest = path.join(dir, '.boxsig/manifest.json');
  const sig = path.join(dir, `.boxsig/signatures/${fpr}.asc`);
  const keyFile = path.join(dir, `.boxsig/keys/${fpr}.asc`);
  const gh = fs.mkdtempSync('/tmp/bsg-g-');
  fs.chmodSync(gh, 0o700);
  t.teardown(() => {
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: gh } });
    fs.rmSync(gh, { recursive: true, force: true });
  });
  const genv = { ...process.env, GNUPGHOME: gh };
  spawnSync('gpg', ['--batch', '--import', keyFile], { env: genv });
  const g = spawnSync('gpg', ['--batch', '--status-fd', '1', '--verify', sig, manifest], { env: genv, encoding: 'utf8' });
  t.equal(g.status, 0, 'gpg --verify accepts the escrow signature', { out: g.stdout + g.stderr });
  t.match(g.stdout, new RegExp(`VALIDSIG ${fpr}`), 'made by the escrow key');
  if (requireTool(t, 'sqv', 'sqv')) {
    const s = spawnSync('sqv', ['--keyring', keyFile, sig, manifest], { encoding: 'utf8' });
    t.equal(s.status, 0, 'sqv accepts the escrow signature', { out: s.stdout + s.stderr });
    t.match(s.stdout, fpr, 'sqv names the escrow key');
  }
}

for (const engine of available) {
  t.test(`escrow signing, export and conversion (${engine.name})`, async (t) => {
    if (!requireTool(t, 'vagrant', 'vagrant') || !requireTool(t, 'gpg', 'gnupg')) return;
    const dir = t.testdir({});
    const kek = path.join(dir, 'kek');
    fs.writeFileSync(kek, randomBytes(32).toString('base64'), { mode: 0o600 });
    const inst = await engine.create(dir);
    t.teardown(() => inst.close());
    const lab = newLab(dir, inst, { BOXSIG_REGISTRY_ESCROW_KEY_FILE: kek });
    const reg = await startRegistry(lab);
    t.teardown(() => reg.stop());
    const url = reg.url;

    createOrg(lab, 'esc');
    const held = mustAdmin(lab, ['org', 'hold-key', 'esc', '--generate', '--require']);
    const created = mustAdmin(lab, ['box', 'create', 'esc/web', '--escrow']);
    const escrowFpr: string = created.escrow.escrow;
    t.equal(created.escrow.certifiedBy, held.fingerprint, 'the escrow key is certified by the org key the registry holds');
    const pub = token(lab, 'esc', 'publish');

    // 1. an unsigned box, published with the real vagrant cloud publish, is downloadable signed
    const unsigned = path.join(dir, 'web-1.0.0.box');
    makeBox(unsigned);
    const declared = createHash('sha256').update(fs.readFileSync(unsigned)).digest('hex');
    const r1 = await vagrantPublish(lab, url, pub, 'esc/web', '1.0.0', unsigned, ['--release', '--checksum', declared, '--checksum-type', 'sha256']);
    t.equal(r1.code, 0, 'vagrant cloud publish of an unsigned box to an escrow box', { out: r1.out });
    const got = path.join(dir, 'got-1.0.0.box');
    const dl = await download(url, 'esc/web', '1.0.0', got);
    t.equal(dl.checksum, dl.sha256, "the catalog's checksum is the signed box's (what is downloaded)");
    t.not(dl.sha256, declared, 'not the unsigned upload');
    const v = boxsig(['verify', got, '--json'], { env: lab.env });
    t.equal(v.json?.ok, true, 'boxsig verify accepts the downloaded box', { out: v.stdout + v.stderr });
    t.same(
      v.json?.signers?.map((s: any) => s.fingerprint),
      [escrowFpr],
      'signed by the escrow key',
    );
    t.match(v.json?.signers?.[0]?.userIds?.[0], /\(registry-managed escrow key\)/, 'its user ID says it is registry-managed');
    const human = boxsig(['verify', got, '--pin', escrowFpr], { env: lab.env });
    t.match(human.stdout, /esc\/web \(registry-managed escrow key\)/, 'boxsig verify shows it');
    verifyByHand(t, got, escrowFpr);
    const unsignedHead = fs.readFileSync(unsigned);
    t.ok(fs.readFileSync(got).subarray(-unsignedHead.length).equals(unsignedHead), 'the uploaded bytes follow .boxsig/ untouched (no recompression)');

    // boxsig publish of an unsigned box to an escrow box: the registry answers what it received and what it stored
    mustAdmin(lab, ['box', 'create', 'esc/api', '--escrow']);
    const apiBox = path.join(dir, 'api.box');
    makeBox(apiBox);
    const bp = await publish(lab, url, pub, apiBox, ['--name', 'esc/api', '--version', '3.0.0', '--provider', 'virtualbox', '--release']);
    t.equal(bp.json?.ok, true, 'boxsig publish of an unsigned box to an escrow box', { out: bp.stdout + bp.stderr });
    const gotApi = path.join(dir, 'got-api.box');
    const dlApi = await download(url, 'esc/api', '3.0.0', gotApi);
    t.equal(bp.json?.sha256, dlApi.sha256, 'it reports the stored (signed) box');
    t.equal(boxsig(['verify', gotApi, '--json'], { env: lab.env }).json?.ok, true, 'which verifies');

    // a signed upload to an escrow box is refused
    const self = makeKey(dir, ['Self <self@esc.example>', 'boxsig:esc/web'], [], lab.env);
    const signedBox = path.join(dir, 'web-signed.box');
    makeBox(signedBox);
    t.equal(sign(signedBox, [self], ['--name', 'esc/web', '--version', '1.0.1'], lab.env).code, 0);
    const refusedSigned = await publish(lab, url, pub, signedBox);
    t.equal(refusedSigned.json?.code, 'UNTRUSTED_KEY', 'a signed upload to an escrow box: refused');
    t.match(refusedSigned.json?.message, /upload it unsigned/);

    // 2. a TOFU consumer adds the escrow-signed box (first use: the escrow key)
    const c = consumer(lab, url, 'tofu');
    const a1 = await c.add(['esc/web']);
    t.equal(a1.json?.ok, true, 'boxsig add esc/web (trust on first use)', { out: a1.stdout + a1.stderr });

    // 3. exporting the escrow key is explicit and audited; its secret is nowhere in clear
    const exported = path.join(dir, 'escrow.secret.asc');
    const ex = mustAdmin(lab, ['escrow', 'export', 'esc/web', '-o', exported]);
    t.equal(ex.escrow.fingerprint, escrowFpr, 'the escrow key is exported');
    t.equal(fs.statSync(exported).mode & 0o777, 0o600, 'to a 0600 file');
    const audit = mustAdmin(lab, ['audit', '--org', 'esc', '--limit', '1000']).audit;
    t.ok(
      audit.some((l: any) => l.action === 'escrow.export' && l.details.fingerprint === escrowFpr),
      'the export is in the audit log',
    );
    for (const action of ['key.register', 'key.certify', 'escrow.create'])
      t.ok(
        audit.some((l: any) => l.action === action),
        `audit has ${action}`,
      );
    const stored = await storedBytes(lab, inst);
    const forms = await secretForms(fs.readFileSync(exported, 'utf8'));
    t.ok(
      forms.every((f) => !stored.includes(f)),
      `the escrow secret is in no stored byte (${inst.engine === 'embedded' ? 'SQLite file and blobs' : 'pg_dump and blobs'})`,
    );
    const kekText = fs.readFileSync(kek);
    t.notOk(stored.includes(kekText.subarray(0, 40)), 'nor is the key-encryption key');
    const wrongKek = path.join(dir, 'kek2');
    fs.writeFileSync(wrongKek, randomBytes(32).toString('base64'), { mode: 0o600 });
    const denied = boxsig(['registry', 'escrow', 'export', 'esc/web', '-o', path.join(dir, 'x.asc'), ...inst.flags, '--json'], {
      env: { ...lab.env, BOXSIG_REGISTRY_ESCROW_KEY_FILE: wrongKek },
    });
    t.equal(denied.json?.code, 'CONFIG', 'another key-encryption key unwraps nothing');
    t.notOk(fs.existsSync(path.join(dir, 'x.asc')), 'and writes nothing');

    // 4. conversion to a self-managed key: the next version is co-signed, the escrow key revoked
    const conv = mustAdmin(lab, ['escrow', 'convert', 'esc/web', self.public]);
    t.equal(conv.escrow.successor, self.fingerprint);
    t.equal(conv.escrow.certifiedBy, held.fingerprint, 'the new key is certified by the org key');
    const notNew = path.join(dir, 'web-1.1.0-unsigned.box');
    makeBox(notNew);
    const refusedUnsigned = await publish(lab, url, pub, notNew, ['--name', 'esc/web', '--version', '1.1.0']);
    t.not(refusedUnsigned.code, 0, 'while converting, an upload not signed by the new key is refused');
    const v11 = path.join(dir, 'web-1.1.0.box');
    makeBox(v11);
    t.equal(sign(v11, [self], ['--name', 'esc/web', '--version', '1.1.0'], lab.env).code, 0);
    const beforeRevocation = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000);
    const r2 = await vagrantPublish(lab, url, pub, 'esc/web', '1.1.0', v11, ['--release']);
    t.equal(r2.code, 0, 'the first version signed by the new key is published', { out: r2.out });
    const got11 = path.join(dir, 'got-1.1.0.box');
    await download(url, 'esc/web', '1.1.0', got11);
    const v2 = boxsig(['verify', got11, '--json', '--pin', self.fingerprint], { env: lab.env });
    t.same(v2.json?.signers?.map((s: any) => s.fingerprint).sort(), [escrowFpr, self.fingerprint].sort(), 'co-signed by the escrow key and the new key');
    const a2 = await c.add(['esc/web']);
    t.equal(a2.json?.ok, true, 'the TOFU consumer adds the co-signed version with no KEY_CHANGED', { out: a2.stdout + a2.stderr });
    t.match(JSON.stringify(a2.json?.recorded), /rotation/, 'recorded as a rotation');
    const audit2 = mustAdmin(lab, ['audit', '--org', 'esc', '--limit', '1000']).audit;
    t.ok(
      audit2.some((l: any) => l.action === 'escrow.convert' && l.details.stage === 'complete'),
      'the conversion is complete',
    );
    t.ok(
      audit2.some((l: any) => l.action === 'key.revoke' && l.details.fingerprint === escrowFpr && l.details.reason === 'superseded'),
      'the escrow key is revoked as superseded',
    );

    const v12 = path.join(dir, 'web-1.2.0.box');
    makeBox(v12);
    t.equal(sign(v12, [self], ['--name', 'esc/web', '--version', '1.2.0'], lab.env).code, 0);
    t.equal((await vagrantPublish(lab, url, pub, 'esc/web', '1.2.0', v12, ['--release'])).code, 0, 'the new key alone from then on');
    const a3 = await c.add(['esc/web']);
    t.equal(a3.json?.ok, true, 'and the consumer follows', { out: a3.stdout + a3.stderr });

    // 5. a box signed by the old escrow key after its revocation: refused at upload and at add
    await new Promise((r) => setTimeout(r, 1500));
    const evil = path.join(dir, 'web-1.3.0.box');
    makeBox(evil);
    const old: KeyFiles = { fingerprint: escrowFpr, secret: exported, public: '', revocation: '' };
    t.equal(sign(evil, [old], ['--name', 'esc/web', '--version', '1.3.0'], lab.env).code, 0);
    const up = await publish(lab, url, pub, evil);
    t.equal(up.json?.code, 'KEY_REVOKED', 'the registry refuses it', { out: up.stdout });
    const add = await c.add([evil, '--name', 'esc/web']);
    t.equal(add.json?.code, 'KEY_REVOKED', 'the consumer refuses it (the revocation it learnt from the registry)', { out: add.stdout + add.stderr });

    // the thief of a superseded key backdates: the registry refuses whatever date the signature claims
    const backdated = path.join(dir, 'web-1.4.0.box');
    makeBox(backdated);
    const escrowKey = await readSecretKey(fs.readFileSync(exported), exported);
    await signBox(backdated, {
      signers: [signerFromKey(escrowKey, exported)],
      name: 'esc/web',
      version: '1.4.0',
      now: beforeRevocation,
    });
    const bd = await publish(lab, url, pub, backdated);
    t.equal(bd.json?.code, 'KEY_REVOKED', 'a backdated signature by the superseded escrow key: refused at upload', { out: bd.stdout });
    t.match(bd.json?.message, /superseded when its box converted/);
  });
}
