/**
 * Differential testing: for every box boxsig accepts, what GNU tar and bsdtar
 * (the way Vagrant runs it) extract is byte for byte what boxsig verified —
 * the manifest's paths, sizes and SHA-256s, no extra file, nothing that is not
 * a plain file or directory — and so is what `boxsig add` installs.
 *
 * Boxes in many shapes: made by GNU tar (gnu, posix, ustar, v7 formats), by
 * bsdtar (restricted pax, full pax, ustar), with long names, `./` prefixes,
 * UTF-8 names, multi-member gzip, plain tar, co-signed; plus legal but unusual
 * encodings written byte by byte (pax path/size overrides, base-256 sizes,
 * GNU long names, ustar prefixes, signed checksums, global headers...), where
 * extractors are most likely to disagree. The fuzzer (test/fuzz/run.mjs) runs
 * the same check on everything it gets accepted.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { boxsig, isolatedEnv, makeKey, must, pseudoRandom, requireTool } from './helpers.js';
import { differential, compareDir, walkFiles } from './fuzz/differential.mjs';
import * as tar from './corpus/tar.mjs';
import { sha256 } from './corpus/generate.mjs';
import { loadSecretKey, signerFromKey, signBox, verifyBox, TrustStore } from '../src/index.js';
import { addBox } from '../src/vagrant/add.js';

interface Expected {
  path: string;
  size: number;
  sha256: string;
}

/** The source tree of a box, in three sizes: everything, what ustar can name, what v7 can name. */
function sourceTree(dir: string, level: 'full' | 'ustar' | 'v7'): string {
  const files: Record<string, string | Buffer> = {
    'metadata.json': '{"provider":"virtualbox"}',
    Vagrantfile: 'Vagrant.configure("2") do |config|\n  config.vm.boot_timeout = 600\nend\n',
    'box-disk1.vmdk': pseudoRandom(300_000, 11),
    empty: '',
    'scripts/run.sh': '#!/bin/sh\necho hello\n',
    'sub dir/file with spaces.txt': 'spaces\n',
    'caf\u00e9.txt': 'utf-8 name\n',
  };
  if (level !== 'v7') files[`${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(70)}.txt`] = 'a deep path split into prefix and name\n';
  if (level === 'full') files[`long-name-${'x'.repeat(120)}.txt`] = 'a component longer than 100 bytes\n';
  fs.mkdirSync(dir, { recursive: true });
  for (const [p, d] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), d);
  }
  fs.chmodSync(path.join(dir, 'scripts/run.sh'), 0o755);
  fs.mkdirSync(path.join(dir, 'emptydir'), { recursive: true });
  return dir;
}

function expectedOf(dir: string): Expected[] {
  return [...walkFiles(dir).files].map(([p, f]: [string, { size: number; sha256: string }]) => ({ path: p, ...f })).sort((a, b) => (a.path < b.path ? -1 : 1));
}

const byPath = (l: Expected[]) => [...l].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

t.test('boxes made by tar tools, signed and verified through the CLI', async (t) => {
  if (!requireTool(t, 'bsdtar', 'libarchive-tools')) return;
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  delete env.NODE_OPTIONS; // the test runner's loader makes every CLI start ~1 s slower
  const key = makeKey(dir, 'Differential <diff@boxsig.invalid>', [], env);
  const key2 = makeKey(dir, 'Co-signer <co@boxsig.invalid>', [], env);
  const trees = {
    full: sourceTree(path.join(dir, 'src-full'), 'full'),
    ustar: sourceTree(path.join(dir, 'src-ustar'), 'ustar'),
    v7: sourceTree(path.join(dir, 'src-v7'), 'v7'),
  };
  const names = (d: string) => fs.readdirSync(d).sort();

  const multiMember = (out: string) => {
    const plain = `${out}.tar`;
    must('tar', ['--format=posix', '-cf', plain, '-C', trees.full, ...names(trees.full)]);
    const b = fs.readFileSync(plain);
    const blocks = b.length / 512;
    const cut1 = Math.floor(blocks / 3) * 512 + 0;
    const cut2 = Math.floor((2 * blocks) / 3) * 512 + 100; // members need not end on a block boundary
    fs.writeFileSync(out, Buffer.concat([zlib.gzipSync(b.subarray(0, cut1)), zlib.gzipSync(b.subarray(cut1, cut2)), zlib.gzipSync(b.subarray(cut2))]));
  };
  const shapes: Array<{ name: string; tree: string; make: (out: string) => void; cosign?: boolean }> = [
    { name: 'GNU tar --format=gnu, gzip, ./ prefixes', tree: trees.full, make: (o) => must('tar', ['--format=gnu', '-czf', o, '-C', trees.full, '.']) },
    { name: 'GNU tar --format=posix, gzip', tree: trees.full, make: (o) => must('tar', ['--format=posix', '-czf', o, '-C', trees.full, ...names(trees.full)]) },
    {
      name: 'GNU tar --format=ustar, plain',
      tree: trees.ustar,
      make: (o) => must('tar', ['--format=ustar', '-cf', o, '-C', trees.ustar, ...names(trees.ustar)]),
    },
    { name: 'GNU tar --format=v7, plain', tree: trees.v7, make: (o) => must('tar', ['--format=v7', '-cf', o, '-C', trees.v7, ...names(trees.v7)]) },
    {
      name: 'GNU tar --format=oldgnu, gzip',
      tree: trees.full,
      make: (o) => must('tar', ['--format=oldgnu', '-czf', o, '-C', trees.full, ...names(trees.full)]),
    },
    { name: 'bsdtar default (restricted pax), gzip, ./ prefixes', tree: trees.full, make: (o) => must('bsdtar', ['-czf', o, '-C', trees.full, '.']) },
    {
      name: 'bsdtar --format pax, plain',
      tree: trees.full,
      make: (o) => must('bsdtar', ['--format', 'pax', '-cf', o, '-C', trees.full, ...names(trees.full)]),
    },
    {
      name: 'bsdtar --format ustar, gzip',
      tree: trees.ustar,
      make: (o) => must('bsdtar', ['--format', 'ustar', '-czf', o, '-C', trees.ustar, ...names(trees.ustar)]),
    },
    { name: 'multi-member gzip (three members, one cut mid-block)', tree: trees.full, make: multiMember },
    {
      name: 'co-signed (signed twice, by two keys)',
      tree: trees.full,
      make: (o) => must('tar', ['-czf', o, '-C', trees.full, ...names(trees.full)]),
      cosign: true,
    },
  ];

  for (const shape of shapes) {
    t.test(shape.name, async (t) => {
      const work = path.join(dir, 'work', shape.name.replace(/[^a-z0-9]+/gi, '-'));
      fs.mkdirSync(work, { recursive: true });
      const unsigned = path.join(work, 'unsigned.box');
      const box = path.join(work, 'signed.box');
      shape.make(unsigned);
      let r = boxsig(['sign', unsigned, '--key', key.secret, '--name', 'diff/box', '--version', '1.0.0', '-o', box, '--json'], { env });
      t.equal(r.code, 0, `signed (${r.stderr.trim()})`);
      if (shape.cosign) {
        r = boxsig(['sign', box, '--key', key2.secret, '--json'], { env });
        t.equal(r.code, 0, `co-signed (${r.stderr.trim()})`);
      }
      const v = boxsig(['verify', box, '--pin', key.fingerprint, '--json'], { env });
      t.equal(v.code, 0, `boxsig accepts it (${v.stderr.trim()})`);
      if (v.code !== 0) return;
      const verified: Expected[] = byPath(v.json.files);
      t.same(verified, expectedOf(shape.tree), 'boxsig verified exactly the source files');
      t.same(differential(box, verified, work), [], 'GNU tar and bsdtar extract exactly what boxsig verified');
      const vh = path.join(work, 'vagrant-home');
      const a = boxsig(['add', box, '--vagrant-home', vh, '--pin', key.fingerprint, '--json', '-q'], { env });
      t.equal(a.code, 0, `boxsig add installs it (${a.stderr.trim()})`);
      if (a.code === 0) t.same(compareDir(a.json.directory, verified, 'boxsig add'), [], 'boxsig add installs exactly what it verified');
    });
  }
});

// ---------------------------------------------------------------- unusual encodings

interface Trick {
  name: string;
  /** tar parts (before the end marker) and the files they must extract to */
  build: () => { parts: Buffer[]; files: Array<{ path: string; data: Buffer }> };
}

const md = { path: 'metadata.json', data: Buffer.from('{"provider":"virtualbox"}') };
const vf = { path: 'Vagrantfile', data: Buffer.from('Vagrant.configure("2") do |config|\nend\n') };
const common = () => [tar.file(md.path, md.data), tar.file(vf.path, vf.data)];
const one = (name: string, p: string, data: Buffer | string, entry: (d: Buffer) => Buffer[]): Trick => ({
  name,
  build: () => {
    const d = Buffer.from(data);
    return { parts: [...common(), ...entry(d)], files: [md, vf, { path: p, data: d }] };
  },
});

const TRICKS: Trick[] = [
  one('pax path overrides the ustar name', 'real-name.txt', 'pax path wins\n', (d) => [tar.pax([['path', 'real-name.txt']]), tar.file('decoy-name.txt', d)]),
  one('pax size overrides a zero ustar size', 'pax-size.bin', pseudoRandom(1500, 3), (d) => [
    tar.pax([['size', String(d.length)]]),
    tar.header({ name: 'pax-size.bin', size: 0 }),
    tar.pad(d),
  ]),
  one('pax size with leading zeros', 'zeros.bin', pseudoRandom(700, 4), (d) => [
    tar.pax([['size', `000${d.length}`]]),
    tar.header({ name: 'zeros.bin', size: 0 }),
    tar.pad(d),
  ]),
  one('base-256 size', 'b256.bin', pseudoRandom(3000, 5), (d) => [tar.file('b256.bin', d, { base256Size: true })]),
  one('GNU long name', `gnu/${'L'.repeat(150)}.txt`, 'long\n', (d) => [
    tar.gnuLong(`gnu/${'L'.repeat(150)}.txt`),
    tar.file('gnu/short.txt', d, { format: 'gnu' }),
  ]),
  one('ustar prefix field', 'pre/fix/file.txt', 'prefixed\n', (d) => [tar.file('file.txt', d, { prefix: 'pre/fix' })]),
  one('signed checksum (bytes over 127 in the name)', '\u00e9t\u00e9-\u00fc\u00f1\u00ee.txt', 'signed sum\n', (d) => [
    tar.file('\u00e9t\u00e9-\u00fc\u00f1\u00ee.txt', d, { checksum: 'signed' }),
  ]),
  one('GNU header with data where ustar keeps its prefix', 'gnu-atime.txt', 'gnu\n', (d) => [
    tar.file('gnu-atime.txt', d, { format: 'gnu', raw: [[345, Buffer.from('14000000000\0' + '14000000000\0')]] }),
  ]),
  one('v7 header between ustar entries', 'v7.txt', 'v7\n', (d) => [tar.file('v7.txt', d, { format: 'v7' })]),
  one('old regular-file type flag (NUL)', 'nul-type.txt', 'typeflag 0\n', (d) => [tar.file('nul-type.txt', d, { type: '\0' })]),
  one('./ and // in names, and a root entry', 'sub/x.txt', 'dots\n', (d) => [tar.dir('./'), tar.file('.//sub//./x.txt', d)]),
  one('directory entry after its contents', 'later/f.txt', 'dir later\n', (d) => [tar.file('later/f.txt', d), tar.dir('later/')]),
  one('empty pax header', 'empty-pax.txt', 'x\n', (d) => [tar.pax(Buffer.alloc(0)), tar.file('empty-pax.txt', d)]),
  one('metadata-only pax keywords', 'meta.txt', 'meta\n', (d) => [
    tar.pax([
      ['mtime', '1700000000.5'],
      ['uid', '1000'],
      ['uname', 'builder'],
      ['hdrcharset', 'ISO-IR 10646 2000 UTF-8'],
      ['SCHILY.xattr.user.note', 'x'],
    ]),
    tar.file('meta.txt', d),
  ]),
  one('a pax global header (as git archive writes)', 'after-g.txt', 'g\n', (d) => [
    tar.pax([['comment', '0123456789abcdef']], { global: true }),
    tar.file('after-g.txt', d),
  ]),
  one('pax header, then a global header, then the entry', 'xg-path.txt', 'x then g\n', (d) => [
    tar.pax([['path', 'xg-path.txt']]),
    tar.pax([['comment', 'between']], { global: true }),
    tar.file('xg-name.txt', d),
  ]),
  one('GNU long name, then a global header, then the entry', `lg/${'n'.repeat(120)}.txt`, 'L then g\n', (d) => [
    tar.gnuLong(`lg/${'n'.repeat(120)}.txt`),
    tar.pax([['comment', 'between']], { global: true }),
    tar.file('lg/short.txt', d, { format: 'gnu' }),
  ]),
  one('name of exactly 100 bytes (no NUL)', `${'h'.repeat(96)}.txt`, 'hundred\n', (d) => [tar.file(`${'h'.repeat(96)}.txt`, d)]),
  one('octal fields padded with spaces', 'spaces.txt', 'spaced octal\n', (d) => [
    tar.file('spaces.txt', d, { rawSize: Buffer.from(`   ${d.length.toString(8).padStart(7, ' ')} `.slice(0, 11) + '\0') }),
  ]),
  one('ustar prefix longer than 130 bytes, with star-like time fields', `${'q'.repeat(130)}/star.txt`, 'star\n', (d) => [
    tar.file('star.txt', d, { prefix: Buffer.from(`${'q'.repeat(130)}\0` + '01234567012\0', 'latin1') }),
  ]),
  one('v7 header with bytes where ustar keeps its prefix', 'v7-prefix.txt', 'v7\n', (d) => [
    tar.file('v7-prefix.txt', d, { format: 'v7', raw: [[345, Buffer.from('evil/prefix')]] }),
  ]),
  one('name with bytes after its NUL', 'cut.txt', 'cut\n', (d) => [tar.file(Buffer.from('cut.txt\0/../../escaped/evil'), d)]),
  one('pax path with ./ components', 'p/q.txt', 'normalised\n', (d) => [tar.pax([['path', './p/./q.txt']]), tar.file('q.txt', d)]),
];

t.test('unusual but legal encodings, signed and verified through the library', async (t) => {
  if (!requireTool(t, 'bsdtar', 'libarchive-tools')) return;
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  delete env.NODE_OPTIONS;
  const keyFiles = makeKey(dir, 'Differential <diff@boxsig.invalid>', [], env);
  const priv = await loadSecretKey(fs.readFileSync(keyFiles.secret), 'key', async () => '');
  const signer = signerFromKey(priv, keyFiles.secret);
  const store = new TrustStore(path.join(dir, 'boxsig-home'));

  for (const trick of TRICKS) {
    for (const compress of [false, true]) {
      t.test(`${trick.name} (${compress ? 'gzip' : 'plain'})`, async (t) => {
        const work = path.join(dir, 'work', `${trick.name.replace(/[^a-z0-9]+/gi, '-')}-${compress ? 'gz' : 'tar'}`);
        fs.mkdirSync(work, { recursive: true });
        const { parts, files } = trick.build();
        const raw = Buffer.concat([...parts, tar.end()]);
        const unsigned = path.join(work, 'unsigned.box');
        fs.writeFileSync(unsigned, compress ? zlib.gzipSync(raw) : raw);
        const want = byPath(files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) })));
        // the tools agree on the unsigned archive first (otherwise the trick tests nothing)
        t.same(differential(unsigned, want, work), [], 'GNU tar and bsdtar agree on the unsigned archive');
        const box = path.join(work, 'signed.box');
        await signBox(unsigned, { signers: [signer], name: 'diff/tricks', version: '1.0.0', output: box });
        const v = await verifyBox(box, { pins: [signer.fingerprint], store, layers: [], cwd: work });
        t.same(byPath(v.files), want, 'boxsig verified exactly the files the tools extract');
        t.same(differential(box, want, work), [], 'GNU tar and bsdtar extract exactly what boxsig verified');
        const a = await addBox(box, { vagrantHome: path.join(work, 'vagrant-home'), pins: [signer.fingerprint], store, layers: [], cwd: work });
        t.same(compareDir(a.directory, want, 'boxsig add'), [], 'boxsig add installs exactly what it verified');
      });
    }
  }
});
