/**
 * The hostile-box corpus (test/corpus/generate.mjs), run in shards (one test
 * file each: test/corpus*.test.ts, so that each stays well inside tap's
 * timeout on a slow machine): every case is refused
 * with its expected code by `verify`, by `add` (which must leave the boxes
 * directory as it was) and by `verify --dir` on what bsdtar extracts the way
 * Vagrant does — always exit status 1, never 3, never a stack trace. Nothing
 * may ever be written outside the directories the tools were pointed at.
 *
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { boxsigAsync, isolatedEnv, requireTool, type RunResult } from './helpers.js';
import { generateCorpus, baseFiles } from './corpus/generate.mjs';

interface Case {
  id: string;
  file: string;
  description: string;
  expect: { verify: string; add: string; dir: string };
  pin?: string;
  note?: string;
  todo?: Partial<Record<'verify' | 'add' | 'dir', string>>;
}

const STACK = /\n\s+at .+[:(]\d+:\d+|Unhandled/;

/** Every path under `dir` with its type and size, sorted (to compare before/after). */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const a = path.join(abs, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(a);
      out.push(`${r} ${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? `f${st.size}` : 'other'}`);
      if (st.isDirectory()) walk(a, r);
    }
  };
  walk(dir, '');
  return out;
}

function bsdtarExtract(box: string, dir: string): { code: number; stderr: string } {
  fs.mkdirSync(dir, { recursive: true });
  // exactly how Vagrant extracts a box
  const r = spawnSync('bsdtar', ['--no-same-owner', '--no-same-permissions', '-x', '-m', '-s', '|\\\\|/|', '-C', dir, '-f', box], { encoding: 'utf8' });
  return { code: r.status ?? 1, stderr: r.stderr ?? '' };
}

async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

interface ModeResult {
  run?: RunResult;
  vacuous?: string;
  skipped?: string;
  before?: string[];
  after?: string[];
  leftovers?: string[];
  installed?: string[];
}

/** Registers the cases whose index is SHARD modulo SHARDS, with the checks of the whole corpus. */
export function hostileCorpus(shard: number, shards: number): void {
  t.test(`hostile corpus, part ${shard + 1} of ${shards}`, async (t) => {
    const root = t.testdir({ corpus: {}, work: {} });
    const corpusDir = path.join(root, 'corpus');
    const work = path.join(root, 'work');
    const corpus = await generateCorpus(corpusDir);
    // a measurement, not an assertion: tests never judge wall-clock time
    t.comment(`corpus generated in ${corpus.generatedIn} ms`);
    const sizes = corpus.cases.reduce((n: number, c: Case) => n + fs.statSync(path.join(corpusDir, c.file)).size, 0);
    t.ok(sizes < 32 * 1024 * 1024, `corpus is small on disk (${(sizes / 1048576).toFixed(1)} MiB)`);
    const topBefore = fs.readdirSync(corpusDir).sort();
    const victimBefore = fs.readFileSync(path.join(corpusDir, corpus.victim));

    const env = isolatedEnv(work);
    // the test runner's process-info loader (NODE_OPTIONS) costs ~1 s per CLI start; 400 starts are measured without it
    delete env.NODE_OPTIONS;
    const id = corpus.identity;
    const haveBsdtar = requireTool(t, 'bsdtar', 'libarchive-tools');
    const results = new Map<string, Record<'verify' | 'add' | 'dir', ModeResult>>();

    const cases = (corpus.cases as Case[]).filter((_, i) => i % shards === shard);
    t.ok(cases.length > 0, `${cases.length} of ${corpus.cases.length} cases in this part`);
    await pool(cases, 2, async (c) => {
      const box = path.join(corpusDir, c.file);
      const pin = c.pin ?? corpus.pin;
      const r: Record<'verify' | 'add' | 'dir', ModeResult> = { verify: {}, add: {}, dir: {} };
      r.verify.run = await boxsigAsync(['verify', box, '--name', id.name, '--pin', pin, '--json'], { env });

      // add into a Vagrant home that already holds another box
      const vh = path.join(work, 'vh', c.id);
      const decoy = path.join(vh, 'boxes', 'decoy-VAGRANTSLASH-box', '1.0', 'virtualbox');
      fs.mkdirSync(decoy, { recursive: true });
      fs.writeFileSync(path.join(decoy, 'metadata.json'), '{"provider":"virtualbox"}');
      r.add.before = listing(path.join(vh, 'boxes'));
      r.add.run = await boxsigAsync(['add', box, '--vagrant-home', vh, '--name', id.name, '--pin', pin, '--json', '-q'], { env });
      r.add.after = listing(path.join(vh, 'boxes'));
      r.add.leftovers = listing(vh).filter((l) => !l.startsWith('boxes') && !l.endsWith(' d'));
      if (r.add.run.code === 0) {
        const dir = path.join(vh, 'boxes', 'corpus-VAGRANTSLASH-box', id.version, id.provider);
        r.add.installed = listing(dir).filter((l) => !l.startsWith('.boxsig'));
      }

      if (c.expect.dir === 'SKIP') r.dir.skipped = c.note ?? 'skipped';
      else if (!haveBsdtar) r.dir.skipped = 'bsdtar is not installed';
      else {
        const x = path.join(work, 'x', c.id);
        const b = bsdtarExtract(box, x);
        if (b.code !== 0) r.dir.vacuous = b.stderr.trim().split('\n')[0];
        else {
          r.dir.run = await boxsigAsync(['verify', '--dir', x, '--name', id.name, '--version', id.version, '--provider', id.provider, '--pin', pin, '--json'], {
            env,
          });
        }
        fs.rmSync(x, { recursive: true, force: true });
      }
      results.set(c.id, r);
    });

    const vacuous: string[] = [];
    for (const c of cases) {
      const r = results.get(c.id)!;
      t.test(`${c.id}: ${c.description}`, async (t) => {
        for (const mode of ['verify', 'add', 'dir'] as const) {
          const m = r[mode];
          const expected = c.expect[mode];
          const todo = c.todo?.[mode];
          t.test(mode, todo ? { todo } : {}, async (t) => {
            if (m.skipped) {
              t.comment(`not run: ${m.skipped}`);
              return;
            }
            if (m.vacuous) {
              vacuous.push(`${c.id} (${m.vacuous})`);
              t.comment(`vacuous: bsdtar refuses to extract it: ${m.vacuous}`);
              return;
            }
            const run = m.run!;
            const where = `${mode} ${c.id}`;
            t.notMatch(run.stderr, STACK, `${where}: no stack trace or unhandled rejection`);
            if (expected === 'ACCEPT') {
              t.equal(run.code, 0, `${where}: accepted (${run.stderr.trim().split('\n')[0]})`);
            } else {
              t.equal(run.code, 1, `${where}: exit status 1 (${run.stderr.trim().split('\n')[0]})`);
              t.equal(run.json?.ok, false, `${where}: ok false`);
              t.equal(run.json?.code, expected, `${where}: refused as ${expected}`);
              t.match(run.stderr, `REFUSED (${expected})`, `${where}: the code is in the message`);
            }
            if (mode === 'add') {
              if (expected === 'ACCEPT') {
                const want = baseFiles()
                  .map((f: { path: string; data: Buffer }) => `${f.path} f${f.data.length}`)
                  .sort();
                t.same(m.installed, want, `${where}: exactly the signed files are installed`);
              } else {
                t.same(m.after, m.before, `${where}: the boxes directory is unchanged`);
              }
              t.same(m.leftovers, [], `${where}: no staging files left behind`);
            }
          });
        }
      });
    }

    t.test('nothing escaped', async (t) => {
      t.same(fs.readdirSync(path.join(corpusDir, corpus.escaped)), [], 'escaped/ is still empty');
      t.same(fs.readFileSync(path.join(corpusDir, corpus.victim)), victimBefore, 'the victim file is unchanged');
      t.same(fs.readdirSync(corpusDir).sort(), topBefore, 'no new file next to the corpus');
      t.same(fs.readdirSync(root).sort(), ['corpus', 'work'], 'no new file in the test directory');
      const allowed = new Set(['boxsig-home', 'vagrant-home', 'gnupg', 'vh', 'x']);
      t.same(
        fs.readdirSync(work).filter((n) => !allowed.has(n)),
        [],
        'no new file in the work directory',
      );
      if (vacuous.length) t.comment(`vacuous for --dir (bsdtar refuses to extract): ${vacuous.length}\n  ${vacuous.join('\n  ')}`);
    });
  });
}
