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

export interface AnchorExtrasOptions {
  checks?: ChecksOptions;
  /** queue flag jobs for verdicts (off: verdicts are only recorded in the blocks) */
  flags?: boolean;
  adminBaseUrl?: string;
  /** fields crm-ledger writes, per source (`hubspot`, `salesforce`) */
  ownFields?: Record<string, string[]>;
  /** HubSpot privacyDeletion events erase the record (needs a ledger with a RecordVault) */
  eraseOnPrivacyDeletion?: { dedupeSpace?: string; queuePrefix?: string };
}

export interface AnchorExtras {
  workerOptions: Pick<
    AnchorWorkerOptions,
    'checks' | 'flags' | 'ownFields' | 'adminBaseUrl' | 'onPrivacyDeletion'
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
  const eraseQueue =
    erasure && vault instanceof RecordVault
      ? createChangesQueue(connectionFromUrl(deps.redisUrl, 'worker'), erasure.queuePrefix)
      : undefined;
  const subjects =
    eraseQueue && vault instanceof RecordVault
      ? createSubjectService({
          redis: deps.redis,
          store: deps.ledger.store,
          vault,
          verifiers: deps.ledger.verifiers,
          ledger: deps.ledger,
          ...(erasure?.dedupeSpace ? { dedupeSpace: erasure.dedupeSpace } : {}),
          queue: eraseQueue,
        })
      : undefined;
  return {
    workerOptions: {
      checks: checks.checks,
      ...(flags ? { flags } : {}),
      ownFields: (tenant) => own[tenant.slice(0, tenant.indexOf(':'))] ?? [],
      ...(options.adminBaseUrl ? { adminBaseUrl: options.adminBaseUrl } : {}),
      ...(subjects
        ? {
            onPrivacyDeletion: async (ref: { tenant: string; object: string; id: string }) => {
              const report = await subjects.erase(ref, {
                by: 'hubspot:privacyDeletion',
                reason: 'GDPR delete requested in HubSpot (privacyDeletion event)',
              });
              deps.logger.info(
                { tenant: ref.tenant, object: ref.object, erasureId: report.erasureId },
                'privacyDeletion: record erased',
              );
            },
          }
        : {}),
    },
    async close() {
      await eraseQueue?.close();
      await checks.close();
      await flags?.close();
    },
  };
}
