/** Test-side access to the private Redis started by ./global-redis.ts. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import type { ConnectionOptions } from 'bullmq';
import { connectionFromUrl } from '../../src/pipeline/queues.js';

/** URL of this run's private redis-server (integration project only). */
export function testRedisUrl(): string {
  const url = inject('redisUrl');
  if (typeof url !== 'string' || url === '') {
    throw new Error('no test Redis: run this file in the integration project (globalSetup)');
  }
  return url;
}

/** A tenant no other test uses, e.g. `hubspot:test-9f1c2a7b3d4e5f60`. */
export function randomTenant(source: 'hubspot' | 'salesforce' = 'hubspot'): string {
  return `${source}:test-${randomBytes(8).toString('hex')}`;
}

/** A fresh client on the test Redis; the caller calls `quit()`. */
export function connect(): Redis {
  return new Redis(testRedisUrl(), { lazyConnect: false, maxRetriesPerRequest: 1 });
}

/** BullMQ connection options for the test Redis (a worker's: waits for Redis, never gives up). */
export function testQueueConnection(): ConnectionOptions {
  return connectionFromUrl(testRedisUrl(), 'worker');
}
