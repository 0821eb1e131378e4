/**
 * A local fake Salesforce org for tests, the demo and `crm-ledger sandbox`: the REST paths
 * jsforce 3.10.16 calls, OAuth refresh, API limits and faults, and on every change an Outbound
 * Message (SOAP) and a CDC event on a CometD endpoint with durable replay.
 * Reference: crm-protocols.md §4 (Outbound Messages), §5 (CDC), §6 (jsforce), §8 (fixtures).
 *
 * Everything lives in memory; the inspection API (`/_sandbox/...` over HTTP, or the methods of
 * the returned object) lets tests look inside and steer it. Serves plain node:http (connectors
 * may not import express: STYLE.md §3).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { normaliseSalesforceId } from '../../salesforce/org-allow-list.js';
import { CometdBus } from './cometd.js';
import type { RetainedEvent } from './cometd.js';
import { makeSalesforceId } from './ids.js';
import { SandboxOrg, SfError, outboundFields, restView } from './org.js';
import type { Actor, Scalar, StoredRecord } from './org.js';
import { OutboundQueue } from './outbound.js';
import type { OutboundDelivery, OutboundRetryOptions } from './outbound.js';
import { SoqlError, matches, parseSoql, sortRecords } from './soql.js';

export type { OutboundDelivery, OutboundRetryOptions } from './outbound.js';
export type { RetainedEvent } from './cometd.js';

export interface SalesforceSandboxOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: a free port */
  port?: number;
  /** 15 or 18 characters; default a fixed sandbox org id */
  orgId?: string;
  /**
   * When set, only this token and the tokens the sandbox issues (refresh) are valid. When unset,
   * any non-empty bearer token is accepted until `expireSessions()`; from then on only tokens
   * the sandbox issues.
   */
  token?: string;
  /** OAuth client checks for the refresh_token grant; unset parts accept anything */
  oauth?: { clientId?: string; clientSecret?: string; refreshToken?: string };
  /** the integration user the tokens belong to: commitUser/LastModifiedById of API writes */
  apiUserId?: string;
  /** API request budget (Salesforce: a rolling 24 h allocation); default unlimited */
  apiRequestLimit?: number;
  /** records per query page before `nextRecordsUrl` (Salesforce: 2000; `Sforce-Query-Options: batchSize=n` overrides) */
  queryBatchSize?: number;
  /** where Outbound Messages are POSTed; unset: none are sent */
  outboundMessageUrl?: string;
  /** objects that send Outbound Messages on create/update (default Contact, Lead, Account) */
  outboundObjects?: readonly string[] | 'all';
  outboundRetry?: OutboundRetryOptions;
  /** objects selected for Change Data Capture (default Contact, Lead, Account and custom objects) */
  cdcObjects?: readonly string[] | 'all';
  /** long-poll hold of `/meta/connect` in seconds (Salesforce: 110; default 10) */
  cometdTimeoutSeconds?: number;
  /** added to every REST response */
  latencyMs?: number;
  now?: () => number;
}

export interface FaultInjection {
  /** HTTP status of the injected failures (default 503) */
  status?: number;
  /** how many requests fail (default 1) */
  count?: number;
  /** only requests whose `METHOD /path` matches (a RegExp source), e.g. `^PATCH ` */
  match?: string;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  /** the `client=` of `Sforce-Call-Options` */
  client?: string;
  at: string;
}

export interface UserChange {
  /** the Salesforce user making the change (commitUser, LastModifiedById) */
  userId: string;
  type: string;
  op: 'create' | 'update' | 'delete' | 'undelete';
  id?: string;
  fields?: Record<string, Scalar>;
  /** default '' (a change in the UI carries no API origin) */
  changeOrigin?: string;
}

export interface SandboxRecord {
  type: string;
  Id: string;
  IsDeleted: boolean;
  [field: string]: unknown;
}

export interface SalesforceSandbox {
  /** `http://127.0.0.1:<port>`: instanceUrl and loginUrl */
  readonly url: string;
  readonly port: number;
  /** 18 characters */
  readonly orgId: string;
  /** `salesforce:<orgId>` */
  readonly tenant: string;
  readonly apiUserId: string;
  /** live records of a type (`includeDeleted` for the recycle bin), REST-shaped */
  records(type: string, includeDeleted?: boolean): SandboxRecord[];
  record(id: string): SandboxRecord | undefined;
  tasks(): SandboxRecord[];
  requests(): readonly RequestLogEntry[];
  stats(): {
    apiRequests: number;
    limitErrors: number;
    sessionErrors: number;
    faultsServed: number;
    cometdAuthFailures: number;
  };
  setApiLimit(limit: number | undefined, used?: number): void;
  injectFaults(fault: FaultInjection): void;
  setLatency(ms: number): void;
  /**
   * Every token issued or seen so far becomes invalid (REST 401 INVALID_SESSION_ID, CometD
   * 401::Authentication invalid); from then on only tokens issued by the refresh grant are valid.
   * A CometD client notices at its next `/meta/connect`, i.e. after the long poll it holds ends
   * (`cometdTimeoutSeconds`), as with Salesforce.
   */
  expireSessions(): void;
  outboundDeliveries(): readonly OutboundDelivery[];
  /** Outbound Messages not yet acknowledged */
  outboundBacklog(): number;
  cdcEvents(): readonly RetainedEvent[];
  /** header-only GAP_* / GAP_OVERFLOW event; returns its replay id */
  publishGap(type: string, ids: readonly string[], changeType?: string): number;
  /** a change made "as a user" (UI): changeOrigin '', commitUser/LastModifiedById = userId */
  changeAsUser(change: UserChange): SandboxRecord;
  close(): Promise<void>;
}

const DEFAULT_ORG_ID = '00D5g000004ZxQ1EAK';
const API_PATH = /^\/services\/data\/v(\d{2,3}\.\d)(\/.*)?$/;

export async function startSalesforceSandbox(
  options: SalesforceSandboxOptions = {},
): Promise<SalesforceSandbox> {
  const maybeOrgId = normaliseSalesforceId(options.orgId ?? DEFAULT_ORG_ID);
  if (maybeOrgId === undefined)
    throw new Error('orgId must be a 15- or 18-character Salesforce id');
  const orgId: string = maybeOrgId;
  const apiUserId = options.apiUserId ?? makeSalesforceId('005', 1, '5g0');
  const org = new SandboxOrg({
    orgId,
    apiUserId,
    cdcObjects: options.cdcObjects ?? ['Contact', 'Lead', 'Account', '*__c'],
    outboundObjects: options.outboundObjects ?? ['Contact', 'Lead', 'Account'],
    now: options.now ?? Date.now,
  });

  // --- sessions -------------------------------------------------------------------------------
  const issued = new Set<string>(options.token === undefined ? [] : [options.token]);
  const seen = new Set<string>();
  const expired = new Set<string>();
  /** after expireSessions(), only tokens the sandbox issues are valid, even without `token` */
  let strict = options.token !== undefined;
  const isTokenValid = (token: string): boolean => {
    if (token === '' || expired.has(token)) return false;
    if (strict && !issued.has(token)) return false;
    seen.add(token);
    return true;
  };

  // --- state for the inspection API -----------------------------------------------------------
  const log: RequestLogEntry[] = [];
  const counters = { apiRequests: 0, limitErrors: 0, sessionErrors: 0, faultsServed: 0 };
  let apiLimit = options.apiRequestLimit;
  let latencyMs = options.latencyMs ?? 0;
  const faults: { status: number; remaining: number; match?: RegExp }[] = [];
  const cursors = new Map<string, { rows: Record<string, unknown>[]; batch: number }>();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        sendJson(res, 500, [{ errorCode: 'UNKNOWN_EXCEPTION', message: String(err) }]);
      else res.destroy();
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const bus = new CometdBus({
    mount: '/cometd',
    isTokenValid,
    timeoutSeconds: options.cometdTimeoutSeconds ?? 10,
  });
  bus.attach(server);
  org.bus = bus;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;

  if (options.outboundMessageUrl !== undefined) {
    org.outbound = new OutboundQueue({
      url: options.outboundMessageUrl,
      orgId,
      retry: options.outboundRetry ?? {},
      currentFields: (_type, id) => outboundFields(org.find(id)),
      newNotificationId: () => org.newId('04l'),
      newMessageId: () => org.newId('04k'),
      enterpriseUrl: `${url}/services/Soap/c/62.0/${orgId.slice(0, 15)}`,
      partnerUrl: `${url}/services/Soap/u/62.0/${orgId.slice(0, 15)}`,
    });
  }

  const view = (record: StoredRecord): SandboxRecord =>
    ({ type: record.type, ...restView(record, '62.0') }) as SandboxRecord;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url ?? '/', 'http://sandbox');
    const path = parsed.pathname;
    const body = await readBody(req);
    if (path.startsWith('/_sandbox/')) {
      inspect(req.method ?? 'GET', path, parsed.searchParams, body, res);
      return;
    }
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const client = /(?:^|[,;]\s*)client=([^,;]+)/
      .exec(String(req.headers['sforce-call-options'] ?? ''))?.[1]
      ?.trim();
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path: parsed.pathname + parsed.search,
      status: 0,
      ...(client !== undefined && { client }),
      at: new Date().toISOString(),
    };
    log.push(entry);
    const respond = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      entry.status = status;
      sendJson(res, status, payload, headers);
    };

    if (path === '/services/oauth2/token' && req.method === 'POST') {
      const result = token(body);
      respond(result.status, result.body);
      return;
    }
    const api = API_PATH.exec(path);
    if (api === null) {
      respond(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
      return;
    }
    const version = api[1] as string;
    const rest = api[2] ?? '/';

    const bearer = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (bearer === undefined || !isTokenValid(bearer)) {
      counters.sessionErrors++;
      respond(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
      return;
    }
    if (apiLimit !== undefined && counters.apiRequests >= apiLimit) {
      counters.limitErrors++;
      respond(
        403,
        [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }],
        limitHeader(),
      );
      return;
    }
    counters.apiRequests++;
    const fault = faults.find(
      (f) => f.remaining > 0 && (f.match === undefined || f.match.test(`${entry.method} ${path}`)),
    );
    if (fault !== undefined) {
      fault.remaining--;
      counters.faultsServed++;
      const errorCode = fault.status === 503 ? 'SERVER_UNAVAILABLE' : 'UNKNOWN_EXCEPTION';
      respond(
        fault.status,
        [{ message: 'An unexpected error occurred (injected by the sandbox).', errorCode }],
        limitHeader(),
      );
      return;
    }
    const actor: Actor = {
      userId: apiUserId,
      changeOrigin: `com/salesforce/api/rest/${version};client=${client ?? ''}`,
    };
    try {
      const [status, payload] = route(
        entry.method,
        rest,
        parsed.searchParams,
        body,
        version,
        actor,
        req,
      );
      respond(status, payload, limitHeader());
    } catch (err) {
      if (err instanceof SfError) {
        respond(
          err.status,
          [{ message: err.message, errorCode: err.errorCode, fields: err.fields }],
          limitHeader(),
        );
      } else if (err instanceof SoqlError) {
        respond(400, [{ message: err.message, errorCode: err.errorCode }], limitHeader());
      } else {
        throw err;
      }
    }
  }

  function limitHeader(): Record<string, string> {
    return { 'sforce-limit-info': `api-usage=${counters.apiRequests}/${apiLimit ?? 15_000_000}` };
  }

  function token(body: string): { status: number; body: unknown } {
    const params = new URLSearchParams(body);
    const fail = (error: string, description: string) => ({
      status: 400,
      body: { error, error_description: description },
    });
    if (params.get('grant_type') !== 'refresh_token') {
      return fail('unsupported_grant_type', 'grant type not supported');
    }
    const oauth = options.oauth ?? {};
    if (oauth.clientId !== undefined && params.get('client_id') !== oauth.clientId) {
      return fail('invalid_client_id', 'client identifier invalid');
    }
    if (oauth.clientSecret !== undefined && params.get('client_secret') !== oauth.clientSecret) {
      return fail('invalid_client', 'invalid client credentials');
    }
    const refreshToken = params.get('refresh_token');
    if (
      !refreshToken ||
      (oauth.refreshToken !== undefined && refreshToken !== oauth.refreshToken)
    ) {
      return fail('invalid_grant', 'expired access/refresh token');
    }
    const accessToken = `${orgId.slice(0, 15)}!${randomBytes(24).toString('base64url')}`;
    issued.add(accessToken);
    return {
      status: 200,
      body: {
        access_token: accessToken,
        signature: randomBytes(32).toString('base64'),
        scope: 'refresh_token api',
        instance_url: url,
        id: `${url}/id/${orgId}/${apiUserId}`,
        token_type: 'Bearer',
        issued_at: String(Date.now()),
      },
    };
  }

  function route(
    method: string,
    rest: string,
    query: URLSearchParams,
    rawBody: string,
    version: string,
    actor: Actor,
    req: IncomingMessage,
  ): [number, unknown] {
    const body = (): unknown => {
      try {
        return rawBody === '' ? {} : (JSON.parse(rawBody) as unknown);
      } catch {
        throw new SfError(400, 'JSON_PARSER_ERROR', 'The request body is not valid JSON');
      }
    };
    const object = (): Record<string, unknown> => {
      const value = body();
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new SfError(400, 'JSON_PARSER_ERROR', 'Expected a JSON object');
      }
      return value as Record<string, unknown>;
    };
    const parts = rest
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    const [head, second, third] = parts;

    if (parts.length === 0 && method === 'GET') {
      return [
        200,
        {
          sobjects: `/services/data/v${version}/sobjects`,
          query: `/services/data/v${version}/query`,
          limits: `/services/data/v${version}/limits`,
        },
      ];
    }
    if (head === 'limits' && method === 'GET') {
      const max = apiLimit ?? 15_000_000;
      return [
        200,
        { DailyApiRequests: { Max: max, Remaining: Math.max(0, max - counters.apiRequests) } },
      ];
    }
    if ((head === 'query' || head === 'queryAll') && method === 'GET') {
      if (second !== undefined) return [200, queryMore(second, version)];
      const soql = query.get('q');
      if (soql === null) throw new SfError(400, 'MALFORMED_QUERY', 'missing q parameter');
      const batch = /batchSize=(\d+)/.exec(String(req.headers['sforce-query-options'] ?? ''))?.[1];
      return [
        200,
        runQuery(
          soql,
          head === 'queryAll',
          version,
          batch === undefined ? undefined : Number(batch),
        ),
      ];
    }
    if (head === 'sobjects' && second !== undefined) {
      if (third === 'describe' && method === 'GET') {
        const type = org.resolveType(second);
        return [200, { name: type, fields: org.fieldNames(type).map((name) => ({ name })) }];
      }
      if (third === undefined && method === 'POST') {
        const record = org.transaction(actor, (tx) => tx.create(second, object()));
        return [201, { id: record.Id, success: true, errors: [] }];
      }
      if (third !== undefined && parts.length === 3) {
        const type = org.resolveType(second);
        if (method === 'GET') {
          const fields = query
            .get('fields')
            ?.split(',')
            .map((f) => f.trim())
            .filter((f) => f !== '');
          return [200, restView(org.get(type, third), version, fields)];
        }
        if (method === 'PATCH') {
          org.transaction(actor, (tx) => tx.update(type, third, object()));
          return [204, undefined];
        }
        if (method === 'DELETE') {
          org.transaction(actor, (tx) => tx.delete(third, type));
          return [204, undefined];
        }
      }
    }
    if (head === 'composite' && second === 'sobjects') {
      if (third !== undefined && method === 'POST') {
        // retrieve many: POST composite/sobjects/<Type> {ids, fields}
        const { ids, fields } = object() as { ids?: unknown; fields?: unknown };
        if (!Array.isArray(ids) || !Array.isArray(fields)) {
          throw new SfError(400, 'INVALID_FIELD', 'ids and fields are required');
        }
        const type = org.resolveType(third);
        return [
          200,
          ids.map((id) => {
            const record = org.find(String(id));
            return record === undefined || record.deleted || record.type !== type
              ? null
              : restView(record, version, fields.map(String));
          }),
        ];
      }
      if (method === 'POST' || method === 'PATCH')
        return [200, collection(method, object(), actor)];
      if (method === 'DELETE') {
        const ids = (query.get('ids') ?? '').split(',').filter((id) => id !== '');
        return [200, collectionDelete(ids, query.get('allOrNone') === 'true', actor)];
      }
    }
    throw new SfError(404, 'NOT_FOUND', 'The requested resource does not exist');
  }

  function collection(method: string, payload: Record<string, unknown>, actor: Actor): unknown[] {
    const records = payload['records'];
    const allOrNone = payload['allOrNone'] === true;
    if (!Array.isArray(records)) throw new SfError(400, 'INVALID_FIELD', 'records is required');
    if (records.length > 200) {
      throw new SfError(400, 'EXCEEDED_ID_LIMIT', 'record limit exceeded: 200 records at most');
    }
    return org.transaction(actor, (tx) => {
      const results = records.map((raw: unknown) => {
        const savepoint = tx.savepoint();
        const record = (raw ?? {}) as Record<string, unknown>;
        const attributes = record['attributes'] as { type?: unknown } | undefined;
        const type = typeof attributes?.type === 'string' ? attributes.type : undefined;
        const id =
          typeof record['id'] === 'string'
            ? record['id']
            : typeof record['Id'] === 'string'
              ? record['Id']
              : undefined;
        try {
          if (type === undefined)
            throw new SfError(400, 'INVALID_TYPE', 'Must send a concrete entity type.');
          const { id: _id, Id: _Id, ...fields } = record;
          if (method === 'POST') {
            if (id !== undefined)
              throw new SfError(400, 'INVALID_FIELD', 'cannot specify Id in an insert call', [
                'Id',
              ]);
            return { id: tx.create(type, fields).Id, success: true, errors: [] };
          }
          if (id === undefined)
            throw new SfError(400, 'MISSING_ARGUMENT', 'Id not specified in an update call', [
              'Id',
            ]);
          tx.update(type, id, fields);
          return { id, success: true, errors: [] };
        } catch (err) {
          if (!(err instanceof SfError)) throw err;
          tx.rollbackTo(savepoint);
          return {
            ...(id !== undefined && { id }),
            success: false,
            errors: [{ statusCode: err.errorCode, message: err.message, fields: err.fields }],
          };
        }
      });
      if (allOrNone && results.some((r) => !r.success)) {
        tx.rollbackTo(0);
        return results.map((r) =>
          r.success
            ? {
                id: r.id,
                success: false,
                errors: [
                  {
                    statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK',
                    message:
                      'Record rolled back because not all records were valid and the request was using AllOrNone header',
                    fields: [],
                  },
                ],
              }
            : r,
        );
      }
      return results;
    });
  }

  function collectionDelete(ids: string[], allOrNone: boolean, actor: Actor): unknown[] {
    if (ids.length > 200)
      throw new SfError(400, 'EXCEEDED_ID_LIMIT', 'record limit exceeded: 200 records at most');
    return org.transaction(actor, (tx) => {
      const results = ids.map((id) => {
        const savepoint = tx.savepoint();
        try {
          tx.delete(id);
          return { id, success: true, errors: [] as unknown[] };
        } catch (err) {
          if (!(err instanceof SfError)) throw err;
          tx.rollbackTo(savepoint);
          return {
            id,
            success: false,
            errors: [{ statusCode: err.errorCode, message: err.message, fields: [] }],
          };
        }
      });
      if (allOrNone && results.some((r) => !r.success)) {
        tx.rollbackTo(0);
        return results.map((r) =>
          r.success
            ? {
                id: r.id,
                success: false,
                errors: [
                  {
                    statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK',
                    message: 'Record rolled back',
                    fields: [],
                  },
                ],
              }
            : r,
        );
      }
      return results;
    });
  }

  function runQuery(soql: string, all: boolean, version: string, batchSize?: number): unknown {
    const q = parseSoql(soql);
    const type = org.resolveType(q.object);
    let names: string[] = [];
    for (const item of q.select) {
      if (item.kind === 'field') names.push(item.name);
      else if (item.kind === 'fields') {
        const fieldNames = org.fieldNames(type);
        names.push(
          ...(item.which === 'CUSTOM'
            ? fieldNames.filter((n) => n.endsWith('__c'))
            : item.which === 'STANDARD'
              ? fieldNames.filter((n) => !n.endsWith('__c'))
              : fieldNames),
        );
      }
    }
    names = [...new Set(names)];
    const candidates = org
      .records(type, all)
      .map((record) => ({ record, flat: restView(record, version) }));
    const matching = candidates.filter(({ flat }) => matches(flat, q.where));
    const sorted = sortRecords(
      matching.map((c) => ({ ...c.flat, __record: c.record })),
      q.orderBy,
    );
    const sliced = sorted.slice(
      q.offset ?? 0,
      q.limit === undefined ? undefined : (q.offset ?? 0) + q.limit,
    );
    if (q.select.some((item) => item.kind === 'count')) {
      return { totalSize: sliced.length, done: true, records: [] };
    }
    const rows = sliced.map((row) => restView(row.__record, version, names));
    const batch = Math.max(1, batchSize ?? options.queryBatchSize ?? 2000);
    return page(rows, 0, batch, version, undefined);
  }

  function page(
    rows: Record<string, unknown>[],
    offset: number,
    batch: number,
    version: string,
    cursorId: string | undefined,
  ): unknown {
    const records = rows.slice(offset, offset + batch);
    const done = offset + batch >= rows.length;
    let id = cursorId;
    if (!done && id === undefined) {
      id = `01g${randomBytes(8).toString('hex').slice(0, 12)}`;
      cursors.set(id, { rows, batch });
    }
    return {
      totalSize: rows.length,
      done,
      ...(!done && { nextRecordsUrl: `/services/data/v${version}/query/${id}-${offset + batch}` }),
      records,
    };
  }

  function queryMore(locator: string, version: string): unknown {
    const match = /^(01g[0-9a-f]+)-(\d+)$/.exec(locator);
    const cursor = match === null ? undefined : cursors.get(match[1] as string);
    if (match === null || cursor === undefined) {
      throw new SfError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    }
    return page(cursor.rows, Number(match[2]), cursor.batch, version, match[1]);
  }

  // --- inspection API -------------------------------------------------------------------------
  const sandbox: SalesforceSandbox = {
    url,
    port,
    orgId,
    tenant: `salesforce:${orgId}`,
    apiUserId,
    records: (type, includeDeleted = false) => org.records(type, includeDeleted).map(view),
    record: (id) => {
      const record = org.find(id);
      return record === undefined ? undefined : view(record);
    },
    tasks: () => org.records('Task').map(view),
    requests: () => log,
    stats: () => ({ ...counters, cometdAuthFailures: bus.counters.authFailures }),
    setApiLimit(limit, used) {
      apiLimit = limit;
      if (used !== undefined) counters.apiRequests = used;
    },
    injectFaults(fault) {
      faults.push({
        status: fault.status ?? 503,
        remaining: fault.count ?? 1,
        ...(fault.match !== undefined && { match: new RegExp(fault.match) }),
      });
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    expireSessions() {
      for (const token of [...seen, ...issued]) expired.add(token);
      strict = true;
    },
    outboundDeliveries: () => org.outbound?.deliveries ?? [],
    outboundBacklog: () => org.outbound?.backlog() ?? 0,
    cdcEvents: () => bus.retained(),
    publishGap: (type, ids, changeType = 'GAP_UPDATE') => {
      if (!/^GAP_(CREATE|UPDATE|DELETE|UNDELETE|OVERFLOW)$/.test(changeType)) {
        throw new SfError(400, 'INVALID_TYPE', `not a gap change type: ${changeType}`);
      }
      return org.publishGap(type, ids, changeType, apiUserId);
    },
    changeAsUser(change) {
      const actor: Actor = { userId: change.userId, changeOrigin: change.changeOrigin ?? '' };
      const record = org.transaction(actor, (tx) => {
        switch (change.op) {
          case 'create':
            return tx.create(change.type, change.fields ?? {});
          case 'update':
            return tx.update(change.type, requireId(change.id), change.fields ?? {});
          case 'delete':
            return tx.delete(requireId(change.id), change.type);
          case 'undelete':
            return tx.undelete(requireId(change.id));
        }
      });
      return view(record);
    },
    async close() {
      await org.outbound?.close();
      bus.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Long polls and keep-alive sockets (faye's client retries on its own) would hold close().
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };

  function inspect(
    method: string,
    path: string,
    params: URLSearchParams,
    rawBody: string,
    res: ServerResponse,
  ): void {
    try {
      const body = rawBody === '' ? {} : (JSON.parse(rawBody) as Record<string, unknown>);
      const route = `${method} ${path}`;
      switch (route) {
        case 'GET /_sandbox/records':
          return sendJson(
            res,
            200,
            sandbox.records(params.get('type') ?? 'Contact', params.get('deleted') === 'true'),
          );
        case 'GET /_sandbox/tasks':
          return sendJson(res, 200, sandbox.tasks());
        case 'GET /_sandbox/requests':
          return sendJson(res, 200, sandbox.requests());
        case 'GET /_sandbox/stats':
          return sendJson(res, 200, sandbox.stats());
        case 'GET /_sandbox/outbound-messages':
          return sendJson(res, 200, {
            backlog: sandbox.outboundBacklog(),
            deliveries: sandbox.outboundDeliveries(),
          });
        case 'GET /_sandbox/cdc-events':
          return sendJson(res, 200, sandbox.cdcEvents());
        case 'POST /_sandbox/limit':
          sandbox.setApiLimit(
            typeof body['limit'] === 'number' ? body['limit'] : undefined,
            typeof body['used'] === 'number' ? body['used'] : undefined,
          );
          return sendJson(res, 200, sandbox.stats());
        case 'POST /_sandbox/faults':
          sandbox.injectFaults(body);
          if (typeof body['latencyMs'] === 'number') sandbox.setLatency(body['latencyMs']);
          return sendJson(res, 200, { ok: true });
        case 'POST /_sandbox/expire-sessions':
          sandbox.expireSessions();
          return sendJson(res, 200, { ok: true });
        case 'POST /_sandbox/gap':
          return sendJson(res, 200, {
            replayId: sandbox.publishGap(
              String(body['type']),
              (body['ids'] as string[] | undefined) ?? [],
              typeof body['changeType'] === 'string' ? body['changeType'] : undefined,
            ),
          });
        case 'POST /_sandbox/user-change':
          return sendJson(res, 200, sandbox.changeAsUser(body as unknown as UserChange));
        default:
          return sendJson(res, 404, {
            error: { code: 'NOT_FOUND', message: `no inspection route ${route}` },
          });
      }
    } catch (err) {
      const code = err instanceof SfError ? err.errorCode : 'BAD_REQUEST';
      sendJson(res, 400, {
        error: { code, message: err instanceof Error ? err.message : String(err) },
      });
    }
  }

  return sandbox;
}

function requireId(id: string | undefined): string {
  if (id === undefined) throw new SfError(400, 'MISSING_ARGUMENT', 'id is required');
  return id;
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  if (status === 204 || payload === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', ...headers }).end(text);
}

const MAX_BODY = 10 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY) throw new SfError(413, 'REQUEST_TOO_LARGE', 'request body too large');
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
