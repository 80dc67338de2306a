// The registry's contenders for `npm run bench:registry` (the harness is bench/registry/bench.mjs,
// whose header defines this interface). Built on bench/lib/registry.mjs:
//
//   start({ processes, s3, databaseUrl, work, log }) → { label, prepare(file), uploadWithValidation(file),
//                                                        catalogUrl, pids(), stop() }
//
// - N `boxsig registry serve` processes on one PostgreSQL (a fresh database on the server that
//   databaseUrl names, dropped at stop; embedded SQLite when null) and the harness's S3 store
//   (a fresh key prefix).
// - prepare(file): a signed copy of the box (bench/box 1.0.0, signed by a key the bench org pins),
//   so that every upload is fully validated: signature, pin, every file's SHA-256.
// - uploadWithValidation(file): one upload of that copy to version 1.0.0, left unreleased so that
//   the next run can replace it (each run is verified and stored again); the processes take turns.
// - catalogUrl: one per process, the catalog of bench/box with a released version.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { tinyBox } from '../lib/box.mjs';
import { signForBench, startRegistries, uploadWithValidation } from '../lib/registry.mjs';

async function freshDatabase(url) {
  const name = `boxsig_bench_${crypto.randomBytes(5).toString('hex')}`;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const d = new pg.Client({ connectionString: url });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await d.end();
    },
  };
}

export async function start({ processes = 2, s3, databaseUrl, work, log = () => {} }) {
  const dir = path.join(work, `registry-${process.pid}-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  const db = databaseUrl ? await freshDatabase(databaseUrl) : null;
  const env = { ...process.env, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  const reg = await startRegistries({
    n: processes,
    dir,
    database: db?.url,
    s3: { endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, prefix: `bench-registry/${path.basename(dir)}/` },
    env,
  });
  log(`registry: ${reg.urls.join(', ')} (${db ? 'PostgreSQL' : 'embedded database'}, S3 ${s3.bucket})`);

  // a released version, so that the catalog lists a downloadable box
  const tiny = path.join(dir, 'catalog.box');
  await tinyBox(tiny);
  const tinyProvider = signForBench(reg, tiny, '0.1.0');
  await uploadWithValidation(reg, tiny, { version: '0.1.0', provider: tinyProvider, release: true });

  const prepared = new Map();
  let turn = 0;
  return {
    label: `boxsig registry (${processes} process${processes === 1 ? '' : 'es'}, ${db ? 'PostgreSQL' : 'embedded'} + S3)`,
    async prepare(file) {
      const copy = path.join(dir, `signed-${path.basename(file)}`);
      fs.copyFileSync(file, copy);
      prepared.set(copy, signForBench(reg, copy, '1.0.0'));
      return copy;
    },
    async uploadWithValidation(file) {
      const provider = prepared.get(file);
      if (!provider) throw new Error(`${file} was not prepared (signed) for the registry`);
      await uploadWithValidation(reg, file, { version: '1.0.0', provider, index: turn++ % reg.urls.length, release: false });
    },
    catalogUrl: reg.urls.map((u) => `${u}/bench/box`),
    pids: () => reg.pids,
    async stop() {
      await reg.stop();
      await db?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
