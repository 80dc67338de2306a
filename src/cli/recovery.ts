/**
 * Runs the recovery step (src/vagrant/recover.ts) before every command that
 * changes state. A recovery that cannot finish is a warning: the command
 * itself reports what it cannot do.
 */
import type { Command } from 'commander';
import { describeCause } from '../errors.js';
import { warn } from './io.js';

const MUTATING = new Set(['add', 'repackage', 'trust pin', 'trust accept', 'trust forget', 'key import', 'key revoke']);

function commandPath(cmd: Command): string {
  const parent = cmd.parent && cmd.parent.parent ? `${cmd.parent.name()} ` : '';
  return `${parent}${cmd.name()}`;
}

export async function recoverBeforeMutation(_program: Command, cmd: Command): Promise<void> {
  const opts = cmd.opts() as { vagrantHome?: string; record?: boolean };
  const name = commandPath(cmd);
  if (!MUTATING.has(name) && !(name === 'verify' && opts.record)) return;
  try {
    const { recoverAfterCrash } = await import('../vagrant/recover.js');
    const { TrustStore } = await import('../trust/store.js');
    for (const a of recoverAfterCrash({ vagrantHome: opts.vagrantHome, store: new TrustStore() })) {
      if (a.outcome !== 'none') warn(`recovered an add interrupted by a dead process: ${a.outcome} (${a.staging})`);
    }
  } catch (e) {
    warn(`could not finish recovering after an interrupted boxsig: ${describeCause(e)}`);
  }
}
