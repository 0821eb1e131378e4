/**
 * A subject erasure written back to the CRM, with the whole service against both sandbox CRMs and
 * the real SDKs: an erasure from the admin API sets the record's status (`erased`) and adds one
 * note (HubSpot) or Task (Salesforce) naming the erasure block, without a personal value; a
 * HubSpot GDPR delete (privacyDeletion webhook) erases the record in the ledger, and the
 * write-back to a record HubSpot has deleted for good (404) is done, not failed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as HubspotSdk } from '@hubspot/api-client';
import jsforce from 'jsforce';
import { Queue } from 'bullmq';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import type { RunningService } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { flagJobId, flagsQueueName } from '../../src/pipeline/flags.js';
import type { FlagJob } from '../../src/pipeline/flags.js';
import { connectionFromUrl, QUEUE_PREFIX } from '../../src/pipeline/queues.js';
import type { ErasureReport } from '../../src/vault/subjects.js';
import { until } from '../helpers/wait.js';
import type { Ledger } from '../../src/ledger/ledger.js';

let dir: string;
let service: RunningService;
let ledger: Ledger;

async function blocksOf(tenant: string, object: string, id: string) {
  const index = await ledger.store.readRecord(tenant, `${object}/${id}`);
  return (
    await ledger.readBlocks(
      tenant,
      index.map((e) => e.seq),
    )
  ).map((b) => b!.block);
}

async function erase(tenant: string, object: string, id: string): Promise<ErasureReport> {
  const res = await fetch(`${service.url}/admin/subjects/erase`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${service.adminToken}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ tenant, object, id, reason: 'GDPR art. 17 request 2026-114' }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as ErasureReport;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-erasure-writeback-'));
  service = await startService(
    loadConfig({
      CRM_LEDGER_DATA_DIR: dir,
      CRM_LEDGER_PORT: '0',
      CRM_LEDGER_LOG_LEVEL: 'silent',
    }),
    createLogger({ level: 'silent' }),
  );
  if (!service.ledger || !service.sandboxes) throw new Error('the embedded default runs sandboxes');
  ledger = service.ledger;
}, 60_000);
afterAll(async () => {
  await service?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('an erasure written back to the CRM', () => {
  it('HubSpot: the status says erased and one note names the erasure block, no personal value', async () => {
    const hs = service.sandboxes!.hubspot;
    const tenant = `hubspot:${hs.portalId}`;
    const created = hs.createAsUser(
      'contacts',
      { email: 'erin.q7@example.com', firstname: 'Erinq7', lastname: 'Erasedq7' },
      7,
    );
    await until(
      'the creation anchored',
      () => blocksOf(tenant, 'contact', created.id),
      (b) => b.length >= 1,
    );
    const report = await erase(tenant, 'contact', created.id);
    const seq = report.records[0]?.block?.seq;
    expect(seq).toBeGreaterThan(0);

    const sdk = new HubspotSdk({ accessToken: 'auditor', basePath: hs.url });
    const props = await until(
      'the status property',
      async () =>
        (await sdk.crm.contacts.basicApi.getById(created.id, ['crm_ledger_status'])).properties,
      (p) => typeof p['crm_ledger_status'] === 'string' && p['crm_ledger_status'] !== '',
    );
    expect(props['crm_ledger_status']).toBe(`erased · block #${seq}`);
    const notes = await until(
      'the note',
      () => hs.notesFor('contacts', created.id),
      (n) => n.length >= 1,
    );
    expect(notes).toHaveLength(1);
    const body = String(notes[0]?.properties['hs_note_body']);
    expect(body).toContain('SUBJECT_ERASED');
    expect(body).toContain(`erasure ${report.erasureId}: GDPR art. 17 request 2026-114`);
    expect(body).toContain(`[crm-ledger ${tenant} block #${seq}]`);
    for (const personal of ['erin.q7', 'Erinq7', 'Erasedq7']) expect(body).not.toContain(personal);
  }, 60_000);

  it('Salesforce: the status field says erased and one Task names the erasure block', async () => {
    const sf = service.sandboxes!.salesforce;
    const created = sf.changeAsUser({
      userId: '005000000000007AAA',
      type: 'Contact',
      op: 'create',
      fields: { FirstName: 'Evaq7', LastName: 'Erasedq7', Email: 'eva.q7@example.com' },
    });
    const id = created['Id'];
    await until(
      'the creation anchored',
      () => blocksOf(sf.tenant, 'contact', id),
      (b) => b.length >= 1,
    );
    const report = await erase(sf.tenant, 'contact', id);
    const seq = report.records[0]?.block?.seq;
    expect(seq).toBeGreaterThan(0);

    const conn = new jsforce.Connection({ instanceUrl: sf.url, accessToken: 'auditor' });
    const record = await until(
      'the status field',
      () => conn.sobject('Contact').retrieve(id) as Promise<Record<string, unknown>>,
      (r) => typeof r['CRM_Ledger_Status__c'] === 'string',
    );
    expect(record['CRM_Ledger_Status__c']).toBe(`erased (block #${seq})`);
    const tasks = await until(
      'the Task',
      async () =>
        (
          await conn.query<{ Id: string; Subject: string; Description: string }>(
            `SELECT Id, Subject, Description FROM Task WHERE WhoId = '${id}'`,
          )
        ).records,
      (t) => t.length >= 1,
    );
    expect(tasks).toHaveLength(1);
    expect(tasks[0]?.Subject).toBe('crm-ledger: erased');
    expect(tasks[0]?.Description).toContain(`block #${seq}`);
    expect(tasks[0]?.Description).toContain('SUBJECT_ERASED');
    for (const personal of ['eva.q7', 'Evaq7', 'Erasedq7'])
      expect(tasks[0]?.Description).not.toContain(personal);
  }, 60_000);

  it('HubSpot privacyDeletion: the record is erased in the ledger; the write-back to the deleted record is done', async () => {
    const hs = service.sandboxes!.hubspot;
    const tenant = `hubspot:${hs.portalId}`;
    const created = hs.createAsUser(
      'contacts',
      { email: 'gone.q7@example.com', firstname: 'Goneq7', lastname: 'Deletedq7' },
      7,
    );
    await until(
      'the creation anchored',
      () => blocksOf(tenant, 'contact', created.id),
      (b) => b.length >= 1,
    );
    hs.gdprDeleteAsUser('contacts', created.id, 7);
    const blocks = await until(
      'the erasure block',
      () => blocksOf(tenant, 'contact', created.id),
      (b) => b.some((x) => x.kind === 'erasure'),
    );
    const erasures = blocks.filter((b) => b.kind === 'erasure');
    expect(erasures).toHaveLength(1);
    expect(erasures[0]?.actor.id).toBe('hubspot:privacyDeletion');
    const index = await ledger.store.readRecord(tenant, `contact/${created.id}`);
    const erasureSeq = index.at(blocks.findIndex((b) => b.kind === 'erasure'))?.seq as number;

    const flags = new Queue<FlagJob>(flagsQueueName(tenant), {
      connection: connectionFromUrl(service.redisUrl, 'worker'),
      prefix: QUEUE_PREFIX,
    });
    try {
      const job = await until(
        'the erasure write-back finished',
        () => flags.getJob(flagJobId(tenant, erasureSeq)),
        (j) => j !== undefined && j.finishedOn !== undefined,
      );
      expect(job?.failedReason).toBeUndefined();
      expect(job?.returnvalue).toEqual({ seq: erasureSeq, status: 'record-missing' });
      expect(await flags.getFailedCount()).toBe(0);
    } finally {
      await flags.close();
    }
    // The record is gone from HubSpot: nothing was written to it.
    expect(hs.record('contacts', created.id)).toBeUndefined();
    expect(await ledger.verify(tenant)).toMatchObject({ ok: true });
  }, 60_000);
});
