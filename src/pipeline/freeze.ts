/**
 * Freeze and resume (issue 8). A tenant freezes when its chain is found tampered (the verifier, the
 * checkpointer, a witness): the append script refuses every batch, webhooks keep being accepted and
 * queued, and queued requests wait (the anchor worker delays them, using no attempt).
 *
 * Resuming is an admin's decision, taken only on a chain that verifies again (after a repair):
 * the tenant is unfrozen, and the freeze and the resume are anchored as one `admin` block with the
 * admin's identity, queued like any change so the api role, which holds no signing key, can do it.
 */
import { createHash } from 'node:crypto';
import type { Actor, ChangeEvent } from '../model/change-event.js';
import type { FrozenState } from '../ledger/store.js';
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
