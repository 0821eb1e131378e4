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

  describe('when the tail is not in the expected shape', () => {
    it('falls back to JSON.parse (and throws for non-JSON)', () => {
      const odd = Buffer.from('{"fields":{},"kind":"update","seq":"\\u0031","v":1}');
      expect(parseLinks(odd)).toMatchObject({ seq: '1', v: 1 });
      expect(() => parseLinks(Buffer.from('{"fields":{},"kind":"x'))).toThrow();
    });
  });
});
