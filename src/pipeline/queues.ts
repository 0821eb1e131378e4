/**
 * Queue names, the `{cl}` prefix (one Redis Cluster slot for BullMQ's keys) and job ids. The only
 * place besides the workers that imports bullmq.
 *
 * One job carries one webhook request (up to 100 events), not one event: BullMQ adds ~20-28k jobs/s
 * here while a request holds up to 100 changes, so the queue never caps the pipeline. Idempotency is
 * per event, in the ledger's append script; the job id only saves work on redelivered requests.
 */
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import type { Cluster } from 'ioredis';
import { createRedis, isClusterUrl } from '../redis/connection.js';
import type { ParsedEvent } from '../../connectors/types.js';
import type { Source } from '../model/change-event.js';

export const QUEUE_PREFIX = '{cl}';

/**
 * BullMQ connection options from a redis:// or rediss:// URL (BullMQ makes its own clients), or,
 * for a `redis+cluster://` URL, an ioredis Cluster shared by every queue of this process and role:
 * BullMQ leaves a client it is handed open on close (and duplicates it for blocking workers), so
 * one per role avoids a new cluster connection per short-lived Queue (e.g. the metrics' queue
 * depths). closeSharedQueueConnections() ends them at shutdown.
 */
export function connectionFromUrl(url: string, role: 'producer' | 'worker'): ConnectionOptions {
  if (isClusterUrl(url)) {
    const id = `${role} ${url}`;
    let cluster = sharedClusters.get(id);
    if (!cluster) {
      cluster = createRedis(url, role === 'producer' ? 'request' : 'worker') as Cluster;
      sharedClusters.set(id, cluster);
    }
    return cluster;
  }
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // Producers fail fast so a webhook can answer 503 and the CRM retries; workers wait for Redis.
    ...(role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 }
      : { maxRetriesPerRequest: null }),
  };
}

const sharedClusters = new Map<string, Cluster>();

/** Quits the cluster clients connectionFromUrl handed out (call after closing every queue). */
export async function closeSharedQueueConnections(): Promise<void> {
  const clusters = [...sharedClusters.values()];
  sharedClusters.clear();
  await Promise.allSettled(clusters.map((c) => c.quit()));
}
export const CHANGES_QUEUE = 'changes';

export interface ChangesJob {
  source: Source;
  receivedAt: string;
  events: ParsedEvent[];
}

/**
 * BullMQ job ids must not contain ':' (BullMQ uses it in its own keys) nor be all digits: the hex
 * SHA-256 of the request's event keys has neither, and a redelivered request maps to the same id.
 */
export function jobIdFor(events: readonly ParsedEvent[]): string {
  const h = createHash('sha256');
  for (const e of events) h.update(e.idempotencyKey).update('\n');
  return h.digest('hex');
}

export const CHANGES_JOB_OPTIONS: JobsOptions = {
  attempts: 25,
  backoff: { type: 'exponential', delay: 500 },
  // Completed jobs are deleted at once (the ledger is the record), failed ones kept for a week.
  removeOnComplete: true,
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** `prefix` must be a Redis Cluster hash tag (`{…}`); tests use their own to stay apart. */
export function createChangesQueue(
  connection: ConnectionOptions,
  prefix: string = QUEUE_PREFIX,
): Queue<ChangesJob> {
  return new Queue<ChangesJob>(CHANGES_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: CHANGES_JOB_OPTIONS,
  });
}

/** What the HTTP layer needs to queue a request: add it, or say the queue is full/unavailable. */
export interface ChangeSink {
  /** Resolves once the job is stored in Redis; rejects when it cannot be. */
  enqueue(job: ChangesJob): Promise<{ jobId: string }>;
  /** true while the queue is above its high-water mark */
  overloaded(): Promise<boolean>;
}

export function createChangeSink(
  queue: Queue<ChangesJob>,
  options: { highWater?: number; now?: () => number } = {},
): ChangeSink {
  const highWater = options.highWater ?? 50_000;
  const now = options.now ?? Date.now;
  let cached = { at: -Infinity, depth: 0 };
  return {
    async enqueue(job) {
      const jobId = jobIdFor(job.events);
      // A redelivered request maps to the same id: BullMQ keeps the job it already has.
      await queue.add('request', job, { jobId });
      return { jobId };
    },
    async overloaded() {
      if (now() - cached.at > 500) {
        cached = { at: now(), depth: await queue.getWaitingCount() };
      }
      return cached.depth > highWater;
    },
  };
}
