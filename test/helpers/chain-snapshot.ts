/**
 * A tenant chain copied out of Redis into memory, served back through the verifier's ChainSource
 * interface. Tamper and fuzz tests mutate copies of it (or write it back to Redis) to play the
 * attacker who has full write access to Redis but not the signing key.
 */
import type { Redis } from 'ioredis';
import { appendLeaves } from '../../src/ledger/merkle.js';
import { HASH_SIZE, leafHash, toHex, ZERO_HASH_HEX } from '../../src/ledger/hash.js';
import { canonicalize } from '../../src/ledger/canonical.js';
import { LedgerKeys, SEGMENT_SIZE, TREE_CHUNK_NODES } from '../../src/ledger/keys.js';
import type { CheckpointEntry, HeadState, RedisLedgerStore } from '../../src/ledger/store.js';
import type { ChainSource } from '../../src/ledger/verifier.js';

export interface ChainSnapshot {
  head: HeadState;
  /** blocks, by seq */
  blocks: Buffer[];
  /** tree levels, each the concatenation of its stored nodes */
  levels: Buffer[];
  checkpoints: CheckpointEntry[];
  records: Map<string, number[]>;
}

export async function takeSnapshot(
  store: RedisLedgerStore,
  tenant: string,
): Promise<ChainSnapshot> {
  const head = await store.readHead(tenant);
  const blocks: Buffer[] = [];
  for (let s = 0; s * SEGMENT_SIZE < head.size; s++)
    blocks.push(...(await store.readSegment(tenant, s)));
  const levels: Buffer[] = [];
  for (let level = 0; 2 ** level <= head.size; level++) {
    levels.push(await store.readTreeRange(tenant, level, 0, Math.floor(head.size / 2 ** level)));
  }
  const checkpoints = await store.readCheckpoints(tenant);
  const records = new Map<string, number[]>();
  blocks.forEach((b, seq) => {
    const { record } = JSON.parse(b.toString('utf8')) as { record: { object: string; id: string } };
    const key = `${record.object}/${record.id}`;
    records.set(key, [...(records.get(key) ?? []), seq]);
  });
  return { head, blocks, levels, checkpoints, records };
}

export function snapshotSource(snap: ChainSnapshot): ChainSource {
  const node = (level: number, index: number) =>
    (snap.levels[level] ?? Buffer.alloc(0)).subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  return {
    readHead: () => Promise.resolve(snap.head),
    readSegment: (n, start = 0) =>
      Promise.resolve(snap.blocks.slice(n * SEGMENT_SIZE + start, (n + 1) * SEGMENT_SIZE)),
    readTreeRange: (level, start, end) =>
      Promise.resolve(
        (snap.levels[level] ?? Buffer.alloc(0)).subarray(start * HASH_SIZE, end * HASH_SIZE),
      ),
    readNodes: (refs) => Promise.resolve(refs.map((r) => new Uint8Array(node(r.level, r.index)))),
    readBlock: (seq) => Promise.resolve(snap.blocks[seq]),
    readRecordSeqs: (key) => Promise.resolve(snap.records.get(key) ?? []),
    latestCheckpoint: () => Promise.resolve(snap.checkpoints.at(-1)),
    readCheckpoints: (min, max) =>
      Promise.resolve(snap.checkpoints.filter((c) => c.size >= min && c.size <= max)),
  };
}

/** Total stored bytes an attacker could flip: every block byte and every tree node byte. */
export function mutationSpace(snap: ChainSnapshot): { blockBytes: number; treeBytes: number } {
  return {
    blockBytes: snap.blocks.reduce((n, b) => n + b.length, 0),
    treeBytes: snap.levels.reduce((n, l) => n + l.length, 0),
  };
}

/**
 * The attacker's consistent rewrite: change block `k` with `mutate`, then recompute every hash,
 * `prev` link, `recordPrev` link and tree node after it, and the head — everything but the
 * signatures. Returns the rewritten snapshot.
 */
export function rewriteFrom(
  snap: ChainSnapshot,
  k: number,
  mutate: (block: Record<string, unknown>) => void,
): ChainSnapshot {
  const parsed = snap.blocks.map((b) => JSON.parse(b.toString('utf8')) as Record<string, unknown>);
  mutate(parsed[k] as Record<string, unknown>);
  const blocks: Buffer[] = [];
  const recordHeads = new Map<string, string>();
  let prev = ZERO_HASH_HEX;
  for (const [seq, block] of parsed.entries()) {
    const { object, id } = block['record'] as { object: string; id: string };
    const key = `${object}/${id}`;
    if (seq >= k) {
      block['prev'] = prev;
      if (seq > k) block['recordPrev'] = recordHeads.get(key) ?? ZERO_HASH_HEX;
    }
    const bytes =
      seq >= k ? Buffer.from(canonicalize(block), 'utf8') : (snap.blocks[seq] as Buffer);
    blocks.push(bytes);
    prev = toHex(leafHash(bytes));
    recordHeads.set(key, prev);
  }
  const levels = buildLevels(blocks);
  return { ...snap, blocks, levels, head: { size: blocks.length, hash: prev } };
}

export function buildLevels(blocks: readonly Buffer[]): Buffer[] {
  const { newNodes } = appendLeaves(
    0,
    [],
    blocks.map((b) => leafHash(b)),
  );
  const levels: Uint8Array[][] = [];
  for (const n of newNodes) (levels[n.level] ??= [])[n.index] = n.hash;
  return levels.map((l) => Buffer.concat(l));
}

/** Writes a (tampered) snapshot back into Redis as the attacker would. */
export async function writeSnapshot(
  redis: Redis,
  tenant: string,
  snap: ChainSnapshot,
): Promise<void> {
  const k = new LedgerKeys(tenant);
  const pipe = redis.pipeline();
  const oldSegments = await redis.keys(`${k.prefix}blk:*`);
  const oldTree = await redis.keys(`${k.prefix}tree:*`);
  for (const key of [...oldSegments, ...oldTree]) pipe.del(key);
  for (let s = 0; s * SEGMENT_SIZE < snap.blocks.length; s++) {
    pipe.rpush(k.segment(s), ...snap.blocks.slice(s * SEGMENT_SIZE, (s + 1) * SEGMENT_SIZE));
  }
  snap.levels.forEach((level, l) => {
    for (let i = 0; i * HASH_SIZE < level.length; i += TREE_CHUNK_NODES) {
      pipe.set(
        k.treeChunk(l, i / TREE_CHUNK_NODES),
        level.subarray(i * HASH_SIZE, (i + TREE_CHUNK_NODES) * HASH_SIZE),
      );
    }
  });
  pipe.hset(k.head, 'size', snap.head.size, 'hash', snap.head.hash);
  pipe.del(k.checkpoints);
  for (const c of snap.checkpoints) pipe.zadd(k.checkpoints, c.size, c.note);
  await pipe.exec();
}
