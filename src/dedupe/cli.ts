/**
 * `crm-ledger dedupe <input.csv…>`: streams CSV records one at a time through the same online
 * matcher the pipeline uses (each record matched only against those before it), writes the pairs
 * judged duplicates, and prints speed, candidate-set size and, with a truth, blocking recall and
 * pairwise precision / recall / F1.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { basename } from 'node:path';
import { Option } from 'commander';
import type { Command } from 'commander';
import { parse } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import { createRedis, nodeForKey } from '../redis/connection.js';
import { startRedisServer } from '../redis/embedded-server.js';
import type { EmbeddedRedis } from '../redis/embedded-server.js';
import { PROFILE_FIELDS } from './fields.js';
import type { ProfileField } from './fields.js';
import { DEFAULT_THRESHOLD, Matcher } from './matcher.js';
import { parseMatchParams } from './score.js';
import { seededRandom } from '../util/seeded-random.js';

export interface DedupeOptions {
  id: string;
  map?: string;
  ignore?: string;
  threshold?: string;
  out?: string;
  truth?: string;
  shuffle?: string;
  redisUrl?: string;
  object: string;
  country?: string;
  params?: string;
  blockCap?: string;
  quiet?: boolean;
}

export class DedupeUsageError extends Error {}

/** Parses `canonical=column,…` into column → profile field. */
export function parseMap(spec: string | undefined): Record<string, ProfileField> {
  const out: Record<string, ProfileField> = {};
  if (spec === undefined || spec.trim() === '') return out;
  for (const part of spec.split(',')) {
    const [field, column] = part.split('=').map((s) => s.trim());
    if (!field || !column || !(PROFILE_FIELDS as readonly string[]).includes(field)) {
      throw new DedupeUsageError(
        `--map: expected canonical=column with canonical one of ${PROFILE_FIELDS.join(', ')}, got ${JSON.stringify(part)}`,
      );
    }
    out[column] = field as ProfileField;
  }
  return out;
}

/** FEBRL ids: `rec-<N>-org` / `rec-<N>-dup-<k>`: the entity is N. */
export function febrlEntity(id: string): string | undefined {
  return /^rec-(\d+)-(?:org|dup-\d+)$/.exec(id)?.[1];
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

async function readRows(file: string): Promise<Record<string, string>[]> {
  const rows: Record<string, string>[] = [];
  const parser = createReadStream(file).pipe(
    parse({ columns: true, trim: true, skip_empty_lines: true, bom: true }),
  );
  for await (const row of parser) rows.push(row as Record<string, string>);
  return rows;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = Float64Array.from(xs).sort();
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ] as number;
}

export interface DedupeReport {
  records: number;
  seconds: number;
  recordsPerSecond: number;
  p99Ms: number;
  medianCandidates: number;
  pairs: number;
  truth?: {
    truePairs: number;
    blockingRecall: number;
    precision: number;
    recall: number;
    f1: number;
    tp: number;
    fp: number;
    fn: number;
  };
}

export async function runDedupe(
  inputs: readonly string[],
  opts: DedupeOptions,
  write: (line: string) => void,
): Promise<DedupeReport> {
  const explicit = parseMap(opts.map);
  const ignored = new Set(
    (opts.ignore ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const threshold = opts.threshold === undefined ? DEFAULT_THRESHOLD : Number(opts.threshold);
  if (!(threshold > 0 && threshold <= 1))
    throw new DedupeUsageError('--threshold must be in (0, 1]');
  const blockCap = opts.blockCap === undefined ? undefined : Number(opts.blockCap);
  if (blockCap !== undefined && !(Number.isInteger(blockCap) && blockCap > 0)) {
    throw new DedupeUsageError('--block-cap must be a positive integer');
  }

  // Records of every input, each tagged with its file as the tenant.
  const records: { tenant: string; id: string; fields: Record<string, string> }[] = [];
  const seenIds = new Set<string>();
  for (const [i, file] of inputs.entries()) {
    const rows = await readRows(file);
    if (rows.length > 0 && !(opts.id in (rows[0] as object))) {
      throw new DedupeUsageError(`${file}: no column ${JSON.stringify(opts.id)} (--id)`);
    }
    for (const row of rows) {
      const id = row[opts.id] ?? '';
      if (id === '' || seenIds.has(id))
        throw new DedupeUsageError(`${file}: empty or repeated id ${JSON.stringify(id)}`);
      seenIds.add(id);
      const fields: Record<string, string> = {};
      for (const [column, value] of Object.entries(row)) {
        if (column !== opts.id && !ignored.has(column)) fields[column] = value;
      }
      records.push({
        tenant: `csv:${i}-${basename(file)
          .replace(/[^A-Za-z0-9_-]/g, '_')
          .slice(0, 40)}`,
        id,
        fields,
      });
    }
  }
  if (opts.shuffle !== undefined) {
    const rand = seededRandom(Number(opts.shuffle));
    for (let i = records.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [records[i], records[j]] = [
        records[j] as (typeof records)[number],
        records[i] as (typeof records)[number],
      ];
    }
  }

  // Truth: true partners per id.
  let partners: Map<string, Set<string>> | undefined;
  let truePairs = 0;
  if (opts.truth !== undefined) {
    partners = new Map();
    const link = (a: string, b: string) => {
      if (!seenIds.has(a) || !seenIds.has(b) || a === b) return;
      const pa = partners!.get(a) ?? new Set<string>();
      if (pa.has(b)) return;
      pa.add(b);
      partners!.set(a, pa);
      const pb = partners!.get(b) ?? new Set<string>();
      pb.add(a);
      partners!.set(b, pb);
      truePairs++;
    };
    if (opts.truth === 'febrl') {
      const clusters = new Map<string, string[]>();
      for (const r of records) {
        const e = febrlEntity(r.id);
        if (e === undefined)
          throw new DedupeUsageError(
            `--truth febrl: id ${JSON.stringify(r.id)} is not rec-N-org/dup-k`,
          );
        const list = clusters.get(e) ?? [];
        list.push(r.id);
        clusters.set(e, list);
      }
      for (const ids of clusters.values()) {
        for (let i = 0; i < ids.length; i++)
          for (let j = i + 1; j < ids.length; j++) link(ids[i]!, ids[j]!);
      }
    } else {
      const rows: string[][] = parseSync(readFileSync(opts.truth), {
        trim: true,
        skip_empty_lines: true,
      });
      for (const [a, b] of rows.slice(1)) if (a && b) link(a, b);
    }
  }

  let embedded: EmbeddedRedis | undefined;
  const url = opts.redisUrl ?? (embedded = await startRedisServer({ persistence: 'none' })).url;
  // cluster-aware (redis+cluster://…): the space's keys share one hash tag, so one master
  const redis = createRedis(url, 'cli');
  const space = `cli-${randomBytes(6).toString('hex')}`;
  let out: WriteStream | undefined;
  try {
    const matcher = new Matcher({
      redis,
      space,
      threshold,
      ...(opts.params
        ? { params: parseMatchParams(JSON.parse(readFileSync(opts.params, 'utf8'))) }
        : {}),
      ...(opts.country ? { defaultCountry: opts.country.toUpperCase() } : {}),
      ...(blockCap === undefined ? {} : { blockCap }),
    });
    if (opts.out !== undefined) {
      out = createWriteStream(opts.out);
      out.write('left_id,right_id,score\n');
    }
    const latencies: number[] = [];
    const candidateSizes: number[] = [];
    const predicted = new Set<string>();
    let tp = 0;
    let blockedTrue = 0;
    const seen = new Set<string>();
    const start = process.hrtime.bigint();
    for (const r of records) {
      const t0 = process.hrtime.bigint();
      const obs = await matcher.observeDetailed(
        {
          tenant: r.tenant,
          object: opts.object,
          id: r.id.replace(/[^A-Za-z0-9._~-]/g, '_'),
          kind: 'create',
          fields: r.fields,
        },
        explicit,
      );
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      candidateSizes.push(obs.candidates.length);
      for (const m of obs.matches) {
        const key = pairKey(m.id, r.id);
        if (predicted.has(key)) continue;
        predicted.add(key);
        out?.write(`${m.id},${r.id},${m.score}\n`);
        if (partners?.get(r.id)?.has(m.id)) tp++;
      }
      if (partners) {
        const mine = partners.get(r.id);
        if (mine) {
          const cands = new Set(obs.candidates.map((c) => c.id));
          for (const p of mine) if (seen.has(p) && cands.has(p)) blockedTrue++;
        }
        seen.add(r.id);
      }
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const report: DedupeReport = {
      records: records.length,
      seconds,
      recordsPerSecond: records.length / seconds,
      p99Ms: percentile(latencies, 99),
      medianCandidates: percentile(candidateSizes, 50),
      pairs: predicted.size,
    };
    write(
      `records: ${report.records}  seconds: ${seconds.toFixed(2)}  records/s: ${report.recordsPerSecond.toFixed(0)}  p99 ms: ${report.p99Ms.toFixed(2)}  median candidates: ${report.medianCandidates}  pairs: ${report.pairs}`,
    );
    if (partners) {
      const fp = predicted.size - tp;
      const fn = truePairs - tp;
      const precision = predicted.size === 0 ? 1 : tp / predicted.size;
      const recall = truePairs === 0 ? 1 : tp / truePairs;
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      const blockingRecall = truePairs === 0 ? 1 : blockedTrue / truePairs;
      report.truth = { truePairs, blockingRecall, precision, recall, f1, tp, fp, fn };
      write(
        `blocking recall: ${blockingRecall.toFixed(4)} (${blockedTrue}/${truePairs} true pairs among candidates)`,
      );
      write(
        `precision: ${precision.toFixed(4)}  recall: ${recall.toFixed(4)}  F1: ${f1.toFixed(4)}  (tp ${tp}, fp ${fp}, fn ${fn}, threshold ${threshold})`,
      );
    }
    return report;
  } finally {
    if (out) await new Promise<void>((resolve) => out!.end(resolve));
    if (opts.redisUrl !== undefined) {
      // a configured Redis: leave nothing behind
      const pattern = `cl:{dedupe:${space}}:*`;
      const node = await nodeForKey(redis, pattern);
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await node.unlink(...keys);
      } while (cursor !== '0');
    }
    redis.disconnect();
    await embedded?.stop();
  }
}

export function registerDedupeCommand(program: Command): void {
  program
    .command('dedupe <input...>')
    .description(
      'stream CSV records through the online duplicate matcher; print records/s, p99, candidates and, with --truth, precision/recall/F1',
    )
    .requiredOption('--id <column>', 'column holding the record id')
    .option('--map <pairs>', 'canonical=column,… for columns not recognised by name')
    .option('--ignore <columns>', 'columns to withhold from the matcher, comma-separated')
    .option('--threshold <p>', `match probability threshold (default ${DEFAULT_THRESHOLD})`)
    .option('--out <file>', 'write left_id,right_id,score per duplicate pair')
    .option('--truth <file|febrl>', 'true pairs (CSV left_id,right_id) or "febrl" (rec-N-… ids)')
    .option('--shuffle <seed>', 'feed the records in a random order (seeded)')
    .option('--redis-url <url>', 'use this Redis (default: a private redis-server)')
    .addOption(new Option('--object <name>', 'CRM object the rows are').default('contact'))
    .option('--country <iso>', 'default country for phones and dates (e.g. AU, US)')
    .option('--params <file>', 'match parameters JSON (default: the shipped ones)')
    .option('--block-cap <n>', 'skip blocks larger than this')
    .action(async (inputs: string[], opts: DedupeOptions) => {
      try {
        await runDedupe(inputs, opts, (line) => process.stdout.write(`${line}\n`));
      } catch (err) {
        if (err instanceof DedupeUsageError) {
          process.stderr.write(`crm-ledger dedupe: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
    });
}
