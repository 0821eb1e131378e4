/**
 * The anchor worker's side of write-back: verdicts become flag jobs in the tenant's flags queue
 * (once per block, also when a job is replayed after a crash), our own write-back echoes are
 * anchored as crm-ledger's and never judged, and redundant full-state messages anchor nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import type { Worker } from 'bullmq';
import { connect, randomTenant, testQueueConnection } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { createChangeSink, createChangesQueue } from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { OWN_ACTOR, startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { ChecksHook, JobResult } from '../../src/pipeline/anchor.worker.js';
import { createFlagSink, flagJobId, flagsQueueName } from '../../src/pipeline/flags.js';
import type { FlagJob, FlagSink } from '../../src/pipeline/flags.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { ChangeEvent } from '../../src/model/change-event.js';
import type { ParsedEvent } from '../../connectors/types.js';

const PREFIX = `{cl-test-flags-${process.pid}-${Date.now()}}`;
const logger = createLogger({ level: 'silent' });
let redis: Redis;
let ledger: Ledger;
let changes: Queue<ChangesJob>;
let flags: FlagSink;
let worker: Worker<ChangesJob, JobResult>;
const judged: ChangeEvent[] = [];
const connection = testQueueConnection;

/** A test-only check: a change whose email contains "dup" is judged a duplicate. */
const forcedChecks: ChecksHook = (_tenant, events) => {
  judged.push(...events.map((p) => p.event));
  return Promise.resolve(
    events.map(({ event: e }) =>
      typeof e.fields['email'] === 'string' && e.fields['email'].includes('dup')
        ? [{ type: 'duplicate', code: 'DUPLICATE_CUSTOMER', reason: 'forced by the test' }]
        : [],
    ),
  );
};

function parsed(request: ReturnType<typeof contactChange>, key: string): ParsedEvent {
  return { event: request.event, idempotencyKey: key };
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function flagJobs(tenant: string): Promise<FlagJob[]> {
  const q = new Queue<FlagJob>(flagsQueueName(tenant), {
    connection: connection(),
    prefix: PREFIX,
  });
  try {
    const jobs = await q.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
    return jobs.map((j) => j.data);
  } finally {
    await q.close();
  }
}

beforeAll(() => {
  redis = connect();
  ledger = createTestLedger(redis);
  changes = createChangesQueue(connection(), PREFIX);
  flags = createFlagSink(connection(), PREFIX);
  worker = startAnchorWorker({
    connection: connection(),
    ledger,
    logger,
    prefix: PREFIX,
    batchWaitMs: 5,
    checks: forcedChecks,
    flags,
    ownFields: () => ['crm_ledger_status'],
    adminBaseUrl: 'https://ledger.example.com',
  });
});
afterAll(async () => {
  await worker.close();
  await changes.close();
  await flags.close();
  await redis.quit();
});

describe('anchor worker → flags queue', () => {
  it('queues one flag job per block with a verdict, with the block and an admin link', async () => {
    const tenant = randomTenant();
    const dup = contactChange(tenant, '101', {
      fields: { email: 'dup@example.com', firstname: 'Ada' },
    });
    const clean = contactChange(tenant, '102');
    const sink = createChangeSink(changes);
    const job = {
      source: 'hubspot' as const,
      receivedAt: new Date().toISOString(),
      events: [parsed(dup, `k|${tenant}|1`), parsed(clean, `k|${tenant}|2`)],
    };
    await sink.enqueue(job);
    const jobs = await until(
      () => flagJobs(tenant),
      (j) => j.length > 0,
    );
    expect(jobs).toHaveLength(1);
    const request = (jobs[0] as FlagJob).request;
    const [block] = await ledger.readBlocks(tenant, [request.seq]);
    expect(block?.block.record).toEqual({ object: 'contact', id: '101' });
    expect(request).toMatchObject({
      tenant,
      ref: { object: 'contact', id: '101' },
      blockHash: block?.hash,
      verdicts: [{ type: 'duplicate', code: 'DUPLICATE_CUSTOMER' }],
      adminUrl: `https://ledger.example.com/admin/records/${encodeURIComponent(tenant)}/contact/101`,
    });
    expect(block?.block.verdicts).toEqual(request.verdicts);
    // ...and the verdict index (/admin/verdicts) lists it.
    expect(await ledger.store.readVerdicts(tenant, -1, 10)).toEqual([
      expect.objectContaining({
        seq: request.seq,
        object: 'contact',
        id: '101',
        verdicts: [{ type: 'duplicate', code: 'DUPLICATE_CUSTOMER', reason: 'forced by the test' }],
      }),
    ]);
    // The job id is the hash of (tenant, seq): no ':' and stable.
    expect(flagJobId(tenant, request.seq)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('queues the flag of a change anchored before a crash when its job is replayed', async () => {
    const tenant = randomTenant();
    const dup = contactChange(tenant, '201', { fields: { email: 'dup2@example.com' } });
    dup.idempotencyKey = `k|${tenant}|replay`;
    // The worker that died had anchored the change (with its verdict) but not queued the flag.
    dup.verdicts = [{ type: 'duplicate', code: 'DUPLICATE_CUSTOMER', reason: 'first run' }];
    const first = await ledger.append(tenant, [dup]);
    const seq = (first.anchored[0] as { seq: number }).seq;
    await changes.add('request', {
      source: 'hubspot',
      receivedAt: new Date().toISOString(),
      events: [parsed(dup, `k|${tenant}|replay`)],
    });
    const jobs = await until(
      () => flagJobs(tenant),
      (j) => j.length > 0,
    );
    expect(jobs.map((j) => j.request.seq)).toEqual([seq]);
    // The verdicts written back are the anchored ones, not those of the second run's checks.
    expect(jobs[0]?.request.verdicts).toEqual(dup.verdicts);
    expect((await ledger.store.readHead(tenant)).size).toBe(1);
  });

  it('anchors the echo of our own write-back as crm-ledger and does not judge or flag it', async () => {
    const tenant = randomTenant();
    // The CRM reports the flag property we wrote, attributed to the integration's user.
    const echo = contactChange(tenant, '301', {
      fields: { crm_ledger_status: 'duplicate (block 0)' },
      actor: { type: 'integration', id: 'hubspot:integration:99' },
    });
    judged.length = 0;
    await changes.add('request', {
      source: 'hubspot',
      receivedAt: new Date().toISOString(),
      events: [parsed(echo, `k|${tenant}|echo`)],
    });
    await until(
      async () => (await ledger.store.latestCheckpoint(tenant))?.size ?? 0,
      (n) => n === 1,
    );
    const [block] = await ledger.readBlocks(tenant, [0]);
    expect(block?.block.actor).toEqual(OWN_ACTOR);
    expect(block?.block.verdicts).toEqual([]);
    expect(judged.filter((e) => e.tenant === tenant)).toEqual([]);
    expect(await flagJobs(tenant)).toEqual([]);
  });

  it('anchors nothing for a full-state message that changes nothing (CDC got there first)', async () => {
    const tenant = randomTenant('salesforce');
    const state = { Email: 'a@example.com', LastName: 'Lovelace' };
    const om = (id: string): ParsedEvent => ({
      event: { ...contactChange(tenant, '003000000000001AAA').event, fields: state, eventId: id },
      idempotencyKey: `om|${tenant}|${id}`,
      fullState: true,
    });
    await changes.add('request', {
      source: 'salesforce',
      receivedAt: new Date().toISOString(),
      events: [om('n1')],
    });
    await until(
      async () => (await ledger.store.latestCheckpoint(tenant))?.size ?? 0,
      (n) => n === 1,
    );
    const job = await changes.add('request', {
      source: 'salesforce',
      receivedAt: new Date().toISOString(),
      events: [om('n2')],
    });
    // Completed jobs are removed at once: 'unknown' means done.
    const jobState = await until(
      () => changes.getJobState(job.id as string),
      (st) => st === 'completed' || st === 'unknown',
    );
    expect(['completed', 'unknown']).toContain(jobState);
    // The same change as a CDC event (changed fields only): nothing new, not anchored either.
    const cdc = await changes.add('request', {
      source: 'salesforce',
      receivedAt: new Date().toISOString(),
      events: [
        {
          event: { ...om('c1').event, fields: { Email: 'a@example.com' }, eventId: 'tx:1:c1' },
          idempotencyKey: `cdc|${tenant}|c1`,
          skipIfUnchanged: true,
        },
      ],
    });
    await until(
      () => changes.getJobState(cdc.id as string),
      (st) => st === 'completed' || st === 'unknown',
    );
    expect((await ledger.store.readHead(tenant)).size).toBe(1);
    expect((await ledger.store.readHead(tenant)).size).toBe(1);
  });

  it('anchors one change once when its Outbound Message and its CDC event arrive together', async () => {
    const tenant = randomTenant('salesforce');
    const id = '003000000000009AAA';
    const base = contactChange(tenant, id).event;
    const at = new Date().toISOString();
    // Both copies of the same edit, queued at the same moment as two requests.
    await Promise.all([
      changes.add('request', {
        source: 'salesforce',
        receivedAt: at,
        events: [
          {
            event: { ...base, eventId: 'om-1', fields: { Email: 'x@example.com', LastName: 'X' } },
            idempotencyKey: `om|${tenant}|1`,
            fullState: true,
          },
        ],
      }),
      changes.add('request', {
        source: 'salesforce',
        receivedAt: at,
        events: [
          {
            event: {
              ...base,
              eventId: 'tx:1:1',
              fields: { Email: 'x@example.com', LastName: 'X' },
            },
            idempotencyKey: `cdc|${tenant}|1`,
            skipIfUnchanged: true,
          },
        ],
      }),
    ]);
    await until(
      async () => (await ledger.store.latestCheckpoint(tenant))?.size ?? 0,
      (n) => n >= 1,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect((await ledger.store.readHead(tenant)).size).toBe(1);
  });
});
