/**
 * The command tree of `boxsig`: one file per command group under src/cli/,
 * each a thin mapping of options onto a library call.
 */
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_OK, EXIT_USAGE } from '../errors.js';
import { printJson } from './io.js';
import { escapeLine } from '../shared/terminal.js';
import { registerKeyCommands } from './key.js';
import { registerSignCommands } from './sign.js';
import { registerVerifyCommands } from './verify.js';
import { registerTrustCommands } from './trust.js';
import { registerAddCommand } from './add.js';
import { registerRepackage } from './repackage.js';
import { recoverBeforeMutation } from './recovery.js';
import { registerRegistryCommands } from './registry.js';
import { registerPublish } from './publish.js';
import { registerLogCommands } from './log.js';
import { action, examples, jsonOption } from './common.js';

export const VERSION = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

/** Commander's messages quote arguments, which may come from anywhere: escape them per line. */
function safeLines(s: string): string {
  return s
    .split('\n')
    .map((l) => escapeLine(l))
    .join('\n');
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('boxsig')
    .description('OpenPGP signatures for Vagrant boxes: sign when built, verify when added.')
    .version(VERSION, '-v, --version', 'print the version')
    .addOption(new Option('-V', 'print the version (as -v)').hideHelp())
    .on('option:V', () => {
      process.stdout.write(`${VERSION}\n`);
      throw new CommanderError(EXIT_OK, 'commander.version', VERSION);
    })
    .helpOption('-h, --help', 'show help for boxsig or for a command')
    .helpCommand('help [command]', 'show help for a command')
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(safeLines(s.startsWith('error:') ? `boxsig: usage error: ${s.slice(7)}` : s)),
    });
  examples(
    program,
    'boxsig sign ubuntu.box --key acme.secret.asc --name acme/ubuntu-24.04 --version 1.2.3',
    'boxsig add https://boxes.acme.example/acme/ubuntu-24.04.json',
  );
  program.hook('preAction', recoverBeforeMutation);
  registerKeyCommands(program);
  registerSignCommands(program);
  registerVerifyCommands(program);
  registerTrustCommands(program);
  registerAddCommand(program);
  registerRepackage(program);
  registerRegistryCommands(program);
  registerPublish(program);
  registerLogCommands(program);
  registerVersion(program);
  return program;
}

function registerVersion(program: Command): void {
  const cmd = program.command('version').description('print the version').addOption(jsonOption());
  examples(cmd, 'boxsig version', 'boxsig version --json');
  cmd.action(
    action(async (opts: { json?: boolean }) => {
      if (opts.json) printJson({ ok: true, version: VERSION });
      else process.stdout.write(`${VERSION}\n`);
    }),
  );
}

/**
 * Commander stopped the parse: help or the version was shown (exit 0), or the
 * command line is wrong (exit 2; with --json one object, as every failure).
 * `boxsig` alone, or a command group without its subcommand, prints the help
 * on stderr and exits 2, as git and vagrant exit non-zero.
 */
export function commanderExit(e: CommanderError, json: boolean): number {
  if (e.exitCode === 0) return EXIT_OK;
  if (json) {
    const message = e.code === 'commander.help' ? 'no command given (run boxsig --help)' : e.message.replace(/^error: /, '');
    printJson({ ok: false, code: 'USAGE', message });
  }
  return EXIT_USAGE;
}
