/**
 * The anchor worker: takes change requests off the `changes` queue, runs the checks on each
 * change, and appends them to their tenant's chain in micro-batches.
 *
 * Jobs are processed concurrently; their events are pooled per tenant and appended together
 * (up to `batchSize` changes, or whatever arrived within `batchWaitMs`), ordered by occurredAt and
 * then arrival. A job completes only when all of its events are anchored under a signed checkpoint.
 * A worker killed mid-batch loses nothing: its jobs are retried after their lock expires, and the
 * ledger's idempotency records skip every change that was already anchored.
 */
import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { ConnectionOptions, Job } from 'bullmq';
import { InputError, LedgerError } from '../errors.js';
import type { PreparedChange } from '../ledger/block.js';
import type { Ledger } from '../ledger/ledger.js';
import { SOURCES } from '../model/change-event.js';
import type { FieldValue } from '../model/change-event.js';
import type { FlagRequest, ParsedEvent } from '../../connectors/types.js';
import { recordKeyOf } from '../ledger/block.js';
import { canonicalize } from '../ledger/canonical.js';
import { sha256Hex } from '../ledger/hash.js';
import type { Verdict } from '../model/verdict.js';
import type { Logger } from '../observability/logger.js';
import { CHANGES_QUEUE, QUEUE_PREFIX } from './queues.js';
import { shouldFlag, wantsRevert } from './flags.js';
import type { FlagSink } from './flags.js';
import type { ChangesJob } from './queues.js';
import type { ErasureJob, ErasureSink } from './erasures.js';

/**
 * The checks run on each change before it is anchored (dedupe, policy): one list of verdicts per
 * change, written into its block. They get the idempotency keys so that a retried change is not
 * counted twice (mass-change limits).
 */
export type ChecksHook = (tenant: string, events: readonly ParsedEvent[]) => Promise<Verdict[][]>;
export const NO_CHECKS: ChecksHook = (_tenant, events) => Promise.resolve(events.map(() => []));

export interface AnchorWorkerOptions {
  connection: ConnectionOptions;
  ledger: Ledger;
  logger: Logger;
  batchSize?: number;
  batchWaitMs?: number;
  concurrency?: number;
  /** called after each append with the changes it anchored (metrics, benchmarks) */
  onAnchored?: AnchoredHook;
  /** queue prefix (a `{…}` hash tag); QUEUE_PREFIX by default */
  prefix?: string;
  /** job lock; a crashed worker's jobs are taken back after this (and the stalled check) */
  lockMs?: number;
  checks?: ChecksHook;
  /** where verdicts to write back are queued; none: nothing is flagged */
  flags?: FlagSink;
  /** the fields crm-ledger writes in a tenant's CRM (flag status): changes to them are our echo */
  ownFields?: (tenant: string) => readonly string[];
  /** base URL of the admin API, linked from the notes/tasks flags write */
  adminBaseUrl?: string;
  /** how often a request for a frozen tenant looks again whether it was resumed */
  frozenRetryMs?: number;
  /**
   * Where an anchored HubSpot `privacyDeletion` (GDPR delete) becomes an erasure job (the erasure
   * worker erases the record as `crm-ledger subject erase` does; pipeline/erasures.ts). Queued
   * before the anchor job completes, for a replayed block too: a crash in between retries the
   * job, which queues the same erasure again (one job id per deletion block).
   */
  erasures?: ErasureSink;
}

interface AnchoredVerdicts {
  change: PreparedChange;
  seq: number;
  hash: string;
  verdicts: readonly Verdict[];
}

interface CandidateRef {
  tenant: string;
  object: string;
  id: string;
  score?: number;
}

/** The records a duplicate verdict names (src/dedupe/matcher.ts DuplicateVerdict.candidates). */
function duplicateCandidates(v: Verdict): CandidateRef[] {
  const list = (v as { candidates?: unknown }).candidates;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (c): c is CandidateRef =>
      typeof c === 'object' &&
      c !== null &&
      typeof (c as CandidateRef).tenant === 'string' &&
      typeof (c as CandidateRef).object === 'string' &&
      typeof (c as CandidateRef).id === 'string',
  );
}

/**
 * The event that anchors, in the earlier record's chain, that a later record was judged its
 * duplicate (block `seq` of `tenant`). Undefined when the candidate's tenant is not one we know.
 */
function earlierDuplicateEvent(
  tenant: string,
  seq: number,
  later: ParsedEvent['event'],
  verdict: Verdict,
  earlier: CandidateRef,
): ParsedEvent | undefined {
  const source = SOURCES.find((s) => earlier.tenant.startsWith(`${s}:`));
  if (source === undefined) return undefined;
  const score = typeof earlier.score === 'number' ? ` (${earlier.score})` : '';
  const fields = (verdict as { fields?: unknown }).fields;
  const reason =
    `possible duplicate of ${tenant} ${later.object} ${later.recordId}${score}, ` +
    `which arrived later (block #${seq} of ${tenant})`;
  return {
    event: {
      tenant: earlier.tenant,
      source,
      object: earlier.object,
      recordId: earlier.id,
      eventId: `duplicate-of:${tenant}:${seq}:${later.object}:${later.recordId}`.slice(0, 256),
      kind: 'admin',
      actor: { ...OWN_ACTOR },
      occurredAt: later.occurredAt,
      fields: {},
    },
    idempotencyKey: `duplicate|${tenant}|${seq}|${earlier.tenant}/${earlier.object}/${earlier.id}`,
    verdicts: [
      {
        type: 'duplicate',
        code: verdict.code ?? 'DUPLICATE_CUSTOMER',
        reason: reason.slice(0, 1024),
        candidates: [
          {
            tenant,
            object: later.object,
            id: later.recordId,
            ...(typeof earlier.score === 'number' ? { score: earlier.score } : {}),
          },
        ],
        ...(typeof earlier.score === 'number' ? { score: earlier.score } : {}),
        ...(Array.isArray(fields) ? { fields } : {}),
        anchoredAs: { tenant, seq },
      },
    ],
  };
}

export type AnchoredHook = (tenant: string, anchoredEventIds: string[], skipped: number) => void;

export interface JobResult {
  anchored: number;
  skipped: number;
}

/** Where each change of a submission ended up: its block, new or already there. */
export interface ChangeOutcome {
  seq: number;
  /** the block's hash when this append wrote it; absent for a replay */
  hash?: string;
  replay: boolean;
}

interface Pending {
  changes: PreparedChange[];
  resolve: (r: ChangeOutcome[]) => void;
  reject: (err: unknown) => void;
}

/** Pools the changes of concurrent jobs per tenant and appends them in batches. */
export class TenantBatcher {
  private readonly queues = new Map<
    string,
    { items: Pending[]; size: number; timer?: NodeJS.Timeout }
  >();

  constructor(
    private readonly ledger: Ledger,
    private readonly batchSize: number,
    private readonly batchWaitMs: number,
    private readonly onAnchored?: AnchoredHook,
  ) {}

  submit(tenant: string, changes: PreparedChange[]): Promise<ChangeOutcome[]> {
    return new Promise<ChangeOutcome[]>((resolve, reject) => {
      let q = this.queues.get(tenant);
      if (!q) {
        q = { items: [], size: 0 };
        this.queues.set(tenant, q);
      }
      q.items.push({ changes, resolve, reject });
      q.size += changes.length;
      if (q.size >= this.batchSize) this.flush(tenant);
      else q.timer ??= setTimeout(() => this.flush(tenant), this.batchWaitMs);
    });
  }

  private flush(tenant: string): void {
    const q = this.queues.get(tenant);
    if (!q || q.items.length === 0) return;
    if (q.timer) clearTimeout(q.timer);
    this.queues.delete(tenant);
    const items = q.items;
    // Order by occurredAt, then arrival (Array.prototype.sort is stable).
    const all = items.flatMap((item, i) =>
      item.changes.map((change, pos) => ({ change, item: i, pos })),
    );
    all.sort((a, b) =>
      a.change.event.occurredAt < b.change.event.occurredAt
        ? -1
        : a.change.event.occurredAt > b.change.event.occurredAt
          ? 1
          : 0,
    );
    this.ledger
      .appendPrepared(
        tenant,
        all.map((a) => a.change),
      )
      .then(
        (result) => {
          this.onAnchored?.(
            tenant,
            result.anchored.map(
              (a) => (all[a.index] as { change: PreparedChange }).change.event.eventId,
            ),
            result.skipped.length,
          );
          const outcomes: ChangeOutcome[][] = items.map((item) =>
            item.changes.map(() => ({ seq: -1, replay: true })),
          );
          const place = (index: number, outcome: ChangeOutcome): void => {
            const at = all[index] as { item: number; pos: number };
            (outcomes[at.item] as ChangeOutcome[])[at.pos] = outcome;
          };
          for (const a of result.anchored)
            place(a.index, { seq: a.seq, hash: a.hash, replay: false });
          for (const s of result.skipped) place(s.index, { seq: s.seq, replay: true });
          items.forEach((item, i) => item.resolve(outcomes[i] as ChangeOutcome[]));
        },
        (err: unknown) => {
          for (const item of items) item.reject(err);
        },
      );
  }
}

/** The actor of changes crm-ledger itself made in a CRM (flags, reverts). */
export const OWN_ACTOR = { type: 'crm-ledger', id: 'crm-ledger' } as const;

/**
 * A change that touches nothing but the fields crm-ledger writes (its flag status) is the echo of
 * our own write-back, whoever the CRM says made it: it is attributed to crm-ledger and not judged.
 * (Connectors that can tell our writes apart — HubSpot's app id, Salesforce's changeOrigin
 * client=crm-ledger — set OWN_ACTOR themselves.)
 */
export function recogniseEcho(e: ParsedEvent, ownFields: readonly string[]): ParsedEvent {
  if (e.event.actor.type === OWN_ACTOR.type || ownFields.length === 0) return e;
  const names = Object.keys(e.event.fields).filter((n) => n !== STATE_HASH_FIELD);
  if (names.length === 0 || !names.every((n) => ownFields.includes(n))) return e;
  return { ...e, event: { ...e.event, actor: { ...OWN_ACTOR } } };
}

/** The field that carries the hash of a full-state event's whole state (Outbound Messages). */
export const STATE_HASH_FIELD = '$state';

/**
 * Full-state events (Salesforce Outbound Messages carry the record as it is now) become changes:
 * only the fields whose value differs from the record's last anchored state are anchored, plus
 * the hash of the whole state so that it is still pinned in the block. A message that changes
 * nothing against a known record is dropped. Events of one record in
 * one request are diffed in order, each against the state the previous one left.
 */
export async function diffFullState(
  ledger: Ledger,
  tenant: string,
  events: readonly ParsedEvent[],
): Promise<ParsedEvent[]> {
  const states = new Map<string, Map<string, FieldValue>>();
  const out: ParsedEvent[] = [];
  for (const e of events) {
    if (e.skipIfUnchanged && !e.fullState) {
      const key = recordKeyOf({ object: e.event.object, id: e.event.recordId });
      const state = states.get(key) ?? (await ledger.recordState(tenant, key));
      states.set(key, state);
      const changed = Object.entries(e.event.fields).some(
        ([name, value]) => !state.has(name) || state.get(name) !== value,
      );
      for (const [name, value] of Object.entries(e.event.fields)) state.set(name, value);
      if (changed || state.size === 0) out.push(e);
      continue;
    }
    if (!e.fullState) {
      out.push(e);
      continue;
    }
    const key = recordKeyOf({ object: e.event.object, id: e.event.recordId });
    const state = states.get(key) ?? (await ledger.recordState(tenant, key));
    const known = state.size > 0;
    const fields: Record<string, FieldValue> = {};
    for (const [name, value] of Object.entries(e.event.fields)) {
      if (!state.has(name) || state.get(name) !== value) fields[name] = value;
      state.set(name, value);
    }
    states.set(key, state);
    // Nothing changed that we watch: the same change already came another way (CDC, when both CDC
    // and Outbound Messages are set up; CDC wins, it names the fields and who changed them) or an
    // edit of fields this message does not carry. Nothing to anchor.
    if (known && Object.keys(fields).length === 0) continue;
    fields[STATE_HASH_FIELD] = sha256Hex(canonicalize(e.event.fields));
    out.push({ ...e, event: { ...e.event, fields } });
  }
  return out;
}

/** In-process locks per record key: each caller waits for the callers before it (no cycles). */
const recordLocks = new Map<string, Promise<void>>();
async function withRecordLocks<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
  const unique = [...new Set(keys)];
  const before = unique.map((k) => recordLocks.get(k) ?? Promise.resolve());
  let release = (): void => undefined;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  for (const k of unique) recordLocks.set(k, mine);
  await Promise.all(before);
  try {
    return await fn();
  } finally {
    release();
    for (const k of unique) if (recordLocks.get(k) === mine) recordLocks.delete(k);
  }
}

export function startAnchorWorker(options: AnchorWorkerOptions): Worker<ChangesJob, JobResult> {
  const checks = options.checks ?? NO_CHECKS;
  const batcher = new TenantBatcher(
    options.ledger,
    Math.min(options.batchSize ?? 128, 1000),
    options.batchWaitMs ?? 20,
    options.onAnchored,
  );
  const logger = options.logger;
  const ledger = options.ledger;
  const frozenRetryMs = options.frozenRetryMs ?? 5_000;

  /** One tenant's events of a request: diff, echo recognition, checks, prepare, anchor, flags. */
  /**
   * Events compared with the record's anchored state (Outbound Messages, CDC) are diffed and
   * anchored under a per-record lock, so that two copies of one change handled at the same moment
   * (the same change from both feeds) cannot both see the old state: the second finds nothing new.
   */
  const anchorTenant = (
    tenant: string,
    received: ChangesJob['events'],
    refused: string[],
  ): Promise<JobResult> => {
    const keys = received
      .filter((e) => e.fullState || e.skipIfUnchanged)
      .map((e) => `${tenant}/${recordKeyOf({ object: e.event.object, id: e.event.recordId })}`);
    return keys.length === 0
      ? anchorTenantNow(tenant, received, refused)
      : withRecordLocks(keys, () => anchorTenantNow(tenant, received, refused));
  };

  const anchorTenantNow = async (
    tenant: string,
    received: ChangesJob['events'],
    refused: string[],
  ): Promise<JobResult> => {
    const events = (await diffFullState(ledger, tenant, received)).map((e) =>
      recogniseEcho(e, options.ownFields?.(tenant) ?? []),
    );
    // Our own write-backs are anchored (the CRM did change) but not judged again: no echo loops.
    // Admin blocks (resume, quarantine release, policy loads) record crm-ledger's own actions, not
    // CRM changes: a broad policy rule must not flag them.
    const judged = events.filter(
      (e) => e.event.actor.type !== OWN_ACTOR.type && e.event.kind !== 'admin',
    );
    const judgedVerdicts = await checks(tenant, judged);
    const verdictsOf = new Map(judged.map((e, i) => [e, judgedVerdicts[i] ?? []]));
    // Each change is checked on its own: one bad change does not keep the others out.
    const prepared: PreparedChange[] = [];
    events.forEach((e) => {
      try {
        prepared.push(
          ...ledger.prepare(tenant, [
            {
              event: e.event,
              idempotencyKey: e.idempotencyKey,
              // Verdicts that came with the event (reconciliation) first, then the checks'.
              verdicts: [...(e.verdicts ?? []), ...(verdictsOf.get(e) ?? [])],
            },
          ]),
        );
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        refused.push(`${e.event.eventId} (${err.code}: ${err.message})`);
      }
    });
    if (prepared.length === 0) return { anchored: 0, skipped: 0 };
    const outcomes = await batcher.submit(tenant, prepared);
    // The verdict index (for /admin/verdicts and the dashboard); a replay re-adds the same entry.
    const at = new Date().toISOString();
    await ledger.store.indexVerdicts(
      tenant,
      prepared.flatMap((change, i) => {
        const o = outcomes[i];
        if (!o || o.seq < 0 || change.verdicts.length === 0 || o.replay) return [];
        return [
          {
            seq: o.seq,
            object: change.event.object,
            id: change.event.recordId,
            at,
            verdicts: change.verdicts.map((v) => ({
              type: v.type,
              ...(v.code ? { code: v.code } : {}),
              ...(v.reason ? { reason: v.reason } : {}),
            })),
          },
        ];
      }),
    );
    const anchored = await anchoredVerdicts(tenant, prepared, outcomes);
    if (options.flags) await queueFlags(tenant, prepared, anchored);
    await anchorEarlierDuplicates(tenant, anchored, refused);
    if (options.erasures) {
      // New and replayed blocks alike: the run that appended may have died before this line.
      const erasures: ErasureJob[] = [];
      for (const [i, change] of prepared.entries()) {
        const e = change.event;
        const o = outcomes[i];
        if (o && o.seq >= 0 && e.kind === 'delete' && e.fields['privacyDeletion'] === true) {
          erasures.push({ tenant, object: e.object, id: e.recordId, seq: o.seq });
        }
      }
      await options.erasures.enqueue(erasures);
    }
    return {
      anchored: outcomes.filter((o) => !o.replay).length,
      skipped: outcomes.filter((o) => o.replay).length,
    };
  };

  /**
   * The verdicts of the changes a request anchored, with their blocks: new blocks from the
   * prepared changes, replayed ones (a retried job) from the stored blocks, so that whatever
   * follows from a verdict (flags, the earlier duplicate's block) is redone after a crash.
   */
  const anchoredVerdicts = async (
    tenant: string,
    prepared: readonly PreparedChange[],
    outcomes: readonly ChangeOutcome[],
  ): Promise<AnchoredVerdicts[]> => {
    const out: AnchoredVerdicts[] = [];
    const replays: { change: PreparedChange; seq: number }[] = [];
    outcomes.forEach((o, i) => {
      const change = prepared[i] as PreparedChange;
      if (o.seq < 0) return;
      if (o.replay) replays.push({ change, seq: o.seq });
      else if (change.verdicts.length > 0)
        out.push({ change, seq: o.seq, hash: o.hash ?? '', verdicts: change.verdicts });
    });
    if (replays.length > 0) {
      const stored = await ledger.readBlocks(
        tenant,
        replays.map((r) => r.seq),
      );
      replays.forEach((r, i) => {
        const found = stored[i];
        if (found && found.block.verdicts.length > 0)
          out.push({
            change: r.change,
            seq: r.seq,
            hash: found.hash,
            verdicts: found.block.verdicts,
          });
      });
    }
    return out;
  };

  /**
   * Verdicts to write back become flag jobs before the anchor job completes, so a crash in between
   * re-runs the job: its replayed changes take their verdicts from the stored blocks.
   */
  const queueFlags = async (
    tenant: string,
    prepared: readonly PreparedChange[],
    anchored: readonly AnchoredVerdicts[],
  ): Promise<void> => {
    const requests: FlagRequest[] = [];
    for (const a of anchored) {
      const verdicts = a.verdicts.filter(shouldFlag);
      if (verdicts.length > 0)
        requests.push(flagRequest(tenant, a.change, a.seq, a.hash, verdicts));
    }
    // Reverts restore the state the change was made on, from the ledger (never from the CRM).
    for (const r of requests) {
      if (!r.verdicts.some(wantsRevert)) continue;
      const change = prepared.find(
        (p) => p.event.recordId === r.ref.id && p.event.object === r.ref.object,
      );
      if (!change || change.event.kind !== 'update') continue;
      const before = await ledger.recordState(tenant, change.recordKey, r.seq);
      if (before.size === 0) continue;
      const revert: Record<string, FieldValue> = {};
      for (const name of Object.keys(change.event.fields)) {
        if (name === STATE_HASH_FIELD) continue;
        revert[name] = before.get(name) ?? null;
      }
      r.revert = revert;
    }
    if (requests.length > 0) await options.flags?.enqueue(requests);
  };

  /**
   * A duplicate verdict names records anchored earlier (possibly in another CRM's tenant): each of
   * them gets a block in its own chain — an `admin` event by crm-ledger carrying a duplicate
   * verdict that names the newly arrived record — so that it is flagged in its CRM too, through
   * the same path (verdict index, flag job, note/task) as any verdict. Idempotent by (block of the
   * new record, earlier record): a retried job re-appends nothing. Our own events (these blocks
   * included) never mirror again.
   */
  const anchorEarlierDuplicates = async (
    tenant: string,
    anchored: readonly AnchoredVerdicts[],
    refused: string[],
  ): Promise<void> => {
    const byTenant = new Map<string, ParsedEvent[]>();
    for (const a of anchored) {
      const event = a.change.event;
      if (event.actor.type === OWN_ACTOR.type) continue;
      for (const v of a.verdicts) {
        if (v.type !== 'duplicate') continue;
        for (const other of duplicateCandidates(v)) {
          if (
            other.tenant === tenant &&
            other.object === event.object &&
            other.id === event.recordId
          )
            continue;
          const mirrored = earlierDuplicateEvent(tenant, a.seq, event, v, other);
          if (!mirrored) continue;
          const list = byTenant.get(other.tenant) ?? [];
          list.push(mirrored);
          byTenant.set(other.tenant, list);
        }
      }
    }
    for (const [other, events] of byTenant) await anchorTenant(other, events, refused);
  };

  const flagRequest = (
    tenant: string,
    change: PreparedChange,
    seq: number,
    blockHash: string,
    verdicts: Verdict[],
  ): FlagRequest => {
    const ref = { object: change.event.object, id: change.event.recordId };
    return {
      tenant,
      ref,
      seq,
      blockHash,
      verdicts,
      ...(options.adminBaseUrl
        ? {
            adminUrl: `${options.adminBaseUrl}/admin/records/${encodeURIComponent(tenant)}/${ref.object}/${encodeURIComponent(ref.id)}`,
          }
        : {}),
    };
  };

  const process = async (job: Job<ChangesJob, JobResult>, token?: string): Promise<JobResult> => {
    const byTenant = new Map<string, ChangesJob['events']>();
    for (const e of job.data.events) {
      const list = byTenant.get(e.event.tenant) ?? [];
      list.push(e);
      byTenant.set(e.event.tenant, list);
    }
    const refused: string[] = [];
    const settled = await Promise.allSettled(
      [...byTenant].map(([tenant, received]) => anchorTenant(tenant, received, refused)),
    );
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure) {
      const err: unknown = failure.reason;
      if (err instanceof LedgerError && err.code === 'TENANT_FROZEN' && token) {
        // Tampering was found: the events stay queued (the job waits, using no attempt) and are
        // anchored, in order, once an admin has repaired and resumed the tenant.
        logger.warn({ jobId: job.id }, 'tenant frozen: the request waits in the queue');
        await job.moveToDelayed(Date.now() + frozenRetryMs, token);
        throw new DelayedError();
      }
      throw err;
    }
    const results = settled.map((r) => (r as PromiseFulfilledResult<JobResult>).value);
    if (refused.length > 0) {
      // Bad input cannot get better by retrying: the good changes of the request are anchored; the
      // job fails for good and stays in the failed set, with its data, for someone to look at.
      throw new UnrecoverableError(
        `${refused.length} change(s) refused: ${refused.slice(0, 5).join('; ')}`,
      );
    }
    const total = results.reduce(
      (a, r) => ({ anchored: a.anchored + r.anchored, skipped: a.skipped + r.skipped }),
      { anchored: 0, skipped: 0 },
    );
    logger.debug({ jobId: job.id, ...total }, 'request anchored');
    return total;
  };
  const worker = new Worker<ChangesJob, JobResult>(CHANGES_QUEUE, process, {
    connection: options.connection,
    prefix: options.prefix ?? QUEUE_PREFIX,
    concurrency: options.concurrency ?? 32,
    lockDuration: options.lockMs ?? 30_000,
    stalledInterval: options.lockMs ?? 30_000,
  });
  worker.on('failed', (job, err) => {
    logger.warn(
      { jobId: job?.id, attempts: job?.attemptsMade, err: err.message },
      'anchor job failed',
    );
  });
  worker.on('error', (err) => logger.error({ err }, 'anchor worker error'));
  return worker;
}
