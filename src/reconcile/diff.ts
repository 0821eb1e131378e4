/**
 * Reconciliation diff (pure): the CRM's records as fetched now against the ledger's projection of
 * each (the latest anchored value of every field, from `Ledger.recordState`), and the changes to
 * queue for what the ledger missed. No I/O here: the reconcile worker (src/pipeline/) fetches,
 * reads the projections and queues what this returns.
 *
 * Only the fields the CRM returned are compared (a fetch returns a property subset), minus the
 * fields the caller ignores (crm-ledger's own flag status, modification stamps). A CRM `null` and
 * a field the ledger never anchored are the same thing: no value.
 */
import type { FetchedRecord, ParsedEvent } from '../../connectors/types.js';
import type { FieldValue, RecordRef, Source } from '../model/change-event.js';
import type { Verdict } from '../model/verdict.js';

/** What the ledger knows of one record. */
export interface RecordProjection {
  /** the latest anchored value of each field */
  fields: ReadonlyMap<string, FieldValue>;
  /** the record's last block is a delete */
  deleted: boolean;
  /** seq of the record's last block */
  lastSeq: number;
}

export type Discrepancy =
  /**
   * The CRM holds values the ledger never anchored: `changed` fields differ from their anchored
   * value, `unseen` ones (non-null) were never anchored at all; `known: false`: no block of the
   * record (then every non-null field is `unseen`).
   */
  | {
      type: 'unanchored-change';
      record: FetchedRecord;
      changed: string[];
      unseen: string[];
      known: boolean;
    }
  /** the CRM deleted the record (recycle bin, archived); the ledger never saw the delete */
  | { type: 'unanchored-delete'; record: FetchedRecord; lastSeq: number | undefined }
  /** the record is live in the CRM but the ledger's last block for it is a delete */
  | { type: 'unanchored-restore'; record: FetchedRecord; lastSeq: number }
  /** the ledger has the record (not deleted) and the CRM no longer returns it at all */
  | { type: 'missing-in-crm'; ref: RecordRef; lastSeq: number };

export const UNANCHORED_CHANGE = 'UNANCHORED_CHANGE';
export const UNANCHORED_DELETE = 'UNANCHORED_DELETE';
export const UNANCHORED_RESTORE = 'UNANCHORED_RESTORE';
export const RECORD_MISSING = 'RECORD_MISSING';
/** A full re-scan (onboarding) meeting a record the ledger never saw: its baseline, not a flag. */
export const RECONCILE_BASELINE = 'RECONCILE_BASELINE';

export interface DiffInput {
  fetched: readonly FetchedRecord[];
  /** keyed by `recordKey(ref)`; absent: the ledger has no block of that record */
  projections: ReadonlyMap<string, RecordProjection>;
  /**
   * Records asked for by id (a sweep of the ledger's records): those the CRM did not return are
   * `missing-in-crm` (unless the ledger already saw them deleted).
   */
  expected?: readonly RecordRef[];
  /** field names never compared (the CRM's modification stamps, crm-ledger's own fields) */
  ignoreFields?: ReadonlySet<string>;
}

/** `<object>/<id>`: the ledger's record key (same as `recordKeyOf` in src/ledger/block.ts). */
export function recordKey(ref: RecordRef): string {
  return `${ref.object}/${ref.id}`;
}

/** The record of a record key, or undefined when it is not one. */
export function refOfRecordKey(key: string): RecordRef | undefined {
  const slash = key.indexOf('/');
  if (slash <= 0 || slash === key.length - 1) return undefined;
  return { object: key.slice(0, slash), id: key.slice(slash + 1) };
}

/** Values equal for reconciliation: null and absent alike; `5`, `'5'` alike (CRMs type loosely). */
export function sameValue(ledger: FieldValue | undefined, crm: FieldValue | undefined): boolean {
  const a = ledger ?? null;
  const b = crm ?? null;
  if (a === null || b === null) return a === b;
  return a === b || String(a) === String(b);
}

/** The discrepancies between the CRM's records and the ledger, in input order. */
export function diffRecords(input: DiffInput): Discrepancy[] {
  const ignore = input.ignoreFields ?? new Set<string>();
  const out: Discrepancy[] = [];
  const returned = new Set<string>();
  for (const record of input.fetched) {
    const key = recordKey(record.ref);
    returned.add(key);
    const projection = input.projections.get(key);
    if (record.deleted === true) {
      if (projection === undefined || !projection.deleted) {
        out.push({ type: 'unanchored-delete', record, lastSeq: projection?.lastSeq });
      }
      continue;
    }
    if (projection?.deleted === true) {
      out.push({ type: 'unanchored-restore', record, lastSeq: projection.lastSeq });
      continue;
    }
    const changed: string[] = [];
    const unseen: string[] = [];
    for (const [name, value] of Object.entries(record.fields)) {
      if (ignore.has(name)) continue;
      const anchored = projection?.fields.get(name);
      if (anchored === undefined) {
        if (value !== null) unseen.push(name);
      } else if (!sameValue(anchored, value)) {
        changed.push(name);
      }
    }
    if (projection === undefined || changed.length > 0 || unseen.length > 0) {
      out.push({
        type: 'unanchored-change',
        record,
        changed,
        unseen,
        known: projection !== undefined,
      });
    }
  }
  for (const ref of input.expected ?? []) {
    const key = recordKey(ref);
    if (returned.has(key)) continue;
    const projection = input.projections.get(key);
    if (projection !== undefined && !projection.deleted) {
      out.push({ type: 'missing-in-crm', ref, lastSeq: projection.lastSeq });
    }
  }
  return out;
}

export interface EventContext {
  tenant: string;
  source: Source;
  /** ISO time of the run: the time given to changes the CRM cannot date (a missing record) */
  now: string;
  /**
   * A full re-scan (onboarding): values the ledger never anchored (a record it never saw, fields
   * no webhook carried) are its baseline, anchored with an `info` verdict that is not flagged;
   * only values that differ from anchored ones are `unanchored-change`. In an incremental run,
   * after the baseline, a never-anchored value is a missed change too.
   */
  baseline?: boolean;
  /** field names left out of the queued state (crm-ledger's own fields: no echo loop) */
  omitFields?: ReadonlySet<string>;
}

/**
 * The change to queue for a discrepancy. Its idempotency key is built from the tenant, the record
 * and what the CRM says (modifiedAt) or what the ledger last had (lastSeq), so that a re-run, an
 * overlapping window or a resumed run queues the same key and the ledger anchors it once.
 */
export function discrepancyEvent(d: Discrepancy, ctx: EventContext): ParsedEvent {
  const actor = { type: 'system', id: `${ctx.source}:reconcile` };
  const base = { tenant: ctx.tenant, source: ctx.source, actor };
  const keyOf = (ref: RecordRef, what: string): string =>
    `${ctx.source}|${ctx.tenant}|reconcile|${ref.object}|${ref.id}|${what}`;
  switch (d.type) {
    case 'unanchored-change': {
      const ref = d.record.ref;
      const baseline = ctx.baseline === true;
      const verdict: Verdict =
        baseline && d.changed.length === 0
          ? {
              type: 'info',
              code: RECONCILE_BASELINE,
              reason: 'values first anchored by a full re-scan',
              fields: d.unseen,
            }
          : {
              type: 'unanchored-change',
              code: UNANCHORED_CHANGE,
              reason: d.known
                ? 'the CRM holds values no block anchored (changed while no webhook came)'
                : 'the record exists in the CRM but no block anchored it',
              fields: baseline ? d.changed : [...d.changed, ...d.unseen],
            };
      return {
        event: {
          ...base,
          object: ref.object,
          recordId: ref.id,
          eventId: `reconcile:${ref.object}:${ref.id}:${d.record.modifiedAt}`,
          kind: 'reconciled',
          occurredAt: d.record.modifiedAt,
          fields: withoutFields(d.record.fields, ctx.omitFields),
        },
        idempotencyKey: keyOf(ref, d.record.modifiedAt),
        // The anchor worker anchors only what differs from the record's state at anchoring time.
        fullState: true,
        verdicts: [verdict],
      };
    }
    case 'unanchored-delete':
    case 'unanchored-restore': {
      const ref = d.record.ref;
      const deleted = d.type === 'unanchored-delete';
      return {
        event: {
          ...base,
          object: ref.object,
          recordId: ref.id,
          eventId: `reconcile:${ref.object}:${ref.id}:${deleted ? 'delete' : 'restore'}:${d.record.modifiedAt}`,
          kind: deleted ? 'delete' : 'restore',
          occurredAt: d.record.modifiedAt,
          fields: deleted ? {} : withoutFields(d.record.fields, ctx.omitFields),
        },
        idempotencyKey: keyOf(ref, `${deleted ? 'delete' : 'restore'}|${d.lastSeq ?? -1}`),
        verdicts: [
          {
            type: 'unanchored-change',
            code: deleted ? UNANCHORED_DELETE : UNANCHORED_RESTORE,
            reason: deleted
              ? 'the CRM deleted the record; no block anchored the delete'
              : 'the CRM holds the record again; no block anchored its restore',
          },
        ],
      };
    }
    case 'missing-in-crm':
      return {
        event: {
          ...base,
          object: d.ref.object,
          recordId: d.ref.id,
          eventId: `reconcile:${d.ref.object}:${d.ref.id}:missing:${d.lastSeq}`,
          kind: 'delete',
          occurredAt: ctx.now,
          fields: {},
        },
        idempotencyKey: keyOf(d.ref, `missing|${d.lastSeq}`),
        verdicts: [
          {
            type: 'unanchored-change',
            code: RECORD_MISSING,
            reason: 'the ledger holds the record; the CRM no longer returns it',
          },
        ],
      };
  }
}

function withoutFields(
  fields: Readonly<Record<string, FieldValue>>,
  omit: ReadonlySet<string> | undefined,
): Record<string, FieldValue> {
  if (omit === undefined || omit.size === 0) return { ...fields };
  return Object.fromEntries(Object.entries(fields).filter(([name]) => !omit.has(name)));
}
