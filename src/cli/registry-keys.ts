/**
 * `boxsig registry org hold-key|certify`, `boxsig registry escrow …` and
 * `registry box create --escrow`: the key acts that need the registry's
 * key-encryption key (escrowKeyFile in the config, or the
 * BOXSIG_REGISTRY_ESCROW_KEY_FILE / BOXSIG_REGISTRY_ESCROW_KEY variables).
 * Thin: each is one library call (src/registry/escrow/admin.ts).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { usage } from '../errors.js';
import { action, examples, jsonOption } from './common.js';
import { err, out, passphraseOptions } from './io.js';
import { passphraseFrom } from '../keys/passphrase.js';
import { config, engineOptions, readFile, show, withDb, withRegistry, type EngineFlags } from './registry.js';

async function kek(flags: EngineFlags) {
  const { openKeyEncryption } = await import('../registry/open.js');
  return openKeyEncryption(await config(flags, 'metadata'));
}

/** A public key written to a new file (never over an existing one). */
function writeOut(file: string | undefined, text: string): void {
  if (!file) return;
  try {
    fs.writeFileSync(file, text, { flag: 'wx', mode: 0o644 });
  } catch (e) {
    throw usage(`cannot write ${file}: ${(e as Error).message}`);
  }
}

export async function createEscrowBoxCommand(name: string, opts: EngineFlags & { private?: boolean; description?: string }): Promise<void> {
  const { createEscrowBox } = await import('../registry/escrow/admin.js');
  const k = await kek(opts);
  const r = await withRegistry(opts, (reg) => createEscrowBox(reg, k, name, { private: opts.private, description: opts.description }));
  show(opts.json, { box: { name: r.box.tag, private: r.box.private, signing: 'escrow' }, escrow: r.escrow }, () => {
    out(`created box ${r.box.tag}${r.box.private ? ' (private)' : ''}, escrow-signed by the registry's key ${r.escrow.escrow}`);
    if (!r.escrow.certifiedBy) {
      err(
        `boxsig registry: the registry holds no org key: certify ${r.escrow.escrow} offline for consumers who trust the org (boxsig registry org keys shows it), or trust it on first use`,
      );
    }
  });
}

// long: a declarative commander table: one option list and a one-line library call per subcommand
export function registerKeyCommands(registry: Command, org: Command): void {
  engineOptions(
    examples(
      org
        .command('hold-key')
        .argument('<org>', 'organization name')
        .description('let the registry hold the org key (encrypted at rest) and certify repository keys with it'),
      'BOXSIG_REGISTRY_ESCROW_KEY_FILE=kek boxsig registry org hold-key acme --generate --data ./registry',
    ),
  )
    .option('--generate', 'generate a new org key (v4 Ed25519)')
    .option('--import <file>', 'hand over an existing secret org key')
    .option('--passphrase-file <file>', "the imported key's passphrase (else BOXSIG_PASSPHRASE, or a prompt)")
    .option('--require', "from now on, uploads to the org must be signed by a key the org key certified for the box's name")
    .option('-o, --output <file>', "write the org key's public part here")
    .addOption(jsonOption())
    .action(
      action(async (name: string, opts: EngineFlags & { generate?: boolean; import?: string; passphraseFile?: string; require?: boolean; output?: string }) => {
        if (Boolean(opts.generate) === Boolean(opts.import)) throw usage('give exactly one of --generate and --import FILE');
        const { holdOrgKey } = await import('../registry/escrow/admin.js');
        const { importSecret } = await import('../registry/escrow/held.js');
        const k = await kek(opts);
        const source = opts.import
          ? { key: await importSecret(readFile(opts.import), opts.import, passphraseFrom(passphraseOptions(opts.passphraseFile), 'the org key')) }
          : ({ generate: true } as const);
        const r = await withDb(opts, (db) => holdOrgKey(db, k, name, source, { require: opts.require }));
        writeOut(opts.output, r.publicKey);
        show(opts.json, { org: r.org, fingerprint: r.fingerprint, publicKey: r.publicKey }, () =>
          out(`the registry holds the org key ${r.fingerprint} of ${r.org}`),
        );
      }),
    );

  engineOptions(
    examples(
      org
        .command('certify')
        .argument('<org>', 'organization name')
        .argument('<repo-public-key>', "the repository key's public key file")
        .description('certify a repository key with the org key the registry holds, and register it'),
      'boxsig registry org certify acme repo.public.asc --scope "acme/web-*" --data ./registry',
    ),
  )
    .requiredOption('--scope <glob>', 'the boxsig:<glob> user ID to certify (e.g. acme/web or acme/web-*)')
    .option('-o, --output <file>', 'write the certified public key here')
    .addOption(jsonOption())
    .action(
      action(async (name: string, file: string, opts: EngineFlags & { scope: string; output?: string }) => {
        const { certifyByRegistry } = await import('../registry/escrow/admin.js');
        const k = await kek(opts);
        const r = await withDb(opts, (db) => certifyByRegistry(db, k, name, readFile(file), file, opts.scope));
        writeOut(opts.output, r.certified);
        show(opts.json, { ...r }, () => out(`certified ${r.fingerprint} for boxsig:${opts.scope} with the org key ${r.certifiedBy}`));
      }),
    );

  const escrow = registry.command('escrow').description('escrow-signed boxes: the registry signs their uploads with a key it holds');
  engineOptions(
    examples(
      escrow.command('enable').argument('<org/name>', 'the box').description('make an existing box (with no released version) escrow-signed'),
      'boxsig registry escrow enable acme/ubuntu --data ./registry',
    ),
  )
    .addOption(jsonOption())
    .action(
      action(async (name: string, opts: EngineFlags) => {
        const { enableEscrow } = await import('../registry/escrow/admin.js');
        const k = await kek(opts);
        const r = await withDb(opts, (db) => enableEscrow(db, k, name));
        show(opts.json, { escrow: r }, () => out(`${r.box} is escrow-signed by the registry's key ${r.escrow}`));
      }),
    );
  engineOptions(
    examples(
      escrow
        .command('convert')
        .argument('<org/name>', 'the escrow-signed box')
        .argument('<new-public-key>', "the publisher's own key (public part) that takes over")
        .description(
          'convert an escrow box to a self-managed key: the next version, signed by the new key, is co-signed by the escrow key, which is then revoked',
        ),
      'boxsig registry escrow convert acme/ubuntu publisher.public.asc --data ./registry',
    ),
  )
    .addOption(jsonOption())
    .action(
      action(async (name: string, file: string, opts: EngineFlags) => {
        const { startConversion } = await import('../registry/escrow/admin.js');
        const k = await kek(opts);
        const r = await withDb(opts, (db) => startConversion(db, k, name, readFile(file), file));
        show(opts.json, { escrow: r }, () =>
          out(
            `${r.box} is converting to ${r.successor}: publish the next version signed by it; the registry co-signs it with ${r.escrow}, then revokes ${r.escrow}`,
          ),
        );
      }),
    );
  engineOptions(
    examples(
      escrow.command('export').argument('<org/name>', 'the escrow-signed box').description("write a box's escrow secret key to a new file (an audited act)"),
      'boxsig registry escrow export acme/ubuntu -o escrow.secret.asc --data ./registry',
    ),
  )
    .requiredOption('-o, --output <file>', 'the secret key file to create (0600; must not exist)')
    .addOption(jsonOption())
    .action(
      action(async (name: string, opts: EngineFlags & { output: string }) => {
        const { exportEscrow } = await import('../registry/escrow/admin.js');
        const k = await kek(opts);
        const r = await withDb(opts, (db) => exportEscrow(db, k, name, opts.output));
        show(opts.json, { escrow: r }, () => out(`exported the escrow key ${r.fingerprint} of ${r.box} to ${r.file} (recorded in the audit log)`));
      }),
    );
}
