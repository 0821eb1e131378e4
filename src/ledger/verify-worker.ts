/** Worker thread of VerifyPool: checks the segments it is sent, reading Redis itself. */
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { createRedis, isClusterUrl } from '../redis/connection.js';
import { PackedReader } from '../redis/packed-reader.js';
import { storeSource } from './ledger.js';
import { RedisLedgerStore } from './store.js';
import { loadSegment, segmentRecordBuffers, verifySegment } from './verifier.js';
import type { WorkerReply, WorkerRequest } from './verify-pool.js';

const { redisUrl } = workerData as { redisUrl: string };
// A cluster URL gets the CLI's cluster client (single Redis: unchanged).
const redis = isClusterUrl(redisUrl)
  ? createRedis(redisUrl, 'cli')
  : new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
redis.on('error', () => {}); // failures reach the main thread through the rejected reads
const store = new RedisLedgerStore(redis);
// Segments come packed, one buffer each, from a plain redis:// URL; TLS and Cluster keep ioredis.
const reader = PackedReader.forUrl(redisUrl);

parentPort?.on('message', (req: WorkerRequest) => {
  loadSegment(storeSource(store, req.tenant, reader), req.segment, req.size).then(
    ({ blocks, levels, start, count, release }) => {
      const result = verifySegment(req.tenant, start, count, blocks, levels);
      // The result holds copies only (strings and fresh arrays): the read's buffers can be reused.
      release?.();
      const { failure, ...rest } = result;
      const reply: WorkerReply = {
        id: req.id,
        check: {
          blocksLength: blocks.ends.length,
          result: failure
            ? { ...rest, failure: { seq: failure.seq, code: failure.code, reason: failure.reason } }
            : rest,
        },
      };
      // The record arrays are moved, not copied: this thread does not use them again.
      parentPort?.postMessage(reply, segmentRecordBuffers(rest.records));
    },
    (err: unknown) => {
      parentPort?.postMessage({ id: req.id, error: String(err) } satisfies WorkerReply);
    },
  );
});
