import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ParseResult, ParsedEvent } from '../../../../connectors/types.js';
import {
  HUBSPOT_MAX_BATCH_EVENTS,
  parseHubspotBatch,
} from '../../../../connectors/hubspot/parse.js';
import { changeEventSchema } from '../../../../src/model/change-event.js';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../../../connectors/hubspot/fixtures/${name}`, import.meta.url));

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

/** A complete contact.creation event; override or drop (`undefined`) fields per test. */
function hubspotEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const event: Record<string, unknown> = {
    eventId: 100,
    subscriptionId: 25,
    portalId: 33,
    appId: 1160452,
    occurredAt: 1_700_000_000_000,
    subscriptionType: 'contact.creation',
    attemptNumber: 0,
    objectId: 501,
    changeSource: 'CRM_UI',
    sourceId: 'userId:42',
    ...overrides,
  };
  for (const [key, value] of Object.entries(event)) {
    if (value === undefined) delete event[key];
  }
  return event;
}

/** Parses, asserts success, and checks every event against the ledger's model. */
function parseOk(body: Buffer): ParsedEvent[] {
  const result = parseHubspotBatch(body);
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.reason}`);
  for (const { event } of result.events) {
    expect(changeEventSchema.safeParse(event).success).toBe(true);
  }
  return result.events;
}

function parseOne(event: Record<string, unknown>): ParsedEvent {
  const [only, ...rest] = parseOk(json([event]));
  expect(rest).toHaveLength(0);
  if (only === undefined) throw new Error('no event parsed');
  return only;
}

function failureOf(result: ParseResult): { code: string; path: string | undefined } {
  if (result.ok) return { code: 'OK', path: undefined };
  expect(result.reason).not.toBe('');
  return { code: result.code, path: result.path };
}

describe('parseHubspotBatch', () => {
  describe('when given the official webhooks guide sample (§1.5)', () => {
    const events = parseOk(fixture('webhooks-guide-sample.json'));

    it('accepts the legacy `eventType` name and normalises both events', () => {
      expect(events.map(({ event }) => event)).toEqual([
        {
          tenant: 'hubspot:33',
          source: 'hubspot',
          object: 'contact',
          recordId: '1246965',
          eventId: '3816279340',
          kind: 'update',
          actor: { type: 'academy', id: 'hubspot:academy:unknown' },
          occurredAt: '2016-05-02T19:11:47.945Z',
          fields: { lifecyclestage: 'subscriber' },
          raw: expect.objectContaining({ eventType: 'contact.propertyChange', objectId: 1246965 }),
        },
        {
          tenant: 'hubspot:33',
          source: 'hubspot',
          object: 'contact',
          recordId: '1246978',
          eventId: '3816279480',
          kind: 'create',
          actor: { type: 'import', id: 'hubspot:import:unknown' },
          occurredAt: '2016-05-02T19:11:47.945Z',
          fields: {},
          raw: expect.objectContaining({ eventType: 'contact.creation', objectId: 1246978 }),
        },
      ]);
    });

    it('builds idempotency keys from the event identity', () => {
      expect(events.map((e) => e.idempotencyKey)).toEqual([
        'hubspot|hubspot:33|25|1246965|3816279340|1462216307945|contact.propertyChange|lifecyclestage',
        'hubspot|hubspot:33|22|1246978|3816279480|1462216307945|contact.creation|',
      ]);
    });
  });

  describe('when given the official Sensitive Data sample (§1.5)', () => {
    it('attributes the change to the HubSpot user and keeps "REDACTED" as the value', () => {
      const [parsed] = parseOk(fixture('sensitive-data-sample.json'));
      expect(parsed?.event).toMatchObject({
        tenant: 'hubspot:891472211',
        object: 'contact',
        recordId: '847297356',
        eventId: '3029365631',
        kind: 'update',
        actor: { type: 'user', id: 'hubspot:user:882761034' },
        occurredAt: '2024-05-08T21:18:21.896Z',
        fields: { passport_number: 'REDACTED' },
      });
    });
  });

  describe('when given the official v1 signature example body (§2.4)', () => {
    it('normalises a contact.creation from the CRM', () => {
      const [parsed] = parseOk(fixture('signature-example-contact-creation.json'));
      expect(parsed?.event).toMatchObject({
        tenant: 'hubspot:62515',
        object: 'contact',
        recordId: '123',
        eventId: '1',
        kind: 'create',
        actor: { type: 'crm', id: 'hubspot:crm:unknown' },
        occurredAt: '2019-07-26T04:00:00.000Z',
        fields: {},
      });
    });
  });

  describe('when the raw event is kept', () => {
    it('is the original event object, unknown fields included', () => {
      const original = hubspotEvent({ changeFlag: 'NEW', somethingNew: { nested: [1, 2] } });
      expect(parseOne(original).event.raw).toEqual(original);
    });
  });

  describe('when given every legacy subscription type', () => {
    const cases: [string, string, string][] = [];
    const actions: [string, string][] = [
      ['creation', 'create'],
      ['propertyChange', 'update'],
      ['deletion', 'delete'],
      ['merge', 'merge'],
      ['restore', 'restore'],
      ['associationChange', 'update'],
    ];
    for (const object of ['contact', 'company', 'deal']) {
      for (const [action, kind] of actions) cases.push([`${object}.${action}`, object, kind]);
    }
    cases.push(['contact.privacyDeletion', 'contact', 'delete']);

    it.each(cases)('maps %s to %s/%s', (subscriptionType, object, kind) => {
      const parsed = parseOne(
        hubspotEvent({ subscriptionType, propertyName: 'dealstage', propertyValue: 'won' }),
      );
      expect(parsed.event.object).toBe(object);
      expect(parsed.event.kind).toBe(kind);
    });
  });

  describe('when given generic object.* subscription types', () => {
    const cases: [string, string, string, string][] = [];
    for (const [objectTypeId, object] of [
      ['0-1', 'contact'],
      ['0-2', 'company'],
      ['0-3', 'deal'],
    ] as const) {
      for (const [action, kind] of [
        ['creation', 'create'],
        ['propertyChange', 'update'],
        ['deletion', 'delete'],
        ['merge', 'merge'],
        ['restore', 'restore'],
      ] as const) {
        cases.push([`object.${action}`, objectTypeId, object, kind]);
      }
    }

    it.each(cases)('maps %s with objectTypeId %s to %s/%s', (type, objectTypeId, object, kind) => {
      const parsed = parseOne(
        hubspotEvent({
          subscriptionType: type,
          objectTypeId,
          propertyName: 'amount',
          propertyValue: '10',
        }),
      );
      expect(parsed.event.object).toBe(object);
      expect(parsed.event.kind).toBe(kind);
    });

    it('maps object.associationChange using fromObjectTypeId', () => {
      const parsed = parseOne(
        hubspotEvent({
          subscriptionType: 'object.associationChange',
          objectId: undefined,
          fromObjectId: 501,
          toObjectId: 777,
          fromObjectTypeId: '0-3',
          toObjectTypeId: '0-1',
          associationTypeId: 3,
          associationCategory: 'HUBSPOT_DEFINED',
          associationRemoved: false,
        }),
      );
      expect(parsed.event).toMatchObject({
        object: 'deal',
        recordId: '501',
        kind: 'update',
        fields: {
          fromObjectId: '501',
          toObjectId: '777',
          fromObjectTypeId: '0-3',
          toObjectTypeId: '0-1',
          associationTypeId: 3,
          associationCategory: 'HUBSPOT_DEFINED',
          associationRemoved: false,
        },
      });
    });
  });

  describe('when the event is a property change', () => {
    it('records { [propertyName]: propertyValue }', () => {
      const parsed = parseOne(
        hubspotEvent({
          subscriptionType: 'deal.propertyChange',
          propertyName: 'amount',
          propertyValue: '1500.00',
        }),
      );
      expect(parsed.event.fields).toEqual({ amount: '1500.00' });
    });

    it('records a cleared value as an empty string and a missing value as null', () => {
      const cleared = hubspotEvent({
        subscriptionType: 'contact.propertyChange',
        propertyName: 'phone',
        propertyValue: '',
      });
      expect(parseOne(cleared).event.fields).toEqual({ phone: '' });
      const missing = hubspotEvent({
        subscriptionType: 'contact.propertyChange',
        propertyName: 'phone',
      });
      expect(parseOne(missing).event.fields).toEqual({ phone: null });
    });

    it('returns EVENT_INVALID without a propertyName', () => {
      const result = parseHubspotBatch(
        json([hubspotEvent({ subscriptionType: 'contact.propertyChange' })]),
      );
      expect(failureOf(result)).toEqual({ code: 'EVENT_INVALID', path: '[0].propertyName' });
    });

    it.each(['constructor', 'prototype', '__proto__', ''])(
      'returns EVENT_INVALID for the property name %j',
      (propertyName) => {
        const result = parseHubspotBatch(
          json([
            hubspotEvent({
              subscriptionType: 'contact.propertyChange',
              propertyName,
              propertyValue: 'x',
            }),
          ]),
        );
        expect(failureOf(result)).toEqual({ code: 'EVENT_INVALID', path: '[0].propertyName' });
      },
    );

    it('returns EVENT_INVALID for a value over the model limit', () => {
      const result = parseHubspotBatch(
        json([
          hubspotEvent({
            subscriptionType: 'contact.propertyChange',
            propertyName: 'notes',
            propertyValue: 'x'.repeat(65_537),
          }),
        ]),
      );
      expect(failureOf(result)).toEqual({ code: 'EVENT_INVALID', path: '[0].propertyValue' });
    });
  });

  describe('when the event is a merge', () => {
    it('records the merged ids', () => {
      const parsed = parseOne(
        hubspotEvent({
          subscriptionType: 'contact.merge',
          objectId: 100,
          primaryObjectId: 100,
          mergedObjectIds: [200, 300],
          newObjectId: 400,
          numberOfPropertiesMoved: 47,
        }),
      );
      expect(parsed.event).toMatchObject({
        kind: 'merge',
        recordId: '100',
        fields: {
          primaryObjectId: '100',
          mergedObjectIds: '200,300',
          newObjectId: '400',
          numberOfPropertiesMoved: 47,
        },
      });
    });

    it('treats a null newObjectId as absent', () => {
      const parsed = parseOne(
        hubspotEvent({ subscriptionType: 'deal.merge', mergedObjectIds: [9], newObjectId: null }),
      );
      expect(parsed.event.fields).toEqual({ mergedObjectIds: '9' });
    });
  });

  describe('when the event is an association change', () => {
    const association = {
      subscriptionType: 'contact.associationChange',
      associationType: 'CONTACT_TO_COMPANY',
      fromObjectId: 501,
      toObjectId: 9001,
      associationRemoved: true,
      isPrimaryAssociation: false,
    };

    it('records the association as an update', () => {
      const parsed = parseOne(hubspotEvent(association));
      expect(parsed.event).toMatchObject({
        kind: 'update',
        recordId: '501',
        fields: {
          associationType: 'CONTACT_TO_COMPANY',
          fromObjectId: '501',
          toObjectId: '9001',
          associationRemoved: true,
          isPrimaryAssociation: false,
        },
      });
    });

    it('takes the record from fromObjectId when there is no objectId (as real payloads send it)', () => {
      const parsed = parseOne(hubspotEvent({ ...association, objectId: undefined }));
      expect(parsed.event.recordId).toBe('501');
    });

    it('returns EVENT_INVALID with neither objectId nor fromObjectId', () => {
      const event = hubspotEvent({ ...association, objectId: undefined, fromObjectId: undefined });
      expect(failureOf(parseHubspotBatch(json([event])))).toEqual({
        code: 'EVENT_INVALID',
        path: '[0].objectId',
      });
    });

    it('gives the primary and non-primary twins different idempotency keys', () => {
      const events = parseOk(
        json([
          hubspotEvent({ ...association, isPrimaryAssociation: true }),
          hubspotEvent({ ...association, isPrimaryAssociation: false }),
        ]),
      );
      const [a, b] = events.map((e) => e.idempotencyKey);
      expect(a).not.toBe(b);
    });
  });

  describe('when the event is a privacy deletion', () => {
    it('records a delete with privacyDeletion: true', () => {
      const parsed = parseOne(hubspotEvent({ subscriptionType: 'contact.privacyDeletion' }));
      expect(parsed.event).toMatchObject({ kind: 'delete', fields: { privacyDeletion: true } });
    });
  });

  describe('when the subscription type is unknown', () => {
    it.each([
      ['ticket.creation', {}, 'ticket'],
      ['line_item.propertyChange', { propertyName: 'price', propertyValue: '1' }, 'line_item'],
      ['conversation.newMessage', { messageId: 'abc', messageType: 'MESSAGE' }, 'conversation'],
      ['contact.somethingNew', {}, 'contact'],
      ['company.privacyDeletion', {}, 'company'],
      ['object.creation', { objectTypeId: '0-5' }, 'ticket'],
      ['object.creation', { objectTypeId: '2-123456' }, 'object_type_2_123456'],
      ['object.creation', {}, 'unknown'],
      ['object.privacyDeletion', { objectTypeId: '0-1' }, 'contact'],
      ['noDotAtAll', {}, 'unknown'],
      ['Weird Thing.creation', {}, 'unknown'],
    ])('keeps %s as kind "other" with the raw event', (subscriptionType, extra, object) => {
      const original = hubspotEvent({ subscriptionType, ...extra });
      const parsed = parseOne(original);
      expect(parsed.event).toMatchObject({
        kind: 'other',
        object,
        fields: { $raw: JSON.stringify(original) },
        raw: original,
      });
    });
  });

  describe('when the actor is not a HubSpot user', () => {
    it.each([
      [
        { changeSource: 'INTEGRATION', sourceId: '1160452' },
        'integration',
        'hubspot:integration:1160452',
      ],
      [{ changeSource: 'API', sourceId: undefined }, 'api', 'hubspot:api:unknown'],
      [{ changeSource: undefined, sourceId: undefined }, 'system', 'hubspot:system:unknown'],
      [{ changeSource: '', sourceId: '' }, 'system', 'hubspot:system:unknown'],
      [{ changeSource: null, sourceId: null }, 'system', 'hubspot:system:unknown'],
      [{ changeSource: 'CRM_UI', sourceId: 'userId:' }, 'crm_ui', 'hubspot:crm_ui:userId:'],
    ])('attributes %j to the change source', (source, type, id) => {
      expect(parseOne(hubspotEvent(source)).event.actor).toEqual({ type, id });
    });
  });

  describe('when an identifier is missing', () => {
    it.each(['portalId', 'objectId', 'eventId', 'subscriptionType', 'occurredAt'])(
      'returns EVENT_INVALID naming [3].%s and accepts nothing',
      (field) => {
        const batch = [0, 1, 2, 3, 4].map((i) =>
          hubspotEvent({ eventId: i, ...(i === 3 ? { [field]: undefined } : {}) }),
        );
        const result = parseHubspotBatch(json(batch));
        expect(result.ok).toBe(false);
        expect(failureOf(result)).toEqual({ code: 'EVENT_INVALID', path: `[3].${field}` });
      },
    );

    it('names the first bad event when several are bad', () => {
      const batch = [
        hubspotEvent(),
        hubspotEvent({ eventId: undefined }),
        hubspotEvent({ portalId: undefined }),
      ];
      expect(failureOf(parseHubspotBatch(json(batch))).path).toBe('[1].eventId');
    });
  });

  describe('when an identifier has the wrong type', () => {
    it.each([
      ['objectId', '123'],
      ['objectId', 'abc'],
      ['objectId', 1.5],
      ['objectId', -1],
      ['objectId', 2 ** 53 + 2],
      ['objectId', true],
      ['portalId', '33'],
      ['eventId', null],
      ['occurredAt', '2024-01-01T00:00:00Z'],
      ['occurredAt', 1e20],
      ['subscriptionType', 42],
      ['subscriptionType', ''],
    ])('returns EVENT_INVALID for %s = %j', (field, value) => {
      const result = parseHubspotBatch(json([hubspotEvent({ [field]: value })]));
      expect(failureOf(result)).toEqual({ code: 'EVENT_INVALID', path: `[0].${field}` });
    });

    it('returns EVENT_INVALID when subscriptionType and eventType disagree', () => {
      const event = hubspotEvent({ eventType: 'contact.deletion' });
      expect(failureOf(parseHubspotBatch(json([event])))).toEqual({
        code: 'EVENT_INVALID',
        path: '[0].eventType',
      });
    });

    it('accepts subscriptionType and eventType when they agree', () => {
      const parsed = parseOne(hubspotEvent({ eventType: 'contact.creation' }));
      expect(parsed.event.kind).toBe('create');
    });
  });

  describe('when an element is not an object', () => {
    it.each([[1], [null], ['x'], [[]]])('returns EVENT_INVALID at [1] for %j', (element) => {
      const result = parseHubspotBatch(json([hubspotEvent(), element]));
      expect(failureOf(result)).toEqual({ code: 'EVENT_INVALID', path: '[1]' });
    });
  });

  describe('when a detail field has the wrong type', () => {
    it.each([
      ['mergedObjectIds', 'not-an-array', 'contact.merge'],
      ['associationRemoved', 'yes', 'contact.associationChange'],
      ['sourceId', 42, 'contact.creation'],
    ])('returns EVENT_INVALID naming %s', (field, value, subscriptionType) => {
      const result = parseHubspotBatch(json([hubspotEvent({ subscriptionType, [field]: value })]));
      expect(failureOf(result)).toEqual({ code: 'EVENT_INVALID', path: `[0].${field}` });
    });
  });

  describe('when the batch size is at the limit', () => {
    it(`accepts ${HUBSPOT_MAX_BATCH_EVENTS} events`, () => {
      const batch = Array.from({ length: 100 }, (_, i) =>
        hubspotEvent({ eventId: i, objectId: i }),
      );
      expect(parseOk(json(batch))).toHaveLength(100);
    });

    it('returns BATCH_TOO_LARGE for 101 events', () => {
      const batch = Array.from({ length: 101 }, (_, i) => hubspotEvent({ eventId: i }));
      expect(failureOf(parseHubspotBatch(json(batch))).code).toBe('BATCH_TOO_LARGE');
    });

    it('accepts an empty array', () => {
      expect(parseOk(json([]))).toEqual([]);
    });
  });

  describe('when the body is not a JSON array', () => {
    it.each([
      ['malformed JSON', '[{"eventId":1,'],
      ['an empty body', ''],
      ['an object', '{"eventId":1}'],
      ['a string', '"[]"'],
      ['null', 'null'],
      ['a number', '42'],
      ['trailing garbage', '[] []'],
    ])('returns PAYLOAD_MALFORMED for %s', (_name, body) => {
      expect(failureOf(parseHubspotBatch(Buffer.from(body, 'utf8'))).code).toBe(
        'PAYLOAD_MALFORMED',
      );
    });

    it('returns PAYLOAD_MALFORMED for invalid UTF-8', () => {
      const body = Buffer.concat([
        Buffer.from('[{"propertyValue":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}]'),
      ]);
      expect(failureOf(parseHubspotBatch(body)).code).toBe('PAYLOAD_MALFORMED');
    });

    it('never throws on deeply nested input', () => {
      const body = Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
      expect(failureOf(parseHubspotBatch(body)).code).not.toBe('OK');
    });
  });

  describe('when the body carries a prototype-poisoning key', () => {
    it.each([
      ['__proto__ on an event', '[{"__proto__":{"polluted":true},"eventId":1}]'],
      ['__proto__ nested', '[{"eventId":1,"extra":{"a":{"__proto__":{"x":1}}}}]'],
      ['constructor on an event', '[{"constructor":{"prototype":{"x":1}},"eventId":1}]'],
      ['escaped __proto__', '[{"\\u005f_proto__":{"x":1}}]'],
    ])('returns PAYLOAD_MALFORMED for %s', (_name, body) => {
      const result = parseHubspotBatch(Buffer.from(body, 'utf8'));
      expect(failureOf(result).code).toBe('PAYLOAD_MALFORMED');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  describe('when events of one record arrive out of order', () => {
    it('puts the creation before property changes at the same occurredAt', () => {
      const t = 1_700_000_000_000;
      const events = parseOk(
        json([
          hubspotEvent({
            eventId: 1,
            objectId: 7,
            occurredAt: t,
            subscriptionType: 'contact.propertyChange',
            propertyName: 'email',
            propertyValue: 'a@example.com',
          }),
          hubspotEvent({
            eventId: 2,
            objectId: 8,
            occurredAt: t,
            subscriptionType: 'contact.propertyChange',
            propertyName: 'email',
            propertyValue: 'b@example.com',
          }),
          hubspotEvent({
            eventId: 3,
            objectId: 7,
            occurredAt: t,
            subscriptionType: 'contact.creation',
          }),
          hubspotEvent({
            eventId: 4,
            objectId: 8,
            occurredAt: t,
            subscriptionType: 'contact.creation',
          }),
        ]),
      );
      expect(events.map(({ event }) => `${event.recordId}:${event.kind}`)).toEqual([
        '7:create',
        '8:create',
        '7:update',
        '8:update',
      ]);
    });

    it('orders one record by occurredAt, deletion last, other records keeping their slots', () => {
      const t = 1_700_000_000_000;
      const events = parseOk(
        json([
          hubspotEvent({
            eventId: 1,
            objectId: 7,
            occurredAt: t,
            subscriptionType: 'contact.deletion',
          }),
          hubspotEvent({
            eventId: 2,
            objectId: 9,
            occurredAt: t + 5,
            subscriptionType: 'deal.creation',
          }),
          hubspotEvent({
            eventId: 3,
            objectId: 7,
            occurredAt: t,
            subscriptionType: 'contact.propertyChange',
            propertyName: 'x',
            propertyValue: '1',
          }),
          hubspotEvent({
            eventId: 4,
            objectId: 7,
            occurredAt: t - 10,
            subscriptionType: 'contact.creation',
          }),
        ]),
      );
      expect(
        events.map(({ event }) => `${event.object}:${event.recordId}:${event.eventId}`),
      ).toEqual(['contact:7:4', 'deal:9:2', 'contact:7:3', 'contact:7:1']);
    });

    it('does not mix up records of different objects or portals that share an id', () => {
      const t = 1_700_000_000_000;
      const events = parseOk(
        json([
          hubspotEvent({
            eventId: 1,
            objectId: 7,
            occurredAt: t,
            subscriptionType: 'company.propertyChange',
            propertyName: 'x',
            propertyValue: '1',
          }),
          hubspotEvent({
            eventId: 2,
            objectId: 7,
            portalId: 34,
            occurredAt: t,
            subscriptionType: 'contact.propertyChange',
            propertyName: 'x',
            propertyValue: '1',
          }),
          hubspotEvent({
            eventId: 3,
            objectId: 7,
            occurredAt: t,
            subscriptionType: 'contact.creation',
          }),
        ]),
      );
      expect(events.map(({ event }) => event.eventId)).toEqual(['1', '2', '3']);
    });
  });

  describe('when building idempotency keys', () => {
    const key = (overrides: Record<string, unknown>) =>
      parseOne(hubspotEvent(overrides)).idempotencyKey;

    it('gives a retry (another attemptNumber) the same key', () => {
      expect(key({ attemptNumber: 3 })).toBe(key({ attemptNumber: 0 }));
    });

    it.each([
      ['subscriptionId', { subscriptionId: 26 }],
      ['objectId', { objectId: 502 }],
      ['eventId', { eventId: 101 }],
      ['occurredAt', { occurredAt: 1_700_000_000_001 }],
      ['subscriptionType', { subscriptionType: 'contact.deletion' }],
      ['portal', { portalId: 34 }],
    ])('changes the key when %s differs', (_name, overrides) => {
      expect(key(overrides)).not.toBe(key({}));
    });

    it('changes the key when the property differs, for the same eventId', () => {
      const a = key({
        subscriptionType: 'contact.propertyChange',
        propertyName: 'email',
        propertyValue: 'x',
      });
      const b = key({
        subscriptionType: 'contact.propertyChange',
        propertyName: 'phone',
        propertyValue: 'x',
      });
      expect(a).not.toBe(b);
    });

    it('never contains the property value', () => {
      const k = key({
        subscriptionType: 'contact.propertyChange',
        propertyName: 'ssn',
        propertyValue: '078-05-1120',
      });
      expect(k).not.toContain('078-05-1120');
    });

    it('escapes "|" inside a part', () => {
      const k = key({
        subscriptionType: 'contact.propertyChange',
        propertyName: 'a|b',
        propertyValue: 'x',
      });
      expect(k.endsWith('|contact.propertyChange|a%7Cb')).toBe(true);
    });
  });

  describe('when given random bytes', () => {
    it('never throws', () => {
      let seed = 7;
      const next = (below: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed % below;
      };
      const alphabet = '[]{}",:0123456789.-eE truefalsnul\\_proto';
      for (let i = 0; i < 2000; i += 1) {
        const text = Array.from({ length: next(80) }, () => alphabet[next(alphabet.length)]).join(
          '',
        );
        expect(() => parseHubspotBatch(Buffer.from(text))).not.toThrow();
      }
    });
  });
});
