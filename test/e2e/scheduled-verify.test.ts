/**
 * The scheduler's verification against the running service: a byte changed in Redis is noticed by
 * the next scheduled run, the tenant freezes (readyz and metrics say so), the CRM's webhooks are
 * still acknowledged and queued, and after the block is put back and the tenant resumed, the
 * queued change is anchored — nothing lost.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import type { RunningService } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { until } from '../helpers/wait.js';
import { LedgerKeys } from '../../src/ledger/keys.js';

let dir: string;
let service: RunningService;
let redis: Redis;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-schedverify-'));
  service = await startService(
    loadConfig({
      CRM_LEDGER_DATA_DIR: dir,
      CRM_LEDGER_PORT: '0',
      CRM_LEDGER_LOG_LEVEL: 'silent',
      CRM_LEDGER_VERIFY_EVERY_MS: '300',
      // The local witness of the embedded default would race this test's own finder.
      CRM_LEDGER_LOCAL_WITNESS: 'off',
    }),
    createLogger({ level: 'silent' }),
  );
  redis = new Redis(service.redisUrl);
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await service?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('scheduled verification', () => {
  it('freezes a tampered tenant, keeps queuing its webhooks, and anchors them after resume', async () => {
    const hs = service.sandboxes!.hubspot;
    const ledger = service.ledger!;
    const tenant = `hubspot:${hs.portalId}`;
    hs.createAsUser('contacts', { email: 'ada@example.com', firstname: 'Ada' }, 7);
    await until(
      'the contact anchored',
      () => ledger.store.readHead(tenant),
      (h) => h.size >= 3,
    );
    const before = (await ledger.store.readHead(tenant)).size;

    const key = new LedgerKeys(tenant).segment(0);
    const original = (await redis.lindexBuffer(key, 1)) as Buffer;
    await redis.lset(
      key,
      1,
      Buffer.from(original.toString('utf8').replace('"update"', '"delete"')),
    );
    const frozen = await until(
      'the freeze',
      () => ledger.store.readFrozen(tenant),
      (f) => f !== undefined,
    );
    expect(frozen).toMatchObject({ firstBadSeq: 1, by: 'verifier' });
    const ready = (await (await fetch(`${service.url}/readyz`)).json()) as { frozen: string[] };
    expect(ready.frozen).toEqual([tenant]);
    expect(await (await fetch(`${service.url}/metrics`)).text()).toContain(
      `crm_ledger_tenant_frozen{tenant="${tenant}"} 1`,
    );

    // The CRM keeps sending: acknowledged (the sandbox sees 2xx), queued, not anchored.
    const delivered = hs.webhookDeliveries().length;
    hs.createAsUser('contacts', { email: 'grace@example.com', firstname: 'Grace' }, 7);
    await until(
      'the webhook delivered',
      () => hs.webhookDeliveries().length,
      (n) => n > delivered,
    );
    expect(
      hs
        .webhookDeliveries()
        .slice(delivered)
        .every((d) => d.status === 200),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect((await ledger.store.readHead(tenant)).size).toBe(before);

    // Repaired (the original bytes back), then resumed through the admin API.
    await redis.lset(key, 1, original);
    const res = await fetch(`${service.url}/admin/resume?tenant=${tenant}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${service.adminToken}` },
    });
    expect(res.status).toBe(200);
    // The queued creation (creation + 2 property events) and the admin block are anchored.
    await until(
      'the queued changes anchored',
      () => ledger.store.readHead(tenant),
      (h) => h.size >= before + 4,
      30_000,
    );
    expect(await ledger.verify(tenant)).toMatchObject({ ok: true });
    expect(await ledger.store.readFrozen(tenant)).toBeUndefined();
  }, 90_000);
});
