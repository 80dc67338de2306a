import { Command, Option } from 'commander';
import { EXIT_OK, usage } from '../errors.js';
import { claimProblem } from '../manifest/manifest.js';
import { reportError, type OutputMode } from './io.js';
import { KEY_FILE_LIMIT } from '../shared/files.js';
import { scrubUrl } from '../shared/urls.js';

/** Wrap a command action: JSON/human error reporting and exit status. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const opts = cmd.opts() as { json?: boolean };
    const mode: OutputMode = { json: Boolean(opts.json) };
    try {
      const code = await fn(...args);
      process.exitCode = code ?? EXIT_OK;
    } catch (e) {
      process.exitCode = reportError(e, mode);
    }
  };
}

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** --claim key=value arguments, each one claim (checked by claimProblem before any key is loaded). */
export function parseClaims(list: string[] = []): Record<string, string> | undefined {
  if (!list.length) return undefined;
  const out: Record<string, string> = Object.create(null);
  for (const c of list) {
    const i = c.indexOf('=');
    if (i <= 0) throw usage(`--claim ${JSON.stringify(c)} must look like key=value`);
    const k = c.slice(0, i);
    const problem = claimProblem(k, c.slice(i + 1));
    if (problem) throw usage(`--claim: ${problem}`);
    if (Object.hasOwn(out, k)) throw usage(`--claim ${k} is given twice`);
    out[k] = c.slice(i + 1);
  }
  return out;
}

export function jsonOption(): Option {
  return new Option('--json', 'print one JSON object on stdout: {"ok": true, …} or {"ok": false, "code": …, "message": …}');
}

export function passphraseFileOption(what = 'protected secret keys'): Option {
  return new Option('--passphrase-file <file>', `passphrase of ${what} (else BOXSIG_PASSPHRASE, else a prompt on a terminal)`);
}

/** One or two examples, shown at the end of the command's --help. */
export function examples(cmd: Command, ...lines: string[]): Command {
  cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
  (cmd as Command & { examples?: string[] }).examples = lines;
  return cmd;
}

/** A key source named on the command line: a file, "-" for stdin, or an http(s) URL (at most 16 MiB). */
export async function readKeySource(src: string): Promise<Buffer> {
  if (/^https?:\/\//i.test(src)) {
    const { httpRequest, readLimited } = await import('../vagrant/http.js');
    const r = await httpRequest(src, {});
    return readLimited(r.body, KEY_FILE_LIMIT, scrubUrl(src));
  }
  const { readKeyFile } = await import('../keys/files.js');
  return readKeyFile(src === '-' ? 0 : src, src);
}

export function parseSeconds(v: string): number {
  const n = Number(v);
  if (!/^\s*[0-9.]+\s*$/.test(v) || !Number.isFinite(n) || n <= 0) throw usage(`--timeout ${JSON.stringify(v)} must be a positive number of seconds`);
  return n;
}
