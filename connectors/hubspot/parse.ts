/**
 * HubSpot webhook batch → normalised ChangeEvents (crm-protocols.md §1.4–1.5). Pure and total:
 * bad input returns a ParseResult failure, never an exception (STYLE.md rules 3 and 7).
 *
 * A batch is accepted whole or not at all: one event without an identity fails the request, so
 * HubSpot retries it rather than half of it landing in the ledger. Events we do not interpret are
 * kept as kind 'other' with their raw payload, never dropped.
 */
import { z } from 'zod';
import type { ParseFailureCode, ParseResult, ParsedEvent } from '../types.js';
import { CRM_LEDGER_ACTOR, isOwnHubspotChange } from './echo.js';
import {
  changeEventSchema,
  fieldNameSchema,
  fieldValueSchema,
  objectNameSchema,
} from '../../src/model/change-event.js';
import type {
  Actor,
  ChangeEvent,
  ChangeKind,
  FieldValue,
  Tenant,
} from '../../src/model/change-event.js';

/** "Each request can contain up to 100 events" (§1.1). */
export const HUBSPOT_MAX_BATCH_EVENTS = 100;

/** The last millisecond of year 9999: later instants have no plain ISO 8601 form. */
const MAX_EPOCH_MS = 253_402_300_799_999;

/** Keys that poison prototypes when a parsed object is later merged or spread (fastify's rule). */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor']);

/** HubSpot ids are JSON numbers; above 2^53 they would already have lost digits, so refuse them. */
const hubspotId = z.number().int().nonnegative();
const nullish = <T extends z.ZodType>(schema: T) =>
  schema.nullish().transform((v) => v ?? undefined);

/** What identifies an event; checked first so its path is the one reported. */
const identitySchema = z.looseObject({
  portalId: hubspotId,
  objectId: nullish(hubspotId),
  eventId: hubspotId,
  subscriptionType: nullish(z.string().min(1).max(128)),
  // The legacy guide's own sample payload names the type `eventType` (§1.4, §1.5).
  eventType: nullish(z.string().min(1).max(128)),
  occurredAt: z.number().int().min(0).max(MAX_EPOCH_MS),
});

/** The field holding the original event of a kind we do not interpret ('other'). */
export const RAW_FIELD = '$raw';

/** The other fields we read; everything else is kept untouched in `raw`. */
const detailSchema = z.looseObject({
  subscriptionId: nullish(hubspotId),
  objectTypeId: nullish(z.string().min(1).max(64)),
  propertyName: nullish(fieldNameSchema),
  propertyValue: fieldValueSchema.optional(),
  changeSource: nullish(z.string().max(64)),
  sourceId: nullish(z.string().max(180)),
  primaryObjectId: nullish(hubspotId),
  mergedObjectIds: nullish(z.array(hubspotId).max(1000)),
  newObjectId: nullish(hubspotId),
  numberOfPropertiesMoved: nullish(z.number().int().nonnegative()),
  associationType: nullish(z.string().max(128)),
  associationCategory: nullish(z.string().max(128)),
  associationTypeId: nullish(z.number().int()),
  fromObjectId: nullish(hubspotId),
  toObjectId: nullish(hubspotId),
  fromObjectTypeId: nullish(z.string().min(1).max(64)),
  toObjectTypeId: nullish(z.string().min(1).max(64)),
  associationRemoved: nullish(z.boolean()),
  isPrimaryAssociation: nullish(z.boolean()),
});

type Identity = z.infer<typeof identitySchema>;
type Detail = z.infer<typeof detailSchema>;

type Action =
  | 'creation'
  | 'propertyChange'
  | 'deletion'
  | 'merge'
  | 'restore'
  | 'associationChange'
  | 'privacyDeletion';

type NormalisedObject = 'contact' | 'company' | 'deal';

/** Legacy subscription types we normalise (the `eventType` enum of the v3 OpenAPI, §1.4). */
const LEGACY_ACTIONS: Readonly<Record<NormalisedObject, ReadonlySet<Action>>> = {
  contact: new Set<Action>([
    'creation',
    'deletion',
    'merge',
    'associationChange',
    'restore',
    'privacyDeletion',
    'propertyChange',
  ]),
  company: new Set<Action>([
    'creation',
    'deletion',
    'propertyChange',
    'associationChange',
    'restore',
    'merge',
  ]),
  deal: new Set<Action>([
    'creation',
    'deletion',
    'associationChange',
    'restore',
    'merge',
    'propertyChange',
  ]),
};

/** Generic `object.*` subscriptions (§1.4); privacyDeletion exists only in the legacy form. */
const GENERIC_ACTIONS: ReadonlySet<Action> = new Set<Action>([
  'creation',
  'deletion',
  'merge',
  'restore',
  'propertyChange',
  'associationChange',
]);

/** `objectTypeId` of generic subscriptions (§1.4). Tickets are named but not interpreted. */
const OBJECT_TYPE_NAMES: Readonly<Record<string, string>> = {
  '0-1': 'contact',
  '0-2': 'company',
  '0-3': 'deal',
  '0-5': 'ticket',
};

const ACTION_KINDS: Readonly<Record<Action, ChangeKind>> = {
  creation: 'create',
  propertyChange: 'update',
  deletion: 'delete',
  merge: 'merge',
  restore: 'restore',
  associationChange: 'update',
  privacyDeletion: 'delete',
};

/**
 * Order of kinds for one record at one instant: HubSpot sends a creation and the property changes
 * it caused with the same occurredAt, in no particular order (§1.1).
 */
const KIND_RANK: Readonly<Partial<Record<ChangeKind, number>>> = {
  create: 0,
  restore: 1,
  delete: 3,
};
const DEFAULT_KIND_RANK = 2;

const USER_SOURCE_ID = /^userId:([0-9]{1,32})$/;

/** Parses a verified request body. Total: never throws. */
export interface HubspotParseOptions {
  /**
   * Our own HubSpot app id: events it caused (`INTEGRATION` / `<appId>`, see echo.ts) get the actor
   * `crm-ledger`, so our write-backs are anchored but never flagged again.
   */
  ownAppId?: string | number | undefined;
}

export function parseHubspotBatch(body: Buffer, options: HubspotParseOptions = {}): ParseResult {
  const json = parseJsonSafely(body);
  if (!json.ok) return json;
  const batch = json.value;
  if (!Array.isArray(batch)) {
    return failure('PAYLOAD_MALFORMED', 'expected a JSON array of events');
  }
  if (batch.length > HUBSPOT_MAX_BATCH_EVENTS) {
    return failure(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${HUBSPOT_MAX_BATCH_EVENTS} events, got ${batch.length}`,
    );
  }
  const events: ParsedEvent[] = [];
  for (const [index, raw] of (batch as unknown[]).entries()) {
    const parsed = parseEvent(raw, index, options);
    if (!parsed.ok) return parsed;
    events.push(parsed.event);
  }
  return { ok: true, events: orderCreationFirst(events) };
}

type EventResult = { ok: true; event: ParsedEvent } | Extract<ParseResult, { ok: false }>;

function parseEvent(raw: unknown, index: number, options: HubspotParseOptions): EventResult {
  const at = `[${index}]`;
  const identity = identitySchema.safeParse(raw);
  if (!identity.success) return invalid(at, identity.error);
  const id = identity.data;

  const subscriptionType = id.subscriptionType ?? id.eventType;
  if (subscriptionType === undefined) {
    return failure('EVENT_INVALID', `${at}.subscriptionType: required`, `${at}.subscriptionType`);
  }
  if (
    id.subscriptionType !== undefined &&
    id.eventType !== undefined &&
    id.subscriptionType !== id.eventType
  ) {
    return failure(
      'EVENT_INVALID',
      `${at}.eventType: disagrees with subscriptionType`,
      `${at}.eventType`,
    );
  }

  const detail = detailSchema.safeParse(raw);
  if (!detail.success) return invalid(at, detail.error);
  const d = detail.data;

  const type = classify(subscriptionType, d);
  // Association events carry fromObjectId/toObjectId and, in real payloads, no objectId.
  const objectId =
    id.objectId ?? (type.action === 'associationChange' ? d.fromObjectId : undefined);
  if (objectId === undefined) {
    return failure('EVENT_INVALID', `${at}.objectId: required`, `${at}.objectId`);
  }

  // An event we do not interpret is anchored with its whole payload as one field, never dropped.
  let fields: Record<string, FieldValue> = { [RAW_FIELD]: JSON.stringify(raw) };
  if (type.kind !== 'other') {
    const built = fieldsFor(type.action, d, at);
    if (!built.ok) return built;
    fields = built.fields;
  }

  const tenant: Tenant = `hubspot:${id.portalId}`;
  const event: ChangeEvent = {
    tenant,
    source: 'hubspot',
    object: type.object,
    recordId: String(objectId),
    eventId: String(id.eventId),
    kind: type.kind,
    actor: isOwnHubspotChange(d, options.ownAppId)
      ? { ...CRM_LEDGER_ACTOR }
      : actorOf(d.changeSource, d.sourceId),
    occurredAt: new Date(id.occurredAt).toISOString(),
    fields,
    raw,
  };
  // A safety net: the schemas above should make this unreachable.
  const checked = changeEventSchema.safeParse(event);
  if (!checked.success) return invalid(at, checked.error);

  return {
    ok: true,
    event: { event, idempotencyKey: idempotencyKeyFor(tenant, id, d, subscriptionType, type) },
  };
}

interface Classified {
  object: string;
  /** the action when the type is one we interpret, else undefined */
  action: Action | undefined;
  kind: ChangeKind;
}

function classify(subscriptionType: string, d: Detail): Classified {
  const dot = subscriptionType.indexOf('.');
  const prefix = dot < 0 ? '' : subscriptionType.slice(0, dot);
  const suffix = dot < 0 ? subscriptionType : subscriptionType.slice(dot + 1);
  const action = isAction(suffix) ? suffix : undefined;

  if (prefix === 'object') {
    // Generic association events name the two sides' types rather than an objectTypeId.
    const typeId = d.objectTypeId ?? d.fromObjectTypeId;
    const object = typeId === undefined ? 'unknown' : objectNameForTypeId(typeId);
    const interpreted = action !== undefined && isNormalised(object) && GENERIC_ACTIONS.has(action);
    return interpreted ? { object, action, kind: ACTION_KINDS[action] } : other(object, action);
  }
  if (isNormalised(prefix)) {
    const interpreted = action !== undefined && LEGACY_ACTIONS[prefix].has(action);
    return interpreted
      ? { object: prefix, action, kind: ACTION_KINDS[action] }
      : other(prefix, action);
  }
  const object = objectNameSchema.safeParse(prefix.toLowerCase());
  return other(object.success ? object.data : 'unknown', action);
}

function other(object: string, action: Action | undefined): Classified {
  return { object, action, kind: 'other' };
}

function isAction(value: string): value is Action {
  return Object.hasOwn(ACTION_KINDS, value);
}

function isNormalised(object: string): object is NormalisedObject {
  return Object.hasOwn(LEGACY_ACTIONS, object);
}

/** `0-1` → contact; an unlisted id (e.g. a custom object `2-123`) → `object_type_2_123`. */
function objectNameForTypeId(typeId: string): string {
  const known = OBJECT_TYPE_NAMES[typeId];
  if (known !== undefined) return known;
  return `object_type_${typeId.toLowerCase().replace(/[^a-z0-9]/g, '_')}`.slice(0, 80);
}

type FieldsResult =
  { ok: true; fields: Record<string, FieldValue> } | Extract<ParseResult, { ok: false }>;

function fieldsFor(action: Action | undefined, d: Detail, at: string): FieldsResult {
  switch (action) {
    case 'propertyChange': {
      if (d.propertyName === undefined) {
        return failure('EVENT_INVALID', `${at}.propertyName: required`, `${at}.propertyName`);
      }
      // HubSpot sends the new value as a string ("REDACTED" for sensitive properties).
      return { ok: true, fields: { [d.propertyName]: d.propertyValue ?? null } };
    }
    case 'merge':
      return {
        ok: true,
        fields: compact({
          primaryObjectId: idString(d.primaryObjectId),
          mergedObjectIds: d.mergedObjectIds?.map(String).join(','),
          newObjectId: idString(d.newObjectId),
          numberOfPropertiesMoved: d.numberOfPropertiesMoved,
        }),
      };
    case 'associationChange':
      return {
        ok: true,
        fields: compact({
          associationType: d.associationType,
          associationCategory: d.associationCategory,
          associationTypeId: d.associationTypeId,
          fromObjectId: idString(d.fromObjectId),
          fromObjectTypeId: d.fromObjectTypeId,
          toObjectId: idString(d.toObjectId),
          toObjectTypeId: d.toObjectTypeId,
          associationRemoved: d.associationRemoved,
          isPrimaryAssociation: d.isPrimaryAssociation,
        }),
      };
    case 'privacyDeletion':
      return { ok: true, fields: { privacyDeletion: true } };
    case 'creation':
    case 'deletion':
    case 'restore':
    case undefined:
      return { ok: true, fields: {} };
  }
}

/**
 * `sourceId: "userId:42"` is the acting HubSpot user (§1.4), the key to "who changed this".
 * Anything else is attributed to the change source (an import, an integration, the API).
 */
function actorOf(changeSource: string | undefined, sourceId: string | undefined): Actor {
  const user = sourceId === undefined ? null : USER_SOURCE_ID.exec(sourceId);
  if (user?.[1] !== undefined) return { type: 'user', id: `hubspot:user:${user[1]}` };
  const type =
    changeSource === undefined || changeSource === '' ? 'system' : changeSource.toLowerCase();
  return {
    type,
    id: `hubspot:${type}:${sourceId === undefined || sourceId === '' ? 'unknown' : sourceId}`,
  };
}

/**
 * eventId is "not guaranteed to be unique" (§1.4), so the key combines everything that tells two
 * notifications apart, and nothing that differs between retries of one (attemptNumber). `%` and `|`
 * inside a part are escaped so that parts cannot run into each other.
 */
function idempotencyKeyFor(
  tenant: Tenant,
  id: Identity,
  d: Detail,
  subscriptionType: string,
  type: Classified,
): string {
  const parts: (string | number | boolean | undefined)[] = [
    'hubspot',
    tenant,
    d.subscriptionId,
    id.objectId ?? d.fromObjectId,
    id.eventId,
    id.occurredAt,
    subscriptionType,
    d.propertyName,
  ];
  if (type.action === 'associationChange') {
    // Both sides of an association, and its primary and non-primary twins, are separate events.
    parts.push(d.associationType, d.toObjectId, d.associationRemoved, d.isPrimaryAssociation);
  }
  return parts
    .map((part) =>
      (part === undefined ? '' : String(part)).replace(/%/g, '%25').replace(/\|/g, '%7C'),
    )
    .join('|');
}

/**
 * Within one batch, each record's events are put in occurredAt order and, at the same instant,
 * creation first and deletion last; events of other records keep their positions.
 */
function orderCreationFirst(events: ParsedEvent[]): ParsedEvent[] {
  const slots = new Map<string, number[]>();
  for (const [index, { event }] of events.entries()) {
    const key = `${event.tenant}\u0000${event.object}\u0000${event.recordId}`;
    const indices = slots.get(key);
    if (indices === undefined) slots.set(key, [index]);
    else indices.push(index);
  }
  const ordered = events.slice();
  for (const indices of slots.values()) {
    if (indices.length < 2) continue;
    const group = indices.map((index) => events[index] as ParsedEvent);
    group.sort(
      (a, b) =>
        Date.parse(a.event.occurredAt) - Date.parse(b.event.occurredAt) ||
        rankOf(a.event.kind) - rankOf(b.event.kind),
    );
    for (const [position, index] of indices.entries()) {
      ordered[index] = group[position] as ParsedEvent;
    }
  }
  return ordered;
}

function rankOf(kind: ChangeKind): number {
  return KIND_RANK[kind] ?? DEFAULT_KIND_RANK;
}

type JsonResult = { ok: true; value: unknown } | Extract<ParseResult, { ok: false }>;

const MAYBE_FORBIDDEN = /__proto__|constructor|\\u/;

function parseJsonSafely(body: Buffer): JsonResult {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return failure('PAYLOAD_MALFORMED', 'the body is not valid UTF-8');
  }
  let poisoned = false;
  let value: unknown;
  try {
    // JSON.parse makes `__proto__` an own property; the reviver sees every key at every depth.
    // It costs a call per value, so it runs only when such a key can be there at all: spelled
    // out, or hidden behind a \u escape.
    value = MAYBE_FORBIDDEN.test(text)
      ? JSON.parse(text, (key, nested: unknown) => {
          if (FORBIDDEN_KEYS.has(key)) poisoned = true;
          return nested;
        })
      : JSON.parse(text);
  } catch {
    return failure('PAYLOAD_MALFORMED', 'the body is not valid JSON');
  }
  if (poisoned) {
    return failure('PAYLOAD_MALFORMED', 'the body contains a "__proto__" or "constructor" key');
  }
  return { ok: true, value };
}

function idString(id: number | undefined): string | undefined {
  return id === undefined ? undefined : String(id);
}

function compact(fields: Record<string, FieldValue | undefined>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function invalid(at: string, error: z.ZodError): Extract<ParseResult, { ok: false }> {
  const [issue] = error.issues;
  const path = at + formatPath(issue?.path ?? []);
  return failure('EVENT_INVALID', `${path}: ${issue?.message ?? 'invalid event'}`, path);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((segment) => (typeof segment === 'number' ? `[${segment}]` : `.${String(segment)}`))
    .join('');
}

function failure(
  code: ParseFailureCode,
  reason: string,
  path?: string,
): Extract<ParseResult, { ok: false }> {
  return path === undefined ? { ok: false, code, reason } : { ok: false, code, reason, path };
}
