/**
 * ioredis connections by role (BullMQ's going-to-production advice): request paths fail fast so a
 * caller can answer 503 and the CRM retries; workers wait for Redis to come back.
 */
import { Redis } from 'ioredis';

export type ConnectionRole = 'request' | 'worker' | 'cli';

/**
 * Every role sets `commandTimeout`: ioredis holds a command that was in flight when the connection
 * dropped until it reconnects (then resends it), so without a timeout the caller waits for as long
 * as Redis is down. Resending is safe for the ledger (compare-and-set plus idempotency records).
 */
export function createRedis(url: string, role: ConnectionRole): Redis {
  let redis: Redis;
  switch (role) {
    case 'request':
      redis = new Redis(url, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: REQUEST_COMMAND_TIMEOUT_MS,
      });
      break;
    case 'worker':
      redis = new Redis(url, {
        maxRetriesPerRequest: null,
        commandTimeout: WORKER_COMMAND_TIMEOUT_MS,
      });
      break;
    case 'cli':
      redis = new Redis(url, {
        maxRetriesPerRequest: 1,
        commandTimeout: WORKER_COMMAND_TIMEOUT_MS,
        retryStrategy: (times) => (times > 3 ? null : 200 * times),
      });
      break;
  }
  // Connection errors are reported through command failures and /readyz; without a listener
  // ioredis prints every reconnect attempt to stderr.
  redis.on('error', () => {});
  return redis;
}

export const REQUEST_COMMAND_TIMEOUT_MS = 2_000;
export const WORKER_COMMAND_TIMEOUT_MS = 30_000;
