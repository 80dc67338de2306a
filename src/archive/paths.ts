/**
 * Path rules for entries of a box.
 *
 * A box is extracted by GNU tar, bsdtar (Vagrant) and boxsig itself, on Linux,
 * macOS and Windows. A path is accepted only when all of them would put the
 * file at the same place, inside the extraction directory.
 */
import { refuse } from '../errors.js';
import { LIMITS } from '../shared/limits.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeName(bytes: Uint8Array, what = 'entry name'): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw refuse('UNSAFE_ENTRY', `${what} is not valid UTF-8`, { raw: Buffer.from(bytes).toString('hex') });
  }
}

/** Printable form of a hostile name for messages (control characters escaped, length capped). */
export function showPath(p: string): string {
  const escaped = JSON.stringify(p.length > 200 ? p.slice(0, 200) + '…' : p);
  return escaped;
}

/**
 * Normalise a path from an archive: drop `.` and empty components (so `./a//b/` is `a/b`).
 * Refuses absolute paths, `..`, backslashes, drive letters, control characters,
 * over-long components and over-long paths. Returns '' for the root (`./`).
 */
export function normalizeEntryPath(raw: string): string {
  if (raw.length === 0) throw refuse('UNSAFE_ENTRY', 'entry with an empty name');
  if (raw.startsWith('/')) throw refuse('UNSAFE_ENTRY', `absolute path ${showPath(raw)} in archive`, { path: raw });
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw refuse('UNSAFE_ENTRY', `control character in path ${showPath(raw)}`, { path: raw });
  if (raw.includes('\\')) {
    throw refuse('UNSAFE_ENTRY', `backslash in path ${showPath(raw)} (a directory separator on Windows and for Vagrant's extractor)`, { path: raw });
  }
  if (raw.includes(':')) throw refuse('UNSAFE_ENTRY', `colon in path ${showPath(raw)} (a drive letter or stream name on Windows)`, { path: raw });
  if (Buffer.byteLength(raw) > LIMITS.maxPathBytes) {
    throw refuse('UNSAFE_ENTRY', `path longer than ${LIMITS.maxPathBytes} bytes: ${showPath(raw)}`, { path: raw });
  }
  const parts: string[] = [];
  for (const c of raw.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw refuse('UNSAFE_ENTRY', `path ${showPath(raw)} climbs out of the box with ".."`, { path: raw });
    if (Buffer.byteLength(c) > LIMITS.maxComponentBytes) {
      throw refuse('UNSAFE_ENTRY', `path component longer than ${LIMITS.maxComponentBytes} bytes in ${showPath(raw)}`, { path: raw });
    }
    parts.push(c);
  }
  if (parts.length > LIMITS.maxPathDepth) {
    throw refuse('UNSAFE_ENTRY', `path nested deeper than ${LIMITS.maxPathDepth} directories: ${showPath(raw)}`, { path: raw });
  }
  return parts.join('/');
}

/**
 * The key under which two names are "the same file" on some filesystem:
 * Unicode compatibility normalisation, case folding, and Windows' dropping of
 * trailing dots and spaces.
 */
export function foldName(p: string): string {
  return p
    .split('/')
    .map((c) =>
      c
        .normalize('NFKC')
        .toUpperCase()
        .toLowerCase()
        .normalize('NFKC')
        .replace(/[. ]+$/u, ''),
    )
    .join('/');
}

/**
 * Tracks every path (and every implied parent directory) of an archive and
 * refuses duplicates and names that collide after folding.
 */
export class PathRegistry {
  /** exact path -> kind */
  private readonly kinds = new Map<string, 'file' | 'dir' | 'implied'>();
  /** folded path -> exact path */
  private readonly folded = new Map<string, string>();

  has(p: string): boolean {
    const k = this.kinds.get(p);
    return k === 'file' || k === 'dir';
  }

  /** Register an explicit entry. */
  add(p: string, kind: 'file' | 'dir'): void {
    const prev = this.kinds.get(p);
    if (prev === kind) {
      throw refuse('DUPLICATE_ENTRY', `the archive contains ${showPath(p)} more than once`, { path: p });
    }
    if (prev !== undefined && (prev !== 'implied' || kind === 'file')) {
      throw refuse('UNSAFE_ENTRY', `${showPath(p)} is both a directory and a file`, { path: p });
    }
    // parents must not be files, and must not collide when folded
    const parts = p === '' ? [] : p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const pk = this.kinds.get(parent);
      if (pk === 'file') throw refuse('UNSAFE_ENTRY', `${showPath(p)} is inside ${showPath(parent)}, which is a file`, { path: p });
      if (pk === undefined) {
        this.checkFold(parent, p);
        this.kinds.set(parent, 'implied');
      }
    }
    if (prev === undefined) this.checkFold(p, p);
    this.kinds.set(p, kind);
  }

  private checkFold(p: string, entry: string): void {
    if (p === '') return;
    const f = foldName(p);
    const other = this.folded.get(f);
    if (other !== undefined && other !== p) {
      throw refuse('UNSAFE_ENTRY', `${showPath(entry)} collides with ${showPath(other)} on case-insensitive or Unicode-normalising filesystems`, {
        path: entry,
        other,
      });
    }
    this.folded.set(f, p);
  }
}
