/**
 * No dead exports: every symbol a module of src/ exports is imported by
 * another module (of src/, the tests, the benchmarks or the scripts), or is
 * part of the library's API (src/index.ts), or — for a type — is needed by
 * the declarations of its own module. And no stray re-exports: only
 * src/index.ts re-exports; everything else imports a symbol from the module
 * that defines it.
 *
 * The scanner reads the TypeScript syntax of src/ and test/ (static, dynamic,
 * type-only and namespace imports); in the .mjs files (benchmarks, fuzzers,
 * scripts), which load dist/ by computed paths, any mention of a name counts.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SRC = path.join(ROOT, 'src');

function walk(dir: string, ext: RegExp): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'fixtures' ? [] : walk(p, ext);
    return ext.test(e.name) ? [p] : [];
  });
}

const parse = (file: string) => ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);

/** The src/ module a specifier names (dist/ paths map back to src/), or null. */
function resolve(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  let p = path.resolve(path.dirname(from), spec).replace(/\.js$/, '.ts');
  const dist = path.join(ROOT, 'dist') + path.sep;
  if (p.startsWith(dist)) p = path.join(SRC, p.slice(dist.length));
  return p.startsWith(SRC + path.sep) ? p : null;
}

/** used: module -> names imported from it ('*': every name). */
const used = new Map<string, Set<string>>();
const use = (mod: string | null, name: string) => {
  if (!mod) return;
  if (!used.has(mod)) used.set(mod, new Set());
  used.get(mod)!.add(name);
};

function bindingNames(b: ts.BindingName | undefined): string[] | null {
  if (!b || !ts.isObjectBindingPattern(b)) return null;
  return b.elements.map((e) => ((e.propertyName ?? e.name) as ts.Identifier).text);
}

/** A dynamic import: the names taken from it where the code says, else every name. */
function useDynamic(file: string, call: ts.CallExpression): void {
  const arg = call.arguments[0];
  if (!arg || !ts.isStringLiteralLike(arg)) return;
  const mod = resolve(file, arg.text);
  let node: ts.Node = call;
  if (ts.isAwaitExpression(node.parent)) node = node.parent;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent)) {
    const names = bindingNames(parent.name);
    if (names) return names.forEach((n) => use(mod, n));
  }
  if (ts.isParenthesizedExpression(parent) && ts.isPropertyAccessExpression(parent.parent)) return use(mod, parent.parent.name.text);
  if (ts.isArrayLiteralExpression(parent)) {
    const index = parent.elements.indexOf(call);
    const all = parent.parent.parent; // Promise.all([...]) → await → declaration
    const decl = ts.isAwaitExpression(all?.parent) ? all.parent.parent : all?.parent;
    if (decl && ts.isVariableDeclaration(decl) && ts.isArrayBindingPattern(decl.name)) {
      const el = decl.name.elements[index];
      const names = el && ts.isBindingElement(el) ? bindingNames(el.name) : null;
      if (names) return names.forEach((n) => use(mod, n));
    }
  }
  use(mod, '*');
}

function scanTs(file: string): void {
  const sf = parse(file);
  const namespaces = new Map<string, string>();
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const mod = resolve(file, node.moduleSpecifier.text);
      const c = node.importClause;
      if (c?.name) use(mod, 'default');
      if (c?.namedBindings && ts.isNamespaceImport(c.namedBindings) && mod) namespaces.set(c.namedBindings.name.text, mod);
      if (c?.namedBindings && ts.isNamedImports(c.namedBindings)) for (const e of c.namedBindings.elements) use(mod, (e.propertyName ?? e.name).text);
    }
    if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const mod = resolve(file, node.moduleSpecifier.text);
      if (!node.exportClause) use(mod, '*');
      else if (ts.isNamedExports(node.exportClause)) for (const e of node.exportClause.elements) use(mod, (e.propertyName ?? e.name).text);
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) useDynamic(file, node);
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      use(resolve(file, node.argument.literal.text), node.qualifier && ts.isIdentifier(node.qualifier) ? node.qualifier.text : '*');
    }
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && namespaces.has(node.expression.text)) {
      use(namespaces.get(node.expression.text)!, node.name.text);
    }
    if (ts.isQualifiedName(node) && ts.isIdentifier(node.left) && namespaces.has(node.left.text)) use(namespaces.get(node.left.text)!, node.right.text);
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

interface Exported {
  name: string;
  type: boolean;
  line: number;
}

const hasExport = (n: ts.Node) => ts.canHaveModifiers(n) && (ts.getModifiers(n) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);

/** What a module exports by declaration (re-exports are reported separately). */
function exportsOf(sf: ts.SourceFile): { exported: Exported[]; reexports: string[] } {
  const exported: Exported[] = [];
  const reexports: string[] = [];
  const line = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
  const imported = new Set<string>();
  for (const s of sf.statements) {
    const b = ts.isImportDeclaration(s) ? s.importClause?.namedBindings : undefined;
    if (b && ts.isNamedImports(b)) for (const e of b.elements) imported.add(e.name.text);
  }
  for (const s of sf.statements) {
    if (ts.isExportDeclaration(s)) {
      if (s.moduleSpecifier) reexports.push(`line ${line(s)}: ${s.getText().replace(/\s+/g, ' ')}`);
      else if (s.exportClause && ts.isNamedExports(s.exportClause))
        for (const e of s.exportClause.elements) {
          if (imported.has((e.propertyName ?? e.name).text)) reexports.push(`line ${line(s)}: export { ${e.name.text} } (imported)`);
          else exported.push({ name: e.name.text, type: s.isTypeOnly || e.isTypeOnly, line: line(s) });
        }
      continue;
    }
    if (!hasExport(s)) continue;
    const type = ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s);
    if (ts.isVariableStatement(s)) for (const d of s.declarationList.declarations) exported.push({ name: d.name.getText(), type: false, line: line(s) });
    else if ('name' in s && s.name && ts.isIdentifier(s.name as ts.Node)) exported.push({ name: (s.name as ts.Identifier).text, type, line: line(s) });
  }
  return { exported, reexports };
}

/** Whether `name` is referenced in its own module other than by its declaration. */
function usedLocally(sf: ts.SourceFile, name: string): boolean {
  let count = 0;
  const visit = (n: ts.Node): void => {
    if (ts.isIdentifier(n) && n.text === name) count++;
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return count > 1;
}

const srcFiles = walk(SRC, /\.ts$/);
for (const f of [...srcFiles, ...walk(path.join(ROOT, 'test'), /\.ts$/)]) scanTs(f);
const mentioned = new Set<string>();
for (const f of [...walk(path.join(ROOT, 'bench'), /\.mjs$/), ...walk(path.join(ROOT, 'scripts'), /\.mjs$/), ...walk(path.join(ROOT, 'test'), /\.mjs$/)]) {
  for (const w of fs.readFileSync(f, 'utf8').match(/[A-Za-z_$][\w$]*/g) ?? []) mentioned.add(w);
}

t.test('no dead exports in src/', async (t) => {
  const dead: string[] = [];
  for (const f of srcFiles) {
    const rel = path.relative(ROOT, f);
    if (rel === 'src/index.ts' || rel === 'src/cli/main.ts') continue;
    const sf = parse(f);
    const names = used.get(f) ?? new Set();
    for (const e of exportsOf(sf).exported) {
      if (names.has(e.name) || names.has('*') || mentioned.has(e.name)) continue;
      if (e.type && usedLocally(sf, e.name)) continue; // the module's own declarations need it
      dead.push(`${rel}:${e.line} ${e.name}`);
    }
  }
  t.same(dead, [], 'exported but imported nowhere (remove the export, or the code)');
});

t.test('only src/index.ts re-exports', async (t) => {
  const stray = srcFiles
    .filter((f) => path.relative(ROOT, f) !== 'src/index.ts')
    .flatMap((f) => exportsOf(parse(f)).reexports.map((r) => `${path.relative(ROOT, f)} ${r}`));
  t.same(stray, [], 'import from the module that defines the symbol instead');
});
