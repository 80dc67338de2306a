/**
 * Which installed boxes of a name carry a signature by given keys (to name
 * the boxes a distrusted key affects). Reads only the names of the files in
 * each box's `.boxsig/signatures/`; `boxsig verify --installed` judges them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { listInstalled, vagrantHome, type InstalledBox } from './home.js';

export function installedSignedBy(name: string, fingerprints: string[], home?: string): InstalledBox[] {
  if (!fingerprints.length) return [];
  const wanted = new Set(fingerprints.map((f) => `${f}.asc`));
  return listInstalled(vagrantHome(home)).filter((b) => b.name === name && signatureFiles(b.directory).some((n) => wanted.has(n)));
}

function signatureFiles(dir: string): string[] {
  try {
    return fs.readdirSync(path.join(dir, '.boxsig', 'signatures'));
  } catch {
    return [];
  }
}
