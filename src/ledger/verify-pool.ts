/**
 * A pool of worker threads that check verification segments in parallel: each worker reads its
 * segments from Redis over its own connection, hashes and parses them (verifySegment), and sends
 * back the small summary the main thread merges in seq order (links across segments, upper tree,
 * checkpoints). Hashing and JSON parsing are the cost of verification, and they are per segment.
 */
import { availableParallelism } from 'node:os';
import { workerEntry } from '../worker-entry.js';
import { Worker } from 'node:worker_threads';
import { Failure } from './verifier.js';
import type { SegmentCheck, SegmentChecker } from './verifier.js';

export interface VerifyPoolOptions {
  redisUrl: string;
  /** worker threads (default: one per core, at most 4) */
  workers?: number;
}

interface Pending {
  resolve: (check: SegmentCheck) => void;
  reject: (err: unknown) => void;
}

/** The message a worker sends back; Failure travels as plain data. */
export interface WorkerReply {
  id: number;
  error?: string;
  check?: Omit<SegmentCheck, 'result'> & {
    result: Omit<SegmentCheck['result'], 'failure'> & {
      failure?: { seq: number; code: Failure['code']; reason: string };
    };
  };
}

export interface WorkerRequest {
  id: number;
  tenant: string;
  segment: number;
  size: number;
}

export class VerifyPool {
  readonly prefetch: number;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private nextWorker = 0;

  constructor(options: VerifyPoolOptions) {
    const count = Math.max(1, options.workers ?? Math.min(4, availableParallelism()));
    this.prefetch = count * 3;
    const url = workerEntry(import.meta.url, 'verify-worker');
    for (let i = 0; i < count; i++) {
      const worker = new Worker(url, {
        workerData: { redisUrl: options.redisUrl },
      });
      worker.on('message', (reply: WorkerReply) => this.onReply(reply));
      worker.on('error', (err) => this.failAll(err));
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** A segment checker for one tenant's chain, backed by this pool. */
  forTenant(tenant: string): SegmentChecker {
    return { prefetch: this.prefetch, check: (segment, size) => this.check(tenant, segment, size) };
  }

  private check(tenant: string, segment: number, size: number): Promise<SegmentCheck> {
    const id = this.nextId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length] as Worker;
    return new Promise<SegmentCheck>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: WorkerRequest = { id, tenant, segment, size };
      worker.postMessage(request);
    });
  }

  private onReply(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.error !== undefined || !reply.check) {
      p.reject(new Error(reply.error ?? 'verify worker sent no result'));
      return;
    }
    const { failure, ...rest } = reply.check.result;
    const result = failure
      ? { ...rest, failure: new Failure(failure.seq, failure.code, failure.reason) }
      : rest;
    p.resolve({ blocksLength: reply.check.blocksLength, result });
  }

  private failAll(err: unknown): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
