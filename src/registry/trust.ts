/**
 * The trust an upload is judged by: the org's policy (a boxsig.json
 * document, given to `registry org create --policy`), the public keys and
 * revocations the org registered, and the keys the registry trusted on first
 * use for the box — presented to boxsig's own judge as a trust store, so
 * that uploads get exactly the rules and codes of `boxsig add`.
 */
import { BoxsigError } from '../errors.js';
import { readKeyData } from '../keys/keys.js';
import { memoryKeySource } from '../keys/signers.js';
import { parseUntrustedJson } from '../manifest/json.js';
import { validateConfig, type ConfigDoc, type ConfigLayer } from '../policy/config.js';
import { decideTrust, type Decision } from '../policy/decide.js';
import { keyLookups, type TrustView, type Verdict } from '../box/judge.js';
import type { TrustRecord, TrustState } from '../trust/store.js';
import { nowText, type Sql } from './db/engine.js';
import { lowerCaseGlobProblem } from './names.js';

export const MAX_POLICY_BYTES = 1024 * 1024;

/** Validate a policy document (the boxsig.json format) given by an admin. */
export function parsePolicy(bytes: Uint8Array | string, source: string): ConfigDoc {
  let raw: unknown;
  try {
    raw = parseUntrustedJson(bytes, source, MAX_POLICY_BYTES);
  } catch (e) {
    throw new BoxsigError('CONFIG', `${source}: ${(e as Error).message}`);
  }
  const doc = validateConfig(raw, source);
  for (const glob of [...doc.boxes.keys(), ...doc.orgs.keys()]) {
    const problem = lowerCaseGlobProblem(glob);
    if (problem) throw new BoxsigError('CONFIG', `${source}: ${problem}`);
  }
  return doc;
}

export function policySource(org: string): string {
  return `the registry policy of org ${org}`;
}

export function policyLayers(org: { name: string; policy: string }): ConfigLayer[] {
  const source = policySource(org.name);
  return [{ source, doc: parsePolicy(org.policy, source) }];
}

interface SignerRow {
  fingerprint: string;
  first_seen: string;
  version: string;
}

/** The org's keys, revocations and the box's first-use record, loaded once per upload. */
export async function orgTrustView(q: Sql, orgId: string, orgName: string, boxId: string, fullName: string): Promise<TrustView> {
  const keyRows = await q.query<{ fingerprint: string; armored: string }>('SELECT fingerprint, armored FROM org_keys WHERE org_id = $1', [orgId]);
  const revRows = await q.query<{ armored: string }>('SELECT armored FROM revocations WHERE org_id = $1 ORDER BY sha256', [orgId]);
  const record = recordOf(await q.query<SignerRow>('SELECT fingerprint, first_seen, version FROM box_signers WHERE box_id = $1', [boxId]));
  const certs = [];
  for (const r of keyRows) certs.push(...(await readKeyData(Buffer.from(r.armored), `key ${r.fingerprint} of org ${orgName}`)).certs);
  const revocations = [];
  for (const r of revRows) revocations.push(...(await readKeyData(Buffer.from(r.armored), `a revocation registered by org ${orgName}`)).bare);
  return {
    file: `the registry's first-use record of ${fullName}`,
    read(): TrustState {
      const boxes = new Map<string, TrustRecord>();
      if (record) boxes.set(fullName, record);
      return { format: 1, pins: new Map(), boxes };
    },
    keyring: memoryKeySource(certs, revocations),
  };
}

function recordOf(rows: SignerRow[]): TrustRecord | undefined {
  if (!rows.length) return undefined;
  const first = rows.map((r) => r.first_seen).sort()[0];
  return { keys: rows.map((r) => r.fingerprint).sort(), firstSeen: first, updated: first, history: [] };
}

/**
 * At commit, under the transaction: decide trust again against the
 * first-use record as it is now (two concurrent first uploads of a box
 * signed by different keys cannot both be trusted), and record what trust on
 * first use added.
 */
export async function commitSigners(q: Sql, view: TrustView, verdict: Verdict, boxId: string, now: Date): Promise<Decision | null> {
  if (!verdict.signed || !verdict.manifest || !verdict.policy || !verdict.decision) return null;
  const current = recordOf(await q.query<SignerRow>('SELECT fingerprint, first_seen, version FROM box_signers WHERE box_id = $1', [boxId]));
  const decision = await decideTrust({
    manifest: verdict.manifest,
    signers: verdict.checked,
    policy: verdict.policy,
    record: current,
    storeFile: view.file,
    ...keyLookups(view, verdict.boxKeys),
    now,
    mode: 'add',
  });
  for (const fpr of decision.tofu?.added ?? []) {
    await q.run('INSERT INTO box_signers (box_id, fingerprint, first_seen, version) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
      boxId,
      fpr,
      nowText(now),
      verdict.manifest.box.version,
    ]);
  }
  return decision;
}
