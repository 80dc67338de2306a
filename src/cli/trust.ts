/**
 * `boxsig trust …`: list, pin, forget, accept (src/trust/manage.ts does the work).
 */
import type { Command } from 'commander';
import type { TrustStore } from '../trust/store.js';
import type { AcceptResult } from '../trust/manage.js';
import type { InstalledBox } from '../vagrant/home.js';
import { action, examples, jsonOption } from './common.js';
import { out, printJson, warn } from './io.js';

/** The library modules of these commands, loaded when one runs (boxsig --help and --version stay light). */
async function lib() {
  const [{ TrustStore }, manage, { parseFingerprintArg }] = await Promise.all([
    import('../trust/store.js'),
    import('../trust/manage.js'),
    import('../keys/keys.js'),
  ]);
  return { store: (): TrustStore => new TrustStore(), parseFingerprintArg, ...manage };
}

export function registerTrustCommands(program: Command): void {
  const trust = program.command('trust').description('the trust store: pins and trust-on-first-use records');
  registerList(trust);
  registerPin(trust);
  registerForget(trust);
  registerAccept(trust);
}

function registerList(trust: Command): void {
  const cmd = trust.command('list').description('show pins and the keys recorded for each box name').addOption(jsonOption());
  examples(cmd, 'boxsig trust list', 'boxsig trust list --json');
  cmd.action(
    action(async (opts: { json?: boolean }) => {
      const { listTrust, store } = await lib();
      const l = listTrust(store());
      if (opts.json) return printJson({ ok: true, store: l.store, pins: Object.fromEntries(l.pins), boxes: Object.fromEntries(l.boxes) });
      out(`trust store: ${l.store}`);
      out(l.pins.length ? 'pins:' : 'pins: (none)');
      for (const [g, f] of l.pins) out(`  ${g}  ${f.join(', ')}`);
      out(l.boxes.length ? 'boxes:' : 'boxes: (none)');
      for (const [n, r] of l.boxes) {
        out(`  ${n}  highest ${r.highestVersion ?? '-'}  first seen ${r.firstSeen.slice(0, 10)}${r.source ? `  from ${r.source}` : ''}`);
        for (const k of r.keys) out(`    key ${k}`);
        for (const k of r.retired ?? []) out(`    ${k.distrusted ? 'distrusted' : 'replaced'} ${k.key} (${k.since.slice(0, 10)})`);
        if (!r.keys.length) out('    (no trusted key: the next box needs boxsig trust accept or a pin)');
      }
    }),
  );
}

function registerPin(trust: Command): void {
  const cmd = trust
    .command('pin')
    .description('pin a box name (or glob) to a key fingerprint: only that key counts for it')
    .argument('<name>', 'box name or glob, e.g. acme/*')
    .argument('<fpr>', 'the primary key fingerprint (40 hex digits; spaces allowed)')
    .addOption(jsonOption());
  examples(cmd, 'boxsig trust pin "acme/*" 0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B');
  cmd.action(
    action(async (name: string, fpr: string, opts: { json?: boolean }) => {
      const { pinTrust, parseFingerprintArg, store: open } = await lib();
      const store = open();
      const r = await pinTrust(store, name, parseFingerprintArg(fpr));
      if (opts.json) printJson({ ok: true, ...r });
      else out(`boxsig: ${r.name} is pinned to ${r.pins.join(', ')} (${store.file})`);
    }),
  );
}

function registerForget(trust: Command): void {
  const cmd = trust
    .command('forget')
    .description('forget a box name: its pins, its recorded keys and its highest version')
    .argument('<name>', 'box name or pinned glob')
    .option('--key <fpr>', 'forget only this key (the name keeps its record: it is not trusted on first use again)')
    .addOption(jsonOption());
  examples(cmd, 'boxsig trust forget acme/ubuntu-24.04', 'boxsig trust forget acme/ubuntu-24.04 --key 0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B');
  cmd.action(
    action(async (name: string, opts: { key?: string; json?: boolean }) => {
      const { forgetTrust, parseFingerprintArg, store } = await lib();
      const r = await forgetTrust(store(), name, opts.key ? parseFingerprintArg(opts.key) : undefined);
      if (opts.json) return printJson({ ok: true, ...r });
      out(r.removed ? `boxsig: forgot ${r.key ? `key ${r.key} of ` : ''}${name}` : `boxsig: nothing recorded for ${name}`);
      if (r.next) warn(r.next);
    }),
  );
}

interface AcceptFlags {
  keep?: boolean;
  distrustOld?: boolean;
  vagrantHome?: string;
  json?: boolean;
}

function registerAccept(trust: Command): void {
  const cmd = trust
    .command('accept')
    .description('accept a new key for a box name after a KEY_CHANGED refusal (boxes the replaced keys signed before stay valid)')
    .argument('<name>', 'the box name')
    .argument('<fpr>', 'the new key fingerprint (printed by the KEY_CHANGED refusal)')
    .option('--keep', 'keep the previously recorded keys as well')
    .option('--distrust-old', 'the replaced keys are not to be trusted any more: boxes they signed are refused too')
    .option('--vagrant-home <dir>', 'with --distrust-old: where to look for affected installed boxes')
    .addOption(jsonOption());
  examples(cmd, 'boxsig trust accept acme/ubuntu-24.04 0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B', 'boxsig trust accept acme/ubuntu-24.04 FPR --distrust-old');
  cmd.action(
    action(async (name: string, fpr: string, opts: AcceptFlags) => {
      const { acceptTrust, parseFingerprintArg, store } = await lib();
      const r = await acceptTrust(store(), name, parseFingerprintArg(fpr), opts);
      const { installedSignedBy } = await import('../vagrant/signed-by.js');
      const affected = r.distrusted
        ? installedSignedBy(
            name,
            r.replaced.map((k) => k.key),
            opts.vagrantHome,
          )
        : [];
      if (opts.json) {
        return printJson({
          ok: true,
          ...r,
          affected: affected.map((b) => ({ name: b.name, version: b.version, provider: b.provider, directory: b.directory })),
        });
      }
      printAccepted(name, r, affected);
    }),
  );
}

function printAccepted(name: string, r: AcceptResult, affected: InstalledBox[]): void {
  out(`boxsig: ${name} now trusts ${r.keys.join(', ')}`);
  const old = r.replaced.map((k) => k.key).join(', ');
  if (r.replaced.length && !r.distrusted) out(`  boxes ${old} signed before now stay valid; new boxes must be signed by ${r.keys.join(', ')}`);
  if (!r.distrusted) return;
  const one = r.replaced.length === 1;
  warn(`${old} ${one ? 'is' : 'are'} distrusted for ${name}: boxes signed only by ${one ? 'it' : 'them'} are refused`);
  for (const b of affected) warn(`  installed and affected: ${b.name} ${b.version} (${b.provider}) ${b.directory}`);
  if (affected.length) warn('  check them with boxsig verify --installed, and remove or replace them (vagrant box remove)');
}
