/**
 * vitest globalSetup for the integration project: one private `redis-server` per run, persistence
 * off, on a free loopback port (STYLE.md §5; never 6379, never `--port 0`). Tests get its URL
 * through `inject('redisUrl')` (see ./redis.ts) and isolate themselves with random tenants.
 */
import type { TestProject } from 'vitest/node';
import { startRedisServer } from '../../src/redis/embedded-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startRedisServer({ persistence: 'none' });
  project.provide('redisUrl', redis.url);
  // For code that reads the environment (e.g. a spawned CLI under test) rather than inject().
  process.env['CRM_LEDGER_TEST_REDIS_URL'] = redis.url;
  return async () => {
    delete process.env['CRM_LEDGER_TEST_REDIS_URL'];
    await redis.stop();
  };
}
