/**
 * Recording an accepted box in the trust store: TOFU keys (first use,
 * rotation), the highest accepted version, the source. Runs under the store
 * lock and re-decides trust against the current record, so that two
 * concurrent adds of the same name cannot both "first-use" different keys.
 */
import type * as openpgp from 'openpgp';
import { keyLookups, type Verdict } from '../box/judge.js';
import { decideTrust, type Decision, type Signer } from '../policy/decide.js';
import { compareVersions } from '../policy/version.js';
import { formatTime } from '../manifest/manifest.js';
import type { TrustState, TrustStore, HistoryEvent } from './store.js';

const MAX_HISTORY = 50;

export interface CommitInput {
  store: TrustStore;
  verdict: Verdict;
  /** name/version when the box is unsigned (no manifest) */
  identity: { name: string; version: string };
  source?: string;
  now?: Date;
  allowDowngrade?: boolean;
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

function push(history: HistoryEvent[], e: HistoryEvent): void {
  history.push(e);
  if (history.length > MAX_HISTORY) history.splice(0, history.length - MAX_HISTORY);
}

export async function commitTrust(input: CommitInput): Promise<CommitResult> {
  const { store, verdict } = input;
  const now = input.now ?? new Date();
  const time = formatTime(now);
  return store.update(
    async (state: TrustState) => {
      const name = verdict.manifest?.box.name ?? input.identity.name;
      const version = verdict.manifest?.box.version ?? input.identity.version;
      let decision: Decision | null = null;
      const recorded: HistoryEvent[] = [];
      if (verdict.signed && verdict.manifest && verdict.policy) {
        // re-decide against the record as it is now, under the lock
        const signers: Signer[] = verdict.signers.map((s) => ({
          fingerprint: s.fingerprint,
          signingKey: s.signingKey,
          userIds: s.userIds,
          algorithm: s.algorithm,
          created: s.created,
          valid: s.valid,
          code: s.code as Signer['code'],
          reason: s.reason,
          warnings: [],
          key: verdict.signerKeys.get(s.fingerprint) ?? null,
        }));
        decision = await decideTrust({
          manifest: verdict.manifest,
          signers,
          policy: verdict.policy,
          record: state.boxes[name],
          storeFile: store.file,
          ...keyLookups(store, verdict.signerKeys),
          now,
          mode: 'add',
          allowDowngrade: input.allowDowngrade,
        });
      } else if (verdict.policy?.rollback !== 'warn' && !input.allowDowngrade) {
        const highest = state.boxes[name]?.highestVersion;
        if (highest && compareVersions(version, highest) < 0) {
          const { refuse } = await import('../errors.js');
          throw refuse(
            'ROLLBACK',
            `${name} ${version} is older than ${highest}, the highest version already accepted; add it deliberately with --allow-downgrade`,
          );
        }
      }
      const rec = state.boxes[name] ?? { keys: [], firstSeen: time, updated: time, history: [] };
      if (!state.boxes[name] && input.source) rec.source = input.source;
      if (decision?.tofu) {
        const t = decision.tofu;
        rec.keys = [...new Set(t.keys)];
        const ev: HistoryEvent = {
          time,
          event: t.kind === 'first-use' ? 'first-use' : 'rotation',
          keys: t.added,
          version,
          ...(input.source ? { source: input.source } : {}),
          ...(t.kind === 'certified' ? { note: 'new key certified by a recorded key' } : t.kind === 'rotation' ? { note: 'co-signed by a recorded key' } : {}),
        };
        push(rec.history, ev);
        recorded.push(ev);
        // keep the trusted keys: later certifications and revocations need their material
        for (const fpr of t.added) {
          const k = verdict.signerKeys.get(fpr);
          if (k) await importKeyLocked(store, k);
        }
      }
      if (!rec.highestVersion || compareVersions(version, rec.highestVersion) > 0) {
        rec.highestVersion = version;
        if (!recorded.length) push(rec.history, { time, event: 'version', version });
      }
      rec.updated = time;
      state.boxes[name] = rec;
      return { decision, recorded };
    },
    { afterWrite: input.install },
  );
}

/** Add a key to the keyring while the store lock is held (merged with the stored copy: nothing is dropped). */
export async function importKeyLocked(store: TrustStore, key: openpgp.PublicKey): Promise<void> {
  await store.keyring.mergeKeyLocked(key);
}
