/**
 * Version order and constraints against the real RubyGems (Vagrant compares
 * box versions with Gem::Version and reads --box-version as comma-separated
 * Gem::Requirements): every pair of a table of versions, and every
 * constraint against every version, asked of Ruby in one batch.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { compareVersionKeys, compareVersions, isGemVersion, isPrerelease, parseConstraints, satisfies, versionKey } from '../../src/shared/version.js';
import { requireTool } from '../helpers.js';

const VERSIONS = [
  '0',
  '0.0',
  '0.0.0.a',
  '0.1',
  '1',
  '1.0',
  '1.0.0',
  '1.0.0.0.0.0',
  '01',
  '1.00',
  '001.002.003',
  '1.2.3',
  '1.02.3',
  '1.2.03',
  '1.0-1',
  '1.0-2',
  '1.0-rc1',
  '1.0-rc.1',
  '1.0-rc2',
  '1.0.0-rc.1',
  '1.0.0.a',
  '1.0.a',
  '1.a',
  '1.A',
  '1.0.b1',
  '1.0.0.b',
  '1.0.pre',
  '1.0.pre.1',
  '1.0.a.0',
  '1.a.0.1',
  '1.0.0-alpha',
  '1.0.0-alpha-beta',
  '1-1-1',
  '2.0.0',
  '2.0.0-1',
  '2.0.0.1',
  '2.0',
  '2.0.0.pre',
  '2.0.0.rc',
  '2.0.0.Z',
  '2.0.0.z',
  '2.0.0.aa',
  '10.0',
  '9.99',
  '1.10',
  '1.9',
  '1.1.1.1.1.1.1.1.1.1.1',
  ' 1.0 ',
  '1.0\n',
  '123456789012345678901234567890.1',
  '123456789012345678901234567891',
  `1.${'0.'.repeat(200)}1`,
  `1.${'0.'.repeat(200)}0`,
  '3.4.5-20240101',
  '3.4.5.20240101',
  '2024.01.15',
  '2024.1.15',
  '0.0.1',
  '0.0.0.1',
];

const CONSTRAINTS = [
  '>= 0',
  '1.0',
  '= 1',
  '!= 1.0',
  '> 1.0',
  '< 2',
  '>= 1.2, < 2',
  '~> 1.2',
  '~> 1.2.0',
  '~> 1',
  '~> 1.0-rc1',
  '~> 2.0.0.a',
  '<= 1.0-1',
  '>=1.0',
  ' = 2.0.0 ',
  '1.0,',
  '> 1.0.a, < 1.0',
  '~> 0',
  '>= 2.0.0-1, < 2.0.0',
  '= 01.00',
];

function ruby(script: string, input: unknown): any {
  const r = spawnSync('ruby', ['-rjson', '-e', script], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`ruby failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

t.test('Gem::Version order, pair by pair', async (t) => {
  if (!requireTool(t, 'ruby', 'ruby')) return;
  const pairs = VERSIONS.flatMap((a, i) => VERSIONS.slice(i).map((b) => [a, b]));
  const want: number[] = ruby('puts JSON.generate(JSON.parse(STDIN.read).map { |a, b| Gem::Version.new(a) <=> Gem::Version.new(b) })', pairs);
  let mismatches = 0;
  pairs.forEach(([a, b], i) => {
    const got = Math.sign(compareVersions(a, b));
    const back = Math.sign(compareVersions(b, a));
    if (got !== want[i] || back !== -want[i]) {
      mismatches++;
      t.fail(`${JSON.stringify(a)} <=> ${JSON.stringify(b)}: Ruby says ${want[i]}, boxsig ${got} (reverse ${back})`);
    }
  });
  t.equal(mismatches, 0, `${pairs.length} pairs agree with Ruby`);
  t.ok(pairs.length >= 300, 'a few hundred pairs');
});

t.test('prerelease? and correct? agree with Ruby', async (t) => {
  if (!requireTool(t, 'ruby', 'ruby')) return;
  const odd = ['', ' ', '1.', '.1', '1..2', 'a', '1.0-', '1.0-a.', '-1', '1.0 2', '1.0\u00a0', '1.0_1', '1.0+1', '1.0-a-b.c-d'];
  const all = [...VERSIONS, ...odd];
  const want: Array<[boolean, boolean | null]> = ruby(
    'puts JSON.generate(JSON.parse(STDIN.read).map { |v| c = Gem::Version.correct?(v); [c, c ? Gem::Version.new(v).prerelease? : nil] })',
    all,
  );
  all.forEach((v, i) => {
    t.equal(isGemVersion(v), want[i][0], `correct?(${JSON.stringify(v)})`);
    if (want[i][0]) t.equal(isPrerelease(v), want[i][1], `prerelease?(${JSON.stringify(v)})`);
    else t.throws(() => compareVersions(v, '1'), { code: 'MALFORMED' }, `${JSON.stringify(v)} is refused`);
  });
});

t.test('constraints agree with Gem::Requirement, as Vagrant splits them', async (t) => {
  if (!requireTool(t, 'ruby', 'ruby')) return;
  const cases = CONSTRAINTS.flatMap((c) => VERSIONS.map((v) => [c, v]));
  const want: Array<boolean | string> = ruby(
    `puts JSON.generate(JSON.parse(STDIN.read).map { |c, v|
       begin
         reqs = c.split(",").map { |s| Gem::Requirement.new(s.strip) }
         reqs.all? { |r| r.satisfied_by?(Gem::Version.new(v)) }
       rescue Gem::Requirement::BadRequirementError
         "bad"
       end })`,
    cases,
  );
  let mismatches = 0;
  cases.forEach(([c, v], i) => {
    let got: boolean | string;
    try {
      got = satisfies(v, parseConstraints(c));
    } catch {
      got = 'bad';
    }
    if (got !== want[i]) {
      mismatches++;
      t.fail(`${JSON.stringify(v)} satisfies ${JSON.stringify(c)}: Ruby says ${want[i]}, boxsig ${got}`);
    }
  });
  t.equal(mismatches, 0, `${cases.length} constraint checks agree with Ruby`);
});

t.test('ill-formed constraints are usage errors, as in Ruby', async (t) => {
  if (!requireTool(t, 'ruby', 'ruby')) return;
  const bad = ['', ',', '>> 1', '=> 1', '~ 1', '1.0 2.0', ', 1.0', '>= 1,, < 2', 'latest'];
  const want: boolean[] = ruby(
    `puts JSON.generate(JSON.parse(STDIN.read).map { |c|
       begin; parts = c.split(","); raise Gem::Requirement::BadRequirementError, "empty" if parts.empty?; parts.each { |s| Gem::Requirement.new(s.strip) }; true
       rescue Gem::Requirement::BadRequirementError; false; end })`,
    bad,
  );
  bad.forEach((c, i) => {
    let ok = true;
    try {
      parseConstraints(c);
    } catch (e) {
      ok = false;
      t.equal((e as { code?: string }).code, 'USAGE');
    }
    t.equal(ok, want[i], JSON.stringify(c));
  });
});

t.test('the cases of issue 11, spelled out', async (t) => {
  t.ok(compareVersions('2.0.0-1', '2.0.0') < 0, '2.0.0-1 is a pre-release below 2.0.0');
  t.ok(compareVersions('1.0-1', '1.0') < 0, '1.0-1 below 1.0');
  t.ok(compareVersions('1.0.0.a', '1.0') < 0, '1.0.0.a below 1.0');
  t.ok(compareVersions('1.0-rc1', '1.0.0.a') > 0, '1.0-rc1 (1.0.pre.rc1) above 1.0.0.a');
  t.equal(compareVersions('01.002', '1.2'), 0, 'leading zeros do not count');
  t.equal(compareVersions('1.0.0', '1'), 0, 'trailing zeros do not count');
});

t.test('parsed once: versionKey order is compareVersions order, for every pair of the table', async (t) => {
  // a catalog is sorted by parsed keys (each string parsed once, not at every comparison:
  // a 16 MiB catalog of 125,000 long versions took half a minute of CPU before)
  let disagree = 0;
  for (const a of VERSIONS)
    for (const b of VERSIONS) if (Math.sign(compareVersionKeys(versionKey(a), versionKey(b))) !== Math.sign(compareVersions(a, b))) disagree++;
  t.equal(disagree, 0);
});
