/**
 * The log as the registry serves it: signed checkpoints of the current tree,
 * and the inclusion proofs a publish answer carries.
 */
import type { Sql } from '../db/engine.js';
import { signCheckpoint, type NoteSigner } from '../../tlog/note.js';
import { inclusionProof, readHead, type LogHead } from './store.js';

/** Checkpoints of one size are signed once per process. */
const signed = new WeakMap<NoteSigner, { size: number; root: string; note: string }>();

export function checkpointNote(signer: NoteSigner, head: LogHead): string {
  const last = signed.get(signer);
  if (last && last.size === head.size && last.root === head.root.toString('hex')) return last.note;
  const note = signCheckpoint({ origin: signer.name, size: head.size, root: head.root }, signer);
  signed.set(signer, { size: head.size, root: head.root.toString('hex'), note });
  return note;
}

export async function latestCheckpoint(q: Sql, signer: NoteSigner): Promise<string> {
  return checkpointNote(signer, await readHead(q));
}

export interface PublicationProofs {
  /** The signed checkpoint the proofs are for. */
  checkpoint: string;
  entries: Array<{ index: number; data: string; proof: string[] }>;
}

/**
 * The log entries of a version's publications (of one provider, or all) with
 * their inclusion proofs in the current checkpoint: what a publish answer
 * carries (`boxsig_log`, a field Vagrant and Packer ignore). Null: nothing of
 * it is published yet.
 */
export async function publicationProofs(
  q: Sql,
  signer: NoteSigner | null,
  p: { box: string; version: string; provider?: string; architecture?: string },
): Promise<PublicationProofs | null> {
  if (!signer) return null;
  const rows = await q.query<{ log_index: number; provider: string; architecture: string }>(
    'SELECT log_index, provider, architecture FROM publications WHERE box = $1 AND version = $2 AND log_index IS NOT NULL ORDER BY log_index',
    [p.box, p.version],
  );
  const mine = rows.filter(
    (r) => (p.provider === undefined || r.provider === p.provider) && (p.architecture === undefined || r.architecture === p.architecture),
  );
  if (!mine.length) return null;
  const head = await readHead(q);
  const entries = [];
  for (const r of mine) {
    const index = Number(r.log_index);
    const data = (await q.one<{ data: string }>('SELECT data FROM log_entries WHERE idx = $1', [index]))!.data;
    entries.push({ index, data, proof: (await inclusionProof(q, index, head.size)).map((h) => h.toString('base64')) });
  }
  return { checkpoint: checkpointNote(signer, head), entries };
}
