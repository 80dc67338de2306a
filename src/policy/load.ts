/**
 * Loading the configuration layers, earliest (weakest) first: pins recorded
 * with `boxsig trust pin`, the user config, the project file `boxsig.json`,
 * then the Vagrantfile's `config.boxsig` (passed by the plugin). The first
 * two are the user's own; a project layer cannot widen their pins.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BoxsigError } from '../errors.js';
import type { TrustStore } from '../trust/store.js';
import { checkProjectFileOwner, findProjectFile, readConfigFile, validateConfig, type ConfigDoc, type ConfigLayer } from './config.js';
import { parseUntrustedJson } from '../shared/json.js';

export interface LoadOptions {
  store: TrustStore;
  cwd?: string;
  /** An explicit project file instead of searching for boxsig.json. */
  configFile?: string;
  /** Ignore the project file (e.g. the Vagrant plugin passes its own). */
  noProjectFile?: boolean;
  /** JSON text of an extra layer (the Vagrantfile's config.boxsig). */
  extraJson?: { source: string; json: string };
}

function userConfigFile(store: TrustStore): string {
  return path.join(store.home, 'config.json');
}

/** The user config, read through `conf` (loaded only when the file exists: it costs start-up time). */
async function readUserConfig(store: TrustStore): Promise<ConfigDoc | null> {
  const file = userConfigFile(store);
  if (!fs.existsSync(file)) return null;
  let raw: unknown;
  try {
    const { default: Conf } = await import('conf');
    const conf = new Conf({ cwd: store.home, configName: 'config', projectName: 'boxsig', projectSuffix: '' });
    raw = conf.store;
  } catch (e) {
    throw new BoxsigError('CONFIG', `${file}: cannot read: ${(e as Error).message}`, { file });
  }
  return validateConfig(raw, file);
}

export async function loadLayers(opts: LoadOptions): Promise<ConfigLayer[]> {
  const layers: ConfigLayer[] = [];
  const state = opts.store.read();
  if (state.pins.size) {
    const boxes: ConfigDoc['boxes'] = new Map([...state.pins].map(([glob, pin]) => [glob, { pin }]));
    layers.push({ source: `${opts.store.file} (boxsig trust pin)`, doc: { boxes, orgs: new Map() }, kind: 'store' });
  }
  const user = await readUserConfig(opts.store);
  if (user) layers.push({ source: userConfigFile(opts.store), doc: user, kind: 'user' });
  const project = projectFile(opts);
  if (project) layers.push({ source: project, doc: readConfigFile(project), kind: 'project' });
  if (opts.extraJson) {
    let raw: unknown;
    try {
      raw = parseUntrustedJson(opts.extraJson.json, opts.extraJson.source, 4 * 1024 * 1024);
    } catch (e) {
      throw new BoxsigError('CONFIG', `${opts.extraJson.source}: ${(e as Error).message}`);
    }
    layers.push({ source: opts.extraJson.source, doc: validateConfig(raw, opts.extraJson.source), kind: 'vagrantfile' });
  }
  return layers;
}

/** The project file: named with --config (used as given), or found here or in a parent (and then it must be yours). */
function projectFile(opts: LoadOptions): string | null {
  if (opts.noProjectFile) return null;
  if (opts.configFile) return path.resolve(opts.configFile);
  const found = findProjectFile(opts.cwd ?? process.cwd());
  if (found) checkProjectFileOwner(found);
  return found;
}
