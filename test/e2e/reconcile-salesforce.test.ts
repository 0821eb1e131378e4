/**
 * Reconciliation against the sandbox Salesforce (jsforce through SalesforceClient): no Outbound
 * Message endpoint and no CDC subscriber, so changes made "in the UI" reach the ledger only through
 * reconciliation. A record deleted to the recycle bin comes back from queryAll with IsDeleted and
 * is anchored as a delete the ledger never saw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { Queue, Worker } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { connect, testQueueConnection } from '../helpers/redis.js';
import { createTestLedger } from '../helpers/ledger.js';
import { API_VERSION, startSandbox } from '../helpers/salesforce-sandbox.js';
import type { SalesforceSandbox } from '../../connectors/sandbox/salesforce/index.js';
import { SalesforceClient } from '../../connectors/salesforce/client.js';
import { createChangeSink, createChangesQueue } from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import { startReconcileWorker } from '../../src/pipeline/reconcile.worker.js';
import type { ReconcileWorker } from '../../src/pipeline/reconcile.worker.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { Block } from '../../src/ledger/block.js';

const PREFIX = `{cl-test-reconcile-sf-${process.pid}-${Date.now()}}`;
const USER = '0055g0000000042AAA';
const logger = createLogger({ level: 'silent' });
// A tenant no other test uses, shaped as the Salesforce client wants (an 18-character org id).
const tenant = `salesforce:00D${randomBytes(6).toString('hex')}AAA`;
let sandbox: SalesforceSandbox;
let redis: Redis;
let ledger: Ledger;
let changes: Queue<ChangesJob>;
let anchor: Worker<ChangesJob, JobResult>;
let reconcile: ReconcileWorker;
let ids: string[] = [];

const connection = testQueueConnection;

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const size = async (): Promise<number> => (await ledger.store.readHead(tenant)).size;

async function drained(): Promise<void> {
  await until(
    async () => {
      const c = await changes.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(c).reduce((a, b) => a + b, 0);
    },
    (n) => n === 0,
  );
}

async function lastBlockOf(id: string): Promise<Block | undefined> {
  const heads = await ledger.store.readRecord(tenant, `contact/${id}`);
  const last = heads.at(-1);
  if (!last) return undefined;
  return (await ledger.readBlocks(tenant, [last.seq]))[0]?.block;
}

beforeAll(async () => {
  sandbox = await startSandbox();
  redis = connect();
  ledger = createTestLedger(redis);
  changes = createChangesQueue(connection(), PREFIX);
  anchor = startAnchorWorker({ connection: connection(), ledger, logger, prefix: PREFIX });
  reconcile = startReconcileWorker({
    connection: connection(),
    clients: [
      new SalesforceClient({
        tenant,
        instanceUrl: sandbox.url,
        accessToken: 'test-token',
        version: API_VERSION,
      }),
    ],
    sink: createChangeSink(changes),
    ledger,
    redis,
    logger,
    everyMs: 0,
    prefix: PREFIX,
    settleMs: 0,
    // An object the client refuses: skipped (loudly), the rest reconciled.
    objects: { salesforce: ['contact', 'not-an-object'] },
  });
  ids = Array.from(
    { length: 6 },
    (_, i) =>
      sandbox.changeAsUser({
        userId: USER,
        type: 'Contact',
        op: 'create',
        fields: { LastName: `Last${i}`, Email: `c${i}@example.com` },
      }).Id,
  );
  await new Promise((r) => setTimeout(r, 1_100));
});

afterAll(async () => {
  await reconcile.close();
  await anchor.close();
  await changes.close();
  await redis.quit();
  await sandbox.close();
});

describe('reconciliation against the sandbox Salesforce', () => {
  it('anchors the baseline, then an edit and a recycle-bin delete, then nothing', async () => {
    const baseline = await reconcile.runNow(tenant);
    expect(baseline).toMatchObject({
      status: 'done',
      full: true,
      compared: ids.length,
      skippedObjects: ['not-an-object'],
    });
    await until(size, (n) => n === ids.length);
    expect(await size()).toBe(ids.length);

    const [edited, deleted] = ids as [string, string];
    sandbox.changeAsUser({
      userId: USER,
      type: 'Contact',
      op: 'update',
      id: edited,
      fields: { Email: 'new@example.com' },
    });
    sandbox.changeAsUser({ userId: USER, type: 'Contact', op: 'delete', id: deleted });
    // Salesforce stamps whole seconds: let the clock pass them.
    await new Promise((r) => setTimeout(r, 1_100));

    const run = await reconcile.runNow(tenant);
    expect(run.queued).toEqual({
      'unanchored-change': 1,
      'unanchored-delete': 1,
      'unanchored-restore': 0,
      'missing-in-crm': 0,
    });
    await until(size, (n) => n === ids.length + 2);
    expect(await lastBlockOf(edited)).toMatchObject({
      kind: 'reconciled',
      actor: { type: 'system', id: 'salesforce:reconcile' },
      verdicts: [{ code: 'UNANCHORED_CHANGE', fields: ['Email'] }],
    });
    expect(await lastBlockOf(deleted)).toMatchObject({
      kind: 'delete',
      verdicts: [{ code: 'UNANCHORED_DELETE' }],
    });

    await drained();
    const again = await reconcile.runNow(tenant);
    // The overlap window brings both records back: compared, nothing queued.
    expect(again.compared).toBeGreaterThanOrEqual(2);
    expect(Object.values(again.queued).every((n) => n === 0)).toBe(true);
    await drained();
    expect(await size()).toBe(ids.length + 2);
  });
});
