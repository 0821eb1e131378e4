/**
 * Bearer-token authentication and roles for /admin/* routes.
 *
 * Roles: `admin` (everything), `auditor` (read-only: verification, histories, evidence),
 * `operator` (health, queues, verification status, resume; never personal data), `witness` (what a
 * witness process needs and nothing else: read checkpoints, consistency proofs and blocks, post
 * cosignatures, report tampering with POST /admin/freeze; it can never resume). Tokens are held
 * only as SHA-256 digests (from the environment, hashed at start, or from a tokens file that stores
 * digests only) and compared digest-to-digest with the one constant-time helper, so neither a
 * token's content nor its length leaks through timing. A valid token without the route's role
 * gets 403; no or a wrong token gets 401.
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { constantTimeEqual } from '../security/constant-time.js';
import type { Logger } from '../observability/logger.js';
import { sendError } from './errors.js';
import { AdminSessions, sameOrigin } from './admin-session.js';

export const ROLES = ['admin', 'auditor', 'operator', 'witness'] as const;
export type Role = (typeof ROLES)[number];

export interface AdminToken {
  role: Role;
  /** who holds it (logged with every admin action) */
  name: string;
  /** SHA-256 of the token */
  digest: Buffer;
}

export interface Principal {
  role: Role;
  name: string;
}

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** A token given in clear (environment): kept only as its digest. */
export function adminTokenFrom(role: Role, name: string, token: string): AdminToken {
  return { role, name, digest: tokenDigest(token) };
}

export function principalOf(res: Response): Principal | undefined {
  return res.locals['principal'] as Principal | undefined;
}

/** The known token equal to `presented`, compared digest-to-digest against every token. */
export function findToken(
  tokens: readonly AdminToken[],
  presented: string,
): AdminToken | undefined {
  const digest = tokenDigest(presented);
  // Compare against every token (no early exit): the time does not tell which one matched.
  let found: AdminToken | undefined;
  for (const t of tokens) {
    if (constantTimeEqual(digest, t.digest)) found ??= t;
  }
  return presented === '' ? undefined : found;
}

export interface AuthenticateOptions {
  /** dashboard sessions: a valid session cookie authenticates like its token */
  sessions?: AdminSessions<AdminToken>;
  /** answers a request with no credentials at all (default: 401 JSON); e.g. redirect to login */
  onMissing?: (req: Request, res: Response) => void;
}

/**
 * 401 unless a known token is presented; sets res.locals.principal. The bearer header wins when
 * sent (a wrong one is 401 even beside a valid cookie). A session cookie is accepted where
 * `sessions` is given; a cookie-authenticated request that changes state must also come from our
 * own origin (CSRF), else 403 ORIGIN_MISMATCH. API clients are unaffected: no cookie, same 401.
 */
export function authenticate(
  tokens: readonly AdminToken[],
  options: AuthenticateOptions = {},
): RequestHandler {
  return (req, res, next) => {
    const header = req.get('authorization');
    const cookie = options.sessions ? AdminSessions.read(req) : undefined;
    let found: AdminToken | undefined;
    if (header !== undefined || cookie === undefined) {
      const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header ?? '');
      found = findToken(tokens, match?.[1] ?? '');
      if (!found && header === undefined && options.onMissing) {
        options.onMissing(req, res);
        return;
      }
    } else {
      found = options.sessions?.open(cookie);
      if (!found && options.onMissing) {
        options.sessions?.clearCookie(req, res);
        options.onMissing(req, res);
        return;
      }
      if (found && !SAFE_METHODS.has(req.method) && !sameOrigin(req)) {
        sendError(res, 'ORIGIN_MISMATCH', 'a cookie-authenticated change must come from this site');
        return;
      }
    }
    if (!found) {
      sendUnauthorized(res);
      return;
    }
    res.locals['principal'] = { role: found.role, name: found.name } satisfies Principal;
    next();
  };
}

export function sendUnauthorized(res: Response): void {
  res.setHeader('WWW-Authenticate', 'Bearer realm="crm-ledger admin"');
  sendError(res, 'UNAUTHORIZED', 'a valid admin bearer token is required');
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** 403 unless the authenticated principal has one of `roles` (admin always does). */
export function requireRole(...roles: Role[]): RequestHandler {
  return (_req, res, next) => {
    const p = principalOf(res);
    if (!p || (p.role !== 'admin' && !roles.includes(p.role))) {
      sendError(res, 'FORBIDDEN', `this route needs the ${['admin', ...roles].join(' or ')} role`);
      return;
    }
    next();
  };
}

/**
 * Logs every admin request with who made it (never the token) once it is answered, at info; a
 * witness's successful reads (its polling: a line every round per tenant per witness) at debug.
 * Its cosignatures and tampering reports, and every refused or failed request, stay at info.
 */
export function auditLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const p = principalOf(res);
      const routine =
        p?.role === 'witness' &&
        (req.method === 'GET' || req.method === 'HEAD') &&
        res.statusCode < 400;
      logger[routine ? 'debug' : 'info'](
        {
          principal: p?.name ?? null,
          role: p?.role ?? null,
          method: req.method,
          path: req.path,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'admin request',
      );
    });
    next();
  };
}

/**
 * A tokens file: `[{"name": "alice", "role": "auditor", "sha256": "<hex digest of the token>"}]`.
 * Only digests are stored; `crm-ledger token create` writes entries. Throws with the entry at fault.
 */
export function parseTokensFile(text: string): AdminToken[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error('tokens file is not JSON');
  }
  if (!Array.isArray(data)) throw new Error('tokens file must be a JSON array');
  return data.map((entry: unknown, i) => {
    const e = entry as { name?: unknown; role?: unknown; sha256?: unknown };
    if (typeof e.name !== 'string' || e.name === '')
      throw new Error(`tokens file entry ${i}: "name" must be a non-empty string`);
    if (typeof e.role !== 'string' || !(ROLES as readonly string[]).includes(e.role))
      throw new Error(`tokens file entry ${i}: "role" must be one of ${ROLES.join(', ')}`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256))
      throw new Error(`tokens file entry ${i}: "sha256" must be 64 lower-case hex digits`);
    return { name: e.name, role: e.role as Role, digest: Buffer.from(e.sha256, 'hex') };
  });
}
