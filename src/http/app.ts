/**
 * createApp(deps): the Express app without listen(), so tests drive it with supertest.
 */
import express from 'express';
import type { RequestHandler } from 'express';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Verifier } from '../ledger/checkpoint.js';
import { formatVerifierKey } from '../ledger/checkpoint.js';
import {
  adminTokenFrom,
  auditLog,
  authenticate,
  requireRole,
  sendUnauthorized,
} from './admin-auth.js';
import type { AdminToken } from './admin-auth.js';
import { AdminSessions } from './admin-session.js';
import { dashboardRoutes } from './dashboard.routes.js';
import type { DashboardSources } from './dashboard.routes.js';
import { adminRoutes } from './admin.routes.js';
import type { AdminDeps } from './admin.routes.js';
import { errorHandler, sendError } from './errors.js';
import { webhookRoutes } from './webhooks.routes.js';
import type { WebhookDeps } from './webhooks.routes.js';

/** Where bull-board is mounted (src/pipeline/bull-board.ts builds it with this base path). */
export const QUEUES_BOARD_PATH = '/admin/queues';

export interface AppDeps extends AdminDeps, DashboardSources {
  logger: Logger;
  /** the admin token in clear (environment or generated); hashed here, never kept */
  adminToken?: string;
  /** further tokens (roles admin, auditor, operator), as digests */
  tokens?: readonly AdminToken[];
  verifierKeys: readonly Verifier[];
  /** Prometheus metrics for GET /metrics; absent: no /metrics route */
  metrics?: Metrics;
  /** tenants whose anchoring is frozen, for /readyz */
  frozenTenants?: () => Promise<string[]>;
  /** resolves when Redis answers */
  ping: () => Promise<unknown>;
  /** the CRM webhooks; absent: no /webhooks routes */
  webhooks?: WebhookDeps;
  /** bull-board (createQueuesBoard with basePath QUEUES_BOARD_PATH); absent: no /admin/queues */
  queuesBoard?: RequestHandler;
  /** dashboard session HMAC key (≥ 32 bytes; shared by all API replicas); random per process if absent */
  sessionSecret?: Uint8Array;
  sessionTtlMs?: number;
  /** `Secure` on the session cookie; 'auto' (default): when the request came over TLS */
  secureCookie?: boolean | 'auto';
  now?: () => number;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Prometheus, unauthenticated like /healthz: chain sizes, queue depths, counters; no personal data.
  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  }

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ping();
      // Frozen tenants are reported, not made unready: the webhooks must keep queuing their
      // changes while an admin repairs (an unready api would stop them reaching the queue).
      res.json({
        ok: true,
        redis: 'up',
        frozen: deps.frozenTenants ? await deps.frozenTenants() : [],
      });
    } catch {
      res.setHeader('Retry-After', '5');
      sendError(res, 'REDIS_UNAVAILABLE', 'Redis is unavailable');
    }
  });

  if (deps.webhooks) app.use('/webhooks', webhookRoutes(deps.webhooks));

  // Public: anyone may fetch the keys that verify our checkpoints (C2SP vkey form).
  app.get('/admin/keys', (_req, res) => {
    const [current, ...retired] = deps.verifierKeys;
    res.json({
      current: current ? formatVerifierKey(current) : null,
      retired: retired.map((k) => formatVerifierKey(k)),
    });
  });
  const tokens = [
    ...(deps.adminToken ? [adminTokenFrom('admin', 'admin-token', deps.adminToken)] : []),
    ...(deps.tokens ?? []),
  ];
  const sessions = new AdminSessions(tokens, {
    ...(deps.sessionSecret ? { secret: deps.sessionSecret } : {}),
    ...(deps.sessionTtlMs !== undefined ? { ttlMs: deps.sessionTtlMs } : {}),
    ...(deps.secureCookie !== undefined ? { secureCookie: deps.secureCookie } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  app.use('/admin', auditLog(deps.logger.child({ audit: true })));
  // The dashboard pages (HTML, session cookie or bearer; no credentials → the login form).
  app.use(
    '/admin',
    dashboardRoutes({
      logger: deps.logger,
      verification: deps.verification,
      verifierKeys: deps.verifierKeys,
      tokens,
      sessions,
      ...(deps.queuesBoard ? { queuesPath: QUEUES_BOARD_PATH } : {}),
      ...(deps.tenantStatus ? { tenantStatus: deps.tenantStatus } : {}),
      ...(deps.queueDepths ? { queueDepths: deps.queueDepths } : {}),
      ...(deps.recentVerdicts ? { recentVerdicts: deps.recentVerdicts } : {}),
      ...(deps.vault ? { vault: deps.vault } : {}),
      ...(deps.changeSink ? { changeSink: deps.changeSink } : {}),
    }),
  );
  if (deps.queuesBoard) {
    app.use(
      QUEUES_BOARD_PATH,
      authenticate(tokens, {
        sessions,
        // The board's page goes to the login form; its XHR API answers 401 like ours.
        onMissing: (req, res) => {
          if (req.method === 'GET' && !req.path.startsWith('/api/'))
            res.redirect(303, '/admin/login');
          else sendUnauthorized(res);
        },
      }),
      requireRole('operator'),
      deps.queuesBoard,
    );
  }
  // The JSON API: bearer token (or a dashboard session, for GETs from the browser).
  app.use('/admin', authenticate(tokens, { sessions }), adminRoutes(deps));

  app.use((_req, res) => {
    sendError(res, 'NOT_FOUND', 'no such route');
  });
  app.use(errorHandler(deps.logger));
  return app;
}
