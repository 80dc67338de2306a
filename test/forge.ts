/**
 * Boxes an attacker would make: a validly signed manifest that states any
 * identity at all (boxsig's own `sign` refuses such names, an attacker's tool
 * does not), built with the hostile corpus's independent tar writer.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import * as corpus from './corpus/generate.mjs';
import * as tar from './corpus/tar.mjs';

export interface ForgedBox {
  file: string;
  fingerprint: string;
}

export interface ForgeOptions {
  box: { name: string; version: string; provider: string };
  /** An OpenPGP.js private key (corpus.newKey()); a new one by default. */
  key?: any;
  files?: Array<{ path: string; data: Buffer }>;
  /** metadata.json's provider (default: the signed one) */
  metadataProvider?: string;
}

/** A signed gzip box whose manifest says `opts.box`. */
export async function forgeSignedBox(file: string, opts: ForgeOptions): Promise<ForgedBox> {
  const key = opts.key ?? (await corpus.newKey({ uid: 'Forger' }));
  const files = opts.files ?? [
    { path: 'metadata.json', data: Buffer.from(JSON.stringify({ provider: opts.metadataProvider ?? opts.box.provider })) },
    { path: 'Vagrantfile', data: Buffer.from('Vagrant.configure("2") do |config|\nend\n') },
    { path: 'box-disk1.vmdk', data: corpus.pseudoRandom(20_000, 3) },
  ];
  const manifest = corpus.manifestFor(files, { box: opts.box });
  const fpr = corpus.fpr(key);
  const armored = await corpus.signDetached(manifest, key);
  const prefix = corpus.prefixEntries({ manifest, signatures: [{ fpr, armored }], keys: [{ fpr, armored: corpus.armoredPublic(key) }] });
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat([prefix, corpus.bodyEntries(files), tar.end()])));
  return { file, fingerprint: fpr };
}

/** An unsigned gzip box (no .boxsig/) with the given metadata.json provider. */
export function unsignedBox(file: string, provider: string): string {
  const files = [
    { path: 'metadata.json', data: Buffer.from(JSON.stringify({ provider })) },
    { path: 'box-disk1.vmdk', data: corpus.pseudoRandom(10_000, 5) },
  ];
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat([corpus.bodyEntries(files), tar.end()])));
  return file;
}
