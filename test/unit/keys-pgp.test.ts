/**
 * The OpenPGP.js adapter (src/keys/pgp.ts) against the behaviours boxsig
 * relies on. When OpenPGP.js is upgraded, this file says what changed:
 * the cryptographic checks, key validity at a date, the designated-revoker
 * flag it would otherwise refuse, how it reads packets boxsig already
 * filtered, key generation and locking, and certification with a
 * certify-only key.
 */
import t from 'tap';
import * as pgp from '../../src/keys/pgp.js';
import { readPackets, parseKeyPacket, SIGTYPE } from '../../src/keys/packets.js';
import {
  FLAGS,
  certification,
  detached,
  directSig,
  ed25519Key,
  keyPacket,
  keyRevocation,
  publicKey,
  rsaKey,
  selfCert,
  sigPacket,
  sp,
  subkeyBinding,
  subkeyPacket,
  uidPacket,
} from '../pgp-craft.js';

const HOUR = 3_600_000;
const body = (packet: Buffer) => readPackets(packet)[0].body;

t.test('verifiesCryptographically: the cryptography only, whatever the dates and the stated issuer', async (t) => {
  const k = ed25519Key();
  const other = ed25519Key();
  const data = Buffer.from('manifest');
  const rows: Array<[string, Buffer, Uint8Array, number, pgp.VerifyTarget, boolean]> = [
    ['a good document signature', detached(k, data), k.body, SIGTYPE.binary, { data }, true],
    ['other data', detached(k, data), k.body, SIGTYPE.binary, { data: Buffer.from('x') }, false],
    ['another key', detached(k, data), other.body, SIGTYPE.binary, { data }, false],
    ['the wrong type expected', detached(k, data), k.body, SIGTYPE.text, { data }, false],
    ['dated in the future (not judged here)', detached(k, data, { created: new Date(Date.now() + HOUR) }), k.body, SIGTYPE.binary, { data }, true],
    [
      'expired (not judged here)',
      detached(k, data, { created: new Date(Date.now() - HOUR), hashed: [sp.sigExpires(1)] }),
      k.body,
      SIGTYPE.binary,
      { data },
      true,
    ],
    ['unknown critical subpacket (not judged here)', detached(k, data, { hashed: [sp.raw(39, Buffer.alloc(2))] }), k.body, SIGTYPE.binary, { data }, true],
    ['no issuer stated', detached(k, data, { bare: true, hashed: [sp.created(new Date())], unhashed: [] }), k.body, SIGTYPE.binary, { data }, true],
    ['a false issuer stated', detached(k, data, { unhashed: [sp.issuer(other)] }), k.body, SIGTYPE.binary, { data }, true],
    ['a key revocation', keyRevocation(k, k, 2), k.body, SIGTYPE.keyRevocation, { key: k.body }, true],
    ['a key revocation of another key', keyRevocation(k, k, 2), k.body, SIGTYPE.keyRevocation, { key: other.body }, false],
    ['a designated revocation', keyRevocation(other, k, 2), other.body, SIGTYPE.keyRevocation, { key: k.body }, true],
    ['a certification', certification(other, k, 'u'), other.body, SIGTYPE.certGeneric, { key: k.body, userId: Buffer.from('u') }, true],
    ['a certification of another user ID', certification(other, k, 'u'), other.body, SIGTYPE.certGeneric, { key: k.body, userId: Buffer.from('v') }, false],
    ['a self-signature naming a designated revoker', directSig(k, [sp.revocationKey(other)]), k.body, SIGTYPE.direct, { key: k.body }, true],
    ['garbage', sigPacket(Buffer.from([4, 0, 22, 8, 0, 0, 0, 0, 0, 0])), k.body, SIGTYPE.binary, { data }, false],
  ];
  for (const [name, packet, issuer, type, target, want] of rows) t.equal(await pgp.verifiesCryptographically(body(packet), issuer, type, target), want, name);
  const rsa = rsaKey(2048);
  t.equal(await pgp.verifiesCryptographically(body(detached(rsa, data)), rsa.body, SIGTYPE.binary, { data }), true, 'RSA');
});

t.test('keyFromPackets and the validity of a key at a date', async (t) => {
  const created = new Date(Date.now() - 10 * HOUR);
  const k = ed25519Key(created);
  const officer = ed25519Key(created);
  const uid = 'V <v@example.org>';
  const open = (b: Buffer) => pgp.keyFromPackets(b);
  const plain = await open(publicKey(k, uid));
  t.same(await pgp.signingKeyValidAt(plain, k.fpr.slice(-16), new Date()), { ok: true }, 'a plain key signs now');
  const before = await pgp.signingKeyValidAt(plain, k.fpr.slice(-16), new Date(created.getTime() - HOUR));
  t.equal(before.ok, false, 'not before it was made');

  const expiring = await open(
    Buffer.concat([keyPacket(k), uidPacket(uid), selfCert(k, uid, { hashed: [sp.keyFlags(FLAGS.certify | FLAGS.sign), sp.keyExpires(3600)] })]),
  );
  const exp = await pgp.signingKeyValidAt(expiring, k.fpr.slice(-16), new Date());
  t.match(exp, { ok: false, expired: true }, 'an expired key is classified as expired');
  t.same(await pgp.signingKeyValidAt(expiring, k.fpr.slice(-16), new Date(created.getTime() + 60_000)), { ok: true }, 'valid while it was valid');
  t.equal(pgp.lastSelfSignatureBefore(expiring, new Date())?.getTime(), Math.floor(created.getTime() / 1000) * 1000, 'the last self-signature time');

  const noSign = await open(Buffer.concat([keyPacket(k), uidPacket(uid), selfCert(k, uid, { hashed: [sp.keyFlags(FLAGS.certify)] })]));
  t.match(await pgp.signingKeyValidAt(noSign, k.fpr.slice(-16), new Date()), { ok: false, expired: false }, 'a certify-only key cannot sign');

  const naming = await open(Buffer.concat([keyPacket(k), directSig(k, [sp.revocationKey(officer)]), uidPacket(uid), selfCert(k, uid)]));
  t.same(
    await pgp.signingKeyValidAt(naming, k.fpr.slice(-16), new Date()),
    { ok: true },
    'a key naming a designated revoker is valid (OpenPGP.js would refuse it)',
  );

  const sub = ed25519Key(created);
  const withSub = await open(Buffer.concat([publicKey(k, uid), subkeyPacket(sub), subkeyBinding(k, sub, FLAGS.sign)]));
  t.same(await pgp.signingKeyValidAt(withSub, sub.fpr.slice(-16), new Date()), { ok: true }, 'a signing subkey');
  t.match(await pgp.signingKeyValidAt(withSub, 'DEADBEEFDEADBEEF', new Date()), { ok: false }, 'an unknown key ID');

  const junk = sigPacket(Buffer.from([4, 0x13, 22, 8, 0, 0, 0, 0, 0, 0]));
  const tolerant = await open(Buffer.concat([publicKey(k, uid), junk]));
  t.same(await pgp.signingKeyValidAt(tolerant, k.fpr.slice(-16), new Date()), { ok: true }, 'a malformed extra signature is left out of the view');
  t.same(await pgp.userIdValidAt(plain, Buffer.from(uid), new Date()), { ok: true });
  t.match(await pgp.userIdValidAt(plain, Buffer.from('nobody'), new Date()), { ok: false });
  t.match(await pgp.primaryValidAt(expiring, new Date()), { ok: false, expired: true });
  t.equal(pgp.fingerprintOf(plain), k.fpr);
  t.equal(pgp.describeAlgorithm(plain), 'ed25519');
  t.equal(pgp.describeAlgorithm(await open(publicKey(rsaKey(2048), uid))), 'rsa2048');
});

t.test('making keys, signatures, certifications and revocations', async (t) => {
  const made = await pgp.newKey({ userIds: ['Made <m@example.org>'], type: 'ed25519', expiresIn: 0 });
  const secret = await pgp.readArmoredSecretKey(made.privateKey);
  t.equal(pgp.fingerprintOf(secret), made.fingerprint);
  const locked = await pgp.lock(secret, 'pw');
  t.notOk(locked.isDecrypted());
  await t.rejects(pgp.unlock(locked, 'wrong'), /./, 'a wrong passphrase is an error');
  const unlocked = await pgp.unlock(locked, 'pw');
  t.ok(unlocked.isDecrypted());
  const data = Buffer.from('doc');
  const armored = await pgp.signDocument(data, unlocked, new Date());
  t.match(armored, /=[A-Za-z0-9+/]{4}\n-----END PGP SIGNATURE-----/, 'armor carries its CRC (GnuPG 2.2 needs it)');
  const { data: sigBin } = await pgp.dearmor(armored);
  const primaryBody = readPackets(pgp.publicBytes(secret))[0].body;
  t.equal(await pgp.verifiesCryptographically(readPackets(sigBin)[0].body, primaryBody, SIGTYPE.binary, { data }), true, 'its signature verifies');

  // certifications and revocations are made with the primary key itself (no signing subkey needed)
  const target = ed25519Key();
  const certOnly = await pgp.readArmoredSecretKey((await pgp.newKey({ userIds: ['C'], type: 'ed25519', expiresIn: 0 })).privateKey);
  const certBody = await pgp.makeCertification(certOnly, target.body, Buffer.from('boxsig:a/*'), new Date());
  t.equal(
    await pgp.verifiesCryptographically(certBody, readPackets(pgp.publicBytes(certOnly))[0].body, SIGTYPE.certGeneric, {
      key: target.body,
      userId: Buffer.from('boxsig:a/*'),
    }),
    true,
  );
  const revBody = await pgp.makeKeyRevocation(certOnly, target.body, pgp.REASON.compromised, 'x', new Date());
  t.equal(await pgp.verifiesCryptographically(revBody, readPackets(pgp.publicBytes(certOnly))[0].body, SIGTYPE.keyRevocation, { key: target.body }), true);
  const officer = parseKeyPacket(ed25519Key().body);
  const desig = await pgp.makeRevokerDesignation(secret, officer.algorithm, officer.fingerprint, new Date());
  const withDesig = await pgp.withDirectSignature(secret, desig);
  t.equal((withDesig as unknown as { directSignatures: unknown[] }).directSignatures.length, 1, 'the designation sits with the primary key');
  t.match(pgp.armorPublicKey(Buffer.from([0xc6, 0])), /-----BEGIN PGP PUBLIC KEY BLOCK-----/);
});
