/**
 * HubspotClient: crm-ledger talking back to HubSpot (issue 5) through `@hubspot/api-client` 13.5.0.
 *
 * - `flag` writes a verdict where people work: the property `crm_ledger_status` (batch update) plus
 *   one note per block, associated with the record, carrying the marker
 *   `[crm-ledger <tenant> block #<seq>]`. Idempotent by seq: notes already carrying the marker are
 *   found first (through the record's note associations, which are read-your-writes consistent,
 *   unlike search) and nothing is written twice.
 * - `revert` PATCHes fields back; `fetchRecords` reads by ids (batch read) or by "modified since"
 *   (search), slicing the time range to stay under search's 10,000-result cap.
 * - The SDK's own retry is off (`numberOfApiCallRetries: 0`): it ignores Retry-After
 *   (crm-protocols.md §0.7). Every failure becomes a CrmApiError whose kind tells the flag worker
 *   what to do; the only retry made here is one token refresh on a 401.
 *
 * Tokens are never logged: the SDK's errors carry request headers nowhere we log, and we log only
 * statuses, categories and counts.
 */
import { Client } from '@hubspot/api-client';
import type { AssociationSpecAssociationCategoryEnum } from '@hubspot/api-client/lib/codegen/crm/objects/notes/index.js';
import type {
  FilterOperatorEnum,
  PublicObjectSearchRequest,
  SimplePublicObject,
} from '@hubspot/api-client/lib/codegen/crm/objects/index.js';
import type {
  PropertyCreateFieldTypeEnum,
  PropertyCreateTypeEnum,
} from '@hubspot/api-client/lib/codegen/crm/properties/index.js';
import { CrmApiError } from '../types.js';
import type {
  CrmClient,
  FetchPage,
  FetchQuery,
  FetchedRecord,
  FlagOutcome,
  FlagRequest,
} from '../types.js';
import type { FieldValue, RecordRef } from '../../src/model/change-event.js';
import type { Verdict } from '../../src/model/verdict.js';
import type { Logger } from '../../src/observability/logger.js';

export const HUBSPOT_DEFAULT_API_URL = 'https://api.hubapi.com';
/** The property and group crm-ledger creates on each object type it flags. */
export const FLAG_PROPERTY = 'crm_ledger_status';
export const FLAG_PROPERTY_GROUP = 'crm_ledger';
/** "Batch operations are limited to 100 records at a time" (crm-protocols.md §3.1). */
export const HUBSPOT_BATCH_LIMIT = 100;
/** Search pages hold at most 200 and a query reaches at most 10,000 results (§3.2). */
export const HUBSPOT_SEARCH_PAGE_MAX = 200;
export const HUBSPOT_SEARCH_RESULT_CAP = 10_000;
/** The burst window: the wait to assume when a 429 carries no Retry-After (§3.2). */
export const HUBSPOT_RATE_WINDOW_MS = 10_000;
/** "Locks will last for 2 seconds" (423, §3.2). */
const LOCKED_RETRY_MS = 2_000;
const DEFAULT_TIMEOUT_MS = 30_000;
/** hs_note_body holds at most 65,536 characters (§3.1). */
const NOTE_BODY_MAX = 65_536;

type FlaggableObject = 'contact' | 'company' | 'deal';
type HubspotObjectType = 'contacts' | 'companies' | 'deals';

const OBJECT_TYPES: Readonly<Record<FlaggableObject, HubspotObjectType>> = {
  contact: 'contacts',
  company: 'companies',
  deal: 'deals',
};

/** HUBSPOT_DEFINED note → record association type ids (§3.1). */
const NOTE_ASSOCIATION_TYPE_IDS: Readonly<Record<HubspotObjectType, number>> = {
  contacts: 202,
  companies: 190,
  deals: 214,
};

/** The last-modified property search can filter and sort on, per type. */
const MODIFIED_PROPERTY: Readonly<Record<HubspotObjectType, string>> = {
  contacts: 'lastmodifieddate',
  companies: 'hs_lastmodifieddate',
  deals: 'hs_lastmodifieddate',
};

/** What fetchRecords returns by default: the fields reconciliation and dedupe look at. */
export const DEFAULT_FETCH_PROPERTIES: Readonly<Record<FlaggableObject, readonly string[]>> = {
  contact: [
    'email',
    'firstname',
    'lastname',
    'phone',
    'mobilephone',
    'company',
    'jobtitle',
    'lifecyclestage',
    'hubspot_owner_id',
    FLAG_PROPERTY,
  ],
  company: [
    'name',
    'domain',
    'phone',
    'website',
    'city',
    'country',
    'hubspot_owner_id',
    FLAG_PROPERTY,
  ],
  deal: [
    'dealname',
    'amount',
    'dealstage',
    'pipeline',
    'closedate',
    'hubspot_owner_id',
    FLAG_PROPERTY,
  ],
};

export interface HubspotClientOptions {
  /** `hubspot:<portalId>` */
  tenant: string;
  portalId: string | number;
  /** our app's id: HubSpot attributes our writes to it (`INTEGRATION` / `<appId>`) */
  appId: string | number;
  /** the API base; the sandbox's URL in tests; default https://api.hubapi.com */
  apiUrl?: string | undefined;
  /** a private-app or OAuth access token; may be omitted when `refresh` is given */
  accessToken?: string | undefined;
  /** OAuth refresh: used when a call answers 401 (once per call), or when no access token is set */
  refresh?: { clientId: string; clientSecret: string; refreshToken: string } | undefined;
  /** base of the admin UI/API, for links in notes when a FlagRequest carries no adminUrl */
  adminBaseUrl?: string | undefined;
  /** properties fetchRecords returns per object (default DEFAULT_FETCH_PROPERTIES) */
  fetchProperties?: Partial<Record<FlaggableObject, readonly string[]>> | undefined;
  /** per-call timeout; a timed-out call is `transient` (default 30 s) */
  timeoutMs?: number | undefined;
  /** search's result cap (HubSpot: 10,000); lower only to test time slicing */
  searchResultCap?: number | undefined;
  logger?: Logger | undefined;
  now?: (() => number) | undefined;
}

/** The SDK parts we use, taken from one Client right after it is built (see buildSdk). */
interface Sdk {
  objects: Client['crm']['objects'];
  notes: Client['crm']['objects']['notes'];
  associations: Client['crm']['associations']['v4'];
  properties: Client['crm']['properties'];
  oauth: Client['oauth'];
}

export class HubspotClient implements CrmClient {
  readonly source = 'hubspot' as const;
  readonly tenant: string;
  readonly ownFields: readonly string[] = [FLAG_PROPERTY];

  private readonly options: HubspotClientOptions;
  private readonly apiUrl: string;
  private accessToken: string | undefined;
  private sdk: Sdk;
  private refreshing: Promise<void> | undefined;
  /** object types whose flag property is known to exist (once per process) */
  private readonly schemaReady = new Map<HubspotObjectType, Promise<void>>();
  private readonly now: () => number;

  constructor(options: HubspotClientOptions) {
    if (options.accessToken === undefined && options.refresh === undefined) {
      throw new TypeError('HubspotClient needs an accessToken or refresh credentials');
    }
    this.options = options;
    this.tenant = options.tenant;
    this.apiUrl = (options.apiUrl ?? HUBSPOT_DEFAULT_API_URL).replace(/\/+$/, '');
    this.accessToken = options.accessToken;
    this.now = options.now ?? Date.now;
    this.sdk = this.buildSdk(options.accessToken);
  }

  // ----------------------------------------------------------------------------- flag

  async flag(requests: readonly FlagRequest[]): Promise<FlagOutcome[]> {
    if (requests.length > HUBSPOT_BATCH_LIMIT) {
      throw new CrmApiError(
        'permanent',
        `flag takes at most ${HUBSPOT_BATCH_LIMIT} requests per call, got ${requests.length}`,
      );
    }
    for (const request of requests) {
      if (request.tenant !== this.tenant) {
        throw new CrmApiError(
          'permanent',
          `flag request for tenant ${request.tenant} sent to the client of ${this.tenant}`,
        );
      }
      objectTypeFor(request.ref.object);
    }
    const outcomes = new Map<FlagRequest, FlagOutcome>();
    const byType = new Map<HubspotObjectType, FlagRequest[]>();
    for (const request of requests) {
      const type = objectTypeFor(request.ref.object);
      byType.set(type, [...(byType.get(type) ?? []), request]);
    }
    for (const [type, group] of byType) {
      for (const [request, outcome] of await this.flagType(type, group))
        outcomes.set(request, outcome);
    }
    return requests.map((request) => outcomes.get(request) as FlagOutcome);
  }

  private async flagType(
    type: HubspotObjectType,
    requests: readonly FlagRequest[],
  ): Promise<Map<FlagRequest, FlagOutcome>> {
    const out = new Map<FlagRequest, FlagOutcome>();
    await this.ensureSchema(type);

    // 1. Which records still exist (a missing one is not an error: nothing to flag).
    const ids = unique(requests.map((r) => r.ref.id));
    const existing = await this.readExisting(type, ids);
    const present = requests.filter((r) => {
      if (existing.has(r.ref.id)) return true;
      out.set(r, { seq: r.seq, status: 'record-missing' });
      return false;
    });
    if (present.length === 0) return out;

    // 2. Which blocks are already flagged: their marker is on a note of the record.
    const markers = await this.notesWithMarkers(type, unique(present.map((r) => r.ref.id)));
    const pending: FlagRequest[] = [];
    const pendingMarkers = new Set<string>();
    for (const r of present) {
      const marker = flagMarker(this.tenant, r.seq);
      const noteId = markers.get(`${r.ref.id}\u0000${marker}`);
      if (noteId !== undefined) {
        out.set(r, { seq: r.seq, status: 'already-flagged', noteId });
      } else if (pendingMarkers.has(`${r.ref.id}\u0000${marker}`)) {
        // The same block twice in one call: written once, reported for both below.
        pending.push(r);
      } else {
        pendingMarkers.add(`${r.ref.id}\u0000${marker}`);
        pending.push(r);
      }
    }
    if (pending.length === 0) return out;

    // 3. The status property first, then the notes: a note's marker proves its property was set.
    const latest = new Map<string, FlagRequest>();
    for (const r of pending) {
      const current = latest.get(r.ref.id);
      if (current === undefined || r.seq > current.seq) latest.set(r.ref.id, r);
    }
    const updated = await this.updateStatuses(type, [...latest.values()]);
    const writable = pending.filter((r) => {
      if (updated.has(r.ref.id)) return true;
      out.set(r, { seq: r.seq, status: 'record-missing' });
      return false;
    });
    if (writable.length === 0) return out;

    // 4. One note per block, associated with its record.
    const toCreate = new Map<string, FlagRequest>();
    for (const r of writable) toCreate.set(`${r.ref.id}\u0000${flagMarker(this.tenant, r.seq)}`, r);
    const created = await this.call('create flag notes', (sdk) =>
      sdk.notes.batchApi.create({
        inputs: [...toCreate.values()].map((r) => ({
          properties: {
            hs_timestamp: new Date(this.now()).toISOString(),
            hs_note_body: this.noteBody(r),
          },
          associations: [
            {
              to: { id: r.ref.id },
              types: [
                {
                  associationCategory: 'HUBSPOT_DEFINED' as AssociationSpecAssociationCategoryEnum,
                  associationTypeId: NOTE_ASSOCIATION_TYPE_IDS[type],
                },
              ],
            },
          ],
        })),
      }),
    );
    // Batch results are not guaranteed in input order: match them by marker.
    const noteIds = new Map<string, string>();
    for (const note of created.results) {
      const marker = markerIn(note.properties['hs_note_body'] ?? '', this.tenant);
      if (marker === undefined) continue;
      for (const r of writable) {
        if (flagMarker(this.tenant, r.seq) === marker)
          noteIds.set(`${r.ref.id}\u0000${marker}`, note.id);
      }
    }
    for (const r of writable) {
      const noteId = noteIds.get(`${r.ref.id}\u0000${flagMarker(this.tenant, r.seq)}`);
      out.set(
        r,
        noteId === undefined
          ? { seq: r.seq, status: 'flagged' }
          : { seq: r.seq, status: 'flagged', noteId },
      );
    }
    return out;
  }

  /** Creates the property group and the flag property on `type`, once per process; 409 is fine. */
  private ensureSchema(type: HubspotObjectType): Promise<void> {
    let ready = this.schemaReady.get(type);
    if (ready === undefined) {
      ready = (async () => {
        await this.allowConflict(() =>
          this.call('create property group', (sdk) =>
            sdk.properties.groupsApi.create(type, {
              name: FLAG_PROPERTY_GROUP,
              label: 'crm-ledger',
              displayOrder: -1,
            }),
          ),
        );
        await this.allowConflict(() =>
          this.call('create flag property', (sdk) =>
            sdk.properties.coreApi.create(type, {
              name: FLAG_PROPERTY,
              label: 'crm-ledger status',
              description:
                'Written by crm-ledger: the latest verdict on this record and the ledger block that carries it.',
              groupName: FLAG_PROPERTY_GROUP,
              type: 'string' as PropertyCreateTypeEnum,
              fieldType: 'text' as PropertyCreateFieldTypeEnum,
              formField: false,
            }),
          ),
        );
      })();
      this.schemaReady.set(type, ready);
      // A failure is not remembered: the next flag call tries again.
      ready.catch(() => this.schemaReady.delete(type));
    }
    return ready;
  }

  private async allowConflict(step: () => Promise<unknown>): Promise<void> {
    try {
      await step();
    } catch (err) {
      if (err instanceof CrmApiError && err.status === 409) return;
      throw err;
    }
  }

  private async readExisting(
    type: HubspotObjectType,
    ids: readonly string[],
  ): Promise<Set<string>> {
    const found = new Set<string>();
    for (const chunk of chunks(ids, HUBSPOT_BATCH_LIMIT)) {
      const page = await this.call('read records', (sdk) =>
        sdk.objects.batchApi.read(type, {
          inputs: chunk.map((id) => ({ id })),
          properties: ['hs_object_id'],
          propertiesWithHistory: [],
        }),
      );
      for (const record of page.results) found.add(record.id);
    }
    return found;
  }

  /** `recordId \0 marker` → note id, for the notes of `ids` that carry one of our markers. */
  private async notesWithMarkers(
    type: HubspotObjectType,
    ids: readonly string[],
  ): Promise<Map<string, string>> {
    const notesOf = new Map<string, string[]>();
    let inputs: { id: string; after?: string }[] = ids.map((id) => ({ id }));
    while (inputs.length > 0) {
      const batch = inputs;
      const page = await this.call('read note associations', (sdk) =>
        sdk.associations.batchApi.getPage(type, 'notes', { inputs: batch }),
      );
      inputs = [];
      // Records without notes come back as per-input errors (207): they simply have none.
      for (const result of page.results) {
        // The SDK renames the wire field `from` to `_from` (a reserved word in its generator).
        const from = result._from.id;
        const list = notesOf.get(from) ?? [];
        list.push(...result.to.map((to) => String(to.toObjectId)));
        notesOf.set(from, list);
        const after = result.paging?.next?.after;
        if (after !== undefined) inputs.push({ id: from, after });
      }
    }
    const recordOf = new Map<string, string[]>();
    for (const [recordId, noteIds] of notesOf) {
      for (const noteId of noteIds)
        recordOf.set(noteId, [...(recordOf.get(noteId) ?? []), recordId]);
    }
    const out = new Map<string, string>();
    for (const chunk of chunks([...recordOf.keys()], HUBSPOT_BATCH_LIMIT)) {
      const page = await this.call('read notes', (sdk) =>
        sdk.notes.batchApi.read({
          inputs: chunk.map((id) => ({ id })),
          properties: ['hs_note_body'],
          propertiesWithHistory: [],
        }),
      );
      for (const note of page.results) {
        const marker = markerIn(note.properties['hs_note_body'] ?? '', this.tenant);
        if (marker === undefined) continue;
        for (const recordId of recordOf.get(note.id) ?? [])
          out.set(`${recordId}\u0000${marker}`, note.id);
      }
    }
    return out;
  }

  /** Sets the status property; returns the ids written (a record deleted meanwhile is left out). */
  private async updateStatuses(
    type: HubspotObjectType,
    latest: readonly FlagRequest[],
  ): Promise<Set<string>> {
    let targets = latest;
    for (let attempt = 0; ; attempt++) {
      try {
        const batch = targets;
        await this.call('update flag property', (sdk) =>
          sdk.objects.batchApi.update(type, {
            inputs: batch.map((r) => ({
              id: r.ref.id,
              properties: { [FLAG_PROPERTY]: statusText(r) },
            })),
          }),
        );
        return new Set(targets.map((r) => r.ref.id));
      } catch (err) {
        // A record deleted between our read and this update fails the whole batch: drop it, retry.
        const gone = attempt === 0 ? missingIdsOf(err) : undefined;
        if (gone === undefined) throw err;
        const still = await this.readExisting(
          type,
          targets.map((r) => r.ref.id),
        );
        targets = targets.filter((r) => still.has(r.ref.id) && !gone.has(r.ref.id));
        if (targets.length === 0) return new Set();
      }
    }
  }

  private noteBody(r: FlagRequest): string {
    const marker = flagMarker(this.tenant, r.seq);
    const items = r.verdicts.map((v) => `<li>${escapeHtml(describeVerdict(v))}</li>`).join('');
    const adminUrl = r.adminUrl ?? this.defaultAdminUrl(r.ref);
    const link =
      adminUrl === undefined
        ? ''
        : `<p><a href="${escapeHtml(adminUrl)}">Ledger history of this record</a></p>`;
    const body =
      `<p><strong>crm-ledger flagged this record.</strong></p>` +
      `<ul>${items}</ul>` +
      `<p>Ledger block #${r.seq}, hash ${escapeHtml(r.blockHash)}.</p>` +
      link +
      `<p>${escapeHtml(marker)}</p>`;
    if (body.length <= NOTE_BODY_MAX) return body;
    // Never cut the marker off: idempotency depends on it.
    const tail = `<p>${escapeHtml(marker)}</p>`;
    return `${body.slice(0, NOTE_BODY_MAX - tail.length - 3)}...${tail}`;
  }

  private defaultAdminUrl(ref: RecordRef): string | undefined {
    const base = this.options.adminBaseUrl;
    if (base === undefined || base === '') return undefined;
    return `${base.replace(/\/+$/, '')}/admin/records/${encodeURIComponent(this.tenant)}/${encodeURIComponent(ref.object)}/${encodeURIComponent(ref.id)}`;
  }

  // ----------------------------------------------------------------------------- revert

  async revert(
    ref: RecordRef,
    fields: Readonly<Record<string, FieldValue>>,
    reason: string,
  ): Promise<void> {
    const type = objectTypeFor(ref.object);
    const names = Object.keys(fields);
    if (names.length === 0) return;
    const properties: Record<string, string> = {};
    // HubSpot stores strings; "" clears a property (§3.1).
    for (const [name, value] of Object.entries(fields))
      properties[name] = value === null ? '' : String(value);
    await this.call('revert', (sdk) => sdk.objects.basicApi.update(type, ref.id, { properties }));
    this.options.logger?.info(
      { tenant: this.tenant, object: ref.object, id: ref.id, fields: names, reason },
      'reverted fields in HubSpot',
    );
  }

  // ----------------------------------------------------------------------------- fetch

  async fetchRecords(query: FetchQuery): Promise<FetchPage> {
    const object = flaggableObject(query.object);
    const type = OBJECT_TYPES[object];
    const properties = [
      ...(this.options.fetchProperties?.[object] ?? DEFAULT_FETCH_PROPERTIES[object]),
    ];
    if ('ids' in query) {
      const records: FetchedRecord[] = [];
      for (const chunk of chunks(unique(query.ids), HUBSPOT_BATCH_LIMIT)) {
        const page = await this.call('fetch records by id', (sdk) =>
          sdk.objects.batchApi.read(type, {
            inputs: chunk.map((id) => ({ id })),
            properties,
            propertiesWithHistory: [],
          }),
        );
        records.push(...page.results.map((r) => this.toFetched(object, type, r, properties)));
      }
      return { records };
    }
    return this.fetchSince(object, type, properties, query);
  }

  private async fetchSince(
    object: FlaggableObject,
    type: HubspotObjectType,
    properties: string[],
    query: Extract<FetchQuery, { since: string }>,
  ): Promise<FetchPage> {
    const cap = this.options.searchResultCap ?? HUBSPOT_SEARCH_RESULT_CAP;
    const limit = Math.min(query.limit ?? 100, HUBSPOT_SEARCH_PAGE_MAX, cap);
    if (!Number.isInteger(limit) || limit < 1) {
      throw new CrmApiError(
        'permanent',
        `fetch limit must be an integer from 1 to ${HUBSPOT_SEARCH_PAGE_MAX}`,
      );
    }
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const since = instantOf(cursor?.since ?? query.since, 'since');
    const until = query.until === undefined ? undefined : instantOf(query.until, 'until');
    const modified = MODIFIED_PROPERTY[type];
    const filters = [
      { propertyName: modified, operator: 'GTE' as FilterOperatorEnum, value: String(since) },
    ];
    if (until !== undefined) {
      filters.push({
        propertyName: modified,
        operator: 'LT' as FilterOperatorEnum,
        value: String(until),
      });
    }
    const request: PublicObjectSearchRequest = {
      filterGroups: [{ filters }],
      // The SDK types sorts as strings; HubSpot documents (and accepts) {propertyName, direction}.
      sorts: [{ propertyName: modified, direction: 'ASCENDING' } as unknown as string],
      properties: unique([...properties, modified]),
      limit,
    };
    if (cursor?.after !== undefined) request.after = cursor.after;
    const page = await this.call('search modified records', (sdk) =>
      sdk.objects.searchApi.doSearch(type, request),
    );
    let results = page.results;
    const next = page.paging?.next?.after;
    if (next === undefined) {
      return { records: results.map((r) => this.toFetched(object, type, r, properties)) };
    }
    // Keyset paging: the next page is a new time slice from the last timestamp seen. Records
    // sharing that timestamp are held back and come first in the new slice (no loss, no repeat).
    // Offsets (`after`) would shift under us: a record of an earlier page modified while we page
    // leaves the window and the next page skips one record. This also keeps every slice far
    // under search's 10,000-result cap.
    const last = modifiedMs(results[results.length - 1], modified);
    if (last === undefined || last <= since) {
      // The whole page shares one timestamp: page on by offset within it, under the cap.
      if (Number(next) + limit <= cap) {
        return {
          records: results.map((r) => this.toFetched(object, type, r, properties)),
          cursor: encodeCursor({ since: new Date(since).toISOString(), after: next }),
        };
      }
      throw new CrmApiError(
        'permanent',
        `more than ${cap} ${type} share one last-modified millisecond; search cannot page past them`,
      );
    }
    results = results.filter((r) => modifiedMs(r, modified) !== last);
    return {
      records: results.map((r) => this.toFetched(object, type, r, properties)),
      cursor: encodeCursor({ since: new Date(last).toISOString() }),
    };
  }

  private toFetched(
    object: FlaggableObject,
    type: HubspotObjectType,
    record: SimplePublicObject,
    properties: readonly string[],
  ): FetchedRecord {
    const fields: Record<string, FieldValue> = {};
    for (const name of properties) fields[name] = record.properties[name] ?? null;
    const modified = record.properties[MODIFIED_PROPERTY[type]];
    const out: FetchedRecord = {
      ref: { object, id: record.id },
      fields,
      modifiedAt: modified ?? record.updatedAt.toISOString(),
    };
    if (record.archived === true) out.deleted = true;
    return out;
  }

  // ----------------------------------------------------------------------------- calls & errors

  /**
   * One SDK call with our error mapping: 401 → refresh the token once and retry (when refresh is
   * configured), then `auth`; 429 → `rate-limited` with Retry-After; 5xx/network/timeout →
   * `transient`; other 4xx → `permanent`.
   */
  private async call<T>(what: string, fn: (sdk: Sdk) => Promise<T>): Promise<T> {
    if (this.accessToken === undefined) await this.refreshToken(undefined);
    const tokenUsed = this.accessToken;
    try {
      return await this.withTimeout(what, fn(this.sdk));
    } catch (err) {
      if (statusOf(err) !== 401 || this.options.refresh === undefined)
        throw this.classify(what, err);
    }
    await this.refreshToken(tokenUsed);
    try {
      return await this.withTimeout(what, fn(this.sdk));
    } catch (err) {
      throw this.classify(what, err);
    }
  }

  /** Refreshes unless another call already replaced `stale`; one refresh in flight at a time. */
  private async refreshToken(stale: string | undefined): Promise<void> {
    if (this.accessToken !== stale && this.accessToken !== undefined) return;
    if (this.refreshing === undefined) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = undefined;
      });
    }
    await this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const refresh = this.options.refresh;
    if (refresh === undefined) throw new CrmApiError('auth', 'HubSpot rejected the access token');
    let token: string;
    try {
      const response = await this.withTimeout(
        'refresh token',
        this.sdk.oauth.tokensApi.create(
          'refresh_token',
          undefined,
          undefined,
          refresh.clientId,
          refresh.clientSecret,
          refresh.refreshToken,
        ),
      );
      token = response.accessToken;
    } catch (err) {
      const mapped = this.classify('refresh token', err);
      // A refused refresh token is an auth problem, not a bad request.
      if (mapped.kind === 'permanent') {
        throw new CrmApiError(
          'auth',
          `HubSpot refused the refresh token (${mapped.status ?? '?'})`,
          mapped.status,
          undefined,
          {
            cause: err,
          },
        );
      }
      throw mapped;
    }
    this.accessToken = token;
    this.sdk = this.buildSdk(token);
    this.options.logger?.info({ tenant: this.tenant }, 'HubSpot access token refreshed');
  }

  private withTimeout<T>(what: string, promise: Promise<T>): Promise<T> {
    const ms = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CrmApiError('transient', `HubSpot ${what} timed out after ${ms} ms`)),
        ms,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  private classify(what: string, err: unknown): CrmApiError {
    if (err instanceof CrmApiError) return err;
    const status = statusOf(err);
    if (status === undefined) {
      // node-fetch FetchError (ECONNRESET, ECONNREFUSED, socket hang up) and the like.
      return new CrmApiError(
        'transient',
        `HubSpot ${what} failed: ${networkReason(err)}`,
        undefined,
        undefined,
        {
          cause: err,
        },
      );
    }
    const category = categoryOf(err);
    const message = `HubSpot ${what} answered ${status}${category === undefined ? '' : ` ${category}`}`;
    if (status === 429 || status === 477) {
      const retryAfterMs = retryAfterOf(err) ?? HUBSPOT_RATE_WINDOW_MS;
      this.options.logger?.debug(
        { tenant: this.tenant, what, status, retryAfterMs },
        'HubSpot rate limit',
      );
      return new CrmApiError('rate-limited', message, status, retryAfterMs, { cause: err });
    }
    if (status === 423) {
      return new CrmApiError(
        'rate-limited',
        message,
        status,
        retryAfterOf(err) ?? LOCKED_RETRY_MS,
        { cause: err },
      );
    }
    if (status >= 500)
      return new CrmApiError('transient', message, status, undefined, { cause: err });
    if (status === 401 || status === 403)
      return new CrmApiError('auth', message, status, undefined, { cause: err });
    return new CrmApiError('permanent', message, status, undefined, { cause: err });
  }

  /**
   * A fresh SDK client. The SDK keeps its decorators (retry, limiter) in a process-wide singleton
   * that each `new Client()` overwrites and each API object reads when it is first built, so we
   * build every API object we use right here, synchronously, while ours (none: no retries) is set.
   */
  private buildSdk(accessToken: string | undefined): Sdk {
    const client = new Client({
      basePath: this.apiUrl,
      numberOfApiCallRetries: 0,
      ...(accessToken === undefined ? {} : { accessToken }),
    });
    return {
      objects: client.crm.objects,
      notes: client.crm.objects.notes,
      associations: client.crm.associations.v4,
      properties: client.crm.properties,
      oauth: client.oauth,
    };
  }
}

// ------------------------------------------------------------------------------- helpers

/** The idempotency marker of a flag: one per tenant and block. */
export function flagMarker(tenant: string, seq: number): string {
  return `[crm-ledger ${tenant} block #${seq}]`;
}

const MARKER_PATTERN = /\[crm-ledger (\S+) block #([0-9]+)\]/g;

function markerIn(body: string, tenant: string): string | undefined {
  for (const match of body.matchAll(MARKER_PATTERN)) {
    if (match[1] === tenant) return flagMarker(tenant, Number(match[2]));
  }
  return undefined;
}

/** The single-line status: verdict types and the block, e.g. `duplicate, unauthorised · block #42`. */
export function statusText(r: Pick<FlagRequest, 'seq' | 'verdicts'>): string {
  const types = unique(r.verdicts.map(verdictLabel));
  return `${types.length === 0 ? 'flagged' : types.join(', ')} · block #${r.seq}`;
}

/** A verdict's word in the status: its type, or `erased` for a subject erasure's block. */
export function verdictLabel(v: Verdict): string {
  return v.code === SUBJECT_ERASED ? 'erased' : v.type;
}

/** The code of the verdict an erasure block carries (src/vault/subjects.ts). */
export const SUBJECT_ERASED = 'SUBJECT_ERASED';

function describeVerdict(v: Verdict): string {
  const parts: string[] = [v.type];
  if (v.code !== undefined) parts.push(`(${v.code})`);
  let text = parts.join(' ');
  if (v.reason !== undefined && v.reason !== '') text += `: ${v.reason}`;
  const candidates = candidatesOf(v);
  if (candidates.length > 0) text += `. Candidates: ${candidates.join(', ')}`;
  return text;
}

/** Candidate record ids a dedupe verdict may carry (`candidates` / `candidateIds`). */
function candidatesOf(v: Verdict): string[] {
  const raw =
    (v as Record<string, unknown>)['candidates'] ?? (v as Record<string, unknown>)['candidateIds'];
  if (!Array.isArray(raw)) return [];
  return raw
    .map((c: unknown) => {
      if (typeof c === 'string' || typeof c === 'number') return String(c);
      if (typeof c === 'object' && c !== null) {
        const id =
          (c as Record<string, unknown>)['id'] ?? (c as Record<string, unknown>)['recordId'];
        if (typeof id === 'string' || typeof id === 'number') return String(id);
      }
      return undefined;
    })
    .filter((c): c is string => c !== undefined)
    .slice(0, 50);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function flaggableObject(object: string): FlaggableObject {
  if (object === 'contact' || object === 'company' || object === 'deal') return object;
  throw new CrmApiError(
    'permanent',
    `HubSpot object "${object}" is not supported (contact, company, deal)`,
  );
}

function objectTypeFor(object: string): HubspotObjectType {
  return OBJECT_TYPES[flaggableObject(object)];
}

interface Cursor {
  since: string;
  after?: string;
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify({ v: 1, ...cursor }), 'utf8').toString('base64url');
}

function decodeCursor(text: string): Cursor {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    if (
      value['v'] === 1 &&
      typeof value['since'] === 'string' &&
      !Number.isNaN(Date.parse(value['since']))
    ) {
      const after = value['after'];
      if (after === undefined) return { since: value['since'] };
      if (typeof after === 'string' && /^[0-9]{1,9}$/.test(after))
        return { since: value['since'], after };
    }
  } catch {
    // fall through
  }
  throw new CrmApiError('permanent', 'the fetch cursor is not one this client issued');
}

function instantOf(value: string, name: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new CrmApiError('permanent', `${name} is not an ISO 8601 instant: ${value}`);
  return ms;
}

function modifiedMs(record: SimplePublicObject | undefined, property: string): number | undefined {
  const value = record?.properties[property];
  if (value === undefined || value === null) return undefined;
  const ms = /^[0-9]+$/.test(value) ? Number(value) : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** `ApiException` (one class per generated module, so duck-typed): `code` is the HTTP status. */
function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && code >= 100 && code <= 599 ? code : undefined;
}

function categoryOf(err: unknown): string | undefined {
  const body = (err as { body?: unknown }).body;
  if (typeof body !== 'object' || body === null) return undefined;
  const category =
    (body as Record<string, unknown>)['category'] ??
    (body as Record<string, unknown>)['policyName'];
  return typeof category === 'string' ? category : undefined;
}

/** Retry-After in seconds (or an HTTP date), as milliseconds. */
function retryAfterOf(err: unknown): number | undefined {
  const headers = (err as { headers?: unknown }).headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  const value = (headers as Record<string, unknown>)['retry-after'];
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^[0-9]+(\.[0-9]+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Ids a batch update refused because the records are gone (category OBJECT_NOT_FOUND). */
function missingIdsOf(err: unknown): Set<string> | undefined {
  if (!(err instanceof CrmApiError) || (err.status !== 400 && err.status !== 404)) return undefined;
  const body = (err.cause as { body?: unknown } | undefined)?.body;
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  if (b['category'] !== 'OBJECT_NOT_FOUND') return undefined;
  const context = b['context'];
  const ids =
    typeof context === 'object' && context !== null
      ? (context as Record<string, unknown>)['ids']
      : undefined;
  return new Set(Array.isArray(ids) ? ids.map(String) : []);
}

function networkReason(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string') return name;
  }
  return 'network error';
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
