/**
 * C2SP signed notes (signed-note.md, as golang.org/x/mod/sumdb/note) with
 * Ed25519 keys, and C2SP checkpoints (tlog-checkpoint.md) carried in them.
 *
 * - A verifier key is `<name>+<8 hex key ID>+<base64(0x01 ‖ 32-byte public key)>`;
 *   the key ID is the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
 * - A signer key is `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ 32-byte seed)>`.
 * - A note is its text (UTF-8, no control character but newline, ending in a
 *   newline), a blank line, then lines `— <name> <base64(key ID ‖ signature)>`.
 *   The signature is Ed25519 over the text.
 *
 * Pure code: the registry signs, clients verify. Everything read from the
 * network passes `openNote` first, which bounds its size and refuses any
 * form it does not know with MALFORMED.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { BoxsigError, refuse } from '../errors.js';

const ALG_ED25519 = 0x01;
const SIG_PREFIX = '— ';
/** A note boxsig reads is small: a checkpoint or a catalog statement. */
export const MAX_NOTE_BYTES = 16 * 1024;
const MAX_SIGNATURES = 16;

export interface NoteSigner {
  name: string;
  keyId: number;
  /** 32-byte Ed25519 public key. */
  publicKey: Buffer;
  sign(text: string): Buffer;
  /** The verifier key string, to publish and to pin. */
  verifierKey: string;
}

export interface NoteVerifier {
  name: string;
  keyId: number;
  publicKey: Buffer;
  verifierKey: string;
}

/** Key names: non-empty, no white space, no `+` (as the spec and Go). */
function isValidKeyName(name: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters in untrusted text are what this looks for
  return name.length > 0 && name.length <= 256 && !/[\s+]/u.test(name) && !/[\u0000-\u001f\u007f]/.test(name);
}

function keyIdOf(name: string, publicKey: Buffer): number {
  const h = createHash('sha256')
    .update(name)
    .update('\n')
    .update(Buffer.from([ALG_ED25519]))
    .update(publicKey)
    .digest();
  return h.readUInt32BE(0);
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function privateKeyOf(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(pub: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub]), format: 'der', type: 'spki' });
}

function rawPublicKey(k: KeyObject): Buffer {
  const der = createPublicKey(k).export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

function rawSeed(k: KeyObject): Buffer {
  const der = k.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - 32));
}

function verifierKeyString(name: string, publicKey: Buffer): string {
  return `${name}+${hex8(keyIdOf(name, publicKey))}+${Buffer.concat([Buffer.from([ALG_ED25519]), publicKey]).toString('base64')}`;
}

function strictBase64(s: string): Buffer | null {
  if (!s || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

/** `a+b+…+rest` in `n` parts: the last one is the base64 key, which may itself hold `+`. */
function cutPlus(text: string, n: number): string[] | null {
  const parts: string[] = [];
  let rest = text;
  for (let i = 0; i < n - 1; i++) {
    const at = rest.indexOf('+');
    if (at < 0) return null;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

/** A signer from `PRIVATE+KEY+name+id+base64` (what `generateSignerKey` makes and Go's note.GenerateKey too). */
export function parseSignerKey(text: string, where: string): NoteSigner {
  const bad = (why: string) =>
    new BoxsigError('CONFIG', `${where}: not a registry signing key (${why}); make one with boxsig registry key generate`, { where });
  const parts = cutPlus(text.trim(), 5);
  if (!parts || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw bad('expected PRIVATE+KEY+<name>+<id>+<key>');
  const [, , name, id, b64] = parts;
  const raw = strictBase64(b64);
  if (!isValidKeyName(name)) throw bad('bad name');
  if (!raw || raw.length !== 33 || raw[0] !== ALG_ED25519) throw bad('not an Ed25519 key');
  const key = privateKeyOf(raw.subarray(1));
  const pub = rawPublicKey(key);
  if (!/^[0-9a-f]{8}$/.test(id) || parseInt(id, 16) !== keyIdOf(name, pub)) throw bad('the key ID does not match the key');
  return makeSigner(name, key, pub);
}

function makeSigner(name: string, key: KeyObject, pub: Buffer): NoteSigner {
  return {
    name,
    keyId: keyIdOf(name, pub),
    publicKey: pub,
    verifierKey: verifierKeyString(name, pub),
    sign: (text) => edSign(null, Buffer.from(text, 'utf8'), key),
  };
}

/** A new Ed25519 key named `name`: its signer key string and its verifier key string. */
export function generateSignerKey(name: string): { signerKey: string; verifierKey: string } {
  if (!isValidKeyName(name)) throw new BoxsigError('USAGE', `${JSON.stringify(name)} is not a key name (no spaces, no "+")`);
  const { privateKey } = generateKeyPairSync('ed25519');
  const pub = rawPublicKey(privateKey);
  const seed = rawSeed(privateKey);
  const signerKey = `PRIVATE+KEY+${name}+${hex8(keyIdOf(name, pub))}+${Buffer.concat([Buffer.from([ALG_ED25519]), seed]).toString('base64')}`;
  return { signerKey, verifierKey: verifierKeyString(name, pub) };
}

/** A verifier from its key string; anything else is null. */
export function parseVerifierKey(text: string): NoteVerifier | null {
  const parts = cutPlus(text, 3);
  if (!parts) return null;
  const [name, id, b64] = parts;
  const raw = strictBase64(b64);
  if (!isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(id) || !raw || raw.length !== 33 || raw[0] !== ALG_ED25519) return null;
  const pub = Buffer.from(raw.subarray(1));
  if (parseInt(id, 16) !== keyIdOf(name, pub)) return null;
  return { name, keyId: parseInt(id, 16), publicKey: pub, verifierKey: text };
}

/** A signed note: the text and one signature line per signer. */
export function signNote(text: string, signers: NoteSigner[]): string {
  checkText(text);
  const lines = signers.map((s) => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(s.keyId);
    return `${SIG_PREFIX}${s.name} ${Buffer.concat([id, s.sign(text)]).toString('base64')}\n`;
  });
  return `${text}\n${lines.join('')}`;
}

function checkText(text: string): void {
  // eslint-disable-next-line no-control-regex -- control characters in untrusted text are what this looks for
  if (!text.endsWith('\n') || /[\u0000-\u0009\u000b-\u001f]/.test(text) || text.includes('\uFFFD')) {
    throw new BoxsigError('INTERNAL', 'internal error: a note text must end with a newline and hold no control characters');
  }
}

export interface OpenedNote {
  text: string;
  /** The verifier whose signature was checked. */
  verifier: NoteVerifier;
}

/**
 * Open a signed note with the one key boxsig trusts for it: the note must be
 * well formed (MALFORMED) and carry a valid signature by that key
 * (BAD_SIGNATURE); signatures by other keys are ignored.
 */
export function openNote(bytes: Uint8Array | string, verifier: NoteVerifier, what: string): OpenedNote {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
  const malformed = (why: string) => refuse('MALFORMED', `${what} is not a signed note: ${why}`);
  if (buf.length > MAX_NOTE_BYTES) throw malformed(`it is larger than ${MAX_NOTE_BYTES} bytes`);
  const msg = new TextDecoder('utf-8', { fatal: false }).decode(buf);
  // eslint-disable-next-line no-control-regex -- control characters in untrusted text are what this looks for
  if (msg.includes('\uFFFD') || /[\u0000-\u0009\u000b-\u001f]/.test(msg)) throw malformed('it is not UTF-8 text without control characters');
  const at = msg.lastIndexOf('\n\n');
  if (at < 0) throw malformed('no signature block');
  const text = msg.slice(0, at + 1);
  const sigs = msg.slice(at + 2);
  if (!sigs.endsWith('\n')) throw malformed('the signature block does not end with a newline');
  const lines = sigs.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw malformed(`more than ${MAX_SIGNATURES} signatures`);
  let verified = false;
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) throw malformed('a signature line does not start with "— "');
    const [name, b64, ...rest] = line.slice(SIG_PREFIX.length).split(' ');
    const sig = strictBase64(b64 ?? '');
    if (rest.length || !isValidKeyName(name) || !sig || sig.length < 5) throw malformed('a signature line is not "— <name> <base64>"');
    if (name !== verifier.name || sig.readUInt32BE(0) !== verifier.keyId) continue;
    if (!edVerify(null, Buffer.from(text, 'utf8'), publicKeyObject(verifier.publicKey), sig.subarray(4))) {
      throw refuse('BAD_SIGNATURE', `${what}: the signature by ${verifier.name} (key ${hex8(verifier.keyId)}) is not valid`);
    }
    verified = true;
  }
  if (!verified) {
    throw refuse(
      'BAD_SIGNATURE',
      `${what} is not signed by the registry key ${verifier.name}+${hex8(verifier.keyId)}`,
      {},
      'if the registry changed its key on purpose, pin the new one (boxsig registry key prints it)',
    );
  }
  return { text, verifier };
}

// ---- checkpoints ----

export interface Checkpoint {
  origin: string;
  size: number;
  /** 32-byte root hash. */
  root: Buffer;
  /** The signed note it was read from, or made into. */
  note?: string;
}

/** The checkpoint body: origin, decimal size, base64 root hash (C2SP tlog-checkpoint). */
export function checkpointText(c: Pick<Checkpoint, 'origin' | 'size' | 'root'>): string {
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

export function signCheckpoint(c: Pick<Checkpoint, 'origin' | 'size' | 'root'>, signer: NoteSigner): string {
  return signNote(checkpointText(c), [signer]);
}

/** Open a checkpoint signed by the registry key; its origin must be the key's name. */
export function openCheckpoint(note: Uint8Array | string, verifier: NoteVerifier, what = 'the log checkpoint'): Checkpoint {
  const { text } = openNote(note, verifier, what);
  const lines = text.slice(0, -1).split('\n');
  const bad = (why: string) => refuse('MALFORMED', `${what}: ${why}`);
  if (lines.length < 3) throw bad('a checkpoint has an origin, a size and a root hash');
  const [origin, sizeText, rootText] = lines;
  if (origin !== verifier.name) throw bad(`its origin ${JSON.stringify(origin)} is not the registry key's name ${verifier.name}`);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw bad('the tree size is not a decimal number');
  const root = strictBase64(rootText);
  if (!root || root.length !== 32) throw bad('the root hash is not 32 bytes of base64');
  return { origin, size: Number(sizeText), root, note: typeof note === 'string' ? note : Buffer.from(note).toString('utf8') };
}
