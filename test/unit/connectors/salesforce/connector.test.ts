import { readFileSync } from 'node:fs';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { createSalesforceConnector } from '../../../../connectors/salesforce/index.js';
import { buildOutboundMessage } from '../../../../connectors/salesforce/outbound-message.js';
import type { BuildOutboundMessageInput } from '../../../../connectors/salesforce/outbound-message.js';
import type { ParseResult, ParsedEvent, RawRequest } from '../../../../connectors/types.js';
import { changeEventSchema, fieldValueSchema } from '../../../../src/model/change-event.js';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../../../connectors/salesforce/fixtures/${name}`, import.meta.url));

const request = (body: Buffer): RawRequest => ({
  method: 'POST',
  originalUrl: '/webhooks/salesforce',
  headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: '""' },
  body,
});

const ORG_15 = '00D1I000003qqqE';
const ORG_18 = '00D1I000003qqqEUAQ';
const NOW = Date.parse('2026-03-02T12:00:00Z');
/** Longer than any field value the ledger accepts (checked below, so a raised limit shows up). */
const TOO_LONG = 'x'.repeat(2_000_000);

function events(result: ParseResult): ParsedEvent[] {
  if (!result.ok)
    throw new Error(`expected ok, got ${result.code}: ${result.reason} @ ${result.path}`);
  for (const { event } of result.events) {
    // every event must be one the ledger accepts
    expect(changeEventSchema.safeParse(event).success).toBe(true);
  }
  return result.events;
}

function contact(fields: Record<string, string | null>): BuildOutboundMessageInput {
  return {
    orgId: ORG_18,
    notifications: [
      {
        id: '04lDn00000NtF01IAF',
        sObjectType: 'Contact',
        fields: { Id: '003Dn00000XyZ12IAF', ...fields },
      },
    ],
  };
}

describe('createSalesforceConnector', () => {
  const connector = createSalesforceConnector({ orgIds: [ORG_15] });

  it('is the salesforce source', () => {
    expect(connector.source).toBe('salesforce');
  });

  describe('verifyRequest', () => {
    describe('when the organisation is allowed', () => {
      it('accepts an 18-character envelope id against a 15-character configured id', () => {
        expect(
          connector.verifyRequest(request(fixture('outbound-message-multi.xml')), NOW),
        ).toEqual({
          ok: true,
        });
      });

      it('accepts a 15-character envelope id against an 18-character configured id', () => {
        const byLongId = createSalesforceConnector({ orgIds: [ORG_18] });
        const body = fixture('outbound-message-custom-object.xml');
        expect(byLongId.verifyRequest(request(body), NOW)).toEqual({ ok: true });
      });

      it('accepts the real sample with its placeholder org id configured', () => {
        const sample = createSalesforceConnector({ orgIds: ['012345678901234'] });
        const body = fixture('outbound-message-sample.xml');
        expect(sample.verifyRequest(request(body), NOW)).toEqual({ ok: true });
      });
    });

    describe('when the organisation is not allowed', () => {
      it('refuses it with ORGANIZATION_NOT_ALLOWED', () => {
        const result = connector.verifyRequest(
          request(fixture('outbound-message-wrong-org.xml')),
          NOW,
        );
        expect(result).toMatchObject({ ok: false, code: 'ORGANIZATION_NOT_ALLOWED' });
      });

      it('refuses an 18-character id whose checksum does not match', () => {
        const body = buildOutboundMessage({ ...contact({}), orgId: '00D1I000003qqqEAAA' });
        expect(connector.verifyRequest(request(body), NOW)).toMatchObject({
          ok: false,
          code: 'ORGANIZATION_NOT_ALLOWED',
        });
      });

      it('refuses a case-changed 15-character id', () => {
        const body = buildOutboundMessage({ ...contact({}), orgId: '00d1i000003qqqe' });
        expect(connector.verifyRequest(request(body), NOW)).toMatchObject({
          ok: false,
          code: 'ORGANIZATION_NOT_ALLOWED',
        });
      });
    });

    describe('when the organisation cannot be read', () => {
      it('refuses XXE, billion laughs and non-envelopes with ORGANIZATION_NOT_ALLOWED', () => {
        for (const body of [
          fixture('outbound-message-xxe.xml'),
          fixture('outbound-message-billion-laughs.xml'),
          Buffer.from('{"OrganizationId":"00D1I000003qqqE"}'),
          Buffer.alloc(0),
        ]) {
          const result = connector.verifyRequest(request(body), NOW);
          expect(result).toMatchObject({ ok: false, code: 'ORGANIZATION_NOT_ALLOWED' });
          expect(JSON.stringify(result)).not.toContain('root:');
        }
      });
    });

    describe('when no organisation is configured', () => {
      it('refuses everything with CONNECTOR_NOT_CONFIGURED', () => {
        const unconfigured = createSalesforceConnector({ orgIds: [] });
        const result = unconfigured.verifyRequest(
          request(fixture('outbound-message-multi.xml')),
          NOW,
        );
        expect(result).toMatchObject({ ok: false, code: 'CONNECTOR_NOT_CONFIGURED' });
      });
    });

    describe('when a configured id is malformed', () => {
      it('fails at construction with ORGANIZATION_ID_INVALID', () => {
        expect(() => createSalesforceConnector({ orgIds: ['00D1I000003qqqEAAA'] })).toThrow(
          expect.objectContaining({ code: 'ORGANIZATION_ID_INVALID' }),
        );
      });
    });
  });

  describe('parse', () => {
    describe('when given several notifications', () => {
      const parsed = events(connector.parse(request(fixture('outbound-message-multi.xml'))));
      const [created, updated, bySystem] = parsed.map((p) => p.event);

      it('returns one event per notification, in order', () => {
        expect(parsed.map((p) => p.event.eventId)).toEqual([
          '04lDn00000NtF01IAF',
          '04lDn00000NtF02IAF',
          '04lDn00000NtF03IAF',
        ]);
      });

      it('keys idempotency on the 18-character org and the notification id', () => {
        expect(parsed.map((p) => p.idempotencyKey)).toEqual([
          `salesforce|${ORG_18}|04lDn00000NtF01IAF`,
          `salesforce|${ORG_18}|04lDn00000NtF02IAF`,
          `salesforce|${ORG_18}|04lDn00000NtF03IAF`,
        ]);
      });

      it('normalises a new record into a create event', () => {
        expect(created).toEqual({
          tenant: `salesforce:${ORG_18}`,
          source: 'salesforce',
          object: 'contact',
          recordId: '003Dn00000XyZ12IAF',
          eventId: '04lDn00000NtF01IAF',
          kind: 'create',
          actor: { type: 'user', id: 'salesforce:user:005Dn000001UsErIAK' },
          occurredAt: '2026-03-02T09:15:00.000Z',
          fields: {
            CreatedDate: '2026-03-02T09:15:00.000Z',
            LastModifiedById: '005Dn000001UsErIAK',
            LastModifiedDate: '2026-03-02T09:15:00.000Z',
            Email: 'ada@example.com',
            FirstName: 'Ada',
            LastName: 'Lovelace',
          },
          raw: {
            id: '04lDn00000NtF01IAF',
            sObjectType: 'contact',
            fields: {
              Id: '003Dn00000XyZ12IAF',
              CreatedDate: '2026-03-02T09:15:00.000Z',
              LastModifiedById: '005Dn000001UsErIAK',
              LastModifiedDate: '2026-03-02T09:15:00.000Z',
              Email: 'ada@example.com',
              FirstName: 'Ada',
              LastName: 'Lovelace',
            },
          },
        });
      });

      it('treats a later LastModifiedDate as an update, with nil fields as null', () => {
        expect(updated?.kind).toBe('update');
        expect(updated?.object).toBe('lead');
        expect(updated?.occurredAt).toBe('2026-03-02T09:16:30.000Z');
        expect(updated?.actor).toEqual({ type: 'user', id: 'salesforce:user:005Dn000002AdMnIAK' });
        expect(updated?.fields['Email']).toBeNull();
        expect(updated?.fields['Phone']).toBeNull();
        expect(updated?.fields).not.toHaveProperty('Id');
      });

      it('falls back to SystemModstamp and the system actor', () => {
        expect(bySystem?.kind).toBe('update');
        expect(bySystem?.occurredAt).toBe('2026-03-02T09:17:45.000Z');
        expect(bySystem?.actor).toEqual({ type: 'system', id: 'salesforce:outbound-message' });
      });
    });

    describe('when given a custom object with a 15-character org id', () => {
      const [parsed] = events(
        connector.parse(request(fixture('outbound-message-custom-object.xml'))),
      );

      it('uses the 18-character org id in the tenant and key', () => {
        expect(parsed?.event.tenant).toBe(`salesforce:${ORG_18}`);
        expect(parsed?.idempotencyKey).toBe(`salesforce|${ORG_18}|04lDn00000NtF04IAF`);
      });

      it('lower-cases the object name and converts the offset to UTC', () => {
        expect(parsed?.event.object).toBe('my_object__c');
        expect(parsed?.event.occurredAt).toBe('2026-03-02T09:00:00.000Z');
      });
    });

    describe('when given the real sample (no LastModifiedDate, no SystemModstamp)', () => {
      it('rejects it as EVENT_INVALID: nothing dates the change, and receive time is not used', () => {
        const sample = createSalesforceConnector({ orgIds: ['012345678901234'] });
        expect(sample.parse(request(fixture('outbound-message-sample.xml')))).toMatchObject({
          ok: false,
          code: 'EVENT_INVALID',
          path: 'notifications.Notification[0].sObject',
        });
      });
    });

    describe('when a notification is invalid', () => {
      const p = 'notifications.Notification[0].sObject';
      const cases: [string, BuildOutboundMessageInput, string][] = [
        [
          'it has no record Id (record deleted before delivery)',
          {
            orgId: ORG_18,
            notifications: [
              {
                id: '04lDn00000NtF01IAF',
                sObjectType: 'Contact',
                fields: { SystemModstamp: '2026-03-02T09:00:00Z' },
              },
            ],
          },
          `${p}.Id`,
        ],
        [
          'its record Id is nil',
          contact({ Id: null, SystemModstamp: '2026-03-02T09:00:00Z' }),
          `${p}.Id`,
        ],
        [
          'LastModifiedDate is not a date-time',
          contact({ LastModifiedDate: 'yesterday' }),
          `${p}.LastModifiedDate`,
        ],
        [
          'LastModifiedDate is not a calendar date',
          contact({ LastModifiedDate: '2026-02-30T00:00:00Z' }),
          `${p}.LastModifiedDate`,
        ],
        [
          'SystemModstamp has no zone',
          contact({ SystemModstamp: '2026-03-02T09:00:00' }),
          `${p}.SystemModstamp`,
        ],
        [
          'CreatedDate is malformed',
          contact({ CreatedDate: '2026', LastModifiedDate: '2026-03-02T09:00:00Z' }),
          `${p}.CreatedDate`,
        ],
        ['it has no date at all', contact({ CreatedDate: '2026-03-02T09:00:00Z' }), p],
        ['its dates are nil', contact({ LastModifiedDate: null, SystemModstamp: null }), p],
        [
          'a value is longer than the ledger accepts',
          contact({ LastModifiedDate: '2026-03-02T09:00:00Z', Description: TOO_LONG }),
          `${p}.Description`,
        ],
      ];
      it('uses a value the ledger really refuses', () => {
        expect(fieldValueSchema.safeParse(TOO_LONG).success).toBe(false);
      });

      for (const [name, input, path] of cases) {
        it(`rejects the message as EVENT_INVALID when ${name}`, () => {
          const result = connector.parse(request(buildOutboundMessage(input)));
          expect(result).toMatchObject({ ok: false, code: 'EVENT_INVALID', path });
        });
      }

      it('rejects a record id outside [A-Za-z0-9._~-]', () => {
        const result = connector.parse(
          request(
            buildOutboundMessage(contact({ Id: 'a/b', LastModifiedDate: '2026-03-02T09:00:00Z' })),
          ),
        );
        expect(result).toMatchObject({ ok: false, code: 'EVENT_INVALID', path: `${p}.Id` });
      });
    });

    describe('when the body is unsafe or not an Outbound Message', () => {
      it('rejects XXE and billion laughs with PAYLOAD_MALFORMED', () => {
        for (const name of ['outbound-message-xxe.xml', 'outbound-message-billion-laughs.xml']) {
          const result = connector.parse(request(fixture(name)));
          expect(result).toMatchObject({ ok: false, code: 'PAYLOAD_MALFORMED' });
          expect(JSON.stringify(result)).not.toContain('root:');
        }
      });

      it('rejects more than 100 notifications with BATCH_TOO_LARGE', () => {
        const body = buildOutboundMessage({
          orgId: ORG_18,
          notifications: Array.from({ length: 101 }, (_, i) => ({
            id: `04lDn00000N${String(i).padStart(4, '0')}`,
            sObjectType: 'Contact',
            fields: { Id: '003Dn00000XyZ12IAF', SystemModstamp: '2026-03-02T09:00:00Z' },
          })),
        });
        expect(connector.parse(request(body))).toMatchObject({
          ok: false,
          code: 'BATCH_TOO_LARGE',
        });
      });
    });

    describe('when fuzzed through verify and parse', () => {
      it('never throws, and every accepted event passes changeEventSchema', () => {
        const next = rng(0xc0ffee);
        const base = [
          fixture('outbound-message-multi.xml'),
          fixture('outbound-message-custom-object.xml'),
          fixture('outbound-message-sample.xml'),
        ];
        for (let round = 0; round < 300; round++) {
          const source = base[next(base.length)] ?? Buffer.alloc(0);
          const text = source.toString('utf8');
          const at = next(text.length);
          const body = Buffer.from(
            text.slice(0, at) +
              (FUZZ_TOKENS[next(FUZZ_TOKENS.length)] ?? '') +
              text.slice(at + next(8)),
          );
          expect(() => connector.verifyRequest(request(body), NOW)).not.toThrow();
          let result: ParseResult | undefined;
          expect(() => (result = connector.parse(request(body)))).not.toThrow();
          if (result?.ok) events(result);
        }
      });
    });
  });

  describe('acknowledge', () => {
    it('answers 200 text/xml with exactly the Ack envelope', () => {
      const parsed = events(connector.parse(request(fixture('outbound-message-multi.xml'))));
      const answer = connector.acknowledge(parsed);
      expect(answer.status).toBe(200);
      expect(answer.contentType).toBe('text/xml; charset=utf-8');
      expect(Buffer.from(answer.body, 'utf8').equals(fixture('ack.xml'))).toBe(true);
    });
  });

  describe('reject', () => {
    const fault = (status: number, code: string, message: string) => {
      const answer = connector.reject(status, code, message);
      expect(answer.status).toBe(status);
      expect(answer.contentType).toBe('text/xml; charset=utf-8');
      expect(XMLValidator.validate(answer.body)).toBe(true);
      const doc = new XMLParser().parse(answer.body) as {
        'soapenv:Envelope': {
          'soapenv:Body': { 'soapenv:Fault': { faultcode: string; faultstring: string } };
        };
      };
      return doc['soapenv:Envelope']['soapenv:Body']['soapenv:Fault'];
    };

    it('answers a 4xx with a soapenv:Client fault', () => {
      expect(
        fault(403, 'ORGANIZATION_NOT_ALLOWED', 'organisation x is not on the allow-list'),
      ).toEqual({
        faultcode: 'soapenv:Client',
        faultstring: 'ORGANIZATION_NOT_ALLOWED: organisation x is not on the allow-list',
      });
    });

    it('answers a 5xx with a soapenv:Server fault', () => {
      expect(fault(503, 'QUEUE_UNAVAILABLE', 'retry later').faultcode).toBe('soapenv:Server');
    });

    it('escapes the message', () => {
      const answer = connector.reject(400, 'EVENT_INVALID', 'bad <sf:Id> & "more"');
      expect(answer.body).toContain(
        '<faultstring>EVENT_INVALID: bad &lt;sf:Id&gt; &amp; &quot;more&quot;</faultstring>',
      );
      expect(XMLValidator.validate(answer.body)).toBe(true);
    });
  });
});

const FUZZ_TOKENS = [
  '',
  '<',
  '&',
  '&lt;',
  'Z',
  '9',
  ' ',
  '</sf:Id>',
  '<sf:Id>x</sf:Id>',
  '<sf:LastModifiedDate>2026-03-02T09:00:00Z</sf:LastModifiedDate>',
  '<sf:SystemModstamp xsi:nil="true"/>',
  '<sf:LastModifiedById>005Dn000001UsErIAK</sf:LastModifiedById>',
  '<sf:Big>' + 'x'.repeat(40_000) + '</sf:Big>',
  '<sf:constructor>1</sf:constructor>',
  '<!DOCTYPE x>',
];

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): (below: number) => number {
  let a = seed >>> 0;
  return (below) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below);
  };
}
