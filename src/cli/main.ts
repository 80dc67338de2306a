#!/usr/bin/env node
/**
 * The `boxsig` command: a thin layer over the library.
 */
import './v8.js'; // first: before any module allocates
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_OK, EXIT_USAGE } from '../errors.js';
import { printJson, reportError } from './io.js';
import { abortRequests } from '../vagrant/http.js';
import { escapeLine } from '../shared/terminal.js';
import { registerKeyCommands } from './key.js';
import { registerSignCommands } from './sign.js';
import { registerVerifyCommands } from './verify.js';
import { registerTrustCommands } from './trust.js';
import { registerAddCommand } from './add.js';
import { registerRepackage } from './repackage.js';
import { recoverBeforeMutation } from './recovery.js';
import { nextTurn } from '../interrupt.js';
import { registerRegistryCommands } from './registry.js';
import { registerPublish } from './publish.js';
import { action, examples, jsonOption } from './common.js';

const VERSION = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

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
  examples(program, 'boxsig sign ubuntu.box --key acme.secret.asc --name acme/ubuntu-24.04 --version 1.2.3', 'boxsig add https://boxes.acme.example/acme/ubuntu-24.04.json');
  program.hook('preAction', recoverBeforeMutation);
  registerKeyCommands(program);
  registerSignCommands(program);
  registerVerifyCommands(program);
  registerTrustCommands(program);
  registerAddCommand(program);
  registerRepackage(program);
  registerRegistryCommands(program);
  registerPublish(program);
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
function commanderExit(e: CommanderError, json: boolean): number {
  if (e.exitCode === 0) return EXIT_OK;
  if (json) {
    const message = e.code === 'commander.help' ? 'no command given (run boxsig --help)' : e.message.replace(/^error: /, '');
    printJson({ ok: false, code: 'USAGE', message });
  }
  return EXIT_USAGE;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
    await nextTurn(); // an interrupt that arrived during the last synchronous step still ends the process by its signal
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = commanderExit(e, process.argv.includes('--json'));
      return;
    }
    process.exitCode = reportError(e, { json: process.argv.includes('--json') });
  }
}

// A reader that stops early (boxsig inspect BOX | head -1) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

/*
 * An error thrown where nothing can catch it (an assertion inside the HTTP
 * client, a throw in a stream callback) must still end as any other failure:
 * the right exit status, one JSON object with --json, no debris. The
 * downloads in flight fail with it, so that the command that reads them
 * unwinds (removing its staging directory) and reports it; if nothing was in
 * flight, or the command does not finish soon, it is reported here.
 */
function fatal(e: unknown): void {
  const report = () => {
    process.exitCode = reportError(e, { json: process.argv.includes('--json') });
  };
  if (abortRequests(e) === 0) {
    report();
    process.exit();
  }
  setTimeout(() => {
    report();
    process.exit();
  }, 10_000).unref();
}

process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

await main();
