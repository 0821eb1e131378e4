/**
 * An anchor worker process SIGKILLed in the middle of a burst: after another worker takes over,
 * every queued change is anchored exactly once and the chain verifies.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { randomTenant } from '../helpers/redis.js';
import { Redis as RedisClient } from 'ioredis';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { contactChange, createFileKeyLedger } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import {
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
} from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';

// One process, signals reach it: node itself with tsx's loader, not the tsx wrapper (which
// would leave its node child running when it is SIGKILLed).
const TSX = ['--import', 'tsx'];

const ORIGIN = 'kill.crm-ledger.test';
let dir: string;
// A private redis-server: the spawned workers take every job of the queue they find there.
let server: EmbeddedRedis;
let redis: Redis;
let queue: Queue<ChangesJob>;
let ledger: Ledger;
const children: ChildProcess[] = [];

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [...TSX, 'src/cli.ts', 'serve', '--role', 'worker'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      CRM_LEDGER_REDIS_URL: server.url,
      CRM_LEDGER_DATA_DIR: dir,
      CRM_LEDGER_LEDGER_ORIGIN: ORIGIN,
      CRM_LEDGER_LOG_LEVEL: 'warn',
      CRM_LEDGER_ANCHOR_LOCK_MS: '2000',
      CRM_LEDGER_ANCHOR_BATCH_SIZE: '50',
      // The burst's contacts look alike (one phone, one company): the duplicate matcher would
      // anchor blocks of its own for the earlier records, and this test counts the burst's blocks.
      CRM_LEDGER_DEDUPE: 'off',
    },
    stdio: 'ignore',
  });
  children.push(child);
  return child;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-kill-'));
  server = await startRedisServer({ persistence: 'none' });
  redis = new RedisClient(server.url);
  ledger = await createFileKeyLedger(redis, join(dir, 'ledger.key'), ORIGIN);
  queue = createChangesQueue(connectionFromUrl(server.url, 'worker'));
});
afterAll(async () => {
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => new Promise((r) => c.once('exit', r).kill('SIGTERM'))),
  );
  await queue.close();
  await redis.quit();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('anchor worker killed mid-burst', () => {
  it('anchors every change exactly once after another worker takes over', async () => {
    const tenant = randomTenant();
    const sink = createChangeSink(queue);
    const total = 4000;
    for (let r = 0; r < total / 50; r++) {
      const events = Array.from({ length: 50 }, (_, i) => {
        const { event } = contactChange(tenant, `k${(r * 50 + i) % 97}`);
        return {
          event: { ...event, eventId: `k-${r}-${i}` },
          idempotencyKey: `kill|${tenant}|${r}|${i}`,
        };
      });
      await sink.enqueue({ source: 'hubspot', receivedAt: new Date().toISOString(), events });
    }
    const first = startWorker();
    await until(async () => (await ledger.store.readHead(tenant)).size >= 600, 60_000);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const atKill = (await ledger.store.readHead(tenant)).size;
    expect(atKill).toBeLessThan(total);

    startWorker();
    await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === total, 90_000);
    await until(
      async () => (await queue.getJobCounts('wait', 'active', 'delayed')).active === 0,
      30_000,
    );
    expect((await ledger.store.readHead(tenant)).size).toBe(total);
    expect(await ledger.verify(tenant)).toMatchObject({
      ok: true,
      size: total,
      checkpointSize: total,
    });
  }, 180_000);
});
