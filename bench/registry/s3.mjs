// The S3 store the registry benchmark writes to, from the same variables as the tests
// (printed by scripts/services/swift.sh; see test/engines.ts, whose s3ClientConfig this mirrors).
import { S3Client } from '@aws-sdk/client-s3';

export const S3_VARIABLES = ['BOXSIG_TEST_S3_ENDPOINT', 'BOXSIG_TEST_S3_REGION', 'BOXSIG_TEST_S3_BUCKET', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
export const START_ENGINES = 'eval "$(sudo scripts/services/postgres.sh)" && eval "$(sudo scripts/services/swift.sh)"';

/** { endpoint, region, bucket, accessKeyId, secretAccessKey } or null when not configured. */
export function s3FromEnv(env = process.env) {
  if (S3_VARIABLES.some((v) => !env[v])) return null;
  return {
    endpoint: env.BOXSIG_TEST_S3_ENDPOINT,
    region: env.BOXSIG_TEST_S3_REGION,
    bucket: env.BOXSIG_TEST_S3_BUCKET,
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
  };
}

/** Path-style, the store's region, and checksums only where S3 requires them (Swift refuses aws-chunked bodies). */
export function s3Client(s3) {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
