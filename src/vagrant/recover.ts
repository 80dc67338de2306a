/**
 * The one recovery step that runs at the start of every command that changes
 * state (add, repackage, trust pin|accept|forget, key import|revoke,
 * verify --dir --record): it settles what processes that no longer exist left
 * half-done — staging directories of adds (an unfinished replace puts the
 * parked box back; a finished one deletes it), and, through the trust store's
 * own `recover()` when it has one, the store's temporary and lock files.
 * It never touches the work of a live process.
 */
import type { TrustStore } from '../trust/store.js';
import { vagrantHome } from './home.js';
import { recoverVagrantHome, type RecoveryAction } from './staging.js';

export function recoverAfterCrash(opts: { vagrantHome?: string; store?: TrustStore } = {}): RecoveryAction[] {
  const actions = recoverVagrantHome(vagrantHome(opts.vagrantHome));
  // the trust store's debris belongs to the store: it recovers itself when it knows how
  const store = opts.store as unknown as { recover?: () => unknown } | undefined;
  if (typeof store?.recover === 'function') store.recover();
  return actions;
}
