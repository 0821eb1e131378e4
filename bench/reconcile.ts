/**
 * Reconciliation throughput: records compared per second against the sandbox HubSpot, through
 * the real HubspotClient (search pages, batch reads), the real ledger projections and the reconcile
 * worker, on a private redis-server (persistence off, a free loopback port).
 *
 *   npx tsx bench/reconcile.ts [--records 5000] [--page 200] [--edits 1] [--max 0]
 *
 * Runs, timed from runNow to its result (the compare-and-queue side; anchoring is timed apart):
 * 1. first run (full re-scan, ledger empty): every record fetched and queued as baseline;
 * 2. full re-scan of the same records, all anchored: fetch + projection + compare, nothing queued;
 * 3. incremental run after `--edits` % of the records were edited with webhooks off.
 * `--max N` sets the sandbox's rolling limit to N requests per 10 s (HubSpot Starter: 100); 0: none.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { HubspotClient } from '../connectors/hubspot/client.js';
import { startHubspotSandbox } from '../connectors/sandbox/hubspot/index.js';
import { startRedisServer } from '../src/redis/embedded-server.js';
import { createLogger } from '../src/observability/logger.js';
import { createChangeSink, createChangesQueue } from '../src/pipeline/queues.js';
import { startAnchorWorker } from '../src/pipeline/anchor.worker.js';
import { startReconcileWorker } from '../src/pipeline/reconcile.worker.js';
import type { ReconcileRunResult } from '../src/pipeline/reconcile.worker.js';
import { createTestLedger } from '../test/helpers/ledger.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '5000' },
    page: { type: 'string', default: '200' },
    edits: { type: 'string', default: '1' },
    max: { type: 'string', default: '0' },
  },
});
const records = Number(values.records);
const page = Number(values.page);
const editPct = Number(values.edits);
const max = Number(values.max);

const server = await startRedisServer({ persistence: 'none' });
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
const u = new URL(server.url);
const connection = { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null };
const sandbox = await startHubspotSandbox(
  max > 0 ? { rateLimit: { max, windowMs: 10_000 } } : { rateLimit: { max: 0 } },
);
const tenant = `hubspot:${sandbox.portalId}`;
const logger = createLogger({ level: 'silent' });
const ledger = createTestLedger(redis);
const changes = createChangesQueue(connection);
const anchor = startAnchorWorker({ connection, ledger, logger, batchSize: 512 });
const reconcile = startReconcileWorker({
  connection,
  clients: [
    new HubspotClient({
      tenant,
      portalId: sandbox.portalId,
      appId: sandbox.appId,
      apiUrl: sandbox.url,
      accessToken: 'bench-token',
    }),
  ],
  sink: createChangeSink(changes, { highWater: Number.MAX_SAFE_INTEGER }),
  ledger,
  redis,
  logger,
  everyMs: 0,
  settleMs: 0,
  pageLimit: page,
  objects: { hubspot: ['contact'] },
});

// Imported in batches of 50 sharing one timestamp (as imports do), a second apart, an hour ago.
const ids: string[] = [];
for (let i = 0; i < records; i += 50) {
  ids.push(
    ...sandbox.seed(
      'contacts',
      Array.from({ length: Math.min(50, records - i) }, (_, j) => ({
        email: `bench${i + j}@example.com`,
        firstname: `First${i + j}`,
        lastname: `Last${i + j}`,
        phone: `+44 20 7946 ${String((i + j) % 10_000).padStart(4, '0')}`,
      })),
      { at: Date.now() - 3_600_000 + i * 20 },
    ),
  );
}

async function anchoredTo(n: number): Promise<number> {
  const start = performance.now();
  while ((await ledger.store.readHead(tenant)).size < n) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return (performance.now() - start) / 1000;
}

function line(label: string, r: ReconcileRunResult, seconds: number): void {
  const queued = Object.values(r.queued).reduce((a, b) => a + b, 0);
  process.stdout.write(
    `${label.padEnd(34)} compared ${String(r.compared).padStart(6)} (swept ${String(r.swept).padStart(6)})  queued ${String(queued).padStart(6)}  ` +
      `${seconds.toFixed(2)} s  ${Math.round(r.compared / seconds)} records/s  (${r.pages} pages/steps)\n`,
  );
}

async function timed(
  label: string,
  run: () => Promise<ReconcileRunResult>,
): Promise<ReconcileRunResult> {
  const start = performance.now();
  const r = await run();
  line(label, r, (performance.now() - start) / 1000);
  return r;
}

process.stdout.write(
  `reconcile bench: ${records} contacts, pages of ${page}, rate limit ${max > 0 ? `${max}/10 s` : 'off'}\n`,
);
await timed('1. first run (baseline, queued)', () => reconcile.runNow(tenant));
const anchorS = await anchoredTo(records);
process.stdout.write(`   baseline anchored ${anchorS.toFixed(2)} s after the run returned\n`);
await timed('2. full re-scan, nothing to queue', () => reconcile.runNow(tenant, { full: true }));
const edits = Math.round((records * editPct) / 100);
for (let i = 0; i < edits; i++) {
  sandbox.updateAsUser('contacts', ids[(i * 97) % ids.length] as string, { lastname: `E${i}` }, 1);
}
// The sandbox stamps each write 1 ms after the previous one: let the clock pass the last edit.
await new Promise((r) => setTimeout(r, 100 + edits));
const before = (await ledger.store.readHead(tenant)).size;
await timed(`3. incremental, ${edits} edits`, () => reconcile.runNow(tenant));
await anchoredTo(before + edits);
const stats = sandbox.stats();
process.stdout.write(`sandbox: ${JSON.stringify(stats)}\n`);

await reconcile.close();
await anchor.close();
await changes.close();
await redis.quit();
await sandbox.close();
await server.stop();
