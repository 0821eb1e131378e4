/**
 * Tamper response: a verification that finds a changed block freezes the tenant; appends are
 * refused in the append script itself; queued requests wait without using attempts; after the
 * block is repaired, resume (only on a chain that verifies) unfreezes, anchors an admin block, and
 * every queued change is anchored once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { Queue, Worker } from 'bullmq';
import { connect, randomTenant, testQueueConnection } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { createChangeSink, createChangesQueue } from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import { ADMIN_RECORD, resumeTenant } from '../../src/pipeline/freeze.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import { LedgerError } from '../../src/errors.js';

const PREFIX = `{cl-test-freeze-${process.pid}-${Date.now()}}`;
let redis: Redis;
let ledger: Ledger;
let queue: Queue<ChangesJob>;
let worker: Worker<ChangesJob, JobResult>;
let verification: VerificationService;
let dir: string;
const tampered: string[] = [];

const connection = testQueueConnection;

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('timed out');
}

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis);
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-freeze-'));
  verification = new VerificationService(
    ledger.store,
    { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
    new FileTrustStore(dir),
    { onTampered: (tenant) => tampered.push(tenant) },
  );
  queue = createChangesQueue(connection(), PREFIX);
  worker = startAnchorWorker({
    connection: connection(),
    ledger,
    logger: createLogger({ level: 'silent' }),
    prefix: PREFIX,
    batchWaitMs: 5,
    frozenRetryMs: 100,
  });
});
afterAll(async () => {
  await worker.close();
  await queue.close();
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('freeze, keep queuing, repair, resume', () => {
  it('loses nothing and anchors the queued changes once after resume', async () => {
    const tenant = randomTenant();
    const sink = createChangeSink(queue);
    const send = async (n: number, tag: string) => {
      for (let i = 0; i < n; i++) {
        const { event } = contactChange(tenant, `${tag}${i % 5}`);
        await sink.enqueue({
          source: 'hubspot',
          receivedAt: new Date().toISOString(),
          events: [
            {
              event: { ...event, eventId: `${tag}-${i}` },
              idempotencyKey: `${tenant}|${tag}|${i}`,
            },
          ],
        });
      }
    };
    await send(30, 'a');
    await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 30);

    // Someone edits block 7 in Redis.
    const key = new LedgerKeys(tenant).segment(0);
    const original = (await redis.lindexBuffer(key, 7)) as Buffer;
    await redis.lset(
      key,
      7,
      Buffer.from(original.toString('utf8').replace('"update"', '"delete"')),
    );
    const result = await verification.verifyTenant(tenant, 'full');
    expect(result).toMatchObject({ ok: false, firstBadSeq: 7 });
    expect(await ledger.store.readFrozen(tenant)).toMatchObject({ firstBadSeq: 7, by: 'verifier' });
    expect(tampered).toEqual([tenant]);
    // Verifying again does not raise a second alert.
    await verification.verifyTenant(tenant, 'full');
    expect(tampered).toEqual([tenant]);

    // The append script itself refuses, whoever calls it.
    await expect(ledger.append(tenant, [contactChange(tenant, 'x')])).rejects.toThrow(LedgerError);
    // Webhooks keep queuing; the requests wait.
    await send(20, 'b');
    await new Promise((r) => setTimeout(r, 600));
    expect((await ledger.store.readHead(tenant)).size).toBe(30);
    expect((await queue.getJobCounts('delayed', 'wait', 'failed')).failed).toBe(0);

    // Resume refuses while the chain is still damaged.
    const refused = await resumeTenant({ verification, sink }, tenant, {
      type: 'admin',
      id: 'admin:admin:ada',
    });
    expect(refused.ok).toBe(false);
    expect(await ledger.store.readFrozen(tenant)).toBeDefined();

    // Repair (here: the original bytes put back), then resume.
    await redis.lset(key, 7, original);
    const resumed = await resumeTenant({ verification, sink }, tenant, {
      type: 'admin',
      id: 'admin:admin:ada',
    });
    expect(resumed).toMatchObject({ ok: true, wasFrozen: true, size: 30 });
    expect(await ledger.store.readFrozen(tenant)).toBeUndefined();

    await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 51);
    expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 51 });
    const admin = await ledger.store.readRecord(
      tenant,
      `${ADMIN_RECORD.object}/${ADMIN_RECORD.id}`,
    );
    expect(admin).toHaveLength(1);
    const [block] = await ledger.readBlocks(tenant, [admin[0]!.seq]);
    expect(block?.block).toMatchObject({
      kind: 'admin',
      actor: { type: 'admin', id: 'admin:admin:ada' },
    });
    expect(Object.keys(block!.block.fields).sort()).toEqual([
      'action',
      'firstBadSeq',
      'frozenAt',
      'frozenBy',
      'frozenReason',
      'verifiedRoot',
      'verifiedSize',
    ]);
    expect((await queue.getJobCounts('failed')).failed).toBe(0);
  }, 30_000);
});
