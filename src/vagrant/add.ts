/**
 * `boxsig add`: a verified `vagrant box add`. Download, checksum, gunzip, tar
 * parse, per-file hashing, extraction into a staging directory on the same
 * filesystem as the boxes, signature and trust checks — one streaming pass.
 * The box is moved into Vagrant's layout only when every check passed; a
 * refused or failed add leaves nothing behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { BoxsigError, refuse, usage, ioError } from '../errors.js';
import { LIMITS } from '../shared/limits.js';
import { readBox, type FileSink } from '../box/reader.js';
import { checkMetadataAgrees, judge, readMetadata, type Verdict } from '../box/judge.js';
import { defaultTrust, overridesFrom, type VerifyOptions } from '../box/verify.js';
import { boxFileSize, openBox } from '../box/open.js';
import { commitTrust } from '../box/commit.js';
import type { BoxIdentity } from '../manifest/manifest.js';
import { nameProblem, providerProblem, statedArchitecture, versionProblem } from '../manifest/names.js';
import { deferInterrupts, onInterrupt } from '../interrupt.js';
import { CHECKSUM_TYPES, chooseFromCatalog, parseCatalog, type CatalogChoice } from './catalog.js';
import { DEFAULT_SERVER, httpRequest, readLimited, withServerToken, type HttpOptions } from './http.js';
import { scrubUrl } from '../shared/urls.js';
import { boxLocation, checkLocation, describeBox, vagrantHome, type BoxPlace } from './home.js';
import { checkLayoutSettings, explicitArchitecture, hostArchitecture, Placement, type LayoutChoice } from './architecture.js';
import { checkArchitecture } from '../box/architecture.js';
import { installBox, makeStagingDir, recoverVagrantHome, settle, stagingName, stagingRoot } from './staging.js';
import type { SignerReport } from '../box/judge.js';
import { checkSignedCatalog, refuseUnlessPlainServer } from './registry-log.js';
import { fetchRegistryKeys, keepServedRevocations, servedCopies, servedView } from './registry-keys.js';
import { makeDirs } from '../shared/files.js';

export interface AddOptions extends VerifyOptions, HttpOptions {
  /** --name: the box name (required for unsigned boxes added from a file or URL). */
  name?: string;
  /** --box-version: an exact version or constraints (">= 1.2, < 2"). */
  boxVersion?: string;
  provider?: string;
  /** --architecture: the catalog entry's architecture to choose (default: the host's, as Vagrant 2.4's `auto`). */
  architecture?: string;
  /** --layout: `2.3`, `2.4` or `auto` (see src/vagrant/architecture.ts). */
  layout?: string;
  checksum?: string;
  checksumType?: string;
  vagrantHome?: string;
  force?: boolean;
  allowDowngrade?: boolean;
  /** Called with (phase, bytes, total) while downloading/extracting. */
  onProgress?: (bytes: number) => void;
  /** Called once the size of the download is known. */
  onStart?: (info: { url: string; size: number | undefined; catalog: boolean }) => void;
  /** Informational lines (catalog resolution, first use...). */
  onInfo?: (line: string) => void;
}

export interface AddResult {
  ok: true;
  box: BoxIdentity;
  /** The architecture the box was installed for: --architecture, or the host's. */
  architecture: string;
  /** The layout decided for an architecture directory; null when the box goes where every Vagrant looks (no architecture directory). */
  layout: LayoutChoice | null;
  directory: string;
  source: string;
  metadataUrl: string | null;
  signed: boolean;
  signers: SignerReport[];
  trust: string;
  recorded: string[];
  replaced: boolean;
  warnings: string[];
  checksum: string | null;
  bytes: number;
  /** Every configuration source that applied. */
  config: string[];
  /** From a boxsig registry: the box's entry in its transparency log, and the signed catalog's serial. */
  log?: { registry: string; index: number; size: number; serial: number; firstUse: boolean };
}

interface Source {
  kind: 'file' | 'http';
  location: string;
}

function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s);
}

function toSource(loc: string): Source {
  if (/^https?:\/\//i.test(loc)) return { kind: 'http', location: loc };
  if (/^file:\/\//i.test(loc)) {
    return { kind: 'file', location: new URL(loc).pathname ? decodeURIComponent(new URL(loc).pathname) : loc };
  }
  if (isUrl(loc)) throw usage(`unsupported URL scheme in ${scrubUrl(loc)} (boxsig reads files, file://, http:// and https://)`);
  return { kind: 'file', location: path.resolve(loc) };
}

async function openSource(
  src: Source,
  http: HttpOptions,
  accept?: string,
): Promise<{ stream: Readable; size: number | undefined; contentType: string; url: string }> {
  if (src.kind === 'file') {
    const size = boxFileSize(src.location);
    return { stream: openBox(src.location), size, contentType: '', url: pathToFileURL(src.location).toString() };
  }
  const r = await httpRequest(src.location, { ...http, accept });
  return { stream: r.body, size: r.size, contentType: r.contentType, url: r.url };
}

/** Is SOURCE a catalog? Files: JSON content. URLs: HEAD says application/json (as Vagrant decides). */
async function isCatalog(src: Source, http: HttpOptions): Promise<boolean> {
  if (src.kind === 'file') {
    boxFileSize(src.location); // a directory or a missing file: the same answer as every command
    let fd: number;
    try {
      fd = fs.openSync(src.location, 'r');
    } catch (e) {
      throw ioError(`cannot open ${src.location}`, e);
    }
    try {
      const buf = Buffer.alloc(64);
      const n = fs.readSync(fd, buf, 0, 64, 0);
      const text = buf.subarray(0, n).toString('latin1').trimStart();
      return text.startsWith('{');
    } finally {
      fs.closeSync(fd);
    }
  }
  try {
    const r = await httpRequest(src.location, { ...http, method: 'HEAD', accept: 'application/json' });
    r.body.destroy();
    return /application\/json/i.test(r.contentType);
  } catch (e) {
    // some servers (signed S3 URLs, for one) refuse HEAD: then it is not a catalog, and the GET that follows reports real errors
    if (e instanceof BoxsigError && typeof e.details.status === 'number') return false;
    throw e;
  }
}

function withHint(e: unknown, hint: string): unknown {
  return e instanceof BoxsigError && !e.hint ? new BoxsigError(e.code, e.message, e.details, hint) : e;
}

// long: the add pipeline (source, catalog choice, open, judge, install); to be split into named steps as readBox and signBox are
export async function addBox(sourceArg: string, opts: AddOptions = {}): Promise<AddResult> {
  const cwd = opts.cwd ?? process.cwd();
  const http: HttpOptions = {
    insecure: opts.insecure,
    caCert: opts.caCert,
    caPath: opts.caPath,
    clientCert: opts.clientCert,
    hostHeaders: withServerToken(opts.hostHeaders),
    timeout: opts.timeout,
  };
  if (opts.checksum && !opts.checksumType) opts.checksumType = opts.checksum.length === 128 ? 'sha512' : 'sha256';
  if (opts.checksumType && !CHECKSUM_TYPES.includes(opts.checksumType)) throw usage(`--checksum-type must be one of ${CHECKSUM_TYPES.join(', ')}`);
  if (opts.name && nameProblem(opts.name)) throw usage(`--name ${JSON.stringify(opts.name)} ${nameProblem(opts.name)}`);
  if (opts.provider && providerProblem(opts.provider)) throw usage(`--provider ${JSON.stringify(opts.provider)} ${providerProblem(opts.provider)}`);
  const explicitArch = explicitArchitecture(opts.architecture);
  checkLayoutSettings(opts.layout);
  // what the box is installed for: Vagrant 2.4's `auto` is the host's architecture
  const installedFor = explicitArch ?? hostArchitecture();

  // 1. what is SOURCE?
  let src: Source;
  // `boxsig add org/name` installs only a box of that name, whatever the server says
  let askedName: string | undefined = opts.name;
  // ORG/NAME from a server: a boxsig registry also serves the keys of the box's chain
  let registryServer: string | null = null;
  if (isUrl(sourceArg) || fs.existsSync(sourceArg)) src = toSource(sourceArg);
  else if (/^[^/\s]+\/[^/\s]+$/.test(sourceArg)) {
    const p = nameProblem(sourceArg);
    if (p) throw usage(`box name ${JSON.stringify(sourceArg)} ${p}`);
    if (opts.name !== undefined && opts.name !== sourceArg) throw usage(`--name ${opts.name} contradicts the box ${sourceArg} asked for`);
    askedName = sourceArg;
    const server = (process.env.VAGRANT_SERVER_URL ?? DEFAULT_SERVER).replace(/\/+$/, '');
    src = { kind: 'http', location: `${server}/${sourceArg}` };
    registryServer = server;
  } else {
    // not a URL, not org/name: a file that is not there, answered as every command answers it
    try {
      boxFileSize(sourceArg);
    } catch (e) {
      throw withHint(e, 'SOURCE is a box file, an http(s):// or file:// URL, a catalog, or an org/name box');
    }
    src = toSource(sourceArg);
  }

  let choice: CatalogChoice | null = null;
  let metadataUrl: string | null = null;
  let trust: Awaited<ReturnType<typeof defaultTrust>> | null = null;
  const trusted = async () => (trust ??= await defaultTrust(opts));
  let logged: AddResult['log'];
  if (await isCatalog(src, http)) {
    const catalogUrl = src.location;
    const { stream, url } = await openSource(src, http, 'application/json');
    const bytes = await readLimited(stream, LIMITS.maxCatalogBytes, `catalog ${sourceArg}`);
    const catalog = parseCatalog(bytes, scrubUrl(url));
    // a boxsig registry's catalog: its signed statement, and the log (issue 15)
    const signed =
      src.kind === 'http'
        ? await checkSignedCatalog(catalogUrl, bytes, catalog.name, { http, ...(await trusted()), now: opts.now ?? new Date(), onInfo: opts.onInfo })
        : null;
    choice = chooseFromCatalog(catalog, {
      constraint: opts.boxVersion,
      provider: opts.provider,
      architecture: explicitArch,
      host: installedFor,
      name: askedName,
      cwd,
      source: scrubUrl(sourceArg),
    });
    if (signed) {
      const { index } = await signed.verifyChoice({ ...choice, ...(choice.checksum ? { checksum: choice.checksum } : {}) });
      logged = { registry: new URL(catalogUrl).origin, index, size: signed.checkpoint.size, serial: signed.statement.serial, firstUse: signed.firstUse };
    }
    metadataUrl = src.kind === 'file' ? pathToFileURL(src.location).toString() : scrubUrl(url);
    opts.onInfo?.(`catalog ${scrubUrl(sourceArg)}: ${describeBox({ ...choice, architecture: choice.architecture })} from ${scrubUrl(choice.url)}`);
    src = toSource(choice.url);
  }
  // ORG/NAME answered with something other than a catalog: a known boxsig registry must not (checked
  // once the answer is a success: a private or missing box is the server's 401/404, not a stand-in)
  const plainAnswer = !choice && src.kind === 'http' && askedName === sourceArg ? src.location : null;
  const checksum = opts.checksum ?? choice?.checksum;
  const checksumType = opts.checksum ? opts.checksumType : choice?.checksumType;
  if (checksum && !/^[0-9a-fA-F]+$/.test(checksum)) throw usage('--checksum must be hexadecimal');

  // exact version asked for a direct add: the signed manifest must say so
  let exactVersion: string | undefined = choice?.version;
  if (!choice && opts.boxVersion) {
    if (versionProblem(opts.boxVersion)) throw usage('--box-version for a direct box (not a catalog) must be an exact version');
    exactVersion = opts.boxVersion;
  }
  const expect = { name: choice?.name ?? askedName, version: exactVersion, provider: choice?.provider ?? opts.provider, architecture: installedFor };

  // 2. the Vagrant home (after the recovery step), where Vagrant looks for the box, and the staging directory
  const home = vagrantHome(opts.vagrantHome);
  recoverVagrantHome(home);
  // Vagrant 2.4 installs a catalog entry under its architecture, a direct add under the one it is added for
  const placement = new Placement(home, choice ? choice.directoryArchitecture : installedFor, opts.layout);
  if (expect.name && expect.version && expect.provider) refuseInstalled(home, await placement.place(expect as BoxIdentity), opts.force);
  const staging = stagingName(stagingRoot(home));
  const boxRoot = path.join(staging, 'box');
  // registered before the directory exists: an interrupt between its two mkdirs removes it too
  const forget = onInterrupt(() => settle(staging, home));
  try {
    makeStagingDir(staging);
  } catch (e) {
    forget();
    throw e;
  }

  const { store, layers } = await trusted();
  const now = opts.now ?? new Date();
  const served = registryServer && askedName ? await fetchRegistryKeys(registryServer, askedName, http) : null;
  const view = served ? servedView(store, served.source) : store;
  try {
    const opened = await openSource(src, http);
    if (plainAnswer) refuseUnlessPlainServer(plainAnswer, sourceArg, { http, ...(await trusted()), now });
    opts.onStart?.({ url: opened.url, size: opened.size, catalog: Boolean(choice) });
    let verdict: Verdict | null = null;
    const openFile = async (rel: string, mode: number): Promise<FileSink> => {
      const abs = path.join(boxRoot, rel);
      if (!abs.startsWith(boxRoot + path.sep)) throw refuse('UNSAFE_ENTRY', `${rel} escapes the box directory`);
      makeDirs(path.dirname(abs));
      return openSink(abs, rel, mode);
    };
    const read = await readBox(
      opened.stream,
      {
        onPrefix: async (prefix) => {
          verdict = await judge(prefix, expect, {
            store: view,
            layers,
            overrides: overridesFrom(opts),
            now,
            mode: 'add',
            allowDowngrade: opts.allowDowngrade,
          });
          if (verdict.box) refuseInstalled(home, await placement.place(verdict.box), opts.force);
          return verdict.expectation;
        },
        openFile,
        makeDir: async (rel) => {
          const abs = path.join(boxRoot, rel);
          if (!abs.startsWith(boxRoot + path.sep) && abs !== boxRoot) throw refuse('UNSAFE_ENTRY', `${rel} escapes the box directory`);
          makeDirs(abs);
        },
      },
      {
        tap: { checksumAlgorithm: checksum ? checksumType : undefined, onProgress: opts.onProgress },
        expectedChecksum: checksum,
        manifestEnforced: true,
      },
    );
    const v = verdict as Verdict | null;
    if (!v) throw new BoxsigError('INTERNAL', 'internal error: the box was never judged');
    if (checksum && read.checksum !== checksum.toLowerCase()) {
      throw refuse('CHECKSUM_MISMATCH', `checksum mismatch: expected ${checksumType} ${checksum.toLowerCase()}, got ${read.checksum}`, {
        expected: checksum.toLowerCase(),
        actual: read.checksum,
      });
    }
    if (!read.files.some((f) => f.path === 'metadata.json')) {
      throw refuse('MALFORMED', 'the box has no metadata.json, which Vagrant requires');
    }
    checkMetadataAgrees(v, read.metadata);
    // a warning when an architecture was asserted (--architecture, the catalog's entry) and nothing signed states one
    const asserted = explicitArch !== undefined || statedArchitecture(choice?.architecture) !== undefined;
    const archWarning = checkArchitecture(v, read.metadata, installedFor, asserted);

    // 3. the identity it is installed under
    let box: BoxIdentity;
    if (v.box) box = v.box;
    else {
      const md = readMetadata(read.metadata);
      const provider = expect.provider ?? md?.provider;
      if (!provider) throw refuse('MALFORMED', 'metadata.json names no provider; give --provider');
      if (expect.provider && md?.provider && md.provider !== expect.provider) {
        throw refuse('WRONG_BOX', `metadata.json says provider ${md.provider}, not ${expect.provider}`);
      }
      box = { name: expect.name!, version: expect.version ?? '0', provider };
    }
    const loc = boxLocation(home, await placement.place(box));
    let replaced = false;

    const learn = served
      ? await servedCopies(
          served.source,
          v.checked.map((s) => s.fingerprint),
        )
      : [];
    // 4. record trust and move the box into place, under the trust-store lock; an interrupt waits for both
    const c = await deferInterrupts(() =>
      commitTrust({
        store,
        keyring: view.keyring,
        learn,
        verdict: v,
        identity: { name: box.name, version: box.version },
        source: metadataUrl ?? scrubUrl(opened.url),
        now,
        allowDowngrade: opts.allowDowngrade,
        install: async () => {
          replaced = installBox(staging, home, loc, { force: opts.force ?? false, metadataUrl });
        },
      }),
    );
    const recorded = c.recorded.map((e) => `${e.event}: ${(e.keys ?? []).join(', ')}`);
    const warnings = [...new Set([...v.warnings, ...(c.decision?.warnings ?? []), ...(archWarning ? [archWarning] : [])])];
    return {
      ok: true,
      box,
      architecture: installedFor,
      layout: await placement.layout(),
      directory: loc.directory,
      source: scrubUrl(opened.url),
      metadataUrl,
      signed: v.signed,
      signers: v.signers,
      trust: c.decision?.summary ?? 'unsigned (allowed by policy)',
      recorded,
      replaced,
      warnings,
      checksum: read.checksum,
      bytes: read.rawBytes,
      config: v.policy?.sources ?? [],
      ...(logged ? { log: logged } : {}),
    };
  } catch (e) {
    // refused with the registry's keys (a key revoked after the release): its revocations of keys the keyring holds stay
    if (served && e instanceof BoxsigError && e.refused) {
      const orgKeys = layers.flatMap((l) => [...l.doc.orgs.values()].flat());
      await keepServedRevocations(store, served.source, orgKeys).catch(() => undefined);
    }
    throw e;
  } finally {
    forget();
    settleQuietly(staging, home);
  }
}

/** Settle the staging directory; if even that fails, a later command's recovery step removes it. */
function settleQuietly(staging: string, home: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      settle(staging, home);
      return;
    } catch {
      // once more, then leave it to the recovery step
    }
  }
}

/**
 * A file written with positional writes, several in flight on the thread
 * pool, so that writing overlaps inflating and hashing. Memory is bounded by
 * the number of chunks in flight.
 */
async function openSink(abs: string, rel: string, mode: number): Promise<FileSink> {
  const fh = await fs.promises.open(abs, 'wx', mode).catch((e) => {
    throw ioError(`cannot create ${rel}`, e);
  });
  const inflight: Promise<void>[] = [];
  let position = 0;
  let failure: unknown = null;
  const MAX_IN_FLIGHT = 8;
  const writeAt = async (chunk: Buffer, at: number) => {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, at + off);
      off += bytesWritten;
    }
  };
  return {
    write(chunk: Buffer) {
      if (failure) throw ioError(`cannot write ${rel}`, failure);
      inflight.push(
        writeAt(chunk, position).catch((e) => {
          failure = e;
        }),
      );
      position += chunk.length;
      if (inflight.length >= MAX_IN_FLIGHT) return inflight.shift();
    },
    async close() {
      await Promise.all(inflight);
      inflight.length = 0;
      await fh.close();
      if (failure) throw ioError(`cannot write ${rel}`, failure);
    },
  };
}

function existsError(box: BoxPlace, target: string): BoxsigError {
  return new BoxsigError(
    'EXISTS',
    `box ${describeBox(box)} is already installed at ${target}`,
    { directory: target, name: box.name, version: box.version, provider: box.provider, ...(box.architecture ? { architecture: box.architecture } : {}) },
    'give --force to replace it once the new box has verified',
  );
}

/** The box's location is usable, and (without --force) not taken. Every identity passes boxLocation first. */
function refuseInstalled(home: string, box: BoxPlace, force?: boolean): void {
  const loc = boxLocation(home, box);
  checkLocation(loc);
  if (!force && fs.existsSync(loc.directory)) throw existsError(box, loc.directory);
}
