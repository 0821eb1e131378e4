/**
 * An operator runs `crm-ledger verify` (a real process) against the running service's Redis and
 * it finds a changed block: the CLI freezes the tenant, and the service — which did not find it
 * itself — sends the signed tamper alert once (its scheduler sweeps for freezes nobody alerted).
 * After the block is put back and the operator resumes with `crm-ledger resume`, a second
 * tampering found by the CLI is alerted again.
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
import { LedgerKeys } from '../../src/ledger/keys.js';
import { FREEZE_ALERT_SWEEP_MS } from '../../src/pipeline/freeze.js';
import { contactChange } from '../helpers/ledger.js';
import { until } from '../helpers/wait.js';
import { runCli } from '../helpers/cli.js';
import { startAlertReceiver } from '../helpers/alert-receiver.js';
import type { AlertReceiver } from '../helpers/alert-receiver.js';

const ALERT_SECRET = 'e2e-freeze-alert-secret-0123456789ab';
const TENANT = 'hubspot:771';

let dir: string;
let service: RunningService;
let redis: Redis;
let receiver: AlertReceiver;

/** `crm-ledger <args>` against the running service's Redis and data dir. */
function cli(args: string[]) {
  return runCli(args, {
    CRM_LEDGER_REDIS_URL: service.redisUrl,
    CRM_LEDGER_DATA_DIR: dir,
    CRM_LEDGER_LOG_LEVEL: 'silent',
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-freeze-alerts-'));
  receiver = await startAlertReceiver(ALERT_SECRET);
  service = await startService(
    loadConfig({
      CRM_LEDGER_DATA_DIR: dir,
      CRM_LEDGER_PORT: '0',
      CRM_LEDGER_LOG_LEVEL: 'silent',
      // The service's own verifier stays out of it: only the CLI finds the tampering.
      CRM_LEDGER_VERIFY_EVERY_MS: '0',
      CRM_LEDGER_FULL_VERIFY_EVERY_MS: '0',
      // The local witness of the embedded default would race this test's own finder.
      CRM_LEDGER_LOCAL_WITNESS: 'off',
      CRM_LEDGER_ALERT_WEBHOOK_URL: receiver.url,
      CRM_LEDGER_ALERT_WEBHOOK_SECRET: ALERT_SECRET,
    }),
    createLogger({ level: 'silent' }),
  );
  redis = new Redis(service.redisUrl);
  await service.ledger!.append(
    TENANT,
    ['a', 'b', 'c', 'a'].map((id) => contactChange(TENANT, id)),
  );
}, 60_000);

afterAll(async () => {
  redis?.disconnect();
  await service?.stop();
  await receiver?.close();
  await rm(dir, { recursive: true, force: true });
});

const tamperAlerts = () => receiver.alerts.filter((a) => a.alert['type'] === 'ledger.tampered');

describe('tampering found by crm-ledger verify on another machine', () => {
  it('is alerted once by the running service, and again after a resume and a new tampering', async () => {
    const key = new LedgerKeys(TENANT).segment(0);
    const block = (await redis.lindexBuffer(key, 2)) as Buffer;
    const changed = Buffer.from(block);
    changed[20] = (changed[20] as number) ^ 1;
    await redis.lset(key, 2, changed);

    const found = await cli(['verify', '--tenant', TENANT]);
    expect(found.code).toBe(1);
    expect(found.stdout).toContain(`${TENANT}: TAMPERED — first bad seq 2`);
    const first = await until(
      'the tamper alert',
      () => tamperAlerts(),
      (a) => a.length > 0,
      15_000,
    );
    expect(first[0]).toMatchObject({
      signed: true,
      alert: { tenant: TENANT, detail: { firstBadSeq: 2, frozenBy: 'verifier' } },
    });
    // Several sweeps later, and after the CLI finds it again: still one alert.
    expect((await cli(['verify', '--tenant', TENANT])).code).toBe(1);
    await new Promise((r) => setTimeout(r, 3 * FREEZE_ALERT_SWEEP_MS));
    expect(tamperAlerts()).toHaveLength(1);

    // Repaired and resumed; a new tampering is a new freeze, alerted again.
    await redis.lset(key, 2, block);
    expect((await cli(['resume', '--tenant', TENANT, '--as', 'e2e'])).code).toBe(0);
    expect(await redis.hexists(new LedgerKeys(TENANT).head, 'frozen')).toBe(0);
    const block1 = (await redis.lindexBuffer(key, 1)) as Buffer;
    const changed1 = Buffer.from(block1);
    changed1[20] = (changed1[20] as number) ^ 1;
    await redis.lset(key, 1, changed1);
    expect((await cli(['verify', '--tenant', TENANT])).code).toBe(1);
    const both = await until(
      'the second tamper alert',
      () => tamperAlerts(),
      (a) => a.length > 1,
      15_000,
    );
    expect(both).toHaveLength(2);
    expect(both[1]).toMatchObject({ signed: true, alert: { detail: { firstBadSeq: 1 } } });
  }, 90_000);
});
