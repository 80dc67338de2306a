/**
 * The `boxsig trust` commands as library calls: list, pin, forget, accept.
 * Each change is made under the store lock, and each result is built from
 * what was written under that lock (never from a second, unlocked read).
 */
import { usage } from '../errors.js';
import { formatTime } from '../manifest/manifest.js';
import { nameProblem } from '../manifest/names.js';
import { globProblem } from '../shared/glob.js';
import { acceptKey, forgetKey, forgetName, pinKey, type Forgotten } from './records.js';
import type { TrustStore } from './store.js';
import type { RetiredKey, TrustRecord } from './record-files.js';

export interface TrustListing {
  store: string;
  /** glob -> pinned fingerprints, sorted by glob */
  pins: Array<[string, string[]]>;
  /** name -> record, sorted by name */
  boxes: Array<[string, TrustRecord]>;
}

export function listTrust(store: TrustStore): TrustListing {
  const state = store.read();
  const byKey = <V>(m: Iterable<[string, V]>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { store: store.file, pins: byKey(state.pins), boxes: byKey(state.boxes) };
}

function checkName(name: string): void {
  const p = nameProblem(name);
  if (p) throw usage(`box name ${JSON.stringify(name)} ${p}`);
}

/** `boxsig trust pin NAME|GLOB FPR`: the pins of the glob, as written. */
export async function pinTrust(store: TrustStore, glob: string, fpr: string): Promise<{ name: string; pins: string[] }> {
  const g = globProblem(glob);
  if (g) throw usage(`${JSON.stringify(glob)} ${g}`);
  const pins = await store.update((s) => pinKey(s, glob, fpr));
  return { name: glob, pins };
}

export interface ForgetResult extends Forgotten {
  name: string;
  key: string | null;
  /** Anything removed at all. */
  removed: boolean;
  /** What happens to the next box of the name, when that changed (null: nothing to say). */
  next: string | null;
}

/** `boxsig trust forget NAME [--key FPR]`. */
export async function forgetTrust(store: TrustStore, name: string, fpr?: string): Promise<ForgetResult> {
  const f = await store.update((s) => (fpr ? forgetKey(s, name, fpr, formatTime(new Date())) : forgetName(s, name)));
  const removed = f.record || f.pins;
  return { name, key: fpr ?? null, ...f, removed, next: removed ? nextAfterForget(name, fpr, f) : null };
}

function nextAfterForget(name: string, fpr: string | undefined, f: Forgotten): string | null {
  if (!fpr) {
    return f.record ? `${name} is unknown now: its next box is trusted on first use (as if never seen) and any version is accepted` : null;
  }
  if (f.keysLeft && f.keysLeft.length === 0) {
    return [
      `${name} has no trusted key any more. Its record stays (first use is not repeated), so its next box is refused`,
      `until you trust a key for it after checking it: boxsig trust accept ${name} FPR  (or: boxsig trust pin ${name} FPR).`,
      `To start over as if ${name} had never been seen: boxsig trust forget ${name}`,
    ].join('\n');
  }
  return f.keysLeft ? `${name} is still trusted with ${f.keysLeft.join(', ')}` : null;
}

export interface AcceptResult {
  name: string;
  keys: string[];
  /** Keys this accept replaced: their earlier boxes stay valid unless distrusted. */
  replaced: RetiredKey[];
  distrusted: boolean;
}

/**
 * `boxsig trust accept NAME FPR [--keep] [--distrust-old]`: after a
 * KEY_CHANGED refusal, trust the new key for the name. The keys it replaces
 * are retired (boxes they signed before stay valid, later signatures do not
 * count); with distrustOld, none of their signatures count.
 */
export async function acceptTrust(store: TrustStore, name: string, fpr: string, opts: { keep?: boolean; distrustOld?: boolean } = {}): Promise<AcceptResult> {
  checkName(name);
  if (opts.keep && opts.distrustOld) throw usage('--keep keeps the recorded keys; --distrust-old distrusts them: give one or the other');
  const time = formatTime(new Date());
  const a = await store.update((s) => acceptKey(s, name, fpr, { time, keep: opts.keep, distrustOld: opts.distrustOld }));
  return { name, ...a, distrusted: Boolean(opts.distrustOld && a.replaced.length) };
}
