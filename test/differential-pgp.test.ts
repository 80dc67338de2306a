/**
 * Differential test of OpenPGP semantics (issue 17): hand-crafted keys and
 * signatures, each judged by `boxsig verify`, `gpg --verify` and `sqv` on the
 * same bytes. docs/FORMAT.md promises that a box can be checked by hand with
 * either tool, so boxsig must never accept what both of them refuse; where
 * boxsig is stricter than both, the table says so. Every verdict is printed.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boxsig, isolatedEnv, requireTool } from './helpers.js';
import { craftBox, craftManifest, gpgVerdict, sqvVerdict, type Verdict } from './keys-helpers.js';
import {
  FLAGS,
  armorKey,
  armorSig,
  detached,
  directSig,
  ed25519Key,
  keyPacket,
  keyRevocation,
  publicKey,
  rsaKey,
  selfCert,
  sigPacket,
  signatureBody,
  sp,
  subkeyBinding,
  subkeyPacket,
  subkeyRevocation,
  uidPacket,
  withVersion,
  SIG,
  keyHashInput,
  type CraftKey,
} from './pgp-craft.js';

const HOUR = 3_600_000;
const UID = 'Differential <diff@example.org>';

interface Case {
  name: string;
  /** the key file the box carries (and gpg/sqv get) */
  key: Buffer;
  /** the detached signature over the manifest */
  sig: Buffer;
  /** the primary key the signature is filed under */
  signer: CraftKey;
  /** other public keys known to every verifier (a designated revoker) */
  extra?: Buffer[];
  /** boxsig refuses although a tool accepts: why that is deliberate */
  stricter?: string;
  /** expected boxsig verdict, when it is part of the contract */
  expect?: 'accept' | 'refuse';
}

function cases(manifest: Buffer): Case[] {
  const old = new Date(Date.now() - 5 * HOUR);
  const k = ed25519Key(old);
  const base = publicKey(k, UID);
  const sign = (o: Parameters<typeof detached>[2] = {}) => detached(k, manifest, o);
  const withSub = (flags: number, bindOpts: Parameters<typeof subkeyBinding>[3] = {}, backsig = true) => {
    const sub = ed25519Key(old);
    const binding = backsig
      ? subkeyBinding(k, sub, flags, bindOpts)
      : sigPacket(
          signatureBody(k, Buffer.concat([keyHashInput(k), keyHashInput(sub)]), { type: SIG.subkeyBinding, hashed: [sp.keyFlags(flags)], created: old }),
        );
    return { sub, key: Buffer.concat([base, subkeyPacket(sub), binding]) };
  };
  const out: Case[] = [];
  out.push({ name: 'control: a good Ed25519 signature', key: base, sig: sign(), signer: k, expect: 'accept' });
  const rsa = rsaKey(2048, old);
  out.push({ name: 'control: RSA 2048', key: publicKey(rsa, UID), sig: detached(rsa, manifest), signer: rsa, expect: 'accept' });
  const s1 = withSub(FLAGS.sign);
  out.push({ name: 'control: a signing subkey with a back-signature', key: s1.key, sig: detached(s1.sub, manifest), signer: k, expect: 'accept' });
  out.push({ name: 'another document', key: base, sig: detached(k, Buffer.from('other bytes')), signer: k, expect: 'refuse' });
  for (const [type, len] of [
    [31, 4],
    [39, 2],
    [100, 4],
  ] as const) {
    out.push({
      name: `critical subpacket ${type}, hashed`,
      key: base,
      sig: sign({ hashed: [sp.raw(type, Buffer.alloc(len, 1))] }),
      signer: k,
      expect: 'refuse',
    });
  }
  out.push({
    name: 'critical subpacket 100, unhashed',
    key: base,
    sig: sign({ unhashed: [sp.issuer(k), sp.raw(100, Buffer.alloc(4, 1))] }),
    signer: k,
    expect: 'refuse',
    stricter: 'RFC 4880: an unknown critical subpacket invalidates the signature, wherever it is (GnuPG agrees)',
  });
  out.push({
    name: 'critical notation',
    key: base,
    sig: sign({ hashed: [sp.raw(20, Buffer.concat([Buffer.from([0x80, 0, 0, 0, 0, 4, 0, 2]), Buffer.from('x@yzab')]))] }),
    signer: k,
    expect: 'refuse',
  });
  out.push({
    name: 'signature dated in the future',
    key: base,
    sig: sign({ created: new Date(Date.now() + HOUR) }),
    signer: k,
    expect: 'refuse',
    stricter: 'a signature from the future is refused (Sequoia agrees; GnuPG only warns)',
  });
  out.push({
    name: 'signature expired',
    key: base,
    sig: sign({ created: new Date(Date.now() - HOUR), hashed: [sp.sigExpires(60)] }),
    signer: k,
    expect: 'refuse',
  });
  out.push({ name: 'signature older than the key', key: base, sig: sign({ created: new Date(old.getTime() - HOUR) }), signer: k, expect: 'refuse' });
  const expiring = Buffer.concat([keyPacket(k), uidPacket(UID), selfCert(k, UID, { hashed: [sp.keyFlags(FLAGS.certify | FLAGS.sign), sp.keyExpires(3600)] })]);
  out.push({ name: 'key expired before it signed', key: expiring, sig: sign(), signer: k, expect: 'refuse' });
  const revoked = (r: Buffer) => Buffer.concat([keyPacket(k), r, uidPacket(UID), selfCert(k, UID)]);
  out.push({
    name: 'key revoked (compromised)',
    key: revoked(keyRevocation(k, k, 2, { created: new Date(Date.now() - HOUR) })),
    sig: sign(),
    signer: k,
    expect: 'refuse',
  });
  out.push({
    name: 'key revoked (compromised), revocation dated in the future',
    key: revoked(keyRevocation(k, k, 2, { created: new Date(Date.now() + HOUR) })),
    sig: sign(),
    signer: k,
    expect: 'refuse',
  });
  out.push({
    name: 'key revoked (compromised), the revocation itself expired',
    key: revoked(keyRevocation(k, k, 2, { created: new Date(Date.now() - 2 * HOUR), hashed: [sp.sigExpires(60)] })),
    sig: sign(),
    signer: k,
    expect: 'refuse',
  });
  out.push({
    name: 'key superseded after the signature',
    key: revoked(keyRevocation(k, k, 1, { created: new Date(Date.now() + HOUR) })),
    sig: sign(),
    signer: k,
    stricter: 'none expected: a soft revocation dated after the signature keeps it valid',
  });
  const enc = withSub(FLAGS.encrypt);
  out.push({ name: 'an encryption-only subkey signs', key: enc.key, sig: detached(enc.sub, manifest), signer: k, expect: 'refuse' });
  const noBack = withSub(FLAGS.sign, {}, false);
  out.push({ name: 'a signing subkey without back-signature', key: noBack.key, sig: detached(noBack.sub, manifest), signer: k, expect: 'refuse' });
  const rs = withSub(FLAGS.sign);
  out.push({
    name: 'a revoked signing subkey',
    key: Buffer.concat([rs.key, subkeyRevocation(k, rs.sub, 2, { created: new Date(Date.now() - HOUR) })]),
    sig: detached(rs.sub, manifest),
    signer: k,
    expect: 'refuse',
  });
  const e27 = ed25519Key(old, 27);
  out.push({
    name: 'a v4 key of algorithm 27 (RFC 9580 Ed25519)',
    key: publicKey(e27, UID),
    sig: detached(e27, manifest),
    signer: e27,
    expect: 'refuse',
    stricter: 'docs/FORMAT.md: GnuPG 2.2 cannot verify algorithm 27',
  });
  out.push({ name: 'a v5 key packet', key: publicKey(withVersion(k, 5), UID), sig: sign(), signer: k, expect: 'refuse' });
  out.push({
    name: 'a self-signature with a critical subpacket 39',
    key: Buffer.concat([keyPacket(k), uidPacket(UID), selfCert(k, UID, { hashed: [sp.keyFlags(FLAGS.certify | FLAGS.sign), sp.raw(39, Buffer.alloc(2, 1))] })]),
    sig: sign(),
    signer: k,
    expect: 'refuse',
  });
  const weak = rsaKey(1024, old);
  out.push({
    name: 'RSA 1024',
    key: publicKey(weak, UID),
    sig: detached(weak, manifest),
    signer: weak,
    expect: 'refuse',
    stricter: 'keys under 2048 bits are refused',
  });
  const officer = ed25519Key(old);
  const naming = Buffer.concat([keyPacket(k), directSig(k, [sp.revocationKey(officer)]), uidPacket(UID), selfCert(k, UID)]);
  out.push({
    name: 'a key naming a designated revoker',
    key: naming,
    sig: sign(),
    signer: k,
    extra: [publicKey(officer, 'Officer <o@example.org>')],
    expect: 'accept',
  });
  out.push({
    name: 'a key revoked by its designated revoker',
    key: Buffer.concat([naming, keyRevocation(officer, k, 2, { created: new Date(Date.now() - HOUR) })]),
    sig: sign(),
    signer: k,
    extra: [publicKey(officer, 'Officer <o@example.org>')],
    expect: 'refuse',
    stricter: 'a revocation by a designated revoker applies (sqv does not implement designated revokers)',
  });
  const stranger = ed25519Key(old);
  out.push({
    name: 'a key "revoked" by a key it does not name',
    key: Buffer.concat([base, keyRevocation(stranger, k, 2, { created: new Date(Date.now() - HOUR) })]),
    sig: sign(),
    signer: k,
    extra: [publicKey(stranger, 'Stranger <s@example.org>')],
    expect: 'accept',
  });
  const other = ed25519Key(old);
  out.push({ name: 'a signature by another key, filed under this one', key: base, sig: detached(other, manifest), signer: k, expect: 'refuse' });
  return out;
}

t.test('boxsig never accepts what both gpg and sqv refuse', async (t) => {
  const haveGpg = requireTool(t, 'gpg', 'gnupg');
  const haveSqv = requireTool(t, 'sqv', 'sqv');
  const dir = t.testdir({});
  const manifest = craftManifest();
  const rows: string[] = [];
  for (const [i, c] of cases(manifest).entries()) {
    const home = path.join(dir, `case-${i}`);
    fs.mkdirSync(home);
    const env = isolatedEnv(home);
    for (const [j, e] of (c.extra ?? []).entries()) {
      const f = path.join(home, `extra-${j}.asc`);
      fs.writeFileSync(f, armorKey(e));
      t.equal(boxsig(['key', 'import', f], { env }).code, 0, `${c.name}: extra key imported`);
    }
    const b = craftBox(path.join(home, 'case.box'), {
      manifest,
      signatures: [{ fpr: c.signer.fpr, packet: c.sig }],
      keys: [{ fpr: c.signer.fpr, packet: c.key }],
    });
    const r = boxsig(['verify', b.file, '--pin', c.signer.fpr, '--json'], { env });
    t.ok([0, 1].includes(r.code), `${c.name}: boxsig exits 0 or 1 (got ${r.code}${r.code > 1 ? `: ${r.stderr.slice(0, 200)}` : ''})`);
    const mine: Verdict = r.code === 0 ? 'accept' : 'refuse';
    const extras = (c.extra ?? []).map(armorKey);
    const g: Verdict = haveGpg ? gpgVerdict(home, armorKey(c.key), armorSig(c.sig), manifest, extras) : 'unavailable';
    const q: Verdict = haveSqv ? sqvVerdict(home, armorKey(c.key), armorSig(c.sig), manifest, extras) : 'unavailable';
    rows.push(`${c.name.padEnd(62)} boxsig ${mine.padEnd(7)} gpg ${g.padEnd(11)} sqv ${q.padEnd(11)} ${mine === 'refuse' ? (r.json?.code ?? '') : ''}`);
    if (g === 'refuse' && q === 'refuse') t.equal(mine, 'refuse', `${c.name}: gpg and sqv both refuse, so boxsig refuses`);
    if (c.expect) t.equal(mine, c.expect, `${c.name}: boxsig ${c.expect}s (${r.json?.code ?? 'ok'}: ${r.json?.message ?? ''})`);
    if (mine === 'refuse' && (g === 'accept' || q === 'accept') && !c.stricter && c.expect !== 'refuse') {
      t.fail(`${c.name}: boxsig refuses what ${g === 'accept' ? 'gpg' : 'sqv'} accepts without a documented reason`);
    }
  }
  t.comment(`verdicts on the same bytes:\n${rows.join('\n')}`);
});
