/**
 * Trust store and keyring commands: trust list|pin|forget|accept,
 * key import|export|list|certify|add-uid|revoke, and add.
 */
import type { Command } from 'commander';
import { BoxsigError, usage } from '../errors.js';
import { TrustStore, type ImportResult } from '../trust/store.js';
import { fingerprintOf, loadSecretKey, normalizeFingerprint, parseFingerprintArg, readKeyData, type KeyData } from '../keys/keys.js';
import { writeCert } from '../keys/cert.js';
import { certifyScope } from '../keys/certify.js';
import { readKeyFile, writeKeyFile } from '../keys/files.js';
import { addUserIdToKeyFile } from '../keys/generate.js';
import { armorPublicKey, publicBytes } from '../keys/pgp.js';
import { makeRevocationCertificate, reasonCode } from '../keys/revoke.js';
import { nameProblem } from '../manifest/manifest.js';
import { globProblem } from '../policy/glob.js';
import { acceptTrust, forgetTrust, listTrust, pinTrust } from '../trust/manage.js';
import { formatTime } from '../manifest/manifest.js';
import { action, collect, jsonOption } from './common.js';
import { err, out, passphraseSource, printJson, warn, Progress } from './io.js';
import { httpRequest, readLimited, scrubUrl } from '../vagrant/http.js';
import { KEY_FILE_LIMIT } from '../shared/files.js';

async function readKeySource(src: string): Promise<Buffer> {
  if (/^https?:\/\//i.test(src)) {
    const r = await httpRequest(src, {});
    return readLimited(r.body, KEY_FILE_LIMIT, scrubUrl(src));
  }
  return readKeyFile(src === '-' ? 0 : src, src);
}

function parseSeconds(v: string): number {
  const n = Number(v);
  if (!/^\s*[0-9.]+\s*$/.test(v) || !Number.isFinite(n) || n <= 0) throw usage(`--timeout ${JSON.stringify(v)} must be a positive number of seconds`);
  return n;
}

function readLocalFile(file: string): Buffer {
  return readKeyFile(file, file);
}

async function readOneKey(src: string) {
  const { certs } = await readKeyData(await readKeySource(src), src);
  if (certs.length === 0) throw usage(`${src} holds no public key`);
  return certs[0];
}

function holdsRevocation(d: KeyData): boolean {
  return d.bare.length > 0 || d.certs.some((c) => c.direct.some((s) => s.info.type === 0x20));
}

interface RevokeOptions {
  key?: string;
  target?: string;
  reason: string;
  message: string;
  passphraseFile?: string;
  output?: string;
  import?: string;
  apply?: boolean;
  json?: boolean;
}

function printImport(r: ImportResult & { source: string }): void {
  for (const k of r.keys) {
    out(`${k.status.padEnd(9)} ${k.fingerprint}  ${k.userIds.join(', ')}${k.revoked ? `  REVOKED (${k.revoked})` : ''}`);
    if (k.secretIgnored) warn(`${r.source} holds a secret key; only its public part was imported`);
  }
  for (const v of r.revocations) {
    if (v.applied) out(`revocation (${v.kind}) by ${v.issuer}: applied to ${v.target}`);
    else warn(`revocation (${v.kind}) by ${v.issuer} stored but NOT applied: ${v.note}`);
  }
}

export function registerTrustCommands(program: Command): void {
  const key = program.commands.find((c) => c.name() === 'key')!;

  key
    .command('import')
    .description('import public keys and revocation certificates (files, URLs, GnuPG exports, openpgp-revocs.d files)')
    .argument('<source...>', 'files or URLs ("-" for stdin)')
    .addOption(jsonOption())
    .action(
      action(async (sources: string[], opts: { json?: boolean }) => {
        const store = new TrustStore();
        const results = [];
        for (const s of sources) results.push({ source: scrubUrl(s), ...(await store.keyring.import(await readKeyData(await readKeySource(s), scrubUrl(s)))) });
        if (opts.json) printJson({ ok: true, imported: results });
        else for (const r of results) printImport(r);
      }),
    );

  key
    .command('export')
    .description('print a public key from the keyring, with every certification and revocation known for it')
    .argument('<fpr>')
    .action(
      action(async (fpr: string) => {
        const store = new TrustStore();
        const f = parseFingerprintArg(fpr);
        const armored = await store.keyring.exportArmored(f);
        if (!armored) throw new BoxsigError('USAGE', `no key ${f} in the keyring ${store.keyring.keyDir}`);
        process.stdout.write(armored);
      }),
    );

  key
    .command('list')
    .description('list the keys in the keyring')
    .addOption(jsonOption())
    .action(
      action(async (opts: { json?: boolean }) => {
        const store = new TrustStore();
        const keys = await store.keyring.list();
        if (opts.json) printJson({ ok: true, keyring: store.keyring.keyDir, keys });
        else {
          if (!keys.length) out(`(no keys in ${store.keyring.keyDir})`);
          for (const k of keys) {
            const rev = k.revoked ? `  REVOKED (${k.revoked.reason}${k.revoked.by ? ` by ${k.revoked.by}` : ''})` : '';
            out(`${k.fingerprint}  ${k.algorithm}  created ${k.created.slice(0, 10)}${k.expires ? `  expires ${k.expires.slice(0, 10)}` : ''}${rev}`);
            for (const u of k.userIds) out(`    ${u}`);
          }
        }
      }),
    );

  key
    .command('certify')
    .description('certify a repository key for a scope with an organisation key (user ID "boxsig:<glob>"); a certify-only key works')
    .requiredOption('--org-key <secret.asc>', 'the organisation secret key')
    .requiredOption('--scope <glob>', 'box-name glob the repository key may sign, e.g. acme/ubuntu-*')
    .option('--passphrase-file <file>', 'passphrase of the organisation key')
    .option('-o, --output <file>', 'write the certified public key, followed by the organisation public key, here (default: stdout)')
    .argument('<repo-public.asc>')
    .addOption(jsonOption())
    .action(
      action(async (repo: string, opts: { orgKey: string; scope: string; passphraseFile?: string; output?: string; json?: boolean }) => {
        const org = await loadSecretKey(readLocalFile(opts.orgKey), opts.orgKey, passphraseSource(opts.passphraseFile, opts.orgKey));
        const { certs } = await readKeyData(await readKeySource(repo), scrubUrl(repo));
        if (certs.length === 0) throw usage(`${repo} holds no public key`);
        const certified = await certifyScope(certs[0], org, opts.scope);
        const armored = armorPublicKey(Buffer.concat([writeCert({ ...certified, hadSecret: false }), publicBytes(org)]));
        if (opts.output) writeKeyFile(opts.output, armored);
        const repoFpr = certified.info.fingerprint;
        if (opts.json)
          printJson({
            ok: true,
            repository: repoFpr,
            org: fingerprintOf(org),
            scope: opts.scope,
            userId: `boxsig:${opts.scope}`,
            output: opts.output ?? null,
            ...(opts.output ? {} : { key: armored }),
          });
        else if (opts.output) err(`boxsig: ${fingerprintOf(org)} certified "boxsig:${opts.scope}" on ${repoFpr} -> ${opts.output}`);
        else process.stdout.write(armored);
      }),
    );

  key
    .command('add-uid')
    .description('add a self-signed user ID (e.g. boxsig:acme/ubuntu-*) to your own key')
    .requiredOption('--key <secret.asc>', 'your secret key (rewritten in place, atomically, unless -o)')
    .requiredOption('--uid <uid>', 'the user ID to add')
    .option('--passphrase-file <file>')
    .option('-o, --output <prefix>', 'write PREFIX.secret.asc and PREFIX.public.asc instead of rewriting --key')
    .addOption(jsonOption())
    .action(
      action(async (opts: { key: string; uid: string; passphraseFile?: string; output?: string; json?: boolean }) => {
        const r = await addUserIdToKeyFile(opts.key, readLocalFile(opts.key), opts.uid, passphraseSource(opts.passphraseFile, opts.key), opts.output);
        if (opts.json) printJson({ ok: true, ...r });
        else out(`boxsig: added "${opts.uid}" to ${r.fingerprint}; wrote ${r.secretKey} and ${r.publicKey}`);
      }),
    );

  key
    .command('revoke')
    .description('make a revocation certificate for your key (or, as its designated revoker, for another key), or apply one received')
    .option('--key <secret.asc>', 'your secret key: make a revocation certificate for it')
    .option('--target <public.asc>', 'with --key: revoke this key instead, as the designated revoker it names')
    .option('--reason <reason>', 'compromised, superseded, retired or unspecified', 'unspecified')
    .option('--message <text>', 'a human explanation', '')
    .option('--passphrase-file <file>')
    .option('-o, --output <file>', 'where to write the certificate (default: stdout)')
    .option('--import <source>', 'apply a revocation certificate (file or URL) to the keyring')
    .option('--apply', 'with --key: also apply the new certificate to the local keyring')
    .addOption(jsonOption())
    .action(
      action(async (opts: RevokeOptions) => {
        if (!opts.key === !opts.import) throw usage('give --key SECRET.asc (make a certificate) or --import FILE|URL (apply one)');
        const store = new TrustStore();
        if (opts.import) {
          const d = await readKeyData(await readKeySource(opts.import), scrubUrl(opts.import));
          if (!holdsRevocation(d)) throw usage(`${opts.import} holds no revocation certificate`);
          const r = await store.keyring.import(d);
          if (opts.json) printJson({ ok: true, ...r });
          else printImport({ source: scrubUrl(opts.import), ...r });
          return;
        }
        reasonCode(opts.reason);
        const signer = await loadSecretKey(readLocalFile(opts.key!), opts.key!, passphraseSource(opts.passphraseFile, opts.key!));
        const target = opts.target ? await readOneKey(opts.target) : undefined;
        const cert = await makeRevocationCertificate({ signer, target, reason: opts.reason, message: opts.message });
        if (opts.output) writeKeyFile(opts.output, cert.armored, { secret: true });
        if (opts.apply) await store.keyring.import(await readKeyData(Buffer.from(cert.armored), 'the new revocation certificate'));
        const by = cert.by !== cert.fingerprint ? `, by designated revoker ${cert.by}` : '';
        if (opts.json)
          printJson({
            ok: true,
            fingerprint: cert.fingerprint,
            by: cert.by,
            reason: opts.reason,
            output: opts.output ?? null,
            applied: Boolean(opts.apply),
            ...(opts.output ? {} : { certificate: cert.armored }),
          });
        else if (opts.output)
          err(
            `boxsig: wrote the revocation certificate for ${cert.fingerprint} (${opts.reason}${by}) to ${opts.output}; publish it and import it with: boxsig key revoke --import ${opts.output}`,
          );
        else process.stdout.write(cert.armored);
      }),
    );

  const trust = program.command('trust').description('the trust store: pins and trust-on-first-use records');

  trust
    .command('list')
    .description('show pins and the keys recorded for each box name')
    .addOption(jsonOption())
    .action(
      action(async (opts: { json?: boolean }) => {
        const l = listTrust(new TrustStore());
        if (opts.json) {
          printJson({ ok: true, store: l.store, pins: Object.fromEntries(l.pins), boxes: Object.fromEntries(l.boxes) });
          return;
        }
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

  trust
    .command('pin')
    .description('pin a box name (or glob) to a key fingerprint')
    .argument('<name>', 'box name or glob, e.g. acme/* ')
    .argument('<fpr>')
    .addOption(jsonOption())
    .action(
      action(async (name: string, fpr: string, opts: { json?: boolean }) => {
        const store = new TrustStore();
        const r = await pinTrust(store, name, parseFingerprintArg(fpr));
        if (opts.json) printJson({ ok: true, ...r });
        else out(`boxsig: ${r.name} is pinned to ${r.pins.join(', ')} (${store.file})`);
      }),
    );

  trust
    .command('forget')
    .description('forget a box name: its pins, its recorded keys and its highest version')
    .argument('<name>')
    .option('--key <fpr>', 'forget only this key (the name keeps its record: it is not trusted on first use again)')
    .addOption(jsonOption())
    .action(
      action(async (name: string, opts: { key?: string; json?: boolean }) => {
        const r = await forgetTrust(new TrustStore(), name, opts.key ? parseFingerprintArg(opts.key) : undefined);
        if (opts.json) printJson({ ok: true, ...r });
        else {
          out(r.removed ? `boxsig: forgot ${r.key ? `key ${r.key} of ` : ''}${name}` : `boxsig: nothing recorded for ${name}`);
          if (r.next) warn(r.next);
        }
      }),
    );

  trust
    .command('accept')
    .description('accept a new key for a box name after a KEY_CHANGED refusal (boxes the replaced keys signed before stay valid)')
    .argument('<name>')
    .argument('<fpr>')
    .option('--keep', 'keep the previously recorded keys as well')
    .option('--distrust-old', 'the replaced keys are not to be trusted any more: boxes they signed are refused too')
    .option('--vagrant-home <dir>', 'with --distrust-old: where to look for affected installed boxes')
    .addOption(jsonOption())
    .action(
      action(async (name: string, fpr: string, opts: { keep?: boolean; distrustOld?: boolean; vagrantHome?: string; json?: boolean }) => {
        const r = await acceptTrust(new TrustStore(), name, parseFingerprintArg(fpr), opts);
        const { installedSignedBy } = await import('../vagrant/signed-by.js');
        const affected = r.distrusted
          ? installedSignedBy(
              name,
              r.replaced.map((k) => k.key),
              opts.vagrantHome,
            )
          : [];
        if (opts.json) {
          printJson({ ok: true, ...r, affected: affected.map((b) => ({ name: b.name, version: b.version, provider: b.provider, directory: b.directory })) });
          return;
        }
        out(`boxsig: ${name} now trusts ${r.keys.join(', ')}`);
        const old = r.replaced.map((k) => k.key).join(', ');
        if (r.replaced.length && !r.distrusted) out(`  boxes ${old} signed before now stay valid; new boxes must be signed by ${r.keys.join(', ')}`);
        if (r.distrusted) {
          warn(
            `${old} ${r.replaced.length === 1 ? 'is' : 'are'} distrusted for ${name}: boxes signed only by ${r.replaced.length === 1 ? 'it' : 'them'} are refused`,
          );
          for (const b of affected) warn(`  installed and affected: ${b.name} ${b.version} (${b.provider}) ${b.directory}`);
          if (affected.length) warn('  check them with boxsig verify --installed, and remove or replace them (vagrant box remove)');
        }
      }),
    );

  program
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
    .option('-q, --quiet', 'no progress output')
    .action(
      action(
        async (
          source: string,
          opts: {
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
          },
        ) => {
          const pins = (opts.pin ?? []).map((p) => parseFingerprintArg(p, '--pin'));
          const { addBox } = await import('../vagrant/add.js');
          const { parseHostHeaders } = await import('../vagrant/http.js');
          const { loadLayers } = await import('../policy/load.js');
          const store = new TrustStore();
          const layers = await loadLayers({
            store,
            configFile: opts.config,
            ...(opts.policyJson !== undefined ? { extraJson: { source: 'Vagrantfile (config.boxsig)', json: opts.policyJson } } : {}),
          });
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
            else {
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
          } finally {
            (progress as Progress | null)?.clear();
          }
        },
      ),
    );
}

export { normalizeFingerprint };
