/**
 * The CDC subscriber (jsforce streaming + Replay/AuthFailure extensions) against the sandbox's
 * CometD endpoint: one event per record, replay id saved only after handling, restart from the
 * saved id, redelivery after a handler failure, gaps, and re-authentication.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SalesforceSandbox } from '../../connectors/sandbox/salesforce/index.js';
import { startCdcSubscriber } from '../../connectors/salesforce/cdc.js';
import type { CdcSubscriber, ChangeEventHeader } from '../../connectors/salesforce/cdc.js';
import { SalesforceClient } from '../../connectors/salesforce/client.js';
import type { ParsedEvent } from '../../connectors/types.js';
import type { RecordRef } from '../../src/model/change-event.js';
import {
  API_VERSION,
  connectJsforce,
  startSandbox,
  waitFor,
} from '../helpers/salesforce-sandbox.js';

let sandbox: SalesforceSandbox | undefined;
const subscribers: CdcSubscriber[] = [];

afterEach(async () => {
  for (const subscriber of subscribers.splice(0)) await subscriber.stop();
  await sandbox?.close();
  sandbox = undefined;
});

const USER = '0055g0000000042AAA';

function memoryReplayStore() {
  const saves: number[] = [];
  return {
    saves,
    load: () => Promise.resolve(saves.at(-1)),
    save: (replayId: number) => {
      saves.push(replayId);
      return Promise.resolve();
    },
  };
}

interface Sink {
  batches: ParsedEvent[][];
  gaps: { refs: RecordRef[]; header: ChangeEventHeader }[];
  ids(): string[];
}

function sink(): Sink {
  const batches: ParsedEvent[][] = [];
  return {
    batches,
    gaps: [],
    ids: () => batches.flat().map((e) => `${e.event.kind}:${e.event.recordId}`),
  };
}

async function subscribe(
  sb: SalesforceSandbox,
  store: ReturnType<typeof memoryReplayStore>,
  into: Sink,
  extra: Partial<Parameters<typeof startCdcSubscriber>[0]> = {},
): Promise<CdcSubscriber> {
  const subscriber = await startCdcSubscriber({
    connection: connectJsforce(sb, { callOptions: { client: 'crm-ledger' } }),
    tenant: sb.tenant,
    replay: store,
    onEvents: (events) => {
      into.batches.push(events);
      return Promise.resolve();
    },
    onGap: (refs, header) => {
      into.gaps.push({ refs, header });
      return Promise.resolve();
    },
    retryDelayMs: 50,
    ...extra,
  });
  subscribers.push(subscriber);
  return subscriber;
}

describe('startCdcSubscriber', () => {
  describe('when changes happen while it runs, and after it stopped', () => {
    it('hands over one event per record, saves after each, and resumes exactly where it saved', async () => {
      sandbox = await startSandbox();
      const store = memoryReplayStore();
      const got = sink();
      const first = await subscribe(sandbox, store, got);
      const conn = connectJsforce(sandbox, { callOptions: { client: 'crm-ledger' } });

      const [a, b] = (await conn
        .sobject('Contact')
        .create([{ LastName: 'A' }, { LastName: 'B' }])) as { id: string }[];
      // the same change to two records in one transaction: one CDC event with two record ids
      await conn.sobject('Contact').update([
        { Id: a!.id, Title: 'X' },
        { Id: b!.id, Title: 'X' },
      ]);
      await waitFor(() => got.batches.length === 3, 'three CDC messages');
      expect(got.batches.map((batch) => batch.length)).toEqual([1, 1, 2]);
      expect(got.ids()).toEqual([
        `create:${a!.id}`,
        `create:${b!.id}`,
        `update:${a!.id}`,
        `update:${b!.id}`,
      ]);
      expect(got.batches[2]!.every((e) => e.event.actor.type === 'crm-ledger')).toBe(true);
      const lastReplayId = sandbox.cdcEvents().at(-1)!.replayId;
      await waitFor(() => store.saves.at(-1) === lastReplayId, 'the last replay id saved');
      expect(first.savedReplayId).toBe(lastReplayId);
      await first.stop();

      sandbox.changeAsUser({
        userId: USER,
        type: 'Contact',
        op: 'update',
        id: a!.id,
        fields: { Email: 'a@x.io' },
      });
      sandbox.changeAsUser({ userId: USER, type: 'Contact', op: 'delete', id: b!.id });

      const after = sink();
      await subscribe(sandbox, store, after);
      await waitFor(() => after.batches.length === 2, 'the two missed changes');
      expect(after.ids()).toEqual([`update:${a!.id}`, `delete:${b!.id}`]);
      expect(after.batches[0]![0]!.event).toMatchObject({
        actor: { type: 'user', id: `salesforce:user:${USER}` },
        fields: { Email: 'a@x.io' },
      });
      // nothing from before the saved id came again
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(after.batches).toHaveLength(2);
    });
  });

  describe('when the handler has not resolved yet', () => {
    it('does not save the replay id', async () => {
      sandbox = await startSandbox();
      const store = memoryReplayStore();
      let release: () => void = () => undefined;
      const handled: string[] = [];
      await subscribe(sandbox, store, sink(), {
        onEvents: async (events) => {
          await new Promise<void>((resolve) => (release = resolve));
          handled.push(...events.map((e) => e.event.recordId));
        },
      });
      const id = sandbox.changeAsUser({
        userId: USER,
        type: 'Contact',
        op: 'create',
        fields: { LastName: 'A' },
      }).Id;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(store.saves).toEqual([]);
      release();
      await waitFor(() => store.saves.length === 1, 'the save after handling');
      expect(handled).toEqual([id]);
    });
  });

  describe('when the handler fails', () => {
    it('resubscribes from the saved id so the failed message and the ones after it come again, in order', async () => {
      sandbox = await startSandbox();
      const store = memoryReplayStore();
      const handled: string[] = [];
      let failOnce = true;
      await subscribe(sandbox, store, sink(), {
        onEvents: (events) => {
          const ids = events.map((e) => e.event.recordId);
          if (failOnce && handled.length === 1) {
            failOnce = false;
            return Promise.reject(new Error('queue unavailable'));
          }
          handled.push(...ids);
          return Promise.resolve();
        },
      });
      const ids = ['A', 'B', 'C', 'D'].map(
        (name) =>
          sandbox!.changeAsUser({
            userId: USER,
            type: 'Contact',
            op: 'create',
            fields: { LastName: name },
          }).Id,
      );
      await waitFor(() => handled.length === 4, 'all four handled');
      expect(handled).toEqual(ids);
    });
  });

  describe('when a gap event arrives', () => {
    it('asks for the records to be re-read and moves on', async () => {
      sandbox = await startSandbox();
      const store = memoryReplayStore();
      const got = sink();
      await subscribe(sandbox, store, got);
      const replayId = sandbox.publishGap('Contact', ['0035g0000000001AAA'], 'GAP_UPDATE');
      await waitFor(() => got.gaps.length === 1, 'the gap');
      expect(got.gaps[0]).toMatchObject({
        refs: [{ object: 'contact', id: '0035g0000000001AAA' }],
        header: { changeType: 'GAP_UPDATE' },
      });
      expect(got.batches).toEqual([]);
      await waitFor(() => store.saves.at(-1) === replayId, 'the gap replay id saved');
    });
  });

  describe('when the session expires while subscribed', () => {
    it('refreshes the token and resubscribes without losing a change', async () => {
      // a short long poll, so the expired token is noticed at the next /meta/connect quickly
      sandbox = await startSandbox({
        token: 'first',
        oauth: { clientId: 'cid', refreshToken: 'rt' },
        cometdTimeoutSeconds: 1,
      });
      const client = new SalesforceClient({
        tenant: sandbox.tenant,
        instanceUrl: sandbox.url,
        accessToken: 'first',
        refresh: { clientId: 'cid', refreshToken: 'rt', loginUrl: sandbox.url },
        version: API_VERSION,
      });
      const store = memoryReplayStore();
      const got = sink();
      await subscribe(sandbox, store, got, { connection: client.connection });

      const a = sandbox.changeAsUser({
        userId: USER,
        type: 'Contact',
        op: 'create',
        fields: { LastName: 'A' },
      }).Id;
      await waitFor(() => got.batches.length === 1, 'the first change');
      sandbox.expireSessions();
      // a change while the old token is still held by the long poll; the next /meta/connect is refused
      const b = sandbox.changeAsUser({
        userId: USER,
        type: 'Contact',
        op: 'create',
        fields: { LastName: 'B' },
      }).Id;
      await waitFor(() => sandbox!.stats().cometdAuthFailures > 0, 'the CometD auth failure');
      const c = sandbox.changeAsUser({
        userId: USER,
        type: 'Contact',
        op: 'create',
        fields: { LastName: 'C' },
      }).Id;
      await waitFor(() => got.batches.length === 3, 'all three changes', 8_000);

      expect(got.ids()).toEqual([`create:${a}`, `create:${b}`, `create:${c}`]);
      expect(sandbox.requests().filter((r) => r.path === '/services/oauth2/token')).toHaveLength(1);
    });
  });
});
