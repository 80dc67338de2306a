/**
 * Keeping peak memory flat. A pass over a box allocates a fresh buffer for
 * every chunk read and inflated; V8 only collects that garbage once several
 * tens of MiB of external memory have piled up, which alone would take the
 * process close to the 150 MiB budget. A young-generation collection (well
 * under a millisecond) every few MiB keeps the garbage small.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Gc = (opts?: { type?: 'minor' | 'major' }) => void;

let gc: Gc | null | undefined;

function getGc(): Gc | null {
  if (gc !== undefined) return gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as Gc;
  } catch {
    gc = null;
  }
  return gc;
}

const EVERY = 8 * 1024 * 1024;

export class MemoryGuard {
  private since = 0;

  /** Account for `bytes` of freshly allocated chunk data. */
  note(bytes: number): void {
    this.since += bytes;
    if (this.since >= EVERY) {
      this.since = 0;
      getGc()?.({ type: 'minor' });
    }
  }
}
