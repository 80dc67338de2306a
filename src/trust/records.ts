/**
 * Changes to the record of a box name in the trust store, as pure functions
 * over the state read under the lock: the decision is made elsewhere (the
 * trust policy); this only writes down what was decided.
 */
import type { HistoryEvent, TrustRecord, TrustState } from './store.js';

/** History kept per name (oldest events are dropped first). */
export const MAX_HISTORY = 50;

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

export function pushHistory(history: HistoryEvent[], e: HistoryEvent): void {
  history.push(e);
  if (history.length > MAX_HISTORY) history.splice(0, history.length - MAX_HISTORY);
}

function newRecord(time: string, source?: string): TrustRecord {
  return { keys: [], firstSeen: time, updated: time, history: [], ...(source ? { source } : {}) };
}

/** Record an accepted box: its new keys, its version. Returns the key events recorded. */
export function recordAcceptedBox(state: TrustState, box: AcceptedBox): HistoryEvent[] {
  const rec = state.boxes[box.name] ?? newRecord(box.time, box.source);
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
  state.boxes[box.name] = rec;
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
