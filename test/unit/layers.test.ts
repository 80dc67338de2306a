/**
 * Imports run one way: every module of src/ belongs to a layer, and a module
 * imports only from its own folder or from lower layers. A new folder must be
 * given its place here (and in docs/ARCHITECTURE.md).
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';

const SRC = path.resolve(import.meta.dirname, '../../src');

/** Lowest first. Folders on one line are siblings: neither imports the other. */
const LAYERS: string[][] = [
  ['errors.ts'],
  ['shared'],
  ['interrupt.ts'],
  ['archive', 'tlog'],
  ['manifest'],
  ['keys'],
  ['trust'],
  ['policy'],
  ['box'],
  ['vagrant'],
  ['registry'],
  ['cli', 'index.ts'],
];

/** The unit of a file: its top folder under src/, or the file itself at the top. */
function unitOf(rel: string): string {
  return rel.split('/')[0];
}

function rankOf(unit: string): number {
  return LAYERS.findIndex((l) => l.includes(unit));
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import of a file (static, dynamic, type-only and re-exports), as paths under src/. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith('.'))
    .map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)).replace(/\.js$/, '.ts'));
}

const files = sources(SRC);

t.test('every module of src/ has a layer', async (t) => {
  const homeless = files.map((f) => path.relative(SRC, f)).filter((rel) => rankOf(unitOf(rel)) < 0);
  t.same(homeless, [], 'files outside every layer (give their folder a place in LAYERS)');
});

t.test('no import runs from a lower layer to a higher one, nor between siblings', async (t) => {
  const violations: string[] = [];
  for (const f of files) {
    const from = unitOf(path.relative(SRC, f));
    for (const target of importsOf(f)) {
      const to = unitOf(target);
      if (to === from) continue;
      if (target.startsWith('..')) violations.push(`${path.relative(SRC, f)} imports ${target}, outside src/`);
      else if (rankOf(to) >= rankOf(from)) violations.push(`${path.relative(SRC, f)} (${from}) imports ${target} (${to})`);
    }
  }
  t.same(violations, []);
});

t.test('the scanner sees every kind of import', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxsig-layers-'));
  try {
    const f = path.join(tmp, 'x.ts');
    fs.writeFileSync(
      f,
      [
        "import a from './a.js';",
        "import type { B } from './b.js';",
        "export { c } from './c.js';",
        "const d = await import('./d.js');",
        "import './e.js';",
      ].join('\n'),
    );
    t.same(
      importsOf(f).map((p) => path.basename(p)),
      ['a.ts', 'b.ts', 'c.ts', 'd.ts', 'e.ts'],
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
