/**
 * An org admin's key acts over HTTP, with a token of the org's `admin` role
 * (the same acts as the operator's `registry org key` and `registry org
 * certify`, audited under the token's member):
 * - `POST /boxsig/v1/orgs/ORG/keys` `{"keys": "<armored>", "require": false}`:
 *   register public keys, certified repository keys, revocations;
 * - `POST /boxsig/v1/orgs/ORG/certify` `{"key": "<armored>", "scope": "ORG/GLOB"}`:
 *   certify with the org key the registry holds; answers the certified key.
 * The role is checked before any key is read.
 */
import { usage } from '../../errors.js';
import { isPlainObject } from '../../shared/json.js';
import { authorize, type Principal } from '../auth.js';
import { mustOrg } from '../rows.js';
import { addOrgKeyFiles } from '../admin.js';
import type { Registry } from '../registry.js';
import { certifyByRegistry } from './admin.js';

function field(body: unknown, name: string): string {
  const v = isPlainObject(body) ? body[name] : undefined;
  if (typeof v !== 'string' || !v) throw usage(`the request needs "${name}" (a string)`);
  return v;
}

async function asAdmin(reg: Registry, p: Principal | null, orgName: string, what: string): Promise<Principal> {
  const org = await mustOrg(reg.db, orgName);
  authorize(p, org, 'admin', what);
  return p!;
}

export async function registerKeysByApi(reg: Registry, p: Principal | null, orgName: string, body: unknown) {
  const actor = await asAdmin(reg, p, orgName, 'registering keys');
  const keys = field(body, 'keys');
  const require = isPlainObject(body) && body.require === true;
  const results = await addOrgKeyFiles(reg.db, orgName, [{ bytes: Buffer.from(keys, 'utf8'), file: 'the request' }], { require }, actor);
  return {
    org: results[0].org,
    keys: results.flatMap((r) => r.registered),
    revocations: results.flatMap((r) => r.revocations),
  };
}

export async function certifyByApi(reg: Registry, p: Principal | null, orgName: string, body: unknown) {
  const actor = await asAdmin(reg, p, orgName, 'certifying a key');
  return certifyByRegistry(reg.db, reg.keyEncryption, orgName, Buffer.from(field(body, 'key'), 'utf8'), 'the request', field(body, 'scope'), actor);
}
