/**
 * HTTP errors: one table maps each code to its status (STYLE.md rule 6); the body is always
 * `{"error":{"code":"…","message":"…"}}`. 5xx are logged at error, 4xx at info (rule 14).
 */
import type { ErrorRequestHandler, Response } from 'express';
import { BaseError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

export type HttpErrorCode =
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'ORIGIN_MISMATCH'
  | 'NOT_FOUND'
  | 'TENANT_INVALID'
  | 'TENANT_UNKNOWN'
  | 'RECORD_UNKNOWN'
  | 'QUERY_INVALID'
  | 'BODY_TOO_LARGE'
  | 'REDIS_UNAVAILABLE'
  | 'CHAIN_TAMPERED'
  | 'BODY_INVALID'
  | 'COSIGNATURE_INVALID'
  | 'WITNESS_UNKNOWN'
  | 'CHECKPOINT_UNKNOWN'
  | 'NOT_QUARANTINED'
  | 'INTERNAL';

const STATUS: Record<string, number> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  ORIGIN_MISMATCH: 403,
  NOT_FOUND: 404,
  TENANT_INVALID: 400,
  TENANT_UNKNOWN: 404,
  RECORD_UNKNOWN: 404,
  QUERY_INVALID: 400,
  BODY_TOO_LARGE: 413,
  CHANGE_INVALID: 400,
  CHANGE_TOO_LARGE: 413,
  FIELD_VALUE_INVALID: 400,
  BATCH_TOO_LARGE: 413,
  TENANT_MISMATCH: 400,
  REDIS_UNAVAILABLE: 503,
  APPEND_CONTENDED: 503,
  CHAIN_TAMPERED: 409,
  BODY_INVALID: 400,
  COSIGNATURE_INVALID: 400,
  WITNESS_UNKNOWN: 403,
  CHECKPOINT_UNKNOWN: 404,
  NOT_QUARANTINED: 404,
  TENANT_FROZEN: 503,
  SUBJECT_NOT_FOUND: 404,
  SUBJECT_QUERY_INVALID: 400,
  EMAIL_TOO_COMMON: 422,
  VAULT_DECRYPT_FAILED: 409,
  INTERNAL: 500,
};

export class HttpError extends BaseError<HttpErrorCode> {}

export function statusFor(code: string): number {
  return STATUS[code] ?? 500;
}

export function sendError(res: Response, code: string, message: string): void {
  res.status(statusFor(code)).json({ error: { code, message } });
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let code = 'INTERNAL';
    let message = 'internal error';
    if (err instanceof BaseError) {
      code = String(err.code);
      message = err.message;
    } else if (isRedisDown(err)) {
      code = 'REDIS_UNAVAILABLE';
      message = 'Redis is unavailable';
    } else if (
      typeof err === 'object' &&
      err !== null &&
      (err as { type?: unknown }).type === 'entity.too.large'
    ) {
      code = 'BODY_TOO_LARGE';
      message = 'request body too large';
    }
    const status = statusFor(code);
    const line = { code, status, method: req.method, url: req.originalUrl.split('?')[0] };
    if (status >= 500) logger.error({ ...line, err }, message);
    else logger.info(line, message);
    if (res.headersSent) return;
    if (status === 503) res.setHeader('Retry-After', '5');
    res.status(status).json({ error: { code, message } });
  };
}

function isRedisDown(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    /Connection is closed|Stream isn't writeable|ECONNREFUSED|MaxRetriesPerRequestError|enableOfflineQueue/.test(
      err.message,
    ) || err.name === 'MaxRetriesPerRequestError'
  );
}
