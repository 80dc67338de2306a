/**
 * Errors with stable codes.
 *
 * Refusal codes (exit status 1) are stable: scripts and the Vagrant plugin
 * match on them, so a code is never renamed or reused. Usage and
 * configuration errors exit with 2; anything else (I/O, network, internal)
 * exits with 3.
 */

export const REFUSAL_CODES = [
  'UNSIGNED',
  'BAD_SIGNATURE',
  'UNTRUSTED_KEY',
  'KEY_CHANGED',
  'THRESHOLD_NOT_MET',
  'CLAIM_MISMATCH',
  'TAMPERED',
  'UNLISTED_FILE',
  'MISSING_FILE',
  'DUPLICATE_ENTRY',
  'UNSAFE_ENTRY',
  'WRONG_BOX',
  'EXPIRED',
  'KEY_EXPIRED',
  'KEY_REVOKED',
  'ROLLBACK',
  'CHECKSUM_MISMATCH',
  'MALFORMED',
  // issue 15: signed catalogs and the transparency log
  'STALE_CATALOG',
  'MIXED_CATALOG',
  'SPLIT_VIEW',
] as const;

export type RefusalCode = (typeof REFUSAL_CODES)[number];
/** Codes of errors that are not refusals. */
export type FailureCode = 'USAGE' | 'CONFIG' | 'IO' | 'NETWORK' | 'INTERNAL' | 'EXISTS' | RegistryFailureCode;
/** The registry's own failures: no or wrong token, no such box, a limit, shutting down. */
export type RegistryFailureCode = 'DENIED' | 'NOT_FOUND' | 'LIMIT' | 'UNAVAILABLE';
export type ErrorCode = RefusalCode | FailureCode;

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 3;

export function isRefusalCode(code: string): code is RefusalCode {
  return (REFUSAL_CODES as readonly string[]).includes(code);
}

export interface ErrorDetails {
  [key: string]: unknown;
}

/** The one error class of the library: every failure carries a stable `code`. */
export class BoxsigError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  /** Optional advice for a person: the command to run, the file to edit. */
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, hint?: string) {
    super(message);
    this.name = 'BoxsigError';
    this.code = code;
    this.details = details;
    if (hint !== undefined) this.hint = hint;
  }

  get exitCode(): number {
    if (isRefusalCode(this.code)) return EXIT_REFUSED;
    if (['USAGE', 'CONFIG', 'EXISTS', 'DENIED', 'NOT_FOUND'].includes(this.code)) return EXIT_USAGE;
    return EXIT_FAILURE;
  }

  get refused(): boolean {
    return isRefusalCode(this.code);
  }
}

/** True for a BoxsigError that is a refusal (a verification or trust check failed); anything else should be rethrown. */
export function isRefusal(e: unknown): e is BoxsigError & { code: RefusalCode } {
  return e instanceof BoxsigError && e.refused;
}

export function refuse(code: RefusalCode, message: string, details?: ErrorDetails, hint?: string): BoxsigError {
  return new BoxsigError(code, message, details, hint);
}

export function usage(message: string, details?: ErrorDetails, hint?: string): BoxsigError {
  return new BoxsigError('USAGE', message, details, hint);
}

export function configError(file: string, field: string, message: string): BoxsigError {
  return new BoxsigError('CONFIG', `${file}: ${field}: ${message}`, { file, field });
}

export function ioError(message: string, cause?: unknown): BoxsigError {
  const err = new BoxsigError('IO', cause ? `${message}: ${describeCause(cause)}` : message);
  return err;
}

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message;
  }
  return String(cause);
}

/** Turn anything thrown into a BoxsigError, keeping codes that are already stable. */
export function toBoxsigError(err: unknown): BoxsigError {
  if (err instanceof BoxsigError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    if (['ENOENT', 'EACCES', 'EPERM', 'ENOSPC', 'EISDIR', 'ENOTDIR', 'EROFS', 'EMFILE', 'EIO', 'EXDEV', 'EBUSY'].includes(e.code)) {
      return new BoxsigError('IO', describeCause(e), { errno: e.code, path: e.path });
    }
    if (e.code.startsWith('Z_') || e.code === 'ERR_BUFFER_TOO_LARGE') {
      return new BoxsigError('MALFORMED', `corrupt gzip data: ${e.message}`);
    }
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new BoxsigError('INTERNAL', `internal error: ${msg}`, { stack: err instanceof Error ? err.stack : undefined });
}
