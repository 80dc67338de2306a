/**
 * Secrets in URLs. Vagrant accepts `https://user:password@host/…` and signed
 * URLs carry capabilities in their query (`X-Amz-Signature`, `access_token`).
 * Nothing boxsig prints, logs or stores keeps them: user info is removed and
 * the values of secret-looking query parameters become `REDACTED`.
 */

/** Query parameter names whose values are treated as secrets. */
const SECRET_PARAM = /token|sig|secret|passw|pwd|key|auth|credential|session/i;

/** `scheme://userinfo@` in free text (the last `@` before the path ends the user info). */
const USERINFO_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi;

/** `?name=value` or `&name=value` in free text where the name looks secret. */
const SECRET_PARAM_IN_TEXT = /([?&]([^=&#\s]*)=)([^&#\s"'<>]*)/g;

const REDACTED = 'REDACTED';

function redactQuery(search: string): string {
  return search.replace(SECRET_PARAM_IN_TEXT, (all, head: string, name: string, value: string) =>
    value && SECRET_PARAM.test(safeDecode(name)) ? `${head}${REDACTED}` : all,
  );
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A URL without its user info and with secret query values redacted, for
 * showing or recording. Anything that is not a URL is returned unchanged.
 */
export function scrubUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return scrubText(String(url));
  }
  u.username = '';
  u.password = '';
  u.search = redactQuery(u.search);
  return u.href;
}

/** Scrub every URL inside free text (messages, JSON string values). */
export function scrubText(text: string): string {
  if (!text.includes('://') && !text.includes('=')) return text;
  return redactQuery(text.replace(USERINFO_IN_TEXT, '$1'));
}

/**
 * Split the user info off a URL: the URL without it and, when there was any,
 * the value of a basic Authorization header made of it.
 */
export function splitCredentials(url: URL): { url: URL; authorization: string | null } {
  if (!url.username && !url.password) return { url, authorization: null };
  const user = safeDecode(url.username);
  const password = safeDecode(url.password);
  const clean = new URL(url.href);
  clean.username = '';
  clean.password = '';
  return { url: clean, authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}
