/**
 * Salesforce Change Data Capture events (CometD JSON) → normalised change events.
 * Reference: crm-protocols.md §5.2 (ChangeEventHeader), §5.3 (samples), §5.4 (replay).
 *
 * Pure and total: any input gives a result, never a throw (STYLE.md rule 3), so one malformed
 * message can be reported and skipped by the subscriber instead of crashing it.
 *
 * Shape rules we rely on (CDC Developer Guide, "Change Event Message Structure"):
 * - one message can name several records (`recordIds`) when the same change hit them in one
 *   transaction: we emit one event per record, with the same field values;
 * - CREATE/UNDELETE carry all non-null fields, UPDATE only the changed ones, DELETE none;
 * - `nulledFields` lists fields explicitly set to null (their values are absent from the body);
 * - compound fields arrive nested (`Name: {FirstName, LastName}`, `BillingAddress: {City}`) and
 *   are flattened here to the record's own field names (`FirstName`, `BillingCity`);
 * - `diffFields` values arrive as a unified diff, not a value: such records are re-read (gap);
 * - GAP_* and GAP_OVERFLOW events carry no field values: their records are re-read (gap).
 */
import { z } from 'zod';
import type { ChangeKind, FieldValue, RecordRef } from '../../src/model/change-event.js';
import { changeEventSchema, recordIdSchema, tenantSchema } from '../../src/model/change-event.js';
import type { ParsedEvent } from '../types.js';

/** The Sforce-Call-Options client id our own writes carry (crm-protocols.md §5.2 changeOrigin). */
export const CRM_LEDGER_CLIENT_ID = 'crm-ledger';
/** The actor of our own write-backs and reverts, so their echoes are never flagged again. */
export const CRM_LEDGER_ACTOR = { type: 'crm-ledger', id: 'crm-ledger' } as const;
/** The record id an overflow event carries instead of real ids (§5.2 "Overflow"). */
const OVERFLOW_RECORD_ID = '000000000000000AAA';

const CHANGE_TYPES = [
  'CREATE',
  'UPDATE',
  'DELETE',
  'UNDELETE',
  'GAP_CREATE',
  'GAP_UPDATE',
  'GAP_DELETE',
  'GAP_UNDELETE',
  'GAP_OVERFLOW',
] as const;
export type CdcChangeType = (typeof CHANGE_TYPES)[number];

const KIND_BY_CHANGE_TYPE: Readonly<
  Record<'CREATE' | 'UPDATE' | 'DELETE' | 'UNDELETE', ChangeKind>
> = { CREATE: 'create', UPDATE: 'update', DELETE: 'delete', UNDELETE: 'restore' };

const fieldList = z.array(z.string().max(255)).max(10_000);

export const changeEventHeaderSchema = z.looseObject({
  entityName: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,79}$/, 'expected an sObject API name'),
  recordIds: z.array(z.string().min(1).max(128)).min(1).max(10_000),
  changeType: z.enum(CHANGE_TYPES),
  changeOrigin: z.string().max(1024).optional(),
  transactionKey: z.string().min(1).max(128),
  sequenceNumber: z.number().int().nonnegative(),
  commitTimestamp: z.number().int().nonnegative(),
  commitNumber: z.number().optional(),
  commitUser: z.string().max(64).optional(),
  changedFields: fieldList.optional(),
  nulledFields: fieldList.optional(),
  diffFields: fieldList.optional(),
});
export type ChangeEventHeader = z.infer<typeof changeEventHeaderSchema>;

const messageSchema = z.looseObject({
  payload: z.looseObject({ ChangeEventHeader: changeEventHeaderSchema }),
  event: z.looseObject({ replayId: z.number().int() }),
});

export type CdcFailureCode = 'CDC_MESSAGE_INVALID';

export interface CdcGap {
  /** Records to re-read: empty for GAP_OVERFLOW (re-read the object by time instead). */
  refs: RecordRef[];
  header: ChangeEventHeader;
}

export type CdcResult =
  | {
      ok: true;
      replayId: number;
      header: ChangeEventHeader;
      /** one per record id, in `recordIds` order */
      events: ParsedEvent[];
      /** set for GAP_* / GAP_OVERFLOW, wildcard ids and diff-encoded fields */
      gap?: CdcGap;
    }
  | { ok: false; code: CdcFailureCode; reason: string; replayId?: number };

/**
 * Converts one CDC message, as jsforce's streaming client hands it to a listener
 * (`{schema, payload, event: {replayId}}`) or as a raw Bayeux message wraps it
 * (`{channel, data: {...}}`), into one ParsedEvent per record. Total: never throws.
 */
export function cdcToEvents(message: unknown, tenant: string): CdcResult {
  const inner = unwrap(message);
  const replayId = readReplayId(inner);
  const fail = (reason: string): CdcResult => ({
    ok: false,
    code: 'CDC_MESSAGE_INVALID',
    reason,
    ...(replayId !== undefined && { replayId }),
  });
  if (!tenantSchema.safeParse(tenant).success || !tenant.startsWith('salesforce:')) {
    return fail('tenant must be "salesforce:<org id>"');
  }
  const parsed = messageSchema.safeParse(inner);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(`${issue?.path.join('.') ?? 'message'}: ${issue?.message ?? 'invalid'}`);
  }
  const { payload, event } = parsed.data;
  const header = payload.ChangeEventHeader;
  const object = header.entityName.toLowerCase();

  const validIds = header.recordIds.filter(
    (id) => id !== OVERFLOW_RECORD_ID && !id.includes('*') && recordIdSchema.safeParse(id).success,
  );
  if (header.changeType.startsWith('GAP_')) {
    return {
      ok: true,
      replayId: event.replayId,
      header,
      events: [],
      gap: { refs: validIds.map((id) => ({ object, id })), header },
    };
  }

  const fields = readFields(payload, header);
  if (!fields.ok) return fail(fields.reason);
  // Wildcard ids (data-loss field conversions) cannot be anchored one by one: re-read instead.
  const wildcard = validIds.length !== header.recordIds.length;
  const refetch = wildcard || fields.diffed;

  const kind = KIND_BY_CHANGE_TYPE[header.changeType as keyof typeof KIND_BY_CHANGE_TYPE];
  const events: ParsedEvent[] = [];
  const orgId = tenant.slice('salesforce:'.length);
  for (const recordId of wildcard ? [] : validIds) {
    const eventId = `${header.transactionKey}:${header.sequenceNumber}:${recordId}`;
    const candidate = {
      tenant,
      source: 'salesforce',
      object,
      recordId,
      eventId,
      kind,
      actor: actorOf(header),
      occurredAt: new Date(header.commitTimestamp).toISOString(),
      fields: fields.values,
      raw: { replayId: event.replayId, changeEventHeader: header },
    };
    const checked = changeEventSchema.safeParse(candidate);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      return fail(`${issue?.path.join('.') ?? 'event'}: ${issue?.message ?? 'invalid'}`);
    }
    // The same change may also come as an Outbound Message (orgs often have both): whichever comes
    // second changes nothing against the record's anchored state and is not anchored again.
    events.push({
      event: checked.data,
      idempotencyKey: `salesforce|${orgId}|cdc:${eventId}`,
      ...(checked.data.kind === 'update' || checked.data.kind === 'create'
        ? { skipIfUnchanged: true as const }
        : {}),
    });
  }
  return {
    ok: true,
    replayId: event.replayId,
    header,
    events,
    ...(refetch && {
      gap: {
        refs: (wildcard ? [] : validIds).map((id) => ({ object, id })),
        header,
      },
    }),
  };
}

/** The `client=` part of a changeOrigin (`com/salesforce/api/rest/62.0;client=crm-ledger`). */
export function changeOriginClient(changeOrigin: string | undefined): string | undefined {
  if (changeOrigin === undefined) return undefined;
  const match = /(?:^|;)\s*client=([^;]*)/.exec(changeOrigin);
  // Salesforce appends a '/' to some internal client ids ("client=SfdcInternalAPI/").
  return match?.[1]?.trim().replace(/\/$/, '');
}

function actorOf(header: ChangeEventHeader): ParsedEvent['event']['actor'] {
  if (changeOriginClient(header.changeOrigin) === CRM_LEDGER_CLIENT_ID)
    return { ...CRM_LEDGER_ACTOR };
  if (header.commitUser !== undefined && header.commitUser !== '') {
    // Same actor id shape as the Outbound Message connector's LastModifiedById.
    return { type: 'user', id: `salesforce:user:${header.commitUser}` };
  }
  return { type: 'system', id: 'salesforce:cdc' };
}

type FieldsResult =
  { ok: true; values: Record<string, FieldValue>; diffed: boolean } | { ok: false; reason: string };

function readFields(payload: Record<string, unknown>, header: ChangeEventHeader): FieldsResult {
  const values = new Map<string, FieldValue>();
  const diffFields = new Set(header.diffFields ?? []);
  let diffed = false;
  for (const [name, value] of Object.entries(payload)) {
    if (name === 'ChangeEventHeader') continue;
    if (isDiff(value) || diffFields.has(name)) {
      diffed = true;
      continue;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [sub, subValue] of Object.entries(value as Record<string, unknown>)) {
        const flat = flattenName(name, sub);
        if (isDiff(subValue) || diffFields.has(`${name}.${sub}`)) {
          diffed = true;
          continue;
        }
        const converted = toFieldValue(subValue);
        if (converted === undefined)
          return { ok: false, reason: `${name}.${sub}: unsupported value` };
        values.set(flat, converted);
      }
      continue;
    }
    const converted = toFieldValue(value);
    if (converted === undefined) return { ok: false, reason: `${name}: unsupported value` };
    values.set(name, converted);
  }
  for (const nulled of header.nulledFields ?? []) {
    const dot = nulled.indexOf('.');
    const name = dot < 0 ? nulled : flattenName(nulled.slice(0, dot), nulled.slice(dot + 1));
    values.set(name, null);
  }
  for (const name of values.keys()) {
    if (name === '__proto__' || name === 'constructor' || name === 'prototype' || name === '') {
      return { ok: false, reason: `reserved field name ${JSON.stringify(name)}` };
    }
  }
  return { ok: true, values: Object.fromEntries(values), diffed };
}

/**
 * Compound field parts to the record's own field names: `Name.FirstName` → `FirstName`,
 * `BillingAddress.City` → `BillingCity`, `Address.Street` (Lead) → `Street`.
 */
function flattenName(compound: string, part: string): string {
  if (compound === 'Name') return part;
  if (compound.endsWith('Address')) return compound.slice(0, -'Address'.length) + part;
  return `${compound}.${part}`;
}

function isDiff(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as Record<string, unknown>)['diff'] === 'string'
  );
}

function toFieldValue(value: unknown): FieldValue | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  // Multi-value shapes (rare in CDC bodies) are kept as their JSON text rather than dropped.
  if (typeof value === 'object') return JSON.stringify(value);
  return undefined;
}

function unwrap(message: unknown): unknown {
  if (message !== null && typeof message === 'object' && !('payload' in message)) {
    const data = (message as Record<string, unknown>)['data'];
    if (data !== null && typeof data === 'object') return data;
  }
  return message;
}

function readReplayId(message: unknown): number | undefined {
  if (message === null || typeof message !== 'object') return undefined;
  const event = (message as Record<string, unknown>)['event'];
  if (event === null || typeof event !== 'object') return undefined;
  const replayId = (event as Record<string, unknown>)['replayId'];
  return typeof replayId === 'number' && Number.isInteger(replayId) ? replayId : undefined;
}
