/**
 * The candidate index in Redis: per identity space, each record's stored profile and the blocking
 * sets it belongs to. Every key of a space shares one hash tag (`cl:{dedupe:<space>}:…`), so a
 * space lives on one Redis Cluster slot and the Lua scripts may touch all its keys.
 *
 * Records are numbered inside the space (iid, from a counter) so that blocks are sets of small
 * integers: Redis stores those as compact intsets. Writes are Lua scripts with a compare-and-set on
 * the record's version; the caller merges partial changes and retries on conflict.
 *
 * Keys (`DedupeKeys`):
 *   ids    HASH  "<tenant>/<object>/<id>" -> iid
 *   prof   HASH  iid -> "<version>|<stored record>" (codec.ts)
 *   seq    STRING last iid
 *   gone   HASH  merged-away ref -> winner ref (tombstones: late events for a loser are ignored)
 *   pairs  HASH  "<iid>:<iid>" pairs already flagged -> claim token of the change that flagged it
 *   flags  SET   pairs flagged before claims had tokens (read only, still honoured)
 *   B:<n>  HASH  bucket n (of BUCKETS, by a hash of the block key): block key -> ",iid,iid,…,"
 *                (a block per field of a small hash costs a fraction of a small set per block),
 *                or "*": a stop word, a block that outgrew its store cap (never read again)
 *
 * The work of one call is bounded: a block holds at most its store cap of members (its read cap,
 * or `LOOKUP_STORE_CAP` for the email blocks that `lookup.ts` reads), so a key that many records
 * share (a switchboard phone, a common street, look-alike generated contacts) costs one small
 * HGET per call instead of copying and rewriting a list that grows with the space.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient as Redis } from '../redis/connection.js';
import { decodeHead, decodeRecord, encodeRecord } from './codec.js';
import type { RawProfile } from './fields.js';
import { isWeakBlock } from './profile.js';
import type { Profile } from './profile.js';

export interface RecordRef {
  tenant: string;
  object: string;
  id: string;
}

/** `<tenant>/<object>/<id>`: none of the three may contain '/' (see model/change-event.ts). */
export function refKey(ref: RecordRef): string {
  return `${ref.tenant}/${ref.object}/${ref.id}`;
}

export function parseRefKey(key: string): RecordRef {
  const first = key.indexOf('/');
  const second = key.indexOf('/', first + 1);
  return {
    tenant: key.slice(0, first),
    object: key.slice(first + 1, second),
    id: key.slice(second + 1),
  };
}

/**
 * Buckets per space: ~60 blocks per bucket at 100k records, so that buckets stay small hashes
 * (listpack encoded up to 128 fields by default) to about 200k records; above that a bucket is a
 * plain hash, still smaller than a set per block. Fixed for a space's life (a block's bucket must
 * not move).
 */
export const BUCKETS = 1 << 14;

/**
 * Members kept in an email block (`pe:`/`ce:`), which `findRecordsByEmail` lists for subject
 * requests: well above any read cap, so that an address shared by a household or an office is
 * still found; an address on more records than this (a role account) becomes a stop word too.
 */
export const LOOKUP_STORE_CAP = 1000;

/** The field value of a block that outgrew its store cap (upsertProfile.lua). */
const STOP_WORD = '*';

/** FNV-1a (32 bits) of a block key, folded onto the buckets. */
function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}

/** Every key of one identity space, under one hash tag. */
export class DedupeKeys {
  readonly prefix: string;
  readonly ids: string;
  readonly prof: string;
  readonly seq: string;
  readonly gone: string;
  readonly flags: string;
  readonly pairs: string;
  constructor(readonly space: string) {
    if (!/^[A-Za-z0-9_:.-]{1,100}$/.test(space)) {
      throw new Error(
        `dedupe space must be 1-100 of [A-Za-z0-9_:.-], got ${JSON.stringify(space)}`,
      );
    }
    this.prefix = `cl:{dedupe:${space}}:`;
    this.ids = `${this.prefix}ids`;
    this.prof = `${this.prefix}prof`;
    this.seq = `${this.prefix}seq`;
    this.gone = `${this.prefix}gone`;
    this.flags = `${this.prefix}flags`;
    this.pairs = `${this.prefix}pairs`;
  }
  /** The bucket hash that holds block `key` (as a field). */
  block(key: string): string {
    return `${this.prefix}B:${bucketOf(key).toString(36)}`;
  }
}

/** What the index stores per record. */
export interface StoredRecord {
  /** ref key */
  r: string;
  /** raw profile fields, merged across partial changes */
  f: RawProfile;
  /** normalised profile */
  n: Profile;
}

export interface IndexedRecord {
  iid: number;
  version: number;
  record: StoredRecord;
}

export type ReadResult =
  | { status: 'found'; indexed: IndexedRecord }
  | { status: 'unknown' }
  | { status: 'gone'; winner: string };

export type CandidateRecord = Pick<StoredRecord, 'r' | 'n'>;

export interface Candidate {
  iid: number;
  record: CandidateRecord;
}

export type UpsertResult =
  | { status: 'ok'; iid: number; version: number; blockSizes: number[]; candidates: Candidate[] }
  /** `current`: the stored record the write lost to (undefined: none), to merge into and retry */
  | { status: 'conflict'; current: IndexedRecord | undefined }
  | { status: 'gone'; winner: string };

export interface BlockingIndexOptions {
  /** Blocks with more members are joined but not read (a common key must not explode the
   * candidate set). Default 40. */
  blockCap?: number;
  /** At most this many candidates per record. Default 1000. */
  maxCandidates?: number;
  /** Cap of the weak blocks (`isWeakBlock`: recall aids, many namesakes). Default 10. */
  weakBlockCap?: number;
}

const SCRIPTS = {
  upsertProfile: { file: 'upsertProfile.lua', version: 4 },
  removeProfile: { file: 'removeProfile.lua', version: 2 },
  readProfile: { file: 'readProfile.lua', version: 1 },
  claimPairs: { file: 'claimPairs.lua', version: 2 },
} as const;
type ScriptName = keyof typeof SCRIPTS;

const sources = new Map<ScriptName, string>();
function scriptSource(name: ScriptName): string {
  let src = sources.get(name);
  if (src === undefined) {
    src = readFileSync(new URL(`lua/${SCRIPTS[name].file}`, import.meta.url), 'utf8');
    sources.set(name, src);
  }
  return src;
}

type ScriptFn = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

/** "<version>|<record>" (codec.ts; JSON from before the compact encoding). */
function decodeStored(stored: string): { version: number; record: StoredRecord } {
  const bar = stored.indexOf('|');
  const body = stored.slice(bar + 1);
  return {
    version: Number(stored.slice(0, bar)),
    record: body.startsWith('{') ? (JSON.parse(body) as StoredRecord) : decodeRecord(body),
  };
}

/** A candidate needs only its ref and normalised profile (also the email lookup, lookup.ts). */
export function decodeCandidate(stored: string): CandidateRecord {
  const body = stored.slice(stored.indexOf('|') + 1);
  if (body.startsWith('{')) {
    const { r, n } = JSON.parse(body) as StoredRecord;
    return { r, n };
  }
  return decodeHead(body);
}

export class BlockingIndex {
  readonly keys: DedupeKeys;
  readonly blockCap: number;
  readonly maxCandidates: number;
  readonly weakBlockCap: number;
  private readonly scripts: Record<ScriptName, ScriptFn>;
  private readonly commandNames: Record<ScriptName, string>;

  constructor(
    private readonly redis: Redis,
    space: string,
    options: BlockingIndexOptions = {},
  ) {
    this.keys = new DedupeKeys(space);
    this.blockCap = options.blockCap ?? 40;
    this.maxCandidates = options.maxCandidates ?? 1000;
    this.weakBlockCap = Math.min(options.weakBlockCap ?? 10, this.blockCap);
    const commands = redis as unknown as Record<string, ScriptFn | undefined>;
    const bound = {} as Record<ScriptName, ScriptFn>;
    const names = {} as Record<ScriptName, string>;
    for (const [name, spec] of Object.entries(SCRIPTS) as [
      ScriptName,
      (typeof SCRIPTS)[ScriptName],
    ][]) {
      // Versioned names (STYLE.md rule 9): a changed script never runs under an old name.
      const command = `dedupe${name[0]?.toUpperCase()}${name.slice(1)}V${spec.version}`;
      if (typeof commands[command] !== 'function') {
        redis.defineCommand(command, { lua: scriptSource(name) });
      }
      names[name] = command;
      const fn = commands[command] as ScriptFn;
      bound[name] = fn.bind(redis);
    }
    this.scripts = bound;
    this.commandNames = names;
  }

  private capOf(block: string): number {
    return isWeakBlock(block) ? this.weakBlockCap : this.blockCap;
  }

  /**
   * Members a block keeps before it becomes a stop word (upsertProfile.lua): its read cap (a
   * block past it is never read again), more for the email blocks that lookups list.
   */
  private storeCapOf(block: string): number {
    if (block.startsWith('pe:') || block.startsWith('ce:')) {
      return Math.max(this.blockCap, LOOKUP_STORE_CAP);
    }
    return this.capOf(block);
  }

  /** The per-block read caps, then the store caps, of the blocks joined. */
  private capArgs(blocks: readonly string[]): number[] {
    return [...blocks.map((b) => this.capOf(b)), ...blocks.map((b) => this.storeCapOf(b))];
  }

  async read(ref: RecordRef): Promise<ReadResult> {
    const k = this.keys;
    const reply = (await this.scripts.readProfile(3, k.ids, k.prof, k.gone, refKey(ref))) as [
      number,
      string?,
      string?,
    ];
    if (reply[0] === -2) return { status: 'gone', winner: reply[1] as string };
    if (reply[0] !== 1) return { status: 'unknown' };
    const { version, record } = decodeStored(reply[2] as string);
    return { status: 'found', indexed: { iid: Number(reply[1]), version, record } };
  }

  /**
   * Writes `record` under `expectedVersion` (0 for a new record), leaving `leaveBlocks` and
   * joining `blocks`; returns the candidates found in the blocks joined (never the record itself).
   */
  async upsert(
    record: StoredRecord,
    expectedVersion: number,
    leaveBlocks: readonly string[],
    blocks: readonly string[],
  ): Promise<UpsertResult> {
    const k = this.keys;
    const keys = [
      k.ids,
      k.prof,
      k.seq,
      k.gone,
      ...leaveBlocks.map((b) => k.block(b)),
      ...blocks.map((b) => k.block(b)),
    ];
    const reply = (await this.scripts.upsertProfile(
      keys.length,
      ...keys,
      record.r,
      expectedVersion,
      encodeRecord(record.r, record.n, record.f),
      leaveBlocks.length,
      this.blockCap,
      this.maxCandidates,
      ...leaveBlocks,
      ...blocks,
      ...this.capArgs(blocks),
    )) as [number, ...unknown[]];
    return this.upsertResult(reply);
  }

  private upsertResult(reply: [number, ...unknown[]]): UpsertResult {
    if (reply[0] === -1) {
      const [, , stored, iid] = reply as [number, number, string | null, string | null];
      if (typeof stored !== 'string' || iid === null)
        return { status: 'conflict', current: undefined };
      const { version, record } = decodeStored(stored);
      return { status: 'conflict', current: { iid: Number(iid), version, record } };
    }
    if (reply[0] === -2) return { status: 'gone', winner: reply[1] as string };
    const [, iid, version, sizes, flat] = reply as [number, string, number, number[], string[]];
    const candidates: Candidate[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      candidates.push({
        iid: Number(flat[i]),
        record: decodeCandidate(flat[i + 1] as string),
      });
    }
    return { status: 'ok', iid: Number(iid), version, blockSizes: sizes, candidates };
  }

  /**
   * New records (expected version 0, no blocks to leave) in one pipeline: each Lua call runs after
   * the previous one, so a record sees the records before it, as with `upsert` one at a time.
   */
  async upsertMany(
    records: readonly { record: StoredRecord; blocks: readonly string[] }[],
  ): Promise<UpsertResult[]> {
    if (records.length === 0) return [];
    const k = this.keys;
    const pipeline = this.redis.pipeline() as unknown as Record<string, ScriptFn> & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    const command = this.commandNames.upsertProfile;
    for (const { record, blocks } of records) {
      const keys = [k.ids, k.prof, k.seq, k.gone, ...blocks.map((b) => k.block(b))];
      void (pipeline[command] as ScriptFn)(
        keys.length,
        ...keys,
        record.r,
        0,
        encodeRecord(record.r, record.n, record.f),
        0,
        this.blockCap,
        this.maxCandidates,
        ...blocks,
        ...this.capArgs(blocks),
      );
    }
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return this.upsertResult(reply as [number, ...unknown[]]);
    });
  }

  /** `claimPairs` for several records in one pipeline. */
  async claimPairsMany(
    claims: readonly { pairs: readonly (readonly [number, number])[]; token: string }[],
  ): Promise<boolean[][]> {
    if (claims.length === 0) return [];
    const pipeline = this.redis.pipeline() as unknown as Record<string, ScriptFn> & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    const command = this.commandNames.claimPairs;
    for (const { pairs, token } of claims) {
      const args = pairs.map(([a, b]) => (a < b ? `${a}:${b}` : `${b}:${a}`));
      void (pipeline[command] as ScriptFn)(2, this.keys.pairs, this.keys.flags, token, ...args);
    }
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return (reply as number[]).map((x) => x === 1);
    });
  }

  /**
   * Removes a record at `expectedVersion` from `blocks` (its stored profile's keys); with
   * `mergedInto`, leaves a tombstone so that late events for it are ignored. False on conflict.
   */
  async remove(
    ref: RecordRef,
    expectedVersion: number,
    blocks: readonly string[],
    mergedInto?: RecordRef,
  ): Promise<boolean> {
    const k = this.keys;
    const keys = [k.ids, k.prof, k.gone, ...blocks.map((b) => k.block(b))];
    const reply = await this.scripts.removeProfile(
      keys.length,
      ...keys,
      refKey(ref),
      expectedVersion,
      mergedInto === undefined ? '' : refKey(mergedInto),
      ...blocks,
    );
    return reply === 1;
  }

  /**
   * Marks pairs as flagged; true for each pair not flagged before, or flagged before by the same
   * `token` (the claiming change retried after a crash before its block was anchored).
   */
  async claimPairs(pairs: readonly (readonly [number, number])[], token = ''): Promise<boolean[]> {
    if (pairs.length === 0) return [];
    const args = pairs.map(([a, b]) => (a < b ? `${a}:${b}` : `${b}:${a}`));
    const reply = (await this.scripts.claimPairs(
      2,
      this.keys.pairs,
      this.keys.flags,
      token,
      ...args,
    )) as number[];
    return reply.map((x) => x === 1);
  }

  /** Members of one block (tests, diagnostics); [] for a stop word (see `isStopWord`). */
  async blockMembers(key: string): Promise<number[]> {
    const members = (await this.redis.hget(this.keys.block(key), key)) ?? '';
    if (members === STOP_WORD) return [];
    return members
      .split(',')
      .filter((m) => m !== '')
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** Whether a block outgrew its store cap and is no longer kept. */
  async isStopWord(key: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.block(key), key)) === STOP_WORD;
  }

  /** Number of records indexed in the space. */
  async size(): Promise<number> {
    return this.redis.hlen(this.keys.ids);
  }
}
