/**
 * Box-name globs: `*` matches any run of characters (box names have at most
 * one "/", so `acme/*` is every box of acme), `?` one character; everything
 * else is literal.
 */

export function globProblem(glob: string): string | null {
  if (glob.length === 0) return 'is empty';
  if (glob.length > 200) return 'is longer than 200 characters';
  if (!/^[A-Za-z0-9._+\-/*?]+$/.test(glob)) return 'may only hold letters, digits, ".", "_", "+", "-", "/", "*" and "?"';
  return null;
}

function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (const c of glob) {
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else re += c.replace(/[.+\-/^$()[\]{}|\\]/g, (m) => `\\${m}`);
  }
  return new RegExp(re + '$', 's');
}

export function globMatches(glob: string, name: string): boolean {
  return globToRegExp(glob).test(name);
}

/**
 * How specific a glob is: an exact name beats any pattern; among patterns,
 * more literal characters win, then fewer wildcards.
 */
function specificity(glob: string): [number, number, number] {
  const wild = [...glob].filter((c) => c === '*' || c === '?').length;
  const exact = wild === 0 ? 1 : 0;
  return [exact, glob.length - wild, -wild];
}

export function compareSpecificity(a: string, b: string): number {
  const sa = specificity(a);
  const sb = specificity(b);
  for (let i = 0; i < 3; i++) if (sa[i] !== sb[i]) return sa[i] - sb[i];
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Matching globs, most specific first. */
export function matchingGlobs(globs: Iterable<string>, name: string): string[] {
  return [...globs].filter((g) => globMatches(g, name)).sort((a, b) => -compareSpecificity(a, b));
}

/**
 * Whether every name matched by `inner` is also matched by `outer` (sound:
 * a true answer is always right; used to check that an org's certification
 * stays inside the org's scope).
 */
export function globWithin(inner: string, outer: string): boolean {
  const a = [...inner];
  const b = [...outer];
  // memoised symbolic match: outer's tokens must cover inner's tokens
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let r: boolean;
    if (j === b.length) r = i === a.length;
    else if (b[j] === '*') r = go(i, j + 1) || (i < a.length && go(i + 1, j));
    else if (i === a.length) r = false;
    else if (a[i] === '*')
      r = false; // only an outer '*' can absorb an inner '*'
    else if (b[j] === '?')
      r = go(i + 1, j + 1); // outer '?' covers any single inner char or '?'
    else r = a[i] === b[j] && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}
