/**
 * A wrong passphrase typed at the prompt may be typed again, three tries in
 * all (as gpg), on a real terminal (tmux); without a terminal nobody is asked.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, boxsig, isolatedEnv, makeBox, makeKey, requireTool } from './helpers.js';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** ARGV in a detached tmux session; keys can be typed into it. */
function terminal(dir: string, argv: string[], env: NodeJS.ProcessEnv) {
  const socket = `bsg-pp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const script = path.join(dir, `${socket}.sh`);
  const exports = Object.entries(env)
    .filter(([k, v]) => v !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && k !== 'TERM' && !k.startsWith('TMUX'))
    .map(([k, v]) => `export ${k}=${q(v!)}`);
  fs.writeFileSync(script, ['#!/bin/sh', ...exports, argv.map(q).join(' '), 'echo "[exit $?]"', 'exec sleep 600', ''].join('\n'), { mode: 0o755 });
  const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  if (tmux('new-session', '-d', '-x', '120', '-y', '30', script).status !== 0) throw new Error('tmux new-session failed');
  const capture = () => tmux('capture-pane', '-p', '-J', '-t', '0').stdout ?? '';
  const waitFor = async (re: RegExp, ms = 60_000) => {
    const until = Date.now() + ms;
    while (!re.test(capture()) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    return capture();
  };
  return {
    capture,
    waitFor,
    type: (text: string) => tmux('send-keys', '-t', '0', '-l', text) && tmux('send-keys', '-t', '0', 'Enter'),
    close: () => tmux('kill-server'),
  };
}

t.test('a wrong passphrase at the prompt is asked again, three tries', async (t) => {
  if (!requireTool(t, 'tmux', 'tmux')) return;
  const dir = t.testdir({});
  const pass = path.join(dir, 'pass');
  fs.writeFileSync(pass, 'right\n');
  const env = isolatedEnv(dir);
  const key = makeKey(dir, 'Acme <builds@acme.example>', ['--passphrase-file', pass], env);
  const raw = makeBox(path.join(dir, 'raw.box'));

  const out = path.join(dir, 'signed.box');
  const term = terminal(dir, [process.execPath, CLI, 'sign', raw, '--key', key.secret, '--name', 'acme/web', '--version', '1', '-o', out], env);
  t.teardown(term.close);
  t.match(await term.waitFor(/Passphrase for/), /Passphrase for .*secret\.asc: /, 'asked on the terminal');
  term.type('wrong');
  t.match(await term.waitFor(/try 2 of 3/), /Wrong passphrase\. Passphrase for .* \(try 2 of 3\)/, 'asked again after a wrong one');
  term.type('right');
  const done = await term.waitFor(/\[exit \d+\]/);
  t.match(done, /\[exit 0\]/, 'the second try signs');
  t.match(done, /boxsig: signed acme\/web 1/);
  t.ok(fs.existsSync(out));

  const out2 = path.join(dir, 'signed2.box');
  const term2 = terminal(dir, [process.execPath, CLI, 'sign', raw, '--key', key.secret, '--name', 'acme/web', '--version', '1', '-o', out2], env);
  t.teardown(term2.close);
  for (const n of [1, 2, 3]) {
    await term2.waitFor(n === 1 ? /Passphrase for/ : new RegExp(`try ${n} of 3`));
    term2.type(`wrong${n}`);
  }
  const failed = await term2.waitFor(/\[exit \d+\]/);
  t.match(failed, /\[exit 2\]/, 'three wrong tries: a usage error');
  t.match(failed, /cannot unlock/);
  t.notOk(fs.existsSync(out2), 'nothing written');

  const piped = boxsig(['sign', raw, '--key', key.secret, '--name', 'acme/web', '--version', '1', '-o', out2, '--json'], { env, input: 'right\n' });
  t.equal(piped.json?.code, 'USAGE', 'without a terminal nobody is asked');
  t.match(piped.json?.message, /--passphrase-file/);
});
