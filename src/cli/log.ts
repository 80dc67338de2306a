/**
 * `boxsig log …`: the client side of a registry's transparency log, and
 * `boxsig registry key`: the registry's key, to pin.
 *
 *   boxsig log monitor ORG[/NAME] --registry URL [--since N] [--json]
 *   boxsig log forget URL [--json]
 *   boxsig registry key [--data DIR | --config FILE …] [--json]
 *   boxsig registry key generate --name NAME --out FILE [--json]
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { BoxsigError, usage } from '../errors.js';
import { action, examples, jsonOption } from './common.js';
import { err, out, printJson } from './io.js';
import { escapeLine } from '../shared/terminal.js';
import type { ConfigFlags } from '../registry/config.js';

interface MonitorFlags {
  registry: string;
  since?: string;
  json?: boolean;
}

function sinceOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(v)) throw usage('--since is a tree size: the `size` a previous monitor printed');
  return Number(v);
}

export function registerLogCommands(program: Command): void {
  const log = program.command('log').description("a boxsig registry's transparency log: monitor what is published under a name");
  log
    .command('monitor')
    .description('list every publication (and key event) under ORG or ORG/NAME in the registry log, verified against its signed checkpoint')
    .argument('<scope>', 'ORG or ORG/NAME')
    .requiredOption('--registry <url>', 'the registry, e.g. https://boxes.acme.example')
    .option('--since <size>', 'only entries after this tree size (the size a previous run printed)')
    .addOption(jsonOption())
    .action(
      action(async (scope: string, opts: MonitorFlags) => {
        if (!/^[^/\s]+(\/[^/\s]+)?$/.test(scope)) throw usage(`${escapeLine(scope)} is not ORG or ORG/NAME`);
        const { registryOrigin } = await import('../policy/config.js');
        const origin = registryOrigin(opts.registry.replace(/\/+$/, ''));
        if (!origin) throw usage(`--registry ${escapeLine(opts.registry)} must be an http(s) URL`);
        const { defaultTrust } = await import('../box/verify.js');
        const { monitorLog } = await import('../vagrant/registry-log.js');
        const r = await monitorLog(
          { origin, http: {}, ...(await defaultTrust({})), now: new Date(), onInfo: (l) => !opts.json && err(`boxsig: ${l}`) },
          scope,
          sinceOf(opts.since),
        );
        if (opts.json) return printJson(r);
        out(
          `boxsig: ${r.entries.length} log entr${r.entries.length === 1 ? 'y' : 'ies'} for ${scope} in ${r.registry}, entries ${r.since}–${r.size} (verified against its signed checkpoint)`,
        );
        for (const e of r.entries) {
          const line =
            e.kind === 'publication'
              ? `published  ${e.box} ${e.version} ${e.provider}${e.architecture === 'unknown' ? '' : ` (${e.architecture})`}  sha256 ${e.sha256}  signed by ${e.signers.join(', ') || 'nobody (unsigned)'}`
              : e.kind === 'withdrawal'
                ? `withdrawn  ${e.box} ${e.version}`
                : `key event  ${e.action} ${e.target}${e.fingerprints.length ? `  ${e.fingerprints.join(', ')}` : ''}`;
          out(escapeLine(`  #${e.index}  ${e.time}  ${line}`));
        }
        out(`  next: boxsig log monitor ${escapeLine(scope)} --registry ${origin} --since ${r.size}`);
      }),
    );
  log
    .command('forget')
    .description("forget a registry's recorded key, checkpoint and catalogs (after its operator changed the key)")
    .argument('<url>', 'the registry')
    .addOption(jsonOption())
    .action(
      action(async (url: string, opts: { json?: boolean }) => {
        const { TrustStore } = await import('../trust/store.js');
        const { forgetRegistry } = await import('../vagrant/registry-log.js');
        const forgotten = await forgetRegistry(new TrustStore(), url);
        if (opts.json) return printJson({ ok: true, forgotten });
        out(forgotten ? `boxsig: forgot the registry ${escapeLine(url)}` : `boxsig: nothing recorded for ${escapeLine(url)}`);
      }),
    );

  const sub = (name: string) => log.commands.find((c) => c.name() === name)!;
  examples(
    sub('monitor'),
    'boxsig log monitor acme/ubuntu --registry https://boxes.acme.example',
    'boxsig log monitor acme --registry https://boxes.acme.example --since 120 --json',
  );
  examples(sub('forget'), 'boxsig log forget https://boxes.acme.example');
  const registry = program.commands.find((c) => c.name() === 'registry');
  if (registry) registerRegistryKey(registry);
}

function registerRegistryKey(registry: Command): void {
  const key = registry
    .command('key')
    .description("print the registry's key (signs log checkpoints and catalogs) for clients to pin")
    .option('--config <file>', 'registry config file (JSON)')
    .option('--data <dir>', 'embedded registry: the key is kept (generated at first use) in this directory')
    .option('--database <url>', 'PostgreSQL URL (postgres://…)')
    .addOption(jsonOption())
    .action(
      action(async (opts: ConfigFlags & { json?: boolean }) => {
        const { loadConfig } = await import('../registry/config.js');
        const { loadRegistryKey } = await import('../registry/log/key.js');
        const signer = loadRegistryKey(loadConfig(opts, process.env, 'metadata'));
        if (opts.json) return printJson({ ok: true, origin: signer.name, key: signer.verifierKey });
        out(signer.verifierKey);
        err(`boxsig: pin it in boxsig.json: {"registries": {"https://…": {"key": "${signer.verifierKey}"}}}`);
      }),
    );
  key
    .command('generate')
    .description('make a registry key for an operator to give to every registry process (keyFile, BOXSIG_REGISTRY_KEY)')
    .requiredOption('--name <name>', "the key's name, the log origin: the registry's host (and path)")
    .requiredOption('--out <file>', 'the secret key file to create (mode 0600; never overwritten)')
    .addOption(jsonOption())
    .action(
      action(async (opts: { name: string; out: string; json?: boolean }) => {
        const { generateSignerKey } = await import('../tlog/note.js');
        const k = generateSignerKey(opts.name);
        let fd: number;
        try {
          fd = fs.openSync(opts.out, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
        } catch (e) {
          throw new BoxsigError((e as NodeJS.ErrnoException).code === 'EEXIST' ? 'EXISTS' : 'IO', `cannot create ${opts.out}: ${(e as Error).message}`);
        }
        try {
          fs.writeSync(fd, `${k.signerKey}\n`);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        if (opts.json) return printJson({ ok: true, file: opts.out, key: k.verifierKey });
        out(k.verifierKey);
      }),
    );
  examples(
    key.commands.find((c) => c.name() === 'generate')!,
    'boxsig registry key generate --name boxes.acme.example --out registry.key',
  );
}
