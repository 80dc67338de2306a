/**
 * Recording an accepted box in the trust store. The trust decision is taken
 * again under the store lock, against the record as it is now, so that two
 * concurrent adds of the same name cannot both "first-use" different keys;
 * then the record is changed as decided (trust/records.ts) and the box is
 * installed while the lock is held.
 */
import type * as openpgp from 'openpgp';
import { type Verdict } from './judge.js';
import { keyLookups } from '../keys/signers.js';
import { checkVersionRollback, decideTrust, isNewHighest, type Decision } from '../policy/decide.js';
import { formatTime } from '../manifest/manifest.js';
import { recordAcceptedBox } from '../trust/records.js';
import type { TrustStore } from '../trust/store.js';
import type { HistoryEvent, TrustRecord } from '../trust/record-files.js';
import type { KeySource } from '../keys/signers.js';
import type { Cert } from '../keys/cert.js';

export interface CommitInput {
  store: TrustStore;
  verdict: Verdict;
  /** name/version when the box is unsigned (no manifest) */
  identity: { name: string; version: string };
  source?: string;
  now?: Date;
  allowDowngrade?: boolean;
  /** The keyring the box was judged with, when it is more than the store's (keys a registry served). */
  keyring?: KeySource;
  /** Copies of keys to merge into the keyring with the record (a registry's copies of the signers, with their revocations). */
  learn?: Cert[];
  /**
   * Runs while the lock is held, right after the record is written (moving
   * the box into place). If it fails, the record is restored.
   */
  install?: () => Promise<void>;
}

export interface CommitResult {
  decision: Decision | null;
  recorded: HistoryEvent[];
}

export async function commitTrust(input: CommitInput): Promise<CommitResult> {
  const { store, verdict } = input;
  const now = input.now ?? new Date();
  const name = verdict.manifest?.box.name ?? input.identity.name;
  const version = verdict.manifest?.box.version ?? input.identity.version;
  return store.update(
    async (state) => {
      const record = state.boxes.get(name);
      const decision = await decideAgain(input, record, now);
      const recorded = recordAcceptedBox(state, {
        name,
        version,
        time: formatTime(now),
        source: input.source,
        keyChange: decision?.tofu ?? null,
        newHighest: isNewHighest(version, record?.highestVersion),
      });
      // keep the newly trusted keys: later certifications and revocations need their material
      for (const fpr of decision?.tofu?.added ?? []) {
        const k = verdict.checked.find((s) => s.fingerprint === fpr)?.key;
        if (k) await importKeyLocked(store, k);
      }
      // revocations only ever accumulate: what the add learnt about its signers stays
      for (const c of input.learn ?? []) await store.keyring.mergeLocked(c);
      return { decision, recorded };
    },
    { afterWrite: input.install },
  );
}

/** The decision against the record as it is under the lock (for an unsigned box: only rollback). */
async function decideAgain(input: CommitInput, record: TrustRecord | undefined, now: Date): Promise<Decision | null> {
  const { verdict, store } = input;
  if (verdict.signed && verdict.manifest && verdict.policy) {
    return decideTrust({
      manifest: verdict.manifest,
      signers: verdict.checked,
      policy: verdict.policy,
      record,
      storeFile: store.recordFile(verdict.manifest.box.name),
      ...keyLookups({ keyring: input.keyring ?? store.keyring }, verdict.boxKeys),
      now,
      mode: 'add',
      allowDowngrade: input.allowDowngrade,
    });
  }
  const { name, version } = input.identity;
  checkVersionRollback({
    name,
    version,
    highest: record?.highestVersion,
    policy: verdict.policy ?? { rollback: 'enforce' },
    allowDowngrade: input.allowDowngrade,
  });
  return null;
}

/** Add a key to the keyring while the store lock is held. */
async function importKeyLocked(store: TrustStore, key: openpgp.PublicKey): Promise<void> {
  await store.keyring.mergeKeyLocked(key);
}
