/**
 * /healthz and /readyz for the roles that serve no HTTP otherwise (worker, scheduler), so that
 * container HEALTHCHECKs and Kubernetes probes work the same for every role. Same answers as the
 * api's routes; nothing else is served (404), and no request body is read.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';

export interface HealthServerDeps {
  /** resolves when Redis answers */
  ping(): Promise<unknown>;
}

export function createHealthServer(deps: HealthServerDeps): Server {
  return createServer((req, res) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } });
    } else if (path === '/healthz') {
      send(200, { ok: true });
    } else if (path === '/readyz') {
      deps.ping().then(
        () => send(200, { ok: true, redis: 'up' }),
        () =>
          send(
            503,
            { error: { code: 'REDIS_UNAVAILABLE', message: 'Redis is unavailable' } },
            { 'retry-after': '5' },
          ),
      );
    } else {
      send(404, { error: { code: 'NOT_FOUND', message: 'only /healthz and /readyz here' } });
    }
  });
}
