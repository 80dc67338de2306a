/**
 * `boxsig publish BOX --registry URL`: the registry's own client. It talks
 * the same Vagrant Cloud API v1 as `vagrant cloud publish` (so what it does
 * can be done with the stock tools too), uploads with a plain PUT whose
 * answer is the registry's verdict, and checks that the registry stored the
 * bytes it sent (the SHA-256 it computed while sending).
 */
import { boxFileSize } from '../box/open.js';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { BoxsigError, isRefusalCode, refuse, usage, type ErrorCode } from '../errors.js';
import { inspectBox } from '../box/verify.js';
import { signBox, type SignOptions } from '../box/sign.js';
import type { BoxIdentity } from '../manifest/manifest.js';
import { CHUNK_SIZE } from '../shared/limits.js';
import { architectureName, boxName, orgName, providerName, versionName, UNKNOWN_ARCHITECTURE } from './names.js';
import { verifyPublishProofs, type PublishedLogEntry, type RegistryContext } from '../vagrant/registry-log.js';
import { defaultTrust } from '../box/verify.js';

async function publishLogContext(base: string, opts: PublishOptions): Promise<RegistryContext> {
  return { origin: new URL(base).origin, http: {}, ...(await defaultTrust({})), now: new Date(), onInfo: opts.onInfo };
}

export interface PublishOptions {
  registry: string;
  token: string;
  /** Sign BOX in place first (as `boxsig sign` does). */
  sign?: SignOptions;
  /** For an unsigned box (a signed one names itself; these must then agree). */
  name?: string;
  version?: string;
  provider?: string;
  architecture?: string;
  release?: boolean;
  onInfo?: (line: string) => void;
  onProgress?: (sent: number, total: number) => void;
}

export interface PublishResult {
  ok: true;
  /** The publication's entry in the registry's transparency log (verified inclusion in a signed checkpoint of `size` entries). */
  log?: PublishedLogEntry;
  box: BoxIdentity;
  registry: string;
  sha256: string;
  size: number;
  signed: boolean;
  released: boolean;
  catalog: string;
  warnings: string[];
}

const ERROR_RE = /^([A-Z_]+): ([\s\S]*)$/;

/** The registry's `{"errors": ["CODE: message"]}` as a BoxsigError with that code. */
function registryError(status: number, text: string, what: string): BoxsigError {
  let first = '';
  try {
    const v = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(v.errors) && typeof v.errors[0] === 'string') first = v.errors[0];
  } catch {
    /* not our JSON */
  }
  const m = ERROR_RE.exec(first);
  const known =
    m && (isRefusalCode(m[1]) || ['USAGE', 'CONFIG', 'EXISTS', 'DENIED', 'NOT_FOUND', 'LIMIT', 'UNAVAILABLE', 'IO', 'INTERNAL', 'NETWORK'].includes(m[1]));
  if (m && known) return new BoxsigError(m[1] as ErrorCode, `${what}: ${m[2]}`, { status });
  return new BoxsigError('NETWORK', `${what}: HTTP ${status}${first ? `: ${first}` : ''}`, { status });
}

class Api {
  constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    what = `${method} ${path}`,
  ): Promise<{ status: number; json: T | null }> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (e) {
      throw new BoxsigError('NETWORK', `cannot reach the registry ${this.base}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
    }
    const text = await res.text();
    if (res.status === 404 && method === 'GET') return { status: 404, json: null };
    if (res.status !== 200 && res.status !== 201) throw registryError(res.status, text, what);
    return { status: res.status, json: text ? (JSON.parse(text) as T) : null };
  }
}

const enc = encodeURIComponent;

/** A concurrent publisher created it first: fine, it is there (returns the EXISTS error, in case it is not). */
async function alreadyThere(p: Promise<unknown>): Promise<BoxsigError | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (e instanceof BoxsigError && e.code === 'EXISTS' && e.details.status === 409) return e;
    throw e;
  }
}

/** Name, version, provider and architecture: from the signed manifest, else the options. */
async function identityOf(box: string, opts: PublishOptions): Promise<{ id: BoxIdentity; signed: boolean }> {
  const info = await inspectBox(box);
  const m = info.manifest?.box;
  const pick = (what: keyof BoxIdentity, flag: string | undefined): string | undefined => {
    const signed = m?.[what];
    if (signed !== undefined && flag !== undefined && flag !== signed) throw usage(`--${what} ${flag} differs from the signed ${what} ${signed}`);
    return signed ?? flag;
  };
  const name = pick('name', opts.name);
  const version = pick('version', opts.version);
  const provider = pick('provider', opts.provider);
  const architecture = pick('architecture', opts.architecture);
  if (!name || !version || !provider) throw usage('an unsigned box needs --name, --version and --provider (or sign it with --key)');
  return { id: { name, version, provider, ...(architecture ? { architecture } : {}) }, signed: info.signed };
}

// long: the publication protocol in order (create, upload, check what was received, release); each step is one call
export async function publishBox(box: string, opts: PublishOptions): Promise<PublishResult> {
  boxFileSize(box);
  if (!opts.token) throw usage('no registry token: set BOXSIG_REGISTRY_TOKEN');
  const base = opts.registry.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  if (!/^https?:\/\//.test(base)) throw usage(`--registry ${opts.registry} must be an http(s) URL`);
  if (opts.sign) {
    opts.onInfo?.(`signing ${box}`);
    await signBox(box, opts.sign);
  }
  const { id, signed } = await identityOf(box, opts);
  const slash = id.name.indexOf('/');
  if (slash < 0) throw usage(`box name ${id.name} has no organization: a registry box is ORG/NAME`);
  const org = orgName(id.name.slice(0, slash));
  const name = boxName(org, id.name.slice(slash + 1));
  versionName(id.version);
  providerName(id.provider);
  const arch = architectureName(id.architecture);
  const api = new Api(base, opts.token);

  await api.call('GET', '/authenticate', undefined, 'checking the token');
  const boxPath = `/box/${enc(org)}/${enc(name)}`;
  if ((await api.call('GET', boxPath)).status === 404) {
    opts.onInfo?.(`creating box ${org}/${name}`);
    await alreadyThere(api.call('POST', '/boxes', { box: { username: org, name } }, `creating box ${org}/${name}`));
  }
  const versionPath = `${boxPath}/version/${enc(id.version)}`;
  let existing = await api.call<{ status?: string }>('GET', versionPath);
  if (existing.status === 404) {
    opts.onInfo?.(`creating version ${id.version}`);
    const created = await alreadyThere(api.call('POST', `${boxPath}/versions`, { version: { version: id.version } }, `creating version ${id.version}`));
    existing = await api.call<{ status?: string }>('GET', versionPath);
    if (existing.status === 404 && created) throw created;
  }
  await api.call(
    'POST',
    `${versionPath}/providers`,
    { provider: { name: id.provider, ...(arch !== UNKNOWN_ARCHITECTURE ? { architecture: arch } : {}) } },
    `creating provider ${id.provider}`,
  );
  const providerPath = `${versionPath}/provider/${enc(id.provider)}/${enc(arch)}`;
  const upload = await api.call<{ upload_path: string }>('GET', `${providerPath}/upload`, undefined, 'asking for an upload URL');
  const uploadUrl = upload.json?.upload_path;
  if (!uploadUrl) throw new BoxsigError('NETWORK', 'the registry gave no upload URL');
  const sent = await put(uploadUrl, box, opts.onProgress);
  const warnings = sent.warnings;
  if (sent.received !== sent.localSha256) {
    await api.call('DELETE', providerPath).catch(() => undefined);
    throw refuse('CHECKSUM_MISMATCH', `the registry received ${sent.received}, but ${sent.localSha256} was sent: the upload was corrupted on the way`);
  }
  let released = existing.json?.status === 'active';
  let logProof: unknown = sent.log;
  if (opts.release && !released) {
    logProof = (await api.call<{ boxsig_log?: unknown }>('PUT', `${versionPath}/release`, undefined, `releasing ${id.version}`)).json?.boxsig_log;
    released = true;
  }
  // another publisher may have uploaded to the same unreleased version meanwhile: only one box wins
  const now = await api.call<{ checksum?: string }>('GET', providerPath, undefined, 'checking the published box');
  if (now.json?.checksum !== sent.sha256) {
    throw new BoxsigError(
      'EXISTS',
      `another upload to ${org}/${name} ${id.version} ${id.provider} replaced this one (it holds ${now.json?.checksum ?? 'nothing'})`,
    );
  }
  // issue 15: the answer's log entry and inclusion proof, checked against the registry's signed checkpoint
  const log =
    released && logProof !== undefined
      ? await verifyPublishProofs(await publishLogContext(base, opts), logProof, {
          name: `${org}/${name}`,
          version: id.version,
          provider: id.provider,
          sha256: sent.sha256,
        })
      : undefined;
  return {
    ok: true,
    ...(log ? { log } : {}),
    box: { ...id, name: `${org}/${name}` },
    registry: base,
    sha256: sent.sha256,
    size: sent.size,
    signed,
    released,
    catalog: `${base}/${enc(org)}/${enc(name)}`,
    warnings,
  };
}

/** PUT the file, hashing what is sent; the answer is the registry's verdict. */
async function put(url: string, file: string, onProgress?: (sent: number, total: number) => void) {
  const size = fs.statSync(file).size;
  const hash = createHash('sha256');
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      sent += chunk.length;
      onProgress?.(sent, size);
      cb(null, chunk);
    },
  });
  const body = fs.createReadStream(file, { highWaterMark: CHUNK_SIZE }).pipe(counter);
  const res = await sendBody(url, body, size);
  if (res.status !== 200) throw registryError(res.status, res.text, 'the registry refused the upload');
  const v = JSON.parse(res.text) as { sha256?: string; size?: number; uploaded?: { sha256?: string }; warnings?: string[]; boxsig_log?: unknown };
  // an escrow box is stored signed by the registry: `uploaded` is what it received
  const received = v.uploaded?.sha256 ?? v.sha256 ?? '';
  return { sha256: v.sha256 ?? '', received, size: v.size ?? 0, localSha256: hash.digest('hex'), warnings: v.warnings ?? [], log: v.boxsig_log };
}

const uploadFailed = (e: Error) => new BoxsigError('NETWORK', `the upload failed: ${e.message}`);

/**
 * PUT BODY (SIZE bytes) to URL and read the answer, which may come before
 * the body was sent: a registry refuses a box over its size limit (or a
 * token with too many uploads) at once and closes the connection after its
 * answer. The sending then stops, and the answer is what counts, not the
 * EPIPE or ECONNRESET of a write that was no longer wanted.
 */
function sendBody(url: string, body: Readable, size: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      reject(new BoxsigError('NETWORK', 'the registry gave an upload URL that is not a URL'));
      return;
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      reject(new BoxsigError('NETWORK', `the registry gave an upload URL that is not http(s): ${target.protocol}`));
      return;
    }
    const request = (target.protocol === 'https:' ? https : http).request(target, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    let answered = false;
    request.once('response', (res) => {
      answered = true;
      // an early answer: stop sending (a no-op when the body was sent in full)
      body.unpipe(request);
      body.destroy();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        request.destroy();
      });
      res.once('error', (e) => reject(uploadFailed(e)));
      res.once('aborted', () => reject(new BoxsigError('NETWORK', 'the upload failed: the registry closed the connection in the middle of its answer')));
    });
    request.on('error', (e) => {
      if (!answered) reject(uploadFailed(e));
    });
    body.once('error', (e) => {
      request.destroy();
      reject(e instanceof BoxsigError ? e : new BoxsigError('IO', `cannot read the box: ${e.message}`));
    });
    body.pipe(request);
  });
}
