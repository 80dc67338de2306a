/**
 * How many distinct trusted keys stand behind a box (the threshold's count).
 *
 * Only keys that were trusted before this box count: a pinned, org-certified,
 * recorded (or, on first use, newly recorded) signer counts as itself; a new
 * key certified by a recorded key (rotation by certification) counts as the
 * recorded key(s) that certified it; a new key trusted because a recorded key
 * co-signed this box (rotation by co-signature) adds nothing. And one signing
 * (sub)key counts once, whatever primaries it is bound to.
 *
 * The count is a maximum matching between the box's signing keys and the
 * trusted keys they rest on: each signing key stands for at most one trusted
 * key, each trusted key is counted at most once.
 */

export interface Backing {
  /** The (sub)key that made the signature. */
  signingKey: string;
  /** The keys, trusted before this box, that this signer's trust rests on (empty: none). */
  basis: string[];
}

export function countTrusted(signers: Backing[]): number {
  const bases = new Map<string, Set<string>>();
  for (const s of signers) {
    const set = bases.get(s.signingKey) ?? new Set<string>();
    for (const b of s.basis) set.add(b);
    bases.set(s.signingKey, set);
  }
  const matchedTo = new Map<string, string>(); // trusted key -> signing key standing for it
  const augment = (signingKey: string, seen: Set<string>): boolean => {
    for (const b of bases.get(signingKey)!) {
      if (seen.has(b)) continue;
      seen.add(b);
      const holder = matchedTo.get(b);
      if (holder === undefined || augment(holder, seen)) {
        matchedTo.set(b, signingKey);
        return true;
      }
    }
    return false;
  };
  let count = 0;
  for (const signingKey of bases.keys()) if (augment(signingKey, new Set())) count++;
  return count;
}
