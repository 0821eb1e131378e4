/**
 * The OpenAPI document against the real answers: every route's response, for success and error
 * statuses, is validated with Ajv (JSON Schema 2020-12, as OpenAPI 3.1 uses) against the schema
 * the document gives for that path, method and status.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { createApp } from '../../src/http/app.js';
import { conforms } from '../helpers/openapi.js';
import { OPENAPI_DOCUMENT } from '../../src/http/openapi.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import type { Ledger } from '../../src/ledger/ledger.js';

const TOKEN = 'openapi-admin-token-0123456789abcdef';
const auth = { Authorization: `Bearer ${TOKEN}` };
let redis: Redis;
let ledger: Ledger;
let app: ReturnType<typeof createApp>;
let dir: string;
let tenant: string;

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis);
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-openapi-'));
  tenant = randomTenant();
  await ledger.append(tenant, [contactChange(tenant, 'o1'), contactChange(tenant, 'o2')]);
  await ledger.store.indexVerdicts(tenant, [
    {
      seq: 0,
      object: 'contact',
      id: 'o1',
      at: '2026-11-26T10:00:00.000Z',
      verdicts: [{ type: 'duplicate', code: 'DUPLICATE_CUSTOMER' }],
    },
    {
      seq: 1,
      object: 'contact',
      id: 'o2',
      at: '2026-11-26T11:00:00.000Z',
      verdicts: [{ type: 'unauthorised', code: 'POLICY_UNAUTHORISED' }],
    },
  ]);
  app = createApp({
    logger: createLogger({ level: 'silent' }),
    adminToken: TOKEN,
    verifierKeys: ledger.verifiers,
    verification: new VerificationService(
      ledger.store,
      { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
      new FileTrustStore(dir),
    ),
    ping: () => redis.ping(),
  });
});
afterAll(async () => {
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('OpenAPI document', () => {
  it('is served to admins and is OpenAPI 3.1', async () => {
    const res = await request(app).get('/admin/openapi.json').set(auth);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ openapi: '3.1.0' });
    expect((await request(app).get('/admin/openapi.json')).status).toBe(401);
  });

  it.each([
    ['/admin/verify', (t: string) => `/admin/verify?tenant=${t}`],
    ['/admin/verify', () => '/admin/verify'],
    ['/admin/records/{tenant}/{object}/{id}', (t: string) => `/admin/records/${t}/contact/o1`],
    ['/admin/evidence/{tenant}/{object}/{id}', (t: string) => `/admin/evidence/${t}/contact/o1`],
    [
      '/admin/evidence/{tenant}/{object}/{id}',
      (t: string) => `/admin/evidence/${t}/contact/o1?proofs=all`,
    ],
    [
      '/admin/proofs/consistency',
      (t: string) => `/admin/proofs/consistency?tenant=${t}&from=1&to=2`,
    ],
    ['/admin/tenants', () => '/admin/tenants'],
    ['/admin/blocks', (t: string) => `/admin/blocks?tenant=${t}&from=0&to=2`],
    ['/admin/verdicts', (t: string) => `/admin/verdicts?tenant=${t}&type=duplicate`],
    ['/admin/keys', () => '/admin/keys'],
    ['/healthz', () => '/healthz'],
    ['/readyz', () => '/readyz'],
  ])('GET %s answers as documented', async (path, url) => {
    const res = await request(app).get(url(tenant)).set(auth);
    expect(res.status).toBe(200);
    conforms(path, 'get', 200, JSON.parse(res.text) as unknown);
  });

  it('documents the evidence query parameter, and each bundle format matches one schema only', async () => {
    const doc = OPENAPI_DOCUMENT as unknown as {
      paths: Record<
        string,
        { get: { parameters: { name: string; in: string; schema: unknown }[] } }
      >;
    };
    const params = doc.paths['/admin/evidence/{tenant}/{object}/{id}']!.get.parameters;
    expect(params.find((p) => p.in === 'query')).toEqual(
      expect.objectContaining({ name: 'proofs', schema: { enum: ['newest', 'all'] } }),
    );
    for (const q of ['', '?proofs=newest', '?proofs=all']) {
      const res = await request(app).get(`/admin/evidence/${tenant}/contact/o1${q}`).set(auth);
      const body = JSON.parse(res.text) as { format: string };
      expect(body.format).toBe(
        q === '?proofs=all' ? 'crm-ledger/evidence@v2' : 'crm-ledger/evidence@v3',
      );
      conforms('/admin/evidence/{tenant}/{object}/{id}', 'get', 200, body);
    }
  });

  it('pages and filters verdicts', async () => {
    const all = await request(app).get(`/admin/verdicts?tenant=${tenant}`).set(auth);
    expect(all.body).toMatchObject({ next: null, verdicts: [{ seq: 0 }, { seq: 1 }] });
    const page = await request(app).get(`/admin/verdicts?tenant=${tenant}&limit=1`).set(auth);
    expect(page.body).toMatchObject({ next: 0, verdicts: [{ seq: 0 }] });
    const rest = await request(app).get(`/admin/verdicts?tenant=${tenant}&after=0`).set(auth);
    expect(rest.body.verdicts).toHaveLength(1);
    const since = await request(app)
      .get(`/admin/verdicts?tenant=${tenant}&since=2026-11-26T10:30:00Z`)
      .set(auth);
    expect((since.body as { verdicts: { id: string }[] }).verdicts.map((v) => v.id)).toEqual([
      'o2',
    ]);
    const unauthorised = await request(app)
      .get(`/admin/verdicts?tenant=${tenant}&type=unauthorised`)
      .set(auth);
    expect((unauthorised.body as { verdicts: { id: string }[] }).verdicts.map((v) => v.id)).toEqual(
      ['o2'],
    );
    const bad = await request(app).get(`/admin/verdicts?tenant=${tenant}&limit=0`).set(auth);
    expect(bad.status).toBe(400);
    conforms('/admin/verdicts', 'get', 400, bad.body);
  });

  it('documents a freeze report', async () => {
    const other = randomTenant();
    await ledger.append(other, [contactChange(other, 'z1')]);
    const res = await request(app)
      .post(`/admin/freeze?tenant=${other}`)
      .set(auth)
      .send({ reason: 'witness saw block 0 differ', code: 'BLOCKS_DIFFER', firstBadSeq: 0 });
    expect(res.status).toBe(201);
    conforms('/admin/freeze', 'post', 201, res.body);
    const bad = await request(app).post(`/admin/freeze?tenant=${other}`).set(auth).send({});
    expect(bad.status).toBe(400);
    conforms('/admin/freeze', 'post', 400, bad.body);
  });

  it('documents the error answers too', async () => {
    const cases: [string, string, string, number][] = [
      ['/admin/verify', 'get', '/admin/verify?tenant=nope', 400],
      ['/admin/verify', 'get', '/admin/verify', 401],
      [
        '/admin/records/{tenant}/{object}/{id}',
        'get',
        `/admin/records/${tenant}/contact/none`,
        404,
      ],
      ['/admin/evidence/{tenant}/{object}/{id}', 'get', `/admin/evidence/x/contact/o1`, 400],
      [
        '/admin/evidence/{tenant}/{object}/{id}',
        'get',
        `/admin/evidence/${tenant}/contact/o1?proofs=each`,
        400,
      ],
      [
        '/admin/proofs/consistency',
        'get',
        `/admin/proofs/consistency?tenant=${tenant}&from=5&to=1`,
        400,
      ],
      ['/admin/resume', 'post', `/admin/resume?tenant=${tenant}`, 503],
      ['/admin/blocks', 'get', `/admin/blocks?tenant=${tenant}&from=0&to=9`, 400],
      ['/admin/cosignatures', 'post', `/admin/cosignatures?tenant=${tenant}`, 400],
    ];
    for (const [path, method, url, status] of cases) {
      const base = request(app);
      const req = method === 'post' ? base.post(url) : base.get(url);
      const res = status === 401 ? await req : await req.set(auth);
      expect(res.status, url).toBe(status);
      if (status === 503) {
        conforms('/readyz', 'get', 503, res.body);
        continue;
      }
      conforms(path, method, status, res.body);
    }
  });
});
