/**
 * Interrupts (SIGINT, SIGTERM, SIGHUP) while boxsig has temporary files on
 * disk: the registered cleanups run, then the signal is raised again with its
 * default action, so the process ends the conventional way (a shell shows
 * 128 + the signal number) and leaves nothing behind.
 *
 * A section that must not stop half-way (moving a box into place, with the
 * trust record that goes with it) runs inside `deferInterrupts`: a signal
 * that arrives meanwhile acts when the section ends; a second one acts at
 * once (the cleanups then roll the section back, as the recovery of a killed
 * process would).
 *
 * The handlers are installed with the first cleanup or deferred section and
 * stay (with nothing to clean up, a signal ends the process as it would
 * without them). A program that embeds the library and listens for the
 * signal itself receives it a second time, after boxsig's cleanup, and decides.
 */
import fs from 'node:fs';

type Cleanup = () => void;

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Sig = (typeof SIGNALS)[number];

const cleanups = new Set<Cleanup>();
let deferred = 0;
let pending: Sig | null = null;
let installed = false;

function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    try {
      fn();
    } catch {
      // best effort: the next command's recovery step removes what is left
    }
  }
  cleanups.clear();
}

function act(sig: Sig): void {
  runCleanups();
  uninstall();
  deferred = 0;
  pending = null;
  // raised again even when other listeners remain: a host that handles the signal gets it once more and
  // decides; one that only ends the process when it is the last listener (signal-exit) now is the last
  process.kill(process.pid, sig);
}

function onSignal(sig: Sig): void {
  if (deferred > 0 && pending === null) {
    pending = sig;
    return;
  }
  act(sig);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Run `cleanup` (synchronously) if the process is interrupted; call the returned function when it is no longer needed. */
export function onInterrupt(cleanup: Cleanup): () => void {
  cleanups.add(cleanup);
  install();
  return () => {
    cleanups.delete(cleanup);
  };
}

/** Remove a temporary file or directory if the process is interrupted. */
export function removeOnInterrupt(p: string): () => void {
  return onInterrupt(() => removeTree(p));
}

/**
 * Remove a file or directory tree, again if an operation that was already
 * under way on the thread pool adds an entry meanwhile (ENOTEMPTY).
 */
export function removeTree(p: string): void {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.rmSync(p, { recursive: true, force: true });
      return;
    } catch (e) {
      if (attempt >= 20 || (e as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw e;
    }
  }
}

/** Run `fn` with interrupts held back until it has finished (see the module comment). */
export async function deferInterrupts<T>(fn: () => Promise<T>): Promise<T> {
  deferred++;
  install();
  try {
    return await fn();
  } finally {
    // a signal that arrived while the section ran synchronously is read by the event loop's next turn
    await nextTurn();
    deferred--;
    if (deferred === 0 && pending !== null) act(pending);
  }
}

/** One turn of the event loop, in which pending signals are delivered to their listeners. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
