/**
 * `boxsig verify` (a box, an extracted directory, the installed boxes) and
 * `boxsig inspect`.
 */
import type { Command } from 'commander';
import { BoxsigError, EXIT_REFUSED, usage, type ErrorCode } from '../errors.js';
import { architectureProblem } from '../manifest/names.js';
import { boxFileSize } from '../box/open.js';
import type { InspectResult, VerifyResult } from '../box/verify.js';
import type { InstalledVerdict } from '../vagrant/installed.js';
import type { TrustStore } from '../trust/store.js';
import type { ConfigLayer } from '../policy/config.js';
import { action, collect, examples, jsonOption } from './common.js';
import { err, humanBytes, out, printJson, Progress, warn } from './io.js';

interface VerifyFlags {
  dir?: string;
  installed?: string | boolean;
  name?: string;
  version?: string;
  provider?: string;
  architecture?: string;
  pin?: string[];
  config?: string;
  policyJson?: string;
  record?: boolean;
  source?: string;
  allowDowngrade?: boolean;
  requireTrusted?: boolean;
  vagrantHome?: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerVerifyCommands(program: Command): void {
  registerVerify(program);
  registerInspect(program);
}

function registerVerify(program: Command): void {
  const cmd = program
    .command('verify')
    .description('verify a box, an extracted box directory (--dir) or the installed boxes (--installed)')
    .argument('[box]', 'the .box file (or give --dir or --installed)')
    .option('--dir <dir>', 'verify an extracted box directory instead of an archive')
    .option('--installed [name]', 're-verify the boxes installed in the Vagrant home (all, or those of NAME)')
    .option('--name <name>', 'the box must have this name')
    .option('--version <version>', 'the box must have this version')
    .option('--provider <provider>', 'the box must be for this provider')
    .option('--architecture <arch>', 'the box must not state another architecture')
    .option('--pin <fpr>', 'only signatures by this key count (repeatable)', collect)
    .option('--config <file>', 'project policy file (default: boxsig.json here or in a parent)')
    .option('--policy-json <json>', 'an extra policy layer, shaped like boxsig.json (the Vagrant plugin passes config.boxsig here)')
    .option('--record', 'with --dir: record trust like an add (trust on first use, highest version)')
    .option('--source <url>', 'with --record: where the box came from')
    .option('--allow-downgrade', 'with --record: accept a version lower than one accepted before')
    .option('--require-trusted', 'refuse (UNTRUSTED_KEY) a valid signature by a signer that is neither pinned, certified nor recorded')
    .option('--vagrant-home <dir>', 'with --installed: the Vagrant home (default: $VAGRANT_HOME or ~/.vagrant.d)')
    .addOption(jsonOption())
    .option('-q, --quiet', 'no progress output');
  examples(cmd, 'boxsig verify ubuntu.box --name acme/ubuntu-24.04 --pin 0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B', 'boxsig verify --installed --json');
  cmd.action(action(runVerify));
}

async function runVerify(box: string | undefined, opts: VerifyFlags): Promise<number | void> {
  const modes = [box !== undefined, opts.dir !== undefined, opts.installed !== undefined].filter(Boolean).length;
  if (modes !== 1) throw usage('give exactly one of BOX, --dir DIR or --installed [NAME]');
  if ((opts.record || opts.source || opts.allowDowngrade) && !opts.dir) throw usage('--record, --source and --allow-downgrade go with --dir');
  const { parseFingerprintArg } = await import('../keys/keys.js');
  const pins = (opts.pin ?? []).map((p) => parseFingerprintArg(p, '--pin'));
  const archProblem = opts.architecture !== undefined ? architectureProblem(opts.architecture) : null;
  if (archProblem) throw usage(`--architecture ${JSON.stringify(opts.architecture)} ${archProblem}`);
  const size = box !== undefined ? boxFileSize(box) : 0; // the same answer as every command for a missing file, before any config is read
  const { TrustStore } = await import('../trust/store.js');
  const { loadLayers } = await import('../policy/load.js');
  const { verifyBox, verifyDir } = await import('../box/verify.js');
  const store = new TrustStore();
  const extraJson = opts.policyJson !== undefined ? { extraJson: { source: 'Vagrantfile (config.boxsig)', json: opts.policyJson } } : {};
  const layers = await loadLayers({ store, configFile: opts.config, ...extraJson });
  const expect = { name: opts.name, version: opts.version, provider: opts.provider, architecture: opts.architecture };
  if (opts.installed !== undefined) return verifyInstalledBoxes(opts, pins, store, layers);
  if (opts.dir !== undefined) {
    const r = await verifyDir(opts.dir, {
      expect,
      pins,
      store,
      layers,
      record: opts.record,
      source: opts.source,
      allowDowngrade: opts.allowDowngrade,
      requireTrusted: opts.requireTrusted,
    });
    if (opts.json) return printJson(r);
    printVerify(r, opts.dir);
    for (const line of r.recorded) err(`boxsig: recorded ${line}`);
    return;
  }
  const progress = new Progress('verifying', size, !opts.json && !opts.quiet && size > 64 * 1024 * 1024);
  let r: VerifyResult;
  try {
    r = await verifyBox(box!, { expect, pins, store, layers, onProgress: progress.update, requireTrusted: opts.requireTrusted });
    progress.done();
  } finally {
    progress.clear();
  }
  if (opts.json) printJson(r);
  else printVerify(r, box!);
}

async function verifyInstalledBoxes(opts: VerifyFlags, pins: string[], store: TrustStore, layers: ConfigLayer[]): Promise<number> {
  const { verifyInstalled } = await import('../vagrant/installed.js');
  const name = typeof opts.installed === 'string' ? opts.installed : undefined;
  const r = await verifyInstalled({ home: opts.vagrantHome, name, pins, store, layers });
  const refused = r.boxes.filter((b) => !b.ok);
  if (opts.json) {
    // one object; on a refusal a top-level code (the first refused box's) as on every failure
    const failure = refused.length ? { code: refused[0].code, message: `${refused.length} of ${r.boxes.length} installed boxes refused` } : {};
    printJson({ ...r, ...failure });
  } else printInstalled(r.boxes);
  // a box that could not be judged (a damaged trust record: CONFIG; an I/O error) exits as that failure does everywhere
  return refused.reduce((exit, b) => Math.max(exit, new BoxsigError(b.code as ErrorCode, '').exitCode), r.ok ? 0 : EXIT_REFUSED);
}

function printInstalled(boxes: InstalledVerdict[]): void {
  if (!boxes.length) out('boxsig: no installed boxes to verify');
  for (const b of boxes) {
    if (b.entry !== undefined) {
      out(`REFUSED  ${b.code}: ${b.message}`);
      continue;
    }
    const label = `${b.name} ${b.version} (${b.provider}${b.architecture ? `, ${b.architecture}` : ''})`;
    out(`${b.ok ? 'OK      ' : 'REFUSED '} ${label}${b.ok ? `: ${b.signed ? b.trust : 'unsigned (allowed by policy)'}` : ` ${b.code}: ${b.message}`}`);
    for (const w of b.warnings ?? []) warn(`${b.name} ${b.version}: ${w}`);
  }
}

function printVerify(r: VerifyResult, label: string): void {
  if (!r.signed) {
    out(`boxsig: ACCEPTED (unsigned) ${label}`);
  } else {
    const b = r.box!;
    out(`boxsig: VERIFIED ${b.name} ${b.version} (${b.provider}${b.architecture ? `, ${b.architecture}` : ''})`);
    out(`  created   ${r.created}${r.expires ? `   expires ${r.expires}` : ''}`);
    const claims = Object.entries(r.claims);
    out(`  claims    ${claims.length ? claims.map(([k, v]) => `${k}=${v}`).join(' ') : '(none)'}`);
  }
  const total = r.files.reduce((n, f) => n + f.size, 0);
  out(`  files     ${r.files.length} (${humanBytes(total)}): ${r.files.map((f) => f.path).join(', ')}`);
  if (r.signers.length) out('  signers');
  for (const s of r.signers) {
    const mark = s.trusted ? 'trusted' : s.via === 'tofu-first-use' ? 'valid, signer unknown' : s.valid ? 'valid, not trusted' : `not counted (${s.code})`;
    out(`    ${s.fingerprint}  ${s.userIds[0] ?? '(no user ID)'}`);
    out(`      ${s.algorithm}, signed ${s.created}: ${mark}${s.explanation ? ` — ${s.explanation}` : ''}${s.reason && !s.valid ? ` — ${s.reason}` : ''}`);
  }
  out(`  config    ${r.config.join(', ') || '(none)'}`);
  for (const w of r.warnings) warn(w);
}

function registerInspect(program: Command): void {
  const cmd = program
    .command('inspect')
    .description('show the manifest and signers of a box, without judging trust')
    .argument('<box>', 'the .box file')
    .addOption(jsonOption());
  examples(cmd, 'boxsig inspect ubuntu.box', 'boxsig inspect ubuntu.box --json');
  cmd.action(
    action(async (box: string, opts: { json?: boolean }) => {
      const { inspectBox } = await import('../box/verify.js');
      const r = await inspectBox(box);
      if (opts.json) printJson({ ok: true, ...r });
      else printInspect(box, r);
    }),
  );
}

function printInspect(box: string, r: InspectResult): void {
  if (!r.manifest) return out(`${box}: not signed (no .boxsig/ entries); ${r.compressed ? 'gzip' : 'plain tar'}`);
  const m = r.manifest;
  out(
    `${box}: ${m.box.name} ${m.box.version} (${m.box.provider}${m.box.architecture ? `, ${m.box.architecture}` : ''}), manifest format ${m.format}, ${r.compressed ? 'gzip' : 'plain tar'}`,
  );
  out(`  created  ${m.created}${m.expires ? `   expires ${m.expires}` : ''}`);
  const claims = Object.entries(m.claims).map(([k, v]) => `${k}=${v}`);
  out(`  claims   ${claims.join(' ') || '(none)'}`);
  if (m.signers) out(`  signers  ${m.signers.join(', ')} (named by the manifest: other signatures are ignored)`);
  out('  files');
  for (const f of m.files) out(`    ${f.sha256}  ${String(f.size).padStart(12)}  ${f.path}`);
  out('  signatures (not judged for trust)');
  for (const s of r.signers) {
    out(`    ${s.fingerprint}  ${s.userIds.join(', ') || '(no user ID)'}`);
    out(`      ${s.algorithm}, signed ${s.created}: ${s.valid ? 'signature valid' : s.problem}`);
  }
  if (!r.signers.length) out('    (none)');
}
