/**
 * Which S3 endpoints get the SHA-256 of each part in its SigV4 signature:
 * plain http to another host keeps it (it guards the bytes on the wire);
 * TLS and loopback send UNSIGNED-PAYLOAD (the registry then hashes each box
 * once, for its address, not twice).
 */
import t from 'tap';
import { partSizeFor, signsPayloads } from '../../src/registry/blobs/s3.js';

t.test('payload signing by endpoint', async (t) => {
  const rows: Array<[string | undefined, boolean]> = [
    [undefined, false], // the AWS endpoint, over https
    ['https://s3.example.org', false],
    ['https://10.0.0.5:9000', false],
    ['http://127.0.0.1:8080', false],
    ['http://127.8.9.10:8080', false],
    ['http://localhost:8080', false],
    ['http://[::1]:8080', false],
    ['http://10.0.0.5:9000', true],
    ['http://minio.internal:9000', true],
    ['http://127.0.0.1.evil.example:80', true],
    ['http://localhost.evil.example', true],
  ];
  for (const [endpoint, signed] of rows) t.equal(signsPayloads(endpoint), signed, String(endpoint));
});

t.test("the part size holds the largest box the registry accepts within S3's 10,000 parts", async (t) => {
  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;
  t.equal(partSizeFor(undefined), 8 * MiB);
  t.equal(partSizeFor(64 * GiB), 8 * MiB, 'the default limit (64 GiB): 8 MiB parts');
  for (const largest of [70 * GiB, 80 * GiB, 200 * GiB, 5 * 1024 * GiB]) {
    const part = partSizeFor(largest);
    t.ok(part % MiB === 0 && part >= 8 * MiB, `${largest / GiB} GiB: ${part / MiB} MiB parts`);
    t.ok(Math.ceil(largest / part) <= 9_000, `${largest / GiB} GiB fits in ${Math.ceil(largest / part)} parts, leaving room under 10,000`);
  }
});
