/**
 * Terminal I/O for the CLI: results, errors, warnings, passphrases, progress.
 */
import fs from 'node:fs';
import { BoxsigError, toBoxsigError, EXIT_OK } from '../errors.js';

export interface OutputMode {
  json: boolean;
  quiet?: boolean;
}

export function out(line = ''): void {
  process.stdout.write(line + '\n');
}

export function err(line: string): void {
  process.stderr.write(line + '\n');
}

export function warn(msg: string): void {
  const lines = msg.split('\n');
  err(`boxsig: warning: ${lines[0]}`);
  for (const l of lines.slice(1)) err(`  ${l}`);
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/** Print an error the way the CLI contract says and return the exit status. */
export function reportError(e: unknown, mode: OutputMode): number {
  const be: BoxsigError = toBoxsigError(e);
  if (mode.json) {
    const details = { ...be.details };
    delete details.stack;
    printJson({ ok: false, code: be.code, message: be.message, ...(be.hint ? { hint: be.hint } : {}), ...(Object.keys(details).length ? { details } : {}) });
  }
  const verdict = be.refused ? `REFUSED (${be.code})` : `error (${be.code})`;
  const [first, ...rest] = be.message.split('\n');
  err(`boxsig: ${verdict}: ${first}`);
  for (const l of rest) err(l.startsWith('  ') ? l : `  ${l}`);
  if (be.hint && !be.message.includes(be.hint)) err(`  hint: ${be.hint}`);
  if (be.code === 'INTERNAL' && process.env.BOXSIG_DEBUG && be.details.stack) err(String(be.details.stack));
  return be.exitCode;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/**
 * A passphrase from --passphrase-file, BOXSIG_PASSPHRASE, or a prompt on a
 * terminal (never from a plain flag). Returns undefined when none is available.
 */
export function passphraseSource(file: string | undefined, what: string): () => Promise<string | undefined> {
  let cached: string | undefined | null = null;
  return async () => {
    if (cached !== null) return cached;
    if (file) {
      cached = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } else if (process.env.BOXSIG_PASSPHRASE !== undefined) {
      cached = process.env.BOXSIG_PASSPHRASE;
    } else if (process.stdin.isTTY && process.stderr.isTTY) {
      cached = await promptHidden(`Passphrase for ${what}: `);
    } else {
      cached = undefined;
    }
    return cached;
  };
}

export function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let value = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode?.(true);
    stdin.resume();
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          cleanup();
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          cleanup();
          process.stderr.write('\n');
          reject(new BoxsigError('USAGE', 'interrupted'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const cleanup = () => {
      stdin.off('data', onData);
      stdin.setRawMode?.(wasRaw);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

/**
 * Progress for long passes: a bar with bytes, rate and ETA on a terminal;
 * a line every few seconds otherwise; nothing in --json or --quiet mode.
 */
export class Progress {
  private start = Date.now();
  private last = 0;
  private lastLine = Date.now();
  private readonly tty: boolean;
  private shown = false;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly enabled: boolean,
  ) {
    this.tty = Boolean(process.stderr.isTTY);
  }

  update = (bytes: number): void => {
    if (!this.enabled) return;
    const now = Date.now();
    if (this.tty) {
      if (now - this.last < 100) return;
      this.last = now;
      const secs = (now - this.start) / 1000;
      const rate = secs > 0 ? bytes / secs : 0;
      let line: string;
      if (this.total) {
        const frac = Math.min(1, bytes / this.total);
        const width = 24;
        const fill = Math.round(frac * width);
        const eta = rate > 0 ? Math.max(0, (this.total - bytes) / rate) : 0;
        line = `${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${humanBytes(bytes)}/${humanBytes(this.total)} ${humanBytes(rate)}/s ETA ${formatSecs(eta)}`;
      } else {
        line = `${this.label} ${humanBytes(bytes)} ${humanBytes(rate)}/s`;
      }
      process.stderr.write(`\r${line.padEnd(100)}`);
      this.shown = true;
    } else {
      if (now - this.lastLine < 5000) return;
      this.lastLine = now;
      const pct = this.total ? ` (${((bytes / this.total) * 100).toFixed(0)}%)` : '';
      err(`${this.label}: ${humanBytes(bytes)}${pct}`);
    }
  };

  done(): void {
    if (this.enabled && this.tty && this.shown) process.stderr.write(`\r${' '.repeat(100)}\r`);
  }
}

function formatSecs(s: number): string {
  const m = Math.floor(s / 60);
  const r = Math.round(s % 60);
  return m ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

export { EXIT_OK };
