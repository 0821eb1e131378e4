import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../src/model/change-event.js';
import { loadPolicy } from '../../src/policy/evaluate.js';
import type { LimitCheck } from '../../src/policy/evaluate.js';
import { PolicyJudge } from '../../src/policy/judge.js';
import { PolicyKeys } from '../../src/policy/keys.js';
import { MassChangeCounter, capFor } from '../../src/policy/mass-change.js';
import { QuarantineStore } from '../../src/policy/quarantine.js';
import { connect, randomTenant } from '../helpers/redis.js';

const T0 = Date.parse('2025-03-05T12:00:00.000Z');

function check(overrides: Partial<LimitCheck> = {}): LimitCheck {
  return {
    rule: 'mass-delete',
    scope: 'hubspot:user:7',
    max: 200,
    windowMs: 600_000,
    window: '10m',
    per: 'actor',
    at: T0,
    ...overrides,
  };
}

// Two "workers": separate connections, separate counters.
let redisA: Redis;
let redisB: Redis;
let workerA: MassChangeCounter;
let workerB: MassChangeCounter;
let tenant: string;

beforeAll(() => {
  redisA = connect();
  redisB = connect();
  workerA = new MassChangeCounter(redisA);
  workerB = new MassChangeCounter(redisB);
});
afterAll(async () => {
  await redisA.quit();
  await redisB.quit();
});
beforeEach(() => {
  tenant = randomTenant();
});
afterEach(async () => {
  const keys = await redisA.keys(`cl:{${tenant}}:*`);
  if (keys.length) await redisA.del(...keys);
});

describe('MassChangeCounter', () => {
  describe('when two workers count 300 deletes within a minute (max 200 per 10m)', () => {
    it('raises exactly one alert, once more than 200 are counted', async () => {
      const batches = Array.from({ length: 30 }, (_, b) =>
        Array.from({ length: 10 }, (_, j) => {
          const n = b * 10 + j;
          return { tenant, check: check({ at: T0 + n * 200 }), eventKey: `delete-${n}` };
        }),
      );
      // Interleave: even batches on worker A, odd on worker B, all in flight at once.
      const results = await Promise.all(
        batches.map((items, b) => (b % 2 ? workerB : workerA).countAll(items)),
      );
      const flat = results.flat();
      expect(flat.filter((r) => r.alert)).toHaveLength(1);
      expect(flat.filter((r) => r.counted)).toHaveLength(300);
      expect(Math.max(...flat.map((r) => r.count))).toBe(300);
      const alerting = flat.find((r) => r.alert);
      // Batches arrive out of time order; the count is of all changes counted in the window, so
      // the alert goes to the 201st change counted, whichever worker counts it.
      expect(alerting?.count).toBe(201);
      expect(
        await redisA.zcard(new PolicyKeys(tenant).massChange('mass-delete', 'hubspot:user:7')),
      ).toBe(300);
    });
  });

  describe('when a change is counted again (a retried job)', () => {
    it('does not count it twice', async () => {
      const first = await workerA.count(tenant, check(), 'e-1');
      const again = await workerB.count(tenant, check(), 'e-1');
      expect(first).toEqual({ count: 1, alert: false, counted: true });
      expect(again).toEqual({ count: 1, alert: false, counted: false });
    });

    it('raises the alert again only for the change that raised it', async () => {
      const c = check({ max: 2 });
      await workerA.countAll([
        { tenant, check: c, eventKey: 'a' },
        { tenant, check: c, eventKey: 'b' },
      ]);
      expect((await workerA.count(tenant, c, 'c')).alert).toBe(true);
      expect((await workerB.count(tenant, c, 'd')).alert).toBe(false);
      expect(await workerB.count(tenant, c, 'c')).toEqual({
        count: 4,
        alert: true,
        counted: false,
      });
      expect((await workerB.count(tenant, c, 'b')).alert).toBe(false);
    });
  });

  describe('when the window slides past old changes', () => {
    it('forgets them, and the alert can come back in a new window', async () => {
      const c = (at: number) => check({ max: 2, windowMs: 1_000, window: '1s', at });
      for (const [i, at] of [T0, T0 + 100, T0 + 200].entries()) {
        await workerA.count(tenant, c(at), `old-${i}`);
      }
      // 1.5 s later (event time): the old ones left the window.
      const later = await workerA.count(tenant, c(T0 + 1_500), 'new-0');
      expect(later.count).toBe(1);
      // The alert marker lives for one window (real time): wait it out, then cross again.
      await new Promise((r) => setTimeout(r, 1_100));
      const again = [];
      for (const i of [1, 2, 3])
        again.push(await workerB.count(tenant, c(T0 + 1_500 + i), `new-${i}`));
      expect(again.map((r) => r.alert)).toEqual([false, false, true]);
    });
  });

  describe('keys', () => {
    it('live under the tenant hash tag and expire', async () => {
      const c = check({ max: 0, windowMs: 60_000, window: '1m' });
      await workerA.count(tenant, c, 'x');
      const keys = (await redisA.keys(`cl:{${tenant}}:policy:*`)).sort();
      expect(keys).toEqual([
        `cl:{${tenant}}:policy:mc:mass-delete:hubspot:user:7`,
        `cl:{${tenant}}:policy:mca:mass-delete:hubspot:user:7`,
      ]);
      for (const key of keys) {
        const ttl = await redisA.pttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(60_000);
      }
    });

    it('keep actors apart when counting per actor', async () => {
      await workerA.count(tenant, check({ scope: 'hubspot:user:1' }), 'e');
      expect((await workerA.count(tenant, check({ scope: 'hubspot:user:2' }), 'f')).count).toBe(1);
    });

    it('stop growing at the cap while still counting', async () => {
      const c = check({ max: 1 });
      const cap = capFor(1);
      const items = Array.from({ length: cap + 50 }, (_, i) => ({
        tenant,
        check: { ...c, at: T0 + i },
        eventKey: `k${i}`,
      }));
      const out = await workerA.countAll(items);
      expect(out.at(-1)?.count).toBe(cap + 1);
      expect(await redisA.zcard(new PolicyKeys(tenant).massChange('mass-delete', c.scope))).toBe(
        cap,
      );
    });
  });
});

const POLICY = `version: 1
groups:
  data-stewards: ["hubspot:user:42"]
rules:
  - name: protect-contact-email
    match: { object: contact, kind: [update], fields: [email, phone] }
    allow: { groups: [data-stewards], sources: [INTEGRATION] }
    action: [flag, quarantine]
  - name: mass-delete
    match: { object: contact, kind: [delete] }
    limit: { max: 200, window: 10m, per: actor }
    action: [alert]
`;

function change(n: number, overrides: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    tenant,
    source: 'hubspot',
    object: 'contact',
    recordId: String(1000 + n),
    eventId: `ev-${n}`,
    kind: 'delete',
    actor: { type: 'user', id: 'hubspot:user:7' },
    occurredAt: new Date(T0 + n * 150).toISOString(),
    fields: {},
    ...overrides,
  };
}

describe('PolicyJudge', () => {
  const policy = loadPolicy(POLICY);
  const judgeWith = (redis: Redis) =>
    new PolicyJudge({
      policy: () => policy,
      counter: new MassChangeCounter(redis),
      quarantine: new QuarantineStore(redis),
      now: () => T0 + 3_600_000,
    });

  describe('when two workers judge 300 deletes by one user in a minute', () => {
    it('gives 100 changes a mass-change verdict and raises exactly one alert', async () => {
      const a = judgeWith(redisA);
      const b = judgeWith(redisB);
      const batches = Array.from({ length: 20 }, (_, k) =>
        Array.from({ length: 15 }, (_, j) => ({ event: change(k * 15 + j) })),
      );
      const judged = (
        await Promise.all(batches.map((items, k) => (k % 2 ? b : a).judgeBatch(items)))
      ).flat();
      expect(judged.filter((j) => j.verdicts.length > 0)).toHaveLength(100);
      const alerts = judged.flatMap((j) => j.actions).filter((x) => x.type === 'alert');
      expect(alerts).toHaveLength(1);
      expect(alerts[0]?.verdict).toMatchObject({
        code: 'POLICY_MASS_CHANGE',
        detail: { count: 201 },
      });

      // A retried batch counts nothing twice and raises no new alert.
      const retry = await b.judgeBatch(batches[5] ?? []);
      expect(retry.flatMap((j) => j.actions)).toEqual([]);
    });
  });

  describe('quarantine', () => {
    it('flags later changes to a quarantined record until an admin clears it', async () => {
      const judge = judgeWith(redisA);
      const store = new QuarantineStore(redisB);
      const edit = (n: number, actor = 'hubspot:user:7') =>
        change(n, {
          kind: 'update',
          recordId: '555',
          fields: { email: `x${n}@example.com` },
          actor: { type: 'user', id: actor },
        });

      const [first, second] = await judge.judgeBatch([
        { event: edit(1) },
        { event: edit(2, 'hubspot:user:42') },
      ]);
      expect(first?.actions.map((x) => x.type)).toEqual(['flag', 'quarantine']);
      // The steward's edit is allowed, but the record is now quarantined (same batch).
      expect(second?.verdicts.map((v) => v.code)).toEqual(['POLICY_QUARANTINED']);
      expect(second?.actions.map((x) => [x.type, x.rule])).toEqual([
        ['flag', 'protect-contact-email'],
      ]);
      expect(await store.isQuarantined({ tenant, object: 'contact', id: '555' })).toMatchObject({
        rule: 'protect-contact-email',
        eventId: 'ev-1',
      });

      // Re-judging the change that quarantined the record does not flag it as quarantined.
      const again = await judge.judge(edit(1));
      expect(again.verdicts.map((v) => v.code)).toEqual(['POLICY_UNAUTHORISED']);

      expect(await store.clear({ tenant, object: 'contact', id: '555' })).toBe(true);
      expect((await judge.judge(edit(3, 'hubspot:user:42'))).verdicts).toEqual([]);
      expect(await store.list(tenant)).toEqual(new Map());
    });
  });

  describe('when no policy is loaded', () => {
    it('allows everything', async () => {
      const judge = new PolicyJudge({
        policy: () => undefined,
        counter: new MassChangeCounter(redisA),
        quarantine: new QuarantineStore(redisA),
      });
      expect(await judge.judge(change(1))).toEqual({
        verdicts: [],
        actions: [],
        policy: undefined,
      });
    });
  });
});
