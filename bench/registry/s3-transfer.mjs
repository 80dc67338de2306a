#!/usr/bin/env node
// The registry benchmark's reference transfers, run as a child process so that its time and
// peak memory are its own (the store comes from BOXSIG_TEST_S3_* and AWS_*):
//
//   node bench/registry/s3-transfer.mjs put FILE KEY [PART_MIB] [QUEUE] [signed|unsigned]
//                                                                       one multipart upload (lib-storage), streamed from FILE
//   node bench/registry/s3-transfer.mjs get KEY                          one GetObject, streamed and counted
//   node bench/registry/s3-transfer.mjs rm KEY                           DeleteObject
//
// Prints one JSON line: {"bytes": N}.
import fs from 'node:fs';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { s3Client, s3FromEnv, START_ENGINES } from './s3.mjs';

const MiB = 1024 * 1024;

async function put(client, bucket, file, key, partMiB = 5, queue = 4, parts = 'signed') {
  // 'unsigned': parts sent as UNSIGNED-PAYLOAD, as the registry sends them over loopback and https
  if (parts === 'unsigned') {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand') args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'unsignedParts' },
    );
  }
  const body = fs.createReadStream(file, { highWaterMark: MiB });
  const upload = new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize: Number(partMiB) * MiB, queueSize: Number(queue) });
  await upload.done();
  return fs.statSync(file).size;
}

async function get(client, bucket, key) {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  let bytes = 0;
  for await (const chunk of r.Body) bytes += chunk.length;
  return bytes;
}

async function main() {
  const [op, ...args] = process.argv.slice(2);
  const s3 = s3FromEnv();
  if (!s3) throw new Error(`the S3 store is not configured: ${START_ENGINES}`);
  const client = s3Client(s3);
  try {
    if (op === 'put') return put(client, s3.bucket, ...args);
    if (op === 'get') return get(client, s3.bucket, args[0]);
    if (op === 'rm') return (await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: args[0] })), 0);
    throw new Error('usage: s3-transfer.mjs put FILE KEY [PART_MIB] [QUEUE] | get KEY | rm KEY');
  } finally {
    client.destroy();
  }
}

main().then(
  (bytes) => console.log(JSON.stringify({ bytes })),
  (e) => {
    console.error(`s3-transfer: ${e.name}: ${e.message}`);
    process.exit(1);
  },
);
