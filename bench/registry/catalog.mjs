// A Vagrant catalog (metadata JSON) as a registry serves it at GET /ORG/NAME, for the
// catalog-read reference when no registry is available to produce the real one.
import crypto from 'node:crypto';

/** `versions` versions of acme/box with `providers` providers each, checksums included. */
export function sampleCatalog({ name = 'acme/box', versions = 20, providers = ['libvirt', 'virtualbox'], base = 'http://127.0.0.1:8080' } = {}) {
  const hex = (s) => crypto.createHash('sha256').update(s).digest('hex');
  return JSON.stringify({
    name,
    description: 'Benchmark catalog: Ubuntu 24.04 server image, signed with boxsig',
    versions: Array.from({ length: versions }, (_, i) => {
      const version = `1.${Math.floor(i / 10)}.${i % 10}`;
      return {
        version,
        status: 'active',
        description_markdown: `Release ${version}`,
        providers: providers.map((p) => ({
          name: p,
          url: `${base}/${name}/versions/${version}/providers/${p}/amd64/download`,
          checksum_type: 'sha256',
          checksum: hex(`${name}/${version}/${p}`),
          architecture: 'amd64',
          default_architecture: true,
        })),
      };
    }),
  });
}
