/**
 * The hostile-box corpus (test/corpus/generate.mjs): every case is refused
 * with its expected code by `verify`, by `add` (which must leave the boxes
 * directory as it was) and by `verify --dir` on what bsdtar extracts the way
 * Vagrant does — always exit status 1, never 3, never a stack trace. Nothing
 * may ever be written outside the directories the tools were pointed at.
 *
 * Then the resource limits of src/archive/limits.ts (docs/SECURITY.md), each
 * at its bound and one past it, through the library.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { boxsigAsync, hasTool, isolatedEnv, requireTool, type RunResult } from './helpers.js';
import { generateCorpus, baseFiles, bodyEntries, prefixEntries, manifestFor, newKey, fpr, signDetached, armoredPublic, sha256 } from './corpus/generate.mjs';
import * as tar from './corpus/tar.mjs';
import { verifyBox, LIMITS, TrustStore, BoxsigError } from '../src/index.js';
import { TarParser } from '../src/archive/tar.js';

interface Case {
  id: string;
  file: string;
  description: string;
  expect: { verify: string; add: string; dir: string };
  pin?: string;
  note?: string;
  todo?: Partial<Record<'verify' | 'add' | 'dir', string>>;
}

const STACK = /\n\s+at .+[:(]\d+:\d+|Unhandled/;

/** Every path under `dir` with its type and size, sorted (to compare before/after). */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const a = path.join(abs, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(a);
      out.push(`${r} ${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? `f${st.size}` : 'other'}`);
      if (st.isDirectory()) walk(a, r);
    }
  };
  walk(dir, '');
  return out;
}

function bsdtarExtract(box: string, dir: string): { code: number; stderr: string } {
  fs.mkdirSync(dir, { recursive: true });
  // exactly how Vagrant extracts a box
  const r = spawnSync('bsdtar', ['--no-same-owner', '--no-same-permissions', '-x', '-m', '-s', '|\\\\|/|', '-C', dir, '-f', box], { encoding: 'utf8' });
  return { code: r.status ?? 1, stderr: r.stderr ?? '' };
}

async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

interface ModeResult {
  run?: RunResult;
  vacuous?: string;
  skipped?: string;
  before?: string[];
  after?: string[];
  leftovers?: string[];
  installed?: string[];
}

t.test('hostile corpus', async (t) => {
  const root = t.testdir({ corpus: {}, work: {} });
  const corpusDir = path.join(root, 'corpus');
  const work = path.join(root, 'work');
  const corpus = await generateCorpus(corpusDir);
  t.ok(corpus.generatedIn < 30_000, `corpus generated in ${corpus.generatedIn} ms (< 30 s)`);
  const sizes = corpus.cases.reduce((n: number, c: Case) => n + fs.statSync(path.join(corpusDir, c.file)).size, 0);
  t.ok(sizes < 32 * 1024 * 1024, `corpus is small on disk (${(sizes / 1048576).toFixed(1)} MiB)`);
  const topBefore = fs.readdirSync(corpusDir).sort();
  const victimBefore = fs.readFileSync(path.join(corpusDir, corpus.victim));

  const env = isolatedEnv(work);
  // the test runner's process-info loader (NODE_OPTIONS) costs ~1 s per CLI start; 400 starts are measured without it
  delete env.NODE_OPTIONS;
  const id = corpus.identity;
  const haveBsdtar = requireTool(t, 'bsdtar', 'libarchive-tools');
  const results = new Map<string, Record<'verify' | 'add' | 'dir', ModeResult>>();

  await pool(corpus.cases as Case[], 2, async (c) => {
    const box = path.join(corpusDir, c.file);
    const pin = c.pin ?? corpus.pin;
    const r: Record<'verify' | 'add' | 'dir', ModeResult> = { verify: {}, add: {}, dir: {} };
    r.verify.run = await boxsigAsync(['verify', box, '--name', id.name, '--pin', pin, '--json'], { env });

    // add into a Vagrant home that already holds another box
    const vh = path.join(work, 'vh', c.id);
    const decoy = path.join(vh, 'boxes', 'decoy-VAGRANTSLASH-box', '1.0', 'virtualbox');
    fs.mkdirSync(decoy, { recursive: true });
    fs.writeFileSync(path.join(decoy, 'metadata.json'), '{"provider":"virtualbox"}');
    r.add.before = listing(path.join(vh, 'boxes'));
    r.add.run = await boxsigAsync(['add', box, '--vagrant-home', vh, '--name', id.name, '--pin', pin, '--json', '-q'], { env });
    r.add.after = listing(path.join(vh, 'boxes'));
    r.add.leftovers = listing(vh).filter((l) => !l.startsWith('boxes') && !l.endsWith(' d'));
    if (r.add.run.code === 0) {
      const dir = path.join(vh, 'boxes', 'corpus-VAGRANTSLASH-box', id.version, id.provider);
      r.add.installed = listing(dir).filter((l) => !l.startsWith('.boxsig'));
    }

    if (c.expect.dir === 'SKIP') r.dir.skipped = c.note ?? 'skipped';
    else if (!haveBsdtar) r.dir.skipped = 'bsdtar is not installed';
    else {
      const x = path.join(work, 'x', c.id);
      const b = bsdtarExtract(box, x);
      if (b.code !== 0) r.dir.vacuous = b.stderr.trim().split('\n')[0];
      else {
        r.dir.run = await boxsigAsync(['verify', '--dir', x, '--name', id.name, '--version', id.version, '--provider', id.provider, '--pin', pin, '--json'], {
          env,
        });
      }
      fs.rmSync(x, { recursive: true, force: true });
    }
    results.set(c.id, r);
  });

  const vacuous: string[] = [];
  for (const c of corpus.cases as Case[]) {
    const r = results.get(c.id)!;
    t.test(`${c.id}: ${c.description}`, async (t) => {
      for (const mode of ['verify', 'add', 'dir'] as const) {
        const m = r[mode];
        const expected = c.expect[mode];
        const todo = c.todo?.[mode];
        t.test(mode, todo ? { todo } : {}, async (t) => {
          if (m.skipped) {
            t.comment(`not run: ${m.skipped}`);
            return;
          }
          if (m.vacuous) {
            vacuous.push(`${c.id} (${m.vacuous})`);
            t.comment(`vacuous: bsdtar refuses to extract it: ${m.vacuous}`);
            return;
          }
          const run = m.run!;
          const where = `${mode} ${c.id}`;
          t.notMatch(run.stderr, STACK, `${where}: no stack trace or unhandled rejection`);
          if (expected === 'ACCEPT') {
            t.equal(run.code, 0, `${where}: accepted (${run.stderr.trim().split('\n')[0]})`);
          } else {
            t.equal(run.code, 1, `${where}: exit status 1 (${run.stderr.trim().split('\n')[0]})`);
            t.equal(run.json?.ok, false, `${where}: ok false`);
            t.equal(run.json?.code, expected, `${where}: refused as ${expected}`);
            t.match(run.stderr, `REFUSED (${expected})`, `${where}: the code is in the message`);
          }
          if (mode === 'add') {
            if (expected === 'ACCEPT') {
              const want = baseFiles()
                .map((f: { path: string; data: Buffer }) => `${f.path} f${f.data.length}`)
                .sort();
              t.same(m.installed, want, `${where}: exactly the signed files are installed`);
            } else {
              t.same(m.after, m.before, `${where}: the boxes directory is unchanged`);
            }
            t.same(m.leftovers, [], `${where}: no staging files left behind`);
          }
        });
      }
    });
  }

  t.test('nothing escaped', async (t) => {
    t.same(fs.readdirSync(path.join(corpusDir, corpus.escaped)), [], 'escaped/ is still empty');
    t.same(fs.readFileSync(path.join(corpusDir, corpus.victim)), victimBefore, 'the victim file is unchanged');
    t.same(fs.readdirSync(corpusDir).sort(), topBefore, 'no new file next to the corpus');
    t.same(fs.readdirSync(root).sort(), ['corpus', 'work'], 'no new file in the test directory');
    const allowed = new Set(['boxsig-home', 'vagrant-home', 'gnupg', 'vh', 'x']);
    t.same(
      fs.readdirSync(work).filter((n) => !allowed.has(n)),
      [],
      'no new file in the work directory',
    );
    if (vacuous.length) t.comment(`vacuous for --dir (bsdtar refuses to extract): ${vacuous.length}\n  ${vacuous.join('\n  ')}`);
  });
});

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
