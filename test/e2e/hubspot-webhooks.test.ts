/**
 * HubSpot webhooks end to end: signed requests over HTTP → verify → parse → BullMQ → anchor
 * worker → ledger, against real Redis servers. Every request is signed for real (v3 HMAC).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import {
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
} from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { createHubspotConnector } from '../../connectors/hubspot/index.js';
import { signHubspotV3 } from '../../connectors/hubspot/signature.js';
import { createTestLedger } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';

const SECRET = 'hubspot-app-client-secret-for-tests';
const PUBLIC_URL = 'https://ledger.example.com';
const logger = createLogger({ level: 'silent' });

let server: EmbeddedRedis;
let redis: Redis;
let ledger: Ledger;
let queue: Queue<ChangesJob>;
let worker: Worker<ChangesJob, JobResult>;
let app: ReturnType<typeof createApp>;
let dir: string;
let portal = 7_000_000;

function contactEvents(portalId: number, n: number, base = 1): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    eventId: base + i,
    subscriptionId: 4242,
    portalId,
    appId: 99,
    occurredAt: 1_764_150_000_000 + i,
    subscriptionType: i % 5 === 0 ? 'contact.creation' : 'contact.propertyChange',
    attemptNumber: 0,
    objectId: 1000 + (i % 9),
    changeSource: 'CRM_UI',
    sourceId: 'userId:42',
    ...(i % 5 === 0 ? {} : { propertyName: 'email', propertyValue: `p${i}@example.com` }),
  }));
}

function signed(
  body: string,
  options: { path?: string; secret?: string; timestamp?: number } = {},
) {
  const path = options.path ?? '/webhooks/hubspot';
  const timestamp = options.timestamp ?? Date.now();
  const signature = signHubspotV3({
    secret: options.secret ?? SECRET,
    method: 'POST',
    uri: `${PUBLIC_URL}${path}`,
    body,
    timestamp,
  });
  return request(app)
    .post(path)
    .set('Content-Type', 'application/json')
    .set('X-HubSpot-Signature-v3', signature)
    .set('X-HubSpot-Request-Timestamp', String(timestamp))
    .send(body);
}

async function anchoredSize(tenant: string, size: number, timeoutMs = 20_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const cp = await ledger.store.latestCheckpoint(tenant);
    if ((cp?.size ?? 0) >= size || Date.now() > end) return cp?.size ?? 0;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-hs-'));
  server = await startRedisServer({ dataDir: dir, persistence: 'aof' });
  redis = new Redis(server.url);
  ledger = createTestLedger(redis);
  queue = createChangesQueue(connectionFromUrl(server.url, 'producer'));
  worker = startAnchorWorker({
    connection: connectionFromUrl(server.url, 'worker'),
    ledger,
    logger,
    batchWaitMs: 5,
  });
  app = createApp({
    logger,
    adminToken: 'admin-token-for-tests-0123456789',
    verifierKeys: ledger.verifiers,
    verification: new VerificationService(
      ledger.store,
      { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
      new FileTrustStore(join(dir, 'verified')),
    ),
    ping: () => redis.ping(),
    webhooks: {
      connectors: new Map([
        ['hubspot', createHubspotConnector({ clientSecret: SECRET, publicUrl: PUBLIC_URL })],
      ]),
      sink: createChangeSink(queue),
      logger,
    },
  });
}, 60_000);
afterAll(async () => {
  await worker.close();
  await queue.close();
  redis.disconnect();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('POST /webhooks/hubspot', () => {
  describe('when a signed batch arrives', () => {
    it('answers 200 once queued, and every event becomes a block in a verified chain', async () => {
      const portalId = ++portal;
      const res = await signed(JSON.stringify(contactEvents(portalId, 50)));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ok: true, queued: 50 });
      const tenant = `hubspot:${portalId}`;
      expect(await anchoredSize(tenant, 50)).toBe(50);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 50 });
      const block = JSON.parse(String(await ledger.store.readBlock(tenant, 1))) as {
        actor: unknown;
        kind: string;
      };
      expect(block.actor).toEqual({ type: 'user', id: 'hubspot:user:42' });
      expect(block.kind).toBe('update');
    });
  });

  describe('when HubSpot delivers the same batch again (and again, reordered)', () => {
    it('anchors each event once', async () => {
      const portalId = ++portal;
      const events = contactEvents(portalId, 20);
      const tenant = `hubspot:${portalId}`;
      expect((await signed(JSON.stringify(events))).status).toBe(200);
      expect(await anchoredSize(tenant, 20)).toBe(20);
      expect((await signed(JSON.stringify(events))).status).toBe(200);
      expect((await signed(JSON.stringify([...events].reverse()))).status).toBe(200);
      expect((await signed(JSON.stringify(contactEvents(portalId, 1, 500)))).status).toBe(200);
      expect(await anchoredSize(tenant, 21)).toBe(21);
      await new Promise((r) => setTimeout(r, 300));
      expect((await ledger.store.readHead(tenant)).size).toBe(21);
    });
  });

  describe('when the request is not authentic', () => {
    const body = JSON.stringify(contactEvents(1, 2));
    it.each([
      ['a wrong secret', () => signed(body, { secret: 'not-the-secret' }), 'SIGNATURE_INVALID'],
      [
        'a stale timestamp',
        () => signed(body, { timestamp: Date.now() - 5 * 60_000 - 1_000 }),
        'TIMESTAMP_TOO_OLD',
      ],
      [
        'a future timestamp',
        () => signed(body, { timestamp: Date.now() + 5 * 60_000 + 1_000 }),
        'TIMESTAMP_IN_FUTURE',
      ],
    ])('answers 401 for %s', async (_name, send, code) => {
      const res = await send();
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe(code);
    });

    it('answers 401 for a tampered body and queues nothing', async () => {
      const before = await queue.getJobCounts('wait', 'active', 'completed');
      const timestamp = Date.now();
      const signature = signHubspotV3({
        secret: SECRET,
        method: 'POST',
        uri: `${PUBLIC_URL}/webhooks/hubspot`,
        body,
        timestamp,
      });
      const res = await request(app)
        .post('/webhooks/hubspot')
        .set('Content-Type', 'application/json')
        .set('X-HubSpot-Signature-v3', signature)
        .set('X-HubSpot-Request-Timestamp', String(timestamp))
        .send(body.replace('p1@', 'px@'));
      expect(res.status).toBe(401);
      expect(await queue.getJobCounts('wait', 'active', 'completed')).toEqual(before);
    });

    it('answers 401 with no signature at all', async () => {
      const res = await request(app)
        .post('/webhooks/hubspot')
        .set('Content-Type', 'application/json')
        .send(body);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('SIGNATURE_MISSING');
    });

    it('accepts a query with encoded ":", "@" and "," signed as HubSpot signs it', async () => {
      const portalId = ++portal;
      const res = await signed(JSON.stringify(contactEvents(portalId, 1)), {
        path: '/webhooks/hubspot?from=a%3Ab%40c%2Cd',
      });
      expect(res.status).toBe(200);
    });
  });

  describe('when the body is bad', () => {
    it('answers 400 for malformed JSON', async () => {
      const res = await signed('[{"eventId": 1,');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('PAYLOAD_MALFORMED');
    });

    it('answers 400 naming the first bad path, and queues nothing of the request', async () => {
      const portalId = ++portal;
      const events = contactEvents(portalId, 3);
      delete events[1]?.['objectId'];
      const res = await signed(JSON.stringify(events));
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('EVENT_INVALID');
      expect(res.body.error.message).toContain('[1]');
      await new Promise((r) => setTimeout(r, 200));
      expect((await ledger.store.readHead(`hubspot:${portalId}`)).size).toBe(0);
    });

    it('answers 413 for a body over the limit', async () => {
      const res = await signed(JSON.stringify([{ pad: 'x'.repeat(1_100_000) }]));
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe('BODY_TOO_LARGE');
    });

    it('answers 413 for more than 100 events', async () => {
      const res = await signed(JSON.stringify(contactEvents(5, 101)));
      expect(res.status).toBe(413);
    });
  });

  describe('when Redis is down', () => {
    it('answers 503 with Retry-After, and the redelivered batch is anchored once after Redis returns', async () => {
      const portalId = ++portal;
      const tenant = `hubspot:${portalId}`;
      const body = JSON.stringify(contactEvents(portalId, 10));
      await server.kill('SIGKILL');
      const down = await signed(body);
      expect(down.status).toBe(503);
      expect(down.headers['retry-after']).toBeDefined();
      await server.restart();
      // HubSpot retries; the producer reconnects on its own.
      let res = await signed(body);
      for (let i = 0; i < 40 && res.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 250));
        res = await signed(body);
      }
      expect(res.status).toBe(200);
      expect(await anchoredSize(tenant, 10)).toBe(10);
      expect((await signed(body)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect((await ledger.store.readHead(tenant)).size).toBe(10);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 10 });
    }, 60_000);
  });
});
