/**
 * Data subjects (GDPR art. 15 access, art. 17 erasure) over the vault.
 *
 * A subject is found by record (`tenant/object/id`) or by email through the dedupe identity,
 * which links a person's HubSpot and Salesforce records. Export returns everything held about the
 * person, decrypted, with an evidence bundle per record proving it is the anchored history.
 * Erasure crypto-shreds: the records' data keys are deleted and their vault entries overwritten,
 * the person leaves the dedupe index, queued events naming the records are dropped, an erasure
 * block (who, when, legal basis; no personal value) is anchored on each record, and the AOF is
 * rewritten so the values are not left in Redis's append log. The chain is untouched, so it and
 * every other record's proofs still verify.
 */
import { randomUUID } from 'node:crypto';
import { VaultError } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { readRecordHistory } from '../ledger/history.js';
import type { RecordHistory } from '../ledger/history.js';
import { buildEvidence, verifyEvidence } from '../ledger/evidence.js';
import type { EvidenceBundle } from '../ledger/evidence.js';
import { formatVerifierKey } from '../ledger/checkpoint.js';
import type { Verifier } from '../ledger/checkpoint.js';
import type { WitnessVerifier } from '../ledger/cosignature.js';
import type { RedisLedgerStore } from '../ledger/store.js';
import { objectNameSchema, recordIdSchema, tenantSchema } from '../model/change-event.js';
import type { Verdict } from '../model/verdict.js';
import type { VaultPort } from './vault.js';
import { ERASED_ENTRY } from './vault.js';

export interface SubjectRef {
  tenant: string;
  object: string;
  id: string;
}

export type SubjectQuery = { email: string } | SubjectRef;

export interface SubjectDeps {
  store: RedisLedgerStore;
  vault: VaultPort & { destroyKey(tenant: string, recordKey: string): Promise<boolean> };
  /** appends the erasure blocks (absent: erasure is refused; the api role holds no signing key) */
  ledger?: Ledger;
  verifierKeys: readonly Verifier[];
  /** witnesses whose cosignatures go into the evidence bundles (CRM_LEDGER_WITNESS_KEYS) */
  witnessKeys?: readonly WitnessVerifier[];
  /** records by email through the dedupe identity (absent: --email finds nothing) */
  findByEmail?: (email: string) => Promise<SubjectRef[]>;
  /** takes the record out of the dedupe index (its normalised profile holds personal values) */
  forgetIdentity?: (ref: SubjectRef) => Promise<void>;
  /** drops queued (waiting, delayed, failed, …) events of these records from BullMQ job data */
  purgeQueued?: (refs: readonly SubjectRef[]) => Promise<{ jobs: number; events: number }>;
  /** rewrites the AOF and waits for it ('off' when Redis runs without AOF) */
  compactAof?: () => Promise<'rewritten' | 'off'>;
  /**
   * queues the write-back of the erasure to the CRM (status + note/task naming the erasure
   * block, with the anchored verdict), when configured; called again for a replayed erasure
   * (the flag job id is the block's, so it is queued once)
   */
  flagErasure?: (
    ref: SubjectRef,
    block: { seq: number; hash: string },
    verdict: Verdict,
  ) => Promise<void>;
  now?: () => Date;
}

export interface SubjectRecordExport extends SubjectRef {
  source: 'hubspot' | 'salesforce';
  /** the record's latest value of every field still held */
  current: Record<string, unknown>;
  history: RecordHistory;
  /** evidence bundle (offline-verifiable with the ledger's public key), null before a checkpoint */
  evidence: EvidenceBundle | null;
  /** verifyEvidence on the bundle, here and now */
  evidenceVerified: boolean;
}

export interface SubjectExport {
  format: 'crm-ledger/subject-export@v1';
  query: SubjectQuery;
  createdAt: string;
  records: SubjectRecordExport[];
}

export interface ErasureRequest {
  /** who asked (the admin principal or CLI user), anchored in the erasure block */
  by: string;
  /** legal basis / reason, anchored (must not contain personal data) */
  reason: string;
  /**
   * A deterministic id (hex, from the pipeline's erasure job): erasing again with the same id
   * re-anchors nothing (the erasure block's idempotency key is the same). Default: a random UUID.
   */
  erasureId?: string;
}

export interface ErasedRecord extends SubjectRef {
  entriesErased: number;
  keyDestroyed: boolean;
  /** the anchored erasure block */
  block: { seq: number; hash: string } | null;
  /** the erasure block was anchored by an earlier run of the same erasure (same erasureId) */
  replayed: boolean;
}

export interface ErasureReport {
  erasureId: string;
  at: string;
  records: ErasedRecord[];
  queued: { jobs: number; events: number };
  aof: 'rewritten' | 'off' | 'not-configured';
}

export const MAX_REASON = 512;

function sourceOf(tenant: string): 'hubspot' | 'salesforce' {
  return tenant.startsWith('salesforce:') ? 'salesforce' : 'hubspot';
}

/** Checks a query; throws SUBJECT_QUERY_INVALID. */
export function parseSubjectQuery(input: {
  email?: unknown;
  tenant?: unknown;
  object?: unknown;
  id?: unknown;
}): SubjectQuery {
  const { email, tenant, object, id } = input;
  if (email !== undefined) {
    if (tenant !== undefined || object !== undefined || id !== undefined) {
      throw new VaultError('SUBJECT_QUERY_INVALID', 'give either an email or tenant+object+id');
    }
    if (typeof email !== 'string' || email.length > 320 || !/^[^\s@]+@[^\s@]+$/.test(email)) {
      throw new VaultError('SUBJECT_QUERY_INVALID', 'email must be an email address');
    }
    return { email };
  }
  const t = tenantSchema.safeParse(tenant);
  const o = objectNameSchema.safeParse(object);
  const i = recordIdSchema.safeParse(id);
  if (!t.success || !o.success || !i.success) {
    throw new VaultError(
      'SUBJECT_QUERY_INVALID',
      'need --email, or --tenant "<hubspot|salesforce>:<id>" --object <name> --id <record id>',
    );
  }
  return { tenant: t.data, object: o.data, id: i.data };
}

export class SubjectService {
  constructor(private readonly deps: SubjectDeps) {}

  private now(): Date {
    return (this.deps.now ?? (() => new Date()))();
  }

  /** The records of a subject; SUBJECT_NOT_FOUND when there is none. */
  async resolve(query: SubjectQuery): Promise<SubjectRef[]> {
    let refs: SubjectRef[];
    if ('email' in query) {
      refs = this.deps.findByEmail ? await this.deps.findByEmail(query.email) : [];
    } else {
      const held = await this.deps.store.readRecord(query.tenant, `${query.object}/${query.id}`);
      refs = held.length > 0 ? [query] : [];
    }
    if (refs.length === 0) {
      throw new VaultError('SUBJECT_NOT_FOUND', 'no record of this subject is held');
    }
    return refs.map(({ tenant, object, id }) => ({ tenant, object, id }));
  }

  async export(query: SubjectQuery): Promise<SubjectExport> {
    const refs = await this.resolve(query);
    const open = this.deps.vault.open.bind(this.deps.vault);
    const keys = this.deps.verifierKeys.map(formatVerifierKey);
    const records: SubjectRecordExport[] = [];
    for (const ref of refs) {
      const history = await readRecordHistory(this.deps.store, ref.tenant, ref.object, ref.id, {
        open,
        values: true,
      });
      if (!history) continue;
      const evidence =
        (await buildEvidence(
          this.deps.store,
          ref.tenant,
          ref.object,
          ref.id,
          this.deps.verifierKeys,
          () => this.now(),
          open,
          this.deps.witnessKeys,
        )) ?? null;
      const current: Record<string, unknown> = {};
      for (const b of history.blocks) {
        for (const [name, f] of Object.entries(b.fields)) {
          if (f.opened && 'value' in f) current[name] = f.value;
        }
      }
      records.push({
        ...ref,
        source: sourceOf(ref.tenant),
        current,
        history,
        evidence,
        evidenceVerified: evidence ? verifyEvidence(evidence, keys).ok : false,
      });
    }
    return {
      format: 'crm-ledger/subject-export@v1',
      query,
      createdAt: this.now().toISOString(),
      records,
    };
  }

  async erase(query: SubjectQuery, request: ErasureRequest): Promise<ErasureReport> {
    const reason = request.reason.trim();
    if (reason === '' || reason.length > MAX_REASON) {
      throw new VaultError(
        'SUBJECT_QUERY_INVALID',
        `a reason (legal basis) of 1-${MAX_REASON} characters is required`,
      );
    }
    const ledger = this.deps.ledger;
    if (!ledger) {
      throw new VaultError('SUBJECT_QUERY_INVALID', 'erasure runs where the ledger appends');
    }
    const refs = await this.resolve(query);
    if (request.erasureId !== undefined && !/^[0-9a-f]{16,64}$/.test(request.erasureId)) {
      throw new VaultError('SUBJECT_QUERY_INVALID', 'erasureId must be 16-64 lower-case hex');
    }
    const erasureId = request.erasureId ?? randomUUID();
    const at = this.now().toISOString();
    // Queued events first: a waiting change must not bring the values back after the shredding.
    const queued = this.deps.purgeQueued
      ? await this.deps.purgeQueued(refs)
      : { jobs: 0, events: 0 };
    const records: ErasedRecord[] = [];
    for (const ref of refs) {
      const recordKey = `${ref.object}/${ref.id}`;
      // The key first: an entry appended meanwhile was sealed with it and is unreadable too.
      const keyDestroyed = await this.deps.vault.destroyKey(ref.tenant, recordKey);
      const seqs = (await this.deps.store.readRecord(ref.tenant, recordKey)).map((h) => h.seq);
      const entriesErased = await this.deps.store.overwriteVaultEntries(
        ref.tenant,
        seqs,
        ERASED_ENTRY,
      );
      await this.deps.forgetIdentity?.(ref);
      const verdict: Verdict = {
        type: 'info',
        code: 'SUBJECT_ERASED',
        reason: `erasure ${erasureId}: ${reason}`,
      };
      const result = await ledger.append(ref.tenant, [
        {
          event: {
            tenant: ref.tenant,
            source: sourceOf(ref.tenant),
            object: ref.object,
            recordId: ref.id,
            eventId: `erasure-${erasureId}`,
            kind: 'erasure',
            actor: { type: 'admin', id: request.by.slice(0, 256) || 'unknown' },
            occurredAt: at,
            fields: {},
          },
          idempotencyKey: `erasure:${ref.tenant}:${recordKey}:${erasureId}`,
          verdicts: [verdict],
        },
      ]);
      const anchored = result.anchored[0];
      const skipped = result.skipped[0];
      let block = anchored ? { seq: anchored.seq, hash: anchored.hash } : null;
      if (!block && skipped) {
        // The same erasure ran before (a retried job): its block is the one to name.
        const [stored] = await ledger.readBlocks(ref.tenant, [skipped.seq]);
        if (stored) block = { seq: skipped.seq, hash: stored.hash };
      }
      if (block) await this.deps.flagErasure?.(ref, block, verdict);
      records.push({ ...ref, entriesErased, keyDestroyed, block, replayed: !anchored });
    }
    const aof = this.deps.compactAof ? await this.deps.compactAof() : 'not-configured';
    return { erasureId, at, records, queued, aof };
  }
}
