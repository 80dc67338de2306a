#!/usr/bin/env node
/**
 * The `boxsig` command: a thin layer over the library.
 */
import './v8.js'; // first: before any module allocates
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_OK, EXIT_USAGE } from '../errors.js';
import { reportError } from './io.js';
import { abortRequests } from '../vagrant/http.js';
import { escapeLine } from '../shared/terminal.js';
import { registerCoreCommands, registerRepackage } from './core.js';
import { registerTrustCommands } from './trust.js';
import { recoverBeforeMutation } from './recovery.js';
import { nextTurn } from '../interrupt.js';
import { registerRegistryCommands } from './registry.js';
import { registerPublish } from './publish.js';
import { registerLogCommands } from './log.js';

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
    .version(VERSION, '-V, --version')
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(safeLines(s.startsWith('error:') ? `boxsig: usage error: ${s.slice(7)}` : s)),
    });
  program.hook('preAction', recoverBeforeMutation);
  registerCoreCommands(program);
  registerTrustCommands(program);
  registerRepackage(program);
  registerRegistryCommands(program);
  registerPublish(program);
  registerLogCommands(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
    await nextTurn(); // an interrupt that arrived during the last synchronous step still ends the process by its signal
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') {
        process.exitCode = EXIT_OK;
      } else {
        process.exitCode = EXIT_USAGE;
      }
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
