/**
 * The sandbox's CRM API handlers: the `/crm/v3/...` and `/crm/v4/...` paths `@hubspot/api-client`
 * 13.5.0 calls, answering with the status codes its generated clients expect (crm-protocols.md §3.3:
 * 201 for creates, 200 for reads and updates, 207 for batches with errors, 204 for archive).
 * Handlers return a response value instead of writing it, so the server can inject a fault after a
 * write has happened ("crash mid-way").
 */
import type { ChangeSource, ObjectType, SandboxStore, StoredRecord } from './store.js';
import {
  NOTE_TO_RECORD_TYPE_ID,
  OBJECT_LABELS,
  RECORD_TO_NOTE_TYPE_ID,
  StoreError,
  objectTypeOf,
} from './store.js';
import { parseSearchRequest, runSearch } from './search.js';

export const BATCH_MAX_INPUTS = 100;

export interface ApiResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ApiRequest {
  method: string;
  /** path segments after the leading slash, already split */
  segments: string[];
  query: URLSearchParams;
  body: unknown;
  source: ChangeSource;
}

export interface ApiContext {
  store: SandboxStore;
  searchResultCap: number;
}

/** Routes one authenticated API request; returns undefined when no route matches. */
export function handleApi(ctx: ApiContext, req: ApiRequest): ApiResponse | undefined {
  const s = req.segments;
  const m = req.method;
  if (s[0] === 'crm' && s[1] === 'v3' && s[2] === 'objects' && s[3] !== undefined) {
    const type = requireType(s[3]);
    if (s.length === 4) {
      if (m === 'GET') return listRecords(ctx, type, req.query);
      if (m === 'POST') return createRecord(ctx, type, req);
    }
    if (s.length === 5 && s[4] === 'search' && m === 'POST') return search(ctx, type, req.body);
    if (s.length === 6 && s[4] === 'batch' && m === 'POST')
      return batch(ctx, type, s[5] as string, req);
    if (s.length === 5) {
      const id = s[4] as string;
      if (m === 'GET') return getRecord(ctx, type, id, req.query);
      if (m === 'PATCH') return updateRecord(ctx, type, id, req);
      if (m === 'DELETE') {
        ctx.store.archive(type, id, req.source);
        return { status: 204 };
      }
    }
    if (s.length === 7 && s[5] === 'associations' && m === 'GET') {
      return associationsV3(ctx, type, s[4] as string, requireType(s[6] as string));
    }
  }
  if (
    s[0] === 'crm' &&
    s[1] === 'v4' &&
    s[2] === 'objects' &&
    s.length === 7 &&
    s[5] === 'associations'
  ) {
    if (m === 'GET') {
      return associationsV4(
        ctx,
        requireType(s[3] as string),
        s[4] as string,
        requireType(s[6] as string),
        req.query,
      );
    }
  }
  if (
    s[0] === 'crm' &&
    s[1] === 'v4' &&
    s[2] === 'associations' &&
    s.length === 7 &&
    s[5] === 'batch' &&
    s[6] === 'read' &&
    m === 'POST'
  ) {
    return batchReadAssociations(
      ctx,
      requireType(s[3] as string),
      requireType(s[4] as string),
      req.body,
    );
  }
  if (s[0] === 'crm' && s[1] === 'v3' && s[2] === 'properties' && s[3] !== undefined) {
    const type = requireType(s[3]);
    if (s.length === 4 && m === 'GET') {
      return {
        status: 200,
        body: { results: ctx.store.propertyDefinitions(type).map(propertyView) },
      };
    }
    if (s.length === 4 && m === 'POST') {
      return {
        status: 201,
        body: propertyView(ctx.store.createProperty(type, objectBody(req.body))),
      };
    }
    if (s.length === 5 && s[4] === 'groups' && m === 'GET') {
      return { status: 200, body: { results: ctx.store.propertyGroups(type) } };
    }
    if (s.length === 5 && s[4] === 'groups' && m === 'POST') {
      return { status: 201, body: ctx.store.createPropertyGroup(type, objectBody(req.body)) };
    }
    if (s.length === 5 && m === 'GET') {
      const definition = ctx.store.propertyDefinition(type, s[4] as string);
      if (definition === undefined) {
        throw new StoreError(404, 'OBJECT_NOT_FOUND', `Unable to find property ${s[4]}`);
      }
      return { status: 200, body: propertyView(definition) };
    }
  }
  return undefined;
}

export function recordView(
  store: SandboxStore,
  record: StoredRecord,
  properties: readonly string[] | undefined,
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: record.id,
    properties: store.view(record, properties),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    archived: record.archived,
  };
  if (record.archivedAt !== undefined) view['archivedAt'] = record.archivedAt;
  return view;
}

function listRecords(ctx: ApiContext, type: ObjectType, query: URLSearchParams): ApiResponse {
  const limit = clampInt(query.get('limit'), 10, 1, 100);
  const after = query.get('after');
  const archived = query.get('archived') === 'true';
  const properties = listParam(query, 'properties');
  const all = [...ctx.store.table(type).values()]
    .filter((r) => r.archived === archived && (after === null || Number(r.id) >= Number(after)))
    .sort((a, b) => Number(a.id) - Number(b.id));
  const page = all.slice(0, limit);
  const next = all[limit];
  const body: Record<string, unknown> = {
    results: page.map((r) => recordView(ctx.store, r, properties)),
  };
  if (next !== undefined) body['paging'] = { next: { after: next.id, link: `?after=${next.id}` } };
  return { status: 200, body };
}

function getRecord(
  ctx: ApiContext,
  type: ObjectType,
  id: string,
  query: URLSearchParams,
): ApiResponse {
  const idProperty = query.get('idProperty');
  const archived = query.get('archived') === 'true';
  const record =
    idProperty !== null && idProperty !== 'hs_object_id'
      ? ctx.store.findBy(type, idProperty, id)
      : ctx.store.get(type, id, archived);
  if (record === undefined) throw new StoreError(404, 'OBJECT_NOT_FOUND', 'resource not found');
  const view = recordView(ctx.store, record, listParam(query, 'properties'));
  const associations = listParam(query, 'associations');
  if (associations !== undefined) {
    const out: Record<string, unknown> = {};
    for (const name of associations) {
      const toType = objectTypeOf(name);
      if (toType === undefined) continue;
      const links = record.associations.filter((a) => a.type === toType);
      if (links.length > 0) {
        out[toType] = {
          results: links.map((a) => ({
            id: a.id,
            type: `${singular(type)}_to_${singular(toType)}`,
          })),
        };
      }
    }
    view['associations'] = out;
  }
  return { status: 200, body: view };
}

function createRecord(ctx: ApiContext, type: ObjectType, req: ApiRequest): ApiResponse {
  const input = objectBody(req.body);
  const record = ctx.store.create(
    type,
    propertiesOf(input),
    req.source,
    associationsOf(type, input['associations']),
  );
  return { status: 201, body: recordView(ctx.store, record, Object.keys(propertiesOf(input))) };
}

function updateRecord(ctx: ApiContext, type: ObjectType, id: string, req: ApiRequest): ApiResponse {
  const input = objectBody(req.body);
  const idProperty = req.query.get('idProperty');
  let targetId = id;
  if (idProperty !== null && idProperty !== 'hs_object_id') {
    const found = ctx.store.findBy(type, idProperty, id);
    if (found === undefined) throw new StoreError(404, 'OBJECT_NOT_FOUND', 'resource not found');
    targetId = found.id;
  }
  const properties = propertiesOf(input);
  const record = ctx.store.update(type, targetId, properties, req.source);
  return { status: 200, body: recordView(ctx.store, record, Object.keys(properties)) };
}

function search(ctx: ApiContext, type: ObjectType, body: unknown): ApiResponse {
  const request = parseSearchRequest(body, ctx.searchResultCap);
  const page = runSearch(ctx.store.table(type).values(), request, ctx.searchResultCap);
  const out: Record<string, unknown> = {
    total: page.total,
    results: page.results.map((r) => recordView(ctx.store, r, request.properties)),
  };
  if (page.nextAfter !== undefined) {
    out['paging'] = { next: { after: page.nextAfter, link: `?after=${page.nextAfter}` } };
  }
  return { status: 200, body: out };
}

function batch(ctx: ApiContext, type: ObjectType, action: string, req: ApiRequest): ApiResponse {
  const input = objectBody(req.body);
  const inputs = input['inputs'];
  if (!Array.isArray(inputs)) throw validation('inputs must be an array');
  if (inputs.length > BATCH_MAX_INPUTS) {
    throw validation(`Batch size must be at most ${BATCH_MAX_INPUTS}; got ${inputs.length}`);
  }
  const items = inputs.map((item: unknown) => objectBody(item));
  const startedAt = new Date().toISOString();
  const done = (
    results: StoredRecord[],
    properties: readonly string[] | undefined,
    errors: unknown[],
    ok: number,
  ) => ({
    status: errors.length > 0 ? 207 : ok,
    body: {
      status: 'COMPLETE',
      results: results.map((r) => recordView(ctx.store, r, properties)),
      ...(errors.length > 0 ? { numErrors: errors.length, errors } : {}),
      requestedAt: startedAt,
      startedAt,
      completedAt: new Date().toISOString(),
    },
  });
  switch (action) {
    case 'read': {
      const properties = input['properties'];
      const asked = Array.isArray(properties) ? properties.map(String) : undefined;
      const idProperty = typeof input['idProperty'] === 'string' ? input['idProperty'] : undefined;
      const archived = req.query.get('archived') === 'true';
      const found: StoredRecord[] = [];
      const missing: string[] = [];
      for (const item of items) {
        const id = idOf(item['id']);
        const record =
          idProperty !== undefined && idProperty !== 'hs_object_id'
            ? ctx.store.findBy(type, idProperty, id)
            : ctx.store.get(type, id, archived);
        if (record === undefined) missing.push(id);
        else if (!found.includes(record)) found.push(record);
      }
      const errors =
        missing.length === 0
          ? []
          : [
              {
                status: 'error',
                category: 'OBJECT_NOT_FOUND',
                message: `Could not get some ${OBJECT_LABELS[type]} objects, they may be deleted or not exist. Check that ids are valid.`,
                context: { ids: missing },
              },
            ];
      return done(found, asked, errors, 200);
    }
    case 'update': {
      // All or nothing, as HubSpot: a missing id or an invalid property fails the whole batch.
      const targets = items.map((item) => ({
        record: ctx.store.get(type, idOf(item['id'])),
        id: idOf(item['id']),
        properties: propertiesOf(item),
      }));
      const missing = targets.filter((t) => t.record === undefined).map((t) => t.id);
      if (missing.length > 0) {
        throw new StoreError(
          400,
          'OBJECT_NOT_FOUND',
          `Could not get some ${OBJECT_LABELS[type]} objects, they may be deleted or not exist. Check that ids are valid.`,
          { ids: missing },
        );
      }
      for (const t of targets) ctx.store.checkProperties(type, t.properties);
      const updated = targets.map((t) =>
        ctx.store.applyUpdate(t.record as StoredRecord, t.properties, req.source),
      );
      const asked = [...new Set(targets.flatMap((t) => Object.keys(t.properties)))];
      return done(updated, asked, [], 200);
    }
    case 'create': {
      // Validated up front so that a bad input creates nothing.
      const prepared = items.map((item) => {
        const properties = propertiesOf(item);
        ctx.store.checkProperties(type, properties);
        if (type === 'notes' && (properties['hs_timestamp'] ?? '') === '') {
          throw validation('Property values were not valid: hs_timestamp is required');
        }
        return { properties, associations: associationsOf(type, item['associations']) };
      });
      for (const p of prepared) {
        for (const link of p.associations) {
          if (ctx.store.get(link.type, link.id) === undefined) {
            throw validation(
              `One or more associations are invalid: ${OBJECT_LABELS[link.type]} ${link.id} does not exist`,
            );
          }
        }
      }
      const created = prepared.map((p) =>
        ctx.store.create(type, p.properties, req.source, p.associations),
      );
      const asked = [...new Set(prepared.flatMap((p) => Object.keys(p.properties)))];
      return done(created, asked, [], 201);
    }
    case 'archive': {
      for (const item of items) ctx.store.archive(type, idOf(item['id']), req.source);
      return { status: 204 };
    }
    default:
      throw new StoreError(404, 'OBJECT_NOT_FOUND', `Unknown batch action ${action}`);
  }
}

function associationsV3(
  ctx: ApiContext,
  type: ObjectType,
  id: string,
  toType: ObjectType,
): ApiResponse {
  const record = ctx.store.get(type, id);
  if (record === undefined) throw new StoreError(404, 'OBJECT_NOT_FOUND', 'resource not found');
  const results = record.associations
    .filter((a) => a.type === toType)
    .map((a) => ({ id: a.id, type: `${singular(type)}_to_${singular(toType)}` }));
  return { status: 200, body: { results } };
}

function associationsV4(
  ctx: ApiContext,
  type: ObjectType,
  id: string,
  toType: ObjectType,
  query: URLSearchParams,
): ApiResponse {
  const record = ctx.store.get(type, id);
  if (record === undefined) throw new StoreError(404, 'OBJECT_NOT_FOUND', 'resource not found');
  const limit = clampInt(query.get('limit'), 500, 1, 500);
  const offset = clampInt(query.get('after'), 0, 0, Number.MAX_SAFE_INTEGER);
  const links = record.associations.filter((a) => a.type === toType);
  const page = links.slice(offset, offset + limit);
  const body: Record<string, unknown> = { results: page.map(v4Link) };
  if (offset + limit < links.length) {
    body['paging'] = { next: { after: String(offset + limit), link: `?after=${offset + limit}` } };
  }
  return { status: 200, body };
}

function batchReadAssociations(
  ctx: ApiContext,
  type: ObjectType,
  toType: ObjectType,
  raw: unknown,
): ApiResponse {
  const inputs = objectBody(raw)['inputs'];
  if (!Array.isArray(inputs)) throw validation('inputs must be an array');
  if (inputs.length > 1000) throw validation('Batch size must be at most 1000');
  const startedAt = new Date().toISOString();
  const results: unknown[] = [];
  const errors: unknown[] = [];
  for (const item of inputs) {
    const id = idOf(objectBody(item)['id']);
    const record = ctx.store.get(type, id);
    const links = record?.associations.filter((a) => a.type === toType) ?? [];
    if (links.length === 0) {
      // HubSpot reports a record without associations (or a missing one) as a per-input error.
      errors.push({
        status: 'error',
        category: 'OBJECT_NOT_FOUND',
        subCategory: 'crm.associations.NO_ASSOCIATIONS_FOUND',
        message: `No ${singular(type)} is associated with ${singular(toType)} ${id}.`,
        context: { fromObjectId: [id] },
      });
      continue;
    }
    results.push({ from: { id }, to: links.map(v4Link) });
  }
  return {
    status: errors.length > 0 ? 207 : 200,
    body: {
      status: 'COMPLETE',
      results,
      ...(errors.length > 0 ? { numErrors: errors.length, errors } : {}),
      startedAt,
      completedAt: new Date().toISOString(),
    },
  };
}

function v4Link(link: { id: string; typeId: number }): unknown {
  return {
    toObjectId: Number(link.id),
    associationTypes: [{ category: 'HUBSPOT_DEFINED', typeId: link.typeId, label: null }],
  };
}

function propertyView(
  definition: ReturnType<SandboxStore['propertyDefinitions']>[number],
): unknown {
  return {
    ...definition,
    options: [],
    displayOrder: -1,
    formField: !definition.hubspotDefined,
    hidden: false,
    calculated: false,
    externalOptions: false,
    hasUniqueValue: false,
    modificationMetadata: {
      archivable: true,
      readOnlyDefinition: definition.hubspotDefined,
      readOnlyValue: false,
    },
  };
}

/** The `associations` of a create body: `[{to:{id}, types:[{associationCategory, associationTypeId}]}]`. */
function associationsOf(
  type: ObjectType,
  raw: unknown,
): { type: ObjectType; id: string; typeId: number }[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw validation('associations must be an array');
  return raw.map((item: unknown) => {
    const a = objectBody(item);
    const to = objectBody(a['to']);
    const types = a['types'];
    if (!Array.isArray(types) || types.length === 0)
      throw validation('association types are required');
    const spec = objectBody(types[0]);
    const typeId = Number(spec['associationTypeId']);
    const id = idOf(to['id']);
    const toType = targetTypeOf(type, typeId);
    if (toType === undefined) {
      throw validation(
        `associationTypeId ${String(spec['associationTypeId'])} is not valid from ${singular(type)}`,
      );
    }
    return { type: toType, id, typeId };
  });
}

function targetTypeOf(from: ObjectType, typeId: number): ObjectType | undefined {
  const table =
    from === 'notes'
      ? NOTE_TO_RECORD_TYPE_ID
      : from === 'contacts' || from === 'companies' || from === 'deals'
        ? RECORD_TO_NOTE_TYPE_ID
        : undefined;
  if (table === undefined) return undefined;
  for (const [target, id] of Object.entries(table)) {
    if (id === typeId) return (from === 'notes' ? target : 'notes') as ObjectType;
  }
  return undefined;
}

function propertiesOf(input: Record<string, unknown>): Record<string, unknown> {
  const properties = input['properties'] ?? {};
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
    throw validation('properties must be an object');
  }
  return properties as Record<string, unknown>;
}

function requireType(name: string): ObjectType {
  const type = objectTypeOf(name);
  if (type === undefined)
    throw new StoreError(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${name}`);
  return type;
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw validation('Invalid input JSON on line 1: expected an object');
  }
  return body as Record<string, unknown>;
}

function listParam(query: URLSearchParams, name: string): string[] | undefined {
  const values = query.getAll(name);
  if (values.length === 0) return undefined;
  return values.flatMap((v) => v.split(',')).filter((v) => v !== '');
}

function clampInt(raw: string | null, fallback: number, min: number, max: number): number {
  const n = raw === null ? fallback : Number(raw);
  if (!Number.isInteger(n)) return fallback;
  return Math.min(max, Math.max(min, n));
}

function singular(type: ObjectType): string {
  return type === 'companies' ? 'company' : type.slice(0, -1);
}

/** Ids arrive as strings (or numbers, from hand-written clients); anything else matches nothing. */
function idOf(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

function validation(message: string): StoreError {
  return new StoreError(400, 'VALIDATION_ERROR', message);
}
