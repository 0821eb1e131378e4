/**
 * Clearing a quarantine: a change by an actor outside the allowed list quarantines a record (real
 * policy, real anchor worker and queue); later changes are flagged POLICY_QUARANTINED; the record
 * is listed by GET /admin/quarantine; an admin clears it with POST /admin/quarantine/clear (the
 * other roles get 403, bad input 400, a record not quarantined 404); the clearing is anchored as an
 * admin block naming the admin and the reason; the same change after that is no longer flagged.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Redis } from 'ioredis';
import type { Queue, Worker } from 'bullmq';
import { Redis as RedisClient } from 'ioredis';
import { randomTenant } from '../helpers/redis.js';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { until } from '../helpers/wait.js';
import {
  ADMIN_TOKEN,
  AUDITOR_TOKEN,
  OPERATOR_TOKEN,
  createAdminApp,
} from '../helpers/admin-app.js';
import type { AdminAppFixture } from '../helpers/admin-app.js';
import {
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
} from '../../src/pipeline/queues.js';
import type { ChangeSink, ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import { createChecks } from '../../src/pipeline/checks.js';
import type { Checks } from '../../src/pipeline/checks.js';
import { QuarantineStore } from '../../src/policy/quarantine.js';
import { conforms } from '../helpers/openapi.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ChangeEvent } from '../../src/model/change-event.js';

const PREFIX = `{cl-test-quarantine-${process.pid}-${Date.now()}}`;
const POLICY = `version: 1
rules:
  - name: email-editors
    match: { object: contact, kind: [update], fields: [email] }
    allow: { actors: ["hubspot:user:1"] }
    action: [quarantine]
  # A broad rule with no selector: the admin block of the clearing must not be judged by it.
  - name: known-editors-only
    allow: { actors: ["hubspot:user:1", "hubspot:user:9"] }
    action: [flag]
`;

// A private redis-server: loading a policy anchors it in every tenant found, and other test files
// leave tenants (some frozen on purpose) on the shared test Redis.
let server: EmbeddedRedis;
let redis: Redis;
let dir: string;
let fixture: AdminAppFixture;
let queue: Queue<ChangesJob>;
let worker: Worker<ChangesJob, JobResult>;
let checks: Checks;
let sink: ChangeSink;
const quarantine = () => new QuarantineStore(redis);

beforeAll(async () => {
  server = await startRedisServer({ persistence: 'none' });
  redis = new RedisClient(server.url);
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-quarantine-'));
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, POLICY);
  queue = createChangesQueue(connectionFromUrl(server.url, 'producer'), PREFIX);
  sink = createChangeSink(queue);
  fixture = await createAdminApp(redis, { changeSink: sink, quarantine: quarantine() });
  const logger = createLogger({ level: 'silent' });
  checks = await createChecks({ policyFile }, { redis, ledger: fixture.ledger, logger });
  worker = startAnchorWorker({
    connection: connectionFromUrl(server.url, 'worker'),
    ledger: fixture.ledger,
    logger,
    prefix: PREFIX,
    batchWaitMs: 5,
    checks: checks.checks,
  });
}, 60_000);
afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await checks?.close();
  await fixture?.close();
  await redis?.quit();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('POST /admin/quarantine/clear', () => {
  it('releases a quarantined record, anchored with the admin and the reason', async () => {
    const tenant = randomTenant();
    const ledger = fixture.ledger;
    let n = 0;
    const edit = async (actor: string): Promise<string> => {
      n += 1;
      const event: ChangeEvent = {
        tenant,
        source: 'hubspot',
        object: 'contact',
        recordId: 'q1',
        eventId: `q-${n}`,
        kind: 'update',
        actor: { type: 'user', id: actor },
        occurredAt: new Date(Date.UTC(2026, 10, 26, 12, 0, n)).toISOString(),
        fields: { email: `q${n}@example.com` },
      };
      await sink.enqueue({
        source: 'hubspot',
        receivedAt: new Date().toISOString(),
        events: [{ event, idempotencyKey: `${tenant}|q|${n}` }],
      });
      return event.eventId;
    };
    const codesOf = async (): Promise<string[][]> => {
      const index = await ledger.store.readRecord(tenant, 'contact/q1');
      const blocks = await ledger.readBlocks(
        tenant,
        index.map((e) => e.seq),
      );
      return blocks.map((b) => (b?.block.verdicts ?? []).map((v) => String(v.code)));
    };

    // An actor outside the allowed list: unauthorised, and the record is quarantined.
    const first = await edit('hubspot:user:9');
    await until('the first block', codesOf, (c) => c.length === 1);
    // The allowed actor's change is flagged while the quarantine holds.
    await edit('hubspot:user:1');
    await until('the second block', codesOf, (c) => c.length === 2);
    expect(await codesOf()).toEqual([['POLICY_UNAUTHORISED'], ['POLICY_QUARANTINED']]);

    const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
    const list = await request(fixture.app)
      .get(`/admin/quarantine?tenant=${tenant}`)
      .set({ Authorization: `Bearer ${AUDITOR_TOKEN}` });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({
      tenant,
      records: [{ object: 'contact', id: 'q1', rule: 'email-editors', eventId: first }],
    });
    conforms('/admin/quarantine', 'get', 200, list.body);

    const body = { tenant, object: 'contact', id: 'q1', reason: 'checked with the data owner' };
    for (const token of [AUDITOR_TOKEN, OPERATOR_TOKEN]) {
      const res = await request(fixture.app)
        .post('/admin/quarantine/clear')
        .set({ Authorization: `Bearer ${token}` })
        .send(body);
      expect(res.status).toBe(403);
    }
    expect((await request(fixture.app).post('/admin/quarantine/clear').send(body)).status).toBe(
      401,
    );
    for (const bad of [
      { ...body, reason: '' },
      { ...body, reason: 'x'.repeat(1001) },
      { ...body, tenant: 'nope' },
      { ...body, object: 'Contact!' },
      { ...body, extra: 1 },
      { tenant, object: 'contact', id: 'q1' },
    ]) {
      const res = await request(fixture.app).post('/admin/quarantine/clear').set(admin).send(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'BODY_INVALID' } });
    }
    const other = await request(fixture.app)
      .post('/admin/quarantine/clear')
      .set(admin)
      .send({ ...body, id: 'not-quarantined' });
    expect(other.status).toBe(404);
    expect(other.body).toMatchObject({ error: { code: 'NOT_QUARANTINED' } });
    conforms('/admin/quarantine/clear', 'post', 404, other.body);
    // Bad input changed nothing.
    expect(await quarantine().isQuarantined({ tenant, object: 'contact', id: 'q1' })).toBeDefined();

    const cleared = await request(fixture.app)
      .post('/admin/quarantine/clear')
      .set(admin)
      .send(body);
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({
      tenant,
      object: 'contact',
      id: 'q1',
      cleared: true,
      rule: 'email-editors',
      quarantinedBy: first,
    });
    conforms('/admin/quarantine/clear', 'post', 200, cleared.body);
    expect(
      await quarantine().isQuarantined({ tenant, object: 'contact', id: 'q1' }),
    ).toBeUndefined();
    const again = await request(fixture.app).post('/admin/quarantine/clear').set(admin).send(body);
    expect(again.status).toBe(404);

    // The admin block: who, why, which record and which mark.
    await until(
      'the admin block',
      () => ledger.store.readRecord(tenant, 'crm_ledger/quarantine'),
      (r) => r.length === 1,
    );
    const [entry] = await ledger.store.readRecord(tenant, 'crm_ledger/quarantine');
    const [block] = await ledger.readBlocks(tenant, [entry!.seq]);
    expect(block?.block).toMatchObject({
      kind: 'admin',
      actor: { type: 'admin', id: 'admin:admin:admin-token' },
      verdicts: [],
    });
    const opened = await ledger.recordState(tenant, 'crm_ledger/quarantine');
    expect(Object.fromEntries(opened)).toMatchObject({
      action: 'quarantine-cleared',
      reason: 'checked with the data owner',
      object: 'contact',
      recordId: 'q1',
      rule: 'email-editors',
      quarantinedBy: first,
    });

    // The same change as before the clearing is no longer flagged.
    await edit('hubspot:user:1');
    await until('the third block', codesOf, (c) => c.length === 3);
    expect((await codesOf())[2]).toEqual([]);
    expect((await queue.getJobCounts('failed')).failed).toBe(0);
  }, 60_000);
});

describe('GET /admin/quarantine', () => {
  it('needs a valid tenant and the auditor or admin role', async () => {
    const res = await request(fixture.app)
      .get('/admin/quarantine?tenant=nope')
      .set({ Authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(res.status).toBe(400);
    conforms('/admin/quarantine', 'get', 400, res.body);
    const op = await request(fixture.app)
      .get(`/admin/quarantine?tenant=${randomTenant()}`)
      .set({ Authorization: `Bearer ${OPERATOR_TOKEN}` });
    expect(op.status).toBe(403);
    const empty = await request(fixture.app)
      .get(`/admin/quarantine?tenant=${randomTenant()}`)
      .set({ Authorization: `Bearer ${AUDITOR_TOKEN}` });
    expect(empty.body).toMatchObject({ records: [] });
  });
});
