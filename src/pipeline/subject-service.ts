/**
 * Builds the SubjectService (src/vault/subjects.ts) with everything an erasure touches: the
 * vault, the ledger, the dedupe index (lookup by email, forgetting the profile), the changes queue
 * (queued events of the person), the AOF and the flags queues (the erasure written back to the
 * CRM: status + note/task naming the erasure block). One builder for the admin API, the CLI and the
 * anchor worker (HubSpot privacyDeletion events), so all three erase the same way.
 */
import type { RedisClient as Redis } from '../redis/connection.js';
import type { Queue } from 'bullmq';
import type { Ledger } from '../ledger/ledger.js';
import type { Verifier } from '../ledger/checkpoint.js';
import type { RedisLedgerStore } from '../ledger/store.js';
import { Matcher } from '../dedupe/matcher.js';
import { findRecordsByEmail } from '../dedupe/lookup.js';
import { rewriteAof } from '../redis/aof.js';
import { SubjectService } from '../vault/subjects.js';
import type { RecordVault } from '../vault/vault.js';
import { purgeQueuedEvents } from './erase-jobs.js';
import { erasureFlagRequest } from './flags.js';
import type { WitnessVerifier } from '../ledger/cosignature.js';
import type { FlagSink } from './flags.js';
import type { ChangesJob } from './queues.js';

export interface SubjectServiceOptions {
  redis: Redis;
  store: RedisLedgerStore;
  vault: RecordVault;
  verifiers: readonly Verifier[];
  /** witnesses whose cosignatures go into the evidence bundles */
  witnessKeys?: readonly WitnessVerifier[];
  /** absent: export only (erasure needs a ledger that appends) */
  ledger?: Ledger;
  /** the dedupe identity space (absent: dedupe off, --email finds nothing) */
  dedupeSpace?: string;
  /** the changes queue whose jobs are purged of the person's events */
  queue?: Queue<ChangesJob>;
  /** rewrite the AOF after an erasure (default true) */
  compactAof?: boolean;
  /** where the erasure's write-back to the CRM is queued (absent: the CRM is not told) */
  flags?: FlagSink;
  /** base URL of the admin API, linked from the note/task */
  adminBaseUrl?: string;
}

export function createSubjectService(options: SubjectServiceOptions): SubjectService {
  const { redis, dedupeSpace, queue, flags } = options;
  const matcher = dedupeSpace ? new Matcher({ redis, space: dedupeSpace }) : undefined;
  return new SubjectService({
    store: options.store,
    vault: options.vault,
    verifierKeys: options.verifiers,
    ...(options.witnessKeys ? { witnessKeys: options.witnessKeys } : {}),
    ...(options.ledger ? { ledger: options.ledger } : {}),
    ...(dedupeSpace
      ? {
          findByEmail: async (email: string) =>
            (await findRecordsByEmail(redis, dedupeSpace, email)).map(({ tenant, object, id }) => ({
              tenant,
              object,
              id,
            })),
        }
      : {}),
    ...(matcher ? { forgetIdentity: (ref) => matcher.remove(ref) } : {}),
    ...(queue ? { purgeQueued: (refs) => purgeQueuedEvents(queue, refs) } : {}),
    ...(options.compactAof === false ? {} : { compactAof: () => rewriteAof(redis) }),
    ...(flags
      ? {
          flagErasure: (ref, block, verdict) =>
            flags.enqueue([erasureFlagRequest(ref, block, verdict, options.adminBaseUrl)]),
        }
      : {}),
  });
}
