/**
 * The version of the `vagrant` command on the PATH, which decides where an add
 * installs a box (see architecture.ts). Asking it (`vagrant --version`) starts
 * Ruby: about a second of wall time and 0.7 s of CPU, on every add. The answer
 * is remembered per executable, keyed by its real path and identity (device,
 * inode, size, modification and change times), in a small cache file
 * (`$BOXSIG_CACHE_HOME`, else `$XDG_CACHE_HOME/boxsig`, else `~/.cache/boxsig`; absolute only,
 * `vagrant.json`): an upgrade replaces the executable and so asks again. The
 * cache is only ever a hint for this one question: unreadable, damaged or
 * unwritable, it is ignored, and `--layout` or `BOXSIG_VAGRANT_LAYOUT` decide
 * without it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPlainObject } from '../shared/json.js';
import { makeDirs, writeFileAtomic } from '../shared/files.js';

const VERSION = /^\d+\.\d+(?:\.\d+)?$/;
/** Executables remembered at most (a cache never grows with use). */
const MAX_ENTRIES = 32;
/** A cache file larger than this is not read. */
const MAX_CACHE_BYTES = 64 * 1024;

function cacheFile(env: NodeJS.ProcessEnv): string {
  // a relative directory (as for XDG_CACHE_HOME) would put the cache wherever the command runs, e.g. in a cloned repository
  if (env.BOXSIG_CACHE_HOME && path.isAbsolute(env.BOXSIG_CACHE_HOME)) return path.join(env.BOXSIG_CACHE_HOME, 'vagrant.json');
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'boxsig', 'vagrant.json');
}

/** The first executable regular file called `name` in the PATH, as the shell would find it. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      if (!fs.statSync(file).isFile()) continue;
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      continue;
    }
  }
  return null;
}

/**
 * What changes when the executable is replaced or edited; null (ask every
 * time) for a version manager's shim (asdf, rbenv, mise…), which picks a
 * version by the directory and the environment: the real file is not called
 * `vagrant`, or lies in a `shims` directory.
 */
function identity(file: string): string | null {
  try {
    const real = fs.realpathSync(file);
    if (path.basename(real) !== 'vagrant' || real.split(path.sep).includes('shims')) return null;
    const s = fs.statSync(real, { bigint: true });
    return `${real}\n${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return null;
  }
}

/**
 * The remembered answers. Only a small regular file of this user's is read:
 * no link is followed and no FIFO or device waited on (opened non-blocking,
 * checked with fstat, read to at most MAX_CACHE_BYTES).
 */
function readCache(file: string): Map<string, string> {
  const out = new Map<string, string>();
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > MAX_CACHE_BYTES || (process.getuid && st.uid !== process.getuid())) return out;
    const buf = Buffer.alloc(MAX_CACHE_BYTES + 1);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    if (n > MAX_CACHE_BYTES) return out;
    const doc: unknown = JSON.parse(buf.subarray(0, n).toString('utf8'));
    if (!isPlainObject(doc) || !Array.isArray(doc.vagrant)) return out;
    for (const e of doc.vagrant) {
      if (Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string' && VERSION.test(e[1])) out.set(e[0], e[1]);
    }
  } catch {
    // no cache, or not one: ask vagrant
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
  return out;
}

function remember(file: string, id: string, version: string): void {
  try {
    const entries = [...readCache(file)].filter(([k]) => k !== id);
    entries.push([id, version]);
    makeDirs(path.dirname(file), 0o700); // one level at a time: a recursive mkdir loops for ever under /proc
    writeFileAtomic(file, JSON.stringify({ format: 1, vagrant: entries.slice(-MAX_ENTRIES) }) + '\n', 0o600);
  } catch {
    // a cache that cannot be written is asked again next time
  }
}

function ask(exe: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  return new Promise((resolve) => {
    try {
      execFile(exe, ['--version'], { env, timeout: 30_000, maxBuffer: 64 * 1024, windowsHide: true }, (error, stdout) => {
        const m = /^Vagrant (\d+\.\d+(?:\.\d+)?)/m.exec(String(stdout ?? ''));
        resolve(error || !m ? null : m[1]);
      }).stdin?.end();
    } catch {
      resolve(null); // a spawn refused at once (an environment Node cannot pass on): as if there were no vagrant
    }
  });
}

/** The `vagrant` on the PATH: its version, or null when there is none (or it does not say). */
export async function vagrantVersion(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (process.platform === 'win32') return ask('vagrant', env); // PATHEXT decides there: asked every time
  const exe = onPath('vagrant', env);
  if (!exe) return null;
  const id = identity(exe);
  const file = cacheFile(env);
  const known = id ? readCache(file).get(id) : undefined;
  if (known) return known;
  const version = await ask(exe, env);
  if (version && id) remember(file, id, version);
  return version;
}
