/**
 * A key as the checks use it: boxsig's packet structure (everything ever
 * seen for the key), the OpenPGP.js view that judges self-signatures,
 * bindings and expiry, and the revocations that verify.
 *
 * The view is built without key and subkey revocations (boxsig judges those
 * itself, src/keys/revocation.ts) and without signatures carrying a critical
 * subpacket boxsig does not understand (invalid by RFC 4880). The rest of
 * the code passes the view around as the key; `handleOf` finds the rest.
 */
import { refuse } from '../errors.js';
import { splitCerts, type Cert, type Sig } from './cert.js';
import { PacketError, SIGTYPE, readPackets, writePackets, type Packet } from './packets.js';
import * as pgp from './pgp.js';
import { verifiedRevocations, type CertLookup, type Revocation } from './revocation.js';

export interface KeyHandle {
  cert: Cert;
  view: pgp.PublicKey;
  revocations: Revocation[];
  /** keys of certifiers that travelled with this key in a box (found by fingerprint only) */
  carried?: Map<string, Cert>;
}

const handles = new WeakMap<object, KeyHandle>();

const JUDGED_BY_BOXSIG: ReadonlySet<number> = new Set([SIGTYPE.keyRevocation, SIGTYPE.subkeyRevocation]);

/** Whether a self-signature, binding or certification may count at all. */
function usable(s: Sig): boolean {
  return !JUDGED_BY_BOXSIG.has(s.info.type) && s.info.unknownCritical.length === 0 && s.info.created !== null;
}

function viewPackets(c: Cert): Packet[] {
  const out: Packet[] = [c.primary, ...c.direct.filter((s) => usable(s) && s.info.type === SIGTYPE.direct).map((s) => s.packet)];
  for (const u of c.users) out.push(u.packet, ...u.sigs.filter((s) => usable(s) || s.info.type === SIGTYPE.certRevocation).map((s) => s.packet));
  for (const k of c.subkeys) out.push(k.packet, ...k.sigs.filter(usable).map((s) => s.packet));
  return out;
}

/** Open a key for the checks. `lookup` finds designated revokers' keys. */
export async function openKey(c: Cert, lookup: CertLookup = async () => null, what = `key ${c.info.fingerprint}`): Promise<pgp.PublicKey> {
  let view: pgp.PublicKey;
  try {
    view = await pgp.keyFromPackets(writePackets(viewPackets(c)));
  } catch (e) {
    throw refuse('MALFORMED', `${what}: not a usable OpenPGP key (${(e as Error).message})`);
  }
  handles.set(view, { cert: c, view, revocations: await verifiedRevocations(c, lookup) });
  return view;
}

/** The handle of a key opened by `openKey`, or of any OpenPGP.js key (read again from its packets). */
export async function handleOf(key: pgp.AnyKey): Promise<KeyHandle> {
  const known = handles.get(key);
  if (known) return known;
  let certs: Cert[];
  try {
    certs = splitCerts(readPackets(pgp.publicBytes(key))).certs;
  } catch (e) {
    if (e instanceof PacketError) throw refuse('MALFORMED', `key ${pgp.fingerprintOf(key)}: ${e.message}`);
    throw e;
  }
  const view = await openKey(certs[0]);
  const h = handles.get(view)!;
  handles.set(key, h);
  return h;
}

/** Remember the certifying keys a box carried with this key. */
export function setCarried(key: pgp.PublicKey, carried: Map<string, Cert>): void {
  const h = handles.get(key);
  if (h && carried.size) h.carried = carried;
}
