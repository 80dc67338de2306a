/**
 * Policy resolution as tables: globs, the most specific glob wins (field by
 * field), later layers override earlier ones, command-line overrides, and
 * configuration errors that name the file and the field.
 */
import t from 'tap';
import { applyOverrides, resolvePolicy, validateConfig, type ConfigLayer } from '../../src/policy/config.js';
import { compareSpecificity, globMatches, globProblem, globWithin, matchingGlobs } from '../../src/shared/glob.js';

const fpr = (c: string) => c.repeat(40);
const [A, B, C, ORG] = ['A', 'B', 'C', 'E'].map(fpr);

t.test('globs match names', async (t) => {
  const rows: Array<[string, string, boolean]> = [
    ['acme/*', 'acme/web', true],
    ['acme/*', 'acme/', true],
    ['acme/*', 'acmex/web', false],
    ['acme/web', 'acme/web', true],
    ['acme/web', 'acme/web2', false],
    ['acme/we?', 'acme/web', true],
    ['acme/we?', 'acme/we', false],
    ['*', 'anything/at-all', true],
    ['acme/ubuntu-*', 'acme/ubuntu-24.04', true],
    ['acme/ubuntu-*', 'acme/debian-12', false],
    ['a.b/*', 'aXb/c', false],
    ['acme/+x', 'acme/+x', true],
    ['*/web', 'acme/web', true],
  ];
  for (const [glob, name, want] of rows) t.equal(globMatches(glob, name), want, `${glob} ~ ${name}`);
});

t.test('invalid globs are named', async (t) => {
  for (const g of ['', 'a b', 'acme/[ab]', 'x'.repeat(201), 'acme/\n']) t.ok(globProblem(g), JSON.stringify(g));
  for (const g of ['acme/*', '*', 'acme/ubuntu-24.04', 'a_b/c+d']) t.equal(globProblem(g), null, g);
});

t.test('the most specific glob comes first', async (t) => {
  t.same(matchingGlobs(['*', 'acme/*', 'acme/web', 'acme/w*', 'other/*'], 'acme/web'), ['acme/web', 'acme/w*', 'acme/*', '*']);
  t.ok(compareSpecificity('acme/web', 'acme/*') > 0, 'an exact name beats a pattern');
  t.ok(compareSpecificity('acme/ubuntu-*', 'acme/*') > 0, 'more literal characters win');
  t.ok(compareSpecificity('acme/we?', 'acme/w*') > 0, 'then fewer wildcards');
});

t.test('a certified glob lies inside an organisation scope', async (t) => {
  const rows: Array<[string, string, boolean]> = [
    ['acme/ubuntu-*', 'acme/*', true],
    ['acme/web', 'acme/*', true],
    ['acme/*', 'acme/*', true],
    ['acme/*', 'acme/ubuntu-*', false],
    ['*', 'acme/*', false],
    ['other/*', 'acme/*', false],
    ['acme/w?b', 'acme/*', true],
    ['acme/w?b', 'acme/w?b', true],
    ['acme/w*b', 'acme/w?b', false],
    ['anything', '*', true],
  ];
  for (const [inner, outer, want] of rows) t.equal(globWithin(inner, outer), want, `${inner} within ${outer}`);
});

const layer = (source: string, doc: unknown): ConfigLayer => ({ source, doc: validateConfig(doc, source) });

t.test('the most specific glob that sets a field decides it, field by field', async (t) => {
  const layers = [
    layer('user.json', {
      boxes: {
        'acme/*': { pin: [A], threshold: 1, claims: { builder: 'ci' }, expiry: 'warn' },
        'acme/web': { threshold: 2, pin: [A, B] },
        'legacy/*': { signatures: 'optional' },
      },
    }),
  ];
  const web = resolvePolicy(layers, 'acme/web');
  t.same(web.pins, [A, B]);
  t.equal(web.threshold, 2);
  t.same([...web.claims], [['builder', 'ci']], 'claims come from acme/*, which is the most specific glob that sets them');
  t.equal(web.expiry, 'warn');
  t.equal(web.revocation, 'enforce', 'defaults where nothing sets a field');
  t.equal(web.origin.threshold, '"acme/web" (user.json)');
  t.equal(web.origin.claims, '"acme/*" (user.json)');
  const other = resolvePolicy(layers, 'acme/db');
  t.same(other.pins, [A]);
  t.equal(other.threshold, 1);
  t.equal(resolvePolicy(layers, 'legacy/old').signatures, 'optional');
  const none = resolvePolicy(layers, 'else/box');
  t.same([none.pins, none.threshold, none.signatures, none.org], [[], 1, 'required', null]);
});

t.test('later layers override earlier ones for the same glob, field by field', async (t) => {
  const layers = [layer('user.json', { boxes: { 'acme/*': { pin: [A], threshold: 2 } } }), layer('boxsig.json', { boxes: { 'acme/*': { threshold: 1 } } })];
  const p = resolvePolicy(layers, 'acme/web');
  t.equal(p.threshold, 1);
  t.equal(p.origin.threshold, '"acme/*" (boxsig.json)');
  t.same(p.pins, [A], 'a field the later layer does not set is kept');
});

t.test('organisation scopes: the most specific scope covering the name', async (t) => {
  const layers = [layer('boxsig.json', { orgs: { 'acme/*': [ORG], 'acme/web*': [C] } })];
  t.same(resolvePolicy(layers, 'acme/web').org, { scope: 'acme/web*', keys: [C], source: 'boxsig.json' });
  t.same(resolvePolicy(layers, 'acme/db').org, { scope: 'acme/*', keys: [ORG], source: 'boxsig.json' });
  t.equal(resolvePolicy(layers, 'other/db').org, null);
});

t.test('command-line overrides win for this run', async (t) => {
  const p = resolvePolicy([layer('user.json', { boxes: { 'acme/*': { pin: [A] } } })], 'acme/web');
  const o = applyOverrides(p, { pin: [B] });
  t.same(o.pins, [B]);
  t.equal(o.origin.pin, 'command line');
  t.same(applyOverrides(p, { pin: [] }).pins, [A], 'an empty --pin list changes nothing');
});

t.test('configuration errors name the file and the field', async (t) => {
  const rows: Array<[unknown, RegExp]> = [
    [[], /\(top level\): must be a JSON object/],
    [{ box: {} }, /box: unknown field/],
    [{ boxes: { 'acme/*': { pins: [A] } } }, /boxes\["acme\/\*"\]\.pins: unknown field/],
    [{ boxes: { 'acme/*': { threshold: 0 } } }, /threshold: must be an integer from 1 to 32/],
    [{ boxes: { 'acme/*': { pin: ['xyz'] } } }, /pin\[0\]: "xyz" is not a 40-hex-digit/],
    [{ boxes: { 'acme/*': { signatures: 'maybe' } } }, /signatures: must be "required" or "optional"/],
    [{ boxes: { 'acme/*': { expiry: 'ignore' } } }, /expiry: must be "enforce" or "warn"/],
    [{ boxes: { 'acme/[x]': {} } }, /boxes\["acme\/\[x\]"\]: glob may only hold/],
    [{ orgs: { 'acme/*': [] } }, /orgs\["acme\/\*"\]: must be a non-empty list/],
  ];
  for (const [doc, msg] of rows) t.throws(() => validateConfig(doc, '/p/boxsig.json'), { code: 'CONFIG', message: msg }, JSON.stringify(doc));
});

t.test('library callers may still build layers with plain objects', async (t) => {
  const legacy = { source: 'lib', doc: { boxes: { 'acme/*': { pin: [A], claims: { builder: 'ci' } } }, orgs: { 'acme/*': [ORG] } } } as unknown as ConfigLayer;
  const p = resolvePolicy([legacy], 'acme/web');
  t.same(p.pins, [A]);
  t.same([...p.claims], [['builder', 'ci']]);
  t.same(p.org?.keys, [ORG]);
  t.same([...applyOverrides(p, { claims: { x: 'y' } as unknown as Map<string, string> }).claims], [['x', 'y']]);
});
