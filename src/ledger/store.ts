/**
 * RedisLedgerStore: the only ledger file that talks to Redis. It reads and writes the layout in
 * keys.ts; every multi-key write goes through the appendBlocks Lua script.
 */
import { nodeForKey } from '../redis/connection.js';
import type { RedisClient as Redis } from '../redis/connection.js';
import { LedgerError } from '../errors.js';
import { HASH_SIZE } from './hash.js';
import { LedgerKeys, SEGMENT_SIZE, TENANTS_KEY, TREE_CHUNK_NODES, segmentOf } from './keys.js';
import { decodeAppendReply } from './lua/codes.js';
import type { AppendReply } from './lua/codes.js';
import { defineLedgerCommands } from './lua/index.js';
import type { NodeRef } from './merkle.js';
import type { BuiltBlock } from './block.js';
import { packBlocks } from './packed-blocks.js';
import type { PackedBlocks } from './packed-blocks.js';
import type { PackedReader, PackedReply } from '../redis/packed-reader.js';

export interface HeadState {
  size: number;
  /** hex hash of the last block; "" for an empty chain */
  hash: string;
}

export interface RecordHead {
  seq: number;
  hash: string;
}

export interface TreeWrite {
  level: number;
  index: number;
  /** concatenated 32-byte node hashes starting at `index` */
  bytes: Buffer;
}

export interface CheckpointEntry {
  size: number;
  note: string;
}

/** A witness's newest cosignature of one of our checkpoints (C2SP tlog-cosignature line). */
export interface CosignatureEntry {
  witness: string;
  /** size of the cosigned checkpoint */
  size: number;
  /** the cosignature's own timestamp (POSIX seconds) */
  timestamp: number;
  /** "— <witness> <base64>" */
  line: string;
  /** when the service stored it (ISO) */
  receivedAt: string;
}

/**
 * What `restoreRange` rewrites (from a verified witness copy): whole segment lists (blocks and
 * vault entries, so a deleted or inserted entry is fixed too), whole record lists, tree node runs,
 * the head, and checkpoint notes that went missing.
 */
export interface RestorePlan {
  segments: { n: number; blocks: Buffer[]; vault: string[] }[];
  records: { recordKey: string; entries: string[] }[];
  tree: readonly TreeWrite[];
  head?: HeadState;
  checkpoints: CheckpointEntry[];
}

/** Up to this many nodes, readNodes sends one GETRANGE each (the hot paths read ~20–40). */
const NODES_BY_COMMAND = 256;
/** Nodes per readNodes script call: ~1–4 ms of Redis time each (measured under load). */
const NODES_PER_SCRIPT = 1024;

type ScriptCommand = (numKeys: number, ...args: (string | number | Buffer)[]) => Promise<unknown>;

/** One block's verdicts in the verdict index. */
export interface VerdictIndexEntry {
  seq: number;
  object: string;
  id: string;
  /** when it was anchored (the anchor worker's clock) */
  at: string;
  verdicts: { type: string; code?: string; reason?: string }[];
}

/** Why and since when a tenant's anchoring is frozen. */
export interface FrozenState {
  reason: string;
  code?: string;
  firstBadSeq?: number;
  at: string;
  /** who or what froze it: `verifier`, `checkpointer`, `witness:<name>`, `admin:<name>` */
  by: string;
  /** set by a repair from a witness copy; anchored with the resume */
  repair?: { at: string; blocks: number[]; checkpointSize: number };
}

export class RedisLedgerStore {
  private readonly keysByTenant = new Map<string, LedgerKeys>();

  constructor(readonly redis: Redis) {
    defineLedgerCommands(redis);
  }

  keys(tenant: string): LedgerKeys {
    let k = this.keysByTenant.get(tenant);
    if (!k) {
      k = new LedgerKeys(tenant);
      this.keysByTenant.set(tenant, k);
    }
    return k;
  }

  async readHead(tenant: string): Promise<HeadState> {
    const [size, hash] = await this.redis.hmget(this.keys(tenant).head, 'size', 'hash');
    return { size: size ? Number(size) : 0, hash: hash ?? '' };
  }

  /** Record heads (last entry of each record list), in one round trip (one script call). */
  async readRecordHeads(tenant: string, recordKeys: string[]): Promise<Map<string, RecordHead>> {
    const out = new Map<string, RecordHead>();
    if (recordKeys.length === 0) return out;
    const k = this.keys(tenant);
    const command = (this.redis as unknown as { readRecordHeadsV1: ScriptCommand })
      .readRecordHeadsV1;
    const heads = (await command.call(
      this.redis,
      recordKeys.length,
      ...recordKeys.map((r) => k.record(r)),
    )) as (string | null)[];
    recordKeys.forEach((r, i) => {
      const value = heads[i];
      if (typeof value === 'string') out.set(r, parseRecordHead(value));
    });
    return out;
  }

  /**
   * The seq already anchoring each idempotency field (`undefined`: none), in one round trip. An
   * idempotency record is never removed, so a change found here is refused by the append script.
   */
  async readAnchoredSeqs(
    tenant: string,
    idemFields: readonly string[],
  ): Promise<(number | undefined)[]> {
    if (idemFields.length === 0) return [];
    const values = await this.redis.hmget(this.keys(tenant).idem, ...idemFields);
    return values.map((v) => (v === null ? undefined : Number(v)));
  }

  /**
   * Stored tree nodes, in one round trip. Missing nodes come back empty (or short). Up to
   * NODES_BY_COMMAND nodes are read with one GETRANGE each; more (incremental verification reads
   * ~41,000 for the last 1 % of a 1M chain) by the readNodes script, NODES_PER_SCRIPT per call,
   * so that Redis is never held for long by one call.
   */
  async readNodes(tenant: string, refs: readonly NodeRef[]): Promise<Uint8Array[]> {
    if (refs.length === 0) return [];
    const k = this.keys(tenant);
    /** The chunk string a node lies in, and its byte offset there. */
    const place = ({ level, index }: NodeRef) => ({
      key: k.treeChunk(level, Math.floor(index / TREE_CHUNK_NODES)),
      offset: (index % TREE_CHUNK_NODES) * HASH_SIZE,
    });
    const pipe = this.redis.pipeline();
    if (refs.length <= NODES_BY_COMMAND) {
      for (const ref of refs) {
        const { key, offset } = place(ref);
        pipe.getrangeBuffer(key, offset, offset + HASH_SIZE - 1);
      }
      const replies = (await pipe.exec()) ?? [];
      return replies.map(([err, value]) => {
        if (err) throw err;
        return new Uint8Array(value as Buffer);
      });
    }
    const script = pipe as unknown as { readNodesV1Buffer: ScriptCommand };
    for (let from = 0; from < refs.length; from += NODES_PER_SCRIPT) {
      const part = refs.slice(from, from + NODES_PER_SCRIPT);
      const keyNumbers = new Map<string, number>();
      const packed = Buffer.alloc(part.length * 6);
      part.forEach((ref, i) => {
        const { key, offset } = place(ref);
        let n = keyNumbers.get(key);
        if (n === undefined) {
          n = keyNumbers.size + 1;
          keyNumbers.set(key, n);
        }
        packed.writeUInt16BE(n, i * 6);
        packed.writeUInt32BE(offset, i * 6 + 2);
      });
      void script.readNodesV1Buffer(keyNumbers.size, ...keyNumbers.keys(), packed);
    }
    const replies = (await pipe.exec()) ?? [];
    const out: Uint8Array[] = [];
    for (const [err, value] of replies) {
      if (err) throw err;
      if (Array.isArray(value)) {
        for (const node of value as Buffer[]) out.push(new Uint8Array(node));
      } else {
        const whole = new Uint8Array(value as Buffer);
        for (let at = 0; at < whole.length; at += HASH_SIZE) {
          out.push(whole.subarray(at, at + HASH_SIZE));
        }
      }
    }
    if (out.length !== refs.length) {
      throw new Error(`readNodes: ${out.length} nodes came back for ${refs.length} asked`);
    }
    return out;
  }

  /** Nodes [start, end) of one tree level, concatenated (reads across chunk strings). */
  async readTreeRange(tenant: string, level: number, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const k = this.keys(tenant);
    const pipe = this.redis.pipeline();
    for (let i = start; i < end;) {
      const chunk = Math.floor(i / TREE_CHUNK_NODES);
      const stop = Math.min(end, (chunk + 1) * TREE_CHUNK_NODES);
      const from = (i % TREE_CHUNK_NODES) * HASH_SIZE;
      pipe.getrangeBuffer(k.treeChunk(level, chunk), from, from + (stop - i) * HASH_SIZE - 1);
      i = stop;
    }
    const replies = (await pipe.exec()) ?? [];
    return Buffer.concat(
      replies.map(([err, value]) => {
        if (err) throw err;
        return value as Buffer;
      }),
    );
  }

  /**
   * Segment `n`'s blocks (packed into one buffer) and, for each level 0..`topLevel`, the stored
   * nodes [start/2^L, floor(end/2^L)) over blocks [start, end), in one pipeline: one write and
   * one batch of replies per segment instead of one per level (what full verification reads).
   * Verify workers read the same through a PackedReader (readSegmentWithTreePacked).
   */
  async readSegmentWithTree(
    tenant: string,
    n: number,
    start: number,
    end: number,
    topLevel: number,
  ): Promise<{ blocks: PackedBlocks; levels: Buffer[] }> {
    const k = this.keys(tenant);
    const pipe = this.redis.pipeline();
    pipe.lrangeBuffer(k.segment(n), 0, -1);
    const reads = segmentTreeReads(k, start, end, topLevel);
    for (const level of reads) {
      for (const r of level) pipe.getrangeBuffer(r.key, r.from, r.to);
    }
    const replies = (await pipe.exec()) ?? [];
    const values = replies.map(([err, value]) => {
      if (err) throw err;
      return value as Buffer | Buffer[];
    });
    return {
      blocks: packBlocks(values[0] as Buffer[]),
      levels: joinLevels(reads, values.slice(1) as Buffer[]),
    };
  }

  /** Blocks of segment `n` from `start` (offset inside the segment), as stored bytes. */
  async readSegment(tenant: string, n: number, start = 0, end = -1): Promise<Buffer[]> {
    return this.redis.lrangeBuffer(this.keys(tenant).segment(n), start, end);
  }

  async readBlock(tenant: string, seq: number): Promise<Buffer | undefined> {
    const value = await this.redis.lindexBuffer(
      this.keys(tenant).segment(segmentOf(seq)),
      seq % SEGMENT_SIZE,
    );
    return value ?? undefined;
  }

  async readBlocks(tenant: string, seqs: readonly number[]): Promise<(Buffer | undefined)[]> {
    if (seqs.length === 0) return [];
    const k = this.keys(tenant);
    const pipe = this.redis.pipeline();
    for (const seq of seqs) pipe.lindexBuffer(k.segment(segmentOf(seq)), seq % SEGMENT_SIZE);
    const replies = (await pipe.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return (value as Buffer | null) ?? undefined;
    });
  }

  /**
   * A record's index entries (seq and hash of each block), oldest first. The index is untrusted (every use checks the blocks
   * it names): an entry that names no seq at all (changed in Redis) is passed over, so that no
   * reader sends Redis an index it refuses.
   */
  async readRecord(tenant: string, recordKey: string): Promise<RecordHead[]> {
    const entries = await this.redis.lrange(this.keys(tenant).record(recordKey), 0, -1);
    return entries.map(parseRecordHead).filter((e) => Number.isSafeInteger(e.seq) && e.seq >= 0);
  }

  /**
   * One step of a SCAN over the tenant's record indexes: record keys (`<object>/<id>`) and the
   * cursor to continue with ('0' when done). Keys may come twice (SCAN's guarantee); callers
   * de-duplicate. It walks the whole keyspace, `count` keys a step (reconciliation sweeps).
   */
  async scanRecordKeys(
    tenant: string,
    cursor: string,
    count: number,
  ): Promise<{ cursor: string; recordKeys: string[] }> {
    const prefix = this.keys(tenant).record('');
    // SCAN is node-local: on a cluster, walk the master serving the tenant's slot. A failover
    // mid-sweep hands the cursor to the promoted replica, which may skip or repeat keys; the sweep
    // is a backstop that the next run covers again.
    const node = await nodeForKey(this.redis, prefix);
    const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', count);
    return { cursor: next, recordKeys: keys.map((k) => k.slice(prefix.length)) };
  }

  /** Vault entries of the given seqs, in one round trip. */
  async readVaultEntries(tenant: string, seqs: readonly number[]): Promise<(string | undefined)[]> {
    if (seqs.length === 0) return [];
    const k = this.keys(tenant);
    const pipe = this.redis.pipeline();
    for (const seq of seqs) pipe.lindex(k.vaultSegment(segmentOf(seq)), seq % SEGMENT_SIZE);
    const replies = (await pipe.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return typeof value === 'string' ? value : undefined;
    });
  }

  /**
   * Overwrites the vault entries of `seqs` with `value` (erasure: the salts and sealed values are
   * gone from Redis, the blocks and their commitments stay). Entries past the end are skipped.
   */
  async overwriteVaultEntries(
    tenant: string,
    seqs: readonly number[],
    value: string,
  ): Promise<number> {
    if (seqs.length === 0) return 0;
    const k = this.keys(tenant);
    const tx = this.redis.multi();
    for (const seq of seqs) tx.lset(k.vaultSegment(segmentOf(seq)), seq % SEGMENT_SIZE, value);
    const replies = (await tx.exec()) ?? [];
    return replies.filter(([err]) => !err).length;
  }

  /**
   * Runs appendBlocks: writes `blocks` (seqs expected.size …) and `tree` atomically if the head is
   * still `expected` and none of the blocks' idempotency fields is known.
   */
  async append(
    tenant: string,
    expected: HeadState,
    blocks: readonly BuiltBlock[],
    tree: readonly TreeWrite[],
  ): Promise<AppendReply> {
    const last = blocks[blocks.length - 1];
    if (!last) throw new LedgerError('LUA_UNEXPECTED', 'append called with no blocks');
    const k = this.keys(tenant);
    const firstSeg = segmentOf(expected.size);
    const lastSeg = segmentOf(expected.size + blocks.length - 1);
    const keys: string[] = [k.head, k.idem];
    for (let s = firstSeg; s <= lastSeg; s++) keys.push(k.segment(s));
    for (let s = firstSeg; s <= lastSeg; s++) keys.push(k.vaultSegment(s));
    for (const b of blocks) keys.push(k.record(b.recordKey));
    for (const w of tree) keys.push(k.treeChunk(w.level, Math.floor(w.index / TREE_CHUNK_NODES)));
    const args: (string | number | Buffer)[] = [
      expected.size,
      expected.hash,
      last.hashHex,
      blocks.length,
      lastSeg - firstSeg + 1,
      tree.length,
      SEGMENT_SIZE,
    ];
    for (const b of blocks) args.push(b.encoded, b.idemField, `${b.seq}:${b.hashHex}`, b.vault);
    for (const w of tree) args.push((w.index % TREE_CHUNK_NODES) * HASH_SIZE, w.bytes);
    const command = (this.redis as unknown as { appendBlocksV3: ScriptCommand }).appendBlocksV3;
    const reply = await command.call(this.redis, keys.length, ...keys, ...args);
    return decodeAppendReply(reply);
  }

  /**
   * Freezes a tenant: the append script refuses every batch until `unfreeze`. Kept in the head
   * hash, so the script checks it atomically with the compare-and-set. Returns false if the tenant
   * was already frozen (the first reason is kept).
   */
  async freeze(tenant: string, state: FrozenState): Promise<boolean> {
    const set = await this.redis.hsetnx(this.keys(tenant).head, 'frozen', JSON.stringify(state));
    return set === 1;
  }

  /** Records a repair in the frozen state (no-op when the tenant is not frozen). */
  async noteRepair(tenant: string, repair: NonNullable<FrozenState['repair']>): Promise<void> {
    const state = await this.readFrozen(tenant);
    if (!state) return;
    await this.redis.hset(this.keys(tenant).head, 'frozen', JSON.stringify({ ...state, repair }));
  }

  /** Lifts a freeze, and its alert claim with it (the next freeze is alerted again). */
  async unfreeze(tenant: string): Promise<void> {
    await this.redis.hdel(this.keys(tenant).head, 'frozen', 'frozenAlerted');
  }

  async readFrozen(tenant: string): Promise<FrozenState | undefined> {
    const text = await this.redis.hget(this.keys(tenant).head, 'frozen');
    return text === null ? undefined : parseFrozen(text);
  }

  /**
   * Claims the tamper alert of the tenant's current freeze: its state for the one caller that
   * claims it, undefined for every other caller and when the tenant is not frozen.
   */
  async claimFreezeAlert(tenant: string, at: Date = new Date()): Promise<FrozenState | undefined> {
    const command = (this.redis as unknown as { claimFreezeAlertV1: ScriptCommand })
      .claimFreezeAlertV1;
    const text = (await command.call(this.redis, 1, this.keys(tenant).head, at.toISOString())) as
      string | null;
    return text === null ? undefined : parseFrozen(text);
  }

  /** Gives a claimed alert back (its delivery failed): a later claim sends it again. */
  async releaseFreezeAlert(tenant: string): Promise<void> {
    await this.redis.hdel(this.keys(tenant).head, 'frozenAlerted');
  }

  /** Adds blocks' verdicts to the tenant's verdict index (idempotent: same seq, same member). */
  async indexVerdicts(tenant: string, entries: readonly VerdictIndexEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const args: (string | number)[] = [];
    for (const e of entries) args.push(e.seq, JSON.stringify(e));
    await this.redis.zadd(this.keys(tenant).verdicts, ...args);
  }

  /** Verdict index entries with seq > afterSeq, oldest first, at most `limit`. */
  async readVerdicts(
    tenant: string,
    afterSeq: number,
    limit: number,
  ): Promise<VerdictIndexEntry[]> {
    const members = await this.redis.zrangebyscore(
      this.keys(tenant).verdicts,
      `(${afterSeq}`,
      '+inf',
      'LIMIT',
      0,
      limit,
    );
    return members.map((m) => JSON.parse(m) as VerdictIndexEntry);
  }

  /** The newest `limit` verdict index entries, newest first. */
  async readLatestVerdicts(tenant: string, limit: number): Promise<VerdictIndexEntry[]> {
    const members = await this.redis.zrevrange(this.keys(tenant).verdicts, 0, limit - 1);
    return members.map((m) => JSON.parse(m) as VerdictIndexEntry);
  }

  async registerTenant(tenant: string): Promise<void> {
    await this.redis.sadd(TENANTS_KEY, tenant);
  }

  async listTenants(): Promise<string[]> {
    return (await this.redis.smembers(TENANTS_KEY)).sort();
  }

  async addCheckpoint(tenant: string, size: number, note: string): Promise<void> {
    await this.redis.zadd(this.keys(tenant).checkpoints, size, note);
  }

  async latestCheckpoint(tenant: string): Promise<CheckpointEntry | undefined> {
    const [note, score] = await this.redis.zrange(
      this.keys(tenant).checkpoints,
      -1,
      -1,
      'WITHSCORES',
    );
    return note !== undefined && score !== undefined ? { size: Number(score), note } : undefined;
  }

  /**
   * Keeps a witness's newest cosignature (a larger size, or the same size with a later
   * timestamp, replaces it). Returns whether it was stored.
   */
  async addCosignature(tenant: string, entry: CosignatureEntry): Promise<boolean> {
    const key = this.keys(tenant).cosignatures;
    const current = await this.readCosignatures(tenant);
    const old = current.find((c) => c.witness === entry.witness);
    if (
      old &&
      (old.size > entry.size || (old.size === entry.size && old.timestamp >= entry.timestamp))
    )
      return false;
    await this.redis.hset(key, entry.witness, JSON.stringify(entry));
    return true;
  }

  async readCosignatures(tenant: string): Promise<CosignatureEntry[]> {
    const all = await this.redis.hgetall(this.keys(tenant).cosignatures);
    const out: CosignatureEntry[] = [];
    for (const text of Object.values(all)) {
      try {
        out.push(JSON.parse(text) as CosignatureEntry);
      } catch {
        // an unreadable entry is no cosignature
      }
    }
    return out.sort((a, b) => a.witness.localeCompare(b.witness));
  }

  /** Vault entries of segment `n`, as stored. */
  async readVaultSegment(tenant: string, n: number): Promise<string[]> {
    return this.redis.lrange(this.keys(tenant).vaultSegment(n), 0, -1);
  }

  /**
   * Repair (issue 8): rewrites what `plan` names in one MULTI/EXEC, only if the head is still
   * `expected` (WATCH): an append landing meanwhile makes it return false and write nothing.
   * The frozen flag in the head is kept.
   */
  async restoreRange(tenant: string, expected: HeadState, plan: RestorePlan): Promise<boolean> {
    const k = this.keys(tenant);
    await this.redis.watch(k.head);
    try {
      const head = await this.readHead(tenant);
      if (head.size !== expected.size || head.hash !== expected.hash) {
        await this.redis.unwatch();
        return false;
      }
      const tx = this.redis.multi();
      for (const s of plan.segments) {
        tx.del(k.segment(s.n));
        if (s.blocks.length > 0) tx.rpush(k.segment(s.n), ...s.blocks);
        tx.del(k.vaultSegment(s.n));
        if (s.vault.length > 0) tx.rpush(k.vaultSegment(s.n), ...s.vault);
      }
      for (const r of plan.records) {
        tx.del(k.record(r.recordKey));
        if (r.entries.length > 0) tx.rpush(k.record(r.recordKey), ...r.entries);
      }
      for (const w of plan.tree) {
        tx.setrange(
          k.treeChunk(w.level, Math.floor(w.index / TREE_CHUNK_NODES)),
          (w.index % TREE_CHUNK_NODES) * HASH_SIZE,
          w.bytes,
        );
      }
      if (plan.head) tx.hset(k.head, 'size', plan.head.size, 'hash', plan.head.hash);
      for (const c of plan.checkpoints) tx.zadd(k.checkpoints, c.size, c.note);
      const replies = await tx.exec();
      if (replies === null) return false;
      for (const [err] of replies) if (err) throw err;
      return true;
    } catch (err) {
      await this.redis.unwatch().catch(() => undefined);
      throw err;
    }
  }

  /** Checkpoints with size in [min, max], ascending. */
  async readCheckpoints(
    tenant: string,
    min = 0,
    max = Number.MAX_SAFE_INTEGER,
  ): Promise<CheckpointEntry[]> {
    const flat = await this.redis.zrangebyscore(
      this.keys(tenant).checkpoints,
      min,
      max,
      'WITHSCORES',
    );
    const out: CheckpointEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      out.push({ note: flat[i] as string, size: Number(flat[i + 1]) });
    }
    return out;
  }
}

export function parseRecordHead(value: string): RecordHead {
  const at = value.indexOf(':');
  return { seq: Number(value.slice(0, at)), hash: value.slice(at + 1) };
}

/**
 * Groups new tree nodes into contiguous runs per level and chunk: one SETRANGE each.
 * `nodes` must be sorted by level, then index.
 */
export function groupTreeWrites(
  nodes: readonly { level: number; index: number; hash: Uint8Array }[],
): TreeWrite[] {
  const out: TreeWrite[] = [];
  let run: { level: number; index: number; parts: Uint8Array[] } | undefined;
  const flush = () => {
    if (run) out.push({ level: run.level, index: run.index, bytes: Buffer.concat(run.parts) });
  };
  for (const n of nodes) {
    const sameRun =
      run &&
      run.level === n.level &&
      run.index + run.parts.length === n.index &&
      Math.floor(n.index / TREE_CHUNK_NODES) === Math.floor(run.index / TREE_CHUNK_NODES);
    if (sameRun && run) {
      run.parts.push(n.hash);
    } else {
      flush();
      run = { level: n.level, index: n.index, parts: [n.hash] };
    }
  }
  flush();
  return out;
}

/** A stored `frozen` JSON; a value that does not parse still means frozen. */
function parseFrozen(text: string): FrozenState {
  try {
    return JSON.parse(text) as FrozenState;
  } catch {
    return { reason: 'frozen (unreadable state)', at: '', by: 'unknown' };
  }
}

/** The GETRANGE reads (key, first and last byte) of each tree level 0..topLevel over [start, end). */
function segmentTreeReads(
  k: LedgerKeys,
  start: number,
  end: number,
  topLevel: number,
): { key: string; from: number; to: number }[][] {
  const levels: { key: string; from: number; to: number }[][] = [];
  for (let level = 0; level <= topLevel; level++) {
    const from = start / 2 ** level;
    const to = Math.floor(end / 2 ** level);
    const reads: { key: string; from: number; to: number }[] = [];
    for (let i = from; i < to;) {
      const chunk = Math.floor(i / TREE_CHUNK_NODES);
      const stop = Math.min(to, (chunk + 1) * TREE_CHUNK_NODES);
      const offset = (i % TREE_CHUNK_NODES) * HASH_SIZE;
      reads.push({
        key: k.treeChunk(level, chunk),
        from: offset,
        to: offset + (stop - i) * HASH_SIZE - 1,
      });
      i = stop;
    }
    levels.push(reads);
  }
  return levels;
}

/** One buffer per level from the replies to segmentTreeReads, in order. */
function joinLevels(reads: readonly unknown[][], replies: readonly Buffer[]): Buffer[] {
  const levels: Buffer[] = [];
  let at = 0;
  for (const level of reads) {
    const parts = replies.slice(at, at + level.length);
    levels.push(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
    at += level.length;
  }
  return levels;
}

/**
 * RedisLedgerStore.readSegmentWithTree through a PackedReader (verify workers): the segment's
 * blocks arrive in one buffer, with no object per block (redis/packed-reader.ts says why).
 */
export async function readSegmentWithTreePacked(
  reader: PackedReader,
  tenant: string,
  n: number,
  start: number,
  end: number,
  topLevel: number,
): Promise<{ blocks: PackedBlocks; levels: Buffer[]; release: () => void }> {
  const k = new LedgerKeys(tenant);
  const reads = segmentTreeReads(k, start, end, topLevel);
  const commands: (string | number)[][] = [['LRANGE', k.segment(n), 0, -1]];
  for (const level of reads)
    for (const r of level) commands.push(['GETRANGE', r.key, r.from, r.to]);
  const replies = await reader.read(commands);
  const [list, ...ranges] = replies;
  const blocks = list as PackedReply;
  return {
    blocks: { data: blocks.data, ends: blocks.ends },
    levels: joinLevels(
      reads,
      ranges.map((r) => r.data),
    ),
    release: () => reader.release(replies),
  };
}
