import { usage } from '../errors.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400, y: 365 * 86400 };

/**
 * A duration like "90d", "12h", "2w", "1y" (or plain seconds), or an absolute
 * date "2027-01-31" / "2027-01-31T12:00:00Z". Returns seconds from `now`.
 */
export function parseDuration(s: string, now = new Date(), what = '--expires'): number {
  const t = s.trim();
  const m = /^([0-9]+)\s*([smhdwy]?)$/.exec(t);
  if (m) {
    const n = Number(m[1]) * UNITS[m[2] || 's'];
    if (n <= 0 || !Number.isSafeInteger(n)) throw usage(`${what} ${JSON.stringify(s)} must be a positive duration`);
    return n;
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+Z?)?$/.test(t)) {
    const d = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t);
    if (!Number.isNaN(d)) {
      const secs = Math.floor((d - now.getTime()) / 1000);
      if (secs <= 0) throw usage(`${what} ${JSON.stringify(s)} is in the past`);
      return secs;
    }
  }
  throw usage(`${what} ${JSON.stringify(s)} is not a duration (90d, 12h, 2w, 1y) or a date (2027-01-31)`);
}
