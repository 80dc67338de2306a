/**
 * Who signs a manifest: a secret key file (OpenPGP.js), or a key held by the
 * local GnuPG (gpg-agent, smartcards, HSMs behind it) — and the public key
 * the box carries for it, with every certification boxsig knows for it
 * (`withCertifications`), so that a consumer checks an organisation chain on
 * first encounter with nothing to import.
 */
import { spawn } from 'node:child_process';
import { BoxsigError, usage } from '../errors.js';
import { mergeCert, splitCerts, type Cert, type Sig } from './cert.js';
import { readKeyData, signDetached } from './keys.js';
import { CERTIFICATION_TYPES, readPackets } from './packets.js';
import { certProblem } from './shape.js';
import { CARRIED_CERTIFIERS, certifierClaims } from './signers.js';
import { readOneSignature } from './verify.js';
import { BOXSIG_UID_PREFIX } from './certify.js';
import { userIdText, writeCert, fingerprints } from './cert.js';
import * as pgp from './pgp.js';

export interface ManifestSigner {
  /** Primary-key fingerprint. */
  fingerprint: string;
  /** ASCII-armored public key to embed in `.boxsig/keys/`. */
  publicKey: string;
  sign(data: Uint8Array, date: Date): Promise<string>;
  describe: string;
}

export function signerFromKey(key: pgp.PrivateKey, source: string): ManifestSigner {
  return {
    fingerprint: pgp.fingerprintOf(key),
    publicKey: pgp.armorPublicKey(pgp.publicBytes(key)),
    sign: (data, date) => signDetached(data, key, date),
    describe: source,
  };
}

/** A copy of a signing key from somewhere: a file (`sign --key`, `sign --cert`), the keyring. */
export interface KeyCopy {
  data: Uint8Array | Cert;
  what: string;
  /** a copy the user named explicitly (`--cert`): it must hold a signer's key */
  explicit?: boolean;
}

function ownSignature(s: Sig, c: Cert): boolean {
  const own = c.info.fingerprint;
  if (s.info.hashedIssuerFingerprint) return s.info.hashedIssuerFingerprint === own;
  return s.info.issuerFingerprints.includes(own) || s.info.issuerKeyIds.includes(c.info.keyId);
}

/**
 * What a box carries of a key: everything of the key itself, and of the
 * third-party signatures the certifications on `boxsig:` user IDs (and every
 * certification revocation) — the only ones boxsig's trust reads — like
 * GnuPG's export-minimal does for the rest.
 */
export function embeddable(c: Cert): Cert {
  return {
    ...c,
    hadSecret: false,
    users: c.users.map((u) => {
      const boxsigUid = (userIdText(u) ?? '').startsWith(BOXSIG_UID_PREFIX);
      return { ...u, sigs: u.sigs.filter((s) => boxsigUid || !CERTIFICATION_TYPES.has(s.info.type) || ownSignature(s, c)) };
    }),
  };
}

async function certsOf(copy: KeyCopy): Promise<Cert[]> {
  if (!(copy.data instanceof Uint8Array)) return [copy.data];
  return (await readKeyData(copy.data, copy.what)).certs;
}

/** Where else a key may be found (the keyring). */
export type CertSource = (fingerprint: string) => Promise<Cert | null>;

/**
 * The signers with every certification known for their keys: the copies
 * given (the key files, `--cert` files, the keyring's copies) merged into
 * the key each embeds, followed by the public keys of the keys that
 * certified its `boxsig:` user IDs (an organisation key), when known — so
 * that a consumer configured with only the organisation's fingerprint checks
 * the chain on first encounter. A `--cert` file that contributes nothing is
 * a usage error.
 */
export async function withCertifications(signers: ManifestSigner[], copies: KeyCopy[], lookup: CertSource = async () => null): Promise<ManifestSigner[]> {
  const known = new Map<string, Cert>();
  for (const s of signers) {
    const own = splitCerts(readPackets((await pgp.dearmor(s.publicKey.slice(s.publicKey.indexOf('-----BEGIN PGP')))).data)).certs[0];
    if (own) known.set(s.fingerprint, own);
  }
  const pool = new Map<string, Cert>();
  const given: Array<{ copy: KeyCopy; fprs: string[] }> = [];
  for (const copy of copies) {
    const certs = await certsOf(copy);
    given.push({ copy, fprs: certs.map((c) => c.info.fingerprint) });
    for (const c of certs) {
      const into = known.has(c.info.fingerprint) ? known : pool;
      const before = into.get(c.info.fingerprint);
      into.set(c.info.fingerprint, before ? mergeCert(before, c).cert : c);
    }
  }
  const used = new Set(known.keys());
  const out: ManifestSigner[] = [];
  for (const s of signers) {
    const c = known.get(s.fingerprint);
    if (!c) {
      out.push(s);
      continue;
    }
    const travelling = embeddable(c);
    const parts = [checkedForTravel(travelling, s.fingerprint)];
    // only the certifiers of what travels: a verifier refuses a carried key that certified nothing in the file
    for (const f of [...certifierClaims(travelling)].sort().slice(0, CARRIED_CERTIFIERS.perFile)) {
      const certifier = pool.get(f) ?? known.get(f) ?? (await lookup(f));
      if (!certifier) continue;
      parts.push(checkedForTravel(embeddable(certifier), f));
      used.add(f);
    }
    out.push({ ...s, publicKey: pgp.armorPublicKey(Buffer.concat(parts.map(writeCert))) });
  }
  for (const g of given) {
    if (g.copy.explicit && !g.fprs.some((f) => used.has(f))) {
      throw usage(
        `${g.copy.what} holds neither a copy of the signing key${signers.length === 1 ? '' : 's'} ${signers.map((x) => x.fingerprint).join(', ')} nor a key that certified ${signers.length === 1 ? 'it' : 'them'}`,
      );
    }
  }
  return out;
}

function checkedForTravel(c: Cert, fpr: string): Cert {
  const problem = certProblem(c);
  if (problem) throw usage(`the key ${fpr} cannot travel in a box: ${problem}`);
  return c;
}

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], input?: Uint8Array, extraFd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'pipe'> = extraFd !== undefined ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'];
    const child = spawn(cmd, args, { stdio });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') reject(new BoxsigError('USAGE', `${cmd} is not installed (on Debian: apt-get install gnupg)`));
      else reject(e);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
    if (extraFd !== undefined) {
      const s = child.stdio[3] as NodeJS.WritableStream;
      s.on('error', () => undefined);
      s.end(extraFd + '\n');
    }
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input ?? Buffer.alloc(0));
  });
}

/** gpg's messages, each line once (gpg repeats "signing failed" after the failing step). */
function gpgLines(stderr: string): string {
  return [
    ...new Set(
      stderr
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    ),
  ].join('\n');
}

/** A pinentry that cannot ask (no terminal, no display): gpg's words for it. */
const NO_PINENTRY =
  /Inappropriate ioctl for device|No pinentry|pinentry.*(?:No such file|not found|failed)|No such device or address|Operation cancelled|Timeout/i;

/**
 * Why gpg did not sign. Without a usable pinentry it is not the user's command
 * line that is wrong (exit 3, not 2): say how to give gpg a passphrase.
 */
function gpgSignFailure(fingerprint: string, r: RunResult, hadPassphrase: boolean): BoxsigError {
  const said = gpgLines(r.stderr) || `exit status ${r.code}`;
  if (!hadPassphrase && NO_PINENTRY.test(r.stderr)) {
    return new BoxsigError(
      'IO',
      `gpg could not ask for the passphrase of ${fingerprint}: no usable pinentry\n${said}`,
      { fingerprint },
      'on a terminal: export GPG_TTY=$(tty) and run again; in a script: give --passphrase-file FILE or set BOXSIG_PASSPHRASE (boxsig passes it to gpg with --pinentry-mode loopback; gpg-agent needs allow-loopback-pinentry, the default since GnuPG 2.1.12), or keep the key unlocked in gpg-agent',
    );
  }
  return new BoxsigError('USAGE', `gpg could not sign with ${fingerprint}:\n${said}`, { fingerprint });
}

/** Sign through GnuPG with the key whose fingerprint (or any ID gpg accepts) is `id`. */
export async function signerFromGpg(id: string, opts: { gpg?: string; passphrase?: string } = {}): Promise<ManifestSigner> {
  const gpg = opts.gpg ?? process.env.BOXSIG_GPG ?? 'gpg';
  const exp = await run(gpg, ['--batch', '--armor', '--export', '--export-options', 'export-minimal', id]);
  if (exp.code !== 0 || exp.stdout.length === 0) {
    throw usage(`GnuPG has no public key for ${id}${exp.stderr ? `: ${exp.stderr.trim()}` : ''}`);
  }
  const { certs } = await readKeyData(exp.stdout, `gpg --export ${id}`);
  if (certs.length !== 1) throw usage(`${id} matches ${certs.length} keys in GnuPG; give the full fingerprint`);
  const cert = certs[0];
  const fingerprint = cert.info.fingerprint;
  // the full key (with certifications, for org chains), kept to what a box carries
  const full = await run(gpg, ['--batch', '--armor', '--export', fingerprint]);
  let withCerts = cert;
  if (full.code === 0 && full.stdout.length) {
    const more = (await readKeyData(full.stdout, `gpg --export ${fingerprint}`).catch(() => ({ certs: [] as Cert[] }))).certs.find(
      (c) => c.info.fingerprint === fingerprint,
    );
    if (more) withCerts = mergeCert(cert, more).cert;
  }
  const own = fingerprints(cert);
  return {
    fingerprint,
    publicKey: pgp.armorPublicKey(writeCert(embeddable(withCerts))),
    describe: `GnuPG key ${fingerprint}`,
    async sign(data: Uint8Array) {
      const args = ['--batch', '--yes', '--armor', '--digest-algo', 'SHA512', '--local-user', fingerprint, '--detach-sign'];
      const pass = opts.passphrase;
      const r = pass !== undefined ? await run(gpg, ['--pinentry-mode', 'loopback', '--passphrase-fd', '3', ...args], data, pass) : await run(gpg, args, data);
      if (r.code !== 0 || r.stdout.length === 0) throw gpgSignFailure(fingerprint, r, pass !== undefined);
      const sig = await readOneSignature(r.stdout, 'gpg output');
      const issuer = sig.info.hashedIssuerFingerprint ?? sig.info.issuerFingerprints[0];
      const ok = issuer ? own.includes(issuer) : own.some((f) => sig.info.issuerKeyIds.includes(f.slice(-16)));
      if (!ok) throw new BoxsigError('INTERNAL', `gpg signed with a key outside ${fingerprint}`);
      return r.stdout.toString('latin1');
    },
  };
}
