/**
 * Online dedupe throughput: `npx tsx bench/dedupe.bench.ts [--quick] [--records N] [--batch N]`.
 *
 * Starts a private redis-server, generates the synthetic customers (bench/dedupe-synth.ts;
 * 100,000 records, 10,000 with --quick) and feeds them one at a time through the Matcher, as the
 * anchor worker would. Prints records/s next to two raw baselines measured in the same run (the
 * sequential Redis round-trip rate, and a plain normalise + block-key loop), p50/p99 latency,
 * the median candidate set, pairwise precision/recall/F1 against the generator's truth, and Redis
 * memory per 100k records (INFO memory, before/after). Figures are printed, never asserted.
 */
import { Redis } from 'ioredis';
import { mapFields } from '../src/dedupe/fields.js';
import { Matcher } from '../src/dedupe/matcher.js';
import { blockKeys, buildProfile } from '../src/dedupe/profile.js';
import { startRedisServer } from '../src/redis/embedded-server.js';
import { generateSynthetic } from './dedupe-synth.js';
import { infoNumber, percentile, sink } from './lib.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const n = Number(arg('--records') ?? (quick ? 10_000 : 100_000));
  // --batch N: N records per matcher call (observeMany), as the anchor worker passes a batch.
  const batch = Math.max(1, Number(arg('--batch') ?? 1));
  const data = generateSynthetic(n, 7);
  const server = await startRedisServer({ persistence: 'none' });
  const redis = new Redis(server.url, { maxRetriesPerRequest: 3 });
  try {
    // Baseline 1: sequential round trips (the floor for a matcher that awaits Redis per record).
    const pings = quick ? 5_000 : 20_000;
    let t = process.hrtime.bigint();
    for (let i = 0; i < pings; i++) await redis.ping();
    const rttRate = pings / (Number(process.hrtime.bigint() - t) / 1e9);

    // Baseline 2: normalise + block keys only (CPU floor, no Redis).
    const sample = data.records.slice(0, Math.min(20_000, n));
    t = process.hrtime.bigint();
    for (const r of sample) {
      sink(
        blockKeys(buildProfile(mapFields(r, 'person'), 'person', { defaultCountry: 'AU' })).length,
      );
    }
    const normaliseRate = sample.length / (Number(process.hrtime.bigint() - t) / 1e9);

    const memBefore = infoNumber(await redis.info('memory'), 'used_memory');
    const cpuBefore = await redisCpuSeconds(redis);
    await redis.config('RESETSTAT');
    const matcher = new Matcher({ redis, space: 'bench', defaultCountry: 'AU' });
    const latencies: number[] = [];
    const candidates: number[] = [];
    const pairs = new Set<string>();
    let tp = 0;
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    for (let at = 0; at < data.records.length; at += batch) {
      const t0 = process.hrtime.bigint();
      const changes = data.records.slice(at, at + batch).map(({ id, ...fields }) => ({
        tenant: 'hubspot:1',
        object: 'contact',
        id,
        kind: 'create',
        fields,
        changeKey: `bench|${id}`,
      }));
      const observations =
        batch === 1
          ? [await matcher.observeDetailed(changes[0]!)]
          : await matcher.observeManyDetailed(changes);
      // Latency of a record: the time of the call that judged it (its batch).
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      observations.forEach((obs, j) => {
        const id = changes[j]!.id;
        latencies.push(ms);
        candidates.push(obs.candidates.length);
        for (const m of obs.matches) {
          const key = m.id < id ? `${m.id},${id}` : `${id},${m.id}`;
          if (pairs.has(key)) continue;
          pairs.add(key);
          if (data.entityOf.get(m.id) === data.entityOf.get(id)) tp++;
        }
      });
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    const nodeCpuUs = (cpu.user + cpu.system) / n;
    const redisCpuMs = ((await redisCpuSeconds(redis)) - cpuBefore) * 1000;
    const scriptUsec = await scriptUsecByCall(redis);
    const memAfter = infoNumber(await redis.info('memory'), 'used_memory');
    const usage = await memoryUsageByKind(redis, matcher.index.keys.prefix);

    const sizes = new Map<number, number>();
    for (const e of data.entityOf.values()) sizes.set(e, (sizes.get(e) ?? 0) + 1);
    let truePairs = 0;
    for (const s of sizes.values()) truePairs += (s * (s - 1)) / 2;
    const precision = pairs.size === 0 ? 1 : tp / pairs.size;
    const recall = truePairs === 0 ? 1 : tp / truePairs;
    const f1 = (2 * precision * recall) / (precision + recall);
    const rate = n / seconds;
    const bytesPerRecord = (memAfter - memBefore) / n;
    const lines = [
      `dedupe online bench: ${n} synthetic records, ${batch === 1 ? 'one at a time' : `${batch} per matcher call (observeMany)`} (private redis-server)`,
      `  matcher            ${rate.toFixed(0)} records/s  p50 ${percentile(latencies, 50).toFixed(2)} ms  p99 ${percentile(latencies, 99).toFixed(2)} ms  median candidates ${percentile(candidates, 50)}  p99 candidates ${percentile(candidates, 99)}`,
      `  cpu per record     this process ${nodeCpuUs.toFixed(0)} µs + redis-server ${((redisCpuMs * 1000) / n).toFixed(0)} µs (INFO cpu); scripts ${(scriptUsec.total / n).toFixed(0)} µs/record over ${(scriptUsec.calls / n).toFixed(2)} calls/record (INFO commandstats)`,
      `  baseline redis RTT ${rttRate.toFixed(0)} round trips/s   ratio matcher/RTT ${(rate / rttRate).toFixed(3)}`,
      `  baseline normalise ${normaliseRate.toFixed(0)} records/s (normalise + block keys, no Redis)`,
      `  quality            precision ${precision.toFixed(4)}  recall ${recall.toFixed(4)}  F1 ${f1.toFixed(4)}  (${pairs.size} pairs judged, ${truePairs} true)`,
      `  redis memory       ${bytesPerRecord.toFixed(0)} B/record = ${((bytesPerRecord * 100_000) / 2 ** 20).toFixed(1)} MiB per 100k records (INFO used_memory, after - before)`,
      `  MEMORY USAGE       ${(usage.total / n).toFixed(0)} B/record: ${[...usage.byKind].map(([k, b]) => `${k} ${(b / n).toFixed(0)}`).join(', ')} (${usage.keys} keys)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    process.stdout.write(
      `BENCH_SUMMARY ${JSON.stringify({ dedupe: { records: n, batch, recordsPerSecond: rate, p99Ms: percentile(latencies, 99), medianCandidates: percentile(candidates, 50), rttRate, normaliseRate, nodeCpuUsPerRecord: nodeCpuUs, redisCpuUsPerRecord: (redisCpuMs * 1000) / n, scriptUsPerRecord: scriptUsec.total / n, precision, recall, f1, bytesPer100k: bytesPerRecord * 100_000, memoryUsagePerRecord: usage.total / n } })}\n`,
    );
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

/** Seconds of CPU the redis-server used so far (user + sys). */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  return infoNumber(info, 'used_cpu_user') + infoNumber(info, 'used_cpu_sys');
}

/** Script time and calls since the last CONFIG RESETSTAT (EVALSHA and EVAL). */
async function scriptUsecByCall(redis: Redis): Promise<{ total: number; calls: number }> {
  const info = await redis.info('commandstats');
  let total = 0;
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+)/gm)) {
    calls += Number(m[2]);
    total += Number(m[3]);
  }
  return { total, calls };
}

/** MEMORY USAGE of every key of the space, summed by kind (prof, ids, pairs, blocks…). */
async function memoryUsageByKind(
  redis: Redis,
  prefix: string,
): Promise<{ total: number; keys: number; byKind: Map<string, number> }> {
  const byKind = new Map<string, number>();
  let total = 0;
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of batch) pipeline.memory('USAGE', key, 'SAMPLES', '0');
    const replies = (await pipeline.exec()) ?? [];
    batch.forEach((key, i) => {
      const bytes = Number(replies[i]?.[1] ?? 0);
      const rest = key.slice(prefix.length);
      const kind = rest.startsWith('b:') ? 'blocks' : rest.split(':')[0] || rest;
      byKind.set(kind, (byKind.get(kind) ?? 0) + bytes);
      total += bytes;
      keys++;
    });
  } while (cursor !== '0');
  return { total, keys, byKind };
}

await main();
