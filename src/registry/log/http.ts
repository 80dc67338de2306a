/**
 * The log's endpoints, under /boxsig/v1/log (read-only, no token):
 *
 *   GET key                                  the registry key: origin, verifier key (to pin)
 *   GET checkpoint                           the latest signed checkpoint (text/plain, C2SP)
 *   GET inclusion?index=N&size=M             entry N, and its inclusion proof in the tree of M
 *   GET inclusion?hash=LEAFHASH&size=M       the same, found by its leaf hash (hex)
 *   GET consistency?from=A&to=B              the consistency proof between two tree sizes
 *   GET entries?start=A&end=B                entries [A, B) (at most 1,000), with the compact
 *                                            range of [0, A): the hashes that, with them, give
 *                                            the root of the tree of B
 *
 * Hashes are base64, as in checkpoints.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BoxsigError } from '../../errors.js';
import type { Registry } from '../registry.js';
import { consistencyProof, findLeaf, inclusionProof, readEntries, readEntry, readHead } from './store.js';
import { latestCheckpoint } from './service.js';

const b64 = (h: Buffer) => h.toString('base64');

function num(q: Record<string, unknown>, name: string, fallback?: number): number {
  const v = q[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(v)) {
    throw new BoxsigError('USAGE', `${name} must be a decimal number`, { status: 400 });
  }
  return Number(v);
}

function signer(reg: Registry) {
  if (!reg.signer) throw new BoxsigError('UNAVAILABLE', 'this registry process has no signing key', { status: 503 });
  return reg.signer;
}

export function registerLogRoutes(app: FastifyInstance, reg: Registry): void {
  const base = '/boxsig/v1/log';
  const query = (req: FastifyRequest) => (req.query ?? {}) as Record<string, unknown>;
  app.get(`${base}/key`, async () => {
    const s = signer(reg);
    return { ok: true, origin: s.name, verifierKey: s.verifierKey, algorithm: 'ed25519', publicKey: b64(s.publicKey) };
  });
  app.get(`${base}/checkpoint`, async (_req, reply) => {
    const note = await latestCheckpoint(reg.db, signer(reg));
    return reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send(note);
  });
  app.get(`${base}/inclusion`, async (req) => {
    const q = query(req);
    const size = num(q, 'size', (await readHead(reg.db)).size);
    let index: number;
    if (q.hash !== undefined) {
      if (typeof q.hash !== 'string' || !/^[0-9a-f]{64}$/.test(q.hash)) throw new BoxsigError('USAGE', 'hash must be a leaf hash in hex', { status: 400 });
      const found = await findLeaf(reg.db, q.hash);
      if (found === null || found >= size) throw new BoxsigError('NOT_FOUND', `no entry with leaf hash ${q.hash} in the tree of ${size}`);
      index = found;
    } else index = num(q, 'index');
    const proof = await inclusionProof(reg.db, index, size);
    return { index, size, data: await readEntry(reg.db, index), proof: proof.map(b64) };
  });
  app.get(`${base}/consistency`, async (req) => {
    const q = query(req);
    const from = num(q, 'from');
    const to = num(q, 'to');
    return { from, to, proof: (await consistencyProof(reg.db, from, to)).map(b64) };
  });
  app.get(`${base}/entries`, async (req) => {
    const q = query(req);
    const start = num(q, 'start');
    const end = num(q, 'end');
    const r = await readEntries(reg.db, start, end);
    return { start, end: start + r.entries.length, prefix: r.prefix.map(b64), entries: r.entries };
  });
}
