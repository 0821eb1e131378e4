/**
 * The flag worker through BullMQ against the sandbox HubSpot, in the faults the CRM throws at it:
 * a 429 storm (the queue pauses for Retry-After), a burst of 5xx (retried with backoff), and an
 * expired token (refreshed). Every flag is delivered, none is lost and none written twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubspotClient } from '../../connectors/hubspot/client.js';
import { startHubspotSandbox } from '../../connectors/sandbox/hubspot/index.js';
import type { HubspotSandbox } from '../../connectors/sandbox/hubspot/index.js';
import type { FlagOutcome } from '../../connectors/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { startFlagWorker } from '../../src/pipeline/flag.worker.js';
import { createFlagSink } from '../../src/pipeline/flags.js';
import { testQueueConnection } from '../helpers/redis.js';

const OAUTH = { clientId: 'c', clientSecret: 's', refreshToken: 'r' };
let sandbox: HubspotSandbox;

beforeAll(async () => {
  sandbox = await startHubspotSandbox({
    token: 'first-token',
    oauth: OAUTH,
    rateLimit: { max: 8, windowMs: 1_000 },
  });
});
afterAll(async () => {
  await sandbox.close();
});

const connection = testQueueConnection;

describe('flag worker against a CRM that refuses, fails and expires tokens', () => {
  it('delivers every flag exactly once', async () => {
    const tenant = `hubspot:${sandbox.portalId}`;
    const ids = sandbox.seed(
      'contacts',
      Array.from({ length: 600 }, (_, i) => ({ email: `fw${i}@example.com` })),
    );
    const prefix = `{cl-test-flagworker-${process.pid}-${Date.now()}}`;
    const sink = createFlagSink(connection(), prefix);
    const client = new HubspotClient({
      tenant,
      portalId: sandbox.portalId,
      appId: sandbox.appId,
      apiUrl: sandbox.url,
      accessToken: 'first-token',
      refresh: OAUTH,
    });
    const outcomes: FlagOutcome[] = [];
    let pauses = 0;
    const worker = startFlagWorker({
      connection: connection(),
      client,
      prefix,
      batchSize: 50,
      logger: createLogger({ level: 'silent' }),
      onFlagged: (o) => outcomes.push(...o),
      onRateLimited: () => (pauses += 1),
    });
    try {
      // A burst of 5xx on the first writes, and the token expires under way.
      sandbox.failNext(3, { status: 502, pathPrefix: '/crm/v3/objects/contacts/batch/update' });
      await sink.enqueue(
        ids.slice(0, 300).map((id, i) => ({
          tenant,
          ref: { object: 'contact', id },
          seq: i,
          blockHash: 'h',
          verdicts: [{ type: 'duplicate' as const }],
        })),
      );
      const end = Date.now() + 60_000;
      while (outcomes.length < 150 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      sandbox.expireToken('first-token');
      await sink.enqueue(
        ids.slice(300).map((id, i) => ({
          tenant,
          ref: { object: 'contact', id },
          seq: 300 + i,
          blockHash: 'h',
          verdicts: [{ type: 'duplicate' as const }],
        })),
      );
      while (new Set(outcomes.map((o) => o.seq)).size < 600 && Date.now() < end)
        await new Promise((r) => setTimeout(r, 20));
    } finally {
      await worker.close();
      await sink.close();
    }
    const stats = sandbox.stats();
    expect(new Set(outcomes.map((o) => o.seq)).size).toBe(600);
    // The storm happened and was waited out; the burst happened; the token was refreshed.
    expect(stats.served429).toBeGreaterThan(0);
    expect(pauses).toBeGreaterThan(0);
    expect(stats.served5xx).toBeGreaterThanOrEqual(3);
    expect(stats.tokenRefreshes).toBeGreaterThanOrEqual(1);
    // Exactly one note per flag, and every record carries its status.
    const notes = sandbox.records('notes');
    expect(notes).toHaveLength(600);
    expect(
      ids.every(
        (id) => typeof sandbox.record('contacts', id)?.properties['crm_ledger_status'] === 'string',
      ),
    ).toBe(true);
  }, 90_000);
});
