/**
 * The registry's names, error mapping and log scrubbing: table-driven.
 */
import t from 'tap';
import { architectureName, boxName, freeText, memberName, orgName, providerName, roleName, versionName } from '../../src/registry/names.js';
import { errorBody, scrubUrl, statusOf } from '../../src/registry/http.js';
import { bearerOf } from '../../src/registry/auth.js';
import { BoxsigError, refuse } from '../../src/errors.js';

t.test('names from API paths and bodies', async (t) => {
  const ok: Array<[(v: unknown) => string, unknown]> = [
    [orgName, 'acme'],
    [orgName, 'acme-corp_2'],
    [(v) => boxName('acme', v), 'ubuntu-24.04'],
    [(v) => boxName('acme', v), 'constructor'],
    [versionName, '1.2.3'],
    [versionName, '2024.01.05'],
    [versionName, '1.0.0-rc.1'],
    [providerName, 'virtualbox'],
    [providerName, 'vmware_desktop'],
    [architectureName, 'amd64'],
    [roleName, 'publish'],
    [memberName, 'CI bot @ acme'],
  ];
  for (const [fn, v] of ok) t.equal(fn(v), v, `${JSON.stringify(v)} is accepted`);
  t.equal(architectureName(undefined), 'unknown', 'no architecture is "unknown"');
  t.equal(architectureName(''), 'unknown');
  const bad: Array<[(v: unknown) => string, unknown]> = [
    [orgName, ''],
    [orgName, 'a/b'],
    [orgName, '..'],
    [orgName, '-x'],
    [orgName, 'Acme-Corp_2'],
    [(v) => boxName('acme', v), 'Ubuntu'],
    [orgName, 'x'.repeat(101)],
    [orgName, 42],
    [(v) => boxName('acme', v), 'a/b'],
    [(v) => boxName('acme', v), 'x-VAGRANTSLASH-y/z'],
    [(v) => boxName('acme', v), '.hidden'],
    [(v) => boxName('acme', v), 'sp ace'],
    [versionName, '1.0 '],
    [versionName, 'v1'],
    [versionName, '../1'],
    [providerName, 'VirtualBox'],
    [providerName, 'a/b'],
    [architectureName, 'AMD64'],
    [architectureName, 'x86-64'],
    [roleName, 'owner'],
    [roleName, '__proto__'],
    [memberName, 'line\nbreak'],
    [memberName, ''],
  ];
  for (const [fn, v] of bad) t.throws(() => fn(v), { code: 'USAGE' }, `${JSON.stringify(v)} is refused`);
  t.equal(freeText('a\u001b[31mred\u0007\nline\ttab\u202e', 'd'), 'a[31mred\nline\ttab', 'control characters are removed from free text');
  t.throws(() => freeText('x'.repeat(11), 'd', 10), { code: 'USAGE' });
});

t.test('HTTP status and body of each error', async (t) => {
  const cases: Array<[BoxsigError, number]> = [
    [refuse('TAMPERED', 'x'), 422],
    [refuse('CHECKSUM_MISMATCH', 'x'), 422],
    [new BoxsigError('USAGE', 'x'), 400],
    [new BoxsigError('DENIED', 'x'), 401],
    [new BoxsigError('DENIED', 'x', { status: 403 }), 403],
    [new BoxsigError('NOT_FOUND', 'x'), 404],
    [new BoxsigError('EXISTS', 'x'), 409],
    [new BoxsigError('LIMIT', 'x'), 429],
    [new BoxsigError('LIMIT', 'x', { status: 413 }), 413],
    [new BoxsigError('UNAVAILABLE', 'x'), 503],
    [new BoxsigError('INTERNAL', 'secret detail'), 500],
    [new BoxsigError('IO', 'x'), 500],
  ];
  for (const [e, status] of cases) t.equal(statusOf(e), status, `${e.code} → ${status}`);
  t.same(errorBody(refuse('UNSIGNED', 'box x is not signed')), { errors: ['UNSIGNED: box x is not signed'], code: 'UNSIGNED' });
  t.same(
    errorBody(new BoxsigError('INTERNAL', 'stack and paths')).errors,
    ['INTERNAL: internal error (see the registry log)'],
    'internal details are not sent',
  );
});

t.test('secrets out of logged URLs; bearer tokens', async (t) => {
  const cases: Array<[string, string]> = [
    ['/api/v1/upload/abcDEF_-123', '/api/v1/upload/…'],
    ['/api/v1/upload/abc/complete', '/api/v1/upload/…/complete'],
    ['/acme/app?access_token=boxsig_x&y=1', '/acme/app?access_token=…&y=1'],
    ['/acme/app', '/acme/app'],
  ];
  for (const [u, want] of cases) t.equal(scrubUrl(u), want, u);
  t.equal(bearerOf('Bearer boxsig_abc'), 'boxsig_abc');
  t.equal(bearerOf('bearer   boxsig_abc  '), 'boxsig_abc');
  t.equal(bearerOf(undefined, 'boxsig_q'), 'boxsig_q', 'access_token query parameter');
  t.equal(bearerOf(undefined), null);
  t.throws(() => bearerOf('Basic dXNlcjpwYXNz'), { code: 'DENIED' });
});
