/**
 * The fault-injection harness (see inject.mjs): run a boxsig command once to
 * count the file-system calls that change something, then once per call with
 * a crash (SIGKILL), an interrupt (a signal) or a full disk (ENOSPC) injected
 * right before it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers.js';

export const INJECT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'inject.mjs');

export type FaultMode = 'kill' | 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'enospc';

export interface FaultRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The calls made, "N op path", up to the fault. */
  calls: string[];
}

/**
 * Run the CLI with the harness loaded and nothing else: through env(1), so
 * that the test runner's process-info loader, which it adds to the
 * NODE_OPTIONS of every child it spawns, does not reach boxsig (it costs a
 * second per start and brings its own signal handlers). `at` 0 only counts.
 */
export function runWithFault(args: string[], env: NodeJS.ProcessEnv, at: number, mode: FaultMode = 'kill', cwd?: string): Promise<FaultRun> {
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-fault-')), 'calls.log');
  return new Promise((resolve) => {
    const child = spawn('env', [`NODE_OPTIONS=--import=${INJECT}`, process.execPath, CLI, ...args], {
      cwd,
      env: { ...env, BOXSIG_FAULT_AT: String(at), BOXSIG_FAULT_MODE: mode, BOXSIG_FAULT_LOG: log },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
      fs.rmSync(path.dirname(log), { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr, calls });
    });
  });
}

/** How many changing file-system calls the command makes, and which. */
export async function countCalls(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<{ count: number; calls: string[]; run: FaultRun }> {
  const run = await runWithFault(args, env, 0, 'kill', cwd);
  return { count: run.calls.length, calls: run.calls, run };
}

/** Run `fn` over `items` with at most `n` at a time. */
export async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** A copy of a directory tree (a prepared Vagrant home and trust store), for one faulted run. */
export function cloneTree(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true });
}

export interface PlainRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: any;
}

/** The CLI without the harness (and without the test runner's loader), e.g. the command after a fault. */
export function runPlain(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<PlainRun> {
  return new Promise((resolve) => {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      let json: any = null;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = null;
      }
      resolve({ code, signal, stdout, stderr, json });
    });
  });
}
