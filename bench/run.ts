/**
 * Benchmark driver: `npm run bench [-- [--quick] [--window N] [name …]]`.
 *
 * Starts a private redis-server (persistence off, a free loopback port, never the machine's 6379),
 * runs the selected benches in order, prints one table per bench and, last, one line
 * `BENCH_SUMMARY {…}` with every figure as JSON, then stops the server. Figures are printed, never
 * asserted: see lib.ts for how baselines and ratios keep them meaningful on a noisy machine.
 *
 *   --quick      small sizes (50,000-block chain): a smoke run, well under a minute
 *   --window N   appends in flight per tenant in the pipelined runs (default 8)
 *   name …       run only these benches (default: all, in the order below)
 */
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../src/redis/embedded-server.js';
import { appendBench } from './append.bench.js';
import { buildChain } from './chain.js';
import type { ChainFixture } from './chain.js';
import { evidenceBench } from './evidence.bench.js';
import { flagsBench } from './flags.bench.js';
import { hashBench } from './hash.bench.js';
import { ingestBench } from './ingest.bench.js';
import { infoNumber, machineInfo, out, progress, Report, secondsSince, nowNs } from './lib.js';
import type { Bench, BenchContext, SummaryEntry } from './lib.js';
import { proofBench } from './proof.bench.js';
import { storageBench } from './storage.bench.js';
import { verifyBench } from './verify.bench.js';
import { vaultBench } from './vault.bench.js';

// ingest stays last: it empties the server first (its memory and key counts are its own).
const BENCHES: readonly Bench[] = [
  hashBench,
  appendBench,
  verifyBench,
  storageBench,
  proofBench,
  evidenceBench,
  flagsBench,
  vaultBench,
  ingestBench,
];

const FULL_CHAIN = 1_000_000;
const QUICK_CHAIN = 50_000;
const DEFAULT_WINDOW = 8;

interface Args {
  quick: boolean;
  window: number;
  selected: Bench[];
}

function usage(): string {
  const lines = BENCHES.map(
    (b) =>
      `  ${b.name.padEnd(8)} ${b.description}${b.aliases ? ` (also: ${b.aliases.join(', ')})` : ''}`,
  );
  return [
    'usage: npm run bench -- [--quick] [--window N] [bench …]',
    '',
    'benches:',
    ...lines,
  ].join('\n');
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let window = DEFAULT_WINDOW;
  const selected: Bench[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--quick') quick = true;
    else if (arg === '--help' || arg === '-h') {
      out(usage());
      process.exit(0);
    } else if (arg === '--window' || arg.startsWith('--window=')) {
      const value = arg.includes('=') ? arg.slice('--window='.length) : argv[++i];
      window = Number(value);
      if (!Number.isInteger(window) || window < 1) throw new Error(`bad --window ${value}`);
    } else {
      const bench = BENCHES.find((b) => b.name === arg || b.aliases?.includes(arg));
      if (!bench) throw new Error(`unknown bench or option "${arg}"\n${usage()}`);
      if (!selected.includes(bench)) selected.push(bench);
    }
  }
  // Keep the canonical order whatever order the names came in.
  const ordered = selected.length > 0 ? BENCHES.filter((b) => selected.includes(b)) : [...BENCHES];
  return { quick, window, selected: ordered };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const started = nowNs();
  const server: EmbeddedRedis = await startRedisServer({ persistence: 'none' });
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const c = new Redis(server.url, { maxRetriesPerRequest: null });
    clients.push(c);
    return c;
  };
  const admin = connect();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping the bench redis-server\n`);
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const reports: Report[] = [];
  let fixture: Promise<ChainFixture> | undefined;
  let current = '';
  const ctx: BenchContext = {
    quick: args.quick,
    window: args.window,
    url: server.url,
    admin,
    connect,
    chain: () => {
      fixture ??= buildChain(connect(), admin, args.quick ? QUICK_CHAIN : FULL_CHAIN, args.window);
      return fixture;
    },
    report: (title) => {
      const r = new Report(current, title);
      reports.push(r);
      return r;
    },
  };

  const serverInfo = await admin.info('server');
  const redisVersion = /^redis_version:(.+)$/m.exec(serverInfo)?.[1]?.trim() ?? 'unknown';
  const machine = machineInfo();
  out(
    `crm-ledger bench — ${args.quick ? 'QUICK (smoke sizes)' : 'FULL'} run, ` +
      `benches: ${args.selected.map((b) => b.name).join(', ')}`,
  );
  out(
    `node ${machine['node']}, redis-server ${redisVersion} (private, port ${server.port}, ` +
      `persistence off), ${machine['cpus']} CPUs (${machine['cpuModel']}), ` +
      `load avg ${machine['loadavg1']}, window ${args.window}, ` +
      `V8 semi-space ${machine['semiSpaceMb']} MB`,
  );

  const seconds: Record<string, number> = {};
  let failed: unknown;
  try {
    for (const bench of args.selected) {
      current = bench.name;
      const t0 = nowNs();
      progress(`bench ${bench.name} …`);
      const before = reports.length;
      await bench.run(ctx);
      for (const r of reports.slice(before)) r.print();
      seconds[bench.name] = Math.round(secondsSince(t0) * 10) / 10;
      progress(`bench ${bench.name} done in ${seconds[bench.name]} s`);
    }
  } catch (err) {
    failed = err;
  } finally {
    const usedMemory = infoNumber(await admin.info('memory').catch(() => ''), 'used_memory');
    await Promise.allSettled(clients.map((c) => c.quit()));
    await server.stop();
    if (Number.isFinite(usedMemory)) progress(`redis used_memory at the end: ${usedMemory} bytes`);
  }
  if (failed) {
    const detail =
      failed instanceof Error ? (failed.stack ?? failed.message) : JSON.stringify(failed);
    process.stderr.write(`bench failed: ${detail}\n`);
    return 1;
  }

  const benches: Record<string, Record<string, SummaryEntry>> = {};
  for (const r of reports) benches[r.bench] = { ...benches[r.bench], ...r.summary() };
  const summary = {
    mode: args.quick ? 'quick' : 'full',
    at: new Date().toISOString(),
    ...machine,
    redis: redisVersion,
    window: args.window,
    seconds: { ...seconds, total: Math.round(secondsSince(started) * 10) / 10 },
    benches,
  };
  out('');
  out(`BENCH_SUMMARY ${JSON.stringify(summary)}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
