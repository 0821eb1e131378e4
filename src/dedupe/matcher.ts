/**
 * The online duplicate-customer matcher the anchor worker calls for each change: it merges the
 * (possibly partial) change into the record's stored profile, re-indexes it, scores the candidates
 * found in its blocks across every tenant of the identity space, and returns a duplicate verdict
 * for pairs not flagged before.
 */
import { createHash } from 'node:crypto';
import type { RedisClient as Redis } from '../redis/connection.js';
import { BlockingIndex, parseRefKey, refKey } from './blocking-index.js';
import type {
  Candidate,
  IndexedRecord,
  RecordRef,
  StoredRecord,
  UpsertResult,
} from './blocking-index.js';
import { DEFAULT_MATCH_PARAMS } from './default-params.js';
import { identityKindOf, mapFields } from './fields.js';
import type { IdentityKind, ProfileField, RawProfile } from './fields.js';
import { blockKeys, buildProfile } from './profile.js';
import { Scorer, comparisonsFor } from './score.js';
import type { MatchParams, PairScore } from './score.js';

/** Probability at or above which a candidate is judged a duplicate. */
export const DEFAULT_THRESHOLD = 0.9;
const MAX_ATTEMPTS = 8;
/** Records this matcher wrote last, kept to update them without reading them first. */
const RECENT_CAP = 4096;
/** Creations per pipeline in `observeMany` (see createMany). */
const CREATE_CHUNK = 10;

/** `p`, with its rejection marked handled until someone awaits it (it is awaited later). */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export interface MatcherOptions {
  redis: Redis;
  /** Identity space: tenants whose records may be the same people (e.g. one company's CRMs). */
  space: string;
  threshold?: number;
  params?: MatchParams;
  /** ISO country for phones and dates when a record has none ('AU', 'US', …). */
  defaultCountry?: string;
  blockCap?: number;
  maxCandidates?: number;
}

/** The subset of a ChangeEvent the matcher reads. */
export interface ObservedChange {
  tenant: string;
  object: string;
  id: string;
  kind: string;
  fields: Readonly<Record<string, string | number | boolean | null>>;
  /**
   * Identity of the change (the pipeline passes its idempotency key): a retry of the same change
   * (the worker died before anchoring it) gets its duplicate verdict again instead of finding the
   * pair already claimed. Without it a pair is claimed once, whoever retries.
   */
  changeKey?: string;
}

export interface DuplicateCandidate extends RecordRef {
  score: number;
}

/** Fits `verdictSchema` (model/verdict.ts) as a loose object. */
export interface DuplicateVerdict {
  type: 'duplicate';
  code: 'DUPLICATE_CUSTOMER';
  reason: string;
  candidates: DuplicateCandidate[];
  score: number;
  fields: string[];
}

/** What one observation did, for the CLI and benchmarks. */
export interface Observation {
  verdict: DuplicateVerdict | undefined;
  /** every candidate scored (refs), matches or not */
  candidates: RecordRef[];
  /** candidates at or above the threshold, including pairs flagged before */
  matches: DuplicateCandidate[];
  /** what happened to the record in the index */
  action: 'indexed' | 'removed' | 'ignored';
}

const PERSON_KINDS = new Set(['create', 'update', 'merge', 'restore', 'reconciled']);
const REMOVE_KINDS = new Set(['delete', 'erasure']);

export class Matcher {
  readonly index: BlockingIndex;
  readonly threshold: number;
  private readonly scorer: Scorer;
  private readonly defaultCountry: string | undefined;
  /**
   * The last version this matcher wrote of recently changed records (least recently written
   * first): an update of one of them is tried against it without a read. Only a guess — the
   * write is compare-and-set, and a conflict answers with the stored record to merge into.
   */
  private readonly recent = new Map<string, IndexedRecord>();

  constructor(options: MatcherOptions) {
    const threshold = options.threshold ?? DEFAULT_THRESHOLD;
    if (!(threshold > 0 && threshold <= 1)) throw new RangeError('threshold must be in (0, 1]');
    this.threshold = threshold;
    this.index = new BlockingIndex(options.redis, options.space, {
      ...(options.blockCap === undefined ? {} : { blockCap: options.blockCap }),
      ...(options.maxCandidates === undefined ? {} : { maxCandidates: options.maxCandidates }),
    });
    this.scorer = new Scorer(options.params ?? DEFAULT_MATCH_PARAMS);
    this.defaultCountry = options.defaultCountry;
  }

  /** The pipeline's call: a verdict when the change makes the record a new duplicate. */
  async observe(change: ObservedChange): Promise<DuplicateVerdict | undefined> {
    return (await this.observeDetailed(change)).verdict;
  }

  async observeDetailed(
    change: ObservedChange,
    explicitMap?: Readonly<Record<string, ProfileField>>,
  ): Promise<Observation> {
    const ignored: Observation = {
      verdict: undefined,
      candidates: [],
      matches: [],
      action: 'ignored',
    };
    const kind = identityKindOf(change.object);
    if (kind === undefined) return ignored;
    const ref: RecordRef = { tenant: change.tenant, object: change.object, id: change.id };
    if (REMOVE_KINDS.has(change.kind)) {
      await this.remove(ref);
      return { ...ignored, action: 'removed' };
    }
    if (!PERSON_KINDS.has(change.kind)) return ignored;

    const update = mapFields(change.fields, kind, explicitMap);
    const key = refKey(ref);
    // A creation is almost always new, and a record this matcher wrote recently is most likely as
    // it left it: try without reading first (one round trip). A wrong guess conflicts, and the
    // conflict answers with the stored record, to merge into and retry.
    let previous: IndexedRecord | undefined = this.recent.get(key);
    let needRead = change.kind !== 'create' && previous === undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (needRead) {
        const read = await this.index.read(ref);
        if (read.status === 'gone') return ignored;
        previous = read.status === 'found' ? read.indexed : undefined;
        needRead = false;
      }
      const raw = mergeRaw(previous?.record.f, update);
      const profile = buildProfile(raw, kind, this.countryOptions());
      const record: StoredRecord = { r: key, f: raw, n: profile };
      const blocks = blockKeys(profile);
      const oldBlocks = previous ? blockKeys(previous.record.n) : [];
      const leave = oldBlocks.filter((b) => !blocks.includes(b));
      const result = await this.index.upsert(record, previous?.version ?? 0, leave, blocks);
      if (result.status === 'conflict') {
        previous = result.current;
        continue;
      }
      if (result.status === 'gone') {
        this.recent.delete(key);
        return ignored;
      }
      this.remember(key, { iid: result.iid, version: result.version, record });
      return this.judge(result.iid, record, result.candidates, claimToken(change.changeKey));
    }
    throw new Error(`dedupe: ${key} kept changing under us (${MAX_ATTEMPTS} attempts)`);
  }

  /**
   * Several changes in order, as `observe` would one after another (a later change sees the
   * earlier ones), with fewer round trips: runs of creations of distinct records are written in
   * one pipeline (each Lua call sees the calls before it) and their pair claims in another.
   * A creation of a record already indexed (a replay) takes the usual read-merge path.
   */
  async observeMany(changes: readonly ObservedChange[]): Promise<(DuplicateVerdict | undefined)[]> {
    return (await this.observeManyDetailed(changes)).map((o) => o.verdict);
  }

  async observeManyDetailed(changes: readonly ObservedChange[]): Promise<Observation[]> {
    const out: Observation[] = new Array<Observation>(changes.length);
    let run: number[] = [];
    const inRun = new Set<string>();
    const flush = async () => {
      if (run.length === 0) return;
      const indexes = run;
      run = [];
      inRun.clear();
      const results = await this.createMany(indexes.map((i) => changes[i] as ObservedChange));
      indexes.forEach((i, j) => (out[i] = results[j] as Observation));
    };
    for (let i = 0; i < changes.length; i++) {
      const change = changes[i] as ObservedChange;
      const key = refKey({ tenant: change.tenant, object: change.object, id: change.id });
      if (
        change.kind === 'create' &&
        identityKindOf(change.object) !== undefined &&
        !inRun.has(key)
      ) {
        run.push(i);
        inRun.add(key);
        continue;
      }
      await flush();
      out[i] = await this.observeDetailed(change);
    }
    await flush();
    return out;
  }

  /**
   * Creations of distinct records, pipelined in chunks so that Redis and this process work at
   * once: every chunk's upserts are sent as soon as its records are normalised, and a chunk is
   * scored (its claims sent) while Redis runs the upserts of the chunks after it. Redis runs the
   * upserts in order, so each record still sees the ones before it; claims are per pair, and a
   * pair belongs to the later record of the two, so their order among the upserts is free.
   */
  private async createMany(changes: readonly ObservedChange[]): Promise<Observation[]> {
    const out: (Observation | undefined)[] = new Array<Observation | undefined>(changes.length);
    const records = new Array<{ record: StoredRecord; blocks: string[] }>(changes.length);
    const upserts: Promise<UpsertResult[]>[] = [];
    for (let at = 0; at < changes.length; at += CREATE_CHUNK) {
      const chunk: { record: StoredRecord; blocks: string[] }[] = [];
      for (let i = at; i < Math.min(changes.length, at + CREATE_CHUNK); i++) {
        const change = changes[i] as ObservedChange;
        const kind = identityKindOf(change.object) as IdentityKind;
        const raw = mergeRaw(undefined, mapFields(change.fields, kind));
        const profile = buildProfile(raw, kind, this.countryOptions());
        const record: StoredRecord = {
          r: refKey({ tenant: change.tenant, object: change.object, id: change.id }),
          f: raw,
          n: profile,
        };
        const entry = { record, blocks: blockKeys(profile) };
        records[i] = entry;
        chunk.push(entry);
      }
      upserts.push(handled(this.index.upsertMany(chunk)));
    }
    const claims: Promise<void>[] = [];
    for (let c = 0; c < upserts.length; c++) {
      const results = await (upserts[c] as Promise<UpsertResult[]>);
      const judged: { i: number; record: StoredRecord; judged: Judged; token: string }[] = [];
      results.forEach((result, k) => {
        const i = c * CREATE_CHUNK + k;
        const change = changes[i] as ObservedChange;
        if (result.status === 'gone') {
          out[i] = { verdict: undefined, candidates: [], matches: [], action: 'ignored' };
        } else if (result.status === 'ok') {
          const { record } = records[i] as (typeof records)[number];
          this.remember(record.r, { iid: result.iid, version: result.version, record });
          judged.push({
            i,
            record,
            judged: this.scoreCandidates(result.iid, record, result.candidates),
            token: claimToken(change.changeKey),
          });
        }
      });
      const claiming = judged.filter((j) => j.judged.scored.length > 0);
      const concluded = this.index
        .claimPairsMany(claiming.map((j) => ({ pairs: j.judged.pairs, token: j.token })))
        .then((fresh) => {
          const freshOf = new Map(claiming.map((j, k) => [j.i, fresh[k] as boolean[]]));
          for (const j of judged) {
            out[j.i] = this.conclude(j.record, j.judged, freshOf.get(j.i) ?? []);
          }
        });
      claims.push(handled(concluded));
    }
    await Promise.all(claims);
    // Conflicts (already indexed: a replayed creation) take the read-merge path, in order.
    for (let i = 0; i < changes.length; i++) {
      if (out[i] === undefined) out[i] = await this.observeDetailed(changes[i] as ObservedChange);
    }
    return out as Observation[];
  }

  private remember(key: string, indexed: IndexedRecord): void {
    this.recent.delete(key);
    this.recent.set(key, indexed);
    if (this.recent.size > RECENT_CAP) {
      const oldest = this.recent.keys().next();
      if (oldest.done !== true) this.recent.delete(oldest.value);
    }
  }

  /** Takes a record out of the index (deleted or erased in the CRM). */
  async remove(ref: RecordRef): Promise<void> {
    await this.removeWithTombstone(ref, undefined);
  }

  /**
   * The CRM merged `losers` into `winner`: the losers leave the index and are never flagged again
   * (late events for them are ignored); the winner keeps its profile (its own update event
   * carries the merged fields).
   */
  async merge(winner: RecordRef, losers: readonly RecordRef[]): Promise<void> {
    for (const loser of losers) {
      if (refKey(loser) === refKey(winner)) continue;
      await this.removeWithTombstone(loser, winner);
    }
  }

  private async removeWithTombstone(ref: RecordRef, mergedInto: RecordRef | undefined) {
    this.recent.delete(refKey(ref));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const read = await this.index.read(ref);
      if (read.status === 'gone') return;
      const version = read.status === 'found' ? read.indexed.version : 0;
      const blocks = read.status === 'found' ? blockKeys(read.indexed.record.n) : [];
      if (await this.index.remove(ref, version, blocks, mergedInto)) return;
    }
    throw new Error(`dedupe: ${refKey(ref)} kept changing under us (${MAX_ATTEMPTS} attempts)`);
  }

  private countryOptions() {
    return this.defaultCountry === undefined ? {} : { defaultCountry: this.defaultCountry };
  }

  private async judge(
    iid: number,
    record: StoredRecord,
    candidates: readonly Candidate[],
    token: string,
  ): Promise<Observation> {
    const judged = this.scoreCandidates(iid, record, candidates);
    const fresh =
      judged.scored.length === 0 ? [] : await this.index.claimPairs(judged.pairs, token);
    return this.conclude(record, judged, fresh);
  }

  private scoreCandidates(
    iid: number,
    record: StoredRecord,
    candidates: readonly Candidate[],
  ): Judged {
    const scored: { candidate: Candidate; score: PairScore }[] = [];
    const refs: RecordRef[] = [];
    for (const candidate of candidates) {
      if (candidate.record.n.k !== record.n.k || candidate.record.r === record.r) continue;
      refs.push(parseRefKey(candidate.record.r));
      const score = this.scorer.scoreAtLeast(record.n, candidate.record.n, this.threshold);
      if (score !== undefined) scored.push({ candidate, score });
    }
    scored.sort((x, y) => y.score.weight - x.score.weight);
    const pairs = scored.map(({ candidate }) => [iid, candidate.iid] as const);
    return { refs, scored, pairs };
  }

  private conclude(record: StoredRecord, judged: Judged, fresh: readonly boolean[]): Observation {
    const { refs, scored } = judged;
    const matches = scored.map(({ candidate, score }) => ({
      ...parseRefKey(candidate.record.r),
      score: round(score.probability),
    }));
    const flagged = scored.filter((_, i) => fresh[i] === true);
    if (flagged.length === 0) {
      return { verdict: undefined, candidates: refs, matches, action: 'indexed' };
    }
    const best = flagged[0] as (typeof flagged)[number];
    const fields = drivingFields(record.n.k, best.score);
    const others = flagged.map(({ candidate, score }) => ({
      ...parseRefKey(candidate.record.r),
      score: round(score.probability),
    }));
    const named = others
      .slice(0, 5)
      .map((c) => `${c.tenant} ${c.object} ${c.id} (${c.score})`)
      .join(', ');
    const more = others.length > 5 ? ` and ${others.length - 5} more` : '';
    const reason = `possible duplicate of ${named}${more}; agreeing on ${fields.join(', ') || 'several fields'}`;
    const verdict: DuplicateVerdict = {
      type: 'duplicate',
      code: 'DUPLICATE_CUSTOMER',
      reason: reason.slice(0, 1024),
      candidates: others,
      score: round(best.score.probability),
      fields,
    };
    return { verdict, candidates: refs, matches, action: 'indexed' };
  }
}

interface Judged {
  refs: RecordRef[];
  scored: { candidate: Candidate; score: PairScore }[];
  pairs: (readonly [number, number])[];
}

/** Canonical field names whose agreement added evidence (≥ 1 bit), strongest first. */
function drivingFields(kind: 'p' | 'c', score: PairScore): string[] {
  const comparisons = comparisonsFor(kind);
  const order = [...score.contributions.keys()]
    .filter((i) => (score.contributions[i] as number) >= 1)
    .sort((a, b) => (score.contributions[b] as number) - (score.contributions[a] as number));
  const names: string[] = [];
  for (const i of order) {
    for (const f of comparisons[i]?.fields ?? []) if (!names.includes(f)) names.push(f);
  }
  return names;
}

/** Later values win; an empty value clears the field. */
function mergeRaw(previous: RawProfile | undefined, update: RawProfile): RawProfile {
  const merged: RawProfile = { ...previous };
  for (const [field, value] of Object.entries(update) as [ProfileField, string][]) {
    if (value === '') delete merged[field];
    else merged[field] = value;
  }
  return merged;
}

/** A short, fixed-size token for a change key (stored once per flagged pair). */
function claimToken(changeKey: string | undefined): string {
  if (changeKey === undefined || changeKey === '') return '';
  return createHash('sha256').update(changeKey).digest('base64url').slice(0, 12);
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;
