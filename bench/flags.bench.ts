/**
 * Flags written back through the real pipeline — flags queue (BullMQ) → flag worker → HubspotClient
 * → the sandbox HubSpot with a rolling rate limit — against that limit (issue 5: within 90% of
 * the limit, no 429 left unhandled, no flag lost or written twice).
 *
 * Baseline: the sandbox's request limit itself (requests/s it allows). Figures: API requests/s
 * the worker got served (utilisation = that / the limit), flags/s, 429s served and waited out, and
 * an exactly-once check (one note per flag).
 */
import { HubspotClient } from '../connectors/hubspot/client.js';
import { startHubspotSandbox } from '../connectors/sandbox/hubspot/index.js';
import { createLogger } from '../src/observability/logger.js';
import { startFlagWorker } from '../src/pipeline/flag.worker.js';
import { createFlagSink } from '../src/pipeline/flags.js';
import { connectionFromUrl } from '../src/pipeline/queues.js';
import type { Bench } from './lib.js';

export const flagsBench: Bench = {
  name: 'flags',
  description: 'flag write-back through BullMQ and the flag worker against the sandbox rate limit',
  async run(ctx) {
    // Several windows' worth of requests (a batch of 100 flags costs ~4-6 API requests), so that
    // the rate limit, not the first window's free budget, decides the rate.
    const max = ctx.quick ? 20 : 100;
    const windowMs = ctx.quick ? 1_000 : 10_000;
    const flags = ctx.quick ? 2_500 : 8_000;
    const sandbox = await startHubspotSandbox({ rateLimit: { max, windowMs } });
    const tenant = `hubspot:${sandbox.portalId}`;
    const ids = sandbox.seed(
      'contacts',
      Array.from({ length: flags }, (_, i) => ({ email: `flag${i}@example.com` })),
    );
    const prefix = `{cl-bench-flags-${Date.now()}}`;
    const connection = connectionFromUrl(ctx.url, 'worker');
    const sink = createFlagSink(connection, prefix);
    await sink.enqueue(
      ids.map((id, i) => ({
        tenant,
        ref: { object: 'contact', id },
        seq: i,
        blockHash: 'h',
        verdicts: [{ type: 'duplicate' as const, code: 'DUPLICATE_CUSTOMER' }],
      })),
    );
    let done = 0;
    let waits = 0;
    const client = new HubspotClient({
      tenant,
      portalId: sandbox.portalId,
      appId: sandbox.appId,
      apiUrl: sandbox.url,
      accessToken: 'bench',
    });
    sandbox.clearRequests();
    const start = performance.now();
    const worker = startFlagWorker({
      connection,
      client,
      prefix,
      logger: createLogger({ level: 'silent' }),
      onFlagged: (outcomes) => {
        done += outcomes.length;
      },
      onRateLimited: () => {
        waits += 1;
      },
    });
    while (done < flags) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - start) / 1000;
    await worker.close();
    await sink.close();
    const requests = sandbox.requests();
    const served = requests.filter((r) => r.status !== 429).length;
    const stats = sandbox.stats();
    const notes = sandbox.records('notes').length;
    await sandbox.close();

    const limitPerS = max / (windowMs / 1000);
    const t = ctx.report(
      `flag write-back (${flags} flags, limit ${max} requests / ${windowMs / 1000} s)`,
    );
    t.add({
      key: 'flag_api_requests_per_s',
      figure: 'API requests/s served to the flag worker',
      value: served / seconds,
      unit: 'req/s',
      baseline: 'the sandbox rate limit',
      baselineValue: limitPerS,
      target: '>= 0.9x of the limit',
      met: served / seconds / limitPerS >= 0.9,
    });
    t.add({
      key: 'flags_per_s',
      figure: 'flags written/s (property + note)',
      value: flags / seconds,
      unit: 'flags/s',
    });
    t.add({
      key: 'flag_429_served',
      figure: '429s served (each waited out, none dropped)',
      value: stats.served429,
      unit: 'count',
    });
    t.add({
      key: 'flag_rate_limit_pauses',
      figure: 'queue pauses for Retry-After',
      value: waits,
      unit: 'count',
    });
    t.add({
      key: 'flag_notes_written',
      figure: 'notes written (exactly once per flag)',
      value: notes,
      unit: 'notes',
      baselineValue: flags,
      baseline: 'flags queued',
      target: '= flags',
      met: notes === flags,
    });
  },
};
