/**
 * Master key rotation without downtime: a running process keeps reading and appending while a
 * new master is added and every data key re-wrapped; the old master is retired only afterwards.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { readRecordHistory } from '../../src/ledger/history.js';
import { FileKeyWrapper } from '../../src/vault/key-wrapper.js';
import { RecordVault } from '../../src/vault/vault.js';
import { countByMasterKey, rotateMasterKeyFile } from '../../src/vault/rotate.js';

let redis: Redis;
let dir: string;
let file: string;
let running: FileKeyWrapper;
let ledger: Ledger;
let vault: RecordVault;
const tenants = [randomTenant(), randomTenant()];

async function values(tenant: string, id: string): Promise<unknown[]> {
  const h = await readRecordHistory(ledger.store, tenant, 'contact', id, {
    open: (t, items) => vault.open(t, items),
  });
  return (h?.blocks ?? []).map((b) => (b.vault === 'open' ? b.fields.city?.value : b.vault));
}

beforeAll(async () => {
  redis = connect();
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-rotate-'));
  file = join(dir, 'vault-master.json');
  running = (await FileKeyWrapper.load(file, { createIfMissing: true })).wrapper;
  vault = new RecordVault(redis, running);
  ledger = createTestLedger(redis, undefined, { vault });
  for (const t of tenants) {
    await ledger.append(
      t,
      Array.from({ length: 20 }, (_, i) =>
        contactChange(t, `r${i}`, { fields: { city: `c${i}` } }),
      ),
    );
  }
});
afterAll(async () => {
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('vault rotate-master', () => {
  it('re-wraps every data key under a new master while the running process keeps working', async () => {
    const oldId = running.keyId();
    // Appends go on during the rotation.
    const during = ledger.append(tenants[0]!, [
      contactChange(tenants[0]!, 'r0', { fields: { city: 'during' } }),
    ]);
    const report = await rotateMasterKeyFile(file, redis, tenants, { settleMs: 1_200 });
    await during;
    expect(report.added).toBeDefined();
    expect(report.added).not.toBe(oldId);
    expect(report.rewrapped).toBe(40);
    expect(report.remaining).toEqual({ [report.added!]: 40 });
    // The running process reads old and new entries alike, and wraps new keys with the new master.
    expect(await values(tenants[0]!, 'r0')).toEqual(['c0', 'during']);
    await ledger.append(tenants[1]!, [
      contactChange(tenants[1]!, 'new', { fields: { city: 'n' } }),
    ]);
    const counts = await countByMasterKey(redis, running, tenants);
    expect(counts).toEqual({ [report.added!]: 41 });
    // Old master still in the file until retired.
    const before = JSON.parse(await readFile(file, 'utf8'));
    expect(Object.keys(before.keys).sort()).toEqual([oldId, report.added!].sort());
  });

  it('retires the old master once no data key names it; everything still opens', async () => {
    const report = await rotateMasterKeyFile(file, redis, tenants, { retireOnly: true });
    expect(report.retired).toHaveLength(1);
    const after = JSON.parse(await readFile(file, 'utf8'));
    expect(Object.keys(after.keys)).toEqual([after.current]);
    // A process started now knows only the new master, and opens everything.
    const fresh = new RecordVault(
      redis,
      (await FileKeyWrapper.load(file, { createIfMissing: false })).wrapper,
    );
    const h = await readRecordHistory(ledger.store, tenants[1]!, 'contact', 'r7', {
      open: (t, items) => fresh.open(t, items),
    });
    expect(h?.blocks[0]?.fields.city).toMatchObject({ value: 'c7', opened: true });
    expect((await fresh.check(ledger.store, tenants[0]!)).ok).toBe(true);
  });
});
