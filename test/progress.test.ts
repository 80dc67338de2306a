/**
 * The progress line (issue 12 item 7) in a real 80-column terminal (tmux):
 * `boxsig add` of a 64 MiB box served slowly over loopback HTTP shows one
 * line, redrawn in place, never wider than the terminal, with percent, bytes,
 * rate and ETA, and a final line when done. Nothing on a pipe, nothing with
 * --json.
 */
import t from 'tap';
import path from 'node:path';
import { CLI, boxsigAsync, hasTool, isolatedEnv, makeBox, makeKey, pseudoRandom, sign } from './helpers.js';
import { serve } from './http-server.js';
import { tmuxRun } from './tmux.js';

const MiB = 1024 * 1024;
const noTmux = !hasTool('tmux') && process.env.CI !== 'true' ? 'tmux is not installed (apt-get install -y tmux)' : false;

t.test('boxsig add of a 64 MiB box in an 80-column terminal: one line, redrawn in place', { skip: noTmux }, async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const base = makeBox(path.join(dir, 'big.box'), {
    compress: 'none',
    files: { Vagrantfile: 'Vagrant.configure("2") do |c| end\n', 'box-disk1.vmdk': pseudoRandom(64 * MiB, 3) },
  });
  const box = path.join(dir, 'big-signed.box');
  t.equal(sign(base, [key], ['--name', 'acme/big', '--version', '1.0.0', '-o', box], env).code, 0);
  // about 16 MiB/s: a download of four seconds or so
  const srv = await serve({ '/big.box': { file: box, rate: 800_000 } });
  t.teardown(() => srv.close());

  const pane = tmuxRun(dir, [process.execPath, CLI, 'add', `${srv.url}/big.box`, '--name', 'acme/big'], env, 80, 24);
  t.teardown(() => pane.close());
  const during: string[] = [];
  let screen = '';
  for (const until = Date.now() + 120_000; Date.now() < until;) {
    screen = pane.capture();
    // finished: the final progress line is there (the exit marker may follow a moment later)
    if (/\[exit \d+\]/.test(screen) || /^downloading and verifying: /m.test(screen)) break;
    if (screen.trim()) during.push(screen);
    await new Promise((r) => setTimeout(r, 250));
  }
  t.comment(`the pane during the download:\n${during[Math.floor(during.length / 2)] ?? '(nothing)'}\nand at the end:\n${screen}`);
  t.ok(during.length >= 2, `the progress line was seen ${during.length} times`);
  for (const s of during) {
    const lines = s.split('\n').filter((l) => l.trim());
    t.equal(lines.length, 1, 'one line on the screen while downloading', { screen: s });
    t.ok(lines[0].length < 80, 'narrower than the terminal');
    t.match(lines[0], /^downloading and verifying .*\d+% [\d.]+ [KM]iB\/64\.\d MiB/, 'percent and bytes of the total');
  }
  // (the very first redraw may come before there is a rate to show)
  t.ok(
    during.some((s) => /\d+% [\d.]+ [KM]iB\/64\.\d MiB [\d.]+ [KM]iB\/s ETA \d/.test(s)),
    'with a rate and an ETA once data flows',
  );
  // the lines boxsig wrote: how many rows the terminal wraps them into depends on
  // the length of the fixture's path in the "added … ->" line, not on the progress
  screen = await pane.finished(120_000, true);
  t.match(screen, /\[exit 0\]/, 'the add succeeded');
  const lines = screen.split('\n').filter((l) => l.trim());
  t.equal(lines.filter((l) => /^downloading and verifying/.test(l)).length, 1, 'one progress line left: the final one');
  t.match(screen, /^downloading and verifying: 64\.\d MiB in \d+s \([\d.]+ MiB\/s\)$/m, 'the final line: bytes, time, rate');
  t.match(screen, /^boxsig: added acme\/big 1\.0\.0 \(virtualbox\)/m);
  t.ok(lines.length < 12, `${lines.length} lines in all`);
});

t.test('no progress on a pipe, none with --json', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const key = makeKey(dir, 'Acme Builds <builds@acme.example>', [], env);
  const base = makeBox(path.join(dir, 'mid.box'), { compress: 'none', files: { Vagrantfile: 'x', 'box-disk1.vmdk': pseudoRandom(8 * MiB, 4) } });
  const box = path.join(dir, 'mid-signed.box');
  t.equal(sign(base, [key], ['--name', 'acme/mid', '--version', '1.0.0', '-o', box], env).code, 0);
  const srv = await serve({ '/mid.box': { file: box, rate: 400_000 } });
  t.teardown(() => srv.close());
  const human = await boxsigAsync(['add', `${srv.url}/mid.box`, '--name', 'acme/mid'], { env });
  t.equal(human.code, 0, human.stderr);
  t.notMatch(human.stderr, /\r|ETA|%|downloading/, 'stderr is a pipe: no progress');
  const json = await boxsigAsync(['add', `${srv.url}/mid.box`, '--name', 'acme/mid', '--force', '--json'], { env });
  t.equal(json.code, 0, json.stderr);
  t.ok(json.json?.ok, 'stdout is the JSON object');
  t.notMatch(json.stderr, /\r|ETA|%|downloading/, 'no progress with --json');
});
