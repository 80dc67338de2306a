/**
 * The command line's contract, checked over the whole command tree (listed
 * from the program itself, so that a new command cannot escape):
 * - with --json every command prints exactly one JSON object with `ok`, and
 *   `code` on every failure — on success, on a failure of its own, and on
 *   usage errors from option parsing (unknown option, missing argument, bad
 *   value);
 * - every command, argument and option has a description, every command one
 *   or two examples; -v, -V, --version and `version` print the version;
 *   `boxsig` alone prints help and exits 2;
 * - README.md lists every error code of src/errors.ts with its exit status.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Command } from 'commander';
import { CLI, ROOT, boxsig, boxsigAsync, isolatedEnv, makeBox, makeKey, sign, type RunResult } from './helpers.js';
import { buildProgram, VERSION } from '../dist/cli/program.js';
import { BoxsigError, REFUSAL_CODES } from '../dist/errors.js';

/** Every command of the tree, as the words that name it (e.g. ['registry', 'org', 'create']). */
function commandTree(): Array<{ path: string[]; cmd: Command }> {
  const out: Array<{ path: string[]; cmd: Command }> = [];
  const walk = (cmd: Command, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const p = [...prefix, sub.name()];
      out.push({ path: p, cmd: sub });
      walk(sub, p);
    }
  };
  walk(buildProgram(), []);
  return out;
}

const leaves = () => commandTree().filter((c) => c.cmd.commands.length === 0);

/** Exactly one JSON object on stdout, with `ok`, and `code` on a failure. */
function checkOneObject(t: Test, r: RunResult, label: string): any {
  let v: any;
  try {
    v = JSON.parse(r.stdout);
  } catch {
    t.fail(`${label}: stdout is not one JSON value (exit ${r.code}): ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
    return null;
  }
  t.ok(v && typeof v === 'object' && !Array.isArray(v), `${label}: one object`);
  t.equal(typeof v.ok, 'boolean', `${label}: has ok`);
  if (v.ok === false) t.match(v.code, /^[A-Z_]+$/, `${label}: a failure has a code`);
  t.equal(v.ok, r.code === 0, `${label}: ok agrees with the exit status ${r.code}`);
  return v;
}

t.test('help: every command, argument and option is described; every command has an example', async (t) => {
  for (const { path: p, cmd } of commandTree()) {
    const name = p.join(' ');
    t.ok(cmd.description(), `${name}: a description`);
    for (const a of cmd.registeredArguments) t.ok(a.description, `${name}: argument <${a.name()}> is described`);
    for (const o of cmd.options) t.ok(o.description, `${name}: option ${o.flags} is described`);
    if (cmd.commands.length === 0) {
      const ex = (cmd as Command & { examples?: string[] }).examples ?? [];
      t.ok(ex.length >= 1 && ex.length <= 2, `${name}: one or two examples`);
      for (const e of ex)
        t.ok(e.startsWith(`boxsig ${name}`) || e.includes(`| boxsig ${name}`) || e.includes(` boxsig ${name}`), `${name}: the example runs it: ${e}`);
    }
  }
  const r = boxsig(['sign', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Examples:\n {2}\$ boxsig sign /, 'sign --help shows its examples');
  t.match(boxsig(['key', 'generate', '--help']).stdout, /revocation certificate/, 'key generate --help mentions the revocation certificate it writes');
});

t.test('version and bare boxsig', async (t) => {
  for (const args of [['-v'], ['-V'], ['--version'], ['version']]) {
    const r = boxsig(args);
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`);
    t.equal(r.stdout, `${VERSION}\n`, `${args.join(' ')}: prints the version`);
  }
  const j = boxsig(['version', '--json']);
  t.same(j.json, { ok: true, version: VERSION });
  const bare = boxsig([]);
  t.equal(bare.code, 2, 'boxsig alone: exit 2 (as git and vagrant, non-zero)');
  t.match(bare.stderr, /Usage: boxsig/, 'boxsig alone: the help');
  t.equal(bare.stdout, '');
  const group = boxsig(['trust']);
  t.equal(group.code, 2, 'a group without its subcommand: exit 2');
  t.match(group.stderr, /Usage: boxsig trust/);
  t.equal(boxsig(['help']).code, 0, 'boxsig help: exit 0');
  t.match(boxsig(['help', 'verify']).stdout, /Usage: boxsig verify/);
});

t.test('README lists every error code with its exit status', async (t) => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Exit status and error codes'));
  t.ok(section.length > 0 && readme.includes('## Exit status and error codes'), 'README has the section');
  const table = section.slice(0, section.indexOf('\n## '));
  const src = fs.readFileSync(path.join(ROOT, 'src', 'errors.ts'), 'utf8');
  // the non-refusal codes: the string literals of the FailureCode and RegistryFailureCode types
  const types = [...src.matchAll(/^export type \w*FailureCode = (.*);$/gm)].map((m) => m[1]).join(' | ');
  const failureCodes = [...types.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
  const all = [...new Set([...REFUSAL_CODES, ...failureCodes])];
  t.ok(all.includes('USAGE') && all.includes('UNAVAILABLE') && all.includes('CONFIG'), 'the codes are read from src/errors.ts');
  for (const code of all) {
    const exit = new BoxsigError(code as never, 'x').exitCode;
    t.match(table, new RegExp(`\\| \`${code}\` \\| ${exit} \\|`), `README: ${code} exits ${exit}`);
  }
});

interface Case {
  args: string[];
  /** expected exit status */
  exit: number;
  /** expected code on failure */
  code?: string;
  env?: NodeJS.ProcessEnv;
}

interface Plan {
  success: Case | { exempt: string };
  failure: Case;
}

/** Usage errors from commander's own parsing: unknown option, missing argument, bad value — run side by side. */
async function usageErrors(t: Test, p: string[], cmd: Command, env: NodeJS.ProcessEnv): Promise<void> {
  const name = p.join(' ');
  const cases: Array<[string, string[]]> = [['an unknown option', [...p, '--no-such-option', '--json']]];
  if (cmd.registeredArguments.some((a) => a.required)) cases.push(['a missing argument', [...p, '--json']]);
  const choice = cmd.options.find((o) => o.argChoices?.length);
  if (choice) cases.push([`a bad value for ${choice.long}`, [...p, choice.long!, 'no-such-choice', '--json']]);
  const runs = await Promise.all(cases.map(([, args]) => boxsigAsync(args, { env })));
  cases.forEach(([what], i) => {
    t.equal(runs[i].code, 2, `${name}: ${what} exits 2`);
    t.equal(checkOneObject(t, runs[i], `${name} (${what})`)?.code, 'USAGE', `${name}: ${what} is USAGE`);
  });
}

t.test('--json: one object with ok, and code on every failure, for every command', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const org = makeKey(dir, 'Acme Org <org@acme.example>', [], env);
  const box = path.join(dir, 'web.box');
  t.equal(sign(makeBox(path.join(dir, 'raw.box')), [key], ['--name', 'acme/web', '--version', '1.0', '-o', box], env).code, 0);
  const data = path.join(dir, 'registry');
  const reg = ['--data', data];
  const policy = path.join(dir, 'policy.json');
  fs.writeFileSync(policy, JSON.stringify({ boxes: { 'acme/*': { signatures: 'required' } } }));
  const vh = path.join(dir, 'vagrant-home');
  const missing = path.join(dir, 'missing.box');
  const copy = (name: string) => {
    const f = path.join(dir, name);
    fs.copyFileSync(box, f);
    return f;
  };
  // registry state the admin commands need, made through the CLI
  const admin = (args: string[]) => boxsig(['registry', ...args, ...reg, '--json'], { env });
  t.equal(admin(['org', 'create', 'acme']).code, 0);
  const tok = admin(['token', 'create', '--org', 'acme', '--role', 'admin']).json;
  const pub = admin(['token', 'create', '--org', 'acme', '--role', 'publish']).json;
  const serve = await startServe(env, reg);
  t.teardown(() => serve.proc.kill('SIGTERM'));

  const k2 = makeKey(dir, 'Second <second@acme.example>', [], env);
  const repo = makeKey(dir, ['Repo <repo@acme.example>', 'boxsig:acme/*'], [], env);
  const badHome = path.join(dir, 'bad-home');
  fs.mkdirSync(badHome);
  fs.writeFileSync(path.join(badHome, 'trust.json'), '{ not json');
  const damaged = { ...env, BOXSIG_HOME: badHome };
  const withKek = { ...env, BOXSIG_REGISTRY_ESCROW_KEY: '11'.repeat(32) };
  t.equal(admin(['box', 'create', 'acme/escrowed']).code, 0);
  const plans: Record<string, Plan> = {
    'key generate': {
      success: { args: ['--uid', 'New <new@acme.example>', '--out', path.join(dir, 'new')], exit: 0 },
      failure: { args: ['--uid', 'New <new@acme.example>', '--out', path.join(dir, 'new2'), '--expires', '90'], exit: 2, code: 'USAGE' },
    },
    'key import': { success: { args: [key.public, org.public], exit: 0 }, failure: { args: [missing], exit: 2, code: 'USAGE' } },
    'key export': { success: { args: [key.fingerprint], exit: 0 }, failure: { args: ['nobody@nowhere.example'], exit: 2, code: 'NOT_FOUND' } },
    'key list': { success: { args: [], exit: 0 }, failure: { args: [], exit: 2, code: 'CONFIG', env: { ...env, BOXSIG_HOME: box } } },
    'key certify': {
      success: { args: ['--org-key', org.secret, '--scope', 'acme/*', repo.public], exit: 0 },
      failure: { args: ['--org-key', org.secret, '--scope', '../*', key.public], exit: 2, code: 'USAGE' },
    },
    'key add-uid': {
      success: { args: ['--key', k2.secret, '--uid', 'boxsig:acme/*'], exit: 0 },
      failure: { args: ['--key', key.public, '--uid', 'boxsig:acme/*'], exit: 2, code: 'USAGE' },
    },
    'key revoke': { success: { args: ['--key', k2.secret, '--reason', 'retired'], exit: 0 }, failure: { args: [], exit: 2, code: 'USAGE' } },
    sign: {
      success: { args: [copy('s.box'), '--key', k2.secret], exit: 0 },
      failure: { args: [missing, '--key', key.secret, '--name', 'acme/web', '--version', '1'], exit: 3, code: 'IO' },
    },
    verify: { success: { args: [box], exit: 0 }, failure: { args: [box, '--pin', k2.fingerprint], exit: 1, code: 'UNTRUSTED_KEY' } },
    inspect: { success: { args: [box], exit: 0 }, failure: { args: [path.join(dir, 'raw.box.d')], exit: 3, code: 'IO' } },
    strip: { success: { args: [copy('st.box')], exit: 0 }, failure: { args: [missing], exit: 3, code: 'IO' } },
    'trust list': { success: { args: [], exit: 0 }, failure: { args: [], exit: 2, code: 'CONFIG', env: damaged } },
    'trust pin': { success: { args: ['acme/pinned', key.fingerprint], exit: 0 }, failure: { args: ['acme/pinned', 'ABCD'], exit: 2, code: 'USAGE' } },
    'trust forget': { success: { args: ['acme/pinned'], exit: 0 }, failure: { args: ['-VAGRANTSLASH-'], exit: 2, code: 'USAGE' } },
    'trust accept': { success: { args: ['acme/other', key.fingerprint], exit: 0 }, failure: { args: ['acme/other', 'zz'], exit: 2, code: 'USAGE' } },
    add: { success: { args: [box, '--vagrant-home', vh], exit: 0 }, failure: { args: [missing, '--vagrant-home', vh], exit: 3, code: 'IO' } },
    repackage: {
      success: { args: ['acme/web', 'virtualbox', '1.0', '-o', path.join(dir, 'repackaged.box'), '--vagrant-home', vh], exit: 0 },
      failure: { args: ['acme/none', 'virtualbox', '1.0', '-o', path.join(dir, 'none.box'), '--vagrant-home', vh], exit: 2, code: undefined },
    },
    version: { success: { args: [], exit: 0 }, failure: { args: ['extra-argument'], exit: 2, code: 'USAGE' } },
    'registry serve': {
      success: { exempt: 'a server: no --json (its stdout is the request log, one JSON line per request; the listening address goes to stderr)' },
      failure: { args: [...reg], exit: 2, code: 'USAGE' },
    },
    'registry org create': { success: { args: ['bits', ...reg, '--policy', policy], exit: 0 }, failure: { args: ['acme', ...reg], exit: 2, code: 'EXISTS' } },
    'registry org policy': {
      success: { args: ['acme', '--policy', policy, ...reg], exit: 0 },
      failure: { args: ['acme', '--policy', missing, ...reg], exit: 2, code: 'USAGE' },
    },
    'registry org list': { success: { args: [...reg], exit: 0 }, failure: { args: [], exit: 2, code: 'CONFIG', env: { ...env, BOXSIG_REGISTRY_DATA: '' } } },
    'registry org key': {
      success: { args: ['acme', org.public, ...reg], exit: 0 },
      failure: { args: ['nobody', org.public, ...reg], exit: 2, code: 'NOT_FOUND' },
    },
    'registry token create': {
      success: { args: ['--org', 'acme', '--role', 'read', ...reg], exit: 0 },
      failure: { args: ['--org', 'nobody', '--role', 'read', ...reg], exit: 2, code: 'NOT_FOUND' },
    },
    'registry token list': {
      success: { args: ['--org', 'acme', ...reg], exit: 0 },
      failure: { args: ['--org', 'nobody', ...reg], exit: 2, code: 'NOT_FOUND' },
    },
    'registry token revoke': { success: { args: [tok.id, ...reg], exit: 0 }, failure: { args: ['no-such-token', ...reg], exit: 2, code: 'NOT_FOUND' } },
    'registry org hold-key': {
      success: { args: ['acme', '--generate', ...reg], exit: 0, env: withKek },
      failure: { args: ['acme', '--generate', ...reg], exit: 2, code: 'CONFIG' },
    },
    'registry org certify': {
      success: { args: ['acme', repo.public, '--scope', 'acme/*', ...reg], exit: 0, env: withKek },
      failure: { args: ['acme', repo.public, '--scope', 'acme/*', ...reg], exit: 2, code: 'CONFIG' },
    },
    'registry escrow enable': {
      success: { args: ['acme/escrowed', ...reg], exit: 0, env: withKek },
      failure: { args: ['acme/escrowed', ...reg], exit: 2, code: 'CONFIG' },
    },
    'registry escrow convert': {
      success: { exempt: 'a conversion needs an escrow box with a published version: run end to end in test/registry/escrow.test.ts' },
      failure: { args: ['acme/escrowed', k2.public, ...reg], exit: 2, code: 'CONFIG' },
    },
    'registry escrow export': {
      success: { args: ['acme/escrowed', '-o', path.join(dir, 'escrow.secret.asc'), ...reg], exit: 0, env: withKek },
      failure: { args: ['acme/escrowed', '-o', path.join(dir, 'escrow2.secret.asc'), ...reg], exit: 2, code: 'CONFIG' },
    },
    'registry key generate': {
      success: { args: ['--name', 'boxes.acme.example', '--out', path.join(dir, 'registry.key')], exit: 0 },
      failure: { args: ['--name', 'boxes.acme.example', '--out', path.join(dir, 'registry.key')], exit: 2, code: 'EXISTS' },
    },
    'log monitor': {
      success: { args: ['acme', '--registry', serve.url], exit: 0 },
      failure: { args: ['acme', '--registry', 'http://127.0.0.1:1'], exit: 3, code: 'NETWORK' },
    },
    'log forget': { success: { args: [serve.url], exit: 0 }, failure: { args: ['not a url'], exit: 2, code: 'USAGE' } },
    'registry box create': { success: { args: ['acme/made', ...reg], exit: 0 }, failure: { args: ['nobody/made', ...reg], exit: 2, code: 'NOT_FOUND' } },
    'registry box list': { success: { args: [...reg], exit: 0 }, failure: { args: [], exit: 2, code: 'CONFIG', env: { ...env, BOXSIG_REGISTRY_DATA: '' } } },
    'registry audit': { success: { args: [...reg], exit: 0 }, failure: { args: [], exit: 2, code: 'CONFIG', env: { ...env, BOXSIG_REGISTRY_DATA: '' } } },
    'registry backup': {
      success: { args: ['--to', path.join(dir, 'backup.db'), ...reg], exit: 0 },
      failure: { args: ['--to', box, ...reg], exit: 2, code: 'USAGE' },
    },
    'registry gc': { success: { args: [...reg], exit: 0 }, failure: { args: [], exit: 2, code: 'CONFIG', env: { ...env, BOXSIG_REGISTRY_DATA: '' } } },
    publish: {
      success: { args: [copy('p.box'), '--registry', serve.url, '--release'], exit: 0, env: { ...env, BOXSIG_REGISTRY_TOKEN: pub.token } },
      failure: { args: [copy('q.box'), '--registry', serve.url], exit: 2, code: 'DENIED', env: { ...env, BOXSIG_REGISTRY_TOKEN: 'wrong' } },
    },
  };

  const all = leaves();
  for (const { path: p } of all) t.ok(plans[p.join(' ')], `${p.join(' ')} has a --json plan in this test`);
  for (const name of Object.keys(plans))
    t.ok(
      all.some((l) => l.path.join(' ') === name),
      `${name} is a command`,
    );

  for (const { path: p, cmd } of all) {
    const name = p.join(' ');
    const plan = plans[name];
    if (!plan) continue;
    const run = (c: Case) => boxsigAsync([...p, ...c.args, '--json'], { env: c.env ?? env });
    if ('exempt' in plan.success) t.comment(`${name}: success not run with --json: ${plan.success.exempt}`);
    else {
      const r = await run(plan.success);
      const v = checkOneObject(t, r, `${name} (success)`);
      t.equal(r.code, plan.success.exit, `${name} (success): exit ${plan.success.exit} ${r.stderr.slice(0, 400)}`);
      t.equal(v?.ok, true, `${name} (success): ok`);
    }
    const f = await run(plan.failure);
    const fv = checkOneObject(t, f, `${name} (failure)`);
    t.equal(f.code, plan.failure.exit, `${name} (failure): exit ${plan.failure.exit}`);
    if (plan.failure.code) t.equal(fv?.code, plan.failure.code, `${name} (failure): code ${plan.failure.code}`);

    await usageErrors(t, p, cmd, env);
  }
});

t.test('verify --installed: a top-level code when a box is refused', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const box = path.join(dir, 'web.box');
  t.equal(sign(makeBox(path.join(dir, 'raw.box')), [key], ['--name', 'acme/web', '--version', '1.0', '-o', box], env).code, 0);
  const vh = path.join(dir, 'vh');
  t.equal(boxsig(['add', box, '--vagrant-home', vh, '--json'], { env }).code, 0);
  let r = boxsig(['verify', '--installed', '--vagrant-home', vh, '--json'], { env });
  t.equal(r.code, 0);
  t.equal(r.json.ok, true);
  t.notOk('code' in r.json, 'no code when everything verified');
  const disk = path.join(vh, 'boxes', 'acme-VAGRANTSLASH-web', '1.0', 'virtualbox', 'box-disk1.vmdk');
  fs.appendFileSync(disk, 'x');
  r = boxsig(['verify', '--installed', '--vagrant-home', vh, '--json'], { env });
  t.equal(r.code, 1);
  t.equal(r.json.ok, false);
  t.equal(r.json.code, 'TAMPERED', 'the refused box code at the top');
  t.match(r.json.message, /1 of 1 installed boxes refused/);
});

t.test("the CLI loads a command's modules when it runs: --version and verify load no registry module", async (t) => {
  const dir = t.testdir({
    'hooks.mjs': [
      'export async function resolve(spec, ctx, next) {',
      '  const r = await next(spec, ctx);',
      '  if (r.url.startsWith("file:")) process.stderr.write(`LOADED ${r.url}\\n`);',
      '  return r;',
      '}',
    ].join('\n'),
    'register.mjs': "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n",
  });
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme <builds@acme.example>', [], env);
  const box = path.join(dir, 'web.box');
  t.equal(sign(makeBox(path.join(dir, 'raw.box')), [key], ['--name', 'acme/web', '--version', '1.0', '-o', box], env).code, 0);
  const loaded = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), CLI, ...args], { env, encoding: 'utf8' });
    return { code: r.status, modules: [...r.stderr.matchAll(/^LOADED (\S+)$/gm)].map((m) => m[1]) };
  };
  const registry = /node_modules\/(fastify|pg|@aws-sdk|better-sqlite3)\/|\/dist\/registry\//;
  const v = loaded(['--version']);
  t.equal(v.code, 0);
  t.same(
    v.modules.filter((m) => registry.test(m) || /node_modules\/(openpgp|tar)\//.test(m)),
    [],
    '--version loads neither the registry, OpenPGP.js nor tar',
  );
  const r = loaded(['verify', box]);
  t.equal(r.code, 0);
  t.ok(
    r.modules.some((m) => /node_modules\/openpgp\//.test(m)),
    'verify loads OpenPGP.js (the hook sees modules)',
  );
  t.same(
    r.modules.filter((m) => registry.test(m)),
    [],
    'verify loads no registry module (Fastify, pg, AWS SDK, SQLite)',
  );
});

/** `boxsig registry serve` on a free port, for publish. */
function startServe(env: NodeJS.ProcessEnv, flags: string[]): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [CLI, 'registry', 'serve', ...flags, '--listen', '127.0.0.1:0'], {
    env: { ...env, BOXSIG_REGISTRY_GC_INTERVAL_SECONDS: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`registry did not start: ${text}`)), 30_000);
    proc.stderr!.on('data', (d) => {
      text += d;
      const m = /listening on (http:\/\/\S+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], proc });
      }
    });
    proc.on('exit', () => reject(new Error(`registry exited: ${text}`)));
  });
}
