/**
 * The one claim check (issue 16 class 4): names follow the documented grammar,
 * values are one line of visible text of at most 4096 characters. The same
 * function judges `sign --claim`, the Packer helper's claims (through
 * `sign --claim`) and manifests being verified.
 */
import t from 'tap';
import { claimProblem, MAX_CLAIM_VALUE } from '../../src/manifest/manifest.js';
import { parseClaims } from '../../src/cli/common.js';
import { escapeLine } from '../../src/shared/terminal.js';

t.test('claim names', async (t) => {
  for (const k of ['builder', 'git_commit', 'ci.job', 'acme.example/approved', 'x', 'A1', 'urn:acme:tier', 'constructor', 'a'.repeat(64)]) {
    t.equal(claimProblem(k, 'v'), null, `${JSON.stringify(k)} is a valid name`);
  }
  for (const k of ['', '_x', '-x', '.x', 'a b', 'a=b', 'a\nb', 'é', '__proto__', 'a'.repeat(65), 'x\u202e']) {
    t.match(claimProblem(k, 'v'), /claim name .* must be 1-64 letters/, `${escapeLine(JSON.stringify(k))} is refused`);
  }
});

t.test('claim values', async (t) => {
  for (const v of ['', 'ci-prod', 'two words', 'YWJj=', 'a=b=c', 'Grüße aus Köln', '日本語', '🙂', 'x'.repeat(MAX_CLAIM_VALUE)]) {
    t.equal(claimProblem('k', v), null, `${escapeLine(v.slice(0, 20))} is a valid value`);
  }
  const cases: Array<[string, RegExp]> = [
    ['abc\napproved=yes', /a line break \(U\+000A\)/],
    ['abc\r\napproved=yes', /a line break \(U\+000D\)/],
    ['abc\u2028approved=yes', /a line break \(U\+2028\)/],
    ['abc\u2029x', /a line break \(U\+2029\)/],
    ['\x1b[1A\x1b[2Kverified', /a control character \(U\+001B\)/],
    ['tab\there', /a control character \(U\+0009\)/],
    ['nul\0', /a control character \(U\+0000\)/],
    ['del\x7f', /a control character \(U\+007F\)/],
    ['csi\u009b2K', /a control character \(U\+009B\)/],
    ['exe.txt\u202e', /invisible or directional formatting character \(U\+202E\)/],
    ['isolate\u2066', /invisible or directional formatting character \(U\+2066\)/],
    ['zero\u200bwidth', /invisible or directional formatting character \(U\+200B\)/],
    ['bom\ufeff', /invisible or directional formatting character \(U\+FEFF\)/],
    ['lone \ud800 surrogate', /not well-formed Unicode/],
    ['x'.repeat(MAX_CLAIM_VALUE + 1), /longer than 4096 characters/],
  ];
  // (test names are escaped: TAP is line-based too, and JSON.stringify leaves U+2028 raw)
  for (const [v, message] of cases) t.match(claimProblem('k', v), message, `${escapeLine(v.slice(0, 24))} is refused`);
  t.match(claimProblem('k', 42), /must be a string/);
});

t.test('sign --claim: one argument is one claim, checked before anything else', async (t) => {
  t.equal(parseClaims([]), undefined);
  const c = parseClaims(['builder=ci', 'constructor=x', 'token=YWJj=', 'empty='])!;
  t.same({ ...c }, { builder: 'ci', constructor: 'x', token: 'YWJj=', empty: '' });
  t.equal(Object.getPrototypeOf(c), null, 'a null-prototype object: no inherited names');
  t.throws(() => parseClaims(['git_commit=abc\napproved=yes']), { code: 'USAGE', message: /--claim: claim git_commit contains a line break/ });
  t.throws(() => parseClaims(['a=1', 'a=2']), { code: 'USAGE', message: /given twice/ });
  t.throws(() => parseClaims(['noequals']), { code: 'USAGE', message: /key=value/ });
  t.throws(() => parseClaims(['=x']), { code: 'USAGE', message: /key=value/ });
  t.throws(() => parseClaims(['bad key=x']), { code: 'USAGE', message: /claim name/ });
});
