import { describe, expect, it } from 'vitest';
import { HIDDEN_JOB_VALUE, redactJobData } from '../../../src/pipeline/bull-board.js';

describe('redactJobData', () => {
  describe('when a changes job holds field values', () => {
    it('hides the values and keeps ids, kinds and counts readable', () => {
      const job = {
        source: 'hubspot',
        receivedAt: '2026-11-01T12:00:00Z',
        events: [
          {
            idempotencyKey: 'hubspot.1.2',
            event: {
              tenant: 'hubspot:1',
              recordId: '42',
              kind: 'update',
              fields: { email: 'ada@example.com' },
              raw: { properties: { email: 'ada@example.com' } },
            },
          },
        ],
      };
      const out = redactJobData(job);
      expect(JSON.stringify(out)).not.toContain('ada@example.com');
      expect(out).toEqual({
        source: 'hubspot',
        receivedAt: '2026-11-01T12:00:00Z',
        events: [
          {
            idempotencyKey: 'hubspot.1.2',
            event: {
              tenant: 'hubspot:1',
              recordId: '42',
              kind: 'update',
              fields: HIDDEN_JOB_VALUE,
              raw: HIDDEN_JOB_VALUE,
            },
          },
        ],
      });
    });
  });

  it('hides whatever lies deeper than it walks, and leaves scalars alone', () => {
    let deep: unknown = 'secret';
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expect(JSON.stringify(redactJobData(deep))).not.toContain('secret');
    expect(redactJobData(7)).toBe(7);
    expect(redactJobData(null)).toBeNull();
  });
});
