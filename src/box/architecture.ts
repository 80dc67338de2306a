/**
 * The architecture a box states, checked after the pass against what it is
 * installed for. The signed manifest's `box.architecture` is checked first,
 * with the identity (src/box/judge.ts), before a byte of disk image is
 * accepted; here metadata.json (whose bytes the manifest signs) must agree
 * with it, and binds the box when the manifest states no architecture.
 */
import { refuse } from '../errors.js';
import { architectureProblem, architecturesAgree, statedArchitecture } from '../manifest/names.js';
import { readMetadata, type Verdict } from './judge.js';

/**
 * Refuse (WRONG_BOX) a box whose metadata.json states an architecture other
 * than its signed manifest's, or, when the manifest states none, other than
 * the one it is installed for. Returns a warning when an architecture was
 * asked for explicitly (or by the catalog) and nothing signed states one.
 */
/** metadata.json is not validated like the manifest: show its architecture quoted and short when it is not a valid name. */
function show(a: string): string {
  return architectureProblem(a) ? JSON.stringify(a.length > 40 ? `${a.slice(0, 40)}…` : a) : a;
}

export function checkArchitecture(verdict: Verdict, metadata: Buffer | null, installedFor: string | undefined, asked: boolean): string | null {
  const signed = statedArchitecture(verdict.manifest?.box.architecture);
  const md = statedArchitecture(readMetadata(metadata)?.architecture);
  if (signed && md && signed !== md) {
    throw refuse('WRONG_BOX', `metadata.json says architecture ${show(md)}, but the signed manifest says ${signed}`, { architecture: signed, metadata: md });
  }
  const stated = signed ?? md;
  if (!architecturesAgree(installedFor, stated)) {
    throw refuse(
      'WRONG_BOX',
      `this is not the box asked for: its metadata.json says architecture ${show(stated!)}, expected ${installedFor}`,
      { architecture: stated, expected: installedFor },
      architectureProblem(stated!) ? undefined : `if you mean to install it for ${stated}, give --architecture ${stated}`,
    );
  }
  if (asked && verdict.signed && !stated && statedArchitecture(installedFor)) {
    return `the box states no architecture (neither its signed manifest nor metadata.json): boxsig cannot tell it from a build for another architecture than ${installedFor}`;
  }
  return null;
}
