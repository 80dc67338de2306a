/**
 * `boxsig publish BOX --registry URL [--key SECRET.asc]… [--release]`.
 */
import type { Command } from 'commander';
import { boxFileSize } from '../box/open.js';
import { action, collect, examples, jsonOption, parseClaims, passphraseFileOption } from './common.js';
import { err, out, passphraseOptions, printJson, Progress, warn } from './io.js';

interface PublishFlags {
  registry: string;
  key?: string[];
  gpgKey?: string[];
  passphraseFile?: string;
  name?: string;
  version?: string;
  provider?: string;
  claim?: string[];
  expires?: string;
  release?: boolean;
  json?: boolean;
}

export function registerPublish(program: Command): void {
  const cmd = program
    .command('publish')
    .description('publish a box to a boxsig registry (signing it first with --key); the token comes from BOXSIG_REGISTRY_TOKEN')
    .argument('<box>', 'the .box file')
    .requiredOption('--registry <url>', 'the registry, e.g. https://boxes.acme.example')
    .option('--key <secret.asc>', 'sign BOX in place first with this key (repeatable: co-signers)', collect)
    .option('--gpg-key <key>', 'sign through the local GnuPG with this key: a fingerprint, long key ID or user ID (repeatable)', collect)
    .addOption(passphraseFileOption())
    .option('--name <name>', 'box name ORG/NAME (signed boxes name themselves)')
    .option('--version <version>', 'box version (signed boxes name themselves)')
    .option('--provider <provider>', 'provider (signed boxes name themselves)')
    .option('--claim <key=value>', 'signed claim, when signing (repeatable)', collect)
    .option('--expires <duration>', 'expiry of the signature, when signing')
    .option('--release', 'release the version once the box is uploaded')
    .addOption(jsonOption());
  examples(
    cmd,
    'BOXSIG_REGISTRY_TOKEN=… boxsig publish ubuntu.box --registry https://boxes.acme.example --release',
    'boxsig publish ubuntu.box --registry https://boxes.acme.example --key ci.secret.asc --name acme/ubuntu --version 1.2.3 --release',
  );
  cmd.action(
    action(async (box: string, opts: PublishFlags) => {
      boxFileSize(box); // the same answer as every command for a missing file, before any key is unlocked
      const { publishBox } = await import('../registry/client.js');
      const { loadSigners } = await import('../box/signers.js');
      const signers =
        opts.key?.length || opts.gpgKey?.length
          ? await loadSigners({ keys: opts.key, gpgKeys: opts.gpgKey, passphrase: passphraseOptions(opts.passphraseFile) })
          : null;
      let progress: Progress | null = null;
      const r = await publishBox(box, {
        registry: opts.registry,
        token: process.env.BOXSIG_REGISTRY_TOKEN ?? '',
        name: opts.name,
        version: opts.version,
        provider: opts.provider,
        release: opts.release,
        ...(signers
          ? { sign: { signers, name: opts.name, version: opts.version, provider: opts.provider, claims: parseClaims(opts.claim), expires: opts.expires } }
          : {}),
        onInfo: (line) => !opts.json && err(`boxsig: ${line}`),
        onProgress: (sent, total) => {
          progress ??= new Progress('uploading', total, !opts.json);
          progress.update(sent);
        },
      });
      (progress as Progress | null)?.done();
      if (opts.json) printJson(r);
      else {
        for (const w of r.warnings) warn(w);
        out(
          `boxsig: PUBLISHED ${r.box.name} ${r.box.version} (${r.box.provider}) to ${r.registry}${r.released ? ', released' : ', not released yet (--release)'}`,
        );
        out(`  sha256    ${r.sha256}`);
        out(`  catalog   ${r.catalog}`);
        if (r.log) out(`  log       entry ${r.log.index} of ${r.log.size} (inclusion verified against the registry's signed checkpoint)`);
      }
    }),
  );
}
