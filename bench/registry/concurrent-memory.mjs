#!/usr/bin/env node
// Memory of one registry process with N validated uploads in flight at once (REGISTRY.md: "memory
// per upload is flat … whatever the number of uploads in flight"). Needs the engines (the
// variables of scripts/services/postgres.sh and swift.sh) and a built dist/.
//
//   node bench/registry/concurrent-memory.mjs BOX [N ...]     (default N: 1 3)
//
// For each N: a fresh registry process on a fresh PostgreSQL database and S3 prefix, N signed
// copies of BOX (versions 1.0.0 … 1.0.N-1) uploaded together through curl; prints the process's
// RSS before, its peak RSS, and what the uploads added per upload.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { signForBench, startRegistries, uploadWithValidation } from '../lib/registry.mjs';

const [box, ...counts] = process.argv.slice(2);
if (!box) throw new Error('usage: concurrent-memory.mjs BOX [N ...]');
const env = process.env;
for (const v of ['BOXSIG_TEST_DATABASE_URL', 'BOXSIG_TEST_S3_ENDPOINT', 'BOXSIG_TEST_S3_BUCKET', 'BOXSIG_TEST_S3_REGION'])
  if (!env[v]) throw new Error(`${v} is not set: run scripts/services/postgres.sh and swift.sh and export what they print`);

const status = (pid, field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function database() {
  const name = `boxsig_bench_${crypto.randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: env.BOXSIG_TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(env.BOXSIG_TEST_DATABASE_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const d = new pg.Client({ connectionString: env.BOXSIG_TEST_DATABASE_URL });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await d.end();
    },
  };
}

for (const n of (counts.length ? counts : ['1', '3']).map(Number)) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-concurrent-'));
  const db = await database();
  const reg = await startRegistries({
    n: 1,
    dir,
    database: db.url,
    s3: {
      endpoint: env.BOXSIG_TEST_S3_ENDPOINT,
      bucket: env.BOXSIG_TEST_S3_BUCKET,
      region: env.BOXSIG_TEST_S3_REGION,
      prefix: `bench-concurrent/${path.basename(dir)}/`,
    },
  });
  try {
    const uploads = [];
    for (let i = 0; i < n; i++) {
      const copy = path.join(dir, `signed-${i}.box`);
      fs.copyFileSync(box, copy);
      uploads.push({ copy, version: `1.0.${i}`, provider: signForBench(reg, copy, `1.0.${i}`) });
    }
    const pid = reg.pids[0];
    const before = status(pid, 'VmRSS');
    const t0 = Date.now();
    await Promise.all(uploads.map((u) => uploadWithValidation(reg, u.copy, { version: u.version, provider: u.provider, release: false })));
    const peak = status(pid, 'VmHWM');
    console.log(
      `${n} upload(s) in flight: ${((Date.now() - t0) / 1000).toFixed(1)} s; RSS before ${before.toFixed(0)} MiB, ` +
        `peak ${peak.toFixed(0)} MiB: ${((peak - before) / n).toFixed(0)} MiB per upload`,
    );
  } finally {
    await reg.stop();
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
