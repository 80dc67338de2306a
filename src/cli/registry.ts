/**
 * `boxsig registry …`: run the registry server and administer it. The
 * registry's modules (Fastify, pg, the AWS SDK) are loaded only when a
 * registry command runs, so that the other commands start as fast as before.
 */
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { usage } from '../errors.js';
import type { ConfigFlags } from '../registry/config.js';
import { action, examples, jsonOption } from './common.js';
import { err, out, printJson } from './io.js';
import { createEscrowBoxCommand, registerKeyCommands } from './registry-keys.js';

export interface EngineFlags extends ConfigFlags {
  json?: boolean;
}

/**
 * The options that say where the registry's data is: the same on serve and on every admin
 * command, so that one set of flags (or one config file) serves them all.
 */
export function engineOptions(cmd: Command, _blobs = false): Command {
  return cmd
    .option('--config <file>', 'registry config file (JSON)')
    .option('--data <dir>', 'embedded registry: metadata (and blobs) in this directory')
    .option('--database <url>', 'PostgreSQL URL (postgres://…)')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (credentials from AWS_* variables)')
    .option('--s3-bucket <bucket>', 'S3 bucket')
    .option('--s3-region <region>', 'S3 region')
    .option('--s3-prefix <prefix>', 'key prefix in the bucket');
}

export async function config(flags: EngineFlags, need: 'all' | 'metadata') {
  const { loadConfig } = await import('../registry/config.js');
  return loadConfig(flags, process.env, need);
}

export async function withDb<T>(flags: EngineFlags, fn: (db: import('../registry/db/engine.js').Db) => Promise<T>): Promise<T> {
  const { openDatabase } = await import('../registry/open.js');
  const db = await openDatabase(await config(flags, 'metadata'));
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export async function withRegistry<T>(flags: EngineFlags, fn: (reg: import('../registry/registry.js').Registry) => Promise<T>): Promise<T> {
  const { openRegistry } = await import('../registry/open.js');
  const reg = await openRegistry(await config(flags, 'all'));
  try {
    return await fn(reg);
  } finally {
    await reg.close();
  }
}

export function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw usage(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function readPolicy(file: string | undefined): string | null {
  if (!file) return null;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw usage(`cannot read the policy file ${file}: ${(e as Error).message}`);
  }
}

export function show(json: boolean | undefined, value: Record<string, unknown>, human: () => void): void {
  if (json) printJson({ ok: true, ...value });
  else human();
}

// long: a declarative commander table: one option list and a one-line library call per subcommand
export function registerRegistryCommands(program: Command): void {
  const registry = program.command('registry').description('the boxsig registry: serve it, and manage its orgs, tokens and boxes');

  engineOptions(
    examples(
      registry.command('serve').description('run the registry (Vagrant Cloud API v1, catalogs, downloads, upload verification)'),
      'boxsig registry serve --data ./registry --listen 0.0.0.0:8080 --public-url https://boxes.acme.example',
    ),
    true,
  )
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8484)')
    .option('--public-url <url>', 'the URL clients reach the registry by (behind a load balancer)')
    .action(
      action(async (opts: EngineFlags) => {
        const { serve } = await import('../registry/serve.js');
        const running = await serve(await config(opts, 'all'), { signals: true });
        err(`boxsig registry: listening on ${running.url} (${running.reg.db.description}; blobs in ${running.reg.blobs.description})`);
        err(`boxsig registry: registry key ${running.reg.signer?.verifierKey} (clients pin it: boxsig registry key)`);
        await new Promise<void>((resolve) => running.app.server.once('close', () => resolve()));
      }),
    );

  const org = registry.command('org').description('organizations: create, list, set the upload policy, register keys');
  engineOptions(
    examples(
      org.command('create').argument('<org>', 'organization name').description('create an organization'),
      'boxsig registry org create acme --policy acme-policy.json --data ./registry',
    ),
  )
    .option('--policy <file>', 'the boxsig.json policy every upload to the org must satisfy (default: signatures required, trust on first use)')
    .addOption(jsonOption())
    .action(
      action(async (name: string, opts: EngineFlags & { policy?: string }) => {
        const { createOrg } = await import('../registry/admin.js');
        const o = await withDb(opts, (db) => createOrg(db, name, readPolicy(opts.policy)));
        show(opts.json, { org: o }, () => out(`created organization ${o.name}`));
      }),
    );
  engineOptions(
    examples(
      org.command('policy').argument('<org>', 'organization name').description("replace an organization's upload policy"),
      'boxsig registry org policy acme --policy acme-policy.json --data ./registry',
    ),
  )
    .requiredOption('--policy <file>', 'the boxsig.json policy')
    .addOption(jsonOption())
    .action(
      action(async (name: string, opts: EngineFlags & { policy: string }) => {
        const { setPolicy } = await import('../registry/admin.js');
        const o = await withDb(opts, (db) => setPolicy(db, name, readPolicy(opts.policy)!));
        show(opts.json, { org: o }, () => out(`updated the policy of ${o.name}`));
      }),
    );
  engineOptions(examples(org.command('list').description('list organizations'), 'boxsig registry org list --data ./registry --json'))
    .addOption(jsonOption())
    .action(
      action(async (opts: EngineFlags) => {
        const { listOrgs } = await import('../registry/admin.js');
        const orgs = await withDb(opts, (db) => listOrgs(db));
        show(opts.json, { orgs }, () => orgs.forEach((o) => out(`${o.name}\t${o.boxes} boxes\t${o.tokens} tokens\tcreated ${o.created}`)));
      }),
    );
  engineOptions(
    examples(
      org
        .command('key')
        .argument('<org>', 'organization name')
        .argument('<files...>', 'public key files (org keys, certified repository keys) and revocation certificates')
        .description("register an org's public keys (an offline org key's public part), certified repository keys and revocation certificates"),
      'boxsig registry org key acme org.public.asc --data ./registry',
    ),
  )
    .option('--require', "from now on, uploads to the org must be signed by a key an org key given here certified for the box's name")
    .addOption(jsonOption())
    .action(
      action(async (name: string, files: string[], opts: EngineFlags & { require?: boolean }) => {
        const { addOrgKeyFiles } = await import('../registry/admin.js');
        const results = await withDb(opts, (db) =>
          addOrgKeyFiles(
            db,
            name,
            files.map((f) => ({ bytes: readFile(f), file: f })),
            { require: opts.require },
          ),
        );
        const keys = [...new Set(results.flatMap((r) => r.keys))];
        const revocations = results.flatMap((r) => r.revocations);
        show(opts.json, { keys, revocations }, () => {
          for (const k of keys) out(`key ${k}`);
          for (const r of revocations) out(`revocation by ${r}`);
        });
      }),
    );

  const token = registry.command('token').description('tokens: scoped to one org and one role, stored hashed');
  engineOptions(
    examples(
      token.command('create').description('create a token (printed once)'),
      'boxsig registry token create --org acme --role publish --member ci --data ./registry',
    ),
  )
    .requiredOption('--org <org>', 'organization')
    .addOption(new Option('--role <role>', 'what the token may do').choices(['read', 'publish', 'admin']).makeOptionMandatory())
    .option('--member <name>', 'who holds the token (default: your user name)')
    .option('--description <text>', 'what the token is for')
    .option('--expires <duration>', 'expiry: 90d, 1y or a date')
    .addOption(jsonOption())
    .action(
      action(async (opts: EngineFlags & { org: string; role: 'read' | 'publish' | 'admin'; member?: string; description?: string; expires?: string }) => {
        const { createToken } = await import('../registry/admin.js');
        const { parseDuration } = await import('../manifest/duration.js');
        const expires = opts.expires ? new Date(Date.now() + parseDuration(opts.expires, new Date(), '--expires') * 1000) : undefined;
        const t = await withDb(opts, (db) => createToken(db, { org: opts.org, role: opts.role, member: opts.member, description: opts.description, expires }));
        show(opts.json, { ...t }, () => {
          out(t.token);
          err(`boxsig registry: token ${t.id} (${t.role} of ${t.org}, held by ${t.member}) — shown once; store it now`);
        });
      }),
    );
  engineOptions(
    examples(
      token.command('list').description("list an organization's tokens (never the tokens themselves)"),
      'boxsig registry token list --org acme --data ./registry',
    ),
  )
    .requiredOption('--org <org>', 'organization')
    .addOption(jsonOption())
    .action(
      action(async (opts: EngineFlags & { org: string }) => {
        const { listTokens } = await import('../registry/admin.js');
        const tokens = await withDb(opts, (db) => listTokens(db, opts.org));
        show(opts.json, { tokens }, () =>
          tokens.forEach((t) => out(`${t.id}\t${t.role}\t${t.member}\t${t.revoked ? `revoked ${t.revoked}` : t.expires ? `expires ${t.expires}` : 'valid'}`)),
        );
      }),
    );
  engineOptions(
    examples(
      token.command('revoke').argument('<id>', 'the token ID (registry token list shows them)').description('revoke a token'),
      'boxsig registry token revoke tok_0123abcd --data ./registry',
    ),
  )
    .addOption(jsonOption())
    .action(
      action(async (id: string, opts: EngineFlags) => {
        const { revokeToken } = await import('../registry/admin.js');
        const t = await withDb(opts, (db) => revokeToken(db, id));
        show(opts.json, { token: t }, () => out(`revoked token ${t.id} (${t.role} of ${t.org}, ${t.member})`));
      }),
    );

  const box = registry.command('box').description('boxes');
  engineOptions(
    examples(
      box.command('create').argument('<org/name>', 'the box name').description('create a box (Packer needs it to exist)'),
      'boxsig registry box create acme/ubuntu-24.04 --private --data ./registry',
    ),
    true,
  )
    .option('--private', 'only tokens of the org may read it')
    .option('--description <text>', 'short description')
    .option('--escrow', 'the registry signs its uploads with an escrow key it generates and holds (docs/REGISTRY.md, "Escrow signing")')
    .addOption(jsonOption())
    .action(
      action(async (name: string, opts: EngineFlags & { private?: boolean; description?: string; escrow?: boolean }) => {
        if (opts.escrow) return createEscrowBoxCommand(name, opts);
        const { createBoxAsOperator } = await import('../registry/admin.js');
        const b = await withRegistry(opts, (reg) => createBoxAsOperator(reg, name, { private: opts.private, description: opts.description }));
        show(opts.json, { box: { name: b.tag, private: b.private } }, () => out(`created box ${b.tag}${b.private ? ' (private)' : ''}`));
      }),
    );
  engineOptions(examples(box.command('list').description('list boxes'), 'boxsig registry box list --org acme --data ./registry'))
    .option('--org <org>', 'only this organization')
    .addOption(jsonOption())
    .action(
      action(async (opts: EngineFlags & { org?: string }) => {
        const { listBoxes } = await import('../registry/admin.js');
        const boxes = await withDb(opts, (db) => listBoxes(db, opts.org));
        show(opts.json, { boxes }, () => boxes.forEach((b) => out(`${b.name}\t${b.released}/${b.versions} versions released${b.private ? '\tprivate' : ''}`)));
      }),
    );

  registerKeyCommands(registry, org);

  engineOptions(
    examples(registry.command('audit').description('the audit log: every write, by whom'), 'boxsig registry audit --org acme --limit 20 --data ./registry'),
  )
    .option('--org <org>', 'only this organization')
    .option('--limit <n>', 'the last N lines', (v) => Number(v), 100)
    .addOption(jsonOption())
    .action(
      action(async (opts: EngineFlags & { org?: string; limit: number }) => {
        const { auditLog } = await import('../registry/admin.js');
        const lines = await withDb(opts, (db) => auditLog(db, { org: opts.org, limit: opts.limit }));
        show(opts.json, { audit: lines }, () => lines.forEach((l) => out(`${l.seq}\t${l.at}\t${l.actor}\t${l.action}\t${JSON.stringify(l.target)}`)));
      }),
    );

  engineOptions(
    examples(
      registry.command('backup').description('copy the embedded database while the registry runs (PostgreSQL: use pg_dump)'),
      'boxsig registry backup --to registry-$(date +%F).db --data ./registry',
    ),
  )
    .requiredOption('--to <file>', 'the copy (must not exist)')
    .addOption(jsonOption())
    .action(
      action(async (opts: EngineFlags & { to: string }) => {
        if (fs.existsSync(opts.to)) throw usage(`${opts.to} already exists`);
        const c = await config(opts, 'metadata');
        if (c.database) throw usage('the registry uses PostgreSQL: back it up with pg_dump (docs/REGISTRY.md, "Back up and restore")');
        await withDb(opts, async (db) => (db as import('../registry/db/sqlite.js').SqliteDb).backup(opts.to));
        show(opts.json, { backup: opts.to }, () => out(`backed up the registry database to ${opts.to}; now copy the blobs (docs/REGISTRY.md)`));
      }),
    );

  engineOptions(
    examples(
      registry.command('gc').description('collect orphaned blobs, dead uploads and ended upload sessions now (registry serve also does it periodically)'),
      'boxsig registry gc --grace 3600 --data ./registry',
    ),
    true,
  )
    .option('--grace <seconds>', 'only objects older than this, and upload sessions that ended longer ago', (v) => Number(v))
    .addOption(jsonOption())
    .action(
      action(async (opts: EngineFlags & { grace?: number }) => {
        const { runGc } = await import('../registry/admin.js');
        const r = await withRegistry(opts, (reg) => runGc(reg, opts.grace));
        show(opts.json, { gc: r }, () =>
          out(
            `${r.objects} objects deleted, ${r.blobRows} blob rows removed, ${r.deadUploads} dead uploads, ${r.expiredUploads} expired upload URLs, ${r.endedUploads} ended upload sessions deleted`,
          ),
        );
      }),
    );
}
