/**
 * `boxsig verify --installed [NAME]`: re-check the boxes already in the
 * Vagrant home against their `.boxsig/` and today's trust store, so that a
 * revocation learnt today flags a box added last month. Every entry of the
 * boxes directory that is not a box the way Vagrant would list it (a link, a
 * file, a directory whose name is not a valid name, version or provider) is
 * reported as a refusal: never skipped, never followed. Both layouts are read:
 * a box in Vagrant 2.4's architecture directory must not state another
 * architecture (signed manifest, metadata.json).
 *
 * The trust store and the keyring are read once for the whole run, so the
 * cost is linear in the number of boxes, whatever the size of the store.
 */
import type * as openpgp from 'openpgp';
import { toBoxsigError } from '../errors.js';
import { defaultTrust, verifyDir } from '../box/verify.js';
import type { ConfigLayer } from '../policy/config.js';
import { TrustStore, type TrustState } from '../trust/store.js';
import { Keyring } from '../trust/keyring.js';
import { scanInstalled, vagrantHome, type InstalledBox } from './home.js';

export interface InstalledVerdict {
  name: string;
  version: string;
  provider: string;
  /** The architecture directory of a box in Vagrant 2.4's layout. */
  architecture?: string;
  directory: string;
  ok: boolean;
  signed?: boolean;
  trust?: string;
  signers?: string[];
  warnings?: string[];
  code?: string;
  message?: string;
  /** For an unexpected entry: its path relative to the boxes directory. */
  entry?: string;
}

/** A keyring that parses each key and reads the revocations once. */
class SnapshotKeyring extends Keyring {
  private readonly keys = new Map<string, Promise<openpgp.PublicKey | null>>();
  private revoked: ReturnType<Keyring['storedRevocations']> | null = null;

  override get(fpr: string): Promise<openpgp.PublicKey | null> {
    let k = this.keys.get(fpr);
    if (!k) {
      k = super.get(fpr);
      this.keys.set(fpr, k);
    }
    return k;
  }

  override storedRevocations(): ReturnType<Keyring['storedRevocations']> {
    this.revoked ??= super.storedRevocations();
    return this.revoked;
  }
}

/** The trust store as it was when the run started, read once (verification never writes it). */
class SnapshotStore extends TrustStore {
  private state: TrustState | null = null;

  constructor(home: string) {
    super(home);
    (this as { keyring: Keyring }).keyring = new SnapshotKeyring(this);
  }

  override read(): TrustState {
    this.state ??= super.read();
    return this.state;
  }
}

export interface VerifyInstalledOptions {
  /** The Vagrant home (default: $VAGRANT_HOME or ~/.vagrant.d). */
  home?: string;
  /** Only the boxes of this name. */
  name?: string;
  pins?: string[];
  /** Default: the user's trust store. */
  store?: TrustStore;
  /** Default: the user config and the project's boxsig.json. */
  layers?: ConfigLayer[];
  now?: Date;
}

export interface VerifyInstalledResult {
  ok: boolean;
  home: string;
  boxes: InstalledVerdict[];
}

export async function verifyInstalled(options: VerifyInstalledOptions = {}): Promise<VerifyInstalledResult> {
  const opts = { ...options, ...(await defaultTrust(options)) };
  const home = vagrantHome(opts.home);
  const scan = scanInstalled(home);
  const store = new SnapshotStore(opts.store.home);
  store.read(); // a damaged store is a configuration error before any box is judged
  const out: InstalledVerdict[] = [];
  for (const u of scan.unexpected) {
    if (opts.name && u.name !== opts.name) continue;
    out.push({
      name: u.name,
      version: '',
      provider: '',
      directory: `${home}/boxes/${u.entry}`,
      entry: u.entry,
      ok: false,
      code: 'UNSAFE_ENTRY',
      message: `boxes/${JSON.stringify(u.entry).slice(1, -1)} ${u.problem}`,
    });
  }
  const boxes = scan.boxes.filter((x) => !opts.name || x.name === opts.name);
  const verdicts = new Array<InstalledVerdict>(boxes.length);
  let next = 0;
  // a few boxes at a time: each one waits on the thread pool (file reads, signature checks) most of its time
  const worker = async () => {
    while (next < boxes.length) {
      const i = next++;
      verdicts[i] = await verifyOne(boxes[i], store, opts);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  out.push(...verdicts);
  return { ok: out.every((b) => b.ok), home, boxes: out };
}

/** Boxes verified at the same time by verify --installed. */
const CONCURRENCY = 4;

async function verifyOne(b: InstalledBox, store: TrustStore, opts: { pins?: string[]; layers: ConfigLayer[]; now?: Date }): Promise<InstalledVerdict> {
  const base = { name: b.name, version: b.version, provider: b.provider, ...(b.architecture ? { architecture: b.architecture } : {}), directory: b.directory };
  try {
    const r = await verifyDir(b.directory, {
      // Vagrant installs a box added straight from a file or URL as version "0": the signed
      // manifest then states the real version, so only name and provider are checked
      // a box in an architecture directory must not state another architecture
      expect: { name: b.name, version: b.version === '0' ? undefined : b.version, provider: b.provider, architecture: b.architecture },
      pins: opts.pins,
      store,
      layers: opts.layers,
      now: opts.now,
    });
    return {
      ...base,
      ok: true,
      signed: r.signed,
      trust: r.trust,
      signers: r.signers.filter((s) => s.trusted).map((s) => s.fingerprint),
      warnings: r.warnings,
    };
  } catch (e) {
    const be = toBoxsigError(e);
    return { ...base, ok: false, code: be.code, message: be.message };
  }
}
