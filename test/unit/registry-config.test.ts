/**
 * Registry configuration: defaults < config file < environment < flags,
 * and every bad value a CONFIG error naming where it came from.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, parseListen, parseSize } from '../../src/registry/config.js';

t.test('sizes', async (t) => {
  const cases: Array<[unknown, number | null]> = [
    [1048576, 1048576],
    ['512M', 512 * 1024 ** 2],
    ['64G', 64 * 1024 ** 3],
    ['64GiB', 64 * 1024 ** 3],
    ['1t', 1024 ** 4],
    ['10', 10],
    ['0', null],
    ['-1', null],
    ['1.5G', null],
    ['lots', null],
    [{}, null],
  ];
  for (const [input, want] of cases) {
    if (want === null) t.throws(() => parseSize(input, 'x'), { code: 'CONFIG' }, `${JSON.stringify(input)} is refused`);
    else t.equal(parseSize(input, 'x'), want, `${JSON.stringify(input)} = ${want}`);
  }
});

t.test('listen addresses', async (t) => {
  const cases: Array<[string, { host: string; port: number } | null]> = [
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    ['8081', { host: '127.0.0.1', port: 8081 }],
    [':8082', { host: '127.0.0.1', port: 8082 }],
    ['localhost:70000', null],
    ['nope', null],
  ];
  for (const [input, want] of cases) {
    if (want === null) t.throws(() => parseListen(input, '--listen'), { code: 'CONFIG' }, `${input} is refused`);
    else t.same(parseListen(input, '--listen'), want, input);
  }
});

t.test('precedence and validation', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'registry.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ data: dir, maxBoxBytes: '1G', uploadsPerToken: 2, s3: { bucket: 'b', region: 'r', endpoint: 'http://s3.local:8080' } }),
  );
  const c = loadConfig({ config: file }, { BOXSIG_REGISTRY_MAX_BOX_BYTES: '2G' });
  t.equal(c.maxBoxBytes, 2 * 1024 ** 3, 'the environment overrides the file');
  t.equal(c.uploadsPerToken, 2, 'the file overrides the defaults');
  t.same(c.s3, { bucket: 'b', region: 'r', endpoint: 'http://s3.local:8080' });
  t.equal(c.downloads, 'redirect', 'S3 downloads are redirects by default');
  const f = loadConfig({ config: file, s3Bucket: 'flag-bucket' }, {});
  t.equal(f.s3?.bucket, 'flag-bucket', 'flags override the file');
  const embedded = loadConfig({ data: dir }, {});
  t.equal(embedded.downloads, 'proxy', 'without S3, downloads are proxied');
  t.equal(embedded.database, null);
  // 8080 is taken by Swift's proxy (the S3 engine of the tests) and by many development servers
  t.same(embedded.listen, { host: '127.0.0.1', port: 8484 }, 'the default address does not clash with Swift on 8080');

  const bad: Array<[string, object, NodeJS.ProcessEnv, RegExp]> = [
    ['an unknown field', { data: dir, nope: 1 }, {}, /registry\.json: nope: unknown field/],
    ['an unknown s3 field', { data: dir, s3: { bucket: 'b', region: 'r', secret: 'x' } }, {}, /s3\.secret: unknown field/],
    ['a bad database URL', { data: dir, database: 'mysql://x' }, {}, /database: must be a postgres: or postgresql: URL/],
    ['S3 without a region', { data: dir, s3: { bucket: 'b' } }, {}, /S3 storage needs a bucket and a region/],
    ['nothing to store in', {}, {}, /no --data DIR/],
    ['a bad level in the environment', { data: dir }, { BOXSIG_REGISTRY_LOG_LEVEL: 'loud' }, /BOXSIG_REGISTRY_LOG_LEVEL: must be one of/],
    ['a bad boolean', { data: dir, trustProxy: 'yes' }, {}, /trustProxy: must be true or false/],
    ['a bad downloads mode', { data: dir, downloads: 'ftp' }, {}, /downloads: must be "redirect" or "proxy"/],
  ];
  for (const [what, doc, env, msg] of bad) {
    fs.writeFileSync(file, JSON.stringify(doc));
    t.throws(() => loadConfig({ config: file }, env), { code: 'CONFIG', message: msg }, what);
  }
  fs.writeFileSync(file, '{"data": ');
  t.throws(() => loadConfig({ config: file }, {}), { code: 'CONFIG' }, 'invalid JSON');
  t.throws(() => loadConfig({ config: path.join(dir, 'missing.json') }, {}), { code: 'CONFIG' }, 'a missing file');
  t.same(loadConfig({ database: 'postgres://u@h/db' }, {}, 'metadata').database, 'postgres://u@h/db', 'admin commands need only the database');
});
