/**
 * The embedded default as `npm start` runs it: its own redis-server with AOF under the data dir,
 * a signing key and an admin token generated once, and everything still there after a restart.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { writeKeyPair } from '../../src/ledger/signing-key.js';
import { testQueueConnection, testRedisUrl } from '../helpers/redis.js';
import { createChangesQueue } from '../../src/pipeline/queues.js';
import { startService } from '../../src/main.js';
import type { RunningService } from '../../src/main.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { createLogger } from '../../src/observability/logger.js';
import { contactChange } from '../helpers/ledger.js';

const run = promisify(execFile);
let dir: string;
const logger = createLogger({ level: 'silent' });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-service-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function config() {
  return loadConfig({
    CRM_LEDGER_DATA_DIR: dir,
    CRM_LEDGER_PORT: '0',
    CRM_LEDGER_LOG_LEVEL: 'silent',
  });
}

function ledgerOf(service: RunningService): Ledger {
  if (!service.ledger) throw new Error('the all role has an appending ledger');
  return service.ledger;
}

async function getJson(url: string, token?: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  return { status: res.status, body: await res.json() };
}

describe('startService on the embedded default', () => {
  it('runs, anchors, verifies, and keeps its chain, key and token across a restart', async () => {
    const first = await startService(config(), logger);
    try {
      expect((await stat(join(dir, 'ledger.key'))).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir, 'admin-token'))).mode & 0o777).toBe(0o600);
      expect((await readFile(join(dir, 'admin-token'), 'utf8')).trim()).toBe(first.adminToken);
      expect(await getJson(`${first.url}/admin/verify`)).toMatchObject({ status: 401 });
      const tenant = 'hubspot:424242';
      await ledgerOf(first).append(tenant, [
        contactChange(tenant, '1'),
        contactChange(tenant, '2'),
      ]);
      expect(
        await getJson(`${first.url}/admin/verify?tenant=${tenant}`, first.adminToken),
      ).toMatchObject({
        status: 200,
        body: { ok: true, size: 2 },
      });
      expect(await getJson(`${first.url}/readyz`)).toMatchObject({ status: 200 });

      // `crm-ledger demo` against it: signed HubSpot batches and Outbound Messages, anchored.
      const demo = await run(
        'node_modules/.bin/tsx',
        ['src/cli.ts', 'demo', '--batches', '2', '--url', first.url],
        {
          env: { PATH: process.env['PATH'] ?? '', CRM_LEDGER_DATA_DIR: dir },
        },
      );
      expect(demo.stdout).toContain('hubspot:62515: 100 blocks anchored, chain intact');
      expect(demo.stdout).toMatch(
        /salesforce:00D000000SANDBX[A-Z0-5]{3}: 20 blocks anchored, chain intact/,
      );
      expect(demo.stdout).toContain('verify: ok');
    } finally {
      await first.stop();
    }

    const second = await startService(config(), logger);
    try {
      expect(second.adminToken).toBe(first.adminToken);
      const res = await getJson(
        `${second.url}/admin/verify?tenant=hubspot:424242&mode=full`,
        second.adminToken,
      );
      expect(res).toMatchObject({ status: 200, body: { ok: true, size: 2, checkpointSize: 2 } });
      const keys = await getJson(`${second.url}/admin/keys`);
      expect((keys.body as { current: string }).current).toBe(
        (await readFile(join(dir, 'ledger.key.pub'), 'utf8')).trim(),
      );
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('still starts when the stored chain no longer matches its checkpoints, and reports it', async () => {
    const first = await startService(config(), logger);
    const tenant = 'hubspot:515151';
    try {
      await ledgerOf(first).append(tenant, [
        contactChange(tenant, '1'),
        contactChange(tenant, '2'),
      ]);
      // The attacker changes a stored tree leaf, so the signed root no longer matches.
      await ledgerOf(first).store.redis.setrange(
        ledgerOf(first).store.keys(tenant).treeChunk(0, 0),
        0,
        'X',
      );
    } finally {
      await first.stop();
    }
    const second = await startService(config(), logger);
    try {
      const res = await getJson(
        `${second.url}/admin/verify?tenant=${tenant}&mode=full`,
        second.adminToken,
      );
      expect(res).toMatchObject({ status: 200, body: { ok: false, firstBadSeq: 0 } });
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('keeps idle connections open past a proxy idle timeout, and still stops at once', async () => {
    const service = await startService(config(), logger);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = http.get(`${service.url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
        });
        req.on('error', reject);
      });
    try {
      expect(await get()).toEqual({ status: 200, reused: false });
      // Node's default would have closed the connection after 5 s (+1 s): it is still there.
      await new Promise((resolve) => setTimeout(resolve, 7_000));
      expect(await get()).toEqual({ status: 200, reused: true });
    } finally {
      // The kept-alive connection does not hold the shutdown up.
      const started = Date.now();
      await service.stop();
      expect(Date.now() - started).toBeLessThan(10_000);
      agent.destroy();
    }
  }, 60_000);

  it('runs the api role with only the public key on disk', async () => {
    const apiDir = await mkdtemp(join(tmpdir(), 'crm-ledger-api-'));
    try {
      const { vkey } = await writeKeyPair(join(apiDir, 'ledger.key'), 'api.crm-ledger.test');
      await rm(join(apiDir, 'ledger.key'));
      const api = await startService(
        loadConfig({
          CRM_LEDGER_DATA_DIR: apiDir,
          CRM_LEDGER_PORT: '0',
          CRM_LEDGER_REDIS_URL: testRedisUrl(),
          CRM_LEDGER_LEDGER_ORIGIN: 'api.crm-ledger.test',
          CRM_LEDGER_ADMIN_TOKEN: 'api-admin-token-0123456789',
        }),
        logger,
        'api',
      );
      try {
        expect(api.ledger).toBeUndefined();
        const keys = await getJson(`${api.url}/admin/keys`);
        expect((keys.body as { current: string }).current).toBe(vkey);
        expect(await getJson(`${api.url}/readyz`)).toMatchObject({ status: 200 });
      } finally {
        await api.stop();
      }
    } finally {
      await rm(apiDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('accepts HubSpot v1 signatures only when CRM_LEDGER_HUBSPOT_ACCEPT_V1 is on', async () => {
    const apiDir = await mkdtemp(join(tmpdir(), 'crm-ledger-v1-'));
    const secret = 'v1-client-secret';
    const body = JSON.stringify([
      {
        eventId: 7001,
        subscriptionId: 1,
        portalId: 77001,
        appId: 1,
        occurredAt: Date.now(),
        subscriptionType: 'contact.propertyChange',
        attemptNumber: 0,
        objectId: 5,
        propertyName: 'email',
        propertyValue: 'v1@example.com',
        changeSource: 'CRM_UI',
        sourceId: 'userId:1',
      },
    ]);
    const post = (url: string) =>
      fetch(`${url}/webhooks/hubspot`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-HubSpot-Signature-Version': 'v1',
          'X-HubSpot-Signature': createHash('sha256')
            .update(secret + body, 'utf8')
            .digest('hex'),
        },
        body,
      });
    const queue = createChangesQueue(testQueueConnection());
    try {
      await writeKeyPair(join(apiDir, 'ledger.key'), 'v1.crm-ledger.test');
      for (const [acceptV1, status] of [
        ['off', 401],
        ['on', 200],
      ] as const) {
        const api = await startService(
          loadConfig({
            CRM_LEDGER_DATA_DIR: apiDir,
            CRM_LEDGER_PORT: '0',
            CRM_LEDGER_REDIS_URL: testRedisUrl(),
            CRM_LEDGER_LEDGER_ORIGIN: 'v1.crm-ledger.test',
            CRM_LEDGER_ADMIN_TOKEN: 'v1-admin-token-0123456789',
            CRM_LEDGER_HUBSPOT_CLIENT_SECRET: secret,
            CRM_LEDGER_HUBSPOT_ACCEPT_V1: acceptV1,
          }),
          logger,
          'api',
        );
        try {
          const res = await post(api.url);
          expect(res.status).toBe(status);
          if (status === 401) {
            expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
              'SIGNATURE_VERSION_UNSUPPORTED',
            );
          }
          // What the 200 queued (and nothing of the 401): one job with the one event. Removed
          // again, since no worker of this test takes the shared Redis's default queue.
          const queued = (await queue.getJobs(['wait', 'delayed', 'prioritized'])).filter((j) =>
            j.data.events.some((e) => e.event.tenant === 'hubspot:77001'),
          );
          expect(queued.map((j) => j.data.events.length)).toEqual(status === 200 ? [1] : []);
          for (const j of queued) await j.remove();
        } finally {
          await api.stop();
        }
      }
    } finally {
      await queue.close();
      await rm(apiDir, { recursive: true, force: true });
    }
  }, 60_000);
});
