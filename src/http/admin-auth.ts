/**
 * Bearer-token authentication for /admin/* routes. Tokens are compared as SHA-256 digests with the
 * one constant-time helper, so neither the token's content nor its length leaks through timing.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { constantTimeEqual } from '../security/constant-time.js';
import { sendError } from './errors.js';

export function requireBearerToken(token: string): RequestHandler {
  const expected = createHash('sha256').update(token, 'utf8').digest();
  return (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
    const presented = createHash('sha256')
      .update(match?.[1] ?? '', 'utf8')
      .digest();
    if (!match || !constantTimeEqual(presented, expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="crm-ledger admin"');
      sendError(res, 'UNAUTHORIZED', 'a valid admin bearer token is required');
      return;
    }
    next();
  };
}
