/**
 * Clearing a quarantine (issue 7): an admin releases a record that a `quarantine` rule marked, so
 * that its later changes are no longer flagged. The decision is anchored like a resume
 * (freeze.ts): an `admin` block under the tenant's own admin record (`crm_ledger/quarantine`)
 * naming the admin, the reason, the record and the mark it clears, queued like any change so that
 * the api role, which holds no signing key, can do it.
 *
 * Order: the block is queued first, then the mark removed. A crash in between leaves the record
 * quarantined with the clearing on its way into the chain; clearing again queues the same job (the
 * event id is derived from the mark) and finishes the job: never a release the chain does not show.
 */
import { createHash } from 'node:crypto';
import type { Actor } from '../model/change-event.js';
import type { QuarantineEntry, QuarantineRef, QuarantineStore } from '../policy/quarantine.js';
import { ADMIN_RECORD } from './freeze.js';
import type { ChangeSink } from './queues.js';

/** The record id, under ADMIN_RECORD.object, of the blocks that clear quarantines. */
export const QUARANTINE_ADMIN_ID = 'quarantine';
export const CLEAR_REASON_MAX = 1000;

export type ClearResult =
  { cleared: true; entry: QuarantineEntry; eventId: string; at: string } | { cleared: false };

export async function clearQuarantine(
  deps: { quarantine: QuarantineStore; sink: ChangeSink },
  ref: QuarantineRef,
  actor: Actor,
  reason: string,
  now: () => Date = () => new Date(),
): Promise<ClearResult> {
  const entry = await deps.quarantine.isQuarantined(ref);
  if (!entry) return { cleared: false };
  const at = now().toISOString();
  // One clearing per mark: the id is the same however often the admin retries.
  const eventId = `quarantine-clear-${createHash('sha256')
    .update([ref.tenant, ref.object, ref.id, entry.eventId, entry.at].join('\u0000'))
    .digest('hex')
    .slice(0, 16)}`;
  const source = ref.tenant.startsWith('salesforce:') ? 'salesforce' : 'hubspot';
  await deps.sink.enqueue({
    source,
    receivedAt: at,
    events: [
      {
        event: {
          tenant: ref.tenant,
          source,
          object: ADMIN_RECORD.object,
          recordId: QUARANTINE_ADMIN_ID,
          eventId,
          kind: 'admin',
          actor,
          occurredAt: at,
          fields: {
            action: 'quarantine-cleared',
            reason,
            object: ref.object,
            recordId: ref.id,
            rule: entry.rule,
            quarantinedBy: entry.eventId,
            quarantinedAt: entry.at,
          },
        },
        idempotencyKey: `admin|${ref.tenant}|${eventId}`,
      },
    ],
  });
  await deps.quarantine.clear(ref);
  return { cleared: true, entry, eventId, at };
}
