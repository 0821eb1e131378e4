/**
 * The checks the anchor worker runs on each change before it is anchored, built from plain
 * options so that the anchor thread of `serve --role all` builds the same ones as `--role worker`:
 * - the change policy (src/policy): verdicts `unauthorised`/`anomaly` with the response its rule
 *   chose (`actions`, recorded in the block so the evidence shows what was decided); alerts are
 *   sent as soon as a change is judged; a policy load is anchored as an `admin` block in each
 *   tenant's chain, so an auditor can prove which policy judged which change;
 * - the duplicate matcher (src/dedupe), when enabled.
 */
import type { RedisClient as Redis } from '../redis/connection.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Verdict } from '../model/verdict.js';
import type { Logger } from '../observability/logger.js';
import { PolicyHolder } from '../policy/holder.js';
import type { PolicyInfo } from '../policy/holder.js';
import { PolicyJudge } from '../policy/judge.js';
import { MassChangeCounter } from '../policy/mass-change.js';
import { QuarantineStore } from '../policy/quarantine.js';
import { WebhookAlertSink, alertFromAction } from '../policy/alerts.js';
import type { ChecksHook } from './anchor.worker.js';
import type { ParsedEvent } from '../../connectors/types.js';
import { Matcher } from '../dedupe/matcher.js';
import type { ObservedChange } from '../dedupe/matcher.js';
import { OWN_ACTOR } from './anchor.worker.js';
import { ADMIN_RECORD } from './freeze.js';

/** What the duplicate matcher is told of a queued change (its idempotency key names the claim). */
function observedChange({ event, idempotencyKey }: ParsedEvent): ObservedChange {
  return {
    tenant: event.tenant,
    object: event.object,
    id: event.recordId,
    kind: event.kind,
    fields: event.fields,
    changeKey: idempotencyKey,
  };
}

export interface ChecksOptions {
  /** duplicate matching across the tenants of one identity space; absent: off */
  dedupe?: { space: string; threshold?: number; defaultCountry?: string };
  policyFile?: string;
  alertWebhookUrl?: string;
  alertWebhookSecret?: string;
  /** reload the policy on file change and SIGHUP (the process that owns signals) */
  watchPolicy?: boolean;
}

export interface Checks {
  checks: ChecksHook;
  close(): Promise<void>;
}

/** Anchors "this policy is now in force" in every known tenant chain (idempotent per policy). */
async function anchorPolicyLoad(ledger: Ledger, info: PolicyInfo): Promise<void> {
  for (const tenant of await ledger.store.listTenants()) await anchorPolicyIn(ledger, tenant, info);
}

/** The policy block in one tenant chain (idempotent: one block per tenant and policy hash). */
async function anchorPolicyIn(ledger: Ledger, tenant: string, info: PolicyInfo): Promise<void> {
  const at = new Date().toISOString();
  {
    const source = tenant.startsWith('salesforce:') ? 'salesforce' : 'hubspot';
    await ledger.append(tenant, [
      {
        event: {
          tenant,
          source,
          object: ADMIN_RECORD.object,
          recordId: 'policy',
          eventId: `policy-${info.sha256.slice(0, 16)}`,
          kind: 'admin',
          actor: { ...OWN_ACTOR },
          occurredAt: at,
          fields: { action: 'policy-loaded', policySha256: info.sha256, rules: info.rules },
        },
        idempotencyKey: `policy|${tenant}|${info.sha256}`,
        verdicts: [],
      },
    ]);
  }
}

const recordOf = (event: ParsedEvent['event']): string =>
  `${event.tenant}/${event.object}/${event.recordId}`;

export async function createChecks(
  options: ChecksOptions,
  deps: { redis: Redis; ledger: Ledger; logger: Logger },
): Promise<Checks> {
  const logger = deps.logger.child({ module: 'checks' });
  const matcher = options.dedupe
    ? new Matcher({
        redis: deps.redis,
        space: options.dedupe.space,
        ...(options.dedupe.threshold !== undefined ? { threshold: options.dedupe.threshold } : {}),
        ...(options.dedupe.defaultCountry ? { defaultCountry: options.dedupe.defaultCountry } : {}),
      })
    : undefined;
  /**
   * Changes of one record are observed one after another across the worker's concurrent jobs: the
   * matcher's index updates are compare-and-set on the record's version, and concurrent updates of
   * one record keep refusing each other (a burst of edits to a few records slowed anchoring).
   */
  const chains = new Map<string, Promise<unknown>>();
  const observeInOrder = (m: Matcher, parsed: ParsedEvent): Promise<unknown> => {
    const key = recordOf(parsed.event);
    const run = (chains.get(key) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => m.observe(observedChange(parsed)));
    chains.set(key, run);
    void run
      .finally(() => {
        if (chains.get(key) === run) chains.delete(key);
      })
      .catch(() => undefined);
    return run;
  };
  /**
   * Duplicates: the changes in order (a later change of the batch sees the earlier ones), in one
   * matcher call (pipelined) once earlier observations of the same records are done.
   */
  const dedupe = async (events: readonly ParsedEvent[]): Promise<Verdict[][]> => {
    if (!matcher || events.length === 0) return events.map(() => []);
    if (events.length === 1) {
      const v = await observeInOrder(matcher, events[0] as ParsedEvent);
      return [v ? [v as Verdict] : []];
    }
    const keys = [...new Set(events.map(({ event }) => recordOf(event)))];
    const before = Promise.all(
      keys.map((k) => (chains.get(k) ?? Promise.resolve()).catch(() => undefined)),
    );
    const run = before.then(() => matcher.observeMany(events.map(observedChange)));
    for (const key of keys) {
      chains.set(key, run);
      void run
        .finally(() => {
          if (chains.get(key) === run) chains.delete(key);
        })
        .catch(() => undefined);
    }
    const verdicts = await run;
    return verdicts.map((v) => (v ? [v as unknown as Verdict] : []));
  };
  if (!options.policyFile) {
    return { checks: (_tenant, events) => dedupe(events), close: () => Promise.resolve() };
  }

  const holder = await PolicyHolder.load(options.policyFile, {
    logger,
    // Our own write-backs (flags, reverts) are never judged again.
    compile: {
      exempt: { actors: [OWN_ACTOR.id], sources: ['CLIENT=CRM-LEDGER', 'client=crm-ledger'] },
    },
    onLoad: (info) => anchorPolicyLoad(deps.ledger, info),
  });
  if (options.watchPolicy) holder.start({ watchFile: true, sighup: true });
  const judge = new PolicyJudge({
    policy: () => holder.current,
    counter: new MassChangeCounter(deps.redis),
    quarantine: new QuarantineStore(deps.redis),
  });
  const alerts = new WebhookAlertSink({
    logger,
    url: options.alertWebhookUrl,
    secret: options.alertWebhookSecret,
  });

  // A tenant that appears after the policy was loaded gets the policy block before its first
  // judged change (a tenant chain always shows which policy judged its changes).
  const policyAnchored = new Set<string>();
  const checks: ChecksHook = async (tenant, events) => {
    const info = holder.info;
    if (!policyAnchored.has(`${tenant} ${info.sha256}`)) {
      await anchorPolicyIn(deps.ledger, tenant, info);
      policyAnchored.add(`${tenant} ${info.sha256}`);
    }
    const duplicates = await dedupe(events);
    const judgements = await judge.judgeBatch(
      events.map((e) => ({ event: e.event, key: e.idempotencyKey })),
    );
    return judgements.map((j, i) => {
      for (const a of j.actions) {
        if (a.type === 'alert') void alerts.send(alertFromAction(a));
      }
      return j.verdicts
        .map((v): Verdict => {
          const actions = [
            ...new Set(j.actions.filter((a) => a.rule === v.rule).map((a) => a.type)),
          ];
          return { ...v, actions };
        })
        .concat(duplicates[i] ?? []);
    });
  };
  return {
    checks,
    close: () => {
      holder.stop();
      return Promise.resolve();
    },
  };
}
