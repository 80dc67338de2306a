/**
 * `boxsig sign` and `boxsig strip`.
 */
import type { Command } from 'commander';
import { usage } from '../errors.js';
import { parseDuration } from '../manifest/duration.js';
import { architectureProblem } from '../manifest/names.js';
import { boxFileSize } from '../box/open.js';
import type { SignResult } from '../box/sign.js';
import { action, collect, examples, jsonOption, parseClaims, passphraseFileOption } from './common.js';
import { out, passphraseOptions, printJson, Progress, warn } from './io.js';

interface SignFlags {
  key?: string[];
  gpgKey?: string[];
  passphraseFile?: string;
  cert?: string[];
  name?: string;
  version?: string;
  provider?: string;
  architecture?: string;
  expires?: string;
  claim?: string[];
  fresh?: boolean;
  output?: string;
  json?: boolean;
}

export function registerSignCommands(program: Command): void {
  registerSign(program);
  registerStrip(program);
}

function registerSign(program: Command): void {
  const cmd = program
    .command('sign')
    .description('sign a box: hash every file in one pass and prepend .boxsig/ (no recompression)')
    .argument('<box>', 'the .box file')
    .option('--key <secret.asc>', 'secret key file (repeatable: co-signers)', collect)
    .option('--gpg-key <key>', 'sign through the local GnuPG with this key: a fingerprint, long key ID or user ID (repeatable)', collect)
    .addOption(passphraseFileOption())
    .option(
      '--cert <file>',
      'a copy of a signing key carrying certifications, or the certifying (organisation) public key, to embed (repeatable; the keyring copies are used too)',
      collect,
    )
    .option('--name <name>', 'box name, e.g. acme/ubuntu-24.04')
    .option('--version <version>', 'box version, e.g. 1.2.3')
    .option('--provider <provider>', 'provider (default: from metadata.json)')
    .option('--architecture <arch>', 'architecture, e.g. amd64 or arm64 (default: from metadata.json, which must agree)')
    .option('--expires <duration>', 'the signed manifest expires after this: a number and a unit (90d, 6mo, 1y; s, min, h, d, w, mo, y) or a date')
    .option('--claim <key=value>', 'signed claim (repeatable)', collect)
    .option('--fresh', 'write a new manifest even if only signers change (drops existing signatures)')
    .option('-o, --output <file>', 'write the signed box here (default: replace BOX, atomically)')
    .addOption(jsonOption());
  examples(
    cmd,
    'boxsig sign ubuntu.box --key acme.secret.asc --name acme/ubuntu-24.04 --version 1.2.3 --expires 180d --claim builder=ci-prod',
    'boxsig sign ubuntu.box --gpg-key builds@acme.example    # co-sign a signed box',
  );
  cmd.action(action(runSign));
}

async function runSign(box: string, opts: SignFlags): Promise<void> {
  // cheap checks first: a bad box file, claim or duration is refused before any key is unlocked
  const size = boxFileSize(box);
  const claims = parseClaims(opts.claim);
  if (opts.expires !== undefined) parseDuration(opts.expires);
  const archProblem = opts.architecture !== undefined ? architectureProblem(opts.architecture) : null;
  if (archProblem) throw usage(`--architecture ${JSON.stringify(opts.architecture)} ${archProblem}`);
  const { loadSigners } = await import('../box/signers.js');
  const { signBox } = await import('../box/sign.js');
  const signers = await loadSigners({ keys: opts.key, gpgKeys: opts.gpgKey, certs: opts.cert, passphrase: passphraseOptions(opts.passphraseFile) });
  const progress = new Progress('signing', size, !opts.json);
  const { name, version, provider, architecture, expires, output, fresh } = opts;
  const r = await signBox(box, { signers, name, version, provider, architecture, expires, claims, output, fresh, onProgress: progress.update });
  progress.done();
  if (opts.json) printJson(signJson(r));
  else printSigned(r);
}

function signJson(r: SignResult): Record<string, unknown> {
  const { output, box, files, signers, kept, dropped, compressed, warnings } = r;
  return {
    ok: true,
    output,
    box,
    created: r.manifest.created,
    expires: r.manifest.expires ?? null,
    claims: r.manifest.claims,
    files,
    signers,
    kept,
    dropped,
    compressed,
    warnings,
  };
}

function printSigned(r: SignResult): void {
  out(`boxsig: signed ${r.box.name} ${r.box.version} (${r.box.provider}${r.box.architecture ? `, ${r.box.architecture}` : ''}) -> ${r.output}`);
  out(`  expires  ${r.manifest.expires ?? 'never (no --expires)'}`);
  out(`  files    ${r.files.map((f) => f.path).join(', ')}`);
  out(`  signers  ${r.signers.join(', ')}${r.kept.length ? ` (kept: ${r.kept.join(', ')})` : ''}`);
  for (const d of r.dropped) warn(`dropped the signature of ${d.fingerprint}: ${d.reason}`);
  for (const w of r.warnings) warn(w);
}

function registerStrip(program: Command): void {
  const cmd = program
    .command('strip')
    .description('remove .boxsig/ from a box (no recompression)')
    .argument('<box>', 'the .box file')
    .option('-o, --output <file>', 'write the stripped box here (default: replace BOX, atomically, as sign does)')
    .addOption(jsonOption());
  examples(cmd, 'boxsig strip ubuntu.box', 'boxsig strip ubuntu.box -o ubuntu-unsigned.box');
  cmd.action(
    action(async (box: string, opts: { output?: string; json?: boolean }) => {
      const { stripBox } = await import('../box/strip.js');
      const r = await stripBox(box, opts.output);
      if (opts.json) printJson({ ok: true, ...r });
      else if (r.hadSignature) out(`boxsig: removed .boxsig/ (${r.removed} bytes) -> ${r.output}`);
      else out(opts.output ? `boxsig: ${box} was not signed; copied to ${r.output}` : `boxsig: ${box} was not signed; left as it is`);
    }),
  );
}
