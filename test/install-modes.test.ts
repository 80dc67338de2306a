/**
 * What an add leaves on disk does not depend on unsigned data, and local
 * inputs that never end are bounded (the third outside test's finding 6 and
 * observations): file modes do not come from tar headers (no execute bit),
 * the installed directories have the modes Vagrant's own add gives them, a
 * Vagrant home that is not a plain directory tree (/proc) is a configuration
 * error instead of a spin, and a key file is read with a cap (/dev/zero).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as corpus from './corpus/generate.mjs';
import * as tar from './corpus/tar.mjs';
import { boxsig, isolatedEnv } from './helpers.js';

/** A signed box whose tar headers give `modes` (the signature covers contents only). */
async function boxWithModes(file: string, modes: Record<string, number>): Promise<string> {
  const key = await corpus.newKey({ uid: 'Publisher' });
  const files = [
    { path: 'metadata.json', data: Buffer.from('{"provider":"virtualbox"}') },
    { path: 'Vagrantfile', data: Buffer.from('Vagrant.configure("2") do |config|\nend\n') },
    { path: 'box-disk1.vmdk', data: corpus.pseudoRandom(20_000, 4) },
  ];
  const manifest = corpus.manifestFor(files, { box: { name: 'acme/modes', version: '1.0.0', provider: 'virtualbox' } });
  const fpr = corpus.fpr(key);
  const prefix = corpus.prefixEntries({
    manifest,
    signatures: [{ fpr, armored: await corpus.signDetached(manifest, key) }],
    keys: [{ fpr, armored: corpus.armoredPublic(key) }],
  });
  const body = Buffer.concat(files.map((f) => tar.file(f.path, f.data, { mode: modes[f.path] ?? 0o644 })));
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat([prefix, body, tar.end()])));
  return file;
}

const umask = (() => {
  const u = process.umask(0o022);
  process.umask(u);
  return u;
})();

t.test('installed modes: no execute bit from a tar header; directories as Vagrant makes them', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir);
  const box = await boxWithModes(path.join(dir, 'modes.box'), { 'box-disk1.vmdk': 0o4755, Vagrantfile: 0o755 });
  const r = boxsig(['add', box, '--json'], { env });
  t.equal(r.code, 0, r.stderr);
  const installed = r.json.directory as string;
  const mode = (p: string) => fs.statSync(p).mode & 0o7777;
  for (const f of ['box-disk1.vmdk', 'Vagrantfile', 'metadata.json', '.boxsig/manifest.json']) {
    t.equal(mode(path.join(installed, f)), 0o644 & ~umask, `${f}: 0644 less the umask, whatever its tar header says`);
  }
  const boxes = path.join(env.VAGRANT_HOME as string, 'boxes');
  for (let d = installed; d !== boxes; d = path.dirname(d)) {
    t.equal(mode(d), 0o777 & ~umask, `${path.relative(boxes, d)}: 0777 less the umask, as Vagrant's mkdir -p`);
  }
});

t.test('a Vagrant home that is not a plain directory tree is a configuration error', async (t) => {
  const dir = t.testdir({ 'a-file': 'x' });
  const env = isolatedEnv(dir);
  const box = await boxWithModes(path.join(dir, 'modes.box'), {});
  for (const home of ['/proc', path.join(dir, 'a-file')]) {
    // the timeout only guards the test run: before the fix, /proc spun forever
    const r = boxsig(['add', box, '--vagrant-home', home, '--json'], { env, timeout: 120_000 });
    t.equal(r.code, 2, `${home}: exit 2`);
    t.equal(r.json?.code, 'CONFIG', `${home}: CONFIG`);
    t.match(r.json?.message, /is not a plain directory tree/);
  }
});

t.test('a key file is read with a cap: /dev/zero is a usage error, not unbounded memory', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir);
  for (const args of [
    ['key', 'import', '/dev/zero'],
    ['key', 'revoke', '--import', '/dev/zero'],
  ]) {
    const r = boxsig([...args, '--json'], { env, timeout: 120_000 });
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.json?.code, 'USAGE');
    t.match(r.json?.message, /larger than 16 MiB/);
  }
});
