/**
 * Opening the engines a configuration names: PostgreSQL or the embedded
 * database, S3 or the blob directory — with the schema brought up to date.
 */
import path from 'node:path';
import type { RegistryConfig } from './config.js';
import type { Db } from './db/engine.js';
import { migrate } from './db/schema.js';
import { FsBlobStore } from './blobs/fs.js';
import type { BlobStore } from './blobs/store.js';
import { Registry, silentLog, type Log } from './registry.js';
import { loadRegistryKey } from './log/key.js';
import { backfillPublications } from './log/events.js';
import { escrowExtension } from './escrow/sign.js';
import { loadKeyEncryption, type KeyEncryption } from './escrow/kek.js';

/** The key-encryption key of held keys: `escrowKeyFile`, else BOXSIG_REGISTRY_ESCROW_KEY; null when neither is set. */
export function openKeyEncryption(config: Pick<RegistryConfig, 'escrowKeyFile'>, env: NodeJS.ProcessEnv = process.env): KeyEncryption | null {
  return loadKeyEncryption(config.escrowKeyFile, env.BOXSIG_REGISTRY_ESCROW_KEY);
}

const EMBEDDED_DB = 'registry.db';

export async function openDatabase(config: Pick<RegistryConfig, 'database' | 'data'>): Promise<Db> {
  let db: Db;
  if (config.database) {
    const { PostgresDb } = await import('./db/postgres.js');
    db = new PostgresDb(config.database);
  } else {
    const { SqliteDb } = await import('./db/sqlite.js');
    db = new SqliteDb(path.join(config.data!, EMBEDDED_DB));
  }
  try {
    await migrate(db);
    await backfillPublications(db);
  } catch (e) {
    await db.close();
    throw e;
  }
  return db;
}

async function openBlobs(config: Pick<RegistryConfig, 's3' | 'data' | 'maxBoxBytes'>): Promise<BlobStore> {
  if (config.s3) {
    const { S3BlobStore } = await import('./blobs/s3.js');
    return new S3BlobStore({ ...config.s3, largestObject: config.maxBoxBytes });
  }
  return new FsBlobStore(config.data!);
}

export async function openRegistry(config: RegistryConfig, log: Log = silentLog): Promise<Registry> {
  const db = await openDatabase(config);
  let blobs: BlobStore;
  try {
    blobs = await openBlobs(config);
  } catch (e) {
    await db.close();
    throw e;
  }
  const reg = new Registry(db, blobs, config, log);
  try {
    reg.signer = loadRegistryKey(config);
    reg.keyEncryption = openKeyEncryption(config);
    reg.uploadExtensions.push(escrowExtension(reg, reg.keyEncryption));
  } catch (e) {
    await reg.close();
    throw e;
  }
  await reg.start();
  return reg;
}
