#!/usr/bin/env node
/**
 * The `boxsig` command: a thin layer over the library.
 */
import './v8.js'; // first: before any module allocates
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_OK, EXIT_USAGE } from '../errors.js';
import { reportError } from './io.js';
import { registerCoreCommands, registerRepackage } from './core.js';
import { registerTrustCommands } from './trust.js';
import { registerRegistryCommands } from './registry.js';
import { registerPublish } from './publish.js';

const VERSION = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

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
      writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `boxsig: usage error: ${s.slice(7)}` : s),
    });
  registerCoreCommands(program);
  registerTrustCommands(program);
  registerRepackage(program);
  registerRegistryCommands(program);
  registerPublish(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
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

process.on('unhandledRejection', (e) => {
  process.exitCode = reportError(e, { json: process.argv.includes('--json') });
});

await main();
