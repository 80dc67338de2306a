/**
 * Where a passphrase comes from — one place for every command and for the
 * library: a file, the BOXSIG_PASSPHRASE variable, or a prompt (the CLI's
 * hidden prompt on a terminal). Never from a plain flag.
 *
 * A source is asked once and remembers the answer (a box signed by two keys
 * with the same passphrase asks once per key file at most). Only a prompt can
 * be asked again after a wrong passphrase: up to MAX_TRIES, as gpg does.
 */
import fs from 'node:fs';
import { usage } from '../errors.js';

export const MAX_TRIES = 3;

/** Returns the passphrase, or undefined when none is available. */
export interface Passphrase {
  (): Promise<string | undefined>;
  /** The last answer was wrong: true if asking again may help (an interactive prompt, tries left). */
  retry?(): boolean;
}

export interface PassphraseOptions {
  /** --passphrase-file: the first line of this file. */
  file?: string;
  /** Where BOXSIG_PASSPHRASE is read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Ask a person; undefined when nobody can be asked (no terminal). */
  prompt?: (question: string) => Promise<string>;
}

/** The passphrase in FILE: its first line, without the line end. */
export function readPassphraseFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw usage(`cannot read the passphrase file ${file}: ${(e as Error).message}`);
  }
}

/** The passphrase for WHAT (a key file, a key): from the file, else the variable, else the prompt. */
export function passphraseFrom(opts: PassphraseOptions, what: string): Passphrase {
  const env = opts.env ?? process.env;
  if (opts.file !== undefined) {
    const file = opts.file;
    return once(async () => readPassphraseFile(file));
  }
  if (env.BOXSIG_PASSPHRASE !== undefined) {
    const value = env.BOXSIG_PASSPHRASE;
    return once(async () => value);
  }
  if (!opts.prompt) return once(async () => undefined);
  return prompted(opts.prompt, what);
}

function once(get: () => Promise<string | undefined>): Passphrase {
  let cached: Promise<string | undefined> | null = null;
  return () => (cached ??= get());
}

function prompted(prompt: (q: string) => Promise<string>, what: string): Passphrase {
  let tries = 0;
  let cached: Promise<string> | null = null;
  const source: Passphrase = () => {
    if (!cached) {
      tries++;
      cached = prompt(tries === 1 ? `Passphrase for ${what}: ` : `Wrong passphrase. Passphrase for ${what} (try ${tries} of ${MAX_TRIES}): `);
    }
    return cached;
  };
  source.retry = () => {
    if (tries >= MAX_TRIES) return false;
    cached = null;
    return true;
  };
  return source;
}

/** A fixed passphrase (the library's callers that hold one already). */
export function passphraseOf(value: string | undefined): Passphrase {
  return once(async () => value);
}
