/**
 * Reconciliation end to end: the sandbox HubSpot (real SDK through HubspotClient), the real
 * ledger, the real anchor worker and the reconcile worker on the test Redis (own BullMQ prefix).
 * Webhooks are off: edits, a delete and a create happen in the CRM with no event; the next run
 * finds them and anchors them as `reconciled`/`delete` blocks with their verdict; a second run
 * anchors nothing; a run killed after its first page resumes from its cursor.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import type { Worker } from 'bullmq';
import { connect, randomTenant, testQueueConnection } from '../helpers/redis.js';
import { createTestLedger } from '../helpers/ledger.js';
import { useHubspotSandbox } from '../helpers/hubspot-sandbox.js';
import { HubspotClient } from '../../connectors/hubspot/client.js';
import type { CrmClient, FetchPage, FetchQuery } from '../../connectors/types.js';
import { createChangeSink, createChangesQueue } from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import { createFlagSink } from '../../src/pipeline/flags.js';
import { startFlagWorker } from '../../src/pipeline/flag.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import {
  RECONCILE_QUEUE,
  reconcileCursorKey,
  startReconcileWorker,
} from '../../src/pipeline/reconcile.worker.js';
import type {
  ReconcileJob,
  ReconcileRunResult,
  ReconcileWorker,
} from '../../src/pipeline/reconcile.worker.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { Block } from '../../src/ledger/block.js';

const PREFIX = `{cl-test-reconcile-${process.pid}-${Date.now()}}`;
const logger = createLogger({ level: 'silent' });
const USER = 7001;
const CONTACTS = 30;

const hub = useHubspotSandbox({ rateLimit: { max: 100_000 } });
let redis: Redis;
let ledger: Ledger;
let changes: Queue<ChangesJob>;
let anchor: Worker<ChangesJob, JobResult>;
let reconcile: ReconcileWorker;
let client: FaultyClient;
const tenant = randomTenant();
let ids: string[] = [];

/**
 * The real HubspotClient, with a fault switch: `failAfter = n` makes the (n+1)th fetch from now
 * throw, as a process killed mid-run would stop. It records every query it is asked.
 */
class FaultyClient implements CrmClient {
  readonly source = 'hubspot' as const;
  readonly queries: FetchQuery[] = [];
  failAfter: number | undefined;
  constructor(private readonly real: HubspotClient) {}
  get tenant(): string {
    return this.real.tenant;
  }
  get ownFields(): readonly string[] {
    return this.real.ownFields;
  }
  flag: CrmClient['flag'] = (r) => this.real.flag(r);
  revert: CrmClient['revert'] = (ref, f, reason) => this.real.revert(ref, f, reason);
  async fetchRecords(query: FetchQuery): Promise<FetchPage> {
    if (this.failAfter !== undefined) {
      if (this.failAfter === 0) throw new Error('killed mid-run (test fault)');
      this.failAfter -= 1;
    }
    this.queries.push(query);
    return this.real.fetchRecords(query);
  }
}

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

/** Waits until the changes queue holds no job (everything queued is anchored). */
async function drained(): Promise<void> {
  await until(
    async () => {
      const c = await changes.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(c).reduce((a, b) => a + b, 0);
    },
    (n) => n === 0,
  );
}

async function blocksOf(id: string): Promise<Block[]> {
  const heads = await ledger.store.readRecord(tenant, `contact/${id}`);
  const blocks = await ledger.readBlocks(
    tenant,
    heads.map((h) => h.seq),
  );
  return blocks.map((b) => (b as { block: Block }).block);
}

async function pause(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

beforeAll(() => {
  hub.sandbox.pauseWebhooks();
  redis = connect();
  ledger = createTestLedger(redis);
  changes = createChangesQueue(connection(), PREFIX);
  anchor = startAnchorWorker({
    connection: connection(),
    ledger,
    logger,
    prefix: PREFIX,
    batchWaitMs: 5,
  });
  client = new FaultyClient(
    new HubspotClient({
      tenant,
      portalId: hub.sandbox.portalId,
      appId: hub.sandbox.appId,
      apiUrl: hub.sandbox.url,
      accessToken: 'test-token',
    }),
  );
  reconcile = startReconcileWorker({
    connection: connection(),
    clients: [client],
    sink: createChangeSink(changes),
    ledger,
    redis,
    logger,
    everyMs: 0,
    prefix: PREFIX,
    settleMs: 0,
    pageLimit: 10,
  });
  ids = hub.sandbox.seed(
    'contacts',
    Array.from({ length: CONTACTS }, (_, i) => ({
      email: `person${i}@example.com`,
      firstname: `First${i}`,
      lastname: `Last${i}`,
    })),
    { at: Date.now() - 10 * 60_000 },
  );
});

afterAll(async () => {
  await reconcile.close();
  await anchor.close();
  await changes.close();
  await redis.quit();
});

describe('reconciliation against the sandbox HubSpot', () => {
  it('refuses a tenant it has no CRM client for, with a code', async () => {
    await expect(reconcile.runNow('hubspot:unknown')).rejects.toMatchObject({
      code: 'TENANT_UNKNOWN',
    });
    expect(await redis.get(reconcileCursorKey('hubspot:unknown'))).toBeNull();
  });

  it('anchors a tenant’s first (full) run as its baseline, unflagged', async () => {
    const started = performance.now();
    const result = await reconcile.runNow(tenant);
    const seconds = (performance.now() - started) / 1000;
    expect(result).toMatchObject({ status: 'done', full: true, resumed: false });
    expect(result.compared).toBe(CONTACTS);
    expect(result.queued['unanchored-change']).toBe(CONTACTS);
    await until(size, (n) => n === CONTACTS);
    expect(await size()).toBe(CONTACTS);
    const [block] = await blocksOf(ids[0] as string);
    expect(block).toMatchObject({
      kind: 'reconciled',
      actor: { type: 'system', id: 'hubspot:reconcile' },
      verdicts: [{ type: 'info', code: 'RECONCILE_BASELINE' }],
    });
    console.log(
      `reconcile baseline: ${result.compared} records compared in ${seconds.toFixed(3)} s ` +
        `(${Math.round(result.compared / seconds)} records/s, ${result.pages} pages of 10)`,
    );
  });

  it('finds edits, a create and a delete made while webhooks were off, and anchors them', async () => {
    const [a, b, gone] = ids as [string, string, string];
    hub.sandbox.updateAsUser('contacts', a, { email: 'changed@example.com' }, USER);
    hub.sandbox.updateAsUser('contacts', b, { firstname: 'Renamed', lastname: 'Too' }, USER);
    hub.sandbox.archiveAsUser('contacts', gone, USER);
    const created = hub.sandbox.createAsUser('contacts', { email: 'new@example.com' }, USER);
    expect(hub.sandbox.webhookDeliveries()).toEqual([]);
    await pause(20);
    const before = await size();

    const result = await reconcile.runNow(tenant);
    expect(result).toMatchObject({ status: 'done', full: false });
    expect(result.queued).toEqual({
      'unanchored-change': 3,
      'unanchored-delete': 0,
      'unanchored-restore': 0,
      'missing-in-crm': 1,
    });
    await until(size, (n) => n === before + 4);
    expect(await size()).toBe(before + 4);

    const lastOf = async (id: string): Promise<Block> => (await blocksOf(id)).at(-1) as Block;
    const edited = await lastOf(a);
    expect(edited).toMatchObject({
      kind: 'reconciled',
      actor: { type: 'system', id: 'hubspot:reconcile' },
      verdicts: [{ type: 'unanchored-change', code: 'UNANCHORED_CHANGE', fields: ['email'] }],
    });
    // Only the field that differs is anchored (plus the hash of the whole state).
    expect(Object.keys(edited.fields).sort()).toEqual(['$state', 'email']);
    expect((await ledger.recordState(tenant, `contact/${a}`)).get('email')).toBe(
      'changed@example.com',
    );
    expect((await lastOf(b)).verdicts).toEqual([
      expect.objectContaining({ code: 'UNANCHORED_CHANGE', fields: ['firstname', 'lastname'] }),
    ]);
    expect(await lastOf(created.id)).toMatchObject({
      kind: 'reconciled',
      verdicts: [{ code: 'UNANCHORED_CHANGE', fields: ['email'] }],
    });
    expect(await lastOf(gone)).toMatchObject({
      kind: 'delete',
      verdicts: [{ type: 'unanchored-change', code: 'RECORD_MISSING' }],
    });
  });

  it('anchors nothing on a second run (overlap window, same records)', async () => {
    await drained();
    const before = await size();
    const result = await reconcile.runNow(tenant);
    expect(result.status).toBe('done');
    // The overlap window fetched the edited records again: compared, nothing queued.
    expect(result.compared).toBeGreaterThan(0);
    expect(Object.values(result.queued).every((n) => n === 0)).toBe(true);
    await drained();
    expect(await size()).toBe(before);
  });

  it('resumes a run killed after its first page from the saved cursor, anchoring each edit once', async () => {
    await drained();
    const edited = ids.slice(5, 30);
    for (const id of edited)
      hub.sandbox.updateAsUser('contacts', id, { lastname: `L-${id}` }, USER);
    await pause(40);
    const before = await size();
    client.failAfter = 1;
    await expect(reconcile.runNow(tenant)).rejects.toThrow(/killed mid-run/);
    const saved = JSON.parse((await redis.get(reconcileCursorKey(tenant))) as string) as {
      run?: { page?: string; object: number; phase: string };
    };
    expect(saved.run).toMatchObject({ phase: 'fetch', object: 0 });
    expect(saved.run?.page).toBeDefined();
    await drained();
    const afterKill = await size();
    expect(afterKill - before).toBeGreaterThan(0);
    expect(afterKill - before).toBeLessThan(edited.length);

    client.failAfter = undefined;
    client.queries.length = 0;
    const result = await reconcile.runNow(tenant);
    expect(result).toMatchObject({ status: 'done', resumed: true });
    // The resumed run continued with the saved page cursor, not from the first page.
    expect(client.queries[0]).toMatchObject({ object: 'contact', cursor: saved.run?.page });
    await until(size, (n) => n === before + edited.length);
    await drained();
    expect(await size()).toBe(before + edited.length);
    for (const id of edited) {
      const reconciled = (await blocksOf(id)).filter(
        (blk) => blk.kind === 'reconciled' && blk.verdicts[0]?.code === 'UNANCHORED_CHANGE',
      );
      expect(reconciled).toHaveLength(1);
    }
  });

  it('stops at a 429 with its cursor kept, queues a retry after Retry-After, then resumes', async () => {
    await drained();
    const edited = ids.slice(10, 22);
    for (const id of edited)
      hub.sandbox.updateAsUser('contacts', id, { firstname: `F-${id}` }, USER);
    await pause(30);
    const before = await size();
    // One request per minute: the first page goes through, the second gets a 429.
    hub.sandbox.setRateLimit(1, 60_000);
    const limited = await reconcile.runNow(tenant);
    expect(limited.status).toBe('rate-limited');
    expect(limited.retryAfterMs).toBeGreaterThan(1_000);
    const saved = JSON.parse((await redis.get(reconcileCursorKey(tenant))) as string) as {
      run?: { page?: string };
    };
    expect(saved.run?.page).toBeDefined();
    const queue = new Queue<ReconcileJob>(RECONCILE_QUEUE, {
      connection: connection(),
      prefix: PREFIX,
    });
    try {
      const delayed = await queue.getDelayed();
      expect(delayed.map((j) => j.data)).toContainEqual({ tenant });
    } finally {
      await queue.close();
    }

    hub.sandbox.setRateLimit(100_000);
    const resumed = await reconcile.runNow(tenant);
    expect(resumed).toMatchObject({ status: 'done', resumed: true });
    await until(size, (n) => n === before + edited.length);
    await drained();
    expect(await size()).toBe(before + edited.length);
  });
});

describe('the job scheduler', () => {
  it('runs a reconciliation of each tenant every `everyMs` without being asked', async () => {
    const other = randomTenant();
    const runs: ReconcileRunResult[] = [];
    const scheduled = startReconcileWorker({
      connection: connection(),
      clients: [
        new HubspotClient({
          tenant: other,
          portalId: hub.sandbox.portalId,
          appId: hub.sandbox.appId,
          apiUrl: hub.sandbox.url,
          accessToken: 'test-token',
        }),
      ],
      sink: createChangeSink(changes),
      ledger,
      redis,
      logger,
      everyMs: 300,
      prefix: `{cl-test-reconcile-sched-${process.pid}}`,
      settleMs: 0,
      onRun: (r) => runs.push(r),
    });
    try {
      const state = await until(
        async () => {
          const text = await redis.get(reconcileCursorKey(other));
          return text === null ? undefined : (JSON.parse(text) as { lastRun?: { full: boolean } });
        },
        (state) => state?.lastRun !== undefined,
      );
      expect(state?.lastRun?.full).toBe(true);
      expect(runs[0]).toMatchObject({ tenant: other, status: 'done', full: true });
      await until(
        async () => (await ledger.store.readHead(other)).size,
        (n) => n >= CONTACTS,
      );
      expect((await ledger.store.readHead(other)).size).toBeGreaterThanOrEqual(CONTACTS);
    } finally {
      await scheduled.close();
    }
  });
});

describe('the sweep of the ledger’s records', () => {
  it('is capped per incremental run and continues where it stopped, finding each delete once', async () => {
    const third = randomTenant();
    const capped = startReconcileWorker({
      connection: connection(),
      clients: [
        new HubspotClient({
          tenant: third,
          portalId: hub.sandbox.portalId,
          appId: hub.sandbox.appId,
          apiUrl: hub.sandbox.url,
          accessToken: 'test-token',
        }),
      ],
      sink: createChangeSink(changes),
      ledger,
      redis,
      logger,
      everyMs: 0,
      prefix: `{cl-test-reconcile-sweep-${process.pid}}`,
      settleMs: 0,
      sweepBatch: 5,
      sweepPerRun: 5,
    });
    try {
      const baseline = await capped.runNow(third);
      const live = baseline.compared;
      await until(
        async () => (await ledger.store.readHead(third)).size,
        (n) => n === live,
      );
      const gone = ids.slice(25, 28);
      for (const id of gone) hub.sandbox.archiveAsUser('contacts', id, USER);
      await pause(20);
      let missing = 0;
      const swept: number[] = [];
      for (let i = 0; i < 20 && missing < gone.length; i++) {
        const r = await capped.runNow(third);
        swept.push(r.swept);
        missing += r.queued['missing-in-crm'];
      }
      expect(missing).toBe(gone.length);
      // No run read every record: each swept a slice (cap 5, plus at most one SCAN step).
      expect(Math.max(...swept)).toBeLessThan(live - gone.length);
      expect(swept.length).toBeGreaterThan(1);
      await drained();
      for (const id of gone) {
        const heads = await ledger.store.readRecord(third, `contact/${id}`);
        const blocks = await ledger.readBlocks(
          third,
          heads.map((h) => h.seq),
        );
        expect(blocks.map((b) => b?.block.verdicts[0]?.code)).toEqual([
          'RECONCILE_BASELINE',
          'RECORD_MISSING',
        ]);
      }
    } finally {
      await capped.close();
    }
  });
});

describe('with write-back on', () => {
  it('flags the unanchored changes in the CRM, and the flags’ own edits are not found again', async () => {
    const fourth = randomTenant();
    const prefix = `{cl-test-reconcile-flags-${process.pid}}`;
    const queue = createChangesQueue(connection(), prefix);
    const flags = createFlagSink(connection(), prefix);
    const hubspot = new HubspotClient({
      tenant: fourth,
      portalId: hub.sandbox.portalId,
      appId: hub.sandbox.appId,
      apiUrl: hub.sandbox.url,
      accessToken: 'test-token',
    });
    const anchoring = startAnchorWorker({
      connection: connection(),
      ledger,
      logger,
      prefix,
      batchWaitMs: 5,
      flags,
      ownFields: () => hubspot.ownFields,
    });
    const flagging = startFlagWorker({ connection: connection(), client: hubspot, logger, prefix });
    const worker = startReconcileWorker({
      connection: connection(),
      clients: [hubspot],
      sink: createChangeSink(queue),
      ledger,
      redis,
      logger,
      everyMs: 0,
      prefix,
      settleMs: 0,
    });
    const headOf = async (): Promise<number> => (await ledger.store.readHead(fourth)).size;
    try {
      const baseline = await worker.runNow(fourth);
      await until(headOf, (n) => n === baseline.compared);
      const edited = [ids[3], ids[4]] as string[];
      for (const id of edited)
        hub.sandbox.updateAsUser('contacts', id, { jobtitle: `Title ${id}` }, USER);
      await pause(20);
      const run = await worker.runNow(fourth);
      expect(run.queued['unanchored-change']).toBe(2);
      await until(headOf, (n) => n === baseline.compared + 2);
      // The verdicts are written back: the status property and a note on each record.
      const flagged = await until(
        () =>
          Promise.resolve(
            edited.map((id) => hub.sandbox.record('contacts', id)?.properties['crm_ledger_status']),
          ),
        (v) =>
          v.every((p) => typeof p === 'string' && p !== '') &&
          edited.every((id) => hub.sandbox.notesFor('contacts', id).length > 0),
      );
      expect(flagged.every((p) => typeof p === 'string' && p.includes('unanchored'))).toBe(true);
      for (const id of edited) expect(hub.sandbox.notesFor('contacts', id)).toHaveLength(1);
      await pause(20);
      // The flag writes changed the records (their last-modified date moved): fetched again,
      // compared without crm-ledger's own field, nothing to queue; no loop.
      const again = await worker.runNow(fourth);
      expect(again.compared).toBeGreaterThanOrEqual(2);
      expect(Object.values(again.queued).every((n) => n === 0)).toBe(true);
      expect(await headOf()).toBe(baseline.compared + 2);
    } finally {
      await worker.close();
      await flagging.close();
      await anchoring.close();
      await flags.close();
      await queue.close();
    }
  });
});

describe('paging while the CRM changes', () => {
  it('misses no record when records of a fetched page are modified before the next page', async () => {
    const fifth = randomTenant();
    let touched = false;
    const paging = startReconcileWorker({
      connection: connection(),
      clients: [
        new HubspotClient({
          tenant: fifth,
          portalId: hub.sandbox.portalId,
          appId: hub.sandbox.appId,
          apiUrl: hub.sandbox.url,
          accessToken: 'test-token',
        }),
      ],
      sink: createChangeSink(changes),
      ledger,
      redis,
      logger,
      everyMs: 0,
      prefix: `{cl-test-reconcile-paging-${process.pid}}`,
      settleMs: 0,
      pageLimit: 10,
      onPage: (_tenant, page) => {
        if (touched || page.phase !== 'fetch') return;
        touched = true;
        // Someone edits two records of the first page: they leave the run's window.
        for (const id of [ids[0], ids[1]] as string[])
          hub.sandbox.updateAsUser('contacts', id, { jobtitle: 'moved' }, USER);
      },
    });
    try {
      const live = hub.sandbox.records('contacts').map((r) => r.id);
      const result = await paging.runNow(fifth);
      expect(touched).toBe(true);
      await until(
        async () => (await ledger.store.readHead(fifth)).size,
        (n) => n >= live.length,
      );
      const heads = await ledger.store.readRecordHeads(
        fifth,
        live.map((id) => `contact/${id}`),
      );
      expect(live.filter((id) => !heads.has(`contact/${id}`))).toEqual([]);
      expect(result.compared).toBeGreaterThanOrEqual(live.length);
    } finally {
      await paging.close();
    }
  });
});

describe('a first run told to look only at recent changes', () => {
  it('does not re-scan the CRM, and later runs continue from it', async () => {
    const sixth = randomTenant();
    const recent = startReconcileWorker({
      connection: connection(),
      clients: [
        new HubspotClient({
          tenant: sixth,
          portalId: hub.sandbox.portalId,
          appId: hub.sandbox.appId,
          apiUrl: hub.sandbox.url,
          accessToken: 'test-token',
        }),
      ],
      sink: createChangeSink(changes),
      ledger,
      redis,
      logger,
      everyMs: 0,
      prefix: `{cl-test-reconcile-recent-${process.pid}}`,
      settleMs: 0,
      overlapMs: 50,
      firstRun: 'recent',
    });
    try {
      await pause(100);
      const first = await recent.runNow(sixth);
      expect(first).toMatchObject({ full: false, compared: 0 });
      hub.sandbox.updateAsUser('contacts', ids[5] as string, { jobtitle: 'recent' }, USER);
      await pause(20);
      const second = await recent.runNow(sixth);
      expect(second).toMatchObject({ full: false, compared: 1 });
      expect(second.queued['unanchored-change']).toBe(1);
    } finally {
      await recent.close();
    }
  });

  describe('when the tenant is frozen', () => {
    it('compares nothing while frozen and for afterFreezeHoldMs after, then runs from its cursor', async () => {
      const held = randomTenant();
      const worker = startReconcileWorker({
        connection: connection(),
        clients: [
          new HubspotClient({
            tenant: held,
            portalId: hub.sandbox.portalId,
            appId: hub.sandbox.appId,
            apiUrl: hub.sandbox.url,
            accessToken: 'test-token',
          }),
        ],
        sink: createChangeSink(changes),
        ledger,
        redis,
        logger,
        everyMs: 0,
        prefix: `{cl-test-reconcile-held-${process.pid}}`,
        settleMs: 0,
        afterFreezeHoldMs: 400,
      });
      try {
        await ledger.store.freeze(held, {
          reason: 'test',
          at: new Date().toISOString(),
          by: 'test',
        });
        const frozen = await worker.runNow(held);
        expect(frozen).toMatchObject({ status: 'frozen', compared: 0 });
        expect(JSON.parse((await redis.get(reconcileCursorKey(held)))!)).toMatchObject({
          heldAt: expect.any(String),
        });
        await ledger.store.unfreeze(held);
        // Just resumed: the changes queued during the freeze may not be anchored yet.
        expect(await worker.runNow(held)).toMatchObject({ status: 'frozen', compared: 0 });
        await pause(450);
        const after = await worker.runNow(held);
        expect(after).toMatchObject({ status: 'done', full: true });
        expect(after.compared).toBeGreaterThanOrEqual(hub.sandbox.records('contacts').length);
        expect(JSON.parse((await redis.get(reconcileCursorKey(held)))!).heldAt).toBeUndefined();
      } finally {
        await worker.close();
      }
    });
  });
});
