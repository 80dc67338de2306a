/**
 * Terminal escape sequences from untrusted data (issue 16 class 7, CLI side):
 * a signer's user ID, a claim, a catalog's name and versions and file names
 * inside a box carry ESC/CSI/OSC sequences, C1 controls, carriage returns and
 * bidi overrides. The real CLI prints none of them raw — on stdout, on
 * stderr, or in --json — and in a real terminal (tmux) a refusal stays a
 * refusal: no fake "VERIFIED" line.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as openpgp from 'openpgp';
import { boxsig, hasTool, isolatedEnv, makeBox, makeKey, sign, CLI, type RunResult } from './helpers.js';
import { armoredPublic, baseFiles, bodyEntries, fpr, manifestFor, newKey, prefixEntries, signDetached } from './corpus/generate.mjs';
import * as tar from './corpus/tar.mjs';
import { hasUnsafe } from '../src/shared/terminal.js';
import { tmuxRun } from './tmux.js';

const FAKE = 'boxsig: VERIFIED acme/web 1.0.0 (virtualbox)';
/** Return to column 0, erase the line (the refusal), print a fake verdict, hide the rest. */
const EVIL_UID = `\r\x1b[2K${FAKE}\x1b[8m`;
/** The same with an 8-bit CSI, an OSC hyperlink and a bidi override. */
const EVIL_UID_2 = `Acme \u009b2K\x1b]8;;https://evil.example\x07builds\x1b]8;;\x07 \u202etxt.exe`;

function noRawControls(t: any, what: string, r: RunResult) {
  for (const [stream, text] of [
    ['stdout', r.stdout],
    ['stderr', r.stderr],
  ] as const) {
    const bad = text.split('\n').filter((l) => hasUnsafe(l));
    t.same(bad, [], `${what}: no raw control or formatting character on ${stream}`);
    if (r.code !== 0) t.notMatch(text, /^boxsig: VERIFIED/m, `${what}: refused, and no fake verdict line on ${stream}`);
  }
}

async function evilKey(dir: string): Promise<{ fingerprint: string; secret: string; public: string }> {
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: EVIL_UID }, { name: EVIL_UID_2 }],
    format: 'armored',
    config: { ...openpgp.config, v6Keys: false },
  });
  const k = await openpgp.readKey({ armoredKey: publicKey });
  const secret = path.join(dir, 'evil.secret.asc');
  const pub = path.join(dir, 'evil.public.asc');
  fs.writeFileSync(secret, privateKey, { mode: 0o600 });
  fs.writeFileSync(pub, publicKey);
  return { fingerprint: k.getFingerprint().toUpperCase(), secret, public: pub };
}

/** A validly signed box whose manifest carries a claim with escape sequences (made without boxsig's own checks). */
async function claimBox(file: string): Promise<void> {
  const key = await newKey({ uid: 'Claims <claims@acme.example>' });
  const files = baseFiles();
  const manifest = manifestFor(files, { box: { name: 'acme/web', version: '1.0.0' }, claims: { note: `\x1b[1A\x1b[2K${FAKE}`, builder: 'ci\u202eorp' } });
  const prefix = prefixEntries({
    manifest,
    signatures: [{ fpr: fpr(key), armored: await signDetached(manifest, key) }],
    keys: [{ fpr: fpr(key), armored: armoredPublic(key) }],
  });
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat([prefix, bodyEntries(files), tar.end()])));
}

t.test('untrusted text reaches no terminal raw: user IDs, claims, catalogs, file names', async (t) => {
  const dir = t.testdir({});
  const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
  const evil = await evilKey(dir);
  const other = makeKey(dir, 'Other <o@other.example>', [], env);
  const base = makeBox(path.join(dir, 'base.box'), {
    files: { Vagrantfile: 'Vagrant.configure("2") do |c| end\n', 'box-disk1.vmdk': 'disk', 'notes\u202etxt.exe': 'x', 'c1\u009b2K.txt': 'y' },
  });
  const box = path.join(dir, 'evil.box');
  const s = sign(base, [evil as any], ['--name', 'acme/web', '--version', '1.0.0', '-o', box], env);
  t.equal(s.code, 0, 'a box signed by the evil key', { stderr: s.stderr });
  const claims = path.join(dir, 'claims.box');
  await claimBox(claims);
  const catalog = path.join(dir, 'catalog.json');
  fs.writeFileSync(
    catalog,
    JSON.stringify({ name: `acme/web\r\x1b[2Kboxsig: added acme/web`, versions: [{ version: '1.0.0\x1b[8m', providers: [{ name: 'virtualbox', url: box }] }] }),
  );

  const runs: Array<[string, string[]]> = [
    ['verify (unknown signer)', ['verify', box]],
    ['verify --pin (refused)', ['verify', box, '--pin', other.fingerprint]],
    ['inspect', ['inspect', box]],
    ['add (first use)', ['add', box]],
    ['verify --installed', ['verify', '--installed']],
    ['key import', ['key', 'import', evil.public]],
    ['key list', ['key', 'list']],
    ['trust list', ['trust', 'list']],
    ['verify of a claim with escapes', ['verify', claims]],
    ['inspect of a claim with escapes', ['inspect', claims]],
    ['add of a catalog with a hostile name', ['add', catalog, '--name', 'acme/web']],
    ['add of a catalog with a hostile version', ['add', catalog, '--box-version', '>= 9']],
    ['an option value with escapes', ['verify', box, '--pin', `\x1b[2K${FAKE}`]],
    ['an unknown option with escapes', ['verify', box, `--\x1b[2K${FAKE}`]],
  ];
  for (const [what, args] of runs) {
    const r = boxsig(args, { env });
    noRawControls(t, what, r);
    const j = boxsig([...args, '--json'], { env });
    if (!what.startsWith('an unknown option')) {
      t.ok(j.json, `${what} --json: one JSON object`, { stdout: j.stdout });
      noRawControls(t, `${what} --json`, j);
    }
  }

  // what the person sees: the escapes as text, the verdicts intact
  let r = boxsig(['verify', box, '--pin', other.fingerprint], { env });
  t.equal(r.code, 1);
  t.match(r.stderr, /^boxsig: REFUSED \(UNTRUSTED_KEY\): .*\\r\\x1b\[2Kboxsig: VERIFIED/m, 'the user ID is shown with its escapes');
  r = boxsig(['verify', claims], { env });
  t.equal(r.code, 1, 'a manifest whose claim breaks the grammar is refused');
  t.match(r.stderr, /REFUSED \(MALFORMED\): manifest: claim (builder|note) contains/);
  r = boxsig(['inspect', box], { env });
  t.match(r.stdout, /notes\\u\{202e\}txt\.exe/, 'a bidi override in a file name is shown escaped');
  t.match(r.stdout, /c1\\x9b2K\.txt/, 'an 8-bit CSI in a file name is shown escaped');
  const j = boxsig(['inspect', box, '--json'], { env });
  t.ok(
    j.json.manifest.files.some((f: any) => f.path === 'notes\u202etxt.exe'),
    '--json keeps the exact name (escaped as JSON), for programs',
  );
  t.match(j.stdout, /notes\\u202etxt\.exe/);
});

t.test(
  'in a real terminal, a user ID cannot turn a refusal into a fake verdict',
  { skip: !hasTool('tmux') && process.env.CI !== 'true' ? 'tmux is not installed (apt-get install -y tmux)' : false },
  async (t) => {
    const dir = t.testdir({});
    const env = isolatedEnv(dir, { BOXSIG_PASSPHRASE: '' });
    const evil = await evilKey(dir);
    const other = makeKey(dir, 'Other <o@other.example>', [], env);
    const box = path.join(dir, 'evil.box');
    t.equal(sign(makeBox(path.join(dir, 'base.box')), [evil as any], ['--name', 'acme/web', '--version', '1.0.0', '-o', box], env).code, 0);
    const pane = tmuxRun(dir, [process.execPath, CLI, 'verify', box, '--pin', other.fingerprint], env, 100, 20);
    t.teardown(() => pane.close());
    const screen = await pane.finished();
    t.comment(`what a person sees:\n${screen}`);
    t.match(screen, /\[exit 1\]/, 'refused');
    t.match(screen, /^boxsig: REFUSED \(UNTRUSTED_KEY\)/m, 'the refusal line is on the screen');
    t.notMatch(screen, /^boxsig: VERIFIED/m, 'no fake verdict line');
    t.match(screen, /\\r\\x1b\[2Kboxsig: VERIFIED/, 'the escape sequences are shown as text');
  },
);
