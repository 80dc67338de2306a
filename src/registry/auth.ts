/**
 * Tokens and who may do what. A token belongs to exactly one org and has one
 * role (read < publish < admin); only its SHA-256 is stored (tokens are 256
 * random bits, so a fast hash is enough). Every authorisation decision of the
 * registry goes through `authorize`.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import os from 'node:os';
import { BoxsigError } from '../errors.js';
import { nowText, type Sql } from './db/engine.js';
import type { Role } from './names.js';

const TOKEN_PREFIX = 'boxsig_';
const TOKEN_RE = /^boxsig_[A-Za-z0-9_-]{43}$/;
const RANK: Record<Role, number> = { read: 1, publish: 2, admin: 3 };

export type Principal =
  | { kind: 'token'; tokenId: string; orgId: string; org: string; role: Role; member: string }
  /** The operator running an admin command on the database itself. */
  | { kind: 'operator'; user: string };

export function operator(): Principal {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return { kind: 'operator', user };
}

export function actorOf(p: Principal | null): string {
  if (!p) return 'anonymous';
  return p.kind === 'operator' ? `operator ${p.user}` : `token ${p.tokenId.slice(0, 8)} (${p.member}, ${p.role} of ${p.org})`;
}

export function newToken(): { token: string; hash: string; id: string } {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token), id: randomUUID() };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The token of an `Authorization: Bearer …` header (or the `access_token` query parameter older clients use). */
export function bearerOf(header: string | undefined, query?: unknown): string | null {
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new BoxsigError('DENIED', 'the Authorization header must be "Bearer <token>"');
    return m[1];
  }
  if (typeof query === 'string' && query) return query;
  return null;
}

interface TokenRow {
  id: string;
  org_id: string;
  org: string;
  role: Role;
  member: string;
  hash: string;
  expires_at: string | null;
  revoked_at: string | null;
}

/** The principal a token stands for; DENIED for an unknown, revoked or expired token. */
export async function authenticate(q: Sql, token: string | null): Promise<Principal | null> {
  if (token === null) return null;
  if (!TOKEN_RE.test(token)) throw new BoxsigError('DENIED', 'the token is not a boxsig registry token (they start with "boxsig_")');
  const hash = hashToken(token);
  const row = await q.one<TokenRow>(
    `SELECT t.id, t.org_id, o.name AS org, t.role, t.member, t.hash, t.expires_at, t.revoked_at
       FROM tokens t JOIN orgs o ON o.id = t.org_id WHERE t.hash = $1`,
    [hash],
  );
  if (!row || !timingSafeEqual(Buffer.from(row.hash), Buffer.from(hash))) throw new BoxsigError('DENIED', 'the token is not valid');
  if (row.revoked_at) throw new BoxsigError('DENIED', 'the token was revoked');
  if (row.expires_at && row.expires_at <= nowText()) throw new BoxsigError('DENIED', `the token expired on ${row.expires_at}`);
  return { kind: 'token', tokenId: row.id, orgId: row.org_id, org: row.org, role: row.role, member: row.member };
}

/** Whether the principal holds at least `role` in the org. */
export function allowed(p: Principal | null, orgId: string, role: Role): boolean {
  if (!p) return false;
  if (p.kind === 'operator') return true;
  return p.orgId === orgId && RANK[p.role] >= RANK[role];
}

/** Refuse unless the principal holds at least `role` in the org (401 without a token, 403 with another's). */
export function authorize(p: Principal | null, org: { id: string; name: string }, role: Role, what: string): void {
  if (allowed(p, org.id, role)) return;
  if (!p) throw new BoxsigError('DENIED', `${what} needs a token (Authorization: Bearer …) with the ${role} role in ${org.name}`, { status: 401 });
  const mine = p.kind === 'token' ? `this token is ${p.role} of ${p.org}` : '';
  throw new BoxsigError('DENIED', `${what} needs the ${role} role in ${org.name}; ${mine}`, { status: 403 });
}
