/**
 * What reaches a terminal or a file (issue 16 classes 3 and 7, issue 12 item
 * 7): URL scrubbing, terminal escaping, JSON that stays JSON, and the
 * progress line that never outgrows the terminal.
 */
import t from 'tap';
import { scrubText, scrubUrl, splitCredentials } from '../../src/shared/urls.js';
import { escapeJsonText, escapeLine, hasUnsafe } from '../../src/shared/terminal.js';
import { formatDone, formatProgress } from '../../src/cli/io.js';

t.test('scrubUrl: no user info, secret query values redacted, the rest kept', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://user:secret@boxes.example/acme/web', 'https://boxes.example/acme/web'],
    ['https://user@boxes.example/x', 'https://boxes.example/x'],
    ['https://:secret@boxes.example/x', 'https://boxes.example/x'],
    ['http://u:p%40ss@127.0.0.1:8080/a?b=1', 'http://127.0.0.1:8080/a?b=1'],
    [
      'https://s3.example/b/web.box?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&X-Amz-Date=20261201T000000Z&X-Amz-Expires=900&X-Amz-Signature=abcdef&X-Amz-SignedHeaders=host',
      'https://s3.example/b/web.box?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Date=20261201T000000Z&X-Amz-Expires=900&X-Amz-Signature=REDACTED&X-Amz-SignedHeaders=REDACTED',
    ],
    ['https://vagrantcloud.com/acme/web?access_token=abc', 'https://vagrantcloud.com/acme/web?access_token=REDACTED'],
    ['https://x.example/b?sig=abc&sv=2024&se=2026', 'https://x.example/b?sig=REDACTED&sv=2024&se=2026'],
    ['https://x.example/b?api_key=1&apikey=2&password=3&arch=amd64', 'https://x.example/b?api_key=REDACTED&apikey=REDACTED&password=REDACTED&arch=amd64'],
    ['https://x.example/b?token=', 'https://x.example/b?token='],
    ['https://x.example/plain', 'https://x.example/plain'],
    ['/local/path/box.box', '/local/path/box.box'],
    ['acme/web', 'acme/web'],
  ];
  for (const [input, expected] of cases) t.equal(scrubUrl(input), expected, input);
  t.equal(scrubUrl(new URL('https://a:b@h.example/')), 'https://h.example/');
});

t.test('scrubText: URLs inside messages', async (t) => {
  const cases: Array<[string, string]> = [
    ['request to https://u:pw@h.example/x failed', 'request to https://h.example/x failed'],
    ['from http://a:b@one.example/1 and http://c:d@two.example/2', 'from http://one.example/1 and http://two.example/2'],
    ['catalog "https://u:p@ss@h.example/c": bad', 'catalog "https://h.example/c": bad'],
    ['GET https://h.example/x?token=abc&y=1 gave 404', 'GET https://h.example/x?token=REDACTED&y=1 gave 404'],
    ['no url here: builder=ci-prod', 'no url here: builder=ci-prod'],
    ['mail me at user@example.com', 'mail me at user@example.com'],
  ];
  for (const [input, expected] of cases) t.equal(scrubText(input), expected, input);
});

t.test('splitCredentials: the basic header, decoded', async (t) => {
  const r = splitCredentials(new URL('https://de%20ploy:p%40ss%3Aword@h.example/x'));
  t.equal(r.url.href, 'https://h.example/x');
  t.equal(Buffer.from(r.authorization!.slice('Basic '.length), 'base64').toString(), 'de ploy:p@ss:word');
  t.same(splitCredentials(new URL('https://h.example/x')).authorization, null);
});

t.test('escapeLine: nothing a terminal acts on survives', async (t) => {
  const cases: Array<[string, string]> = [
    ['plain text, Grüße, 日本語, 🙂', 'plain text, Grüße, 日本語, 🙂'],
    ['\x1b[1A\x1b[2Kboxsig: VERIFIED', '\\x1b[1A\\x1b[2Kboxsig: VERIFIED'],
    ['a\rb', 'a\\rb'],
    ['a\nb', 'a\\nb'],
    ['a\tb', 'a\\tb'],
    ['bell\x07 bs\x08 nul\0', 'bell\\x07 bs\\x08 nul\\x00'],
    ['del\x7f', 'del\\x7f'],
    ['c1 csi \u009b2K osc \u009d0;title\u009c', 'c1 csi \\x9b2K osc \\x9d0;title\\x9c'],
    ['\x1b]8;;https://evil.example\x07link\x1b]8;;\x07', '\\x1b]8;;https://evil.example\\x07link\\x1b]8;;\\x07'],
    ['evil\u202egpj.exe', 'evil\\u{202e}gpj.exe'],
    ['iso\u2066late\u2069', 'iso\\u{2066}late\\u{2069}'],
    ['ls\u2028ps\u2029', 'ls\\u{2028}ps\\u{2029}'],
    ['zw\u200bj\u200dlrm\u200e', 'zw\\u{200b}j\\u{200d}lrm\\u{200e}'],
    ['bom\ufeff alm\u061c', 'bom\\u{feff} alm\\u{61c}'],
  ];
  for (const [input, expected] of cases) {
    // (test names themselves must not carry raw U+2028: TAP is line-based too)
    t.equal(escapeLine(input), expected, expected);
    t.notOk(hasUnsafe(escapeLine(input)), `${expected}: nothing unsafe is left`);
  }
  t.ok(hasUnsafe('\x1b'));
  t.notOk(hasUnsafe('fine'));
});

t.test('escapeJsonText: still the same JSON, nothing raw for a terminal', async (t) => {
  const value = { uid: '\x1b[2K\u009b1A\u202eevil\u2028\x7f', path: 'ok/file', n: 1, nested: ['\u200b'] };
  const text = escapeJsonText(JSON.stringify(value, null, 2));
  t.same(JSON.parse(text), value, 'parses to the same value');
  t.notOk(hasUnsafe(text.replace(/\n/g, '')), 'no raw control or formatting character outside the indentation');
  t.match(text, /\\u001b\[2K\\u009b1A\\u202eevil\\u2028\\u007f/);
});

t.test('formatProgress: never longer than the width, richest first', async (t) => {
  const label = 'downloading and verifying';
  const states = [
    { label, bytes: 0, total: 1024 ** 3, elapsed: 0 },
    { label, bytes: 123_456_789, total: 1024 ** 3, elapsed: 3.2 },
    { label, bytes: 1024 ** 3, total: 1024 ** 3, elapsed: 12 },
    { label, bytes: 5_000_000_000, total: undefined, elapsed: 40 },
    { label: 'signing', bytes: 64 * 1024 ** 2, total: 4 * 1024 ** 3, elapsed: 1 },
  ];
  for (const width of [1, 5, 10, 20, 30, 40, 60, 79, 80, 120, 200]) {
    for (const s of states) {
      const line = formatProgress(s, width);
      t.ok(line.length <= width, `width ${width}: ${JSON.stringify(line)} (${line.length})`);
      t.notOk(line.includes('\n') || line.includes('\r'), 'one line');
      const done = formatDone(s, width);
      t.ok(done.length <= width, `done, width ${width}: ${JSON.stringify(done)}`);
    }
  }
  const mid = formatProgress(states[1], 79);
  t.match(mid, /^downloading and verifying \[#*\.*\] +11% 117\.7 MiB\/1\.0 GiB 36\.8 MiB\/s ETA \d+s$/, 'at 80 columns: label, bar, percent, bytes, rate, ETA');
  t.match(formatProgress(states[1], 200), /\[#{3}\.{27}\]/, 'the bar is at most 30 wide');
  t.match(formatProgress(states[1], 70), /^downloading and verifying +11% 117\.7 MiB\/1\.0 GiB 36\.8 MiB\/s ETA/, 'narrower: the bar goes first');
  t.match(formatProgress(states[1], 45), /^ *11% 117\.7 MiB\/1\.0 GiB 36\.8 MiB\/s ETA/, 'narrower still: then the label');
  t.match(formatProgress(states[1], 40), /^ *11% 117\.7 MiB\/1\.0 GiB ETA/, 'then the rate');
  t.match(formatProgress(states[1], 10), /^ *11%$/, 'at last the percent alone');
  t.match(formatProgress(states[3], 80), /^downloading and verifying 4\.7 GiB 119\.2 MiB\/s$/, 'unknown size: bytes and rate, no percent or ETA');
  t.match(formatProgress(states[2], 80), /100%/);
  t.equal(formatDone(states[2], 80), 'downloading and verifying: 1.0 GiB in 12s (85.3 MiB/s)');
});
