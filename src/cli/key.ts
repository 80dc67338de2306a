/**
 * `boxsig key …`: generate, import, export, list, certify, add-uid, revoke.
 */
import { Option, type Command } from 'commander';
import { usage } from '../errors.js';
import { passphraseFrom, type PassphraseOptions } from '../keys/passphrase.js';
import { parseDuration } from '../manifest/duration.js';
import { formatTime } from '../manifest/manifest.js';
import type { ImportResult } from '../trust/keyring.js';
import { scrubUrl } from '../shared/urls.js';
import { action, collect, examples, jsonOption, passphraseFileOption, readKeySource } from './common.js';
import { err, out, passphraseOptions, printJson, promptHidden, warn } from './io.js';

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('make, import, export, certify and revoke keys');
  registerGenerate(key);
  registerImport(key);
  registerExport(key);
  registerList(key);
  registerCertify(key);
  registerAddUid(key);
  registerRevoke(key);
}

interface GenerateFlags {
  uid: string[];
  out: string;
  passphraseFile?: string;
  passphrase: boolean;
  expires?: string;
  type: 'ed25519' | 'rsa4096';
  revoker?: string[];
  json?: boolean;
}

/** A new key's passphrase: --passphrase-file, BOXSIG_PASSPHRASE, or asked twice on a terminal (empty for none). */
function newKeyPassphrase(opts: GenerateFlags): PassphraseOptions {
  const tty = passphraseOptions(opts.passphraseFile);
  if (!tty.prompt || !opts.passphrase) return { ...tty, prompt: undefined };
  return {
    ...tty,
    prompt: async () => {
      const a = await promptHidden('Passphrase for the new key (empty for none): ');
      if (a && a !== (await promptHidden('Repeat the passphrase: '))) throw usage('the passphrases differ');
      return a;
    },
  };
}

function registerGenerate(key: Command): void {
  const cmd = key
    .command('generate')
    .description(
      'generate a signing key pair (v4 Ed25519 by default): PREFIX.secret.asc (mode 0600), PREFIX.public.asc, and PREFIX.revocation.asc, a revocation certificate to keep offline (importing it revokes the key)',
    )
    .requiredOption('--uid <uid>', 'user ID, e.g. "Acme Builds <builds@acme.example>" (repeatable)', collect)
    .option('--out <prefix>', 'write PREFIX.secret.asc, PREFIX.public.asc and PREFIX.revocation.asc', 'boxsig-key')
    .addOption(passphraseFileOption('the new key'))
    .option('--no-passphrase', 'do not ask for a passphrase on a terminal (the secret key is not protected)')
    .option('--expires <duration>', 'key expiry: a number and a unit (2y, 18mo, 365d; s, min, h, d, w, mo, y) or a date (2028-01-31)')
    .option('--revoker <public.asc>', "name this key (e.g. the organisation's security officer) as a designated revoker (repeatable)", collect)
    .addOption(new Option('--type <type>', 'key type').choices(['ed25519', 'rsa4096']).default('ed25519'))
    .addOption(jsonOption());
  examples(
    cmd,
    'boxsig key generate --uid "Acme Builds <builds@acme.example>" --out acme --expires 2y',
    'boxsig key generate --uid ci@acme.example --out ci --no-passphrase',
  );
  cmd.action(
    action(async (opts: GenerateFlags) => {
      const { assertKeyFilesFree, generateKeyFiles } = await import('../keys/generate.js');
      assertKeyFilesFree(opts.out);
      const revokers = await Promise.all((opts.revoker ?? []).map((f) => readRevokerKey(f)));
      const now = new Date();
      const expiresIn = opts.expires !== undefined ? parseDuration(opts.expires, now, '--expires') : undefined;
      const passphrase = await passphraseFrom(newKeyPassphrase(opts), 'the new key')();
      const k = await generateKeyFiles(opts.out, { userIds: opts.uid, type: opts.type, passphrase: passphrase || undefined, expiresIn, revokers, date: now });
      const expires = expiresIn !== undefined ? formatTime(new Date(now.getTime() + expiresIn * 1000)) : null;
      if (opts.json) {
        const { fingerprint, secretKey, publicKey, revocationCertificate, revokers: named } = k;
        printJson({ ok: true, fingerprint, secretKey, publicKey, revocationCertificate, protected: k.protected, revokers: named, expires });
        return;
      }
      out(k.fingerprint);
      err(
        `boxsig: wrote ${k.secretKey} (secret, mode 0600${k.protected ? ', passphrase-protected' : ', NOT protected by a passphrase'}), ${k.publicKey} and ${k.revocationCertificate} (keep it offline: it revokes the key)${k.revokers.length ? `; designated revoker: ${k.revokers.join(', ')}` : ''}`,
      );
      err(`boxsig: the key ${expires ? `expires ${expires}` : 'does not expire (no --expires)'}`);
    }),
  );
}

async function readRevokerKey(file: string) {
  const { readKeyData } = await import('../keys/keys.js');
  const { readInputFile } = await import('../box/signers.js');
  const { certs } = await readKeyData(readInputFile(file, '--revoker key'), file);
  if (certs.length !== 1) throw usage(`--revoker ${file} must hold exactly one public key`);
  return certs[0];
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

function registerImport(key: Command): void {
  const cmd = key
    .command('import')
    .description('import public keys and revocation certificates (files, URLs, GnuPG exports, openpgp-revocs.d files)')
    .argument('<source...>', 'key files, http(s) URLs, or "-" for stdin')
    .addOption(jsonOption());
  examples(cmd, 'boxsig key import acme.public.asc', 'gpg --armor --export builds@acme.example | boxsig key import -');
  cmd.action(
    action(async (sources: string[], opts: { json?: boolean }) => {
      const { readKeyData } = await import('../keys/keys.js');
      const { TrustStore } = await import('../trust/store.js');
      const store = new TrustStore();
      const results = [];
      for (const s of sources) results.push({ source: scrubUrl(s), ...(await store.keyring.import(await readKeyData(await readKeySource(s), scrubUrl(s)))) });
      if (opts.json) printJson({ ok: true, imported: results });
      else for (const r of results) printImport(r);
    }),
  );
}

function registerExport(key: Command): void {
  const cmd = key
    .command('export')
    .description('print a public key from the keyring, with every certification and revocation known for it')
    .argument('<key>', 'the key: a fingerprint (spaces allowed), a long key ID (16 hex digits) or a user ID that names one key')
    .option('-o, --output <file>', 'write the key to this file instead of stdout')
    .addOption(jsonOption());
  examples(cmd, 'boxsig key export "0A1B 2C3D 4E5F 6A7B 8C9D  0E1F 2A3B 4C5D 6E7F 8A9B" > acme.public.asc', 'boxsig key export builds@acme.example --json');
  cmd.action(
    action(async (query: string, opts: { output?: string; json?: boolean }) => {
      const { TrustStore } = await import('../trust/store.js');
      const { findKey } = await import('../trust/find.js');
      const { writeKeyFile } = await import('../keys/files.js');
      const store = new TrustStore();
      const k = await findKey(store.keyring, query);
      const armored = (await store.keyring.exportArmored(k.fingerprint))!;
      if (opts.output) writeKeyFile(opts.output, armored);
      if (opts.json)
        printJson({ ok: true, fingerprint: k.fingerprint, userIds: k.userIds, output: opts.output ?? null, ...(opts.output ? {} : { key: armored }) });
      else if (opts.output) err(`boxsig: wrote ${k.fingerprint} to ${opts.output}`);
      else process.stdout.write(armored);
    }),
  );
}

function registerList(key: Command): void {
  const cmd = key.command('list').description('list the keys in the keyring').addOption(jsonOption());
  examples(cmd, 'boxsig key list', 'boxsig key list --json');
  cmd.action(
    action(async (opts: { json?: boolean }) => {
      const { TrustStore } = await import('../trust/store.js');
      const store = new TrustStore();
      const keys = await store.keyring.list();
      if (opts.json) return printJson({ ok: true, keyring: store.keyring.keyDir, keys });
      if (!keys.length) out(`(no keys in ${store.keyring.keyDir})`);
      for (const k of keys) {
        const rev = k.revoked ? `  REVOKED (${k.revoked.reason}${k.revoked.by ? ` by ${k.revoked.by}` : ''})` : '';
        out(`${k.fingerprint}  ${k.algorithm}  created ${k.created.slice(0, 10)}${k.expires ? `  expires ${k.expires.slice(0, 10)}` : ''}${rev}`);
        for (const u of k.userIds) out(`    ${u}`);
      }
    }),
  );
}

function registerCertify(key: Command): void {
  const cmd = key
    .command('certify')
    .description('certify a repository key for a scope with an organisation key (user ID "boxsig:<glob>"); a certify-only key works')
    .argument('<repo-public.asc>', "the repository's public key (a file or an http(s) URL)")
    .requiredOption('--org-key <secret.asc>', 'the organisation secret key')
    .requiredOption('--scope <glob>', 'box-name glob the repository key may sign, e.g. acme/ubuntu-*')
    .addOption(passphraseFileOption('the organisation key'))
    .option('-o, --output <file>', 'write the certified public key, followed by the organisation public key, here (default: stdout)')
    .addOption(jsonOption());
  examples(cmd, 'boxsig key certify --org-key org.secret.asc --scope "acme/ubuntu-*" repo.public.asc -o repo.certified.asc');
  cmd.action(
    action(async (repo: string, opts: { orgKey: string; scope: string; passphraseFile?: string; output?: string; json?: boolean }) => {
      const { loadSecretKey, readKeyData } = await import('../keys/keys.js');
      const { readInputFile } = await import('../box/signers.js');
      const { certifyForScope } = await import('../keys/certify.js');
      const { writeKeyFile } = await import('../keys/files.js');
      const org = await loadSecretKey(
        readInputFile(opts.orgKey, '--org-key'),
        opts.orgKey,
        passphraseFrom(passphraseOptions(opts.passphraseFile), opts.orgKey),
      );
      const { certs } = await readKeyData(await readKeySource(repo), scrubUrl(repo));
      if (certs.length === 0) throw usage(`${repo} holds no public key`);
      const c = await certifyForScope(certs[0], org, opts.scope);
      if (opts.output) writeKeyFile(opts.output, c.armored);
      if (opts.json) {
        const key = opts.output ? {} : { key: c.armored };
        printJson({ ok: true, repository: c.repository, org: c.org, scope: opts.scope, userId: `boxsig:${opts.scope}`, output: opts.output ?? null, ...key });
      } else if (opts.output) err(`boxsig: ${c.org} certified "boxsig:${opts.scope}" on ${c.repository} -> ${opts.output}`);
      else process.stdout.write(c.armored);
    }),
  );
}

function registerAddUid(key: Command): void {
  const cmd = key
    .command('add-uid')
    .description('add a self-signed user ID (e.g. boxsig:acme/ubuntu-*) to your own key')
    .requiredOption('--key <secret.asc>', 'your secret key (rewritten in place, atomically, unless -o)')
    .requiredOption('--uid <uid>', 'the user ID to add')
    .addOption(passphraseFileOption('the key (asked once)'))
    .option('-o, --output <prefix>', 'write PREFIX.secret.asc and PREFIX.public.asc instead of rewriting --key')
    .addOption(jsonOption());
  examples(cmd, 'boxsig key add-uid --key acme.secret.asc --uid "boxsig:acme/ubuntu-*"');
  cmd.action(
    action(async (opts: { key: string; uid: string; passphraseFile?: string; output?: string; json?: boolean }) => {
      const { readInputFile } = await import('../box/signers.js');
      const { addUserIdToKeyFile } = await import('../keys/generate.js');
      const data = readInputFile(opts.key, '--key');
      const r = await addUserIdToKeyFile(opts.key, data, opts.uid, passphraseFrom(passphraseOptions(opts.passphraseFile), opts.key), opts.output);
      if (opts.json) printJson({ ok: true, ...r });
      else out(`boxsig: added "${opts.uid}" to ${r.fingerprint}; wrote ${r.secretKey} and ${r.publicKey}`);
    }),
  );
}

interface RevokeFlags {
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

function registerRevoke(key: Command): void {
  const cmd = key
    .command('revoke')
    .description('make a revocation certificate for your key (or, as its designated revoker, for another key), or apply one received')
    .option('--key <secret.asc>', 'your secret key: make a revocation certificate for it')
    .option('--target <public.asc>', 'with --key: revoke this key instead, as the designated revoker it names')
    .addOption(new Option('--reason <reason>', 'why').choices(['compromised', 'superseded', 'retired', 'unspecified']).default('unspecified'))
    .option('--message <text>', 'a human explanation', '')
    .addOption(passphraseFileOption('--key'))
    .option('-o, --output <file>', 'where to write the certificate (default: stdout)')
    .option('--import <source>', 'apply a revocation certificate (file or URL) to the keyring')
    .option('--apply', 'with --key: also apply the new certificate to the local keyring')
    .addOption(jsonOption());
  examples(
    cmd,
    'boxsig key revoke --key acme.secret.asc --reason superseded -o acme.revoke.asc',
    'boxsig key revoke --import https://acme.example/keys/acme.revoke.asc',
  );
  cmd.action(
    action(async (opts: RevokeFlags) => {
      if (!opts.key === !opts.import) throw usage('give --key SECRET.asc (make a certificate) or --import FILE|URL (apply one)');
      if (opts.import) return applyRevocation(opts.import, opts.json);
      const { loadSecretKey, readKeyData } = await import('../keys/keys.js');
      const { readInputFile } = await import('../box/signers.js');
      const { makeRevocationCertificate, reasonCode } = await import('../keys/revoke.js');
      const { writeKeyFile } = await import('../keys/files.js');
      const { TrustStore } = await import('../trust/store.js');
      reasonCode(opts.reason);
      const signer = await loadSecretKey(readInputFile(opts.key!, '--key'), opts.key!, passphraseFrom(passphraseOptions(opts.passphraseFile), opts.key!));
      const target = opts.target ? await readOneKey(opts.target) : undefined;
      const cert = await makeRevocationCertificate({ signer, target, reason: opts.reason, message: opts.message });
      if (opts.output) writeKeyFile(opts.output, cert.armored, { secret: true });
      if (opts.apply) await new TrustStore().keyring.import(await readKeyData(Buffer.from(cert.armored), 'the new revocation certificate'));
      if (opts.json) {
        const certificate = opts.output ? {} : { certificate: cert.armored };
        printJson({
          ok: true,
          fingerprint: cert.fingerprint,
          by: cert.by,
          reason: opts.reason,
          output: opts.output ?? null,
          applied: Boolean(opts.apply),
          ...certificate,
        });
      } else if (opts.output) {
        const by = cert.by !== cert.fingerprint ? `, by designated revoker ${cert.by}` : '';
        err(
          `boxsig: wrote the revocation certificate for ${cert.fingerprint} (${opts.reason}${by}) to ${opts.output}; publish it and import it with: boxsig key revoke --import ${opts.output}`,
        );
      } else process.stdout.write(cert.armored);
    }),
  );
}

async function applyRevocation(source: string, json?: boolean): Promise<void> {
  const { readKeyData } = await import('../keys/keys.js');
  const { holdsRevocation } = await import('../keys/revoke.js');
  const { TrustStore } = await import('../trust/store.js');
  const d = await readKeyData(await readKeySource(source), scrubUrl(source));
  if (!holdsRevocation(d)) throw usage(`${source} holds no revocation certificate`);
  const r = await new TrustStore().keyring.import(d);
  if (json) printJson({ ok: true, ...r });
  else printImport({ source: scrubUrl(source), ...r });
}

async function readOneKey(src: string) {
  const { readKeyData } = await import('../keys/keys.js');
  const { certs } = await readKeyData(await readKeySource(src), src);
  if (certs.length === 0) throw usage(`${src} holds no public key`);
  return certs[0];
}
