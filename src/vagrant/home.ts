/**
 * Vagrant's own layout of installed boxes:
 * `$VAGRANT_HOME/boxes/<name with / as -VAGRANTSLASH->/<version>/<provider>/`
 * (Vagrant 2.4 adds an architecture level: `<version>/<arch>/<provider>/`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processAlive } from '../trust/lock.js';

export function vagrantHome(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  if (process.env.VAGRANT_HOME) return path.resolve(process.env.VAGRANT_HOME);
  return path.join(os.homedir(), '.vagrant.d');
}

export function boxDirName(name: string): string {
  return name.replaceAll('/', '-VAGRANTSLASH-');
}

export function boxNameFromDir(dir: string): string {
  return dir.replaceAll('-VAGRANTSLASH-', '/');
}

export function boxesDir(home: string): string {
  return path.join(home, 'boxes');
}

export function installedBoxPath(home: string, name: string, version: string, provider: string): string {
  return path.join(boxesDir(home), boxDirName(name), version, provider);
}

export interface InstalledBox {
  name: string;
  version: string;
  provider: string;
  architecture?: string;
  directory: string;
}

function subdirs(p: string): string[] {
  try {
    return fs
      .readdirSync(p, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

export function listInstalled(home: string): InstalledBox[] {
  const out: InstalledBox[] = [];
  const root = boxesDir(home);
  for (const nameDir of subdirs(root)) {
    if (nameDir.startsWith('.')) continue;
    for (const version of subdirs(path.join(root, nameDir))) {
      for (const level of subdirs(path.join(root, nameDir, version))) {
        const dir = path.join(root, nameDir, version, level);
        if (fs.existsSync(path.join(dir, 'metadata.json'))) {
          out.push({ name: boxNameFromDir(nameDir), version, provider: level, directory: dir });
        } else {
          for (const provider of subdirs(dir)) {
            const d = path.join(dir, provider);
            if (fs.existsSync(path.join(d, 'metadata.json'))) {
              out.push({ name: boxNameFromDir(nameDir), version, provider, architecture: level, directory: d });
            }
          }
        }
      }
    }
  }
  return out;
}

/** Where boxsig stages an add: Vagrant's tmp directory, on the same filesystem as boxes/. */
export function stagingRoot(home: string): string {
  const tmp = path.join(home, 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  fs.mkdirSync(boxesDir(home), { recursive: true });
  if (fs.statSync(tmp).dev !== fs.statSync(boxesDir(home)).dev) {
    // a tmp on another filesystem cannot be renamed into boxes/: stage beside boxes/
    const alt = path.join(home, '.boxsig-staging');
    fs.mkdirSync(alt, { recursive: true });
    return alt;
  }
  return tmp;
}

const STAGING_RE = /^boxsig-add-(\d+)-[0-9a-f]+$/;

/** Remove staging directories left by adds that were killed. */
export function cleanStaleStaging(root: string): string[] {
  const removed: string[] = [];
  for (const name of subdirs(root)) {
    const m = STAGING_RE.exec(name);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) {
      fs.rmSync(path.join(root, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

export function stagingName(): string {
  return `boxsig-add-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
}
