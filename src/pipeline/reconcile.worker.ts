/**
 * The reconcile worker (issue 8): a BullMQ job scheduler runs, per CRM account (tenant), a
 * reconciliation every `everyMs` (default 15 min). A run
 *
 * 1. fetches, object by object, the records the CRM changed in [from, until) — `from` is the last
 *    run's `until` minus an overlap window (2 min), `until` is now minus a settle window (webhooks
 *    of the last seconds are still in flight) — page by page through `CrmClient.fetchRecords`;
 * 2. sweeps the ledger's own records of the tenant (SCAN of its record indexes) that the fetch did
 *    not return, reading them by id: the ones the CRM no longer has, or has deleted, are found
 *    (HubSpot search never returns archived records). An incremental run sweeps at most
 *    `sweepPerRun` records and the next continues from there; a full re-scan sweeps them all;
 * 3. compares each record with the ledger's projection (src/reconcile/diff.ts) and queues the
 *    discrepancies as ParsedEvents through the ChangeSink (the anchor worker anchors them).
 *
 * Its cursor (`cl:{<tenant>}:reconcile:cursor`, JSON) is saved after every page, so a run killed
 * mid-way resumes where it stopped; idempotency keys are built from the tenant, the record and its
 * modifiedAt (or the ledger's last seq), so a re-run, the overlap or a resumed page anchors nothing
 * twice. A `rate-limited` CrmApiError stops the run with its cursor kept and schedules a retry
 * after Retry-After. A full re-scan (`runNow(tenant, { full: true })`, and a tenant's first run)
 * fetches from the epoch; values the ledger never anchored are then its baseline (not flagged).
 */
import { Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import type { ConnectionOptions, Job } from 'bullmq';
import type { RedisClient as Redis } from '../redis/connection.js';
import { CrmApiError } from '../../connectors/types.js';
import { InputError, LedgerError } from '../errors.js';
import type { CrmClient, FetchedRecord, ParsedEvent } from '../../connectors/types.js';
import type { Ledger } from '../ledger/ledger.js';
import type { RecordRef, Source } from '../model/change-event.js';
import type { Logger } from '../observability/logger.js';
import { diffRecords, discrepancyEvent, recordKey, refOfRecordKey } from '../reconcile/diff.js';
import type { Discrepancy, RecordProjection } from '../reconcile/diff.js';
import { QUEUE_PREFIX } from './queues.js';
import type { ChangeSink } from './queues.js';

export const RECONCILE_QUEUE = 'reconcile';
export const DEFAULT_RECONCILE_EVERY_MS = 15 * 60_000;
export const DEFAULT_OVERLAP_MS = 2 * 60_000;
export const DEFAULT_SETTLE_MS = 60_000;
/**
 * After a tenant was seen frozen, runs wait this long: the changes its webhooks queued during the
 * freeze are anchored after the resume (the anchor worker retries them every 5 s), and compared
 * before that they would look like changes that bypassed the webhooks.
 */
export const DEFAULT_AFTER_FREEZE_HOLD_MS = 30_000;

/** The objects reconciled per CRM by default (those the clients fetch and flag). */
export const DEFAULT_RECONCILE_OBJECTS: Readonly<Record<Source, readonly string[]>> = {
  hubspot: ['contact', 'company', 'deal'],
  salesforce: ['contact', 'account', 'lead', 'opportunity'],
};

/** Modification stamps: they change with every write (ours too) and carry no data. */
export const DEFAULT_IGNORED_FIELDS: Readonly<Record<Source, readonly string[]>> = {
  hubspot: ['lastmodifieddate', 'hs_lastmodifieddate'],
  salesforce: [
    'LastModifiedDate',
    'LastModifiedById',
    'SystemModstamp',
    'LastViewedDate',
    'LastReferencedDate',
    'LastActivityDate',
  ],
};

/** Events per queued request (a webhook request holds at most 100 too). */
const EVENTS_PER_REQUEST = 100;

export interface ReconcileJob {
  tenant: string;
  /** fetch from the epoch (onboarding), when no run is in progress */
  full?: boolean;
}

export interface ReconcileRunResult {
  tenant: string;
  /** frozen: the tenant is frozen (or was, within afterFreezeHoldMs): nothing compared */
  status: 'done' | 'rate-limited' | 'frozen';
  /** this run started where a killed or rate-limited run stopped */
  resumed: boolean;
  full: boolean;
  /** records fetched and compared with their projection (this invocation) */
  compared: number;
  /** of which read by id in the sweep of the ledger's records */
  swept: number;
  pages: number;
  /** objects the CRM refused to list (permanent errors), skipped by this run */
  skippedObjects: string[];
  /** changes queued, by discrepancy type */
  queued: Record<Discrepancy['type'], number>;
  ms: number;
  retryAfterMs?: number;
}

export interface ReconcileWorkerOptions {
  connection: ConnectionOptions;
  clients: readonly CrmClient[];
  sink: ChangeSink;
  ledger: Ledger;
  /** where the cursors live (`cl:{<tenant>}:reconcile:cursor`) */
  redis: Redis;
  logger: Logger;
  /** scheduler period per tenant; 0: no scheduler (runNow only). Default 15 min. */
  everyMs?: number;
  prefix?: string;
  overlapMs?: number;
  settleMs?: number;
  /** wait after a tenant was last seen frozen (default DEFAULT_AFTER_FREEZE_HOLD_MS) */
  afterFreezeHoldMs?: number;
  /** records per fetched page (HubSpot ≤ 200, Salesforce ≤ 2000) */
  pageLimit?: number;
  /** record keys per sweep step (SCAN COUNT and ids per by-id fetch) */
  sweepBatch?: number;
  /**
   * Record keys an incremental run sweeps at most (default 10,000: ~100 by-id calls); the next
   * run continues where it stopped. A full re-scan sweeps them all.
   */
  sweepPerRun?: number;
  objects?: Partial<Record<Source, readonly string[]>>;
  ignoreFields?: Partial<Record<Source, readonly string[]>>;
  /**
   * A tenant's first run (no cursor yet): a full re-scan, its baseline ('full', default), or only
   * what changed in the last overlap window ('recent'; a full re-scan can be asked for later).
   */
  firstRun?: 'full' | 'recent';
  /** wait after a 429 that names no Retry-After */
  rateLimitRetryMs?: number;
  now?: () => number;
  /** called after each run that ended (done or rate-limited): metrics, alerts */
  onRun?: (result: ReconcileRunResult) => void;
  /** called after each page is queued and its cursor saved (progress, metrics, tests) */
  onPage?: (tenant: string, page: { phase: 'fetch' | 'sweep'; records: number }) => void;
}

export interface ReconcileWorker {
  /** Runs (or resumes) a reconciliation of `tenant` now, through the queue; resolves when done. */
  runNow(tenant: string, options?: { full?: boolean }): Promise<ReconcileRunResult>;
  close(): Promise<void>;
}

/** The run in progress, saved after each page. */
interface RunState {
  from: string;
  until: string;
  full: boolean;
  phase: 'fetch' | 'sweep';
  /** index into the client's objects */
  object: number;
  /** fetchRecords cursor of the next page of `object` */
  page?: string;
  /** SCAN cursor of the sweep */
  sweep?: string;
  /** record keys this run's sweep has scanned */
  swept?: number;
  startedAt: string;
}

interface CursorState {
  v: 1;
  /** everything the CRM changed before this was compared by a finished run */
  since?: string;
  /** where the last (capped) sweep stopped: the next run's sweep continues from here */
  sweep?: string;
  run?: RunState;
  lastRun?: { finishedAt: string; compared: number; full: boolean };
  /** when a run last found the tenant frozen (runs hold until afterFreezeHoldMs after it) */
  heldAt?: string;
}

/** `cl:{<tenant>}:reconcile:cursor`: in the tenant's hash-tag slot, like its ledger keys. */
export function reconcileCursorKey(tenant: string): string {
  return `cl:{${tenant}}:reconcile:cursor`;
}

/** BullMQ ids may not hold ':'; tenants do. */
function schedulerIdOf(tenant: string): string {
  return `reconcile.${tenant.replace(/:/g, '.')}`;
}

/** The ledger's projection of each record (latest anchored values, deleted or not). */
export async function readProjections(
  ledger: Ledger,
  tenant: string,
  refs: readonly RecordRef[],
): Promise<Map<string, RecordProjection>> {
  const keys = [...new Set(refs.map(recordKey))];
  const heads = await ledger.store.readRecordHeads(tenant, keys);
  const known = keys.filter((k) => heads.has(k));
  const seqs = known.map((k) => (heads.get(k) as { seq: number }).seq);
  const [blocks, states] = await Promise.all([
    ledger.readBlocks(tenant, seqs),
    Promise.all(known.map((k) => ledger.recordState(tenant, k))),
  ]);
  const out = new Map<string, RecordProjection>();
  known.forEach((k, i) => {
    out.set(k, {
      fields: states[i] ?? new Map(),
      deleted: blocks[i]?.block.kind === 'delete',
      lastSeq: seqs[i] as number,
    });
  });
  return out;
}

export function startReconcileWorker(options: ReconcileWorkerOptions): ReconcileWorker {
  const prefix = options.prefix ?? QUEUE_PREFIX;
  const now = options.now ?? Date.now;
  const logger = options.logger;
  const clients = new Map(options.clients.map((c) => [c.tenant, c]));
  const queue = new Queue<ReconcileJob, ReconcileRunResult>(RECONCILE_QUEUE, {
    connection: options.connection,
    prefix,
    defaultJobOptions: {
      // A failed run is not retried here: the next one resumes from the saved cursor.
      attempts: 1,
      removeOnComplete: { count: 100 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  });
  const events = new QueueEvents(RECONCILE_QUEUE, { connection: options.connection, prefix });

  const loadCursor = async (tenant: string): Promise<CursorState> => {
    const text = await options.redis.get(reconcileCursorKey(tenant));
    if (text === null) return { v: 1 };
    try {
      return JSON.parse(text) as CursorState;
    } catch {
      logger.warn({ tenant }, 'reconcile cursor unreadable: starting a full re-scan');
      return { v: 1 };
    }
  };
  const saveCursor = async (tenant: string, state: CursorState): Promise<void> => {
    await options.redis.set(reconcileCursorKey(tenant), JSON.stringify(state));
  };

  const run = async (client: CrmClient, requestFull: boolean): Promise<ReconcileRunResult> => {
    const started = now();
    const tenant = client.tenant;
    const source = client.source;
    const objects = options.objects?.[source] ?? DEFAULT_RECONCILE_OBJECTS[source];
    const ignore = new Set([
      ...(options.ignoreFields?.[source] ?? DEFAULT_IGNORED_FIELDS[source]),
      ...client.ownFields,
    ]);
    const omit = new Set(client.ownFields);
    const state = await loadCursor(tenant);
    // A frozen tenant's projection lags its queued changes: compare nothing, keep the cursor.
    const frozen = (await options.ledger.store.readFrozen(tenant)) !== undefined;
    if (frozen) {
      state.heldAt = new Date(started).toISOString();
      await saveCursor(tenant, state);
    }
    const hold = options.afterFreezeHoldMs ?? DEFAULT_AFTER_FREEZE_HOLD_MS;
    if (frozen || (state.heldAt !== undefined && started - Date.parse(state.heldAt) < hold)) {
      logger.info({ tenant, frozen }, 'reconciliation held: the tenant is or was just frozen');
      const held = emptyRunResult(tenant, 'frozen', false, false);
      held.ms = now() - started;
      options.onRun?.(held);
      return held;
    }
    const resumed = state.run !== undefined;
    if (state.run === undefined) {
      // The first run of a tenant is a full re-scan (its baseline), unless told otherwise.
      const first = state.since === undefined;
      const full = requestFull || (first && options.firstRun !== 'recent');
      const overlap = options.overlapMs ?? DEFAULT_OVERLAP_MS;
      const from = full
        ? 0
        : Math.max(0, (first ? started : Date.parse(state.since as string)) - overlap);
      state.run = {
        from: new Date(from).toISOString(),
        until: new Date(started - (options.settleMs ?? DEFAULT_SETTLE_MS)).toISOString(),
        full,
        phase: 'fetch',
        object: 0,
        startedAt: new Date(started).toISOString(),
      };
      await saveCursor(tenant, state);
    }
    const r = state.run;
    const result = emptyRunResult(tenant, 'done', resumed, r.full);
    /** records this invocation already compared (the sweep skips them); `key@modifiedAt` seen */
    const seen = new Set<string>();
    const seenVersions = new Set<string>();

    const compare = async (
      fetched: readonly FetchedRecord[],
      expected?: readonly RecordRef[],
    ): Promise<void> => {
      const fresh = fetched.filter((rec) => {
        const version = `${recordKey(rec.ref)}@${rec.modifiedAt}`;
        if (seenVersions.has(version)) return false;
        seenVersions.add(version);
        return true;
      });
      for (const rec of fresh) seen.add(recordKey(rec.ref));
      result.compared += fresh.length;
      const projections = await readProjections(options.ledger, tenant, [
        ...fresh.map((rec) => rec.ref),
        ...(expected ?? []),
      ]);
      const found = diffRecords({
        fetched: fresh,
        projections,
        ...(expected ? { expected } : {}),
        ignoreFields: ignore,
      });
      const at = new Date(now()).toISOString();
      const queued: ParsedEvent[] = found.map((d) => {
        result.queued[d.type] += 1;
        return discrepancyEvent(d, {
          tenant,
          source,
          now: at,
          baseline: r.full,
          omitFields: omit,
        });
      });
      for (let i = 0; i < queued.length; i += EVENTS_PER_REQUEST) {
        await options.sink.enqueue({
          source,
          receivedAt: at,
          events: queued.slice(i, i + EVENTS_PER_REQUEST),
        });
      }
    };

    try {
      // 1. What the CRM changed in [from, until), object by object, page by page.
      while (r.phase === 'fetch' && r.object < objects.length) {
        const object = objects[r.object] as string;
        let page;
        try {
          page = await client.fetchRecords({
            object,
            since: r.from,
            until: r.until,
            ...(r.page !== undefined ? { cursor: r.page } : {}),
            ...(options.pageLimit !== undefined ? { limit: options.pageLimit } : {}),
          });
        } catch (err) {
          // An object this account cannot read (not enabled, no permission, a name the client
          // refuses) would stop every run at the same page: skip it, loudly, and go on.
          const refused =
            err instanceof InputError || (err instanceof CrmApiError && err.kind === 'permanent');
          if (!refused) throw err;
          logger.error({ tenant, object, err: err.message }, 'reconcile: object skipped');
          result.skippedObjects.push(object);
          delete r.page;
          r.object += 1;
          await saveCursor(tenant, state);
          continue;
        }
        await compare(page.records);
        result.pages += 1;
        if (page.cursor !== undefined) {
          r.page = page.cursor;
        } else {
          delete r.page;
          r.object += 1;
        }
        await saveCursor(tenant, state);
        options.onPage?.(tenant, { phase: 'fetch', records: page.records.length });
      }
      if (r.phase === 'fetch') {
        r.phase = 'sweep';
        r.sweep = r.full ? '0' : (state.sweep ?? '0');
        r.swept = 0;
        await saveCursor(tenant, state);
      }
      // 2. The ledger's records the fetch did not return: still there, deleted or gone?
      const batch = options.sweepBatch ?? 100;
      const perRun = r.full ? Infinity : (options.sweepPerRun ?? 10_000);
      while (r.phase === 'sweep' && r.sweep !== undefined && (r.swept ?? 0) < perRun) {
        const step = await options.ledger.store.scanRecordKeys(tenant, r.sweep, batch);
        r.swept = (r.swept ?? 0) + step.recordKeys.length;
        const byObject = new Map<string, RecordRef[]>();
        for (const key of new Set(step.recordKeys)) {
          const ref = refOfRecordKey(key);
          if (ref === undefined || seen.has(key) || !objects.includes(ref.object)) continue;
          byObject.set(ref.object, [...(byObject.get(ref.object) ?? []), ref]);
        }
        let records = 0;
        for (const [object, refs] of byObject) {
          // Already deleted in the ledger: nothing to learn (a restore shows in the fetch).
          const projections = await readProjections(options.ledger, tenant, refs);
          const live = refs.filter((ref) => projections.get(recordKey(ref))?.deleted === false);
          if (live.length === 0) continue;
          let page;
          try {
            page = await client.fetchRecords({ object, ids: live.map((ref) => ref.id) });
          } catch (err) {
            // Ids the client refuses (not the CRM's shape) cannot get better: skip them, say so.
            if (!(err instanceof InputError)) throw err;
            logger.warn({ tenant, object, err: err.message }, 'reconcile sweep: ids refused');
            continue;
          }
          // Changed since `until`: its webhook may still be on the way; the next run's fetch has it.
          const later = new Set(
            page.records
              .filter((rec) => !(Date.parse(rec.modifiedAt) < Date.parse(r.until)))
              .map((rec) => recordKey(rec.ref)),
          );
          const comparedBefore = result.compared;
          await compare(
            page.records.filter((rec) => !later.has(recordKey(rec.ref))),
            live.filter((ref) => !later.has(recordKey(ref))),
          );
          records += live.length;
          result.swept += result.compared - comparedBefore;
        }
        result.pages += 1;
        if (step.cursor === '0') delete r.sweep;
        else r.sweep = step.cursor;
        await saveCursor(tenant, state);
        options.onPage?.(tenant, { phase: 'sweep', records });
      }
    } catch (err) {
      if (err instanceof CrmApiError && err.kind === 'rate-limited') {
        // Stop here with the cursor kept; try again once the CRM's window has passed.
        const retryAfterMs = err.retryAfterMs ?? options.rateLimitRetryMs ?? 60_000;
        await queue.add(
          'retry',
          { tenant },
          {
            delay: retryAfterMs,
            jobId: `${schedulerIdOf(tenant)}.retry`,
            removeOnComplete: true,
            removeOnFail: true,
          },
        );
        logger.warn({ tenant, retryAfterMs }, 'reconciliation rate-limited: resumes later');
        const limited: ReconcileRunResult = {
          ...result,
          status: 'rate-limited',
          retryAfterMs,
          ms: now() - started,
        };
        options.onRun?.(limited);
        return limited;
      }
      throw err;
    }
    const finished: CursorState = {
      v: 1,
      since: r.until,
      ...(r.sweep !== undefined && r.sweep !== '0' ? { sweep: r.sweep } : {}),
      lastRun: {
        finishedAt: new Date(now()).toISOString(),
        compared: result.compared,
        full: r.full,
      },
    };
    await saveCursor(tenant, finished);
    result.ms = now() - started;
    logger.info(
      {
        tenant,
        compared: result.compared,
        queued: result.queued,
        ms: result.ms,
        full: r.full,
        resumed,
      },
      'reconciliation done',
    );
    options.onRun?.(result);
    return result;
  };

  const process = async (
    job: Job<ReconcileJob, ReconcileRunResult>,
  ): Promise<ReconcileRunResult> => {
    const client = clients.get(job.data.tenant);
    if (client === undefined) {
      throw new UnrecoverableError(`no CRM client for tenant ${job.data.tenant}`);
    }
    return run(client, job.data.full === true);
  };
  // One run at a time: runs of one tenant never race on its cursor.
  const worker = new Worker<ReconcileJob, ReconcileRunResult>(RECONCILE_QUEUE, process, {
    connection: options.connection,
    prefix,
    concurrency: 1,
  });
  worker.on('failed', (job, err) => {
    logger.warn({ tenant: job?.data.tenant, err: err.message }, 'reconciliation failed');
  });
  worker.on('error', (err) => logger.error({ err }, 'reconcile worker error'));

  const everyMs = options.everyMs ?? DEFAULT_RECONCILE_EVERY_MS;
  const scheduled =
    everyMs > 0
      ? Promise.all(
          options.clients.map((c) =>
            queue.upsertJobScheduler(
              schedulerIdOf(c.tenant),
              { every: everyMs },
              { name: 'run', data: { tenant: c.tenant } },
            ),
          ),
        )
      : Promise.resolve([]);
  scheduled.catch((err: unknown) => logger.error({ err }, 'reconcile scheduler not set up'));

  return {
    async runNow(tenant, runOptions = {}) {
      if (!clients.has(tenant)) {
        throw new LedgerError('TENANT_UNKNOWN', `no CRM client for tenant ${tenant}`);
      }
      await events.waitUntilReady();
      const job = await queue.add('run', {
        tenant,
        ...(runOptions.full === true ? { full: true } : {}),
      });
      return job.waitUntilFinished(events);
    },
    async close() {
      await scheduled.catch(() => undefined);
      await worker.close();
      await events.close();
      await queue.close();
    },
  };
}

/** A run's result before anything is compared or queued. */
function emptyRunResult(
  tenant: string,
  status: ReconcileRunResult['status'],
  resumed: boolean,
  full: boolean,
): ReconcileRunResult {
  return {
    tenant,
    status,
    resumed,
    full,
    compared: 0,
    swept: 0,
    pages: 0,
    skippedObjects: [],
    queued: {
      'unanchored-change': 0,
      'unanchored-delete': 0,
      'unanchored-restore': 0,
      'missing-in-crm': 0,
    },
    ms: 0,
  };
}
