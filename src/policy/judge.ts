/**
 * PolicyJudge: the policy as the anchor worker uses it. It evaluates a batch of changes against the
 * current compiled policy, counts the limit rules in the shared Redis counter (one round trip),
 * applies quarantine marks (in order, so a later change in the same batch sees them), and returns
 * per change the verdicts to put in its block and the actions to run after anchoring.
 *
 * Idempotent per change: judging a retried change again counts nothing twice, raises the same
 * alert (same action id) if it was the one that raised it, and does not flag a change as
 * "quarantined" by its own quarantine mark.
 */
import type { ChangeEvent } from '../model/change-event.js';
import type { CompiledPolicy, PolicyAction, PolicyVerdict } from './evaluate.js';
import type { MassChangeCounter } from './mass-change.js';
import type { QuarantineEntry, QuarantineStore } from './quarantine.js';

export interface JudgeDeps {
  /** the current policy (PolicyHolder.current); undefined = no policy, everything allowed */
  policy: () => CompiledPolicy | undefined;
  counter: MassChangeCounter;
  quarantine: QuarantineStore;
  now?: () => number;
}

export interface JudgeInput {
  event: ChangeEvent;
  /** identifies the change across retries (the ledger's idempotency key); default: see keyOf */
  key?: string;
}

export interface Judgement {
  /** to go into the change's block (Verdict-compatible) */
  verdicts: PolicyVerdict[];
  /** to run after the block is anchored: flag/revert via the CRM client, alert via the sink */
  actions: PolicyAction[];
  /** SHA-256 of the policy that judged it (undefined: no policy loaded) */
  policy: string | undefined;
}

/** Default change identity when the caller has no idempotency key. */
export function keyOf(event: ChangeEvent): string {
  return [
    event.tenant,
    event.object,
    event.recordId,
    event.eventId,
    event.kind,
    event.occurredAt,
  ].join('|');
}

export class PolicyJudge {
  private readonly now: () => number;

  constructor(private readonly deps: JudgeDeps) {
    this.now = deps.now ?? Date.now;
  }

  async judge(event: ChangeEvent, key?: string): Promise<Judgement> {
    const [judgement] = await this.judgeBatch([key === undefined ? { event } : { event, key }]);
    if (!judgement) throw new Error('unreachable: one change, no judgement');
    return judgement;
  }

  async judgeBatch(items: readonly JudgeInput[]): Promise<Judgement[]> {
    const policy = this.deps.policy();
    if (!policy) return items.map(() => ({ verdicts: [], actions: [], policy: undefined }));
    const now = this.now();
    let evaluations = items.map(({ event }) => policy.evaluate(event, now));

    // 1. Limits: every (change, limit rule) pair in one pipeline, in batch order.
    const counts = evaluations.flatMap((ev, i) => {
      const item = items[i];
      if (!item) return [];
      const eventKey = item.key ?? keyOf(item.event);
      return ev.limits.map((check) => ({ tenant: item.event.tenant, check, eventKey }));
    });
    if (counts.length > 0) {
      const outcomes = await this.deps.counter.countAll(counts);
      let next = 0;
      evaluations = evaluations.map((ev, i) => {
        const item = items[i];
        if (!item || ev.limits.length === 0) return ev;
        const mine = outcomes.slice(next, next + ev.limits.length);
        next += ev.limits.length;
        return policy.completeLimits(item.event, ev, mine);
      });
    }

    // 2. Quarantine: one lookup per tenant, then in order (marks apply to later changes).
    const marks = new Map<string, QuarantineEntry | undefined>();
    const byTenant = new Map<string, { object: string; id: string }[]>();
    for (const [i, { event }] of items.entries()) {
      if (evaluations[i]?.exempt) continue;
      const k = refKey(event);
      if (marks.has(k)) continue;
      marks.set(k, undefined);
      const refs = byTenant.get(event.tenant) ?? [];
      refs.push({ object: event.object, id: event.recordId });
      byTenant.set(event.tenant, refs);
    }
    for (const [tenant, refs] of byTenant) {
      const entries = await this.deps.quarantine.lookup(tenant, refs);
      refs.forEach((ref, j) =>
        marks.set(`${tenant}\u0000${ref.object}\u0000${ref.id}`, entries[j]),
      );
    }

    const out: Judgement[] = [];
    for (const [i, { event }] of items.entries()) {
      const ev = evaluations[i];
      if (!ev || ev.exempt) {
        out.push({ verdicts: [], actions: [], policy: policy.sha256 });
        continue;
      }
      const verdicts = [...ev.verdicts];
      const actions = [...ev.actions];
      const k = refKey(event);
      const entry = marks.get(k);
      if (entry && entry.eventId !== event.eventId) {
        const q = policy.quarantined(event, entry);
        verdicts.push(q.verdict);
        actions.push(...q.actions);
      }
      const quarantine = actions.find((a) => a.type === 'quarantine');
      if (quarantine && !entry) {
        const mark: QuarantineEntry = {
          rule: quarantine.rule,
          eventId: event.eventId,
          at: new Date(now).toISOString(),
        };
        await this.deps.quarantine.quarantine(
          { tenant: event.tenant, object: event.object, id: event.recordId },
          mark,
        );
        marks.set(k, mark);
      }
      out.push({ verdicts, actions, policy: policy.sha256 });
    }
    return out;
  }
}

function refKey(event: ChangeEvent): string {
  return `${event.tenant}\u0000${event.object}\u0000${event.recordId}`;
}
