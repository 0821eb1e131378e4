/**
 * A HubSpot privacyDeletion survives a failure between its append and its erasure: the real
 * anchor worker appends the deletion block and then cannot queue the erasure (its Redis
 * connection for the erasures queue is cut: a real fault, through a TCP proxy), so its job fails
 * after the append and is retried; the retry finds the block already anchored (a replay) and
 * still queues the erasure, which the real erasure worker performs. Erasing the same deletion
 * again (a re-added job, a redelivered webhook) anchors no second erasure block.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import type { Worker } from 'bullmq';
import { connect, randomTenant, testQueueConnection, testRedisUrl } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { startProxy } from '../helpers/tcp-proxy.js';
import type { ReplyDroppingProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import {
  createErasureSink,
  ERASURES_QUEUE,
  erasureJobId,
  PRIVACY_DELETION_ERASURE,
  startErasureWorker,
} from '../../src/pipeline/erasures.js';
import type { ErasureJob, ErasureSink } from '../../src/pipeline/erasures.js';
import {
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
} from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { createSubjectService } from '../../src/pipeline/subject-service.js';
import { StaticKeyWrapper } from '../../src/vault/key-wrapper.js';
import type { SubjectService } from '../../src/vault/subjects.js';
import { ERASED_ENTRY, RecordVault } from '../../src/vault/vault.js';

const PREFIX = `{cl-test-erasure-crash-${process.pid}-${Date.now()}}`;
const logger = createLogger({ level: 'silent' });
const SECRET_EMAIL = 'crash.erasure.q7x@example.org';

let redis: Redis;
let ledger: Ledger;
let proxy: ReplyDroppingProxy;
let cutSink: ErasureSink;
let changes: Queue<ChangesJob>;
let erasures: Queue<ErasureJob>;
let anchorWorker: Worker<ChangesJob, JobResult>;
let erasureWorker: Worker<ErasureJob, void>;
let subjects: SubjectService;
const tenant = randomTenant();

async function blocksOf(id: string) {
  const index = await ledger.store.readRecord(tenant, `contact/${id}`);
  const blocks = await ledger.readBlocks(
    tenant,
    index.map((e) => e.seq),
  );
  return blocks.map((b, i) => ({ ...b!.block, seq: index[i]!.seq }));
}

function privacyDeletion(id: string) {
  const { event } = contactChange(tenant, id, {
    kind: 'delete',
    fields: { privacyDeletion: true },
  });
  return {
    source: 'hubspot' as const,
    receivedAt: new Date().toISOString(),
    events: [
      { event: { ...event, eventId: `pd-${id}` }, idempotencyKey: `hubspot|${tenant}|pd-${id}` },
    ],
  };
}

beforeAll(async () => {
  redis = connect();
  const vault = new RecordVault(redis, new StaticKeyWrapper([randomBytes(32)]));
  ledger = createTestLedger(redis, undefined, { vault });
  proxy = await startProxy(Number(new URL(testRedisUrl()).port));
  // The anchor worker queues erasures through the proxy (a producer's connection: it fails at
  // once while Redis is unreachable instead of waiting).
  cutSink = createErasureSink(connectionFromUrl(proxy.url, 'producer'), PREFIX);
  changes = createChangesQueue(testQueueConnection(), PREFIX);
  erasures = new Queue<ErasureJob>(ERASURES_QUEUE, {
    connection: testQueueConnection(),
    prefix: PREFIX,
  });
  anchorWorker = startAnchorWorker({
    connection: testQueueConnection(),
    ledger,
    logger,
    prefix: PREFIX,
    batchSize: 8,
    batchWaitMs: 5,
    erasures: cutSink,
  });
  subjects = createSubjectService({
    redis,
    store: ledger.store,
    vault,
    verifiers: ledger.verifiers,
    ledger,
    queue: changes,
    compactAof: false,
  });
  erasureWorker = startErasureWorker({
    connection: testQueueConnection(),
    subjects,
    logger,
    prefix: PREFIX,
  });
});

afterAll(async () => {
  await anchorWorker?.close();
  await erasureWorker?.close();
  await cutSink?.close();
  await erasures?.close();
  await changes?.close();
  await proxy?.close();
  await redis?.quit();
});

describe('privacyDeletion erasure', () => {
  describe('when the worker fails between the append and queuing the erasure', () => {
    it('the retried job (a replay) queues it, and the record is erased once', async () => {
      const sink = createChangeSink(changes);
      const seed = contactChange(tenant, '901');
      await sink.enqueue({
        source: 'hubspot',
        receivedAt: new Date().toISOString(),
        events: [
          {
            event: { ...seed.event, fields: { ...seed.event.fields, email: SECRET_EMAIL } },
            idempotencyKey: `seed-${tenant}-901`,
          },
        ],
      });
      await until(
        'the seed anchored',
        () => blocksOf('901'),
        (b) => b.length === 1,
      );
      const dataKeys = new LedgerKeys(tenant).dataKeys;
      expect(await redis.hexists(dataKeys, 'contact/901')).toBe(1);

      // Redis unreachable for the erasures queue: the deletion is appended, the queuing fails.
      proxy.refuseConnections(true);
      proxy.cutConnections();
      await sink.enqueue(privacyDeletion('901'));
      await until(
        'the deletion anchored',
        () => blocksOf('901'),
        (b) => b.length === 2,
      );
      const failedOnce = await until(
        'the anchor job failed after the append',
        async () => (await changes.getJobs(['delayed', 'waiting', 'active'])).map((j) => j),
        (jobs) => jobs.some((j) => j.attemptsMade >= 1),
        20_000,
      );
      expect(failedOnce[0]?.failedReason).toBeTruthy();
      // Nothing erased yet: no erasure queued, the key and the values are still there.
      expect(await erasures.getJobCounts()).toMatchObject({ waiting: 0, completed: 0 });
      expect(await redis.hexists(dataKeys, 'contact/901')).toBe(1);
      expect((await blocksOf('901')).some((b) => b.kind === 'erasure')).toBe(false);

      proxy.refuseConnections(false);
      const blocks = await until(
        'the erasure block',
        () => blocksOf('901'),
        (b) => b.some((x) => x.kind === 'erasure'),
        30_000,
      );
      await until(
        'the anchor job completed',
        () => changes.getJobCounts('waiting', 'delayed', 'active', 'failed'),
        (c) => Object.values(c).every((n) => n === 0),
        20_000,
      );
      const erasureBlocks = (await blocksOf('901')).filter((b) => b.kind === 'erasure');
      expect(erasureBlocks).toHaveLength(1);
      expect(erasureBlocks[0]?.actor.id).toBe(PRIVACY_DELETION_ERASURE.by);
      expect(blocks.filter((b) => b.kind === 'delete')).toHaveLength(1);
      // Crypto-shredded: no data key, the seed's and the deletion's entries overwritten.
      expect(await redis.hexists(dataKeys, 'contact/901')).toBe(0);
      const entries = await ledger.store.readVaultEntries(
        tenant,
        blocks.filter((b) => b.kind !== 'erasure').map((b) => b.seq),
      );
      expect(entries).toEqual([ERASED_ENTRY, ERASED_ENTRY]);
      expect((await ledger.verify(tenant)).ok).toBe(true);
    }, 60_000);
  });

  describe('when the same deletion is erased again', () => {
    it('anchors no second erasure block (re-added job, redelivered webhook, direct call)', async () => {
      const blocks = await blocksOf('901');
      const deletion = blocks.find((b) => b.kind === 'delete')!;
      const job: ErasureJob = { tenant, object: 'contact', id: '901', seq: deletion.seq };
      const id = erasureJobId(job);
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      expect(await erasures.getJobState(id)).toBe('completed');

      // The job removed and queued again: the worker erases again, as a replay.
      await erasures.remove(id);
      const again = createErasureSink(testQueueConnection(), PREFIX);
      try {
        await again.enqueue([job]);
      } finally {
        await again.close();
      }
      await until(
        'the re-added erasure done',
        () => erasures.getJobState(id),
        (s) => s === 'completed' || s === 'failed',
        20_000,
      );
      expect(await erasures.getJobState(id)).toBe('completed');

      // The webhook delivered again: the deletion is a replay, the erasure job is the same.
      await createChangeSink(changes).enqueue({
        ...privacyDeletion('901'),
        receivedAt: new Date(Date.now() + 1).toISOString(),
      });
      await until(
        'the redelivery handled',
        () => changes.getJobCounts('waiting', 'delayed', 'active'),
        (c) => Object.values(c).every((n) => n === 0),
        20_000,
      );

      const report = await subjects.erase(
        { tenant, object: 'contact', id: '901' },
        { ...PRIVACY_DELETION_ERASURE, erasureId: id },
      );
      expect(report.erasureId).toBe(id);
      expect(report.records[0]).toMatchObject({ replayed: true });
      const erasureBlocks = (await blocksOf('901')).filter((b) => b.kind === 'erasure');
      expect(erasureBlocks).toHaveLength(1);
      expect(report.records[0]?.block?.seq).toBe(erasureBlocks[0]?.seq);
      expect((await blocksOf('901')).filter((b) => b.kind === 'delete')).toHaveLength(1);
      expect((await ledger.verify(tenant)).ok).toBe(true);
    }, 60_000);
  });
});
