/**
 * Salesforce Outbound Messages end to end: SOAP envelope over HTTP → org allow-list → parse →
 * BullMQ → anchor worker → ledger; the exact Ack only after queuing, SOAP faults otherwise.
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
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
import { createSalesforceConnector } from '../../connectors/salesforce/index.js';
import {
  OUTBOUND_MESSAGE_ACK,
  buildOutboundMessage,
} from '../../connectors/salesforce/outbound-message.js';
import { createTestLedger } from '../helpers/ledger.js';
import { connect, testRedisUrl } from '../helpers/redis.js';
import type { Ledger } from '../../src/ledger/ledger.js';

const ORG15 = '00D5g000004ABCD';
const logger = createLogger({ level: 'silent' });
// Our own queue prefix: jobs of other test files on the shared Redis are not ours to run.
const PREFIX = `{cl-test-${process.pid}-${Date.now()}}`;
let redis: Redis;
let ledger: Ledger;
let queue: Queue<ChangesJob>;
let worker: Worker<ChangesJob, JobResult>;
let app: ReturnType<typeof createApp>;
let tenant: string;
let counter = 0;

function contactNotification(id: string) {
  counter += 1;
  return {
    id: `04l5g00000${String(counter).padStart(8, '0')}`,
    sObjectType: 'Contact',
    fields: {
      Id: id,
      Email: `c${counter}@example.com`,
      LastName: 'Lovelace',
      Phone: null,
      LastModifiedById: '0055g00000XYZ12AAA',
      LastModifiedDate: new Date(Date.UTC(2026, 10, 26, 10, 0, counter)).toISOString(),
    },
  };
}

function post(body: Buffer | string) {
  return request(app)
    .post('/webhooks/salesforce')
    .set('Content-Type', 'text/xml; charset=utf-8')
    .send(body);
}

async function anchored(size: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const cp = await ledger.store.latestCheckpoint(tenant);
    if ((cp?.size ?? 0) >= size) return cp?.size ?? 0;
    await new Promise((r) => setTimeout(r, 50));
  }
  return (await ledger.store.latestCheckpoint(tenant))?.size ?? 0;
}

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis);
  queue = createChangesQueue(connectionFromUrl(testRedisUrl(), 'producer'), PREFIX);
  worker = startAnchorWorker({
    connection: connectionFromUrl(testRedisUrl(), 'worker'),
    ledger,
    logger,
    batchWaitMs: 5,
    prefix: PREFIX,
  });
  const connector = createSalesforceConnector({ orgIds: [ORG15] });
  app = createApp({
    logger,
    adminToken: 'admin-token-for-tests-0123456789',
    verifierKeys: ledger.verifiers,
    verification: new VerificationService(
      ledger.store,
      { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
      new FileTrustStore(join(tmpdir(), `crm-ledger-sf-${process.pid}`)),
    ),
    ping: () => redis.ping(),
    webhooks: {
      connectors: new Map([['salesforce', connector]]),
      sink: createChangeSink(queue),
      logger,
    },
  });
  // The tenant is the 18-character form of the allowed org id.
  const first = await post(
    buildOutboundMessage({
      orgId: ORG15,
      notifications: [contactNotification('0035g00000AAAAAAA1')],
    }),
  );
  expect(first.status).toBe(200);
  tenant =
    (await ledger.store.listTenants()).find((t) => t.startsWith(`salesforce:${ORG15}`)) ?? '';
  for (let i = 0; i < 100 && !tenant; i++) {
    await new Promise((r) => setTimeout(r, 50));
    tenant =
      (await ledger.store.listTenants()).find((t) => t.startsWith(`salesforce:${ORG15}`)) ?? '';
  }
}, 60_000);
afterAll(async () => {
  await worker.close();
  await queue.close();
  await redis.quit();
});

describe('POST /webhooks/salesforce', () => {
  it('anchors the first message under the 18-character org id', () => {
    expect(tenant).toMatch(/^salesforce:00D5g000004ABCD[A-Z0-5]{3}$/);
  });

  describe('when an allowed org sends notifications', () => {
    it('answers the exact Ack after queuing, and anchors every notification once', async () => {
      const notifications = [
        contactNotification('0035g00000AAAAAAA1'),
        contactNotification('0035g00000AAAAAAA2'),
      ];
      const body = buildOutboundMessage({ orgId: ORG15, notifications });
      const res = await post(body);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/xml/);
      expect(res.text).toBe(OUTBOUND_MESSAGE_ACK);
      expect(await anchored(3)).toBe(3);
      // Salesforce redelivers until it sees the Ack: the same notifications anchor once.
      expect((await post(body)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect((await ledger.store.readHead(tenant)).size).toBe(3);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 3 });
      const block = JSON.parse(String(await ledger.store.readBlock(tenant, 1))) as {
        actor: unknown;
        record: unknown;
      };
      expect(block.record).toEqual({ object: 'contact', id: '0035g00000AAAAAAA1' });
      expect(block.actor).toEqual({ type: 'user', id: 'salesforce:user:0055g00000XYZ12AAA' });
    });
  });

  describe('when a record is sent again with one field changed', () => {
    it('anchors only what changed (and the hash of the whole state), not the whole record', async () => {
      const first = contactNotification('0035g00000AAAAAAB1');
      const size = (await ledger.store.readHead(tenant)).size + 1;
      expect(
        (await post(buildOutboundMessage({ orgId: ORG15, notifications: [first] }))).status,
      ).toBe(200);
      expect(await anchored(size)).toBe(size);
      const second = {
        ...contactNotification('0035g00000AAAAAAB1'),
        fields: {
          ...first.fields,
          Email: 'changed@example.com',
          LastModifiedDate: '2026-11-26T11:00:00.000Z',
        },
      };
      expect(
        (await post(buildOutboundMessage({ orgId: ORG15, notifications: [second] }))).status,
      ).toBe(200);
      const total = await anchored(size + 1);
      const history = await ledger.store.readRecord(tenant, 'contact/0035g00000AAAAAAB1');
      expect(history).toHaveLength(2);
      const [firstEntry, secondEntry] = await ledger.store.readVaultEntries(
        tenant,
        history.map((h) => h.seq),
      );
      const names = (entry: string | undefined) =>
        Object.keys((JSON.parse(entry ?? '{}') as { fields: object }).fields).sort();
      expect(names(firstEntry)).toEqual([
        '$state',
        'Email',
        'LastModifiedById',
        'LastModifiedDate',
        'LastName',
        'Phone',
      ]);
      expect(names(secondEntry)).toEqual(['$state', 'Email', 'LastModifiedDate']);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: total });
    });
  });

  describe('when the organisation is not allowed', () => {
    it('answers a SOAP fault and queues nothing', async () => {
      const before = await queue.getJobCounts('wait', 'active', 'completed', 'failed');
      const res = await post(
        buildOutboundMessage({
          orgId: '00D5g000009ZZZZ',
          notifications: [contactNotification('0035g00000AAAAAAA9')],
        }),
      );
      expect(res.status).toBe(403);
      expect(res.text).toContain('soapenv:Fault');
      expect(res.text).toContain('ORGANIZATION_NOT_ALLOWED');
      expect(await queue.getJobCounts('wait', 'active', 'completed', 'failed')).toEqual(before);
    });
  });

  describe('when the body carries a DOCTYPE (XXE, billion laughs)', () => {
    it.each(['outbound-message-xxe.xml', 'outbound-message-billion-laughs.xml'])(
      'refuses %s without expanding it',
      async (file) => {
        const body = await readFile(
          new URL(`../../connectors/salesforce/fixtures/${file}`, import.meta.url),
        );
        const res = await post(body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.text).toContain('soapenv:Fault');
        expect(res.text).not.toContain('root:');
      },
    );
  });

  describe('when the body is too large', () => {
    it('answers 413 as a SOAP fault', async () => {
      const res = await post(`<x>${'a'.repeat(1_100_000)}</x>`);
      expect(res.status).toBe(413);
      expect(res.text).toContain('BODY_TOO_LARGE');
    });
  });
});
