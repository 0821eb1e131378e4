import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import type { InputErrorCode } from '../../../src/errors.js';
import {
  buildBlock,
  commitmentMatches,
  DEFAULT_MAX_CHANGE_BYTES,
  defaultIdempotencyKey,
  idempotencyField,
  prepareChange,
  recordKeyOf,
  SALT_BYTES,
} from '../../../src/ledger/block.js';
import type { AnchorRequest, BuiltBlock, VaultEntry } from '../../../src/ledger/block.js';
import { canonicalize } from '../../../src/ledger/canonical.js';
import { leafHash, sha256Reference, toHex, ZERO_HASH_HEX } from '../../../src/ledger/hash.js';
import type { ChangeEvent } from '../../../src/model/change-event.js';
import { decodeVaultEntry, openFields } from '../../../src/vault/plain.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const TENANT = 'hubspot:123456';
const ANCHORED_AT = '2026-11-01T12:00:05.000Z';
const PREV = 'ab'.repeat(32);
const HEX64 = /^[0-9a-f]{64}$/;

/** A contact update like test/helpers/ledger.ts contactChange, without the Redis imports. */
function contactEvent(overrides: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    tenant: TENANT,
    source: 'hubspot',
    object: 'contact',
    recordId: '5101',
    eventId: 'evt-1-0badf00d',
    kind: 'update',
    actor: { type: 'user', id: 'hubspot:user:3' },
    occurredAt: '2026-11-01T12:00:01.000Z',
    fields: {
      email: 'ada.lovelace@example.com',
      firstname: 'Ada',
      lastname: 'Lovelace',
      phone: '+44 20 7946 0958',
      company: 'Analytical Engines Ltd',
      city: 'London',
      zip: 'SW1A 1AA',
      lifecyclestage: 'customer',
      annualrevenue: 1200001,
      balance: -5,
      numemployees: 42,
      hs_email_optout: false,
      notes_last_updated: null,
    },
    ...overrides,
  };
}

const request = (overrides: Partial<ChangeEvent> = {}): AnchorRequest => ({
  event: contactEvent(overrides),
});

/** An event with `patch` applied over the valid one, typed loosely: the point is bad input. */
function badRequest(patch: Record<string, unknown>): AnchorRequest {
  const event: unknown = { ...contactEvent(), ...patch };
  return { event: event as ChangeEvent };
}

/** The InputError `fn` throws; anything else thrown (TypeError…) fails the test. */
function failureOf(
  fn: () => unknown,
): { code: InputErrorCode; message: string; path: string | undefined } | 'NO_ERROR' {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return { code: err.code, message: err.message, path: err.path };
    throw err;
  }
  return 'NO_ERROR';
}

const codeOf = (fn: () => unknown): InputErrorCode | 'NO_ERROR' => {
  const failure = failureOf(fn);
  return failure === 'NO_ERROR' ? failure : failure.code;
};

function build(req: AnchorRequest = request(), recordPrev?: string): BuiltBlock {
  return buildBlock(prepareChange(req), 7, PREV, recordPrev, ANCHORED_AT);
}

type ParsedBlock = { fields: Record<string, string> } & Record<string, unknown>;
const parseBlock = (built: BuiltBlock): ParsedBlock => JSON.parse(built.bytes) as ParsedBlock;
const utf8 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

/**
 * The block's canonical text made the reference way, independently of buildBlock's byte assembly:
 * the block object from the event and the links, through canonicalize. The commitments are taken
 * from the built block (their salts are random); the vault entry is checked to open them.
 */
function referenceBlockText(
  event: ChangeEvent,
  built: BuiltBlock,
  links: { prev: string; recordPrev: string; anchoredAt: string },
  verdicts: unknown[] = [],
): string {
  const fields = parseBlock(built).fields;
  const entry = decodeVaultEntry(built.vault);
  for (const [name, c] of Object.entries(fields)) {
    const opening = entry.fields[name];
    expect(opening && commitmentMatches(c, opening.salt, opening.value)).toBe(true);
  }
  return canonicalize({
    v: 1,
    seq: built.seq,
    tenant: event.tenant,
    prev: links.prev,
    recordPrev: links.recordPrev,
    record: { object: event.object, id: event.recordId },
    eventId: event.eventId,
    kind: event.kind,
    actor: event.actor,
    occurredAt: event.occurredAt,
    anchoredAt: links.anchoredAt,
    fields,
    verdicts,
  });
}

// ---------------------------------------------------------------------------------------------

describe('block', () => {
  describe('prepareChange', () => {
    describe('when the change is valid', () => {
      it('returns the event, its record key, idempotency field and verdicts', () => {
        const event = contactEvent();
        const prepared = prepareChange({ event });
        expect(prepared.event).toEqual(event);
        expect(prepared.recordKey).toBe('contact/5101');
        expect(prepared.recordKey).toBe(recordKeyOf({ object: 'contact', id: '5101' }));
        expect(prepared.idemField).toBe(idempotencyField(`hubspot:${TENANT}:evt-1-0badf00d`));
        expect(prepared.verdicts).toEqual([]);
      });

      it('uses the idempotency key it is given', () => {
        const prepared = prepareChange({ ...request(), idempotencyKey: 'hubspot.123.9876' });
        expect(prepared.idemField).toBe(idempotencyField('hubspot.123.9876'));
      });

      it('keeps valid verdicts', () => {
        const verdicts = [{ type: 'duplicate' as const, code: 'DUP_EMAIL', reason: 'same email' }];
        expect(prepareChange({ ...request(), verdicts }).verdicts).toEqual(verdicts);
      });

      it('accepts a Salesforce tenant, an offset timestamp and every record-id character', () => {
        const prepared = prepareChange(
          request({
            tenant: 'salesforce:00D5g000004abcDEF',
            source: 'salesforce',
            object: 'my_object__c',
            recordId: 'a0B5g00000AbCdE.~_-',
            occurredAt: '2026-11-01T14:00:01+02:00',
          }),
        );
        expect(prepared.recordKey).toBe('my_object__c/a0B5g00000AbCdE.~_-');
      });

      it('accepts a change without fields', () => {
        expect(codeOf(() => prepareChange(request({ fields: {} })))).toBe('NO_ERROR');
      });
    });

    const invalid: [condition: string, patch: Record<string, unknown>, path: string][] = [
      ['the tenant names an unknown CRM', { tenant: 'zoho:123' }, 'tenant'],
      ['the tenant has no account id', { tenant: 'hubspot:' }, 'tenant'],
      ['the tenant has a space', { tenant: 'hubspot:12 3' }, 'tenant'],
      ['the tenant has braces (a hash tag)', { tenant: 'hubspot:{1}' }, 'tenant'],
      ['the object name is upper-case', { object: 'Contact' }, 'object'],
      ['the object name has a slash', { object: 'contact/x' }, 'object'],
      ['the record id has a space', { recordId: '51 01' }, 'recordId'],
      ["the record id has a ':'", { recordId: '51:01' }, 'recordId'],
      ['the record id is empty', { recordId: '' }, 'recordId'],
      ['the event id is empty', { eventId: '' }, 'eventId'],
      ['the kind is unknown', { kind: 'upsert' }, 'kind'],
      ['the source is unknown', { source: 'zoho' }, 'source'],
      ['occurredAt is not a date', { occurredAt: 'yesterday' }, 'occurredAt'],
      ['occurredAt is a date without a time', { occurredAt: '2026-11-01' }, 'occurredAt'],
      ['occurredAt has month 13', { occurredAt: '2026-13-01T12:00:00Z' }, 'occurredAt'],
      ['occurredAt is a number', { occurredAt: 1_700_000_000_000 }, 'occurredAt'],
      ['the actor is missing', { actor: undefined }, 'actor'],
      ['the actor has an unknown property', { actor: { type: 'user', id: 'u', x: 1 } }, 'actor.x'],
      ['a field value is an object', { fields: { address: { city: 'London' } } }, 'fields.address'],
      ['a field value is an array', { fields: { tags: ['a', 'b'] } }, 'fields.tags'],
      ['a field value is NaN', { fields: { score: NaN } }, 'fields.score'],
      ['a field value is Infinity', { fields: { score: Infinity } }, 'fields.score'],
      ['a field value is a bigint', { fields: { score: 1n } }, 'fields.score'],
      ['a field value is undefined', { fields: { score: undefined } }, 'fields.score'],
      ['a field is named "constructor"', { fields: { constructor: 'x' } }, 'fields.constructor'],
      ['a field name is empty', { fields: { '': 'x' } }, 'fields.'],
    ];

    for (const [condition, patch, path] of invalid) {
      describe(`when ${condition}`, () => {
        it(`rejects it with CHANGE_INVALID at ${path}`, () => {
          const failure = failureOf(() => prepareChange(badRequest(patch)));
          expect(failure).not.toBe('NO_ERROR');
          if (failure === 'NO_ERROR') return;
          expect(failure.code).toBe('CHANGE_INVALID');
          expect(failure.path).toBe(path);
          expect(failure.message).toContain(`change.${path}`);
        });
      });
    }

    describe('when the change has an unknown top-level property', () => {
      it('rejects it with CHANGE_INVALID naming the property', () => {
        const failure = failureOf(() => prepareChange(badRequest({ extra: 1 })));
        expect(failure).not.toBe('NO_ERROR');
        if (failure === 'NO_ERROR') return;
        expect(failure.code).toBe('CHANGE_INVALID');
        expect(failure.message).toContain('"extra"');
      });
    });

    describe('when a field is named "__proto__"', () => {
      it('rejects it with CHANGE_INVALID instead of dropping the field', () => {
        // JSON.parse makes "__proto__" an own property, as a parsed webhook payload would.
        const fields = JSON.parse('{"email":"a@example.com","__proto__":"x"}') as Record<
          string,
          string
        >;
        expect(Object.keys(fields)).toContain('__proto__');
        const failure = failureOf(() => prepareChange(badRequest({ fields })));
        expect(failure).not.toBe('NO_ERROR');
        if (failure === 'NO_ERROR') return;
        expect(failure.code).toBe('CHANGE_INVALID');
        expect(failure.message).toContain('change.fields.__proto__');
      });
    });

    describe('when the event is not an object', () => {
      it('rejects it with CHANGE_INVALID', () => {
        for (const event of [null, undefined, 'x', 42, []]) {
          const req = { event } as unknown as AnchorRequest;
          expect(codeOf(() => prepareChange(req))).toBe('CHANGE_INVALID');
        }
      });
    });

    describe('when a verdict is invalid', () => {
      it('rejects it with CHANGE_INVALID naming the verdict', () => {
        const req = { ...request(), verdicts: [{ type: 'info' }, { type: 'nope' }] };
        const failure = failureOf(() => prepareChange(req as unknown as AnchorRequest));
        expect(failure).not.toBe('NO_ERROR');
        if (failure === 'NO_ERROR') return;
        expect(failure.code).toBe('CHANGE_INVALID');
        expect(failure.message).toContain('verdicts[1]');
      });
    });

    describe('when the change is larger than maxChangeBytes', () => {
      const req = request();
      const size = Buffer.byteLength(canonicalize({ f: req.event.fields, v: [] }), 'utf8');

      it('accepts it at exactly the limit', () => {
        expect(codeOf(() => prepareChange(req, size))).toBe('NO_ERROR');
      });

      it('rejects it one byte over the limit with CHANGE_TOO_LARGE', () => {
        expect(codeOf(() => prepareChange(req, size - 1))).toBe('CHANGE_TOO_LARGE');
      });

      it('counts UTF-8 bytes, not UTF-16 code units', () => {
        const euro = request({ fields: { note: '\u20ac'.repeat(100) } });
        const ascii = request({ fields: { note: 'e'.repeat(100) } });
        const limit = Buffer.byteLength(canonicalize({ f: ascii.event.fields, v: [] }), 'utf8');
        expect(codeOf(() => prepareChange(ascii, limit))).toBe('NO_ERROR');
        expect(codeOf(() => prepareChange(euro, limit))).toBe('CHANGE_TOO_LARGE');
      });

      it('accepts a multi-byte change at exactly its UTF-8 size, and rejects it one byte under', () => {
        const euro = request({ fields: { note: '\u20ac'.repeat(100), n: 1.5, ok: null } });
        const exact = Buffer.byteLength(canonicalize({ f: euro.event.fields, v: [] }), 'utf8');
        expect(codeOf(() => prepareChange(euro, exact))).toBe('NO_ERROR');
        expect(codeOf(() => prepareChange(euro, exact - 1))).toBe('CHANGE_TOO_LARGE');
      });

      it('counts the verdicts too', () => {
        const verdicts = [{ type: 'anomaly' as const, reason: 'r'.repeat(500) }];
        expect(codeOf(() => prepareChange({ ...req, verdicts }, size + 100))).toBe(
          'CHANGE_TOO_LARGE',
        );
      });

      it(`applies the default limit of ${DEFAULT_MAX_CHANGE_BYTES} bytes`, () => {
        const big = (n: number) =>
          Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, 'x'.repeat(30_000)]));
        expect(codeOf(() => prepareChange(request({ fields: big(2) })))).toBe('NO_ERROR');
        expect(codeOf(() => prepareChange(request({ fields: big(3) })))).toBe('CHANGE_TOO_LARGE');
      });
    });
  });

  describe('buildBlock', () => {
    describe('when building a block from a valid change', () => {
      const event = contactEvent({ raw: { secret: 'raw-payload-marker-9f3c' } });
      const built = buildBlock(prepareChange({ event }), 7, PREV, undefined, ANCHORED_AT);
      const block = parseBlock(built);
      const vault = decodeVaultEntry(built.vault);

      it('writes canonical JSON bytes', () => {
        expect(canonicalize(JSON.parse(built.bytes))).toBe(built.bytes);
        expect(canonicalize(JSON.parse(utf8(built.vault)))).toBe(utf8(built.vault));
      });

      it('sends exactly the UTF-8 of the canonical block, each block its own bytes', () => {
        // Enough blocks, with multi-byte values (also in the actor, before the first link, and
        // in the tenant, after the last), to span several arenas of prepared and block bytes.
        const events = Array.from({ length: 1500 }, (_, i) =>
          contactEvent({
            fields: { city: `Zürich ${i} 東京 😀`, n: i, note: 'é'.repeat(i % 700) },
            actor: { type: 'user', id: `hubspot:user:${i}`, name: `Zoë ${'東'.repeat(i % 5)}` },
            eventId: `evt-${i}-ü`,
          }),
        );
        const blocks = events.map((event, i) =>
          buildBlock(
            prepareChange({ event }),
            i * 9973,
            PREV,
            i % 2 === 0 ? undefined : 'cd'.repeat(32),
            ANCHORED_AT,
          ),
        );
        blocks.forEach((b, i) => {
          const event = events[i] as ChangeEvent;
          const text = referenceBlockText(event, b, {
            prev: PREV,
            recordPrev: i % 2 === 0 ? ZERO_HASH_HEX : 'cd'.repeat(32),
            anchoredAt: ANCHORED_AT,
          });
          expect(b.encoded.equals(Buffer.from(text, 'utf8'))).toBe(true);
          expect(b.bytes).toBe(text);
          expect(b.hashHex).toBe(toHex(leafHash(Buffer.from(text, 'utf8'), sha256Reference)));
          expect(toHex(b.hash)).toBe(b.hashHex);
          expect(canonicalize(JSON.parse(utf8(b.vault)))).toBe(utf8(b.vault));
        });
      });

      it('hashes the block as the RFC 6962 leaf hash of its bytes', () => {
        expect(toHex(built.hash)).toBe(toHex(leafHash(Buffer.from(built.bytes, 'utf8'))));
        expect(built.hashHex).toBe(toHex(built.hash));
        expect(built.hashHex).toMatch(HEX64);
      });

      it('records the chain position and the change metadata', () => {
        expect(block).toEqual({
          v: 1,
          seq: 7,
          tenant: TENANT,
          prev: PREV,
          recordPrev: ZERO_HASH_HEX,
          record: { object: 'contact', id: '5101' },
          eventId: event.eventId,
          kind: 'update',
          actor: event.actor,
          occurredAt: event.occurredAt,
          anchoredAt: ANCHORED_AT,
          fields: expect.any(Object) as unknown,
          verdicts: [],
        });
        expect(built.seq).toBe(7);
        expect(built.recordKey).toBe('contact/5101');
        expect(built.idemField).toBe(idempotencyField(defaultIdempotencyKey(event)));
      });

      it('defaults recordPrev to 64 zeros and keeps a given one', () => {
        expect(block.recordPrev).toBe('0'.repeat(64));
        expect(parseBlock(build(request(), 'cd'.repeat(32))).recordPrev).toBe('cd'.repeat(32));
      });

      it('commits to every field with a 64-hex commitment', () => {
        expect(Object.keys(block.fields).sort()).toEqual(Object.keys(event.fields).sort());
        for (const c of Object.values(block.fields)) expect(c).toMatch(HEX64);
      });

      it('opens every commitment with the vault salt and value', () => {
        expect(vault.v).toBe(1);
        expect(Object.keys(vault.fields).sort()).toEqual(Object.keys(event.fields).sort());
        for (const [name, value] of Object.entries(event.fields)) {
          const opening = vault.fields[name];
          expect(opening?.value).toEqual(value);
          expect(opening?.salt).toMatch(new RegExp(`^[0-9a-f]{${2 * SALT_BYTES}}$`));
          expect(commitmentMatches(block.fields[name] as string, opening?.salt ?? '', value)).toBe(
            true,
          );
        }
      });

      it('does not open a commitment with another field, value or salt', () => {
        const email = vault.fields.email as { salt: string; value: string };
        const city = vault.fields.city as { salt: string; value: string };
        const c = block.fields.email as string;
        expect(commitmentMatches(c, email.salt, 'ada.lovelace@example.org')).toBe(false);
        expect(commitmentMatches(c, city.salt, email.value)).toBe(false);
        expect(commitmentMatches(block.fields.city as string, email.salt, email.value)).toBe(false);
        expect(commitmentMatches(block.fields.hs_email_optout as string, email.salt, false)).toBe(
          false,
        );
      });

      it('keeps plain field values and the raw payload out of the block bytes', () => {
        expect(built.bytes).not.toContain('ada.lovelace@example.com');
        expect(built.bytes).not.toContain('raw-payload-marker-9f3c');
        for (const value of Object.values(event.fields)) {
          if (typeof value === 'string') expect(built.bytes).not.toContain(value);
        }
        expect(utf8(built.vault)).toContain('ada.lovelace@example.com');
      });
    });

    describe('when the same change is built twice', () => {
      const req = request();
      const first = build(req);
      const second = build(req);

      it('uses fresh salts, so commitments and hashes differ', () => {
        const a = decodeVaultEntry(first.vault);
        const b = decodeVaultEntry(second.vault);
        const salts = new Set<string>();
        for (const name of Object.keys(req.event.fields)) {
          expect(a.fields[name]?.salt).not.toBe(b.fields[name]?.salt);
          salts.add(a.fields[name]?.salt ?? '');
          salts.add(b.fields[name]?.salt ?? '');
          expect(parseBlock(first).fields[name]).not.toBe(parseBlock(second).fields[name]);
        }
        expect(salts.size).toBe(2 * Object.keys(req.event.fields).length);
        expect(first.hashHex).not.toBe(second.hashHex);
      });

      it('keeps the idempotency field and record key', () => {
        expect(second.idemField).toBe(first.idemField);
        expect(second.recordKey).toBe(first.recordKey);
      });
    });

    describe('when the change carries verdicts', () => {
      it('writes them into the block', () => {
        const verdicts = [{ type: 'unauthorised' as const, code: 'MASS_DELETE' }];
        const built = buildBlock(
          prepareChange({ ...request(), verdicts }),
          0,
          PREV,
          undefined,
          ANCHORED_AT,
        );
        expect(parseBlock(built).verdicts).toEqual(verdicts);
      });
    });
  });

  describe('idempotencyField', () => {
    describe('when given a key', () => {
      it('returns 32 lower-case hex chars: the first 16 bytes of SHA-256(key)', () => {
        const key = `hubspot:${TENANT}:evt-1`;
        const field = idempotencyField(key);
        expect(field).toMatch(/^[0-9a-f]{32}$/);
        const digest = sha256Reference(new TextEncoder().encode(key));
        expect(field).toBe(toHex(digest.subarray(0, 16)));
      });

      it('is deterministic and differs between keys', () => {
        expect(idempotencyField('a:b:c')).toBe(idempotencyField('a:b:c'));
        expect(idempotencyField('a:b:c')).not.toBe(idempotencyField('a:b:d'));
        expect(idempotencyField('')).toMatch(/^[0-9a-f]{32}$/);
      });
    });

    describe('when no key is given', () => {
      it('defaults to <source>:<tenant>:<eventId>', () => {
        expect(defaultIdempotencyKey(contactEvent())).toBe(`hubspot:${TENANT}:evt-1-0badf00d`);
      });
    });
  });

  describe('openFields', () => {
    const built = build();
    const commitments = parseBlock(built).fields;
    const fresh = (): VaultEntry => decodeVaultEntry(built.vault);

    describe('when the vault entry is untouched', () => {
      it('opens every field as verified, from a string or from bytes', () => {
        for (const entry of [fresh(), decodeVaultEntry(utf8(built.vault))]) {
          const opened = openFields(commitments, entry);
          expect(Object.keys(opened).sort()).toEqual(Object.keys(commitments).sort());
          for (const [name, { value, verified }] of Object.entries(opened)) {
            expect(verified).toBe(true);
            expect(value).toEqual(entry.fields[name]?.value);
          }
        }
      });
    });

    describe('when a value is tampered with', () => {
      it('marks that field, and only that field, as verified: false', () => {
        const entry = fresh();
        (entry.fields.email as { value: unknown }).value = 'mallory@example.com';
        const opened = openFields(commitments, entry);
        expect(opened.email).toEqual({ value: 'mallory@example.com', verified: false });
        expect(opened.firstname?.verified).toBe(true);
      });

      it('marks a changed type (number → string, false → null) as verified: false', () => {
        const entry = fresh();
        (entry.fields.annualrevenue as { value: unknown }).value = '1200001';
        (entry.fields.hs_email_optout as { value: unknown }).value = null;
        const opened = openFields(commitments, entry);
        expect(opened.annualrevenue?.verified).toBe(false);
        expect(opened.hs_email_optout?.verified).toBe(false);
      });
    });

    describe('when a salt is tampered with', () => {
      it('marks the field as verified: false', () => {
        const entry = fresh();
        const opening = entry.fields.city as { salt: string };
        opening.salt = (opening.salt[0] === '0' ? '1' : '0') + opening.salt.slice(1);
        expect(openFields(commitments, entry).city?.verified).toBe(false);
      });
    });

    describe('when a value is tampered with and the salt lengthened to compensate', () => {
      it('marks the field as verified: false', () => {
        // SHA-256(tag || salt || "1200001") = SHA-256(tag || (salt || "1") || "200001"): without
        // a fixed salt length, moving the value's first canonical byte into the salt re-opens
        // the same commitment to a different number.
        const entry = fresh();
        const revenue = entry.fields.annualrevenue as { salt: string; value: unknown };
        revenue.salt += Buffer.from('1').toString('hex');
        revenue.value = 200001;
        const balance = entry.fields.balance as { salt: string; value: unknown };
        balance.salt += Buffer.from('-').toString('hex');
        balance.value = 5;
        const opened = openFields(commitments, entry);
        expect(opened.annualrevenue).toEqual({ value: 200001, verified: false });
        expect(opened.balance).toEqual({ value: 5, verified: false });
      });
    });

    describe('when a salt has trailing non-hex text', () => {
      it('marks the field as verified: false', () => {
        const entry = fresh();
        (entry.fields.zip as { salt: string }).salt += 'zz';
        expect(openFields(commitments, entry).zip?.verified).toBe(false);
      });
    });

    describe('when a field has no opening in the vault entry', () => {
      it('returns value undefined, verified: false', () => {
        const entry = fresh();
        delete entry.fields.phone;
        expect(openFields(commitments, entry).phone).toEqual({ value: undefined, verified: false });
      });
    });

    describe('when two openings are swapped', () => {
      it('marks both fields as verified: false', () => {
        const entry = fresh();
        const { firstname, lastname } = entry.fields;
        entry.fields.firstname = lastname as VaultEntry['fields'][string];
        entry.fields.lastname = firstname as VaultEntry['fields'][string];
        const opened = openFields(commitments, entry);
        expect(opened.firstname?.verified).toBe(false);
        expect(opened.lastname?.verified).toBe(false);
      });
    });
  });
});

describe('buildBlock canonical assembly', () => {
  describe('when changes have arbitrary field names, values, actors and verdicts', () => {
    it('produces exactly canonicalize(block) and canonicalize(vault entry)', () => {
      let seed = 99;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
      const names = [
        'email',
        'Éclair',
        'z',
        'a',
        '\u20ac',
        '\ud83d\ude00',
        'é',
        'A',
        '_x',
        'n\u0000ul',
        'q"uote',
        'tab\t',
      ];
      const values = [
        '',
        'x',
        'ünïcödé',
        '\u2028',
        'line\nbreak',
        0,
        -0,
        1e21,
        1.5e-7,
        123456789,
        true,
        false,
        null,
      ];
      for (let i = 0; i < 300; i++) {
        const fields: Record<string, string | number | boolean | null> = {};
        for (let j = Math.floor(rand() * 6); j > 0; j--) fields[pick(names)] = pick(values);
        const actor =
          rand() < 0.5
            ? { type: 'user', id: `u${i}` }
            : { type: 'integration', id: 'x:y', name: pick(['Ünï', 'Bob']) };
        const verdicts =
          rand() < 0.3
            ? [
                {
                  type: 'duplicate' as const,
                  reason: 'same email',
                  candidates: ['1', '2'],
                  score: 0.93,
                },
              ]
            : [];
        const change = prepareChange({
          event: {
            tenant: 'hubspot:42',
            source: 'hubspot',
            object: 'contact',
            recordId: String(i),
            eventId: `e${i}`,
            kind: pick(['create', 'update', 'delete'] as const),
            actor,
            occurredAt: '2026-11-26T10:00:00.000Z',
            fields,
          },
          verdicts,
        });
        const prev = 'ab'.repeat(32);
        const recordPrev = rand() < 0.5 ? undefined : 'cd'.repeat(32);
        const built = buildBlock(change, i, prev, recordPrev, '2026-11-26T10:00:01.000Z');
        const block = JSON.parse(built.bytes) as Record<string, unknown>;
        expect(canonicalize(block)).toBe(built.bytes);
        expect(block).toMatchObject({
          v: 1,
          seq: i,
          prev,
          recordPrev: recordPrev ?? '0'.repeat(64),
          tenant: 'hubspot:42',
          record: { object: 'contact', id: String(i) },
          actor,
          verdicts,
        });
        expect(Object.keys(block['fields'] as object).sort()).toEqual(Object.keys(fields).sort());
        expect(canonicalize(JSON.parse(utf8(built.vault)))).toBe(utf8(built.vault));
        const text = referenceBlockText(
          change.event,
          built,
          { prev, recordPrev: recordPrev ?? ZERO_HASH_HEX, anchoredAt: '2026-11-26T10:00:01.000Z' },
          verdicts,
        );
        expect(built.encoded.equals(Buffer.from(text, 'utf8'))).toBe(true);
      }
    });
  });
});
