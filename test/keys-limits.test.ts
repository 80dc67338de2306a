/**
 * Cheap checks before expensive ones for the keys in `.boxsig/keys/`
 * (issue 11 class 5): the algorithm, key size, counts of user IDs,
 * subkeys and signatures, and the relevance of a key to the signatures
 * present are checked on the packet list, before OpenPGP.js validates
 * anything and before a byte of disk image is read. Each limit is tested at
 * its bound and one past it. Times are measured and printed, never asserted.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, isolatedEnv } from './helpers.js';
import * as tar from './corpus/tar.mjs';
import { baseFiles, bodyEntries, prefixEntries } from './corpus/generate.mjs';
import { craftBox, craftManifest } from './keys-helpers.js';
import {
  FLAGS,
  armorKey,
  armorSig,
  certification,
  detached,
  ed25519Key,
  keyPacket,
  rsaKey,
  selfCert,
  subkeyBinding,
  subkeyPacket,
  uidPacket,
  type CraftKey,
} from './pgp-craft.js';

const LIMITS = { userIds: 32, subkeys: 16, signatures: 256 };

/** A key with `n` self-signed user IDs. */
function manyUids(k: CraftKey, n: number): Buffer {
  const parts = [keyPacket(k)];
  for (let i = 0; i < n; i++) {
    const uid = `User ${i} <u${i}@example.org>`;
    parts.push(uidPacket(uid), selfCert(k, uid));
  }
  return Buffer.concat(parts);
}

function setup(t: any) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir);
  const verify = (b: string, ...args: string[]) => {
    const start = process.hrtime.bigint();
    const r = boxsig(['verify', b, '--json', ...args], { env, cwd: dir });
    return { ...r, ms: Number((process.hrtime.bigint() - start) / 1_000_000n) };
  };
  return { dir, env, verify };
}

/** A box whose disk image does not match the manifest: a refusal about keys proves the keys were judged first. */
function boxWithTamperedDisk(
  file: string,
  manifest: Buffer,
  sigs: Array<{ fpr: string; armored: Buffer }>,
  keys: Array<{ fpr: string; armored: Buffer }>,
): string {
  const files = baseFiles().map((f) => (f.path === 'box-disk1.vmdk' ? { ...f, data: Buffer.alloc(f.data.length, 0x42) } : f));
  fs.writeFileSync(file, Buffer.concat([prefixEntries({ manifest, signatures: sigs, keys }), bodyEntries(files), tar.end()]));
  return file;
}

t.test('a weak key with ~1,500 self-signed user IDs is refused at once, before the disk image', async (t) => {
  const s = setup(t);
  const weak = rsaKey(1024);
  const manifest = craftManifest();
  const key = manyUids(weak, 1500);
  t.comment(`key file: ${armorKey(key).length} bytes`);
  const b = boxWithTamperedDisk(
    path.join(s.dir, 'one.box'),
    manifest,
    [{ fpr: weak.fpr, armored: Buffer.from(armorSig(detached(weak, manifest))) }],
    [{ fpr: weak.fpr, armored: Buffer.from(armorKey(key)) }],
  );
  const r = s.verify(b, '--pin', weak.fpr);
  t.equal(r.json?.code, 'MALFORMED', 'refused as MALFORMED');
  t.match(r.json?.message, /1500 user IDs, more than the limit of 32/, 'by the user ID count, before the disk image (which is tampered) is read');
  t.comment(`verify refused one such key in ${r.ms} ms`);
  // the same key within the count limit: refused for its algorithm
  const few = manyUids(weak, 3);
  const r2 = s.verify(
    craftBox(path.join(s.dir, 'few.box'), {
      manifest,
      signatures: [{ fpr: weak.fpr, packet: detached(weak, manifest) }],
      keys: [{ fpr: weak.fpr, packet: few }],
    }).file,
    '--pin',
    weak.fpr,
  );
  t.equal(r2.json?.code, 'MALFORMED');
  t.match(r2.json?.message, /weak 1024-bit RSA key/, 'a weak primary algorithm is refused by its size');
});

t.test('16 such key files cost no more than one', async (t) => {
  const s = setup(t);
  const manifest = craftManifest();
  const sigs = [];
  const keys = [];
  for (let i = 0; i < 16; i++) {
    const k = rsaKey(1024);
    sigs.push({ fpr: k.fpr, armored: Buffer.from(armorSig(detached(k, manifest))) });
    keys.push({ fpr: k.fpr, armored: Buffer.from(armorKey(manyUids(k, 1500))) });
  }
  const b = boxWithTamperedDisk(path.join(s.dir, 'sixteen.box'), manifest, sigs, keys);
  t.comment(`box: ${fs.statSync(b).size} bytes`);
  const r = s.verify(b, '--pin', sigs[0].fpr);
  t.equal(r.json?.code, 'MALFORMED', 'refused');
  t.match(r.json?.message, /user IDs, more than the limit/);
  t.comment(`verify refused 16 such keys in ${r.ms} ms`);
});

t.test('each limit at its bound and one past it', async (t) => {
  const s = setup(t);
  const manifest = craftManifest();
  const verifyKey = (k: CraftKey, key: Buffer) =>
    s.verify(
      craftBox(path.join(s.dir, `${k.fpr}.box`), { manifest, signatures: [{ fpr: k.fpr, packet: detached(k, manifest) }], keys: [{ fpr: k.fpr, packet: key }] })
        .file,
      '--pin',
      k.fpr,
    );

  const u1 = ed25519Key();
  t.equal(verifyKey(u1, manyUids(u1, LIMITS.userIds)).code, 0, `${LIMITS.userIds} user IDs are accepted`);
  const u2 = ed25519Key();
  t.match(verifyKey(u2, manyUids(u2, LIMITS.userIds + 1)).json?.message, /33 user IDs, more than the limit of 32/);

  const withSubkeys = (k: CraftKey, n: number) => {
    const parts = [manyUids(k, 1)];
    for (let i = 0; i < n; i++) {
      const sub = ed25519Key();
      parts.push(subkeyPacket(sub), subkeyBinding(k, sub, FLAGS.sign));
    }
    return Buffer.concat(parts);
  };
  const k1 = ed25519Key();
  t.equal(verifyKey(k1, withSubkeys(k1, LIMITS.subkeys)).code, 0, `${LIMITS.subkeys} subkeys are accepted`);
  const k2 = ed25519Key();
  t.match(verifyKey(k2, withSubkeys(k2, LIMITS.subkeys + 1)).json?.message, /17 subkeys, more than the limit of 16/);

  // third-party certifications count toward the signature limit (1 self-signature + N)
  const certified = (k: CraftKey, n: number) => {
    const uid = 'Popular <popular@example.org>';
    const parts = [keyPacket(k), uidPacket(uid), selfCert(k, uid)];
    const certifier = ed25519Key();
    for (let i = 0; i < n; i++) parts.push(certification(certifier, k, uid, { created: new Date(Date.now() - 1000 * (i + 100)) }));
    return Buffer.concat(parts);
  };
  const c1 = ed25519Key();
  t.equal(verifyKey(c1, certified(c1, LIMITS.signatures - 1)).code, 0, `${LIMITS.signatures} signatures are accepted`);
  const c2 = ed25519Key();
  const over = verifyKey(c2, certified(c2, LIMITS.signatures));
  t.match(over.json?.message, /257 signatures, more than the limit of 256/);
  t.match(over.json?.hint ?? over.stderr, /export-minimal/, 'the refusal says how to make the key smaller');

  const big = rsaKey(2048);
  t.equal(verifyKey(big, manyUids(big, 1)).code, 0, 'RSA 2048 is accepted');
});

t.test('a key file must belong to a signature of the box, and a signature to its key', async (t) => {
  const s = setup(t);
  const manifest = craftManifest();
  const a = ed25519Key();
  const stray = ed25519Key();
  const b = craftBox(path.join(s.dir, 'stray.box'), {
    manifest,
    signatures: [{ fpr: a.fpr, packet: detached(a, manifest) }],
    keys: [
      { fpr: a.fpr, packet: manyUids(a, 1) },
      { fpr: stray.fpr, packet: manyUids(stray, 1) },
    ],
  });
  const r = s.verify(b.file, '--pin', a.fpr);
  t.equal(r.json?.code, 'MALFORMED', 'a key no signature is filed under');
  t.match(r.json?.message, new RegExp(`${stray.fpr}.asc: no signature in the box is filed under this key`));
  const other = ed25519Key();
  const misfiled = craftBox(path.join(s.dir, 'misfiled.box'), {
    manifest,
    signatures: [{ fpr: a.fpr, packet: detached(other, manifest) }],
    keys: [{ fpr: a.fpr, packet: manyUids(a, 1) }],
  });
  const r2 = s.verify(misfiled.file, '--pin', a.fpr);
  t.equal(r2.json?.code, 'BAD_SIGNATURE', 'a signature filed under a key that did not make it');
  t.match(r2.json?.message, /not part of key/);
});
