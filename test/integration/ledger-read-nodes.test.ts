/**
 * RedisLedgerStore.readNodes: up to 256 nodes it sends one GETRANGE each; more go through the
 * readNodes script (packed refs, nodes concatenated back). Both must give the same bytes, in
 * order, with missing nodes empty, whatever the mix of levels and tree chunks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { HASH_SIZE, leafHashHex } from '../../src/ledger/hash.js';
import { LedgerKeys, TREE_CHUNK_NODES } from '../../src/ledger/keys.js';
import type { NodeRef } from '../../src/ledger/merkle.js';
import { seededRandom } from '../../src/util/seeded-random.js';

const SIZE = 3000;
let redis: Redis;
let ledger: Ledger;
let tenant: string;

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis);
  tenant = randomTenant();
  for (let done = 0; done < SIZE; done += 500) {
    await ledger.append(
      tenant,
      Array.from({ length: 500 }, (_, i) => contactChange(tenant, `r${(done + i) % 300}`)),
    );
  }
}, 120_000);
afterAll(async () => {
  await redis.quit();
});

/** Each node read on its own (the one-GETRANGE path). */
async function oneByOne(refs: readonly NodeRef[]): Promise<string[]> {
  const out: string[] = [];
  for (const ref of refs) {
    const [node] = await ledger.store.readNodes(tenant, [ref]);
    out.push(Buffer.from(node as Uint8Array).toString('hex'));
  }
  return out;
}

const hex = (nodes: Uint8Array[]) => nodes.map((n) => Buffer.from(n).toString('hex'));

describe('RedisLedgerStore.readNodes', () => {
  it('reads thousands of nodes through the script as one GETRANGE each would', async () => {
    const rand = seededRandom(11);
    const refs: NodeRef[] = [];
    for (let i = 0; i < 5000; i++) {
      const level = Math.floor(rand() * 12);
      refs.push({ level, index: Math.floor(rand() * Math.floor(SIZE / 2 ** level)) });
    }
    const batch = await ledger.store.readNodes(tenant, refs);
    expect(batch).toHaveLength(refs.length);
    expect(batch.every((n) => n.length === HASH_SIZE)).toBe(true);
    // A sample one by one (5,000 round trips would only slow the test down).
    const sample = refs.filter((_, i) => i % 25 === 0);
    expect(hex(batch).filter((_, i) => i % 25 === 0)).toEqual(await oneByOne(sample));
    // The leaves are the block hashes.
    const leafRefs = refs.filter((r) => r.level === 0).slice(0, 20);
    const leaves = await ledger.store.readNodes(tenant, leafRefs);
    const blocks = await ledger.store.readBlocks(
      tenant,
      leafRefs.map((r) => r.index),
    );
    expect(hex(leaves)).toEqual(blocks.map((b) => leafHashHex(b as Buffer)));
  });

  it('gives missing and short nodes back empty or short, in their places', async () => {
    const k = new LedgerKeys(tenant);
    const refs: NodeRef[] = [];
    for (let i = 0; i < 600; i++) refs.push({ level: 0, index: i });
    // Beyond the stored nodes, on a level and a chunk that do not exist.
    refs.splice(100, 0, { level: 0, index: SIZE + 5 });
    refs.splice(300, 0, { level: 30, index: 0 });
    refs.splice(400, 0, { level: 0, index: 3 * TREE_CHUNK_NODES + 1 });
    // A chunk cut short in the middle of a node.
    const shortKey = k.treeChunk(20, 0);
    await redis.set(shortKey, Buffer.alloc(HASH_SIZE + 10, 7));
    refs.push({ level: 20, index: 0 }, { level: 20, index: 1 });
    const batch = await ledger.store.readNodes(tenant, refs);
    await redis.del(shortKey);
    expect(batch.map((n) => n.length)).toEqual(
      refs.map((r, i) =>
        r.level === 20
          ? i === refs.length - 2
            ? HASH_SIZE
            : 10
          : r.level === 30
            ? 0
            : r.index < SIZE
              ? HASH_SIZE
              : 0,
      ),
    );
    expect(Buffer.from(batch[refs.length - 1] as Uint8Array)).toEqual(Buffer.alloc(10, 7));
    expect(hex(batch.slice(0, 100))).toEqual(
      hex(await ledger.store.readNodes(tenant, refs.slice(0, 100))),
    );
  });

  it('splits a read of more than one script call in order', async () => {
    const refs: NodeRef[] = Array.from({ length: 9000 }, (_, i) => ({
      level: i % 2,
      index: (i * 7) % Math.floor(SIZE / 2 ** (i % 2)),
    }));
    const batch = await ledger.store.readNodes(tenant, refs);
    expect(batch).toHaveLength(9000);
    const tail = refs.slice(8990);
    expect(hex(batch.slice(8990))).toEqual(await oneByOne(tail));
    const head = refs.slice(0, 10);
    expect(hex(batch.slice(0, 10))).toEqual(await oneByOne(head));
    const middle = refs.slice(4090, 4100);
    expect(hex(batch.slice(4090, 4100))).toEqual(await oneByOne(middle));
  });
});
