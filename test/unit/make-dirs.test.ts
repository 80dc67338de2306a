/**
 * Directories are made one level at a time (shared/files.ts makeDirs): Node's
 * recursive mkdir retries for ever where mkdir answers ENOENT under a parent
 * that exists (/proc), so a BOXSIG_HOME, VAGRANT_HOME, XDG_* or output path
 * there hung the command instead of refusing it.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeDirs } from '../../src/shared/files.js';

const SRC = path.join(import.meta.dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

t.test('makeDirs refuses a path it cannot make at once, where a recursive mkdir loops', async (t) => {
  for (const p of ['/proc/boxsig-none/a/b', '/proc/boxsig-none', '/dev/null/x/y']) {
    let code: string | undefined;
    try {
      makeDirs(p, 0o700);
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code;
    }
    t.ok(code, `${p}: ${code}`);
  }
});

t.test('makeDirs makes every missing level with the mode, and accepts what exists', async (t) => {
  const dir = t.testdir({ file: 'x' });
  makeDirs(path.join(dir, 'a', 'b', 'c'), 0o700);
  t.ok(fs.statSync(path.join(dir, 'a', 'b', 'c')).isDirectory());
  t.equal(fs.statSync(path.join(dir, 'a')).mode & 0o777, 0o700 & ~process.umask());
  makeDirs(path.join(dir, 'a', 'b', 'c'));
  t.throws(() => makeDirs(path.join(dir, 'file', 'x')), { code: 'ENOTDIR' });
});

t.test('no source makes directories with a recursive mkdir', async (t) => {
  const offenders = sources(SRC).filter((f) => /mkdir(Sync)?\([^;]*recursive:\s*true/.test(fs.readFileSync(f, 'utf8')));
  t.same(
    offenders.map((f) => path.relative(SRC, f)),
    [],
    'use makeDirs (shared/files.ts)',
  );
});
