/**
 * Fuzz: 10,000 random single-byte mutations of stored data (block bytes and tree nodes), each
 * detected with the exact first bad seq: a block at its own seq, a tree node at the first block it
 * covers. The chain is real (appended to Redis), then copied into memory so each mutation costs a
 * verification, not a Redis round trip; a sample of mutations also goes through Redis itself,
 * and another through the node:crypto hasher that replaces the native one when it is not built.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { snapshotSource, takeSnapshot } from '../helpers/chain-snapshot.js';
import type { ChainSnapshot } from '../helpers/chain-snapshot.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { ChainVerifier } from '../../src/ledger/verifier.js';
import { HASH_SIZE } from '../../src/ledger/hash.js';
import { LedgerKeys, TREE_CHUNK_NODES, segmentOf, SEGMENT_SIZE } from '../../src/ledger/keys.js';
import { seededRandom } from '../../src/util/seeded-random.js';
import { batchHasher, jsBatchHasher } from '../../src/ledger/batch-hash.js';
import type { BatchHasher } from '../../src/ledger/batch-hash.js';

const MUTATIONS = 10_000;
const REDIS_MUTATIONS = 200;
const FALLBACK_MUTATIONS = 2_000;

interface Mutation {
  target: 'block' | 'tree';
  /** seq of the block, or level/index of the node */
  seq: number;
  level: number;
  index: number;
  offset: number;
  value: number;
}

function pickMutation(snap: ChainSnapshot, rand: () => number): Mutation {
  const int = (n: number) => Math.floor(rand() * n);
  if (rand() < 0.7) {
    const seq = int(snap.blocks.length);
    const block = snap.blocks[seq] as Buffer;
    const offset = int(block.length);
    const value = (block[offset] as number) ^ (1 + int(255));
    return { target: 'block', seq, level: 0, index: seq, offset, value };
  }
  const level = int(snap.levels.length);
  const nodes = (snap.levels[level] as Buffer).length / HASH_SIZE;
  const index = int(nodes);
  const offset = int(HASH_SIZE);
  const value =
    ((snap.levels[level] as Buffer)[index * HASH_SIZE + offset] as number) ^ (1 + int(255));
  return { target: 'tree', seq: index * 2 ** level, level, index, offset, value };
}

function applyMutation(snap: ChainSnapshot, m: Mutation): ChainSnapshot {
  if (m.target === 'block') {
    const blocks = snap.blocks.slice();
    const copy = Buffer.from(blocks[m.seq] as Buffer);
    copy[m.offset] = m.value;
    blocks[m.seq] = copy;
    return { ...snap, blocks };
  }
  const levels = snap.levels.slice();
  const copy = Buffer.from(levels[m.level] as Buffer);
  copy[m.index * HASH_SIZE + m.offset] = m.value;
  levels[m.level] = copy;
  return { ...snap, levels };
}

let redis: Redis;
let ledger: Ledger;
let tenant: string;
let snap: ChainSnapshot;

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis);
  tenant = randomTenant();
  // 1,100 blocks: one full segment (tree levels up to 10) and a partial one.
  for (let b = 0; b < 11; b++) {
    await ledger.append(
      tenant,
      Array.from({ length: 100 }, (_, i) => contactChange(tenant, `p${(b * 100 + i) % 97}`)),
    );
  }
  snap = await takeSnapshot(ledger.store, tenant);
}, 120_000);
afterAll(async () => {
  await redis.quit();
});

function verifier(s: ChainSnapshot, hasher: BatchHasher = batchHasher): ChainVerifier {
  return new ChainVerifier(
    tenant,
    snapshotSource(s),
    { verifiers: ledger.verifiers, origin: ledger.originFor(tenant) },
    undefined,
    hasher,
  );
}

/** Applies `count` mutations from `seed`; the ones not found at their exact seq, described. */
async function missedMutations(count: number, seed: number, hasher: BatchHasher) {
  const rand = seededRandom(seed);
  const missed: string[] = [];
  const counts = { block: 0, tree: 0 };
  for (let i = 0; i < count; i++) {
    const m = pickMutation(snap, rand);
    counts[m.target] += 1;
    const result = await verifier(applyMutation(snap, m), hasher).verify();
    if (result.ok || result.firstBadSeq !== m.seq) {
      missed.push(`#${i} ${JSON.stringify(m)} → ${JSON.stringify(result)}`);
      if (missed.length > 5) break;
    }
  }
  return { missed, counts };
}

describe('ChainVerifier fuzz', () => {
  it('verifies the untouched chain', async () => {
    expect(snap.blocks.length).toBe(1100);
    expect(await verifier(snap).verify()).toMatchObject({ ok: true, size: 1100 });
  });

  it(`detects ${MUTATIONS} random single-byte mutations at the exact first bad seq`, async () => {
    const seed = 20261126;
    const { missed, counts } = await missedMutations(MUTATIONS, seed, batchHasher);
    expect(missed, `seed ${seed}`).toEqual([]);
    expect(counts.block).toBeGreaterThan(MUTATIONS / 2);
    expect(counts.tree).toBeGreaterThan(MUTATIONS / 5);
  }, 600_000);

  // The verifier hashes through the native addon when it is built (batch-hash.ts); the
  // node:crypto fallback must find the same first bad seqs.
  it(`detects ${FALLBACK_MUTATIONS} mutations the same way with the node:crypto hasher`, async () => {
    expect(await verifier(snap, jsBatchHasher).verify()).toMatchObject({ ok: true, size: 1100 });
    const seed = 20261127;
    const { missed, counts } = await missedMutations(FALLBACK_MUTATIONS, seed, jsBatchHasher);
    expect(missed, `seed ${seed}`).toEqual([]);
    expect(counts.block + counts.tree).toBe(FALLBACK_MUTATIONS);
  }, 600_000);

  it(`detects ${REDIS_MUTATIONS} mutations written to Redis itself`, async () => {
    const rand = seededRandom(7);
    const k = new LedgerKeys(tenant);
    for (let i = 0; i < REDIS_MUTATIONS; i++) {
      const m = pickMutation(snap, rand);
      let restore: () => Promise<unknown>;
      if (m.target === 'block') {
        const key = k.segment(segmentOf(m.seq));
        const original = snap.blocks[m.seq] as Buffer;
        const copy = Buffer.from(original);
        copy[m.offset] = m.value;
        await redis.lset(key, m.seq % SEGMENT_SIZE, copy);
        restore = () => redis.lset(key, m.seq % SEGMENT_SIZE, original);
      } else {
        const key = k.treeChunk(m.level, Math.floor(m.index / TREE_CHUNK_NODES));
        const at = (m.index % TREE_CHUNK_NODES) * HASH_SIZE + m.offset;
        const original = (snap.levels[m.level] as Buffer).subarray(
          m.index * HASH_SIZE + m.offset,
          m.index * HASH_SIZE + m.offset + 1,
        );
        await redis.setrange(key, at, Buffer.from([m.value]));
        restore = () => redis.setrange(key, at, Buffer.from(original));
      }
      const result = await ledger.verify(tenant);
      await restore();
      expect(result, JSON.stringify(m)).toMatchObject({ ok: false, firstBadSeq: m.seq });
    }
    expect(await ledger.verify(tenant)).toMatchObject({ ok: true });
  }, 600_000);
});
