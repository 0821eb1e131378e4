/**
 * The attacker has full write access to Redis but not the ledger's signing key. Every way of
 * rewriting history below must be caught by the verifier, at the exact first bad seq.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import {
  rewriteFrom,
  snapshotSource,
  takeSnapshot,
  writeSnapshot,
} from '../helpers/chain-snapshot.js';
import type { ChainSnapshot } from '../helpers/chain-snapshot.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys, SEGMENT_SIZE } from '../../src/ledger/keys.js';
import { ChainVerifier } from '../../src/ledger/verifier.js';
import type { VerifyResult } from '../../src/ledger/verifier.js';
import { signCheckpoint, verifierFromSigner } from '../../src/ledger/checkpoint.js';
import { rangeRefs, rootFromFrontier } from '../../src/ledger/merkle.js';
import { HASH_SIZE, toHex } from '../../src/ledger/hash.js';

let redis: Redis;
let ledger: Ledger;
const signer = testSigner();

/** A chain of 60 blocks over 9 records, appended in 6 batches of 10 (one checkpoint each). */
async function buildChain(): Promise<{ tenant: string; snap: ChainSnapshot }> {
  const tenant = randomTenant();
  for (let b = 0; b < 6; b++) {
    const changes = Array.from({ length: 10 }, (_, i) =>
      contactChange(tenant, `c${(b * 10 + i) % 9}`),
    );
    await ledger.append(tenant, changes);
  }
  return { tenant, snap: await takeSnapshot(ledger.store, tenant) };
}

function verifySnapshot(tenant: string, snap: ChainSnapshot): Promise<VerifyResult> {
  return new ChainVerifier(tenant, snapshotSource(snap), {
    verifiers: ledger.verifiers,
    origin: ledger.originFor(tenant),
  }).verify();
}

function expectBad(result: VerifyResult, firstBadSeq: number, code: string): void {
  expect(result, JSON.stringify(result)).toMatchObject({ ok: false, firstBadSeq, code });
}

beforeAll(() => {
  redis = connect();
  ledger = createTestLedger(redis, signer);
});
afterAll(async () => {
  await redis.quit();
});

describe('ChainVerifier against a tampered Redis', () => {
  it('accepts the untouched chain', async () => {
    const { tenant } = await buildChain();
    expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 60, checkpointSize: 60 });
  });

  describe('when one byte of a stored block changes', () => {
    it('reports that block', async () => {
      const { tenant } = await buildChain();
      const key = new LedgerKeys(tenant).segment(0);
      const block = (await redis.lindexBuffer(key, 17)) as Buffer;
      const at = block.indexOf('"kind":"update"') + 9;
      block[at] = 'U'.charCodeAt(0);
      await redis.lset(key, 17, block);
      expectBad(await ledger.verify(tenant), 17, 'BLOCK_HASH_MISMATCH');
    });
  });

  describe('when a block is deleted', () => {
    it('reports the seq it held', async () => {
      const { tenant } = await buildChain();
      const key = new LedgerKeys(tenant).segment(0);
      const victim = (await redis.lindexBuffer(key, 23)) as Buffer;
      await redis.lrem(key, 1, victim);
      expectBad(await ledger.verify(tenant), 23, 'BLOCK_HASH_MISMATCH');
    });
  });

  describe('when the last block is deleted and the head moved back to the one before', () => {
    it('reports the missing block', async () => {
      const { tenant, snap } = await buildChain();
      const k = new LedgerKeys(tenant);
      await redis.rpop(k.segment(0));
      const prevHash = snap.blocks[58]
        ? toHex((await import('../../src/ledger/hash.js')).leafHash(snap.blocks[58]))
        : '';
      await redis.hset(k.head, 'hash', prevHash);
      expectBad(await ledger.verify(tenant), 59, 'BLOCK_MISSING');
    });
  });

  describe('when a block is inserted', () => {
    it('reports the seq where it was inserted', async () => {
      const { tenant, snap } = await buildChain();
      const key = new LedgerKeys(tenant).segment(0);
      await redis.linsert(key, 'BEFORE', snap.blocks[30] as Buffer, snap.blocks[12] as Buffer);
      expectBad(await ledger.verify(tenant), 30, 'BLOCK_HASH_MISMATCH');
    });
  });

  describe('when two blocks are swapped', () => {
    it('reports the first of them', async () => {
      const { tenant, snap } = await buildChain();
      const key = new LedgerKeys(tenant).segment(0);
      await redis.lset(key, 40, snap.blocks[44] as Buffer);
      await redis.lset(key, 44, snap.blocks[40] as Buffer);
      expectBad(await ledger.verify(tenant), 40, 'BLOCK_HASH_MISMATCH');
    });
  });

  describe('when the head is moved', () => {
    it('reports a head that names an earlier block', async () => {
      const { tenant, snap } = await buildChain();
      const { leafHash } = await import('../../src/ledger/hash.js');
      await redis.hset(
        new LedgerKeys(tenant).head,
        'hash',
        toHex(leafHash(snap.blocks[50] as Buffer)),
      );
      expectBad(await ledger.verify(tenant), 59, 'HEAD_MISMATCH');
    });

    it('reports blocks beyond a head whose size was lowered', async () => {
      const { tenant, snap } = await buildChain();
      const { leafHash } = await import('../../src/ledger/hash.js');
      await redis.hset(
        new LedgerKeys(tenant).head,
        'size',
        55,
        'hash',
        toHex(leafHash(snap.blocks[54] as Buffer)),
      );
      const result = await ledger.verify(tenant);
      expect(result.ok).toBe(false);
      expect(result).toMatchObject({ ok: false, firstBadSeq: 55 });
    });
  });

  describe('when a per-record link is broken and the chain re-hashed around it', () => {
    it('reports the block whose recordPrev is wrong', async () => {
      const { tenant, snap } = await buildChain();
      const forged = rewriteFrom(snap, 33, (b) => {
        b['recordPrev'] = '0'.repeat(64);
      });
      await writeSnapshot(redis, tenant, forged);
      expectBad(await ledger.verify(tenant), 33, 'RECORD_LINK_BROKEN');
    });
  });

  describe('when the chain is rewritten consistently from block k', () => {
    it('is caught by the signed checkpoints, bounded by the last good one', async () => {
      const { tenant, snap } = await buildChain();
      const forged = rewriteFrom(snap, 34, (b) => {
        b['actor'] = { type: 'user', id: 'hubspot:user:attacker' };
      });
      await writeSnapshot(redis, tenant, forged);
      // Blocks 0..29 are covered by intact checkpoints (sizes 10, 20, 30); 34 sits in (30, 40].
      expectBad(await ledger.verify(tenant), 30, 'CHECKPOINT_ROOT_MISMATCH');
    });

    it('is caught when the attacker also re-signs the checkpoints with a key of their own', async () => {
      const { tenant, snap } = await buildChain();
      const forged = rewriteFrom(snap, 5, (b) => {
        b['kind'] = 'delete';
      });
      const attacker = testSigner(signer.name);
      const root = rootFromFrontier(
        rangeRefs(0, 60).map(
          (r) =>
            forged.levels[r.level]?.subarray(
              r.index * HASH_SIZE,
              (r.index + 1) * HASH_SIZE,
            ) as Uint8Array,
        ),
      );
      forged.checkpoints = [
        {
          size: 60,
          note: signCheckpoint(
            { origin: ledger.originFor(tenant), size: 60, rootHash: root },
            attacker,
          ),
        },
      ];
      await writeSnapshot(redis, tenant, forged);
      expectBad(await ledger.verify(tenant), 0, 'CHECKPOINT_INVALID');
    });
  });

  describe('when the checkpoints are deleted', () => {
    it('reports that nothing signed covers the chain', async () => {
      const { tenant } = await buildChain();
      await redis.del(new LedgerKeys(tenant).checkpoints);
      expectBad(await ledger.verify(tenant), 0, 'CHECKPOINT_MISSING');
    });
  });

  describe('when the whole tenant is rolled back to an earlier, validly signed state', () => {
    it('is caught by the trusted state kept outside Redis', async () => {
      const tenant = randomTenant();
      await ledger.append(tenant, [contactChange(tenant, 'x'), contactChange(tenant, 'y')]);
      const early = await takeSnapshot(ledger.store, tenant);
      await ledger.append(tenant, [contactChange(tenant, 'x')]);
      const seen = await ledger.verify(tenant);
      if (!seen.ok) throw new Error('chain should verify');
      await writeSnapshot(redis, tenant, early);
      expect(await ledger.verify(tenant)).toMatchObject({ ok: true, size: 2 });
      expectBad(
        await ledger.verify(tenant, { trusted: { size: seen.size, root: seen.root } }),
        2,
        'TRUSTED_STATE_MISMATCH',
      );
    });
  });

  describe('when a stored tree node changes', () => {
    it('reports the first block under that node', async () => {
      const { tenant, snap } = await buildChain();
      const level2 = Buffer.from(snap.levels[2] as Buffer);
      level2.writeUInt8(level2.readUInt8(5 * HASH_SIZE + 3) ^ 0x40, 5 * HASH_SIZE + 3); // node (2, 5) covers blocks 20..23
      expectBad(
        await verifySnapshot(tenant, {
          ...snap,
          levels: snap.levels.map((l, i) => (i === 2 ? level2 : l)),
        }),
        20,
        'TREE_NODE_MISMATCH',
      );
    });
  });

  describe('incremental verification from a verified state', () => {
    it('accepts appended blocks and catches a change made after the state', async () => {
      const { tenant } = await buildChain();
      const base = await ledger.verify(tenant);
      if (!base.ok) throw new Error('chain should verify');
      await ledger.append(tenant, [contactChange(tenant, 'c1'), contactChange(tenant, 'new')]);
      const inc = await ledger.verify(tenant, { from: { size: base.size, root: base.root } });
      expect(inc).toMatchObject({ ok: true, size: 62 });
      const snap = await takeSnapshot(ledger.store, tenant);
      const forged = rewriteFrom(snap, 60, (b) => {
        b['recordPrev'] = 'f'.repeat(64);
      });
      expectBad(
        await new ChainVerifier(tenant, snapshotSource(forged), {
          verifiers: [verifierFromSigner(signer)],
          origin: ledger.originFor(tenant),
        }).verify({ from: { size: base.size, root: base.root } }),
        60,
        'RECORD_LINK_BROKEN',
      );
    });

    it('names the one record whose earlier block no longer proves, of many proven together', async () => {
      // A full first segment over 9 records, verified: incremental verification then starts at
      // the second segment and proves each record's earlier block against the verified root.
      const tenant = randomTenant();
      for (let b = 0; b < SEGMENT_SIZE / 128; b++) {
        await ledger.append(
          tenant,
          Array.from({ length: 128 }, (_, i) => contactChange(tenant, `c${(b * 128 + i) % 9}`)),
        );
      }
      const base = await ledger.verify(tenant);
      if (!base.ok) throw new Error('chain should verify');
      const trusted = { size: base.size, root: base.root };
      // One new block for each record (c0..c8 at SEGMENT_SIZE + 0..8), each linking back into the
      // verified segment: the nine earlier blocks are proven together in one batch proof.
      await ledger.append(
        tenant,
        Array.from({ length: 9 }, (_, i) => contactChange(tenant, `c${i}`)),
      );
      const snap = await takeSnapshot(ledger.store, tenant);
      const verifyFrom = (s: ChainSnapshot) =>
        new ChainVerifier(tenant, snapshotSource(s), {
          verifiers: [verifierFromSigner(signer)],
          origin: ledger.originFor(tenant),
        }).verify({ from: trusted });
      expect(await verifyFrom(snap)).toMatchObject({ ok: true, size: SEGMENT_SIZE + 9 });
      for (const victim of [5, 0, 8]) {
        const prior = (snap.records.get(`contact/c${victim}`) ?? [])
          .filter((s) => s < SEGMENT_SIZE)
          .at(-1);
        if (prior === undefined) throw new Error(`c${victim} has no block in the first segment`);
        const blocks = snap.blocks.map((b, seq) => {
          if (seq !== prior) return b;
          const forged = Buffer.from(b);
          forged[40] = (forged[40] as number) ^ 0x01;
          return forged;
        });
        expectBad(
          await verifyFrom({ ...snap, blocks }),
          SEGMENT_SIZE + victim,
          'RECORD_LINK_BROKEN',
        );
      }
      // A record index that names a later block (of another record) as c5's previous one: that
      // block is not under the verified root, so the link is reported, not thrown on.
      const records = new Map(snap.records);
      const c5 = (records.get('contact/c5') ?? []).filter((s) => s < SEGMENT_SIZE);
      records.set('contact/c5', [...c5, SEGMENT_SIZE + 2, SEGMENT_SIZE + 5]);
      expectBad(await verifyFrom({ ...snap, records }), SEGMENT_SIZE + 5, 'RECORD_LINK_BROKEN');
      // The same in Redis: a later block is reported, not thrown on; an entry that names no seq
      // at all is passed over by the store, and the true link still proves.
      const list = new LedgerKeys(tenant).record('contact/c5');
      for (const [entry, ok] of [
        [`${SEGMENT_SIZE + 1}:x`, false],
        ['5.5:x', true],
        ['-3:x', true],
        ['garbage', true],
      ] as const) {
        await redis.rpush(list, entry);
        try {
          const result = await ledger.verify(tenant, { from: trusted });
          if (ok) expect(result, entry).toMatchObject({ ok: true });
          else expectBad(result, SEGMENT_SIZE + 5, 'RECORD_LINK_BROKEN');
        } finally {
          await redis.rpop(list);
        }
      }
      expect(await ledger.verify(tenant, { from: trusted })).toMatchObject({ ok: true });
    });
  });
});
