/**
 * A box whose `.boxsig/` holds a manifest but no signature is an unsigned
 * box: its identity comes from where a plain unsigned box's does (the
 * caller's --name and --box-version, the catalog, metadata.json), never from
 * the unsigned manifest (the third outside test's finding 4: any
 * `signatures: optional` glob let the box choose its own name and version).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as corpus from './corpus/generate.mjs';
import * as tar from './corpus/tar.mjs';
import { boxsig, isolatedEnv } from './helpers.js';

/** The files of a box, and the same box with a manifest (naming `box`) and no signature. */
function boxes(dir: string, box: { name: string; version: string }) {
  const files = [
    { path: 'metadata.json', data: Buffer.from('{"provider":"virtualbox"}') },
    { path: 'Vagrantfile', data: Buffer.from('puts "whoever made this box"\n') },
    { path: 'box-disk1.vmdk', data: corpus.pseudoRandom(20_000, 9) },
  ];
  const manifest = corpus.manifestFor(files, { box: { ...box, provider: 'virtualbox' } });
  const unsigned = path.join(dir, 'manifest-only.box');
  fs.writeFileSync(unsigned, zlib.gzipSync(Buffer.concat([corpus.prefixEntries({ manifest }), corpus.bodyEntries(files), tar.end()])));
  return unsigned;
}

function setup(t: any) {
  const dir = t.testdir({});
  const env = isolatedEnv(dir);
  fs.mkdirSync(env.BOXSIG_HOME as string, { recursive: true });
  fs.writeFileSync(path.join(env.BOXSIG_HOME as string, 'config.json'), JSON.stringify({ boxes: { 'legacy/*': { signatures: 'optional' } } }));
  const run = (...args: string[]) => boxsig([...args, '--json'], { env, cwd: dir });
  const installed = () => {
    const root = path.join(env.VAGRANT_HOME as string, 'boxes');
    if (!fs.existsSync(root)) return [];
    return fs.readdirSync(root).flatMap((n) =>
      fs
        .readdirSync(path.join(root, n))
        .filter((v) => v !== 'metadata_url')
        .map((v) => `${n}/${v}`),
    );
  };
  const record = (name: string) => boxsig(['trust', 'list', '--json'], { env }).json.boxes[name];
  return { dir, env, run, installed, record };
}

t.test('without --name, a manifest without signatures names nothing: UNSIGNED, nothing installed', async (t) => {
  const s = setup(t);
  const box = boxes(s.dir, { name: 'legacy/ubuntu', version: '999.0.0' });
  const r = s.run('add', box);
  t.equal(r.json?.code, 'UNSIGNED', r.stderr);
  t.match(r.json?.message, /not signed/);
  t.same(s.installed(), [], 'nothing installed');
  t.equal(s.record('legacy/ubuntu'), undefined, 'nothing recorded');
  t.equal(s.run('verify', box).json?.code, 'UNSIGNED', 'verify says the same');
});

t.test('with --name, the caller names the box and its version, as for a plain unsigned box', async (t) => {
  const s = setup(t);
  const box = boxes(s.dir, { name: 'legacy/ubuntu', version: '999.0.0' });
  const r = s.run('add', box, '--name', 'legacy/ubuntu');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.signed, false);
  t.same(s.installed(), ['legacy-VAGRANTSLASH-ubuntu/0'], "Vagrant's 0, not the unsigned manifest's version");
  t.not(s.record('legacy/ubuntu')?.highestVersion, '999.0.0', 'the highest version is not the manifest’s');
  const v = s.run('add', box, '--name', 'legacy/other', '--box-version', '1.2.0');
  t.equal(v.code, 0, v.stderr);
  t.ok(s.installed().includes('legacy-VAGRANTSLASH-other/1.2.0'), 'the name and version given, whatever the manifest says');
  t.equal(s.run('add', box, '--name', 'acme/web').json?.code, 'UNSIGNED', 'a name whose policy requires signatures');
  t.equal(s.run('verify', box, '--name', 'legacy/ubuntu').code, 0, 'verify with a name the policy allows unsigned');
});

t.test('through a catalog, the catalog names the box and its version', async (t) => {
  const s = setup(t);
  const box = boxes(s.dir, { name: 'legacy/ubuntu', version: '999.0.0' });
  fs.writeFileSync(
    path.join(s.dir, 'catalog.json'),
    JSON.stringify({ name: 'legacy/web', versions: [{ version: '3.1.0', providers: [{ name: 'virtualbox', url: path.basename(box) }] }] }),
  );
  const r = s.run('add', 'catalog.json');
  t.equal(r.code, 0, r.stderr);
  t.same(s.installed(), ['legacy-VAGRANTSLASH-web/3.1.0']);
  t.equal(s.record('legacy/ubuntu'), undefined);
});
