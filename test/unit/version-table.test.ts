/**
 * Vagrant's version order (RubyGems' Gem::Version) and --box-version
 * constraints (Gem::Requirement after Vagrant's split on ","), as a table of
 * known answers. Pure logic, no Ruby: test/unit/version.test.ts checks the
 * same functions against the real RubyGems when Ruby is installed.
 */
import t from 'tap';
import { compareVersions, isGemVersion, isPrerelease, parseConstraints, satisfies } from '../../src/shared/version.js';

const ORDER: Array<[string, '<' | '=' | '>', string]> = [
  ['1', '=', '1.0'],
  ['1.0', '=', '1.0.0.0'],
  ['1.0', '<', '1.0.1'],
  ['1.9', '<', '1.10'],
  ['1.10', '>', '1.9.9'],
  ['2.0.0-1', '<', '2.0.0'],
  ['2.0.0.a', '<', '2.0.0'],
  ['2.0.0.a', '<', '2.0.0.b'],
  ['2.0.0.rc1', '>', '2.0.0.beta2'],
  ['1.0.a', '<', '1.0.a.1'],
  ['1.0.0.a', '=', '1.0.a'],
  ['0', '<', '0.0.1'],
  ['10.0', '>', '9.99'],
  ['2024.01.15', '>', '2024.1.9'],
  ['01', '=', '1'],
];

t.test('order', async (t) => {
  const sign = { '<': -1, '=': 0, '>': 1 } as const;
  for (const [a, op, b] of ORDER) {
    t.equal(Math.sign(compareVersions(a, b)), sign[op], `${a} ${op} ${b}`);
    t.equal(Math.sign(compareVersions(b, a)), -sign[op], `${b} and ${a}, reversed`);
  }
});

t.test('what RubyGems accepts as a version', async (t) => {
  // '' is Gem::Version "0"
  for (const v of ['1', '1.0', '1.0.0-rc1', '1.a', '2024.01.15', ' 1.0 ', '']) t.ok(isGemVersion(v), JSON.stringify(v));
  for (const v of ['a', '1..0', '1.0 beta', '-1', '1.0.', 'v1.0']) t.notOk(isGemVersion(v), JSON.stringify(v));
});

t.test('pre-releases', async (t) => {
  for (const v of ['1.0.a', '1.0-1', '1.0.rc1']) t.ok(isPrerelease(v), v);
  for (const v of ['1.0', '1', '20.04']) t.notOk(isPrerelease(v), v);
});

const CONSTRAINTS: Array<[string, string, boolean]> = [
  ['1.0.0', '1.0', true],
  ['1.0.1', '1.0', false],
  ['1.0.1', '= 1.0.1', true],
  ['1.2', '>= 1.0', true],
  ['0.9', '>= 1.0', false],
  ['1.2', '> 1.2', false],
  ['1.2', '< 1.2.1', true],
  ['1.2', '<= 1.2.0', true],
  ['1.2.5', '!= 1.2.5', false],
  ['1.2.9', '~> 1.2', true],
  ['1.3', '~> 1.2', true],
  ['2.0', '~> 1.2', false],
  ['1.2.9', '~> 1.2.0', true],
  ['1.3.0', '~> 1.2.0', false],
  ['1.2.5', '~> 1.2, != 1.2.5', false],
  ['1.2.6', '~> 1.2, != 1.2.5', true],
  ['1.5', '>= 1.0, < 2.0', true],
  ['2.0', '>= 1.0, < 2.0', false],
  ['2.0.a', '< 2.0', true],
];

t.test('constraints', async (t) => {
  for (const [v, spec, want] of CONSTRAINTS) t.equal(satisfies(v, parseConstraints(spec)), want, `${v} against "${spec}"`);
});

t.test('constraints are read as Vagrant reads them', async (t) => {
  t.same(parseConstraints('>= 1.0,  < 2'), [
    { op: '>=', version: '1.0' },
    { op: '<', version: '2' },
  ]);
  t.same(parseConstraints('1.0,'), [{ op: '=', version: '1.0' }], 'a trailing comma is dropped, as Ruby split drops it');
  for (const bad of ['', ',', '>> 1', '~> ', 'latest', '1.0,,2.0']) t.throws(() => parseConstraints(bad), { code: 'USAGE' }, JSON.stringify(bad));
});
