/**
 * `boxsig verify --installed [NAME]`: re-check the boxes already in the
 * Vagrant home against their `.boxsig/` and today's trust store, so that a
 * revocation learnt today flags a box added last month.
 */
import { toBoxsigError } from '../errors.js';
import { verifyDir } from '../box/verify.js';
import type { ConfigLayer } from '../policy/config.js';
import type { TrustStore } from '../trust/store.js';
import { listInstalled, vagrantHome } from './home.js';

export interface InstalledVerdict {
  name: string;
  version: string;
  provider: string;
  directory: string;
  ok: boolean;
  signed?: boolean;
  trust?: string;
  signers?: string[];
  warnings?: string[];
  code?: string;
  message?: string;
}

export async function verifyInstalled(opts: {
  home?: string;
  name?: string;
  pins?: string[];
  store: TrustStore;
  layers: ConfigLayer[];
  now?: Date;
}): Promise<{ ok: boolean; home: string; boxes: InstalledVerdict[] }> {
  const home = vagrantHome(opts.home);
  const boxes = listInstalled(home).filter((b) => !opts.name || b.name === opts.name);
  const out: InstalledVerdict[] = [];
  for (const b of boxes) {
    const base = { name: b.name, version: b.version, provider: b.provider, directory: b.directory };
    try {
      const r = await verifyDir(b.directory, {
        // Vagrant installs a box added straight from a file or URL as version "0": the signed
        // manifest then states the real version, so only name and provider are checked
        expect: { name: b.name, version: b.version === '0' ? undefined : b.version, provider: b.provider },
        pins: opts.pins,
        store: opts.store,
        layers: opts.layers,
        now: opts.now,
      });
      out.push({
        ...base,
        ok: true,
        signed: r.signed,
        trust: r.trust,
        signers: r.signers.filter((s) => s.trusted).map((s) => s.fingerprint),
        warnings: r.warnings,
      });
    } catch (e) {
      const be = toBoxsigError(e);
      out.push({ ...base, ok: false, code: be.code, message: be.message });
    }
  }
  return { ok: out.every((b) => b.ok), home, boxes: out };
}
