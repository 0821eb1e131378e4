/**
 * createApp(deps): the Express app without listen(), so tests drive it with supertest.
 */
import express from 'express';
import type { Logger } from '../observability/logger.js';
import type { Verifier } from '../ledger/checkpoint.js';
import { formatVerifierKey } from '../ledger/checkpoint.js';
import { adminTokenFrom, auditLog, authenticate } from './admin-auth.js';
import type { AdminToken } from './admin-auth.js';
import { adminRoutes } from './admin.routes.js';
import type { AdminDeps } from './admin.routes.js';
import { errorHandler, sendError } from './errors.js';
import { webhookRoutes } from './webhooks.routes.js';
import type { WebhookDeps } from './webhooks.routes.js';

export interface AppDeps extends AdminDeps {
  logger: Logger;
  /** the admin token in clear (environment or generated); hashed here, never kept */
  adminToken?: string;
  /** further tokens (roles admin, auditor, operator), as digests */
  tokens?: readonly AdminToken[];
  verifierKeys: readonly Verifier[];
  /** resolves when Redis answers */
  ping: () => Promise<unknown>;
  /** the CRM webhooks; absent: no /webhooks routes */
  webhooks?: WebhookDeps;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ping();
      res.json({ ok: true, redis: 'up' });
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
  app.use(
    '/admin',
    auditLog(deps.logger.child({ audit: true })),
    authenticate(tokens),
    adminRoutes(deps),
  );

  app.use((_req, res) => {
    sendError(res, 'NOT_FOUND', 'no such route');
  });
  app.use(errorHandler(deps.logger));
  return app;
}
