/**
 * The flag worker: writes verdicts back to one CRM account (one `flags-<tenant>` queue, one
 * CrmClient). Concurrent jobs are pooled into calls of up to `batchSize` flags (the CRMs' batch
 * APIs take 100), so a burst of verdicts costs a few API requests, not one per flag.
 *
 * Failures, as the client classifies them (CrmApiError):
 * - rate-limited (HubSpot 429, Salesforce REQUEST_LIMIT_EXCEEDED): the whole queue is paused for
 *   the CRM's Retry-After (queue.rateLimit) and the jobs go back to waiting, without using an
 *   attempt: a 429 storm delays flags, never drops them;
 * - transient (5xx, network) and auth (token refused after a refresh): retried with exponential
 *   backoff and jitter (FLAG_JOB_OPTIONS), then kept in the failed set for an admin;
 * - permanent (a 4xx retrying cannot fix): failed at once, kept in the failed set.
 */
import { Queue, RateLimitError, UnrecoverableError, Worker } from 'bullmq';
import type { ConnectionOptions, Job } from 'bullmq';
import { CrmApiError } from '../../connectors/types.js';
import type { CrmClient, FlagOutcome, FlagRequest } from '../../connectors/types.js';
import type { Logger } from '../observability/logger.js';
import { flagsQueueName } from './flags.js';
import type { FlagJob } from './flags.js';
import { QUEUE_PREFIX } from './queues.js';

export interface FlagWorkerOptions {
  connection: ConnectionOptions;
  client: CrmClient;
  logger: Logger;
  prefix?: string;
  /** flags per CRM call (≤ 100) */
  batchSize?: number;
  /** how long a partly filled batch waits for more */
  batchWaitMs?: number;
  /** called after each CRM call (metrics, benchmarks) */
  onFlagged?: (outcomes: readonly FlagOutcome[]) => void;
  onRateLimited?: (retryAfterMs: number) => void;
}

export interface RunningFlagWorker {
  worker: Worker<FlagJob, FlagOutcome>;
  close(): Promise<void>;
}

interface Waiting {
  request: FlagRequest;
  resolve: (o: FlagOutcome) => void;
  reject: (err: unknown) => void;
}

/** Pools concurrent flag requests into one client call. */
class FlagBatcher {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: CrmClient,
    private readonly batchSize: number,
    private readonly batchWaitMs: number,
    private readonly onFlagged?: (outcomes: readonly FlagOutcome[]) => void,
  ) {}

  submit(request: FlagRequest): Promise<FlagOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (this.waiting.length >= this.batchSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.batchWaitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting.splice(0, this.batchSize);
    if (this.waiting.length > 0) this.timer = setTimeout(() => this.flush(), 0);
    if (batch.length === 0) return;
    this.client.flag(batch.map((w) => w.request)).then(
      (outcomes) => {
        this.onFlagged?.(outcomes);
        const bySeq = new Map(outcomes.map((o) => [o.seq, o]));
        for (const w of batch) {
          const outcome = bySeq.get(w.request.seq);
          if (outcome) w.resolve(outcome);
          else w.reject(new Error(`the CRM client returned no outcome for block ${w.request.seq}`));
        }
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  }
}

export function startFlagWorker(options: FlagWorkerOptions): RunningFlagWorker {
  const { client, logger } = options;
  const prefix = options.prefix ?? QUEUE_PREFIX;
  const name = flagsQueueName(client.tenant);
  const batchSize = Math.min(options.batchSize ?? 100, 100);
  const batcher = new FlagBatcher(client, batchSize, options.batchWaitMs ?? 50, options.onFlagged);
  // Used only to pause the whole queue for the CRM's Retry-After.
  const queue = new Queue<FlagJob>(name, { connection: options.connection, prefix });
  let pausedUntil = 0;

  const process = async (job: Job<FlagJob, FlagOutcome>): Promise<FlagOutcome> => {
    try {
      const request = job.data.request;
      const outcome = await batcher.submit(request);
      if (request.revert && outcome.status !== 'record-missing') {
        // Restored as our own change: its echo is anchored as crm-ledger's and never judged.
        await client.revert(request.ref, request.revert, `policy verdict on block ${request.seq}`);
        logger.info({ tenant: client.tenant, seq: request.seq }, 'reverted');
      }
      logger.debug({ tenant: client.tenant, seq: outcome.seq, status: outcome.status }, 'flagged');
      return outcome;
    } catch (err) {
      if (!(err instanceof CrmApiError)) throw err;
      switch (err.kind) {
        case 'rate-limited': {
          const wait = Math.max(err.retryAfterMs ?? 10_000, 100);
          // One pause per storm, not one per job of the refused batch.
          if (Date.now() + wait > pausedUntil + 50) {
            pausedUntil = Date.now() + wait;
            options.onRateLimited?.(wait);
            logger.warn({ tenant: client.tenant, retryAfterMs: wait }, 'CRM rate limit: pausing');
            await queue.rateLimit(wait);
          }
          throw new RateLimitError();
        }
        case 'permanent':
          throw new UnrecoverableError(`${err.message} (status ${err.status ?? 'n/a'})`);
        default:
          throw err;
      }
    }
  };

  const worker = new Worker<FlagJob, FlagOutcome>(name, process, {
    connection: options.connection,
    prefix,
    concurrency: batchSize,
    // A limiter must be set for manual rate limiting (queue.rateLimit) to hold jobs back; its own
    // bound is far above any CRM's.
    limiter: { max: 100_000, duration: 1_000 },
  });
  worker.on('failed', (job, err) => {
    if (err instanceof RateLimitError || err.name === 'RateLimitError') return;
    logger.warn(
      {
        tenant: client.tenant,
        seq: job?.data.request.seq,
        attempts: job?.attemptsMade,
        err: err.message,
      },
      'flag write-back failed',
    );
  });
  worker.on('error', (err) => logger.error({ err }, 'flag worker error'));
  return {
    worker,
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}
