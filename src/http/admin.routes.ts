/** /admin/* routes backed by the ledger's read and verify API. */
import express, { Router } from 'express';
import type { Request, Response } from 'express';
import { objectNameSchema, recordIdSchema, tenantSchema } from '../model/change-event.js';
import { LedgerError, ProofError, VaultError } from '../errors.js';
import { parseSubjectQuery } from '../vault/subjects.js';
import type { SubjectQuery, SubjectRef, SubjectService } from '../vault/subjects.js';
import { SUBJECT_PAGE_CSP, subjectExportPage } from './subject-page.js';
import { readConsistencyProof, readRecordHistory } from '../ledger/history.js';
import type { VaultOpener } from '../ledger/history.js';
import type { Principal, Role } from './admin-auth.js';
import { buildEvidence, buildEvidenceV2 } from '../ledger/evidence.js';
import type { Verifier } from '../ledger/checkpoint.js';
import { checkpointBody, verifyCosignature } from '../ledger/cosignature.js';
import type { WitnessVerifier } from '../ledger/cosignature.js';
import { SEGMENT_SIZE, segmentOf } from '../ledger/keys.js';
import type { CosignatureEntry, FrozenState } from '../ledger/store.js';
import type { VerificationService, VerifyMode } from '../ledger/verification.js';
import type { VerifyResult } from '../ledger/verifier.js';
import { HttpError } from './errors.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { principalOf, requireRole } from './admin-auth.js';
import { resumeTenant } from '../pipeline/freeze.js';
import type { ResumeResult } from '../pipeline/freeze.js';
import type { ChangeSink } from '../pipeline/queues.js';
import { CLEAR_REASON_MAX, clearQuarantine } from '../pipeline/quarantine-clear.js';
import type { QuarantineStore } from '../policy/quarantine.js';

export interface AdminDeps {
  verification: VerificationService;
  /** queues admin actions (resume) as changes; absent: POST /admin/resume answers 503 */
  changeSink?: ChangeSink;
  /** waiting jobs per queue name (changes, flags-<tenant>), for /admin/tenants */
  waitingCounts?: () => Promise<Record<string, number>>;
  /** the ledger's checkpoint verifier keys (current first), put into evidence bundles */
  verifierKeys: readonly Verifier[];
  /** witnesses whose cosignatures POST /admin/cosignatures accepts (none: it answers 403) */
  witnessKeys?: readonly WitnessVerifier[];
  /** cosignatures on the latest checkpoint for it to count as confirmed (default 1) */
  witnessQuorum?: number;
  /** called once when POST /admin/freeze freezes a tenant (alerting, metrics) */
  onFreezeReported?: (tenant: string, state: FrozenState, size: number) => void;
  /** quarantined records (policy); absent: the /admin/quarantine routes answer 503 */
  quarantine?: QuarantineStore;
  now?: () => number;
  /** opens sealed vault entries; values are then shown by role (see valuesAllowed) */
  vault?: VaultAccess;
  /** subject access, erasure and search (absent: those routes answer 404 SUBJECT_NOT_FOUND) */
  subjects?: SubjectService;
}

export interface VaultAccess {
  open: VaultOpener;
  /** auditors see decrypted values too (CRM_LEDGER_VAULT_AUDITOR_VALUES) */
  auditorValues: boolean;
}

/** Vault reads by role: admins see values, auditors only when granted, operators never. */
export function valuesAllowed(role: Role | undefined, access: VaultAccess | undefined): boolean {
  if (role === 'operator') return false;
  if (!access) return true;
  return role === 'admin' || (role === 'auditor' && access.auditorValues);
}

const NO_VALUES: VaultOpener = (_tenant, items) =>
  Promise.resolve(items.map(() => ({ status: 'missing' as const })));

/** Blocks per GET /admin/blocks page. */
export const MAX_BLOCKS_PER_PAGE = 1024;
/** A cosignature timestamp may be at most this far ahead of our clock (tlog-cosignature MAY). */
export const COSIGNATURE_MAX_SKEW_S = 5 * 60;

/** The cosignatures of a tenant, against its latest checkpoint, for /admin/verify. */
export function cosignatureBody(
  latest: { size: number; note: string } | undefined,
  entries: readonly CosignatureEntry[],
  quorum: number,
): Record<string, unknown> {
  const covering = latest ? entries.filter((e) => e.size === latest.size) : [];
  return {
    cosignatures: entries.map((e) => ({ ...e, current: latest?.size === e.size })),
    quorum,
    confirmed: covering.length >= quorum,
    // The latest checkpoint with the cosignatures on it: one C2SP signed note.
    cosigned: latest ? latest.note + covering.map((e) => e.line + '\n').join('') : null,
  };
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

  router.get('/verify', requireRole('auditor', 'operator'), async (req, res) => {
    const { tenant, mode } = parseQuery(req);
    if (tenant !== undefined) {
      const known = await deps.verification.tenants();
      if (!known.includes(tenant)) throw new HttpError('TENANT_UNKNOWN', `no chain for ${tenant}`);
      const result = await deps.verification.verifyTenant(tenant, mode);
      res.json({ ...verifyBody(result), ...(await witnessed(tenant)) });
      return;
    }
    const all = await deps.verification.verifyAll(mode);
    const tenants = await Promise.all(
      all.tenants.map(async (t) => ({ ...verifyBody(t), ...(await witnessed(t.tenant)) })),
    );
    res.json({ ok: all.ok, tenants });
  });

  async function witnessed(tenant: string): Promise<Record<string, unknown>> {
    const store = deps.verification.store;
    const [latest, entries] = await Promise.all([
      store.latestCheckpoint(tenant),
      store.readCosignatures(tenant),
    ]);
    return cosignatureBody(latest, entries, deps.witnessQuorum ?? 1);
  }

  // A witness's copy: canonical block bytes (base64, exactly as stored) and vault entries.
  router.get('/blocks', requireRole('auditor', 'operator', 'witness'), async (req, res) => {
    const tenant = requireTenant(req, ['tenant', 'from', 'to']);
    const from = Number(req.query['from']);
    const to = Number(req.query['to']);
    const head = await deps.verification.store.readHead(tenant);
    if (head.size === 0 && !(await deps.verification.tenants()).includes(tenant))
      throw new HttpError('TENANT_UNKNOWN', `no chain for ${tenant}`);
    if (
      !(Number.isSafeInteger(from) && Number.isSafeInteger(to)) ||
      from < 0 ||
      to < from ||
      to > head.size ||
      to - from > MAX_BLOCKS_PER_PAGE
    ) {
      throw new HttpError(
        'QUERY_INVALID',
        `need 0 <= from <= to <= ${head.size} and at most ${MAX_BLOCKS_PER_PAGE} blocks`,
      );
    }
    const store = deps.verification.store;
    const blocks: { seq: number; bytes: string | null; vault: string | null }[] = [];
    for (let seq = from; seq < to;) {
      const n = segmentOf(seq);
      const stop = Math.min(to, (n + 1) * SEGMENT_SIZE);
      const seqs = Array.from({ length: stop - seq }, (_, i) => seq + i);
      const [bytes, vault] = await Promise.all([
        store.readSegment(tenant, n, seq % SEGMENT_SIZE, (stop - 1) % SEGMENT_SIZE),
        store.readVaultEntries(tenant, seqs),
      ]);
      seqs.forEach((s, i) => {
        blocks.push({
          seq: s,
          bytes: bytes[i]?.toString('base64') ?? null,
          vault: vault[i] ?? null,
        });
      });
      seq = stop;
    }
    res.json({ tenant, from, to, size: head.size, blocks });
  });

  const smallJson = express.json({ limit: '16kb', strict: true });

  // A witness cosigned one of our checkpoints (C2SP tlog-cosignature): verify it, keep it.
  router.post('/cosignatures', requireRole('operator', 'witness'), smallJson, async (req, res) => {
    const tenant = requireTenant(req, ['tenant']);
    const body = req.body as { size?: unknown; cosignature?: unknown } | undefined;
    const size = body?.size;
    const line = body?.cosignature;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || typeof line !== 'string')
      throw new HttpError('BODY_INVALID', 'body must be {"size": <int>, "cosignature": "— …"}');
    const witnesses = deps.witnessKeys ?? [];
    const notes = await deps.verification.store.readCheckpoints(tenant, size, size);
    if (notes.length === 0)
      throw new HttpError('CHECKPOINT_UNKNOWN', `no checkpoint of size ${size} for ${tenant}`);
    let last: unknown;
    for (const { note } of notes) {
      try {
        const cosig = verifyCosignature(checkpointBody(note).body, line, witnesses);
        const nowS = Math.floor((deps.now ?? Date.now)() / 1000);
        if (cosig.timestamp > nowS + COSIGNATURE_MAX_SKEW_S)
          throw new HttpError('COSIGNATURE_INVALID', 'cosignature timestamp is in the future');
        const entry: CosignatureEntry = {
          witness: cosig.name,
          size,
          timestamp: cosig.timestamp,
          line: cosig.line,
          receivedAt: new Date(nowS * 1000).toISOString(),
        };
        const stored = await deps.verification.store.addCosignature(tenant, entry);
        res.status(stored ? 201 : 200).json({ tenant, stored, ...entry });
        return;
      } catch (err) {
        if (!(err instanceof ProofError)) throw err;
        last = err;
      }
    }
    const code = last instanceof ProofError ? last.code : 'SIGNATURE_INVALID';
    if (code === 'KEY_UNKNOWN')
      throw new HttpError('WITNESS_UNKNOWN', 'the cosignature is not by a configured witness');
    throw new HttpError('COSIGNATURE_INVALID', `cosignature does not verify (${code})`);
  });

  // A witness (or an operator) reports tampering: anchoring for the tenant freezes.
  router.post('/freeze', requireRole('operator', 'witness'), smallJson, async (req, res) => {
    const tenant = requireTenant(req, ['tenant']);
    const body = req.body as
      { reason?: unknown; code?: unknown; firstBadSeq?: unknown } | undefined;
    const reason = body?.reason;
    const code = body?.code;
    const firstBadSeq = body?.firstBadSeq;
    if (
      typeof reason !== 'string' ||
      reason.length === 0 ||
      reason.length > 1000 ||
      (code !== undefined && (typeof code !== 'string' || !/^[A-Z_]{1,64}$/.test(code))) ||
      (firstBadSeq !== undefined &&
        !(Number.isSafeInteger(firstBadSeq) && Number(firstBadSeq) >= 0))
    ) {
      throw new HttpError(
        'BODY_INVALID',
        'body must be {"reason": "…", "code"?: "UPPER_CASE", "firstBadSeq"?: <int>}',
      );
    }
    if (!(await deps.verification.tenants()).includes(tenant))
      throw new HttpError('TENANT_UNKNOWN', `no chain for ${tenant}`);
    const principal = principalOf(res);
    const state = {
      reason,
      ...(code !== undefined ? { code } : {}),
      ...(firstBadSeq !== undefined ? { firstBadSeq: Number(firstBadSeq) } : {}),
      at: new Date((deps.now ?? Date.now)()).toISOString(),
      by: `${principal?.role ?? 'operator'}:${principal?.name ?? 'unknown'}`,
    };
    const frozen = await deps.verification.store.freeze(tenant, state);
    if (frozen)
      deps.onFreezeReported?.(tenant, state, (await deps.verification.store.readHead(tenant)).size);
    res.status(frozen ? 201 : 200).json({
      tenant,
      frozen: true,
      state: frozen ? state : ((await deps.verification.frozen(tenant)) ?? state),
    });
  });

  router.get('/records/:tenant/:object/:id', requireRole('auditor'), async (req, res) => {
    const { tenant, object, id } = recordParams(req);
    const history = await readRecordHistory(deps.verification.store, tenant, object, id, {
      ...(deps.vault ? { open: deps.vault.open } : {}),
      values: valuesAllowed(principalOf(res)?.role, deps.vault),
    });
    if (!history)
      throw new HttpError('RECORD_UNKNOWN', `no blocks for ${object}/${id} in ${tenant}`);
    res.json(history);
  });

  // One self-contained file for `crm-ledger verify-evidence` (offline, public key only): compact
  // (v3: the newest block's inclusion proof, the record chain, witness cosignatures) by default,
  // an inclusion proof for each block (v2) with ?proofs=all.
  router.get('/evidence/:tenant/:object/:id', requireRole('auditor'), async (req, res) => {
    const { tenant, object, id } = recordParams(req, ['proofs']);
    const proofs = req.query['proofs'];
    if (proofs !== undefined && proofs !== 'all' && proofs !== 'newest')
      throw new HttpError('QUERY_INVALID', 'proofs must be "newest" or "all"');
    const open = valuesAllowed(principalOf(res)?.role, deps.vault) ? deps.vault?.open : NO_VALUES;
    const store = deps.verification.store;
    const bundle =
      proofs === 'all'
        ? await buildEvidenceV2(store, tenant, object, id, deps.verifierKeys, undefined, open)
        : await buildEvidence(
            store,
            tenant,
            object,
            id,
            deps.verifierKeys,
            undefined,
            open,
            deps.witnessKeys,
          );
    if (!bundle)
      throw new HttpError(
        'RECORD_UNKNOWN',
        `no checkpointed blocks for ${object}/${id} in ${tenant}`,
      );
    res
      .type('application/json')
      .setHeader(
        'Content-Disposition',
        `attachment; filename="evidence-${tenant.replace(':', '-')}-${object}-${id}.json"`,
      )
      .send(JSON.stringify(bundle) + '\n');
  });

  router.get('/checkpoint', requireRole('auditor', 'operator', 'witness'), async (req, res) => {
    const tenant = requireTenant(req, ['tenant']);
    const latest = await deps.verification.store.latestCheckpoint(tenant);
    if (!latest) throw new HttpError('TENANT_UNKNOWN', `no checkpoint for ${tenant}`);
    res.type('text/plain; charset=utf-8').send(latest.note);
  });

  router.get(
    '/proofs/consistency',
    requireRole('auditor', 'operator', 'witness'),
    async (req, res) => {
      const tenant = requireTenant(req, ['tenant', 'from', 'to']);
      const from = Number(req.query['from']);
      const to = Number(req.query['to']);
      const known = await deps.verification.tenants();
      if (!known.includes(tenant)) throw new HttpError('TENANT_UNKNOWN', `no chain for ${tenant}`);
      try {
        const proof = await readConsistencyProof(deps.verification.store, tenant, from, to);
        res.json({ tenant, from, to, proof });
      } catch (err) {
        if (err instanceof LedgerError && err.code === 'SEQ_OUT_OF_RANGE')
          throw new HttpError('QUERY_INVALID', err.message);
        throw err;
      }
    },
  );

  // Verdicts of anchored blocks, oldest first, paged by seq (`after`), filtered by type and time.
  router.get('/verdicts', requireRole('auditor'), async (req, res) => {
    const tenant = requireTenant(req, ['tenant', 'type', 'since', 'after', 'limit']);
    const type = req.query['type'];
    const since = req.query['since'];
    const after = req.query['after'] === undefined ? -1 : Number(req.query['after']);
    const limit = req.query['limit'] === undefined ? 100 : Number(req.query['limit']);
    if (type !== undefined && typeof type !== 'string')
      throw new HttpError('QUERY_INVALID', 'type must be a verdict type');
    if (since !== undefined && (typeof since !== 'string' || Number.isNaN(Date.parse(since))))
      throw new HttpError('QUERY_INVALID', 'since must be an ISO 8601 time');
    if (!Number.isInteger(after) || after < -1)
      throw new HttpError('QUERY_INVALID', 'after must be a block seq');
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new HttpError('QUERY_INVALID', 'limit must be 1-1000');
    const sinceMs = typeof since === 'string' ? Date.parse(since) : -Infinity;
    const out = [];
    let cursor = after;
    let exhausted = false;
    // Bounded scan: at most 20 pages of the index per request; `next` continues from there.
    for (let page = 0; page < 20 && out.length < limit; page++) {
      const entries = await deps.verification.store.readVerdicts(tenant, cursor, 500);
      if (entries.length === 0) {
        exhausted = true;
        break;
      }
      for (const e of entries) {
        cursor = e.seq;
        if (Date.parse(e.at) < sinceMs) continue;
        const verdicts = type ? e.verdicts.filter((v) => v.type === type) : e.verdicts;
        if (verdicts.length === 0) continue;
        out.push({ ...e, verdicts });
        if (out.length === limit) break;
      }
    }
    res.json({ tenant, verdicts: out, next: exhausted ? null : cursor });
  });

  router.get('/openapi.json', requireRole('auditor', 'operator'), (_req, res) => {
    res.json(OPENAPI_DOCUMENT);
  });

  router.get('/tenants', requireRole('auditor', 'operator'), async (req, res) => {
    for (const key of Object.keys(req.query))
      throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
    const store = deps.verification.store;
    const depths = deps.waitingCounts ? await deps.waitingCounts() : {};
    const tenants = await Promise.all(
      (await deps.verification.tenants()).map(async (tenant) => {
        const [head, checkpoint, frozen] = await Promise.all([
          store.readHead(tenant),
          store.latestCheckpoint(tenant),
          store.readFrozen(tenant),
        ]);
        return {
          tenant,
          size: head.size,
          head: head.hash || null,
          checkpointSize: checkpoint?.size ?? 0,
          frozen: frozen ?? null,
          flagsWaiting: depths[`flags-${tenant.replace(':', '-')}`] ?? 0,
        };
      }),
    );
    res.json({ changesWaiting: depths['changes'] ?? 0, tenants });
  });

  // Resume a frozen tenant after repair: only on a chain that verifies; anchored as an admin block.
  router.post('/resume', requireRole('operator'), async (req, res) => {
    const tenant = requireTenant(req, ['tenant']);
    if (!(await deps.verification.tenants()).includes(tenant))
      throw new HttpError('TENANT_UNKNOWN', `no chain for ${tenant}`);
    const result = await resumeAs(deps, tenant, principalOf(res));
    res.json({ tenant, resumed: result.wasFrozen, size: result.size, root: result.root });
  });

  // Records a `quarantine` rule marked: their changes are flagged until an admin clears them.
  router.get('/quarantine', requireRole('auditor'), async (req, res) => {
    const tenant = requireTenant(req, ['tenant']);
    if (!deps.quarantine)
      throw new HttpError('REDIS_UNAVAILABLE', 'this process holds no quarantine state');
    const entries = await deps.quarantine.list(tenant);
    const records = [...entries].map(([key, entry]) => {
      const slash = key.indexOf('/');
      return { object: key.slice(0, slash), id: key.slice(slash + 1), ...entry };
    });
    res.json({ tenant, records });
  });

  // Release a quarantined record (admin only), anchored as an admin block naming admin and reason.
  router.post('/quarantine/clear', requireRole(), smallJson, async (req, res) => {
    for (const key of Object.keys(req.query))
      throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
    const body = req.body as Record<string, unknown> | undefined;
    const tenant = tenantSchema.safeParse(body?.['tenant']);
    const object = objectNameSchema.safeParse(body?.['object']);
    const id = recordIdSchema.safeParse(body?.['id']);
    const reason = body?.['reason'];
    if (
      !tenant.success ||
      !object.success ||
      !id.success ||
      typeof reason !== 'string' ||
      reason.trim() === '' ||
      reason.length > CLEAR_REASON_MAX ||
      Object.keys(body ?? {}).some((k) => !['tenant', 'object', 'id', 'reason'].includes(k))
    ) {
      throw new HttpError(
        'BODY_INVALID',
        `body must be {"tenant": "hubspot:<portalId>", "object": "<object>", "id": "<record id>", "reason": "<1-${CLEAR_REASON_MAX} characters>"}`,
      );
    }
    if (!deps.quarantine || !deps.changeSink)
      throw new HttpError('REDIS_UNAVAILABLE', 'this process cannot queue admin actions');
    const principal = principalOf(res);
    const ref = { tenant: tenant.data, object: object.data, id: id.data };
    const result = await clearQuarantine(
      { quarantine: deps.quarantine, sink: deps.changeSink },
      ref,
      { type: 'admin', id: `admin:${principal?.role ?? 'admin'}:${principal?.name ?? 'unknown'}` },
      reason.trim(),
      () => new Date((deps.now ?? Date.now)()),
    );
    if (!result.cleared)
      throw new HttpError(
        'NOT_QUARANTINED',
        `${ref.object}/${ref.id} in ${ref.tenant} is not quarantined`,
      );
    res.json({
      ...ref,
      cleared: true,
      rule: result.entry.rule,
      quarantinedBy: result.entry.eventId,
      quarantinedAt: result.entry.at,
      clearedAt: result.at,
      eventId: result.eventId,
    });
  });

  // Find a customer's records across CRMs through the dedupe identity (issue 9).
  router.get('/search', requireRole('auditor'), async (req, res) => {
    for (const key of Object.keys(req.query))
      if (key !== 'email') throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
    const query = parseSubjectQuery({ email: req.query['email'] });
    const email = 'email' in query ? query.email : '';
    let records: SubjectRef[] = [];
    try {
      records = deps.subjects ? await deps.subjects.resolve(query) : [];
    } catch (err) {
      if (!(err instanceof VaultError && err.code === 'SUBJECT_NOT_FOUND')) throw err;
    }
    res.json({
      email,
      records: records.map((r) => ({
        tenant: r.tenant,
        object: r.object,
        id: r.id,
        source: r.tenant.startsWith('salesforce:') ? 'salesforce' : 'hubspot',
      })),
    });
  });

  // Subject access (GDPR art. 15): everything held, decrypted, with evidence; JSON or HTML.
  const sendExport = async (req: Request, res: Response, query: SubjectQuery) => {
    if (!valuesAllowed(principalOf(res)?.role, deps.vault))
      throw new HttpError(
        'FORBIDDEN',
        'subject exports hold values: admin role (or a granted auditor)',
      );
    if (!deps.subjects) throw new VaultError('SUBJECT_NOT_FOUND', 'no vault configured');
    const data = await deps.subjects.export(query);
    if (req.query['format'] === 'html') {
      res
        .status(200)
        .setHeader('Content-Security-Policy', SUBJECT_PAGE_CSP)
        .setHeader('Cache-Control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(subjectExportPage(data));
    } else res.setHeader('Cache-Control', 'no-store').json(data);
  };
  const formatOnly = (req: Request, extra: readonly string[]) => {
    for (const key of Object.keys(req.query))
      if (key !== 'format' && !extra.includes(key))
        throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
    const f = req.query['format'];
    if (f !== undefined && f !== 'json' && f !== 'html')
      throw new HttpError('QUERY_INVALID', 'format must be "json" or "html"');
  };
  router.get('/subjects', requireRole('auditor'), async (req, res) => {
    formatOnly(req, ['email']);
    await sendExport(req, res, parseSubjectQuery({ email: req.query['email'] }));
  });
  router.get('/subjects/:tenant/:object/:id', requireRole('auditor'), async (req, res) => {
    formatOnly(req, []);
    const { tenant, object, id } = req.params;
    await sendExport(req, res, parseSubjectQuery({ tenant, object, id }));
  });

  // Erasure (GDPR art. 17): admin only; anchored as an erasure block on each record.
  router.post('/subjects/erase', requireRole(), smallJson, async (req, res) => {
    if (Object.keys(req.query).length > 0)
      throw new HttpError('QUERY_INVALID', 'this route takes no query parameters');
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError('BODY_INVALID', 'body must be a JSON object');
    const { reason, ...rest } = body as Record<string, unknown>;
    for (const key of Object.keys(rest))
      if (!['email', 'tenant', 'object', 'id'].includes(key))
        throw new HttpError('BODY_INVALID', `unknown member "${key}"`);
    if (typeof reason !== 'string')
      throw new HttpError('BODY_INVALID', 'body needs "reason": the legal basis of the erasure');
    const query = parseSubjectQuery(rest);
    if (!deps.subjects) throw new VaultError('SUBJECT_NOT_FOUND', 'no vault configured');
    const principal = principalOf(res);
    const report = await deps.subjects.erase(query, {
      by: `admin:${principal?.role ?? 'admin'}:${principal?.name ?? 'unknown'}`,
      reason,
    });
    res.json(report);
  });

  return router;
}

function recordParams(
  req: Request,
  allowed: readonly string[] = [],
): { tenant: string; object: string; id: string } {
  for (const key of Object.keys(req.query)) {
    if (!allowed.includes(key))
      throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
  }
  const tenant = tenantSchema.safeParse(req.params['tenant']);
  const object = objectNameSchema.safeParse(req.params['object']);
  const id = recordIdSchema.safeParse(req.params['id']);
  if (!tenant.success)
    throw new HttpError('TENANT_INVALID', 'tenant must look like "hubspot:<portalId>"');
  if (!object.success || !id.success) {
    throw new HttpError(
      'QUERY_INVALID',
      'object must be a lower-case object name and id a record id',
    );
  }
  return { tenant: tenant.data, object: object.data, id: id.data };
}

/**
 * Resumes a frozen tenant for an admin API or dashboard caller: verified first, anchored as an
 * admin block in the caller's name; a chain that still fails is 409 CHAIN_TAMPERED naming the
 * repair.
 */
export async function resumeAs(
  deps: Pick<AdminDeps, 'verification' | 'changeSink'>,
  tenant: string,
  principal: Principal | undefined,
): Promise<Extract<ResumeResult, { ok: true }>> {
  if (!deps.changeSink)
    throw new HttpError('REDIS_UNAVAILABLE', 'this process cannot queue admin actions');
  const result = await resumeTenant(
    { verification: deps.verification, sink: deps.changeSink },
    tenant,
    { type: 'admin', id: `admin:${principal?.role ?? 'admin'}:${principal?.name ?? 'unknown'}` },
  );
  if (!result.ok) {
    const v = result.verification;
    throw new HttpError(
      'CHAIN_TAMPERED',
      `${tenant} does not verify${v.ok ? '' : ` (first bad seq ${v.firstBadSeq}: ${v.reason})`}; ` +
        `repair it before resuming: crm-ledger repair --tenant ${tenant} --from-witness <copy>`,
    );
  }
  return result;
}

function requireTenant(req: Request, allowed: readonly string[]): string {
  for (const key of Object.keys(req.query)) {
    if (!allowed.includes(key))
      throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
  }
  const parsed = tenantSchema.safeParse(req.query['tenant']);
  if (!parsed.success)
    throw new HttpError('TENANT_INVALID', 'tenant must look like "hubspot:<portalId>"');
  return parsed.data;
}
