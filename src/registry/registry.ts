/**
 * The registry's operations, shared by the HTTP API and the admin commands:
 * every one loads what the API path names, authorises the caller in one
 * place (auth.ts), and writes in one transaction with its audit line.
 * Released boxes are immutable: a provider whose version is released and
 * whose box is uploaded can be neither replaced nor deleted, and a version
 * number, once released, is never used again.
 */
import { randomBytes } from 'node:crypto';
import { BoxsigError, usage } from '../errors.js';
import { isPlainObject } from '../shared/json.js';
import { authenticate, authorize, allowed, bearerOf, hashToken, type Principal } from './auth.js';
import { isUniqueViolation, nowText, type Db, type Sql } from './db/engine.js';
import type { BlobStore } from './blobs/store.js';
import { CatalogCache } from './catalog.js';
import type { RegistryConfig } from './config.js';
import type { LimitedBody } from './body.js';
import { architectureName, boxName, fold, freeText, isLookupName, providerName, shown, versionName, type Role } from './names.js';
import {
  audit,
  findBox,
  findProvider,
  findVersion,
  mustOrg,
  newId,
  notFound,
  providersOf,
  sameVersion,
  versionsOf,
  type BoxRow,
  type OrgRow,
  type ProviderRow,
  type VersionRow,
} from './rows.js';
import { boxJson, boxSummary, providerJson, versionJson, type Links } from './views.js';
import {
  findSession,
  forRegistry,
  immutable,
  recordPublication,
  receiveUpload,
  signerSummary,
  type AfterValidation,
  type SignerSummary,
  type UploadExtension,
  type UploadOutcome,
} from './upload.js';
import { checkUploaderNotRevoked, judgeAtPublication } from './publication.js';
import { CHECKSUM_TYPES } from '../vagrant/catalog.js';
import { logWithdrawal } from './log/events.js';
import type { NoteSigner } from '../tlog/note.js';
import { keysForBox } from './trust.js';
import type { KeyEncryption } from './escrow/kek.js';

export interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLog: Log = { info() {}, warn() {}, error() {} };

/** The names of an API path. */
export interface BoxPath {
  org: string;
  box: string;
}
export interface VersionPath extends BoxPath {
  version: string;
}
export interface ProviderPath extends VersionPath {
  provider: string;
  architecture?: string;
}

/** A write: the role it needs (checked before the box is locked) and what it is, for messages. */
interface Write {
  role: Role;
  what: string;
}

interface BoxCtx {
  org: OrgRow;
  box: BoxRow;
}
interface VersionCtx extends BoxCtx {
  version: VersionRow;
}
interface ProviderCtx extends VersionCtx {
  provider: ProviderRow;
}

/** A JSON request body's nested object (Vagrant sends {version: {…}}, some clients send the fields flat). */
function section(body: unknown, name: string): Record<string, unknown> {
  if (!isPlainObject(body)) return {};
  const inner = body[name];
  return isPlainObject(inner) ? inner : body;
}

function bool(v: unknown, what: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 1) return true;
  if (v === 'false' || v === '0' || v === 0) return false;
  throw usage(`${what} must be true or false`);
}

/**
 * Whether a new provider is its name's default architecture. A released
 * version's published providers are immutable, their catalog flags too: a
 * new provider cannot take the default from a published one.
 */
function defaultOfNew(version: VersionRow, sameName: ProviderRow[], f: { architecture: string; defaultArchitecture?: boolean }, label: string): boolean {
  const publishedDefault = version.status === 'active' && sameName.find((x) => x.blob_sha256 && x.default_architecture);
  if (publishedDefault) {
    if (f.defaultArchitecture) {
      throw new BoxsigError('EXISTS', `${label}: the released default architecture is ${publishedDefault.architecture}; a new provider cannot take it`, {
        status: 409,
      });
    }
    return false;
  }
  return f.defaultArchitecture ?? !sameName.some((x) => x.default_architecture);
}

/** A private box is, to whoever may not read it, exactly a box that does not exist (no oracle). */
function readable<B extends { private: unknown }, O extends { id: string }>(
  p: Principal | null,
  rows: { org: O; box: B | null } | null,
  name: string,
): { org: O; box: B } {
  if (!rows?.box || (rows.box.private && !allowed(p, rows.org.id, 'read'))) throw unreadable(p, name);
  return { org: rows.org, box: rows.box };
}

/** The answer for a box that is missing or private to the caller: the same either way. */
function unreadable(p: Principal | null, name: string): BoxsigError {
  const hint = p ? '' : ' (a private box needs a token of its organization)';
  return new BoxsigError('NOT_FOUND', `box ${shown(name)} does not exist${hint}`);
}

/** Upload URLs one token may hold unused at once (each is a row until it expires). */
const OPEN_UPLOADS_PER_TOKEN = 100;

/**
 * Upload sessions are bounded per token: asking again for the same provider
 * keeps only the newest unused sessions of that provider, as many as the
 * uploads the token may have in flight (two publishers sharing a token each
 * keep a working URL, and the one that loses the race is told why), drops its
 * expired ones (which never had an object), and a token holds at most
 * OPEN_UPLOADS_PER_TOKEN unused ones.
 */
async function boundUploadSessions(q: Sql, tokenId: string, providerId: string, now: Date, perProvider: number): Promise<void> {
  await q.run(
    `DELETE FROM uploads WHERE token_id = $1 AND object_key IS NULL
        AND (state = 'expired' OR (state = 'open' AND expires_at <= $2))`,
    [tokenId, nowText(now)],
  );
  await q.run(
    `DELETE FROM uploads WHERE id IN (
        SELECT id FROM uploads WHERE token_id = $1 AND provider_id = $2 AND state = 'open' AND object_key IS NULL
         ORDER BY created_at DESC, id DESC LIMIT 1000000 OFFSET $3)`,
    [tokenId, providerId, Math.max(0, perProvider - 1)],
  );
  const open = await q.one<{ n: number }>(`SELECT COUNT(*) AS n FROM uploads WHERE token_id = $1 AND state = 'open'`, [tokenId]);
  if (Number(open?.n ?? 0) >= OPEN_UPLOADS_PER_TOKEN) {
    throw new BoxsigError('LIMIT', `this token has ${OPEN_UPLOADS_PER_TOKEN} upload URLs waiting for an upload; use them, or wait until they expire`, {
      status: 429,
    });
  }
}

export class Registry {
  readonly catalogs: CatalogCache;
  readonly afterValidation: AfterValidation[] = [];
  /** The registry key: signs log checkpoints and catalog statements (log/key.ts); set by openRegistry. */
  signer: NoteSigner | null = null;
  /** Per-upload extensions (issue 15: escrow signing, src/registry/escrow/sign.ts). */
  readonly uploadExtensions: UploadExtension[] = [];
  /** The key-encryption key of the keys the registry holds (src/registry/escrow/kek.ts); null: it holds none. */
  keyEncryption: KeyEncryption | null = null;
  /** This process, as recorded in the leases of the uploads it receives. */
  readonly instance = `${process.pid}-${randomBytes(6).toString('hex')}`;
  closing = false;
  private readonly active = new Set<LimitedBody>();
  private readonly pending = new Set<Promise<UploadOutcome>>();

  constructor(
    readonly db: Db,
    readonly blobs: BlobStore,
    readonly config: RegistryConfig,
    readonly log: Log = silentLog,
  ) {
    this.catalogs = new CatalogCache(db, config.catalogCache, () => this.signer, config.catalogTtlSeconds);
  }

  async start(): Promise<void> {
    await this.catalogs.start();
  }

  // ---- who is asking ----

  async principal(authorization: string | undefined, accessToken?: unknown): Promise<Principal | null> {
    return authenticate(this.db, bearerOf(authorization, accessToken));
  }

  // ---- loading what a path names ----

  /**
   * Load the org and box a path names. For a write (`write`), the caller's
   * role is checked first, then the box row is locked, so that what is read
   * next (versions, providers) is current and stays so until the commit.
   */
  private async boxCtx(q: Sql, p: Principal | null, path: BoxPath, write?: Write): Promise<BoxCtx> {
    const org = await mustOrg(q, path.org);
    const { box } = readable(p, { org, box: await findBox(q, org.id, path.box) }, `${org.name}/${path.box}`);
    if (!write) return { org, box };
    authorize(p, org, write.role, `${write.what} in ${org.name}/${box.name}`);
    await this.db.lock(q, 'boxes', box.id);
    const locked = await findBox(q, org.id, path.box);
    if (!locked) throw notFound(`box ${shown(`${org.name}/${path.box}`)}`);
    return { org, box: locked };
  }

  private async versionCtx(q: Sql, p: Principal | null, path: VersionPath, write?: Write): Promise<VersionCtx> {
    const c = await this.boxCtx(q, p, path, write);
    const version = await findVersion(q, c.box.id, versionName(path.version));
    const label = `${c.org.name}/${c.box.name} ${path.version}`;
    if (!version || version.status === 'deleted') throw notFound(`version ${shown(label)}`);
    if (version.status !== 'active' && !allowed(p, c.org.id, 'publish')) throw notFound(`version ${shown(label)}`);
    return { ...c, version };
  }

  private async providerCtx(q: Sql, p: Principal | null, path: ProviderPath, write?: Write): Promise<ProviderCtx> {
    const c = await this.versionCtx(q, p, path, write);
    const arch = path.architecture === undefined ? undefined : architectureName(path.architecture);
    const provider = await findProvider(q, c.version.id, providerName(path.provider), arch);
    if (!provider) throw notFound(`provider ${shown(`${path.provider}${arch ? ` (${arch})` : ''}`)} of ${c.org.name}/${c.box.name} ${c.version.version}`);
    return { ...c, provider };
  }

  private async boxView(q: Sql, p: Principal | null, c: BoxCtx, links: Links) {
    const owner = allowed(p, c.org.id, 'publish');
    const versions = (await versionsOf(q, c.box.id)).filter((v) => owner || v.status === 'active');
    return boxJson(
      links,
      c.org,
      c.box,
      versions,
      await providersOf(
        q,
        versions.map((v) => v.id),
      ),
    );
  }

  // ---- orgs and boxes ----

  async orgView(p: Principal | null, orgName: string) {
    return this.db.tx(async (q) => {
      const org = await mustOrg(q, orgName);
      const member = allowed(p, org.id, 'read');
      const boxes = await q.query<BoxRow>(
        `SELECT id, org_id, name, private, signing, short_description, description, created_at, updated_at FROM boxes WHERE org_id = $1 ORDER BY folded`,
        [org.id],
      );
      return {
        username: org.name,
        avatar_url: null,
        profile_html: '',
        profile_markdown: '',
        boxes: boxes.filter((b) => member || !b.private).map((b) => boxSummary(org, b)),
      };
    });
  }

  async createBox(p: Principal | null, orgName: string, body: unknown, links: Links) {
    const b = section(body, 'box');
    const name = b.name;
    return this.db.tx(async (q) => {
      const org = await mustOrg(q, orgName);
      authorize(p, org, 'publish', `creating a box in ${org.name}`);
      const short = boxName(org.name, name);
      if (await findBox(q, org.id, short)) throw new BoxsigError('EXISTS', `box ${org.name}/${short} already exists`, { status: 409 });
      const now = nowText();
      const box: BoxRow = {
        id: newId(),
        org_id: org.id,
        name: short,
        private: bool(b.is_private ?? b.private, 'is_private') ? 1 : 0,
        signing: 'self',
        short_description: freeText(b.short_description, 'short_description', 1000),
        description: freeText(b.description, 'description'),
        created_at: now,
        updated_at: now,
      };
      await this.insertBox(q, box);
      await audit(q, p, org.id, 'box.create', `${org.name}/${short}`, { private: Boolean(box.private) });
      return boxJson(links, org, box, [], []);
    });
  }

  private async insertBox(q: Sql, box: BoxRow): Promise<void> {
    try {
      await q.run(
        `INSERT INTO boxes (id, org_id, name, folded, private, signing, short_description, description, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [box.id, box.org_id, box.name, fold(box.name), box.private, box.signing, box.short_description, box.description, box.created_at, box.updated_at],
      );
    } catch (e) {
      if (isUniqueViolation(e)) throw new BoxsigError('EXISTS', `box ${box.name} already exists`, { status: 409 });
      throw e;
    }
  }

  async getBox(p: Principal | null, path: BoxPath, links: Links) {
    return this.db.tx(async (q) => this.boxView(q, p, await this.boxCtx(q, p, path), links));
  }

  async updateBox(p: Principal | null, path: BoxPath, body: unknown, links: Links) {
    const b = section(body, 'box');
    return this.db.tx(async (q) => {
      const c = await this.boxCtx(q, p, path, { role: 'publish', what: 'changing the box' });
      const priv = bool(b.is_private ?? b.private, 'is_private');
      const box: BoxRow = {
        ...c.box,
        private: priv === undefined ? c.box.private : priv ? 1 : 0,
        short_description: b.short_description === undefined ? c.box.short_description : freeText(b.short_description, 'short_description', 1000),
        description: b.description === undefined ? c.box.description : freeText(b.description, 'description'),
        updated_at: nowText(),
      };
      await q.run('UPDATE boxes SET private = $2, short_description = $3, description = $4, updated_at = $5 WHERE id = $1', [
        box.id,
        box.private,
        box.short_description,
        box.description,
        box.updated_at,
      ]);
      await audit(q, p, c.org.id, 'box.update', `${c.org.name}/${c.box.name}`, { private: Boolean(box.private) });
      await this.db.announce(q, box.id);
      return this.boxView(q, p, { org: c.org, box }, links);
    });
  }

  /** Deleting a box: an org admin's act, and only while none of its versions was ever released. */
  async deleteBox(p: Principal | null, path: BoxPath, links: Links) {
    return this.db.tx(async (q) => {
      const c = await this.boxCtx(q, p, path, { role: 'admin', what: 'deleting the box' });
      const view = await this.boxView(q, p, c, links);
      const released = await q.one<{ n: number }>(`SELECT COUNT(*) AS n FROM versions WHERE box_id = $1 AND (status = 'active' OR released_at IS NOT NULL)`, [
        c.box.id,
      ]);
      if (Number(released?.n) > 0) {
        throw new BoxsigError('EXISTS', `${c.org.name}/${c.box.name} has released versions, which are never removed; delete versions one by one instead`, {
          status: 409,
        });
      }
      const versionIds = (await versionsOf(q, c.box.id)).map((v) => v.id);
      for (const id of versionIds) await q.run('DELETE FROM providers WHERE version_id = $1', [id]);
      await q.run('DELETE FROM versions WHERE box_id = $1', [c.box.id]);
      await q.run('DELETE FROM box_signers WHERE box_id = $1', [c.box.id]);
      await q.run('DELETE FROM boxes WHERE id = $1', [c.box.id]);
      await audit(q, p, c.org.id, 'box.delete', `${c.org.name}/${c.box.name}`);
      await this.db.announce(q, c.box.id);
      return view;
    });
  }

  // ---- versions ----

  async createVersion(p: Principal | null, path: BoxPath, body: unknown, links: Links) {
    const v = section(body, 'version');
    return this.db.tx(async (q) => {
      const c = await this.boxCtx(q, p, path, { role: 'publish', what: 'creating a version' });
      const number = versionName(v.version);
      const clash = sameVersion(await versionsOf(q, c.box.id), number);
      if (clash) {
        const why = clash.status === 'deleted' ? 'was deleted, and a version number is never used twice' : clash.status === 'active' ? 'is released' : 'exists';
        throw new BoxsigError('EXISTS', `version ${clash.version} of ${c.org.name}/${c.box.name} ${why}`, { status: 409 });
      }
      const now = nowText();
      const row: VersionRow = {
        id: newId(),
        box_id: c.box.id,
        version: number,
        status: 'unreleased',
        description: freeText(v.description, 'description'),
        created_at: now,
        updated_at: now,
        released_at: null,
      };
      try {
        await q.run('INSERT INTO versions (id, box_id, version, status, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
          row.id,
          row.box_id,
          row.version,
          row.status,
          row.description,
          now,
          now,
        ]);
      } catch (e) {
        if (isUniqueViolation(e)) throw new BoxsigError('EXISTS', `version ${number} of ${c.org.name}/${c.box.name} exists`, { status: 409 });
        throw e;
      }
      await audit(q, p, c.org.id, 'version.create', `${c.org.name}/${c.box.name} ${number}`);
      return versionJson(links, c.org, c.box, row, []);
    });
  }

  async getVersion(p: Principal | null, path: VersionPath, links: Links) {
    return this.db.tx(async (q) => {
      const c = await this.versionCtx(q, p, path);
      return versionJson(links, c.org, c.box, c.version, await providersOf(q, [c.version.id]));
    });
  }

  async updateVersion(p: Principal | null, path: VersionPath, body: unknown, links: Links) {
    const v = section(body, 'version');
    return this.db.tx(async (q) => {
      const c = await this.versionCtx(q, p, path, { role: 'publish', what: 'changing a version' });
      if (v.version !== undefined && v.version !== c.version.version) {
        throw usage(`a version cannot be renumbered (${c.version.version} → ${shown(v.version)}); create a new version`);
      }
      const description = v.description === undefined ? c.version.description : freeText(v.description, 'description');
      const now = nowText();
      await q.run('UPDATE versions SET description = $2, updated_at = $3 WHERE id = $1', [c.version.id, description, now]);
      await audit(q, p, c.org.id, 'version.update', `${c.org.name}/${c.box.name} ${c.version.version}`);
      await this.db.announce(q, c.box.id);
      return versionJson(links, c.org, c.box, { ...c.version, description, updated_at: now }, await providersOf(q, [c.version.id]));
    });
  }

  /**
   * Deleting a version: an unreleased one by a publisher (its providers go);
   * a released one only by an org admin, and it stays as a tombstone so that
   * its number is never published again.
   */
  async deleteVersion(p: Principal | null, path: VersionPath, links: Links) {
    return this.db.tx(async (q) => {
      const c = await this.versionCtx(q, p, path, { role: 'publish', what: 'deleting a version' });
      const label = `${c.org.name}/${c.box.name} ${c.version.version}`;
      const providers = await providersOf(q, [c.version.id]);
      const view = versionJson(links, c.org, c.box, c.version, providers);
      if (c.version.status === 'active') {
        authorize(p, c.org, 'admin', `deleting the released version ${label}`);
        const now = nowText();
        await q.run(`UPDATE versions SET status = 'deleted', updated_at = $2 WHERE id = $1`, [c.version.id, now]);
        await q.run('UPDATE providers SET blob_sha256 = NULL, updated_at = $2 WHERE version_id = $1', [c.version.id, now]);
        await audit(q, p, c.org.id, 'version.delete-released', label);
        await logWithdrawal(q, { org: c.org.name, box: `${c.org.name}/${c.box.name}`, version: c.version.version });
      } else {
        authorize(p, c.org, 'publish', `deleting ${label}`);
        await q.run('DELETE FROM providers WHERE version_id = $1', [c.version.id]);
        await q.run('DELETE FROM versions WHERE id = $1', [c.version.id]);
        await audit(q, p, c.org.id, 'version.delete', label);
      }
      await this.db.announce(q, c.box.id);
      return view;
    });
  }

  /** Release: from now on the version's uploaded boxes are downloadable and immutable (idempotent). */
  async releaseVersion(p: Principal | null, path: VersionPath, links: Links) {
    return this.db.tx(async (q) => {
      const c = await this.versionCtx(q, p, path, { role: 'publish', what: 'releasing a version' });
      const label = `${c.org.name}/${c.box.name} ${c.version.version}`;
      const providers = await providersOf(q, [c.version.id]);
      if (c.version.status === 'active') return versionJson(links, c.org, c.box, c.version, providers);
      const ready = providers.filter((x) => x.blob_sha256);
      if (!ready.length) throw usage(`${label} has no uploaded box yet: upload one before releasing`);
      const now = new Date();
      // judged again now: a revocation, a policy change or an expiry since the upload refuses the release
      const signers = new Map<string, SignerSummary[]>();
      for (const x of ready) signers.set(x.id, signerSummary((await this.judgeProvider(q, c, x, now)).verdict));
      await q.run(`UPDATE versions SET status = 'active', released_at = $2, updated_at = $2 WHERE id = $1`, [c.version.id, nowText(now)]);
      for (const x of ready) {
        await recordPublication(
          q,
          { provider_id: x.id, org: c.org.name, box: c.box.name, version: c.version.version, provider: x.name, architecture: x.architecture },
          { sha256: x.blob_sha256!, size: x.size ?? 0, manifestSha256: x.manifest_sha256 },
          signers.get(x.id)!,
          now,
        );
      }
      await audit(q, p, c.org.id, 'version.release', label, { providers: ready.map((x) => `${x.name}/${x.architecture}`) });
      await this.db.announce(q, c.box.id);
      return versionJson(links, c.org, c.box, { ...c.version, status: 'active', released_at: nowText(now), updated_at: nowText(now) }, providers);
    });
  }

  /** A provider's stored box judged against the org's trust as it is in this transaction (publication.ts). */
  private async judgeProvider(q: Sql, c: VersionCtx, x: ProviderRow, now: Date) {
    const blob = await q.one<{ object_key: string }>('SELECT object_key FROM blobs WHERE sha256 = $1', [x.blob_sha256]);
    if (!blob) throw new BoxsigError('INTERNAL', 'internal error: an uploaded provider has no blob');
    const p = { org: c.org, box: c.box, version: c.version.version, provider: x.name, architecture: x.architecture, objectKey: blob.object_key };
    await checkUploaderNotRevoked(
      q,
      x.id,
      `${c.org.name}/${c.box.name} ${c.version.version} ${x.name}${x.architecture === 'unknown' ? '' : ` (${x.architecture})`}`,
    );
    return judgeAtPublication(q, this.blobs, p, now, (e) => forRegistry(e, c.org.name));
  }

  async revokeVersion(p: Principal | null, path: VersionPath): Promise<never> {
    return this.db.tx(async (q) => {
      const c = await this.versionCtx(q, p, path, { role: 'publish', what: 'revoking a version' });
      throw new BoxsigError(
        'EXISTS',
        `${c.org.name}/${c.box.name} ${c.version.version}: a released version is immutable and is never unreleased; an org admin can delete it (its number stays used)`,
        { status: 409 },
      );
    });
  }

  // ---- providers ----

  private providerFields(body: unknown): {
    name: string;
    architecture: string;
    defaultArchitecture?: boolean;
    checksum?: string | null;
    checksumType?: string | null;
  } {
    const b = section(body, 'provider');
    if (typeof b.url === 'string' && b.url) {
      throw usage('this registry hosts and verifies every box: upload the file instead of giving an external url');
    }
    const out: ReturnType<Registry['providerFields']> = { name: providerName(b.name), architecture: architectureName(b.architecture) };
    const def = bool(b.default_architecture, 'default_architecture');
    if (def !== undefined) out.defaultArchitecture = def;
    if (b.checksum !== undefined && b.checksum !== null && b.checksum !== '') {
      if (typeof b.checksum !== 'string') throw usage('checksum must be a hexadecimal string');
      const sum = b.checksum.trim().toLowerCase();
      const given = b.checksum_type;
      if (given !== undefined && given !== null && typeof given !== 'string') throw usage('checksum_type must be a string');
      const type = given ? given.toLowerCase() : 'sha256';
      if (!CHECKSUM_TYPES.includes(type)) throw usage(`checksum_type ${shown(b.checksum_type)} must be one of ${CHECKSUM_TYPES.join(', ')}`);
      if (!/^[0-9a-f]{32,128}$/.test(sum)) throw usage('checksum must be hexadecimal');
      out.checksum = sum;
      out.checksumType = type;
    }
    return out;
  }

  /**
   * Create a provider (idempotent while it is not published: Packer posts it
   * again when a build is retried). The first provider of a name is the
   * default architecture unless told otherwise.
   */
  async createProvider(p: Principal | null, path: VersionPath, body: unknown, links: Links) {
    const f = this.providerFields(body);
    return this.db.tx(async (q) => {
      const c = await this.versionCtx(q, p, path, { role: 'publish', what: 'adding a provider' });
      const label = `${c.org.name}/${c.box.name} ${c.version.version} ${f.name}`;
      const existing = await findProvider(q, c.version.id, f.name, f.architecture);
      const now = nowText();
      if (existing) {
        if (c.version.status === 'active' && existing.blob_sha256)
          throw immutable({ org: c.org.name, box: c.box.name, version: c.version.version, provider: f.name });
        await this.setDeclaredChecksum(q, existing, f, now);
        await audit(q, p, c.org.id, 'provider.update', label, { architecture: f.architecture, checksum: f.checksum ?? null });
        const row = (await findProvider(q, c.version.id, f.name, f.architecture))!;
        return providerJson(links, c.org, c.box, c.version, row);
      }
      const sameName = (await providersOf(q, [c.version.id])).filter((x) => x.name === f.name);
      const isDefault = defaultOfNew(c.version, sameName, f, label);
      if (isDefault) await q.run('UPDATE providers SET default_architecture = 0 WHERE version_id = $1 AND name = $2', [c.version.id, f.name]);
      const id = newId();
      try {
        await q.run(
          `INSERT INTO providers (id, version_id, name, architecture, default_architecture, declared_checksum, declared_checksum_type, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
          [id, c.version.id, f.name, f.architecture, isDefault, f.checksum ?? null, f.checksumType ?? null, now],
        );
      } catch (e) {
        if (isUniqueViolation(e)) throw new BoxsigError('EXISTS', `provider ${label} (${f.architecture}) exists`, { status: 409 });
        throw e;
      }
      await audit(q, p, c.org.id, 'provider.create', label, { architecture: f.architecture, checksum: f.checksum ?? null });
      await this.db.announce(q, c.box.id);
      return providerJson(links, c.org, c.box, c.version, (await findProvider(q, c.version.id, f.name, f.architecture))!);
    });
  }

  private async setDeclaredChecksum(q: Sql, row: ProviderRow, f: { checksum?: string | null; checksumType?: string | null }, now: string): Promise<void> {
    if (f.checksum === undefined) return;
    await q.run('UPDATE providers SET declared_checksum = $2, declared_checksum_type = $3, updated_at = $4 WHERE id = $1', [
      row.id,
      f.checksum,
      f.checksumType,
      now,
    ]);
  }

  async getProvider(p: Principal | null, path: ProviderPath, links: Links) {
    return this.db.tx(async (q) => {
      const c = await this.providerCtx(q, p, path);
      return providerJson(links, c.org, c.box, c.version, c.provider);
    });
  }

  async updateProvider(p: Principal | null, path: ProviderPath, body: unknown, links: Links) {
    const b = section(body, 'provider');
    return this.db.tx(async (q) => {
      const c = await this.providerCtx(q, p, path, { role: 'publish', what: 'changing a provider' });
      const label = `${c.org.name}/${c.box.name} ${c.version.version} ${c.provider.name}`;
      if (c.version.status === 'active' && c.provider.blob_sha256)
        throw immutable({ org: c.org.name, box: c.box.name, version: c.version.version, provider: c.provider.name });
      const f = this.providerFields({ ...b, name: b.name ?? c.provider.name, architecture: b.architecture ?? c.provider.architecture });
      if (f.name !== c.provider.name || f.architecture !== c.provider.architecture) throw usage('a provider cannot be renamed; delete it and create another');
      await this.setDeclaredChecksum(q, c.provider, f, nowText());
      await audit(q, p, c.org.id, 'provider.update', label, { checksum: f.checksum ?? null });
      return providerJson(links, c.org, c.box, c.version, (await findProvider(q, c.version.id, f.name, f.architecture))!);
    });
  }

  async deleteProvider(p: Principal | null, path: ProviderPath, links: Links) {
    return this.db.tx(async (q) => {
      const c = await this.providerCtx(q, p, path, { role: 'publish', what: 'deleting a provider' });
      const label = `${c.org.name}/${c.box.name} ${c.version.version} ${c.provider.name}`;
      if (c.version.status === 'active' && c.provider.blob_sha256)
        throw immutable({ org: c.org.name, box: c.box.name, version: c.version.version, provider: c.provider.name });
      const view = providerJson(links, c.org, c.box, c.version, c.provider);
      await q.run('DELETE FROM providers WHERE id = $1', [c.provider.id]);
      await audit(q, p, c.org.id, 'provider.delete', label, { architecture: c.provider.architecture });
      await this.db.announce(q, c.box.id);
      return view;
    });
  }

  // ---- uploads ----

  /** An upload URL (a secret capability) for the provider; `direct` adds the callback Vagrant and Packer confirm with. */
  async startUpload(p: Principal | null, path: ProviderPath, direct: boolean, links: Links) {
    return this.db.tx(async (q) => {
      const c = await this.providerCtx(q, p, path, { role: 'publish', what: 'uploading a box' });
      if (c.version.status === 'active' && c.provider.blob_sha256)
        throw immutable({ org: c.org.name, box: c.box.name, version: c.version.version, provider: c.provider.name });
      if (p?.kind !== 'token') throw usage('uploads are made with a token');
      const now = new Date();
      await boundUploadSessions(q, p.tokenId, c.provider.id, now, this.config.uploadsPerToken);
      const secret = randomBytes(32).toString('base64url');
      await q.run(
        `INSERT INTO uploads (id, provider_id, token_id, secret_hash, direct, state, created_at, updated_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7)`,
        [
          newId(),
          c.provider.id,
          p.tokenId,
          hashToken(secret),
          direct,
          nowText(now),
          nowText(new Date(now.getTime() + this.config.uploadSessionSeconds * 1000)),
        ],
      );
      const uploadPath = `${links.base}/api/v1/upload/${secret}`;
      return direct ? { upload_path: uploadPath, callback: `${uploadPath}/complete` } : { upload_path: uploadPath };
    });
  }

  /** Receive the bytes (PUT upload_path): see upload.ts. */
  receive(secret: string, body: NodeJS.ReadableStream, beforeBody?: () => void): Promise<UploadOutcome> {
    if (this.closing) throw new BoxsigError('UNAVAILABLE', 'the registry is shutting down; upload again in a moment', { status: 503 });
    const p = receiveUpload(this, secret, body as import('node:stream').Readable, beforeBody);
    this.pending.add(p);
    void p.catch(() => undefined).finally(() => this.pending.delete(p));
    return p;
  }

  /** Resolves once every upload in flight has been published or recorded as failed. */
  async quiesce(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /** The callback of a direct upload: the verdict of the upload, with its refusal code. */
  async completeUpload(p: Principal | null, secret: string, links: Links) {
    return this.db.tx(async (q) => {
      const t = await findSession(q, secret);
      if (!t) throw new BoxsigError('NOT_FOUND', 'this upload is unknown');
      const org = await mustOrg(q, t.org);
      authorize(p, org, 'publish', `confirming an upload to ${t.org}/${t.box}`);
      if (t.state === 'published') {
        const c = await this.providerCtx(q, p, { org: t.org, box: t.box, version: t.version, provider: t.provider, architecture: t.architecture });
        return providerJson(links, c.org, c.box, c.version, c.provider);
      }
      const s = await q.one<{ code: string | null; message: string | null }>('SELECT code, message FROM uploads WHERE id = $1', [t.id]);
      if (t.state === 'refused' || t.state === 'failed') {
        throw new BoxsigError((s?.code ?? 'INTERNAL') as BoxsigError['code'], s?.message ?? 'the upload failed');
      }
      if (t.state === 'receiving') throw new BoxsigError('EXISTS', 'the upload is still being received', { status: 409 });
      throw usage('nothing was uploaded to this URL');
    });
  }

  /** Keep track of an upload in flight (shutdown discards them after the grace period). */
  track(body: LimitedBody): { done(): void } {
    this.active.add(body);
    return { done: () => void this.active.delete(body) };
  }

  get uploadsInFlight(): number {
    return this.active.size;
  }

  abortUploads(reason: string): void {
    for (const b of this.active) b.fail(new BoxsigError('UNAVAILABLE', reason, { status: 503 }));
  }

  // ---- consumers ----

  async catalog(p: Principal | null, path: BoxPath, links: Links): Promise<string> {
    // the rows are cached with the catalogs (a box that does not exist is not), under the names as the database
    // compares them (folded: one entry whatever the spelling); who may read them is checked every time
    const key = isLookupName(path.org) && isLookupName(path.box) ? `${fold(path.org)}/${fold(path.box)}` : null;
    const rows = await this.catalogs.lookup(
      key,
      async () => {
        const org = await mustOrg(this.db, path.org);
        return { org, box: await findBox(this.db, org.id, path.box) };
      },
      (r) => r.box !== null,
    );
    const c = readable(p, rows, `${rows.org.name}/${path.box}`);
    return this.catalogs.get(
      {
        id: c.box.id,
        orgId: c.org.id,
        org: c.org.name,
        name: c.box.name,
        description: c.box.short_description || c.box.description,
        private: Boolean(c.box.private),
      },
      links,
    );
  }

  /** Where a download comes from: the object of a published provider (released, or any uploaded one for the org's publishers). */
  async download(p: Principal | null, path: ProviderPath): Promise<{ key: string; size: number; sha256: string }> {
    const c = await this.providerCtx(this.db, p, path);
    if (!c.provider.blob_sha256) throw notFound(`an uploaded box for ${c.org.name}/${c.box.name} ${c.version.version} ${c.provider.name}`);
    const blob = await this.db.one<{ object_key: string; size: number }>('SELECT object_key, size FROM blobs WHERE sha256 = $1', [c.provider.blob_sha256]);
    if (!blob) throw new BoxsigError('INTERNAL', 'internal error: a published provider has no blob');
    return { key: blob.object_key, size: Number(blob.size), sha256: c.provider.blob_sha256 };
  }

  async orgKeys(orgName: string) {
    const org = await mustOrg(this.db, orgName);
    const keys = await this.db.query<{ fingerprint: string; kind: string; armored: string }>(
      'SELECT fingerprint, kind, armored FROM org_keys WHERE org_id = $1 ORDER BY fingerprint',
      [org.id],
    );
    const revocations = await this.db.query<{ armored: string }>('SELECT armored FROM revocations WHERE org_id = $1 ORDER BY sha256', [org.id]);
    return { org: org.name, keys, revocations: revocations.map((r) => r.armored) };
  }

  /** The keys a consumer needs for a box's chain (src/registry/trust.ts keysForBox); private boxes need a read token. */
  async boxKeys(p: Principal | null, path: BoxPath) {
    return this.db.tx(async (q) => {
      const c = await this.boxCtx(q, p, path);
      return keysForBox(q, c.org.id, c.org.name, c.box.name);
    });
  }

  async close(): Promise<void> {
    this.blobs.close();
    await this.db.close();
  }
}
