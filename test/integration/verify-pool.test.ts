/**
 * Verification in worker threads must say exactly what verification in one thread says: intact
 * chains verify, and a changed byte is reported at the same seq with the same code. So must one
 * thread reading its segments through a PackedReader (what the service and the CLI do).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant, testRedisUrl } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import { VerifyPool } from '../../src/ledger/verify-pool.js';
import { PackedReader } from '../../src/redis/packed-reader.js';
import { LedgerKeys, SEGMENT_SIZE } from '../../src/ledger/keys.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { leafHash, toHex } from '../../src/ledger/hash.js';
import { rewriteFrom, takeSnapshot, writeSnapshot } from '../helpers/chain-snapshot.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import { RedisLedgerStore } from '../../src/ledger/store.js';

let redis: Redis;
let pool: VerifyPool;
let plain: Ledger;
let pooled: Ledger;
let packed: Ledger;
let reader: PackedReader;
let tenant: string;
/** the chain verified at 1,600 blocks, for incremental verification */
let midState: { size: number; root: string };

beforeAll(async () => {
  redis = connect();
  pool = new VerifyPool({ redisUrl: testRedisUrl(), workers: 2 });
  const signer = testSigner();
  plain = createTestLedger(redis, signer);
  pooled = createTestLedger(redis, signer, { verifyPool: pool });
  // A small read buffer: segments arrive in many socket reads.
  reader = new PackedReader(testRedisUrl(), { readBufferSize: 4096 });
  packed = createTestLedger(redis, signer, { packedReader: reader });
  tenant = randomTenant();
  // Three full segments and a partial one, so upper tree levels and segment joins are exercised.
  for (let b = 0; b < 33; b++) {
    await plain.append(
      tenant,
      Array.from({ length: 100 }, (_, i) => contactChange(tenant, `v${(b * 100 + i) % 311}`)),
    );
    if (b === 15) {
      const mid = await plain.verify(tenant);
      if (!mid.ok) throw new Error('the chain does not verify while it is built');
      midState = { size: mid.size, root: mid.root };
    }
  }
}, 120_000);
afterAll(async () => {
  reader.close();
  await pool.close();
  await redis.quit();
});

describe('VerificationService with a pool (crm-ledger verify --threads)', () => {
  it('uses it for full verifications of long chains only, with the same answers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crm-ledger-pool-'));
    try {
      let made = 0;
      const service = (poolMinBlocks: number) =>
        new VerificationService(
          new RedisLedgerStore(redis),
          { verifiers: plain.verifiers, originFor: (t) => plain.originFor(t) },
          new FileTrustStore(dir),
          {
            pool: () => {
              made += 1;
              return pool;
            },
            poolMinBlocks,
          },
        );
      const expected = await plain.verify(tenant);
      expect(await service(4000).verifyTenant(tenant, 'full')).toEqual(expected);
      expect(made).toBe(0); // 3,300 blocks: below the threshold
      expect(await service(3000).verifyTenant(tenant, 'incremental')).toMatchObject({ ok: true });
      expect(made).toBe(0); // incremental: a few segments, no pool
      expect(await service(3000).verifyTenant(tenant, 'full')).toEqual(expected);
      expect(made).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('VerifyPool', () => {
  it('verifies an intact chain exactly as the single-threaded verifier does', async () => {
    const a = await plain.verify(tenant);
    const b = await pooled.verify(tenant);
    expect(a).toMatchObject({ ok: true, size: 3300 });
    expect(b).toEqual(a);
    expect(await packed.verify(tenant)).toEqual(a);
    // Incremental from an earlier verified state reads the later segments the same way.
    const from = { size: midState.size, root: midState.root };
    const incremental = await plain.verify(tenant, { from });
    expect(incremental).toMatchObject({ ok: true, size: 3300 });
    expect(await packed.verify(tenant, { from })).toEqual(incremental);
    // The segments do come through the reader: a closed one fails the verification.
    const closed = new PackedReader(testRedisUrl());
    closed.close();
    const broken = createTestLedger(redis, testSigner(), { packedReader: closed });
    await expect(broken.verify(tenant)).rejects.toMatchObject({ code: 'REDIS_CONNECTION_LOST' });
  });

  describe('when a block in a later segment is changed', () => {
    it('reports the same first bad seq and code', async () => {
      const seq = 2 * SEGMENT_SIZE + 77;
      const key = new LedgerKeys(tenant).segment(2);
      const original = (await redis.lindexBuffer(key, 77)) as Buffer;
      const changed = Buffer.from(original);
      changed.writeUInt8(changed.readUInt8(changed.length - 5) ^ 1, changed.length - 5);
      await redis.lset(key, 77, changed);
      try {
        const a = await plain.verify(tenant);
        const b = await pooled.verify(tenant);
        expect(a).toMatchObject({ ok: false, firstBadSeq: seq, code: 'BLOCK_HASH_MISMATCH' });
        expect(b).toEqual(a);
        expect(await packed.verify(tenant)).toEqual(a);
      } finally {
        await redis.lset(key, 77, original);
      }
    });
  });

  describe('when a record link crosses segments and is broken', () => {
    it('is caught by the merge in the main thread', async () => {
      const key = new LedgerKeys(tenant).segment(3);
      const original = (await redis.lindexBuffer(key, 0)) as Buffer;
      await redis.lset(key, 0, (await redis.lindexBuffer(key, 1)) as Buffer);
      try {
        const a = await plain.verify(tenant);
        expect(await pooled.verify(tenant)).toEqual(a);
        expect(await packed.verify(tenant)).toEqual(a);
        expect(a.ok).toBe(false);
      } finally {
        await redis.lset(key, 0, original);
      }
    });
  });

  describe("when a record's first block in a segment names the wrong earlier block", () => {
    it('both report that block, found by the merge across segments', async () => {
      const original = await takeSnapshot(plain.store, tenant);
      const seq = 3 * SEGMENT_SIZE;
      const own = JSON.parse((original.blocks[seq] as Buffer).toString('utf8')) as {
        record: { id: string };
      };
      // Another record's block from an earlier segment: a real block hash, but not this record's.
      const other = original.blocks
        .slice(0, seq)
        .findLast((b) => !b.toString('utf8').includes(`"id":"${own.record.id}"`)) as Buffer;
      const forged = rewriteFrom(original, seq, (b) => {
        b['recordPrev'] = toHex(leafHash(other));
      });
      await writeSnapshot(redis, tenant, forged);
      try {
        const a = await plain.verify(tenant);
        expect(a).toMatchObject({ ok: false, firstBadSeq: seq, code: 'RECORD_LINK_BROKEN' });
        expect(a.ok ? '' : a.reason).toContain(`contact/${own.record.id}`);
        expect(await pooled.verify(tenant)).toEqual(a);
        expect(await packed.verify(tenant)).toEqual(a);
      } finally {
        await writeSnapshot(redis, tenant, original);
      }
      expect(await plain.verify(tenant)).toMatchObject({ ok: true, size: 3300 });
    });
  });
});
