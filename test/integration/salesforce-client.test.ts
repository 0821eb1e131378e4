/**
 * SalesforceClient (jsforce underneath) against the Salesforce sandbox: flag write-back with
 * idempotency by block seq, revert marked as our own change, fetch by ids / since with paging,
 * and the mapping of failures to CrmApiError kinds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SalesforceSandbox } from '../../connectors/sandbox/salesforce/index.js';
import { cdcToEvents } from '../../connectors/salesforce/cdc-event.js';
import { SalesforceClient } from '../../connectors/salesforce/client.js';
import type { SalesforceClientOptions } from '../../connectors/salesforce/client.js';
import { CrmApiError } from '../../connectors/types.js';
import type { FlagRequest } from '../../connectors/types.js';
import { InputError } from '../../src/errors.js';
import { API_VERSION, startSandbox } from '../helpers/salesforce-sandbox.js';

let sandbox: SalesforceSandbox | undefined;

afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

function clientFor(
  sb: SalesforceSandbox,
  extra: Partial<SalesforceClientOptions> = {},
): SalesforceClient {
  return new SalesforceClient({
    tenant: sb.tenant,
    instanceUrl: sb.url,
    accessToken: 'test-token',
    version: API_VERSION,
    ...extra,
  });
}

function seed(sb: SalesforceSandbox, type: string, fields: Record<string, string>): string {
  return sb.changeAsUser({ userId: '0055g0000000042AAA', type, op: 'create', fields }).Id;
}

function flagRequest(sb: SalesforceSandbox, object: string, id: string, seq: number): FlagRequest {
  return {
    tenant: sb.tenant,
    ref: { object, id },
    seq,
    blockHash: `hash${seq}`,
    verdicts: [{ type: 'duplicate', code: 'DEDUPE_MATCH', reason: 'same email as 003…' }],
    adminUrl: `https://ledger.example/admin/records/${sb.tenant}/${object}/${id}`,
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

const writes = (sb: SalesforceSandbox) => sb.requests().filter((r) => r.method !== 'GET');

describe('SalesforceClient', () => {
  describe('flag', () => {
    it('sets the status field and creates one Task per request, on Contact, Lead and Account', async () => {
      sandbox = await startSandbox();
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee' });
      const lead = seed(sandbox, 'Lead', { LastName: 'Kim', Company: 'K' });
      const account = seed(sandbox, 'Account', { Name: 'Acme' });
      const client = clientFor(sandbox);

      const outcomes = await client.flag([
        flagRequest(sandbox, 'contact', contact, 1),
        flagRequest(sandbox, 'lead', lead, 2),
        { ...flagRequest(sandbox, 'account', account, 3), verdicts: [{ type: 'unauthorised' }] },
      ]);

      expect(outcomes.map((o) => o.status)).toEqual(['flagged', 'flagged', 'flagged']);
      expect(sandbox.record(contact)?.['CRM_Ledger_Status__c']).toBe('duplicate (block #1)');
      expect(sandbox.record(account)?.['CRM_Ledger_Status__c']).toBe('unauthorised (block #3)');
      const tasks = sandbox.tasks();
      expect(tasks).toHaveLength(3);
      const contactTask = tasks.find((t) => t['WhoId'] === contact);
      expect(contactTask).toMatchObject({
        Subject: 'crm-ledger: duplicate',
        Status: 'Not Started',
      });
      expect(contactTask?.['Description']).toContain(`[crm-ledger ${sandbox.tenant} block #1]`);
      expect(contactTask?.['Description']).toContain(
        `/admin/records/${sandbox.tenant}/contact/${contact}`,
      );
      expect(contactTask?.['Description']).toContain('DEDUPE_MATCH');
      expect(outcomes[0]).toMatchObject({ noteId: contactTask?.Id });
      expect(tasks.find((t) => t['WhoId'] === lead)).toBeDefined();
      expect(tasks.find((t) => t['WhatId'] === account)).toMatchObject({ Priority: 'High' });
      // every write carried our client id
      expect(writes(sandbox).every((r) => r.client === 'crm-ledger')).toBe(true);
    });

    it('writes nothing twice when the same seq is flagged again', async () => {
      sandbox = await startSandbox();
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee' });
      const client = clientFor(sandbox);
      const request = flagRequest(sandbox, 'contact', contact, 7);
      const [first] = await client.flag([request]);
      const writesBefore = writes(sandbox).length;

      const [again] = await client.flag([request]);
      expect(again).toEqual({
        seq: 7,
        status: 'already-flagged',
        noteId: first?.status === 'flagged' ? first.noteId : '',
      });
      expect(writes(sandbox)).toHaveLength(writesBefore);
      expect(sandbox.tasks()).toHaveLength(1);
    });

    it('finishes a write-back interrupted after the status field, without repeating it', async () => {
      sandbox = await startSandbox();
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee' });
      const client = clientFor(sandbox);
      // the Task creation (POST composite/sobjects) fails once: a crash between the two writes
      sandbox.injectFaults({ status: 503, count: 1, match: '^POST .*/composite/sobjects$' });
      const err = await failure(client.flag([flagRequest(sandbox, 'contact', contact, 9)]));
      expect(err).toBeInstanceOf(CrmApiError);
      expect((err as CrmApiError).kind).toBe('transient');
      expect(sandbox.record(contact)?.['CRM_Ledger_Status__c']).toBe('duplicate (block #9)');
      expect(sandbox.tasks()).toHaveLength(0);
      const patches = () => writes(sandbox!).filter((r) => r.method === 'PATCH').length;
      expect(patches()).toBe(1);

      const [outcome] = await client.flag([flagRequest(sandbox, 'contact', contact, 9)]);
      expect(outcome?.status).toBe('flagged');
      expect(sandbox.tasks()).toHaveLength(1);
      expect(patches()).toBe(1);
    });

    it('does not overwrite the status of a newer block with an older one', async () => {
      sandbox = await startSandbox();
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee' });
      const client = clientFor(sandbox);
      await client.flag([flagRequest(sandbox, 'contact', contact, 20)]);
      const [older] = await client.flag([flagRequest(sandbox, 'contact', contact, 12)]);
      expect(older?.status).toBe('flagged');
      expect(sandbox.record(contact)?.['CRM_Ledger_Status__c']).toBe('duplicate (block #20)');
      expect(sandbox.tasks()).toHaveLength(2);
    });

    it('reports record-missing for a deleted record and writes nothing for it', async () => {
      sandbox = await startSandbox();
      const gone = seed(sandbox, 'Contact', { LastName: 'Gone' });
      const kept = seed(sandbox, 'Contact', { LastName: 'Kept' });
      sandbox.changeAsUser({
        userId: '0055g0000000042AAA',
        type: 'Contact',
        op: 'delete',
        id: gone,
      });
      const outcomes = await clientFor(sandbox).flag([
        flagRequest(sandbox, 'contact', gone, 1),
        flagRequest(sandbox, 'contact', kept, 2),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['record-missing', 'flagged']);
      expect(sandbox.tasks().map((t) => t['WhoId'])).toEqual([kept]);
    });

    it('comes back through CDC as a change by crm-ledger (no echo loop)', async () => {
      sandbox = await startSandbox();
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee' });
      await clientFor(sandbox).flag([flagRequest(sandbox, 'contact', contact, 1)]);
      const echo = sandbox.cdcEvents().at(-1);
      const result = cdcToEvents(echo?.data, sandbox.tenant);
      if (!result.ok) throw new Error(result.reason);
      expect(result.events[0]?.event).toMatchObject({
        recordId: contact,
        kind: 'update',
        actor: { type: 'crm-ledger', id: 'crm-ledger' },
        fields: { CRM_Ledger_Status__c: 'duplicate (block #1)' },
      });
    });

    it('refuses bad input with a code before calling Salesforce', async () => {
      sandbox = await startSandbox();
      const client = clientFor(sandbox);
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee' });
      const good = flagRequest(sandbox, 'contact', contact, 1);
      const cases: [FlagRequest[], string][] = [
        [[{ ...good, tenant: 'salesforce:00D000000000001AAA' }], 'TENANT_MISMATCH'],
        [Array.from({ length: 101 }, (_, i) => ({ ...good, seq: i })), 'BATCH_TOO_LARGE'],
        [[{ ...good, ref: { object: 'contact', id: "x' OR Id != '" } }], 'CHANGE_INVALID'],
        [[{ ...good, ref: { object: 'Contact; DROP', id: contact } }], 'CHANGE_INVALID'],
        [[{ ...good, seq: -1 }], 'CHANGE_INVALID'],
      ];
      for (const [requests, code] of cases) {
        const err = await failure(client.flag(requests));
        expect(err).toBeInstanceOf(InputError);
        expect((err as InputError).code).toBe(code);
      }
      expect(sandbox.requests()).toHaveLength(0);
    });
  });

  describe('revert', () => {
    it('restores the fields as a crm-ledger change, skipping read-only ones', async () => {
      sandbox = await startSandbox();
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee', Email: 'ann@x.io' });
      sandbox.changeAsUser({
        userId: '0055g0000000099AAA',
        type: 'Contact',
        op: 'update',
        id: contact,
        fields: { Email: 'evil@x.io', Title: 'X' },
      });

      await clientFor(sandbox).revert(
        { object: 'contact', id: contact },
        {
          Email: 'ann@x.io',
          Title: null,
          LastModifiedDate: '2020-01-01T00:00:00.000Z',
          Id: contact,
        },
        'unauthorised change',
      );
      expect(sandbox.record(contact)).toMatchObject({
        Email: 'ann@x.io',
        LastModifiedById: sandbox.apiUserId,
      });
      expect(sandbox.record(contact)?.['Title']).toBeUndefined();
      const header = (sandbox.cdcEvents().at(-1)?.data.payload['ChangeEventHeader'] ??
        {}) as Record<string, unknown>;
      expect(header['changeOrigin']).toBe(
        `com/salesforce/api/rest/${API_VERSION};client=crm-ledger`,
      );
      expect(header['nulledFields']).toEqual(['Title']);
    });

    it('fails permanently for a record that is gone', async () => {
      sandbox = await startSandbox();
      const err = await failure(
        clientFor(sandbox).revert(
          { object: 'contact', id: '0035g00000000ZZAAA' },
          { Email: 'x' },
          'r',
        ),
      );
      expect(err).toMatchObject({ kind: 'permanent' });
    });
  });

  describe('fetchRecords', () => {
    it('fetches by ids, showing deleted records and leaving out unknown ones', async () => {
      sandbox = await startSandbox();
      const a = seed(sandbox, 'Contact', { LastName: 'A', Email: 'a@x.io' });
      const b = seed(sandbox, 'Contact', { LastName: 'B' });
      sandbox.changeAsUser({ userId: '0055g0000000042AAA', type: 'Contact', op: 'delete', id: b });
      const page = await clientFor(sandbox).fetchRecords({
        object: 'contact',
        ids: [a, b, '0035g00000000ZZAAA'],
      });
      expect(page.cursor).toBeUndefined();
      const byId = new Map(page.records.map((r) => [r.ref.id, r]));
      expect(byId.size).toBe(2);
      expect(byId.get(a)).toMatchObject({
        ref: { object: 'contact', id: a },
        fields: { LastName: 'A', Email: 'a@x.io' },
      });
      expect(byId.get(a)?.deleted).toBeUndefined();
      expect(byId.get(a)?.modifiedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/);
      // REST date-times come back in ISO 8601 with Z, like Outbound Messages carry them
      expect(byId.get(a)?.fields['CreatedDate']).toMatch(/Z$/);
      expect(byId.get(b)?.deleted).toBe(true);
    });

    it('pages through records modified since a time with a cursor, using queryMore within a page', async () => {
      let clock = Date.parse('2026-03-02T12:00:00Z');
      sandbox = await startSandbox({ queryBatchSize: 2, now: () => clock });
      const early = seed(sandbox, 'Contact', { LastName: 'Early' });
      clock += 60_000;
      const since = new Date(clock).toISOString();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push(seed(sandbox, 'Contact', { LastName: `N${i}` }));
        if (i % 2 === 1) clock += 1_000; // several records share a second: the cursor breaks ties by Id
      }
      clock += 60_000;
      const late = seed(sandbox, 'Contact', { LastName: 'Late' });
      const until = new Date(clock - 30_000).toISOString();
      const client = clientFor(sandbox);

      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await client.fetchRecords({
          object: 'contact',
          since,
          until,
          limit: 3,
          ...(cursor !== undefined && { cursor }),
        });
        seen.push(...page.records.map((r) => r.ref.id));
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined && pages < 10);

      expect(seen).toEqual(ids);
      expect(seen).not.toContain(early);
      expect(seen).not.toContain(late);
      expect(pages).toBe(3);
      expect(sandbox.requests().some((r) => /\/query\/01g/.test(r.path))).toBe(true);
      expect(
        sandbox
          .requests()
          .every((r) => !r.path.includes('/query?') || r.path.includes('/queryAll?')),
      ).toBe(true);
    });

    it('refuses a malformed cursor or date with a code', async () => {
      sandbox = await startSandbox();
      const client = clientFor(sandbox);
      for (const query of [
        { object: 'contact', since: 'yesterday' },
        { object: 'contact', since: '2026-01-01T00:00:00Z', cursor: 'not-a-cursor' },
        { object: 'contact', ids: ["'; DELETE"] },
      ]) {
        const err = await failure(client.fetchRecords(query));
        expect(err).toMatchObject({ code: 'CHANGE_INVALID' });
      }
      expect(sandbox.requests()).toHaveLength(0);
    });
  });

  describe('error mapping', () => {
    it('maps REQUEST_LIMIT_EXCEEDED to rate-limited with the configured wait', async () => {
      sandbox = await startSandbox({ apiRequestLimit: 0 });
      const err = await failure(
        clientFor(sandbox, { rateLimitRetryAfterMs: 120_000 }).fetchRecords({
          object: 'contact',
          ids: ['0035g0000000001AAA'],
        }),
      );
      expect(err).toMatchObject({ kind: 'rate-limited', status: 403, retryAfterMs: 120_000 });
    });

    it('maps 5xx and a dead server to transient, without jsforce retrying by itself', async () => {
      sandbox = await startSandbox();
      sandbox.injectFaults({ status: 503, count: 1 });
      const client = clientFor(sandbox);
      const err = await failure(
        client.fetchRecords({ object: 'contact', ids: ['0035g0000000001AAA'] }),
      );
      expect(err).toMatchObject({ kind: 'transient' });
      expect(sandbox.requests()).toHaveLength(1);

      const url = sandbox.url;
      await sandbox.close();
      sandbox = undefined;
      const dead = new SalesforceClient({
        tenant: 'salesforce:00D5g000004ZxQ1EAK',
        instanceUrl: url,
        accessToken: 't',
        version: API_VERSION,
      });
      expect(
        await failure(dead.fetchRecords({ object: 'contact', ids: ['0035g0000000001AAA'] })),
      ).toMatchObject({ kind: 'transient' });
    });

    it('refreshes an expired token once, and maps a refused refresh to auth', async () => {
      sandbox = await startSandbox({
        token: 'first',
        oauth: { clientId: 'cid', refreshToken: 'rt' },
      });
      const contact = seed(sandbox, 'Contact', { LastName: 'Lee' });
      const client = clientFor(sandbox, {
        accessToken: 'first',
        refresh: { clientId: 'cid', refreshToken: 'rt', loginUrl: sandbox.url },
      });
      sandbox.expireSessions();
      const page = await client.fetchRecords({ object: 'contact', ids: [contact] });
      expect(page.records).toHaveLength(1);
      expect(sandbox.requests().filter((r) => r.path === '/services/oauth2/token')).toHaveLength(1);

      const revoked = clientFor(sandbox, {
        accessToken: 'first',
        refresh: { clientId: 'cid', refreshToken: 'revoked', loginUrl: sandbox.url },
      });
      expect(
        await failure(revoked.fetchRecords({ object: 'contact', ids: [contact] })),
      ).toMatchObject({ kind: 'auth' });
      const noRefresh = clientFor(sandbox, { accessToken: 'first' });
      expect(
        await failure(noRefresh.fetchRecords({ object: 'contact', ids: [contact] })),
      ).toMatchObject({ kind: 'auth', status: 401 });
    });

    it('maps other refusals to permanent', async () => {
      sandbox = await startSandbox();
      const err = await failure(
        clientFor(sandbox).fetchRecords({ object: 'no_such_thing', ids: ['0035g0000000001AAA'] }),
      );
      expect(err).toMatchObject({ kind: 'permanent' });
    });
  });
});
