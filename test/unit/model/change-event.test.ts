import { describe, expect, it } from 'vitest';
import { changeEventParser, changeEventSchema } from '../../../src/model/change-event.js';

/** A valid change, built fresh each time (the parsers must not be handed shared objects). */
function valid(): Record<string, unknown> {
  return {
    tenant: 'hubspot:123456',
    source: 'hubspot',
    object: 'contact',
    recordId: '5101',
    eventId: 'evt-1',
    kind: 'update',
    actor: { type: 'user', id: 'hubspot:user:3', name: 'Ada' },
    occurredAt: '2026-11-01T12:00:01.000+02:00',
    fields: { email: 'a@example.com', n: 42, ok: true, gone: null },
  };
}

/** One mutation per rule of the schema, each of which the runtime parser rejects or accepts. */
const MUTATIONS: [string, (e: Record<string, unknown>) => void][] = [
  ['nothing', () => {}],
  ['an unknown key', (e) => (e.extra = 1)],
  ['a raw payload', (e) => (e.raw = { any: ['thing'] })],
  ['a bad tenant', (e) => (e.tenant = 'hubspot:')],
  ['a salesforce tenant', (e) => (e.tenant = 'salesforce:00D000000000001')],
  ['a bad source', (e) => (e.source = 'zoho')],
  ['an upper-case object', (e) => (e.object = 'Contact')],
  ['a record id with a slash', (e) => (e.recordId = 'a/b')],
  ['an empty event id', (e) => (e.eventId = '')],
  ['a 257-char event id', (e) => (e.eventId = 'x'.repeat(257))],
  ['an unknown kind', (e) => (e.kind = 'upsert')],
  ['an actor without id', (e) => (e.actor = { type: 'user' })],
  ['an actor with an extra key', (e) => (e.actor = { type: 'u', id: 'i', role: 'x' })],
  ['an actor name of undefined', (e) => (e.actor = { type: 'u', id: 'i', name: undefined })],
  ['a date without offset', (e) => (e.occurredAt = '2026-11-01T12:00:01')],
  ['month 13', (e) => (e.occurredAt = '2026-13-01T12:00:01Z')],
  ['hour 24 offset', (e) => (e.occurredAt = '2026-11-01T12:00:01+24:00')],
  ['a Date object', (e) => (e.occurredAt = new Date(0))],
  ['fields as an array', (e) => (e.fields = ['a'])],
  ['fields as a Map', (e) => (e.fields = new Map())],
  ['an empty field name', (e) => (e.fields = { '': 1 })],
  ['a field named constructor', (e) => (e.fields = { constructor: 1 })],
  ['a 256-char field name', (e) => (e.fields = { ['f'.repeat(256)]: 1 })],
  ['an infinite number', (e) => (e.fields = { n: Infinity })],
  ['NaN', (e) => (e.fields = { n: NaN })],
  ['an object value', (e) => (e.fields = { o: { a: 1 } })],
  ['an undefined value', (e) => (e.fields = { u: undefined })],
  ['a 65,537-char string', (e) => (e.fields = { s: 'x'.repeat(65_537) })],
  ['a 65,536-char string', (e) => (e.fields = { s: 'x'.repeat(65_536) })],
  ['no fields', (e) => (e.fields = {})],
  ['a missing tenant', (e) => delete e.tenant],
  ['null', (e) => Object.keys(e).forEach((k) => delete e[k])],
];

describe('changeEventParser', () => {
  for (const [what, mutate] of MUTATIONS) {
    describe(`when the change has ${what}`, () => {
      it('gives the runtime parser’s answer: same success, same data or same issues', () => {
        const input = valid();
        mutate(input);
        const runtime = changeEventSchema.safeParse(input);
        const compiled = changeEventParser.safeParse(input);
        expect(compiled.success).toBe(runtime.success);
        if (runtime.success && compiled.success) {
          expect(compiled.data).toStrictEqual(runtime.data);
          expect(compiled.data).not.toBe(input);
        } else {
          expect(compiled.error?.issues).toStrictEqual(runtime.error?.issues);
        }
      });
    });
  }

  describe('when given a non-object', () => {
    it('rejects it as the runtime parser does', () => {
      for (const input of [null, 'x', 1, [], undefined]) {
        expect(changeEventParser.safeParse(input).success).toBe(false);
        expect(changeEventSchema.safeParse(input).success).toBe(false);
      }
    });
  });
});
