/**
 * The dashboard's HTML routes over HTTP (supertest): login and the session cookie, redirects for
 * browsers and 401 JSON for API clients, roles, CSRF (Origin) checks, escaping of ledger values,
 * and bull-board behind the admin/operator roles — on a real ledger and real BullMQ queues.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { connect, randomTenant, testRedisUrl } from '../helpers/redis.js';
import { contactChange } from '../helpers/ledger.js';
import {
  ADMIN_TOKEN,
  AUDITOR_TOKEN,
  OPERATOR_TOKEN,
  createAdminApp,
} from '../helpers/admin-app.js';
import type { AdminAppFixture } from '../helpers/admin-app.js';
import { createChangeSink, createChangesQueue } from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import {
  createQueuesBoard,
  HIDDEN_JOB_VALUE,
  queueDepthsOf,
} from '../../src/pipeline/bull-board.js';
import type { QueuesBoard } from '../../src/pipeline/bull-board.js';
import { QUEUES_BOARD_PATH } from '../../src/http/app.js';
import { SESSION_COOKIE } from '../../src/http/admin-session.js';
import { LedgerKeys } from '../../src/ledger/keys.js';

const PREFIX = `{cl-dash-${process.pid}-${Date.now()}}`;
const ORIGIN = 'http://127.0.0.1';
const XSS_VALUE = '<script>alert("x")</script>';
const XSS_REASON = '<img src=x onerror=alert(1)>';

let redis: Redis;
let fx: AdminAppFixture;
let queue: Queue<ChangesJob>;
let board: QueuesBoard;
let clock = Date.UTC(2026, 10, 1, 12, 0, 0);
const tenant = randomTenant();

/** Markup with whitespace folded (Prettier formats the templates; browsers fold it the same way). */
function squash(markup: string): string {
  return markup.replace(/\s+/g, ' ').replace(/ ?([<>]) ?/g, '$1');
}

/** Logs in through the form and returns the `name=value` of the session cookie. */
async function login(token: string): Promise<string> {
  const res = await request(fx.app)
    .post('/admin/login')
    .set('Host', '127.0.0.1')
    .set('Origin', ORIGIN)
    .type('form')
    .send({ token });
  expect(res.status).toBe(303);
  const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '';
  return cookie.split(';')[0] ?? '';
}

beforeAll(async () => {
  redis = connect();
  const url = new URL(testRedisUrl());
  queue = createChangesQueue(
    { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null },
    PREFIX,
  );
  board = createQueuesBoard([queue], { basePath: QUEUES_BOARD_PATH });
  fx = await createAdminApp(redis, {
    now: () => clock,
    queuesBoard: board.router,
    queueDepths: queueDepthsOf(() => [queue]),
    changeSink: createChangeSink(queue),
  });
  const change = contactChange(tenant, 'x1', {
    fields: { email: 'ada@example.com', firstname: XSS_VALUE },
    actor: { type: 'user', id: 'hubspot:user:9', name: '"><b>mallory</b>' },
  });
  change.verdicts = [{ type: 'duplicate', code: 'DUPLICATE_EMAIL', reason: XSS_REASON }];
  await fx.ledger.append(tenant, [contactChange(tenant, 'x1'), change]);
  await queue.add('changes', {
    source: 'hubspot',
    receivedAt: new Date(clock).toISOString(),
    events: [
      {
        event: change.event,
        idempotencyKey: 'hubspot.test.1',
      },
    ],
  });
});
afterAll(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
  await redis.quit();
  await fx.close();
});

describe('dashboard login', () => {
  describe('when a browser has no session', () => {
    it('redirects pages to the login form, keeping where it was going', async () => {
      const home = await request(fx.app).get('/admin/');
      expect(home.status).toBe(303);
      expect(home.headers['location']).toBe('/admin/login');
      const page = await request(fx.app).get(`/admin/ui/records/${tenant}/contact/x1`);
      expect(page.status).toBe(303);
      expect(page.headers['location']).toBe(
        `/admin/login?next=${encodeURIComponent(`/admin/ui/records/${tenant}/contact/x1`)}`,
      );
      const form = await request(fx.app).get('/admin/login');
      expect(form.status).toBe(200);
      expect(squash(form.text)).toContain('<form method="post" action="/admin/login">');
      expect(squash(form.text)).toMatch(/<input type="password" name="token"/);
    });

    it('still answers API clients 401 JSON', async () => {
      const res = await request(fx.app).get('/admin/verify');
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
      const bad = await request(fx.app)
        .get('/admin/verify')
        .set('Cookie', `${SESSION_COOKIE}=v1.zzzz.AAAA.BBBB`);
      expect(bad.status).toBe(401);
      expect(bad.body.error.code).toBe('UNAUTHORIZED');
    });
  });

  describe('when the token is right', () => {
    it('sets an HttpOnly SameSite=Strict cookie on /admin that holds no token', async () => {
      const res = await request(fx.app)
        .post('/admin/login')
        .set('Host', '127.0.0.1')
        .set('Origin', ORIGIN)
        .type('form')
        .send({ token: ADMIN_TOKEN, next: `/admin/ui/records/${tenant}/contact/x1` });
      expect(res.status).toBe(303);
      expect(res.headers['location']).toBe(`/admin/ui/records/${tenant}/contact/x1`);
      const cookie = String(res.headers['set-cookie']);
      expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=v1\\.`));
      expect(cookie).toContain('HttpOnly');
      expect(cookie).toContain('SameSite=Strict');
      expect(cookie).toContain('Path=/admin');
      expect(cookie).not.toContain(ADMIN_TOKEN);
      expect(cookie).not.toContain(Buffer.from(ADMIN_TOKEN).toString('base64url'));
    });

    it.each([
      '//evil.example/admin/',
      'https://evil.example/admin/',
      '/admin//evil.example',
      '/admin/../evil',
      '/admin/ui/./x',
      '/admin/%2E%2e/evil',
      `/admin/${'a'.repeat(40)}!`,
    ])('refuses to redirect anywhere but our own pages after login (next=%s)', async (next) => {
      const res = await request(fx.app)
        .post('/admin/login')
        .set('Host', '127.0.0.1')
        .set('Origin', ORIGIN)
        .type('form')
        .send({ token: ADMIN_TOKEN, next });
      expect(res.status).toBe(303);
      expect(res.headers['location']).toBe('/admin/');
    });

    it('the session opens pages and the JSON API alike', async () => {
      const cookie = await login(AUDITOR_TOKEN);
      const page = await request(fx.app).get('/admin/').set('Cookie', cookie);
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.text).toContain(`data-tenant="${tenant}"`);
      expect(page.text).toContain('alice (auditor)');
      const api = await request(fx.app)
        .get('/admin/verify')
        .query({ tenant })
        .set('Cookie', cookie);
      expect(api.status).toBe(200);
      expect(api.body).toMatchObject({ ok: true, tenant, size: 2 });
    });
  });

  describe('when the token is wrong or the form comes from elsewhere', () => {
    it('answers 401 with the form again and sets no cookie', async () => {
      const res = await request(fx.app)
        .post('/admin/login')
        .set('Host', '127.0.0.1')
        .set('Origin', ORIGIN)
        .type('form')
        .send({ token: `${ADMIN_TOKEN}x` });
      expect(res.status).toBe(401);
      expect(res.text).toContain('That token is not valid');
      expect(res.headers['set-cookie']).toBeUndefined();
    });

    it.each([
      ['no Origin', {}],
      ['another Origin', { Origin: 'https://evil.example' }],
      ['Origin null', { Origin: 'null' }],
    ])('answers 403 ORIGIN_MISMATCH (%s)', async (_name, headers) => {
      const res = await request(fx.app)
        .post('/admin/login')
        .set('Host', '127.0.0.1')
        .set(headers)
        .type('form')
        .send({ token: ADMIN_TOKEN });
      expect(res.status).toBe(403);
      expect(res.text).toContain('ORIGIN_MISMATCH');
      expect(res.headers['set-cookie']).toBeUndefined();
    });
  });

  describe('when the login form is oversized', () => {
    it.each([
      ['a huge token', { token: 'x'.repeat(10_000) }],
      ['too many fields', { token: 'a', next: '/admin/', a: '1', b: '2', c: '3' }],
    ])('answers 413 BODY_TOO_LARGE as a page (%s)', async (_name, form) => {
      const res = await request(fx.app)
        .post('/admin/login')
        .set('Host', '127.0.0.1')
        .set('Origin', ORIGIN)
        .type('form')
        .send(form);
      expect(res.status).toBe(413);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain('BODY_TOO_LARGE');
      expect(res.headers['set-cookie']).toBeUndefined();
    });
  });

  describe('when a session is tampered with, expired or logged out', () => {
    it('refuses a cookie whose MAC does not hold', async () => {
      const cookie = await login(ADMIN_TOKEN);
      // Not the last character: in base64url its low bits are padding, so changing it can leave
      // the decoded MAC unchanged.
      const at = cookie.length - 5;
      const other = cookie[at] === 'A' ? 'B' : 'A';
      const res = await request(fx.app)
        .get('/admin/')
        .set('Cookie', cookie.slice(0, at) + other + cookie.slice(at + 1));
      expect(res.status).toBe(303);
      expect(res.headers['location']).toBe('/admin/login');
    });

    it('refuses a cookie after its lifetime', async () => {
      const cookie = await login(ADMIN_TOKEN);
      const saved = clock;
      clock += 8 * 3600_000 + 1;
      try {
        const res = await request(fx.app).get('/admin/').set('Cookie', cookie);
        expect(res.status).toBe(303);
      } finally {
        clock = saved;
      }
      expect((await request(fx.app).get('/admin/').set('Cookie', cookie)).status).toBe(200);
    });

    it('logs out only from our own origin, and clears the cookie', async () => {
      const cookie = await login(ADMIN_TOKEN);
      const forged = await request(fx.app)
        .post('/admin/logout')
        .set('Host', '127.0.0.1')
        .set('Origin', 'https://evil.example')
        .set('Cookie', cookie);
      expect(forged.status).toBe(403);
      expect(forged.body.error.code).toBe('ORIGIN_MISMATCH');
      const res = await request(fx.app)
        .post('/admin/logout')
        .set('Host', '127.0.0.1')
        .set('Origin', ORIGIN)
        .set('Cookie', cookie);
      expect(res.status).toBe(303);
      expect(String(res.headers['set-cookie'])).toMatch(
        new RegExp(`^${SESSION_COOKIE}=; Path=/admin; Max-Age=0`),
      );
    });
  });

  describe('behind several api replicas', () => {
    it('a session from one replica opens the other when both have the configured secret', async () => {
      const secret = Buffer.from('0123456789abcdef0123456789abcdef0123456789abcdef', 'utf8');
      const one = await createAdminApp(redis, { now: () => clock, sessionSecret: secret });
      const two = await createAdminApp(redis, { now: () => clock, sessionSecret: secret });
      const stranger = await createAdminApp(redis, { now: () => clock });
      try {
        const [a, b] = [one.app, two.app];
        const res = await request(a)
          .post('/admin/login')
          .set('Host', '127.0.0.1')
          .set('Origin', ORIGIN)
          .type('form')
          .send({ token: ADMIN_TOKEN });
        expect(res.status).toBe(303);
        const cookie = (([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '').split(
          ';',
        )[0];
        expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=v1\\.`));
        expect(
          (
            await request(b)
              .get('/admin/')
              .set('Cookie', cookie ?? '')
          ).status,
        ).toBe(200);
        // A replica with its own random secret (the variable unset) does not accept it.
        const other = await request(stranger.app)
          .get('/admin/')
          .set('Cookie', cookie ?? '');
        expect(other.status).toBe(303);
        expect(other.headers['location']).toBe('/admin/login');
      } finally {
        await Promise.all([one, two, stranger].map((r) => r.close()));
      }
    });
  });
});

describe('dashboard pages', () => {
  it('escape every ledger value (field values, actor names, verdict reasons)', async () => {
    const cookie = await login(ADMIN_TOKEN);
    const res = await request(fx.app)
      .get(`/admin/ui/records/${tenant}/contact/x1`)
      .set('Cookie', cookie);
    expect(res.status).toBe(200);
    expect(res.text).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(res.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(res.text).toContain('&quot;&gt;&lt;b&gt;mallory&lt;/b&gt;');
    expect(res.text).not.toContain('<script');
    expect(res.text).not.toContain('<img');
    expect(res.text).not.toContain('<b>mallory');
    expect(res.text).toContain('ada@example.com');
    expect(res.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(res.headers['content-security-policy']).not.toMatch(/script-src/);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('show the timeline with verdicts and verified proofs', async () => {
    const cookie = await login(AUDITOR_TOKEN);
    const res = await request(fx.app)
      .get(`/admin/ui/records/${tenant}/contact/x1`)
      .set('Cookie', cookie);
    expect(res.text).toContain('history intact');
    expect(res.text).toContain('DUPLICATE_EMAIL');
    expect(
      squash(res.text).match(/<span class="ok">verified<\/span>\(in checkpoint 2\)/g),
    ).toHaveLength(2);
    expect(res.text).toContain('Download the evidence bundle');
  });

  it('hide field values and verdict reasons from the operator role', async () => {
    const cookie = await login(OPERATOR_TOKEN);
    const res = await request(fx.app)
      .get(`/admin/ui/records/${tenant}/contact/x1`)
      .set('Cookie', cookie);
    expect(res.status).toBe(200);
    expect(res.text).toContain('hidden for operator role');
    expect(res.text).not.toContain('ada@example.com');
    expect(res.text).not.toContain('alert');
    expect(res.text).not.toContain('Download the evidence bundle');
    expect(res.text).toContain('DUPLICATE_EMAIL');
  });

  it('redirect the search form to the record, and answer 400 with a code for bad input', async () => {
    const cookie = await login(AUDITOR_TOKEN);
    const ok = await request(fx.app)
      .get('/admin/ui/records')
      .query({ tenant, object: 'contact', id: 'x1' })
      .set('Cookie', cookie);
    expect(ok.status).toBe(303);
    expect(ok.headers['location']).toBe(
      `/admin/ui/records/${encodeURIComponent(tenant)}/contact/x1`,
    );
    const bad = await request(fx.app)
      .get('/admin/ui/records')
      .query({ tenant: '<script>', object: 'contact', id: 'x1' })
      .set('Cookie', cookie);
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/^text\/html/);
    expect(bad.text).toContain('TENANT_INVALID');
    const missing = await request(fx.app)
      .get(`/admin/ui/records/${tenant}/contact/nope`)
      .set('Cookie', cookie);
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('RECORD_UNKNOWN');
    const query = await request(fx.app)
      .get('/admin/')
      .query({ verify: 'fast' })
      .set('Cookie', cookie);
    expect(query.status).toBe(400);
    expect(query.text).toContain('QUERY_INVALID');
    const undecodable = await request(fx.app)
      .get('/admin/ui/verifications/%ff')
      .set('Cookie', cookie);
    expect(undecodable.status).toBe(400);
    expect(undecodable.headers['content-type']).toMatch(/^text\/html/);
    expect(undecodable.text).toContain('PATH_INVALID');
  });

  it('show queue depths, recent verdicts, and a tampered, frozen tenant', async () => {
    const other = randomTenant();
    await fx.ledger.append(other, [contactChange(other, 'a'), contactChange(other, 'b')]);
    fx.frozen.set(other, 'verification failed');
    fx.verdicts.push({
      tenant,
      object: 'contact',
      id: 'x1',
      seq: 1,
      at: '2026-11-01T12:00:00.000Z',
      type: 'duplicate',
      code: 'DUPLICATE_EMAIL',
      reason: XSS_REASON,
    });
    const key = new LedgerKeys(other).segment(0);
    const block = (await redis.lindexBuffer(key, 1)) as Buffer;
    block[block.length - 3] = 0x20;
    await redis.lset(key, 1, block);

    const cookie = await login(ADMIN_TOKEN);
    const res = await request(fx.app)
      .get('/admin/')
      .query({ verify: 'full' })
      .set('Cookie', cookie);
    expect(res.status).toBe(200);
    const text = squash(res.text);
    const row = /<tr data-tenant="([^"]+)">(.*?)<\/tr>/g;
    const rows = new Map([...text.matchAll(row)].map((m) => [m[1], m[2] ?? '']));
    expect(rows.get(other)).toMatch(/TAMPERED<\/span>at seq 1:<code>BLOCK_HASH_MISMATCH<\/code>/);
    expect(rows.get(other)).toContain('<span class="frozen">frozen</span>verification failed');
    expect(rows.get(tenant)).toContain('<span class="ok">verified</span>');
    expect(rows.get(tenant)).not.toContain('frozen');
    expect(text).toContain('<th>Queue</th><th>waiting</th>');
    expect(text).toContain('<td><code>changes</code></td><td>1</td>');
    expect(res.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });
});

describe('resuming a frozen tenant from the dashboard', () => {
  const frozenState = { reason: 'block 1 changed', at: '2026-11-01T12:00:00.000Z', by: 'verifier' };
  const post = (cookie: string, tenantId: string) =>
    request(fx.app)
      .post('/admin/ui/resume')
      .set('Host', '127.0.0.1')
      .set('Origin', ORIGIN)
      .set('Cookie', cookie)
      .type('form')
      .send({ tenant: tenantId });

  it('offers operators a resume, which verifies, unfreezes and queues the admin block', async () => {
    const t = randomTenant();
    await fx.ledger.append(t, [contactChange(t, 'a'), contactChange(t, 'b')]);
    await fx.ledger.store.freeze(t, frozenState);
    fx.frozen.set(t, frozenState.reason);
    const operator = await login(OPERATOR_TOKEN);
    const overview = squash((await request(fx.app).get('/admin/').set('Cookie', operator)).text);
    expect(overview).toContain(
      `<form method="post" action="/admin/ui/resume"><input type="hidden" name="tenant" value="${t}" /><button type="submit">Resume anchoring</button></form>`,
    );
    expect(overview).toContain(`crm-ledger repair --tenant ${t} --from-witness &lt;copy&gt;`);
    const auditor = await login(AUDITOR_TOKEN);
    const seen = (await request(fx.app).get('/admin/').set('Cookie', auditor)).text;
    expect(seen).toContain('Anchoring is paused');
    expect(seen).not.toContain('Resume anchoring');
    expect((await post(auditor, t)).status).toBe(403);
    expect(await fx.ledger.store.readFrozen(t)).toBeDefined();

    const res = await post(operator, t);
    expect(res.status).toBe(303);
    expect(res.headers['location']).toBe('/admin/');
    expect(await fx.ledger.store.readFrozen(t)).toBeUndefined();
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
    const resumed = jobs.flatMap((j) => j.data.events).find((e) => e.event.tenant === t);
    expect(resumed?.event).toMatchObject({
      kind: 'admin',
      actor: { type: 'admin', id: 'admin:operator:ops' },
      fields: { action: 'resume', frozenReason: frozenState.reason, verifiedSize: 2 },
    });
    fx.frozen.delete(t);
  });

  it('refuses a chain that still does not verify, names the repair, and keeps it frozen', async () => {
    const t = randomTenant();
    await fx.ledger.append(t, [contactChange(t, 'a'), contactChange(t, 'b')]);
    await fx.ledger.store.freeze(t, frozenState);
    await redis.lset(new LedgerKeys(t).segment(0), 1, 'not the block');
    const res = await post(await login(ADMIN_TOKEN), t);
    expect(res.status).toBe(409);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('CHAIN_TAMPERED');
    expect(squash(res.text)).toContain(
      `crm-ledger repair --tenant ${t} --from-witness &lt;copy&gt;`,
    );
    expect(await fx.ledger.store.readFrozen(t)).toMatchObject({ reason: frozenState.reason });
  });
});

describe('background full verification', () => {
  it('starts from the overview form, reloads with a progress bar, then shows the result', async () => {
    const big = randomTenant();
    for (let b = 0; b < 3; b++)
      await fx.ledger.append(
        big,
        Array.from({ length: 1000 }, (_, i) => contactChange(big, `v${(b * 1000 + i) % 50}`)),
      );
    const cookie = await login(AUDITOR_TOKEN);
    const overview = await request(fx.app).get('/admin/').set('Cookie', cookie);
    expect(squash(overview.text)).toContain(
      `<form method="post" action="/admin/ui/verifications"><input type="hidden" name="tenant" value="${big}" />`,
    );
    // A cookie-authenticated post from elsewhere is refused (CSRF), and starts nothing.
    const foreign = await request(fx.app)
      .post('/admin/ui/verifications')
      .set('Cookie', cookie)
      .set('Host', '127.0.0.1')
      .set('Origin', 'http://evil.example')
      .type('form')
      .send({ tenant: big });
    expect(foreign.status).toBe(403);

    const started = await request(fx.app)
      .post('/admin/ui/verifications')
      .set('Cookie', cookie)
      .set('Host', '127.0.0.1')
      .set('Origin', ORIGIN)
      .type('form')
      .send({ tenant: big });
    expect(started.status).toBe(303);
    const location = String(started.headers['location']);
    expect(location).toMatch(/^\/admin\/ui\/verifications\/[0-9a-f]{24}$/);
    const first = await request(fx.app).get(location).set('Cookie', cookie);
    expect(first.status).toBe(200);
    expect(first.text).toContain('<progress id="verify-progress"');
    // Until it is done the page reloads itself (a meta refresh: the CSP allows no script).
    let page = first.text;
    const end = Date.now() + 30_000;
    while (page.includes('http-equiv="refresh"') && Date.now() < end) {
      expect(squash(page)).toMatch(/Verifying: (starting…|[\d,]+ of 3,000 blocks \(\d+ %\))/);
      await new Promise((r) => setTimeout(r, 50));
      page = (await request(fx.app).get(location).set('Cookie', cookie)).text;
    }
    expect(page).not.toContain('http-equiv="refresh"');
    expect(squash(page)).toContain('<progress id="verify-progress" max="3000" value="3000">');
    expect(squash(page)).toMatch(
      /<span class="ok">verified<\/span>: 3,000 blocks, root ?<code>[0-9a-f]{64}<\/code>/,
    );

    // Bad input: 400/404 with a code, as a page.
    const bad = await request(fx.app)
      .post('/admin/ui/verifications')
      .set('Authorization', `Bearer ${OPERATOR_TOKEN}`)
      .type('form')
      .send({ tenant: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('TENANT_INVALID');
    const unknown = await request(fx.app)
      .post('/admin/ui/verifications')
      .set('Authorization', `Bearer ${OPERATOR_TOKEN}`)
      .type('form')
      .send({ tenant: randomTenant() });
    expect(unknown.status).toBe(404);
    const missing = await request(fx.app)
      .get('/admin/ui/verifications/0123456789abcdef01234567')
      .set('Cookie', cookie);
    expect(missing.status).toBe(404);
  }, 60_000);
});

describe('recent verdicts page', () => {
  it('lists verdicts with links to the record, reasons escaped, and hidden from operators', async () => {
    fx.verdicts.unshift({
      tenant,
      object: 'contact',
      id: 'x1',
      seq: 1,
      at: '2026-11-02T08:00:00.000Z',
      type: 'unauthorised',
      code: 'FIELD_NOT_ALLOWED',
      reason: `edited by <u>intern</u>`,
    });
    const auditor = await request(fx.app)
      .get('/admin/ui/verdicts')
      .set('Cookie', await login(AUDITOR_TOKEN));
    expect(auditor.status).toBe(200);
    const text = squash(auditor.text);
    expect(text).toContain('FIELD_NOT_ALLOWED');
    expect(text).toContain('edited by &lt;u&gt;intern&lt;/u&gt;');
    expect(text).toContain(`href="/admin/ui/records/${encodeURIComponent(tenant)}/contact/x1"`);
    const operator = await request(fx.app)
      .get('/admin/ui/verdicts')
      .set('Cookie', await login(OPERATOR_TOKEN));
    expect(squash(operator.text)).toContain('FIELD_NOT_ALLOWED');
    expect(operator.text).not.toContain('intern');
    expect(operator.text).toContain('hidden for operator role');
    // The operator's navigation links bull-board; the auditor's does not.
    expect(operator.text).toContain(`href="${QUEUES_BOARD_PATH}/"`);
    expect(auditor.text).not.toContain(`href="${QUEUES_BOARD_PATH}/"`);
  });

  it('still renders the overview when a source fails, and is absent when not wired', async () => {
    const failing = await createAdminApp(redis, {
      recentVerdicts: () => Promise.reject(new Error('boom')),
      queueDepths: () => Promise.reject(new Error('boom')),
      tenantStatus: () => {
        throw new Error('boom');
      },
    });
    try {
      const res = await request(failing.app)
        .get('/admin/')
        .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
      expect(res.status).toBe(200);
      const text = squash(res.text);
      expect(text).toContain('Queue depths unavailable');
      expect(text).toContain('Verdicts unavailable');
      expect(text).toContain('(freeze state unknown)');
      expect(text).not.toContain('boom');
    } finally {
      await failing.close();
    }
    const bare = await createAdminApp(redis, {}, ['recentVerdicts']);
    try {
      const res = await request(bare.app)
        .get('/admin/ui/verdicts')
        .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
      expect(res.status).toBe(404);
      expect(res.text).toContain('NOT_FOUND');
    } finally {
      await bare.close();
    }
  });
});

describe('bull-board at /admin/queues', () => {
  it('is open to admin and operator, 403 for auditor, redirects a browser without a session', async () => {
    expect((await request(fx.app).get(`${QUEUES_BOARD_PATH}/`)).status).toBe(303);
    const api = await request(fx.app).get(`${QUEUES_BOARD_PATH}/api/queues`);
    expect(api.status).toBe(401);
    const auditor = await request(fx.app)
      .get(`${QUEUES_BOARD_PATH}/`)
      .set('Authorization', `Bearer ${AUDITOR_TOKEN}`);
    expect(auditor.status).toBe(403);
    expect(auditor.body.error.code).toBe('FORBIDDEN');
    const cookie = await login(OPERATOR_TOKEN);
    const ui = await request(fx.app).get(`${QUEUES_BOARD_PATH}/`).set('Cookie', cookie);
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('crm-ledger queues');
  });

  it('shows jobs with the field values hidden', async () => {
    const res = await request(fx.app)
      .get(`${QUEUES_BOARD_PATH}/api/queues`)
      .query({ activeQueue: 'changes', status: 'waiting', page: 1, jobsPerPage: 10 })
      .set('Authorization', `Bearer ${OPERATOR_TOKEN}`);
    expect(res.status).toBe(200);
    const text = JSON.stringify(res.body);
    expect(text).toContain(HIDDEN_JOB_VALUE);
    expect(text).toContain('hubspot.test.1');
    expect(text).not.toContain('ada@example.com');
  });

  it('shows queues added later (a flags queue for a new CRM account)', async () => {
    const url = new URL(testRedisUrl());
    const later = new Queue('flags-hubspot-99', {
      connection: { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null },
      prefix: PREFIX,
    });
    try {
      board.setQueues([queue, later]);
      const res = await request(fx.app)
        .get(`${QUEUES_BOARD_PATH}/api/queues`)
        .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
      expect(res.status).toBe(200);
      const names = (res.body.queues as { name: string }[]).map((q) => q.name).sort();
      expect(names).toEqual(['changes', 'flags-hubspot-99']);
    } finally {
      board.setQueues([queue]);
      await later.obliterate({ force: true });
      await later.close();
    }
  });
});
