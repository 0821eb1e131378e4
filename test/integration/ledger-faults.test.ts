/**
 * Faults: Redis going away mid-burst and coming back (AOF on, SIGKILL), a reply lost after the
 * script ran. No acknowledged change may be lost, none anchored twice, and the chain must verify.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { createRedis } from '../../src/redis/connection.js';
import type { RedisClient } from '../../src/redis/connection.js';
import { randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import type { AnchorRequest } from '../../src/ledger/block.js';
import { startProxy } from '../helpers/tcp-proxy.js';
import { scriptSource } from '../../src/ledger/lua/index.js';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';

let dir: string;
let server: EmbeddedRedis;
const signer = testSigner();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-faults-'));
  server = await startRedisServer({ dataDir: dir, persistence: 'aof' });
});
afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

function waitReady(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => redis.once('ready', () => resolve()));
}

describe('Ledger under Redis faults', () => {
  describe('when redis-server is SIGKILLed during a burst and restarted from its AOF', () => {
    it('fails the unfinished appends, loses no acknowledged change, and re-appending anchors each change once', async () => {
      const redis = createRedis(server.url, 'request');
      await waitReady(redis);
      const ledger = createTestLedger(redis, signer);
      const tenant = randomTenant();
      const batches: AnchorRequest[][] = Array.from({ length: 60 }, (_, b) =>
        Array.from({ length: 10 }, (_, i) => contactChange(tenant, `f${(b * 10 + i) % 31}`)),
      );
      const acknowledged = new Set<number>();
      const failed: number[] = [];
      const runs = batches.map((batch, b) =>
        ledger.append(tenant, batch).then(
          () => acknowledged.add(b),
          () => failed.push(b),
        ),
      );
      // Let part of the burst land, then pull the plug.
      await new Promise((r) => setTimeout(r, 15));
      await server.kill('SIGKILL');
      await Promise.all(runs);
      expect(failed.length).toBeGreaterThan(0);

      await server.restart();
      await waitReady(redis);
      const head = await ledger.store.readHead(tenant);
      // Every acknowledged batch survived the crash (Redis wrote it to the AOF before replying).
      expect(head.size).toBeGreaterThanOrEqual(acknowledged.size * 10);

      // The client retries everything it was not sure about — and, to be safe, everything.
      const retried = await Promise.all(batches.map((batch) => ledger.append(tenant, batch)));
      const newlyAnchored = retried.reduce((n, r) => n + r.anchored.length, 0);
      const after = await ledger.store.readHead(tenant);
      expect(after.size).toBe(600);
      expect(head.size + newlyAnchored).toBe(600);
      for (const [b, r] of retried.entries()) {
        if (acknowledged.has(b))
          expect(r.skipped.map((s) => s.code)).toEqual(Array(10).fill('ALREADY_ANCHORED'));
      }
      expect(await ledger.verify(tenant)).toMatchObject({
        ok: true,
        size: 600,
        checkpointSize: 600,
      });
      redis.disconnect();
    });
  });

  describe('when the reply of an append is lost after the script ran', () => {
    async function setup() {
      const proxy = await startProxy(server.port);
      // commandTimeout: a command in flight when the connection drops is otherwise held (and
      // resent) until Redis is back; the request path must fail fast instead.
      const redis = new Redis(proxy.url, {
        maxRetriesPerRequest: 1,
        commandTimeout: 500,
        retryStrategy: () => 20,
      });
      redis.on('error', () => {});
      await waitReady(redis);
      const ledger = createTestLedger(redis, signer);
      const tenant = randomTenant();
      const batch = Array.from({ length: 5 }, (_, i) => contactChange(tenant, `l${i}`));
      // The append script goes out as EVAL of its source (first use) or EVALSHA of its SHA-1:
      // lose the reply to that one, and only that one.
      const sha = createHash('sha1').update(scriptSource('appendBlocks')).digest('hex');
      proxy.dropReplyTo(new RegExp(`appendBlocks \\(version|${sha}`));
      return { proxy, redis, ledger, tenant, batch };
    }

    it('the error surfaces while Redis stays unreachable, and the retry anchors nothing twice', async () => {
      const { proxy, redis, ledger, tenant, batch } = await setup();
      proxy.refuseConnections(true);
      await expect(ledger.append(tenant, batch)).rejects.toThrow();
      proxy.refuseConnections(false);
      await waitReady(redis);
      // The script ran exactly once even though its caller never heard back …
      expect(await ledger.store.readHead(tenant)).toMatchObject({ size: 5 });
      // … and the retry reports every change as already anchored.
      const retry = await ledger.append(tenant, batch);
      expect(retry.anchored).toEqual([]);
      expect(retry.skipped.map((s) => s.code)).toEqual(Array(5).fill('ALREADY_ANCHORED'));
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 5, checkpointSize: 5 });
      redis.disconnect();
      await proxy.close();
    });

    it('a client that resends the script after reconnecting anchors each change once', async () => {
      const { proxy, redis, ledger, tenant, batch } = await setup();
      // ioredis resends unfulfilled commands on reconnect (its default; with the option off it
      // drops them without settling their promises, so we keep it on).
      const result = await ledger.append(tenant, batch);
      expect(result.anchored.length + result.skipped.length).toBe(5);
      expect(await ledger.store.readHead(tenant)).toMatchObject({ size: 5 });
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 5 });
      redis.disconnect();
      await proxy.close();
    });
  });

  describe('when redis-server restarts cleanly', () => {
    it('keeps a chain that verifies, and appends continue on it', async () => {
      const redis = createRedis(server.url, 'worker');
      const ledger = createTestLedger(redis, signer);
      const tenant = randomTenant();
      await ledger.append(tenant, [contactChange(tenant, 'x'), contactChange(tenant, 'y')]);
      await server.restart();
      await waitReady(redis);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 2 });
      await ledger.append(tenant, [contactChange(tenant, 'x')]);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 3 });
      redis.disconnect();
    });
  });
});
