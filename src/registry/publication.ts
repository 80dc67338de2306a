/**
 * A box is judged when it is published, not only when it was uploaded.
 * Between an upload and its release (unbounded: a thief need not release at
 * once), or during a long upload to a released version, the org may revoke
 * the signer's key, change its policy (another pin, a higher threshold, a
 * required claim, signatures required), or the manifest may expire. So the
 * act that makes a box downloadable — a release, or the commit of an upload
 * to a released version — judges the stored box's `.boxsig/` again, inside
 * its transaction, against the org's keys, revocations, policy and
 * first-use record as they are then. The object is immutable and content
 * addressed; only its `.boxsig/` prefix is read (bounded by the reader's
 * prefix limit), never the disk image.
 */
import type { Readable } from 'node:stream';
import { BoxsigError, toBoxsigError } from '../errors.js';
import { readBox, type BoxsigPrefix } from '../box/reader.js';
import { judge, type TrustView, type Verdict } from '../box/judge.js';
import type { BlobStore } from './blobs/store.js';
import type { Sql } from './db/engine.js';
import { orgTrustView, policyLayers } from './trust.js';

/** What is being published: the org as it is now (its policy), the box, and the provider's identity. */
export interface Publication {
  org: { id: string; name: string; policy: string };
  box: { id: string; name: string };
  version: string;
  provider: string;
  architecture: string;
  /** The stored object of the box. */
  objectKey: string;
}

const STOP = Symbol('prefix read');

/** The `.boxsig/` prefix of a stored box (an empty prefix for an unsigned one). */
async function readStoredPrefix(blobs: BlobStore, objectKey: string): Promise<BoxsigPrefix> {
  const { stream } = await blobs.read(objectKey, 0);
  let prefix: BoxsigPrefix | null = null;
  try {
    await readBox(stream as Readable, {
      onPrefix: async (p) => {
        prefix = p;
        throw STOP;
      },
    });
  } catch (e) {
    if (e !== STOP) throw e;
  } finally {
    stream.destroy();
  }
  if (!prefix) throw new BoxsigError('INTERNAL', `internal error: the stored box ${objectKey} has no readable beginning`);
  return prefix;
}

/**
 * Judge a publication now, in the caller's transaction. Refusals keep their
 * code (KEY_REVOKED, UNTRUSTED_KEY, THRESHOLD_NOT_MET, CLAIM_MISMATCH,
 * EXPIRED, UNSIGNED …) and name the provider; `mapError` lets the upload
 * path phrase KEY_CHANGED for the registry.
 */
export async function judgeAtPublication(
  q: Sql,
  blobs: BlobStore,
  p: Publication,
  now: Date,
  mapError: (e: unknown) => unknown = (e) => e,
): Promise<{ verdict: Verdict; view: TrustView }> {
  const fullName = `${p.org.name}/${p.box.name}`;
  const prefix = await readStoredPrefix(blobs, p.objectKey);
  const view = await orgTrustView(q, p.org.id, p.org.name, p.box.id, fullName);
  const layers = policyLayers({ name: p.org.name, policy: p.org.policy });
  try {
    const verdict = await judge(
      prefix,
      { name: fullName, version: p.version, provider: p.provider, architecture: p.architecture },
      { store: view, layers, mode: 'add', now },
    );
    return { verdict, view };
  } catch (e) {
    const err = toBoxsigError(mapError(e));
    if (!err.refused) throw err;
    const what = `${fullName} ${p.version} ${p.provider}${p.architecture === 'unknown' ? '' : ` (${p.architecture})`}`;
    throw new BoxsigError(err.code, `${what} cannot be published now: ${err.message}`, err.details, err.hint);
  }
}

/**
 * A revoked token publishes nothing: a box it uploaded, not yet published,
 * is refused when it would be (the upload's own commit checks its token in
 * the same transaction: `tokenStillValid`).
 */
export async function checkUploaderNotRevoked(q: Sql, providerId: string, label: string): Promise<void> {
  const row = await q.one<{ revoked_at: string | null }>(
    `SELECT t.revoked_at FROM uploads u JOIN tokens t ON t.id = u.token_id
      WHERE u.provider_id = $1 AND u.state = 'published' ORDER BY u.updated_at DESC LIMIT 1`,
    [providerId],
  );
  if (row?.revoked_at) {
    throw new BoxsigError('DENIED', `${label} was uploaded with a token that has since been revoked: upload it again with a valid token, or delete it`, {
      status: 403,
    });
  }
}

/** At the commit of an upload: the token that asked for the upload URL is still valid (not revoked, not expired). */
export async function tokenStillValid(q: Sql, tokenId: string, now: string): Promise<void> {
  const row = await q.one<{ revoked_at: string | null; expires_at: string | null }>('SELECT revoked_at, expires_at FROM tokens WHERE id = $1', [tokenId]);
  if (!row || row.revoked_at || (row.expires_at && row.expires_at <= now)) {
    const why = !row || row.revoked_at ? 'was revoked' : 'expired';
    throw new BoxsigError('DENIED', `the token that asked for this upload URL ${why} during the upload: nothing was published`, { status: 403 });
  }
}
