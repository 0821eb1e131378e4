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
  | 'PATH_INVALID'
  | 'MEDIA_UNSUPPORTED'
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
  PATH_INVALID: 400,
  MEDIA_UNSUPPORTED: 415,
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

/**
 * The code of an error that reached an error handler: ours (BaseError), Redis being down, or the
 * HTTP stack's own for bad input — body-parser's (a body that is not JSON, too large, in a charset
 * or encoding it cannot read) and the router's (a path parameter that is not valid percent-encoding).
 * Anything else is INTERNAL.
 */
export function errorCodeOf(err: unknown): string {
  if (err instanceof BaseError) return String(err.code);
  if (isRedisDown(err)) return 'REDIS_UNAVAILABLE';
  const { type, status, expose } = (err ?? {}) as {
    type?: unknown;
    status?: unknown;
    expose?: unknown;
  };
  if (type === 'entity.too.large' || type === 'parameters.too.many') return 'BODY_TOO_LARGE';
  if (err instanceof URIError && status === 400) return 'PATH_INVALID';
  // http-errors raised for the request (exposable 4xx): an unreadable or undecodable body.
  if (typeof status === 'number' && status >= 400 && status < 500 && expose === true) {
    if (status === 413) return 'BODY_TOO_LARGE';
    if (status === 415) return 'MEDIA_UNSUPPORTED';
    return 'BODY_INVALID';
  }
  return 'INTERNAL';
}

/** What a client is told for a code the HTTP stack set (its own error messages are not shown). */
const STACK_MESSAGES: Record<string, string> = {
  REDIS_UNAVAILABLE: 'Redis is unavailable',
  BODY_TOO_LARGE: 'request body too large',
  MEDIA_UNSUPPORTED: 'request body charset or content encoding not supported',
  BODY_INVALID: 'request body could not be read: malformed, or not decodable',
  PATH_INVALID: 'a path segment is not valid percent-encoding',
  INTERNAL: 'internal error',
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const code = errorCodeOf(err);
    const message =
      err instanceof BaseError ? err.message : (STACK_MESSAGES[code] ?? 'internal error');
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
