/**
 * Terminal I/O for the CLI: results, errors, warnings, passphrases, progress.
 */
import type { PassphraseOptions } from '../keys/passphrase.js';
import { BoxsigError, toBoxsigError } from '../errors.js';
import { escapeJsonText, escapeLine } from '../shared/terminal.js';
import { scrubText } from '../shared/urls.js';

export interface OutputMode {
  json: boolean;
  quiet?: boolean;
}

/*
 * Every line boxsig prints for a person passes through `display`: URLs lose
 * their credentials and secret query values (src/shared/urls.ts), and control
 * and invisible formatting characters from boxes, keys, catalogs and servers
 * are escaped (src/shared/terminal.ts), so no text can rewrite the terminal.
 * A message of several lines is split first; its continuation lines are
 * indented. JSON output is scrubbed the same way and escapes what
 * JSON.stringify leaves raw.
 */
function display(line: string): string {
  return escapeLine(scrubText(line));
}

export function out(line = ''): void {
  clearProgressLine();
  process.stdout.write(display(line) + '\n');
}

export function err(line: string): void {
  clearProgressLine();
  process.stderr.write(display(line) + '\n');
}

export function warn(msg: string): void {
  const lines = msg.split('\n');
  err(`boxsig: warning: ${lines[0]}`);
  for (const l of lines.slice(1)) err(`  ${l}`);
}

/** Whether a JSON result was printed: with --json, a command prints exactly one object. */
let jsonPrinted = false;

export function printJson(v: unknown): void {
  jsonPrinted = true;
  const text = JSON.stringify(v, (_k, val: unknown) => (typeof val === 'string' ? scrubText(val) : val), 2);
  process.stdout.write(escapeJsonText(text) + '\n');
}

/** The exit status of the error already reported, if any: a failure is reported once. */
let reported: number | null = null;

/** Print an error the way the CLI contract says and return the exit status. */
export function reportError(e: unknown, mode: OutputMode): number {
  if (reported !== null) return reported;
  const be: BoxsigError = toBoxsigError(e);
  if (mode.json && !jsonPrinted) {
    const details = { ...be.details };
    delete details.stack;
    printJson({ ok: false, code: be.code, message: be.message, ...(be.hint ? { hint: be.hint } : {}), ...(Object.keys(details).length ? { details } : {}) });
  }
  const verdict = be.refused ? `REFUSED (${be.code})` : `error (${be.code})`;
  const [first, ...rest] = be.message.split('\n');
  err(`boxsig: ${verdict}: ${first}`);
  for (const l of rest) err(l.startsWith('  ') ? l : `  ${l}`);
  if (be.hint && !be.message.includes(be.hint)) err(`  hint: ${be.hint}`);
  if (be.code === 'INTERNAL' && process.env.BOXSIG_DEBUG && be.details.stack) {
    for (const l of String(be.details.stack).split('\n')) err(l);
  }
  reported = be.exitCode;
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
 * The passphrase sources of a command (src/keys/passphrase.ts): --passphrase-file,
 * BOXSIG_PASSPHRASE, or a hidden prompt when stdin and stderr are a terminal.
 */
export function passphraseOptions(file: string | undefined): PassphraseOptions {
  const tty = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  return { ...(file !== undefined ? { file } : {}), ...(tty ? { prompt: promptHidden } : {}) };
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

/** What a progress line shows. */
export interface ProgressState {
  label: string;
  bytes: number;
  total?: number;
  /** Seconds since the start. */
  elapsed: number;
}

/**
 * One progress line of at most WIDTH characters: the richest of these that
 * fits — label, bar, percent, bytes, rate, ETA — dropping the bar, then the
 * label, then the rate, then the rest.
 */
export function formatProgress(p: ProgressState, width: number): string {
  const rate = p.elapsed > 0 ? p.bytes / p.elapsed : 0;
  const known = p.total !== undefined && p.total > 0;
  const frac = known ? Math.min(1, p.bytes / p.total!) : 0;
  const pct = known ? `${Math.floor(frac * 100)}%`.padStart(4) : '';
  const amount = known ? `${humanBytes(p.bytes)}/${humanBytes(p.total!)}` : humanBytes(p.bytes);
  const speed = rate > 0 ? `${humanBytes(rate)}/s` : '';
  const eta = known && rate > 0 ? `ETA ${formatSecs(Math.max(0, (p.total! - p.bytes) / rate))}` : '';
  const join = (...parts: string[]) => parts.filter(Boolean).join(' ');
  const withBar = (rest: string) => {
    const room = Math.min(30, width - p.label.length - rest.length - 4);
    if (!known || room < 8) return null;
    const fill = Math.round(frac * room);
    return `${p.label} [${'#'.repeat(fill)}${'.'.repeat(room - fill)}] ${rest}`;
  };
  const candidates = [
    withBar(join(pct, amount, speed, eta)),
    join(p.label, pct, amount, speed, eta),
    join(pct, amount, speed, eta),
    join(pct, amount, eta),
    join(pct, amount),
    join(pct),
    known ? '' : humanBytes(p.bytes),
  ];
  for (const c of candidates) if (c !== null && c.length <= width) return c;
  return (candidates.find((c) => c) ?? '').slice(0, Math.max(0, width));
}

/** The line printed when a pass finished: what it did, how much, how fast. */
export function formatDone(p: ProgressState, width: number): string {
  const rate = p.elapsed > 0 ? ` (${humanBytes(p.bytes / p.elapsed)}/s)` : '';
  const full = `${p.label}: ${humanBytes(p.bytes)} in ${formatSecs(p.elapsed)}${rate}`;
  return full.length <= width ? full : `${humanBytes(p.bytes)} in ${formatSecs(p.elapsed)}`.slice(0, Math.max(0, width));
}

/** The progress line on the terminal, if one is showing: other output erases it first. */
let active: Progress | null = null;

function clearProgressLine(): void {
  active?.clear();
}

/**
 * Progress of a long pass on stderr, only when stderr is a terminal (nothing
 * on a pipe, nothing in --json or --quiet mode): one line, as wide as the
 * terminal at most, redrawn in place (carriage return, erase line) every
 * 100 ms, and a final line when the pass is done.
 */
export class Progress {
  private readonly start = Date.now();
  private last = 0;
  private bytes = 0;
  private shown = false;
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    enabled: boolean,
  ) {
    this.enabled = enabled && Boolean(process.stderr.isTTY) && process.env.TERM !== 'dumb';
  }

  private width(): number {
    // one column short of the edge: a line that fills the last column makes some terminals wrap
    return Math.max(1, (process.stderr.columns || 80) - 1);
  }

  private state(): ProgressState {
    return { label: this.label, bytes: this.bytes, total: this.total, elapsed: (Date.now() - this.start) / 1000 };
  }

  update = (bytes: number): void => {
    this.bytes = bytes;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    process.stderr.write(`\r${formatProgress(this.state(), this.width())}\x1b[K`);
    this.shown = true;
    active = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the one progress line on screen, cleared before other output
  };

  /** Erase the line (after a failure, or before other output). */
  clear(): void {
    if (!this.shown) return;
    process.stderr.write('\r\x1b[K');
    this.shown = false;
    if (active === this) active = null;
  }

  /** The pass finished: replace the line by a final one. */
  done(): void {
    if (!this.shown) return;
    this.clear();
    process.stderr.write(`${formatDone(this.state(), this.width())}\n`);
  }
}

function formatSecs(s: number): string {
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const r = total % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  return m ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}
