/**
 * Erasure and the queue: BullMQ keeps each job's data (the webhook's events, field values
 * included) in its job hash until the job is removed. Completed `changes` jobs are removed at
 * once (removeOnComplete), but waiting, delayed and failed jobs (kept a week) still hold values.
 * On erasure every such job is rewritten without the erased records' events (or removed when
 * nothing else is left in it), so no job hash keeps the person's values and no queued change
 * brings them back after the data key is destroyed.
 */
import type { Job, JobType, Queue } from 'bullmq';
import type { ChangesJob } from './queues.js';

export interface ErasedRef {
  tenant: string;
  object: string;
  id: string;
}

const STATES: JobType[] = [
  'waiting',
  'delayed',
  'failed',
  'prioritized',
  'waiting-children',
  'completed',
  'active',
];
const PAGE = 500;

export async function purgeQueuedEvents(
  queue: Queue<ChangesJob>,
  refs: readonly ErasedRef[],
): Promise<{ jobs: number; events: number }> {
  const wanted = new Set(refs.map((r) => `${r.tenant}/${r.object}/${r.id}`));
  const hit = (e: ChangesJob['events'][number]) =>
    wanted.has(`${e.event.tenant}/${e.event.object}/${e.event.recordId}`);
  let jobs = 0;
  let events = 0;
  for (const state of STATES) {
    // Collect first, then change: removing jobs while paging would shift the pages.
    const matched: { job: Job<ChangesJob>; keep: ChangesJob['events'] }[] = [];
    for (let start = 0; ; start += PAGE) {
      const page = await queue.getJobs([state], start, start + PAGE - 1, true);
      for (const job of page) {
        const all = job.data?.events ?? [];
        const keep = all.filter((e) => !hit(e));
        if (keep.length === all.length) continue;
        events += all.length - keep.length;
        matched.push({ job, keep });
      }
      if (page.length < PAGE) break;
    }
    for (const { job, keep } of matched) {
      jobs += 1;
      if (keep.length === 0 && state !== 'active') {
        try {
          await job.remove();
          continue;
        } catch {
          // Locked by a worker meanwhile: strip its data instead.
        }
      }
      await job.updateData({ ...job.data, events: keep });
    }
  }
  return { jobs, events };
}
