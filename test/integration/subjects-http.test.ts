/**
 * Subject routes over HTTP against a real ledger, vault and dedupe index: search by email across
 * CRMs, subject-access export (JSON, HTML), role-based vault reads, erasure; each answer checked
 * against the OpenAPI document.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { createApp } from '../../src/http/app.js';
import { adminTokenFrom } from '../../src/http/admin-auth.js';
import { conforms } from '../helpers/openapi.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { Matcher } from '../../src/dedupe/matcher.js';
import { RecordVault } from '../../src/vault/vault.js';
import { StaticKeyWrapper } from '../../src/vault/key-wrapper.js';
import { createSubjectService } from '../../src/pipeline/subject-service.js';

const ADMIN = 'subjects-admin-token-0123456789abcdef';
const AUDITOR = 'subjects-auditor-token-0123456789abcd';
const OPERATOR = 'subjects-operator-token-0123456789abc';
const admin = { Authorization: `Bearer ${ADMIN}` };
const auditor = { Authorization: `Bearer ${AUDITOR}` };
const operator = { Authorization: `Bearer ${OPERATOR}` };
const EMAIL = `lin.<b>q${randomBytes(3).toString('hex')}@example.com`.replace('<b>', '');
let redis: Redis;
let ledger: Ledger;
let dir: string;
let hs: string;
let sf: string;
let app: ReturnType<typeof createApp>;
let grantedApp: ReturnType<typeof createApp>;

let space: string;

beforeAll(async () => {
  redis = connect();
  space = `test-subjects-${randomBytes(4).toString('hex')}`;
  const vault = new RecordVault(redis, new StaticKeyWrapper([randomBytes(32)]));
  ledger = createTestLedger(redis, undefined, { vault });
  hs = randomTenant('hubspot');
  sf = randomTenant('salesforce');
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-subjects-'));
  const fields = { email: EMAIL, firstname: 'Lin <script>', lastname: 'Qiu' };
  await ledger.append(hs, [contactChange(hs, '42', { fields })]);
  await ledger.append(sf, [contactChange(sf, '003AAA', { fields })]);
  const matcher = new Matcher({ redis, space });
  for (const [tenant, id] of [
    [hs, '42'],
    [sf, '003AAA'],
  ] as const) {
    await matcher.observe({ tenant, object: 'contact', id, kind: 'create', fields });
  }
  const build = (auditorValues: boolean) =>
    createApp({
      logger: createLogger({ level: 'silent' }),
      adminToken: ADMIN,
      tokens: [
        adminTokenFrom('auditor', 'aud', AUDITOR),
        adminTokenFrom('operator', 'op', OPERATOR),
      ],
      verifierKeys: ledger.verifiers,
      verification: new VerificationService(
        ledger.store,
        { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
        new FileTrustStore(dir),
      ),
      ping: () => redis.ping(),
      vault: { open: (t, items) => vault.open(t, items), auditorValues },
      subjects: createSubjectService({
        redis,
        store: ledger.store,
        vault,
        verifiers: ledger.verifiers,
        ledger,
        dedupeSpace: space,
        compactAof: false,
      }),
    });
  app = build(false);
  grantedApp = build(true);
});
afterAll(async () => {
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /admin/search', () => {
  it("finds the customer's HubSpot and Salesforce records by email", async () => {
    const res = await request(app)
      .get(`/admin/search?email=${encodeURIComponent(EMAIL.toUpperCase())}`)
      .set(auditor);
    expect(res.status).toBe(200);
    conforms('/admin/search', 'get', 200, res.body);
    expect(res.body.records).toEqual(
      expect.arrayContaining([
        { tenant: hs, object: 'contact', id: '42', source: 'hubspot' },
        { tenant: sf, object: 'contact', id: '003AAA', source: 'salesforce' },
      ]),
    );
    expect(res.body.records).toHaveLength(2);
  });

  it('answers an empty list for an unknown email, 400 for a bad query', async () => {
    const none = await request(app).get('/admin/search?email=nobody@example.com').set(auditor);
    expect(none.body).toEqual({ email: 'nobody@example.com', records: [] });
    const bad = await request(app).get('/admin/search?email=not-an-email').set(auditor);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('SUBJECT_QUERY_INVALID');
    const extra = await request(app).get(`/admin/search?email=${EMAIL}&x=1`).set(auditor);
    expect(extra.status).toBe(400);
    expect((await request(app).get(`/admin/search?email=${EMAIL}`).set(operator)).status).toBe(403);
  });

  it('answers 422 EMAIL_TOO_COMMON for an address the index stopped listing (a role account)', async () => {
    const role = 'info@role-account.example';
    const index = new Matcher({ redis, space }).index;
    // What the index stores once more than LOOKUP_STORE_CAP records share the address.
    await redis.hset(index.keys.block(`pe:${role}`), `pe:${role}`, '*');
    const res = await request(app).get(`/admin/search?email=${role}`).set(auditor);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('EMAIL_TOO_COMMON');
    conforms('/admin/search', 'get', 422, res.body);
  });
});

describe('vault reads by role', () => {
  it('admins see values; auditors commitments only, unless granted', async () => {
    const path = `/admin/records/${hs}/contact/42`;
    const asAdmin = await request(app).get(path).set(admin);
    expect(asAdmin.body.blocks[0].fields.email).toMatchObject({ value: EMAIL, opened: true });
    const asAuditor = await request(app).get(path).set(auditor);
    expect(asAuditor.status).toBe(200);
    conforms('/admin/records/{tenant}/{object}/{id}', 'get', 200, asAuditor.body);
    expect(asAuditor.body.blocks[0].fields.email).toEqual({
      commitment: expect.stringMatching(/^[0-9a-f]{64}$/),
      opened: true,
    });
    expect(asAuditor.text).not.toContain(EMAIL);
    const evidence = await request(app).get(`/admin/evidence/${hs}/contact/42`).set(auditor);
    expect(evidence.text).not.toContain(EMAIL);
    const granted = await request(grantedApp).get(path).set(auditor);
    expect(granted.body.blocks[0].fields.email).toMatchObject({ value: EMAIL });
  });
});

describe('GET /admin/subjects', () => {
  it('exports everything held, decrypted, with verified evidence', async () => {
    const res = await request(app)
      .get(`/admin/subjects?email=${encodeURIComponent(EMAIL)}`)
      .set(admin);
    expect(res.status).toBe(200);
    conforms('/admin/subjects', 'get', 200, res.body);
    expect(res.body.records).toHaveLength(2);
    for (const r of res.body.records) {
      expect(r.current).toEqual({ email: EMAIL, firstname: 'Lin <script>', lastname: 'Qiu' });
      expect(r.evidenceVerified).toBe(true);
    }
    const one = await request(app).get(`/admin/subjects/${sf}/contact/003AAA`).set(admin);
    conforms('/admin/subjects/{tenant}/{object}/{id}', 'get', 200, one.body);
    expect(one.body.records[0].source).toBe('salesforce');
  });

  it('renders a readable HTML page with values escaped and no script', async () => {
    const res = await request(app).get(`/admin/subjects/${hs}/contact/42?format=html`).set(admin);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.text).toContain('Lin &lt;script&gt;');
    expect(res.text).not.toContain('<script');
  });

  it('refuses auditors without the grant, and unknown subjects', async () => {
    const res = await request(app).get(`/admin/subjects?email=${EMAIL}`).set(auditor);
    expect(res.status).toBe(403);
    const granted = await request(grantedApp).get(`/admin/subjects?email=${EMAIL}`).set(auditor);
    expect(granted.status).toBe(200);
    const none = await request(app).get(`/admin/subjects/${hs}/contact/nope`).set(admin);
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('SUBJECT_NOT_FOUND');
  });
});

describe('POST /admin/subjects/erase', () => {
  it('is admin only and needs a reason', async () => {
    const body = { tenant: hs, object: 'contact', id: '42', reason: 'art. 17' };
    expect((await request(app).post('/admin/subjects/erase').set(auditor).send(body)).status).toBe(
      403,
    );
    const noReason = await request(app)
      .post('/admin/subjects/erase')
      .set(admin)
      .send({ tenant: hs, object: 'contact', id: '42' });
    expect(noReason.status).toBe(400);
    const extra = await request(app)
      .post('/admin/subjects/erase')
      .set(admin)
      .send({ ...body, name: 'x' });
    expect(extra.status).toBe(400);
    const head = await ledger.store.readHead(hs);
    expect(head.size).toBe(1); // nothing changed
  });

  it('erases the HubSpot record; its export then holds no value, the other record is kept', async () => {
    const res = await request(app)
      .post('/admin/subjects/erase')
      .set(admin)
      .send({ tenant: hs, object: 'contact', id: '42', reason: 'GDPR art. 17 request #12' });
    expect(res.status).toBe(200);
    conforms('/admin/subjects/erase', 'post', 200, res.body);
    expect(res.body.records[0]).toMatchObject({ entriesErased: 1, keyDestroyed: true });
    const after = await request(app).get(`/admin/subjects/${hs}/contact/42`).set(admin);
    expect(after.body.records[0].current).toEqual({});
    expect(after.text).not.toContain(EMAIL);
    const search = await request(app).get(`/admin/search?email=${EMAIL}`).set(auditor);
    expect(search.body.records).toEqual([
      { tenant: sf, object: 'contact', id: '003AAA', source: 'salesforce' },
    ]);
    expect((await ledger.verify(hs)).ok).toBe(true);
  });
});
