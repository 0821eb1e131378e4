import { describe, expect, it } from 'vitest';
import {
  RECONCILE_BASELINE,
  RECORD_MISSING,
  UNANCHORED_CHANGE,
  UNANCHORED_DELETE,
  UNANCHORED_RESTORE,
  diffRecords,
  discrepancyEvent,
  recordKey,
  refOfRecordKey,
  sameValue,
} from '../../../src/reconcile/diff.js';
import type { RecordProjection } from '../../../src/reconcile/diff.js';
import type { FetchedRecord } from '../../../connectors/types.js';
import type { FieldValue } from '../../../src/model/change-event.js';
import { changeEventSchema } from '../../../src/model/change-event.js';

const TENANT = 'hubspot:62515';
const AT = '2026-11-26T10:00:00.000Z';

function fetched(
  id: string,
  fields: Record<string, FieldValue>,
  extra: Partial<FetchedRecord> = {},
): FetchedRecord {
  return { ref: { object: 'contact', id }, fields, modifiedAt: AT, ...extra };
}

function projection(
  fields: Record<string, FieldValue>,
  extra: Partial<RecordProjection> = {},
): RecordProjection {
  return { fields: new Map(Object.entries(fields)), deleted: false, lastSeq: 7, ...extra };
}

const ctx = { tenant: TENANT, source: 'hubspot' as const, now: '2026-11-26T11:00:00.000Z' };

describe('diffRecords', () => {
  describe('when the CRM holds what the ledger anchored', () => {
    it('finds nothing, treating null and a never-anchored field alike and 5 like "5"', () => {
      const out = diffRecords({
        fetched: [fetched('1', { email: 'a@x.io', phone: null, age: '5' })],
        projections: new Map([['contact/1', projection({ email: 'a@x.io', age: 5 })]]),
      });
      expect(out).toEqual([]);
    });
  });

  describe('when a field changed with no block', () => {
    it('names the changed and the never-anchored fields, not the ignored ones', () => {
      const out = diffRecords({
        fetched: [
          fetched('1', {
            email: 'new@x.io',
            firstname: 'Ada',
            crm_ledger_status: 'flagged',
            phone: null,
          }),
        ],
        projections: new Map([['contact/1', projection({ email: 'old@x.io', phone: null })]]),
        ignoreFields: new Set(['crm_ledger_status']),
      });
      expect(out).toHaveLength(1);
      expect(out[0]).toMatchObject({
        type: 'unanchored-change',
        changed: ['email'],
        unseen: ['firstname'],
        known: true,
      });
    });

    it('reports a value cleared in the CRM (anchored value, now null)', () => {
      const out = diffRecords({
        fetched: [fetched('1', { phone: null })],
        projections: new Map([['contact/1', projection({ phone: '+44 20' })]]),
      });
      expect(out[0]).toMatchObject({ type: 'unanchored-change', changed: ['phone'] });
    });
  });

  describe('when the ledger never saw the record', () => {
    it('reports it with its non-null fields as unseen', () => {
      const out = diffRecords({
        fetched: [fetched('9', { email: 'n@x.io', phone: null })],
        projections: new Map(),
      });
      expect(out).toEqual([
        {
          type: 'unanchored-change',
          record: fetched('9', { email: 'n@x.io', phone: null }),
          changed: [],
          unseen: ['email'],
          known: false,
        },
      ]);
    });
  });

  describe('when the CRM deleted the record', () => {
    it('reports a delete the ledger never saw, and nothing once it did', () => {
      const rec = fetched('3', { email: 'a@x.io' }, { deleted: true });
      expect(
        diffRecords({ fetched: [rec], projections: new Map([['contact/3', projection({})]]) }),
      ).toEqual([{ type: 'unanchored-delete', record: rec, lastSeq: 7 }]);
      expect(
        diffRecords({
          fetched: [rec],
          projections: new Map([['contact/3', projection({}, { deleted: true })]]),
        }),
      ).toEqual([]);
    });

    it('reports a live record whose last block is a delete as a restore', () => {
      const rec = fetched('3', { email: 'a@x.io' });
      expect(
        diffRecords({
          fetched: [rec],
          projections: new Map([['contact/3', projection({ email: 'a@x.io' }, { deleted: true })]]),
        }),
      ).toEqual([{ type: 'unanchored-restore', record: rec, lastSeq: 7 }]);
    });
  });

  describe('when an expected record is not returned', () => {
    it('reports the ledger’s live records as missing, not its deleted or unknown ones', () => {
      const out = diffRecords({
        fetched: [fetched('1', { email: 'a@x.io' })],
        projections: new Map([
          ['contact/1', projection({ email: 'a@x.io' })],
          ['contact/2', projection({ email: 'b@x.io' }, { lastSeq: 12 })],
          ['contact/4', projection({}, { deleted: true })],
        ]),
        expected: [
          { object: 'contact', id: '1' },
          { object: 'contact', id: '2' },
          { object: 'contact', id: '4' },
          { object: 'contact', id: '5' },
        ],
      });
      expect(out).toEqual([
        { type: 'missing-in-crm', ref: { object: 'contact', id: '2' }, lastSeq: 12 },
      ]);
    });
  });
});

describe('discrepancyEvent', () => {
  describe('when a known record changed', () => {
    const d = {
      type: 'unanchored-change' as const,
      record: fetched('1', { email: 'new@x.io', firstname: 'Ada', crm_ledger_status: 'x' }),
      changed: ['email'],
      unseen: ['firstname'],
      known: true,
    };

    it('is a valid full-state `reconciled` change by the system actor, with the verdict', () => {
      const e = discrepancyEvent(d, { ...ctx, omitFields: new Set(['crm_ledger_status']) });
      expect(changeEventSchema.parse(e.event)).toEqual(e.event);
      expect(e.event).toMatchObject({
        kind: 'reconciled',
        actor: { type: 'system', id: 'hubspot:reconcile' },
        occurredAt: AT,
        fields: { email: 'new@x.io', firstname: 'Ada' },
      });
      expect(e.fullState).toBe(true);
      expect(e.verdicts).toEqual([
        expect.objectContaining({
          type: 'unanchored-change',
          code: UNANCHORED_CHANGE,
          fields: ['email', 'firstname'],
        }),
      ]);
    });

    it('keys it by tenant, record and modifiedAt (a re-run gives the same key)', () => {
      const a = discrepancyEvent(d, ctx);
      const b = discrepancyEvent(d, { ...ctx, now: '2026-11-27T00:00:00.000Z' });
      expect(a.idempotencyKey).toBe(b.idempotencyKey);
      expect(a.idempotencyKey).toContain(TENANT);
      const later = discrepancyEvent(
        { ...d, record: { ...d.record, modifiedAt: '2026-11-26T10:00:01.000Z' } },
        ctx,
      );
      expect(later.idempotencyKey).not.toBe(a.idempotencyKey);
    });

    it('in a full re-scan flags only changed values; never-anchored ones are the baseline', () => {
      const flagged = discrepancyEvent(d, { ...ctx, baseline: true });
      expect(flagged.verdicts?.[0]).toMatchObject({ code: UNANCHORED_CHANGE, fields: ['email'] });
      const base = discrepancyEvent(
        { ...d, changed: [], known: false },
        { ...ctx, baseline: true },
      );
      expect(base.verdicts?.[0]).toMatchObject({
        type: 'info',
        code: RECONCILE_BASELINE,
        fields: ['firstname'],
      });
    });
  });

  describe('when a record was deleted, restored or is missing', () => {
    it('queues a delete (or restore) with its code, keyed by the ledger’s last seq', () => {
      const del = discrepancyEvent(
        {
          type: 'unanchored-delete',
          record: fetched('3', { email: 'a' }, { deleted: true }),
          lastSeq: 4,
        },
        ctx,
      );
      expect(del.event).toMatchObject({ kind: 'delete', fields: {}, occurredAt: AT });
      expect(del.verdicts?.[0]?.code).toBe(UNANCHORED_DELETE);
      expect(del.fullState).toBeUndefined();
      const restore = discrepancyEvent(
        { type: 'unanchored-restore', record: fetched('3', { email: 'a' }), lastSeq: 5 },
        ctx,
      );
      expect(restore.event).toMatchObject({ kind: 'restore', fields: { email: 'a' } });
      expect(restore.verdicts?.[0]?.code).toBe(UNANCHORED_RESTORE);
      const missing = discrepancyEvent(
        { type: 'missing-in-crm', ref: { object: 'contact', id: '8' }, lastSeq: 9 },
        ctx,
      );
      expect(missing.event).toMatchObject({ kind: 'delete', occurredAt: ctx.now, recordId: '8' });
      expect(missing.verdicts?.[0]?.code).toBe(RECORD_MISSING);
      for (const e of [del, restore, missing])
        expect(changeEventSchema.parse(e.event)).toEqual(e.event);
      expect(
        new Set([del.idempotencyKey, restore.idempotencyKey, missing.idempotencyKey]).size,
      ).toBe(3);
    });
  });
});

describe('record keys', () => {
  it('round-trips and refuses what is not one', () => {
    expect(refOfRecordKey(recordKey({ object: 'deal', id: 'a/b' }))).toEqual({
      object: 'deal',
      id: 'a/b',
    });
    expect(refOfRecordKey('nokey')).toBeUndefined();
    expect(refOfRecordKey('/1')).toBeUndefined();
    expect(refOfRecordKey('contact/')).toBeUndefined();
  });

  it('compares values loosely but not null with a value', () => {
    expect(sameValue(true, 'true')).toBe(true);
    expect(sameValue(null, undefined)).toBe(true);
    expect(sameValue('', null)).toBe(false);
    expect(sameValue('a', 'b')).toBe(false);
  });
});
