/**
 * Append throughput through the real Ledger.append — validation, canonicalisation, field
 * commitments, vault sealing (per-record data keys), hashing, the compare-and-set Lua script and
 * checkpoint signing all included — with
 * batches of 1, 16 and 128 changes, strictly sequential (await each) and pipelined the way the
 * anchor worker drives it (a window of appends in flight to one tenant).
 *
 * Baselines, same run:
 * - toy Lua append (bench/toyAppend-2.lua) of the same pre-built block bytes, same batch size and
 *   concurrency: what Redis alone costs for the bytes we store;
 * - raw CPU: RFC 8785 canonicalize + SHA-256 of the same ~1 KB block, single core, node:crypto and
 *   @noble/hashes: what the unavoidable per-block hashing costs.
 * Toy and ledger runs are interleaved, repetition by repetition.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import type { AnchorRequest } from '../src/ledger/block.js';
import { buildBlock, prepareChange } from '../src/ledger/block.js';
import { canonicalize } from '../src/ledger/canonical.js';
import { leafHash, sha256, ZERO_HASH_HEX } from '../src/ledger/hash.js';
import { StaticKeyWrapper } from '../src/vault/key-wrapper.js';
import { RecordVault } from '../src/vault/vault.js';
import { contactChange, createTestLedger } from '../test/helpers/ledger.js';
import { benchTenant } from './chain.js';
import { cpuRates, createRng, measureUsage, median, runWindow, sink } from './lib.js';
import type { Bench, Usage } from './lib.js';
import { ANCHORED_AT, SAMPLE_TENANT, sampleBlock, sampleBlocks } from './samples.js';

const BATCH_SIZES = [1, 16, 128] as const;
type BatchSize = (typeof BATCH_SIZES)[number];
/** records per tenant the append runs draw from (so record links are exercised) */
const RECORDS = 10_000;
const TARGET_BLOCKS_PER_S = 30_000;
const TARGET_RATIO_TOY = 0.5;

/** Blocks per timed repetition: [sequential, windowed]. Sized for a few seconds each (full). */
const SIZES: Record<'quick' | 'full', Record<BatchSize, [number, number]>> = {
  quick: { 1: [150, 400], 16: [1_600, 3_200], 128: [6_400, 12_800] },
  full: { 1: [1_000, 3_000], 16: [12_000, 24_000], 128: [48_000, 64_000] },
};

type ToyCommand = (list: string, idem: string, ...args: string[]) => Promise<unknown>;

interface RunResult {
  blocksPerS: number;
  usage: Usage;
  blocks: number;
}

export const appendBench: Bench = {
  name: 'append',
  description: 'Ledger.append blocks/s at batch 1/16/128, sequential and pipelined, vs toy Lua',
  async run(ctx) {
    const reps = ctx.quick ? 2 : 3;
    const cpuOpts = ctx.quick ? { minMs: 100, reps: 3 } : { minMs: 400, reps: 5 };

    // Raw CPU baselines: the same ~1 KB block, canonicalized and hashed, one core.
    const { object } = sampleBlock();
    const requests = Array.from({ length: 4096 }, (_, i) =>
      contactChange(SAMPLE_TENANT, `c${i % 64}`),
    );
    let k = 0;
    const cpu = cpuRates(
      {
        node: () => sink(leafHash(Buffer.from(canonicalize(object), 'utf8'), sha256)),
        noble: () => sink(leafHash(Buffer.from(canonicalize(object), 'utf8'), nobleSha256)),
        ledgerBlock: () => {
          const req = requests[k++ & 4095] as AnchorRequest;
          sink(buildBlock(prepareChange(req), 0, ZERO_HASH_HEX, undefined, ANCHORED_AT).hash);
        },
      },
      cpuOpts,
    );

    const toyRedis = ctx.connect();
    toyRedis.defineCommand('benchToyAppendV1', {
      numberOfKeys: 2,
      lua: readFileSync(new URL('./toyAppend-2.lua', import.meta.url), 'utf8'),
    });
    const toy = (toyRedis as unknown as { benchToyAppendV1: ToyCommand }).benchToyAppendV1.bind(
      toyRedis,
    );
    const pool = sampleBlocks(2048, 256).map((b) => b.bytes);
    const ledgerRedis = ctx.connect();
    // With the vault, as main.ts runs the ledger: each block's vault entry is sealed
    // (AES-256-GCM) under its record's data key, created and wrapped on the record's first change.
    const vault = new RecordVault(ledgerRedis, new StaticKeyWrapper([randomBytes(32)]));
    const ledger = createTestLedger(ledgerRedis, undefined, { vault });
    const sizes = SIZES[ctx.quick ? 'quick' : 'full'];

    interface Config {
      batch: BatchSize;
      window: number;
      blocks: number;
      toy: RunResult[];
      ledger: RunResult[];
      checkpoints: number;
    }
    const configs: Config[] = [];
    for (const batch of BATCH_SIZES) {
      for (const window of [1, ctx.window]) {
        const blocks = sizes[batch][window === 1 ? 0 : 1];
        configs.push({ batch, window, blocks, toy: [], ledger: [], checkpoints: 0 });
      }
    }

    let idemCounter = 0;
    for (const c of configs) {
      const tenant = benchTenant(`append-b${c.batch}-w${c.window}`);
      const toyKeys = { list: `bench:toy:{${tenant}}:blocks`, idem: `bench:toy:{${tenant}}:idem` };
      const nBatches = Math.ceil(c.blocks / c.batch);
      const rng = createRng(c.batch * 100 + c.window);

      const toyBatches = (n: number): string[][] =>
        Array.from({ length: n }, () => {
          const args: string[] = [];
          for (let j = 0; j < c.batch; j++) {
            const id = idemCounter++;
            args.push(pool[id % pool.length] as string, id.toString(16).padStart(32, '0'));
          }
          return args;
        });
      // Changes are made as each batch is sent, the way webhook events arrive, from a small pool
      // of templates (a fresh eventId and record each): holding every change of the run in memory
      // first would measure the garbage collector scanning them, not the ledger.
      const templates = Array.from({ length: 256 }, () => contactChange(tenant, 'c0'));
      let made = 0;
      const makeChange = (): AnchorRequest => {
        const t = templates[made % templates.length] as AnchorRequest;
        made += 1;
        return {
          event: {
            ...t.event,
            eventId: `bench-${made}`,
            recordId: `c${Math.floor(rng() * RECORDS)}`,
          },
        };
      };
      const ledgerBatches = (n: number): (() => AnchorRequest[])[] =>
        Array.from({ length: n }, () => () => Array.from({ length: c.batch }, makeChange));
      const runToy = async (batches: string[][]): Promise<RunResult> => {
        const { usage } = await measureUsage(ctx.admin, () =>
          runWindow(batches.length, c.window, (i) =>
            toy(toyKeys.list, toyKeys.idem, ...(batches[i] as string[])),
          ),
        );
        const blocks = batches.length * c.batch;
        return { blocksPerS: blocks / usage.wallS, usage, blocks };
      };
      const runLedger = async (batches: (() => AnchorRequest[])[]): Promise<RunResult> => {
        const { usage } = await measureUsage(ctx.admin, () =>
          runWindow(batches.length, c.window, (i) =>
            ledger.append(tenant, (batches[i] as () => AnchorRequest[])()),
          ),
        );
        const blocks = batches.length * c.batch;
        return { blocksPerS: blocks / usage.wallS, usage, blocks };
      };

      // Warm-up: a few batches each (loads the scripts, warms the JIT on this shape).
      const warm = Math.max(2 * c.window, Math.ceil(256 / c.batch));
      await runToy(toyBatches(warm));
      await runLedger(ledgerBatches(warm));
      const cp0 = await ctx.admin.zcard(ledger.store.keys(tenant).checkpoints);
      for (let r = 0; r < reps; r++) {
        c.toy.push(await runToy(toyBatches(nBatches)));
        c.ledger.push(await runLedger(ledgerBatches(nBatches)));
      }
      c.checkpoints = (await ctx.admin.zcard(ledger.store.keys(tenant).checkpoints)) - cp0;
      const check = await ledger.verify(tenant);
      if (!check.ok) throw new Error(`append bench chain does not verify: ${check.code}`);
    }
    await ctx.admin.flushall();

    const label = (c: Config) =>
      `batch ${String(c.batch).padStart(3)}, ${c.window === 1 ? 'sequential' : `window ${c.window}`}`;
    const keyOf = (c: Config) => `b${c.batch}_${c.window === 1 ? 'seq' : `w${c.window}`}`;
    const mid = (runs: RunResult[]) => median(runs.map((x) => x.blocksPerS));
    /** the repetition whose rate is the median, for its resource figures */
    const midRun = (runs: RunResult[]) => {
      const m = mid(runs);
      return runs.find((x) => x.blocksPerS === m) as RunResult;
    };

    const t = ctx.report(
      `Ledger.append throughput (blocks/s; baseline: toy Lua append of the same pre-built blocks, same batch and concurrency; median of ${reps})`,
    );
    for (const c of configs) {
      const value = mid(c.ledger);
      const base = mid(c.toy);
      const targeted = c.batch === 128;
      t.add({
        key: `${keyOf(c)}_blocks_per_s`,
        figure: `Ledger.append, ${label(c)}`,
        value,
        unit: 'blocks/s',
        baseline: 'toy Lua append',
        baselineValue: base,
        ...(targeted
          ? {
              target: `>= ${TARGET_BLOCKS_PER_S.toLocaleString('en-US')}/s, >= ${TARGET_RATIO_TOY}x`,
              met: value >= TARGET_BLOCKS_PER_S && value / base >= TARGET_RATIO_TOY,
            }
          : {}),
      });
    }
    t.note(
      `"window ${ctx.window}": up to ${ctx.window} Ledger.append calls in flight on one tenant (a new one starts as soon as one resolves); each resolves only once a signed checkpoint covers it.`,
    );

    const raw = ctx.report(
      'raw CPU baselines, single core (ops/s of one ~1 KB block; ledger rows: ratio to canonicalize + SHA-256)',
    );
    raw.add({
      key: 'raw_jcs_sha256_node',
      figure: 'canonicalize + SHA-256 (node:crypto)',
      value: cpu.node,
      unit: 'blocks/s',
    });
    raw.add({
      key: 'raw_jcs_sha256_noble',
      figure: 'canonicalize + SHA-256 (@noble/hashes)',
      value: cpu.noble,
      unit: 'blocks/s',
      baseline: 'node:crypto',
      baselineValue: cpu.node,
    });
    raw.add({
      key: 'ledger_cpu_prepare_build',
      figure: 'prepareChange + buildBlock (no Redis)',
      value: cpu.ledgerBlock,
      unit: 'blocks/s',
      baseline: 'JCS + SHA-256 (node)',
      baselineValue: cpu.node,
    });
    for (const c of configs.filter((x) => x.batch === 128)) {
      raw.add({
        key: `${keyOf(c)}_vs_raw_cpu`,
        figure: `Ledger.append, ${label(c)}`,
        value: mid(c.ledger),
        unit: 'blocks/s',
        baseline: 'JCS + SHA-256 (node)',
        baselineValue: cpu.node,
      });
    }

    const w = ctx.report(
      'where the time goes (median repetition; µs per block; utilisation = CPU s / wall s)',
    );
    for (const c of configs) {
      const l = midRun(c.ledger).usage;
      const y = midRun(c.toy).usage;
      const n = midRun(c.ledger).blocks;
      const ny = midRun(c.toy).blocks;
      w.add({
        key: `${keyOf(c)}_lua_us_per_block`,
        figure: `Redis script time, ${label(c)}`,
        value: l.scriptUsec / n,
        unit: 'µs/block',
        baseline: 'toy script',
        baselineValue: y.scriptUsec / ny,
      });
      w.add({
        key: `${keyOf(c)}_redis_cpu_us_per_block`,
        figure: `Redis CPU, ${label(c)}`,
        value: (l.redisCpuS * 1e6) / n,
        unit: 'µs/block',
        baseline: 'toy',
        baselineValue: (y.redisCpuS * 1e6) / ny,
      });
      w.add({
        key: `${keyOf(c)}_node_cpu_us_per_block`,
        figure: `Node CPU, ${label(c)}`,
        value: (l.nodeCpuS * 1e6) / n,
        unit: 'µs/block',
        baseline: 'toy',
        baselineValue: (y.nodeCpuS * 1e6) / ny,
      });
      w.add({
        key: `${keyOf(c)}_util`,
        figure: `Node / Redis utilisation, ${label(c)}`,
        value: (l.nodeCpuS / l.wallS) * 100,
        unit: '% node',
        baseline: '% redis',
        baselineValue: (l.redisCpuS / l.wallS) * 100,
      });
      w.add({
        key: `${keyOf(c)}_checkpoints_per_1k`,
        figure: `checkpoints signed per 1000 blocks, ${label(c)}`,
        value: (c.checkpoints / (c.ledger.reduce((a, x) => a + x.blocks, 0) || 1)) * 1000,
        unit: 'per 1k',
      });
    }
    w.note(
      `prepareChange + buildBlock alone costs ${(1e6 / cpu.ledgerBlock).toFixed(1)} µs/block of Node CPU; canonicalize + SHA-256 of the block ${(1e6 / cpu.node).toFixed(1)} µs.`,
    );
  },
};
