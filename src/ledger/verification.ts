/**
 * Verification as the service runs it: full or incremental verification of a tenant's chain,
 * remembering each verified state outside Redis (FileTrustStore) so that rollbacks are caught and
 * the next run can start where this one ended. Concurrent requests for the same tenant share one run.
 */
import type { Verifier } from './checkpoint.js';
import { createVerifier } from './ledger.js';
import type { RedisLedgerStore } from './store.js';
import type { FileTrustStore } from './trust-store.js';
import type { VerifyResult } from './verifier.js';

export interface VerificationTrust {
  verifiers: readonly Verifier[];
  originFor: (tenant: string) => string;
}

export type VerifyMode = 'full' | 'incremental';

export interface VerifyAllResult {
  ok: boolean;
  tenants: VerifyResult[];
}

export class VerificationService {
  private readonly running = new Map<string, Promise<VerifyResult>>();

  constructor(
    readonly store: RedisLedgerStore,
    private readonly keys: VerificationTrust,
    private readonly trust: FileTrustStore,
  ) {}

  tenants(): Promise<string[]> {
    return this.store.listTenants();
  }

  verifyTenant(
    tenant: string,
    mode: VerifyMode = 'incremental',
    onProgress?: (done: number, total: number) => void,
  ): Promise<VerifyResult> {
    const key = `${mode} ${tenant}`;
    const existing = this.running.get(key);
    if (existing) return existing;
    const run = this.run(tenant, mode, onProgress).finally(() => this.running.delete(key));
    this.running.set(key, run);
    return run;
  }

  async verifyAll(mode: VerifyMode = 'incremental'): Promise<VerifyAllResult> {
    const tenants: VerifyResult[] = [];
    for (const tenant of await this.tenants()) tenants.push(await this.verifyTenant(tenant, mode));
    return { ok: tenants.every((t) => t.ok), tenants };
  }

  private async run(
    tenant: string,
    mode: VerifyMode,
    onProgress?: (done: number, total: number) => void,
  ): Promise<VerifyResult> {
    const trusted = await this.trust.get(tenant);
    const options = {
      ...(trusted ? { trusted } : {}),
      ...(trusted && mode === 'incremental' ? { from: trusted } : {}),
      ...(onProgress ? { onProgress } : {}),
    };
    const verifier = createVerifier(this.store, tenant, {
      verifiers: this.keys.verifiers,
      origin: this.keys.originFor(tenant),
    });
    const result = await verifier.verify(options);
    if (result.ok) await this.trust.put(tenant, { size: result.size, root: result.root });
    return result;
  }
}
