/**
 * Ingest end to end: signed HubSpot webhook batches of 50 events over loopback HTTP → verify →
 * parse → BullMQ → anchor worker → Ledger, with the API and the anchor worker in this one process
 * (the `all` role of main.ts, wired the same way: production batch size and wait, the real
 * connector, the real routes), against the bench's private redis-server.
 *
 * The load comes from a child process (this same file, started with fork()), so that its CPU and
 * memory are not this process's: RSS below is the API + worker alone. On the 2-core machine the
 * three busy threads (this process, redis-server, the load generator) share two cores; the CPU
 * each one used is printed under "where the time goes".
 *
 * Phases, in order, one tenant (one HubSpot portal), every eventId unique over the whole run:
 * 1. baseline: Ledger.append of the same HubSpot changes (parsed by the connector once, then
 *    re-keyed), batch 128, `--window` appends in flight — the ledger's own rate; repeated after
 *    the ingest phases too, the median of all is the baseline;
 * 2. warm-up at full load (not measured);
 * 3. max load: autocannon, closed loop, a fixed number of requests (so that no request is in
 *    flight when it ends and every request sent is accounted for); events/s = events anchored /
 *    (last one anchored − first one sent);
 * 4. 50 % of that rate, paced open loop: request i leaves at start + i/rate whatever the answers
 *    do (node:http, keep-alive). The 50 %-rate targets are judged on this phase.
 * 5. the same rate with autocannon's `overallRate`, printed for comparison only: it is a
 *    per-connection quota refilled once a second, so each second's requests go back to back at
 *    full speed and the connections then idle — its latencies are those of one-second bursts.
 * 6. full mode: more max-load requests until 1,000,000 events are in, if the ~3-minute ingest
 *    budget allows (else as many as fit; the memory table says which).
 * Between phases the bench waits until every acknowledged event is anchored. Memory and queue
 * keys are read after the last phase; then the chain is verified and the baseline runs once more.
 *
 * POST → anchored: the Ledger used by the worker is wrapped (this bench only) so that when an
 * appendPrepared call resolves — after its blocks are stored and a signed checkpoint covering them
 * is written, which is what "anchored" means — the bench notes the time against each event it
 * newly anchored. An event's request is known from its eventId (request k carries eventIds
 * 50k+1 … 50k+50), the request's send time from the load generator (process.hrtime: the same
 * monotonic clock in both processes); a request is anchored when its 50th event is. Skipped
 * (already anchored) changes are not counted, so a redelivery could not make an event look
 * anchored twice. Independently of that wrapper, the end of the run checks Redis: checkpoint
 * size = chain size = distinct idempotency keys = events acknowledged, and Ledger.verify passes;
 * any mismatch, refused request or failed job fails the bench.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { Redis } from 'ioredis';
import { createHubspotConnector } from '../connectors/hubspot/index.js';
import { parseHubspotBatch } from '../connectors/hubspot/parse.js';
import type { ParsedEvent } from '../connectors/types.js';
import { createApp } from '../src/http/app.js';
import type { AnchorRequest } from '../src/ledger/block.js';
import type { Ledger } from '../src/ledger/ledger.js';
import { FileTrustStore } from '../src/ledger/trust-store.js';
import { VerificationService } from '../src/ledger/verification.js';
import { createLogger } from '../src/observability/logger.js';
import { startAnchorThread } from '../src/pipeline/anchor-thread.js';
import { loadSigningKey } from '../src/ledger/signing-key.js';
import {
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
  QUEUE_PREFIX,
} from '../src/pipeline/queues.js';
import { createTestLedger, TEST_ORIGIN } from '../test/helpers/ledger.js';
import {
  median,
  nowNs,
  percentile,
  progress,
  redisCpuSeconds,
  runWindow,
  secondsSince,
} from './lib.js';
import type { Bench, BenchContext } from './lib.js';
import {
  HUBSPOT_PATH,
  HUBSPOT_SECRET,
  PUBLIC_URL,
  hubspotBatch as sharedHubspotBatch,
  hubspotHeaders,
} from './webhook-load.js';

// ---------------------------------------------------------------------------------------------
// What is sent

const EVENTS_PER_REQUEST = 50;
/** distinct contacts the events touch (so that record links are exercised) */
const RECORDS = 10_000;
const PORTAL_ID = 62_000_001;
const BASELINE_PORTAL_ID = 62_000_002;
const SECRET = HUBSPOT_SECRET;
const WEBHOOK_PATH = HUBSPOT_PATH;

/** Production defaults (src/config.ts CRM_LEDGER_ANCHOR_BATCH_SIZE / _WAIT_MS). */
const ANCHOR_BATCH_SIZE = 128;
const ANCHOR_BATCH_WAIT_MS = 20;

const TARGET_EVENTS_PER_S = 10_000;
const TARGET_RATIO_APPEND = 0.5;
const TARGET_ACK_P99_MS = 50;
const TARGET_ANCHOR_P99_MS = 1_000;

/** Request k of the run: 50 contact events, eventIds 50k+1 … 50k+50 (the shape HubSpot sends). */
function hubspotBatch(portalId: number, k: number): string {
  return sharedHubspotBatch(portalId, k, { perRequest: EVENTS_PER_REQUEST, records: RECORDS });
}

function requestOfEventId(eventId: string): number {
  return Math.floor((Number(eventId) - 1) / EVENTS_PER_REQUEST);
}

/** Microseconds on the monotonic clock shared by every process of the machine. */
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

// ---------------------------------------------------------------------------------------------
// The load generator (child process)

const LOAD_ENV = 'CRM_LEDGER_BENCH_INGEST_LOAD';

interface LoadInit {
  port: number;
}

type LoadCommand =
  | { type: 'autocannon'; first: number; amount: number; connections: number; overallRate?: number }
  | { type: 'paced'; first: number; count: number; rate: number }
  | { type: 'exit' };

interface LoadResult {
  first: number;
  count: number;
  /** per request, µs: when it was written / when its answer was complete (0: none) */
  sendUs: Float64Array;
  ackUs: Float64Array;
  status: Uint16Array;
  /** paced only: how late each request left against its schedule, µs */
  lateUs?: Float64Array;
  /** autocannon only: its own latency histogram, ms */
  autocannon?: { p50: number; p90: number; p99: number; max: number; errors: number };
  /** CPU seconds the load generator used during the phase */
  cpuS: number;
}

function signedHeaders(body: string): Record<string, string> {
  return hubspotHeaders(body, SECRET);
}

function emptyResult(first: number, count: number, paced: boolean): LoadResult {
  return {
    first,
    count,
    sendUs: new Float64Array(count),
    ackUs: new Float64Array(count),
    status: new Uint16Array(count),
    ...(paced ? { lateUs: new Float64Array(count) } : {}),
    cpuS: 0,
  };
}

/**
 * Closed loop (or autocannon's overallRate): exactly `amount` requests, each built and signed as
 * it is sent. With `amount`, every connection stops after its last answer: nothing is in flight
 * at the end, so every request sent is accounted for.
 */
async function loadAutocannon(
  init: LoadInit,
  cmd: Extract<LoadCommand, { type: 'autocannon' }>,
): Promise<LoadResult> {
  const r = emptyResult(cmd.first, cmd.amount, false);
  const cpu0 = process.cpuUsage();
  let next = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${init.port}${WEBHOOK_PATH}`,
    method: 'POST',
    connections: cmd.connections,
    pipelining: 1,
    amount: cmd.amount,
    timeout: 60,
    ...(cmd.overallRate !== undefined ? { overallRate: cmd.overallRate } : {}),
    requests: [
      {
        method: 'POST',
        path: WEBHOOK_PATH,
        setupRequest: (req, context) => {
          const i = next++;
          if (i >= cmd.amount)
            throw new Error(`autocannon asked for request ${i} of ${cmd.amount}`);
          (context as { i?: number }).i = i;
          const body = hubspotBatch(PORTAL_ID, cmd.first + i);
          r.sendUs[i] = nowUs();
          return { ...req, body, headers: signedHeaders(body) };
        },
        onResponse: (status, _body, context) => {
          const i = (context as { i?: number }).i;
          if (i === undefined) return;
          r.ackUs[i] = nowUs();
          r.status[i] = status;
        },
      },
    ],
  });
  const cpu = process.cpuUsage(cpu0);
  r.cpuS = (cpu.user + cpu.system) / 1e6;
  r.autocannon = {
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors + result.timeouts,
  };
  return r;
}

/** Open loop: request i leaves at start + i/rate, whether or not earlier ones were answered. */
function loadPaced(
  init: LoadInit,
  cmd: Extract<LoadCommand, { type: 'paced' }>,
): Promise<LoadResult> {
  const r = emptyResult(cmd.first, cmd.count, true);
  const lateUs = r.lateUs as Float64Array;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const cpu0 = process.cpuUsage();
  const intervalUs = 1e6 / cmd.rate;
  return new Promise<LoadResult>((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const finish = () => {
      if (++done < cmd.count) return;
      agent.destroy();
      const cpu = process.cpuUsage(cpu0);
      r.cpuS = (cpu.user + cpu.system) / 1e6;
      resolve(r);
    };
    const send = (i: number, scheduledUs: number) => {
      const body = hubspotBatch(PORTAL_ID, cmd.first + i);
      const headers = signedHeaders(body);
      const req = http.request(
        {
          agent,
          host: '127.0.0.1',
          port: init.port,
          method: 'POST',
          path: WEBHOOK_PATH,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            r.ackUs[i] = nowUs();
            r.status[i] = res.statusCode ?? 0;
            finish();
          });
        },
      );
      req.on('error', reject);
      const t = nowUs();
      r.sendUs[i] = t;
      lateUs[i] = t - scheduledUs;
      req.end(body);
    };
    const start = nowUs();
    const pump = () => {
      const now = nowUs();
      while (sent < cmd.count && start + sent * intervalUs <= now) {
        send(sent, start + sent * intervalUs);
        sent += 1;
      }
      if (sent < cmd.count) {
        setTimeout(pump, Math.max(0, (start + sent * intervalUs - nowUs()) / 1000));
      }
    };
    pump();
  });
}

function loadMain(): void {
  const init = JSON.parse(process.env[LOAD_ENV] as string) as LoadInit;
  process.on('message', (msg: LoadCommand) => {
    if (msg.type === 'exit') {
      process.disconnect();
      return;
    }
    const run = msg.type === 'paced' ? loadPaced(init, msg) : loadAutocannon(init, msg);
    run.then(
      (result) => process.send?.({ ok: true, result }),
      (err: unknown) => process.send?.({ ok: false, error: String(err) }),
    );
  });
  process.send?.({ ready: true });
}

if (process.env[LOAD_ENV] !== undefined && process.send !== undefined) loadMain();

/** The parent's handle on the load generator. */
class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  static async start(port: number): Promise<LoadGenerator> {
    const init: LoadInit = { port };
    const child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: process.execArgv,
      env: { ...process.env, [LOAD_ENV]: JSON.stringify(init) },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`load generator exited (${code})`)));
    });
    return new LoadGenerator(child);
  }

  run(cmd: Exclude<LoadCommand, { type: 'exit' }>): Promise<LoadResult> {
    return new Promise<LoadResult>((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`load generator exited (${code}) mid-phase`));
      this.child.once('exit', onExit);
      this.child.once('message', (msg: { ok: boolean; result?: LoadResult; error?: string }) => {
        this.child.off('exit', onExit);
        if (msg.ok && msg.result) resolve(msg.result);
        else reject(new Error(`load generator: ${msg.error ?? 'no result'}`));
      });
      this.child.send(cmd);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// The bench

interface Plan {
  warm: number;
  /** requests of the max-load phase */
  max: number;
  connections: number;
  pacedS: number;
  ratedS: number;
  ratedConnections: number;
  /** events to reach by the top-up phase, if the budget allows (undefined: no top-up) */
  totalEvents?: number;
  /** ingest wall-clock budget for the top-up decision, s */
  budgetS: number;
  baselineBlocks: number;
  /** repetitions before the ingest phases; one more runs after them (an odd total: a true median) */
  baselineReps: number;
}

const PLANS: Record<'quick' | 'full', Plan> = {
  quick: {
    warm: 100,
    max: 1_600,
    connections: 8,
    pacedS: 5,
    ratedS: 4,
    ratedConnections: 8,
    budgetS: 40,
    baselineBlocks: 12_800,
    baselineReps: 2,
  },
  full: {
    warm: 400,
    max: 12_000,
    connections: 8,
    pacedS: 30,
    ratedS: 20,
    ratedConnections: 8,
    totalEvents: 1_000_000,
    budgetS: 180,
    baselineBlocks: 64_000,
    baselineReps: 4,
  },
};

interface PhaseStats {
  name: string;
  requests: number;
  events: number;
  /** first request sent → last event anchored */
  wallS: number;
  eventsPerS: number;
  /** events acknowledged over HTTP per second (first sent → last acknowledged) */
  ackedPerS: number;
  ackMs: number[];
  anchorMs: number[];
  lateMs: number[];
  autocannon?: LoadResult['autocannon'];
  nodeCpuS: number;
  /** event-loop utilisation of this process's main thread (0-1) */
  elu: number;
  redisCpuS: number;
  loadCpuS: number;
}

/** Ledger.append rate of the same changes the webhooks carry, batch 128, `window` in flight. */
async function appendBaseline(
  ledger: Ledger,
  tenant: string,
  blocks: number,
  window: number,
  counter: { n: number },
): Promise<number> {
  // Changes are re-keyed copies of a few parsed requests, made as each batch is sent (as
  // bench/append.bench.ts does): holding every change first would measure the GC scanning them.
  const templates: ParsedEvent[] = [];
  for (let k = 0; k < 8; k++) {
    const parsed = parseHubspotBatch(Buffer.from(hubspotBatch(BASELINE_PORTAL_ID, k)));
    if (!parsed.ok) throw new Error(`baseline batch does not parse: ${parsed.code}`);
    templates.push(...parsed.events);
  }
  const makeChange = (): AnchorRequest => {
    const n = ++counter.n;
    const t = templates[n % templates.length] as ParsedEvent;
    return {
      event: { ...t.event, eventId: String(n), recordId: String(1000 + ((n * 7919) % RECORDS)) },
      idempotencyKey: `${t.idempotencyKey}:${n}`,
    };
  };
  const batches = Math.ceil(blocks / ANCHOR_BATCH_SIZE);
  const start = nowNs();
  await runWindow(batches, window, () =>
    ledger.append(tenant, Array.from({ length: ANCHOR_BATCH_SIZE }, makeChange)),
  );
  return (batches * ANCHOR_BATCH_SIZE) / secondsSince(start);
}

async function countKeys(admin: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

async function usedMemory(admin: Redis): Promise<number> {
  const m = /^used_memory:(\d+)/m.exec(await admin.info('memory'));
  return m ? Number(m[1]) : Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;

async function runIngest(ctx: BenchContext): Promise<void> {
  const plan = PLANS[ctx.quick ? 'quick' : 'full'];
  const tenant = `hubspot:${PORTAL_ID}`;
  const logger = createLogger({ level: 'silent' });

  // The ingest figures (Redis memory, queue keys) are about this bench's data alone. It runs last
  // (bench/run.ts), so emptying the server does not take the chain fixture from another bench.
  await ctx.admin.flushall();
  const redisEmpty = await usedMemory(ctx.admin);
  const queueKeysEmpty = await countKeys(ctx.admin, `${QUEUE_PREFIX}:*`);
  const rss0 = process.memoryUsage().rss;

  // Baseline first (and once more at the end): its own Ledger instance and tenant.
  const baseLedger = createTestLedger(ctx.connect());
  const baseTenant = `hubspot:${BASELINE_PORTAL_ID}`;
  const baseCounter = { n: 0 };
  progress('ingest: Ledger.append baseline (batch 128) …');
  await appendBaseline(
    baseLedger,
    baseTenant,
    2 * ctx.window * ANCHOR_BATCH_SIZE,
    ctx.window,
    baseCounter,
  );
  const baseline: number[] = [];
  for (let r = 0; r < plan.baselineReps; r++) {
    baseline.push(
      await appendBaseline(baseLedger, baseTenant, plan.baselineBlocks, ctx.window, baseCounter),
    );
  }

  const redisBeforeIngest = await usedMemory(ctx.admin);

  // The system under test, wired like main.ts's `all` role.
  const dir = await mkdtemp(join(tmpdir(), 'crm-ledger-ingest-'));
  const ledgerRedis = ctx.connect();
  const ledgerKeyFile = join(dir, 'ledger.key');
  const keys = await loadSigningKey(ledgerKeyFile, { name: TEST_ORIGIN, createIfMissing: true });
  const ledger = createTestLedger(ledgerRedis, keys.signer);
  const capacity = Math.ceil((plan.totalEvents ?? 0) / EVENTS_PER_REQUEST) + 100_000;
  const eventsAnchored = new Uint8Array(capacity);
  const anchoredUs = new Float64Array(capacity);
  let anchoredTotal = 0;
  let skippedTotal = 0;
  // What `serve --role all` runs: the anchor worker in a worker thread of this process. It
  // reports each append (the ids of the events it anchored) back to this thread, which notes when
  // every event of a request is anchored under a signed checkpoint.
  const recordAnchored = (eventIds: string[], skipped: number) => {
    const at = nowUs();
    for (const id of eventIds) {
      const k = requestOfEventId(id);
      if (++(eventsAnchored[k] as number) === EVENTS_PER_REQUEST) anchoredUs[k] = at;
    }
    anchoredTotal += eventIds.length;
    skippedTotal += skipped;
  };

  const queue = createChangesQueue(connectionFromUrl(ctx.url, 'producer'));
  await queue.waitUntilReady();
  const anchorThread = startAnchorThread(
    {
      redisUrl: ctx.url,
      keyFile: ledgerKeyFile,
      origin: TEST_ORIGIN,
      maxChangeBytes: 65_536,
      checkpointMinIntervalMs: 0,
      batchSize: ANCHOR_BATCH_SIZE,
      batchWaitMs: ANCHOR_BATCH_WAIT_MS,
      lockMs: 30_000,
      logLevel: 'warn',
      reportAnchored: true,
    },
    (_tenant, eventIds, skipped) => recordAnchored(eventIds, skipped),
  );
  // Failed jobs (counted from the queue when a phase waits, and at the end) fail the bench.
  let failedJobs = 0;
  await anchorThread.ready;
  const app = createApp({
    logger,
    adminToken: 'bench-admin-token-0123456789abcdef',
    verifierKeys: ledger.verifiers,
    verification: new VerificationService(
      ledger.store,
      { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
      new FileTrustStore(join(dir, 'verified')),
    ),
    ping: () => ledgerRedis.ping(),
    webhooks: {
      connectors: new Map([
        ['hubspot', createHubspotConnector({ clientSecret: SECRET, publicUrl: PUBLIC_URL })],
      ]),
      sink: createChangeSink(queue),
      logger,
    },
  });
  const server: Server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const load = await LoadGenerator.start(port);
  try {
    let nextRequest = 0;
    let ackedEvents = 0;
    const ingestStart = nowNs();

    /** Runs one load phase and waits until every acknowledged event is anchored. */
    const phase = async (
      name: string,
      cmd:
        | { type: 'autocannon'; amount: number; connections: number; overallRate?: number }
        | { type: 'paced'; count: number; rate: number },
    ): Promise<PhaseStats> => {
      const first = nextRequest;
      const count = cmd.type === 'paced' ? cmd.count : cmd.amount;
      if (first + count > capacity)
        throw new Error(`ingest: request capacity ${capacity} exceeded`);
      nextRequest += count;
      progress(`ingest: ${name} — ${count.toLocaleString('en-US')} requests …`);
      const cpu0 = process.cpuUsage();
      const elu0 = performance.eventLoopUtilization();
      const redis0 = await redisCpuSeconds(ctx.admin);
      const r = await load.run({ ...cmd, first });
      const refused = new Map<number, number>();
      for (let i = 0; i < r.count; i++) {
        const s = r.status[i] as number;
        if (s !== 200) refused.set(s, (refused.get(s) ?? 0) + 1);
      }
      if (refused.size > 0 || (r.autocannon?.errors ?? 0) > 0) {
        throw new Error(
          `ingest ${name}: requests not acknowledged: ${JSON.stringify([...refused])}` +
            ` (errors ${r.autocannon?.errors ?? 0})`,
        );
      }
      ackedEvents += r.count * EVENTS_PER_REQUEST;
      // Wait for the anchor worker to catch up with everything acknowledged so far.
      const deadline = Date.now() + 120_000;
      while (anchoredTotal < ackedEvents) {
        failedJobs = (await queue.getJobCounts('failed')).failed ?? 0;
        if (Date.now() > deadline || failedJobs > 0) {
          throw new Error(
            `ingest ${name}: ${anchoredTotal} of ${ackedEvents} events anchored, ${failedJobs} failed jobs`,
          );
        }
        await sleep(5);
      }
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0).utilization;
      const redisCpuS = (await redisCpuSeconds(ctx.admin)) - redis0;

      const ackMs: number[] = [];
      const anchorMs: number[] = [];
      let firstSend = Infinity;
      let lastAck = 0;
      let lastAnchor = 0;
      for (let i = 0; i < r.count; i++) {
        const k = first + i;
        const sent = r.sendUs[i] as number;
        const acked = r.ackUs[i] as number;
        const anchored = anchoredUs[k] as number;
        if (anchored === 0) throw new Error(`ingest ${name}: request ${k} has no anchor time`);
        firstSend = Math.min(firstSend, sent);
        lastAck = Math.max(lastAck, acked);
        lastAnchor = Math.max(lastAnchor, anchored);
        ackMs.push((acked - sent) / 1000);
        anchorMs.push((anchored - sent) / 1000);
      }
      const events = r.count * EVENTS_PER_REQUEST;
      const wallS = (lastAnchor - firstSend) / 1e6;
      return {
        name,
        requests: r.count,
        events,
        wallS,
        eventsPerS: events / wallS,
        ackedPerS: events / ((lastAck - firstSend) / 1e6),
        ackMs,
        anchorMs,
        lateMs: r.lateUs ? Array.from(r.lateUs, (x) => x / 1000) : [],
        ...(r.autocannon ? { autocannon: r.autocannon } : {}),
        nodeCpuS: (cpu.user + cpu.system) / 1e6,
        elu,
        redisCpuS,
        loadCpuS: r.cpuS,
      };
    };

    let queueKeysWarm = 0;
    let halfEventsPerS = 0;
    let stats: {
      max: PhaseStats;
      paced: PhaseStats;
      rated: PhaseStats;
      topUp?: PhaseStats;
    };
    try {
      await phase('warm-up', {
        type: 'autocannon',
        amount: plan.warm,
        connections: plan.connections,
      });
      queueKeysWarm = await countKeys(ctx.admin, `${QUEUE_PREFIX}:*`);
      const max = await phase('max load', {
        type: 'autocannon',
        amount: plan.max,
        connections: plan.connections,
      });
      const halfReqPerS = max.eventsPerS / 2 / EVENTS_PER_REQUEST;
      halfEventsPerS = halfReqPerS * EVENTS_PER_REQUEST;
      const paced = await phase('50% of max, paced', {
        type: 'paced',
        count: Math.max(1, Math.round(halfReqPerS * plan.pacedS)),
        rate: halfReqPerS,
      });
      const ratedRate = Math.max(plan.ratedConnections, Math.round(halfReqPerS));
      const rated = await phase('50% of max, autocannon overallRate', {
        type: 'autocannon',
        amount: Math.max(plan.ratedConnections, Math.round(ratedRate * plan.ratedS)),
        connections: plan.ratedConnections,
        overallRate: ratedRate,
      });
      stats = { max, paced, rated };
      if (plan.totalEvents !== undefined) {
        const missing = Math.ceil((plan.totalEvents - ackedEvents) / EVENTS_PER_REQUEST);
        const leftS = plan.budgetS - secondsSince(ingestStart);
        const fits = Math.floor((leftS * max.eventsPerS) / EVENTS_PER_REQUEST);
        const amount = Math.min(missing, fits);
        if (amount >= plan.connections) {
          stats.topUp = await phase('top-up at max load', {
            type: 'autocannon',
            amount,
            connections: plan.connections,
          });
        }
      }
    } finally {
      await load.stop();
    }
    const ingestS = secondsSince(ingestStart);

    // Memory and queue after N events (every one anchored, the queue drained).
    const totalEvents = ackedEvents;
    const mem = process.memoryUsage();
    const peakRss = process.resourceUsage().maxRSS * 1024;
    const redisUsed = await usedMemory(ctx.admin);
    const queueKeysAfter = await countKeys(ctx.admin, `${QUEUE_PREFIX}:*`);
    const counts = await queue.getJobCounts();
    const jobsLeft = Object.values(counts).reduce((a, b) => a + b, 0);

    // The chain, checked from Redis independently of the timing wrapper.
    const checkpoint = await ledger.store.latestCheckpoint(tenant);
    const head = await ledger.store.readHead(tenant);
    const idemKeys = await ctx.admin.hlen(ledger.store.keys(tenant).idem);
    progress(`ingest: verifying the chain of ${head.size.toLocaleString('en-US')} blocks …`);
    const v0 = nowNs();
    const verified = await ledger.verify(tenant);
    const verifyS = secondsSince(v0);

    progress('ingest: Ledger.append baseline again …');
    baseline.push(
      await appendBaseline(baseLedger, baseTenant, plan.baselineBlocks, ctx.window, baseCounter),
    );

    const problems: string[] = [];
    if (!verified.ok)
      problems.push(`the chain does not verify: ${verified.code} ${verified.reason}`);
    else if (verified.size !== totalEvents)
      problems.push(`verified size ${verified.size} != ${totalEvents} events acknowledged`);
    if (head.size !== totalEvents) problems.push(`chain size ${head.size} != ${totalEvents} sent`);
    if (checkpoint?.size !== totalEvents)
      problems.push(`checkpoint size ${checkpoint?.size} != ${totalEvents} sent`);
    if (idemKeys !== totalEvents)
      problems.push(`${idemKeys} distinct idempotency keys != ${totalEvents} (duplicates?)`);
    if (anchoredTotal !== totalEvents)
      problems.push(`${anchoredTotal} events anchored by the worker != ${totalEvents}`);
    if (skippedTotal !== 0) problems.push(`${skippedTotal} events redelivered (skipped)`);
    failedJobs = (await queue.getJobCounts('failed')).failed ?? 0;
    if (failedJobs !== 0) problems.push(`${failedJobs} failed jobs`);
    if (jobsLeft !== 0)
      problems.push(`${jobsLeft} jobs left in the queue: ${JSON.stringify(counts)}`);
    if (problems.length > 0) throw new Error(`ingest bench: ${problems.join('; ')}`);

    // ------------------------------------------------------------------------------------------
    // Tables

    const { max, paced, rated, topUp } = stats;
    const base = median(baseline);
    const ms = (xs: number[], p: number) => percentile(xs, p);

    const t = ctx.report(
      `end-to-end ingest, HubSpot batches of ${EVENTS_PER_REQUEST}, API + worker in one process (events/s: first POST sent → last event anchored; baseline: Ledger.append of the same changes, batch ${ANCHOR_BATCH_SIZE}, window ${ctx.window}, same run)`,
    );
    t.add({
      key: 'max_events_per_s',
      figure: `sustained events/s anchored, max load (${plan.connections} connections)`,
      value: max.eventsPerS,
      unit: 'events/s',
      baseline: `Ledger.append b${ANCHOR_BATCH_SIZE} w${ctx.window}`,
      baselineValue: base,
      target: `>= ${TARGET_EVENTS_PER_S.toLocaleString('en-US')}/s, >= ${TARGET_RATIO_APPEND}x`,
      met: max.eventsPerS >= TARGET_EVENTS_PER_S && max.eventsPerS / base >= TARGET_RATIO_APPEND,
    });
    t.add({
      key: 'max_acked_events_per_s',
      figure: 'events/s acknowledged over HTTP, same phase',
      value: max.ackedPerS,
      unit: 'events/s',
      baseline: 'anchored events/s',
      baselineValue: max.eventsPerS,
    });
    t.add({
      key: 'append_b128_events_per_s',
      figure: `Ledger.append alone, batch ${ANCHOR_BATCH_SIZE}, window ${ctx.window} (median of ${baseline.length})`,
      value: base,
      unit: 'blocks/s',
    });
    t.add({
      key: 'max_ack_p50_ms',
      figure: 'POST → acknowledgement p50, max load (autocannon)',
      value: max.autocannon?.p50 ?? Number.NaN,
      unit: 'ms',
    });
    t.add({
      key: 'max_ack_p99_ms',
      figure: 'POST → acknowledgement p99, max load (autocannon)',
      value: max.autocannon?.p99 ?? Number.NaN,
      unit: 'ms',
    });
    t.add({
      key: 'max_anchor_p50_ms',
      figure: 'POST → anchored p50, max load',
      value: ms(max.anchorMs, 50),
      unit: 'ms',
    });
    t.add({
      key: 'max_anchor_p99_ms',
      figure: 'POST → anchored p99, max load',
      value: ms(max.anchorMs, 99),
      unit: 'ms',
    });
    t.note(
      `max load: ${max.requests.toLocaleString('en-US')} requests (${max.events.toLocaleString('en-US')} events) in ${max.wallS.toFixed(1)} s, closed loop; baseline runs: ${baseline.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')} blocks/s (the last one after the ingest phases).`,
    );

    const h = ctx.report(
      `latency at 50% of the max rate (${Math.round(paced.events / paced.wallS).toLocaleString('en-US')} events/s achieved; paced open loop, ${paced.requests.toLocaleString('en-US')} requests; ms from the request being written)`,
    );
    h.add({
      key: 'half_offered_events_per_s',
      figure: 'offered load, paced',
      value: halfEventsPerS,
      unit: 'events/s',
      baseline: 'max sustained',
      baselineValue: max.eventsPerS,
    });
    h.add({
      key: 'half_ack_p50_ms',
      figure: 'POST → acknowledgement p50',
      value: ms(paced.ackMs, 50),
      unit: 'ms',
    });
    h.add({
      key: 'half_ack_p99_ms',
      figure: 'POST → acknowledgement p99',
      value: ms(paced.ackMs, 99),
      unit: 'ms',
      target: `< ${TARGET_ACK_P99_MS} ms`,
      met: ms(paced.ackMs, 99) < TARGET_ACK_P99_MS,
    });
    h.add({
      key: 'half_anchor_p50_ms',
      figure: 'POST → anchored p50',
      value: ms(paced.anchorMs, 50),
      unit: 'ms',
    });
    h.add({
      key: 'half_anchor_p99_ms',
      figure: 'POST → anchored p99',
      value: ms(paced.anchorMs, 99),
      unit: 'ms',
      target: `< ${TARGET_ANCHOR_P99_MS.toLocaleString('en-US')} ms`,
      met: ms(paced.anchorMs, 99) < TARGET_ANCHOR_P99_MS,
    });
    h.add({
      key: 'half_send_late_p99_ms',
      figure: 'load generator lateness against its schedule p99',
      value: ms(paced.lateMs, 99),
      unit: 'ms',
    });
    h.add({
      key: 'rated_ack_p50_ms',
      figure: 'autocannon overallRate: POST → acknowledgement p50',
      value: rated.autocannon?.p50 ?? Number.NaN,
      unit: 'ms',
    });
    h.add({
      key: 'rated_ack_p99_ms',
      figure: 'autocannon overallRate: POST → acknowledgement p99',
      value: rated.autocannon?.p99 ?? Number.NaN,
      unit: 'ms',
    });
    h.add({
      key: 'rated_anchor_p50_ms',
      figure: 'autocannon overallRate: POST → anchored p50',
      value: ms(rated.anchorMs, 50),
      unit: 'ms',
    });
    h.add({
      key: 'rated_anchor_p99_ms',
      figure: 'autocannon overallRate: POST → anchored p99',
      value: ms(rated.anchorMs, 99),
      unit: 'ms',
    });
    h.note(
      `targets are judged on the paced run. autocannon overallRate (${plan.ratedConnections} connections, ${rated.requests.toLocaleString('en-US')} requests) refills each connection's quota once a second and sends it back to back, so its figures are one-second bursts at full speed followed by idle time.`,
    );
    h.note(
      `POST → anchored: from the request being written to the signed checkpoint covering its 50th event being stored (see the header of bench/ingest.bench.ts).`,
    );

    const m = ctx.report(
      `memory and queue after ${totalEvents.toLocaleString('en-US')} events (${plan.totalEvents !== undefined && totalEvents >= plan.totalEvents ? 'the full 1,000,000' : plan.totalEvents !== undefined ? 'what fit in the ~3-minute ingest budget' : 'quick mode'}; ${ingestS.toFixed(0)} s of ingest)`,
    );
    m.add({
      key: 'events_total',
      figure: 'events anchored (N)',
      value: totalEvents,
      unit: 'events',
    });
    m.add({
      key: 'rss_mb',
      figure: 'RSS of the API + worker process',
      value: mem.rss / MB,
      unit: 'MiB',
      baseline: 'at the start of this bench',
      baselineValue: rss0 / MB,
    });
    m.add({
      key: 'rss_peak_mb',
      figure: 'peak RSS of the process',
      value: peakRss / MB,
      unit: 'MiB',
    });
    m.add({ key: 'heap_used_mb', figure: 'V8 heap used', value: mem.heapUsed / MB, unit: 'MiB' });
    m.add({
      key: 'redis_used_memory_mb',
      figure: 'Redis used_memory',
      value: redisUsed / MB,
      unit: 'MiB',
      baseline: 'empty server',
      baselineValue: redisEmpty / MB,
    });
    m.add({
      key: 'redis_bytes_per_event',
      figure: 'Redis used_memory per ingested event',
      value: (redisUsed - redisBeforeIngest) / totalEvents,
      unit: 'bytes',
    });
    m.add({
      key: 'queue_keys_after',
      figure: `keys under ${QUEUE_PREFIX} after N events`,
      value: queueKeysAfter,
      unit: 'keys',
      baseline: 'after the warm-up',
      baselineValue: queueKeysWarm,
      target: 'no growth',
      met: queueKeysAfter <= queueKeysWarm,
    });
    m.add({
      key: 'jobs_left',
      figure: 'jobs left in the queue (any state)',
      value: jobsLeft,
      unit: 'jobs',
    });
    m.add({
      key: 'verify_s',
      figure: `Ledger.verify of the chain (${totalEvents.toLocaleString('en-US')} blocks)`,
      value: verifyS,
      unit: 's',
    });
    m.note(
      `keys under ${QUEUE_PREFIX} on the empty server: ${queueKeysEmpty}. The chain verified (ok, size ${totalEvents.toLocaleString('en-US')}); checkpoint size, chain size and distinct idempotency keys all equal the events acknowledged. Redis used_memory includes the ${baseCounter.n.toLocaleString('en-US')} blocks of the baseline tenant (${((redisBeforeIngest - redisEmpty) / MB).toFixed(0)} MiB before the ingest phases); the per-event figure is the growth during ingest / N.`,
    );

    const w = ctx.report(
      'where the time goes (CPU µs per event anchored; utilisation = CPU s / wall s of the phase, 2 cores = 200 %)',
    );
    const phases = [max, paced, rated, ...(topUp ? [topUp] : [])];
    for (const p of phases) {
      const key = p === max ? 'max' : p === paced ? 'half' : p === rated ? 'rated' : 'topup';
      w.add({
        key: `${key}_node_cpu_us_per_event`,
        figure: `API + worker process (Node), ${p.name}`,
        value: (p.nodeCpuS * 1e6) / p.events,
        unit: 'µs/event',
      });
      w.add({
        key: `${key}_redis_cpu_us_per_event`,
        figure: `redis-server, ${p.name}`,
        value: (p.redisCpuS * 1e6) / p.events,
        unit: 'µs/event',
      });
      w.add({
        key: `${key}_load_cpu_us_per_event`,
        figure: `load generator, ${p.name}`,
        value: (p.loadCpuS * 1e6) / p.events,
        unit: 'µs/event',
      });
      w.add({
        key: `${key}_util`,
        figure: `Node / Redis utilisation, ${p.name}`,
        value: (p.nodeCpuS / p.wallS) * 100,
        unit: '% node',
        baseline: '% redis',
        baselineValue: (p.redisCpuS / p.wallS) * 100,
      });
      w.add({
        key: `${key}_event_loop_util`,
        figure: `event-loop utilisation of the API + worker main thread, ${p.name}`,
        value: p.elu * 100,
        unit: '% busy',
      });
      w.add({
        key: `${key}_load_util`,
        figure: `load generator utilisation, ${p.name}`,
        value: (p.loadCpuS / p.wallS) * 100,
        unit: '% load',
      });
    }
    w.note(
      `Ledger.append alone at ${Math.round(base).toLocaleString('en-US')} blocks/s costs ${(1e6 / base).toFixed(1)} µs of wall time per block.`,
    );
  } finally {
    await load.stop();
    await anchorThread.close();
    await queue.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
    await ctx.admin.flushall();
  }
}

export const ingestBench: Bench = {
  name: 'ingest',
  aliases: ['webhooks', 'e2e'],
  description:
    'HubSpot webhooks over HTTP to anchored blocks: events/s, ack/anchor latency, memory, queue keys',
  run: runIngest,
};
