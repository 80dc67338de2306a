/**
 * The registry's own key: an Ed25519 key that signs the log's checkpoints and
 * the catalog statements (C2SP signed notes). Its name is the log's origin.
 *
 * Where it comes from, first match:
 * 1. BOXSIG_REGISTRY_KEY: the signer key itself (`PRIVATE+KEY+…`);
 * 2. `keyFile` (config) / BOXSIG_REGISTRY_KEY_FILE: a file holding it, readable by
 *    its owner only;
 * 3. `<data>/registry.key`, generated at the first start (exclusive create,
 *    mode 0600: processes starting together on one data directory end up with
 *    the same key).
 * Several processes on one PostgreSQL database without a shared data
 * directory must be given the same key (1 or 2): a CONFIG error says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BoxsigError } from '../../errors.js';
import { generateSignerKey, parseSignerKey, type NoteSigner } from '../../tlog/note.js';
import { fsyncDir, makeDirs } from '../../shared/files.js';
import type { RegistryConfig } from '../config.js';

const KEY_FILE = 'registry.key';

/** The key's name (the log origin): the public URL without its scheme, else a unique name. */
function defaultKeyName(publicUrl: string | null): string {
  if (publicUrl) {
    const u = new URL(publicUrl);
    return `${u.host}${u.pathname.replace(/\/+$/, '')}`.replace(/[\s+]/g, '-');
  }
  return `boxsig-registry-${randomBytes(4).toString('hex')}`;
}

function readKeyFile(file: string, where: string): NoteSigner {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new BoxsigError('CONFIG', `${where}: cannot read the registry key ${file}: ${(e as Error).message}`, { file });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new BoxsigError('CONFIG', `${where}: the registry key ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, { file });
  }
  return parseSignerKey(text, file);
}

/** Create the key file once: written aside, then linked into place (fails if another process won). */
function createKeyFile(file: string, name: string): void {
  makeDirs(path.dirname(file), 0o700);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const { signerKey } = generateSignerKey(name);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, `${signerKey}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, file);
    fsyncDir(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export function loadRegistryKey(config: Pick<RegistryConfig, 'keyFile' | 'data' | 'publicUrl'>, env: NodeJS.ProcessEnv = process.env): NoteSigner {
  if (env.BOXSIG_REGISTRY_KEY) return parseSignerKey(env.BOXSIG_REGISTRY_KEY, 'BOXSIG_REGISTRY_KEY');
  if (config.keyFile) return readKeyFile(config.keyFile, 'keyFile');
  if (config.data) {
    const file = path.join(config.data, KEY_FILE);
    if (!fs.existsSync(file)) createKeyFile(file, defaultKeyName(config.publicUrl));
    return readKeyFile(file, 'the data directory');
  }
  throw new BoxsigError(
    'CONFIG',
    'the registry needs its signing key (checkpoints and catalogs): give keyFile (BOXSIG_REGISTRY_KEY_FILE) or BOXSIG_REGISTRY_KEY, the same to every process, or a --data directory to keep a generated one in',
    {},
    'boxsig registry key generate --name boxes.example.com --out registry.key',
  );
}
