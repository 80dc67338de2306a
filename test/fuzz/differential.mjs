/**
 * Differential check shared by test/differential.test.ts and the fuzzer:
 * for a box that boxsig accepted, GNU tar and bsdtar (the way Vagrant runs
 * it) must extract exactly the files boxsig verified — same paths, same
 * bytes, nothing else, nothing that is not a plain file or directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';

export const EXTRACTORS = {
  gnu: (box, dir) => ['tar', ['--no-same-owner', '--no-same-permissions', '-x', '-f', box, '-C', dir]],
  // exactly how Vagrant extracts a box
  bsd: (box, dir) => ['bsdtar', ['--no-same-owner', '--no-same-permissions', '-x', '-m', '-s', '|\\\\|/|', '-C', dir, '-f', box]],
};

export function hasCommand(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function sha256File(p) {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/**
 * Every regular file under `dir` (relative path -> {size, sha256}), and
 * everything that is neither a regular file nor a directory.
 */
export function walkFiles(dir) {
  const files = new Map();
  const odd = [];
  const walk = (abs, rel) => {
    for (const name of fs.readdirSync(abs).sort()) {
      const a = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(a);
      if (st.isDirectory()) walk(a, r);
      else if (st.isFile()) {
        if (st.nlink > 1) odd.push(`${r} (hard link)`);
        files.set(r, { size: st.size, sha256: sha256File(a) });
      } else odd.push(`${r} (${st.isSymbolicLink() ? 'symlink' : 'special file'})`);
    }
  };
  walk(dir, '');
  return { files, odd };
}

/**
 * Compare what is in `dir` with `expected` ([{path, size, sha256}], the files
 * outside .boxsig/). Returns a list of problems (empty when identical).
 */
export function compareDir(dir, expected, label) {
  const problems = [];
  const { files, odd } = walkFiles(dir);
  for (const o of odd) problems.push(`${label}: ${o}`);
  const want = new Map(expected.map((f) => [f.path, f]));
  for (const [p, f] of files) {
    if (p === '.boxsig' || p.startsWith('.boxsig/')) continue;
    const w = want.get(p);
    if (!w) problems.push(`${label}: extra file ${JSON.stringify(p)}`);
    else if (w.size !== f.size || w.sha256 !== f.sha256)
      problems.push(`${label}: ${JSON.stringify(p)} differs (${f.size} bytes, ${f.sha256.slice(0, 12)}… instead of ${w.size}, ${w.sha256.slice(0, 12)}…)`);
  }
  for (const p of want.keys()) if (!files.has(p)) problems.push(`${label}: missing ${JSON.stringify(p)}`);
  return problems;
}

/**
 * Extract `box` with GNU tar and bsdtar under `work` and compare each result
 * with `expected`. Also compares their `.boxsig/manifest.json` when `manifest`
 * (Buffer) is given. Cleans up after itself. Returns problems.
 */
export function differential(box, expected, work, manifest = null) {
  const problems = [];
  for (const [name, cmd] of Object.entries(EXTRACTORS)) {
    const dir = path.join(work, `extract-${name}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const [bin, args] = cmd(box, dir);
    const r = spawnSync(bin, args, { encoding: 'utf8' });
    // boxsig does not compute the CRC-32 of the gzip member after its leading one when every file in it
    // is checked against the signed SHA-256 (bsdtar, which Vagrant uses, never checks it): GNU tar's gzip
    // then complains about a CRC that boxsig ignored, but must still have extracted the very same files.
    const crcOnly =
      name === 'gnu' && r.status !== 0 && /crc error/.test(r.stderr || '') && !/Unexpected EOF|not in gzip format|unexpected end/i.test(r.stderr || '');
    if (r.status !== 0 && !crcOnly) problems.push(`${name} tar cannot extract a box boxsig accepted: ${(r.stderr || '').trim().split('\n')[0]}`);
    else {
      problems.push(...compareDir(dir, expected, `${name} tar`));
      if (manifest) {
        const m = path.join(dir, '.boxsig', 'manifest.json');
        if (!fs.existsSync(m) || !fs.readFileSync(m).equals(manifest)) problems.push(`${name} tar: .boxsig/manifest.json differs from the one boxsig verified`);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return problems;
}
