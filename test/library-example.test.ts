/**
 * The README's library example, taken from README.md as written, type-checked
 * by tsc against the built package and run with `import … from 'boxsig'`
 * resolved through the package's exports (node_modules/boxsig links to the
 * repository, as an installed package would be found):
 * - a good box verifies and is added;
 * - a tampered box is a refusal: its code is printed, exit 1;
 * - a missing box is not a refusal: the error is rethrown.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, isolatedEnv, makeBox, makeKey, sign } from './helpers.js';

function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## As a library'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md: no ```ts block under "## As a library"');
  return m[1];
}

/** Flip one byte near the end of a file (inside the disk image). */
function tamper(file: string): void {
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, size - 2000);
  b[0] ^= 1;
  fs.writeSync(fd, b, 0, 1, size - 2000);
  fs.closeSync(fd);
}

t.test("README's library example compiles and runs as written against the package", async (t) => {
  const dir = t.testdir({});
  const project = path.join(dir, 'project');
  fs.mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'boxsig'), 'dir');
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  fs.writeFileSync(path.join(project, 'example.ts'), readmeExample());
  fs.writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        // as `tsc --init` writes: OpenPGP.js's declarations name a package it does not install
        skipLibCheck: true,
        outDir: 'out',
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        types: ['node'],
      },
      files: ['example.ts'],
    }),
  );
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { encoding: 'utf8' });
  t.equal(tsc.status, 0, `tsc compiles the example against the package's types: ${tsc.stdout}${tsc.stderr}`);
  if (tsc.status !== 0) return;

  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const box = path.join(project, 'ubuntu.box');
  t.equal(sign(makeBox(path.join(dir, 'raw.box')), [key], ['--name', 'acme/ubuntu-24.04', '--version', '1.2.3', '-o', box], env).code, 0);
  const run = () =>
    spawnSync(process.execPath, [path.join(project, 'out', 'example.js')], { cwd: project, env: { ...env, ACME_FPR: key.fingerprint }, encoding: 'utf8' });

  let r = run();
  t.equal(r.status, 0, `a good box: exit 0 ${r.stderr}`);
  t.match(r.stdout, /verified acme\/ubuntu-24\.04 1\.2\.3/);
  t.match(r.stdout, /installed in .*acme-VAGRANTSLASH-ubuntu-24\.04/);
  t.ok(fs.existsSync(path.join(env.VAGRANT_HOME!, 'boxes', 'acme-VAGRANTSLASH-ubuntu-24.04', '1.2.3')), 'the box is installed');

  tamper(box);
  r = run();
  t.equal(r.status, 1, 'a tampered box: exit 1');
  t.match(r.stderr, /refused \(TAMPERED\)/, 'the refusal code is printed');

  fs.rmSync(box);
  r = run();
  t.not(r.status, 0, 'a missing box fails');
  t.notMatch(r.stderr, /refused \(/, 'it is not reported as a refusal');
  t.match(r.stderr, /BoxsigError|no such file/, 'the error is rethrown');
});
