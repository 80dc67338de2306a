/**
 * `boxsig repackage`: pack an installed box again (src/vagrant/repackage.ts does the work).
 */
import type { Command } from 'commander';
import { parseDuration } from '../manifest/duration.js';
import { action, collect, examples, jsonOption, parseClaims, passphraseFileOption } from './common.js';
import { out, passphraseOptions, printJson, warn } from './io.js';

interface RepackageFlags {
  output: string;
  key?: string[];
  gpgKey?: string[];
  passphraseFile?: string;
  claim?: string[];
  expires?: string;
  signVersion?: string;
  acceptChanges?: boolean;
  architecture?: string;
  vagrantHome?: string;
  json?: boolean;
}

export function registerRepackage(program: Command): void {
  const cmd = program
    .command('repackage')
    .description('pack an installed box again (without .boxsig/, like vagrant box repackage), optionally signed')
    .argument('<name>', 'the installed box name')
    .argument('<provider>', 'its provider')
    .argument('<version>', 'its installed version')
    .option('-o, --output <file>', 'the box to write', 'package.box')
    .option('--key <secret.asc>', 'sign the repackaged box (repeatable)', collect)
    .option('--gpg-key <key>', 'sign through GnuPG: a fingerprint, long key ID or user ID (repeatable)', collect)
    .addOption(passphraseFileOption())
    .option('--claim <key=value>', 'signed claim (repeatable)', collect)
    .option('--expires <duration>', 'the signed manifest expires after this (90d, 6mo, 1y, or a date)')
    .option('--sign-version <version>', 'version to sign (default: the installed one; for version 0, the one its old manifest states)')
    .option('--accept-changes', 'repackage a box whose files changed since it was installed (the changes are listed)')
    .option('--architecture <arch>', "the box in this architecture directory (Vagrant 2.4's layout; default: the host's, else the legacy layout)")
    .option('--vagrant-home <dir>', 'the Vagrant home (default: $VAGRANT_HOME or ~/.vagrant.d)')
    .addOption(jsonOption());
  examples(cmd, 'boxsig repackage acme/ubuntu-24.04 virtualbox 1.2.3 -o ubuntu.box --key acme.secret.asc');
  cmd.action(
    action(async (name: string, provider: string, version: string, opts: RepackageFlags) => {
      const { repackageBox } = await import('../vagrant/repackage.js');
      const claims = parseClaims(opts.claim);
      if (opts.expires !== undefined) parseDuration(opts.expires);
      const { loadSigners } = await import('../box/signers.js');
      const signing = opts.key?.length || opts.gpgKey?.length;
      const signers = signing ? await loadSigners({ keys: opts.key, gpgKeys: opts.gpgKey, passphrase: passphraseOptions(opts.passphraseFile) }) : [];
      const r = await repackageBox(name, provider, version, {
        vagrantHome: opts.vagrantHome,
        architecture: opts.architecture,
        output: opts.output,
        signVersion: opts.signVersion,
        acceptChanges: opts.acceptChanges,
        ...(signers.length ? { sign: { signers, claims, expires: opts.expires } } : {}),
      });
      if (opts.json) {
        const { output, box, files, checked, changes } = r;
        return printJson({ ok: true, output, box, files, signed: Boolean(r.signed), signers: r.signed?.signers ?? [], checked, changes });
      }
      for (const c of r.changes) warn(`accepted a change since install: ${c.detail}`);
      const label = `${name} ${version} (${provider}${r.box.architecture ? `, ${r.box.architecture}` : ''})`;
      if (r.checked === 'none') warn(`${label} carries no manifest: its files could not be checked for changes since install`);
      out(`boxsig: repackaged ${label} -> ${r.output}${r.signed ? `, signed by ${r.signed.signers.join(', ')}` : ' (unsigned)'}`);
    }),
  );
}
