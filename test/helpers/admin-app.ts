/**
 * The HTTP app as main.ts builds it for the admin surface: a real ledger on the test Redis, a real
 * verification service with a trust store on disk, tokens for the three roles, and the dashboard's
 * optional sources (freeze state, queue depths, recent verdicts) backed by plain data the test sets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createApp } from '../../src/http/app.js';
import type { AppDeps } from '../../src/http/app.js';
import { adminTokenFrom } from '../../src/http/admin-auth.js';
import type {
  DashboardSources,
  RecentVerdict,
  TenantStatus,
} from '../../src/http/dashboard.routes.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { createTestLedger, testSigner } from './ledger.js';

export const ADMIN_TOKEN = 'dash-admin-token-0123456789abcdef01';
export const AUDITOR_TOKEN = 'dash-auditor-token-0123456789abcdef';
export const OPERATOR_TOKEN = 'dash-operator-token-0123456789abcde';

export interface AdminAppFixture {
  app: ReturnType<typeof createApp>;
  ledger: Ledger;
  /** tenants the freeze source reports as frozen, with the reason */
  frozen: Map<string, string>;
  verdicts: RecentVerdict[];
  close(): Promise<void>;
}

export async function createAdminApp(
  redis: Redis,
  extra: Partial<AppDeps> = {},
  /** optional sources to leave unwired */
  without: readonly (keyof DashboardSources)[] = [],
): Promise<AdminAppFixture> {
  const ledger = createTestLedger(redis, testSigner());
  const dir = await mkdtemp(join(tmpdir(), 'crm-ledger-dash-'));
  const frozen = new Map<string, string>();
  const verdicts: RecentVerdict[] = [];
  const deps: AppDeps = {
    logger: createLogger({ level: 'silent' }),
    adminToken: ADMIN_TOKEN,
    tokens: [
      adminTokenFrom('auditor', 'alice', AUDITOR_TOKEN),
      adminTokenFrom('operator', 'ops', OPERATOR_TOKEN),
    ],
    verifierKeys: ledger.verifiers,
    verification: new VerificationService(
      ledger.store,
      { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
      new FileTrustStore(dir),
    ),
    ping: () => redis.ping(),
    tenantStatus: (tenant): TenantStatus => {
      const reason = frozen.get(tenant);
      return reason === undefined ? { frozen: false } : { frozen: true, reason };
    },
    recentVerdicts: (limit) => Promise.resolve(verdicts.slice(0, limit)),
    ...extra,
  };
  for (const key of without) delete deps[key];
  const app = createApp(deps);
  return {
    app,
    ledger,
    frozen,
    verdicts,
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
