/**
 * Commands over boxes and own keys: key generate, sign, verify, inspect, strip.
 */
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { EXIT_REFUSED, usage } from '../errors.js';
import { loadSecretKey, parseFingerprintArg, readKeyData } from '../keys/keys.js';
import { assertKeyFilesFree, generateKeyFiles } from '../keys/generate.js';
import { signerFromGpg, signerFromKey, withCertifications, type KeyCopy, type ManifestSigner } from '../keys/signer.js';
import { TrustStore } from '../trust/store.js';
import { parseDuration } from '../manifest/duration.js';
import { formatTime } from '../manifest/manifest.js';
import { architectureProblem } from '../manifest/names.js';
import { signBox } from '../box/sign.js';
import { verifyBox, inspectBox, type VerifyResult } from '../box/verify.js';
import { stripBox } from '../box/strip.js';
import { readKeyFile } from '../keys/files.js';
import { action, collect, jsonOption, parseClaims } from './common.js';
import { err, humanBytes, out, passphraseSource, printJson, Progress, warn } from './io.js';

/**
 * The signers of `sign` and `repackage`, each embedding its key with every
 * certification known for it: its key file, the keyring's copy and the
 * `--cert` files.
 */
export async function loadSigners(keys: string[] = [], gpgKeys: string[] = [], passphraseFile?: string, certFiles: string[] = []): Promise<ManifestSigner[]> {
  const signers: ManifestSigner[] = [];
  const copies: KeyCopy[] = [];
  for (const k of keys) {
    const data = readFileArg(k, 'key file');
    const key = await loadSecretKey(data, k, passphraseSource(passphraseFile, k));
    signers.push(signerFromKey(key, k));
    copies.push({ data, what: k });
  }
  for (const g of gpgKeys) {
    const pass = passphraseFile ? fs.readFileSync(passphraseFile, 'utf8').replace(/\r?\n$/, '') : process.env.BOXSIG_PASSPHRASE;
    signers.push(await signerFromGpg(g, pass !== undefined ? { passphrase: pass } : {}));
  }
  const keyring = new TrustStore().keyring;
  for (const s of signers) {
    const stored = await keyring.cert(s.fingerprint);
    if (stored) copies.push({ data: stored, what: `the keyring's copy of ${s.fingerprint}` });
  }
  for (const c of certFiles) copies.push({ data: readFileArg(c, '--cert file'), what: c, explicit: true });
  return withCertifications(signers, copies, (f) => keyring.cert(f));
}

function readFileArg(file: string, what: string): Buffer {
  return readKeyFile(file, `${what} ${file}`);
}

async function readRevokerKey(file: string) {
  const { certs } = await readKeyData(readFileArg(file, '--revoker key'), file);
  if (certs.length !== 1) throw usage(`--revoker ${file} must hold exactly one public key`);
  return certs[0];
}

export function printVerify(r: VerifyResult, label: string): void {
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

export function registerCoreCommands(program: Command): void {
  const key = program.command('key').description('make, import, export, certify and revoke keys');

  key
    .command('generate')
    .description('generate a signing key pair (v4 Ed25519 by default)')
    .requiredOption('--uid <uid>', 'user ID, e.g. "Acme Builds <builds@acme.example>" (repeatable)', collect)
    .option('--out <prefix>', 'write PREFIX.secret.asc and PREFIX.public.asc', 'boxsig-key')
    .option('--passphrase-file <file>', 'protect the secret key with the passphrase in this file')
    .option('--no-passphrase', 'do not ask for a passphrase on a terminal')
    .option('--expires <duration>', 'key expiry: a number and a unit (2y, 18mo, 365d; s, min, h, d, w, mo, y) or a date (2028-01-31)')
    .option('--revoker <public.asc>', "name this key (e.g. the organisation's security officer) as a designated revoker (repeatable)", collect)
    .addOption(new Option('--type <type>', 'key type').choices(['ed25519', 'rsa4096']).default('ed25519'))
    .addOption(jsonOption())
    .action(
      action(
        async (opts: {
          uid: string[];
          out: string;
          passphraseFile?: string;
          passphrase: boolean;
          expires?: string;
          type: 'ed25519' | 'rsa4096';
          revoker?: string[];
          json?: boolean;
        }) => {
          assertKeyFilesFree(opts.out);
          const revokers = await Promise.all((opts.revoker ?? []).map((f) => readRevokerKey(f)));
          const now = new Date();
          const expiresIn = opts.expires !== undefined ? parseDuration(opts.expires, now, '--expires') : undefined;
          let passphrase: string | undefined;
          if (opts.passphraseFile) passphrase = fs.readFileSync(opts.passphraseFile, 'utf8').replace(/\r?\n$/, '');
          else if (process.env.BOXSIG_PASSPHRASE !== undefined) passphrase = process.env.BOXSIG_PASSPHRASE;
          else if (opts.passphrase && process.stdin.isTTY && process.stderr.isTTY) {
            const { promptHidden } = await import('./io.js');
            const a = await promptHidden('Passphrase for the new key (empty for none): ');
            if (a) {
              const b = await promptHidden('Repeat the passphrase: ');
              if (a !== b) throw usage('the passphrases differ');
              passphrase = a;
            }
          }
          const k = await generateKeyFiles(opts.out, {
            userIds: opts.uid,
            type: opts.type,
            passphrase: passphrase || undefined,
            expiresIn,
            revokers,
            date: now,
          });
          const expires = expiresIn !== undefined ? formatTime(new Date(now.getTime() + expiresIn * 1000)) : null;
          if (opts.json) {
            printJson({
              ok: true,
              fingerprint: k.fingerprint,
              secretKey: k.secretKey,
              publicKey: k.publicKey,
              revocationCertificate: k.revocationCertificate,
              protected: k.protected,
              revokers: k.revokers,
              expires,
            });
          } else {
            out(k.fingerprint);
            err(
              `boxsig: wrote ${k.secretKey} (secret, mode 0600${k.protected ? ', passphrase-protected' : ', NOT protected by a passphrase'}), ${k.publicKey} and ${k.revocationCertificate} (keep it offline: it revokes the key)${k.revokers.length ? `; designated revoker: ${k.revokers.join(', ')}` : ''}`,
            );
            err(`boxsig: the key ${expires ? `expires ${expires}` : 'does not expire (no --expires)'}`);
          }
        },
      ),
    );

  program
    .command('sign')
    .description('sign a box: hash every file in one pass and prepend .boxsig/ (no recompression)')
    .argument('<box>', 'the .box file')
    .option('--key <secret.asc>', 'secret key file (repeatable: co-signers)', collect)
    .option('--gpg-key <fpr>', 'sign through the local GnuPG with this key (repeatable)', collect)
    .option('--passphrase-file <file>', 'passphrase for protected keys')
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
    .option('-o, --output <file>', 'write the signed box here (default: replace BOX)')
    .addOption(jsonOption())
    .action(
      action(
        async (
          box: string,
          opts: {
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
          },
        ) => {
          // cheap checks first: a bad claim or duration is refused before any key is unlocked
          const claims = parseClaims(opts.claim);
          if (opts.expires !== undefined) parseDuration(opts.expires);
          const archProblem = opts.architecture !== undefined ? architectureProblem(opts.architecture) : null;
          if (archProblem) throw usage(`--architecture ${JSON.stringify(opts.architecture)} ${archProblem}`);
          const signers = await loadSigners(opts.key, opts.gpgKey, opts.passphraseFile, opts.cert);
          const size = fs.existsSync(box) ? fs.statSync(box).size : undefined;
          const progress = new Progress('signing', size, !opts.json);
          const r = await signBox(box, {
            signers,
            name: opts.name,
            version: opts.version,
            provider: opts.provider,
            architecture: opts.architecture,
            expires: opts.expires,
            claims,
            output: opts.output,
            fresh: opts.fresh,
            onProgress: progress.update,
          });
          progress.done();
          if (opts.json) {
            printJson({
              ok: true,
              output: r.output,
              box: r.box,
              created: r.manifest.created,
              expires: r.manifest.expires ?? null,
              claims: r.manifest.claims,
              files: r.files,
              signers: r.signers,
              kept: r.kept,
              dropped: r.dropped,
              compressed: r.compressed,
              warnings: r.warnings,
            });
          } else {
            out(`boxsig: signed ${r.box.name} ${r.box.version} (${r.box.provider}${r.box.architecture ? `, ${r.box.architecture}` : ''}) -> ${r.output}`);
            out(`  expires  ${r.manifest.expires ?? 'never (no --expires)'}`);
            out(`  files    ${r.files.map((f) => f.path).join(', ')}`);
            out(`  signers  ${r.signers.join(', ')}${r.kept.length ? ` (kept: ${r.kept.join(', ')})` : ''}`);
            for (const d of r.dropped) warn(`dropped the signature of ${d.fingerprint}: ${d.reason}`);
            for (const w of r.warnings) warn(w);
          }
        },
      ),
    );

  program
    .command('verify')
    .description('verify a box, an extracted box directory (--dir) or the installed boxes (--installed)')
    .argument('[box]', 'the .box file')
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
    .option('-q, --quiet', 'no progress output')
    .action(
      action(
        async (
          box: string | undefined,
          opts: {
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
          },
        ) => {
          const modes = [box !== undefined, opts.dir !== undefined, opts.installed !== undefined].filter(Boolean).length;
          if (modes !== 1) throw usage('give exactly one of BOX, --dir DIR or --installed [NAME]');
          if ((opts.record || opts.source || opts.allowDowngrade) && !opts.dir) throw usage('--record, --source and --allow-downgrade go with --dir');
          const pins = (opts.pin ?? []).map((p) => parseFingerprintArg(p, '--pin'));
          const { TrustStore } = await import('../trust/store.js');
          const { loadLayers } = await import('../policy/load.js');
          const store = new TrustStore();
          const layers = await loadLayers({
            store,
            configFile: opts.config,
            ...(opts.policyJson !== undefined ? { extraJson: { source: 'Vagrantfile (config.boxsig)', json: opts.policyJson } } : {}),
          });
          const archProblem = opts.architecture !== undefined ? architectureProblem(opts.architecture) : null;
          if (archProblem) throw usage(`--architecture ${JSON.stringify(opts.architecture)} ${archProblem}`);
          const expect = { name: opts.name, version: opts.version, provider: opts.provider, architecture: opts.architecture };
          if (opts.installed !== undefined) {
            const { verifyInstalled } = await import('../vagrant/installed.js');
            const r = await verifyInstalled({
              home: opts.vagrantHome,
              name: typeof opts.installed === 'string' ? opts.installed : undefined,
              pins,
              store,
              layers,
            });
            if (opts.json) printJson(r);
            else {
              if (!r.boxes.length) out('boxsig: no installed boxes to verify');
              for (const b of r.boxes) {
                if (b.entry !== undefined) {
                  out(`REFUSED  ${b.code}: ${b.message}`);
                  continue;
                }
                out(
                  `${b.ok ? 'OK      ' : 'REFUSED '} ${b.name} ${b.version} (${b.provider}${b.architecture ? `, ${b.architecture}` : ''})${b.ok ? `: ${b.signed ? b.trust : 'unsigned (allowed by policy)'}` : ` ${b.code}: ${b.message}`}`,
                );
                for (const w of b.warnings ?? []) warn(`${b.name} ${b.version}: ${w}`);
              }
            }
            return r.ok ? 0 : EXIT_REFUSED;
          }
          if (opts.dir !== undefined) {
            const { verifyDir } = await import('../box/verify.js');
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
            if (opts.json) printJson(r);
            else {
              printVerify(r, opts.dir);
              for (const line of r.recorded) err(`boxsig: recorded ${line}`);
            }
            return;
          }
          const size = fs.existsSync(box!) ? fs.statSync(box!).size : undefined;
          const progress = new Progress('verifying', size, !opts.json && !opts.quiet && (size ?? 0) > 64 * 1024 * 1024);
          let r: VerifyResult;
          try {
            r = await verifyBox(box!, { expect, pins, store, layers, onProgress: progress.update, requireTrusted: opts.requireTrusted });
            progress.done();
          } finally {
            progress.clear();
          }
          if (opts.json) printJson(r);
          else printVerify(r, box!);
        },
      ),
    );

  program
    .command('inspect')
    .description('show the manifest and signers of a box, without judging trust')
    .argument('<box>')
    .addOption(jsonOption())
    .action(
      action(async (box: string, opts: { json?: boolean }) => {
        const r = await inspectBox(box);
        if (opts.json) {
          printJson({ ok: true, ...r });
          return;
        }
        if (!r.manifest) {
          out(`${box}: not signed (no .boxsig/ entries); ${r.compressed ? 'gzip' : 'plain tar'}`);
          return;
        }
        const m = r.manifest;
        out(
          `${box}: ${m.box.name} ${m.box.version} (${m.box.provider}${m.box.architecture ? `, ${m.box.architecture}` : ''}), manifest format ${m.format}, ${r.compressed ? 'gzip' : 'plain tar'}`,
        );
        out(`  created  ${m.created}${m.expires ? `   expires ${m.expires}` : ''}`);
        out(
          `  claims   ${
            Object.entries(m.claims)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ') || '(none)'
          }`,
        );
        if (m.signers) out(`  signers  ${m.signers.join(', ')} (named by the manifest: other signatures are ignored)`);
        out('  files');
        for (const f of m.files) out(`    ${f.sha256}  ${String(f.size).padStart(12)}  ${f.path}`);
        out('  signatures (not judged for trust)');
        for (const s of r.signers) {
          out(`    ${s.fingerprint}  ${s.userIds.join(', ') || '(no user ID)'}`);
          out(`      ${s.algorithm}, signed ${s.created}: ${s.valid ? 'signature valid' : s.problem}`);
        }
        if (!r.signers.length) out('    (none)');
      }),
    );

  program
    .command('strip')
    .description('remove .boxsig/ from a box (no recompression)')
    .argument('<box>')
    .requiredOption('-o, --output <file>', 'write the stripped box here')
    .addOption(jsonOption())
    .action(
      action(async (box: string, opts: { output: string; json?: boolean }) => {
        const r = await stripBox(box, opts.output);
        if (opts.json) printJson({ ok: true, ...r });
        else out(r.hadSignature ? `boxsig: removed .boxsig/ (${r.removed} bytes) -> ${r.output}` : `boxsig: ${box} was not signed; copied to ${r.output}`);
      }),
    );
}

export { EXIT_REFUSED };

export function registerRepackage(program: Command): void {
  program
    .command('repackage')
    .description('pack an installed box again (without .boxsig/, like vagrant box repackage), optionally signed')
    .argument('<name>')
    .argument('<provider>')
    .argument('<version>')
    .option('-o, --output <file>', 'the box to write', 'package.box')
    .option('--key <secret.asc>', 'sign the repackaged box (repeatable)', collect)
    .option('--gpg-key <fpr>', 'sign through GnuPG (repeatable)', collect)
    .option('--passphrase-file <file>')
    .option('--claim <key=value>', 'signed claim (repeatable)', collect)
    .option('--expires <duration>', 'the signed manifest expires after this (90d, 6mo, 1y, or a date)')
    .option('--sign-version <version>', 'version to sign (default: the installed one; for version 0, the one its old manifest states)')
    .option('--accept-changes', 'repackage a box whose files changed since it was installed (the changes are listed)')
    .option('--architecture <arch>', "the box in this architecture directory (Vagrant 2.4's layout; default: the host's, else the legacy layout)")
    .option('--vagrant-home <dir>')
    .addOption(jsonOption())
    .action(
      action(
        async (
          name: string,
          provider: string,
          version: string,
          opts: {
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
          },
        ) => {
          const { repackageBox } = await import('../vagrant/repackage.js');
          const claims = parseClaims(opts.claim);
          if (opts.expires !== undefined) parseDuration(opts.expires);
          const signers = opts.key?.length || opts.gpgKey?.length ? await loadSigners(opts.key, opts.gpgKey, opts.passphraseFile) : [];
          const r = await repackageBox(name, provider, version, {
            vagrantHome: opts.vagrantHome,
            architecture: opts.architecture,
            output: opts.output,
            signVersion: opts.signVersion,
            acceptChanges: opts.acceptChanges,
            ...(signers.length ? { sign: { signers, claims, expires: opts.expires } } : {}),
          });
          if (opts.json)
            printJson({
              ok: true,
              output: r.output,
              box: r.box,
              files: r.files,
              signed: Boolean(r.signed),
              signers: r.signed?.signers ?? [],
              checked: r.checked,
              changes: r.changes,
            });
          else {
            for (const c of r.changes) warn(`accepted a change since install: ${c.detail}`);
            const label = `${name} ${version} (${provider}${r.box.architecture ? `, ${r.box.architecture}` : ''})`;
            if (r.checked === 'none') warn(`${label} carries no manifest: its files could not be checked for changes since install`);
            out(`boxsig: repackaged ${label} -> ${r.output}${r.signed ? `, signed by ${r.signed.signers.join(', ')}` : ' (unsigned)'}`);
          }
        },
      ),
    );
}
