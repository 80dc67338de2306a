/**
 * The Vagrant plugin's own specs (plugins/vagrant/spec, RSpec, with the
 * installed Vagrant gem as a library): the rules of the plugin's Ruby logic —
 * how Vagrant's add becomes a `boxsig add` command line, escaping, validation of
 * config.boxsig, running boxsig, the take-over of Vagrant's BoxAdd — checked in
 * milliseconds, beside the end-to-end tests with the real vagrant.
 */
import t from 'tap';
import path from 'node:path';
import { requireTool, sh } from './helpers.js';
import { PLUGIN } from './vagrant-lab.js';

t.test('rspec plugins/vagrant/spec', async (t) => {
  if (!requireTool(t, 'rspec', 'ruby-rspec') || !requireTool(t, 'vagrant', 'vagrant')) return;
  const env = { ...process.env };
  for (const k of ['VAGRANT_SERVER_URL', 'VAGRANT_CLOUD_TOKEN', 'VAGRANT_SERVER_ACCESS_TOKEN_BY_URL', 'BOXSIG_HTTP_HEADERS']) delete env[k];
  const r = sh('rspec', ['--format', 'progress', '--no-color'], { cwd: PLUGIN, env, timeout: 300_000 });
  const summary = /(\d+) examples?, (\d+) failures?/.exec(r.stdout);
  t.ok(summary, 'rspec printed its summary', { output: r.stdout + r.stderr });
  t.equal(r.code, 0, 'every spec passes', { output: r.stdout + r.stderr });
  if (summary) {
    t.equal(Number(summary[2]), 0, `${summary[1]} examples, no failure`);
    t.ok(Number(summary[1]) >= 100, 'the specs ran (not an empty run)');
  }
  t.comment(path.relative(process.cwd(), PLUGIN), summary?.[0] ?? '');
});
