import { usage } from '../errors.js';

/**
 * Durations for --expires: a positive whole number and an explicit unit, or a
 * date. Units: s, min, h, d, w, mo, y (and their long forms). Months and
 * years are calendar months and years from now (the day of the month is kept,
 * or clamped to the last day of a shorter month: 2026-01-31 + 1mo is
 * 2026-02-28). "m" is refused as ambiguous (minutes or months?), and so is a
 * bare number (seconds? days?).
 */
const SECONDS = new Map<string, number>([
  ['s', 1],
  ['sec', 1],
  ['secs', 1],
  ['second', 1],
  ['seconds', 1],
  ['min', 60],
  ['mins', 60],
  ['minute', 60],
  ['minutes', 60],
  ['h', 3600],
  ['hr', 3600],
  ['hrs', 3600],
  ['hour', 3600],
  ['hours', 3600],
  ['d', 86400],
  ['day', 86400],
  ['days', 86400],
  ['w', 7 * 86400],
  ['wk', 7 * 86400],
  ['week', 7 * 86400],
  ['weeks', 7 * 86400],
]);

const MONTHS = new Map<string, number>([
  ['mo', 1],
  ['month', 1],
  ['months', 1],
  ['y', 12],
  ['yr', 12],
  ['year', 12],
  ['years', 12],
]);

/** The latest expiry boxsig writes: far enough for any key or box, and a valid RFC 3339 year. */
const LATEST = Date.UTC(9999, 11, 31, 23, 59, 59);

const EXAMPLES = '90d, 12h, 2w, 6mo, 1y, 30min';

/** `months` calendar months after `from` (UTC), the day clamped to the target month's length. */
export function addMonths(from: Date, months: number): Date {
  const y = from.getUTCFullYear();
  const m = from.getUTCMonth() + months;
  const target = new Date(Date.UTC(y, m, 1, from.getUTCHours(), from.getUTCMinutes(), from.getUTCSeconds()));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(from.getUTCDate(), lastDay));
  return target;
}

/**
 * A duration like "90d", "12h", "2w", "6mo", "1y" or an absolute date
 * "2027-01-31" / "2027-01-31T12:00:00Z". Returns whole seconds from `now`.
 * Anything else, including a bare number and the ambiguous "m", is a usage
 * error that says what to write.
 */
export function parseDuration(s: string, now = new Date(), what = '--expires'): number {
  const t = s.trim();
  const shown = `${what} ${JSON.stringify(s)}`;
  const m = /^([0-9]+)\s*([a-z]*)$/i.exec(t);
  if (m) {
    const n = Number(m[1]);
    const unit = m[2].toLowerCase();
    if (unit === '') throw usage(`${shown} needs a unit: ${m[1]}d for days, ${m[1]}h for hours, … (${EXAMPLES})`);
    if (unit === 'm') throw usage(`${shown} is ambiguous: write ${m[1]}min for minutes or ${m[1]}mo for months`);
    if (n <= 0) throw usage(`${shown} must be a positive duration`);
    let until: number;
    const secs = SECONDS.get(unit);
    const months = MONTHS.get(unit);
    if (secs !== undefined) until = now.getTime() + n * secs * 1000;
    else if (months !== undefined) until = n * months > 12 * 10000 ? Infinity : addMonths(now, n * months).getTime();
    else throw usage(`${shown} has an unknown unit "${m[2]}" (use s, min, h, d, w, mo or y: ${EXAMPLES})`);
    if (!(until <= LATEST)) throw usage(`${shown} ends after the year 9999`);
    return Math.round((until - now.getTime()) / 1000);
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+Z?)?$/.test(t)) {
    const d = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t);
    if (!Number.isNaN(d)) {
      // rounded up: added to now, it is the date given (to the second), not one second before
      const secs = Math.ceil((d - now.getTime()) / 1000);
      if (secs <= 0) throw usage(`${shown} is in the past`);
      return secs;
    }
  }
  throw usage(`${shown} is not a duration (${EXAMPLES}) or a date (2027-01-31)`);
}
