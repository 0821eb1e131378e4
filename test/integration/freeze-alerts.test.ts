/**
 * One tamper alert per freeze, whoever froze the tenant: a verification with no alert hook (what
 * `crm-ledger verify` runs on an operator's machine), the checkpointer inside an append, or this
 * process. The alert is claimed in Redis (claimFreezeAlert) before it is sent, so concurrent
 * claimers and sweepers send it once; an undelivered alert is given back and sent again; a resume
 * clears the claim, so the next freeze is alerted again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Writable } from 'node:stream';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { FreezeAlerts } from '../../src/pipeline/freeze.js';
import { createLogger } from '../../src/observability/logger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { RedisLedgerStore } from '../../src/ledger/store.js';
import type { FrozenState } from '../../src/ledger/store.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import { LedgerError } from '../../src/errors.js';

let redis: Redis;
let other: Redis;
let ledger: Ledger;
let dir: string;
const silent = createLogger({ level: 'silent' });

beforeAll(async () => {
  redis = connect();
  other = connect();
  ledger = createTestLedger(redis);
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-freeze-alerts-'));
});
afterAll(async () => {
  await Promise.all([redis.quit(), other.quit()]);
  await rm(dir, { recursive: true, force: true });
});

const state = (reason: string): FrozenState => ({
  reason,
  at: new Date().toISOString(),
  by: 'verifier',
  firstBadSeq: 1,
});

/** Alerts a FreezeAlerts sent, for `tenant` only (other tests' tenants share this Redis). */
function recorder(tenant: string, deliver: () => boolean = () => true) {
  const sent: { state: FrozenState; size: number }[] = [];
  const send = (t: string, s: FrozenState, size: number) => {
    if (t === tenant) sent.push({ state: s, size });
    return Promise.resolve(t === tenant ? deliver() : true);
  };
  return { sent, send };
}

async function anchored(n: number): Promise<string> {
  const tenant = randomTenant();
  for (let i = 0; i < n; i++) await ledger.append(tenant, [contactChange(tenant, `c${i % 3}`)]);
  return tenant;
}

describe('claimFreezeAlert', () => {
  it('gives the frozen state to exactly one of many concurrent claimers', async () => {
    const tenant = await anchored(2);
    const stores = [new RedisLedgerStore(redis), new RedisLedgerStore(other)];
    expect(await stores[0]!.freeze(tenant, state('changed block'))).toBe(true);
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 2]!.claimFreezeAlert(tenant)),
    );
    const won = claims.filter((c) => c !== undefined);
    expect(won).toHaveLength(1);
    expect(won[0]).toMatchObject({ reason: 'changed block', by: 'verifier', firstBadSeq: 1 });
  });

  it('claims nothing, and leaves nothing behind, for a tenant that is not frozen', async () => {
    const tenant = await anchored(1);
    const store = new RedisLedgerStore(redis);
    expect(await store.claimFreezeAlert(tenant)).toBeUndefined();
    expect(await redis.hexists(new LedgerKeys(tenant).head, 'frozenAlerted')).toBe(0);
    // A later freeze is still claimable.
    await store.freeze(tenant, state('later'));
    expect((await store.claimFreezeAlert(tenant))?.reason).toBe('later');
  });

  it('is cleared by unfreeze, so the next freeze is alerted again; a release gives it back', async () => {
    const tenant = await anchored(1);
    const store = new RedisLedgerStore(redis);
    await store.freeze(tenant, state('first'));
    expect((await store.claimFreezeAlert(tenant))?.reason).toBe('first');
    expect(await store.claimFreezeAlert(tenant)).toBeUndefined();
    await store.releaseFreezeAlert(tenant);
    expect((await store.claimFreezeAlert(tenant))?.reason).toBe('first');
    await store.unfreeze(tenant);
    expect(await redis.hexists(new LedgerKeys(tenant).head, 'frozenAlerted')).toBe(0);
    await store.freeze(tenant, state('second'));
    expect((await store.claimFreezeAlert(tenant))?.reason).toBe('second');
  });
});

describe('FreezeAlerts', () => {
  it('alerts once a freeze made by a verification with no alert hook (the CLI), across two sweepers', async () => {
    const tenant = await anchored(4);
    // Change one byte of block 2, then verify as `crm-ledger verify` does: it freezes, no alert.
    const k = new LedgerKeys(tenant);
    const block = (await redis.lindexBuffer(k.segment(0), 2)) as Buffer;
    block[10] = (block[10] as number) ^ 1;
    await redis.lset(k.segment(0), 2, block);
    const cli = new VerificationService(
      new RedisLedgerStore(other),
      { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
      new FileTrustStore(dir),
    );
    const result = await cli.verifyTenant(tenant, 'full');
    expect(result).toMatchObject({ ok: false, firstBadSeq: 2 });

    const { sent, send } = recorder(tenant);
    const a = new FreezeAlerts(new RedisLedgerStore(redis), send, silent);
    const b = new FreezeAlerts(new RedisLedgerStore(other), send, silent);
    await Promise.all([a.sweep(), b.sweep(), a.sweep()]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ size: 4, state: { by: 'verifier', firstBadSeq: 2 } });
    await Promise.all([a.sweep(), b.sweep()]);
    expect(sent).toHaveLength(1);
    // This process announcing the same freeze (its own verifier found it too) sends nothing more.
    expect(await a.announce(tenant)).toBe(false);
    expect(sent).toHaveLength(1);
  });

  it('alerts a freeze made by the checkpointer during an append', async () => {
    const tenant = await anchored(4);
    // The stored tree node the checkpoint at size 4 stands on (level 2, index 0) is changed: the
    // next append finds the tree no longer has the signed root, freezes, and signs nothing.
    const k = new LedgerKeys(tenant);
    const node = await redis.getrangeBuffer(k.treeChunk(2, 0), 0, 31);
    node[0] = (node[0] as number) ^ 0x80;
    await redis.setrange(k.treeChunk(2, 0), 0, node);
    const err = await ledger.append(tenant, [contactChange(tenant, 'c9')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect((err as LedgerError).code).toBe('CHECKPOINT_INCONSISTENT');

    const { sent, send } = recorder(tenant);
    await new FreezeAlerts(new RedisLedgerStore(redis), send, silent).sweep();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.state.by).toBe('checkpointer');
  });

  it('sends an undelivered alert again on the next sweep, then never again', async () => {
    const tenant = await anchored(1);
    const store = new RedisLedgerStore(redis);
    await store.freeze(tenant, state('webhook down'));
    let up = false;
    const { sent, send } = recorder(tenant, () => up);
    const alerts = new FreezeAlerts(store, send, silent);
    await alerts.sweep();
    expect(sent).toHaveLength(1);
    expect(await redis.hexists(new LedgerKeys(tenant).head, 'frozenAlerted')).toBe(0);
    up = true;
    await alerts.sweep();
    expect(sent).toHaveLength(2);
    await alerts.sweep();
    expect(sent).toHaveLength(2);
  });

  it('gives the claim back when sending throws, and start() keeps sweeping until stop()', async () => {
    const tenant = await anchored(1);
    const store = new RedisLedgerStore(redis);
    await store.freeze(tenant, state('sink threw'));
    let calls = 0;
    const alerts = new FreezeAlerts(
      store,
      (t) => {
        if (t !== tenant) return Promise.resolve(true);
        calls += 1;
        return calls === 1 ? Promise.reject(new Error('boom')) : Promise.resolve(true);
      },
      silent,
    );
    await expect(alerts.announce(tenant)).rejects.toThrow('boom');
    expect(await redis.hexists(new LedgerKeys(tenant).head, 'frozenAlerted')).toBe(0);
    alerts.start(20);
    const end = Date.now() + 5_000;
    while (calls < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await alerts.stop();
    expect(calls).toBe(2);
    expect(await redis.hexists(new LedgerKeys(tenant).head, 'frozenAlerted')).toBe(1);
  });

  it('warns once while Redis is unreachable, not on every sweep', async () => {
    const lines: { msg: string }[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as { msg: string });
        done();
      },
    });
    const down = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const alerts = new FreezeAlerts(
      new RedisLedgerStore(down),
      () => Promise.resolve(true),
      createLogger({ level: 'info', destination }),
    );
    alerts.start(10);
    await new Promise((r) => setTimeout(r, 300));
    await alerts.stop();
    down.disconnect();
    const warned = lines.filter((l) => l.msg === 'freeze alert sweep could not run');
    expect(warned).toHaveLength(1);
  });
});
