/**
 * The README's tamper walk-through on the embedded default: the local witness copies and cosigns
 * the sandbox tenant's chain; a block is overwritten in Redis; `crm-ledger verify`, `repair
 * --from-witness data/witness/<tenant>` and `resume` (real processes, as the README runs them)
 * find it, restore it from the witness copy and unfreeze the tenant.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import type { RunningService } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { localCopyDir, LOCAL_WITNESS_NAME } from '../../src/witness/local.js';
import { contactChange } from '../helpers/ledger.js';
import { until } from '../helpers/wait.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
let service: RunningService;
let redis: Redis;

/** `crm-ledger <args>` against the running service's Redis and data dir. */
function cli(args: string[]) {
  return runCli(args, {
    CRM_LEDGER_REDIS_URL: service.redisUrl,
    CRM_LEDGER_DATA_DIR: dir,
    CRM_LEDGER_LOG_LEVEL: 'silent',
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-local-witness-'));
  service = await startService(
    loadConfig({ CRM_LEDGER_DATA_DIR: dir, CRM_LEDGER_PORT: '0', CRM_LEDGER_LOG_LEVEL: 'silent' }),
    createLogger({ level: 'silent' }),
  );
  redis = new Redis(service.redisUrl);
}, 60_000);

afterAll(async () => {
  redis?.disconnect();
  await service?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the local witness of the embedded default', () => {
  it('copies and cosigns the chain, and a tampered block is repaired from its copy', async () => {
    const tenant = `hubspot:${service.sandboxes!.hubspot.portalId}`;
    const witnessDir = join(dir, 'witness');
    expect((await stat(join(witnessDir, 'token'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(witnessDir, 'witness.key'))).mode & 0o777).toBe(0o600);
    await service.ledger!.append(
      tenant,
      ['a', 'b', 'c', 'd', 'a', 'b'].map((id) => contactChange(tenant, id)),
    );
    const admin = { Authorization: `Bearer ${service.adminToken}` };
    // Write-backs of the verdicts come back as blocks too: wait until the chain is cosigned at
    // its current size (the witness's rounds are 10 s apart).
    const cosigned = await until(
      'a cosignature by the local witness at the head',
      async () => {
        const v = (await (
          await fetch(`${service.url}/admin/verify?tenant=${tenant}`, { headers: admin })
        ).json()) as {
          size: number;
          confirmed?: boolean;
          cosignatures?: { witness: string; size: number }[];
        };
        return { v, size: (await service.ledger!.store.readHead(tenant)).size };
      },
      ({ v, size }) => v.confirmed === true && v.cosignatures?.[0]?.size === size && size >= 6,
      45_000,
    );
    expect(cosigned.v.cosignatures?.[0]?.witness).toBe(LOCAL_WITNESS_NAME);
    const copyDir = localCopyDir(witnessDir, tenant);
    expect(copyDir).toBe(join(witnessDir, tenant.replace(':', '-')));
    const copied = (await readFile(join(copyDir, 'blocks.ndjson'), 'utf8')).trim().split('\n');
    expect(copied).toHaveLength(cosigned.size);

    // The README's walk-through: overwrite block 3, verify, repair from the copy, resume.
    const segment = new LedgerKeys(tenant).segment(0);
    const original = (await redis.lindexBuffer(segment, 3)) as Buffer;
    await redis.lset(segment, 3, 'not the block');
    const found = await cli(['verify', '--tenant', tenant]);
    expect(found.code).toBe(1);
    expect(found.stdout).toContain('first bad seq 3 (BLOCK_HASH_MISMATCH)');
    const repaired = await cli([
      'repair',
      '--tenant',
      tenant,
      '--from-witness',
      copyDir,
      '--evidence',
      join(dir, 'repair.json'),
    ]);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain('blocks replaced:       3');
    expect(await redis.lindexBuffer(segment, 3)).toEqual(original);
    expect(existsSync(join(dir, 'repair.json'))).toBe(true);
    expect((await cli(['resume', '--tenant', tenant, '--as', 'e2e'])).code).toBe(0);
    expect((await cli(['verify', '--tenant', tenant])).code).toBe(0);
  }, 90_000);
});
