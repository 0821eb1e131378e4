/**
 * Queue → anchor worker → ledger, for real: BullMQ on the test Redis, the worker pooling requests
 * per tenant, every change anchored once under a signed checkpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { Queue, Worker } from 'bullmq';
import { connect, randomTenant, testRedisUrl } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { createChangeSink, createChangesQueue, jobIdFor } from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { ParsedEvent } from '../../connectors/types.js';

let redis: Redis;
let ledger: Ledger;
let queue: Queue<ChangesJob>;
let worker: Worker<ChangesJob, JobResult>;
const logger = createLogger({ level: 'silent' });
// Our own queue prefix: jobs of other test files on the shared Redis are not ours to run.
const PREFIX = `{cl-test-${process.pid}-${Date.now()}}`;

function parsedEvents(tenant: string, n: number, prefix: string): ParsedEvent[] {
  return Array.from({ length: n }, (_, i) => {
    const { event } = contactChange(tenant, `${prefix}${i % 7}`);
    return {
      event: { ...event, eventId: `${prefix}-${i}` },
      idempotencyKey: `test|${tenant}|${prefix}-${i}`,
    };
  });
}

async function waitForSize(tenant: string, size: number, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const cp = await ledger.store.latestCheckpoint(tenant);
    if (cp && cp.size >= size) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${tenant} did not reach ${size} blocks`);
}

beforeAll(() => {
  redis = connect();
  ledger = createTestLedger(redis);
  const url = new URL(testRedisUrl());
  const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
  queue = createChangesQueue(connection, PREFIX);
  worker = startAnchorWorker({
    connection,
    ledger,
    logger,
    batchSize: 64,
    batchWaitMs: 10,
    prefix: PREFIX,
  });
});
afterAll(async () => {
  await worker.close();
  await queue.close();
  await redis.quit();
});

describe('changes queue and anchor worker', () => {
  it('job ids are hex SHA-256 (no ":"), the same for a redelivered request', () => {
    const events = parsedEvents('hubspot:1', 3, 'j');
    expect(jobIdFor(events)).toMatch(/^[0-9a-f]{64}$/);
    expect(jobIdFor(events)).toBe(jobIdFor(structuredClone(events)));
  });

  describe('when many requests for several tenants are queued', () => {
    it('anchors every change once, pooled into batches, and the chains verify', async () => {
      const sink = createChangeSink(queue);
      const tenants = [randomTenant(), randomTenant('salesforce')];
      for (let r = 0; r < 30; r++) {
        for (const tenant of tenants)
          await sink.enqueue({
            source: 'hubspot',
            receivedAt: new Date().toISOString(),
            events: parsedEvents(tenant, 20, `r${r}`),
          });
      }
      for (const tenant of tenants) {
        await waitForSize(tenant, 600);
        expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 600 });
      }
      // Batches were pooled across requests: fewer checkpoints than requests.
      const checkpoints = await redis.zcard(ledger.store.keys(tenants[0] as string).checkpoints);
      expect(checkpoints).toBeLessThan(30);
    });
  });

  describe('when the same request is delivered twice', () => {
    it('anchors its changes once', async () => {
      const sink = createChangeSink(queue);
      const tenant = randomTenant();
      const events = parsedEvents(tenant, 10, 'dup');
      await sink.enqueue({ source: 'hubspot', receivedAt: new Date().toISOString(), events });
      await waitForSize(tenant, 10);
      // After completion the job is removed, so this one runs: the ledger skips every change.
      await sink.enqueue({ source: 'hubspot', receivedAt: new Date().toISOString(), events });
      await sink.enqueue({
        source: 'hubspot',
        receivedAt: new Date().toISOString(),
        events: [...events, ...parsedEvents(tenant, 1, 'new')],
      });
      await waitForSize(tenant, 11);
      await new Promise((r) => setTimeout(r, 300));
      expect(await ledger.store.readHead(tenant)).toMatchObject({ size: 11 });
    });
  });

  describe('when one change of a request is invalid', () => {
    it('anchors the others and keeps the job, failed for good, for inspection', async () => {
      const sink = createChangeSink(queue);
      const tenant = randomTenant();
      const events = parsedEvents(tenant, 5, 'bad');
      (events[2] as ParsedEvent).event = {
        ...(events[2] as ParsedEvent).event,
        recordId: 'has space',
      };
      const { jobId } = await sink.enqueue({
        source: 'hubspot',
        receivedAt: new Date().toISOString(),
        events,
      });
      await waitForSize(tenant, 4);
      let state = '';
      for (let i = 0; i < 100 && state !== 'failed'; i++) {
        state = await queue.getJobState(jobId);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(state).toBe('failed');
      const job = await queue.getJob(jobId);
      expect(job?.failedReason).toContain('bad-2 (CHANGE_INVALID');
      expect(job?.attemptsMade).toBe(1);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 4 });
    });
  });
});
