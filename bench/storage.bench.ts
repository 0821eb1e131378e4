/**
 * Storage per block on the long chain: Redis `MEMORY USAGE … SAMPLES 0` (exact) summed over every
 * key of the tenant (SCAN `cl:{<tenant>}:*`), per key type, divided by the number of blocks; and the
 * `INFO memory` used_memory delta of the whole build per million blocks. The raw baseline is the
 * canonical block itself: the bytes a block must occupy at the very least.
 */
import type { Redis } from 'ioredis';
import { SEGMENT_SIZE } from '../src/ledger/keys.js';
import { createRng } from './lib.js';
import type { Bench } from './lib.js';

type KeyType =
  'blk segments' | 'vault segments' | 'tree chunks' | 'idem' | 'rec lists' | 'head + checkpoints';

function typeOf(suffix: string): KeyType {
  if (suffix.startsWith('blk:')) return 'blk segments';
  if (suffix.startsWith('vault:')) return 'vault segments';
  if (suffix.startsWith('tree:')) return 'tree chunks';
  if (suffix === 'idem') return 'idem';
  if (suffix.startsWith('rec:')) return 'rec lists';
  return 'head + checkpoints';
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** `*`, `?`, `[`, `]` and `\` are glob characters in SCAN MATCH; tenant ids hold none, but escape. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

export const storageBench: Bench = {
  name: 'storage',
  aliases: ['memory'],
  description: 'bytes per stored block by key type (MEMORY USAGE) and used_memory per 1M blocks',
  async run(ctx) {
    const fx = await ctx.chain();
    const prefix = fx.store.keys(fx.tenant).prefix;
    const keys = await scanKeys(ctx.admin, `${globEscape(prefix)}*`);
    const bytes = new Map<KeyType, { bytes: number; keys: number }>();
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      const pipe = ctx.admin.pipeline();
      for (const k of chunk) pipe.memory('USAGE', k, 'SAMPLES', 0);
      const replies = (await pipe.exec()) ?? [];
      chunk.forEach((k, j) => {
        const [err, value] = replies[j] ?? [];
        if (err) throw err;
        const type = typeOf(k.slice(prefix.length));
        const e = bytes.get(type) ?? { bytes: 0, keys: 0 };
        e.bytes += Number(value ?? 0);
        e.keys += 1;
        bytes.set(type, e);
      });
    }

    // Canonical block size (the baseline) and vault entry size: exact over sampled segments.
    const rng = createRng(3);
    const segCount = Math.floor(fx.size / SEGMENT_SIZE);
    let blockBytes = 0;
    let blockCount = 0;
    for (let i = 0; i < Math.min(32, segCount); i++) {
      const seg = await fx.store.readSegment(fx.tenant, Math.floor(rng() * segCount), 0);
      for (const b of seg) blockBytes += b.length;
      blockCount += seg.length;
    }
    const canonical = blockBytes / blockCount;
    let vaultBytes = 0;
    let vaultCount = 0;
    for (let i = 0; i < 200; i++) {
      const rec = await fx.store.readRecord(
        fx.tenant,
        `contact/c${Math.floor(rng() * fx.records)}`,
      );
      const entries = await fx.store.readVaultEntries(
        fx.tenant,
        rec.map((e) => e.seq),
      );
      for (const v of entries) vaultBytes += Buffer.byteLength(v ?? '');
      vaultCount += entries.length;
    }
    const checkpoints = await ctx.admin.zcard(fx.store.keys(fx.tenant).checkpoints);

    const total = [...bytes.values()].reduce((a, e) => a + e.bytes, 0);
    const t = ctx.report(
      `storage of the ${fx.size.toLocaleString('en-US')}-block chain (bytes per block; baseline: canonical block bytes)`,
    );
    t.add({
      key: 'bytes_per_block_total',
      figure: `MEMORY USAGE, all ${keys.length.toLocaleString('en-US')} tenant keys`,
      value: total / fx.size,
      unit: 'B/block',
      baseline: 'canonical block',
      baselineValue: canonical,
    });
    const order: KeyType[] = [
      'blk segments',
      'vault segments',
      'rec lists',
      'idem',
      'tree chunks',
      'head + checkpoints',
    ];
    for (const type of order) {
      const e = bytes.get(type) ?? { bytes: 0, keys: 0 };
      t.add({
        key: `bytes_per_block_${type.replace(/[^a-z]+/g, '_')}`,
        figure: `  ${type} (${e.keys.toLocaleString('en-US')} keys)`,
        value: e.bytes / fx.size,
        unit: 'B/block',
        baseline: 'canonical block',
        baselineValue: canonical,
      });
    }
    const delta = fx.usedMemoryAfter - fx.usedMemoryBefore;
    t.add({
      key: 'used_memory_per_block',
      figure: 'INFO used_memory delta of the build',
      value: delta / fx.size,
      unit: 'B/block',
      baseline: 'canonical block',
      baselineValue: canonical,
    });
    t.add({
      key: 'used_memory_mb_per_million',
      figure: 'INFO used_memory delta per 1M blocks',
      value: ((delta / fx.size) * 1e6) / 2 ** 20,
      unit: 'MiB/1M',
      baseline: 'canonical blocks',
      baselineValue: (canonical * 1e6) / 2 ** 20,
    });
    t.add({
      key: 'canonical_block_bytes',
      figure: `canonical block (mean of ${blockCount.toLocaleString('en-US')} stored)`,
      value: canonical,
      unit: 'bytes',
    });
    t.add({
      key: 'vault_entry_bytes',
      figure: `vault entry (mean of ${vaultCount.toLocaleString('en-US')})`,
      value: vaultBytes / vaultCount,
      unit: 'bytes',
      baseline: 'canonical block',
      baselineValue: canonical,
    });
    t.note(
      `${checkpoints.toLocaleString('en-US')} signed checkpoints stored (one per coalesced signing during the build); tree: 32 B per node, ~2 nodes per block.`,
    );
  },
};
