/**
 * A local fake HubSpot (issue 5): the REST paths `@hubspot/api-client` 13.5.0 calls, HubSpot's
 * auth, rate-limit and error bodies, OAuth refresh, and signed v3 webhooks on every change, all in
 * memory on a loopback port. Tests, the demo and `crm-ledger sandbox` point the real SDK at it with
 * `basePath: sandbox.url`.
 *
 * Request pipeline: latency → inspection API (`/_sandbox/...`, no auth) | OAuth token endpoint |
 * bearer auth (401 INVALID/EXPIRED_AUTHENTICATION) → rolling rate limit (429 + Retry-After) →
 * injected fault "before" (5xx, nothing written) → handler → injected fault "after" (the write
 * happened, the answer is a 5xx: a crash mid-way).
 *
 * Plain node:http (connectors may not import express, STYLE.md §3), no dependencies.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleApi, recordView } from './api.js';
import type { ApiResponse } from './api.js';
import { HUBSPOT_RATE_WINDOW_MS, RollingRateLimiter } from './rate-limit.js';
import { SEARCH_RESULT_CAP } from './search.js';
import { SandboxStore, StoreError, objectTypeOf } from './store.js';
import type { ChangeSource, ObjectType, StoreChange, StoredRecord } from './store.js';
import { WebhookSender } from './webhooks.js';
import type { WebhookDelivery, WebhookEvent } from './webhooks.js';

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_LOGGED_REQUESTS = 10_000;

export interface HubspotSandboxOptions {
  /** default 0: a free port */
  port?: number;
  host?: string;
  /** the HubSpot account (tenant `hubspot:<portalId>`); default 62515 */
  portalId?: number;
  /** the app whose token calls the API; its changes come back as `INTEGRATION` / `<appId>` */
  appId?: number;
  /** accept only this bearer token (plus tokens issued by /oauth/v1/token); default: any token */
  token?: string;
  /** OAuth app credentials checked by /oauth/v1/token; default: any refresh token is accepted */
  oauth?: { clientId: string; clientSecret: string; refreshToken: string };
  accessTokenTtlSeconds?: number;
  /** rolling-window limit per token; default 100 per 10 s (a Starter private app) */
  rateLimit?: { max: number; windowMs?: number };
  /** where webhooks are POSTed (the exact URL that is signed); none: no webhooks */
  webhookTarget?: string;
  /** the app's client secret that signs webhooks */
  clientSecret?: string;
  webhook?: {
    flushMs?: number;
    retryBaseMs?: number;
    retryMaxMs?: number;
    maxRetries?: number;
    concurrency?: number;
  };
  /** properties with a propertyChange subscription; default every non-system property */
  webhookProperties?: readonly string[];
  /** results a search may page through (HubSpot: 10,000) */
  searchResultCap?: number;
  now?: () => number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  at: number;
}

export interface FaultOptions {
  /** HTTP status to answer (default 500) */
  status?: number;
  /** 'before' answers without writing; 'after' writes, then answers the error (default 'before') */
  phase?: 'before' | 'after';
  /** only requests whose path starts with this (e.g. '/crm/v3/objects/notes') */
  pathPrefix?: string;
}

export interface SandboxStats {
  requests: number;
  served429: number;
  served5xx: number;
  served401: number;
  tokenRefreshes: number;
  webhooks: {
    delivered: number;
    pending: number;
    inFlight: number;
    failedAttempts: number;
    dropped: number;
  };
}

export interface HubspotSandbox {
  readonly url: string;
  readonly port: number;
  readonly portalId: number;
  readonly appId: number;
  readonly clientSecret: string;
  readonly store: SandboxStore;
  close(): Promise<void>;
  // records
  records(type: string, options?: { archived?: boolean }): StoredRecord[];
  record(type: string, id: string): StoredRecord | undefined;
  notesFor(type: string, id: string): StoredRecord[];
  /** creates records without webhooks (fixtures); returns their ids */
  seed(
    type: string,
    records: readonly Record<string, string>[],
    options?: { webhooks?: boolean; at?: number },
  ): string[];
  createAsUser(type: string, properties: Record<string, string>, userId: number): StoredRecord;
  updateAsUser(
    type: string,
    id: string,
    properties: Record<string, string | null>,
    userId: number,
  ): StoredRecord;
  archiveAsUser(type: string, id: string, userId: number): void;
  /** GDPR delete (permanent): the record 404s from now on; a `privacyDeletion` webhook is sent */
  gdprDeleteAsUser(type: string, id: string, userId: number): void;
  // limits and faults
  setRateLimit(max: number, windowMs?: number): void;
  failNext(count: number, options?: FaultOptions): void;
  setFaultRate(rate: number, options?: FaultOptions): void;
  setLatency(ms: number): void;
  clearFaults(): void;
  // tokens
  expireToken(token?: string): void;
  issuedTokens(): string[];
  // observation
  requests(): LoggedRequest[];
  clearRequests(): void;
  stats(): SandboxStats;
  // webhooks
  setWebhookTarget(url: string | undefined): void;
  pauseWebhooks(): void;
  resumeWebhooks(): void;
  webhookDeliveries(): WebhookDelivery[];
  webhooksIdle(): Promise<void>;
}

/** Subscription ids per subscription type, as an app's subscriptions would number them. */
const SUBSCRIPTION_IDS: Readonly<Record<string, number>> = {
  'contact.creation': 101,
  'contact.propertyChange': 102,
  'contact.deletion': 103,
  'contact.privacyDeletion': 104,
  'company.creation': 201,
  'company.propertyChange': 202,
  'company.deletion': 203,
  'deal.creation': 301,
  'deal.propertyChange': 302,
  'deal.deletion': 303,
};

export async function startHubspotSandbox(
  options: HubspotSandboxOptions = {},
): Promise<HubspotSandbox> {
  const now = options.now ?? Date.now;
  const portalId = options.portalId ?? 62515;
  const appId = options.appId ?? 54321;
  const clientSecret = options.clientSecret ?? 'sandbox-hubspot-client-secret';
  const searchResultCap = options.searchResultCap ?? SEARCH_RESULT_CAP;
  const store = new SandboxStore({ now });
  const limiter = new RollingRateLimiter(
    {
      max: options.rateLimit?.max ?? 100,
      windowMs: options.rateLimit?.windowMs ?? HUBSPOT_RATE_WINDOW_MS,
    },
    now,
  );
  const webhooks = new WebhookSender({
    targetUrl: options.webhookTarget,
    clientSecret,
    now,
    ...options.webhook,
  });
  const webhookProperties =
    options.webhookProperties === undefined ? undefined : new Set(options.webhookProperties);

  /** with a `token` option only known tokens pass; otherwise any bearer token not expired */
  const restricted = options.token !== undefined;
  const validTokens = new Set<string>(options.token === undefined ? [] : [options.token]);
  const seenTokens = new Set<string>();
  const expiredTokens = new Set<string>();
  const issued: string[] = [];
  const log: LoggedRequest[] = [];
  let totalRequests = 0;
  let served429 = 0;
  let served5xx = 0;
  let served401 = 0;
  let tokenRefreshes = 0;
  let latencyMs = 0;
  let nextFaults: { remaining: number; options: FaultOptions } | undefined;
  let faultRate: { rate: number; options: FaultOptions } | undefined;
  let nextEventId = 1000;

  store.onChange = (change: StoreChange) => {
    const event = toWebhookEvent(change);
    if (event !== undefined) webhooks.enqueue(event);
  };

  function toWebhookEvent(change: StoreChange): WebhookEvent | undefined {
    if (change.type === 'notes') return undefined;
    const object = change.type === 'companies' ? 'company' : change.type.slice(0, -1);
    if (change.kind === 'propertyChange' && webhookProperties !== undefined) {
      if (!webhookProperties.has(change.propertyName)) return undefined;
    }
    const subscriptionType = `${object}.${change.kind}`;
    const event: WebhookEvent = {
      eventId: nextEventId++,
      subscriptionId: SUBSCRIPTION_IDS[subscriptionType] ?? 999,
      portalId,
      appId,
      occurredAt: change.at,
      subscriptionType,
      attemptNumber: 0,
      objectId: Number(change.id),
      ...sourceFields(change.source),
    };
    if (change.kind === 'propertyChange') {
      event.propertyName = change.propertyName;
      event.propertyValue = change.propertyValue;
    }
    if (change.kind === 'creation') event.changeFlag = 'NEW';
    return event;
  }

  function pickFault(path: string, phase: 'before' | 'after'): number | undefined {
    const applies = (o: FaultOptions) =>
      (o.phase ?? 'before') === phase &&
      (o.pathPrefix === undefined || path.startsWith(o.pathPrefix));
    if (nextFaults !== undefined && nextFaults.remaining > 0 && applies(nextFaults.options)) {
      nextFaults.remaining--;
      return nextFaults.options.status ?? 500;
    }
    if (faultRate !== undefined && applies(faultRate.options) && Math.random() < faultRate.rate) {
      return faultRate.options.status ?? 500;
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const segments = path
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    const correlationId = randomUUID();
    const send = (response: ApiResponse): void => {
      if (!path.startsWith('/_sandbox')) {
        totalRequests++;
        if (response.status === 429) served429++;
        if (response.status >= 500) served5xx++;
        if (response.status === 401) served401++;
        log.push({ method, path, status: response.status, at: now() });
        if (log.length > MAX_LOGGED_REQUESTS) log.splice(0, log.length - MAX_LOGGED_REQUESTS);
      }
      const headers: Record<string, string> = {
        'x-hubspot-correlation-id': correlationId,
        ...response.headers,
      };
      if (response.body === undefined || response.status === 204) {
        res.writeHead(response.status, headers).end();
        return;
      }
      const text = JSON.stringify(response.body);
      res
        .writeHead(response.status, {
          ...headers,
          'content-type': 'application/json;charset=utf-8',
          'content-length': String(Buffer.byteLength(text)),
        })
        .end(text);
    };
    const error = (
      status: number,
      category: string,
      message: string,
      extra: Record<string, unknown> = {},
    ) => send({ status, body: { status: 'error', message, correlationId, category, ...extra } });

    if (latencyMs > 0 && !path.startsWith('/_sandbox')) await sleep(latencyMs);

    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch {
      return error(413, 'VALIDATION_ERROR', 'Request body is too large');
    }

    if (segments[0] === '_sandbox') return send(inspect(method, segments.slice(1), raw));
    if (path === '/oauth/v1/token' && method === 'POST')
      return send(oauthToken(raw, correlationId));

    // Bearer auth: HubSpot's 401 bodies (crm-protocols.md §3.2).
    const authorization = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/i.exec(authorization)?.[1];
    if (token === undefined) {
      return error(
        401,
        'INVALID_AUTHENTICATION',
        'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
      );
    }
    if (expiredTokens.has(token)) {
      return error(
        401,
        'EXPIRED_AUTHENTICATION',
        'The OAuth token used to make this call expired 1 second(s) ago.',
        {
          context: {},
        },
      );
    }
    if (restricted && !validTokens.has(token)) {
      return error(
        401,
        'INVALID_AUTHENTICATION',
        'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
      );
    }
    seenTokens.add(token);

    const isSearch = path.endsWith('/search');
    const decision = limiter.take(token);
    const rateHeaders: Record<string, string> = isSearch
      ? {}
      : {
          'x-hubspot-ratelimit-max': String(decision.max),
          'x-hubspot-ratelimit-remaining': String(decision.remaining),
          'x-hubspot-ratelimit-interval-milliseconds': String(decision.windowMs),
        };
    if (!decision.allowed) {
      return send({
        status: 429,
        headers: {
          ...rateHeaders,
          'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))),
        },
        body: {
          status: 'error',
          message: 'You have reached your ten_secondly_rolling limit.',
          errorType: 'RATE_LIMIT',
          correlationId,
          policyName: 'TEN_SECONDLY_ROLLING',
          groupName: `ten-second-${appId}`,
          requestId: randomUUID(),
        },
      });
    }

    const before = pickFault(path, 'before');
    if (before !== undefined) {
      return send({
        status: before,
        headers: rateHeaders,
        body: {
          status: 'error',
          message: 'internal error',
          correlationId,
          category: 'INTERNAL_ERROR',
        },
      });
    }

    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return error(400, 'VALIDATION_ERROR', 'Invalid input JSON on line 1');
      }
    }
    let response: ApiResponse | undefined;
    try {
      response = handleApi(
        { store, searchResultCap },
        { method, segments, query: url.searchParams, body, source: { kind: 'integration', appId } },
      );
    } catch (err) {
      if (err instanceof StoreError) {
        return send({
          status: err.status,
          headers: rateHeaders,
          body: {
            status: 'error',
            message: err.message,
            correlationId,
            category: err.category,
            ...(err.context === undefined ? {} : { context: err.context }),
          },
        });
      }
      throw err;
    }
    if (response === undefined) {
      return error(404, 'OBJECT_NOT_FOUND', `No route for ${method} ${path}`);
    }
    const after = pickFault(path, 'after');
    if (after !== undefined) {
      return send({
        status: after,
        headers: rateHeaders,
        body: {
          status: 'error',
          message: 'internal error',
          correlationId,
          category: 'INTERNAL_ERROR',
        },
      });
    }
    send({ ...response, headers: { ...rateHeaders, ...response.headers } });
  }

  function oauthToken(raw: Buffer, correlationId: string): ApiResponse {
    const form = new URLSearchParams(raw.toString('utf8'));
    const fail = (status: string, message: string): ApiResponse => ({
      status: 400,
      body: { status, message, correlationId },
    });
    if (form.get('grant_type') !== 'refresh_token') {
      return fail('BAD_GRANT_TYPE', 'grant_type must be refresh_token');
    }
    const expected = options.oauth;
    if (expected !== undefined) {
      if (form.get('client_id') !== expected.clientId)
        return fail('BAD_CLIENT_ID', 'missing or unknown client id');
      if (form.get('client_secret') !== expected.clientSecret) {
        return fail('BAD_CLIENT_SECRET', 'missing or invalid client secret');
      }
      if (form.get('refresh_token') !== expected.refreshToken) {
        return fail('BAD_REFRESH_TOKEN', 'missing or invalid refresh token');
      }
    } else if ((form.get('refresh_token') ?? '') === '') {
      return fail('BAD_REFRESH_TOKEN', 'missing or invalid refresh token');
    }
    const accessToken = `sandbox-at-${randomBytes(12).toString('hex')}`;
    validTokens.add(accessToken);
    issued.push(accessToken);
    tokenRefreshes++;
    return {
      status: 200,
      body: {
        token_type: 'bearer',
        refresh_token: form.get('refresh_token'),
        access_token: accessToken,
        expires_in: options.accessTokenTtlSeconds ?? 1800,
      },
    };
  }

  function requireType(name: string): ObjectType {
    const type = objectTypeOf(name);
    if (type === undefined)
      throw new StoreError(400, 'VALIDATION_ERROR', `unknown object type ${name}`);
    return type;
  }

  const sandbox: HubspotSandbox = {
    url: '',
    port: 0,
    portalId,
    appId,
    clientSecret,
    store,
    close: async () => {
      webhooks.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    records: (type, opts = {}) =>
      [...store.table(requireType(type)).values()].filter(
        (r) => r.archived === (opts.archived ?? false),
      ),
    record: (type, id) => store.table(requireType(type)).get(id),
    notesFor: (type, id) => {
      const record = store.get(requireType(type), id);
      if (record === undefined) return [];
      return record.associations
        .filter((a) => a.type === 'notes')
        .map((a) => store.get('notes', a.id))
        .filter((n): n is StoredRecord => n !== undefined);
    },
    seed: (type, records, opts = {}) =>
      records.map(
        (properties) =>
          store.create(requireType(type), properties, { kind: 'import' }, [], {
            silent: opts.webhooks !== true,
            ...(opts.at === undefined ? {} : { at: opts.at }),
          }).id,
      ),
    createAsUser: (type, properties, userId) =>
      store.create(requireType(type), properties, { kind: 'user', userId }),
    updateAsUser: (type, id, properties, userId) =>
      store.update(requireType(type), id, properties, { kind: 'user', userId }),
    archiveAsUser: (type, id, userId) => {
      store.archive(requireType(type), id, { kind: 'user', userId });
    },
    gdprDeleteAsUser: (type, id, userId) => {
      store.purge(requireType(type), id, { kind: 'user', userId });
    },
    setRateLimit: (max, windowMs) => {
      limiter.settings = { max, windowMs: windowMs ?? limiter.settings.windowMs };
      limiter.reset();
    },
    failNext: (count, opts = {}) => {
      nextFaults = { remaining: count, options: opts };
    },
    setFaultRate: (rate, opts = {}) => {
      faultRate = rate > 0 ? { rate, options: opts } : undefined;
    },
    setLatency: (ms) => {
      latencyMs = ms;
    },
    clearFaults: () => {
      nextFaults = undefined;
      faultRate = undefined;
      latencyMs = 0;
    },
    expireToken: (token) => {
      const targets = token === undefined ? [...seenTokens, ...validTokens] : [token];
      for (const t of targets) {
        expiredTokens.add(t);
        validTokens.delete(t);
      }
    },
    issuedTokens: () => issued.slice(),
    requests: () => log.slice(),
    clearRequests: () => {
      log.length = 0;
    },
    stats: () => ({
      requests: totalRequests,
      served429,
      served5xx,
      served401,
      tokenRefreshes,
      webhooks: webhooks.stats(),
    }),
    setWebhookTarget: (target) => {
      webhooks.targetUrl = target;
    },
    pauseWebhooks: () => webhooks.pause(),
    resumeWebhooks: () => webhooks.resume(),
    webhookDeliveries: () => webhooks.deliveries(),
    webhooksIdle: () => webhooks.idle(),
  };

  /** The inspection API: the same operations as the methods above, over HTTP, for people and e2e. */
  function inspect(method: string, s: string[], raw: Buffer): ApiResponse {
    let input: Record<string, unknown> = {};
    try {
      if (raw.length > 0) input = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      return {
        status: 400,
        body: { error: { code: 'PAYLOAD_MALFORMED', message: 'invalid JSON' } },
      };
    }
    try {
      const route = `${method} ${s.join('/')}`;
      if (route === 'GET stats') return { status: 200, body: sandbox.stats() };
      if (route === 'GET requests') return { status: 200, body: { requests: sandbox.requests() } };
      if (route === 'DELETE requests') {
        sandbox.clearRequests();
        return { status: 204 };
      }
      if (route === 'PUT rate-limit') {
        sandbox.setRateLimit(
          Number(input['max']),
          input['windowMs'] === undefined ? undefined : Number(input['windowMs']),
        );
        return { status: 204 };
      }
      if (route === 'POST faults') {
        const fault: FaultOptions = {};
        if (typeof input['status'] === 'number') fault.status = input['status'];
        if (input['phase'] === 'after' || input['phase'] === 'before') fault.phase = input['phase'];
        if (typeof input['pathPrefix'] === 'string') fault.pathPrefix = input['pathPrefix'];
        if (typeof input['next'] === 'number') sandbox.failNext(input['next'], fault);
        if (typeof input['rate'] === 'number') sandbox.setFaultRate(input['rate'], fault);
        if (typeof input['latencyMs'] === 'number') sandbox.setLatency(input['latencyMs']);
        return { status: 204 };
      }
      if (route === 'DELETE faults') {
        sandbox.clearFaults();
        return { status: 204 };
      }
      if (route === 'POST tokens/expire') {
        sandbox.expireToken(typeof input['token'] === 'string' ? input['token'] : undefined);
        return { status: 204 };
      }
      if (route === 'GET webhooks') {
        return {
          status: 200,
          body: { ...webhooks.stats(), deliveries: sandbox.webhookDeliveries() },
        };
      }
      if (route === 'POST webhooks/pause') {
        sandbox.pauseWebhooks();
        return { status: 204 };
      }
      if (route === 'POST webhooks/resume') {
        sandbox.resumeWebhooks();
        return { status: 204 };
      }
      if (route === 'PUT webhooks/target') {
        sandbox.setWebhookTarget(typeof input['url'] === 'string' ? input['url'] : undefined);
        return { status: 204 };
      }
      if (method === 'GET' && s[0] === 'records' && s.length === 2) {
        const type = requireType(s[1] as string);
        return { status: 200, body: { results: sandbox.records(type).map((r) => fullView(r)) } };
      }
      if (method === 'GET' && s[0] === 'records' && s.length === 3) {
        const record = sandbox.record(s[1] as string, s[2] as string);
        if (record === undefined)
          return { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no such record' } } };
        return { status: 200, body: fullView(record) };
      }
      if (method === 'GET' && s[0] === 'records' && s.length === 4 && s[3] === 'notes') {
        return {
          status: 200,
          body: {
            results: sandbox.notesFor(s[1] as string, s[2] as string).map((r) => fullView(r)),
          },
        };
      }
      if (method === 'POST' && s[0] === 'user-changes' && s.length === 2) {
        // {userId, id?, properties}: creates a record as a person when no id is given, else updates it.
        const userId = Number(input['userId'] ?? 1);
        const properties = (input['properties'] ?? {}) as Record<string, string>;
        const record =
          typeof input['id'] === 'string'
            ? sandbox.updateAsUser(s[1] as string, input['id'], properties, userId)
            : sandbox.createAsUser(s[1] as string, properties, userId);
        return { status: 200, body: fullView(record) };
      }
      return {
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: `no inspection route ${route}` } },
      };
    } catch (err) {
      if (err instanceof StoreError) {
        return {
          status: err.status,
          body: { error: { code: err.category, message: err.message } },
        };
      }
      throw err;
    }
  }

  function fullView(record: StoredRecord): unknown {
    return {
      ...recordView(store, record, Object.keys(record.properties)),
      associations: record.associations,
    };
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ status: 'error', message: String(err), category: 'INTERNAL_ERROR' }),
        );
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  Object.assign(sandbox, { url: `http://${host}:${address.port}`, port: address.port });
  return sandbox;
}

function sourceFields(source: ChangeSource): { changeSource: string; sourceId?: string } {
  switch (source.kind) {
    case 'integration':
      return { changeSource: 'INTEGRATION', sourceId: String(source.appId) };
    case 'user':
      return { changeSource: 'CRM_UI', sourceId: `userId:${source.userId}` };
    case 'import':
      return { changeSource: 'IMPORT' };
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('too large'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
