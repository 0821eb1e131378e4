/**
 * The `flags` queues: a verdict on an anchored block becomes one flag job, written back to the CRM
 * by the flag worker. One queue per CRM account (tenant), so that one CRM's rate limit or outage
 * never holds back another's flags; all under the `{cl}` prefix (one Redis Cluster slot).
 *
 * The job id is the hex SHA-256 of (tenant, block seq): a retried anchor job re-enqueues the same
 * ids and BullMQ keeps the job it has, so a flag is queued once per block. The CRM client is
 * idempotent by seq as well (it looks for its own marker before writing a note or task), so a flag
 * retried after a crash mid-write is not written twice either.
 */
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import type { FlagRequest } from '../../connectors/types.js';
import type { Verdict } from '../model/verdict.js';
import { QUEUE_PREFIX } from './queues.js';

export interface FlagJob {
  request: FlagRequest;
}

/** `hubspot:123` → `flags-hubspot-123` (queue names must not contain ':'). */
export function flagsQueueName(tenant: string): string {
  return `flags-${tenant.replace(':', '-')}`;
}

export function flagJobId(tenant: string, seq: number): string {
  return createHash('sha256').update(`flag|${tenant}|${seq}`).digest('hex');
}

/**
 * Which verdicts are written back: duplicates and unanchored changes always; policy verdicts when
 * their rule's actions include `flag` (policies record their actions in the verdict, so the block
 * shows what response was decided).
 */
export function shouldFlag(verdict: Verdict): boolean {
  if (verdict.type === 'info') return false;
  const actions = (verdict as { actions?: unknown }).actions;
  if (Array.isArray(actions)) return actions.includes('flag');
  return true;
}

/** A verdict whose rule chose `revert`. */
export function wantsRevert(verdict: Verdict): boolean {
  const actions = (verdict as { actions?: unknown }).actions;
  return Array.isArray(actions) && actions.includes('revert');
}

/**
 * The write-back of a subject erasure: the erasure block's verdict (SUBJECT_ERASED: erasure id and
 * legal basis, never a personal value) on the erased record, so the CRM shows it was erased in the
 * ledger. A record the CRM has deleted already (HubSpot privacyDeletion) comes back from the
 * client as `record-missing`: done, not a failure.
 */
export function erasureFlagRequest(
  ref: { tenant: string; object: string; id: string },
  block: { seq: number; hash: string },
  verdict: Verdict,
  adminBaseUrl?: string,
): FlagRequest {
  return {
    tenant: ref.tenant,
    ref: { object: ref.object, id: ref.id },
    seq: block.seq,
    blockHash: block.hash,
    verdicts: [verdict],
    ...(adminBaseUrl
      ? {
          adminUrl: `${adminBaseUrl}/admin/records/${encodeURIComponent(ref.tenant)}/${ref.object}/${encodeURIComponent(ref.id)}`,
        }
      : {}),
  };
}

export const FLAG_JOB_OPTIONS: JobsOptions = {
  // 5xx and network errors: exponential backoff with jitter, for about a day. 429s do not count
  // (the worker rate-limits the queue for Retry-After and puts the job back).
  attempts: 30,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  // Failed flags stay (with their data) for an admin to look at and retry.
  removeOnFail: false,
};

export interface FlagSink {
  /** Resolves once every request is stored in its tenant's flags queue. */
  enqueue(requests: readonly FlagRequest[]): Promise<void>;
  close(): Promise<void>;
}

export function createFlagsQueue(
  connection: ConnectionOptions,
  tenant: string,
  prefix: string = QUEUE_PREFIX,
): Queue<FlagJob> {
  return new Queue<FlagJob>(flagsQueueName(tenant), {
    connection,
    prefix,
    defaultJobOptions: FLAG_JOB_OPTIONS,
  });
}

export function createFlagSink(
  connection: ConnectionOptions,
  prefix: string = QUEUE_PREFIX,
): FlagSink {
  const queues = new Map<string, Queue<FlagJob>>();
  const queueFor = (tenant: string): Queue<FlagJob> => {
    let q = queues.get(tenant);
    if (!q) {
      q = createFlagsQueue(connection, tenant, prefix);
      queues.set(tenant, q);
    }
    return q;
  };
  return {
    async enqueue(requests) {
      const byTenant = new Map<string, FlagRequest[]>();
      for (const r of requests) {
        const list = byTenant.get(r.tenant) ?? [];
        list.push(r);
        byTenant.set(r.tenant, list);
      }
      await Promise.all(
        [...byTenant].map(([tenant, list]) =>
          queueFor(tenant).addBulk(
            list.map((request) => ({
              name: 'flag',
              data: { request },
              opts: { jobId: flagJobId(tenant, request.seq) },
            })),
          ),
        ),
      );
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
