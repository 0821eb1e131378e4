/** Test-side access to the private Redis started by ./global-redis.ts. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

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
