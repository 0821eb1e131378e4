/**
 * Full verifications started from the dashboard, run in the background with their progress
 * (blocks verified of the chain's size) kept for the page that polls it. One running job per
 * tenant: starting another while one runs returns the running one. Finished jobs are kept, the
 * newest MAX_FINISHED of them, so their result stays readable for a while.
 *
 * The jobs live in the api process that started them: behind several api replicas, the dashboard
 * needs sticky sessions for the progress page (the verification itself is idempotent).
 */
import { randomBytes } from 'node:crypto';
import type { VerificationService } from '../ledger/verification.js';
import type { VerifyResult } from '../ledger/verifier.js';

export const MAX_FINISHED_JOBS = 100;

export interface VerificationJob {
  id: string;
  tenant: string;
  startedAt: string;
  /** blocks verified so far, of `total` (0 of 0 until the verifier reports its first segment) */
  done: number;
  total: number;
  finishedAt?: string;
  result?: VerifyResult;
  /** an unexpected error (Redis down …), not a verification failure */
  error?: string;
}

export class VerificationJobs {
  private readonly jobs = new Map<string, VerificationJob>();
  private readonly running = new Map<string, VerificationJob>();

  constructor(
    private readonly verification: VerificationService,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a full verification of `tenant` (or returns the one running). */
  start(tenant: string): VerificationJob {
    const existing = this.running.get(tenant);
    if (existing) return existing;
    const job: VerificationJob = {
      id: randomBytes(12).toString('hex'),
      tenant,
      startedAt: new Date(this.now()).toISOString(),
      done: 0,
      total: 0,
    };
    this.jobs.set(job.id, job);
    this.running.set(tenant, job);
    void this.verification
      .verifyTenant(tenant, 'full', (done, total) => {
        job.done = done;
        job.total = total;
      })
      .then(
        (result) => {
          job.result = result;
          job.total = result.size;
          if (result.ok) job.done = result.size;
        },
        (err: unknown) => {
          job.error = err instanceof Error ? err.message : 'verification failed';
        },
      )
      .finally(() => {
        job.finishedAt = new Date(this.now()).toISOString();
        this.running.delete(tenant);
        this.prune();
      });
    return job;
  }

  get(id: string): VerificationJob | undefined {
    return this.jobs.get(id);
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt !== undefined);
    for (const job of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED_JOBS)))
      this.jobs.delete(job.id);
  }
}
