/**
 * The `erasures` queue: an anchored HubSpot `privacyDeletion` (GDPR delete) becomes one erasure
 * job, performed by the erasure worker through the SubjectService (the same erasure as
 * `crm-ledger subject erase`).
 *
 * Crash safety: the anchor worker queues the job before its own job completes, for a new block
 * and for a replayed one alike, so a worker that dies between the append and the erasure leaves
 * either a queued erasure or an anchor job that is retried and queues it. The job id is the hex
 * SHA-256 of (tenant, record, seq of the deletion block), and so is the erasure id anchored in
 * the erasure block's idempotency key: re-queuing keeps the job BullMQ has, and erasing twice
 * (a retried or re-added job) anchors one erasure block. Job data holds no personal value.
 */
import { createHash } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import type { Logger } from '../observability/logger.js';
import type { ErasureReport, SubjectService } from '../vault/subjects.js';
import { QUEUE_PREFIX } from './queues.js';

export const ERASURES_QUEUE = 'erasures';

export interface ErasureJob {
  tenant: string;
  object: string;
  id: string;
  /** seq of the anchored privacyDeletion block */
  seq: number;
}

/** Hex SHA-256 of the deletion it performs: the job id and the anchored erasure id. */
export function erasureJobId(job: ErasureJob): string {
  return createHash('sha256')
    .update(`erasure|${job.tenant}|${job.object}/${job.id}|${job.seq}`)
    .digest('hex');
}

export const ERASURE_JOB_OPTIONS: JobsOptions = {
  attempts: 30,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
  // Kept a week so that a retried anchor job re-adding the same id finds it and adds nothing.
  removeOnComplete: { age: 7 * 24 * 3600 },
  removeOnFail: false,
};

export interface ErasureSink {
  /** Resolves once every job is stored in the erasures queue. */
  enqueue(jobs: readonly ErasureJob[]): Promise<void>;
  close(): Promise<void>;
}

export function createErasureSink(
  connection: ConnectionOptions,
  prefix: string = QUEUE_PREFIX,
): ErasureSink {
  const queue = new Queue<ErasureJob>(ERASURES_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: ERASURE_JOB_OPTIONS,
  });
  // Connection errors reach the caller as a rejected enqueue (the anchor job then fails and is
  // retried); the queue's own 'error' events need a listener so that they do not end the process.
  queue.on('error', () => undefined);
  return {
    async enqueue(jobs) {
      if (jobs.length === 0) return;
      await queue.addBulk(
        jobs.map((data) => ({ name: 'erase', data, opts: { jobId: erasureJobId(data) } })),
      );
    },
    close: () => queue.close(),
  };
}

export const PRIVACY_DELETION_ERASURE = {
  by: 'hubspot:privacyDeletion',
  reason: 'GDPR delete requested in HubSpot (privacyDeletion event)',
} as const;

export interface ErasureWorkerOptions {
  connection: ConnectionOptions;
  subjects: SubjectService;
  logger: Logger;
  prefix?: string;
}

export function startErasureWorker(options: ErasureWorkerOptions): Worker<ErasureJob, void> {
  const { subjects, logger } = options;
  const worker = new Worker<ErasureJob, void>(
    ERASURES_QUEUE,
    async (job) => {
      const { tenant, object, id } = job.data;
      const report: ErasureReport = await subjects.erase(
        { tenant, object, id },
        { ...PRIVACY_DELETION_ERASURE, erasureId: erasureJobId(job.data) },
      );
      const record = report.records[0];
      logger.info(
        {
          tenant,
          object,
          erasureId: report.erasureId,
          seq: record?.block?.seq,
          replayed: record?.replayed,
        },
        'privacyDeletion: record erased',
      );
    },
    { connection: options.connection, prefix: options.prefix ?? QUEUE_PREFIX, concurrency: 1 },
  );
  worker.on('failed', (job, err) =>
    logger.warn(
      { jobId: job?.id, attempts: job?.attemptsMade, err: err.message },
      'erasure failed',
    ),
  );
  worker.on('error', (err) => logger.error({ err }, 'erasure worker error'));
  return worker;
}
