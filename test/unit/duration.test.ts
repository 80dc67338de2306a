/**
 * --expires durations (issue 12 item 10): explicit units including months and
 * years, calendar arithmetic for months, and usage errors that say what to
 * write for a bare number, the ambiguous "m" or an unknown unit.
 */
import t from 'tap';
import { addMonths, parseDuration } from '../../src/manifest/duration.js';
import { BoxsigError } from '../../src/errors.js';

const NOW = new Date('2026-01-31T10:20:30.400Z');
const at = (secs: number) => new Date(NOW.getTime() + secs * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

t.test('accepted durations and dates', async (t) => {
  const cases: Array<[string, string]> = [
    ['30s', '2026-01-31T10:21:00Z'],
    ['45sec', '2026-01-31T10:21:15Z'],
    ['30min', '2026-01-31T10:50:30Z'],
    ['2 minutes', '2026-01-31T10:22:30Z'],
    ['12h', '2026-01-31T22:20:30Z'],
    ['1hour', '2026-01-31T11:20:30Z'],
    ['90d', '2026-05-01T10:20:30Z'],
    ['1day', '2026-02-01T10:20:30Z'],
    ['2w', '2026-02-14T10:20:30Z'],
    ['1mo', '2026-02-28T10:20:30Z'], // Jan 31 + 1 month: clamped to the end of February
    ['6mo', '2026-07-31T10:20:30Z'],
    ['13 months', '2027-02-28T10:20:30Z'],
    ['1y', '2027-01-31T10:20:30Z'],
    ['2years', '2028-01-31T10:20:30Z'],
    ['90D', '2026-05-01T10:20:30Z'],
    [' 7d ', '2026-02-07T10:20:30Z'],
    ['2027-01-31', '2027-01-31T00:00:00Z'],
    ['2027-01-31T12:00:00Z', '2027-01-31T12:00:00Z'],
  ];
  for (const [input, expected] of cases) t.equal(at(parseDuration(input, NOW)), expected, `${JSON.stringify(input)} -> ${expected}`);
});

t.test('refused, with a message that says what to write', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['90', /needs a unit: 90d for days/],
    ['0', /needs a unit/],
    ['10m', /ambiguous: write 10min for minutes or 10mo for months/],
    ['1M', /ambiguous/],
    ['0d', /positive/],
    ['3fortnights', /unknown unit "fortnights"/],
    ['1.5d', /not a duration/],
    ['-1d', /not a duration/],
    ['1y6mo', /not a duration/],
    ['', /not a duration/],
    ['soon', /not a duration/],
    ['2025-01-01', /in the past/],
    ['99999999999999999999d', /after the year 9999/],
    ['10000y', /after the year 9999/],
    ['999999999999mo', /after the year 9999/],
    ['2027-13-45', /not a duration/],
  ];
  for (const [input, message] of cases) {
    t.throws(() => parseDuration(input, NOW), { code: 'USAGE', message }, JSON.stringify(input));
    try {
      parseDuration(input, NOW);
    } catch (e) {
      t.ok(e instanceof BoxsigError && e.exitCode === 2, `${JSON.stringify(input)} is a usage error (exit 2)`);
    }
  }
});

t.test('the name of the option is in the message', async (t) => {
  t.throws(() => parseDuration('5', NOW, '--key-expires'), { message: /^--key-expires "5"/ });
});

t.test('addMonths keeps the day or clamps it to the month', async (t) => {
  const cases: Array<[string, number, string]> = [
    ['2026-01-31T00:00:00Z', 1, '2026-02-28T00:00:00.000Z'],
    ['2028-01-31T00:00:00Z', 1, '2028-02-29T00:00:00.000Z'],
    ['2028-02-29T12:00:00Z', 12, '2029-02-28T12:00:00.000Z'],
    ['2026-03-15T08:30:15Z', 10, '2027-01-15T08:30:15.000Z'],
    ['2026-12-31T23:59:59Z', 2, '2027-02-28T23:59:59.000Z'],
  ];
  for (const [from, n, expected] of cases) t.equal(addMonths(new Date(from), n).toISOString(), expected, `${from} + ${n} months`);
});
