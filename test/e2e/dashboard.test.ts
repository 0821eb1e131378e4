/**
 * The dashboard as a person uses it: a real Chromium (Debian's /usr/bin/chromium, headless, driven
 * by playwright-core) against the app listening on a real port, with a real ledger on the test
 * Redis. Logs in with the token, reads the tenants and a record's timeline, watches a tampered
 * tenant turn TAMPERED and frozen, and checks what the operator role does not see.
 *
 * Nothing is skipped: without Chromium this file fails and says how to install it (CI does).
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { Redis } from 'ioredis';
import { Redis as RedisClient } from 'ioredis';
import { randomTenant } from '../helpers/redis.js';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { contactChange } from '../helpers/ledger.js';
import { ADMIN_TOKEN, OPERATOR_TOKEN, createAdminApp } from '../helpers/admin-app.js';
import type { AdminAppFixture } from '../helpers/admin-app.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { startProxy } from '../helpers/tcp-proxy.js';
import type { ReplyDroppingProxy } from '../helpers/tcp-proxy.js';

const CHROMIUM = process.env['CRM_LEDGER_CHROMIUM'] ?? '/usr/bin/chromium';
/** The browser's own function, called inside page.evaluate (the project has no DOM typings). */
declare const getComputedStyle: (el: unknown) => { color: string; backgroundColor: string };

/** Keep the screenshots there (e.g. CI artifacts); by default a temp dir removed afterwards. */
const KEEP_SHOTS = process.env['CRM_LEDGER_SCREENSHOT_DIR'];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let redis: Redis;
// A private redis-server: the overview lists every tenant it finds, and other test files put
// theirs (some deliberately tampered) on the shared test Redis.
let redisServer: EmbeddedRedis;
// The app reaches Redis through a proxy that can slow replies: a full verification then lasts
// long enough (seconds) for the progress page to show it moving, whatever the machine's speed.
let proxy: ReplyDroppingProxy;
let fx: AdminAppFixture;
let server: Server;
let base: string;
let browser: Browser;
let shots: string;
const intact = randomTenant();
const broken = randomTenant('salesforce');
/** Large enough that a full verification reports several segments of progress. */
const large = randomTenant();
const LARGE_SIZE = 20_000;

async function assertChromium(): Promise<void> {
  try {
    await access(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: install it (apt-get install -y chromium) or set ` +
        'CRM_LEDGER_CHROMIUM; the dashboard browser test does not skip.',
    );
  }
}

async function logIn(page: Page, token: string): Promise<void> {
  await page.goto(`${base}/admin/`);
  // No session yet: the dashboard sends the browser to its login form.
  expect(new URL(page.url()).pathname).toBe('/admin/login');
  await page.getByLabel('Admin, auditor or operator token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${base}/admin/`);
}

async function rowText(page: Page, tenant: string): Promise<string> {
  const text = await page.locator(`tr[data-tenant="${tenant}"]`).innerText();
  return text.replace(/\s+/g, ' ');
}

beforeAll(async () => {
  await assertChromium();
  redisServer = await startRedisServer({ persistence: 'none' });
  proxy = await startProxy(redisServer.port);
  redis = new RedisClient(proxy.url);
  fx = await createAdminApp(redis);
  const change = contactChange(intact, 'c42', {
    fields: { email: 'grace@example.com', lastname: 'Hopper' },
    actor: { type: 'user', id: 'hubspot:user:7', name: 'Sales Rep' },
  });
  change.verdicts = [
    { type: 'duplicate', code: 'DUPLICATE_EMAIL', reason: 'same email as contact 17' },
  ];
  await fx.ledger.append(intact, [contactChange(intact, 'c42'), contactChange(intact, 'other')]);
  await fx.ledger.append(intact, [change]);
  await fx.ledger.append(broken, [
    contactChange(broken, 'a'),
    contactChange(broken, 'b'),
    contactChange(broken, 'c'),
  ]);
  for (let b = 0; b < LARGE_SIZE / 1000; b++) {
    await fx.ledger.append(
      large,
      Array.from({ length: 1000 }, (_, i) => contactChange(large, `l${(b * 1000 + i) % 100}`)),
    );
  }
  server = createServer(fx.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  shots = KEEP_SHOTS ?? (await mkdtemp(join(tmpdir(), 'crm-ledger-shots-')));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await redis?.quit();
  await proxy?.close();
  await fx?.close();
  await redisServer?.stop();
  if (shots && !KEEP_SHOTS) await rm(shots, { recursive: true, force: true });
});

describe('dashboard in a browser', () => {
  describe('when the token is wrong', () => {
    it('stays on the login form with an error and no session', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${base}/admin/login`);
      await page.getByLabel('Admin, auditor or operator token').fill(`${ADMIN_TOKEN}-wrong`);
      await page.getByRole('button', { name: 'Log in' }).click();
      await expectText(page.getByRole('alert'), 'That token is not valid');
      expect(new URL(page.url()).pathname).toBe('/admin/login');
      expect(await context.cookies()).toEqual([]);
      await page.goto(`${base}/admin/`);
      expect(new URL(page.url()).pathname).toBe('/admin/login');
      await context.close();
    });
  });

  describe('when an admin logs in', () => {
    it('shows every tenant verified, then a record timeline with values and verdicts', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await logIn(page, ADMIN_TOKEN);
      const [cookie] = await context.cookies();
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });
      expect(cookie?.value).not.toContain(ADMIN_TOKEN);

      await expectText(page.getByRole('heading', { level: 1 }), 'Overview');
      expect(await rowText(page, intact)).toMatch(
        new RegExp(`^${intact} verified 3 size 3, covers blocks until \\S+ crm-ledger\\.test`),
      );
      expect(await rowText(page, broken)).toMatch(/ verified 3 /);

      await page.getByLabel('Tenant').fill(intact);
      await page.getByLabel('Object').fill('contact');
      await page.getByLabel('Record id').fill('c42');
      await page.getByRole('button', { name: 'Show history' }).click();
      await page.waitForURL(`${base}/admin/ui/records/${encodeURIComponent(intact)}/contact/c42`);

      const rows = page.locator('#timeline > tbody > tr');
      expect(await rows.count()).toBe(2);
      const latest = (await rows.nth(1).innerText()).replace(/\s+/g, ' ');
      expect(latest).toContain('grace@example.com');
      expect(latest).toContain('Hopper');
      expect(latest).toContain('Sales Rep (user hubspot:user:7)');
      expect(latest).toContain('duplicate DUPLICATE_EMAIL — same email as contact 17');
      expect(latest).toContain('verified (in checkpoint 3)');
      await expectText(page.locator('main > p').first(), 'history intact');
      await page.screenshot({ path: join(shots, 'timeline.png'), fullPage: true });
      await context.close();
    });
  });

  describe('when an admin starts a full verification of a large chain', () => {
    it('shows a progress bar that advances, then the result', async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await logIn(page, ADMIN_TOKEN);
      // A Redis 250 ms away: the segments of the chain arrive over several seconds.
      proxy.delayReplies(250);
      await page
        .locator(`tr[data-tenant="${large}"]`)
        .getByRole('button', { name: 'Verify in full' })
        .click();
      await page.waitForURL(/\/admin\/ui\/verifications\/[0-9a-f]{24}$/);
      await expectText(page.getByRole('heading', { level: 1 }), `Verification of ${large}`);

      // What the page shows at each reload (it reloads itself every second until done).
      const seen: { value: number | null; max: number | null; status: string }[] = [];
      const look = async () => {
        const bar = page.locator('#verify-progress');
        const [value, max, status] = await Promise.all([
          bar.getAttribute('value'),
          bar.getAttribute('max'),
          page.locator('#verify-status').innerText(),
        ]);
        seen.push({
          value: value === null ? null : Number(value),
          max: max === null ? null : Number(max),
          status: status.replace(/\s+/g, ' '),
        });
      };
      await look();
      await page.screenshot({ path: join(shots, 'verification-running.png'), fullPage: true });
      const end = Date.now() + 60_000;
      while (!seen.at(-1)?.status.includes('verified:') && Date.now() < end) {
        await page.waitForEvent('load', { timeout: 5_000 }).catch(() => undefined);
        await look().catch(() => undefined); // a reload may start while reading
      }
      proxy.delayReplies(0);
      const first = seen[0]!;
      const last = seen.at(-1)!;
      // First a running verification: an indeterminate bar, or part of the chain.
      expect(first.status).toMatch(/^Verifying: /);
      expect(first.value ?? 0).toBeLessThan(LARGE_SIZE);
      // Then the result, with the bar full.
      expect(last.status).toBe(
        `verified: ${LARGE_SIZE.toLocaleString('en-US')} blocks, root ${last.status.split('root ')[1]}`,
      );
      expect(last.status).toMatch(/root [0-9a-f]{64}$/);
      expect(last).toMatchObject({ value: LARGE_SIZE, max: LARGE_SIZE });
      // The bar only moves forward, and was seen part way.
      const values = seen.map((s) => s.value ?? 0);
      expect(values).toEqual([...values].sort((a, b) => a - b));
      expect(values.some((v) => v > 0 && v < LARGE_SIZE)).toBe(true);
      await page.screenshot({ path: join(shots, 'verification-done.png'), fullPage: true });
      await context.close();
    }, 90_000);
  });

  describe('when a block of a tenant is tampered with and the tenant is frozen', () => {
    it('shows the tenant TAMPERED at the bad block and frozen, and a screenshot records it', async () => {
      const key = new LedgerKeys(broken).segment(0);
      const block = (await redis.lindexBuffer(key, 1)) as Buffer;
      block[block.length - 3] = 0x20;
      await redis.lset(key, 1, block);
      fx.frozen.set(broken, 'chain verification failed');

      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const console: string[] = [];
      page.on('console', (m) => console.push(m.text()));
      await logIn(page, ADMIN_TOKEN);
      const row = await rowText(page, broken);
      expect(row).toContain('TAMPERED at seq 1: BLOCK_HASH_MISMATCH');
      expect(row).toContain('frozen chain verification failed');
      expect(await rowText(page, intact)).toMatch(/ verified 3 /);
      expect(await rowText(page, intact)).not.toContain('frozen');
      await expectText(page.locator('main'), '1 TAMPERED');
      // The stylesheet passes the Content-Security-Policy (by hash): TAMPERED is red, frozen a badge.
      const bad = page.locator(`tr[data-tenant="${broken}"] .bad`);
      expect(await bad.evaluate((el) => getComputedStyle(el).color)).toBe('rgb(179, 38, 30)');
      const badge = page.locator(`tr[data-tenant="${broken}"] .frozen`);
      expect(await badge.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe(
        'rgb(11, 87, 208)',
      );
      expect(console.filter((line) => /Content.Security.Policy/i.test(line))).toEqual([]);

      const file = join(shots, 'overview.png');
      await page.screenshot({ path: file, fullPage: true });
      const png = await readFile(file);
      expect(png.length).toBeGreaterThan(1000);
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      await context.close();
    });
  });

  describe('when an operator logs in', () => {
    it('sees the timeline without field values or verdict reasons', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await logIn(page, OPERATOR_TOKEN);
      await page.goto(`${base}/admin/ui/records/${encodeURIComponent(intact)}/contact/c42`);
      const text = (await page.locator('#timeline').innerText()).replace(/\s+/g, ' ');
      expect(text).toContain('values hidden for operator role');
      expect(text).toContain('(reason hidden for operator role)');
      expect(text).toContain('DUPLICATE_EMAIL');
      expect(text).not.toContain('grace@example.com');
      expect(text).not.toContain('Hopper');
      expect(text).not.toContain('same email as contact 17');
      expect(await page.getByText('Download the evidence bundle').count()).toBe(0);
      await context.close();
    });
  });
});

async function expectText(locator: ReturnType<Page['locator']>, text: string): Promise<void> {
  await locator.first().waitFor();
  expect((await locator.first().innerText()).replace(/\s+/g, ' ')).toContain(text);
}
