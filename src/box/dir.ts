/**
 * Verifying an extracted box directory (`boxsig verify --dir`, used by the
 * Vagrant plugin after Vagrant's own extraction, and `verify --installed`):
 * the same checks and codes as an archive. Links and special files are
 * refused; every regular file must be listed with the right size and hash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BoxsigError, refuse, ioError } from '../errors.js';
import { CHUNK_SIZE, LIMITS } from '../shared/limits.js';
import { PathRegistry, foldName, showPath } from '../archive/paths.js';
import type { ManifestFile } from '../manifest/manifest.js';
import { BOXSIG_DIR, MANIFEST_PATH } from '../manifest/manifest.js';
import type { BoxsigPrefix, Expectation } from './reader.js';

const SIG_NAME = /^([0-9A-F]{40}|[0-9A-F]{64})\.asc$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Directory entries as strings, refusing names that are not UTF-8 (they
 * cannot be listed in a manifest, and decoding them lossily would name a
 * different file).
 */
function readNames(dir: string, rel: string): string[] {
  let raw: Buffer[];
  try {
    raw = fs.readdirSync(dir, { encoding: 'buffer' });
  } catch (e) {
    throw ioError(`cannot read ${dir}`, e);
  }
  return raw
    .map((b) => {
      try {
        return utf8.decode(b);
      } catch {
        throw refuse('UNSAFE_ENTRY', `a file name in ${showPath(rel || '.')} is not valid UTF-8`, { raw: b.toString('hex') });
      }
    })
    .sort();
}

function lstat(p: string): fs.Stats {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    throw ioError(`cannot read ${p}`, e);
  }
}

function readSmall(file: string, limit: number, what: string): Buffer {
  const st = lstat(file);
  if (!st.isFile()) throw refuse('UNSAFE_ENTRY', `${what} is not a regular file`, { path: what });
  if (st.size > limit) throw refuse('MALFORMED', `${what} is ${st.size} bytes, more than the ${limit}-byte limit`);
  return fs.readFileSync(file);
}

/** Read `.boxsig/` of an extracted box. */
export function readDirPrefix(dir: string): BoxsigPrefix {
  const prefix: BoxsigPrefix = { present: false, manifest: null, signatures: new Map(), keys: new Map(), endOffset: 0, paths: [] };
  const root = path.join(dir, BOXSIG_DIR);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(root);
  } catch {
    return prefix;
  }
  if (!st.isDirectory()) throw refuse('UNSAFE_ENTRY', '.boxsig is not a directory', { path: BOXSIG_DIR });
  prefix.present = true;
  for (const name of readNames(root, BOXSIG_DIR)) {
    const p = path.join(root, name);
    const rel = `${BOXSIG_DIR}/${name}`;
    const s = lstat(p);
    if (name === 'manifest.json') {
      prefix.manifest = readSmall(p, LIMITS.maxManifestBytes, MANIFEST_PATH);
    } else if (name === 'signatures' || name === 'keys') {
      if (!s.isDirectory()) throw refuse('UNSAFE_ENTRY', `${rel} is not a directory`, { path: rel });
      const map = name === 'signatures' ? prefix.signatures : prefix.keys;
      for (const f of readNames(p, rel)) {
        const m = SIG_NAME.exec(f);
        if (!m) throw refuse('MALFORMED', `unexpected file ${showPath(`${rel}/${f}`)} in .boxsig/`, { path: `${rel}/${f}` });
        if (map.size >= LIMITS.maxSigners) throw refuse('MALFORMED', `more than ${LIMITS.maxSigners} ${name} in .boxsig/`);
        map.set(m[1], readSmall(path.join(p, f), LIMITS.maxBoxsigFileBytes, `${rel}/${f}`));
      }
    } else {
      throw refuse('MALFORMED', `unexpected file ${showPath(rel)} in .boxsig/`, { path: rel });
    }
  }
  return prefix;
}

export interface DirFile {
  path: string;
  abs: string;
  size: number;
}

/** Walk the box directory (without following links) and refuse anything that is not a plain file or directory. */
export function walkBoxDir(dir: string): DirFile[] {
  const files: DirFile[] = [];
  const reg = new PathRegistry();
  let count = 0;
  const walk = (abs: string, rel: string) => {
    for (const name of readNames(abs, rel)) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (!rel && name === BOXSIG_DIR) continue;
      if (!rel && foldName(name) === BOXSIG_DIR) throw refuse('UNSAFE_ENTRY', `${showPath(name)} imitates the reserved .boxsig/ directory`, { path: name });
      if (++count > LIMITS.maxEntries) throw refuse('MALFORMED', `more than ${LIMITS.maxEntries} entries in the box directory`);
      const childAbs = path.join(abs, name);
      const st = lstat(childAbs);
      if (st.isSymbolicLink()) throw refuse('UNSAFE_ENTRY', `${showPath(childRel)} is a symbolic link`, { path: childRel });
      if (st.isDirectory()) {
        reg.add(childRel, 'dir');
        walk(childAbs, childRel);
      } else if (st.isFile()) {
        if (st.nlink > 1) throw refuse('UNSAFE_ENTRY', `${showPath(childRel)} is a hard link (${st.nlink} names)`, { path: childRel });
        reg.add(childRel, 'file');
        files.push({ path: childRel, abs: childAbs, size: st.size });
      } else {
        throw refuse('UNSAFE_ENTRY', `${showPath(childRel)} is a device, FIFO or socket`, { path: childRel });
      }
    }
  };
  walk(dir, '');
  return files;
}

async function sha256File(file: string, onBytes?: (n: number) => void): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK_SIZE);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK_SIZE, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      onBytes?.(bytesRead);
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/**
 * Check the files of an extracted box against the expectation (or just hash
 * them when there is none). Structure first (cheap), then contents.
 */
export async function checkBoxDir(
  dir: string,
  expectation: Expectation | null,
  onBytes?: (n: number) => void,
): Promise<{ files: ManifestFile[]; metadata: Buffer | null }> {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw ioError(`cannot open box directory ${dir}`, e);
  }
  if (!st.isDirectory()) throw new BoxsigError('USAGE', `${dir} is not a directory`);
  const found = walkBoxDir(dir);
  if (expectation) {
    for (const f of found) {
      const e = expectation.files.get(f.path);
      if (!e) throw refuse('UNLISTED_FILE', `${showPath(f.path)} is not listed in the signed manifest`, { path: f.path });
      if (e.size !== f.size) throw refuse('TAMPERED', `${showPath(f.path)} is ${f.size} bytes; the signed manifest says ${e.size}`, { path: f.path });
    }
    const have = new Set(found.map((f) => f.path));
    const missing = [...expectation.files.keys()].filter((p) => !have.has(p));
    if (missing.length) {
      throw refuse(
        'MISSING_FILE',
        `${missing.map(showPath).join(', ')} ${missing.length === 1 ? 'is' : 'are'} listed in the signed manifest but not in the box`,
        { paths: missing },
      );
    }
  }
  const files: ManifestFile[] = [];
  let metadata: Buffer | null = null;
  for (const f of found) {
    const digest = await sha256File(f.abs, onBytes);
    const e = expectation?.files.get(f.path);
    if (e && e.sha256 !== digest) {
      throw refuse('TAMPERED', `${showPath(f.path)} does not match its SHA-256 in the signed manifest`, { path: f.path, sha256: digest, expected: e.sha256 });
    }
    if (f.path === 'metadata.json' && f.size <= LIMITS.maxMetadataBytes) metadata = fs.readFileSync(f.abs);
    files.push({ path: f.path, size: f.size, sha256: digest });
  }
  return { files, metadata };
}
