/**
 * Text on its way to a terminal. Names, versions, claims, user IDs, file
 * names and server messages come from boxes, keys, catalogs and servers; raw,
 * their control characters could move the cursor, erase a refusal and print
 * a fake "verified" line, or reorder what a person reads. Every character a
 * terminal would act on is shown as an escape instead.
 */

/**
 * What a terminal acts on or what hides or reorders text: C0 controls
 * (including ESC, CR, BS, tab and newline), DEL, C1 controls (0x9B is an
 * 8-bit CSI), the Arabic letter mark, zero-width and directional marks,
 * line and paragraph separators, bidirectional embeddings, overrides and
 * isolates, word joiners and invisible operators, the byte order mark and
 * interlinear annotation controls.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

const UNSAFE_ONE = new RegExp(UNSAFE.source);

const NAMED = new Map([
  ['\n', '\\n'],
  ['\r', '\\r'],
  ['\t', '\\t'],
]);

function escapeChar(c: string): string {
  const named = NAMED.get(c);
  if (named) return named;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

/** One line for a terminal: every control or invisible formatting character is escaped (newlines too). */
export function escapeLine(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** Does TEXT hold anything escapeLine would escape? */
export function hasUnsafe(text: string): boolean {
  return UNSAFE_ONE.test(text);
}

/** The first character escapeLine would escape, described for a message ("a line break (U+000A)"), or null. */
export function firstUnsafe(text: string): string | null {
  const m = UNSAFE_ONE.exec(text);
  if (!m) return null;
  const code = m[0].charCodeAt(0);
  const u = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (code === 0x0a || code === 0x0d || code === 0x2028 || code === 0x2029) return `a line break (${u})`;
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return `a control character (${u})`;
  return `an invisible or directional formatting character (${u})`;
}

/**
 * JSON text safe for a terminal and still the same JSON: characters that
 * JSON.stringify leaves raw (DEL, C1 controls, invisible and directional
 * formatting characters, U+2028/U+2029) become \u escapes. They can only
 * occur inside strings, where a \u escape means the same character.
 */
export function escapeJsonText(json: string): string {
  return json.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    // C0 controls are already escaped by JSON.stringify, except in its own indentation newlines
    if (code < 0x20) return c;
    return `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
