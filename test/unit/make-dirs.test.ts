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
  t.throws(() => makeDirs(path.join(dir, 'file', 'x')), { code: 'IO', details: { errno: 'ENOTDIR' } });
});

t.test('every way a directory cannot be made is one IO refusal naming it, short, never an internal error', async (t) => {
  const dir = t.testdir({});
  fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
  fs.symlinkSync(path.join(dir, 'loop-b'), path.join(dir, 'loop-a'));
  fs.symlinkSync(path.join(dir, 'loop-a'), path.join(dir, 'loop-b'));
  const long = path.join(dir, ...Array.from({ length: 5000 }, () => 'x'));
  for (const [what, p, errno] of [
    ['a dangling link', path.join(dir, 'dangling'), 'EEXIST'],
    ['a link loop', path.join(dir, 'loop-a', 'x'), 'ELOOP'],
    ['5000 levels', long, 'ENAMETOOLONG'],
  ]) {
    let err: any;
    try {
      makeDirs(p, 0o700);
    } catch (e) {
      err = e;
    }
    t.equal(err?.code, 'IO', `${what}: IO`);
    t.equal(err?.details?.errno, errno, `${what}: ${errno}`);
    t.match(err?.message, /^cannot create the directory /, `${what}: names what it could not make`);
    t.ok(err?.message.length < 600, `${what}: a message a person can read (${err?.message.length} characters)`);
  }
});

t.test('no source makes directories with a recursive mkdir', async (t) => {
  const offenders = sources(SRC).filter((f) => /mkdir(Sync)?\([^;]*recursive:\s*true/.test(fs.readFileSync(f, 'utf8')));
  t.same(
    offenders.map((f) => path.relative(SRC, f)),
    [],
    'use makeDirs (shared/files.ts)',
  );
});
