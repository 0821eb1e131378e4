import { readFileSync } from 'node:fs';
import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import {
  MAX_NOTIFICATIONS,
  OUTBOUND_MESSAGE_ACK,
  buildOutboundMessage,
  buildSoapFault,
  escapeXml,
  parseOutboundMessage,
  readOrganizationId,
} from '../../../../connectors/salesforce/outbound-message.js';
import type {
  BuildOutboundMessageInput,
  ParseOutboundMessageResult,
} from '../../../../connectors/salesforce/outbound-message.js';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../../../connectors/salesforce/fixtures/${name}`, import.meta.url));

const ORG = '00D1I000003qqqEUAQ';
const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';
const OUTBOUND = 'http://soap.sforce.com/2005/09/outbound';
const SOBJECT = 'urn:sobject.enterprise.soap.sforce.com';
const XSI = 'http://www.w3.org/2001/XMLSchema-instance';

/** An envelope around the given `notifications` content, for structural cases. */
function envelope(
  inner: string,
  header = `<OrganizationId>${ORG}</OrganizationId><ActionId>04kDn000000AcT1IAK</ActionId>`,
): Buffer {
  return Buffer.from(
    `<soapenv:Envelope xmlns:soapenv="${SOAP}" xmlns:xsi="${XSI}"><soapenv:Body>` +
      `<notifications xmlns="${OUTBOUND}">${header}${inner}</notifications>` +
      `</soapenv:Body></soapenv:Envelope>`,
  );
}

/** One Notification whose sObject holds the given field XML. */
function notification(fieldsXml: string, type = 'sf:Contact', id = '04lDn00000NtF01IAF'): string {
  return (
    `<Notification><Id>${id}</Id><sObject xsi:type="${type}" xmlns:sf="${SOBJECT}">` +
    `<sf:Id>003Dn00000XyZ12IAF</sf:Id>${fieldsXml}</sObject></Notification>`
  );
}

function expectFailure(result: ParseOutboundMessageResult, code: string, path?: string) {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.code).toBe(code);
  if (path !== undefined) expect(result.path).toBe(path);
}

function expectOk(result: ParseOutboundMessageResult) {
  if (!result.ok)
    throw new Error(`expected ok, got ${result.code}: ${result.reason} @ ${result.path}`);
  return result.message;
}

describe('parseOutboundMessage', () => {
  describe('when given the real sample envelope (crm-protocols.md §4.2)', () => {
    const message = expectOk(parseOutboundMessage(fixture('outbound-message-sample.xml')));

    it('reads the header', () => {
      expect(message.organizationId).toBe('012345678901234');
      expect(message.actionId).toBe('04k1I000000bmsHQAQ');
      expect(message.enterpriseUrl).toBe(
        'https://na73.salesforce.com/services/Soap/c/41.0/00D1I000003qqqE',
      );
      expect(message.partnerUrl).toBe(
        'https://na73.salesforce.com/services/Soap/u/41.0/00D1I000003qqqE',
      );
    });

    it('reads both notifications with every field, by local name', () => {
      expect(message.notifications).toEqual([
        {
          id: '04l1I000000fztEQAQ',
          sObjectType: 'contact',
          fields: {
            Id: '0031I0000081tbPQAQ',
            CreatedDate: '2017-12-11T21:49:24.000Z',
            FirstName: 'Jeraldine',
            LastName: 'Black',
            Title: 'White',
          },
        },
        {
          id: '04l1I000000fzt9QAA',
          sObjectType: 'contact',
          fields: {
            Id: '0031I0000081tb0QAA',
            CreatedDate: '2017-12-11T21:44:55.000Z',
            Email: 'drb24@cornell.edu',
            FirstName: 'Doug',
            LastName: 'Bunting',
            Title: 'Supreme Being',
          },
        },
      ]);
    });

    it('keeps the session id readable but out of serialisation', () => {
      expect(message.sessionId).toBe('00D1I000003qqqE!AQsAQ…(truncated)');
      expect(Object.keys(message)).not.toContain('sessionId');
      expect(JSON.stringify(message)).not.toContain('AQsAQ');
      expect(JSON.stringify({ ...message })).not.toContain('AQsAQ');
    });
  });

  describe('when given several notifications with nil fields', () => {
    const message = expectOk(parseOutboundMessage(fixture('outbound-message-multi.xml')));

    it('reads every notification in order', () => {
      expect(message.notifications.map((n) => [n.id, n.sObjectType])).toEqual([
        ['04lDn00000NtF01IAF', 'contact'],
        ['04lDn00000NtF02IAF', 'lead'],
        ['04lDn00000NtF03IAF', 'account'],
      ]);
    });

    it('maps xsi:nil="true" to null and an empty element to ""', () => {
      const lead = message.notifications[1]?.fields;
      expect(lead?.['Email']).toBeNull();
      expect(lead?.['Phone']).toBeNull();
      expect(message.notifications[2]?.fields['Description']).toBe('');
    });

    it('decodes the predefined entities', () => {
      expect(message.notifications[2]?.fields['Name']).toBe('Babbage & Co. <UK>');
    });

    it('treats a nil SessionId as absent', () => {
      expect(message.sessionId).toBeUndefined();
      expect('sessionId' in message).toBe(false);
    });
  });

  describe('when the envelope uses other prefixes and a custom object', () => {
    const message = expectOk(parseOutboundMessage(fixture('outbound-message-custom-object.xml')));
    const [only] = message.notifications;

    it('resolves namespaces, not prefixes', () => {
      expect(message.organizationId).toBe('00D1I000003qqqE');
      expect(only?.sObjectType).toBe('my_object__c');
      expect(only?.fields['Status__c']).toBeNull();
    });

    it('decodes character references once and keeps whitespace', () => {
      expect(only?.fields['Name']).toBe('Widget №7 été');
      expect(only?.fields['Notes__c']).toBe('line one\n  line two &amp; more');
    });
  });

  describe('when values use CDATA', () => {
    it('keeps CDATA content literally', () => {
      const body = envelope(
        notification('<sf:Title>a &amp; <![CDATA[<b>&amp;</b>]]> c</sf:Title>'),
      );
      const message = expectOk(parseOutboundMessage(body));
      expect(message.notifications[0]?.fields['Title']).toBe('a & <b>&amp;</b> c');
    });
  });

  describe('when xsi:type names various sObjects', () => {
    it('lower-cases the API name', () => {
      for (const [type, expected] of [
        ['sf:Contact', 'contact'],
        ['sf:Lead', 'lead'],
        ['sf:Account', 'account'],
        ['sf:My_Object__c', 'my_object__c'],
        ['sf:ns__Thing__c', 'ns__thing__c'],
      ] as const) {
        const message = expectOk(parseOutboundMessage(envelope(notification('', type))));
        expect(message.notifications[0]?.sObjectType).toBe(expected);
      }
    });
  });

  describe('when the body carries a DTD', () => {
    const passwd = (() => {
      try {
        return readFileSync('/etc/passwd', 'utf8');
      } catch {
        return 'root:x:0:0:root:/root:/bin/sh';
      }
    })();
    const passwdLines = passwd.split('\n').filter((line) => line.length > 8);

    const assertNothingLeaks = (result: ParseOutboundMessageResult) => {
      const text = JSON.stringify(result);
      expect(text).not.toContain('root:');
      for (const line of passwdLines) expect(text).not.toContain(line);
    };

    it('rejects the XXE sample reading file:///etc/passwd', () => {
      const result = parseOutboundMessage(fixture('outbound-message-xxe.xml'));
      expectFailure(result, 'PAYLOAD_MALFORMED');
      assertNothingLeaks(result);
    });

    it('rejects the billion-laughs sample quickly', () => {
      const started = performance.now();
      const result = parseOutboundMessage(fixture('outbound-message-billion-laughs.xml'));
      expectFailure(result, 'PAYLOAD_MALFORMED');
      expect(performance.now() - started).toBeLessThan(1000);
      expect(JSON.stringify(result)).not.toContain('lollol');
    });

    it('rejects every spelling and placement of a declaration', () => {
      const body = fixture('outbound-message-multi.xml').toString('utf8');
      const afterDecl = (dtd: string) => body.replace('?>', `?>${dtd}`);
      for (const text of [
        afterDecl('<!DOCTYPE x SYSTEM "file:///etc/passwd">'),
        afterDecl('<!doctype x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'),
        afterDecl('<!-- c --><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1/x.dtd"> %p;]>'),
        afterDecl('<!ENTITY e "x">'),
        afterDecl('<!ELEMENT x ANY>'),
        afterDecl('<!ATTLIST x y CDATA "z">'),
        afterDecl('<!NOTATION n SYSTEM "x">'),
        body.replace('<sf:FirstName>Ada', '<sf:FirstName><!DOCTYPE x>Ada'),
        body.replace('<sf:FirstName>Ada', '<sf:FirstName><![CDATA[<!ENTITY e "x">]]>Ada'),
      ]) {
        const result = parseOutboundMessage(Buffer.from(text));
        expectFailure(result, 'PAYLOAD_MALFORMED');
        assertNothingLeaks(result);
      }
    });

    it('rejects an XXE body encoded as UTF-16', () => {
      const text = fixture('outbound-message-xxe.xml').toString('utf8');
      const withBom = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
      expectFailure(parseOutboundMessage(withBom), 'PAYLOAD_MALFORMED');
      expectFailure(parseOutboundMessage(Buffer.from(text, 'utf16le')), 'PAYLOAD_MALFORMED');
    });

    it('rejects an undeclared entity reference even without a DTD', () => {
      const body = envelope(notification('<sf:LastName>&xxe;</sf:LastName>'));
      expectFailure(parseOutboundMessage(body), 'PAYLOAD_MALFORMED');
    });

    it('does not follow XInclude', () => {
      const body = envelope(
        notification(
          '<sf:LastName><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/></sf:LastName>',
        ),
      );
      const result = parseOutboundMessage(body);
      expectFailure(result, 'EVENT_INVALID', 'notifications.Notification[0].sObject.LastName');
      assertNothingLeaks(result);
    });
  });

  describe('when the body is not an Outbound Message', () => {
    const cases: [string, Buffer][] = [
      ['an empty body', Buffer.alloc(0)],
      ['JSON', Buffer.from('[{"eventId":1}]')],
      ['plain text', Buffer.from('hello')],
      ['HTML', Buffer.from('<html><body>hi</body></html>')],
      ['invalid UTF-8', Buffer.from([0x3c, 0x61, 0xff, 0x3e])],
      ['truncated XML', fixture('outbound-message-multi.xml').subarray(0, 600)],
      [
        'a SOAP 1.2 envelope',
        Buffer.from(
          fixture('outbound-message-multi.xml')
            .toString()
            .replace(SOAP, 'http://www.w3.org/2003/05/soap-envelope'),
        ),
      ],
      [
        'an envelope without Body',
        Buffer.from(
          `<soapenv:Envelope xmlns:soapenv="${SOAP}"><soapenv:Header/></soapenv:Envelope>`,
        ),
      ],
      [
        'an empty Body',
        Buffer.from(`<soapenv:Envelope xmlns:soapenv="${SOAP}"><soapenv:Body/></soapenv:Envelope>`),
      ],
      [
        'notifications in the wrong namespace',
        Buffer.from(
          fixture('outbound-message-multi.xml').toString().replace(OUTBOUND, 'urn:other'),
        ),
      ],
      ['a Body with two payloads', envelope('</notifications><notifications>')],
      ['no Notification', envelope('')],
      ['no OrganizationId', envelope(notification(''), '<ActionId>04kDn000000AcT1IAK</ActionId>')],
      [
        'a malformed OrganizationId',
        envelope(
          notification(''),
          '<OrganizationId>not-an-id</OrganizationId><ActionId>04kDn000000AcT1IAK</ActionId>',
        ),
      ],
      [
        'two OrganizationIds',
        envelope(
          notification(''),
          `<OrganizationId>${ORG}</OrganizationId><OrganizationId>${ORG}</OrganizationId><ActionId>04kDn000000AcT1IAK</ActionId>`,
        ),
      ],
      ['no ActionId', envelope(notification(''), `<OrganizationId>${ORG}</OrganizationId>`)],
      ['an undeclared prefix', envelope(notification('<zz:Title>x</zz:Title>'))],
      ['a bare ampersand', envelope(notification('<sf:Title>a & b</sf:Title>'))],
      ['a reference to a non-character', envelope(notification('<sf:Title>&#0;</sf:Title>'))],
      ['text beside notifications', envelope(`oops${notification('')}`)],
      ['deep nesting', Buffer.from('<a>'.repeat(5000) + '</a>'.repeat(5000))],
    ];
    for (const [name, body] of cases) {
      it(`rejects ${name} as PAYLOAD_MALFORMED`, () => {
        expectFailure(parseOutboundMessage(body), 'PAYLOAD_MALFORMED');
      });
    }
  });

  describe('when a notification is invalid', () => {
    const p = 'notifications.Notification[0]';
    const cases: [string, string, string][] = [
      [
        'the notification Id is missing',
        `<Notification><sObject xsi:type="sf:Contact" xmlns:sf="${SOBJECT}"/></Notification>`,
        `${p}.Id`,
      ],
      ['the notification Id is malformed', notification('', 'sf:Contact', 'bad id'), `${p}.Id`],
      [
        'sObject is missing',
        '<Notification><Id>04lDn00000NtF01IAF</Id></Notification>',
        `${p}.sObject`,
      ],
      [
        'xsi:type is missing',
        `<Notification><Id>04lDn00000NtF01IAF</Id><sObject xmlns:sf="${SOBJECT}"/></Notification>`,
        `${p}.sObject.@xsi:type`,
      ],
      [
        'xsi:type is in another namespace',
        notification('', 'xsi:Contact'),
        `${p}.sObject.@xsi:type`,
      ],
      [
        'xsi:type has an undeclared prefix',
        notification('', 'zz:Contact'),
        `${p}.sObject.@xsi:type`,
      ],
      ['xsi:type is not an API name', notification('', 'sf:9Contact'), `${p}.sObject.@xsi:type`],
      [
        'a field is repeated',
        notification('<sf:Title>a</sf:Title><sf:Title>b</sf:Title>'),
        `${p}.sObject.Title`,
      ],
      [
        'a field has child elements',
        notification('<sf:Title><sf:x>1</sf:x></sf:Title>'),
        `${p}.sObject.Title`,
      ],
      ['a field is in another namespace', notification('<Title>x</Title>'), `${p}.sObject.Title`],
      [
        'a field has a reserved name',
        notification('<sf:constructor>x</sf:constructor>'),
        `${p}.sObject`,
      ],
      [
        'a field name is not an API name',
        notification('<sf:__proto__>x</sf:__proto__>'),
        `${p}.sObject`,
      ],
      ['xsi:nil is not a boolean', notification('<sf:Title xsi:nil="yes"/>'), `${p}.sObject.Title`],
      [
        'xsi:nil="true" has content',
        notification('<sf:Title xsi:nil="true">x</sf:Title>'),
        `${p}.sObject.Title`,
      ],
    ];
    for (const [name, xml, path] of cases) {
      it(`rejects it as EVENT_INVALID when ${name}`, () => {
        expectFailure(parseOutboundMessage(envelope(xml)), 'EVENT_INVALID', path);
      });
    }

    it('points at the right notification', () => {
      const body = envelope(notification('') + notification('', 'sf:Contact', 'nope'));
      expectFailure(
        parseOutboundMessage(body),
        'EVENT_INVALID',
        'notifications.Notification[1].Id',
      );
    });

    it('accepts xsi:nil="false" and "0" as values', () => {
      const body = envelope(notification('<sf:A xsi:nil="false">x</sf:A><sf:B xsi:nil="0"/>'));
      const fields = expectOk(parseOutboundMessage(body)).notifications[0]?.fields;
      expect(fields).toEqual({ Id: '003Dn00000XyZ12IAF', A: 'x', B: '' });
    });
  });

  describe('when a message holds more than 100 notifications', () => {
    const build = (count: number) =>
      buildOutboundMessage({
        orgId: ORG,
        notifications: Array.from({ length: count }, (_, i) => ({
          id: `04lDn00000N${String(i).padStart(4, '0')}`,
          sObjectType: 'Contact',
          fields: { Id: '003Dn00000XyZ12IAF' },
        })),
      });

    it('accepts exactly 100', () => {
      expect(expectOk(parseOutboundMessage(build(MAX_NOTIFICATIONS))).notifications).toHaveLength(
        100,
      );
    });

    it('rejects 101 as BATCH_TOO_LARGE', () => {
      expectFailure(
        parseOutboundMessage(build(101)),
        'BATCH_TOO_LARGE',
        'notifications.Notification',
      );
    });
  });

  describe('when fuzzed with random and mutated envelopes', () => {
    it('never throws and always returns a well-formed result', () => {
      const next = rng(0x5f0ce);
      const corpus = [
        'outbound-message-sample.xml',
        'outbound-message-multi.xml',
        'outbound-message-multi.xml',
        'outbound-message-custom-object.xml',
        'outbound-message-custom-object.xml',
        'outbound-message-xxe.xml',
        'outbound-message-billion-laughs.xml',
      ].map(fixture);
      let accepted = 0;
      const codes = new Set<string>();
      for (let round = 0; round < 600; round++) {
        const body = mutate(corpus[next(corpus.length)] ?? Buffer.alloc(0), next);
        let result: ParseOutboundMessageResult | undefined;
        expect(() => {
          result = parseOutboundMessage(body);
          readOrganizationId(body);
        }, `round ${round}`).not.toThrow();
        if (result?.ok) {
          accepted++;
          expect(result.message.notifications.length).toBeGreaterThan(0);
          expect(result.message.notifications.length).toBeLessThanOrEqual(100);
        } else {
          codes.add(result?.code ?? '');
          expect(['PAYLOAD_MALFORMED', 'EVENT_INVALID', 'BATCH_TOO_LARGE']).toContain(result?.code);
          expect(typeof result?.reason).toBe('string');
        }
      }
      // the mutations must leave some bodies parseable, or the fuzz tests nothing past the lexer
      expect(accepted).toBeGreaterThan(0);
      expect(codes).toContain('EVENT_INVALID');
    });

    it('survives inputs that are not Buffers', () => {
      const values: unknown[] = [undefined, null, 'string', 42, {}, []];
      for (const value of values) {
        expect(parseOutboundMessage(value as Buffer).ok).toBe(false);
        expect(readOrganizationId(value as Buffer).ok).toBe(false);
      }
    });
  });
});

describe('readOrganizationId', () => {
  it('reads the id without parsing notifications', () => {
    const body = envelope('<Notification>not even a notification</Notification>');
    expect(readOrganizationId(body)).toEqual({ ok: true, organizationId: ORG });
  });

  it('refuses the XXE sample', () => {
    expect(readOrganizationId(fixture('outbound-message-xxe.xml')).ok).toBe(false);
  });
});

describe('OUTBOUND_MESSAGE_ACK', () => {
  it('is byte for byte the Ack from crm-protocols.md §4.3', () => {
    expect(OUTBOUND_MESSAGE_ACK).toBe(fixture('ack.xml').toString('utf8'));
    expect(OUTBOUND_MESSAGE_ACK).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' +
        ' <soapenv:Body>\n' +
        '  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">\n' +
        '   <Ack>true</Ack>\n' +
        '  </notificationsResponse>\n' +
        ' </soapenv:Body>\n' +
        '</soapenv:Envelope>',
    );
  });
});

describe('buildSoapFault', () => {
  it('escapes the fault string and stays well-formed', () => {
    const fault = buildSoapFault('soapenv:Client', 'bad <x> & "y" \'z\' \u0000\uD800');
    expect(fault).toContain('<faultcode>soapenv:Client</faultcode>');
    expect(fault).toContain(
      '<faultstring>bad &lt;x&gt; &amp; &quot;y&quot; &apos;z&apos; \uFFFD\uFFFD</faultstring>',
    );
    expect(XMLValidator.validate(fault)).toBe(true);
  });
});

describe('escapeXml', () => {
  it('round-trips through the parser', () => {
    const value = `a&b<c>"d"'e' &amp; ]]> é 😀`;
    const body = envelope(notification(`<sf:Title>${escapeXml(value)}</sf:Title>`));
    expect(expectOk(parseOutboundMessage(body)).notifications[0]?.fields['Title']).toBe(value);
  });
});

describe('buildOutboundMessage', () => {
  it('builds what parseOutboundMessage reads back', () => {
    const input: BuildOutboundMessageInput = {
      orgId: ORG,
      actionId: '04kDn000000AcT1IAK',
      sessionId: 'secret-session',
      enterpriseUrl: 'https://example.my.salesforce.com/services/Soap/c/62.0/00D1I000003qqqE',
      partnerUrl: 'https://example.my.salesforce.com/services/Soap/u/62.0/00D1I000003qqqE',
      notifications: [
        {
          id: '04lDn00000NtF01IAF',
          sObjectType: 'My_Object__c',
          fields: { Id: 'a05Dn00000CuStMIAV', Name: 'A & <B>', Gone__c: null },
        },
      ],
    };
    const message = expectOk(parseOutboundMessage(buildOutboundMessage(input)));
    expect(message).toEqual({
      organizationId: ORG,
      actionId: '04kDn000000AcT1IAK',
      enterpriseUrl: input.enterpriseUrl,
      partnerUrl: input.partnerUrl,
      notifications: [
        {
          id: '04lDn00000NtF01IAF',
          sObjectType: 'my_object__c',
          fields: { Id: 'a05Dn00000CuStMIAV', Name: 'A & <B>', Gone__c: null },
        },
      ],
    });
    expect(message.sessionId).toBe('secret-session');
  });
});

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

const TOKENS = [
  '<',
  '>',
  '&',
  '&amp;',
  '&#x0;',
  '&#1114112;',
  ';',
  '"',
  "'",
  ':',
  '/>',
  '</',
  '<!--',
  '-->',
  '<![CDATA[',
  ']]>',
  '<?xml version="1.0"?>',
  '<!DOCTYPE x>',
  '<!ENTITY e "x">',
  ' xsi:nil="true"',
  ' xsi:type="sf:Lead"',
  ' xmlns="urn:x"',
  ' xmlns:sf=""',
  '<Notification>',
  '</Notification>',
  '<sf:Id>',
  '__proto__',
  'constructor',
  '\u0000',
  '\uFFFF',
  '😀',
];

/** One to four random edits: byte flips, deletions, token insertions, duplications, truncation. */
function mutate(seed: Buffer, next: (below: number) => number): Buffer {
  if (next(20) === 0) return Buffer.from(Array.from({ length: next(300) }, () => next(256)));
  let body = Buffer.from(seed);
  const edits = 1 + next(4);
  for (let i = 0; i < edits; i++) {
    const at = next(body.length + 1);
    switch (next(6)) {
      case 0:
        // mostly printable ASCII, so the body often stays UTF-8 and reaches the XML checks
        if (body.length > 0)
          body[Math.min(at, body.length - 1)] = next(4) ? 0x20 + next(95) : next(256);
        break;
      case 1:
        body = Buffer.concat([body.subarray(0, at), body.subarray(at + 1 + next(40))]);
        break;
      case 2:
        body = Buffer.concat([
          body.subarray(0, at),
          Buffer.from(TOKENS[next(TOKENS.length)] ?? ''),
          body.subarray(at),
        ]);
        break;
      case 3: {
        const slice = body.subarray(at, at + next(400));
        body = Buffer.concat([body.subarray(0, at), slice, slice, body.subarray(at)]);
        break;
      }
      case 4:
        body = body.subarray(0, at);
        break;
      default:
        // a harmless edit that keeps many bodies valid: change a character of a value
        body = Buffer.from(body.toString('utf8').replace('Ada', 'Ad\u00e9'));
    }
  }
  return body;
}
