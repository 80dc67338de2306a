/**
 * The registry's signed catalog statement: a signed note (note.ts) by the
 * registry key whose text is
 *
 *   boxsig-catalog/v1
 *   origin <the registry key's name>
 *   box <ORG/NAME>
 *   serial <N>
 *   expires <ISO 8601 UTC time>
 *   digest <SHA-256 hex of the catalog's entry lines>
 *   log <tree size of the checkpoint the catalog comes with>
 *
 * - serial: one more than the index of the box's last log entry (0: none), so
 *   it grows with every change of the catalog's entries, whichever registry
 *   process serves it, and a catalog never goes back (rollback);
 * - expires: the registry renews the statement; a copy past it is stale (freeze);
 * - digest: over one line per provider entry (`version provider architecture
 *   checksum_type:checksum log_index`, sorted, each ending in "\n"): a catalog
 *   whose entries were not signed together (mix) does not match.
 *
 * Pure code, shared by the registry (signing) and `boxsig add` (checking).
 */
import { createHash } from 'node:crypto';
import { refuse } from '../errors.js';
import { openNote, signNote, type NoteSigner, type NoteVerifier } from './note.js';

const STATEMENT_HEADER = 'boxsig-catalog/v1';

export interface CatalogStatement {
  origin: string;
  box: string;
  serial: number;
  expires: string;
  digest: string;
  logSize: number;
}

export interface StatementEntry {
  version: string;
  provider: string;
  /** Absent: the catalog states none. */
  architecture?: string;
  checksumType: string;
  checksum: string;
  logIndex: number | null;
}

function entryLine(e: StatementEntry): string {
  return `${e.version} ${e.provider} ${e.architecture ?? '-'} ${e.checksumType}:${e.checksum} ${e.logIndex ?? '-'}\n`;
}

export function entriesDigest(entries: StatementEntry[]): string {
  const lines = entries.map(entryLine).sort();
  const h = createHash('sha256');
  for (const l of lines) h.update(l);
  return h.digest('hex');
}

function statementText(s: CatalogStatement): string {
  return [
    STATEMENT_HEADER,
    `origin ${s.origin}`,
    `box ${s.box}`,
    `serial ${s.serial}`,
    `expires ${s.expires}`,
    `digest ${s.digest}`,
    `log ${s.logSize}`,
    '',
  ].join('\n');
}

export function signStatement(s: CatalogStatement, signer: NoteSigner): string {
  return signNote(statementText(s), [signer]);
}

const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

/** Open a statement signed by the registry key (MALFORMED, BAD_SIGNATURE). */
export function openStatement(note: string, verifier: NoteVerifier, what = 'the catalog statement'): CatalogStatement {
  const { text } = openNote(note, verifier, what);
  const bad = (why: string) => refuse('MALFORMED', `${what}: ${why}`);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 7 || lines[0] !== STATEMENT_HEADER) throw bad(`not a ${STATEMENT_HEADER} statement`);
  const field = (i: number, name: string): string => {
    const prefix = `${name} `;
    if (!lines[i].startsWith(prefix)) throw bad(`line ${i + 1} is not "${name} …"`);
    return lines[i].slice(prefix.length);
  };
  const s: CatalogStatement = {
    origin: field(1, 'origin'),
    box: field(2, 'box'),
    serial: Number(field(3, 'serial')),
    expires: field(4, 'expires'),
    digest: field(5, 'digest'),
    logSize: Number(field(6, 'log')),
  };
  if (s.origin !== verifier.name) throw bad(`its origin ${JSON.stringify(s.origin)} is not the registry key's name ${verifier.name}`);
  if (!DECIMAL.test(field(3, 'serial')) || !DECIMAL.test(field(6, 'log'))) throw bad('serial and log are decimal numbers');
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/.test(s.expires) || Number.isNaN(Date.parse(s.expires))) throw bad('expires is not an ISO 8601 UTC time');
  if (!/^[0-9a-f]{64}$/.test(s.digest)) throw bad('digest is not a SHA-256 in hex');
  if (s.serial > s.logSize) throw bad(`its serial ${s.serial} is beyond its log size ${s.logSize}`);
  return s;
}
