/** /admin/* routes backed by the ledger's read and verify API. */
import { Router } from 'express';
import type { Request } from 'express';
import { tenantSchema } from '../model/change-event.js';
import type { VerificationService, VerifyMode } from '../ledger/verification.js';
import type { VerifyResult } from '../ledger/verifier.js';
import { HttpError } from './errors.js';

export interface AdminDeps {
  verification: VerificationService;
}

/** The public shape of a verification (DESIGN.md "Interfaces"). */
export function verifyBody(result: VerifyResult): Record<string, unknown> {
  if (result.ok) {
    return {
      ok: true,
      tenant: result.tenant,
      size: result.size,
      root: result.root,
      checkpoint: result.checkpoint ?? null,
      checkpointSize: result.checkpointSize,
    };
  }
  return {
    ok: false,
    tenant: result.tenant,
    size: result.size,
    firstBadSeq: result.firstBadSeq,
    code: result.code,
    reason: result.reason,
  };
}

const ALLOWED_QUERY = new Set(['tenant', 'mode']);

function parseQuery(req: Request): { tenant?: string; mode: VerifyMode } {
  for (const key of Object.keys(req.query)) {
    if (!ALLOWED_QUERY.has(key))
      throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
  }
  const { tenant, mode } = req.query;
  if (mode !== undefined && mode !== 'full' && mode !== 'incremental') {
    throw new HttpError('QUERY_INVALID', 'mode must be "full" or "incremental"');
  }
  if (tenant !== undefined) {
    const parsed = tenantSchema.safeParse(tenant);
    if (!parsed.success) {
      throw new HttpError(
        'TENANT_INVALID',
        'tenant must look like "hubspot:<portalId>" or "salesforce:<orgId>"',
      );
    }
    return { tenant: parsed.data, mode: mode ?? 'incremental' };
  }
  return { mode: mode ?? 'incremental' };
}

export function adminRoutes(deps: AdminDeps): Router {
  const router = Router();

  router.get('/verify', async (req, res) => {
    const { tenant, mode } = parseQuery(req);
    if (tenant !== undefined) {
      const known = await deps.verification.tenants();
      if (!known.includes(tenant)) throw new HttpError('TENANT_UNKNOWN', `no chain for ${tenant}`);
      res.json(verifyBody(await deps.verification.verifyTenant(tenant, mode)));
      return;
    }
    const all = await deps.verification.verifyAll(mode);
    res.json({ ok: all.ok, tenants: all.tenants.map(verifyBody) });
  });

  return router;
}
