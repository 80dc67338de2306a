#!/usr/bin/env node
/**
 * The key fuzzer: packet-level mutations (test/fuzz/packets.mjs) of the key
 * file and the signature a signed box carries, judged by boxsig in-process.
 *
 *   node test/fuzz/keys.mjs --cases N --seed S [--only I] [--json]
 *
 * Properties checked on every case:
 *  - nothing crashes: only refusals (BoxsigError with a refusal code), never
 *    a TypeError, an internal or I/O error, an unhandled rejection;
 *  - boxsig accepts a mutated box only if `sqv` (or, failing that,
 *    `gpg --verify`) accepts the same signature with the same key file:
 *    boxsig never accepts what both refuse;
 * and on every 4th case, a revocation is never lost: the mutated key copy is
 * imported into a fresh keyring first (junk first), then a copy carrying the
 * key's real compromised revocation, and the original box must then be
 * refused as KEY_REVOKED.
 *
 * Exit status: 0 when every property held, 1 otherwise. A failure prints
 * the command that reproduces it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as openpgp from 'openpgp';
import { caseRng } from './mutate.mjs';
import { joinPackets, mutatePackets, splitPackets } from './packets.mjs';
import * as tar from '../corpus/tar.mjs';
import { baseFiles, bodyEntries, manifestFor, prefixEntries } from '../corpus/generate.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(HERE, '..', '..', 'dist');
const NAME = 'corpus/box';
const PGP = { ...openpgp.config, v6Keys: false };

function parseArgs(argv) {
  const o = { cases: 300, seed: 1, only: null, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--cases') o.cases = Number(argv[++i]);
    else if (a === '--seed') o.seed = argv[++i];
    else if (a === '--only') o.only = Number(argv[++i]);
    else if (a === '--json') o.json = true;
    else {
      console.error('usage: node test/fuzz/keys.mjs [--cases N] [--seed S] [--only I] [--json]');
      process.exit(2);
    }
  }
  return o;
}

const has = (cmd) => !spawnSync(cmd, ['--version']).error;

async function dearmor(text) {
  return Buffer.from((await openpgp.unarmor(text)).data);
}

const armorKey = (b) => openpgp.armor(openpgp.enums.armor.publicKey, b, undefined, undefined, undefined, true, PGP);
const armorSig = (b) => openpgp.armor(openpgp.enums.armor.signature, b, undefined, undefined, undefined, true, PGP);

/** The signer key (with a signing subkey and a certified boxsig: user ID), its real revocation, a pool of foreign packets. */
async function setup(dir) {
  const gen = (name, extra = {}) =>
    openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ name }],
      format: 'object',
      config: PGP,
      date: new Date(Date.now() - 3_600_000),
      ...extra,
    });
  const { privateKey: key } = await gen('Fuzzed Signer', { subkeys: [{ sign: true }, {}] });
  const { privateKey: other } = await gen('Other Key', { subkeys: [{ sign: true }] });
  const { certifyScope, addUserId } = await import(pathToFileURL(path.join(DIST, 'keys', 'certify.js')).href);
  const { readKeyData } = await import(pathToFileURL(path.join(DIST, 'keys', 'keys.js')).href);
  const withUid = await addUserId(key, 'boxsig:corpus/*', new Date(Date.now() - 1_800_000));
  const cert = (await readKeyData(withUid.toPublic().write(), 'setup')).certs[0];
  const { writeCert } = await import(pathToFileURL(path.join(DIST, 'keys', 'cert.js')).href);
  const certified = Buffer.from(writeCert(await certifyScope(cert, other, 'corpus/*', new Date(Date.now() - 600_000))));
  const manifest = manifestFor(baseFiles(), { box: { name: NAME } });
  const signed = await openpgp.sign({
    message: await openpgp.createMessage({ binary: manifest }),
    signingKeys: withUid,
    detached: true,
    format: 'binary',
    config: PGP,
  });
  const { publicKey: revokedArmored } = await openpgp.revokeKey({
    key: withUid,
    reasonForRevocation: { flag: openpgp.enums.reasonForRevocation.keyCompromised },
    format: 'armored',
    config: PGP,
  });
  const revoked = await dearmor(revokedArmored);
  const revocation = splitPackets(revoked).filter((p) => p.tag === 2 && p.body[1] === 0x20);
  const junkRevocation = { tag: 2, body: Buffer.from(revocation[0].body) };
  junkRevocation.body[junkRevocation.body.length - 3] ^= 0x40;
  const pool = [
    ...revocation.map((p) => ({ ...p, label: 'the real revocation' })),
    { ...junkRevocation, label: 'a junk revocation' },
    ...splitPackets(Buffer.from(other.toPublic().write())).map((p, i) => ({ ...p, label: `packet ${i} of another key` })),
    { tag: 2, body: Buffer.from(splitPackets(Buffer.from(signed))[0].body), label: 'the manifest signature' },
  ];
  const fpr = key.getFingerprint().toUpperCase();
  return { dir, fpr, key: certified, sig: Buffer.from(signed), manifest, revoked, pool };
}

function boxWith(s, keyBytes, sigBytes, file) {
  const prefix = prefixEntries({
    manifest: s.manifest,
    signatures: [{ fpr: s.fpr, armored: Buffer.from(armorSig(sigBytes)) }],
    keys: [{ fpr: s.fpr, armored: Buffer.from(armorKey(keyBytes)) }],
  });
  fs.writeFileSync(file, Buffer.concat([prefix, bodyEntries(baseFiles()), tar.end()]));
  return file;
}

function sqvAccepts(dir, keyBytes, sigBytes, manifest) {
  fs.writeFileSync(path.join(dir, 'k.asc'), armorKey(keyBytes));
  fs.writeFileSync(path.join(dir, 's.asc'), armorSig(sigBytes));
  fs.writeFileSync(path.join(dir, 'm'), manifest);
  return spawnSync('sqv', ['--keyring', path.join(dir, 'k.asc'), path.join(dir, 's.asc'), path.join(dir, 'm')]).status === 0;
}

function gpgAccepts(dir, keyBytes, sigBytes, manifest) {
  const home = fs.mkdtempSync('/tmp/bsg-kfz-');
  try {
    const env = { ...process.env, GNUPGHOME: home };
    fs.writeFileSync(path.join(dir, 'k.asc'), armorKey(keyBytes));
    fs.writeFileSync(path.join(dir, 's.asc'), armorSig(sigBytes));
    fs.writeFileSync(path.join(dir, 'm'), manifest);
    spawnSync('gpg', ['--batch', '--quiet', '--import', path.join(dir, 'k.asc')], { env });
    const r = spawnSync('gpg', ['--batch', '--status-fd', '1', '--verify', path.join(dir, 's.asc'), path.join(dir, 'm')], { env, encoding: 'utf8' });
    return /VALIDSIG/.test(r.stdout) && !/(REVKEYSIG|EXPKEYSIG|EXPSIG|KEYREVOKED|BADSIG|ERRSIG) /.test(r.stdout);
  } finally {
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home } });
    fs.rmSync(home, { recursive: true, force: true });
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(DIST, 'index.js'))) {
    console.error('dist/ is missing: run `npm run build` first');
    process.exit(2);
  }
  const lib = await import(pathToFileURL(path.join(DIST, 'index.js')).href);
  const { readKeyData } = await import(pathToFileURL(path.join(DIST, 'keys', 'keys.js')).href);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-keyfuzz-'));
  const stray = [];
  process.on('unhandledRejection', (e) => stray.push(`unhandled rejection: ${e?.stack ?? e}`));
  const s = await setup(dir);
  const tools = { sqv: has('sqv'), gpg: has('gpg') };
  const original = boxWith(s, s.key, s.sig, path.join(dir, 'original.box'));
  const started = Date.now();
  const summary = { seed: o.seed, cases: 0, accepted: 0, refused: {}, differentialChecks: 0, lossChecks: 0, failures: [], tools };
  const indices = o.only !== null ? [o.only] : Array.from({ length: o.cases }, (_, i) => i);
  const classify = (e) =>
    e instanceof lib.BoxsigError && lib.isRefusalCode(e.code)
      ? { outcome: 'refused', code: e.code }
      : { outcome: 'crash', code: e?.code ?? e?.name, message: String(e?.stack ?? e) };

  for (const index of indices) {
    const rng = caseRng(o.seed, index);
    const failures = [];
    const target = rng.chance(0.6) ? 'key' : 'sig';
    const keyPackets = splitPackets(s.key);
    const sigPackets = splitPackets(s.sig);
    const m = mutatePackets(target === 'key' ? keyPackets : sigPackets, s.pool, rng);
    const keyBytes = target === 'key' ? joinPackets(m.packets) : s.key;
    const sigBytes = target === 'sig' ? joinPackets(m.packets) : s.sig;
    const caseDir = path.join(dir, `case-${index}`);
    fs.mkdirSync(caseDir);
    const store = new lib.TrustStore(path.join(caseDir, 'home'));
    const box = boxWith(s, keyBytes, sigBytes, path.join(caseDir, 'case.box'));
    let result;
    try {
      await lib.verifyBox(box, { pins: [s.fpr], store, layers: [], cwd: caseDir, expect: { name: NAME } });
      result = { outcome: 'accepted' };
    } catch (e) {
      result = classify(e);
    }
    if (result.outcome === 'crash') failures.push(`verify crashed: ${result.code}: ${result.message.slice(0, 600)}`);
    if (result.outcome === 'accepted') {
      summary.accepted++;
      if (tools.sqv || tools.gpg) {
        summary.differentialChecks++;
        const ok = (tools.sqv && sqvAccepts(caseDir, keyBytes, sigBytes, s.manifest)) || (tools.gpg && gpgAccepts(caseDir, keyBytes, sigBytes, s.manifest));
        if (!ok)
          failures.push(
            `boxsig accepted a signature that ${[tools.sqv && 'sqv', tools.gpg && 'gpg'].filter(Boolean).join(' and ')} refuse${tools.sqv && tools.gpg ? '' : 's'}`,
          );
      }
    } else if (result.outcome === 'refused') summary.refused[result.code] = (summary.refused[result.code] ?? 0) + 1;

    // a revocation is never lost, whatever arrived before it
    if (target === 'key' && index % 4 === 0) {
      summary.lossChecks++;
      const home = new lib.TrustStore(path.join(caseDir, 'loss-home'));
      try {
        const junk = await readKeyData(keyBytes, 'mutated copy').catch(() => null);
        if (junk) await home.keyring.import(junk);
        await home.keyring.import(await readKeyData(s.revoked, 'revoked copy'));
        await lib.verifyBox(original, { pins: [s.fpr], store: home, layers: [], cwd: caseDir, expect: { name: NAME } });
        failures.push('the real revocation was lost after a mutated copy of the key was imported first');
      } catch (e) {
        const c = classify(e);
        if (c.outcome === 'crash') failures.push(`keyring import or verify crashed: ${c.code}: ${c.message.slice(0, 600)}`);
        else if (c.code !== 'KEY_REVOKED') failures.push(`after the revocation, the original box is refused as ${c.code}, not KEY_REVOKED`);
      }
    }
    if (stray.length) failures.push(...stray.splice(0));
    summary.cases++;
    if (failures.length) {
      summary.failures.push({ index, target, ops: m.ops, failures, reproduce: `node test/fuzz/keys.mjs --seed ${o.seed} --only ${index}`, box });
    } else fs.rmSync(caseDir, { recursive: true, force: true });
  }
  summary.seconds = Number(((Date.now() - started) / 1000).toFixed(1));
  if (o.json) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log(
      `${summary.cases} cases in ${summary.seconds} s: accepted ${summary.accepted}, refused ${JSON.stringify(summary.refused)}, ${summary.lossChecks} revocation-loss checks`,
    );
    for (const f of summary.failures)
      console.log(`FAIL case ${f.index} (${f.target}: ${f.ops.join(', ')}): ${f.failures.join('; ')}\n  reproduce: ${f.reproduce}`);
  }
  if (!summary.failures.length) fs.rmSync(dir, { recursive: true, force: true });
  process.exit(summary.failures.length ? 1 : 0);
}

main();
