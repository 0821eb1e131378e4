import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { writeKeyPair } from '../../src/ledger/signing-key.js';
import { startService } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { findFreePort, startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { inspectRedisForProduction } from '../../src/redis/production-check.js';

// A private redis-server, reconfigured (CONFIG SET) into each state before each case: these
// cases change server-wide settings, so they must not use the shared test Redis.
let server: EmbeddedRedis;
let admin: Redis;
let dir: string;
const logger = createLogger({ level: 'silent' });

beforeAll(async () => {
  server = await startRedisServer({ persistence: 'none' });
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  dir = await mkdtemp(join(tmpdir(), 'cl-prodcheck-'));
  await writeKeyPair(join(dir, 'ledger.key'), 'crm-ledger.local');
});

afterAll(async () => {
  admin.disconnect();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'appendonly', 'no');
  await admin.config('SET', 'save', '');
});

async function configure(settings: Record<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(settings)) await admin.config('SET', name, value);
}

function productionConfig(extra: Record<string, string> = {}) {
  return loadConfig({
    ...extra,
    CRM_LEDGER_MODE: 'production',
    CRM_LEDGER_REDIS_URL: server.url,
    CRM_LEDGER_DATA_DIR: dir,
    CRM_LEDGER_PORT: '0',
    CRM_LEDGER_SANDBOX: 'off',
    CRM_LEDGER_LOG_LEVEL: 'silent',
    CRM_LEDGER_ADMIN_TOKEN: 'a'.repeat(32),
  });
}

describe('inspectRedisForProduction', () => {
  describe('when Redis keeps nothing on disk', () => {
    it('reports the missing persistence and what to turn on', async () => {
      const report = await inspectRedisForProduction(admin);
      expect(report.ok).toBe(false);
      expect(report.problems).toHaveLength(1);
      expect(report.problems[0]).toMatch(
        /no persistence \(appendonly no, save ""\).*appendonly yes/,
      );
    });
  });

  describe('when maxmemory-policy evicts keys', () => {
    it('reports the policy even with AOF on', async () => {
      await configure({ appendonly: 'yes', 'maxmemory-policy': 'allkeys-lru' });
      const report = await inspectRedisForProduction(admin);
      expect(report.ok).toBe(false);
      expect(report.problems).toEqual([
        expect.stringContaining('maxmemory-policy is allkeys-lru; it must be noeviction'),
      ]);
    });

    it('reports a volatile policy too (BullMQ and the policy counters set TTLs)', async () => {
      await configure({ appendonly: 'yes', 'maxmemory-policy': 'volatile-ttl' });
      expect((await inspectRedisForProduction(admin)).problems[0]).toContain('volatile-ttl');
    });
  });

  describe('when AOF is on and nothing is evicted', () => {
    it('passes', async () => {
      await configure({ appendonly: 'yes', appendfsync: 'everysec' });
      const report = await inspectRedisForProduction(admin);
      expect(report).toMatchObject({ ok: true, problems: [], warnings: [] });
      expect(report.nodes).toEqual([
        expect.objectContaining({ maxmemoryPolicy: 'noeviction', aof: true }),
      ]);
    });
  });

  describe('when only RDB snapshots are on', () => {
    it('passes with a warning about the changes a crash loses', async () => {
      await configure({ save: '900 1' });
      const report = await inspectRedisForProduction(admin);
      expect(report.ok).toBe(true);
      expect(report.warnings[0]).toContain('RDB snapshots only (save "900 1")');
    });
  });
});

describe('startService in production mode', () => {
  describe('when Redis evicts and keeps nothing on disk', () => {
    it('refuses to start with REDIS_UNSAFE naming both settings, and writes nothing', async () => {
      await configure({ 'maxmemory-policy': 'allkeys-lru' });
      const before = await admin.dbsize();
      const started = startService(productionConfig(), logger, 'api');
      await expect(started).rejects.toMatchObject({
        code: 'REDIS_UNSAFE',
        message: expect.stringMatching(
          /CRM_LEDGER_MODE=production[\s\S]*maxmemory-policy is allkeys-lru[\s\S]*no persistence/,
        ) as unknown,
      });
      expect(await admin.dbsize()).toBe(before);
    });
  });

  describe('when Redis runs AOF with noeviction', () => {
    it('starts and answers /readyz', async () => {
      await configure({ appendonly: 'yes' });
      const service = await startService(productionConfig(), logger, 'api');
      try {
        const res = await fetch(`${service.url}/readyz`);
        expect(res.status).toBe(200);
      } finally {
        await service.stop();
      }
    });

    it('runs a worker whose CRM_LEDGER_HEALTH_PORT answers /healthz and /readyz only', async () => {
      await configure({ appendonly: 'yes' });
      const port = await findFreePort();
      const service = await startService(
        productionConfig({ CRM_LEDGER_HEALTH_PORT: String(port) }),
        logger,
        'worker',
      );
      try {
        const base = `http://127.0.0.1:${port}`;
        expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true });
        const ready = await fetch(`${base}/readyz`);
        expect([ready.status, await ready.json()]).toEqual([200, { ok: true, redis: 'up' }]);
        expect((await fetch(`${base}/admin/verify`)).status).toBe(404);
        expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
      } finally {
        await service.stop();
      }
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    });
  });
});
