/**
 * Runs the anchor worker in a worker thread of this process: `serve --role all` then uses both
 * cores — the main thread answers webhooks and admin requests, this thread anchors — while staying
 * one process. The thread builds its own Redis connections and Ledger, and reads the signing key
 * from the key file itself.
 */
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../worker-entry.js';
import type { LogLevel } from '../config.js';
import type { AnchorExtrasOptions } from './anchor-extras.js';

/**
 * Young generation of the anchor thread: 192 MB, i.e. 64 MB semi-spaces, what `node
 * --max-semi-space-size=64` gives the main thread (Dockerfile, npm start). The batches in flight
 * (~10 KB of strings and buffers per block) outlive V8's default 16 MB semi-spaces and were
 * promoted and collected by full GCs: 27-31 % of the append profile, 13 % with this
 * (docs/benchmarks.md, issue 3).
 */
export const YOUNG_GENERATION_MB = 192;

export interface AnchorThreadOptions {
  redisUrl: string;
  /** the ledger key file: the thread reads the signing key from it itself */
  keyFile: string;
  /** the vault master key file: vault entries are sealed under per-record data keys */
  vaultKeyFile?: string;
  origin: string;
  maxChangeBytes: number;
  checkpointMinIntervalMs: number;
  batchSize: number;
  batchWaitMs: number;
  lockMs: number;
  prefix?: string;
  logLevel: LogLevel;
  /** when set, the thread reports every append (event ids anchored, changes skipped) */
  reportAnchored?: boolean;
  /** plain settings the thread builds the worker's extras from (see AnchorExtras) */
  extras?: AnchorExtrasOptions;
}

export interface AnchorThread {
  /** resolves once the thread's BullMQ worker is running */
  ready: Promise<void>;
  /** finishes the jobs in hand, closes the thread's connections, ends the thread */
  close(): Promise<void>;
}

export type AnchorThreadMessage =
  | { type: 'ready' }
  | { type: 'closed' }
  | { type: 'error'; message: string }
  | { type: 'anchored'; tenant: string; eventIds: string[]; skipped: number };

export function startAnchorThread(
  options: AnchorThreadOptions,
  onAnchored?: (tenant: string, eventIds: string[], skipped: number) => void,
): AnchorThread {
  const thread = new Worker(workerEntry(import.meta.url, 'anchor-thread.worker'), {
    workerData: options,
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
  });
  let closed: (() => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    thread.on('message', (m: AnchorThreadMessage) => {
      if (m.type === 'anchored') onAnchored?.(m.tenant, m.eventIds, m.skipped);
      else if (m.type === 'ready') resolve();
      else if (m.type === 'closed') closed?.();
      else reject(new Error(m.message));
    });
    thread.once('error', reject);
    thread.once('exit', (code) => {
      reject(new Error(`anchor thread exited (${code})`));
      closed?.();
    });
  });
  return {
    ready,
    close: async () => {
      const done = new Promise<void>((resolve) => {
        closed = resolve;
      });
      thread.postMessage({ type: 'close' });
      await done;
      await thread.terminate();
    },
  };
}
