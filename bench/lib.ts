/**
 * Shared plumbing for the benchmarks: clocks, repetitions, raw baselines, tables and the summary.
 *
 * Figures are printed, never asserted. The bench machine is shared and noisy (2 cores), so every
 * figure is printed next to a raw baseline measured in the same run — interleaved with it where
 * that is cheap (A, B, A, B, …) so that a noisy neighbour slows both alike — and as the ratio of the
 * two. Medians of a few repetitions, after a warm-up, are what is reported.
 */
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { ChainFixture } from './chain.js';
import { seededRandom } from '../src/util/seeded-random.js';

// ---------------------------------------------------------------------------------------------
// Clocks and statistics

export const nowNs = (): bigint => process.hrtime.bigint();

export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile; NaN for an empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Where `sink` folds results; exported so that the work feeding it is observable. */
export const sinkState = { value: 0 };
/** Keeps a result alive so that the JIT cannot drop the work being timed. */
export function sink(value: Uint8Array | string | number | object): void {
  if (typeof value === 'number') sinkState.value ^= value | 0;
  else if (typeof value === 'string') sinkState.value ^= value.length;
  else if (value instanceof Uint8Array) sinkState.value ^= value[0] ?? 0;
  else sinkState.value ^= 1;
}

/** Seeded PRNG (mulberry32): the same record-id sequence on every run. */
export const createRng = seededRandom;

// ---------------------------------------------------------------------------------------------
// CPU micro-benchmarks

export interface CpuOptions {
  /** each timed run lasts at least this long */
  minMs: number;
  reps: number;
  /**
   * 'wall' (default): elapsed time. 'cpu': CPU time of the process (user + system, all threads),
   * so that a thread descheduled on a shared machine does not count as slow code.
   */
  clock?: 'wall' | 'cpu';
}

/** Calls `fn` `n` times and returns the seconds of wall time it took. */
function timeLoop(fn: () => void, n: number): number {
  const start = nowNs();
  for (let i = 0; i < n; i++) fn();
  return secondsSince(start);
}

/** Calls `fn` `n` times and returns the seconds of CPU (user + system, all threads) it took. */
function cpuLoop(fn: () => void, n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

type Loop = (fn: () => void, n: number) => number;

/** How many calls of `fn` fill about `minMs` (doubling from 1), after a warm-up of that length. */
function calibrate(fn: () => void, minMs: number, loop: Loop): number {
  let n = 1;
  for (;;) {
    const s = loop(fn, n);
    if (s * 1000 >= minMs / 4) return Math.max(1, Math.ceil(n * (minMs / 1000 / s)));
    n *= 2;
  }
}

/**
 * Operations per second (of wall or CPU time, see CpuOptions.clock) of each synchronous function,
 * interleaved: every repetition runs each function once for ~minMs, in turn. Returns the median
 * rate per function.
 */
export function cpuRates<K extends string>(
  fns: Record<K, () => void>,
  opts: CpuOptions,
): Record<K, number> {
  const loop = opts.clock === 'cpu' ? cpuLoop : timeLoop;
  const names = Object.keys(fns) as K[];
  const counts = {} as Record<K, number>;
  for (const name of names) {
    counts[name] = calibrate(fns[name], opts.minMs, loop);
    loop(fns[name], counts[name]); // warm-up at full length
  }
  const rates = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < opts.reps; r++) {
    for (const name of names) rates[name].push(counts[name] / loop(fns[name], counts[name]));
  }
  const out = {} as Record<K, number>;
  for (const name of names) out[name] = median(rates[name]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Process and Redis resource use (where the time goes)

/** Seconds of CPU the Redis server has used (INFO cpu: user + sys, all threads). */
export async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  return infoNumber(info, 'used_cpu_user') + infoNumber(info, 'used_cpu_sys');
}

export function infoNumber(info: string, field: string): number {
  const m = new RegExp(`^${field}:([0-9.]+)`, 'm').exec(info);
  return m ? Number(m[1]) : Number.NaN;
}

/** INFO commandstats as name → { calls, usec }. */
export async function commandStats(
  admin: Redis,
): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await admin.info('commandstats');
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    out.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

export interface Usage {
  wallS: number;
  /** CPU seconds of this Node process (all its threads) */
  nodeCpuS: number;
  /** CPU seconds of the Redis server */
  redisCpuS: number;
  /** microseconds Redis spent inside EVALSHA/EVAL (scripts, including the commands they call) */
  scriptUsec: number;
}

/** Measures wall time, Node CPU and Redis CPU around `fn`. Resets Redis command stats. */
export async function measureUsage<T>(
  admin: Redis,
  fn: () => Promise<T>,
): Promise<{ result: T; usage: Usage }> {
  await admin.config('RESETSTAT');
  const redis0 = await redisCpuSeconds(admin);
  const cpu0 = process.cpuUsage();
  const start = nowNs();
  const result = await fn();
  const wallS = secondsSince(start);
  const cpu = process.cpuUsage(cpu0);
  const redis1 = await redisCpuSeconds(admin);
  const stats = await commandStats(admin);
  const scriptUsec = (stats.get('evalsha')?.usec ?? 0) + (stats.get('eval')?.usec ?? 0);
  return {
    result,
    usage: {
      wallS,
      nodeCpuS: (cpu.user + cpu.system) / 1e6,
      redisCpuS: redis1 - redis0,
      scriptUsec,
    },
  };
}

/** Runs `fns(i)` for i in [0, n) keeping at most `window` in flight, started in index order. */
export async function runWindow(
  n: number,
  window: number,
  fn: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker));
}

// ---------------------------------------------------------------------------------------------
// Reports

export interface Row {
  /** stable key for the JSON summary */
  key: string;
  figure: string;
  value: number;
  unit: string;
  /** the raw baseline this figure is compared with, and its value in the same unit */
  baseline?: string;
  baselineValue?: number;
  /** value / baselineValue unless given */
  ratio?: number;
  target?: string;
  /** whether the target is met (printed, never asserted) */
  met?: boolean;
}

export interface SummaryEntry {
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  met?: boolean;
}

export class Report {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];

  constructor(
    readonly bench: string,
    readonly title: string,
  ) {}

  add(row: Row): Row {
    const ratio =
      row.ratio ??
      (row.baselineValue !== undefined && row.baselineValue !== 0
        ? row.value / row.baselineValue
        : undefined);
    const full: Row = ratio === undefined ? row : { ...row, ratio };
    this.rows.push(full);
    return full;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  print(): void {
    const header = ['figure', 'value', 'unit', 'raw baseline (same run)', 'baseline', 'ratio'];
    const hasTarget = this.rows.some((r) => r.target !== undefined);
    if (hasTarget) header.push('target', 'met');
    const lines = this.rows.map((r) => {
      const cells = [
        r.figure,
        formatNumber(r.value),
        r.unit,
        r.baseline ?? '',
        r.baselineValue === undefined ? '' : formatNumber(r.baselineValue),
        r.ratio === undefined ? '' : `${formatRatio(r.ratio)}`,
      ];
      if (hasTarget) cells.push(r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'NO');
      return cells;
    });
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]?.length ?? 0)));
    const numeric = new Set([1, 4, 5]);
    const fmt = (cells: string[]) =>
      cells
        .map((c, i) =>
          numeric.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number),
        )
        .join('  ')
        .trimEnd();
    const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
    out('');
    out(`== ${this.bench}: ${this.title}`);
    out(fmt(header));
    out(rule);
    for (const l of lines) out(fmt(l));
    for (const n of this.notes) out(`  * ${n}`);
  }

  summary(): Record<string, SummaryEntry> {
    const outMap: Record<string, SummaryEntry> = {};
    for (const r of this.rows) {
      const e: SummaryEntry = { value: round(r.value), unit: r.unit };
      if (r.baselineValue !== undefined) e.baseline = round(r.baselineValue);
      if (r.ratio !== undefined) e.ratio = Math.round(r.ratio * 1000) / 1000;
      if (r.met !== undefined) e.met = r.met;
      outMap[r.key] = e;
    }
    return outMap;
  }
}

function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  if (Math.abs(x) >= 100) return Math.round(x);
  return Number(x.toPrecision(4));
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 100) return Math.round(x).toLocaleString('en-US');
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

export function formatRatio(r: number): string {
  if (!Number.isFinite(r)) return String(r);
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(3)}x`;
}

/** Figures go to stdout; progress goes to stderr so that stdout stays pasteable. */
export function out(line: string): void {
  process.stdout.write(line + '\n');
}

export function progress(line: string): void {
  process.stderr.write(`  .. ${line}\n`);
}

export function machineInfo(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    loadavg1: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    // V8's young generation (npm run bench sets 64 MB semi-spaces, as the service runs)
    semiSpaceMb:
      Number(/--max-semi-space-size[= ](\d+)/.exec(process.env['NODE_OPTIONS'] ?? '')?.[1]) || 16,
  };
}

// ---------------------------------------------------------------------------------------------
// The driver's contract with each bench

export interface BenchContext {
  quick: boolean;
  /** max appends in flight per tenant in the windowed (pipelined) runs */
  window: number;
  /** URL of the private redis-server of this run */
  url: string;
  /** connection for INFO, CONFIG, PING, FLUSHALL */
  admin: Redis;
  /** a new connection, closed by the driver at the end */
  connect(): Redis;
  /** the long chain shared by verify, storage and proof (built on first use) */
  chain(): Promise<ChainFixture>;
  /** a table for this bench, printed and summarised by the driver */
  report(title: string): Report;
}

export interface Bench {
  name: string;
  aliases?: readonly string[];
  description: string;
  run(ctx: BenchContext): Promise<void>;
}
