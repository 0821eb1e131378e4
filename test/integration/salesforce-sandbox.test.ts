/**
 * jsforce 3.10.16 (the real SDK) against the Salesforce sandbox: REST CRUD, sObject Collections,
 * SOQL query/queryMore, OAuth refresh, limits and faults, Outbound Messages parsed by our own
 * connector, and CDC over CometD with durable replay through jsforce's streaming client.
 */
import jsforce from 'jsforce';
import { StreamingExtension } from 'jsforce/lib/api/streaming.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { SalesforceSandbox } from '../../connectors/sandbox/salesforce/index.js';
import { createSalesforceConnector } from '../../connectors/salesforce/index.js';
import { normaliseSalesforceId } from '../../connectors/salesforce/org-allow-list.js';
import {
  API_VERSION,
  connectJsforce,
  startOmReceiver,
  startSandbox,
  waitFor,
} from '../helpers/salesforce-sandbox.js';
import type { OmReceiver } from '../helpers/salesforce-sandbox.js';

let sandbox: SalesforceSandbox | undefined;
let receiver: OmReceiver | undefined;
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await sandbox?.close();
  await receiver?.close();
  sandbox = undefined;
  receiver = undefined;
});

interface SaveResult {
  id: string;
  success: boolean;
  errors: { statusCode: string }[];
}

async function rejection(
  promise: PromiseLike<unknown>,
): Promise<{ errorCode?: string; name?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as { errorCode?: string };
  }
  throw new Error('expected the call to fail');
}

describe('Salesforce sandbox', () => {
  describe('when jsforce does CRUD on sObjects', () => {
    it('creates, reads, updates and deletes with real-shaped ids and errors', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox);

      const created = (await conn
        .sobject('Contact')
        .create({ LastName: 'Lee', Email: 'ann@x.io' })) as SaveResult;
      expect(created.success).toBe(true);
      expect(created.id).toMatch(/^003[A-Za-z0-9]{15}$/);
      // the 3-character suffix is the real case-safe checksum
      expect(normaliseSalesforceId(created.id)).toBe(created.id);

      const read = await conn.sobject('Contact').retrieve(created.id);
      expect(read).toMatchObject({
        Id: created.id,
        LastName: 'Lee',
        Email: 'ann@x.io',
        IsDeleted: false,
      });
      expect(read['SystemModstamp']).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$/);

      await conn.sobject('Contact').update({ Id: created.id, Email: 'ann@y.io' });
      expect(sandbox.record(created.id)?.['Email']).toBe('ann@y.io');

      await conn.sobject('Contact').destroy(created.id);
      expect((await rejection(conn.sobject('Contact').retrieve(created.id))).errorCode).toBe(
        'ENTITY_IS_DELETED',
      );

      const prefixes = await Promise.all([
        conn.sobject('Lead').create({ LastName: 'L', Company: 'C' }),
        conn.sobject('Account').create({ Name: 'Acme' }),
      ]);
      expect((prefixes[0] as SaveResult).id.slice(0, 3)).toBe('00Q');
      expect((prefixes[1] as SaveResult).id.slice(0, 3)).toBe('001');
      const task = (await conn
        .sobject('Task')
        .create({ Subject: 'x', WhatId: (prefixes[1] as SaveResult).id })) as SaveResult;
      expect(task.id.slice(0, 3)).toBe('00T');
    });

    it('refuses bad writes with Salesforce error codes and changes nothing', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox);
      expect((await rejection(conn.sobject('Contact').create({ Email: 'x@y.io' }))).errorCode).toBe(
        'REQUIRED_FIELD_MISSING',
      );
      expect(
        (await rejection(conn.sobject('Contact').create({ LastName: 'x', SystemModstamp: 'now' })))
          .errorCode,
      ).toBe('INVALID_FIELD_FOR_INSERT_UPDATE');
      expect(
        (
          await rejection(
            conn.sobject('Task').create({ Subject: 'x', WhoId: '0015g0000000009AAA' }),
          )
        ).errorCode,
      ).toBe('INVALID_CROSS_REFERENCE_KEY');
      expect(
        (
          await rejection(
            conn.sobject('Contact').update({ Id: '0035g00000000ZZAAA', LastName: 'x' }),
          )
        ).errorCode,
      ).toBe('NOT_FOUND');
      expect(sandbox.records('Contact')).toEqual([]);
      expect(sandbox.tasks()).toEqual([]);
      expect(sandbox.cdcEvents()).toEqual([]);
    });
  });

  describe('when jsforce uses sObject Collections', () => {
    it('returns per-record results, and rolls everything back with allOrNone', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox);
      const created = (await conn
        .sobject('Contact')
        .create([{ LastName: 'A' }, { LastName: 'B' }, { LastName: 'C' }])) as SaveResult[];
      expect(created.map((r) => r.success)).toEqual([true, true, true]);
      expect(sandbox.requests().filter((r) => r.path.endsWith('/composite/sobjects'))).toHaveLength(
        1,
      );

      const missing = '0035g00000000ZZAAA';
      const partial = (await conn.sobject('Contact').update(
        [
          { Id: created[0]!.id, Title: 'T' },
          { Id: missing, Title: 'T' },
        ],
        { allOrNone: false },
      )) as SaveResult[];
      expect(partial.map((r) => r.success)).toEqual([true, false]);
      expect(partial[1]?.errors[0]?.statusCode).toBe('NOT_FOUND');
      expect(sandbox.record(created[0]!.id)?.['Title']).toBe('T');

      const all = (await conn.sobject('Contact').update(
        [
          { Id: created[1]!.id, Title: 'U' },
          { Id: missing, Title: 'U' },
        ],
        { allOrNone: true },
      )) as SaveResult[];
      expect(all.map((r) => r.success)).toEqual([false, false]);
      expect(all[0]?.errors[0]?.statusCode).toBe('ALL_OR_NONE_OPERATION_ROLLED_BACK');
      expect(sandbox.record(created[1]!.id)?.['Title']).toBeUndefined();

      const deleted = (await conn
        .sobject('Contact')
        .destroy([created[1]!.id, created[2]!.id])) as SaveResult[];
      expect(deleted.map((r) => r.success)).toEqual([true, true]);
      expect(sandbox.records('Contact').map((r) => r.Id)).toEqual([created[0]!.id]);
    });
  });

  describe('when jsforce queries', () => {
    it('pages with nextRecordsUrl/queryMore, filters, sorts and sees deletes with queryAll', async () => {
      sandbox = await startSandbox({ queryBatchSize: 2 });
      const conn = connectJsforce(sandbox);
      const ids = (
        (await conn
          .sobject('Contact')
          .create(
            ['E', 'D', 'C', 'B', 'A'].map((name) => ({ LastName: name, Email: `${name}@x.io` })),
          )) as SaveResult[]
      ).map((r) => r.id);

      const first = await conn.query<{ LastName: string }>(
        'SELECT Id, LastName FROM Contact ORDER BY LastName',
      );
      expect(first).toMatchObject({ totalSize: 5, done: false });
      expect(first.records.map((r) => r.LastName)).toEqual(['A', 'B']);
      const second = await conn.queryMore<{ LastName: string }>(first.nextRecordsUrl!);
      const third = await conn.queryMore<{ LastName: string }>(second.nextRecordsUrl!);
      expect([...second.records, ...third.records].map((r) => r.LastName)).toEqual(['C', 'D', 'E']);
      expect(third.done).toBe(true);

      const found = await conn
        .sobject('Contact')
        .find(
          {
            LastName: { $in: ['b', 'D'] },
            SystemModstamp: { $gte: jsforce.SfDate.toDateTimeLiteral('2000-01-01T00:00:00Z') },
          },
          ['Id', 'LastName'],
        )
        .sort('-LastName')
        .limit(5);
      // text comparisons are case-insensitive, as in Salesforce
      expect(found.map((r) => r['LastName'])).toEqual(['D', 'B']);

      await conn.sobject('Contact').destroy(ids[0]!);
      const live = await conn.query('SELECT Id FROM Contact');
      expect(live.totalSize).toBe(4);
      const all = await conn
        .query<{ Id: string; IsDeleted: boolean }>(
          'SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true',
        )
        .scanAll(true);
      expect(all.records).toEqual([expect.objectContaining({ Id: ids[0], IsDeleted: true })]);

      expect((await rejection(conn.query('SELECT FROM Contact'))).errorCode).toBe(
        'MALFORMED_QUERY',
      );
    });
  });

  describe('when the session expires', () => {
    it('jsforce refreshes the token through the OAuth endpoint and replays the call', async () => {
      sandbox = await startSandbox({
        token: 'initial-token',
        oauth: { clientId: 'cid', clientSecret: 'secret', refreshToken: 'rt-1' },
      });
      const conn = connectJsforce(sandbox, {
        accessToken: 'initial-token',
        refreshToken: 'rt-1',
        oauth2: { clientId: 'cid', clientSecret: 'secret', loginUrl: sandbox.url },
      });
      const refreshed: string[] = [];
      conn.on('refresh', (token: string) => refreshed.push(token));
      await conn.sobject('Contact').create({ LastName: 'Before' });
      sandbox.expireSessions();
      await conn.sobject('Contact').create({ LastName: 'After' });

      expect(refreshed).toHaveLength(1);
      expect(conn.accessToken).toBe(refreshed[0]);
      expect(
        sandbox.requests().map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`),
      ).toEqual([
        `POST /services/data/v${API_VERSION}/sobjects/Contact 201`,
        `POST /services/data/v${API_VERSION}/sobjects/Contact 401`,
        'POST /services/oauth2/token 200',
        `POST /services/data/v${API_VERSION}/sobjects/Contact 201`,
      ]);
      expect(sandbox.records('Contact')).toHaveLength(2);
    });

    it('without a refresh flow the call fails with INVALID_SESSION_ID', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox);
      await conn.sobject('Contact').create({ LastName: 'Before' });
      sandbox.expireSessions();
      expect(
        (await rejection(conn.sobject('Contact').create({ LastName: 'After' }))).errorCode,
      ).toBe('INVALID_SESSION_ID');
      expect(sandbox.stats().sessionErrors).toBe(1);
    });
  });

  describe('when the API budget is used up', () => {
    it('answers 403 REQUEST_LIMIT_EXCEEDED and counts it', async () => {
      sandbox = await startSandbox({ apiRequestLimit: 2 });
      const conn = connectJsforce(sandbox);
      await conn.sobject('Contact').create({ LastName: 'A' });
      await conn.sobject('Contact').create({ LastName: 'B' });
      expect(conn.limitInfo?.apiUsage).toEqual({ used: 2, limit: 2 });
      expect((await rejection(conn.sobject('Contact').create({ LastName: 'C' }))).errorCode).toBe(
        'REQUEST_LIMIT_EXCEEDED',
      );
      expect(sandbox.stats().limitErrors).toBe(1);
      expect(sandbox.records('Contact')).toHaveLength(2);
      sandbox.setApiLimit(10);
      await conn.sobject('Contact').create({ LastName: 'C' });
      expect(sandbox.records('Contact')).toHaveLength(3);
    });
  });

  describe('when faults are injected', () => {
    it('fails a write with a 5xx error code and writes nothing; jsforce itself retries a GET', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox);
      const { id } = (await conn.sobject('Contact').create({ LastName: 'A' })) as SaveResult;
      sandbox.injectFaults({ status: 503, count: 1, match: '^PATCH ' });
      expect(
        (await rejection(conn.sobject('Contact').update({ Id: id, Title: 'x' }))).errorCode,
      ).toBe('SERVER_UNAVAILABLE');
      expect(sandbox.record(id)?.['Title']).toBeUndefined();

      sandbox.injectFaults({ status: 500, count: 1, match: '^GET ' });
      const read = await conn.sobject('Contact').retrieve(id);
      expect(read['LastName']).toBe('A');
      expect(
        sandbox
          .requests()
          .slice(-2)
          .map((r) => r.status),
      ).toEqual([500, 200]);
      expect(sandbox.stats().faultsServed).toBe(2);
    });
  });

  describe('when a record changes and an Outbound Message URL is set', () => {
    it('POSTs a SOAP message our connector authenticates and parses, retrying until acknowledged', async () => {
      receiver = await startOmReceiver();
      sandbox = await startSandbox({
        outboundMessageUrl: receiver.url,
        outboundRetry: { initialDelayMs: 30, maxDelayMs: 100 },
      });
      receiver.failNext(2);
      const conn = connectJsforce(sandbox);
      const { id } = (await conn
        .sobject('Contact')
        .create({ LastName: 'Lee', Email: 'ann@x.io' })) as SaveResult;

      const deliveries = await waitFor(() => {
        const all = sandbox!.outboundDeliveries();
        return all.some((d) => d.acked) && all;
      }, 'an acknowledged Outbound Message');
      expect(receiver.bodies).toHaveLength(1);
      expect(deliveries.map((d) => [d.attempt, d.status, d.acked])).toEqual([
        [1, 500, false],
        [2, 500, false],
        [3, 200, true],
      ]);
      expect(sandbox.outboundBacklog()).toBe(0);

      const connector = createSalesforceConnector({ orgIds: [sandbox.orgId] });
      const request = {
        method: 'POST',
        originalUrl: '/webhooks/salesforce',
        headers: {},
        body: receiver.bodies[0]!,
      };
      expect(connector.verifyRequest(request, Date.now())).toEqual({ ok: true });
      const parsed = connector.parse(request);
      if (!parsed.ok) throw new Error(parsed.reason);
      expect(parsed.events).toHaveLength(1);
      expect(parsed.events[0]?.event).toMatchObject({
        tenant: sandbox.tenant,
        object: 'contact',
        recordId: id,
        kind: 'create',
        actor: { type: 'user', id: `salesforce:user:${sandbox.apiUserId}` },
        fields: { LastName: 'Lee', Email: 'ann@x.io' },
      });
      expect(receiver.bodies[0]!.toString()).not.toContain('SessionId');
    });
  });

  describe('when jsforce subscribes to CDC with the Replay extension', () => {
    it('delivers changes live, and after a restart from the saved replay id exactly the missed ones', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox, { callOptions: { client: 'crm-ledger' } });
      const channel = '/data/ChangeEvents';
      type Message = {
        payload: {
          ChangeEventHeader: {
            changeType: string;
            recordIds: string[];
            changeOrigin: string;
            commitUser: string;
          };
        };
        event: { replayId: number };
      };

      const live: Message[] = [];
      const first = conn.streaming.createClient([new StreamingExtension.Replay(channel, -1)]);
      const sub = first.subscribe(channel, (m: unknown) => live.push(m as Message));
      await new Promise<void>((resolve, reject) => void sub.then(resolve, reject));

      const a = (await conn.sobject('Contact').create({ LastName: 'A' })) as SaveResult;
      const b = (await conn.sobject('Contact').create({ LastName: 'B' })) as SaveResult;
      await waitFor(() => live.length === 2, 'two live CDC events');
      expect(live.map((m) => m.payload.ChangeEventHeader.recordIds[0])).toEqual([a.id, b.id]);
      expect(live[0]!.payload.ChangeEventHeader.changeOrigin).toBe(
        `com/salesforce/api/rest/${API_VERSION};client=crm-ledger`,
      );
      expect(live[1]!.event.replayId).toBeGreaterThan(live[0]!.event.replayId);
      const savedReplayId = live[1]!.event.replayId;
      first.disconnect();

      // While nobody listens: a user edits in the UI, the API deletes, a gap is published.
      sandbox.changeAsUser({
        userId: '0055g0000000042AAA',
        type: 'Contact',
        op: 'update',
        id: a.id,
        fields: { Title: 'CEO' },
      });
      await conn.sobject('Contact').destroy(b.id);
      sandbox.publishGap('Contact', [a.id]);

      const replayed: Message[] = [];
      const second = conn.streaming.createClient([
        new StreamingExtension.Replay(channel, savedReplayId),
      ]);
      cleanups.push(() => void second.disconnect());
      const sub2 = second.subscribe(channel, (m: unknown) => replayed.push(m as Message));
      await new Promise<void>((resolve, reject) => void sub2.then(resolve, reject));
      await waitFor(() => replayed.length >= 3, 'the three missed events');
      await conn.sobject('Contact').create({ LastName: 'C' });
      await waitFor(() => replayed.length === 4, 'one more live event');

      expect(replayed.map((m) => m.payload.ChangeEventHeader.changeType)).toEqual([
        'UPDATE',
        'DELETE',
        'GAP_UPDATE',
        'CREATE',
      ]);
      const replayIds = replayed.map((m) => m.event.replayId);
      expect(replayIds).toEqual([...replayIds].sort((x, y) => x - y));
      expect(replayIds[0]).toBeGreaterThan(savedReplayId);
      const userChange = replayed[0]!.payload.ChangeEventHeader;
      expect(userChange.changeOrigin).toBe('');
      expect(userChange.commitUser).toBe('0055g0000000042AAA');
      expect(sandbox.record(a.id)?.['LastModifiedById']).toBe('0055g0000000042AAA');
    });

    it('replays every retained event with -2 and refuses a replay id it never issued', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox);
      await conn.sobject('Contact').create({ LastName: 'A' });
      await conn.sobject('Account').create({ Name: 'Acme' });
      const all: unknown[] = [];
      const client = conn.streaming.createClient([
        new StreamingExtension.Replay('/data/ChangeEvents', -2),
      ]);
      cleanups.push(() => void client.disconnect());
      const sub = client.subscribe('/data/ChangeEvents', (m: unknown) => all.push(m));
      await new Promise<void>((resolve, reject) => void sub.then(resolve, reject));
      await waitFor(() => all.length === 2, 'both retained events');

      const bad = conn.streaming.createClient([
        new StreamingExtension.Replay('/data/ContactChangeEvent', 999_999),
      ]);
      cleanups.push(() => void bad.disconnect());
      const refused = await new Promise<unknown>(
        (resolve) =>
          void bad
            .subscribe('/data/ContactChangeEvent', () => undefined)
            .then(() => resolve(undefined), resolve),
      );
      expect(String((refused as { message?: string } | undefined)?.message)).toContain('replayId');
    });

    it('tells a client with an expired token through the AuthFailure extension', async () => {
      sandbox = await startSandbox();
      const conn = connectJsforce(sandbox);
      sandbox.expireSessions();
      conn.accessToken = 'test-token';
      const failure = await new Promise<{ error?: string; ext?: unknown }>((resolve) => {
        const client = conn.streaming.createClient([
          new StreamingExtension.AuthFailure((m: unknown) => resolve(m as { error?: string })),
        ]);
        cleanups.push(() => void client.disconnect());
        void client.subscribe('/data/ChangeEvents', () => undefined);
      });
      expect(failure.error).toBe('403::Handshake denied');
      expect(failure.ext).toEqual({ sfdc: { failureReason: '401::Authentication invalid' } });
      expect(sandbox.stats().cometdAuthFailures).toBeGreaterThan(0);
    });
  });
});
