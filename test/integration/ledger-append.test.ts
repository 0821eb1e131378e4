import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { openCheckpoint } from '../../src/ledger/checkpoint.js';
import { InputError } from '../../src/errors.js';

let redis: Redis;
let ledger: Ledger;
const signer = testSigner();

beforeAll(() => {
  redis = connect();
  ledger = createTestLedger(redis, signer);
});
afterAll(async () => {
  await redis.quit();
});

describe('Ledger.append', () => {
  describe('when a batch of changes is appended to an empty chain', () => {
    it('anchors each change as a block in order and signs a checkpoint covering them', async () => {
      const tenant = randomTenant();
      const changes = [
        contactChange(tenant, '1'),
        contactChange(tenant, '2'),
        contactChange(tenant, '1'),
      ];
      const result = await ledger.append(tenant, changes);
      expect(result.anchored.map((a) => a.seq)).toEqual([0, 1, 2]);
      expect(result.skipped).toEqual([]);
      expect(result.size).toBe(3);
      const cp = openCheckpoint(result.checkpoint.note, ledger.verifiers, ledger.originFor(tenant));
      expect(cp.size).toBe(3);
      const verdict = await ledger.verify(tenant);
      expect(verdict).toMatchObject({ ok: true, size: 3, checkpointSize: 3 });
    });
  });

  describe('when the same change is appended twice', () => {
    it('anchors it once and reports the replay with the seq of the original block', async () => {
      const tenant = randomTenant();
      const change = contactChange(tenant, '7');
      const first = await ledger.append(tenant, [change]);
      const again = await ledger.append(tenant, [change, contactChange(tenant, '8')]);
      expect(again.skipped).toEqual([
        { index: 0, seq: first.anchored[0]?.seq, code: 'ALREADY_ANCHORED' },
      ]);
      expect(again.anchored.map((a) => a.seq)).toEqual([1]);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 2 });
    });

    it('settles replays that race a refused batch (the size it reports is real, not predicted)', async () => {
      // A worker taking over a dead worker's jobs replays batches that are already anchored. One
      // replay is built on the predicted head (head + its size) and refused; a second replay started
      // meanwhile must not report that predicted size, or the wait for a checkpoint covering it
      // would never end.
      const tenant = randomTenant();
      const batch = Array.from({ length: 20 }, (_, i) => contactChange(tenant, `r${i}`));
      await ledger.append(tenant, batch);
      const first = ledger.append(tenant, batch);
      await new Promise((r) => setImmediate(r));
      const second = ledger.append(tenant, batch);
      const settled = await Promise.race([
        Promise.all([first, second]),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5_000)),
      ]);
      expect(settled).not.toBe('hung');
      const [a, b] = settled as Awaited<typeof first>[];
      for (const r of [a, b]) {
        expect(r?.anchored).toEqual([]);
        expect(r?.skipped).toHaveLength(20);
        expect(r?.size).toBe(20);
      }
    });

    it('skips a duplicate inside one batch', async () => {
      const tenant = randomTenant();
      const change = contactChange(tenant, '7');
      const r = await ledger.append(tenant, [change, change]);
      expect(r.anchored).toHaveLength(1);
      expect(r.skipped).toEqual([{ index: 1, seq: 0, code: 'DUPLICATE_IN_BATCH' }]);
    });
  });

  describe('when records change several times', () => {
    it('links each block to the previous block of the same record', async () => {
      const tenant = randomTenant();
      await ledger.append(tenant, [contactChange(tenant, 'a'), contactChange(tenant, 'b')]);
      await ledger.append(tenant, [contactChange(tenant, 'a')]);
      const blocks = await Promise.all([0, 1, 2].map((s) => ledger.store.readBlock(tenant, s)));
      const parsed = blocks.map(
        (b) => JSON.parse(String(b)) as { recordPrev: string; prev: string },
      );
      const history = await ledger.store.readRecord(tenant, 'contact/a');
      expect(history.map((e) => e.seq)).toEqual([0, 2]);
      expect(history[1]?.hash).toBe(
        parsed[2] &&
          (await ledger.store.readRecordHeads(tenant, ['contact/a'])).get('contact/a')?.hash,
      );
      expect(parsed[2]?.recordPrev).toBe(parsed[1]?.prev);
      expect(parsed[1]?.recordPrev).toBe('0'.repeat(64));
    });
  });

  describe('when many appends run at once in one process and from a second ledger', () => {
    it('never forks the chain: every change is anchored exactly once', async () => {
      const tenant = randomTenant();
      const other = createTestLedger(connect(), signer);
      const batches = Array.from({ length: 40 }, (_, i) =>
        Array.from({ length: 5 }, (_, j) => contactChange(tenant, `r${(i * 5 + j) % 17}`)),
      );
      const results = await Promise.all(
        batches.map((b, i) => (i % 2 === 0 ? ledger : other).append(tenant, b)),
      );
      const seqs = results.flatMap((r) => r.anchored.map((a) => a.seq)).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i));
      const v = await ledger.verify(tenant);
      expect(v, JSON.stringify(v)).toMatchObject({ ok: true, size: 200 });
      await other.store.redis.quit();
    });
  });

  describe('when a change is invalid', () => {
    it('rejects the whole batch with a code before writing anything', async () => {
      const tenant = randomTenant();
      const bad = contactChange(tenant, '1');
      (bad.event as { recordId: string }).recordId = 'has space';
      await expect(ledger.append(tenant, [contactChange(tenant, '2'), bad])).rejects.toMatchObject({
        code: 'CHANGE_INVALID',
      });
      const huge = contactChange(tenant, '3', {
        fields: { notes: 'x'.repeat(30_000), more: 'y'.repeat(30_000), extra: 'z'.repeat(10_000) },
      });
      await expect(ledger.append(tenant, [huge])).rejects.toBeInstanceOf(InputError);
      await expect(ledger.append(tenant, [huge])).rejects.toMatchObject({
        code: 'CHANGE_TOO_LARGE',
      });
      const nan = contactChange(tenant, '4', { fields: { score: Number.NaN } });
      await expect(ledger.append(tenant, [nan])).rejects.toMatchObject({ code: 'CHANGE_INVALID' });
      expect(await ledger.store.readHead(tenant)).toEqual({ size: 0, hash: '' });
    });
  });
});
