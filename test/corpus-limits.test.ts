/**
 * The resource limits of src/shared/limits.ts (docs/SECURITY.md), each at
 * its bound and one past it, through the library. (The hostile-box corpus is
 * in test/corpus*.test.ts.)
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { baseFiles, bodyEntries, prefixEntries, manifestFor, newKey, fpr, signDetached, armoredPublic, sha256 } from './corpus/generate.mjs';
import * as tar from './corpus/tar.mjs';
import { verifyBox, LIMITS, TrustStore, BoxsigError } from '../src/index.js';
import { TarParser } from '../src/archive/tar.js';

// ------------------------------------------------------------------ limits

interface Signed {
  key: any;
  files: Array<{ path: string; data: Buffer }>;
}

t.test('resource limits (docs/SECURITY.md)', async (t) => {
  const dir = t.testdir({});
  const store = new TrustStore(path.join(dir, 'home'));
  const key = await newKey();
  const FPR = fpr(key);
  let n = 0;

  /** Write a box from tar parts (plain) and verify it in-process; returns the code or 'ACCEPT'. */
  const verifyParts = async (parts: Buffer[], opts: { optional?: boolean } = {}): Promise<{ code: string; message: string }> => {
    const file = path.join(dir, `limit-${n++}.box`);
    fs.writeFileSync(file, Buffer.concat(parts));
    try {
      await verifyBox(file, {
        pins: opts.optional ? undefined : [FPR],
        expect: { name: 'corpus/box' },
        store,
        layers: opts.optional ? [{ source: 'test', doc: { boxes: { 'corpus/*': { signatures: 'optional' } } } }] : [],
        cwd: dir,
      } as any);
      return { code: 'ACCEPT', message: '' };
    } catch (e) {
      if (!(e instanceof BoxsigError)) throw e;
      return { code: e.code, message: e.message };
    } finally {
      fs.rmSync(file, { force: true });
    }
  };
  const prefixFor = async (s: Signed, extra: Buffer[] = []) => {
    const manifest = manifestFor(s.files);
    return prefixEntries({
      manifest,
      signatures: [{ fpr: FPR, armored: await signDetached(manifest, s.key) }],
      keys: [{ fpr: FPR, armored: armoredPublic(s.key) }],
      extra,
    });
  };
  /** A signed box holding the base files plus `extra` files, each written with a pax path. */
  const withFiles = async (extra: Array<{ path: string; data: Buffer }>) => {
    const files = [...baseFiles(), ...extra];
    const parts = [await prefixFor({ key, files }), bodyEntries(baseFiles())];
    for (const f of extra) parts.push(tar.pax([['path', f.path]]), tar.file('long-name', f.data));
    parts.push(tar.end());
    return parts;
  };
  const base = async () => [await prefixFor({ key, files: baseFiles() }), bodyEntries(baseFiles())];
  const expectCode = (t: any, r: { code: string; message: string }, code: string, re: RegExp, what: string) => {
    t.equal(r.code, code, `${what}: ${code}`);
    t.match(r.message, re, `${what}: the message says which limit (${r.message})`);
  };

  t.test('path length', async (t) => {
    const at = Array.from({ length: 5 }, (_, i) => String(i).repeat(i < 4 ? 200 : LIMITS.maxPathBytes - 4 * 201)).join('/');
    t.equal(Buffer.byteLength(at), LIMITS.maxPathBytes);
    t.equal((await verifyParts(await withFiles([{ path: at, data: Buffer.from('x') }]))).code, 'ACCEPT', `a path of ${LIMITS.maxPathBytes} bytes is accepted`);
    const over = at.slice(0, -1) + 'xx';
    expectCode(
      t,
      await verifyParts([...(await base()), tar.pax([['path', over]]), tar.file('x', 'x'), tar.end()]),
      'UNSAFE_ENTRY',
      /longer than 1024 bytes/,
      `a path of ${LIMITS.maxPathBytes + 1} bytes`,
    );
  });

  t.test('path component length', async (t) => {
    const at = 'c'.repeat(LIMITS.maxComponentBytes);
    t.equal(
      (await verifyParts(await withFiles([{ path: `d/${at}`, data: Buffer.from('x') }]))).code,
      'ACCEPT',
      `a component of ${LIMITS.maxComponentBytes} bytes is accepted`,
    );
    expectCode(
      t,
      await verifyParts([...(await base()), tar.pax([['path', `d/${at}c`]]), tar.file('x', 'x'), tar.end()]),
      'UNSAFE_ENTRY',
      /component longer than 255 bytes/,
      'one byte more',
    );
  });

  t.test('path depth', async (t) => {
    const at = `${'d/'.repeat(LIMITS.maxPathDepth - 1)}f`;
    t.equal((await verifyParts(await withFiles([{ path: at, data: Buffer.from('x') }]))).code, 'ACCEPT', `${LIMITS.maxPathDepth} levels are accepted`);
    expectCode(
      t,
      await verifyParts([...(await base()), tar.pax([['path', `d/${at}`]]), tar.file('x', 'x'), tar.end()]),
      'UNSAFE_ENTRY',
      /nested deeper than 32/,
      'one level more',
    );
  });

  t.test('entry count', async (t) => {
    // directories are not listed in the manifest, so only the entry limit can refuse them
    const prefix = await prefixFor({ key, files: baseFiles() });
    const prefixEntriesCount = 6; // .boxsig/, manifest, signatures/, sig, keys/, key
    const dirs = (k: number) => Buffer.concat(Array.from({ length: k }, (_, i) => tar.dir(`d${i}/`)));
    const room = LIMITS.maxEntries - prefixEntriesCount - baseFiles().length;
    t.equal((await verifyParts([prefix, bodyEntries(baseFiles()), dirs(room), tar.end()])).code, 'ACCEPT', `${LIMITS.maxEntries} entries are accepted`);
    expectCode(t, await verifyParts([prefix, bodyEntries(baseFiles()), dirs(room + 1), tar.end()]), 'MALFORMED', /more than 10000 entries/, 'one entry more');
  });

  t.test('manifest size', async (t) => {
    const big = Buffer.alloc(LIMITS.maxManifestBytes + 1, 0x20);
    expectCode(
      t,
      await verifyParts([tar.dir('.boxsig/'), tar.file('.boxsig/manifest.json', big), tar.end()]),
      'MALFORMED',
      /manifest\.json is 4194305 bytes, more than the 4194304-byte limit/,
      'a manifest one byte over',
    );
    const at = Buffer.alloc(LIMITS.maxManifestBytes, 0x20);
    const r = await verifyParts([tar.dir('.boxsig/'), tar.file('.boxsig/manifest.json', at), bodyEntries(baseFiles()), tar.end()]);
    t.equal(r.code, 'MALFORMED', 'a manifest at the limit is read (and refused for what it says)');
    t.notMatch(r.message, /limit/, `not for its size (${r.message})`);
  });

  t.test('extended header size', async (t) => {
    const paxOf = (len: number) => {
      const head = `${len} comment=`;
      return Buffer.from(`${head}${'p'.repeat(len - head.length - 1)}\n`);
    };
    t.equal(paxOf(LIMITS.maxMetaHeaderBytes).length, LIMITS.maxMetaHeaderBytes);
    const vf = baseFiles().find((f: any) => f.path === 'Vagrantfile')!;
    const rest = baseFiles().filter((f: any) => f.path !== 'Vagrantfile');
    const box = async (pax: Buffer) => [
      await prefixFor({ key, files: baseFiles() }),
      bodyEntries(rest),
      tar.pax(pax),
      tar.file('Vagrantfile', vf.data),
      tar.end(),
    ];
    t.equal((await verifyParts(await box(paxOf(LIMITS.maxMetaHeaderBytes)))).code, 'ACCEPT', `a pax header of ${LIMITS.maxMetaHeaderBytes} bytes is accepted`);
    expectCode(
      t,
      await verifyParts(await box(paxOf(LIMITS.maxMetaHeaderBytes + 1))),
      'MALFORMED',
      /extended header of 65537 bytes exceeds the 65536-byte limit/,
      'one byte more',
    );
    const longName = Buffer.alloc(LIMITS.maxMetaHeaderBytes + 1, 0x61);
    expectCode(
      t,
      await verifyParts([
        ...(await base()),
        tar.header({ name: '././@LongLink', type: 'L', size: longName.length, format: 'gnu' }),
        tar.pad(longName),
        tar.file('x', 'x', { format: 'gnu' }),
        tar.end(),
      ]),
      'MALFORMED',
      /extended header of 65537 bytes/,
      'a GNU long name one byte over',
    );
  });

  t.test('extended headers in a row', async (t) => {
    const g = tar.pax([['comment', 'git archive writes one of these']], { global: true });
    const vf = baseFiles().find((f: any) => f.path === 'Vagrantfile')!;
    const rest = baseFiles().filter((f: any) => f.path !== 'Vagrantfile');
    const box = async (k: number) => [
      await prefixFor({ key, files: baseFiles() }),
      bodyEntries(rest),
      ...Array(k).fill(g),
      tar.file('Vagrantfile', vf.data),
      tar.end(),
    ];
    t.equal(
      (await verifyParts(await box(LIMITS.maxExtendedHeadersPerEntry))).code,
      'ACCEPT',
      `${LIMITS.maxExtendedHeadersPerEntry} global headers before an entry are accepted`,
    );
    expectCode(t, await verifyParts(await box(LIMITS.maxExtendedHeadersPerEntry + 1)), 'MALFORMED', /more than 16 extended headers in a row/, 'one more');
    // an endless stream of them is refused after a few blocks, not after inflating it all
    const parser = new TarParser();
    const big = tar.pax([['comment', 'g'.repeat(60 * 1024)]], { global: true });
    let refused: unknown = null;
    try {
      for (let i = 0; i < 1000; i++) parser.push(big);
    } catch (e) {
      refused = e;
    }
    t.equal((refused as BoxsigError)?.code, 'MALFORMED', 'a stream of global headers is refused');
    t.ok(parser.position <= (LIMITS.maxExtendedHeadersPerEntry + 1) * big.length, `after ${parser.position} bytes`);
  });

  t.test('padding after the end-of-archive marker', async (t) => {
    // the parser counts the zero bytes after the first block of the marker
    const padded = (n: number) => verifyParts([...base0, tar.end(), Buffer.alloc(n - 512)]);
    const base0 = await base();
    t.equal(
      (await padded(LIMITS.maxTrailingZeroBytes)).code,
      'ACCEPT',
      `${LIMITS.maxTrailingZeroBytes} zero bytes after the marker's first block are accepted`,
    );
    expectCode(t, await padded(LIMITS.maxTrailingZeroBytes + 1), 'MALFORMED', /bytes of padding after the end of the archive/, 'one byte more');
  });

  t.test('signature and key files', async (t) => {
    const manifest = manifestFor(baseFiles());
    const sig = await signDetached(manifest, key);
    const big = Buffer.concat([Buffer.from(sig), Buffer.alloc(LIMITS.maxBoxsigFileBytes + 1 - sig.length, 0x0a)]);
    expectCode(
      t,
      await verifyParts([prefixEntries({ manifest, signatures: [{ fpr: FPR, armored: big }], keys: [] }), bodyEntries(baseFiles()), tar.end()]),
      'MALFORMED',
      /larger than 1048576 bytes/,
      'a signature file one byte over',
    );
    const sigs = Array.from({ length: LIMITS.maxSigners + 1 }, (_, i) => ({ fpr: sha256(`sig ${i}`).slice(0, 40).toUpperCase(), armored: sig }));
    expectCode(
      t,
      await verifyParts([prefixEntries({ manifest, signatures: sigs, keys: [] }), bodyEntries(baseFiles()), tar.end()]),
      'MALFORMED',
      /more than 32 signatures/,
      `${LIMITS.maxSigners + 1} signatures`,
    );
  });

  t.test('.boxsig/ prefix size', async (t) => {
    const manifest = manifestFor(baseFiles());
    const junk = Buffer.alloc(LIMITS.maxBoxsigFileBytes - 1024, 0x41);
    const keys = Array.from({ length: Math.ceil(LIMITS.maxPrefixBytes / junk.length) + 1 }, (_, i) => ({
      fpr: sha256(String(i)).slice(0, 40).toUpperCase(),
      armored: junk,
    }));
    expectCode(
      t,
      await verifyParts([prefixEntries({ manifest, signatures: [], keys }), tar.end()]),
      'MALFORMED',
      /\.boxsig\/ entries exceed 16777216 bytes/,
      `${keys.length} key files of 1 MiB`,
    );
  });

  t.test('JSON depth', async (t) => {
    const deep = Buffer.from('['.repeat(LIMITS.maxJsonDepth + 1) + ']'.repeat(LIMITS.maxJsonDepth + 1));
    const r = await verifyParts([
      prefixEntries({ manifest: deep, signatures: [{ fpr: FPR, armored: await signDetached(deep, key) }], keys: [{ fpr: FPR, armored: armoredPublic(key) }] }),
      bodyEntries(baseFiles()),
      tar.end(),
    ]);
    expectCode(t, r, 'MALFORMED', /nested deeper than 32 levels/, `a signed manifest nested ${LIMITS.maxJsonDepth + 1} deep`);
  });

  t.test('decompressed size when no signed manifest bounds it', async (t) => {
    const saved = LIMITS.maxUnboundedBytes;
    t.teardown(() => {
      LIMITS.maxUnboundedBytes = saved;
    });
    t.equal(saved, 256 * 1024 ** 3, 'the documented bound: 256 GiB');
    // lowered in-process so that the bound can be reached quickly
    LIMITS.maxUnboundedBytes = 4 * 1024 * 1024;
    const md = baseFiles().find((f: any) => f.path === 'metadata.json')!;
    const unsigned = (size: number) => [tar.file('metadata.json', md.data), tar.file('disk.img', Buffer.alloc(size)), tar.end()];
    t.equal(
      (await verifyParts(unsigned(3 * 1024 * 1024), { optional: true })).code,
      'ACCEPT',
      'an unsigned box under the bound is accepted (signatures: optional)',
    );
    expectCode(
      t,
      await verifyParts(unsigned(5 * 1024 * 1024), { optional: true }),
      'MALFORMED',
      /expands to more than 4194304 bytes/,
      'an unsigned box over the bound',
    );
  });
});
