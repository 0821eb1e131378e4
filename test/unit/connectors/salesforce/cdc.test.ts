import { describe, expect, it } from 'vitest';
import {
  CRM_LEDGER_ACTOR,
  cdcToEvents,
  changeOriginClient,
} from '../../../../connectors/salesforce/cdc-event.js';
import type { CdcResult } from '../../../../connectors/salesforce/cdc-event.js';
import { changeEventSchema } from '../../../../src/model/change-event.js';

const TENANT = 'salesforce:00D5g000004ZxQ1EAK';

/** crm-protocols.md §5.3: the official CometD sample (account update with enrichment fields). */
const OFFICIAL_UPDATE = {
  schema: 'I8b-dYxvxs5wOtCBr4qsew',
  payload: {
    LastModifiedDate: '2020-12-15T23:09:18.000Z',
    Industry: 'Biotechnology',
    External_Account_ID__c: '1ABC',
    Fax: '4155551212',
    ChangeEventHeader: {
      commitNumber: 74487681550,
      commitUser: '005RM000001hv4SYAQ',
      sequenceNumber: 1,
      entityName: 'Account',
      changeType: 'UPDATE',
      changedFields: ['Fax', 'LastModifiedDate'],
      changeOrigin: 'com/salesforce/api/soap/51.0;client=SfdcInternalAPI/',
      transactionKey: '0005e192-9e62-2554-3880-3c3718bd6308',
      commitTimestamp: 1608073758000,
      recordIds: ['001RM000004UF9sYAG'],
    },
  },
  event: { replayId: 12 },
};

/** The CDC guide's compound-field sample (cdc_subscribe_compound_fields.htm), CometD shape. */
const COMPOUND_CREATE = {
  schema: 'Jx8Hz9ElkIUaBf-heF1ShA',
  payload: {
    Name: 'Acme',
    Type: null,
    BillingAddress: {
      Street: '415 Mission Street',
      City: 'San Francisco',
      State: 'CA',
      PostalCode: '94105',
      Country: 'United States',
    },
    ChangeEventHeader: {
      entityName: 'Account',
      recordIds: ['0015f00002JUXA8AAP'],
      changeType: 'CREATE',
      changeOrigin: 'com/salesforce/api/soap/60.0;client=SfdcInternalAPI/',
      transactionKey: '00006bec-ce66-0611-9018-30a98446c9f2',
      sequenceNumber: 1,
      commitTimestamp: 1714156685000,
      commitNumber: 1100670838951,
      commitUser: '0055f000005mc66AAA',
      nulledFields: [],
      diffFields: [],
      changedFields: [],
    },
  },
  event: { replayId: 40 },
};

function header(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    entityName: 'Contact',
    recordIds: ['0035g0000000001AAA'],
    changeType: 'UPDATE',
    changeOrigin: 'com/salesforce/api/rest/62.0;client=SomeApp',
    transactionKey: 'a1b2c3d4-0000-4000-8000-000000000001',
    sequenceNumber: 1,
    commitTimestamp: 1767355200000,
    commitNumber: 1,
    commitUser: '0055g0000000002AAA',
    changedFields: [],
    nulledFields: [],
    diffFields: [],
    ...overrides,
  };
}

function ok(result: CdcResult): Extract<CdcResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.reason}`);
  for (const { event } of result.events)
    expect(changeEventSchema.safeParse(event).success).toBe(true);
  return result;
}

describe('cdcToEvents', () => {
  describe('when given the official CometD update sample', () => {
    it('gives one update event carrying the changed and enrichment fields', () => {
      const result = ok(cdcToEvents(OFFICIAL_UPDATE, TENANT));
      expect(result.replayId).toBe(12);
      expect(result.gap).toBeUndefined();
      expect(result.events).toHaveLength(1);
      const [parsed] = result.events;
      expect(parsed?.event).toMatchObject({
        tenant: TENANT,
        source: 'salesforce',
        object: 'account',
        recordId: '001RM000004UF9sYAG',
        kind: 'update',
        eventId: '0005e192-9e62-2554-3880-3c3718bd6308:1:001RM000004UF9sYAG',
        actor: { type: 'user', id: 'salesforce:user:005RM000001hv4SYAQ' },
        occurredAt: '2020-12-15T23:09:18.000Z',
        fields: {
          LastModifiedDate: '2020-12-15T23:09:18.000Z',
          Industry: 'Biotechnology',
          External_Account_ID__c: '1ABC',
          Fax: '4155551212',
        },
      });
      expect(parsed?.idempotencyKey).toBe(
        'salesforce|00D5g000004ZxQ1EAK|cdc:0005e192-9e62-2554-3880-3c3718bd6308:1:001RM000004UF9sYAG',
      );
      expect(parsed?.fullState).toBeUndefined();
    });

    it('reads the same message wrapped as a raw Bayeux message', () => {
      const wrapped = { channel: '/data/ChangeEvents', data: OFFICIAL_UPDATE };
      expect(ok(cdcToEvents(wrapped, TENANT)).events).toEqual(
        ok(cdcToEvents(OFFICIAL_UPDATE, TENANT)).events,
      );
    });
  });

  describe('when a create carries a compound address', () => {
    it('flattens it to the record field names and keeps explicit nulls', () => {
      const [parsed] = ok(cdcToEvents(COMPOUND_CREATE, TENANT)).events;
      expect(parsed?.event.kind).toBe('create');
      expect(parsed?.event.fields).toEqual({
        Name: 'Acme',
        Type: null,
        BillingStreet: '415 Mission Street',
        BillingCity: 'San Francisco',
        BillingState: 'CA',
        BillingPostalCode: '94105',
        BillingCountry: 'United States',
      });
    });

    it('flattens a Name compound to FirstName/LastName', () => {
      const message = {
        payload: {
          Name: { FirstName: 'Ann', LastName: 'Lee' },
          ChangeEventHeader: header({ changeType: 'CREATE' }),
        },
        event: { replayId: 3 },
      };
      const [parsed] = ok(cdcToEvents(message, TENANT)).events;
      expect(parsed?.event.fields).toEqual({ FirstName: 'Ann', LastName: 'Lee' });
    });
  });

  describe('when one event names several records', () => {
    it('gives one event per record with the same fields and distinct ids and keys', () => {
      const ids = ['0035g0000000001AAA', '0035g0000000002AAA', '0035g0000000003AAA'];
      const message = {
        payload: {
          Title: 'CFO',
          ChangeEventHeader: header({
            recordIds: ids,
            changedFields: ['Title', 'LastModifiedDate'],
          }),
        },
        event: { replayId: 7 },
      };
      const { events } = ok(cdcToEvents(message, TENANT));
      expect(events.map((e) => e.event.recordId)).toEqual(ids);
      expect(new Set(events.map((e) => e.idempotencyKey)).size).toBe(3);
      expect(new Set(events.map((e) => e.event.eventId)).size).toBe(3);
      for (const e of events) expect(e.event.fields).toEqual({ Title: 'CFO' });
    });
  });

  describe('when fields were set to null', () => {
    it('records nulledFields as null, including compound parts', () => {
      const message = {
        payload: {
          LastModifiedDate: '2026-01-02T12:00:00.000Z',
          ChangeEventHeader: header({
            changedFields: ['Email', 'Name.FirstName', 'LastModifiedDate'],
            nulledFields: ['Email', 'Name.FirstName'],
          }),
        },
        event: { replayId: 8 },
      };
      const [parsed] = ok(cdcToEvents(message, TENANT)).events;
      expect(parsed?.event.fields).toEqual({
        LastModifiedDate: '2026-01-02T12:00:00.000Z',
        Email: null,
        FirstName: null,
      });
    });
  });

  describe('when the change was our own write-back', () => {
    it('gives actor crm-ledger whoever the commit user is', () => {
      const message = {
        payload: {
          CRM_Ledger_Status__c: 'duplicate (block #4)',
          ChangeEventHeader: header({
            changeOrigin: 'com/salesforce/api/rest/62.0;client=crm-ledger',
          }),
        },
        event: { replayId: 9 },
      };
      const [parsed] = ok(cdcToEvents(message, TENANT)).events;
      expect(parsed?.event.actor).toEqual(CRM_LEDGER_ACTOR);
    });

    it('does not mistake a client whose name only starts with ours', () => {
      expect(changeOriginClient('com/salesforce/api/rest/62.0;client=crm-ledger-evil')).toBe(
        'crm-ledger-evil',
      );
      expect(changeOriginClient('com/salesforce/api/soap/51.0;client=SfdcInternalAPI/')).toBe(
        'SfdcInternalAPI',
      );
      expect(changeOriginClient('')).toBeUndefined();
    });
  });

  describe('when the change type is DELETE or UNDELETE', () => {
    it('maps them to delete and restore', () => {
      const del = {
        payload: { ChangeEventHeader: header({ changeType: 'DELETE' }) },
        event: { replayId: 1 },
      };
      const undel = {
        payload: { ChangeEventHeader: header({ changeType: 'UNDELETE' }) },
        event: { replayId: 2 },
      };
      expect(ok(cdcToEvents(del, TENANT)).events[0]?.event.kind).toBe('delete');
      expect(ok(cdcToEvents(del, TENANT)).events[0]?.event.fields).toEqual({});
      expect(ok(cdcToEvents(undel, TENANT)).events[0]?.event.kind).toBe('restore');
    });
  });

  describe('when the event is a gap', () => {
    it('gives no events and the records to re-read', () => {
      const message = {
        payload: {
          ChangeEventHeader: header({
            changeType: 'GAP_UPDATE',
            recordIds: ['0035g0000000001AAA', '0035g0000000002AAA'],
          }),
        },
        event: { replayId: 20 },
      };
      const result = ok(cdcToEvents(message, TENANT));
      expect(result.events).toEqual([]);
      expect(result.gap?.refs).toEqual([
        { object: 'contact', id: '0035g0000000001AAA' },
        { object: 'contact', id: '0035g0000000002AAA' },
      ]);
      expect(result.gap?.header.changeType).toBe('GAP_UPDATE');
    });

    it('gives no record refs for an overflow (re-read the object by time)', () => {
      const message = {
        payload: {
          ChangeEventHeader: header({
            changeType: 'GAP_OVERFLOW',
            recordIds: ['000000000000000AAA'],
          }),
        },
        event: { replayId: 21 },
      };
      const result = ok(cdcToEvents(message, TENANT));
      expect(result.events).toEqual([]);
      expect(result.gap?.refs).toEqual([]);
      expect(result.gap?.header.changeType).toBe('GAP_OVERFLOW');
    });
  });

  describe('when a field arrives as a diff', () => {
    it('anchors the other fields and asks for the record to be re-read', () => {
      const message = {
        payload: {
          Description: { diff: '--- \n+++ abc\n@@ -1 +1 @@\n-a\n+b' },
          Title: 'CEO',
          ChangeEventHeader: header({
            changedFields: ['Description', 'Title'],
            diffFields: ['Description'],
          }),
        },
        event: { replayId: 30 },
      };
      const result = ok(cdcToEvents(message, TENANT));
      expect(result.events[0]?.event.fields).toEqual({ Title: 'CEO' });
      expect(result.gap?.refs).toEqual([{ object: 'contact', id: '0035g0000000001AAA' }]);
    });
  });

  describe('when the message is malformed', () => {
    it.each([
      ['no header', { payload: {}, event: { replayId: 1 } }],
      ['no replay id', { payload: { ChangeEventHeader: header({}) } }],
      [
        'an unknown change type',
        {
          payload: { ChangeEventHeader: header({ changeType: 'SNAPSHOT' }) },
          event: { replayId: 1 },
        },
      ],
      [
        'no record ids',
        { payload: { ChangeEventHeader: header({ recordIds: [] }) }, event: { replayId: 1 } },
      ],
      [
        'a reserved field name',
        { payload: { constructor: 'x', ChangeEventHeader: header({}) }, event: { replayId: 1 } },
      ],
      ['not an object', 'hello'],
    ])('rejects %s with CDC_MESSAGE_INVALID', (_name, message) => {
      const result = cdcToEvents(message, TENANT);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.code).toBe('CDC_MESSAGE_INVALID');
    });

    it('keeps the replay id of a bad message so the subscriber can move past it', () => {
      const result = cdcToEvents({ payload: {}, event: { replayId: 55 } }, TENANT);
      expect(result).toMatchObject({ ok: false, replayId: 55 });
    });

    it('rejects a tenant that is not a Salesforce tenant', () => {
      expect(cdcToEvents(OFFICIAL_UPDATE, 'hubspot:123').ok).toBe(false);
    });
  });
});
