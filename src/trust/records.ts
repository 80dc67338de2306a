/**
 * Changes to the trust store's records, as pure functions over the state
 * read under the lock. The decisions are made elsewhere (the trust policy,
 * or the user's command); these only write down what was decided, each in
 * one place: history is capped everywhere, names are Map keys.
 */
import type { TrustState } from './store.js';
import type { HistoryEvent, RetiredKey, TrustRecord } from './record-files.js';

/** History kept per name (oldest events are dropped first). */
export const MAX_HISTORY = 50;
/** Replaced keys kept per name (the oldest is forgotten first). */
const MAX_RETIRED = 32;

/** Keys trust on first use adds to the record of a name. */
export interface KeyChange {
  kind: 'first-use' | 'rotation' | 'certified';
  /** Keys the record holds afterwards. */
  keys: string[];
  /** Keys this box adds. */
  added: string[];
}

/** A box that was accepted (and is being installed or recorded). */
export interface AcceptedBox {
  name: string;
  version: string;
  time: string;
  source?: string;
  keyChange: KeyChange | null;
  /** The version is higher than any accepted before. */
  newHighest: boolean;
}

function pushHistory(history: HistoryEvent[], e: HistoryEvent): void {
  history.push(e);
  if (history.length > MAX_HISTORY) history.splice(0, history.length - MAX_HISTORY);
}

function recordOf(state: TrustState, name: string, time: string, source?: string): TrustRecord {
  const existing = state.boxes.get(name);
  if (existing) return existing;
  const rec: TrustRecord = { keys: [], firstSeen: time, updated: time, history: [], ...(source ? { source } : {}) };
  state.boxes.set(name, rec);
  return rec;
}

/** Record an accepted box: its new keys, its version. Returns the key events recorded. */
export function recordAcceptedBox(state: TrustState, box: AcceptedBox): HistoryEvent[] {
  const rec = recordOf(state, box.name, box.time, box.source);
  const recorded: HistoryEvent[] = [];
  if (box.keyChange) {
    const e = keyEvent(box);
    rec.keys = [...new Set(box.keyChange.keys)];
    pushHistory(rec.history, e);
    recorded.push(e);
  }
  if (box.newHighest) {
    rec.highestVersion = box.version;
    if (!recorded.length) pushHistory(rec.history, { time: box.time, event: 'version', version: box.version });
  }
  rec.updated = box.time;
  return recorded;
}

function keyEvent(box: AcceptedBox): HistoryEvent {
  const c = box.keyChange!;
  const note = c.kind === 'certified' ? 'new key certified by a recorded key' : c.kind === 'rotation' ? 'co-signed by a recorded key' : undefined;
  return {
    time: box.time,
    event: c.kind === 'first-use' ? 'first-use' : 'rotation',
    keys: c.added,
    version: box.version,
    ...(box.source ? { source: box.source } : {}),
    ...(note ? { note } : {}),
  };
}

/** `boxsig trust pin GLOB FPR`: the pins of the glob afterwards. */
export function pinKey(state: TrustState, glob: string, fpr: string): string[] {
  const list = [...new Set([...(state.pins.get(glob) ?? []), fpr])];
  state.pins.set(glob, list);
  return list;
}

export interface Forgotten {
  /** The record of the name (keys, history, highest version) was removed. */
  record: boolean;
  /** Pins of the name were removed. */
  pins: boolean;
  /** With a key: the keys the record still holds (null: no record). */
  keysLeft: string[] | null;
}

/** `boxsig trust forget NAME`: the record and the pins of the name. */
export function forgetName(state: TrustState, name: string): Forgotten {
  return { record: state.boxes.delete(name), pins: state.pins.delete(name), keysLeft: null };
}

/**
 * `boxsig trust forget NAME --key FPR`: one key, from the record (current or
 * replaced) and from the pins. The record itself stays, so the name is not
 * trusted on first use again, even when no key is left.
 */
export function forgetKey(state: TrustState, name: string, fpr: string, time: string): Forgotten {
  const rec = state.boxes.get(name);
  let record = false;
  if (rec && (rec.keys.includes(fpr) || rec.retired?.some((r) => r.key === fpr))) {
    rec.keys = rec.keys.filter((k) => k !== fpr);
    setRetired(
      rec,
      (rec.retired ?? []).filter((r) => r.key !== fpr),
    );
    rec.updated = time;
    pushHistory(rec.history, { time, event: 'forgot-key', keys: [fpr] });
    record = true;
  }
  const pinned = state.pins.get(name) ?? [];
  if (pinned.includes(fpr)) {
    const left = pinned.filter((k) => k !== fpr);
    if (left.length) state.pins.set(name, left);
    else state.pins.delete(name);
  }
  return { record, pins: pinned.includes(fpr), keysLeft: rec ? [...rec.keys] : null };
}

export interface Accepted {
  keys: string[];
  /** Keys this accept replaced (their earlier signatures stay valid unless distrusted). */
  replaced: RetiredKey[];
}

/**
 * `boxsig trust accept NAME FPR`: the new key is trusted for the name from
 * now on. Without `keep`, the keys it replaces are retired: boxes they signed
 * before stay valid, later signatures by them do not count; with
 * `distrustOld`, none of their signatures count any more.
 */
export function acceptKey(state: TrustState, name: string, fpr: string, o: { time: string; keep?: boolean; distrustOld?: boolean }): Accepted {
  const rec = recordOf(state, name, o.time);
  const replaced: RetiredKey[] = o.keep
    ? []
    : rec.keys
        .filter((k) => k !== fpr)
        .map((key) => ({
          key,
          since: o.time,
          ...(rec.highestVersion ? { upTo: rec.highestVersion } : {}),
          ...(o.distrustOld ? { distrusted: true as const } : {}),
        }));
  rec.keys = o.keep ? [...new Set([...rec.keys, fpr])] : [fpr];
  const others = (rec.retired ?? []).filter((r) => r.key !== fpr && !replaced.some((n) => n.key === r.key));
  setRetired(rec, [...others, ...replaced]);
  rec.updated = o.time;
  const note = replaced.length ? `replaces ${replaced.map((r) => r.key).join(', ')}${o.distrustOld ? ' (distrusted)' : ''}` : undefined;
  pushHistory(rec.history, { time: o.time, event: 'accepted-key', keys: [fpr], ...(note ? { note } : {}) });
  return { keys: [...rec.keys], replaced };
}

function setRetired(rec: TrustRecord, list: RetiredKey[]): void {
  if (list.length > MAX_RETIRED) list = list.slice(list.length - MAX_RETIRED);
  if (list.length) rec.retired = list;
  else delete rec.retired;
}
