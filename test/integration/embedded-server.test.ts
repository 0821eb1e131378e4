import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { connect, randomTenant, testRedisUrl } from '../helpers/redis.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tmpDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'crm-ledger-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function start(options: Parameters<typeof startRedisServer>[0]): Promise<EmbeddedRedis> {
  const server = await startRedisServer(options);
  cleanups.push(() => server.stop());
  return server;
}

function client(url: string): Redis {
  const redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  cleanups.push(async () => {
    redis.disconnect();
    await Promise.resolve();
  });
  return redis;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startRedisServer', () => {
  describe('when persistence is aof', () => {
    it('keeps an acknowledged write across SIGKILL and restart', async () => {
      const dataDir = path.join(await tmpDir(), 'nested', 'redis');
      const server = await start({ dataDir, persistence: 'aof' });
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(server.port).not.toBe(6379);
      expect(server.dataDir).toBe(dataDir);

      const before = client(server.url);
      await before.set('cl:{test}:survivor', 'still here');
      const firstPid = server.pid;
      await server.kill('SIGKILL');
      expect(isAlive(firstPid)).toBe(false);
      before.disconnect();

      await server.restart();
      expect(server.pid).not.toBe(firstPid);
      const after = client(server.url);
      expect(await after.get('cl:{test}:survivor')).toBe('still here');
      expect(await readdir(path.join(dataDir, 'appendonly'))).not.toHaveLength(0);
    });

    it('runs with AOF everysec, no RDB snapshots, noeviction, loopback only', async () => {
      const server = await start({ dataDir: await tmpDir(), persistence: 'aof' });
      const redis = client(server.url);
      const config = async (name: string) => ((await redis.config('GET', name)) as string[])[1];
      expect(await config('appendonly')).toBe('yes');
      expect(await config('appendfsync')).toBe('everysec');
      expect(await config('save')).toBe('');
      expect(await config('maxmemory-policy')).toBe('noeviction');
      expect(await config('bind')).toBe('127.0.0.1');
      expect(await config('protected-mode')).toBe('yes');
    });
  });

  describe('when persistence is none', () => {
    it('starts without a data directory and stop() ends the process', async () => {
      const server = await start({ persistence: 'none' });
      const redis = client(server.url);
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      redis.disconnect();
      const pid = server.pid;
      await server.stop();
      expect(isAlive(pid)).toBe(false);
      await server.stop(); // idempotent
    });
  });

  describe('when the fixed port is already served by another Redis', () => {
    it('fails with the child output instead of mistaking the other server for ours', async () => {
      const taken = Number(new URL(testRedisUrl()).port);
      await expect(startRedisServer({ persistence: 'none', port: taken })).rejects.toThrow(
        /exited before answering PING[\s\S]*already in use/,
      );
    });
  });

  describe('when persistence is aof without a data directory', () => {
    it('refuses with CONFIG_INVALID', async () => {
      await expect(startRedisServer({ persistence: 'aof' })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
      });
    });
  });

  describe('when redis-server is not on PATH', () => {
    it('throws REDIS_SERVER_MISSING with install advice', async () => {
      const emptyBin = await tmpDir();
      const attempt = startRedisServer({ persistence: 'none', env: { PATH: emptyBin } });
      await expect(attempt).rejects.toBeInstanceOf(ConfigError);
      await expect(attempt).rejects.toMatchObject({
        code: 'REDIS_SERVER_MISSING',
        message: expect.stringContaining('apt-get install redis-server') as unknown,
      });
    });
  });
});

describe('global test redis', () => {
  it('answers PING on the injected URL', async () => {
    expect(process.env['CRM_LEDGER_TEST_REDIS_URL']).toBe(testRedisUrl());
    const redis = connect();
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      await redis.quit();
    }
  });

  it('hands out distinct tenants', () => {
    const a = randomTenant();
    expect(a).toMatch(/^hubspot:test-[0-9a-f]{16}$/);
    expect(randomTenant('salesforce')).toMatch(/^salesforce:test-[0-9a-f]{16}$/);
    expect(randomTenant()).not.toBe(a);
  });
});
