import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { openCheckpoint, parseVerifierKey } from '../../src/ledger/checkpoint.js';

const TOKEN = 'test-admin-token-0123456789abcdef';
let redis: Redis;
let ledger: Ledger;
let app: ReturnType<typeof createApp>;
let dir: string;
const signer = testSigner();

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis, signer);
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-http-'));
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

const auth = { Authorization: `Bearer ${TOKEN}` };

describe('GET /admin/verify', () => {
  describe('when no token or a wrong token is sent', () => {
    it.each([
      ['no header', {}],
      ['wrong token', { Authorization: 'Bearer nope' }],
      ['token with a suffix', { Authorization: `Bearer ${TOKEN}x` }],
      ['basic auth', { Authorization: `Basic ${Buffer.from(`a:${TOKEN}`).toString('base64')}` }],
    ])('answers 401 with a code (%s)', async (_name, headers) => {
      const res = await request(app).get('/admin/verify').set(headers);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({
        error: { code: 'UNAUTHORIZED', message: expect.any(String) as string },
      });
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });
  });

  describe('when a tenant chain is intact', () => {
    it('returns ok, size, root and the signed checkpoint', async () => {
      const tenant = randomTenant();
      await ledger.append(tenant, [contactChange(tenant, '1'), contactChange(tenant, '2')]);
      const res = await request(app).get('/admin/verify').query({ tenant }).set(auth);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        ok: true,
        tenant,
        size: 2,
        root: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
      });
      const cp = openCheckpoint(
        String(res.body.checkpoint),
        ledger.verifiers,
        ledger.originFor(tenant),
      );
      expect(Buffer.from(cp.rootHash).toString('hex')).toBe(res.body.root);
    });
  });

  describe('when a tenant chain was tampered with', () => {
    it('returns ok:false with the first bad seq and a reason', async () => {
      const tenant = randomTenant();
      await ledger.append(tenant, [
        contactChange(tenant, '1'),
        contactChange(tenant, '2'),
        contactChange(tenant, '3'),
      ]);
      const key = new LedgerKeys(tenant).segment(0);
      const block = (await redis.lindexBuffer(key, 1)) as Buffer;
      block[block.length - 3] = 0x20;
      await redis.lset(key, 1, block);
      const res = await request(app).get('/admin/verify').query({ tenant, mode: 'full' }).set(auth);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        ok: false,
        tenant,
        firstBadSeq: 1,
        code: 'BLOCK_HASH_MISMATCH',
        reason: expect.any(String) as string,
      });
      const all = await request(app).get('/admin/verify').set(auth);
      expect(all.body.ok).toBe(false);
      expect((all.body.tenants as { tenant: string }[]).some((t) => t.tenant === tenant)).toBe(
        true,
      );
    });
  });

  describe('when the query is malformed', () => {
    it.each([
      [{ tenant: 'not a tenant' }, 'TENANT_INVALID'],
      [{ tenant: 'hubspot:1', mode: 'fast' }, 'QUERY_INVALID'],
      [{ tenant: 'hubspot:1', extra: '1' }, 'QUERY_INVALID'],
    ])('answers 400 with a code for %j', async (query, code) => {
      const res = await request(app).get('/admin/verify').query(query).set(auth);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe(code);
    });

    it('answers 404 TENANT_UNKNOWN for a tenant with no chain', async () => {
      const res = await request(app)
        .get('/admin/verify')
        .query({ tenant: randomTenant() })
        .set(auth);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('TENANT_UNKNOWN');
    });
  });
});

describe('GET /admin/keys', () => {
  it('is public and returns the verifier key in C2SP vkey form', async () => {
    const res = await request(app).get('/admin/keys');
    expect(res.status).toBe(200);
    const key = parseVerifierKey(String(res.body.current));
    expect(key.keyId).toBe(signer.keyId);
    expect(res.body.retired).toEqual([]);
  });
});

describe('health routes', () => {
  it('GET /healthz and /readyz answer 200 while Redis is up', async () => {
    expect((await request(app).get('/healthz')).status).toBe(200);
    expect((await request(app).get('/readyz')).body).toEqual({ ok: true, redis: 'up' });
  });

  it('unknown routes get a JSON 404', async () => {
    const res = await request(app).get('/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });
});
