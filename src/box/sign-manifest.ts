/**
 * The manifest half of `boxsig sign`, once the single pass has hashed every
 * file: which box this is (options, metadata.json, the old manifest), which
 * manifest to sign (a fresh one, or the old one when only the signers change,
 * so that earlier signatures stay valid: co-signing), and the signatures and
 * keys the new `.boxsig/` entries carry.
 */
import { usage } from '../errors.js';
import { LIMITS } from '../shared/limits.js';
import type { PrefixFile } from '../archive/writer.js';
import { buildManifest, parseManifest, serializeManifest, MANIFEST_PATH, type Manifest, type BoxIdentity } from '../manifest/manifest.js';
import { parseDuration } from '../manifest/duration.js';
import { canonicalJson } from '../shared/json.js';
import { architectureProblem, architecturesAgree } from '../manifest/names.js';
import type { ManifestSigner } from '../keys/signer.js';
import { checkSigners } from '../keys/signers.js';
import { readMetadata } from './judge.js';
import type { BoxsigPrefix, ReadResult } from './reader.js';
import type { SignOptions, SignResult } from './sign.js';

/** What the options ask for, checked before the box is read. */
export interface SignRequest {
  /** The signers' primary fingerprints, in the order given. */
  fprs: string[];
  now: Date;
  /** Seconds from `now` until the manifest expires. */
  expiresIn: number | undefined;
}

export function checkSignOptions(opts: SignOptions): SignRequest {
  if (opts.signers.length === 0) throw usage('give at least one --key (or --gpg-key)');
  const fprs = opts.signers.map((s) => s.fingerprint);
  if (new Set(fprs).size !== fprs.length) throw usage('the same key is given twice');
  const archProblem = opts.architecture !== undefined ? architectureProblem(opts.architecture) : null;
  if (archProblem) throw usage(`--architecture ${JSON.stringify(opts.architecture)} ${archProblem}`);
  const now = opts.now ?? new Date();
  const expiresIn = opts.expires !== undefined ? parseDuration(opts.expires, now) : undefined;
  return { fprs, now, expiresIn };
}

/** Entries the .boxsig/ prefix adds: its files and the directories .boxsig/, signatures/, keys/. */
const PREFIX_DIRS = 3;

/** The signed box must pass the verifier's limits; anything else is refused before a byte is written in place. */
function checkSignedLimits(entries: number, signers: number): void {
  if (signers > LIMITS.maxSigners) throw usage(`a box carries at most ${LIMITS.maxSigners} signatures; ${signers} were asked for`);
  if (entries > LIMITS.maxEntries) {
    throw usage(
      `the signed box would hold ${entries} entries (files and directories, .boxsig/ included), more than the ${LIMITS.maxEntries} that boxsig verifies (docs/SECURITY.md, resource limits)`,
    );
  }
}

/**
 * The architecture a new manifest states: `--architecture`, else
 * metadata.json's, else the old manifest's. `--architecture` must agree with
 * metadata.json (`unknown` on either side states nothing).
 */
function signedArchitecture(given: string | undefined, metadata: string | undefined, old: string | undefined): string | undefined {
  if (given !== undefined && !architecturesAgree(given, metadata)) {
    throw usage(`--architecture ${given} contradicts metadata.json, which says architecture ${metadata}`);
  }
  return given ?? metadata ?? old;
}

/**
 * Whether the old manifest can be kept for these keys: it names them all
 * among its signers, or it names none and one key signs (adding a
 * co-signature). Several keys at once get a manifest that names them.
 */
function keepsSigners(old: Manifest, fprs: string[]): boolean {
  return old.signers ? fprs.every((f) => old.signers!.includes(f)) : fprs.length === 1;
}

function unnamedCoSignature(fprs: string[]): string {
  return (
    `the manifest is kept, and it names no signers (it was signed with one key): the co-signature by ${fprs.join(', ')} counts where that key is ` +
    'already trusted (pin, organisation, record), but proves no key rotation. To rotate keys, sign with the old and the new key at once ' +
    '(--key OLD --key NEW) or certify the new key with the old one (docs/TRUST.md)'
  );
}

export interface BoxToSign {
  box: BoxIdentity;
  /** The manifest of the input box, when it has a valid one. */
  oldManifest: Manifest | null;
  warnings: string[];
}

/** The box's identity: the options, else metadata.json (the provider, the architecture), else the old manifest. */
export function identifyBox(input: string, read: ReadResult, opts: SignOptions, old: BoxsigPrefix | null): BoxToSign {
  const warnings: string[] = [];
  if (!read.files.some((f) => f.path === 'metadata.json')) {
    throw usage(`${input} is not a Vagrant box: it has no metadata.json`);
  }
  const md = readMetadata(read.metadata);
  if (!md) throw usage('metadata.json is not a JSON object (or is larger than 1 MiB)');
  let oldManifest: Manifest | null = null;
  if (old?.manifest) {
    try {
      oldManifest = parseManifest(old.manifest);
    } catch (e) {
      warnings.push(`the existing manifest is invalid and is replaced: ${(e as Error).message}`);
    }
  }
  const provider = opts.provider ?? md.provider ?? oldManifest?.box.provider;
  if (!provider) throw usage('metadata.json names no provider: give --provider');
  if (opts.provider && md.provider && opts.provider !== md.provider) {
    throw usage(`--provider ${opts.provider} contradicts metadata.json, which says provider ${md.provider}`);
  }
  const name = opts.name ?? oldManifest?.box.name;
  const version = opts.version ?? oldManifest?.box.version;
  if (!name) throw usage('give --name (the box name, e.g. acme/ubuntu-24.04)');
  if (!version) throw usage('give --version (the box version, e.g. 1.2.3)');
  const box: BoxIdentity = { name, version, provider };
  const architecture = signedArchitecture(opts.architecture, md.architecture, oldManifest?.box.architecture);
  if (architecture) box.architecture = architecture;
  return { box, oldManifest, warnings };
}

export interface ManifestChoice {
  manifest: Manifest;
  manifestBytes: Buffer;
  /** Valid signatures by other keys, kept next to the new ones (co-signing). */
  kept: Map<string, { sig: Buffer; key: Buffer }>;
  dropped: SignResult['dropped'];
}

/** A fresh manifest of the hashed files, unless the old one can be kept because only the signers change. */
export async function chooseManifest(
  target: BoxToSign,
  read: ReadResult,
  old: BoxsigPrefix | null,
  opts: SignOptions,
  request: SignRequest,
): Promise<ManifestChoice> {
  const { box, oldManifest } = target;
  const { fprs, now, expiresIn } = request;
  const fresh = buildManifest({
    box,
    created: now,
    expires: expiresIn !== undefined ? new Date(now.getTime() + expiresIn * 1000) : undefined,
    claims: opts.claims ?? oldManifest?.claims,
    files: read.files,
    // several keys at once: each signature commits to the others (a co-signature can then prove a rotation)
    signers: fprs.length > 1 ? fprs : undefined,
  });
  const manifestBytes = serializeManifest(fresh);
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
  const reusable =
    !opts.fresh &&
    oldManifest !== null &&
    opts.expires === undefined &&
    (opts.claims === undefined || same(opts.claims, oldManifest.claims)) &&
    same(oldManifest.box, box) &&
    same(oldManifest.files, fresh.files) &&
    keepsSigners(oldManifest, fprs);
  if (reusable && old && oldManifest) return keepOldManifest(old, oldManifest, request, target.warnings);
  const dropped: SignResult['dropped'] = [];
  if (old?.signatures.size) {
    for (const f of old.signatures.keys()) {
      if (!fprs.includes(f)) dropped.push({ fingerprint: f, reason: 'the manifest changed, so its signature no longer applies' });
    }
  }
  return { manifest: fresh, manifestBytes, kept: new Map(), dropped };
}

/** The old manifest stays: the other keys' valid signatures are kept, invalid ones dropped. */
async function keepOldManifest(old: BoxsigPrefix, manifest: Manifest, request: SignRequest, warnings: string[]): Promise<ManifestChoice> {
  const { fprs, now } = request;
  const kept: ManifestChoice['kept'] = new Map();
  const dropped: SignResult['dropped'] = [];
  const { signers } = await checkSigners(old, null, { revocation: 'enforce', expiry: 'enforce' }, now);
  for (const s of signers) {
    if (fprs.includes(s.fingerprint)) continue; // re-signed below
    if (s.valid && old.keys.has(s.fingerprint)) kept.set(s.fingerprint, { sig: old.signatures.get(s.fingerprint)!, key: old.keys.get(s.fingerprint)! });
    else dropped.push({ fingerprint: s.fingerprint, reason: s.reason ?? 'invalid' });
  }
  const unnamed = kept.size && !manifest.signers ? fprs.filter((f) => !old.signatures.has(f)) : [];
  if (unnamed.length) warnings.push(unnamedCoSignature(unnamed));
  return { manifest, manifestBytes: old.manifest!, kept, dropped };
}

export interface SignedPrefix {
  /** The `.boxsig/` files: the manifest, then signatures and keys by fingerprint. */
  files: PrefixFile[];
  /** Fingerprints of every signature the box will carry, sorted. */
  signers: string[];
}

/**
 * Signs the chosen manifest with every key and lists the `.boxsig/` files,
 * once the signed box is known to stay within the verifier's limits
 * (`bodyEntries`: the files and directories of the box).
 */
export async function signManifest(choice: ManifestChoice, signers: ManifestSigner[], now: Date, bodyEntries: number): Promise<SignedPrefix> {
  const sigs = new Map<string, Buffer>();
  const keys = new Map<string, Buffer>();
  for (const [f, k] of choice.kept) {
    sigs.set(f, k.sig);
    keys.set(f, k.key);
  }
  for (const s of signers) {
    sigs.set(s.fingerprint, Buffer.from(await s.sign(choice.manifestBytes, now), 'latin1'));
    keys.set(s.fingerprint, Buffer.from(s.publicKey, 'latin1'));
  }
  // a root entry ("./") may lead the original archive: counted, to stay on the safe side of the limit
  checkSignedLimits(bodyEntries + 1 + 1 + 2 * sigs.size + PREFIX_DIRS, sigs.size);
  const files: PrefixFile[] = [{ path: MANIFEST_PATH, data: choice.manifestBytes }];
  for (const f of [...sigs.keys()].sort()) files.push({ path: `.boxsig/signatures/${f}.asc`, data: sigs.get(f)! });
  for (const f of [...keys.keys()].sort()) files.push({ path: `.boxsig/keys/${f}.asc`, data: keys.get(f)! });
  return { files, signers: [...sigs.keys()].sort() };
}
