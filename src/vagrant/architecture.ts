/**
 * Architectures as Vagrant 2.4 names them, and which install layout the
 * user's Vagrant reads.
 *
 * The host's architecture is Vagrant's `Util::Platform.architecture`
 * (lib/vagrant/util/platform.rb): `VAGRANT_HOST_ARCHITECTURE` when set, else
 * the CPU mapped to `amd64`, `i386`, `arm64`, else the CPU's own name.
 *
 * Vagrant 2.4 unpacks a box that has an architecture into
 * `boxes/NAME/VERSION/ARCH/PROVIDER/`; Vagrant 2.3 lists only
 * `boxes/NAME/VERSION/PROVIDER/`, which Vagrant 2.4 still lists and finds (as
 * a box from before architecture support). The layout is, in this order:
 * `--layout`, `BOXSIG_VAGRANT_LAYOUT`, the version of the `vagrant` command on
 * the PATH (remembered per executable: vagrant-version.ts), an architecture directory already in the Vagrant home (only 2.4
 * makes them), else the legacy layout, which every Vagrant lists.
 */
import os from 'node:os';
import { BoxsigError, usage } from '../errors.js';
import { architectureProblem } from '../manifest/names.js';
import { listInstalled, type BoxPlace } from './home.js';
import { vagrantVersion } from './vagrant-version.js';

export type Layout = '2.3' | '2.4';
const LAYOUTS: readonly Layout[] = ['2.3', '2.4'];

/** Node's `process.arch` as Vagrant (through Ruby's `target_cpu`) names it. */
const VAGRANT_NAMES = new Map<string, string>([
  ['x64', 'amd64'],
  ['ia32', 'i386'],
  ['arm64', 'arm64'],
  ['arm', 'arm'],
  ['ppc', 'powerpc'],
  ['s390', 's390'],
  ['s390x', 's390x'],
  ['riscv64', 'riscv64'],
  ['loong64', 'loongarch64'],
  ['mips', 'mips'],
  ['mipsel', 'mipsel'],
]);

/** The host's architecture as Vagrant 2.4 names it. */
export function hostArchitecture(env: NodeJS.ProcessEnv = process.env, arch: string = process.arch, endianness = os.endianness()): string {
  const forced = env.VAGRANT_HOST_ARCHITECTURE;
  if (forced) {
    const p = architectureProblem(forced);
    if (p) throw new BoxsigError('CONFIG', `VAGRANT_HOST_ARCHITECTURE ${JSON.stringify(forced)} ${p}`);
    return forced;
  }
  if (arch === 'ppc64') return endianness === 'LE' ? 'powerpc64le' : 'powerpc64';
  const name = VAGRANT_NAMES.get(arch) ?? arch;
  if (architectureProblem(name))
    throw new BoxsigError('CONFIG', `this host's architecture ${JSON.stringify(arch)} has no Vagrant name; set VAGRANT_HOST_ARCHITECTURE`);
  return name;
}

/** `--architecture`: a valid name, or `auto` (the host's, chosen as Vagrant 2.4 does). Undefined means auto. */
export function explicitArchitecture(value: string | undefined, what = '--architecture'): string | undefined {
  if (value === undefined || value === 'auto') return undefined;
  const p = architectureProblem(value);
  if (p) throw usage(`${what} ${JSON.stringify(value)} ${p}, or "auto"`);
  return value;
}

/** `--layout` or `BOXSIG_VAGRANT_LAYOUT`: `2.3`, `2.4` or `auto` (undefined). */
export function parseLayout(value: string | undefined, what: string): Layout | undefined {
  if (value === undefined || value === '' || value === 'auto') return undefined;
  if ((LAYOUTS as readonly string[]).includes(value)) return value as Layout;
  const make = what.startsWith('--') ? usage : (m: string) => new BoxsigError('CONFIG', m);
  throw make(`${what} ${JSON.stringify(value)} must be 2.3 (boxes/NAME/VERSION/PROVIDER), 2.4 (boxes/NAME/VERSION/ARCH/PROVIDER) or auto`);
}

export interface LayoutChoice {
  layout: Layout;
  /** How it was decided, for people. */
  reason: string;
}

/** Vagrant 2.4 and later read the architecture directories. */
export function layoutOfVersion(version: string): Layout {
  const [major, minor] = version.split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 4) ? '2.4' : '2.3';
}

/**
 * Where the user's Vagrant looks for boxes (see the comment at the top).
 * Runs `vagrant --version` only when neither the option nor the environment
 * decides.
 */
async function resolveLayout(home: string, opts: { layout?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LayoutChoice> {
  const env = opts.env ?? process.env;
  const given = parseLayout(opts.layout, '--layout');
  if (given) return { layout: given, reason: `--layout ${given}` };
  const fromEnv = parseLayout(env.BOXSIG_VAGRANT_LAYOUT, 'BOXSIG_VAGRANT_LAYOUT');
  if (fromEnv) return { layout: fromEnv, reason: `BOXSIG_VAGRANT_LAYOUT=${fromEnv}` };
  const version = await vagrantVersion(env);
  if (version) return { layout: layoutOfVersion(version), reason: `vagrant --version says ${version}` };
  if (listInstalled(home).some((b) => b.architecture !== undefined)) {
    return { layout: '2.4', reason: 'no vagrant command; the Vagrant home already has architecture directories (Vagrant 2.4)' };
  }
  return { layout: '2.3', reason: 'no vagrant command and no architecture directory in the Vagrant home: the layout every Vagrant lists' };
}

/** Refuse a bad `--layout` or `BOXSIG_VAGRANT_LAYOUT` before anything is done. */
export function checkLayoutSettings(layout: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  parseLayout(layout, '--layout');
  parseLayout(env.BOXSIG_VAGRANT_LAYOUT, 'BOXSIG_VAGRANT_LAYOUT');
}

/**
 * Where an add puts a box: with an architecture directory (what Vagrant 2.4
 * would use for it; undefined: none in any layout), the layout decides,
 * once, in the background (`vagrant --version` may take a moment) until a
 * place is first needed.
 */
export class Placement {
  private readonly decided: Promise<LayoutChoice | null>;

  constructor(
    home: string,
    private readonly directoryArchitecture: string | undefined,
    layout?: string,
  ) {
    this.decided = directoryArchitecture !== undefined ? resolveLayout(home, { layout }) : Promise.resolve(null);
    this.decided.catch(() => {}); // awaited by place() and layout(); a failure before then is not an unhandled rejection
  }

  /** The layout decided, or null when the box goes where every Vagrant looks. */
  layout(): Promise<LayoutChoice | null> {
    return this.decided;
  }

  async place(box: { name: string; version: string; provider: string }): Promise<BoxPlace> {
    const decided = await this.decided;
    const architecture = decided?.layout === '2.4' ? this.directoryArchitecture : undefined;
    return { name: box.name, version: box.version, provider: box.provider, ...(architecture !== undefined ? { architecture } : {}) };
  }
}
