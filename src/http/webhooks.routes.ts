/**
 * POST /webhooks/:source — verify, then parse, then queue, then acknowledge (STYLE.md rules 1-2).
 *
 * The raw body is kept as a Buffer (signatures cover the bytes), with a size limit. A request is
 * acknowledged only after every one of its events is durably in the queue; when the queue cannot
 * take it (Redis down, or above its high-water mark) the answer is 503 with Retry-After, so the CRM
 * delivers it again later. No ledger work happens on this path.
 */
import express, { Router } from 'express';
import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Connector, RawRequest } from '../../connectors/types.js';
import type { ChangeSink } from '../pipeline/queues.js';
import type { Logger } from '../observability/logger.js';

export interface WebhookDeps {
  connectors: ReadonlyMap<string, Connector>;
  sink: ChangeSink;
  logger: Logger;
  now?: () => number;
  /** largest accepted body (express `limit` syntax); 1 MiB by default */
  bodyLimit?: string | number;
  /** counters, optional */
  onOutcome?: (source: string, outcome: string, events: number) => void;
}

export const WEBHOOK_BODY_LIMIT = '1mb';
const RETRY_AFTER_SECONDS = '10';

const VERIFY_STATUS: Record<string, number> = {
  ORGANIZATION_NOT_ALLOWED: 403,
  CONNECTOR_NOT_CONFIGURED: 404,
};

function send(res: Response, answer: { status: number; contentType: string; body: string }): void {
  res.status(answer.status).type(answer.contentType).send(answer.body);
}

export function webhookRoutes(deps: WebhookDeps): Router {
  const router = Router();
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const outcome = deps.onOutcome ?? (() => {});

  const connectorFor = (req: Request): Connector | undefined =>
    deps.connectors.get(String(req.params['source']));

  router.post(
    '/:source',
    (req, res, next) => {
      if (connectorFor(req)) {
        next();
        return;
      }
      res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no such webhook source' } });
    },
    express.raw({ type: () => true, limit: deps.bodyLimit ?? WEBHOOK_BODY_LIMIT }),
    async (req, res) => {
      const connector = connectorFor(req) as Connector;
      const source = connector.source;
      const raw: RawRequest = {
        method: req.method,
        originalUrl: req.originalUrl,
        headers: req.headers,
        body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      };
      const verified = connector.verifyRequest(raw, now());
      if (!verified.ok) {
        const status = VERIFY_STATUS[verified.code] ?? 401;
        log.info({ source, code: verified.code, status }, 'webhook refused');
        outcome(source, 'refused', 0);
        send(res, connector.reject(status, verified.code, verified.reason));
        return;
      }
      const parsed = connector.parse(raw);
      if (!parsed.ok) {
        const status = parsed.code === 'BATCH_TOO_LARGE' ? 413 : 400;
        log.info({ source, code: parsed.code, path: parsed.path, status }, 'webhook rejected');
        outcome(source, 'invalid', 0);
        const where = parsed.path ? ` at ${parsed.path}` : '';
        send(res, connector.reject(status, parsed.code, `${parsed.reason}${where}`));
        return;
      }
      if (parsed.events.length > 0) {
        try {
          if (await deps.sink.overloaded()) {
            res.setHeader('Retry-After', RETRY_AFTER_SECONDS);
            outcome(source, 'overloaded', parsed.events.length);
            send(
              res,
              connector.reject(503, 'QUEUE_OVERLOADED', 'the change queue is full; retry later'),
            );
            return;
          }
          // The queue carries what the ledger anchors: the CRM's original payload (`raw`) stays out
          // of it (connectors put what must be kept into `fields`), which halves the job data.
          const events = parsed.events.map((e) => {
            const { raw: _raw, ...event } = e.event;
            return { ...e, event };
          });
          await deps.sink.enqueue({ source, receivedAt: new Date(now()).toISOString(), events });
        } catch (err) {
          log.warn({ source, err: (err as Error).message }, 'webhook could not be queued');
          res.setHeader('Retry-After', RETRY_AFTER_SECONDS);
          outcome(source, 'unavailable', parsed.events.length);
          send(
            res,
            connector.reject(
              503,
              'QUEUE_UNAVAILABLE',
              'the change queue is unavailable; retry later',
            ),
          );
          return;
        }
      }
      outcome(source, 'queued', parsed.events.length);
      send(res, connector.acknowledge(parsed.events));
    },
  );

  // Body-parser errors (too large, bad encoding) answered in the CRM's own format.
  const onBodyError: ErrorRequestHandler = (err: unknown, req, res, next) => {
    const connector = connectorFor(req);
    const type = (err as { type?: unknown }).type;
    if (!connector || (type !== 'entity.too.large' && type !== 'encoding.unsupported')) {
      next(err);
      return;
    }
    const [status, code] =
      type === 'entity.too.large' ? [413, 'BODY_TOO_LARGE'] : [415, 'ENCODING_UNSUPPORTED'];
    outcome(connector.source, 'invalid', 0);
    send(
      res,
      connector.reject(
        status,
        code,
        type === 'entity.too.large' ? 'request body too large' : 'unsupported content encoding',
      ),
    );
  };
  router.use(onBodyError);
  return router;
}
