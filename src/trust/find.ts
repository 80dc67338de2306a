/**
 * Finding a key in the keyring by what a person types, as gpg accepts it: a
 * fingerprint (any case, spaces or colons, 0x), a long key ID (16 hex digits),
 * or a user ID (`=exact`, `<email>`, or a case-insensitive part). Short key
 * IDs (8 hex digits) are refused: anyone can make a key that collides.
 */
import { BoxsigError, usage } from '../errors.js';
import { normalizeFingerprint } from '../keys/keys.js';
import type { Keyring, KeyListing } from './keyring.js';

export async function findKey(keyring: Keyring, query: string): Promise<KeyListing> {
  const matches = matchKeys(await keyring.list(), query);
  if (matches.length === 1) return matches[0];
  if (matches.length === 0)
    throw new BoxsigError(
      'NOT_FOUND',
      `no key matches ${JSON.stringify(query)} in the keyring ${keyring.keyDir}`,
      { query },
      'boxsig key list shows the keys it holds',
    );
  throw usage(
    `${JSON.stringify(query)} matches ${matches.length} keys; give one of their fingerprints:\n${matches.map((k) => `${k.fingerprint}  ${k.userIds[0] ?? '(no user ID)'}`).join('\n')}`,
    { matches: matches.map((k) => k.fingerprint) },
  );
}

/** The listed keys that QUERY names (pure: the table-driven unit test calls it). */
export function matchKeys(keys: KeyListing[], query: string): KeyListing[] {
  const fpr = normalizeFingerprint(query);
  if (fpr) return keys.filter((k) => k.fingerprint === fpr);
  const hex = query.replace(/^0x/i, '').replace(/[\s:]/g, '').toUpperCase();
  if (/^[0-9A-F]{16}$/.test(hex)) return keys.filter((k) => keyIdOf(k.fingerprint) === hex);
  if (/^[0-9A-F]{8}$/.test(hex)) throw usage(`${JSON.stringify(query)} is a short key ID: give the long key ID (16 hex digits) or the fingerprint`);
  if (query.startsWith('=')) return keys.filter((k) => k.userIds.includes(query.slice(1)));
  if (/^<.*>$/.test(query)) return keys.filter((k) => k.userIds.some((u) => u.toLowerCase().includes(query.toLowerCase())));
  const part = query.trim().toLowerCase();
  if (!part) throw usage('give a fingerprint, a long key ID or a user ID');
  return keys.filter((k) => k.userIds.some((u) => u.toLowerCase().includes(part)));
}

/** The key ID of a primary key: the last 16 hex digits of a v4 fingerprint, the first 16 of a v6 one. */
function keyIdOf(fpr: string): string {
  return fpr.length === 64 ? fpr.slice(0, 16) : fpr.slice(-16);
}
