#!/usr/bin/env node
// The main job end to end, in a throwaway directory: generate a key and a
// sample box, sign it, verify it, tamper with it and show the refusal, then
// add it to a throwaway Vagrant home.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from 'tar';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-demo-'));
const env = { ...process.env, BOXSIG_HOME: path.join(work, 'boxsig-home'), VAGRANT_HOME: path.join(work, 'vagrant-home'), BOXSIG_PASSPHRASE: '' };

function step(title) {
  console.log(`\n\x1b[1m== ${title}\x1b[0m`);
}
function run(args, { expectFail = false } = {}) {
  console.log(`$ boxsig ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { env, cwd: work, stdio: 'inherit' });
  if (expectFail ? r.status === 0 : r.status !== 0) {
    console.error(`demo: unexpected exit status ${r.status}`);
    process.exit(1);
  }
  if (expectFail) console.log(`(exit status ${r.status}, as expected)`);
}

step(`working in ${work}`);
const boxDir = path.join(work, 'box');
fs.mkdirSync(boxDir);
fs.writeFileSync(path.join(boxDir, 'metadata.json'), JSON.stringify({ provider: 'virtualbox' }));
fs.writeFileSync(path.join(boxDir, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\nend\n');
const disk = Buffer.alloc(4 * 1024 * 1024);
for (let i = 0; i < disk.length; i += 4096) disk.write(`sector ${i / 4096} of a demo disk image\n`, i);
fs.writeFileSync(path.join(boxDir, 'box-disk1.vmdk'), disk);
const boxFile = path.join(work, 'demo.box');
await create({ gzip: true, file: boxFile, cwd: boxDir, portable: true }, ['metadata.json', 'Vagrantfile', 'box-disk1.vmdk']);
console.log(`made demo.box (${fs.statSync(boxFile).size} bytes): metadata.json, Vagrantfile, box-disk1.vmdk`);

step('1. generate a signing key (v4 Ed25519)');
run(['key', 'generate', '--uid', 'Demo Builds <builds@demo.example>', '--out', 'demo-key']);

step('2. sign the box (one pass; the disk image is not recompressed)');
run(['sign', 'demo.box', '--key', 'demo-key.secret.asc', '--name', 'demo/box', '--version', '1.0.0', '--claim', 'builder=demo', '-o', 'demo-signed.box']);

step('3. inspect and verify it');
run(['inspect', 'demo-signed.box']);
run(['verify', 'demo-signed.box', '--name', 'demo/box']);

step('4. tamper with one byte of the disk image and verify again');
const x = path.join(work, 'x');
fs.mkdirSync(x);
spawnSync('tar', ['xzf', 'demo-signed.box', '-C', x], { cwd: work, stdio: 'inherit' });
const img = fs.readFileSync(path.join(x, 'box-disk1.vmdk'));
img[1000] ^= 1;
fs.writeFileSync(path.join(x, 'box-disk1.vmdk'), img);
// .boxsig/ must lead the archive: list its files first, explicitly
const boxsigFiles = [
  '.boxsig/manifest.json',
  ...['signatures', 'keys'].flatMap((d) => fs.readdirSync(path.join(x, '.boxsig', d)).map((f) => `.boxsig/${d}/${f}`)),
];
await create({ gzip: true, file: path.join(work, 'tampered.box'), cwd: x, portable: true }, [...boxsigFiles, 'metadata.json', 'Vagrantfile', 'box-disk1.vmdk']);
run(['verify', 'tampered.box'], { expectFail: true });

step('5. add the genuine box to a throwaway Vagrant home (trust on first use)');
run(['add', 'demo-signed.box']);
run(['trust', 'list']);

step('6. a box of the same name signed by another key is refused');
run(['key', 'generate', '--uid', 'Mallory <m@evil.example>', '--out', 'evil-key']);
run(['sign', 'demo-signed.box', '--key', 'evil-key.secret.asc', '--version', '1.0.1', '--fresh', '-o', 'evil.box']);
run(['add', 'evil.box'], { expectFail: true });

fs.rmSync(work, { recursive: true, force: true });
console.log('\ndemo: all steps behaved as expected');
