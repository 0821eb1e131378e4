/**
 * Flags per second through HubspotClient against the sandbox HubSpot's rolling rate limit.
 *
 *   npx tsx bench/hubspot-flags.ts [--seconds 12] [--max 100] [--window-ms 10000] [--batch 100]
 *
 * One sequential writer, like one flag worker: it calls `flag` with `--batch` requests for fresh
 * records, and on `rate-limited` sleeps the Retry-After the sandbox sent (nothing else retries).
 * Prints flags/s, API requests/s against the limit, 429s served, and checks that every flag was
 * written exactly once (one note per seq).
 */
import { parseArgs } from 'node:util';
import { HubspotClient } from '../connectors/hubspot/client.js';
import { startHubspotSandbox } from '../connectors/sandbox/hubspot/index.js';
import { CrmApiError } from '../connectors/types.js';
import type { FlagRequest } from '../connectors/types.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '12' },
    max: { type: 'string', default: '100' },
    'window-ms': { type: 'string', default: '10000' },
    batch: { type: 'string', default: '100' },
  },
});
const seconds = Number(values.seconds);
const max = Number(values.max);
const windowMs = Number(values['window-ms']);
const batch = Number(values.batch);

const sandbox = await startHubspotSandbox({ rateLimit: { max, windowMs } });
const tenant = `hubspot:${sandbox.portalId}`;
const client = new HubspotClient({
  tenant,
  portalId: sandbox.portalId,
  appId: sandbox.appId,
  apiUrl: sandbox.url,
  accessToken: 'bench-token',
});
const ids = sandbox.seed(
  'contacts',
  Array.from({ length: 200_000 }, (_, i) => ({ email: `bench${i}@example.com` })),
);

let seq = 0;
let flagged = 0;
let next = 0;
let rateLimitedWaits = 0;
const start = performance.now();
const deadline = start + seconds * 1000;
let pending: FlagRequest[] | undefined;
while (performance.now() < deadline) {
  pending ??= Array.from({ length: batch }, () => ({
    tenant,
    ref: { object: 'contact', id: ids[next++ % ids.length] as string },
    seq: ++seq,
    blockHash: 'h',
    verdicts: [{ type: 'duplicate' as const }],
  }));
  try {
    const outcomes = await client.flag(pending);
    flagged += outcomes.filter(
      (o) => o.status === 'flagged' || o.status === 'already-flagged',
    ).length;
    pending = undefined;
  } catch (err) {
    if (err instanceof CrmApiError && err.kind === 'rate-limited') {
      rateLimitedWaits++;
      await new Promise((resolve) => setTimeout(resolve, err.retryAfterMs ?? windowMs));
      continue;
    }
    throw err;
  }
}
const elapsed = (performance.now() - start) / 1000;
const stats = sandbox.stats();
const served = sandbox.requests().filter((r) => r.status !== 429).length;
const notes = sandbox.records('notes').length;
await sandbox.close();

const limitPerSecond = max / (windowMs / 1000);
const line = {
  seconds: Number(elapsed.toFixed(2)),
  flags: flagged,
  flagsPerSecond: Number((flagged / elapsed).toFixed(1)),
  apiRequestsPerSecond: Number((served / elapsed).toFixed(2)),
  limitPerSecond,
  utilisation: Number((served / elapsed / limitPerSecond).toFixed(3)),
  served429: stats.served429,
  rateLimitedWaits,
  notesWritten: notes,
  exactlyOnce: notes === flagged,
};
console.log(`HUBSPOT_FLAGS ${JSON.stringify(line)}`);
