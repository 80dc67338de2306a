/**
 * A key as boxsig stores it: its packets, in the structure of a transferable
 * public key (RFC 4880 11.1), read and written without OpenPGP.js.
 *
 *   primary key, direct signatures (revocations, direct-key signatures),
 *   user IDs each with their signatures, subkeys each with their signatures
 *
 * Merging two copies of a key is a union: every signature packet seen is
 * kept, deduplicated by what it signs and its signature value (the unsigned
 * area, which anyone can rewrite, is not part of its identity). Nothing is
 * verified or dropped here — signatures are verified when they are used —
 * so no order of arrival can lose a revocation, an expiry or a
 * certification revocation.
 */
import {
  CERTIFICATION_TYPES,
  PacketError,
  TAG,
  SIGTYPE,
  parseKeyPacket,
  parseSignaturePacket,
  writePackets,
  type KeyInfo,
  type Packet,
  type SignatureInfo,
} from './packets.js';

export interface Sig {
  packet: Packet;
  info: SignatureInfo;
}

export interface Component {
  packet: Packet;
  sigs: Sig[];
}

export interface SubkeyComponent extends Component {
  info: KeyInfo;
}

export interface Cert {
  primary: Packet;
  info: KeyInfo;
  /** the input held secret key material (only the public part is kept) */
  hadSecret: boolean;
  /** signatures on the primary key itself (key revocations, direct-key signatures) */
  direct: Sig[];
  users: Component[];
  subkeys: SubkeyComponent[];
}

export interface SplitResult {
  certs: Cert[];
  /** signature packets outside any key (revocation certificates) */
  bare: Sig[];
}

/** The public part of a (sub)key packet. */
function publicPacket(p: Packet, info: KeyInfo): Packet {
  const tag = p.tag === TAG.secretKey ? TAG.publicKey : p.tag === TAG.secretSubkey ? TAG.publicSubkey : p.tag;
  return { tag, body: p.body.subarray(0, info.publicLength) };
}

function sigOf(p: Packet): Sig {
  try {
    return { packet: p, info: parseSignaturePacket(p.body) };
  } catch (e) {
    throw new PacketError(`a signature packet cannot be parsed: ${(e as Error).message}`);
  }
}

/** Signature types allowed after each kind of packet (RFC 4880 11.1, as GnuPG and Sequoia read it). */
const ALLOWED_AFTER: Record<'primary' | 'user' | 'subkey', ReadonlySet<number>> = {
  primary: new Set([SIGTYPE.direct, SIGTYPE.keyRevocation]),
  user: new Set([...CERTIFICATION_TYPES, SIGTYPE.certRevocation, SIGTYPE.direct, SIGTYPE.keyRevocation]),
  subkey: new Set([SIGTYPE.subkeyBinding, SIGTYPE.subkeyRevocation, SIGTYPE.keyRevocation]),
};

/**
 * Group packets into keys, following the grammar of a transferable public
 * key strictly: a signature must be of a type that belongs where it stands
 * (key revocations are accepted anywhere in a key: they are filed with the
 * primary), and packets that are no part of a key (markers, padding, other
 * tags below 40) are refused — Sequoia refuses such keys, and what both
 * GnuPG and Sequoia refuse boxsig must not read its own way. Trust packets
 * are ignored.
 */
export function splitCerts(packets: Packet[]): SplitResult {
  const certs: Cert[] = [];
  const bare: Sig[] = [];
  let cert: Cert | null = null;
  let component: Component | null = null;
  let place: 'primary' | 'user' | 'subkey' = 'primary';
  for (const p of packets) {
    switch (p.tag) {
      case TAG.publicKey:
      case TAG.secretKey: {
        const info = parseKeyPacket(p.body);
        cert = { primary: publicPacket(p, info), info, hadSecret: p.tag === TAG.secretKey, direct: [], users: [], subkeys: [] };
        certs.push(cert);
        component = null;
        place = 'primary';
        break;
      }
      case TAG.userId:
      case TAG.userAttribute:
        if (!cert) throw new PacketError('a user ID before any key');
        if (place === 'subkey') throw new PacketError('a user ID after the subkeys');
        component = { packet: p, sigs: [] };
        cert.users.push(component);
        place = 'user';
        break;
      case TAG.publicSubkey:
      case TAG.secretSubkey: {
        if (!cert) throw new PacketError('a subkey before any key');
        const info = parseKeyPacket(p.body);
        if (p.tag === TAG.secretSubkey) cert.hadSecret = true;
        const sub: SubkeyComponent = { packet: publicPacket(p, info), info, sigs: [] };
        cert.subkeys.push(sub);
        component = sub;
        place = 'subkey';
        break;
      }
      case TAG.signature: {
        const sig = sigOf(p);
        if (!cert) bare.push(sig);
        else fileSignature(cert, component, sig, place);
        break;
      }
      case TAG.trust:
        break; // keyring bookkeeping, ignored by every implementation
      default:
        if (p.tag < 40 || cert) throw new PacketError(`unexpected packet (tag ${p.tag}) in key data`);
      // tags 40-63 before any key are non-critical: ignored
    }
  }
  return { certs, bare };
}

function fileSignature(cert: Cert, component: Component | null, sig: Sig, place: 'primary' | 'user' | 'subkey'): void {
  const t = sig.info.type;
  if (!ALLOWED_AFTER[place].has(t)) {
    throw new PacketError(
      `a signature of type 0x${t.toString(16).padStart(2, '0')} where it does not belong (after the ${place === 'primary' ? 'primary key' : place === 'user' ? 'user ID' : 'subkey'})`,
    );
  }
  if (t === SIGTYPE.keyRevocation || t === SIGTYPE.direct || !component) cert.direct.push(sig);
  else component.sigs.push(sig);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

function addSigs(into: Sig[], from: Sig[]): number {
  const seen = new Set(into.map((s) => s.info.identity));
  let added = 0;
  for (const s of from) {
    if (seen.has(s.info.identity)) continue;
    seen.add(s.info.identity);
    into.push(s);
    added++;
  }
  return added;
}

/**
 * The union of two copies of one key: `into` keeps its order, new user IDs,
 * subkeys and signatures from `from` are appended. Returns how many packets
 * were added (0: `from` brought nothing new).
 */
export function mergeCert(into: Cert, from: Cert): { cert: Cert; added: number } {
  if (into.info.fingerprint !== from.info.fingerprint) throw new Error(`cannot merge key ${from.info.fingerprint} into ${into.info.fingerprint}`);
  const cert = cloneCert(into);
  let added = addSigs(cert.direct, from.direct);
  for (const u of from.users) {
    const mine = cert.users.find((x) => x.packet.tag === u.packet.tag && sameBytes(x.packet.body, u.packet.body));
    if (mine) added += addSigs(mine.sigs, u.sigs);
    else {
      cert.users.push({ packet: u.packet, sigs: [...u.sigs] });
      added += 1 + u.sigs.length;
    }
  }
  for (const k of from.subkeys) {
    const mine = cert.subkeys.find((x) => x.info.fingerprint === k.info.fingerprint && x.info.fingerprint !== '');
    if (mine) added += addSigs(mine.sigs, k.sigs);
    else {
      cert.subkeys.push({ packet: k.packet, info: k.info, sigs: [...k.sigs] });
      added += 1 + k.sigs.length;
    }
  }
  return { cert, added };
}

/** Attach bare signatures (revocation certificates) to a key, where they apply by type. Returns how many were new. */
export function attachSignatures(into: Cert, sigs: Sig[]): { cert: Cert; added: number } {
  const cert = cloneCert(into);
  return { cert, added: addSigs(cert.direct, sigs) };
}

function cloneCert(c: Cert): Cert {
  return {
    ...c,
    direct: [...c.direct],
    users: c.users.map((u) => ({ packet: u.packet, sigs: [...u.sigs] })),
    subkeys: c.subkeys.map((k) => ({ packet: k.packet, info: k.info, sigs: [...k.sigs] })),
  };
}

/** The packets of a key in transferable-public-key order. */
function certPackets(c: Cert): Packet[] {
  const out: Packet[] = [c.primary, ...c.direct.map((s) => s.packet)];
  for (const u of c.users) out.push(u.packet, ...u.sigs.map((s) => s.packet));
  for (const k of c.subkeys) out.push(k.packet, ...k.sigs.map((s) => s.packet));
  return out;
}

export function writeCert(c: Cert): Uint8Array {
  return writePackets(certPackets(c));
}

/** Every signature packet of the key, wherever it is filed. */
export function allSignatures(c: Cert): Sig[] {
  return [...c.direct, ...c.users.flatMap((u) => u.sigs), ...c.subkeys.flatMap((k) => k.sigs)];
}

export function userIdText(u: Component): string | null {
  return u.packet.tag === TAG.userId ? Buffer.from(u.packet.body).toString('utf8') : null;
}

export function fingerprints(c: Cert): string[] {
  return [c.info.fingerprint, ...c.subkeys.map((k) => k.info.fingerprint)].filter(Boolean);
}
