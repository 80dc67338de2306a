/**
 * The Vagrant plugin against an attacker, with the REAL vagrant, run as root
 * (test/vagrant-plugin-hostile-root.test.ts) and as an unprivileged user
 * (test/vagrant-plugin-hostile-user.test.ts; made with useradd when the tests
 * run as root):
 *
 * - kills at several points of `vagrant box add` (SIGKILL of vagrant alone,
 *   SIGKILL of its process group, two Ctrl-C): a box is never visible in
 *   VAGRANT_HOME/boxes before it is verified (a watcher looks all along), a
 *   refused box never, and nothing outside boxsig's staging is lost;
 * - archives that abuse Vagrant's own extraction (a read-only directory that
 *   makes Vagrant's move fail half-way with EACCES as a normal user; a symlink
 *   to a directory outside, whose files Vagrant's move loop would move into the
 *   box) are refused, and nothing outside the staging directory is touched;
 * - text from a key (a user ID with escape sequences, a carriage return and a
 *   newline) cannot rewrite the terminal in a real `vagrant box add`;
 * - credentials: Vagrant's token (VAGRANT_CLOUD_TOKEN) reaches the box server
 *   as Vagrant sends it, user info in a URL as Basic auth, and neither is shown.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { boxsig, must, requireTool } from './helpers.js';
import {
  boxList,
  catalogJson,
  gate,
  groupGone,
  labDir,
  leftovers,
  makeBoxFile,
  makeLab,
  project,
  removeLab,
  serve,
  signed,
  sleep,
  snapshot,
  stagingDirs,
  startVagrant,
  tampered,
  unprivilegedUser,
  vagrant,
  vagrantAsync,
  vagrantAvailable,
  type Gate,
  type Lab,
  type Server,
} from './vagrant-lab.js';

const isRoot = process.getuid?.() === 0;
const onCI = process.env.CI === 'true';

/**
 * Registers the tests of one variant: vagrant run as root, or as an unprivileged user (the
 * current one when the tests do not run as root). The user variant runs every kill; the root
 * variant a sample. Escaping and credentials, which do not depend on the user, run in the
 * root variant (in the user variant when not root). One test file per variant, so that each
 * gets its own time budget.
 */
export function hostileSuite(which: 'root' | 'user'): void {
  let lab: Lab | null = null;
  let title = '';
  let skip: string | null = null;
  t.before(() => {
    if (!vagrantAvailable()) return;
    if (which === 'root') {
      if (!isRoot) skip = 'not running as root: the root variant of these tests is skipped';
      else {
        lab = makeLab();
        title = 'as root';
      }
      return;
    }
    const { user, why } = unprivilegedUser();
    if (!user) skip = `no unprivileged user to run vagrant as (${why ?? 'unknown reason'})`;
    else {
      lab = makeLab({ user });
      title = `as the unprivileged user ${user.name}`;
    }
  });
  t.teardown(() => removeLab(lab));
  t.test(`the plugin against hostile boxes and kills, vagrant run ${which === 'root' ? 'as root' : 'as an unprivileged user'}`, async (t) => {
    if (!requireTool(t, 'vagrant', 'vagrant') || !requireTool(t, 'gem', 'ruby')) return;
    if (skip) {
      if (onCI) t.fail(`${skip}: required on CI`);
      else t.comment(`SKIP: ${skip}`);
      return;
    }
    await variantTests(t, lab!, title, { fullKills: which === 'user', others: which === 'root' ? isRoot : !isRoot });
  });
}

/** The box directories of NAME that exist now, each with whether all its files are whole. */
function sightings(lab: Lab, name: string, expected: Record<string, number>): Array<{ dir: string; complete: boolean }> {
  const root = path.join(lab.home, 'boxes', name.replace(/\//g, '-VAGRANTSLASH-'));
  const out: Array<{ dir: string; complete: boolean }> = [];
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(root).filter((v) => v !== 'metadata_url');
  } catch {
    return out;
  }
  for (const v of versions) {
    let providers: string[] = [];
    try {
      providers = fs.readdirSync(path.join(root, v));
    } catch {
      continue;
    }
    for (const p of providers) {
      const dir = path.join(root, v, p);
      const complete = Object.entries(expected).every(([f, size]) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size === size);
      out.push({ dir, complete });
    }
  }
  return out;
}

/** Looks at VAGRANT_HOME/boxes every few milliseconds while an add runs. */
function watch(lab: Lab, name: string, expected: Record<string, number>) {
  const seen: Array<{ dir: string; complete: boolean }> = [];
  const timer = setInterval(() => seen.push(...sightings(lab, name, expected)), 5);
  return {
    stop: () => {
      clearInterval(timer);
      seen.push(...sightings(lab, name, expected));
      return seen;
    },
  };
}

/** Sizes of the files of a box (its .boxsig/ too), from the archive. */
function fileSizes(box: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of must('tar', ['tzvf', box]).split('\n').filter(Boolean)) {
    const parts = line.trim().split(/\s+/);
    const name = parts[parts.length - 1].replace(/^\.\//, '');
    if (line.startsWith('-')) out[name] = Number(parts[2]);
  }
  return out;
}

type KillMode = 'SIGKILL vagrant' | 'SIGKILL process group' | 'two SIGINTs (Ctrl-C twice)' | 'SIGINT to vagrant alone';
const KILL_MODES: KillMode[] = ['SIGKILL vagrant', 'SIGKILL process group', 'two SIGINTs (Ctrl-C twice)', 'SIGINT to vagrant alone'];
/** Where the add is when the kill comes: the response held there (after download: all sent, boxsig judging). */
type Point = 'catalog' | 'box start' | 'box middle' | 'box end' | 'after download';

async function kill(pid: number, mode: KillMode): Promise<void> {
  const signal = (target: number, sig: NodeJS.Signals) => {
    try {
      process.kill(target, sig);
    } catch {
      /* already gone */
    }
  };
  if (mode === 'SIGKILL vagrant') signal(pid, 'SIGKILL');
  else if (mode === 'SIGKILL process group') signal(-pid, 'SIGKILL');
  else if (mode === 'SIGINT to vagrant alone') signal(pid, 'SIGINT');
  else {
    signal(-pid, 'SIGINT');
    await sleep(300);
    signal(-pid, 'SIGINT');
  }
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function variantTests(t: Tap, L: Lab, title: string, v: { fullKills: boolean; others: boolean }): Promise<void> {
  t.comment(`vagrant runs ${title}`);
  const cwd = (name: string) => labDir(L, 'cwd', name);

  // a box installed before everything else, and a file in Vagrant's tmp: they must survive all of it
  const sentinelBox = signed(L, path.join(L.dir, 'sentinel.box'), 'acme/sentinel', '1.0', [L.key]);
  const s = vagrant(L, ['box', 'add', sentinelBox], cwd('sentinel'));
  t.equal(s.code, 0, 'the sentinel box is added', { output: s.out });
  fs.writeFileSync(path.join(L.home, 'tmp', 'keep-me'), 'not boxsig staging');
  const before = snapshot(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-sentinel'));

  t.test("archives that abuse Vagrant's extraction are refused; nothing outside is touched", async (t) => {
    const outside = labDir(L, 'outside');
    fs.writeFileSync(path.join(outside, 'precious.txt'), 'precious');
    fs.mkdirSync(path.join(outside, 'nested'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'nested', 'data.bin'), 'data');
    if (L.user) must('chown', ['-R', `${L.user.uid}:${L.user.gid}`, outside]);
    const outsideBefore = snapshot(outside);
    const readOnly = (d: string) => {
      fs.mkdirSync(path.join(d, 'ro'));
      fs.writeFileSync(path.join(d, 'ro', 'file'), 'in a read-only directory');
      fs.chmodSync(path.join(d, 'ro'), 0o555);
      return ['ro'];
    };
    const link = (d: string) => {
      fs.symlinkSync(outside, path.join(d, 'link'));
      return ['link'];
    };
    const roBox = makeBoxFile(path.join(L.dir, 'ro.box'), { extra: readOnly });
    const linkBox = makeBoxFile(path.join(L.dir, 'link.box'), { extra: link });
    /** A signed box with the hostile entries added after signing (.boxsig/ still first). */
    const signedPlus = (file: string, extra: (d: string) => string[]) => {
      const good = signed(L, `${file}.src`, 'legacy/signed-plus', '1.0', [L.key]);
      const d = `${file}.d`;
      fs.mkdirSync(d, { recursive: true });
      must('tar', ['xzf', good, '-C', d]);
      must('tar', ['czf', file, '-C', d, '.boxsig', 'metadata.json', 'Vagrantfile', 'box-disk1.vmdk', ...extra(d)]);
      return file;
    };
    const roSigned = signedPlus(path.join(L.dir, 'ro-signed.box'), readOnly);
    const linkSigned = signedPlus(path.join(L.dir, 'link-signed.box'), link);
    if (L.user) must('chown', ['-R', `${L.user.uid}:${L.user.gid}`, L.dir]);
    const optional = project(
      L,
      'optional',
      'Vagrant.configure("2") do |config|\n  config.boxsig.boxes = { "legacy/*" => { "signatures" => "optional" } }\nend\n',
    );

    const cases: Array<{ what: string; box: string; name: string; dir: string; code: RegExp }> = [
      { what: 'an unsigned box with a read-only directory', box: roBox, name: 'acme/ro', dir: cwd('ro'), code: /UNSIGNED/ },
      { what: 'a signed box with a read-only directory added', box: roSigned, name: 'legacy/signed-plus', dir: optional, code: /UNLISTED_FILE|UNSAFE_ENTRY/ },
      {
        what: 'an unsigned box (signatures optional) with a symlink to a directory outside',
        box: linkBox,
        name: 'legacy/link',
        dir: optional,
        code: /UNSAFE_ENTRY/,
      },
      {
        what: 'a signed box with a symlink to a directory outside added',
        box: linkSigned,
        name: 'legacy/signed-plus',
        dir: optional,
        code: /UNSAFE_ENTRY|UNLISTED_FILE/,
      },
    ];
    for (const c of cases) {
      const r = vagrant(L, ['box', 'add', '--name', c.name, c.box], c.dir);
      t.equal(r.code, 1, `${c.what}: refused (exit 1)`, { output: r.out });
      t.match(r.out, new RegExp(`boxsig refused the box ${c.name.replace('/', '\\/')}: ${c.code.source}`), `${c.what}: the code`);
      t.notMatch(r.out, /EACCES|Permission denied|Errno::/, `${c.what}: no failure half-way`);
      t.same(leftovers(L, c.name), [], `${c.what}: nothing in boxes/`);
      t.same(snapshot(outside), outsideBefore, `${c.what}: the directory outside is untouched`);
    }

    // an unsigned box with a read-only directory, where the policy allows unsigned boxes:
    // boxsig extracts it (with its own modes) and installs it whole; no EACCES half-way
    const r = vagrant(L, ['box', 'add', '--name', 'legacy/ro', roBox], optional);
    t.equal(r.code, 0, 'allowed unsigned: added by boxsig', { output: r.out });
    const dir = path.join(L.home, 'boxes', 'legacy-VAGRANTSLASH-ro', '0', 'virtualbox');
    t.equal(fs.readFileSync(path.join(dir, 'ro', 'file'), 'utf8'), 'in a read-only directory', 'the whole box is there');
    const rm = vagrant(L, ['box', 'remove', 'legacy/ro'], optional);
    t.equal(rm.code, 0, `vagrant box remove works ${title}`, { output: rm.out });
    t.same(leftovers(L, 'legacy/ro'), []);
    t.same(snapshot(outside), outsideBefore, 'the directory outside is untouched');
  });

  t.test('kills at several points of vagrant box add never leave a box visible before it is verified', async (t) => {
    const srv = await serve();
    t.teardown(() => srv.close());
    const points: Point[] = v.fullKills ? ['catalog', 'box start', 'box end', 'after download'] : ['box middle', 'after download'];
    const runs: Array<{ box: 'refused' | 'good'; point: Point; mode: KillMode }> = [];
    for (const point of points) for (const mode of KILL_MODES) runs.push({ box: 'refused', point, mode });
    // a good box: vagrant killed alone (boxsig finishes on its own), or asked to stop (boxsig is stopped)
    for (const mode of ['SIGKILL vagrant', 'SIGINT to vagrant alone'] as KillMode[]) runs.push({ box: 'good', point: 'box end', mode });

    let n = 0;
    for (const run of runs) {
      n++;
      // each run adds its own name from its own catalog; a refused box is a tampered one, refused only at its end
      const name = `acme/kill${n}`;
      const good = signedFor(L, name);
      const box = run.box === 'good' ? good : tampered(L, good, path.join(L.dir, `kill${n}-tampered.box`));
      const size = fs.statSync(box).size;
      const at = { catalog: 10, 'box start': 100, 'box middle': Math.floor(size / 2), 'box end': size - 64, 'after download': size }[run.point];
      const g: Gate = gate(at);
      srv.routes.set(`/box${n}`, { file: box, gate: run.point === 'catalog' ? undefined : g });
      srv.routes.set(`/${name}`, {
        body: catalogJson(name, [{ version: '1.0', url: `${srv.url}/box${n}`, file: box }]),
        contentType: 'application/json',
        gate: run.point === 'catalog' ? g : undefined,
      });
      const what = `${run.box} box, ${run.mode} at ${run.point}`;
      const watcher = watch(L, name, fileSizes(good));
      const started = startVagrant(L, ['box', 'add', `${srv.url}/${name}`], cwd('kills'));
      const reached = await Promise.race([g.reached.then(() => true), started.done.then(() => false)]);
      if (!reached) {
        t.fail(`${what}: vagrant ended before the kill point`, { output: started.output() });
        g.release();
        watcher.stop();
        continue;
      }
      await sleep(run.point === 'after download' ? 150 : 400); // boxsig consumes what was sent
      await kill(started.pid, run.mode);
      await started.done;
      g.release(); // an orphaned boxsig (when vagrant alone was killed) goes on
      t.ok(await groupGone(started.pid), `${what}: every process of the add ended`);
      const seen = watcher.stop();
      const listed = new RegExp(`^${name}\\s`, 'm').test(boxList(L, cwd('kills')));
      if (run.box === 'refused') {
        t.same(seen, [], `${what}: the box was never visible in boxes/`);
        t.notOk(listed, `${what}: vagrant box list does not show it`);
        continue;
      }
      t.ok(
        seen.every((x) => x.complete),
        `${what}: whenever the box was visible, it was whole (verified, then moved in one rename)`,
        { seen },
      );
      if (listed) {
        // vagrant alone was killed and boxsig, not killed with it, finished the add
        const check = boxsig(['verify', '--installed', name, '--vagrant-home', L.home, '--json'], { env: L.env });
        t.equal(check.code, 0, `${what}: the box that appeared verifies`, { output: check.stdout + check.stderr });
      } else {
        t.same(seen, [], `${what}: not listed, never visible`);
      }
    }

    // the next add recovers: staging left by killed processes is removed, nothing else
    const after = vagrant(L, ['box', 'add', signedFor(L, 'acme/after')], cwd('kills'));
    t.equal(after.code, 0, 'the next add works', { output: after.out });
    t.same(stagingDirs(L), [], "no staging directory of a killed boxsig is left after the next add's recovery");
  });

  t.test("nothing outside boxsig's staging was lost", async (t) => {
    t.same(snapshot(path.join(L.home, 'boxes', 'acme-VAGRANTSLASH-sentinel')), before, 'the box installed before is untouched');
    t.equal(fs.readFileSync(path.join(L.home, 'tmp', 'keep-me'), 'utf8'), 'not boxsig staging', "a file in Vagrant's tmp is untouched");
    t.match(boxList(L), /acme\/sentinel\s+\(virtualbox, 1\.0\)/);
  });

  if (!v.others) return; // escaping and credentials do not depend on the user

  t.test('a user ID with escape sequences cannot rewrite the terminal', async (t) => {
    const uid = "Evil\r\x1b[2K\x1b[1A==> box: boxsig: verified acme/esc 1.0 (virtualbox)\n==> box: Successfully added box 'acme/esc' (v1.0)";
    const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name: uid }], format: 'armored' });
    const secret = path.join(L.dir, 'evil.secret.asc');
    fs.writeFileSync(secret, privateKey);
    const box = path.join(L.dir, 'esc.box');
    const sr = boxsig(['sign', L.base, '--key', secret, '--name', 'acme/esc', '--version', '1.0', '-o', box, '--json'], { env: L.env });
    t.equal(sr.code, 0, 'signed by the key with the hostile user ID', { output: sr.stderr });
    const dir = project(L, 'esc', `Vagrant.configure("2") do |config|\n  config.boxsig.boxes = { "acme/esc" => { "pin" => ["${L.key.fingerprint}"] } }\nend\n`);
    const r = vagrant(L, ['box', 'add', '--name', 'acme/esc', box], dir);
    t.equal(r.code, 1, 'refused', { output: r.out });
    t.match(r.out, /boxsig refused the box acme\/esc: UNTRUSTED_KEY/);
    t.notMatch(r.out, /[\x1b\r]/, 'no escape character and no carriage return reach the terminal');
    t.match(r.out, /Evil\\r\\e\[2K\\e\[1A/, 'they are shown escaped');
    const fake = r.out.split('\n').filter((line) => /^(==> box: )?(boxsig: verified|Successfully added box)/.test(line));
    t.same(fake, [], 'no line passes for a verified or added box');
    t.same(leftovers(L, 'acme/esc'), []);
  });

  t.test("credentials: Vagrant's token and user info in URLs, sent as Vagrant sends them, never shown", async (t) => {
    const srv: Server = await serve();
    t.teardown(() => srv.close());
    const token = 'tok-' + 'x'.repeat(20);
    const box = signed(L, path.join(L.dir, 'private.box'), 'acme/private', '1.0', [L.key]);
    srv.routes.set('/acme/private', {
      body: catalogJson('acme/private', [{ version: '1.0', url: `${srv.url}/private.box`, file: box }]),
      contentType: 'application/json',
      authorization: `Bearer ${token}`,
    });
    srv.routes.set('/private.box', { file: box, authorization: `Bearer ${token}` });
    const env = { ...L.env, VAGRANT_SERVER_URL: srv.url, VAGRANT_CLOUD_TOKEN: token };
    const r = await vagrantAsync(L, ['box', 'add', 'acme/private'], cwd('token'), env);
    t.equal(r.code, 0, 'vagrant box add ORG/NAME against a server that needs the token', { output: r.out });
    t.match(r.out, /Successfully added box 'acme\/private' \(v1\.0\)/);
    t.same(
      srv.requests.map((q) => `${q.method} ${q.path} ${q.headers.authorization}`),
      ['HEAD /acme/private Bearer ' + token, 'GET /acme/private Bearer ' + token, 'GET /private.box Bearer ' + token],
      'the Bearer header on the catalog and on the box, as Vagrant sends it',
    );
    t.notMatch(r.out, token, 'the token is not shown');

    srv.requests.length = 0;
    const basic = signed(L, path.join(L.dir, 'basic.box'), 'acme/basic', '1.0', [L.key]);
    srv.routes.set('/basic.box', { file: basic, authorization: `Basic ${Buffer.from('al@ice:s3cr:t').toString('base64')}` });
    const url = `${srv.url.replace('http://', 'http://al%40ice:s3cr%3At@')}/basic.box`;
    const b = await vagrantAsync(L, ['box', 'add', '--name', 'acme/basic', url], cwd('basic'), { ...L.env, VAGRANT_LOG: 'info' });
    t.equal(b.code, 0, 'user info in a URL becomes Basic authentication', { output: b.out });
    const running = b.out.split('\n').find((l) => l.includes('add_box: running'));
    t.ok(running, 'the plugin logs the boxsig command line');
    t.notMatch(running ?? '', /s3cr/, 'the password is not on the command line of boxsig');
    t.notMatch(
      b.out
        .split('\n')
        .filter((l) => !/^\s*(INFO|DEBUG|WARN)\b/.test(l) && !l.includes(' INFO '))
        .join('\n'),
      /s3cr/,
      'nor shown',
    );
  });
}

/** A signed box of this name (one per kill run), from one base box with a 2 MB disk image. */
const bases = new Map<string, string>();
function signedFor(lab: Lab, name: string): string {
  let base = bases.get(lab.dir);
  if (!base) {
    base = makeBoxFile(path.join(lab.dir, 'kill-base.box'), { disk: 2_000_000 });
    bases.set(lab.dir, base);
  }
  return signed(lab, path.join(lab.dir, `${name.replace('/', '_')}.box`), name, '1.0', [lab.key], 'virtualbox', base);
}
