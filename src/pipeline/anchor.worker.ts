/**
 * The anchor worker: takes change requests off the `changes` queue, runs the checks on each
 * change, and appends them to their tenant's chain in micro-batches.
 *
 * Jobs are processed concurrently; their events are pooled per tenant and appended together
 * (up to `batchSize` changes, or whatever arrived within `batchWaitMs`), ordered by occurredAt and
 * then arrival. A job completes only when all of its events are anchored under a signed checkpoint.
 * A worker killed mid-batch loses nothing: its jobs are retried after their lock expires, and the
 * ledger's idempotency records skip every change that was already anchored.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import type { ConnectionOptions, Job } from 'bullmq';
import { InputError } from '../errors.js';
import type { PreparedChange } from '../ledger/block.js';
import type { Ledger } from '../ledger/ledger.js';
import type { ChangeEvent, FieldValue } from '../model/change-event.js';
import type { ParsedEvent } from '../../connectors/types.js';
import { recordKeyOf } from '../ledger/block.js';
import { canonicalize } from '../ledger/canonical.js';
import { sha256Hex } from '../ledger/hash.js';
import type { Verdict } from '../model/verdict.js';
import type { Logger } from '../observability/logger.js';
import { CHANGES_QUEUE, QUEUE_PREFIX } from './queues.js';
import type { ChangesJob } from './queues.js';

/** The checks run on each change before it is anchored (dedupe, policy); none yet by default. */
export type ChecksHook = (tenant: string, events: readonly ChangeEvent[]) => Promise<Verdict[][]>;
export const NO_CHECKS: ChecksHook = (_tenant, events) => Promise.resolve(events.map(() => []));

export interface AnchorWorkerOptions {
  connection: ConnectionOptions;
  ledger: Ledger;
  logger: Logger;
  batchSize?: number;
  batchWaitMs?: number;
  concurrency?: number;
  /** called after each append with the changes it anchored (metrics, benchmarks) */
  onAnchored?: AnchoredHook;
  /** queue prefix (a `{…}` hash tag); QUEUE_PREFIX by default */
  prefix?: string;
  /** job lock; a crashed worker's jobs are taken back after this (and the stalled check) */
  lockMs?: number;
  checks?: ChecksHook;
}

export type AnchoredHook = (tenant: string, anchoredEventIds: string[], skipped: number) => void;

export interface JobResult {
  anchored: number;
  skipped: number;
}

interface Pending {
  changes: PreparedChange[];
  resolve: (r: JobResult) => void;
  reject: (err: unknown) => void;
}

/** Pools the changes of concurrent jobs per tenant and appends them in batches. */
export class TenantBatcher {
  private readonly queues = new Map<
    string,
    { items: Pending[]; size: number; timer?: NodeJS.Timeout }
  >();

  constructor(
    private readonly ledger: Ledger,
    private readonly batchSize: number,
    private readonly batchWaitMs: number,
    private readonly onAnchored?: AnchoredHook,
  ) {}

  submit(tenant: string, changes: PreparedChange[]): Promise<JobResult> {
    return new Promise<JobResult>((resolve, reject) => {
      let q = this.queues.get(tenant);
      if (!q) {
        q = { items: [], size: 0 };
        this.queues.set(tenant, q);
      }
      q.items.push({ changes, resolve, reject });
      q.size += changes.length;
      if (q.size >= this.batchSize) this.flush(tenant);
      else q.timer ??= setTimeout(() => this.flush(tenant), this.batchWaitMs);
    });
  }

  private flush(tenant: string): void {
    const q = this.queues.get(tenant);
    if (!q || q.items.length === 0) return;
    if (q.timer) clearTimeout(q.timer);
    this.queues.delete(tenant);
    const items = q.items;
    // Order by occurredAt, then arrival (Array.prototype.sort is stable).
    const all = items.flatMap((item, i) => item.changes.map((change) => ({ change, item: i })));
    all.sort((a, b) =>
      a.change.event.occurredAt < b.change.event.occurredAt
        ? -1
        : a.change.event.occurredAt > b.change.event.occurredAt
          ? 1
          : 0,
    );
    this.ledger
      .appendPrepared(
        tenant,
        all.map((a) => a.change),
      )
      .then(
        (result) => {
          this.onAnchored?.(
            tenant,
            result.anchored.map(
              (a) => (all[a.index] as { change: PreparedChange }).change.event.eventId,
            ),
            result.skipped.length,
          );
          const counts = items.map(() => ({ anchored: 0, skipped: 0 }));
          for (const a of result.anchored)
            (counts[(all[a.index] as { item: number }).item] as JobResult).anchored += 1;
          for (const s of result.skipped)
            (counts[(all[s.index] as { item: number }).item] as JobResult).skipped += 1;
          items.forEach((item, i) => item.resolve(counts[i] as JobResult));
        },
        (err: unknown) => {
          for (const item of items) item.reject(err);
        },
      );
  }
}

/** The field that carries the hash of a full-state event's whole state (Outbound Messages). */
export const STATE_HASH_FIELD = '$state';

/**
 * Full-state events (Salesforce Outbound Messages carry the record as it is now) become changes:
 * only the fields whose value differs from the record's last anchored state are anchored, plus
 * the hash of the whole state so that it is still pinned in the block. Events of one record in
 * one request are diffed in order, each against the state the previous one left.
 */
export async function diffFullState(
  ledger: Ledger,
  tenant: string,
  events: readonly ParsedEvent[],
): Promise<ParsedEvent[]> {
  const states = new Map<string, Map<string, FieldValue>>();
  const out: ParsedEvent[] = [];
  for (const e of events) {
    if (!e.fullState) {
      out.push(e);
      continue;
    }
    const key = recordKeyOf({ object: e.event.object, id: e.event.recordId });
    const state = states.get(key) ?? (await ledger.recordState(tenant, key));
    const fields: Record<string, FieldValue> = {};
    for (const [name, value] of Object.entries(e.event.fields)) {
      if (!state.has(name) || state.get(name) !== value) fields[name] = value;
      state.set(name, value);
    }
    fields[STATE_HASH_FIELD] = sha256Hex(canonicalize(e.event.fields));
    states.set(key, state);
    out.push({ ...e, event: { ...e.event, fields } });
  }
  return out;
}

export function startAnchorWorker(options: AnchorWorkerOptions): Worker<ChangesJob, JobResult> {
  const checks = options.checks ?? NO_CHECKS;
  const batcher = new TenantBatcher(
    options.ledger,
    Math.min(options.batchSize ?? 128, 1000),
    options.batchWaitMs ?? 20,
    options.onAnchored,
  );
  const logger = options.logger;
  const process = async (job: Job<ChangesJob, JobResult>): Promise<JobResult> => {
    const byTenant = new Map<string, ChangesJob['events']>();
    for (const e of job.data.events) {
      const list = byTenant.get(e.event.tenant) ?? [];
      list.push(e);
      byTenant.set(e.event.tenant, list);
    }
    const refused: string[] = [];
    const results = await Promise.all(
      [...byTenant].map(async ([tenant, received]) => {
        const events = await diffFullState(options.ledger, tenant, received);
        const verdicts = await checks(
          tenant,
          events.map((e) => e.event),
        );
        // Each change is checked on its own: one bad change does not keep the others out.
        const prepared: PreparedChange[] = [];
        events.forEach((e, i) => {
          try {
            prepared.push(
              ...options.ledger.prepare(tenant, [
                { event: e.event, idempotencyKey: e.idempotencyKey, verdicts: verdicts[i] ?? [] },
              ]),
            );
          } catch (err) {
            if (!(err instanceof InputError)) throw err;
            refused.push(`${e.event.eventId} (${err.code}: ${err.message})`);
          }
        });
        return prepared.length > 0 ? batcher.submit(tenant, prepared) : { anchored: 0, skipped: 0 };
      }),
    );
    if (refused.length > 0) {
      // Bad input cannot get better by retrying: the good changes of the request are anchored; the
      // job fails for good and stays in the failed set, with its data, for someone to look at.
      throw new UnrecoverableError(
        `${refused.length} change(s) refused: ${refused.slice(0, 5).join('; ')}`,
      );
    }
    const total = results.reduce(
      (a, r) => ({ anchored: a.anchored + r.anchored, skipped: a.skipped + r.skipped }),
      { anchored: 0, skipped: 0 },
    );
    logger.debug({ jobId: job.id, ...total }, 'request anchored');
    return total;
  };
  const worker = new Worker<ChangesJob, JobResult>(CHANGES_QUEUE, process, {
    connection: options.connection,
    prefix: options.prefix ?? QUEUE_PREFIX,
    concurrency: options.concurrency ?? 32,
    lockDuration: options.lockMs ?? 30_000,
    stalledInterval: options.lockMs ?? 30_000,
  });
  worker.on('failed', (job, err) => {
    logger.warn(
      { jobId: job?.id, attempts: job?.attemptsMade, err: err.message },
      'anchor job failed',
    );
  });
  worker.on('error', (err) => logger.error({ err }, 'anchor worker error'));
  return worker;
}
