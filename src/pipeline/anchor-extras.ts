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
import { connectionFromUrl } from './queues.js';

export interface AnchorExtrasOptions {
  checks?: ChecksOptions;
  /** queue flag jobs for verdicts (off: verdicts are only recorded in the blocks) */
  flags?: boolean;
  adminBaseUrl?: string;
  /** fields crm-ledger writes, per source (`hubspot`, `salesforce`) */
  ownFields?: Record<string, string[]>;
}

export interface AnchorExtras {
  workerOptions: Pick<AnchorWorkerOptions, 'checks' | 'flags' | 'ownFields' | 'adminBaseUrl'>;
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
  return {
    workerOptions: {
      checks: checks.checks,
      ...(flags ? { flags } : {}),
      ownFields: (tenant) => own[tenant.slice(0, tenant.indexOf(':'))] ?? [],
      ...(options.adminBaseUrl ? { adminBaseUrl: options.adminBaseUrl } : {}),
    },
    async close() {
      await checks.close();
      await flags?.close();
    },
  };
}
