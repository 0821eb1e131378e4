import { describe, expect, it } from 'vitest';
import { cosignatureBody } from '../../../src/http/admin.routes.js';
import type { CosignatureEntry } from '../../../src/ledger/store.js';

const note =
  'log.example/hubspot:1\n8\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 log.example AAAA\n';
const entry = (witness: string, size: number): CosignatureEntry => ({
  witness,
  size,
  timestamp: 1_800_000_000,
  line: `\u2014 ${witness} BBBB`,
  receivedAt: '2027-01-15T08:00:00.000Z',
});

describe('cosignatureBody', () => {
  describe('when k of n witnesses cosigned the latest checkpoint', () => {
    it('is confirmed, and the cosigned note carries exactly their lines', () => {
      const body = cosignatureBody(
        { size: 8, note },
        [entry('w1', 8), entry('w2', 8), entry('w3', 5)],
        2,
      );
      expect(body.confirmed).toBe(true);
      expect(body.cosigned).toBe(`${note}\u2014 w1 BBBB\n\u2014 w2 BBBB\n`);
      expect((body.cosignatures as { current: boolean }[]).map((c) => c.current)).toEqual([
        true,
        true,
        false,
      ]);
    });
  });

  describe('when fewer than k cosigned the latest checkpoint', () => {
    it('is not confirmed (a cosignature of an older size does not count)', () => {
      const body = cosignatureBody({ size: 8, note }, [entry('w1', 8), entry('w3', 5)], 2);
      expect(body.confirmed).toBe(false);
    });
  });

  describe('when there is no checkpoint', () => {
    it('is not confirmed and has no cosigned note', () => {
      expect(cosignatureBody(undefined, [], 1)).toMatchObject({ confirmed: false, cosigned: null });
    });
  });
});
