/**
 * Typed errors with stable codes from closed unions (STYLE.md rule 6). A code, once shipped, is
 * never reused for another meaning; messages are for humans and may change.
 */
export class BaseError<Code extends string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export type ConfigErrorCode =
  | 'CONFIG_INVALID'
  | 'REDIS_SERVER_MISSING'
  | 'KEY_FILE_INVALID'
  /** production mode, and Redis may evict keys or has no persistence */
  | 'REDIS_UNSAFE';
export class ConfigError extends BaseError<ConfigErrorCode> {}

/** Bad change input: rejected before any write. */
export type InputErrorCode =
  | 'CHANGE_INVALID'
  | 'CHANGE_TOO_LARGE'
  | 'FIELD_VALUE_INVALID'
  | 'BATCH_TOO_LARGE'
  | 'TENANT_MISMATCH';
export class InputError extends BaseError<InputErrorCode> {
  readonly path: string | undefined;
  constructor(code: InputErrorCode, message: string, path?: string) {
    super(code, message);
    this.path = path;
  }
}

/** Ledger invariants and storage faults. */
export type LedgerErrorCode =
  | 'CHAIN_HEAD_MISMATCH'
  | 'APPEND_CONTENDED'
  | 'REDIS_UNAVAILABLE'
  | 'CHECKPOINT_INCONSISTENT'
  | 'TENANT_UNKNOWN'
  | 'RECORD_UNKNOWN'
  | 'SEQ_OUT_OF_RANGE'
  | 'LUA_UNEXPECTED'
  | 'TENANT_FROZEN'
  | 'CHAIN_TAMPERED';
export class LedgerError extends BaseError<LedgerErrorCode> {}

/** Proof and checkpoint checks (pure). */
export type ProofErrorCode =
  | 'PROOF_INVALID'
  | 'PROOF_MALFORMED'
  | 'CHECKPOINT_MALFORMED'
  | 'SIGNATURE_INVALID'
  | 'KEY_MALFORMED'
  | 'KEY_UNKNOWN';
export class ProofError extends BaseError<ProofErrorCode> {}

/** The vault: per-record data keys, sealed entries, erasure (src/vault/). */
export type VaultErrorCode =
  | 'VAULT_DECRYPT_FAILED'
  | 'VAULT_KEY_MISSING'
  | 'VAULT_ERASED'
  | 'MASTER_KEY_UNKNOWN'
  | 'MASTER_KEY_INVALID'
  | 'SUBJECT_NOT_FOUND'
  | 'SUBJECT_QUERY_INVALID'
  /** an email address shared by too many records for the index to list them (a role account) */
  | 'EMAIL_TOO_COMMON';
export class VaultError extends BaseError<VaultErrorCode> {}

export function isCodedError(err: unknown): err is BaseError<string> {
  return err instanceof BaseError;
}
