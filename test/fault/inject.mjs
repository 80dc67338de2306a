/**
 * Fault injection for crash-safety tests, loaded into a boxsig process with
 * `NODE_OPTIONS=--import=<this file>`. It wraps every file-system call that
 * changes something — sync, callback and promise forms, and FileHandle
 * methods: open for writing, write, rename, unlink/rm/rmdir, mkdir, fsync,
 * truncate, copy, link, chmod — counts them, and at the N-th one (before it
 * runs) does what BOXSIG_FAULT_MODE says:
 *
 *   kill     SIGKILL: the process dies on the spot (a crash, kill -9, power cut)
 *   SIGINT / SIGTERM / SIGHUP   send that signal to itself (an interrupt)
 *   enospc   the call fails with ENOSPC (a full disk), if it is one that can
 *            (a delete or chmod never needs space: it runs)
 *
 * Environment:
 *   BOXSIG_FAULT_AT    N (1-based); 0 or unset: only count
 *   BOXSIG_FAULT_MODE  see above (default kill)
 *   BOXSIG_FAULT_LOG   a file that receives one line per call: "N op path"
 *
 * Writes to stdout and stderr are not counted (whether they are file-system
 * calls depends on where the output goes).
 *
 * The test runs a command once to count its calls, then once per call with
 * the fault injected there.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const at = Number(process.env.BOXSIG_FAULT_AT ?? 0);
const mode = process.env.BOXSIG_FAULT_MODE ?? 'kill';
const logFile = process.env.BOXSIG_FAULT_LOG;
const logFd = logFile ? fs.openSync(logFile, 'a') : null;
const writeLog = fs.writeSync.bind(fs);
let count = 0;
/** Calls made from inside a wrapped call (appendFileSync calls writeFileSync...) are not counted twice. */
let depth = 0;

function describe(arg) {
  if (typeof arg === 'string') return JSON.stringify(arg.length > 200 ? `${arg.slice(0, 200)}…` : arg).slice(1, -1);
  if (arg instanceof URL) return arg.pathname;
  if (ArrayBuffer.isView(arg)) return `<${arg.byteLength} bytes>`;
  if (typeof arg === 'number') return `fd ${arg}`;
  return typeof arg;
}

function hit(op, target) {
  count++;
  if (logFd !== null) writeLog(logFd, `${count} ${op} ${describe(target)}\n`);
  if (count !== at) return;
  if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
  else if (mode === 'enospc') {
    // removing and closing never need space: a full disk does not fail them
    if (/^(unlink|rm|rmdir|chmod|fchmod)(Sync|\()/.test(op) || /filehandle\.chmod/.test(op)) return;
    throw Object.assign(new Error(`ENOSPC: no space left on device, ${op} '${describe(target)}'`), { code: 'ENOSPC', errno: -28, syscall: op });
  } else process.kill(process.pid, mode);
}

/** Does this open() change anything (create, truncate, write)? */
function writes(flags) {
  if (flags === undefined || flags === null) return false;
  if (typeof flags === 'number') return (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC)) !== 0;
  return /[wa+]/.test(String(flags));
}

const MUTATING = [
  'write',
  'writev',
  'writeFile',
  'appendFile',
  'rename',
  'unlink',
  'rm',
  'rmdir',
  'mkdir',
  'mkdtemp',
  'fsync',
  'fdatasync',
  'truncate',
  'ftruncate',
  'copyFile',
  'cp',
  'link',
  'symlink',
  'chmod',
  'fchmod',
];

function wrap(obj, name, op, decide) {
  const orig = obj[name];
  if (typeof orig !== 'function') return;
  obj[name] = function (...args) {
    if (depth === 0 && args[0] !== 1 && args[0] !== 2 && (!decide || decide(args))) {
      try {
        hit(op, args[0]);
      } catch (e) {
        // a callback API reports the failure through its callback, a promise API through its promise
        const cb = args[args.length - 1];
        if (op.endsWith('(cb)') && typeof cb === 'function') {
          process.nextTick(cb, e);
          return undefined;
        }
        if (op.endsWith('(promise)')) return Promise.reject(e);
        throw e;
      }
    }
    depth++;
    try {
      return orig.apply(this, args);
    } finally {
      depth--;
    }
  };
}

const openWrites = (args) => writes(args[1]);

for (const name of MUTATING) {
  wrap(fs, `${name}Sync`, `${name}Sync`);
  wrap(fs, name, `${name}(cb)`);
  wrap(fs.promises, name, `${name}(promise)`);
}
wrap(fs, 'openSync', 'openSync', openWrites);
wrap(fs, 'open', 'open(cb)', openWrites);
wrap(fs.promises, 'open', 'open(promise)', openWrites);

// FileHandle methods live on its prototype
const probe = await fs.promises.open(process.execPath, 'r');
const FileHandle = Object.getPrototypeOf(probe);
await probe.close();
for (const name of ['write', 'writev', 'writeFile', 'appendFile', 'sync', 'datasync', 'truncate', 'chmod']) {
  wrap(FileHandle, name, `filehandle.${name}(promise)`);
}

syncBuiltinESMExports();
