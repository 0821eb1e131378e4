/**
 * Quarantined records: a Redis hash per tenant (`cl:{<tenant>}:policy:quarantine`). A rule with
 * action `quarantine` marks the record; every later change to it gets a POLICY_QUARANTINED verdict
 * (PolicyJudge) until an admin clears it. Marking is idempotent (the first mark is kept).
 */
import type { RedisClient as Redis } from '../redis/connection.js';
import { PolicyKeys } from './keys.js';

export interface QuarantineRef {
  tenant: string;
  object: string;
  id: string;
}

export interface QuarantineEntry {
  rule: string;
  eventId: string;
  /** ISO time it was quarantined */
  at: string;
}

function fieldOf(ref: { object: string; id: string }): string {
  return `${ref.object}/${ref.id}`;
}

function parseEntry(text: string | null): QuarantineEntry | undefined {
  if (text === null) return undefined;
  try {
    const v = JSON.parse(text) as Partial<QuarantineEntry>;
    return { rule: String(v.rule ?? ''), eventId: String(v.eventId ?? ''), at: String(v.at ?? '') };
  } catch {
    return { rule: '', eventId: '', at: '' };
  }
}

export class QuarantineStore {
  constructor(private readonly redis: Redis) {}

  /** Marks the record; true if it was not quarantined before. */
  async quarantine(ref: QuarantineRef, entry: QuarantineEntry): Promise<boolean> {
    const key = new PolicyKeys(ref.tenant).quarantine;
    return (await this.redis.hsetnx(key, fieldOf(ref), JSON.stringify(entry))) === 1;
  }

  /** Releases the record; true if it was quarantined. */
  async clear(ref: QuarantineRef): Promise<boolean> {
    return (await this.redis.hdel(new PolicyKeys(ref.tenant).quarantine, fieldOf(ref))) === 1;
  }

  async isQuarantined(ref: QuarantineRef): Promise<QuarantineEntry | undefined> {
    return parseEntry(await this.redis.hget(new PolicyKeys(ref.tenant).quarantine, fieldOf(ref)));
  }

  /** One round trip for many records of one tenant; answers in order. */
  async lookup(
    tenant: string,
    refs: readonly { object: string; id: string }[],
  ): Promise<(QuarantineEntry | undefined)[]> {
    if (refs.length === 0) return [];
    const values = await this.redis.hmget(new PolicyKeys(tenant).quarantine, ...refs.map(fieldOf));
    return values.map(parseEntry);
  }

  /** Every quarantined record of a tenant: `<object>/<id>` → entry. */
  async list(tenant: string): Promise<Map<string, QuarantineEntry>> {
    const all = await this.redis.hgetall(new PolicyKeys(tenant).quarantine);
    return new Map(
      Object.entries(all).map(([k, v]) => [k, parseEntry(v) ?? { rule: '', eventId: '', at: '' }]),
    );
  }
}
