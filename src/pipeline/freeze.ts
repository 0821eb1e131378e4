/**
 * Freeze and resume (issue 8). A tenant freezes when its chain is found tampered (the verifier, the
 * checkpointer, a witness): the append script refuses every batch, webhooks keep being accepted and
 * queued, and queued requests wait (the anchor worker delays them, using no attempt).
 *
 * Resuming is an admin's decision, taken only on a chain that verifies again (after a repair):
 * the tenant is unfrozen, and the freeze and the resume are anchored as one `admin` block with the
 * admin's identity, queued like any change so the api role, which holds no signing key, can do it.
 *
 * Every freeze is alerted once, whoever made it (FreezeAlerts below).
 */
import { createHash } from 'node:crypto';
import type { Actor, ChangeEvent } from '../model/change-event.js';
import type { FrozenState, RedisLedgerStore } from '../ledger/store.js';
import type { Logger } from '../observability/logger.js';
import type { VerificationService } from '../ledger/verification.js';
import type { VerifyResult } from '../ledger/verifier.js';
import type { ChangeSink } from './queues.js';

/** The record under which a tenant's own admin actions are anchored. */
export const ADMIN_RECORD = { object: 'crm_ledger', id: 'tenant' } as const;

export type ResumeResult =
  | { ok: true; wasFrozen: boolean; frozen?: FrozenState; size: number; root: string }
  | { ok: false; verification: VerifyResult };

export async function resumeTenant(
  deps: { verification: VerificationService; sink: ChangeSink },
  tenant: string,
  actor: Actor,
  now: () => Date = () => new Date(),
): Promise<ResumeResult> {
  const frozen = await deps.verification.frozen(tenant);
  const verification = await deps.verification.verifyTenant(tenant, 'full');
  if (!verification.ok) return { ok: false, verification };
  if (!frozen) {
    return { ok: true, wasFrozen: false, size: verification.size, root: verification.root };
  }
  const at = now().toISOString();
  const fields: ChangeEvent['fields'] = {
    action: 'resume',
    frozenAt: frozen.at,
    frozenBy: frozen.by,
    frozenReason: frozen.reason,
    firstBadSeq: frozen.firstBadSeq ?? null,
    verifiedSize: verification.size,
    verifiedRoot: verification.root,
    ...(frozen.repair
      ? {
          repairedAt: frozen.repair.at,
          repairedBlocks: frozen.repair.blocks.join(','),
          repairCheckpointSize: frozen.repair.checkpointSize,
        }
      : {}),
  };
  const eventId = `resume-${createHash('sha256').update(`${tenant}|${at}`).digest('hex').slice(0, 16)}`;
  const source = tenant.startsWith('salesforce:') ? 'salesforce' : 'hubspot';
  // Unfreeze first: the admin block is appended like any other change, right after.
  await deps.verification.store.unfreeze(tenant);
  await deps.sink.enqueue({
    source,
    receivedAt: at,
    events: [
      {
        event: {
          tenant,
          source,
          object: ADMIN_RECORD.object,
          recordId: ADMIN_RECORD.id,
          eventId,
          kind: 'admin',
          actor,
          occurredAt: at,
          fields,
        },
        idempotencyKey: `admin|${tenant}|${eventId}`,
      },
    ],
  });
  return { ok: true, wasFrozen: true, frozen, size: verification.size, root: verification.root };
}

/**
 * Sends a freeze's alert (log it, count it, deliver it); resolves whether it was delivered, or
 * handled where no delivery is configured. false: give the claim back and try again later.
 */
export type SendFreezeAlert = (
  tenant: string,
  state: FrozenState,
  size: number,
) => Promise<boolean>;

/** How often the scheduler looks for freezes nobody alerted. */
export const FREEZE_ALERT_SWEEP_MS = 2_000;

/**
 * Tamper alerts, one per freeze, whoever froze the tenant. A freeze made in this process is
 * announced at once; one made elsewhere — `crm-ledger verify` on an operator's machine, the
 * checkpointer in a worker, a process that died before its alert went out — is found by the
 * scheduler's sweep. Each alert is claimed in Redis first (store.claimFreezeAlert), so however
 * many processes find the freeze, one sends it; an undelivered alert is given back and sent again.
 */
export class FreezeAlerts {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  private failing = false;

  constructor(
    private readonly store: Pick<
      RedisLedgerStore,
      'claimFreezeAlert' | 'releaseFreezeAlert' | 'listTenants' | 'readHead'
    >,
    private readonly send: SendFreezeAlert,
    private readonly logger: Logger,
  ) {}

  /** Alerts the tenant's freeze unless it is not frozen or was alerted: true when this call did. */
  async announce(tenant: string): Promise<boolean> {
    const state = await this.store.claimFreezeAlert(tenant);
    if (!state) return false;
    let handled = false;
    try {
      handled = await this.send(tenant, state, (await this.store.readHead(tenant)).size);
    } finally {
      if (!handled) await this.store.releaseFreezeAlert(tenant);
    }
    return handled;
  }

  /** One pass over every tenant: the number of freezes alerted. */
  async sweep(): Promise<number> {
    const tenants = await this.store.listTenants();
    const sent = await Promise.all(
      tenants.map((t) =>
        this.announce(t).catch((err: unknown) => {
          this.logger.warn({ tenant: t, err }, 'freeze alert not sent: retrying on the next sweep');
          return false;
        }),
      ),
    );
    return sent.filter(Boolean).length;
  }

  /** Sweeps every `everyMs` until stop(); a sweep never overlaps the previous one. */
  start(everyMs = FREEZE_ALERT_SWEEP_MS): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = this.sweep()
        .then(
          (sent) => {
            if (this.failing) this.logger.info('freeze alert sweeps run again');
            this.failing = false;
            return sent;
          },
          (err: unknown) => {
            // Once per outage, not every sweep (Redis down would log every 2 s otherwise).
            if (!this.failing) this.logger.warn({ err }, 'freeze alert sweep could not run');
            this.failing = true;
            return 0;
          },
        )
        .finally(() => {
          this.sweeping = undefined;
        });
    }, everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }
}
