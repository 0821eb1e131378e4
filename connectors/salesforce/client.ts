/**
 * SalesforceClient: the CrmClient (connectors/types.ts) for one Salesforce org, on jsforce
 * 3.10.16. Reference: crm-protocols.md §6 (jsforce, REST paths, errors and limits).
 *
 * - Every call carries `Sforce-Call-Options: client=crm-ledger` (jsforce's `callOptions`), so our
 *   own writes come back in CDC with `changeOrigin …;client=crm-ledger` and are recognised as
 *   actor crm-ledger (no echo loop; see cdc-event.ts).
 * - Token refresh: with `refresh` set, jsforce itself answers a 401 by running the OAuth
 *   refresh_token grant and replaying the request once (http-api.js + session-refresh-delegate.js).
 * - We never retry: failures become CrmApiError and the flag/reconcile workers decide. jsforce's
 *   own retry of GET/DELETE on 5xx (0.5 s … 8 s, five times) is switched off on the calls we make
 *   directly (`sdkRetries`, default 0).
 *
 * Write-back of a verdict (`flag`): a status field on the record (one sObject Collections update
 * per object type, ≤ 200 records) plus one Task per verdict with a marker
 * `[crm-ledger <tenant> block #<seq>]` in its Description. Before writing, it reads the existing
 * marker Tasks and the records' current status, so a retry after a crash at any point writes
 * nothing twice: an existing Task is not created again, and a status already at this block (or a
 * later one) is not written again.
 */
import jsforce from 'jsforce';
import type { Connection } from 'jsforce';
import { InputError } from '../../src/errors.js';
import type { FieldValue, RecordRef } from '../../src/model/change-event.js';
import type { Logger } from '../../src/observability/logger.js';
import { CrmApiError } from '../types.js';
import type {
  CrmClient,
  FetchPage,
  FetchQuery,
  FetchedRecord,
  FlagOutcome,
  FlagRequest,
} from '../types.js';
import { CRM_LEDGER_CLIENT_ID } from './cdc-event.js';
import { normaliseSalesforceId } from './org-allow-list.js';

export interface SalesforceClientOptions {
  /** `salesforce:<18-character org id>` */
  tenant: string;
  /** e.g. `https://mydomain.my.salesforce.com` (or the sandbox's URL) */
  instanceUrl: string;
  accessToken?: string;
  /** OAuth refresh_token grant, run by jsforce on a 401 */
  refresh?: { clientId: string; clientSecret?: string; refreshToken: string; loginUrl: string };
  /** REST API version, e.g. '62.0' (jsforce's default 50.0 is too old) */
  version: string;
  /** the Sforce-Call-Options client id; default 'crm-ledger' (what echo detection looks for) */
  client?: string;
  /** the custom text field holding our verdict; default 'CRM_Ledger_Status__c' */
  statusField?: string;
  /**
   * How long to wait after REQUEST_LIMIT_EXCEEDED. The limit is a rolling 24 h allocation, so
   * hammering it helps nobody (crm-protocols.md §6.3). Default 15 minutes.
   */
  rateLimitRetryAfterMs?: number;
  /** fields to read per object (lower-case name) in fetchRecords; default FIELDS(ALL) */
  fetchFields?: Readonly<Record<string, readonly string[]>>;
  /** jsforce's own retries on GET 5xx for our direct calls; default 0 (the workers retry) */
  sdkRetries?: number;
  logger?: Logger;
}

export const DEFAULT_STATUS_FIELD = 'CRM_Ledger_Status__c';
export const DEFAULT_RATE_LIMIT_RETRY_AFTER_MS = 15 * 60_000;
/** sObject Collections take at most 200 records per call. */
const MAX_COLLECTION = 200;
/** The contract caps a flag call at 100 requests. */
const MAX_FLAGS = 100;
/** FIELDS(ALL) requires LIMIT ≤ 200. */
const MAX_PAGE = 200;

/** Our lower-case object names → sObject API names (custom objects are case-insensitive). */
const STANDARD_OBJECTS: Readonly<Record<string, string>> = {
  account: 'Account',
  contact: 'Contact',
  lead: 'Lead',
  opportunity: 'Opportunity',
  case: 'Case',
  task: 'Task',
  user: 'User',
};
/** Task.WhoId takes people; everything else goes to WhatId (crm-protocols.md §6.2). */
const WHO_OBJECTS = new Set(['contact', 'lead']);
const SALESFORCE_ID = /^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/;
const OBJECT_NAME = /^[a-z][a-z0-9_]{0,79}$/;
/** REST date-times (`2026-03-02T12:00:00.000+0000`) → ISO 8601 with Z, as Outbound Messages write them. */
const REST_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?[+-]\d{4}$/;
/** Fields Salesforce maintains: never part of a revert. */
const READ_ONLY_FIELDS = new Set([
  'Id',
  'IsDeleted',
  'CreatedDate',
  'CreatedById',
  'LastModifiedDate',
  'LastModifiedById',
  'SystemModstamp',
  'LastActivityDate',
  'LastViewedDate',
  'LastReferencedDate',
]);

interface SaveResult {
  id?: string;
  success: boolean;
  errors: { statusCode?: string; errorCode?: string; message?: string }[];
}

interface QueryResult<T> {
  totalSize: number;
  done: boolean;
  nextRecordsUrl?: string;
  records: T[];
}

export class SalesforceClient implements CrmClient {
  readonly source = 'salesforce' as const;
  readonly tenant: string;
  readonly ownFields: readonly string[];
  /** The jsforce connection (shared with the CDC subscriber so both see refreshed tokens). */
  readonly connection: Connection;
  private readonly statusField: string;
  private readonly retryAfterMs: number;
  private readonly sdkRetries: number;

  constructor(private readonly options: SalesforceClientOptions) {
    if (!/^salesforce:[A-Za-z0-9]{15,18}$/.test(options.tenant)) {
      throw new InputError('CHANGE_INVALID', 'tenant must be "salesforce:<org id>"', 'tenant');
    }
    if (options.accessToken === undefined && options.refresh === undefined) {
      throw new InputError('CHANGE_INVALID', 'an accessToken or a refresh flow is required');
    }
    this.tenant = options.tenant;
    this.statusField = options.statusField ?? DEFAULT_STATUS_FIELD;
    this.ownFields = [this.statusField];
    this.retryAfterMs = options.rateLimitRetryAfterMs ?? DEFAULT_RATE_LIMIT_RETRY_AFTER_MS;
    this.sdkRetries = options.sdkRetries ?? 0;
    const refresh = options.refresh;
    this.connection = new jsforce.Connection({
      instanceUrl: options.instanceUrl,
      version: options.version,
      callOptions: { client: options.client ?? CRM_LEDGER_CLIENT_ID },
      ...(options.accessToken !== undefined && { accessToken: options.accessToken }),
      ...(refresh !== undefined && {
        loginUrl: refresh.loginUrl,
        refreshToken: refresh.refreshToken,
        oauth2: {
          clientId: refresh.clientId,
          loginUrl: refresh.loginUrl,
          ...(refresh.clientSecret !== undefined && { clientSecret: refresh.clientSecret }),
        },
      }),
    });
  }

  // --- flag ------------------------------------------------------------------------------------

  async flag(requests: readonly FlagRequest[]): Promise<FlagOutcome[]> {
    if (requests.length > MAX_FLAGS) {
      throw new InputError('BATCH_TOO_LARGE', `at most ${MAX_FLAGS} flags per call`);
    }
    for (const [index, request] of requests.entries()) {
      if (request.tenant !== this.tenant) {
        throw new InputError(
          'TENANT_MISMATCH',
          `flag for ${request.tenant} sent to ${this.tenant}`,
          `[${index}].tenant`,
        );
      }
      this.checkRef(request.ref, `[${index}].ref`);
      if (!Number.isSafeInteger(request.seq) || request.seq < 0) {
        throw new InputError(
          'CHANGE_INVALID',
          'seq must be a non-negative integer',
          `[${index}].seq`,
        );
      }
    }
    if (requests.length === 0) return [];

    // 1. What is already there: marker Tasks, and each record's current status.
    const ids = [...new Set(requests.map((r) => r.ref.id))];
    const tasks = await this.queryAll<{ Id: string; Description?: string | null }>(
      `SELECT Id, Description FROM Task WHERE Subject LIKE 'crm-ledger:%' AND (WhoId IN (${quoteList(ids)}) OR WhatId IN (${quoteList(ids)}))`,
      false,
    );
    const taskBySeq = new Map<number, string>();
    for (const task of tasks) {
      for (const seq of markersIn(task.Description ?? '', this.tenant)) taskBySeq.set(seq, task.Id);
    }
    const status = new Map<string, string | null>();
    for (const [object, group] of groupBy(requests, (r) => r.ref.object)) {
      const groupIds = [...new Set(group.map((r) => r.ref.id))];
      const rows = await this.queryAll<Record<string, unknown>>(
        `SELECT Id, ${this.statusField} FROM ${this.apiName(object)} WHERE Id IN (${quoteList(groupIds)})`,
        false,
      );
      for (const row of rows) {
        const value = row[this.statusField];
        status.set(String(row['Id']), typeof value === 'string' ? value : null);
      }
    }

    // 2. Decide per request, then write: status fields first, then the Tasks.
    const outcomes = new Map<number, FlagOutcome>();
    const updates: FlagRequest[] = [];
    const creates: FlagRequest[] = [];
    for (const request of requests) {
      const current = status.get(toId18(request.ref.id));
      if (!status.has(toId18(request.ref.id)) || current === undefined) {
        outcomes.set(request.seq, { seq: request.seq, status: 'record-missing' });
        continue;
      }
      const shownSeq = seqInStatus(current);
      if (shownSeq === undefined || shownSeq < request.seq) updates.push(request);
      if (!taskBySeq.has(request.seq)) creates.push(request);
    }
    // Several verdict blocks for one record in one call: the newest seq wins the status field.
    const newest = new Map<string, FlagRequest>();
    for (const request of updates) {
      const seen = newest.get(request.ref.id);
      if (seen === undefined || seen.seq < request.seq) newest.set(request.ref.id, request);
    }
    const failures: string[] = [];
    for (const [object, group] of groupBy([...newest.values()], (r) => r.ref.object)) {
      for (const chunk of chunks(group, MAX_COLLECTION)) {
        const results = (await this.call(() =>
          this.connection.sobject(this.apiName(object)).update(
            chunk.map((r) => ({ Id: r.ref.id, [this.statusField]: statusText(r) })),
            { allOrNone: false },
          ),
        )) as unknown as SaveResult[];
        results.forEach((result, i) => {
          const request = chunk[i];
          if (request === undefined || result.success) return;
          if (isMissing(result)) {
            for (const r of requests) {
              if (r.ref.id === request.ref.id)
                outcomes.set(r.seq, { seq: r.seq, status: 'record-missing' });
            }
          } else {
            failures.push(`${request.ref.object}/${request.ref.id}: ${describeErrors(result)}`);
          }
        });
      }
    }
    const toCreate = creates.filter((r) => !outcomes.has(r.seq));
    for (const chunk of chunks(toCreate, MAX_COLLECTION)) {
      const results = (await this.call(() =>
        this.connection.sobject('Task').create(
          chunk.map((r) => this.taskFor(r)),
          { allOrNone: false },
        ),
      )) as unknown as SaveResult[];
      results.forEach((result, i) => {
        const request = chunk[i];
        if (request === undefined) return;
        if (result.success && result.id !== undefined) {
          outcomes.set(request.seq, { seq: request.seq, status: 'flagged', noteId: result.id });
        } else if (isMissing(result)) {
          outcomes.set(request.seq, { seq: request.seq, status: 'record-missing' });
        } else {
          failures.push(
            `Task for ${request.ref.object}/${request.ref.id}: ${describeErrors(result)}`,
          );
        }
      });
    }
    if (failures.length > 0) {
      // Partial writes are safe to retry: the markers make the retry skip what was done.
      throw new CrmApiError(
        'permanent',
        `Salesforce refused part of the write-back: ${failures.join('; ')}`,
        400,
      );
    }
    return requests.map((request) => {
      const outcome = outcomes.get(request.seq);
      if (outcome !== undefined) return outcome;
      const noteId = taskBySeq.get(request.seq);
      // Nothing was missing: either we just wrote the status (task existed) or both existed.
      return noteId !== undefined
        ? { seq: request.seq, status: 'already-flagged', noteId }
        : { seq: request.seq, status: 'flagged' };
    });
  }

  // --- revert ----------------------------------------------------------------------------------

  async revert(
    ref: RecordRef,
    fields: Readonly<Record<string, FieldValue>>,
    reason: string,
  ): Promise<void> {
    this.checkRef(ref, 'ref');
    // Read-only audit fields (they come along in the ledger's state) are not restorable.
    const writable = Object.fromEntries(
      Object.entries(fields).filter(([name]) => !READ_ONLY_FIELDS.has(name)),
    );
    if (Object.keys(writable).length === 0) return;
    this.options.logger?.info(
      {
        tenant: this.tenant,
        object: ref.object,
        id: ref.id,
        fields: Object.keys(writable),
        reason,
      },
      'reverting record fields',
    );
    await this.call(() =>
      this.connection.sobject(this.apiName(ref.object)).update({ Id: ref.id, ...writable }),
    ).then((result) => {
      const save = result as unknown as SaveResult;
      if (!save.success) {
        throw new CrmApiError('permanent', `revert refused: ${describeErrors(save)}`, 400);
      }
    });
  }

  // --- fetch -----------------------------------------------------------------------------------

  async fetchRecords(query: FetchQuery): Promise<FetchPage> {
    if (!OBJECT_NAME.test(query.object)) {
      throw new InputError('CHANGE_INVALID', 'object must be a lower-case sObject name', 'object');
    }
    const apiName = this.apiName(query.object);
    const select = this.selectList(query.object);
    if ('ids' in query) {
      query.ids.forEach((id, i) => {
        if (!SALESFORCE_ID.test(id)) {
          throw new InputError('CHANGE_INVALID', 'not a Salesforce record id', `ids[${i}]`);
        }
      });
      const records: FetchedRecord[] = [];
      for (const chunk of chunks([...new Set(query.ids)], MAX_PAGE)) {
        const rows = await this.queryAll<Record<string, unknown>>(
          `SELECT ${select} FROM ${apiName} WHERE Id IN (${quoteList(chunk)}) LIMIT ${MAX_PAGE}`,
          true,
        );
        records.push(...rows.map((row) => toFetched(query.object, row)));
      }
      return { records };
    }

    const limit = Math.min(Math.max(1, query.limit ?? MAX_PAGE), MAX_PAGE);
    const since = parseInstant(query.since, 'since');
    const until = query.until === undefined ? undefined : parseInstant(query.until, 'until');
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    // Salesforce date-times have whole seconds: round the window outwards, never inwards, so
    // nothing is skipped (a record on the edge may come twice; fetches are idempotent).
    const conditions = [`SystemModstamp >= ${soqlDateTime(Math.floor(since / 1000) * 1000)}`];
    if (until !== undefined) {
      conditions.push(`SystemModstamp < ${soqlDateTime(Math.ceil(until / 1000) * 1000)}`);
    }
    if (cursor !== undefined) {
      const at = soqlDateTime(cursor.t);
      conditions.push(
        `(SystemModstamp > ${at} OR (SystemModstamp = ${at} AND Id > '${cursor.id}'))`,
      );
    }
    const rows = await this.queryAll<Record<string, unknown>>(
      `SELECT ${select} FROM ${apiName} WHERE ${conditions.join(' AND ')} ORDER BY SystemModstamp ASC, Id ASC LIMIT ${limit}`,
      true,
    );
    const records = rows.map((row) => toFetched(query.object, row));
    const last = rows.at(-1);
    if (rows.length < limit || last === undefined) return { records };
    const lastStamp = Date.parse(
      String(last['SystemModstamp']).replace(/([+-]\d{2})(\d{2})$/, '$1:$2'),
    );
    return { records, cursor: encodeCursor({ t: lastStamp, id: String(last['Id']) }) };
  }

  // --- internals -------------------------------------------------------------------------------

  private selectList(object: string): string {
    const fields = this.options.fetchFields?.[object];
    if (fields === undefined) return 'FIELDS(ALL)';
    const names = new Set(['Id', 'IsDeleted', 'LastModifiedDate', 'SystemModstamp', ...fields]);
    for (const name of names) {
      if (!/^[A-Za-z][A-Za-z0-9_]{0,79}$/.test(name)) {
        throw new InputError(
          'CHANGE_INVALID',
          `not a field name: ${JSON.stringify(name)}`,
          'fetchFields',
        );
      }
    }
    return [...names].join(', ');
  }

  private apiName(object: string): string {
    if (!OBJECT_NAME.test(object)) {
      throw new InputError('CHANGE_INVALID', 'object must be a lower-case sObject name', 'object');
    }
    return STANDARD_OBJECTS[object] ?? object;
  }

  private checkRef(ref: RecordRef, path: string): void {
    this.apiName(ref.object);
    if (!SALESFORCE_ID.test(ref.id)) {
      throw new InputError('CHANGE_INVALID', 'not a Salesforce record id', `${path}.id`);
    }
  }

  private taskFor(request: FlagRequest): Record<string, unknown> {
    const types = [...new Set(request.verdicts.map(verdictLabel))];
    const lines = [
      `crm-ledger flagged this ${request.ref.object} in ledger block #${request.seq} (hash ${request.blockHash}).`,
      '',
      ...request.verdicts.map(
        (v) =>
          `- ${v.type}${v.code === undefined ? '' : ` (${v.code})`}${v.reason === undefined ? '' : `: ${v.reason}`}`,
      ),
      '',
      ...(request.adminUrl === undefined
        ? []
        : [`Record history and proofs: ${request.adminUrl}`, '']),
      marker(this.tenant, request.seq),
    ];
    return {
      Subject: `crm-ledger: ${types.join(', ') || 'flag'}`.slice(0, 255),
      Description: lines.join('\n').slice(0, 32_000),
      Status: 'Not Started',
      Priority: types.includes('unauthorised') ? 'High' : 'Normal',
      [WHO_OBJECTS.has(request.ref.object) ? 'WhoId' : 'WhatId']: request.ref.id,
    };
  }

  /** Runs a SOQL query to the end (query + queryMore), without jsforce's own retries. */
  private async queryAll<T>(soql: string, includeDeleted: boolean): Promise<T[]> {
    const records: T[] = [];
    let url: string | undefined =
      `/${includeDeleted ? 'queryAll' : 'query'}?q=${encodeURIComponent(soql)}`;
    while (url !== undefined) {
      const next: string = url;
      const page = await this.call(() =>
        this.connection.request<QueryResult<T>>(
          { method: 'GET', url: next },
          { retry: { maxRetries: this.sdkRetries } },
        ),
      );
      records.push(...page.records);
      url = page.done ? undefined : page.nextRecordsUrl;
    }
    return records;
  }

  /** Maps every jsforce/network failure to a CrmApiError. */
  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.classify(err);
    }
  }

  private classify(err: unknown): CrmApiError {
    if (err instanceof CrmApiError) return err;
    const error = err as { name?: unknown; errorCode?: unknown; message?: unknown; code?: unknown };
    const errorCode =
      typeof error.errorCode === 'string'
        ? error.errorCode
        : typeof error.name === 'string'
          ? error.name
          : '';
    const message = typeof error.message === 'string' ? error.message : String(err);
    const http = /^ERROR_HTTP_(\d{3})$/.exec(errorCode)?.[1];
    const status = http === undefined ? undefined : Number(http);
    const options = { cause: err };
    if (errorCode === 'REQUEST_LIMIT_EXCEEDED') {
      return new CrmApiError(
        'rate-limited',
        `Salesforce API limit exceeded: ${message}`,
        403,
        this.retryAfterMs,
        options,
      );
    }
    if (errorCode === 'INVALID_SESSION_ID' || message.startsWith('Unable to refresh session')) {
      return new CrmApiError(
        'auth',
        `Salesforce session invalid: ${message}`,
        401,
        undefined,
        options,
      );
    }
    if (
      errorCode === 'SERVER_UNAVAILABLE' ||
      errorCode === 'UNKNOWN_EXCEPTION' ||
      errorCode === 'FetchError' ||
      errorCode === 'AbortError' ||
      errorCode === 'TimeoutError' ||
      (typeof error.code === 'string' && /^(E[A-Z]+|UND_ERR)/.test(error.code)) ||
      (status !== undefined && status >= 500)
    ) {
      return new CrmApiError(
        'transient',
        `Salesforce unavailable: ${message}`,
        status ?? 503,
        undefined,
        options,
      );
    }
    return new CrmApiError(
      'permanent',
      `Salesforce refused the call (${errorCode || 'error'}): ${message}`,
      status ?? 400,
      undefined,
      options,
    );
  }
}

function marker(tenant: string, seq: number): string {
  return `[crm-ledger ${tenant} block #${seq}]`;
}

function markersIn(description: string, tenant: string): number[] {
  const found: number[] = [];
  const prefix = `[crm-ledger ${tenant} block #`;
  let at = description.indexOf(prefix);
  while (at >= 0) {
    const m = /^(\d{1,15})\]/.exec(description.slice(at + prefix.length));
    if (m?.[1] !== undefined) found.push(Number(m[1]));
    at = description.indexOf(prefix, at + prefix.length);
  }
  return found;
}

/** `duplicate, unauthorised (block #42)`: what a person sees in the record's field. */
function statusText(request: FlagRequest): string {
  const types = [...new Set(request.verdicts.map(verdictLabel))].join(', ') || 'flag';
  return `${types} (block #${request.seq})`.slice(-255);
}

/** A verdict's word in the status: its type, or `erased` for a subject erasure's block. */
function verdictLabel(v: FlagRequest['verdicts'][number]): string {
  return v.code === 'SUBJECT_ERASED' ? 'erased' : v.type;
}

function seqInStatus(status: string | null): number | undefined {
  const m = /\(block #(\d{1,15})\)$/.exec(status ?? '');
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function isMissing(result: SaveResult): boolean {
  return result.errors.some((e) =>
    [
      'ENTITY_IS_DELETED',
      'NOT_FOUND',
      'INVALID_CROSS_REFERENCE_KEY',
      'INVALID_ID_FIELD',
      'MALFORMED_ID',
    ].includes(e.statusCode ?? e.errorCode ?? ''),
  );
}

function describeErrors(result: SaveResult): string {
  return result.errors
    .map((e) => `${e.statusCode ?? e.errorCode ?? 'ERROR'}: ${e.message ?? ''}`)
    .join(', ');
}

function toFetched(object: string, row: Record<string, unknown>): FetchedRecord {
  const fields: Record<string, FieldValue> = {};
  for (const [name, value] of Object.entries(row)) {
    if (name === 'attributes' || name === 'IsDeleted') continue;
    if (value === null || typeof value === 'boolean') fields[name] = value;
    else if (typeof value === 'number') fields[name] = Number.isFinite(value) ? value : null;
    else if (typeof value === 'string')
      fields[name] = REST_DATE_TIME.test(value) ? restToIso(value) : value;
    // Compound fields (MailingAddress: {...}) repeat their component fields: skip the object.
  }
  const modified = row['LastModifiedDate'] ?? row['SystemModstamp'];
  return {
    ref: { object, id: String(row['Id']) },
    fields,
    modifiedAt: typeof modified === 'string' ? restToIso(modified) : new Date(0).toISOString(),
    ...(row['IsDeleted'] === true && { deleted: true }),
  };
}

function restToIso(value: string): string {
  const ms = Date.parse(value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isFinite(ms) ? new Date(ms).toISOString() : value;
}

/** SOQL date-time literal, whole seconds: `2026-03-02T12:00:00Z`. */
function soqlDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function parseInstant(value: string, path: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || !Number.isFinite(ms)) {
    throw new InputError('CHANGE_INVALID', 'expected an ISO 8601 date-time', path);
  }
  return ms;
}

function encodeCursor(cursor: { t: number; id: string }): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(text: string): { t: number; id: string } {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as {
      t?: unknown;
      id?: unknown;
    };
    if (
      typeof value.t === 'number' &&
      Number.isSafeInteger(value.t) &&
      typeof value.id === 'string' &&
      SALESFORCE_ID.test(value.id)
    ) {
      return { t: value.t, id: value.id };
    }
  } catch {
    // fall through
  }
  throw new InputError('CHANGE_INVALID', 'cursor is not one this client issued', 'cursor');
}

function quoteList(ids: readonly string[]): string {
  // Callers pass validated ids ([A-Za-z0-9] only): nothing to escape.
  return ids.map((id) => `'${id}'`).join(', ');
}

/** 15-character ids as their 18-character form, which is what queries return. */
function toId18(id: string): string {
  return normaliseSalesforceId(id) ?? id;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [item]);
    else group.push(item);
  }
  return groups;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
