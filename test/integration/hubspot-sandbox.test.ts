/**
 * The sandbox HubSpot driven by the real `@hubspot/api-client` 13.5.0: CRUD, batches, search and
 * its 10,000-result cap, properties, notes with associations, 429/5xx/401 behaviour, OAuth
 * refresh, and signed webhooks checked with our own verifier and parser.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from '@hubspot/api-client';
import type { AssociationSpecAssociationCategoryEnum } from '@hubspot/api-client/lib/codegen/crm/objects/notes/index.js';
import type { FilterOperatorEnum } from '@hubspot/api-client/lib/codegen/crm/objects/index.js';
import type {
  PropertyCreateFieldTypeEnum,
  PropertyCreateTypeEnum,
} from '@hubspot/api-client/lib/codegen/crm/properties/index.js';
import { startHubspotSandbox } from '../../connectors/sandbox/hubspot/index.js';
import type { HubspotSandbox, WebhookEvent } from '../../connectors/sandbox/hubspot/index.js';
import { verifyHubspotRequest } from '../../connectors/hubspot/signature.js';
import { parseHubspotBatch } from '../../connectors/hubspot/parse.js';
import type { RawRequest } from '../../connectors/types.js';
import { sdkFor, startWebhookReceiver, useHubspotSandbox } from '../helpers/hubspot-sandbox.js';
import type { ReceivedRequest, WebhookReceiver } from '../helpers/hubspot-sandbox.js';

const HUBSPOT_DEFINED = 'HUBSPOT_DEFINED' as AssociationSpecAssociationCategoryEnum;

/** The SDK's ApiException: `code` is the HTTP status. */
async function failure(promise: Promise<unknown>): Promise<{
  code: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}> {
  try {
    await promise;
  } catch (err) {
    return err as { code: number; body: Record<string, unknown>; headers: Record<string, string> };
  }
  throw new Error('expected the call to fail');
}

describe('sandbox HubSpot', () => {
  const ctx = useHubspotSandbox({ rateLimit: { max: 10_000 } });
  let sdk: Client;
  beforeAll(() => {
    sdk = sdkFor(ctx.sandbox);
  });
  beforeEach(() => {
    ctx.sandbox.clearFaults();
    ctx.sandbox.setRateLimit(10_000);
  });

  describe('when the SDK does CRUD on contacts', () => {
    it('creates (201), reads with properties, updates (PATCH) and archives (204)', async () => {
      const created = await sdk.crm.contacts.basicApi.create({
        properties: { email: 'ada@example.com', firstname: 'Ada' },
        associations: [],
      });
      expect(created.id).toMatch(/^[0-9]+$/);
      expect(created.properties['hs_object_id']).toBe(created.id);
      expect(created.createdAt).toBeInstanceOf(Date);
      expect(created.archived).toBe(false);

      const read = await sdk.crm.contacts.basicApi.getById(created.id, ['email', 'phone']);
      expect(read.properties).toMatchObject({ email: 'ada@example.com', phone: null });
      expect(Date.parse(read.properties['lastmodifieddate'] ?? '')).not.toBeNaN();

      const updated = await sdk.crm.contacts.basicApi.update(created.id, {
        properties: { firstname: 'Augusta' },
      });
      expect(updated.properties['firstname']).toBe('Augusta');
      expect(updated.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());

      await sdk.crm.contacts.basicApi.archive(created.id);
      const gone = await failure(sdk.crm.contacts.basicApi.getById(created.id));
      expect(gone.code).toBe(404);
      expect(gone.body['category']).toBe('OBJECT_NOT_FOUND');
      const archived = await sdk.crm.contacts.basicApi.getById(
        created.id,
        undefined,
        undefined,
        undefined,
        true,
      );
      expect(archived.archived).toBe(true);
    });

    it('refuses an unknown property with 400 and changes nothing', async () => {
      const contact = await sdk.crm.contacts.basicApi.create({
        properties: { email: 'x@example.com' },
        associations: [],
      });
      const err = await failure(
        sdk.crm.contacts.basicApi.update(contact.id, {
          properties: { no_such_property: '1', firstname: 'X' },
        }),
      );
      expect(err.code).toBe(400);
      expect(err.body['category']).toBe('VALIDATION_ERROR');
      expect(ctx.sandbox.record('contacts', contact.id)?.properties['firstname']).toBeUndefined();
    });

    it('lists with paging', async () => {
      const first = await sdk.crm.deals.basicApi.getPage(2);
      ctx.sandbox.seed('deals', [{ dealname: 'a' }, { dealname: 'b' }, { dealname: 'c' }]);
      const page1 = await sdk.crm.deals.basicApi.getPage(2, undefined, ['dealname']);
      expect(first.results.length).toBe(0);
      expect(page1.results.map((r) => r.properties['dealname'])).toEqual(['a', 'b']);
      const page2 = await sdk.crm.deals.basicApi.getPage(2, page1.paging?.next?.after, [
        'dealname',
      ]);
      expect(page2.results.map((r) => r.properties['dealname'])).toEqual(['c']);
      expect(page2.paging).toBeUndefined();
    });
  });

  describe('when the SDK uses batch endpoints', () => {
    it('creates, reads (missing ids as 207 errors) and updates up to 100 inputs', async () => {
      const created = await sdk.crm.companies.batchApi.create({
        inputs: [{ properties: { name: 'A' } }, { properties: { name: 'B' } }].map((i) => ({
          ...i,
          associations: [],
        })),
      });
      expect(created.results.map((r) => r.properties['name']).sort()).toEqual(['A', 'B']);
      const ids = created.results.map((r) => r.id);

      const read = await sdk.crm.companies.batchApi.read({
        inputs: [...ids, '1'].map((id) => ({ id })),
        properties: ['name'],
        propertiesWithHistory: [],
      });
      expect(read.results.map((r) => r.id).sort()).toEqual([...ids].sort());
      expect('errors' in read && read.errors?.[0]?.context?.['ids']).toEqual(['1']);

      await sdk.crm.companies.batchApi.update({
        inputs: ids.map((id) => ({ id, properties: { city: 'Berlin' } })),
      });
      for (const id of ids)
        expect(ctx.sandbox.record('companies', id)?.properties['city']).toBe('Berlin');
    });

    it('refuses 101 inputs and a batch update naming a missing id, writing nothing', async () => {
      const [id] = ctx.sandbox.seed('companies', [{ name: 'Keep' }]);
      const tooMany = await failure(
        sdk.crm.companies.batchApi.read({
          inputs: Array.from({ length: 101 }, (_, i) => ({ id: String(i) })),
          properties: [],
          propertiesWithHistory: [],
        }),
      );
      expect(tooMany.code).toBe(400);
      const missing = await failure(
        sdk.crm.companies.batchApi.update({
          inputs: [
            { id: id as string, properties: { name: 'Changed' } },
            { id: '424242', properties: { name: 'Nope' } },
          ],
        }),
      );
      expect(missing.code).toBe(400);
      expect(missing.body['category']).toBe('OBJECT_NOT_FOUND');
      expect(ctx.sandbox.record('companies', id as string)?.properties['name']).toBe('Keep');
    });
  });

  describe('when the SDK searches', () => {
    it('filters on lastmodifieddate, sorts and pages with after', async () => {
      const start = Date.now() + 10_000_000;
      const ids = Array.from(
        { length: 7 },
        (_, i) =>
          ctx.sandbox.seed('contacts', [{ email: `s${i}@search.test` }], {
            at: start + i * 1000,
          })[0],
      );
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await sdk.crm.contacts.searchApi.doSearch({
          filterGroups: [
            {
              filters: [
                {
                  propertyName: 'lastmodifieddate',
                  operator: 'GTE' as FilterOperatorEnum,
                  value: String(start + 1000),
                },
              ],
            },
          ],
          sorts: [
            { propertyName: 'lastmodifieddate', direction: 'DESCENDING' } as unknown as string,
          ],
          properties: ['email'],
          limit: 4,
          ...(after === undefined ? {} : { after }),
        });
        expect(page.total).toBe(6);
        seen.push(...page.results.map((r) => r.id));
        after = page.paging?.next?.after;
      } while (after !== undefined);
      expect(seen).toEqual(ids.slice(1).reverse());
    });

    it('supports IN, NEQ, CONTAINS_TOKEN across filterGroups (OR) and refuses limit 201', async () => {
      const [a, b] = ctx.sandbox.seed('contacts', [
        { email: 'in1@token.test', firstname: 'Grace', lastname: 'Hopper' },
        { email: 'in2@token.test', firstname: 'Alan', lastname: 'Turing' },
      ]);
      const page = await sdk.crm.contacts.searchApi.doSearch({
        filterGroups: [
          {
            filters: [
              {
                propertyName: 'email',
                operator: 'IN' as FilterOperatorEnum,
                values: ['in1@token.test'],
              },
            ],
          },
          {
            filters: [
              {
                propertyName: 'lastname',
                operator: 'CONTAINS_TOKEN' as FilterOperatorEnum,
                value: 'turing',
              },
              { propertyName: 'firstname', operator: 'NEQ' as FilterOperatorEnum, value: 'Grace' },
            ],
          },
        ],
        sorts: [],
        properties: ['email'],
        limit: 10,
      });
      expect(page.results.map((r) => r.id).sort()).toEqual([a, b].sort());
      const tooBig = await failure(
        sdk.crm.contacts.searchApi.doSearch({
          filterGroups: [],
          sorts: [],
          properties: [],
          limit: 201,
        }),
      );
      expect(tooBig.code).toBe(400);
    });

    it('refuses to page past 10,000 results with a 400', async () => {
      const sandbox = await startHubspotSandbox({ rateLimit: { max: 10_000 } });
      try {
        sandbox.seed(
          'deals',
          Array.from({ length: 10_050 }, (_, i) => ({ dealname: `d${i}` })),
        );
        const client = sdkFor(sandbox);
        const request = { filterGroups: [], sorts: [], properties: ['dealname'], limit: 200 };
        const last = await client.crm.deals.searchApi.doSearch({ ...request, after: '9800' });
        expect(last.total).toBe(10_050);
        expect(last.results).toHaveLength(200);
        expect(last.paging).toBeUndefined();
        const past = await failure(
          client.crm.deals.searchApi.doSearch({ ...request, after: '9900' }),
        );
        expect(past.code).toBe(400);
        expect(String(past.body['message'])).toContain('10000');
      } finally {
        await sandbox.close();
      }
    });
  });

  describe('when the SDK creates properties', () => {
    it('creates a group and a property (201), then answers 409 with HubSpot conflict bodies', async () => {
      const group = { name: 'crm_ledger', label: 'crm-ledger', displayOrder: -1 };
      const property = {
        name: 'crm_ledger_status',
        label: 'crm-ledger status',
        groupName: 'crm_ledger',
        type: 'string' as PropertyCreateTypeEnum,
        fieldType: 'text' as PropertyCreateFieldTypeEnum,
      };
      const unknownGroup = await failure(
        sdk.crm.properties.coreApi.create('deals', { ...property, groupName: 'nope' }),
      );
      expect(unknownGroup.code).toBe(400);
      expect((await sdk.crm.properties.groupsApi.create('deals', group)).name).toBe('crm_ledger');
      expect((await sdk.crm.properties.coreApi.create('deals', property)).name).toBe(
        'crm_ledger_status',
      );
      const again = await failure(sdk.crm.properties.groupsApi.create('deals', group));
      expect(again.code).toBe(409);
      const dup = await failure(sdk.crm.properties.coreApi.create('deals', property));
      expect(dup.code).toBe(409);
      expect(dup.body).toMatchObject({ status: 'error', category: 'OBJECT_ALREADY_EXISTS' });
      const read = await sdk.crm.properties.coreApi.getByName('deals', 'crm_ledger_status');
      expect(read.groupName).toBe('crm_ledger');
    });
  });

  describe('when the SDK creates a note associated with a record', () => {
    it('stores the association both ways (202 note→contact, 201 contact→note)', async () => {
      const contact = await sdk.crm.contacts.basicApi.create({
        properties: { email: 'n@example.com' },
        associations: [],
      });
      const note = await sdk.crm.objects.notes.basicApi.create({
        properties: { hs_timestamp: new Date().toISOString(), hs_note_body: '<p>hello</p>' },
        associations: [
          {
            to: { id: contact.id },
            types: [{ associationCategory: HUBSPOT_DEFINED, associationTypeId: 202 }],
          },
        ],
      });
      const links = await sdk.crm.associations.v4.basicApi.getPage('contacts', contact.id, 'notes');
      expect(links.results.map((r) => String(r.toObjectId))).toEqual([note.id]);
      expect(links.results[0]?.associationTypes[0]?.typeId).toBe(201);
      const batch = await sdk.crm.associations.v4.batchApi.getPage('contacts', 'notes', {
        inputs: [{ id: contact.id }],
      });
      expect(batch.results[0]?._from.id).toBe(contact.id);
      expect(ctx.sandbox.notesFor('contacts', contact.id).map((n) => n.id)).toEqual([note.id]);
    });

    it('refuses a note without hs_timestamp or with a wrong association type', async () => {
      const contact = await sdk.crm.contacts.basicApi.create({
        properties: { email: 'm@example.com' },
        associations: [],
      });
      const noTimestamp = await failure(
        sdk.crm.objects.notes.basicApi.create({
          properties: { hs_note_body: 'x' },
          associations: [],
        }),
      );
      expect(noTimestamp.code).toBe(400);
      const wrongType = await failure(
        sdk.crm.objects.notes.basicApi.create({
          properties: { hs_timestamp: '2024-01-01T00:00:00Z', hs_note_body: 'x' },
          associations: [
            {
              to: { id: contact.id },
              types: [{ associationCategory: HUBSPOT_DEFINED, associationTypeId: 999 }],
            },
          ],
        }),
      );
      expect(wrongType.code).toBe(400);
      expect(ctx.sandbox.notesFor('contacts', contact.id)).toEqual([]);
    });
  });

  describe('when the rate limit is reached', () => {
    it('answers 429 with HubSpot body, Retry-After and rate-limit headers', async () => {
      ctx.sandbox.setRateLimit(2);
      const before = ctx.sandbox.stats().served429;
      const ok = await sdk.crm.contacts.basicApi.getPage(1);
      expect(ok.results.length).toBeGreaterThanOrEqual(0);
      await sdk.crm.contacts.basicApi.getPage(1);
      const limited = await failure(sdk.crm.contacts.basicApi.getPage(1));
      expect(limited.code).toBe(429);
      expect(limited.body).toMatchObject({
        status: 'error',
        errorType: 'RATE_LIMIT',
        policyName: 'TEN_SECONDLY_ROLLING',
        message: 'You have reached your ten_secondly_rolling limit.',
      });
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(9);
      expect(limited.headers['x-hubspot-ratelimit-max']).toBe('2');
      expect(limited.headers['x-hubspot-ratelimit-remaining']).toBe('0');
      expect(limited.headers['x-hubspot-ratelimit-interval-milliseconds']).toBe('10000');
      expect(ctx.sandbox.stats().served429).toBe(before + 1);
    });

    it('lets requests through again once the window has rolled', async () => {
      ctx.sandbox.setRateLimit(1, 300);
      await sdk.crm.contacts.basicApi.getPage(1);
      const limited = await failure(sdk.crm.contacts.basicApi.getPage(1));
      expect(limited.code).toBe(429);
      expect(limited.headers['retry-after']).toBe('1');
      await new Promise((resolve) => setTimeout(resolve, 350));
      await expect(sdk.crm.contacts.basicApi.getPage(1)).resolves.toBeDefined();
    });
  });

  describe('when faults are injected', () => {
    it('fails the next N requests with the given 5xx, writing nothing', async () => {
      ctx.sandbox.failNext(2, { status: 503 });
      const count = ctx.sandbox.records('contacts').length;
      const first = await failure(
        sdk.crm.contacts.basicApi.create({ properties: { email: 'f@x.com' }, associations: [] }),
      );
      const second = await failure(
        sdk.crm.contacts.basicApi.create({ properties: { email: 'f@x.com' }, associations: [] }),
      );
      expect([first.code, second.code]).toEqual([503, 503]);
      expect(ctx.sandbox.records('contacts').length).toBe(count);
      await sdk.crm.contacts.basicApi.create({
        properties: { email: 'f@x.com' },
        associations: [],
      });
      expect(ctx.sandbox.records('contacts').length).toBe(count + 1);
    });

    it('can fail after the write (a crash mid-way): the change is there, the answer is 500', async () => {
      ctx.sandbox.failNext(1, { phase: 'after' });
      const count = ctx.sandbox.records('contacts').length;
      const err = await failure(
        sdk.crm.contacts.basicApi.create({ properties: { email: 'g@x.com' }, associations: [] }),
      );
      expect(err.code).toBe(500);
      expect(ctx.sandbox.records('contacts').length).toBe(count + 1);
    });
  });
});

describe('sandbox HubSpot auth', () => {
  const oauth = { clientId: 'client-id', clientSecret: 'client-secret', refreshToken: 'refresh-1' };
  const ctx = useHubspotSandbox({ token: 'initial-token', oauth });

  it('refuses a missing or unknown token with 401 INVALID_AUTHENTICATION', async () => {
    const wrong = await failure(
      sdkFor(ctx.sandbox, 'someone-else').crm.contacts.basicApi.getPage(1),
    );
    expect(wrong.code).toBe(401);
    expect(wrong.body['category']).toBe('INVALID_AUTHENTICATION');
  });

  it('expires a token on demand (401 EXPIRED_AUTHENTICATION) and issues a new one by refresh', async () => {
    const sdk = sdkFor(ctx.sandbox, 'initial-token');
    await sdk.crm.contacts.basicApi.getPage(1);
    ctx.sandbox.expireToken('initial-token');
    const expired = await failure(sdk.crm.contacts.basicApi.getPage(1));
    expect(expired.code).toBe(401);
    expect(expired.body).toMatchObject({ status: 'error', category: 'EXPIRED_AUTHENTICATION' });

    const badRefresh = await failure(
      sdk.oauth.tokensApi.create(
        'refresh_token',
        undefined,
        undefined,
        oauth.clientId,
        oauth.clientSecret,
        'stolen',
      ),
    );
    expect(badRefresh.code).toBe(400);
    expect(badRefresh.body['status']).toBe('BAD_REFRESH_TOKEN');

    const token = await sdk.oauth.tokensApi.create(
      'refresh_token',
      undefined,
      undefined,
      oauth.clientId,
      oauth.clientSecret,
      oauth.refreshToken,
    );
    expect(token.expiresIn).toBe(1800);
    expect(ctx.sandbox.issuedTokens()).toEqual([token.accessToken]);
    await expect(
      sdkFor(ctx.sandbox, token.accessToken).crm.contacts.basicApi.getPage(1),
    ).resolves.toBeDefined();
  });
});

describe('sandbox HubSpot webhooks', () => {
  const appId = 777;
  const clientSecret = 'webhook-secret-for-tests';
  let receiver: WebhookReceiver;
  let sandbox: HubspotSandbox;
  let sdk: Client;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    sandbox = await startHubspotSandbox({
      appId,
      clientSecret,
      portalId: 4242,
      webhookTarget: receiver.url,
      webhook: { flushMs: 5, retryBaseMs: 20 },
    });
    sdk = sdkFor(sandbox);
  });
  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    receiver.respondWith(200);
  });

  function asRaw(req: ReceivedRequest): RawRequest {
    return {
      method: req.method,
      originalUrl: req.url,
      headers: req.headers,
      body: req.body,
    };
  }

  function eventsOf(received: ReceivedRequest[]): WebhookEvent[] {
    return received.flatMap((r) => JSON.parse(r.body.toString('utf8')) as WebhookEvent[]);
  }

  it('POSTs a v3-signed batch that our connector verifies and parses, attributed to the app', async () => {
    const contact = await sdk.crm.contacts.basicApi.create({
      properties: { email: 'hook@example.com', firstname: 'Hook' },
      associations: [],
    });
    await receiver.waitFor((r) => eventsOf(r).length >= 3);
    await sandbox.webhooksIdle();
    for (const req of receiver.received) {
      expect(verifyHubspotRequest(asRaw(req), { secret: clientSecret }, Date.now())).toEqual({
        ok: true,
      });
      expect(verifyHubspotRequest(asRaw(req), { secret: 'wrong' }, Date.now())).toMatchObject({
        ok: false,
        code: 'SIGNATURE_INVALID',
      });
    }
    const events = eventsOf(receiver.received);
    expect(events.map((e) => e.subscriptionType).sort()).toEqual([
      'contact.creation',
      'contact.propertyChange',
      'contact.propertyChange',
    ]);
    expect(
      events.every(
        (e) => e.objectId === Number(contact.id) && e.portalId === 4242 && e.appId === appId,
      ),
    ).toBe(true);
    expect(
      events.every((e) => e.changeSource === 'INTEGRATION' && e.sourceId === String(appId)),
    ).toBe(true);
    expect(events.find((e) => e.subscriptionType === 'contact.creation')?.changeFlag).toBe('NEW');

    const parsed = parseHubspotBatch(Buffer.concat([Buffer.from(JSON.stringify(events))]), {
      ownAppId: appId,
    });
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.events.every((p) => p.event.actor.type === 'crm-ledger')).toBe(true);
    expect(parsed.events.map((p) => p.event.tenant)).toContain('hubspot:4242');
  });

  it('attributes a change made as a user to CRM_UI / userId:<n>, one event per changed property', async () => {
    const [id] = sandbox.seed('contacts', [{ email: 'u@example.com', firstname: 'U' }]);
    sandbox.updateAsUser(
      'contacts',
      id as string,
      { firstname: 'V', lastname: 'W', email: 'u@example.com' },
      77,
    );
    await receiver.waitFor((r) => eventsOf(r).length >= 2);
    await sandbox.webhooksIdle();
    const events = eventsOf(receiver.received);
    expect(events.map((e) => [e.propertyName, e.propertyValue]).sort()).toEqual([
      ['firstname', 'V'],
      ['lastname', 'W'],
    ]);
    expect(events.every((e) => e.changeSource === 'CRM_UI' && e.sourceId === 'userId:77')).toBe(
      true,
    );
    const parsed = parseHubspotBatch(receiver.received[0]?.body ?? Buffer.alloc(0), {
      ownAppId: appId,
    });
    expect(parsed.ok && parsed.events[0]?.event.actor).toEqual({
      type: 'user',
      id: 'hubspot:user:77',
    });
  });

  it('retries a batch answered 500 with attemptNumber + 1 and a fresh valid signature', async () => {
    receiver.respondWith(500, 1);
    const [id] = sandbox.seed('deals', [{ dealname: 'retry' }]);
    sandbox.updateAsUser('deals', id as string, { dealname: 'retried' }, 5);
    await receiver.waitFor((r) => r.length >= 2);
    await sandbox.webhooksIdle();
    const [first, second] = receiver.received;
    const a = eventsOf([first as ReceivedRequest]);
    const b = eventsOf([second as ReceivedRequest]);
    expect(a.map((e) => e.attemptNumber)).toEqual([0]);
    expect(b.map((e) => e.attemptNumber)).toEqual([1]);
    expect(b[0]?.eventId).toBe(a[0]?.eventId);
    expect(
      verifyHubspotRequest(asRaw(second as ReceivedRequest), { secret: clientSecret }, Date.now()),
    ).toEqual({ ok: true });
    expect(sandbox.stats().webhooks.failedAttempts).toBeGreaterThanOrEqual(1);
  });

  it('batches at most 100 events per request and holds them while paused', async () => {
    sandbox.pauseWebhooks();
    sandbox.seed(
      'contacts',
      Array.from({ length: 150 }, (_, i) => ({ email: `bulk${i}@example.com` })),
      { webhooks: true },
    );
    expect(sandbox.stats().webhooks.pending).toBeGreaterThanOrEqual(300);
    expect(receiver.received).toHaveLength(0);
    sandbox.resumeWebhooks();
    await receiver.waitFor((r) => eventsOf(r).length >= 300);
    await sandbox.webhooksIdle();
    expect(receiver.received.every((r) => eventsOf([r]).length <= 100)).toBe(true);
    expect(eventsOf(receiver.received)).toHaveLength(300);
    expect(sandbox.stats().webhooks.pending).toBe(0);
  });
});
