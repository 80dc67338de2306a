/**
 * JSON for hostile input: size and depth limits before parsing, one error code,
 * and the canonical form boxsig signs (RFC 8785, JSON Canonicalization Scheme).
 */
import { refuse } from '../errors.js';
import { LIMITS } from './limits.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parse untrusted JSON bytes; anything wrong is MALFORMED, never a crash. */
export function parseUntrustedJson(bytes: Uint8Array | string, what: string, maxBytes: number): unknown {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > maxBytes) throw refuse('MALFORMED', `${what} is ${size} bytes, more than the ${maxBytes}-byte limit`);
  let text: string;
  try {
    text = typeof bytes === 'string' ? bytes : utf8.decode(bytes);
  } catch {
    throw refuse('MALFORMED', `${what} is not valid UTF-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) throw refuse('MALFORMED', `${what} starts with a byte-order mark`);
  checkDepth(text, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw refuse('MALFORMED', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Refuse nesting deeper than LIMITS.maxJsonDepth without recursion. */
function checkDepth(text: string, what: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > LIMITS.maxJsonDepth) throw refuse('MALFORMED', `${what} is nested deeper than ${LIMITS.maxJsonDepth} levels`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/**
 * RFC 8785 canonical JSON for the values boxsig writes (strings, safe integers,
 * booleans, arrays, objects): object keys sorted by UTF-16 code units, no
 * insignificant whitespace, ECMAScript string escaping.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError('non-finite number in canonical JSON');
    return JSON.stringify(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  throw new TypeError(`cannot encode ${typeof v} as canonical JSON`);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
