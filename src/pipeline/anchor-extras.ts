/**
 * What the anchor worker needs beyond the ledger — the checks (policy, dedupe), the flags sink,
 * our own fields per CRM, the admin URL for flag notes — built from plain options, so that the
 * anchor thread of `serve --role all` and a `--role worker` process build exactly the same.
 */
import type { RedisClient as Redis } from '../redis/connection.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../observability/logger.js';
import type { AnchorWorkerOptions } from './anchor.worker.js';
import { createChecks } from './checks.js';
import type { ChecksOptions } from './checks.js';
import { createFlagSink } from './flags.js';
import { connectionFromUrl, createChangesQueue } from './queues.js';
import { RecordVault } from '../vault/vault.js';
import { createSubjectService } from './subject-service.js';
import { createErasureSink, startErasureWorker } from './erasures.js';

export interface AnchorExtrasOptions {
  checks?: ChecksOptions;
  /** queue flag jobs for verdicts (off: verdicts are only recorded in the blocks) */
  flags?: boolean;
  adminBaseUrl?: string;
  /** fields crm-ledger writes, per source (`hubspot`, `salesforce`) */
  ownFields?: Record<string, string[]>;
  /**
   * HubSpot privacyDeletion events erase the record (needs a ledger with a RecordVault): the
   * anchor worker queues an erasure job, the erasure worker started here performs it (and, with
   * `flags`, queues its write-back to the CRM)
   */
  eraseOnPrivacyDeletion?: { dedupeSpace?: string; queuePrefix?: string };
}

export interface AnchorExtras {
  workerOptions: Pick<
    AnchorWorkerOptions,
    'checks' | 'flags' | 'ownFields' | 'adminBaseUrl' | 'erasures'
  >;
  close(): Promise<void>;
}

export async function createAnchorExtras(
  options: AnchorExtrasOptions,
  deps: { redisUrl: string; redis: Redis; ledger: Ledger; logger: Logger },
): Promise<AnchorExtras> {
  const checks = await createChecks(options.checks ?? {}, deps);
  const flags = options.flags
    ? createFlagSink(connectionFromUrl(deps.redisUrl, 'worker'))
    : undefined;
  const own = options.ownFields ?? {};
  const erasure = options.eraseOnPrivacyDeletion;
  const vault = deps.ledger.vault;
  const canErase = erasure !== undefined && vault instanceof RecordVault;
  const eraseQueue = canErase
    ? createChangesQueue(connectionFromUrl(deps.redisUrl, 'worker'), erasure.queuePrefix)
    : undefined;
  // Erasure jobs (one per anchored privacyDeletion) and the worker that performs them.
  const erasures = canErase
    ? createErasureSink(connectionFromUrl(deps.redisUrl, 'worker'), erasure.queuePrefix)
    : undefined;
  const erasureWorker =
    eraseQueue && vault instanceof RecordVault
      ? startErasureWorker({
          connection: connectionFromUrl(deps.redisUrl, 'worker'),
          ...(erasure?.queuePrefix ? { prefix: erasure.queuePrefix } : {}),
          logger: deps.logger,
          subjects: createSubjectService({
            redis: deps.redis,
            store: deps.ledger.store,
            vault,
            verifiers: deps.ledger.verifiers,
            ledger: deps.ledger,
            ...(erasure?.dedupeSpace ? { dedupeSpace: erasure.dedupeSpace } : {}),
            queue: eraseQueue,
            ...(flags ? { flags } : {}),
            ...(options.adminBaseUrl ? { adminBaseUrl: options.adminBaseUrl } : {}),
          }),
        })
      : undefined;
  return {
    workerOptions: {
      checks: checks.checks,
      ...(flags ? { flags } : {}),
      ownFields: (tenant) => own[tenant.slice(0, tenant.indexOf(':'))] ?? [],
      ...(options.adminBaseUrl ? { adminBaseUrl: options.adminBaseUrl } : {}),
      ...(erasures ? { erasures } : {}),
    },
    async close() {
      await erasureWorker?.close();
      await erasures?.close();
      await eraseQueue?.close();
      await checks.close();
      await flags?.close();
    },
  };
}
