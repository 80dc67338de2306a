/**
 * Escrow signing at upload (issue 15): an escrow box arrives unsigned; after
 * the upload's single validating pass, the registry writes `.boxsig/` —
 * exactly what `boxsig sign` writes — with the box's escrow key, as a new
 * leading gzip member (plain tar: leading tar entries) in front of the
 * uploaded bytes, which are copied untouched: never recompressed. The stored
 * object is the signed box; its SHA-256 is what the catalog serves.
 *
 * While a box converts to a self-managed key, the upload must be signed by
 * the new key; the registry co-signs the same manifest with the escrow key
 * (a rotation every trust-on-first-use consumer follows) and, in the
 * publishing transaction, revokes the escrow key as superseded.
 *
 * For every box, an upload signed by a superseded escrow key is refused,
 * whatever date its signature claims: the registry knows it stopped signing
 * with that key.
 */
import { createHash } from 'node:crypto';
import { BoxsigError, refuse } from '../../errors.js';
import { buildGzipPrefix, buildPlainPrefix, type PrefixFile } from '../../archive/writer.js';
import { inflateMember } from '../../archive/gzip.js';
import { LIMITS } from '../../shared/limits.js';
import { buildManifest, serializeManifest, parseManifest, MANIFEST_PATH } from '../../manifest/manifest.js';
import { readMetadata, type Verdict } from '../../box/judge.js';
import type { BoxsigPrefix } from '../../box/reader.js';
import { readKeyData, signDetached } from '../../keys/keys.js';
import { writeCert, type Cert } from '../../keys/cert.js';
import { embeddable } from '../../keys/signer.js';
import * as pgp from '../../keys/pgp.js';
import type { ConfigLayer } from '../../policy/config.js';
import { nowText, type Sql } from '../db/engine.js';
import { newObjectKey } from '../blobs/store.js';
import { UNKNOWN_ARCHITECTURE } from '../names.js';
import { audit } from '../rows.js';
import { boxsigCertifiers, parsePolicy, storeRevocation } from '../trust.js';
import type { Registry } from '../registry.js';
import type { Lease, UploadExtension, UploadStep, UploadTarget, ValidatedUpload } from '../upload.js';
import type { Principal } from '../auth.js';
import { escrowKeyOf, escrowKeysOfOrg, supersede, unwrapHeld, type HeldRow } from './held.js';
import type { KeyEncryption } from './kek.js';

const fullName = (t: UploadTarget) => `${t.org}/${t.box}`;

const uploader = (t: UploadTarget): Principal => ({
  kind: 'token',
  tokenId: t.token_id,
  orgId: t.org_id,
  org: t.org,
  role: t.token_role,
  member: t.token_member,
});

export function escrowExtension(reg: Registry, kek: KeyEncryption | null): UploadExtension {
  return {
    async begin(q, t) {
      const superseded = (await escrowKeysOfOrg(q, t.org_id)).filter((r) => r.state === 'superseded').map((r) => r.fingerprint);
      const retired = (prefix: BoxsigPrefix) => refuseSuperseded(prefix, superseded);
      if (t.signing !== 'escrow') return superseded.length ? { onPrefix: retired } : null;
      const held = await escrowKeyOf(q, t.box_id);
      if (!held) throw new BoxsigError('CONFIG', `${fullName(t)} is escrow-signed, but the registry holds no escrow key for it`);
      if (!kek) {
        throw new BoxsigError(
          'UNAVAILABLE',
          `${fullName(t)} is escrow-signed, and this registry process has no key-encryption key to sign with (escrowKeyFile)`,
          {
            status: 503,
          },
        );
      }
      const keyFile = await escrowKeyFile(q, t.org_id, held.fingerprint);
      const step = held.state === 'active' ? activeStep(reg, kek, t, held, keyFile) : convertingStep(reg, kek, t, held, keyFile);
      const onPrefix = step.onPrefix;
      return {
        ...step,
        onPrefix: async (prefix) => {
          retired(prefix);
          await onPrefix?.(prefix);
        },
      };
    },
  };
}

/** A signature by an escrow key the registry superseded: refused whatever its date (the signer chooses the date). */
function refuseSuperseded(prefix: BoxsigPrefix, superseded: string[]): void {
  for (const fpr of prefix.signatures.keys()) {
    if (superseded.includes(fpr)) {
      throw refuse(
        'KEY_REVOKED',
        `the box is signed by ${fpr}, a registry-managed escrow key that was superseded when its box converted to a self-managed key; the registry accepts no new box signed by it`,
        { fingerprint: fpr },
      );
    }
  }
}

/** The policy layer of an escrow box: its uploads arrive unsigned (the registry signs them). */
function escrowLayer(full: string): ConfigLayer {
  const source = `the registry's escrow signing of ${full}`;
  return { source, doc: parsePolicy(JSON.stringify({ boxes: { [full]: { signatures: 'optional' } } }), source) };
}

function activeStep(reg: Registry, kek: KeyEncryption, t: UploadTarget, held: HeldRow, keyFile: Buffer): UploadStep {
  const full = fullName(t);
  return {
    layers: [escrowLayer(full)],
    onPrefix(prefix) {
      if (prefix.present) {
        throw refuse(
          'UNTRUSTED_KEY',
          `${full} is escrow-signed: the registry signs its boxes with its escrow key ${held.fingerprint}, so upload it unsigned (boxsig strip BOX -o OUT)`,
          { escrow: held.fingerprint },
        );
      }
    },
    async afterValidation(u, lease) {
      const key = await unwrapHeld(kek, held);
      const now = new Date();
      const manifestBytes = serializeManifest(
        buildManifest({ box: identityOf(t, u), created: new Date(Math.floor(now.getTime() / 1000) * 1000), files: u.read.files }),
      );
      const sig = Buffer.from(await signDetached(manifestBytes, key, now), 'latin1');
      const files = prefixFiles(manifestBytes, new Map([[held.fingerprint, sig]]), new Map([[held.fingerprint, keyFile]]));
      const prefix = u.read.compressed ? buildGzipPrefix(files, manifestDate(manifestBytes))! : buildPlainPrefix(files, manifestDate(manifestBytes))!;
      await u.writer.finish();
      const out = await rewrite(reg, u, lease, prefix, 0);
      return { ...out, manifestSha256: sha256(manifestBytes), verdict: signedVerdict(u.verdict, manifestBytes, [escrowSigner(held.fingerprint, now)]) };
    },
  };
}

function convertingStep(reg: Registry, kek: KeyEncryption, t: UploadTarget, held: HeldRow, keyFile: Buffer): UploadStep {
  const full = fullName(t);
  const successor = held.successor!;
  let revocation: Awaited<ReturnType<typeof supersede>> | null = null;
  return {
    onPrefix(prefix) {
      if (prefix.signatures.has(held.fingerprint)) {
        throw refuse('UNTRUSTED_KEY', `${full}: the upload carries a signature by the escrow key ${held.fingerprint}, which only the registry makes`, {});
      }
    },
    onVerdict(prefix, verdict) {
      const signed = verdict.signers.some((s) => s.fingerprint === successor && s.valid);
      if (!prefix.present || !signed) {
        throw refuse(
          'UNTRUSTED_KEY',
          `${full} is converting from its escrow key ${held.fingerprint} to the self-managed key ${successor}: sign this version with ${successor} (the registry co-signs it with the escrow key)`,
          { escrow: held.fingerprint, successor },
        );
      }
    },
    async afterValidation(u, lease) {
      const prefix = u.read.prefix;
      await u.writer.finish();
      const skip = await oldPrefixLength(reg, u);
      const key = await unwrapHeld(kek, held);
      const now = new Date(Math.floor(Date.now() / 1000) * 1000);
      const manifestBytes = prefix.manifest!;
      const sig = Buffer.from(await signDetached(manifestBytes, key, now), 'latin1');
      // dated after the co-signature: a superseded key's signatures made before it stay valid
      revocation = await supersede(key, successor, new Date(now.getTime() + 1000));
      const sigs = new Map(prefix.signatures).set(held.fingerprint, sig);
      const keys = new Map(prefix.keys).set(held.fingerprint, keyFile);
      const files = prefixFiles(manifestBytes, sigs, keys);
      const bytes = u.read.compressed ? buildGzipPrefix(files, manifestDate(manifestBytes))! : buildPlainPrefix(files, manifestDate(manifestBytes))!;
      const out = await rewrite(reg, u, lease, bytes, skip);
      const v = u.verdict!;
      return { ...out, verdict: { ...v, signers: [...v.signers, escrowSigner(held.fingerprint, now)] } };
    },
    async onCommit(q, u) {
      if (!revocation) throw new BoxsigError('INTERNAL', 'internal error: the escrow key was not revoked before the commit');
      const at = nowText();
      const r = await storeRevocation(q, t.org_id, revocation.sig, at);
      await q.run(`UPDATE held_keys SET state = 'superseded', updated_at = $3 WHERE org_id = $1 AND fingerprint = $2`, [t.org_id, held.fingerprint, at]);
      await q.run(`UPDATE boxes SET signing = 'self', updated_at = $2 WHERE id = $1`, [t.box_id, at]);
      const actor = uploader(t);
      await audit(q, actor, t.org_id, 'key.revoke', full, { fingerprint: held.fingerprint, reason: 'superseded', successor, revocation: r.sha256 });
      await audit(q, actor, t.org_id, 'escrow.convert', full, {
        stage: 'complete',
        escrow: held.fingerprint,
        successor,
        version: t.version,
        sha256: u.sha256,
      });
    },
  };
}

/** The escrow key as a box carries it: its public key with the org's certification, then the org key that made it. */
async function escrowKeyFile(q: Sql, orgId: string, fpr: string): Promise<Buffer> {
  const rows = await q.query<{ fingerprint: string; armored: string }>('SELECT fingerprint, armored FROM org_keys WHERE org_id = $1', [orgId]);
  const byFpr = new Map(rows.map((r) => [r.fingerprint, r.armored]));
  const own = byFpr.get(fpr);
  if (!own) throw new BoxsigError('INTERNAL', `internal error: the escrow key ${fpr} is not registered`);
  const [cert] = (await readKeyData(Buffer.from(own), `the escrow key ${fpr}`)).certs;
  const parts: Cert[] = [embeddable(cert)];
  for (const f of boxsigCertifiers(cert).slice(0, 4)) {
    const armored = byFpr.get(f);
    if (armored) parts.push(embeddable((await readKeyData(Buffer.from(armored), `the org key ${f}`)).certs[0]));
  }
  return Buffer.from(pgp.armorPublicKey(Buffer.concat(parts.map(writeCert))), 'latin1');
}

function identityOf(t: UploadTarget, u: ValidatedUpload) {
  const md = readMetadata(u.read.metadata);
  const architecture = t.architecture !== UNKNOWN_ARCHITECTURE ? t.architecture : md?.architecture;
  return { name: fullName(t), version: t.version, provider: t.provider, ...(architecture ? { architecture } : {}) };
}

/** The `.boxsig/` entries in the order `boxsig sign` writes them. */
function prefixFiles(manifest: Buffer, sigs: Map<string, Buffer>, keys: Map<string, Buffer>): PrefixFile[] {
  const files: PrefixFile[] = [{ path: MANIFEST_PATH, data: manifest }];
  for (const f of [...sigs.keys()].sort()) files.push({ path: `.boxsig/signatures/${f}.asc`, data: sigs.get(f)! });
  for (const f of [...keys.keys()].sort()) files.push({ path: `.boxsig/keys/${f}.asc`, data: keys.get(f)! });
  return files;
}

const manifestDate = (m: Buffer) => new Date(Date.parse(parseManifest(m).created));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function escrowSigner(fpr: string, created: Date) {
  return {
    fingerprint: fpr,
    signingKey: fpr,
    userIds: [],
    algorithm: 'EdDSA',
    created: created.toISOString(),
    valid: true,
    trusted: true,
    explanation: 'the registry-managed escrow key of this box',
  };
}

function signedVerdict(v: Verdict | null, manifestBytes: Buffer, signers: Verdict['signers']): Verdict {
  const base = v!;
  return { ...base, signed: true, manifestBytes, manifest: parseManifest(manifestBytes), signers, decision: null, warnings: [] };
}

/**
 * How many leading bytes of the upload are its own `.boxsig/` entries: the
 * leading gzip member boxsig marks as its own (which must hold exactly
 * them), or the leading tar entries. `.boxsig/` inside the compressed data
 * cannot be replaced without recompressing.
 */
async function oldPrefixLength(reg: Registry, u: ValidatedUpload): Promise<number> {
  const { read } = u;
  if (!read.compressed) return read.prefix.endOffset;
  if (read.leadingMember === null || read.leadingMember > 4 * LIMITS.maxPrefixBytes) {
    throw refuse(
      'MALFORMED',
      'the box carries .boxsig/ inside its compressed data; the registry cannot add its co-signature without recompressing: sign it with boxsig sign',
    );
  }
  const { stream } = await reg.blobs.read(u.writer.key, 0);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n >= read.leadingMember) break;
  }
  stream.destroy();
  const member = Buffer.concat(chunks).subarray(0, read.leadingMember);
  if (inflateMember(member, 2 * LIMITS.maxPrefixBytes).length !== read.prefix.endOffset) {
    throw refuse('MALFORMED', "the leading gzip member is marked as boxsig's but does not hold exactly the .boxsig/ entries");
  }
  return read.leadingMember;
}

/**
 * Replace the upload's (finished) object by `prefix` + the uploaded bytes
 * after `skip`, copied untouched in one streaming pass. The session names the new object
 * before its first byte is written (garbage collection never takes it); on
 * failure the new object is discarded and the session names the old one again.
 */
async function rewrite(reg: Registry, u: ValidatedUpload, lease: Lease, prefix: Buffer, skip: number): Promise<ValidatedUpload> {
  const old = u.writer;
  const key = newObjectKey();
  await moveSession(reg, u.target.id, old.key, key);
  lease.key = key;
  const w = await reg.blobs.create(key);
  try {
    const hash = createHash('sha256').update(prefix);
    let size = prefix.length;
    await w.write(prefix);
    const { stream } = await reg.blobs.read(old.key, skip);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      await w.write(chunk);
    }
    if (size !== prefix.length + u.size - skip) throw new BoxsigError('INTERNAL', `internal error: copied ${size - prefix.length} of ${u.size - skip} bytes`);
    await old.abort();
    return { ...u, writer: w, sha256: hash.digest('hex'), size };
  } catch (e) {
    await w.abort();
    await moveSession(reg, u.target.id, key, old.key).catch(() => undefined);
    lease.key = old.key;
    throw e;
  }
}

async function moveSession(reg: Registry, uploadId: string, from: string, to: string): Promise<void> {
  const n = await reg.db.run(`UPDATE uploads SET object_key = $3, updated_at = $4 WHERE id = $1 AND owner = $2 AND object_key = $5 AND state = 'receiving'`, [
    uploadId,
    reg.instance,
    to,
    nowText(),
    from,
  ]);
  if (!Number(n)) throw new BoxsigError('UNAVAILABLE', 'this upload was taken over or expired while it was signed; upload again', { status: 503 });
}
