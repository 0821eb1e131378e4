/**
 * Full verification of the long chain with Ledger.verify(tenant), and incremental verification of
 * its last 1 % from the state a full verification returned (verify({ from })).
 *
 * Raw baseline, same run, interleaved with the verifications: read the same stored block bytes
 * segment by segment — the same LRANGE of `cl:{t}:blk:<n>` lists, with the verifier's prefetch
 * depth — and SHA-256 each block (RFC 6962 leaf hash, node:crypto). A second baseline adds the
 * verifier's tree-level reads (GETRANGE of levels 0..10 per segment), a third the node hashes up
 * each segment's subtree (one per block, which the RFC 6962 root needs). Two more read the
 * segments through PackedReader, as the pool's workers do, and hash them per block or in one
 * batch call. CPU-only figures on segments already in memory split the rest: hashing,
 * JSON.parse, and verifySegment as a whole.
 */
import { HASH_SIZE, leafHash, nodeHash } from '../src/ledger/hash.js';
import { batchHashBackend, batchHasher, jsBatchHasher } from '../src/ledger/batch-hash.js';
import type { BatchHasher } from '../src/ledger/batch-hash.js';
import { LedgerKeys, SEGMENT_SIZE } from '../src/ledger/keys.js';
import { PackedReader } from '../src/redis/packed-reader.js';
import type { PackedReply } from '../src/redis/packed-reader.js';
import type { RedisLedgerStore } from '../src/ledger/store.js';
import { verifySegment } from '../src/ledger/verifier.js';
import { packBlocks } from '../src/ledger/packed-blocks.js';
import type { PackedBlocks } from '../src/ledger/packed-blocks.js';
import type { VerifyResult } from '../src/ledger/verifier.js';
import { cpuRates, median, measureUsage, progress, sink } from './lib.js';
import { availableParallelism } from 'node:os';
import { VerifyPool } from '../src/ledger/verify-pool.js';
import { createVerifier } from '../src/ledger/ledger.js';
import type { Bench, Usage } from './lib.js';

/** ChainVerifier's default read-ahead (VerifyOptions.prefetch). */
const VERIFIER_PREFETCH = 4;
const SEGMENT_LEVEL = Math.log2(SEGMENT_SIZE);
const TARGET_BLOCKS_PER_S = 200_000;
const TARGET_RATIO_RAW = 0.7;

/**
 * Reads segments [firstSeg, ceil(size/SEGMENT_SIZE)) as the verifier does and leaf-hashes each
 * block; with `tree`, also reads the stored tree levels over each segment; with `nodes`, also
 * hashes each segment's leaf hashes up to its root (one node hash per block: the hashing a full
 * verification cannot skip, since the RFC 6962 root needs every interior node).
 */
async function readAndHash(
  store: RedisLedgerStore,
  tenant: string,
  size: number,
  firstSeg: number,
  withTree: boolean,
  withNodes = false,
  batch = false,
): Promise<number> {
  const segCount = Math.ceil(size / SEGMENT_SIZE);
  const load = async (s: number): Promise<Buffer[]> => {
    const blocks = store.readSegment(tenant, s, 0);
    if (withTree) {
      const start = s * SEGMENT_SIZE;
      const end = Math.min(size, start + SEGMENT_SIZE);
      const levels: Promise<Buffer>[] = [];
      for (let level = 0; level <= SEGMENT_LEVEL; level++) {
        levels.push(
          store.readTreeRange(tenant, level, start / 2 ** level, Math.floor(end / 2 ** level)),
        );
      }
      await Promise.all(levels);
    }
    return blocks;
  };
  const inflight: Promise<Buffer[]>[] = [];
  for (let s = firstSeg; s < Math.min(segCount, firstSeg + VERIFIER_PREFETCH); s++) {
    inflight.push(load(s));
  }
  let hashed = 0;
  for (let s = firstSeg; s < segCount; s++) {
    const blocks = await (inflight.shift() as Promise<Buffer[]>);
    if (s + VERIFIER_PREFETCH < segCount) inflight.push(load(s + VERIFIER_PREFETCH));
    if (withNodes) {
      let level = blocks.map((b) => leafHash(b));
      while (level.length > 1) {
        const up: Uint8Array[] = [];
        for (let i = 0; i + 1 < level.length; i += 2) {
          up.push(nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array));
        }
        if (level.length % 2 === 1) up.push(level[level.length - 1] as Uint8Array);
        level = up;
      }
      if (level[0]) sink(level[0]);
    } else if (batch) {
      batchLeafHashes(blocks);
    } else {
      for (const b of blocks) sink(leafHash(b));
    }
    hashed += blocks.length;
  }
  return hashed;
}

/**
 * The issue's raw baseline read through the verifier's reader (redis/packed-reader.ts): the
 * segments' LRANGE replies packed one buffer each, with the same prefetch, then SHA-256 of each
 * block (node:crypto, one call per block) or, with `batch`, one batch call per segment.
 */
async function readPackedAndHash(
  reader: PackedReader,
  tenant: string,
  size: number,
  batch: boolean,
): Promise<number> {
  const segCount = Math.ceil(size / SEGMENT_SIZE);
  const keys = new LedgerKeys(tenant);
  const load = async (s: number) =>
    (await reader.read([['LRANGE', keys.segment(s), 0, -1]]))[0] as PackedReply;
  const inflight: Promise<PackedReply>[] = [];
  for (let s = 0; s < Math.min(segCount, VERIFIER_PREFETCH); s++) inflight.push(load(s));
  let hashed = 0;
  for (let s = 0; s < segCount; s++) {
    const reply = await (inflight.shift() as Promise<PackedReply>);
    const { data, ends } = reply;
    if (s + VERIFIER_PREFETCH < segCount) inflight.push(load(s + VERIFIER_PREFETCH));
    if (batch) {
      const out = Buffer.allocUnsafe(ends.length * HASH_SIZE);
      batchHasher.leafHashesPacked(data, ends, out);
      sink(out);
    } else {
      for (let i = 0; i < ends.length; i++) {
        sink(leafHash(data.subarray(i === 0 ? 0 : ends[i - 1], ends[i])));
      }
    }
    hashed += ends.length;
    reader.release([reply]); // as the verifier's workers do
  }
  return hashed;
}

/** The leaf hashes of one segment's blocks in one call of the verifier's batch hasher. */
function batchLeafHashes(blocks: readonly Buffer[]): void {
  const out = Buffer.allocUnsafe(blocks.length * HASH_SIZE);
  batchHasher.leafHashes(blocks, out);
  sink(out);
}

export const verifyBench: Bench = {
  name: 'verify',
  description: 'Ledger.verify blocks/s on the 1M chain (full, incremental 1%) vs read+SHA-256',
  async run(ctx) {
    const fx = await ctx.chain();
    // Five interleaved rounds in a full run: the raw rate alone moves ±20 % between rounds here.
    const reps = ctx.quick ? 3 : 5;
    // One thread reading its segments through a PackedReader, as the service and the CLI do.
    const reader = new PackedReader(ctx.url);
    const trust = { verifiers: fx.ledger.verifiers, origin: fx.ledger.originFor(fx.tenant) };
    const verifier = createVerifier(fx.store, fx.tenant, trust, undefined, reader);
    // The same verification with segments checked in worker threads (one per core).
    const pool = new VerifyPool({ redisUrl: ctx.url, workers: availableParallelism() });
    const pooled = createVerifier(fx.store, fx.tenant, trust, pool);
    const full: {
      verify: number[];
      pooled: number[];
      raw: number[];
      rawTree: number[];
      rawNodes: number[];
      rawBatch: number[];
      rawPacked: number[];
      rawPackedBatch: number[];
    } = {
      verify: [],
      pooled: [],
      raw: [],
      rawTree: [],
      rawNodes: [],
      rawBatch: [],
      rawPacked: [],
      rawPackedBatch: [],
    };
    const usages: Usage[] = [];
    let result: VerifyResult | undefined;
    for (let r = 0; r < reps; r++) {
      const raw = await measureUsage(ctx.admin, () =>
        readAndHash(fx.store, fx.tenant, fx.size, 0, false),
      );
      if (raw.result !== fx.size) throw new Error(`raw pass read ${raw.result} blocks`);
      full.raw.push(fx.size / raw.usage.wallS);
      const v = await measureUsage(ctx.admin, () => verifier.verify());
      result = v.result;
      if (!result.ok) throw new Error(`chain does not verify: ${result.code} ${result.reason}`);
      full.verify.push(fx.size / v.usage.wallS);
      usages.push(v.usage);
      const p = await measureUsage(ctx.admin, () => pooled.verify());
      if (!p.result.ok) throw new Error(`pooled verify failed: ${p.result.code}`);
      full.pooled.push(fx.size / p.usage.wallS);
      const rawTree = await measureUsage(ctx.admin, () =>
        readAndHash(fx.store, fx.tenant, fx.size, 0, true),
      );
      full.rawTree.push(fx.size / rawTree.usage.wallS);
      const rawNodes = await measureUsage(ctx.admin, () =>
        readAndHash(fx.store, fx.tenant, fx.size, 0, false, true),
      );
      full.rawNodes.push(fx.size / rawNodes.usage.wallS);
      const rawBatch = await measureUsage(ctx.admin, () =>
        readAndHash(fx.store, fx.tenant, fx.size, 0, false, false, true),
      );
      full.rawBatch.push(fx.size / rawBatch.usage.wallS);
      const rawPacked = await measureUsage(ctx.admin, () =>
        readPackedAndHash(reader, fx.tenant, fx.size, false),
      );
      if (rawPacked.result !== fx.size) throw new Error(`packed pass read ${rawPacked.result}`);
      full.rawPacked.push(fx.size / rawPacked.usage.wallS);
      const rawPackedBatch = await measureUsage(ctx.admin, () =>
        readPackedAndHash(reader, fx.tenant, fx.size, true),
      );
      full.rawPackedBatch.push(fx.size / rawPackedBatch.usage.wallS);
      const k = (x: number[]) => `${Math.round((x.at(-1) ?? 0) / 1000)}k`;
      progress(
        `verify rep ${r + 1}/${reps}: raw ${k(full.raw)}, one thread ${k(full.verify)}, pool ${k(full.pooled)}, packed raw ${k(full.rawPacked)} blocks/s`,
      );
    }

    // Incremental: from the state of the full verification at 99 %.
    const firstSeg = Math.floor(fx.state99.size / SEGMENT_SIZE);
    const incr: { verify: number[]; raw: number[]; seconds: number[] } = {
      verify: [],
      raw: [],
      seconds: [],
    };
    let reverified = 0;
    for (let r = 0; r < reps; r++) {
      const raw = await measureUsage(ctx.admin, () =>
        readAndHash(fx.store, fx.tenant, fx.size, firstSeg, false),
      );
      const v = await measureUsage(ctx.admin, () => verifier.verify({ from: fx.state99 }));
      if (!v.result.ok) throw new Error(`incremental verify failed: ${v.result.code}`);
      reverified = fx.size - v.result.from;
      incr.raw.push(raw.result / raw.usage.wallS);
      incr.verify.push(reverified / v.usage.wallS);
      incr.seconds.push(v.usage.wallS);
    }
    reader.close();

    // CPU only, on segments already in memory.
    const segs: { start: number; blocks: Buffer[]; packed: PackedBlocks; levels: Buffer[] }[] = [];
    const sampleSegs = Math.min(8, Math.floor(fx.size / SEGMENT_SIZE));
    for (let i = 0; i < sampleSegs; i++) {
      const s = Math.floor((i * (fx.size / SEGMENT_SIZE - 1)) / Math.max(1, sampleSegs - 1));
      const start = s * SEGMENT_SIZE;
      const levels: Buffer[] = [];
      for (let level = 0; level <= SEGMENT_LEVEL; level++) {
        levels.push(
          await fx.store.readTreeRange(
            fx.tenant,
            level,
            start / 2 ** level,
            (start + SEGMENT_SIZE) / 2 ** level,
          ),
        );
      }
      const blocks = await fx.store.readSegment(fx.tenant, s, 0);
      segs.push({ start, blocks, packed: packBlocks(blocks), levels });
    }
    const perRound = sampleSegs * SEGMENT_SIZE;
    const checkSegments = (hasher: BatchHasher) => {
      for (const s of segs) {
        const r = verifySegment(fx.tenant, s.start, SEGMENT_SIZE, s.packed, s.levels, hasher);
        if (r.failure) throw new Error(`sample segment fails: ${r.failure.code}`);
      }
    };
    const cpu = cpuRates(
      {
        hash: () => {
          for (const s of segs) for (const b of s.blocks) sink(leafHash(b));
        },
        parse: () => {
          for (const s of segs) {
            for (const b of s.blocks) sink(JSON.parse(b.toString('utf8')) as object);
          }
        },
        batchHash: () => {
          for (const s of segs) batchLeafHashes(s.blocks);
        },
        segment: () => checkSegments(batchHasher),
        segmentJs: () => checkSegments(jsBatchHasher),
      },
      ctx.quick ? { minMs: 200, reps: 3 } : { minMs: 500, reps: 5 },
    );

    await pool.close();
    const single = median(full.verify);
    const value = Math.max(single, median(full.pooled));
    const raw = median(full.raw);
    const t = ctx.report(
      `verification of a ${fx.size.toLocaleString('en-US')}-block chain (${fx.records.toLocaleString('en-US')} records; blocks/s; median of ${reps}, interleaved with the baselines)`,
    );
    t.add({
      key: 'full_verify_single_thread_blocks_per_s',
      figure: 'Ledger.verify(tenant), full, one thread (PackedReader, as the service)',
      value: single,
      unit: 'blocks/s',
      baseline: 'LRANGE + SHA-256 (prefetch 4)',
      baselineValue: raw,
    });
    t.add({
      key: 'full_verify_pool_blocks_per_s',
      figure: `Ledger.verify(tenant), full, pool of ${availableParallelism()} worker threads`,
      value: median(full.pooled),
      unit: 'blocks/s',
      baseline: 'LRANGE + SHA-256 (prefetch 4)',
      baselineValue: raw,
    });
    t.add({
      key: 'full_verify_blocks_per_s',
      figure: 'Ledger.verify(tenant), full, the faster of the two',
      value,
      unit: 'blocks/s',
      baseline: 'LRANGE + SHA-256 (prefetch 4)',
      baselineValue: raw,
      target: `>= ${TARGET_BLOCKS_PER_S.toLocaleString('en-US')}/s, >= ${TARGET_RATIO_RAW}x`,
      met: value >= TARGET_BLOCKS_PER_S && value / raw >= TARGET_RATIO_RAW,
    });
    // Each round measures the raw read and the verifications seconds apart: their ratio within a
    // round cancels the machine's slower drifts, which the ratio of medians above does not.
    const pairedRatios = full.raw.map(
      (r, i) => Math.max(full.verify[i] as number, full.pooled[i] as number) / r,
    );
    t.add({
      key: 'full_verify_paired_ratio',
      figure: `the same, median of the ${reps} rounds' own ratios (${pairedRatios.map((x) => x.toFixed(2)).join(', ')})`,
      value: median(pairedRatios),
      unit: 'x',
      baseline: 'LRANGE + SHA-256, same round',
      baselineValue: 1,
    });
    t.add({
      key: 'full_verify_seconds',
      figure: 'Ledger.verify(tenant), full: time',
      value: fx.size / value,
      unit: 's',
      baseline: 'LRANGE + SHA-256',
      baselineValue: fx.size / raw,
    });
    t.add({
      key: 'full_verify_vs_mandatory_hashing',
      figure: 'Ledger.verify(tenant), full, the faster of the two (from above)',
      value,
      unit: 'blocks/s',
      baseline: 'LRANGE + leaf hash + 1 node hash per block',
      baselineValue: median(full.rawNodes),
    });
    t.add({
      key: 'full_verify_vs_batch_hash_baseline',
      figure: 'Ledger.verify(tenant), full, the faster of the two (from above)',
      value,
      unit: 'blocks/s',
      baseline: `LRANGE + SHA-256, one ${batchHashBackend.name} batch call per segment`,
      baselineValue: median(full.rawBatch),
    });
    t.add({
      key: 'full_verify_vs_packed_reader_baseline',
      figure: 'Ledger.verify(tenant), full, the faster of the two (from above)',
      value,
      unit: 'blocks/s',
      baseline: "LRANGE via the verifier's PackedReader + SHA-256",
      baselineValue: median(full.rawPacked),
    });
    t.add({
      key: 'full_verify_vs_packed_batch_baseline',
      figure: 'Ledger.verify(tenant), full, the faster of the two (from above)',
      value,
      unit: 'blocks/s',
      baseline: `PackedReader LRANGE + one ${batchHashBackend.name} batch call per segment`,
      baselineValue: median(full.rawPackedBatch),
    });
    t.add({
      key: 'raw_with_tree_reads_blocks_per_s',
      figure: 'baseline + tree-level reads (verifier I/O)',
      value: median(full.rawTree),
      unit: 'blocks/s',
      baseline: 'LRANGE + SHA-256',
      baselineValue: raw,
    });
    t.add({
      key: 'incremental_verify_blocks_per_s',
      figure: `verify({from}) last 1% (${reverified.toLocaleString('en-US')} blocks re-verified)`,
      value: median(incr.verify),
      unit: 'blocks/s',
      baseline: 'LRANGE + SHA-256 of them',
      baselineValue: median(incr.raw),
    });
    t.add({
      key: 'incremental_verify_ms',
      figure: 'verify({from}) last 1%: time',
      value: median(incr.seconds) * 1000,
      unit: 'ms',
      baseline: 'full verify',
      baselineValue: (fx.size / value) * 1000,
    });
    const mu = usages[Math.floor(usages.length / 2)] as Usage;
    t.add({
      key: 'full_verify_util',
      figure: 'full verify: Node / Redis utilisation',
      value: (mu.nodeCpuS / mu.wallS) * 100,
      unit: '% node',
      baseline: '% redis',
      baselineValue: (mu.redisCpuS / mu.wallS) * 100,
    });
    const b = fx.build;
    t.add({
      key: 'chain_build_blocks_per_s',
      figure: `chain build: Ledger.append batch ${b.batch}, window ${b.window}`,
      value: b.blocks / b.usage.wallS,
      unit: 'blocks/s',
    });
    t.note(
      `chain build: ${b.usage.wallS.toFixed(1)} s wall, Node ${((b.usage.nodeCpuS / b.usage.wallS) * 100).toFixed(0)} % / Redis ${((b.usage.redisCpuS / b.usage.wallS) * 100).toFixed(0)} % of a core, Lua ${(b.usage.scriptUsec / b.blocks).toFixed(1)} µs/block.`,
    );
    t.note(
      "the target is judged against LRANGE + SHA-256 (the issue's raw baseline: ioredis, node:crypto per block); LRANGE + leaf hash + 1 node hash per block adds the interior node hashes the RFC 6962 root needs, which no full verification can skip.",
    );
    t.note(
      'pool workers read segments through PackedReader (one buffer per segment, no object per block); the two PackedReader baselines read the same way, as the fastest raw reads this bench knows.',
    );
    t.note(
      `the verifier hashes segments with the ${batchHashBackend.name} batch hasher (${batchHashBackend.detail}); the "one batch call per segment" baseline hashes the same way.`,
    );
    t.note(
      `the incremental run starts at segment ${firstSeg} (block ${firstSeg * SEGMENT_SIZE}); it also proves the link of each record whose previous block predates it.`,
    );

    const c = ctx.report(
      `verification CPU only, ${sampleSegs} segments already in memory (blocks/s, one core; ratio to leaf hashing alone)`,
    );
    c.add({
      key: 'cpu_leaf_hash_blocks_per_s',
      figure: 'RFC 6962 leaf hash (node:crypto)',
      value: cpu.hash * perRound,
      unit: 'blocks/s',
    });
    c.add({
      key: 'cpu_batch_leaf_hash_blocks_per_s',
      figure: `RFC 6962 leaf hash (${batchHashBackend.name}, one call per segment)`,
      value: cpu.batchHash * perRound,
      unit: 'blocks/s',
      baseline: 'leaf hash',
      baselineValue: cpu.hash * perRound,
    });
    c.add({
      key: 'cpu_json_parse_blocks_per_s',
      figure: 'JSON.parse of the block bytes',
      value: cpu.parse * perRound,
      unit: 'blocks/s',
      baseline: 'leaf hash',
      baselineValue: cpu.hash * perRound,
    });
    c.add({
      key: 'cpu_verify_segment_blocks_per_s',
      figure: 'verifySegment (hash, parse, links, tree)',
      value: cpu.segment * perRound,
      unit: 'blocks/s',
      baseline: 'leaf hash',
      baselineValue: cpu.hash * perRound,
    });
    c.add({
      key: 'cpu_verify_segment_js_hasher_blocks_per_s',
      figure: 'verifySegment with the node:crypto hasher',
      value: cpu.segmentJs * perRound,
      unit: 'blocks/s',
      baseline: 'leaf hash',
      baselineValue: cpu.hash * perRound,
    });
    c.add({
      key: 'full_verify_vs_cpu_only',
      figure: 'Ledger.verify, full (from above)',
      value,
      unit: 'blocks/s',
      baseline: 'verifySegment CPU only',
      baselineValue: cpu.segment * perRound,
    });
  },
};
