/**
 * A real terminal for tests: a detached tmux session of a given size running
 * one command, whose pane can be captured as a person would see it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

export interface Pane {
  /**
   * The visible text of the pane, trailing blank lines removed. JOINED: the
   * lines the program wrote, with the rows the terminal wrapped them into
   * joined again (line counts then do not depend on the length of a path).
   */
  capture(joined?: boolean): string;
  /** Wait until the command has finished (it writes a marker line); returns the pane then. */
  finished(timeoutMs?: number, joined?: boolean): Promise<string>;
  close(): void;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Run ARGV in a WIDTH x HEIGHT terminal with ENV. A wrapper script sets the
 * environment explicitly (tmux servers have their own) and prints
 * `[exit N]` when the command ends, then keeps the pane open.
 */
export function tmuxRun(dir: string, argv: string[], env: NodeJS.ProcessEnv, width = 80, height = 24): Pane {
  const socket = `bsg-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const script = path.join(dir, `${socket}.sh`);
  const exports = Object.entries(env)
    .filter(([k, v]) => v !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && k !== 'TERM' && !k.startsWith('TMUX'))
    .map(([k, v]) => `export ${k}=${q(v!)}`);
  fs.writeFileSync(script, ['#!/bin/sh', ...exports, `${argv.map(q).join(' ')}`, 'echo "[exit $?]"', 'exec sleep 600', ''].join('\n'), { mode: 0o755 });
  const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  const started = tmux('new-session', '-d', '-x', String(width), '-y', String(height), script);
  if (started.status !== 0) throw new Error(`tmux new-session failed: ${started.stderr}`);
  const capture = (joined = false) => {
    const text = tmux('capture-pane', '-p', ...(joined ? ['-J'] : []), '-t', '0').stdout ?? '';
    // -J keeps trailing spaces: drop them, as without it
    return (joined ? text.replace(/ +$/gm, '') : text).replace(/\n+$/, '');
  };
  return {
    capture,
    async finished(timeoutMs = 120_000, joined = false) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const text = capture(joined);
        if (/\[exit \d+\]/.test(text) || Date.now() > until) return text;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    close() {
      tmux('kill-server');
    },
  };
}
