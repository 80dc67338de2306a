/**
 * `boxsig sign`: one streaming pass that hashes every file of the box while
 * copying its (compressed) bytes, untouched, behind a reserved gap; the
 * `.boxsig/` entries are then written into that gap. A gzip box keeps its
 * original gzip members byte for byte: the `.boxsig/` entries live in their
 * own leading member. Signing a signed box replaces the old `.boxsig/`
 * entries; when nothing but the signers changes, the old manifest is kept so
 * that earlier signatures stay valid next to the new ones (co-signing).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BoxsigError, refuse, usage, ioError } from '../errors.js';
import { BLOCK } from '../archive/tar.js';
import { CHUNK_SIZE, LIMITS } from '../shared/limits.js';
import { buildGzipPrefix, buildPlainPrefix, type PrefixFile } from '../archive/writer.js';
import { inflateMember, isGzip, leadingMemberLength } from '../archive/gzip.js';
import { buildManifest, parseManifest, serializeManifest, MANIFEST_PATH, type Manifest, type ManifestFile, type BoxIdentity } from '../manifest/manifest.js';
import { parseDuration } from '../manifest/duration.js';
import { canonicalJson } from '../shared/json.js';
import { architectureProblem, architecturesAgree } from '../manifest/names.js';
import type { ManifestSigner } from '../keys/signer.js';
import { checkSigners } from '../keys/signers.js';
import { readMetadata } from './judge.js';
import { readBox, type BoxsigPrefix } from './reader.js';
import { boxFileSize, openBox } from './open.js';
import { fsyncDir, readRange, removeStaleSiblings, tempSibling } from '../shared/files.js';
import { removeOnInterrupt } from '../interrupt.js';

export interface SignOptions {
  signers: ManifestSigner[];
  name?: string;
  version?: string;
  provider?: string;
  /** The architecture to sign (default: what metadata.json states, else what the old manifest stated); metadata.json must agree. */
  architecture?: string;
  /** Duration ("90d") or date; the manifest expires then. */
  expires?: string;
  claims?: Record<string, string>;
  /** Output path; default: replace the input. */
  output?: string;
  /** Always write a fresh manifest (drop existing signatures). */
  fresh?: boolean;
  now?: Date;
  onProgress?: (bytes: number) => void;
}

export interface SignResult {
  output: string;
  box: BoxIdentity;
  manifest: Manifest;
  signers: string[];
  /** Signatures kept from the input box (co-signing). */
  kept: string[];
  dropped: Array<{ fingerprint: string; reason: string }>;
  compressed: boolean;
  files: ManifestFile[];
  bytes: number;
  warnings: string[];
}

function tempPath(target: string): string {
  return tempSibling(target, randomBytes(4).toString('hex'));
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

/** The reader's entry limit, met while reading the box to sign, is the signer's usage error, not a refusal. */
function tooManyEntries(e: unknown): unknown {
  if (e instanceof BoxsigError && e.code === 'MALFORMED' && /^more than \d+ entries in the archive$/.test(e.message)) {
    return usage(`the box holds more than ${LIMITS.maxEntries} entries (files and directories), more than boxsig verifies (docs/SECURITY.md, resource limits)`);
  }
  return e;
}

async function writeAll(fh: fs.promises.FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
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

// long: being split on branch split
export async function signBox(input: string, opts: SignOptions): Promise<SignResult> {
  if (opts.signers.length === 0) throw usage('give at least one --key (or --gpg-key)');
  const fprs = opts.signers.map((s) => s.fingerprint);
  if (new Set(fprs).size !== fprs.length) throw usage('the same key is given twice');
  const archProblem = opts.architecture !== undefined ? architectureProblem(opts.architecture) : null;
  if (archProblem) throw usage(`--architecture ${JSON.stringify(opts.architecture)} ${archProblem}`);
  const now = opts.now ?? new Date();
  const expiresIn = opts.expires !== undefined ? parseDuration(opts.expires, now) : undefined;
  const output = path.resolve(opts.output ?? input);
  boxFileSize(input);
  const inStat = fs.statSync(input);

  // Reserve a gap for the .boxsig/ entries in front of the copied bytes. If
  // they turn out larger, the tail is copied once more (slower, still correct).
  // A plain-tar gap is filled with a pax comment, which must stay under the
  // parser's extended-header limit.
  const keyBytes = opts.signers.reduce((n, s) => n + s.publicKey.length, 0);
  const wanted = Math.ceil((16 * 1024 + 2 * keyBytes + 4 * 1024 * opts.signers.length) / BLOCK) * BLOCK;
  const plainCap = Math.floor((LIMITS.maxMetaHeaderBytes - 4 * BLOCK) / BLOCK) * BLOCK;

  fs.mkdirSync(path.dirname(output), { recursive: true });
  removeStaleSiblings(output);
  const tmp = tempPath(output);
  const forgetTmp = removeOnInterrupt(tmp);
  // read back when the .boxsig/ entries outgrow the gap: opened for reading and writing
  const fh = await fs.promises.open(tmp, 'wx+', 0o644).catch((e) => {
    forgetTmp();
    throw ioError(`cannot write next to ${output}`, e);
  });
  let done = false;
  let bodyDirs = 0;
  let finalTmp = tmp;
  let forgetFinal = () => {};
  try {
    let compressed: boolean | null = null;
    let skip: number | null = null; // raw bytes of the input to leave out (old .boxsig/ entries)
    const queue: Array<{ chunk: Buffer; offset: number }> = [];
    let written = 0; // bytes of the tail written so far
    let reserve = wanted;
    const flush = async () => {
      while (queue.length) {
        const { chunk, offset } = queue.shift()!;
        const end = offset + chunk.length;
        if (end <= skip!) continue;
        const part = offset >= skip! ? chunk : chunk.subarray(skip! - offset);
        await writeAll(fh, part, reserve + written);
        written += part.length;
      }
    };
    let oldPrefix: BoxsigPrefix | null = null;
    const read = await readBox(
      openBox(input),
      {
        onPrefix: async (prefix) => {
          oldPrefix = prefix.present ? prefix : null;
          // plain tar: the old .boxsig/ entries end where the parser says
          if (!compressed) skip = prefix.present ? prefix.endOffset : 0;
          return null;
        },
        makeDir: async () => {
          bodyDirs++;
        },
      },
      {
        tap: {
          onProgress: opts.onProgress,
          onRaw: async (chunk, offset) => {
            if (compressed === null) {
              compressed = isGzip(chunk);
              if (!compressed) reserve = Math.min(wanted, plainCap);
              // gzip: boxsig's own leading member announces its length in its header
              if (compressed) skip = leadingMemberLength(chunk) ?? 0;
            }
            queue.push({ chunk, offset });
            if (skip !== null) await flush();
          },
        },
      },
    ).catch((e) => {
      throw tooManyEntries(e);
    });
    // Check that what was left out is exactly the old .boxsig/ entries.
    const old = oldPrefix as BoxsigPrefix | null;
    if (read.compressed) {
      if (read.leadingMember !== null) {
        if (read.leadingMember > 4 * LIMITS.maxPrefixBytes) throw refuse('MALFORMED', 'the leading gzip member claims an impossible length');
        const member = await readRange(input, 0, read.leadingMember, 'the box is shorter than its leading gzip member says');
        const inflated = inflateMember(member, 2 * LIMITS.maxPrefixBytes);
        if (!old || inflated.length !== old.endOffset) {
          throw refuse('MALFORMED', "the leading gzip member is marked as boxsig's but does not hold exactly the .boxsig/ entries");
        }
      } else if (old) {
        throw new BoxsigError(
          'USAGE',
          'this box carries .boxsig/ entries inside its compressed data (it was repacked by hand); boxsig cannot remove them without recompressing',
          {},
          'rebuild the box without .boxsig/ (tar --exclude=.boxsig) or use boxsig repackage',
        );
      }
    }
    if (skip === null) skip = 0;
    await flush();
    const tailLength = read.rawBytes - skip;
    if (written !== tailLength) throw new BoxsigError('INTERNAL', `internal error: copied ${written} of ${tailLength} bytes`);

    // metadata.json: the provider
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

    // Keep the old manifest (and its valid signatures) when only the signers change.
    const fresh = buildManifest({
      box,
      created: now,
      expires: expiresIn !== undefined ? new Date(now.getTime() + expiresIn * 1000) : undefined,
      claims: opts.claims ?? oldManifest?.claims,
      files: read.files,
      // several keys at once: each signature commits to the others (a co-signature can then prove a rotation)
      signers: fprs.length > 1 ? fprs : undefined,
    });
    let manifest = fresh;
    let manifestBytes = serializeManifest(fresh);
    const kept = new Map<string, { sig: Buffer; key: Buffer }>();
    const dropped: SignResult['dropped'] = [];
    const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
    const reusable =
      !opts.fresh &&
      oldManifest !== null &&
      opts.expires === undefined &&
      (opts.claims === undefined || same(opts.claims, oldManifest.claims)) &&
      same(oldManifest.box, box) &&
      same(oldManifest.files, fresh.files) &&
      keepsSigners(oldManifest, fprs);
    if (reusable && old && oldManifest) {
      manifest = oldManifest;
      manifestBytes = old.manifest!;
      const { signers } = await checkSigners(old, null, { revocation: 'enforce', expiry: 'enforce' }, now);
      for (const s of signers) {
        if (fprs.includes(s.fingerprint)) continue; // re-signed below
        if (s.valid && old.keys.has(s.fingerprint)) kept.set(s.fingerprint, { sig: old.signatures.get(s.fingerprint)!, key: old.keys.get(s.fingerprint)! });
        else dropped.push({ fingerprint: s.fingerprint, reason: s.reason ?? 'invalid' });
      }
      const unnamed = kept.size && !manifest.signers ? fprs.filter((f) => !old.signatures.has(f)) : [];
      if (unnamed.length) warnings.push(unnamedCoSignature(unnamed));
    } else if (old?.signatures.size) {
      for (const f of old.signatures.keys()) {
        if (!fprs.includes(f)) dropped.push({ fingerprint: f, reason: 'the manifest changed, so its signature no longer applies' });
      }
    }

    const files: PrefixFile[] = [{ path: MANIFEST_PATH, data: manifestBytes }];
    const sigs = new Map<string, Buffer>();
    const keys = new Map<string, Buffer>();
    for (const [f, k] of kept) {
      sigs.set(f, k.sig);
      keys.set(f, k.key);
    }
    for (const s of opts.signers) {
      sigs.set(s.fingerprint, Buffer.from(await s.sign(manifestBytes, now), 'latin1'));
      keys.set(s.fingerprint, Buffer.from(s.publicKey, 'latin1'));
    }
    // a root entry ("./") may lead the original archive: counted, to stay on the safe side of the limit
    checkSignedLimits(read.files.length + bodyDirs + 1 + 1 + 2 * sigs.size + PREFIX_DIRS, sigs.size);
    for (const f of [...sigs.keys()].sort()) files.push({ path: `.boxsig/signatures/${f}.asc`, data: sigs.get(f)! });
    for (const f of [...keys.keys()].sort()) files.push({ path: `.boxsig/keys/${f}.asc`, data: keys.get(f)! });
    const mtime = new Date(Date.parse(manifest.created));

    let prefixBytes = read.compressed ? buildGzipPrefix(files, mtime, reserve) : buildPlainPrefix(files, mtime, reserve);
    if (prefixBytes) {
      await writeAll(fh, prefixBytes, 0);
      await fh.sync();
      await fh.close();
    } else {
      // did not fit in the gap: write the prefix unpadded and copy the tail once more
      prefixBytes = read.compressed ? buildGzipPrefix(files, mtime)! : buildPlainPrefix(files, mtime)!;
      finalTmp = tempPath(output);
      forgetFinal = removeOnInterrupt(finalTmp);
      const out = await fs.promises.open(finalTmp, 'wx', 0o644);
      try {
        await writeAll(out, prefixBytes, 0);
        const buf = Buffer.allocUnsafe(CHUNK_SIZE);
        let pos = 0;
        while (pos < tailLength) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK_SIZE, tailLength - pos), reserve + pos);
          if (bytesRead === 0) break;
          await writeAll(out, buf.subarray(0, bytesRead), prefixBytes.length + pos);
          pos += bytesRead;
        }
        if (pos !== tailLength) throw new BoxsigError('INTERNAL', `internal error: copied ${pos} of ${tailLength} bytes`);
        await out.sync();
      } finally {
        await out.close();
        await fh.close();
        fs.rmSync(tmp, { force: true });
      }
    }
    fs.chmodSync(finalTmp, inStat.mode & 0o777);
    fs.renameSync(finalTmp, output);
    fsyncDir(output);
    done = true;
    forgetFinal();
    return {
      output,
      box: manifest.box,
      manifest,
      signers: [...sigs.keys()].sort(),
      kept: [...kept.keys()],
      dropped,
      compressed: read.compressed,
      files: manifest.files,
      bytes: prefixBytes.length + tailLength,
      warnings,
    };
  } finally {
    if (!done) {
      await fh.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      fs.rmSync(finalTmp, { force: true });
    }
    forgetTmp();
    forgetFinal();
  }
}
