/**
 * The whole service against both sandbox CRMs, through the real SDKs: a person edits a contact in
 * each CRM → HubSpot webhook / Salesforce CDC → checks (the change policy, the duplicate matcher)
 * → anchored with its verdicts → flag jobs → the status field and a note/task written back with
 * @hubspot/api-client and jsforce, visible through the same SDKs; the echo of our own write-back
 * is anchored as crm-ledger's and never flagged again.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as HubspotSdk } from '@hubspot/api-client';
import jsforce from 'jsforce';
import { loadConfig } from '../../src/config.js';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALERT_SIGNATURE_HEADER, verifyAlertSignature } from '../../src/policy/alerts.js';
import { buildOutboundMessage } from '../../connectors/salesforce/outbound-message.js';
import { startService } from '../../src/main.js';
import type { RunningService } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { until } from '../helpers/wait.js';
import type { Ledger } from '../../src/ledger/ledger.js';

const POLICY = `version: 1
groups:
  data-stewards: ["hubspot:user:7", "salesforce:user:005000000000007AAA"]
rules:
  - name: protect-contact-email
    match: { object: contact, kind: [update], fields: [email] }
    allow: { groups: [data-stewards] }
    action: [flag]
  - name: protect-contact-phone
    match: { object: contact, kind: [update], fields: [phone] }
    allow: { groups: [data-stewards] }
    action: [flag, revert]
  - name: mass-delete
    match: { object: contact, kind: [delete] }
    limit: { max: 200, window: 10m, per: actor }
    action: [alert]
`;

let dir: string;
let service: RunningService;
// The alert webhook: a local receiver that checks each alert's HMAC signature.
const ALERT_SECRET = 'alert-secret-for-the-test';
const alerts: { text: string; verified: boolean }[] = [];
let alertServer: Server;
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

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-writeback-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  alertServer = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const check = verifyAlertSignature(
        body,
        req.headers[ALERT_SIGNATURE_HEADER] as string | undefined,
        ALERT_SECRET,
        Math.floor(Date.now() / 1000),
      );
      alerts.push({ text: body, verified: check.ok });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => alertServer.listen(0, '127.0.0.1', r));
  const alertPort = (alertServer.address() as AddressInfo).port;
  service = await startService(
    loadConfig({
      CRM_LEDGER_DATA_DIR: dir,
      CRM_LEDGER_PORT: '0',
      CRM_LEDGER_LOG_LEVEL: 'silent',
      CRM_LEDGER_POLICY_FILE: join(dir, 'policy.yaml'),
      CRM_LEDGER_ALERT_WEBHOOK_URL: `http://127.0.0.1:${alertPort}/alerts`,
      CRM_LEDGER_ALERT_WEBHOOK_SECRET: ALERT_SECRET,
    }),
    createLogger({ level: 'silent' }),
  );
  if (!service.ledger || !service.sandboxes) throw new Error('the embedded default runs sandboxes');
  ledger = service.ledger;
}, 60_000);
afterAll(async () => {
  await service?.stop();
  await new Promise<void>((r) => (alertServer ? alertServer.close(() => r()) : r()));
  await rm(dir, { recursive: true, force: true });
});

describe('write-back to the sandbox CRMs', () => {
  it('HubSpot: an email edited by a user outside the stewards is flagged once; the echo is not', async () => {
    const hs = service.sandboxes!.hubspot;
    const tenant = `hubspot:${hs.portalId}`;
    const created = hs.createAsUser(
      'contacts',
      { email: 'grace@example.com', firstname: 'Grace', lastname: 'Hopper' },
      // A steward creates it (HubSpot reports a creation's values as property changes too).
      7,
    );
    await until(
      'the creation anchored',
      () => blocksOf(tenant, 'contact', created.id),
      (b) => b.length >= 1,
    );
    hs.updateAsUser('contacts', created.id, { email: 'grace.h@example.org' }, 42);

    const sdk = new HubspotSdk({ accessToken: 'auditor', basePath: hs.url });
    const flagged = await until(
      'the flag property',
      async () =>
        (await sdk.crm.contacts.basicApi.getById(created.id, ['crm_ledger_status'])).properties,
      (p) => typeof p['crm_ledger_status'] === 'string' && p['crm_ledger_status'] !== '',
    );
    expect(flagged['crm_ledger_status']).toContain('unauthorised');
    // The note is written after the property (two API calls): wait for it, then check it is one.
    await until(
      'the note',
      () => hs.notesFor('contacts', created.id),
      (n) => n.length >= 1,
    );
    expect(hs.notesFor('contacts', created.id)).toHaveLength(1);

    // The block holds the verdict, with the rule and the response it chose.
    const blocks = await blocksOf(tenant, 'contact', created.id);
    const judged = blocks.find((b) => b.verdicts.length > 0)!;
    expect(judged.actor).toMatchObject({ id: 'hubspot:user:42' });
    expect(judged.verdicts[0]).toMatchObject({
      type: 'unauthorised',
      rule: 'protect-contact-email',
      actions: ['flag'],
    });

    // Our own property write comes back as a webhook: anchored as crm-ledger, not judged.
    const echo = await until(
      'the echo anchored',
      () => blocksOf(tenant, 'contact', created.id),
      (b) => b.some((x) => x.actor.id === 'crm-ledger'),
    );
    expect(
      echo.filter((x) => x.actor.id === 'crm-ledger').every((x) => x.verdicts.length === 0),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(hs.notesFor('contacts', created.id)).toHaveLength(1);
    expect(await ledger.verify(tenant)).toMatchObject({ ok: true });
  }, 60_000);

  it('HubSpot: a phone edited outside the stewards is reverted, the revert anchored as crm-ledger and not reverted again', async () => {
    const hs = service.sandboxes!.hubspot;
    const tenant = `hubspot:${hs.portalId}`;
    const created = hs.createAsUser(
      'contacts',
      {
        email: 'mary@example.com',
        firstname: 'Mary',
        lastname: 'Jackson',
        phone: '+1 757 555 0199',
      },
      7,
    );
    await until(
      'the creation anchored',
      () => blocksOf(tenant, 'contact', created.id),
      (b) => b.length >= 4,
    );
    hs.updateAsUser('contacts', created.id, { phone: '+1 202 555 0000' }, 42);
    const sdk = new HubspotSdk({ accessToken: 'auditor', basePath: hs.url });
    const restored = await until(
      'the revert',
      async () => (await sdk.crm.contacts.basicApi.getById(created.id, ['phone'])).properties,
      (p) => p['phone'] === '+1 757 555 0199',
    );
    expect(restored['phone']).toBe('+1 757 555 0199');
    const blocks = await until(
      'the revert anchored',
      () => blocksOf(tenant, 'contact', created.id),
      (b) => b.some((x) => x.actor.id === 'crm-ledger' && 'phone' in x.fields),
    );
    expect(blocks.find((b) => b.verdicts.length > 0)?.verdicts[0]).toMatchObject({
      rule: 'protect-contact-phone',
      actions: ['flag', 'revert'],
    });
    await new Promise((r) => setTimeout(r, 500));
    // One note (the flag), one revert: the revert's echo was not judged again.
    expect(hs.notesFor('contacts', created.id)).toHaveLength(1);
    expect(
      (await sdk.crm.contacts.basicApi.getById(created.id, ['phone'])).properties['phone'],
    ).toBe('+1 757 555 0199');
  }, 60_000);

  it('Salesforce: a CDC change by a user outside the stewards gets the status field and one Task', async () => {
    const sf = service.sandboxes!.salesforce;
    const tenant = sf.tenant;
    const created = sf.changeAsUser({
      userId: '005000000000042AAA',
      type: 'Contact',
      op: 'create',
      fields: { FirstName: 'Alan', LastName: 'Turing', Email: 'alan@example.com' },
    });
    const id = created['Id'];
    await until(
      'the creation anchored',
      () => blocksOf(tenant, 'contact', id),
      (b) => b.length >= 1,
    );
    sf.changeAsUser({
      userId: '005000000000042AAA',
      type: 'Contact',
      op: 'update',
      id,
      fields: { Email: 'alan.t@example.org' },
    });

    const conn = new jsforce.Connection({
      instanceUrl: sf.url,
      accessToken: 'auditor',
      version: '61.0',
    });
    const record = await until(
      'the status field',
      () => conn.sobject('Contact').retrieve(id) as Promise<Record<string, unknown>>,
      (r) => typeof r['CRM_Ledger_Status__c'] === 'string',
    );
    expect(record['CRM_Ledger_Status__c']).toContain('unauthorised');
    const tasks = await conn.query<{ Id: string; Subject: string }>(
      `SELECT Id, Subject FROM Task WHERE WhoId = '${id}'`,
    );
    expect(tasks.records).toHaveLength(1);
    expect(tasks.records[0]?.Subject).toContain('unauthorised');
    await new Promise((r) => setTimeout(r, 500));
    expect(sf.tasks().filter((t) => t['WhoId'] === id)).toHaveLength(1);
  }, 60_000);

  it('Salesforce: an Outbound Message with an email edited outside the stewards is flagged with a Task', async () => {
    const sf = service.sandboxes!.salesforce;
    const created = sf.changeAsUser({
      userId: '005000000000007AAA',
      type: 'Contact',
      op: 'create',
      fields: { FirstName: 'Dorothy', LastName: 'Vaughan', Email: 'dorothy@example.com' },
    });
    const id = created['Id'];
    await until(
      'the creation anchored',
      () => blocksOf(sf.tenant, 'contact', id),
      (b) => b.length >= 1,
    );
    // An org that sends Outbound Messages: the record as it is now, changed by user 42.
    const body = buildOutboundMessage({
      orgId: sf.orgId,
      notifications: [
        {
          id: '04l000000000042AAA',
          sObjectType: 'Contact',
          fields: {
            Id: id,
            FirstName: 'Dorothy',
            LastName: 'Vaughan',
            Email: 'd.vaughan@example.org',
            LastModifiedById: '005000000000042AAA',
            LastModifiedDate: new Date().toISOString(),
          },
        },
      ],
    });
    const res = await fetch(`${service.url}/webhooks/salesforce`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '""' },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<Ack>true</Ack>');
    const tasks = await until(
      'the Task',
      () => sf.tasks().filter((t) => t['WhoId'] === id),
      (t) => t.length >= 1,
    );
    expect(String(tasks[0]?.['Subject'])).toContain('unauthorised');
    const blocks = await blocksOf(sf.tenant, 'contact', id);
    const judged = blocks.find((b) => b.verdicts.length > 0)!;
    // Only what changed is anchored (and the hash of the whole state).
    expect(Object.keys(judged.fields).sort()).toEqual(
      ['$state', 'Email', 'LastModifiedById', 'LastModifiedDate'].sort(),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(sf.tasks().filter((t) => t['WhoId'] === id)).toHaveLength(1);
  }, 60_000);

  it('Salesforce: a CDC gap event makes the service re-read the records it names and anchor their state', async () => {
    const sf = service.sandboxes!.salesforce;
    // Tasks publish no change events in the sandbox: this record changed without a CDC event.
    const task = sf.changeAsUser({
      userId: '005000000000042AAA',
      type: 'Task',
      op: 'create',
      fields: { Subject: 'Call Ada', Status: 'Open' },
    });
    const id = task['Id'];
    sf.publishGap('Task', [id], 'GAP_UPDATE');
    const blocks = await until(
      'the gap re-read anchored',
      () => blocksOf(sf.tenant, 'task', id),
      (b) => b.length === 1,
    );
    expect(blocks[0]).toMatchObject({ kind: 'reconciled', actor: { id: 'salesforce:cdc-gap' } });
    expect(Object.keys(blocks[0]!.fields)).toEqual(expect.arrayContaining(['Subject', 'Status']));
  }, 60_000);

  it('the same person in HubSpot and then in Salesforce with a typo: both records are flagged, each naming the other', async () => {
    const hs = service.sandboxes!.hubspot;
    const sf = service.sandboxes!.salesforce;
    const inHubspot = hs.createAsUser(
      'contacts',
      {
        email: 'katherine.johnson@example.com',
        firstname: 'Katherine',
        lastname: 'Johnson',
        phone: '+1 757 555 0100',
        city: 'Hampton',
      },
      7,
    );
    await until(
      'the HubSpot contact anchored',
      () => blocksOf(`hubspot:${hs.portalId}`, 'contact', inHubspot.id),
      (b) => b.length >= 1,
    );
    const inSalesforce = sf.changeAsUser({
      userId: '005000000000007AAA',
      type: 'Contact',
      op: 'create',
      fields: {
        FirstName: 'Katherine',
        LastName: 'Jonson',
        Email: 'katherine.johnson@example.com',
        Phone: '+1 757 555 0100',
        MailingCity: 'Hampton',
      },
    });
    const id = inSalesforce['Id'];
    const blocks = await until(
      'the duplicate verdict',
      () => blocksOf(sf.tenant, 'contact', id),
      (b) => b.some((x) => x.verdicts.some((v) => v.type === 'duplicate')),
    );
    const verdict = blocks
      .flatMap((b) => b.verdicts)
      .find((v) => v.type === 'duplicate') as unknown as {
      candidates: { tenant: string; id: string }[];
    };
    expect(verdict.candidates).toContainEqual(
      expect.objectContaining({ tenant: `hubspot:${hs.portalId}`, id: inHubspot.id }),
    );
    const task = await until(
      'the Task',
      () => sf.tasks().filter((t) => t['WhoId'] === id),
      (t) => t.length === 1,
    );
    expect(String(task[0]?.['Description'])).toContain(inHubspot.id);

    // The HubSpot contact, anchored before, is flagged too: a block in its own chain carries the
    // verdict naming the Salesforce contact, and a note on it says so.
    const hsTenant = `hubspot:${hs.portalId}`;
    const earlier = await until(
      'the duplicate block of the earlier record',
      () => blocksOf(hsTenant, 'contact', inHubspot.id),
      (b) => b.some((x) => x.verdicts.some((v) => v.type === 'duplicate')),
    );
    const mirrored = earlier.find((b) => b.verdicts.some((v) => v.type === 'duplicate'))!;
    expect(mirrored).toMatchObject({ kind: 'admin', actor: { id: 'crm-ledger' } });
    expect(
      (
        mirrored.verdicts.find((v) => v.type === 'duplicate') as unknown as {
          candidates: unknown[];
        }
      ).candidates,
    ).toContainEqual(expect.objectContaining({ tenant: sf.tenant, object: 'contact', id }));
    const notes = await until(
      'the note on the HubSpot contact',
      () => hs.notesFor('contacts', inHubspot.id),
      (n) => n.length >= 1,
    );
    expect(notes).toHaveLength(1);
    expect(String(notes[0]?.properties['hs_note_body'])).toContain(id);
    const sdk = new HubspotSdk({ accessToken: 'auditor', basePath: hs.url });
    const status = await until(
      'the flag property on the HubSpot contact',
      async () =>
        (await sdk.crm.contacts.basicApi.getById(inHubspot.id, ['crm_ledger_status'])).properties,
      (p) => typeof p['crm_ledger_status'] === 'string' && p['crm_ledger_status'] !== '',
    );
    expect(status['crm_ledger_status']).toContain('duplicate');

    // Each pair once: nothing more is written for either record, and the chains verify.
    await new Promise((r) => setTimeout(r, 500));
    expect(hs.notesFor('contacts', inHubspot.id)).toHaveLength(1);
    expect(sf.tasks().filter((t) => t['WhoId'] === id)).toHaveLength(1);
    expect(
      (await blocksOf(hsTenant, 'contact', inHubspot.id)).filter((b) =>
        b.verdicts.some((v) => v.type === 'duplicate'),
      ),
    ).toHaveLength(1);
    expect(await ledger.verify(hsTenant)).toMatchObject({ ok: true });
  }, 60_000);

  it('HubSpot: 300 deletes by one user in a minute raise exactly one alert, and every delete over 200 carries the verdict', async () => {
    const hs = service.sandboxes!.hubspot;
    const tenant = `hubspot:${hs.portalId}`;
    const ids = Array.from(
      { length: 300 },
      (_, i) => hs.createAsUser('contacts', { email: `gone${i}@example.com` }, 7).id,
    );
    await until(
      'the creations anchored',
      async () =>
        (await Promise.all(ids.map((id) => blocksOf(tenant, 'contact', id)))).every(
          (b) => b.length > 0,
        ),
      (ok) => ok,
      60_000,
    );
    alerts.length = 0;
    for (const id of ids) hs.archiveAsUser('contacts', id, 66);
    const deletes = await until(
      'the deletes anchored',
      async () =>
        (await Promise.all(ids.map((id) => blocksOf(tenant, 'contact', id))))
          .map((b) => b.find((x) => x.kind === 'delete'))
          .filter((b) => b !== undefined),
      (d) => d.length === 300,
      60_000,
    );
    const judged = deletes.filter((b) => b.verdicts.some((v) => v.type === 'anomaly'));
    expect(judged).toHaveLength(100);
    expect(judged[0]?.verdicts[0]).toMatchObject({ rule: 'mass-delete', actions: ['alert'] });
    await until(
      'the alert',
      () => alerts.length,
      (n) => n >= 1,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.verified).toBe(true);
    expect(alerts[0]?.text).toContain('mass-delete');
  }, 120_000);

  it('the policy in force is anchored in each tenant chain', async () => {
    const hs = service.sandboxes!.hubspot;
    const opened = await ledger.recordState(`hubspot:${hs.portalId}`, 'crm_ledger/policy');
    expect(opened.get('action')).toBe('policy-loaded');
    expect(String(opened.get('policySha256'))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('GET /metrics reports chains, queues, webhooks and flags in Prometheus text', async () => {
    const res = await fetch(`${service.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const hs = service.sandboxes!.hubspot;
    expect(text).toMatch(
      new RegExp(`crm_ledger_chain_blocks\\{tenant="hubspot:${hs.portalId}"\\} [1-9]`),
    );
    expect(text).toMatch(/crm_ledger_tenant_frozen\{tenant="hubspot:\d+"\} 0/);
    expect(text).toMatch(
      /crm_ledger_webhook_events_total\{source="hubspot",outcome="queued"\} [1-9]/,
    );
    expect(text).toMatch(/crm_ledger_flags_total\{tenant="hubspot:\d+",status="flagged"\} [1-9]/);
    expect(text).toMatch(/crm_ledger_queue_waiting_jobs\{queue="changes"\} \d+/);
  });
});
