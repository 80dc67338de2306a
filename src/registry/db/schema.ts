/**
 * The registry's schema and its migrations: one list, applied in order on
 * PostgreSQL and on the embedded engine alike. The only dialect difference is
 * how an append-only sequence number is declared.
 *
 * Tables (issue 14), and what issue 15 builds on:
 * - orgs (policy: the boxsig.json document uploads are judged by), tokens
 *   (hashed, scoped to one org and one role, held by a named member);
 * - boxes, versions, providers (architecture and default_architecture per
 *   provider, as the Vagrant Cloud API v2 has them), blobs (one row per
 *   distinct SHA-256), uploads (one row per upload session, with the lease
 *   of the process receiving it);
 * - box_signers: the keys the registry trusted on first use for a box whose
 *   org policy neither pins keys nor names an org key (as `boxsig add`);
 * - org_keys, revocations: public keys and revocation certificates the org
 *   registered (org keys for chains today; repository and escrow keys and
 *   certifications in issue 15: `kind`);
 * - publications: one row per provider that became downloadable, with the
 *   box and manifest hashes and the signers — the input of the transparency
 *   log (issue 15);
 * - audit: every write, by whom, in the same transaction as the write.
 * - held_keys (version 3): secret keys the registry holds — an org key it
 *   certifies repository keys with, per-box escrow keys it signs uploads
 *   with — wrapped under the operator's key-encryption key.
 */
import { BoxsigError } from '../../errors.js';
import { nowText, type Db, type Dialect } from './engine.js';

interface Migration {
  version: number;
  name: string;
  statements(d: Dialect): string[];
}

const serial = (d: Dialect) => (d === 'postgres' ? 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT');

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'registry core: orgs, tokens, boxes, versions, providers, blobs, uploads, trust, publications, audit',
    // long: the SQL of the first schema, one statement per table and index
    statements: (d) => [
      `CREATE TABLE orgs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        folded TEXT NOT NULL UNIQUE,
        policy TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)`,
      `CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES orgs(id),
        role TEXT NOT NULL CHECK (role IN ('read', 'publish', 'admin')),
        member TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT)`,
      `CREATE TABLE boxes (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES orgs(id),
        name TEXT NOT NULL,
        folded TEXT NOT NULL,
        private INTEGER NOT NULL DEFAULT 0,
        signing TEXT NOT NULL DEFAULT 'self' CHECK (signing IN ('self', 'escrow')),
        short_description TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (org_id, folded))`,
      `CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        box_id TEXT NOT NULL REFERENCES boxes(id),
        version TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('unreleased', 'active', 'deleted')),
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        released_at TEXT,
        UNIQUE (box_id, version))`,
      `CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        object_key TEXT NOT NULL UNIQUE,
        size BIGINT NOT NULL,
        created_at TEXT NOT NULL)`,
      `CREATE TABLE providers (
        id TEXT PRIMARY KEY,
        version_id TEXT NOT NULL REFERENCES versions(id),
        name TEXT NOT NULL,
        architecture TEXT NOT NULL DEFAULT 'unknown',
        default_architecture INTEGER NOT NULL DEFAULT 1,
        declared_checksum TEXT,
        declared_checksum_type TEXT,
        blob_sha256 TEXT REFERENCES blobs(sha256),
        size BIGINT,
        signed INTEGER,
        manifest TEXT,
        manifest_sha256 TEXT,
        signers TEXT,
        uploaded_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (version_id, name, architecture))`,
      `CREATE INDEX providers_blob ON providers (blob_sha256)`,
      `CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        provider_id TEXT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
        token_id TEXT NOT NULL REFERENCES tokens(id),
        secret_hash TEXT NOT NULL UNIQUE,
        direct INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'receiving', 'published', 'refused', 'failed', 'expired')),
        object_key TEXT,
        owner TEXT,
        heartbeat_at TEXT,
        code TEXT,
        message TEXT,
        sha256 TEXT,
        size BIGINT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expires_at TEXT NOT NULL)`,
      `CREATE INDEX uploads_state ON uploads (state)`,
      `CREATE INDEX uploads_object ON uploads (object_key)`,
      `CREATE TABLE box_signers (
        box_id TEXT NOT NULL REFERENCES boxes(id),
        fingerprint TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (box_id, fingerprint))`,
      `CREATE TABLE org_keys (
        org_id TEXT NOT NULL REFERENCES orgs(id),
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('org', 'repo', 'escrow')),
        armored TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (org_id, fingerprint))`,
      `CREATE TABLE revocations (
        org_id TEXT NOT NULL REFERENCES orgs(id),
        sha256 TEXT NOT NULL,
        issuer TEXT NOT NULL,
        armored TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (org_id, sha256))`,
      `CREATE TABLE publications (
        seq ${serial(d)},
        provider_id TEXT NOT NULL UNIQUE,
        org TEXT NOT NULL,
        box TEXT NOT NULL,
        version TEXT NOT NULL,
        provider TEXT NOT NULL,
        architecture TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size BIGINT NOT NULL,
        manifest_sha256 TEXT,
        signers TEXT NOT NULL,
        published_at TEXT NOT NULL)`,
      `CREATE TABLE audit (
        seq ${serial(d)},
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        org_id TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        details TEXT NOT NULL)`,
      `CREATE INDEX audit_org ON audit (org_id, seq)`,
    ],
  },
  {
    version: 2,
    name: 'first-use record provenance: the recorded keys that vouched for a key added by rotation',
    statements: () => [`ALTER TABLE box_signers ADD COLUMN vouched_by TEXT`],
  },
  {
    version: 3,
    name: 'transparency log',
    // issue 15: the Merkle log of publications and key events (src/registry/log/store.ts)
    statements: () => [
      `CREATE TABLE log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        size BIGINT NOT NULL,
        root TEXT NOT NULL,
        updated_at TEXT NOT NULL)`,
      // the empty tree: size 0, root SHA-256("")
      `INSERT INTO log_head (id, size, root, updated_at)
       VALUES (1, 0, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '1970-01-01T00:00:00.000Z')`,
      `CREATE TABLE log_entries (
        idx BIGINT PRIMARY KEY,
        leaf_hash TEXT NOT NULL,
        kind TEXT NOT NULL,
        box TEXT,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL)`,
      `CREATE INDEX log_entries_box ON log_entries (box, idx)`,
      `CREATE INDEX log_entries_leaf ON log_entries (leaf_hash)`,
      `CREATE TABLE log_hashes (
        level INTEGER NOT NULL,
        idx BIGINT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (level, idx))`,
      `ALTER TABLE publications ADD COLUMN log_index BIGINT`,
    ],
  },
  {
    version: 4,
    name: 'escrow',
    statements: () => [
      // secret keys the registry holds (an org key it certifies with, escrow keys it signs with), each
      // wrapped under the operator's key-encryption key (src/registry/escrow/kek.ts), never in clear
      `CREATE TABLE held_keys (
        org_id TEXT NOT NULL REFERENCES orgs(id),
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('org', 'escrow')),
        box_id TEXT,
        wrapped TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'converting', 'superseded')),
        successor TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        exported_at TEXT,
        PRIMARY KEY (org_id, fingerprint))`,
      `CREATE UNIQUE INDEX held_keys_escrow_box ON held_keys (box_id) WHERE kind = 'escrow' AND state <> 'superseded'`,
    ],
  },
];

const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Bring the schema up to date; safe when several processes start at once. */
export async function migrate(db: Db): Promise<{ applied: number[] }> {
  return db.exclusive(() =>
    db.tx(async (q) => {
      await q.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
      const done = new Set((await q.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
      const newest = Math.max(0, ...done);
      if (newest > SCHEMA_VERSION) {
        throw new BoxsigError(
          'CONFIG',
          `${db.description} has schema version ${newest}, newer than this boxsig understands (${SCHEMA_VERSION}); upgrade boxsig`,
        );
      }
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        for (const s of m.statements(db.dialect)) await q.run(s);
        await q.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, nowText()]);
        applied.push(m.version);
      }
      return { applied };
    }),
  );
}
