/**
 * HubspotClient against the sandbox HubSpot, through the real SDK: flags written once per block
 * (property + note), idempotent retries (also after a crash mid-way), record-missing, 429 → the
 * sandbox's Retry-After, 5xx → transient, token refresh on 401, revert, and record fetch by ids and
 * by "modified since" across pages and time slices.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubspotClient, flagMarker } from '../../connectors/hubspot/client.js';
import type { HubspotClientOptions } from '../../connectors/hubspot/client.js';
import { isOwnHubspotChange } from '../../connectors/hubspot/echo.js';
import { startHubspotSandbox } from '../../connectors/sandbox/hubspot/index.js';
import type { HubspotSandbox, WebhookEvent } from '../../connectors/sandbox/hubspot/index.js';
import { CrmApiError } from '../../connectors/types.js';
import type { FlagRequest } from '../../connectors/types.js';
import { startWebhookReceiver, useHubspotSandbox } from '../helpers/hubspot-sandbox.js';

const PORTAL = 62515;
const TENANT = `hubspot:${PORTAL}`;
const APP_ID = 54321;

function clientFor(
  sandbox: HubspotSandbox,
  extra: Partial<HubspotClientOptions> = {},
): HubspotClient {
  return new HubspotClient({
    tenant: TENANT,
    portalId: PORTAL,
    appId: APP_ID,
    apiUrl: sandbox.url,
    accessToken: 'test-token',
    adminBaseUrl: 'https://ledger.example.com',
    ...extra,
  });
}

function flagRequest(id: string, seq: number, object = 'contact'): FlagRequest {
  return {
    tenant: TENANT,
    ref: { object, id },
    seq,
    blockHash: `hash${seq}`,
    verdicts: [
      {
        type: 'duplicate',
        code: 'DUPLICATE_EMAIL',
        reason: 'same email as 2 others',
        candidates: ['11', '12'],
      },
    ],
  };
}

async function rejection(promise: Promise<unknown>): Promise<CrmApiError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CrmApiError);
    return err as CrmApiError;
  }
  throw new Error('expected a CrmApiError');
}

/** Writes (anything but reads) the client sent since the log was cleared. */
function writesIn(sandbox: HubspotSandbox): string[] {
  return sandbox
    .requests()
    .filter((r) => r.status < 300)
    .map((r) => `${r.method} ${r.path}`)
    .filter((r) => !r.endsWith('/batch/read') && !r.startsWith('GET'));
}

describe('HubspotClient', () => {
  const ctx = useHubspotSandbox({ portalId: PORTAL, appId: APP_ID, rateLimit: { max: 10_000 } });
  beforeEach(() => {
    ctx.sandbox.clearFaults();
    ctx.sandbox.setRateLimit(10_000);
    ctx.sandbox.clearRequests();
  });

  describe('flag', () => {
    it('sets crm_ledger_status and writes one note per seq, with marker and admin link', async () => {
      const [a, b] = ctx.sandbox.seed('contacts', [
        { email: 'a@flag.test' },
        { email: 'b@flag.test' },
      ]);
      const client = clientFor(ctx.sandbox);
      const outcomes = await client.flag([
        flagRequest(a as string, 5),
        flagRequest(a as string, 7),
        {
          ...flagRequest(b as string, 6),
          verdicts: [{ type: 'unauthorised', reason: 'edited by user 9' }],
        },
      ]);
      expect(outcomes.map((o) => [o.seq, o.status])).toEqual([
        [5, 'flagged'],
        [7, 'flagged'],
        [6, 'flagged'],
      ]);
      expect(outcomes.every((o) => 'noteId' in o && typeof o.noteId === 'string')).toBe(true);

      expect(ctx.sandbox.record('contacts', a as string)?.properties['crm_ledger_status']).toBe(
        'duplicate · block #7',
      );
      expect(ctx.sandbox.record('contacts', b as string)?.properties['crm_ledger_status']).toBe(
        'unauthorised · block #6',
      );
      const notes = ctx.sandbox.notesFor('contacts', a as string);
      expect(notes).toHaveLength(2);
      const bodies = notes.map((n) => n.properties['hs_note_body'] ?? '');
      expect(bodies.some((body) => body.includes(flagMarker(TENANT, 5)))).toBe(true);
      expect(bodies.some((body) => body.includes(flagMarker(TENANT, 7)))).toBe(true);
      expect(bodies[0]).toContain('DUPLICATE_EMAIL');
      expect(bodies[0]).toContain('Candidates: 11, 12');
      expect(bodies[0]).toContain(
        `https://ledger.example.com/admin/records/${encodeURIComponent(TENANT)}/contact/${a}`,
      );
      const property = ctx.sandbox.store.propertyDefinition('contacts', 'crm_ledger_status');
      expect(property).toMatchObject({
        groupName: 'crm_ledger',
        type: 'string',
        fieldType: 'text',
      });
    });

    it('writes nothing new when called again with the same seqs (already-flagged)', async () => {
      const [id] = ctx.sandbox.seed('contacts', [{ email: 'again@flag.test' }]);
      const client = clientFor(ctx.sandbox);
      const first = await client.flag([
        flagRequest(id as string, 20),
        flagRequest(id as string, 21),
      ]);
      ctx.sandbox.clearRequests();
      const second = await client.flag([
        flagRequest(id as string, 20),
        flagRequest(id as string, 21),
      ]);
      expect(second.map((o) => o.status)).toEqual(['already-flagged', 'already-flagged']);
      expect(second.map((o) => ('noteId' in o ? o.noteId : undefined))).toEqual(
        first.map((o) => ('noteId' in o ? o.noteId : undefined)),
      );
      expect(writesIn(ctx.sandbox)).toEqual([]);
      expect(ctx.sandbox.notesFor('contacts', id as string)).toHaveLength(2);
    });

    it('after a crash mid-way (notes created, answer 500) a retry writes no second note', async () => {
      const [id] = ctx.sandbox.seed('deals', [{ dealname: 'crash' }]);
      const client = clientFor(ctx.sandbox);
      ctx.sandbox.failNext(1, { phase: 'after', pathPrefix: '/crm/v3/objects/notes/batch/create' });
      const err = await rejection(client.flag([flagRequest(id as string, 30, 'deal')]));
      expect(err.kind).toBe('transient');
      expect(ctx.sandbox.notesFor('deals', id as string)).toHaveLength(1);
      const retry = await client.flag([flagRequest(id as string, 30, 'deal')]);
      expect(retry.map((o) => o.status)).toEqual(['already-flagged']);
      expect(ctx.sandbox.notesFor('deals', id as string)).toHaveLength(1);
    });

    it('reports record-missing for deleted and unknown records and flags the others', async () => {
      const [kept, deleted] = ctx.sandbox.seed('companies', [
        { name: 'Kept' },
        { name: 'Deleted' },
      ]);
      ctx.sandbox.archiveAsUser('companies', deleted as string, 3);
      const outcomes = await clientFor(ctx.sandbox).flag([
        flagRequest(kept as string, 40, 'company'),
        flagRequest(deleted as string, 41, 'company'),
        flagRequest('987654321', 42, 'company'),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual([
        'flagged',
        'record-missing',
        'record-missing',
      ]);
      expect(ctx.sandbox.notesFor('companies', kept as string)).toHaveLength(1);
    });

    it('refuses bad input with a permanent error before calling HubSpot', async () => {
      const client = clientFor(ctx.sandbox);
      const many = Array.from({ length: 101 }, (_, i) => flagRequest('1', i));
      expect((await rejection(client.flag(many))).kind).toBe('permanent');
      expect((await rejection(client.flag([flagRequest('1', 1, 'ticket')]))).kind).toBe(
        'permanent',
      );
      expect(
        (await rejection(client.flag([{ ...flagRequest('1', 1), tenant: 'hubspot:1' }]))).kind,
      ).toBe('permanent');
      expect(ctx.sandbox.requests()).toEqual([]);
    });

    it('maps a 429 storm to rate-limited with the sandbox Retry-After, and later delivers once', async () => {
      const [id] = ctx.sandbox.seed('contacts', [{ email: 'storm@flag.test' }]);
      const client = clientFor(ctx.sandbox);
      await client.flag([flagRequest(id as string, 50)]); // schema exists from here on
      ctx.sandbox.setRateLimit(1, 4_000);
      await client.fetchRecords({ object: 'contact', ids: [id as string] });
      const err = await rejection(client.flag([flagRequest(id as string, 51)]));
      expect(err.kind).toBe('rate-limited');
      expect(err.status).toBe(429);
      expect(err.retryAfterMs).toBe(4_000);
      expect(ctx.sandbox.stats().served429).toBeGreaterThanOrEqual(1);

      ctx.sandbox.setRateLimit(10_000);
      const outcomes = await client.flag([flagRequest(id as string, 51)]);
      expect(outcomes.map((o) => o.status)).toEqual(['flagged']);
      expect(ctx.sandbox.notesFor('contacts', id as string)).toHaveLength(2);
    });

    it('maps 5xx to transient and leaves nothing half-written', async () => {
      const [id] = ctx.sandbox.seed('contacts', [{ email: 'five@flag.test' }]);
      const client = clientFor(ctx.sandbox);
      await client.flag([flagRequest(id as string, 60)]);
      ctx.sandbox.failNext(1, { status: 503, pathPrefix: '/crm/v3/objects/contacts/batch/update' });
      const err = await rejection(client.flag([flagRequest(id as string, 61)]));
      expect(err).toMatchObject({ kind: 'transient', status: 503 });
      expect(ctx.sandbox.notesFor('contacts', id as string)).toHaveLength(1);
      await client.flag([flagRequest(id as string, 61)]);
      expect(ctx.sandbox.notesFor('contacts', id as string)).toHaveLength(2);
    });

    it('maps a call slower than timeoutMs to transient', async () => {
      ctx.sandbox.setLatency(400);
      const client = clientFor(ctx.sandbox, { timeoutMs: 100 });
      const err = await rejection(client.fetchRecords({ object: 'contact', ids: ['1'] }));
      expect(err.kind).toBe('transient');
      expect(err.message).toContain('timed out');
    });

    it('maps a refused connection to transient', async () => {
      const gone = await startHubspotSandbox();
      const client = clientFor(gone);
      await gone.close();
      const err = await rejection(client.fetchRecords({ object: 'contact', ids: ['1'] }));
      expect(err.kind).toBe('transient');
    });
  });

  describe('revert', () => {
    it('PATCHes the fields back; the echo webhooks are recognised as our own', async () => {
      const receiver = await startWebhookReceiver();
      const sandbox = await startHubspotSandbox({
        appId: APP_ID,
        webhookTarget: receiver.url,
        webhook: { flushMs: 5 },
      });
      try {
        const [id] = sandbox.seed('contacts', [{ email: 'orig@revert.test', firstname: 'Orig' }]);
        sandbox.updateAsUser(
          'contacts',
          id as string,
          { email: 'evil@revert.test', firstname: 'Evil' },
          13,
        );
        await sandbox.webhooksIdle();
        receiver.received.length = 0;
        await clientFor(sandbox).revert(
          { object: 'contact', id: id as string },
          { email: 'orig@revert.test', firstname: null },
          'unauthorised edit by user 13',
        );
        expect(sandbox.record('contacts', id as string)?.properties).toMatchObject({
          email: 'orig@revert.test',
          // HubSpot clears a property when sent "" (crm-protocols.md §3.1).
          firstname: '',
        });
        await receiver.waitFor((r) => r.length > 0);
        await sandbox.webhooksIdle();
        const events = receiver.received.flatMap(
          (r) => JSON.parse(r.body.toString()) as WebhookEvent[],
        );
        expect(events.map((e) => e.propertyName).sort()).toEqual(['email', 'firstname']);
        expect(events.every((e) => isOwnHubspotChange(e, APP_ID))).toBe(true);
        expect(events.some((e) => isOwnHubspotChange(e, APP_ID + 1))).toBe(false);
      } finally {
        await sandbox.close();
        await receiver.close();
      }
    });
  });

  describe('fetchRecords', () => {
    it('reads by ids in chunks of 100; missing ids are simply absent', async () => {
      const ids = ctx.sandbox.seed(
        'contacts',
        Array.from({ length: 150 }, (_, i) => ({ email: `id${i}@fetch.test`, firstname: `F${i}` })),
      );
      const page = await clientFor(ctx.sandbox).fetchRecords({
        object: 'contact',
        ids: [...ids, '999999999'],
      });
      expect(page.records).toHaveLength(150);
      expect(page.cursor).toBeUndefined();
      const first = page.records.find((r) => r.ref.id === ids[0]);
      expect(first).toMatchObject({
        ref: { object: 'contact', id: ids[0] },
        fields: { email: 'id0@fetch.test', firstname: 'F0', phone: null },
      });
      expect(Date.parse(first?.modifiedAt ?? '')).not.toBeNaN();
      expect(ctx.sandbox.requests().filter((r) => r.path.endsWith('/batch/read'))).toHaveLength(2);
    });

    it('pages "modified since" in ascending order, within [since, until)', async () => {
      const base = Date.parse('2031-01-01T00:00:00Z');
      const ids = Array.from(
        { length: 25 },
        (_, i) =>
          ctx.sandbox.seed('deals', [{ dealname: `since${i}` }], {
            at: base + i * 1000,
          })[0] as string,
      );
      const client = clientFor(ctx.sandbox);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await client.fetchRecords({
          object: 'deal',
          since: new Date(base + 2000).toISOString(),
          until: new Date(base + 24_000).toISOString(),
          limit: 10,
          ...(cursor === undefined ? {} : { cursor }),
        });
        seen.push(...page.records.map((r) => r.ref.id));
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined);
      expect(pages).toBe(3);
      expect(seen).toEqual(ids.slice(2, 24));
    });

    it('slices the time range before the search cap, losing and repeating nothing (ties included)', async () => {
      const sandbox = await startHubspotSandbox({
        searchResultCap: 20,
        rateLimit: { max: 10_000 },
      });
      try {
        const base = Date.parse('2032-01-01T00:00:00Z');
        const expected: string[] = [];
        for (let i = 0; i < 30; i++) {
          // Runs of three records share one timestamp, so slices must cut between ties.
          expected.push(
            ...sandbox.seed('contacts', [{ email: `cap${i}@fetch.test` }], {
              at: base + Math.floor(i / 3) * 1000,
            }),
          );
        }
        const client = clientFor(sandbox, { searchResultCap: 20 });
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.fetchRecords({
            object: 'contact',
            since: new Date(base).toISOString(),
            limit: 8,
            ...(cursor === undefined ? {} : { cursor }),
          });
          seen.push(...page.records.map((r) => r.ref.id));
          cursor = page.cursor;
        } while (cursor !== undefined);
        expect([...seen].sort()).toEqual([...expected].sort());
        expect(new Set(seen).size).toBe(seen.length);
        expect(sandbox.requests().every((r) => r.status === 200)).toBe(true);
      } finally {
        await sandbox.close();
      }
    });

    it('refuses a cursor it did not issue', async () => {
      const err = await rejection(
        clientFor(ctx.sandbox).fetchRecords({
          object: 'contact',
          since: '2030-01-01T00:00:00Z',
          cursor: 'bm9wZQ',
        }),
      );
      expect(err.kind).toBe('permanent');
    });
  });
});

describe('HubspotClient auth', () => {
  const oauth = { clientId: 'cid', clientSecret: 'csecret', refreshToken: 'refresh-token' };
  let sandbox: HubspotSandbox;
  beforeAll(async () => {
    sandbox = await startHubspotSandbox({ token: 'first-token', oauth });
  });
  afterAll(async () => {
    await sandbox.close();
  });

  it('refreshes an expired token once and retries the call transparently', async () => {
    const [id] = sandbox.seed('contacts', [{ email: 'auth@fetch.test' }]);
    const client = clientFor(sandbox, { accessToken: 'first-token', refresh: oauth });
    await client.fetchRecords({ object: 'contact', ids: [id as string] });
    sandbox.expireToken('first-token');
    const page = await client.fetchRecords({ object: 'contact', ids: [id as string] });
    expect(page.records.map((r) => r.ref.id)).toEqual([id]);
    expect(sandbox.stats().tokenRefreshes).toBe(1);
    expect(sandbox.stats().served401).toBe(1);
  });

  it('gets a token by refresh when it starts without one', async () => {
    const client = clientFor(sandbox, { accessToken: undefined, refresh: oauth });
    const before = sandbox.stats().tokenRefreshes;
    await client.fetchRecords({ object: 'contact', ids: ['1'] });
    expect(sandbox.stats().tokenRefreshes).toBe(before + 1);
  });

  it('is auth when no refresh is configured, or the refresh token is refused', async () => {
    sandbox.expireToken();
    const plain = clientFor(sandbox, { accessToken: 'first-token' });
    expect((await rejection(plain.fetchRecords({ object: 'contact', ids: ['1'] }))).kind).toBe(
      'auth',
    );
    const badRefresh = clientFor(sandbox, {
      accessToken: 'first-token',
      refresh: { ...oauth, refreshToken: 'revoked' },
    });
    const err = await rejection(badRefresh.fetchRecords({ object: 'contact', ids: ['1'] }));
    expect(err.kind).toBe('auth');
    expect(err.message).not.toContain('revoked');
  });
});
