import { describe, expect, it } from 'vitest';
import { buildBlock, prepareChange } from '../../../src/ledger/block.js';
import { parseLinks } from '../../../src/ledger/verifier.js';

function block(overrides: Record<string, unknown>, verdicts: Record<string, unknown>[] = []) {
  const change = prepareChange({
    event: {
      tenant: 'salesforce:00D000000000001AAA',
      source: 'salesforce',
      object: 'my_object__c',
      recordId: 'a0D30000001n7Pi',
      eventId: 'n-1',
      kind: 'update',
      actor: { type: 'user', id: 'u' },
      occurredAt: '2026-11-26T10:00:00.000+02:00',
      fields: { '},"kind":"': 'x', prev: 'y', seq: 1 },
      ...overrides,
    },
    verdicts: verdicts as never,
  });
  return Buffer.from(
    buildBlock(change, 12345, 'ab'.repeat(32), 'cd'.repeat(32), '2026-11-26T10:00:01.000Z').bytes,
  );
}

describe('parseLinks', () => {
  describe('when a block is as our appender writes it', () => {
    it('reads the link members exactly as JSON.parse does, even with hostile field names', () => {
      for (const bytes of [
        block({}),
        block({ object: 'contact', recordId: '1' }, [
          { type: 'anomaly', record: { id: 'x' }, seq: 9 },
        ]),
      ]) {
        const full = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
        const links = parseLinks(bytes);
        for (const key of ['v', 'seq', 'tenant', 'prev', 'recordPrev', 'record'] as const) {
          expect(links[key]).toEqual(full[key]);
        }
      }
    });
  });

  describe('when blocks vary in every member the byte scanner reads', () => {
    it('reads them as JSON.parse does', () => {
      const variants: [Record<string, unknown>, Record<string, unknown>[]][] = [
        [{ tenant: 'hubspot:1', source: 'hubspot', object: 'c', recordId: '0' }, []],
        [{ object: 'a_1__c', recordId: 'A-z.9_~'.repeat(18).slice(0, 128) }, []],
        [{ kind: 'reconciled', occurredAt: '2026-01-01T00:00:00Z' }, [{ type: 'duplicate' }]],
        [{ tenant: 'salesforce:' + 'x'.repeat(64) }, []],
      ];
      for (const [overrides, verdicts] of variants) {
        const bytes = block(overrides, verdicts);
        const full = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
        const links = parseLinks(bytes);
        for (const key of ['v', 'seq', 'tenant', 'prev', 'recordPrev', 'record'] as const) {
          expect(links[key]).toEqual(full[key]);
        }
      }
    });
  });

  describe('when a member is outside the shape the appender writes', () => {
    it('still reads it as JSON.parse does (through JSON.parse)', () => {
      const good = block({}).toString('latin1');
      for (const odd of [
        good.replace('"seq":12345', '"seq":012345'),
        good.replace('"seq":12345', '"seq":1.2345e4'),
        good.replace('"v":1', '"v":2'),
        good.replace('"prev":"abab', '"prev":"ABAB'),
        good.replace('"recordPrev":"cdcd', '"recordPrev":"cdc"'),
        good.replace('"id":"a0D30000001n7Pi"', '"id":"a0D\\u0033"'),
        good.replace('"tenant":"salesforce:', '"tenant":"zoho:'),
      ]) {
        let full: unknown;
        try {
          full = JSON.parse(odd);
        } catch {
          expect(() => parseLinks(Buffer.from(odd, 'latin1'))).toThrow();
          continue;
        }
        const links = parseLinks(Buffer.from(odd, 'latin1'));
        for (const key of ['v', 'seq', 'tenant', 'prev', 'recordPrev', 'record'] as const) {
          expect(links[key]).toEqual((full as Record<string, unknown>)[key]);
        }
      }
    });
  });

  describe('when the tail is not in the expected shape', () => {
    it('falls back to JSON.parse (and throws for non-JSON)', () => {
      const odd = Buffer.from('{"fields":{},"kind":"update","seq":"\\u0031","v":1}');
      expect(parseLinks(odd)).toMatchObject({ seq: '1', v: 1 });
      expect(() => parseLinks(Buffer.from('{"fields":{},"kind":"x'))).toThrow();
    });
  });
});
