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
import { verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.js';
import { verifyEvidence } from '../../src/ledger/evidence.js';
import { adminTokenFrom, parseTokensFile, tokenDigest } from '../../src/http/admin-auth.js';

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

describe('bad input refused by the HTTP stack itself', () => {
  it('answers 400 BODY_INVALID for a body that is not JSON, and freezes nothing', async () => {
    const tenant = randomTenant();
    await ledger.append(tenant, [contactChange(tenant, 'a')]);
    const res = await request(app)
      .post('/admin/freeze')
      .set(auth)
      .set('Content-Type', 'application/json')
      .send(`{"tenant":"${tenant}","reason":`);
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({
      code: 'BODY_INVALID',
      message: 'request body could not be read: malformed, or not decodable',
    });
    expect(await ledger.store.readFrozen(tenant)).toBeUndefined();
  });

  it.each([
    ['a charset it cannot read', { 'Content-Type': 'application/json; charset=latin9' }],
    ['a content encoding it does not know', { 'Content-Encoding': 'compress' }],
  ])('answers 415 MEDIA_UNSUPPORTED for %s', async (_name, headers) => {
    const tenant = randomTenant();
    const res = await request(app)
      .post('/admin/freeze')
      .set(auth)
      .set('Content-Type', 'application/json')
      .set(headers)
      .send(JSON.stringify({ tenant, reason: 'x' }));
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('MEDIA_UNSUPPORTED');
  });

  it('answers 400 BODY_INVALID for a body that does not decompress', async () => {
    const res = await request(app)
      .post('/admin/freeze')
      .set(auth)
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send('{"tenant":"hubspot:1","reason":"x"}');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BODY_INVALID');
  });

  it.each(['/admin/records/hubspot:1/contact/%ff', '/admin/evidence/hubspot:1/contact/%E0%A4%A'])(
    'answers 400 PATH_INVALID for a path that is not valid percent-encoding (%s)',
    async (path) => {
      const res = await request(app).get(path).set(auth);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('PATH_INVALID');
    },
  );
});

describe('GET /admin/records/:tenant/:object/:id', () => {
  it('returns the history in order, with opened values and inclusion proofs that verify', async () => {
    const tenant = randomTenant();
    await ledger.append(tenant, [contactChange(tenant, 'h1'), contactChange(tenant, 'other')]);
    await ledger.append(tenant, [
      contactChange(tenant, 'h1', { fields: { email: 'new@example.com' } }),
    ]);
    const res = await request(app).get(`/admin/records/${tenant}/contact/h1`).set(auth);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      tenant,
      record: { object: 'contact', id: 'h1' },
      ok: true,
      checkpointSize: 3,
    });
    const blocks = res.body.blocks as {
      seq: number;
      hash: string;
      verified: boolean;
      proof: string[];
      fields: Record<string, { value?: unknown; opened: boolean }>;
    }[];
    expect(blocks.map((b) => b.seq)).toEqual([0, 2]);
    expect(blocks[1]?.fields['email']).toMatchObject({ value: 'new@example.com', opened: true });
    // Index entries that name no seq (changed in Redis) are passed over, not sent to Redis.
    const list = new LedgerKeys(tenant).record('contact/h1');
    await redis.rpush(list, '1.5:x', '-1:x', 'garbage');
    const again = await request(app).get(`/admin/records/${tenant}/contact/h1`).set(auth);
    await redis.ltrim(list, 0, 1);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ ok: true });
    expect((again.body.blocks as { seq: number }[]).map((b) => b.seq)).toEqual([0, 2]);
    const cp = openCheckpoint(
      String(res.body.checkpoint),
      ledger.verifiers,
      ledger.originFor(tenant),
    );
    for (const b of blocks) {
      expect(b.verified).toBe(true);
      expect(() =>
        verifyInclusion(
          Buffer.from(b.hash, 'hex'),
          b.seq,
          cp.size,
          b.proof.map((p) => Buffer.from(p, 'hex')),
          cp.rootHash,
        ),
      ).not.toThrow();
    }
  });

  it('marks a block whose bytes were changed as not verified', async () => {
    const tenant = randomTenant();
    await ledger.append(tenant, [contactChange(tenant, 'h2'), contactChange(tenant, 'h2')]);
    const key = new LedgerKeys(tenant).segment(0);
    const block = (await redis.lindexBuffer(key, 1)) as Buffer;
    await redis.lset(key, 1, Buffer.from(block.toString('utf8').replace('"update"', '"delete"')));
    const res = await request(app).get(`/admin/records/${tenant}/contact/h2`).set(auth);
    expect(res.body.ok).toBe(false);
    expect((res.body.blocks as { verified: boolean }[]).map((b) => b.verified)).toEqual([
      true,
      false,
    ]);
  });

  it('answers 404 RECORD_UNKNOWN and 400 for malformed parameters', async () => {
    const tenant = randomTenant();
    expect(
      (await request(app).get(`/admin/records/${tenant}/contact/nope`).set(auth)).body.error.code,
    ).toBe('RECORD_UNKNOWN');
    expect((await request(app).get('/admin/records/bad/contact/1').set(auth)).status).toBe(400);
    expect((await request(app).get(`/admin/records/${tenant}/Contact/1`).set(auth)).status).toBe(
      400,
    );
    expect((await request(app).get(`/admin/records/${tenant}/contact/1`)).status).toBe(401);
  });
});

describe('GET /admin/checkpoint and /admin/proofs/consistency', () => {
  it('serves the signed note and consistency proofs that verify between checkpoints', async () => {
    const tenant = randomTenant();
    const first = await ledger.append(tenant, [
      contactChange(tenant, 'c1'),
      contactChange(tenant, 'c2'),
    ]);
    await ledger.append(
      tenant,
      Array.from({ length: 5 }, (_, i) => contactChange(tenant, `c${i}`)),
    );
    const note = await request(app).get('/admin/checkpoint').query({ tenant }).set(auth);
    expect(note.status).toBe(200);
    expect(note.headers['content-type']).toMatch(/^text\/plain/);
    const latest = openCheckpoint(note.text, ledger.verifiers, ledger.originFor(tenant));
    const old = openCheckpoint(first.checkpoint.note, ledger.verifiers, ledger.originFor(tenant));
    const res = await request(app)
      .get('/admin/proofs/consistency')
      .query({ tenant, from: old.size, to: latest.size })
      .set(auth);
    expect(res.status).toBe(200);
    expect(() =>
      verifyConsistency(
        old.size,
        latest.size,
        (res.body.proof as string[]).map((p) => Buffer.from(p, 'hex')),
        old.rootHash,
        latest.rootHash,
      ),
    ).not.toThrow();
    expect(
      (
        await request(app)
          .get('/admin/proofs/consistency')
          .query({ tenant, from: 5, to: 2 })
          .set(auth)
      ).status,
    ).toBe(400);
    expect(
      (
        await request(app)
          .get('/admin/proofs/consistency')
          .query({ tenant, from: 0, to: 99 })
          .set(auth)
      ).status,
    ).toBe(400);
    expect(
      (await request(app).get('/admin/checkpoint').query({ tenant: randomTenant() }).set(auth))
        .status,
    ).toBe(404);
  });
});

describe('GET /admin/evidence/:tenant/:object/:id', () => {
  it('returns a bundle that verifies offline with the public key', async () => {
    const tenant = randomTenant();
    await ledger.append(tenant, [contactChange(tenant, 'e1'), contactChange(tenant, 'x')]);
    await ledger.append(tenant, [contactChange(tenant, 'e1')]);
    const res = await request(app)
      .get(`/admin/evidence/${encodeURIComponent(tenant)}/contact/e1`)
      .set(auth);
    expect(res.status).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="evidence-/);
    const bundle = JSON.parse(res.text) as unknown;
    const keys = await request(app).get('/admin/keys');
    const result = verifyEvidence(bundle, [keys.body.current as string]);
    expect(result).toMatchObject({
      ok: true,
      treeSize: 3,
      fromFirstBlock: true,
      format: 'crm-ledger/evidence@v3',
      inclusion: 'newest',
    });
    if (result.ok) expect(result.changes.map((c) => c.seq)).toEqual([0, 2]);

    // ?proofs=all: an inclusion proof for each block (format v2).
    const all = await request(app)
      .get(`/admin/evidence/${encodeURIComponent(tenant)}/contact/e1?proofs=all`)
      .set(auth);
    expect(all.status).toBe(200);
    const each = verifyEvidence(JSON.parse(all.text) as unknown, [keys.body.current as string]);
    expect(each).toMatchObject({ ok: true, format: 'crm-ledger/evidence@v2', inclusion: 'each' });
    if (each.ok && result.ok) expect(each.changes).toEqual(result.changes);
    const newest = await request(app)
      .get(`/admin/evidence/${encodeURIComponent(tenant)}/contact/e1?proofs=newest`)
      .set(auth);
    expect(JSON.parse(newest.text)).toMatchObject({ format: 'crm-ledger/evidence@v3' });
    const bad = await request(app)
      .get(`/admin/evidence/${encodeURIComponent(tenant)}/contact/e1?proofs=some`)
      .set(auth);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('QUERY_INVALID');
  });

  it('answers 401 without a token, 404 for an unknown record, 400 for malformed parameters', async () => {
    const tenant = randomTenant();
    await ledger.append(tenant, [contactChange(tenant, 'e2')]);
    const path = `/admin/evidence/${encodeURIComponent(tenant)}/contact`;
    expect((await request(app).get(`${path}/e2`)).status).toBe(401);
    const unknown = await request(app).get(`${path}/nobody`).set(auth);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('RECORD_UNKNOWN');
    const bad = await request(app).get(`/admin/evidence/nope/contact/e2`).set(auth);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('TENANT_INVALID');
    const badObject = await request(app)
      .get(`/admin/evidence/${encodeURIComponent(tenant)}/Contact!/e2`)
      .set(auth);
    expect(badObject.status).toBe(400);
    const extra = await request(app).get(`${path}/e2?x=1`).set(auth);
    expect(extra.status).toBe(400);
  });
});

describe('roles', () => {
  const AUDITOR = 'auditor-token-0123456789abcdef0123';
  const OPERATOR = 'operator-token-0123456789abcdef012';
  let roleApp: ReturnType<typeof createApp>;
  let tenant: string;
  beforeAll(async () => {
    tenant = randomTenant();
    await ledger.append(tenant, [contactChange(tenant, 'r1')]);
    roleApp = createApp({
      logger: createLogger({ level: 'silent' }),
      adminToken: TOKEN,
      tokens: [
        adminTokenFrom('auditor', 'alice', AUDITOR),
        // From a tokens file: the digest only.
        ...parseTokensFile(
          JSON.stringify([
            { name: 'ops', role: 'operator', sha256: tokenDigest(OPERATOR).toString('hex') },
          ]),
        ),
      ],
      verifierKeys: ledger.verifiers,
      verification: new VerificationService(
        ledger.store,
        { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
        new FileTrustStore(dir),
      ),
      ping: () => redis.ping(),
    });
  });
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });
  const record = () => `/admin/records/${encodeURIComponent(tenant)}/contact/r1`;
  const evidence = () => `/admin/evidence/${encodeURIComponent(tenant)}/contact/r1`;

  it('admin may do everything', async () => {
    for (const path of [record(), evidence(), `/admin/verify?tenant=${tenant}`])
      expect((await request(roleApp).get(path).set(as(TOKEN))).status).toBe(200);
  });

  it('auditor reads histories, evidence and verification', async () => {
    for (const path of [record(), evidence(), `/admin/verify?tenant=${tenant}`])
      expect((await request(roleApp).get(path).set(as(AUDITOR))).status).toBe(200);
  });

  it('operator sees verification and checkpoints but gets 403 on personal data', async () => {
    expect(
      (await request(roleApp).get(`/admin/verify?tenant=${tenant}`).set(as(OPERATOR))).status,
    ).toBe(200);
    expect(
      (await request(roleApp).get(`/admin/checkpoint?tenant=${tenant}`).set(as(OPERATOR))).status,
    ).toBe(200);
    for (const path of [record(), evidence()]) {
      const res = await request(roleApp).get(path).set(as(OPERATOR));
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
  });

  it('an unknown token is 401 whatever the route', async () => {
    const res = await request(roleApp)
      .get(record())
      .set(as(`${AUDITOR}x`));
    expect(res.status).toBe(401);
  });

  it('rejects tokens files with clear messages', () => {
    expect(() => parseTokensFile('{')).toThrow('not JSON');
    expect(() => parseTokensFile('[{"name":"a","role":"root","sha256":"00"}]')).toThrow(
      'entry 0: "role" must be one of admin, auditor, operator',
    );
    expect(() => parseTokensFile('[{"name":"a","role":"auditor","sha256":"xyz"}]')).toThrow(
      '"sha256" must be 64 lower-case hex digits',
    );
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
    expect((await request(app).get('/readyz')).body).toEqual({ ok: true, redis: 'up', frozen: [] });
  });

  it('unknown routes get a JSON 404', async () => {
    const res = await request(app).get('/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });
});
