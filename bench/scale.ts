/**
 * Scale-out bench (issue 11): `npm run bench:scale [-- --quick] [--repeat N]`.
 *
 * Events/s from the queue to a signed checkpoint with 1, 2 and 4 anchor worker processes
 * (`crm-ledger serve --role worker`, each its own Node process), against one redis-server and
 * against a local 3-master Redis Cluster, and with 1, 4 and 16 tenants. A burst of HubSpot-shaped
 * contact changes (50 per job, as one webhook request) is queued at once; the clock runs from the
 * first job queued to the last tenant's checkpoint covering all its changes.
 *
 * Baseline, same run, same Redis: the raw append path (Ledger.append in this process, no queue,
 * no checks, batches of 128). Where the time goes: CPU seconds of the worker processes and of
 * every redis-server (/proc and INFO cpu) over the burst, and the top INFO commandstats entries.
 * Both Redis targets run without persistence; the machine is shared (2 cores): compare ratios.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { loadSigningKey } from '../src/ledger/signing-key.js';
import { Ledger } from '../src/ledger/ledger.js';
import { RedisLedgerStore } from '../src/ledger/store.js';
import {
  closeSharedQueueConnections,
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
} from '../src/pipeline/queues.js';
import { createRedis, masterNodes } from '../src/redis/connection.js';
import type { RedisClient } from '../src/redis/connection.js';
import { findFreePort, startRedisServer } from '../src/redis/embedded-server.js';
import { contactChange } from '../test/helpers/ledger.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';
import { median } from './lib.js';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const REPEAT = Number(args[args.indexOf('--repeat') + 1]) || (QUICK ? 1 : 3);
const EVENTS_PER_JOB = 50;
const EVENTS = QUICK ? 2_000 : 8_000;
const ORIGIN = 'scale.crm-ledger.bench';
const TSX = ['--import', 'tsx'];

interface Target {
  name: string;
  url: string;
  stop(): Promise<void>;
}

interface RunResult {
  eventsPerSec: number;
  workerCpu: number;
  redisCpu: number;
  seconds: number;
  topCommands: string;
}

function procCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in 1/100 s ticks
  } catch {
    return 0;
  }
}

async function redisCpu(nodes: Redis[]): Promise<number> {
  let total = 0;
  for (const n of nodes) {
    const info = await n.info('cpu');
    const user = /used_cpu_user:([0-9.]+)/.exec(info)?.[1];
    const sys = /used_cpu_sys:([0-9.]+)/.exec(info)?.[1];
    total += Number(user) + Number(sys);
  }
  return total;
}

async function commandUsec(nodes: Redis[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const n of nodes) {
    const info = await n.info('commandstats');
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=\d+,usec=(\d+)/gm)) {
      out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    }
  }
  return out;
}

async function waitUntil(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function startWorkers(
  count: number,
  url: string,
  dir: string,
): Promise<{ children: ChildProcess[]; stop: () => Promise<void> }> {
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    const port = await findFreePort();
    const child = spawn(process.execPath, [...TSX, 'src/cli.ts', 'serve', '--role', 'worker'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        CRM_LEDGER_REDIS_URL: url,
        CRM_LEDGER_DATA_DIR: dir,
        CRM_LEDGER_LEDGER_ORIGIN: ORIGIN,
        CRM_LEDGER_LOG_LEVEL: 'error',
        CRM_LEDGER_SANDBOX: 'off',
        CRM_LEDGER_HEALTH_PORT: String(port),
        // Compare with the checks off: CRM_LEDGER_DEDUPE=off npm run bench:scale
        ...(process.env['CRM_LEDGER_DEDUPE']
          ? { CRM_LEDGER_DEDUPE: process.env['CRM_LEDGER_DEDUPE'] }
          : {}),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    await waitUntil(
      async () => {
        try {
          return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
        } catch {
          return false;
        }
      },
      60_000,
      'worker ready',
    );
  }
  return {
    children,
    stop: async () => {
      await Promise.all(
        children
          .filter((c) => c.exitCode === null)
          .map((c) => new Promise((r) => c.once('exit', r).kill('SIGTERM'))),
      );
    },
  };
}

function tenantsFor(run: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `hubspot:${900_000 + run * 100 + i}`);
}

let runCounter = 0;

async function pipelineRun(
  target: Target,
  redis: RedisClient,
  ledger: Ledger,
  workers: number,
  tenantCount: number,
  dir: string,
): Promise<RunResult> {
  const tenants = tenantsFor(++runCounter, tenantCount);
  const perTenant = Math.floor(EVENTS / tenantCount);
  const pool = await startWorkers(workers, target.url, dir);
  const queue = createChangesQueue(connectionFromUrl(target.url, 'worker'));
  const sink = createChangeSink(queue, { highWater: Number.MAX_SAFE_INTEGER });
  const nodes = masterNodes(redis);
  try {
    const jobs = tenants.flatMap((tenant) =>
      Array.from({ length: Math.ceil(perTenant / EVENTS_PER_JOB) }, (_, j) =>
        Array.from({ length: Math.min(EVENTS_PER_JOB, perTenant - j * EVENTS_PER_JOB) }, (_, i) => {
          const n = j * EVENTS_PER_JOB + i;
          const { event } = contactChange(tenant, `r${n % 251}`);
          return {
            event: { ...event, eventId: `s-${n}` },
            idempotencyKey: `scale|${tenant}|${n}`,
          };
        }),
      ),
    );
    // interleave tenants, as webhooks from several CRMs arrive
    jobs.sort((a, b) => (a[0]!.idempotencyKey > b[0]!.idempotencyKey ? 1 : -1));
    const cpu0 = pool.children.reduce((s, c) => s + procCpuSeconds(c.pid), 0);
    const rcpu0 = await redisCpu(nodes);
    const cmd0 = await commandUsec(nodes);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < jobs.length; i += 16) {
      await Promise.all(
        jobs
          .slice(i, i + 16)
          .map((events) =>
            sink.enqueue({ source: 'hubspot', receivedAt: new Date().toISOString(), events }),
          ),
      );
    }
    await waitUntil(
      async () => {
        const sizes = await Promise.all(
          tenants.map(async (t) => (await ledger.store.latestCheckpoint(t))?.size ?? 0),
        );
        return sizes.every((s) => s >= perTenant);
      },
      600_000,
      'burst anchored',
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const workerCpu = pool.children.reduce((s, c) => s + procCpuSeconds(c.pid), 0) - cpu0;
    const redisCpuUsed = (await redisCpu(nodes)) - rcpu0;
    const cmd1 = await commandUsec(nodes);
    const deltas = [...cmd1].map(([name, usec]) => [name, usec - (cmd0.get(name) ?? 0)] as const);
    const totalUsec = deltas.reduce((s, [, u]) => s + u, 0) || 1;
    const topCommands = deltas
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([name, usec]) => `${name} ${Math.round((100 * usec) / totalUsec)}%`)
      .join(', ');
    return {
      eventsPerSec: (perTenant * tenantCount) / seconds,
      workerCpu,
      redisCpu: redisCpuUsed,
      seconds,
      topCommands,
    };
  } finally {
    await queue.close();
    await pool.stop();
  }
}

/** The raw baseline: this process appends the same number of events straight to the ledger. */
async function rawRun(ledger: Ledger, tenantCount: number): Promise<number> {
  const tenants = tenantsFor(++runCounter, tenantCount);
  const perTenant = Math.floor(EVENTS / tenantCount);
  const t0 = process.hrtime.bigint();
  await Promise.all(
    tenants.map(async (tenant) => {
      for (let j = 0; j < perTenant; j += 128) {
        const batch = Array.from({ length: Math.min(128, perTenant - j) }, (_, i) =>
          contactChange(tenant, `r${(j + i) % 251}`),
        );
        await ledger.append(tenant, batch);
      }
    }),
  );
  return (perTenant * tenantCount) / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cl-scale-'));
  const keys = await loadSigningKey(join(dir, 'ledger.key'), {
    name: ORIGIN,
    createIfMissing: true,
  });
  const single = await startRedisServer({ persistence: 'none' });
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
  const targets: Target[] = [
    { name: 'single', url: single.url, stop: () => single.stop() },
    { name: 'cluster3', url: cluster.url, stop: () => cluster.stop() },
  ];
  process.stdout.write(
    `scale bench: ${EVENTS} events per run, ${EVENTS_PER_JOB}/job, median of ${REPEAT}; ` +
      `machine shared and loaded (2 cores): read the ratios\n\n`,
  );
  const header =
    'target    workers tenants  events/s  ×raw  worker-cpu-s redis-cpu-s  top redis commands (usec share)';
  process.stdout.write(header + '\n');
  const summary: Record<string, number> = {};
  try {
    for (const target of targets) {
      const redis = createRedis(target.url, 'worker');
      const ledger = new Ledger(new RedisLedgerStore(redis), {
        origin: ORIGIN,
        signer: keys.signer,
        verifiers: keys.verifiers,
      });
      const raw = median(await repeat(() => rawRun(ledger, 4)));
      summary[`${target.name}.raw`] = Math.round(raw);
      process.stdout.write(
        `${target.name.padEnd(9)} raw     4        ${fmt(raw)}  1.00  (Ledger.append in one process)\n`,
      );
      const shapes: [number, number][] = [
        [1, 4],
        [2, 4],
        [4, 4],
        ...(target.name === 'single'
          ? ([
              [2, 1],
              [2, 16],
            ] as [number, number][])
          : ([[2, 16]] as [number, number][])),
      ];
      for (const [workers, tenants] of shapes) {
        const results = [];
        for (let r = 0; r < REPEAT; r++) {
          results.push(await pipelineRun(target, redis, ledger, workers, tenants, dir));
        }
        const eps = median(results.map((r) => r.eventsPerSec));
        const mid = results.find((r) => r.eventsPerSec === eps) ?? results[0]!;
        summary[`${target.name}.w${workers}.t${tenants}`] = Math.round(eps);
        process.stdout.write(
          `${target.name.padEnd(9)} ${String(workers).padEnd(7)} ${String(tenants).padEnd(8)} ` +
            `${fmt(eps)}  ${(eps / raw).toFixed(2)}  ${mid.workerCpu.toFixed(1).padStart(12)} ` +
            `${mid.redisCpu.toFixed(1).padStart(11)}  ${mid.topCommands}\n`,
        );
      }
      redis.disconnect();
    }
  } finally {
    await closeSharedQueueConnections();
    for (const t of targets) await t.stop();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\nSCALE_SUMMARY ${JSON.stringify(summary)}\n`);
}

async function repeat(f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < REPEAT; r++) out.push(await f());
  return out;
}

function fmt(x: number): string {
  return Math.round(x).toString().padStart(8);
}

await main();
