/**
 * No function in src/ is longer than 80 lines, unless a `// long: <reason>`
 * comment stands right above it (above its doc comment, or between the doc
 * comment and the declaration). Lines are counted from the declaration to
 * its closing brace.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const SRC = path.resolve(import.meta.dirname, '../../src');
const MAX_LINES = 80;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The node a reader sees as the function's declaration (a `const f = () => …` is its statement). */
function declarationOf(fn: ts.FunctionLikeDeclaration): ts.Node {
  let n: ts.Node = fn;
  if (ts.isVariableDeclaration(n.parent))
    n = n.parent.parent.parent; // declaration → list → statement
  else if (ts.isPropertyAssignment(n.parent) || ts.isPropertyDeclaration(n.parent)) n = n.parent;
  return n;
}

function nameOf(fn: ts.FunctionLikeDeclaration, decl: ts.Node): string {
  if (fn.name) return fn.name.getText();
  if (ts.isVariableStatement(decl)) return decl.declarationList.declarations[0].name.getText();
  if ((ts.isPropertyAssignment(decl) || ts.isPropertyDeclaration(decl)) && decl.name) return decl.name.getText();
  return '(anonymous)';
}

/** Whether a `// long: <reason>` line comment stands right above the declaration (its doc comment may come between). */
function justified(sf: ts.SourceFile, decl: ts.Node): boolean {
  const lines = sf.text.split('\n');
  let i = sf.getLineAndCharacterOfPosition(decl.getStart(sf)).line - 1;
  const isLong = (l: string) => /^\s*\/\/ long: \S/.test(l);
  if (i >= 0 && isLong(lines[i])) return true;
  // skip a doc comment right above, then look once more
  if (i >= 0 && /\*\/\s*$/.test(lines[i])) {
    while (i >= 0 && !/^\s*\/\*\*?/.test(lines[i])) i--;
    return i > 0 && isLong(lines[i - 1]);
  }
  return false;
}

function longFunctions(file: string): string[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const fn = node as ts.FunctionLikeDeclaration;
      const decl = declarationOf(fn);
      const start = sf.getLineAndCharacterOfPosition(decl.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(fn.body!.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_LINES && !justified(sf, decl)) found.push(`${path.relative(SRC, file)}:${start + 1} ${nameOf(fn, decl)} (${lines} lines)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

t.test(`no function in src/ is longer than ${MAX_LINES} lines without a reason`, async (t) => {
  const long = sources(SRC).flatMap(longFunctions);
  t.same(long, [], 'shorten it, or write `// long: <reason>` right above it');
});
