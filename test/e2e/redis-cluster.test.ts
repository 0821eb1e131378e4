/**
 * The whole pipeline on a real Redis Cluster (3 masters + 3 replicas, redis-cli --cluster create):
 * signed HubSpot webhooks for several tenants spread over the masters → the api role (in this
 * process) → BullMQ under `{cl}` → two anchor worker processes → the ledger. Mid-burst the master
 * serving the queues' slot is failed over (CLUSTER FAILOVER on its replica). Every event must be
 * anchored exactly once, and every chain must verify, through the CLI too.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import type { RunningService } from '../../src/main.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { QUEUE_PREFIX } from '../../src/pipeline/queues.js';
import { createRedis, masterNodes } from '../../src/redis/connection.js';
import { runDedupe } from '../../src/dedupe/cli.js';
import { generateSynthetic, writeSynthetic } from '../../bench/dedupe-synth.js';
import type { RedisClient } from '../../src/redis/connection.js';
import { signHubspotV3 } from '../../connectors/hubspot/signature.js';
import { createFileKeyLedger } from '../helpers/ledger.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import type { LocalRedisCluster } from '../helpers/redis-cluster.js';
import { until } from '../helpers/wait.js';

const runFile = promisify(execFile);
const TSX = ['--import', 'tsx'];
const ORIGIN = 'cluster.crm-ledger.test';
const SECRET = 'cluster-test-hubspot-client-secret';
const PUBLIC_URL = 'https://ledger.cluster.test';
const TENANT_COUNT = 6;
const BATCHES_PER_TENANT = 16;
const EVENTS_PER_BATCH = 20;

let cluster: LocalRedisCluster;
let dir: string;
let api: RunningService;
let redis: RedisClient;
let ledger: Ledger;
const workers: ChildProcess[] = [];
const logger = createLogger({ level: 'silent' });

function workerEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '',
    CRM_LEDGER_REDIS_URL: cluster.url,
    CRM_LEDGER_DATA_DIR: dir,
    CRM_LEDGER_LEDGER_ORIGIN: ORIGIN,
    CRM_LEDGER_HUBSPOT_CLIENT_SECRET: SECRET,
    CRM_LEDGER_SANDBOX: 'off',
    // The burst's generated contacts look alike across tenants: with dedupe on, each duplicate
    // pair also anchors an admin block on the earlier record, and this test counts one block per
    // event. Duplicates are tested in test/e2e/write-back.test.ts and dedupe-index.test.ts.
    CRM_LEDGER_DEDUPE: 'off',
    CRM_LEDGER_LOG_LEVEL: 'warn',
    CRM_LEDGER_ANCHOR_BATCH_SIZE: '64',
    CRM_LEDGER_ANCHOR_LOCK_MS: '5000',
    CRM_LEDGER_RECONCILE_EVERY_MS: '0',
    CRM_LEDGER_VERIFY_EVERY_MS: '0',
    CRM_LEDGER_FULL_VERIFY_EVERY_MS: '0',
  };
}

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [...TSX, 'src/cli.ts', 'serve', '--role', 'worker'], {
    env: workerEnv(),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  workers.push(child);
  return child;
}

/** HubSpot contact events of one batch: ids unique per tenant. */
function batch(portalId: number, b: number): Record<string, unknown>[] {
  return Array.from({ length: EVENTS_PER_BATCH }, (_, i) => {
    const n = b * EVENTS_PER_BATCH + i;
    return {
      eventId: 1_000_000 + n,
      subscriptionId: 4242,
      portalId,
      appId: 99,
      occurredAt: 1_764_150_000_000 + n,
      subscriptionType: 'contact.propertyChange',
      attemptNumber: 0,
      objectId: 5000 + (n % 37),
      changeSource: 'CRM_UI',
      sourceId: 'userId:42',
      propertyName: 'email',
      propertyValue: `c${n}@example.com`,
    };
  });
}

/** POSTs one signed batch, retrying on 503/network errors as HubSpot does. */
async function deliver(body: string): Promise<number> {
  let attempts = 0;
  for (;;) {
    attempts++;
    const timestamp = Date.now();
    const signature = signHubspotV3({
      secret: SECRET,
      method: 'POST',
      uri: `${PUBLIC_URL}/webhooks/hubspot`,
      body,
      timestamp,
    });
    try {
      const res = await fetch(`${api.url}/webhooks/hubspot`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-hubspot-signature-v3': signature,
          'x-hubspot-request-timestamp': String(timestamp),
        },
        body,
      });
      if (res.status === 200) return attempts;
      if (res.status !== 503)
        throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
    } catch (err) {
      if ((err as Error).message.startsWith('webhook answered')) throw err;
    }
    if (attempts > 200) throw new Error('webhook never accepted');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Portal ids whose tenants' slots cover every master. */
async function spreadTenants(): Promise<number[]> {
  const portals: number[] = [];
  const masters = new Set<number>();
  for (let p = 880_000; portals.length < TENANT_COUNT; p++) {
    const { master } = await cluster.ownerOf(new LedgerKeys(`hubspot:${p}`).head);
    if (masters.has(master) && masters.size < 3 && portals.length >= TENANT_COUNT - 3) continue;
    masters.add(master);
    portals.push(p);
  }
  return portals;
}

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  dir = await mkdtemp(join(tmpdir(), 'cl-cluster-e2e-'));
  redis = createRedis(cluster.url, 'worker');
  ledger = await createFileKeyLedger(redis, join(dir, 'ledger.key'), ORIGIN);
  api = await startService(
    loadConfig({
      ...workerEnv(),
      CRM_LEDGER_PORT: '0',
      CRM_LEDGER_PUBLIC_URL: PUBLIC_URL,
      CRM_LEDGER_ADMIN_TOKEN: 'cluster-admin-token-0123456789',
      CRM_LEDGER_LOG_LEVEL: 'silent',
    }),
    logger,
    'api',
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(
    workers
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => new Promise((r) => c.once('exit', r).kill('SIGTERM'))),
  );
  await api?.stop();
  redis?.disconnect();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('the pipeline on a 3-master Redis Cluster', () => {
  it('anchors every event exactly once across a master failover, and every chain verifies', async () => {
    const portals = await spreadTenants();
    const owners = await Promise.all(
      portals.map((p) => cluster.ownerOf(new LedgerKeys(`hubspot:${p}`).head)),
    );
    expect(new Set(owners.map((o) => o.master)).size).toBe(3);

    startWorker();
    startWorker();

    // The master serving BullMQ's `{cl}` slot: failing it over stalls the queue itself.
    const queueOwner = await cluster.ownerOf(`${QUEUE_PREFIX}:changes:wait`);
    expect(queueOwner.replica).toBeDefined();

    let failedOver = false;
    for (let b = 0; b < BATCHES_PER_TENANT; b++) {
      if (b === Math.floor(BATCHES_PER_TENANT / 2)) {
        const replica = cluster.nodeClient(queueOwner.replica!);
        try {
          expect(await replica.cluster('FAILOVER')).toBe('OK');
          await until(
            'the replica to take over',
            async () => ((await replica.role()) as string[])[0],
            (role) => role === 'master',
          );
          failedOver = true;
        } finally {
          replica.disconnect();
        }
      }
      await Promise.all(portals.map((p) => deliver(JSON.stringify(batch(p, b)))));
      if (b === 0) {
        // Both workers are up and anchoring before the burst goes on (and the failover comes).
        await until(
          'the workers to anchor the first batches',
          () =>
            Promise.all(
              portals.map(async (p) => (await ledger.store.readHead(`hubspot:${p}`)).size),
            ),
          (sizes) => sizes.every((s) => s >= EVENTS_PER_BATCH),
          60_000,
        );
      }
    }
    expect(failedOver).toBe(true);
    const oldMaster = cluster.nodeClient(queueOwner.master);
    expect(((await oldMaster.role()) as string[])[0]).toBe('slave');
    oldMaster.disconnect();

    // A redelivery of an early batch of each tenant after the failover anchors nothing new.
    await Promise.all(portals.map((p) => deliver(JSON.stringify(batch(p, 1)))));

    const expected = BATCHES_PER_TENANT * EVENTS_PER_BATCH;
    await until(
      'every tenant checkpointed in full',
      () =>
        Promise.all(
          portals.map(async (p) => (await ledger.store.latestCheckpoint(`hubspot:${p}`))?.size),
        ),
      (sizes) => sizes.every((s) => s === expected),
      120_000,
    );

    for (const p of portals) {
      const tenant = `hubspot:${p}`;
      expect(await ledger.store.readHead(tenant)).toMatchObject({ size: expected });
      const blocks = await ledger.store.readSegment(tenant, 0);
      const ids = blocks.map(
        (b) => (JSON.parse(b.toString('utf8')) as { eventId: string }).eventId,
      );
      expect(ids).toHaveLength(expected);
      expect(new Set(ids).size).toBe(expected);
      expect(new Set(ids)).toEqual(
        new Set(Array.from({ length: expected }, (_, n) => String(1_000_000 + n))),
      );
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: expected });
    }

    // The CLI verifies every chain through the cluster URL as well.
    const { stdout } = await runFile(process.execPath, [...TSX, 'src/cli.ts', 'verify', '--json'], {
      env: { ...workerEnv(), CRM_LEDGER_LOG_LEVEL: 'silent' },
    });
    const report = JSON.parse(stdout) as {
      ok: boolean;
      tenants: { tenant: string; ok: boolean }[];
    };
    expect(report.ok).toBe(true);
    expect(report.tenants.map((t) => t.tenant).sort()).toEqual(
      portals.map((p) => `hubspot:${p}`).sort(),
    );
  }, 240_000);

  it('runs the dedupe CSV command over the cluster URL and leaves none of its keys behind', async () => {
    const csv = join(dir, 'people.csv');
    writeSynthetic(generateSynthetic(300, 11), csv);
    const report = await runDedupe(
      [csv],
      { id: 'id', truth: `${csv}.truth.csv`, object: 'contact', redisUrl: cluster.url },
      () => {},
    );
    expect(report.records).toBe(300);
    expect(report.truth!.f1).toBeGreaterThan(0.9);
    // Its space is one hash tag, so one master holds every key it wrote, and deleted them.
    const left = await Promise.all(masterNodes(redis).map((n) => n.keys('cl:{dedupe:cli-*')));
    expect(left.flat()).toEqual([]);
  }, 60_000);
});
