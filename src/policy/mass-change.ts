/**
 * The shared mass-change counter: a sliding window per (tenant, rule, scope) in a Redis sorted set,
 * updated by one Lua script (lua/countChange-2.lua), so any number of workers share one count and
 * exactly one change per window raises the alert. Counting is idempotent per event key: a retried
 * job finds its change already counted (and, if it was the one that raised the alert, raises it
 * again, so a crash between counting and sending loses no alert).
 *
 * Memory is bounded: the window's key expires after `window` without changes, members are 32 hex
 * characters, and a window stops storing members at `capFor(max)` (the count is then "at least").
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient as Redis } from '../redis/connection.js';
import type { LimitCheck, LimitOutcome } from './evaluate.js';
import { PolicyKeys } from './keys.js';

export const COUNT_CHANGE_SCRIPT = { file: 'lua/countChange-2.lua', version: 2 } as const;
const COMMAND = `policyCountChangeV${COUNT_CHANGE_SCRIPT.version}`;

/** Members a window stores at most: enough to see the count fall back under max as it slides. */
export function capFor(max: number): number {
  return Math.max(2 * max, max + 1000);
}

export interface CountOutcome extends LimitOutcome {
  /** false for a retry of a change already counted (or a saturated window) */
  counted: boolean;
}

type CountReply = [number, number, number];

export class MassChangeCounter {
  private readonly redis: Redis;

  constructor(redis: Redis) {
    if (typeof (redis as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
      redis.defineCommand(COMMAND, {
        numberOfKeys: 2,
        lua: readFileSync(new URL(COUNT_CHANGE_SCRIPT.file, import.meta.url), 'utf8'),
      });
    }
    this.redis = redis;
  }

  /** Counts one change for one limit rule. `eventKey` identifies the change across retries. */
  async count(tenant: string, check: LimitCheck, eventKey: string): Promise<CountOutcome> {
    const [outcome] = await this.countAll([{ tenant, check, eventKey }]);
    if (!outcome) throw new Error('unreachable: one count, no answer');
    return outcome;
  }

  /** Counts many (change, rule) pairs in one round trip; answers in the same order. */
  async countAll(
    items: readonly { tenant: string; check: LimitCheck; eventKey: string }[],
  ): Promise<CountOutcome[]> {
    if (items.length === 0) return [];
    // One pipeline per tenant: a tenant's counters share its hash tag, and on a Redis Cluster a
    // pipeline must stay on one node.
    const byTenant = new Map<string, number[]>();
    items.forEach((item, i) => {
      const list = byTenant.get(item.tenant);
      if (list) list.push(i);
      else byTenant.set(item.tenant, [i]);
    });
    const out: CountOutcome[] = new Array<CountOutcome>(items.length);
    await Promise.all(
      [...byTenant.values()].map(async (indexes) => {
        const outcomes = await this.countTenant(indexes.map((i) => items[i]!));
        indexes.forEach((i, j) => (out[i] = outcomes[j]!));
      }),
    );
    return out;
  }

  private async countTenant(
    items: readonly { tenant: string; check: LimitCheck; eventKey: string }[],
  ): Promise<CountOutcome[]> {
    const pipeline = this.redis.pipeline();
    for (const { tenant, check, eventKey } of items) {
      const keys = new PolicyKeys(tenant);
      (pipeline as unknown as Record<string, (...args: (string | number)[]) => unknown>)[COMMAND]?.(
        keys.massChange(check.rule, check.scope),
        keys.massChangeAlert(check.rule, check.scope),
        memberOf(eventKey),
        check.at,
        `(${check.at - check.windowMs}`,
        check.max,
        check.windowMs,
        capFor(check.max),
      );
    }
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw err;
      const [count, alert, counted] = reply as CountReply;
      return { count, alert: alert === 1, counted: counted === 1 };
    });
  }
}

/** 128 bits of SHA-256 of the event key: fixed size, and no customer data in Redis keys. */
function memberOf(eventKey: string): string {
  return createHash('sha256').update(eventKey, 'utf8').digest('hex').slice(0, 32);
}
