/**
 * bull-board (https://github.com/felixmosh/bull-board) over our BullMQ queues, as an Express
 * router that src/http/app.ts mounts behind the admin/operator roles. It lives here because only
 * src/pipeline/ imports bullmq (STYLE.md §3); http/ receives the finished router.
 *
 * Job data carries CRM field values (personal data) and operators must not see them, so every
 * job's data and return value pass through `redactJobData` before the board shows them.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { RequestHandler } from 'express';

export const HIDDEN_JOB_VALUE = '[hidden: personal data]';

/** Keys whose values hold record data (field values, raw CRM payloads, reasons quoting them). */
const PERSONAL_KEYS = new Set([
  'fields',
  'raw',
  'before',
  'after',
  'values',
  'properties',
  'reason',
]);
const MAX_DEPTH = 8;

/** A copy of `data` with record values replaced; structure, ids and counts stay readable. */
export function redactJobData(data: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) return HIDDEN_JOB_VALUE;
  if (Array.isArray(data)) return data.map((item) => redactJobData(item, depth + 1));
  if (typeof data !== 'object' || data === null) return data;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    out[key] =
      PERSONAL_KEYS.has(key) && value !== null && value !== undefined
        ? HIDDEN_JOB_VALUE
        : redactJobData(value, depth + 1);
  }
  return out;
}

export interface QueuesBoardOptions {
  /** where app.ts mounts the router, e.g. '/admin/queues' (the UI builds its links from it) */
  basePath: string;
  /** no retry/clean/pause buttons */
  readOnly?: boolean;
}

export interface QueuesBoard {
  /** mount at `basePath` behind authentication (app.ts AppDeps.queuesBoard) */
  router: RequestHandler;
  /** replaces the queues shown, e.g. when a flags queue for a new CRM account appears */
  setQueues(queues: readonly Queue[]): void;
}

/** bull-board for `queues`, as an Express router. */
export function createQueuesBoard(
  queues: readonly Queue[],
  options: QueuesBoardOptions,
): QueuesBoard {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(options.basePath);
  const adapt = (list: readonly Queue[]) =>
    list.map((queue) => {
      const adapter = new BullMQAdapter(queue, { readOnlyMode: options.readOnly ?? false });
      adapter.setFormatter('data', (data: unknown) => redactJobData(data));
      adapter.setFormatter('returnValue', (value: unknown) => redactJobData(value));
      return adapter;
    });
  const board = createBullBoard({
    queues: adapt(queues),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'crm-ledger queues' } },
  });
  return {
    router: serverAdapter.getRouter() as RequestHandler,
    setQueues: (list) => board.replaceQueues(adapt(list)),
  };
}

export interface QueueDepth {
  queue: string;
  counts: Readonly<Record<string, number>>;
}

/** Job counts per queue for the dashboard overview (DashboardSources.queueDepths). */
export function queueDepthsOf(queues: () => readonly Queue[]): () => Promise<QueueDepth[]> {
  return () =>
    Promise.all(
      queues().map(async (queue) => ({
        queue: queue.name,
        counts: await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
      })),
    );
}
