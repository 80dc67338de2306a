#!/usr/bin/env node
/**
 * The `boxsig` command: a thin layer over the library.
 */
import './v8.js'; // first: before any module allocates
import { CommanderError } from 'commander';
import { reportError } from './io.js';
import { abortRequests } from '../vagrant/http.js';
import { nextTurn } from '../interrupt.js';
import { buildProgram, commanderExit } from './program.js';

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
