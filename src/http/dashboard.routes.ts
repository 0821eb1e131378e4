/**
 * The admin dashboard under /admin/: server-rendered pages on the same tokens and roles as the
 * API. A browser logs in once (POST /admin/login, token in the form body) and then carries an
 * HttpOnly, SameSite=Strict session cookie (admin-session.ts); pages without a session redirect to
 * the login form, while the JSON API keeps answering 401.
 *
 * Pages: the overview (every tenant's chain status, freeze state, size and last checkpoint, queue
 * depths, recent verdicts), a record timeline and the recent verdicts. Operators see no personal
 * data: field values and verdict reasons are replaced by "hidden for operator role".
 */
import express, { Router } from 'express';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { BaseError } from '../errors.js';
import { objectNameSchema, recordIdSchema, tenantSchema } from '../model/change-event.js';
import type { Logger } from '../observability/logger.js';
import { openCheckpoint } from '../ledger/checkpoint.js';
import type { Verifier } from '../ledger/checkpoint.js';
import { fromHex } from '../ledger/hash.js';
import { readRecordHistory } from '../ledger/history.js';
import type { HistoryBlock } from '../ledger/history.js';
import { verifyInclusion } from '../ledger/merkle.js';
import type { VerificationService, VerifyMode } from '../ledger/verification.js';
import { authenticate, findToken, principalOf, requireRole } from './admin-auth.js';
import { valuesAllowed } from './admin.routes.js';
import type { VaultAccess } from './admin.routes.js';
import type { AdminToken, Principal } from './admin-auth.js';
import type { ChangeSink } from '../pipeline/queues.js';
import { sameOrigin } from './admin-session.js';
import type { AdminSessions } from './admin-session.js';
import {
  errorPage,
  loginPage,
  overviewPage,
  recordPath,
  STYLE_HASH,
  timelinePage,
  verdictsPage,
  verificationPage,
} from './dashboard.views.js';
import { VerificationJobs } from './verification-jobs.js';
import type {
  Nav,
  ProofStatus,
  QueueDepthRow,
  TenantRow,
  TimelineBlock,
  VerdictRow,
} from './dashboard.views.js';
import { errorCodeOf, HttpError, statusFor } from './errors.js';
import { resumeAs } from './admin.routes.js';

/** Freeze state of a tenant (wired from the freeze state machine). */
export interface TenantStatus {
  frozen: boolean;
  reason?: string;
}

export interface QueueDepth {
  queue: string;
  /** job state → count, e.g. { waiting: 3, active: 1, delayed: 0, failed: 0 } */
  counts: Readonly<Record<string, number>>;
}

/** A verdict written into an anchored block, for the "recent verdicts" list. */
export interface RecentVerdict {
  tenant: string;
  object: string;
  id: string;
  seq: number;
  /** when the block was anchored (ISO 8601) */
  at: string;
  type: string;
  code?: string;
  reason?: string;
}

/** The optional data sources of the dashboard; each section is left out when its source is. */
export interface DashboardSources {
  tenantStatus?: (tenant: string) => TenantStatus | Promise<TenantStatus>;
  queueDepths?: () => Promise<readonly QueueDepth[]>;
  /** latest first, at most `limit` */
  recentVerdicts?: (limit: number) => Promise<readonly RecentVerdict[]>;
  /** opens sealed vault entries (admins see values; auditors when granted) */
  vault?: VaultAccess;
}

export interface DashboardDeps extends DashboardSources {
  logger: Logger;
  verification: VerificationService;
  verifierKeys: readonly Verifier[];
  tokens: readonly AdminToken[];
  sessions: AdminSessions<AdminToken>;
  /** where bull-board is mounted, if it is (linked for admin and operator) */
  queuesPath?: string;
  /** queues the admin block a resume anchors; without it the dashboard offers no resume */
  changeSink?: ChangeSink;
}

export const RECENT_VERDICTS_ON_OVERVIEW = 20;
export const RECENT_VERDICTS_PAGE = 200;

/**
 * No script may run on these pages; the one stylesheet is allowed by hash. Pages carry personal
 * data, so nothing is cached. `same-origin` referrers keep the Origin header on our own form posts.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': `default-src 'none'; style-src '${STYLE_HASH}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
};

/** `next` after login: one of our own pages, never another site (no open redirect). */
function isSafeNext(path: unknown): path is string {
  return (
    typeof path === 'string' &&
    path.length <= 512 &&
    /^\/admin\/[A-Za-z0-9._~%:/-]*$/.test(path) &&
    !path.includes('//') &&
    // WHATWG URL parsing reads %2e as a dot in path segments
    !/%2e/i.test(path) &&
    !/\/\.{1,2}(?:\/|$)/.test(path)
  );
}

export function dashboardRoutes(deps: DashboardDeps): Router {
  const router = Router();
  const log = deps.logger.child({ module: 'dashboard' });

  const send = (res: Response, status: number, body: string): void => {
    res.status(status).set(SECURITY_HEADERS).type('text/html; charset=utf-8').send(body);
  };
  const navFor = (res: Response): Nav => {
    const principal = principalOf(res);
    return {
      ...(principal ? { principal } : {}),
      ...(deps.queuesPath && principal && principal.role !== 'auditor'
        ? { queuesPath: deps.queuesPath }
        : {}),
      verdicts: deps.recentVerdicts !== undefined,
    };
  };

  const toLogin: (req: Request, res: Response) => void = (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 401, errorPage({}, 401, 'UNAUTHORIZED', 'Log in first.'));
      return;
    }
    const next = req.originalUrl.split('?')[0] ?? '';
    res.redirect(
      303,
      isSafeNext(next) && next !== '/admin/'
        ? `/admin/login?next=${encodeURIComponent(next)}`
        : '/admin/login',
    );
  };
  const signedIn: RequestHandler[] = [
    authenticate(deps.tokens, { sessions: deps.sessions, onMissing: toLogin }),
    requireRole('auditor', 'operator'),
  ];

  router.get('/login', (req, res) => {
    const next = isSafeNext(req.query['next']) ? req.query['next'] : undefined;
    send(res, 200, loginPage(next ? { next } : {}));
  });

  router.post(
    '/login',
    express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 4 }),
    (req, res) => {
      // Login CSRF: a foreign page must not log this browser into someone else's session.
      if (!sameOrigin(req)) {
        send(res, 403, errorPage({}, 403, 'ORIGIN_MISMATCH', 'Log in from this site’s own form.'));
        return;
      }
      const body = (req.body ?? {}) as Record<string, unknown>;
      const token = typeof body['token'] === 'string' ? body['token'].trim() : '';
      const next = isSafeNext(body['next']) ? body['next'] : undefined;
      const found = findToken(deps.tokens, token);
      if (!found) {
        log.info({ event: 'login_failed' }, 'dashboard login refused');
        send(res, 401, loginPage({ failed: true, ...(next ? { next } : {}) }));
        return;
      }
      deps.sessions.setCookie(req, res, found);
      res.locals['principal'] = { role: found.role, name: found.name } satisfies Principal;
      res.redirect(303, next ?? '/admin/');
    },
  );

  router.post(
    '/logout',
    authenticate(deps.tokens, { sessions: deps.sessions, onMissing: toLogin }),
    (req, res) => {
      deps.sessions.clearCookie(req, res);
      res.redirect(303, '/admin/login');
    },
  );

  router.get('/', ...signedIn, async (req, res) => {
    const mode = overviewMode(req);
    const tenants: TenantRow[] = [];
    const role = principalOf(res)?.role;
    const canResume = deps.changeSink !== undefined && (role === 'operator' || role === 'admin');
    for (const tenant of await deps.verification.tenants()) {
      const row = await tenantRow(deps, tenant, mode, log);
      if (row.frozen && canResume) row.frozen.resumable = true;
      tenants.push(row);
    }
    const [queues, verdicts] = await Promise.all([
      deps.queueDepths ? settle(deps.queueDepths(), log, 'queue depths') : undefined,
      deps.recentVerdicts
        ? settle(deps.recentVerdicts(RECENT_VERDICTS_ON_OVERVIEW), log, 'recent verdicts')
        : undefined,
    ]);
    send(
      res,
      200,
      overviewPage(navFor(res), {
        mode,
        tenants,
        ...(queues ? { queues: 'error' in queues ? queues : queues.value.map(toQueueRow) } : {}),
        ...(verdicts
          ? { verdicts: 'error' in verdicts ? verdicts : verdicts.value.map(toVerdictRow) }
          : {}),
      }),
    );
  });

  // The search form (GET, so it works without a script): validates and redirects to the record.
  router.get('/ui/records', ...signedIn, (req, res) => {
    for (const key of Object.keys(req.query)) {
      if (!['tenant', 'object', 'id'].includes(key))
        throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
    }
    const tenant = tenantSchema.safeParse(text(req.query['tenant']).trim());
    const object = objectNameSchema.safeParse(text(req.query['object']).trim());
    const id = recordIdSchema.safeParse(text(req.query['id']).trim());
    if (!tenant.success)
      throw new HttpError(
        'TENANT_INVALID',
        'tenant must look like "hubspot:<portalId>" or "salesforce:<orgId>"',
      );
    if (!object.success || !id.success)
      throw new HttpError(
        'QUERY_INVALID',
        'object must be a lower-case object name and id a record id',
      );
    res.redirect(303, recordPath(tenant.data, object.data, id.data));
  });

  router.get('/ui/records/:tenant/:object/:id', ...signedIn, async (req, res) => {
    if (Object.keys(req.query).length > 0)
      throw new HttpError('QUERY_INVALID', 'this page takes no query parameters');
    const tenant = tenantSchema.safeParse(req.params['tenant']);
    const object = objectNameSchema.safeParse(req.params['object']);
    const id = recordIdSchema.safeParse(req.params['id']);
    if (!tenant.success)
      throw new HttpError('TENANT_INVALID', 'tenant must look like "hubspot:<portalId>"');
    if (!object.success || !id.success)
      throw new HttpError(
        'QUERY_INVALID',
        'object must be a lower-case object name and id a record id',
      );
    const history = await readRecordHistory(
      deps.verification.store,
      tenant.data,
      object.data,
      id.data,
      {
        ...(deps.vault ? { open: deps.vault.open } : {}),
        values: valuesAllowed(principalOf(res)?.role, deps.vault),
      },
    );
    if (!history)
      throw new HttpError(
        'RECORD_UNKNOWN',
        `no blocks for ${object.data}/${id.data} in ${tenant.data}`,
      );

    let root: Uint8Array | undefined;
    let checkpoint: { size: number; signedBy: string[] } | { invalid: string } | undefined;
    if (history.checkpoint) {
      try {
        const cp = openCheckpoint(history.checkpoint, deps.verifierKeys);
        // Our origins are `<origin>/<tenant>` (ledger.ts checkpointOrigin).
        if (!cp.origin.endsWith(`/${tenant.data}`) || cp.size !== history.checkpointSize)
          throw new Error(`checkpoint is for ${cp.origin} at size ${cp.size}`);
        root = cp.rootHash;
        checkpoint = { size: cp.size, signedBy: cp.verifiedBy };
      } catch (err) {
        checkpoint = { invalid: err instanceof Error ? err.message : 'unreadable' };
      }
    }
    const principal = principalOf(res);
    const operator = principal?.role === 'operator';
    const blocks = history.blocks.map((b) =>
      timelineBlock(
        b,
        operator,
        root === undefined ? undefined : { root, size: history.checkpointSize },
      ),
    );
    send(
      res,
      200,
      timelinePage(navFor(res), {
        tenant: tenant.data,
        object: object.data,
        id: id.data,
        ok: history.ok && blocks.every((b) => b.proof.kind !== 'failed'),
        ...(checkpoint ? { checkpoint } : {}),
        blocks,
        evidence: !operator,
      }),
    );
  });

  /** The `tenant` field of a posted form: a tenant with a chain, else 400 / 404. */
  const formTenant = async (req: Request): Promise<string> => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const tenant = tenantSchema.safeParse(body['tenant']);
    if (!tenant.success)
      throw new HttpError('TENANT_INVALID', 'tenant must look like "hubspot:<portalId>"');
    if (!(await deps.verification.tenants()).includes(tenant.data))
      throw new HttpError('TENANT_UNKNOWN', `no chain for ${tenant.data}`);
    return tenant.data;
  };

  // A full verification in the background, with a progress page that reloads until it is done.
  const jobs = new VerificationJobs(deps.verification);
  router.post(
    '/ui/verifications',
    ...signedIn,
    express.urlencoded({ extended: false, limit: '2kb', parameterLimit: 2 }),
    async (req, res) => {
      const job = jobs.start(await formTenant(req));
      res.redirect(303, `/admin/ui/verifications/${job.id}`);
    },
  );

  // Resume a frozen tenant (operator, admin): the whole chain is verified first, as by the API.
  router.post(
    '/ui/resume',
    ...signedIn,
    requireRole('operator'),
    express.urlencoded({ extended: false, limit: '2kb', parameterLimit: 2 }),
    async (req, res) => {
      const tenant = await formTenant(req);
      const result = await resumeAs(deps, tenant, principalOf(res));
      log.info({ tenant, resumed: result.wasFrozen }, 'tenant resumed from the dashboard');
      res.redirect(303, '/admin/');
    },
  );

  router.get('/ui/verifications/:id', ...signedIn, (req, res) => {
    const id = String(req.params['id'] ?? '');
    const job = /^[0-9a-f]{24}$/.test(id) ? jobs.get(id) : undefined;
    if (!job) throw new HttpError('NOT_FOUND', 'no such verification (finished long ago?)');
    const r = job.result;
    send(
      res,
      200,
      verificationPage(navFor(res), {
        tenant: job.tenant,
        startedAt: job.startedAt,
        done: job.done,
        total: job.total,
        ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
        ...(job.error !== undefined
          ? { outcome: { error: job.error } }
          : r === undefined
            ? {}
            : r.ok
              ? { outcome: { ok: true, size: r.size, root: r.root } }
              : {
                  outcome: {
                    ok: false,
                    firstBadSeq: r.firstBadSeq,
                    code: r.code,
                    reason: r.reason,
                  },
                }),
      }),
    );
  });

  router.get('/ui/verdicts', ...signedIn, async (_req, res) => {
    if (!deps.recentVerdicts) throw new HttpError('NOT_FOUND', 'recent verdicts are not available');
    const verdicts = await settle(
      deps.recentVerdicts(RECENT_VERDICTS_PAGE),
      log,
      'recent verdicts',
    );
    send(
      res,
      200,
      verdictsPage(navFor(res), 'error' in verdicts ? verdicts : verdicts.value.map(toVerdictRow)),
    );
  });

  // Errors on these pages are pages too (the JSON error handler serves the API).
  const onError: ErrorRequestHandler = (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const code = errorCode(err);
    const status = statusFor(code);
    const message =
      err instanceof BaseError && status < 500
        ? err.message
        : code === 'BODY_TOO_LARGE'
          ? 'the form is too large'
          : code === 'QUERY_INVALID'
            ? 'the form could not be read'
            : code === 'PATH_INVALID'
              ? 'a path segment is not valid percent-encoding'
              : 'internal error';
    if (status >= 500)
      log.error({ code, method: req.method, url: req.originalUrl.split('?')[0], err }, message);
    else
      log.info({ code, status, method: req.method, url: req.originalUrl.split('?')[0] }, message);
    send(res, status, errorPage(navFor(res), status, code, message));
  };
  router.use(onError);
  return router;
}

/** Our coded errors, and the HTTP stack's; a form body-parser cannot read is QUERY_INVALID here. */
function errorCode(err: unknown): string {
  const code = errorCodeOf(err);
  return code === 'BODY_INVALID' || code === 'MEDIA_UNSUPPORTED' ? 'QUERY_INVALID' : code;
}

function overviewMode(req: Request): VerifyMode {
  for (const key of Object.keys(req.query)) {
    if (key !== 'verify') throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
  }
  const v = req.query['verify'];
  if (v === undefined || v === 'incremental') return 'incremental';
  if (v === 'full') return 'full';
  throw new HttpError('QUERY_INVALID', 'verify must be "full" or "incremental"');
}

async function tenantRow(
  deps: DashboardDeps,
  tenant: string,
  mode: VerifyMode,
  log: Logger,
): Promise<TenantRow> {
  const store = deps.verification.store;
  const [result, latest, status] = await Promise.all([
    deps.verification.verifyTenant(tenant, mode),
    store.latestCheckpoint(tenant),
    deps.tenantStatus
      ? settle(
          Promise.resolve().then(() => deps.tenantStatus?.(tenant)),
          log,
          'tenant status',
        )
      : undefined,
  ]);
  const row: TenantRow = {
    tenant,
    verified: result.ok,
    size: result.size,
    ...(result.ok
      ? {}
      : { failure: { firstBadSeq: result.firstBadSeq, code: result.code, reason: result.reason } }),
  };
  if (status && 'error' in status) row.statusUnknown = true;
  else if (status?.value?.frozen)
    row.frozen = status.value.reason === undefined ? {} : { reason: status.value.reason };
  if (latest) {
    let signedBy: string[] = [];
    let invalid: string | undefined;
    try {
      signedBy = openCheckpoint(latest.note, deps.verifierKeys).verifiedBy;
    } catch (err) {
      invalid = err instanceof Error ? err.message : 'unreadable';
    }
    let coversUntil: string | undefined;
    if (latest.size > 0) {
      const bytes = await store.readBlock(tenant, latest.size - 1);
      try {
        const at = (
          JSON.parse(bytes?.toString('utf8') ?? 'null') as { anchoredAt?: unknown } | null
        )?.anchoredAt;
        if (typeof at === 'string') coversUntil = at;
      } catch {
        coversUntil = undefined;
      }
    }
    row.checkpoint = {
      size: latest.size,
      signedBy,
      ...(coversUntil ? { coversUntil } : {}),
      ...(invalid ? { invalid } : {}),
    };
  }
  return row;
}

function timelineBlock(
  b: HistoryBlock,
  operator: boolean,
  checkpoint: { root: Uint8Array; size: number } | undefined,
): TimelineBlock {
  let proof: ProofStatus = { kind: 'pending' };
  if (b.proof && checkpoint) {
    try {
      const leaf = fromHex(b.hash);
      const nodes = b.proof.map(fromHex);
      if (!leaf || nodes.some((n) => n === undefined)) throw new Error('proof is not hex');
      verifyInclusion(leaf, b.seq, checkpoint.size, nodes as Uint8Array[], checkpoint.root);
      proof = { kind: 'verified', size: checkpoint.size };
    } catch (err) {
      proof = {
        kind: 'failed',
        reason: err instanceof Error ? err.message : 'proof does not verify',
      };
    }
  } else if (b.proof && !checkpoint) {
    proof = { kind: 'failed', reason: 'the checkpoint does not verify' };
  }
  return {
    seq: b.seq,
    kind: b.kind,
    occurredAt: b.occurredAt,
    anchoredAt: b.anchoredAt,
    actor: actorText(b.actor),
    fields: Object.entries(b.fields).map(([name, f]) =>
      operator || !f.opened
        ? { name, opened: f.opened }
        : { name, opened: true, value: valueText(f.value) },
    ),
    verdicts: b.verdicts.map((v) => {
      const verdict = (v ?? {}) as { type?: unknown; code?: unknown; reason?: unknown };
      return {
        type: text(verdict.type),
        ...(typeof verdict.code === 'string' ? { code: verdict.code } : {}),
        ...(typeof verdict.reason === 'string' ? { reason: verdict.reason } : {}),
      };
    }),
    intact: b.verified,
    proof,
  };
}

function actorText(actor: unknown): string {
  if (typeof actor !== 'object' || actor === null) return '';
  const a = actor as { type?: unknown; id?: unknown; name?: unknown };
  const base = `${text(a.type)} ${text(a.id)}`.trim();
  return typeof a.name === 'string' && a.name !== '' ? `${a.name} (${base})` : base;
}

/** A string as is, a number as digits, anything else as empty (query values, untyped block members). */
function text(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

function valueText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

function toQueueRow(q: QueueDepth): QueueDepthRow {
  return { queue: q.queue, counts: q.counts };
}

function toVerdictRow(v: RecentVerdict): VerdictRow {
  return v;
}

/** An optional source's answer, or the reason it has none (the page still renders). */
async function settle<T>(
  promise: Promise<T>,
  log: Logger,
  what: string,
): Promise<{ value: T } | { error: string }> {
  try {
    return { value: await promise };
  } catch (err) {
    log.warn({ err, what }, `dashboard: ${what} unavailable`);
    return { error: `${what} unavailable` };
  }
}
