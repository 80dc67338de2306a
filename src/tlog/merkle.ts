/**
 * RFC 6962 / RFC 9162 Merkle trees, as the transparency log uses them:
 * leaf hash SHA-256(0x00 ‖ data), node hash SHA-256(0x01 ‖ left ‖ right),
 * the tree of n leaves split at the largest power of two below n.
 *
 * Pure code shared by the registry (which stores the hashes of complete,
 * aligned subtrees and builds proofs from them) and by clients (which verify
 * proofs with no trust in the server beyond its checkpoint signature).
 * Every hash is a 32-byte Buffer.
 */
import { createHash } from 'node:crypto';

const HASH_SIZE = 32;

export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(data)
    .digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();
}

/** SHA-256 of the empty string: the root of the empty tree. */
export const EMPTY_ROOT = createHash('sha256').digest();

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

/** A complete, aligned subtree: leaves [index·2^level, (index+1)·2^level). */
export interface Subtree {
  level: number;
  index: number;
}

/** A range of leaves [start, end) whose RFC 6962 hash a proof carries. */
export interface Range {
  start: number;
  end: number;
}

/**
 * The complete aligned subtrees whose hashes make up MTH(D[start:end]), left
 * to right — for the ranges RFC 6962's recursions produce (start a multiple
 * of the largest power of two ≤ end − start). They are what the registry
 * stores, so every proof reads O(log n) stored hashes.
 */
export function subtreesOf(r: Range): Subtree[] {
  const out: Subtree[] = [];
  let start = r.start;
  while (start < r.end) {
    const n = r.end - start;
    let level = 0;
    while (2 ** (level + 1) <= n && start % 2 ** (level + 1) === 0) level++;
    out.push({ level, index: start / 2 ** level });
    start += 2 ** level;
  }
  return out;
}

/**
 * MTH of a range from the hashes of its subtrees (in the order subtreesOf
 * lists them): fold right to left, exactly as RFC 6962 splits the range.
 */
export function foldSubtrees(hashes: Buffer[]): Buffer {
  if (!hashes.length) return EMPTY_ROOT;
  let h = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) h = nodeHash(hashes[i], h);
  return h;
}

/** RFC 6962 PATH(m, D[0:n]): the ranges of an inclusion proof, from the leaf upwards. */
export function inclusionRanges(m: number, n: number): Range[] {
  if (!(m >= 0 && m < n)) throw new RangeError(`leaf ${m} is not in a tree of ${n} leaves`);
  const out: Range[] = [];
  const walk = (m: number, start: number, end: number): void => {
    const size = end - start;
    if (size <= 1) return;
    const k = split(size);
    if (m < k) {
      walk(m, start, start + k);
      out.push({ start: start + k, end });
    } else {
      walk(m - k, start + k, end);
      out.push({ start, end: start + k });
    }
  };
  walk(m, 0, n);
  return out;
}

/** RFC 6962 PROOF(m, D[0:n]): the ranges of a consistency proof between tree sizes m and n. */
export function consistencyRanges(m: number, n: number): Range[] {
  if (!(m >= 0 && m <= n)) throw new RangeError(`no consistency proof from ${m} to ${n} leaves`);
  if (m === 0 || m === n) return [];
  const out: Range[] = [];
  const sub = (m: number, start: number, end: number, b: boolean): void => {
    const size = end - start;
    if (m === size) {
      if (!b) out.push({ start, end });
      return;
    }
    const k = split(size);
    if (m <= k) {
      sub(m, start, start + k, b);
      out.push({ start: start + k, end });
    } else {
      sub(m - k, start + k, end, false);
      out.push({ start, end: start + k });
    }
  };
  sub(m, 0, n, true);
  return out;
}

/** RFC 9162 2.1.3.2: does `proof` show leaf `index` (hash `leaf`) in the tree of `size` leaves with root `root`? */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (p.length !== HASH_SIZE || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(Buffer.from(root));
}

/** RFC 9162 2.1.4.2: does `proof` show the tree (size1, root1) to be a prefix of (size2, root2)? */
export function verifyConsistency(size1: number, size2: number, proof: Uint8Array[], root1: Uint8Array, root2: Uint8Array): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < size1) return false;
  if (size1 === size2) return proof.length === 0 && Buffer.from(root1).equals(Buffer.from(root2));
  if (size1 === 0) return proof.length === 0;
  if (proof.some((p) => p.length !== HASH_SIZE) || proof.length === 0) return false;
  let path: Buffer[] = proof.map((p) => Buffer.from(p));
  // a power-of-two first tree is its own first node
  if (isPowerOfTwo(size1)) path = [Buffer.from(root1), ...path];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = path[0];
  let sr: Buffer = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(Buffer.from(root1)) && sr.equals(Buffer.from(root2));
}

/**
 * A compact range: the hashes of the complete aligned subtrees that make up
 * leaves [0, size), largest first. Appending a leaf merges equal subtrees
 * (a binary counter); `root()` folds them into MTH(D[0:size]). Memory is
 * O(log size) whatever the number of leaves — a monitor streams the whole
 * log through one.
 */
export class CompactRange {
  private hashes: Buffer[];
  private n: number;

  /** `prefix`: the subtree hashes of [0, size) as subtreesOf({start: 0, end: size}) lists them. */
  constructor(size = 0, prefix: Buffer[] = []) {
    const want = subtreesOf({ start: 0, end: size }).length;
    if (want !== prefix.length) throw new RangeError(`a compact range of ${size} leaves has ${want} hashes, not ${prefix.length}`);
    this.n = size;
    this.hashes = [...prefix];
  }

  get size(): number {
    return this.n;
  }

  appendLeafHash(h: Buffer): void {
    let cur = h;
    let n = this.n;
    while (n % 2 === 1) {
      cur = nodeHash(this.hashes.pop()!, cur);
      n = Math.floor(n / 2);
    }
    this.hashes.push(cur);
    this.n++;
  }

  append(data: Uint8Array): void {
    this.appendLeafHash(leafHash(data));
  }

  root(): Buffer {
    return foldSubtrees(this.hashes);
  }
}

/** MTH of a list of leaf data (for tests and small trees). */
export function rootOf(leaves: Uint8Array[]): Buffer {
  const c = new CompactRange();
  for (const l of leaves) c.append(l);
  return c.root();
}
