/**
 * Receiving an upload: one streaming pass in which every byte goes to the
 * object store and through boxsig's verifier at once (readBox and judge, the
 * code of `boxsig add`), then one transaction that publishes the provider —
 * or nothing.
 *
 * 1. Claim the upload session (a transaction): still valid, its token still
 *    valid, the provider not published, the token under its limit of uploads
 *    in flight; record a fresh object key and this process's lease.
 * 2. Stream: raw bytes → SHA-256 (the blob's address) + the declared checksum
 *    + the object-store writer, and the same bytes → gunzip → tar → the
 *    `.boxsig/` prefix judged against the org's policy (identity against the
 *    API path first: cheap) → every file against the signed manifest.
 * 3. After the pass: the declared checksum, metadata.json, the architecture.
 *    Then the `afterValidation` hook (issue 15: escrow signing writes
 *    `.boxsig/` here), then the object is completed.
 * 4. Commit (a transaction): the session still ours, the provider still not
 *    published, trust on first use decided again against the record as it is
 *    now; the blob row, the provider, the publication event, the audit line.
 *
 * Any refusal or failure aborts the object and marks the session refused or
 * failed: no blob, nothing downloadable. A process killed at any point leaves
 * at most an object and a session whose lease runs out; garbage collection
 * removes both (gc.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BoxsigError, refuse, toBoxsigError } from '../errors.js';
import { readBox, type BoxsigPrefix, type ReadResult } from '../box/reader.js';
import { checkMetadataAgrees, judge, readMetadata, type ExpectedIdentity, type TrustView, type Verdict } from '../box/judge.js';
import { parseManifest } from '../manifest/manifest.js';
import type { ConfigLayer } from '../policy/config.js';
import { limitedBody, type LimitedBody } from './body.js';
import { hashToken } from './auth.js';
import { nowText, type Sql } from './db/engine.js';
import { newObjectKey, type BlobWriter } from './blobs/store.js';
import { audit } from './rows.js';
import { logPublication } from './log/events.js';
import { commitSigners, orgTrustView, policyLayers } from './trust.js';
import { judgeAtPublication, tokenStillValid } from './publication.js';
import type { Registry } from './registry.js';
import { UNKNOWN_ARCHITECTURE, type Role } from './names.js';
import type { Principal } from './auth.js';

/** What the session row joins to. */
export interface UploadTarget {
  id: string;
  token_id: string;
  direct: number;
  state: string;
  owner: string | null;
  heartbeat_at: string | null;
  expires_at: string;
  provider_id: string;
  provider: string;
  architecture: string;
  blob_sha256: string | null;
  declared_checksum: string | null;
  declared_checksum_type: string | null;
  version_id: string;
  version: string;
  version_status: string;
  box_id: string;
  box: string;
  signing: string;
  org_id: string;
  org: string;
  policy: string;
  token_revoked: string | null;
  token_expires: string | null;
  token_role: Role;
  token_member: string;
}

/** A validated upload, before its object is completed and published. */
export interface ValidatedUpload {
  target: UploadTarget;
  verdict: Verdict | null;
  sha256: string;
  size: number;
  manifestSha256: string | null;
  writer: BlobWriter;
  /** What the single pass read: the files with their hashes, the `.boxsig/` prefix, where it ends. */
  read: ReadResult;
}

/**
 * A step after validation and before publication. Issue 15's escrow signing
 * plugs in here: it may replace the writer's object by one with `.boxsig/`
 * in front (and return the new hash and size).
 */
export type AfterValidation = (u: ValidatedUpload) => Promise<ValidatedUpload>;

/** The object key an upload is being written to, as recorded in its session (renewed by the lease). */
export interface Lease {
  key: string;
}

/**
 * What an extension adds to one upload (issue 15: escrow signing), decided
 * when the upload starts (`UploadExtension.begin`, in the transaction that
 * loads the org's trust):
 * - `layers`: policy layers after the org's (an escrow box takes unsigned uploads);
 * - `onPrefix`: a cheap check of the `.boxsig/` prefix before any signature is verified;
 * - `onVerdict`: a check of the judged prefix, before any file byte;
 * - `afterValidation`: may replace the object (a new key: set `lease.key`
 *   and the session's object_key first, so that garbage collection never
 *   takes the new object while it is written);
 * - `onCommit`: writes in the publishing transaction.
 */
export interface UploadStep {
  layers?: ConfigLayer[];
  onPrefix?(prefix: BoxsigPrefix): Promise<void> | void;
  onVerdict?(prefix: BoxsigPrefix, verdict: Verdict): Promise<void> | void;
  afterValidation?(u: ValidatedUpload, lease: Lease): Promise<ValidatedUpload>;
  onCommit?(q: Sql, u: ValidatedUpload, now: Date): Promise<void>;
}

export interface UploadExtension {
  begin(q: Sql, t: UploadTarget): Promise<UploadStep | null>;
}

export type UploadOutcome =
  | {
      state: 'published';
      direct: boolean;
      target: UploadTarget;
      sha256: string;
      size: number;
      /** what was received, when the stored box differs (escrow signing prepends .boxsig/) */
      received: { sha256: string; size: number };
      warnings: string[];
    }
  | { state: 'refused'; direct: boolean; error: BoxsigError };

export async function findSession(q: Sql, secret: string): Promise<UploadTarget | null> {
  return q.one<UploadTarget>(
    `SELECT u.id, u.token_id, u.direct, u.state, u.owner, u.heartbeat_at, u.expires_at,
            p.id AS provider_id, p.name AS provider, p.architecture, p.blob_sha256, p.declared_checksum, p.declared_checksum_type,
            v.id AS version_id, v.version, v.status AS version_status,
            b.id AS box_id, b.name AS box, b.signing, o.id AS org_id, o.name AS org, o.policy,
            t.revoked_at AS token_revoked, t.expires_at AS token_expires, t.role AS token_role, t.member AS token_member
       FROM uploads u
       JOIN providers p ON p.id = u.provider_id
       JOIN versions v ON v.id = p.version_id
       JOIN boxes b ON b.id = v.box_id
       JOIN orgs o ON o.id = b.org_id
       JOIN tokens t ON t.id = u.token_id
      WHERE u.secret_hash = $1`,
    [hashToken(secret)],
  );
}

/** The token that asked for the upload URL: the actor of what the upload writes. */
const uploader = (t: UploadTarget): Principal => ({
  kind: 'token',
  tokenId: t.token_id,
  orgId: t.org_id,
  org: t.org,
  role: t.token_role,
  member: t.token_member,
});
const fullName = (t: UploadTarget) => `${t.org}/${t.box}`;
const label = (t: UploadTarget) => `${fullName(t)} ${t.version} ${t.provider}${t.architecture === UNKNOWN_ARCHITECTURE ? '' : ` (${t.architecture})`}`;

/** Step 1: claim the session for this process. */
async function claim(reg: Registry, secret: string): Promise<{ target: UploadTarget; key: string }> {
  const now = nowText();
  const key = newObjectKey();
  const leaseCutoff = nowText(new Date(Date.now() - reg.config.leaseSeconds * 1000));
  return reg.db.tx(async (q) => {
    const first = await findSession(q, secret);
    // one claim at a time per token (the limit holds across processes), and what follows is read after the lock
    if (first) await reg.db.lock(q, 'tokens', first.token_id);
    const t = first && (await findSession(q, secret));
    if (!t || t.state === 'expired' || t.expires_at <= now) throw new BoxsigError('NOT_FOUND', 'this upload URL is unknown or has expired; ask for a new one');
    if (t.token_revoked || (t.token_expires && t.token_expires <= now) || t.token_role === 'read') {
      throw new BoxsigError('DENIED', 'the token that asked for this upload URL is no longer valid', { status: 403 });
    }
    if (t.state === 'published') throw new BoxsigError('EXISTS', `this upload URL was already used to publish ${label(t)}; ask for a new one`);
    if (t.state === 'receiving' && t.heartbeat_at && t.heartbeat_at > leaseCutoff) {
      throw new BoxsigError('EXISTS', `an upload to this URL is already in progress (${label(t)})`);
    }
    if (t.version_status === 'deleted') throw new BoxsigError('NOT_FOUND', `${fullName(t)} ${t.version} was deleted`);
    if (t.version_status === 'active' && t.blob_sha256) throw immutable(t);
    const inFlight = await q.one<{ n: number }>(
      `SELECT COUNT(*) AS n FROM uploads WHERE token_id = $1 AND state = 'receiving' AND heartbeat_at > $2 AND id <> $3`,
      [t.token_id, leaseCutoff, t.id],
    );
    if (Number(inFlight?.n ?? 0) >= reg.config.uploadsPerToken) {
      throw new BoxsigError('LIMIT', `this token already has ${reg.config.uploadsPerToken} uploads in flight; wait for one to finish`, { status: 429 });
    }
    const claimed = await q.run(
      `UPDATE uploads SET state = 'receiving', object_key = $2, owner = $3, heartbeat_at = $4, code = NULL, message = NULL, updated_at = $4 WHERE id = $1`,
      [t.id, key, reg.instance, now],
    );
    // garbage collection deleted the (ended) session meanwhile
    if (!claimed) throw new BoxsigError('NOT_FOUND', 'this upload URL is unknown or has expired; ask for a new one');
    return { target: { ...t, state: 'receiving' }, key };
  });
}

export function immutable(t: { org: string; box: string; version: string; provider: string }): BoxsigError {
  return new BoxsigError(
    'EXISTS',
    `${t.org}/${t.box} ${t.version} is released and its ${t.provider} box is published: released boxes are immutable; publish a new version`,
    { status: 409 },
  );
}

/**
 * Check the signed identity against the API path before any signature is
 * verified (cheap first). judge() checks it again, after the signatures.
 */
function precheckIdentity(prefix: BoxsigPrefix, expect: Required<Omit<ExpectedIdentity, 'architecture'>>): void {
  if (!prefix.manifest) return;
  const m = parseManifest(prefix.manifest);
  const diffs: string[] = [];
  if (m.box.name !== expect.name) diffs.push(`name is ${m.box.name}, not ${expect.name}`);
  if (m.box.version !== expect.version) diffs.push(`version is ${m.box.version}, not ${expect.version}`);
  if (m.box.provider !== expect.provider) diffs.push(`provider is ${m.box.provider}, not ${expect.provider}`);
  if (diffs.length) {
    throw refuse('WRONG_BOX', `this is not the box being published: its signed ${diffs.join('; ')}`, { box: m.box, expected: expect });
  }
}

/**
 * Issue 19: a box whose signed (or, unsigned, metadata.json) architecture
 * differs from the provider's architecture is the wrong box. A provider
 * declared without architecture ("unknown") takes any.
 */
function checkSignedArchitecture(declared: string, signed: string | undefined, where: string): void {
  if (declared === UNKNOWN_ARCHITECTURE || signed === undefined) return;
  if (signed !== declared) {
    throw refuse('WRONG_BOX', `${where} says architecture ${signed}, but this provider is for ${declared}`, { architecture: signed, expected: declared });
  }
}

/** Step 3: what can only be checked at the end of the pass. */
function checkAfterPass(t: UploadTarget, read: ReadResult, verdict: Verdict | null, body: LimitedBody): void {
  if (!body.ended) throw refuse('MALFORMED', 'the upload has data after the end of the box');
  const declared = t.declared_checksum?.toLowerCase();
  if (declared && read.checksum !== declared) {
    throw refuse(
      'CHECKSUM_MISMATCH',
      `checksum mismatch: the ${t.declared_checksum_type} declared for this provider is ${declared}, the upload's is ${read.checksum}`,
      { expected: declared, actual: read.checksum },
    );
  }
  if (!read.files.some((f) => f.path === 'metadata.json')) throw refuse('MALFORMED', 'the box has no metadata.json, which Vagrant requires');
  const md = readMetadata(read.metadata);
  if (verdict?.manifest) {
    checkMetadataAgrees(verdict, read.metadata);
    checkSignedArchitecture(t.architecture, verdict.manifest.box.architecture, 'the signed manifest');
  } else {
    if (md?.provider && md.provider !== t.provider) throw refuse('WRONG_BOX', `metadata.json says provider ${md.provider}, not ${t.provider}`);
  }
  checkSignedArchitecture(t.architecture, md?.architecture, 'metadata.json');
}

/** Step 2 and 3: the single pass. */
async function validate(
  t: UploadTarget,
  body: LimitedBody,
  writer: BlobWriter,
  trust: { view: TrustView; layers: ConfigLayer[] },
  steps: UploadStep[],
): Promise<ValidatedUpload> {
  const expect = { name: fullName(t), version: t.version, provider: t.provider };
  const judged: ExpectedIdentity = { ...expect, architecture: t.architecture };
  let size = 0;
  let verdict: Verdict | null = null;
  let manifestSha256: string | null = null;
  const declared = t.declared_checksum ?? undefined;
  const algorithm = declared ? (t.declared_checksum_type ?? 'sha256') : undefined;
  // the blob's address is its SHA-256: when the declared checksum is one too, the bytes are hashed once for both
  const content: Hash | null = algorithm === 'sha256' ? null : createHash('sha256');
  const read = await readBox(
    body.stream,
    {
      onPrefix: async (prefix) => {
        precheckIdentity(prefix, expect);
        for (const s of steps) await s.onPrefix?.(prefix);
        verdict = await judge(prefix, judged, { store: trust.view, layers: trust.layers, mode: 'add' }).catch((e) => {
          throw forRegistry(e, t.org);
        });
        for (const s of steps) await s.onVerdict?.(prefix, verdict);
        if (prefix.manifest) manifestSha256 = createHash('sha256').update(prefix.manifest).digest('hex');
        return verdict.expectation;
      },
    },
    {
      tap: {
        checksumAlgorithm: algorithm,
        onRaw: (chunk) => {
          content?.update(chunk);
          size += chunk.length;
          return writer.write(chunk);
        },
      },
      expectedChecksum: declared,
      manifestEnforced: true,
    },
  );
  checkAfterPass(t, read, verdict, body);
  const sha256 = content ? content.digest('hex') : read.checksum;
  if (!sha256) throw new BoxsigError('INTERNAL', 'internal error: the upload was read without its SHA-256');
  return { target: t, verdict, sha256, size, manifestSha256, writer, read };
}

/**
 * judge's KEY_CHANGED tells a user to run `boxsig trust accept`; at the
 * registry, the org admin accepts a new key by pinning it in the org policy.
 */
export function forRegistry(e: unknown, org: string): unknown {
  if (!(e instanceof BoxsigError) || e.code !== 'KEY_CHANGED') return e;
  const kept = e.message.split('\n').filter((l) => !/boxsig trust accept|accept it with:|the record lives in/.test(l));
  const hint = `boxsig registry org policy ${org} --policy FILE (pin the new key for the box)`;
  return new BoxsigError(
    'KEY_CHANGED',
    [
      ...kept.slice(0, -1),
      `${kept[kept.length - 1].replace(/ If the publisher really changed keys,?$/, '')} Co-sign with the recorded key, or have an admin of ${org} pin the new key:`,
      `  ${hint}`,
    ].join('\n'),
    e.details,
    hint,
  );
}

/** The upload with its verdict replaced by one judged now, in the publishing transaction (publication.ts). */
async function judgedNow(reg: Registry, q: Sql, u: ValidatedUpload, now: Date): Promise<{ upload: ValidatedUpload; view: TrustView }> {
  const t = u.target;
  const org = await q.one<{ id: string; name: string; policy: string }>('SELECT id, name, policy FROM orgs WHERE id = $1', [t.org_id]);
  if (!org) throw new BoxsigError('NOT_FOUND', `organization ${t.org} was deleted during the upload`);
  const p = { org, box: { id: t.box_id, name: t.box }, version: t.version, provider: t.provider, architecture: t.architecture, objectKey: u.writer.key };
  const { verdict, view } = await judgeAtPublication(q, reg.blobs, p, now, (e) => forRegistry(e, t.org));
  return { upload: { ...u, verdict }, view };
}

/** Step 4: publish in one transaction; returns whether our object turned out to be a duplicate. */
async function commit(reg: Registry, u: ValidatedUpload, view: TrustView, steps: UploadStep[]): Promise<{ duplicate: boolean; warnings: string[] }> {
  const t = u.target;
  const now = new Date();
  return reg.db.tx(async (q) => {
    // the box's writers take turns: a release or another upload cannot slip between these checks and the update
    await reg.db.lock(q, 'boxes', t.box_id);
    const cur = await q.one<{ state: string; owner: string | null; object_key: string | null; blob_sha256: string | null; status: string }>(
      `SELECT u.state, u.owner, u.object_key, p.blob_sha256, v.status
         FROM uploads u JOIN providers p ON p.id = u.provider_id JOIN versions v ON v.id = p.version_id WHERE u.id = $1`,
      [t.id],
    );
    if (!cur || cur.state !== 'receiving' || cur.owner !== reg.instance || cur.object_key !== u.writer.key) {
      throw new BoxsigError('UNAVAILABLE', 'this upload was taken over or expired while it was received; upload again');
    }
    if (cur.status === 'deleted') throw new BoxsigError('NOT_FOUND', `${fullName(t)} ${t.version} was deleted during the upload`);
    if (cur.status === 'active' && cur.blob_sha256) throw immutable(t);
    await tokenStillValid(q, t.token_id, nowText(now));
    // publishing now (the version is released): judged again against the org's trust as it is now
    if (cur.status === 'active') ({ upload: u, view } = await judgedNow(reg, q, u, now));
    const decision = u.verdict ? await commitSigners(q, view, u.verdict, { id: t.box_id, orgId: t.org_id, org: t.org }, now) : null;
    await q.run('INSERT INTO blobs (sha256, object_key, size, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING', [
      u.sha256,
      u.writer.key,
      u.size,
      nowText(now),
    ]);
    const blob = await q.one<{ object_key: string }>('SELECT object_key FROM blobs WHERE sha256 = $1', [u.sha256]);
    const signers = signerSummary(u.verdict);
    await q.run(
      `UPDATE providers SET blob_sha256 = $2, size = $3, signed = $4, manifest = $5, manifest_sha256 = $6, signers = $7, uploaded_at = $8, updated_at = $8
        WHERE id = $1`,
      [
        t.provider_id,
        u.sha256,
        u.size,
        u.verdict?.signed ?? false,
        u.verdict?.manifestBytes?.toString('utf8') ?? null,
        u.manifestSha256,
        JSON.stringify(signers),
        nowText(now),
      ],
    );
    await q.run(`UPDATE uploads SET state = 'published', sha256 = $2, size = $3, updated_at = $4 WHERE id = $1`, [t.id, u.sha256, u.size, nowText(now)]);
    for (const s of steps) await s.onCommit?.(q, u, now);
    if (cur.status === 'active') await recordPublication(q, t, u, signers, now);
    await audit(q, uploader(t), t.org_id, 'provider.upload', label(t), {
      sha256: u.sha256,
      size: u.size,
      signed: u.verdict?.signed ?? false,
      signers: signers.map((s) => s.fingerprint),
      trust: decision?.summary ?? null,
    });
    await reg.db.announce(q, t.box_id);
    return { duplicate: blob?.object_key !== u.writer.key, warnings: u.verdict?.warnings ?? [] };
  });
}

export interface SignerSummary {
  fingerprint: string;
  trusted: boolean;
  via?: string;
}

export function signerSummary(v: Verdict | null): SignerSummary[] {
  return (v?.signers ?? []).map((s) => ({ fingerprint: s.fingerprint, trusted: s.trusted, ...(s.via ? { via: s.via } : {}) }));
}

/** A provider became downloadable: recorded, and appended to the transparency log. */
export async function recordPublication(
  q: Sql,
  t: { provider_id: string; org: string; box: string; version: string; provider: string; architecture: string },
  u: { sha256: string; size: number; manifestSha256: string | null },
  signers: SignerSummary[],
  now: Date,
): Promise<void> {
  const trusted = signers.filter((s) => s.trusted).map((s) => s.fingerprint);
  const inserted = await q.run(
    `INSERT INTO publications (provider_id, org, box, version, provider, architecture, sha256, size, manifest_sha256, signers, published_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (provider_id) DO NOTHING`,
    [
      t.provider_id,
      t.org,
      `${t.org}/${t.box}`,
      t.version,
      t.provider,
      t.architecture,
      u.sha256,
      u.size,
      u.manifestSha256,
      JSON.stringify(trusted),
      nowText(now),
    ],
  );
  if (!inserted) return;
  // the transparency log, in the same transaction (issue 15)
  const index = await logPublication(
    q,
    { ...t, box: `${t.org}/${t.box}`, sha256: u.sha256, size: u.size, manifestSha256: u.manifestSha256, signers: trusted },
    now,
  );
  await q.run('UPDATE publications SET log_index = $2 WHERE provider_id = $1', [t.provider_id, index]);
}

/** Mark the session refused or failed (only if this process still owns it). */
async function settle(reg: Registry, t: UploadTarget, key: string, err: BoxsigError): Promise<void> {
  const state = err.refused ? 'refused' : 'failed';
  await reg.db
    .tx(async (q) => {
      const n = await q.run(
        `UPDATE uploads SET state = $2, code = $3, message = $4, updated_at = $5 WHERE id = $1 AND owner = $6 AND object_key = $7 AND state = 'receiving'`,
        [t.id, state, err.code, err.message.slice(0, 4000), nowText(), reg.instance, key],
      );
      if (n && err.refused) {
        await audit(q, uploader(t), t.org_id, 'provider.upload.refused', label(t), {
          code: err.code,
          message: err.message.slice(0, 1000),
        });
      }
    })
    .catch((e) => reg.log.error({ err: toBoxsigError(e).message, upload: t.id }, 'cannot record the end of an upload'));
}

/** The whole upload: claim, stream, commit. Never leaves a blob for a refused or failed upload. */
/** `beforeBody`: called once the upload is claimed, before its body is read (HTTP's `100 Continue`). */
export async function receiveUpload(reg: Registry, secret: string, req: Readable, beforeBody?: () => void): Promise<UploadOutcome> {
  const { target: t, key } = await claim(reg, secret);
  beforeBody?.();
  const direct = Boolean(t.direct);
  const body = limitedBody(req, reg.config.maxBoxBytes, reg.config.uploadIdleSeconds * 1000);
  const active = reg.track(body);
  const lease: Lease = { key };
  const heartbeat = setInterval(() => void renewLease(reg, t.id, lease.key), Math.max(1000, (reg.config.leaseSeconds * 1000) / 4));
  heartbeat.unref();
  let writer: BlobWriter | null = null;
  let stored = false;
  // The pass may be waiting on the store (backpressure) when the body fails: the writer is aborted at
  // once, not when the store next answers. Shutdown fails bodies that already ended too, which
  // discards an upload waiting for the store to complete it; never once it is stored.
  body.onFailure(() => {
    if (!stored) void writer?.abort();
  });
  try {
    const { trust, steps } = await reg.db.tx(async (q) => {
      const steps: UploadStep[] = [];
      for (const x of reg.uploadExtensions) {
        const step = await x.begin(q, t);
        if (step) steps.push(step);
      }
      const layers = [...policyLayers({ name: t.org, policy: t.policy }), ...steps.flatMap((s) => s.layers ?? [])];
      return { trust: { view: await orgTrustView(q, t.org_id, t.org, t.box_id, fullName(t)), layers }, steps };
    });
    writer = await reg.blobs.create(key);
    let u = await validate(t, body, writer, trust, steps);
    const received = { sha256: u.sha256, size: u.size };
    for (const hook of reg.afterValidation) u = await hook(u);
    for (const s of steps) {
      if (!s.afterValidation) continue;
      u = await s.afterValidation(u, lease);
      writer = u.writer;
    }
    writer = u.writer;
    if (body.failure) throw body.failure;
    await u.writer.finish();
    stored = true;
    const { duplicate, warnings } = await commit(reg, u, trust.view, steps);
    if (duplicate) await u.writer.abort();
    reg.log.info({ upload: t.id, box: fullName(t), version: t.version, provider: t.provider, sha256: u.sha256, size: u.size }, 'published');
    return { state: 'published', direct, target: t, sha256: u.sha256, size: u.size, received, warnings };
  } catch (e) {
    const thrown = toBoxsigError(e);
    // a refusal stays one; a pass stopped by the body's failure (its writer aborted) reports that failure
    const err = !thrown.refused && body.failure ? body.failure : thrown;
    await writer?.abort();
    await settle(reg, t, lease.key, err);
    reg.log.info({ upload: t.id, box: fullName(t), version: t.version, provider: t.provider, code: err.code }, err.refused ? 'refused' : 'upload failed');
    if (err.refused) {
      // let the client finish sending, so that it reads the answer
      await body.drain();
      return { state: 'refused', direct, error: err };
    }
    // a failure (shutdown, limit, I/O): answer at once; the rest of the body is discarded for a bounded time (closeIfUnread)
    throw err;
  } finally {
    clearInterval(heartbeat);
    active.done();
  }
}

async function renewLease(reg: Registry, id: string, key: string): Promise<void> {
  await reg.db
    .run(`UPDATE uploads SET heartbeat_at = $2 WHERE id = $1 AND owner = $3 AND object_key = $4 AND state = 'receiving'`, [id, nowText(), reg.instance, key])
    .catch((e) => reg.log.warn({ upload: id, err: (e as Error).message }, 'cannot renew the lease of an upload'));
}
