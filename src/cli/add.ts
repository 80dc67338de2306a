/**
 * `boxsig add`: a verified `vagrant box add` (src/vagrant/add.ts does the work).
 */
import type { Command } from 'commander';
import type { AddResult } from '../vagrant/add.js';
import { action, collect, examples, jsonOption, parseSeconds } from './common.js';
import { err, out, printJson, Progress, warn } from './io.js';

interface AddFlags {
  name?: string;
  boxVersion?: string;
  provider?: string;
  architecture?: string;
  layout?: string;
  checksum?: string;
  checksumType?: string;
  pin?: string[];
  config?: string;
  vagrantHome?: string;
  force?: boolean;
  allowDowngrade?: boolean;
  insecure?: boolean;
  cacert?: string;
  capath?: string;
  cert?: string;
  timeout?: number;
  policyJson?: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerAddCommand(program: Command): void {
  const cmd = program
    .command('add')
    .description('a verified `vagrant box add`: download, checksum, extract and verify in one pass')
    .argument('<source>', 'a .box file, an http(s):// or file:// URL, a catalog (metadata JSON) file or URL, or org/name')
    .option('--name <name>', 'box name (required for an unsigned box)')
    .option('--box-version <version>', 'version or constraints, e.g. ">= 1.2, < 2"')
    .option('--provider <provider>', 'provider to choose from a catalog')
    .option('--architecture <arch>', "architecture to choose from a catalog and install for (default: the host's, as Vagrant 2.4)")
    .option(
      '--layout <layout>',
      "2.3 (boxes/NAME/VERSION/PROVIDER), 2.4 (.../VERSION/ARCH/PROVIDER) or auto: the installed vagrant's (default; also BOXSIG_VAGRANT_LAYOUT)",
    )
    .option('--checksum <hex>', 'expected checksum of the downloaded file')
    .option('--checksum-type <type>', 'md5, sha1, sha256, sha384 or sha512 (default sha256)')
    .option('--pin <fpr>', 'only signatures by this key count (repeatable)', collect)
    .option('--config <file>', 'project policy file (default: boxsig.json here or in a parent)')
    .option('--vagrant-home <dir>', 'Vagrant home (default: $VAGRANT_HOME or ~/.vagrant.d)')
    .option('--force', 'replace an installed box of the same name, version and provider (after the new one verified)')
    .option('--allow-downgrade', 'accept a version lower than one accepted before')
    .option('--insecure', 'do not check TLS certificates')
    .option('--cacert <file>', 'extra CA certificate (PEM) for HTTPS')
    .option('--capath <dir>', 'directory of extra CA certificates (PEM) for HTTPS')
    .option('--cert <file>', 'TLS client certificate: PEM with the certificate and its key')
    .option('--timeout <seconds>', 'network timeout in seconds', parseSeconds)
    .option('--policy-json <json>', 'an extra policy layer, shaped like boxsig.json (the Vagrant plugin passes config.boxsig here)')
    .addOption(jsonOption())
    .option('-q, --quiet', 'no progress output');
  examples(cmd, 'boxsig add https://boxes.acme.example/acme/ubuntu-24.04.json', 'boxsig add ubuntu.box --name acme/ubuntu-24.04 --checksum 3f2c…e0');
  cmd.action(action(runAdd));
}

async function runAdd(source: string, opts: AddFlags): Promise<void> {
  const { parseFingerprintArg } = await import('../keys/keys.js');
  const pins = (opts.pin ?? []).map((p) => parseFingerprintArg(p, '--pin'));
  const { TrustStore } = await import('../trust/store.js');
  const { loadLayers } = await import('../policy/load.js');
  const { addBox } = await import('../vagrant/add.js');
  const { parseHostHeaders } = await import('../vagrant/http.js');
  const store = new TrustStore();
  const extraJson = opts.policyJson !== undefined ? { extraJson: { source: 'Vagrantfile (config.boxsig)', json: opts.policyJson } } : {};
  const layers = await loadLayers({ store, configFile: opts.config, ...extraJson });
  const headersEnv = process.env.BOXSIG_HTTP_HEADERS;
  let progress: Progress | null = null;
  const chatty = !opts.json && !opts.quiet;
  try {
    const r = await addBox(source, {
      name: opts.name,
      boxVersion: opts.boxVersion,
      provider: opts.provider,
      architecture: opts.architecture,
      layout: opts.layout,
      checksum: opts.checksum,
      checksumType: opts.checksumType,
      pins,
      store,
      layers,
      vagrantHome: opts.vagrantHome,
      force: opts.force,
      allowDowngrade: opts.allowDowngrade,
      insecure: opts.insecure,
      caCert: opts.cacert,
      caPath: opts.capath,
      clientCert: opts.cert,
      hostHeaders: headersEnv ? parseHostHeaders(headersEnv, 'BOXSIG_HTTP_HEADERS') : undefined,
      timeout: opts.timeout,
      onInfo: (l) => chatty && err(`boxsig: ${l}`),
      onStart: (i) => {
        progress = new Progress(i.url.startsWith('file:') ? 'verifying and extracting' : 'downloading and verifying', i.size, chatty);
      },
      onProgress: (b) => (progress as Progress | null)?.update(b),
    });
    (progress as Progress | null)?.done();
    if (opts.json) printJson(r);
    else printAdded(r);
  } finally {
    (progress as Progress | null)?.clear();
  }
}

function printAdded(r: AddResult): void {
  out(
    `boxsig: added ${r.box.name} ${r.box.version} (${r.box.provider}) for ${r.architecture} -> ${r.directory}${r.replaced ? ' (replaced the installed box)' : ''}`,
  );
  if (r.signed) {
    for (const s of r.signers.filter((x) => x.trusted)) out(`  signed by ${s.fingerprint} ${s.userIds[0] ?? ''}: ${s.explanation}`);
  }
  out(`  config: ${r.config.join(', ') || '(none)'}`);
  for (const line of r.recorded) {
    if (line.startsWith('first-use')) {
      warn(
        `TRUST ON FIRST USE: ${r.box.name} is now bound to ${line.slice('first-use: '.length)}.\nLater boxes of this name must be signed by this key. Pin it in boxsig.json to make this explicit.`,
      );
    } else warn(`recorded ${line}`);
  }
  for (const w of r.warnings) warn(w);
}
