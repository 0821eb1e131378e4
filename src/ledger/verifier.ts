/**
 * ChainVerifier: recomputes a tenant chain from what is stored and says whether it is intact, or
 * the first seq that is not, with a reason code. Pure: it reads through a ChainSource (the Redis
 * store, or an in-memory copy) and checks signed checkpoints with keys the caller trusts — the
 * verifier never takes a key from Redis.
 *
 * What is checked (full verification):
 * - every stored block: its RFC 6962 leaf hash equals the stored tree leaf; it parses; its `seq`,
 *   `tenant`, `v` are right; its `prev` is the previous block's hash; its `recordPrev` is the hash of
 *   the same record's previous block (the customer's own chain);
 * - every stored tree node above the leaves equals the hash of its two stored children, so the
 *   tree proofs are served from is exactly the tree of these blocks;
 * - the head (size, hash) matches the last block, and no block lies beyond it;
 * - the latest signed checkpoint verifies with a trusted key and its root equals the root of the
 *   stored tree at its size; when it does not, checkpoint history is searched for the last good
 *   one, which bounds a consistent rewrite that an attacker without the key cannot re-sign;
 * - an optional trusted state kept outside Redis (size, root) is a prefix of the chain (no rollback).
 *
 * Exactness: a single changed byte anywhere in blocks or tree is reported at the seq it affects —
 * a block at its own seq, a tree node at the first leaf it covers — because each stored node is
 * judged against its stored children, and a parent whose child is already wrong is not blamed.
 */
import { leafHash, nodeHash, toHex, HASH_SIZE, ZERO_HASH_HEX, bytesEqual } from './hash.js';
import { SEGMENT_SIZE, segmentOf } from './keys.js';
import { batchHasher, SCAN_LINKS_STRIDE } from './batch-hash.js';
import type { BatchHasher } from './batch-hash.js';
import { blockAt, firstBlocks, packBlocks } from './packed-blocks.js';
import type { PackedBlocks } from './packed-blocks.js';
import { hashBytes, KeyTable, RecordHeadTable, sameBytes } from './key-table.js';
import { newLinkSpans, scanTail, tailOf } from './links.js';
import {
  assembleProof,
  batchProofRefs,
  consistencyProofRefs,
  inclusionProofRefs,
  rangeRefs,
  rootFromBatchProof,
  rootFromFrontier,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import type { NodeRef } from './merkle.js';
import { openCheckpoint } from './checkpoint.js';
import type { Verifier } from './checkpoint.js';
import type { CheckpointEntry, HeadState } from './store.js';

export type VerifyCode =
  | 'BLOCK_MISSING'
  | 'BLOCK_UNEXPECTED'
  | 'BLOCK_MALFORMED'
  | 'BLOCK_HASH_MISMATCH'
  | 'SEQ_MISMATCH'
  | 'TENANT_MISMATCH'
  | 'PREV_MISMATCH'
  | 'RECORD_LINK_BROKEN'
  | 'TREE_NODE_MISMATCH'
  | 'HEAD_MISMATCH'
  | 'CHECKPOINT_MISSING'
  | 'CHECKPOINT_INVALID'
  | 'CHECKPOINT_ROOT_MISMATCH'
  | 'CHECKPOINT_AHEAD'
  | 'TRUSTED_STATE_MISMATCH';

export interface VerifyOk {
  ok: true;
  tenant: string;
  size: number;
  root: string;
  /** latest signed checkpoint (C2SP signed note) and the size it covers */
  checkpoint?: string;
  checkpointSize: number;
  /** first seq re-verified block by block (0 for a full verification) */
  from: number;
}

export interface VerifyFail {
  ok: false;
  tenant: string;
  size: number;
  firstBadSeq: number;
  code: VerifyCode;
  reason: string;
}

export type VerifyResult = VerifyOk | VerifyFail;

/** Read access to one tenant's stored chain. */
export interface ChainSource {
  readHead(): Promise<HeadState>;
  /** blocks of segment n from offset `start` to the end of the segment */
  readSegment(n: number, start?: number): Promise<Buffer[]>;
  /** stored nodes [start, end) of a tree level, concatenated; shorter when missing */
  readTreeRange(level: number, start: number, end: number): Promise<Buffer>;
  /**
   * Optional: segment n's blocks and the stored nodes of levels 0..topLevel over blocks
   * [start, end), in one round trip (else readSegment and readTreeRange per level are used).
   */
  readSegmentWithTree?(
    n: number,
    start: number,
    end: number,
    topLevel: number,
  ): Promise<{ blocks: PackedBlocks; levels: Buffer[]; release?: () => void }>;
  readNodes(refs: readonly NodeRef[]): Promise<Uint8Array[]>;
  readBlock(seq: number): Promise<Buffer | undefined>;
  /** seqs of a record's blocks as indexed (untrusted: every use is checked) */
  readRecordSeqs(recordKey: string): Promise<number[]>;
  latestCheckpoint(): Promise<CheckpointEntry | undefined>;
  readCheckpoints(min: number, max: number): Promise<CheckpointEntry[]>;
}

/** Keys the caller trusts for this tenant's checkpoints (never read from Redis) and its origin. */
export interface CheckpointTrust {
  verifiers: readonly Verifier[];
  origin: string;
}

export interface TrustedState {
  size: number;
  /** hex root at `size` */
  root: string;
}

export interface VerifyOptions {
  /** verify block by block only from this trusted state on (incremental verification) */
  from?: TrustedState;
  /** a state the chain must extend (rollback detection), kept outside Redis */
  trusted?: TrustedState;
  onProgress?: (done: number, total: number) => void;
  /** segments read ahead while one is hashed */
  prefetch?: number;
}

/** Level of a full segment's root: SEGMENT_SIZE = 2^SEGMENT_LEVEL. */
const SEGMENT_LEVEL = Math.log2(SEGMENT_SIZE);

export class Failure {
  constructor(
    readonly seq: number,
    readonly code: VerifyCode,
    readonly reason: string,
  ) {}
}

function earliest(a: Failure | undefined, b: Failure | undefined): Failure | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.seq < a.seq ? b : a;
}

/**
 * The records of one segment, record j being: its link key (see linkKey; UTF-8 bytes
 * [keyEnds[j-1], keyEnds[j]) of `keyBytes`, its FNV-1a hash `keyHashes[j]`), the seq of its first
 * block in the segment `firstSeqs[j]`, that block's `recordPrev` (bytes [64j, 64j+64) of
 * `firstRecordPrevs`, lower-case hex as stored in the block, or 64 '-' for a value that is not 64
 * hex characters) and the hash of its last block in the segment (the same span of `lastHashes`,
 * hex). Typed arrays only, no strings and no Map: a worker thread transfers them without a copy,
 * and the merge compares and keeps them without making strings.
 */
export interface SegmentRecords {
  keyBytes: Uint8Array;
  keyEnds: Int32Array;
  keyHashes: Uint32Array;
  firstSeqs: Float64Array;
  firstRecordPrevs: Uint8Array;
  lastHashes: Uint8Array;
}

/** The buffers of a SegmentRecords, for a worker thread's transfer list. */
export function segmentRecordBuffers(r: SegmentRecords): ArrayBuffer[] {
  // verifySegment puts all six in one buffer; a transfer list must name each buffer once.
  const buffers = [
    r.keyBytes,
    r.keyEnds,
    r.keyHashes,
    r.firstSeqs,
    r.firstRecordPrevs,
    r.lastHashes,
  ];
  return [...new Set(buffers.map((a) => a.buffer as ArrayBuffer))];
}

/**
 * The key the verifier tells records apart by: the record's `id` and `object` as JSON strings,
 * exactly the bytes `"<id>","object":"<object>"` of a block in the appender's shape (whose ids and
 * objects need no escaping), so the fast path takes it from the block in one slice. JSON strings
 * delimit themselves: two different records never share a key.
 */
export function linkKey(id: unknown, object: unknown): string {
  return `${JSON.stringify(String(id))},"object":${JSON.stringify(String(object))}`;
}

/** The record key (`<object>/<id>`) of the link key in `bytes[start, end)`. */
function keyName(bytes: Uint8Array, start: number, end: number): string {
  return recordKeyOfLinkKey(Buffer.from(bytes.subarray(start, end)).toString('utf8'));
}

/** `<object>/<id>`, the record key of the store and of messages, for a link key. */
export function recordKeyOfLinkKey(key: string): string {
  const r = JSON.parse(`{"id":${key}}`) as { id: string; object: string };
  return `${r.object}/${r.id}`;
}

export interface SegmentResult {
  failure?: Failure;
  lastHash: string;
  /** records in this segment, in a compact form that is cheap to pass between threads */
  records: SegmentRecords;
  firstPrev: string;
  /** stored root node of a full segment and whether it is itself inconsistent */
  top?: { hash: Uint8Array; flagged: boolean };
}

interface ParsedBlock {
  v?: unknown;
  seq?: unknown;
  tenant?: unknown;
  prev?: unknown;
  recordPrev?: unknown;
  record?: { object?: unknown; id?: unknown };
}

/**
 * The link members of a stored block as JSON.parse would read them: from the bytes directly when
 * the block is in our appender's shape (links.ts), else by parsing (from the end of `fields` when
 * it can be found, else the whole block). Throws for bytes that are not JSON.
 */
export function parseLinks(bytes: Buffer): ParsedBlock {
  const tail = tailOf(bytes);
  if (tail < 0) return JSON.parse(bytes.toString('utf8')) as ParsedBlock;
  const l = SPANS;
  if (scanTail(bytes, tail, l)) {
    return {
      v: 1,
      prev: bytes.toString('latin1', l.prev, l.prev + 64),
      record: {
        id: bytes.toString('latin1', l.idStart, l.idEnd),
        object: bytes.toString('latin1', l.objectStart, l.objectEnd),
      },
      recordPrev: bytes.toString('latin1', l.recordPrev, l.recordPrev + 64),
      seq: l.seq,
      tenant: bytes.toString('latin1', l.tenantStart, l.tenantEnd),
    };
  }
  return JSON.parse('{' + bytes.toString('utf8', tail)) as ParsedBlock;
}

const SPANS = newLinkSpans();
/** What a `recordPrev` that is not 64 lower-case hex characters is kept as: equal to no hash. */
const NOT_A_LINK = Buffer.from('-'.repeat(64), 'latin1');
const HEX64 = /^[0-9a-f]{64}$/;

/** Copies `len` bytes (a loop: cheaper than Buffer#copy's checks for 64 bytes). */
function copyBytes(
  from: Uint8Array,
  fromStart: number,
  to: Uint8Array,
  toStart: number,
  len: number,
) {
  for (let i = 0; i < len; i++) to[toStart + i] = from[fromStart + i] as number;
}

/**
 * A segment's records while it is checked: record r's link key (in `keys`), first seq, the index
 * in the segment of its last block so far, and its first block's `recordPrev`, written straight
 * into the output.
 */
class SegmentRecordTable {
  readonly keys: KeyTable;
  readonly firstSeqs: Float64Array;
  readonly last: Int32Array;
  readonly firstRecordPrevs: Uint8Array;

  constructor(capacity: number) {
    this.keys = new KeyTable(capacity);
    this.firstSeqs = new Float64Array(capacity);
    this.last = new Int32Array(capacity);
    this.firstRecordPrevs = new Uint8Array(capacity * 64);
  }

  /**
   * Adds the record whose key is `key[start, end)`, first seen at block i (seq); its recordPrev
   * is 64 bytes of `prevBytes` from `at`.
   */
  add(
    key: Uint8Array,
    start: number,
    end: number,
    hash: number,
    seq: number,
    i: number,
    prevBytes: Uint8Array,
    at: number,
  ): void {
    const r = this.keys.add(key, start, end, hash);
    this.firstSeqs[r] = seq;
    this.last[r] = i;
    copyBytes(prevBytes, at, this.firstRecordPrevs, r * 64, 64);
  }

  /**
   * The segment's records for the merge, all six arrays in one ArrayBuffer (one transfer from a
   * worker thread): firstSeqs first (8-byte aligned), then the 4-byte arrays, then the bytes.
   */
  records(leavesHexBytes: Uint8Array): SegmentRecords {
    const n = this.keys.size;
    const keys = this.keys.export();
    const buffer = new ArrayBuffer(n * (8 + 4 + 4 + 64 + 64) + keys.bytes.length);
    let at = 0;
    const take = <T>(
      make: (buffer: ArrayBuffer, offset: number, length: number) => T,
      length: number,
      size: number,
    ): T => {
      const view = make(buffer, at, length);
      at += length * size;
      return view;
    };
    const firstSeqs = take((b, o, l) => new Float64Array(b, o, l), n, 8);
    const keyEnds = take((b, o, l) => new Int32Array(b, o, l), n, 4);
    const keyHashes = take((b, o, l) => new Uint32Array(b, o, l), n, 4);
    const firstRecordPrevs = take((b, o, l) => new Uint8Array(b, o, l), n * 64, 1);
    const lastHashes = take((b, o, l) => new Uint8Array(b, o, l), n * 64, 1);
    const keyBytes = take((b, o, l) => new Uint8Array(b, o, l), keys.bytes.length, 1);
    firstSeqs.set(this.firstSeqs.subarray(0, n));
    keyEnds.set(keys.ends);
    keyHashes.set(keys.hashes);
    firstRecordPrevs.set(this.firstRecordPrevs.subarray(0, n * 64));
    for (let r = 0; r < n; r++) {
      copyBytes(leavesHexBytes, (this.last[r] as number) * 64, lastHashes, r * 64, 64);
    }
    keyBytes.set(keys.bytes);
    return { keyBytes, keyEnds, keyHashes, firstSeqs, firstRecordPrevs, lastHashes };
  }
}

/**
 * Buffers verifySegment reuses from one segment to the next (it runs to the end before another
 * call can start): a segment's scratch is ~200 KB, which as new external memory per segment
 * would bring on garbage collections. Nothing from them outlives the call: results are copies.
 */
class Scratch {
  private readonly buffers = new Map<string, Buffer>();
  private spanArray = new Float64Array(0);

  /** A buffer of exactly `size` bytes (contents undefined). */
  buffer(name: string, size: number): Buffer {
    let b = this.buffers.get(name);
    if (!b || b.length < size) {
      b = Buffer.allocUnsafeSlow(Math.max(size, 2 * (b?.length ?? 0)));
      this.buffers.set(name, b);
    }
    return b.subarray(0, size);
  }

  spans(size: number): Float64Array {
    if (this.spanArray.length < size) this.spanArray = new Float64Array(size);
    return this.spanArray.subarray(0, size);
  }
}

const scratch = new Scratch();
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** Lower-case hex of `bytes` written into `out` (twice as long); returns `out`. */
function hexInto(bytes: Uint8Array, out: Buffer): Buffer {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    out[2 * i] = HEX_DIGITS[b >> 4] as number;
    out[2 * i + 1] = HEX_DIGITS[b & 15] as number;
  }
  return out;
}

/**
 * Checks one segment on its own: blocks against stored leaves and each other, stored nodes of
 * levels 1..SEGMENT_LEVEL against their stored children. `levels[L]` holds the stored nodes of
 * level L from index start/2^L on.
 *
 * A block's hash is checked against its stored leaf first; after that the stored leaf IS its
 * hash, so every link (`prev`, `recordPrev`) is compared in place with the hex of a stored leaf
 * and no per-block hash string is made. A block not in the appender's shape, or whose links do
 * not match, goes the general way (parseLinks), which names the exact failure.
 */
export function verifySegment(
  tenant: string,
  start: number,
  count: number,
  blocks: PackedBlocks,
  levels: readonly Buffer[],
  hasher: BatchHasher = batchHasher,
): SegmentResult {
  let failure: Failure | undefined;
  const stored = blocks.ends.length;
  const n = Math.min(count, stored);
  const segment = firstBlocks(blocks, n);
  const data = segment.data;
  const records = new SegmentRecordTable(n);
  let firstPrev = '';
  const leafFlags = new Uint8Array(count);
  const leaves = levels[0] ?? Buffer.alloc(0);
  // Every block's hash in one call (native when built: batch-hash.ts), then one comparison with
  // the stored leaves; block by block only to find where they first differ.
  const computed = scratch.buffer('computed', n * HASH_SIZE);
  hasher.leafHashesPacked(data, segment.ends, computed);
  /** the first block whose hash is not its stored leaf (n if none) */
  let firstBadLeaf = n;
  if (leaves.length < n * HASH_SIZE || !computed.equals(leaves.subarray(0, n * HASH_SIZE))) {
    firstBadLeaf = 0;
    while (
      firstBadLeaf < n &&
      leaves.length >= (firstBadLeaf + 1) * HASH_SIZE &&
      sameBytes(computed, firstBadLeaf * HASH_SIZE, leaves, firstBadLeaf * HASH_SIZE, HASH_SIZE)
    ) {
      firstBadLeaf++;
    }
  }
  // The link members of every block in our appender's shape, found in one call (links.ts).
  const spans = scratch.spans(n * SCAN_LINKS_STRIDE);
  hasher.scanLinks(data, segment.ends, spans);
  const leavesHexBytes = hexInto(leaves, scratch.buffer('hex', leaves.length * 2));
  const tenantBytes = Buffer.from(tenant, 'latin1');
  /** blocks [0, stoppedAt) passed */
  let stoppedAt = n;
  for (let i = 0; i < n; i++) {
    const seq = start + i;
    if (i === firstBadLeaf) {
      leafFlags[i] = 1;
      failure = new Failure(
        seq,
        'BLOCK_HASH_MISMATCH',
        `block ${seq} does not hash to the stored tree leaf`,
      );
      stoppedAt = i;
      break;
    }
    // Fast path: the appender's shape, right seq and tenant, prev = the previous stored leaf.
    // `prev` is not checked for hex here: it must equal the hex of a stored leaf, or the block
    // goes the general way.
    const o = i * SCAN_LINKS_STRIDE;
    const prev = spans[o + 1] as number;
    const tenantStart = spans[o + 8] as number;
    if (
      spans[o] === 1 &&
      spans[o + 7] === seq &&
      (spans[o + 9] as number) - tenantStart === tenantBytes.length &&
      sameBytes(data, tenantStart, tenantBytes, 0, tenantBytes.length) &&
      (i === 0 || sameBytes(data, prev, leavesHexBytes, (i - 1) * 64, 64))
    ) {
      // Compared with the previous segment's last hash (hex) by the caller: no hex check needed.
      if (i === 0) firstPrev = data.toString('latin1', prev, prev + 64);
      // `"<id>","object":"<object>"`: the record's link key, where it lies in the block.
      const keyStart = (spans[o + 2] as number) - 1;
      const keyEnd = (spans[o + 5] as number) + 1;
      const recordPrev = spans[o + 6] as number;
      const hash = hashBytes(data, keyStart, keyEnd);
      const r = records.keys.find(data, keyStart, keyEnd, hash);
      if (r < 0) {
        records.add(data, keyStart, keyEnd, hash, seq, i, data, recordPrev);
        continue;
      }
      if (sameBytes(data, recordPrev, leavesHexBytes, (records.last[r] as number) * 64, 64)) {
        records.last[r] = i;
        continue;
      }
    }
    const checked = checkBlockLinks(tenant, seq, i, blockAt(segment, i), leavesHexBytes, records);
    if (checked instanceof Failure) {
      failure = checked;
      stoppedAt = i;
      break;
    }
    if (i === 0) firstPrev = checked;
  }
  if (!failure && stored < count) {
    failure = new Failure(start + stored, 'BLOCK_MISSING', `block ${start + stored} is missing`);
  }

  // Tree levels 1..SEGMENT_LEVEL inside the segment: stored node vs hash of stored children.
  let childFlags = leafFlags;
  let childNodes: Uint8Array = leaves;
  let top: SegmentResult['top'];
  for (let level = 1; level <= SEGMENT_LEVEL; level++) {
    const width = Math.floor(count / 2 ** level);
    const stored = levels[level] ?? Buffer.alloc(0);
    const flags = new Uint8Array(width);
    // The nodes that have both children and a stored value, hashed in one call.
    const hashable = Math.min(
      width,
      Math.floor(stored.length / HASH_SIZE),
      Math.floor(childNodes.length / (2 * HASH_SIZE)),
    );
    const nodes = scratch.buffer('nodes', hashable * HASH_SIZE);
    hasher.nodeHashes(childNodes.subarray(0, 2 * hashable * HASH_SIZE), nodes);
    const allGood =
      hashable === width &&
      !childFlags.includes(1) &&
      nodes.equals(stored.subarray(0, width * HASH_SIZE));
    for (let j = 0; j < width && !allGood; j++) {
      const explained = childFlags[2 * j] === 1 || childFlags[2 * j + 1] === 1;
      const good =
        j < hashable && sameBytes(nodes, j * HASH_SIZE, stored, j * HASH_SIZE, HASH_SIZE);
      if (!good) {
        flags[j] = 1;
        if (!explained) {
          const seq = start + j * 2 ** level;
          failure = earliest(
            failure,
            new Failure(
              seq,
              'TREE_NODE_MISMATCH',
              `stored tree node (level ${level}) over block ${seq} is wrong`,
            ),
          );
        }
      } else if (explained) {
        flags[j] = 1;
      }
    }
    if (level === SEGMENT_LEVEL && width === 1) {
      // A copy: a view would carry its whole (shared) reply buffer to the main thread.
      top = { hash: new Uint8Array(stored.subarray(0, HASH_SIZE)), flagged: flags[0] === 1 };
    }
    childFlags = flags;
    childNodes = stored;
  }
  const lastHash =
    stoppedAt > 0 ? leavesHexBytes.toString('latin1', (stoppedAt - 1) * 64, stoppedAt * 64) : '';
  const result: SegmentResult = { lastHash, records: records.records(leavesHexBytes), firstPrev };
  if (failure) result.failure = failure;
  if (top) result.top = top;
  return result;
}

/**
 * The general check of block `i` (whose hash matched its stored leaf): parse its links and
 * compare them; returns the failure, or the block's `prev` after recording its record link.
 */
function checkBlockLinks(
  tenant: string,
  seq: number,
  i: number,
  bytes: Buffer,
  leavesHexBytes: Buffer,
  records: SegmentRecordTable,
): Failure | string {
  let block: ParsedBlock;
  try {
    block = parseLinks(bytes);
  } catch {
    return new Failure(seq, 'BLOCK_MALFORMED', `block ${seq} is not JSON`);
  }
  if (
    block === null ||
    typeof block !== 'object' ||
    block.v !== 1 ||
    typeof block.record !== 'object' ||
    block.record === null
  ) {
    return new Failure(seq, 'BLOCK_MALFORMED', `block ${seq} is not a v1 block`);
  }
  if (block.seq !== seq) {
    return new Failure(seq, 'SEQ_MISMATCH', `block at ${seq} says seq ${String(block.seq)}`);
  }
  if (block.tenant !== tenant) {
    return new Failure(seq, 'TENANT_MISMATCH', `block ${seq} belongs to another tenant`);
  }
  if (typeof block.prev !== 'string' || typeof block.recordPrev !== 'string') {
    return new Failure(seq, 'BLOCK_MALFORMED', `block ${seq} lacks prev/recordPrev`);
  }
  if (i > 0 && block.prev !== leavesHexBytes.toString('latin1', (i - 1) * 64, i * 64)) {
    return new Failure(seq, 'PREV_MISMATCH', `block ${seq} does not link to block ${seq - 1}`);
  }
  const key = linkKey(block.record.id, block.record.object);
  const keyBytes = Buffer.from(key, 'utf8');
  const hash = hashBytes(keyBytes, 0, keyBytes.length);
  const link = HEX64.test(block.recordPrev) ? Buffer.from(block.recordPrev, 'latin1') : NOT_A_LINK;
  const r = records.keys.find(keyBytes, 0, keyBytes.length, hash);
  if (r >= 0) {
    if (!sameBytes(link, 0, leavesHexBytes, (records.last[r] as number) * 64, 64)) {
      return new Failure(
        seq,
        'RECORD_LINK_BROKEN',
        `block ${seq} does not link to the previous block of ${recordKeyOfLinkKey(key)}`,
      );
    }
    records.last[r] = i;
  } else {
    records.add(keyBytes, 0, keyBytes.length, hash, seq, i, link, 0);
  }
  return block.prev;
}

/** Reads one segment's blocks and the stored tree nodes over it (levels 0..SEGMENT_LEVEL). */
export async function loadSegment(
  source: Pick<ChainSource, 'readSegment' | 'readTreeRange' | 'readSegmentWithTree'>,
  s: number,
  size: number,
): Promise<{
  blocks: PackedBlocks;
  levels: Buffer[];
  start: number;
  count: number;
  /** gives the read's buffers back for reuse, once nothing uses them (optional) */
  release?: () => void;
}> {
  const start = s * SEGMENT_SIZE;
  const end = Math.min(size, start + SEGMENT_SIZE);
  if (source.readSegmentWithTree) {
    const read = await source.readSegmentWithTree(s, start, end, SEGMENT_LEVEL);
    return { ...read, start, count: Math.max(0, end - start) };
  }
  const blocksP = source.readSegment(s, 0);
  const levelsP: Promise<Buffer>[] = [];
  for (let level = 0; level <= SEGMENT_LEVEL; level++) {
    levelsP.push(source.readTreeRange(level, start / 2 ** level, Math.floor(end / 2 ** level)));
  }
  const [blocks, levels] = await Promise.all([blocksP, Promise.all(levelsP)]);
  return { blocks: packBlocks(blocks), levels, start, count: Math.max(0, end - start) };
}

/** The result of checking one segment, wherever it was checked. */
export interface SegmentCheck {
  blocksLength: number;
  result: SegmentResult;
}

/**
 * Checks segments: in this thread by default, or in a pool of worker threads (verify-pool.ts) so
 * that hashing and parsing use every core. Results are merged in seq order either way.
 */
export interface SegmentChecker {
  /** segments requested ahead of the one being merged */
  prefetch: number;
  check(s: number, size: number): Promise<SegmentCheck>;
}

/** 16 int32 words of a record's 64 hex bytes (arrays made by verifySegment start on a word). */
function words(bytes: Uint8Array): Int32Array {
  return bytes.byteOffset % 4 === 0
    ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2)
    : new Int32Array(bytes.slice().buffer);
}

/** Whether 16 words of `link` from word `at` equal `hash`. */
function sameWords(link: Int32Array, at: number, hash: Int32Array): boolean {
  for (let i = 0; i < 16; i++) if (hash[i] !== link[at + i]) return false;
  return true;
}

const ZERO_HASH_WORDS = words(new Uint8Array(Buffer.from(ZERO_HASH_HEX, 'latin1')));

export class ChainVerifier {
  constructor(
    private readonly tenant: string,
    private readonly source: ChainSource,
    private readonly trust: CheckpointTrust,
    private readonly checker?: SegmentChecker,
    /** the segment hasher of in-thread checks (tests pin the node:crypto one) */
    private readonly hasher: BatchHasher = batchHasher,
  ) {}

  async verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    const head = await this.source.readHead();
    const size = head.size;
    const fail = (f: Failure): VerifyFail => ({
      ok: false,
      tenant: this.tenant,
      size,
      firstBadSeq: f.seq,
      code: f.code,
      reason: f.reason,
    });

    const from = options.from && options.from.size <= size ? options.from : undefined;
    if (options.from && !from) {
      return fail(
        new Failure(
          size,
          'TRUSTED_STATE_MISMATCH',
          `chain has ${size} blocks, fewer than the ${options.from.size} already verified`,
        ),
      );
    }
    const firstSeg = from ? segmentOf(from.size === size ? Math.max(0, size - 1) : from.size) : 0;
    const segStart = firstSeg * SEGMENT_SIZE;
    const segCount = Math.ceil(size / SEGMENT_SIZE);

    let failure: Failure | undefined;
    let prevHash = ZERO_HASH_HEX;
    const recordHeads = new RecordHeadTable();
    const earlierRecords: { key: string; firstSeq: number; firstRecordPrev: string }[] = [];
    if (segStart > 0) {
      const f = await this.startFrom(segStart, from as TrustedState);
      if (typeof f !== 'string') return fail(f);
      prevHash = f;
    }

    const tops: { hash: Uint8Array; flagged: boolean }[] = [];
    const checker = this.checker ?? this.inThreadChecker();
    const prefetch = Math.max(1, options.prefetch ?? checker.prefetch);
    const inflight: Promise<SegmentCheck>[] = [];
    const check = (s: number) => {
      const read = checker.check(s, size);
      // Segments read ahead may fail after an earlier one has (Redis gone): only the awaited one
      // reports; the others must not become unhandled rejections (they would end the process).
      read.catch(() => undefined);
      return read;
    };
    for (let s = firstSeg; s < Math.min(segCount, firstSeg + prefetch); s++)
      inflight.push(check(s));
    for (let s = firstSeg; s < segCount; s++) {
      const { blocksLength, result: r } = await (inflight.shift() as Promise<SegmentCheck>);
      if (s + prefetch < segCount) inflight.push(check(s + prefetch));
      const start = s * SEGMENT_SIZE;
      const count = Math.min(SEGMENT_SIZE, size - start);
      if (blocksLength > count) {
        failure = earliest(
          failure,
          new Failure(size, 'BLOCK_UNEXPECTED', `a block lies beyond the head (size ${size})`),
        );
      }
      if (
        count > 0 &&
        blocksLength > 0 &&
        r.firstPrev !== prevHash &&
        !(r.failure && r.failure.seq === start)
      ) {
        failure = earliest(
          failure,
          new Failure(start, 'PREV_MISMATCH', `block ${start} does not link to block ${start - 1}`),
        );
      }
      const { keyBytes, keyEnds, keyHashes, firstSeqs, firstRecordPrevs } = r.records;
      const links = words(firstRecordPrevs);
      const lasts = words(r.records.lastHashes);
      for (let j = 0; j < keyEnds.length; j++) {
        const keyStart = j === 0 ? 0 : (keyEnds[j - 1] as number);
        const keyEnd = keyEnds[j] as number;
        const hash = keyHashes[j] as number;
        const at = j * 16;
        let slot = recordHeads.find(keyBytes, keyStart, keyEnd, hash);
        if (slot >= 0) {
          if (!recordHeads.headIs(slot, links, at)) {
            const firstSeq = firstSeqs[j] as number;
            failure = earliest(
              failure,
              new Failure(
                firstSeq,
                'RECORD_LINK_BROKEN',
                `block ${firstSeq} does not link to the previous block of ${keyName(keyBytes, keyStart, keyEnd)}`,
              ),
            );
          }
        } else {
          if (!sameWords(links, at, ZERO_HASH_WORDS)) {
            const firstSeq = firstSeqs[j] as number;
            if (segStart > 0) {
              earlierRecords.push({
                key: keyName(keyBytes, keyStart, keyEnd),
                firstSeq,
                firstRecordPrev: Buffer.from(
                  firstRecordPrevs.subarray(j * 64, j * 64 + 64),
                ).toString('latin1'),
              });
            } else {
              failure = earliest(
                failure,
                new Failure(
                  firstSeq,
                  'RECORD_LINK_BROKEN',
                  `block ${firstSeq} links to a missing earlier block of ${keyName(keyBytes, keyStart, keyEnd)}`,
                ),
              );
            }
          }
          slot = recordHeads.add(keyBytes, keyStart, keyEnd, hash);
        }
        recordHeads.setHead(slot, lasts, at);
      }
      failure = earliest(failure, r.failure);
      if (r.top) tops.push(r.top);
      prevHash = r.lastHash;
      options.onProgress?.(start + count, size);
      if (failure) break;
    }
    // Drain reads still in flight so that no promise is left unobserved.
    await Promise.allSettled(inflight);

    if (!failure) failure = await this.checkEarlierRecords(earlierRecords, from);
    failure = earliest(failure, await this.checkUpperTree(firstSeg, size, tops));
    if (!failure && size > 0 && prevHash !== head.hash) {
      failure = new Failure(
        size - 1,
        'HEAD_MISMATCH',
        'the stored head does not name the last block',
      );
    }
    if (!failure && size === 0 && head.hash !== '') {
      failure = new Failure(0, 'HEAD_MISMATCH', 'empty chain with a head hash');
    }
    if (!failure) {
      const extra = await this.source.readSegment(segCount, 0);
      if (extra.length > 0 && segCount * SEGMENT_SIZE >= size) {
        failure = new Failure(
          size,
          'BLOCK_UNEXPECTED',
          `a block lies beyond the head (size ${size})`,
        );
      }
    }
    if (failure) return fail(failure);

    const root = await this.rootAt(size);
    if (from && from.size > 0) {
      const f = await this.checkConsistency(from, size, root, 'TRUSTED_STATE_MISMATCH');
      if (f) return fail(f);
    }
    if (options.trusted && options.trusted.size > 0) {
      if (options.trusted.size > size) {
        return fail(
          new Failure(
            size,
            'TRUSTED_STATE_MISMATCH',
            `chain has ${size} blocks, fewer than the ${options.trusted.size} seen before (rollback)`,
          ),
        );
      }
      const f = await this.checkConsistency(options.trusted, size, root, 'TRUSTED_STATE_MISMATCH');
      if (f) return fail(f);
    }
    const cp = await this.checkCheckpoints(size);
    if (cp instanceof Failure) return fail(cp);
    const ok: VerifyOk = {
      ok: true,
      tenant: this.tenant,
      size,
      root: toHex(root),
      checkpointSize: cp?.size ?? 0,
      from: segStart,
    };
    if (cp) ok.checkpoint = cp.note;
    return ok;
  }

  private inThreadChecker(): SegmentChecker {
    return {
      prefetch: 4,
      check: async (s, size) => {
        const { blocks, levels, start, count, release } = await loadSegment(this.source, s, size);
        const result = verifySegment(this.tenant, start, count, blocks, levels, this.hasher);
        const blocksLength = blocks.ends.length;
        // The result holds copies only: the read's buffers can be reused.
        release?.();
        return { blocksLength, result };
      },
    };
  }

  /** Nodes above segment level: each stored node vs the hash of its stored children. */
  private async checkUpperTree(
    firstSeg: number,
    size: number,
    tops: { hash: Uint8Array; flagged: boolean }[],
  ): Promise<Failure | undefined> {
    const fullSegs = Math.floor(size / SEGMENT_SIZE);
    if (fullSegs < 2) return undefined;
    // Level-10 nodes of segments not scanned (incremental mode, or after a failure) come from storage.
    const stored10 = await this.source.readTreeRange(SEGMENT_LEVEL, 0, fullSegs);
    let children: Uint8Array[] = [];
    let flags: boolean[] = [];
    for (let i = 0; i < fullSegs; i++) {
      const scanned = i >= firstSeg ? tops[i - firstSeg] : undefined;
      children.push(scanned?.hash ?? stored10.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
      flags.push(scanned?.flagged ?? false);
    }
    let failure: Failure | undefined;
    for (let level = SEGMENT_LEVEL + 1; children.length >= 2; level++) {
      const width = Math.floor(children.length / 2);
      const stored = await this.source.readTreeRange(level, 0, width);
      const next: Uint8Array[] = [];
      const nextFlags: boolean[] = [];
      for (let j = 0; j < width; j++) {
        const node = stored.subarray(j * HASH_SIZE, (j + 1) * HASH_SIZE);
        const explained = (flags[2 * j] ?? false) || (flags[2 * j + 1] ?? false);
        const good =
          node.length === HASH_SIZE &&
          bytesEqual(
            node,
            nodeHash(children[2 * j] as Uint8Array, children[2 * j + 1] as Uint8Array),
          );
        if (!good && !explained) {
          const seq = j * 2 ** level;
          failure = earliest(
            failure,
            new Failure(
              seq,
              'TREE_NODE_MISMATCH',
              `stored tree node (level ${level}) over block ${seq} is wrong`,
            ),
          );
        }
        next.push(node);
        nextFlags.push(!good || explained);
      }
      children = next;
      flags = nextFlags;
    }
    return failure;
  }

  /** Root of the stored tree at `size`, from the stored nodes that decompose [0, size). */
  async rootAt(size: number): Promise<Uint8Array> {
    return rootFromFrontier(await this.source.readNodes(rangeRefs(0, size)));
  }

  /** Incremental start: the hash of block segStart-1, proven included under the trusted root. */
  private async startFrom(segStart: number, from: TrustedState): Promise<string | Failure> {
    const seq = segStart - 1;
    const proven = await this.provenBlockHash(seq, from);
    return (
      proven ??
      new Failure(seq, 'TRUSTED_STATE_MISMATCH', `block ${seq} is not in the tree already verified`)
    );
  }

  /** Hash of block `seq` if its stored bytes are included at `seq` under the trusted root. */
  private async provenBlockHash(seq: number, trusted: TrustedState): Promise<string | undefined> {
    return (await this.provenBlockHashes([seq], trusted))[0];
  }

  /**
   * Hashes of blocks `seqs` whose stored bytes are included at their seq under the trusted root
   * (undefined for any that are not), reading all blocks and all proof nodes in two round trips.
   * A batch proof of k blocks spread over a tree of n reads about k·log2(n/k) stored nodes, each
   * once, and hashes each shared node once (k separate proofs: k·log2(n) of each).
   */
  private async provenBlockHashes(
    seqs: readonly number[],
    trusted: TrustedState,
  ): Promise<(string | undefined)[]> {
    // A seq that is no block under the trusted root (named by a tampered record index: past the
    // trusted size, negative, fractional) has nothing to prove and is not read.
    const blocks = await Promise.all(
      seqs.map((seq) =>
        Number.isSafeInteger(seq) && seq >= 0 && seq < trusted.size
          ? this.source.readBlock(seq)
          : Promise.resolve(undefined),
      ),
    );
    const hashes = blocks.map((bytes) => (bytes ? leafHash(bytes) : undefined));
    const root = Buffer.from(trusted.root, 'hex');
    // One batch proof for all of them (each stored node read once); only if it fails is each
    // block proven on its own, to tell which ones are not in the trusted tree.
    const present = [...new Set(seqs.filter((_, i) => hashes[i] !== undefined))].sort(
      (a, b) => a - b,
    );
    const hashOf = new Map(seqs.map((seq, i) => [seq, hashes[i]]));
    try {
      const refs = batchProofRefs(present, trusted.size);
      const nodes = await this.source.readNodes(refs);
      const got = rootFromBatchProof(
        present,
        present.map((seq) => hashOf.get(seq) as Uint8Array),
        trusted.size,
        nodes,
      );
      if (bytesEqual(got, root)) return hashes.map((h) => (h ? toHex(h) : undefined));
    } catch {
      // a stored node is missing or malformed: fall through to the separate proofs
    }
    return this.provenEach(seqs, hashes, trusted.size, root);
  }

  /** provenBlockHashes block by block: one inclusion proof each. */
  private async provenEach(
    seqs: readonly number[],
    hashes: readonly (Uint8Array | undefined)[],
    size: number,
    root: Uint8Array,
  ): Promise<(string | undefined)[]> {
    const plans = seqs.map((seq, i) => (hashes[i] ? inclusionProofRefs(seq, size) : []));
    const unique = new Map<string, NodeRef>();
    for (const ref of plans.flat(2)) unique.set(`${ref.level}/${ref.index}`, ref);
    const refs = [...unique.values()];
    const nodes = await this.source.readNodes(refs);
    const table = new Map(
      refs.map((ref, i) => [`${ref.level}/${ref.index}`, nodes[i] as Uint8Array]),
    );
    return seqs.map((seq, i) => {
      const hash = hashes[i];
      if (!hash) return undefined;
      try {
        const proof = assembleProof(
          plans[i] as NodeRef[][],
          (ref) => table.get(`${ref.level}/${ref.index}`) as Uint8Array,
        );
        verifyInclusion(hash, seq, size, proof, root);
        return toHex(hash);
      } catch {
        return undefined;
      }
    });
  }

  /** Records whose previous block predates the re-verified range (incremental mode). */
  private async checkEarlierRecords(
    records: { key: string; firstSeq: number; firstRecordPrev: string }[],
    from: TrustedState | undefined,
  ): Promise<Failure | undefined> {
    if (records.length === 0) return undefined;
    const seqLists = await Promise.all(records.map((r) => this.source.readRecordSeqs(r.key)));
    const priors = records.map((r, i) => (seqLists[i] ?? []).filter((s) => s < r.firstSeq).at(-1));
    const known = priors.filter((p): p is number => p !== undefined);
    const proven = from ? await this.provenBlockHashes(known, from) : [];
    const bySeq = new Map(known.map((seq, i) => [seq, proven[i]]));
    let failure: Failure | undefined;
    records.forEach((rec, i) => {
      const prior = priors[i];
      const hash = prior === undefined ? undefined : bySeq.get(prior);
      if (hash !== rec.firstRecordPrev) {
        failure = earliest(
          failure,
          new Failure(
            rec.firstSeq,
            'RECORD_LINK_BROKEN',
            `block ${rec.firstSeq} does not link to the previous block of ${rec.key}`,
          ),
        );
      }
    });
    return failure;
  }

  private async checkConsistency(
    old: TrustedState,
    size: number,
    root: Uint8Array,
    code: VerifyCode,
  ): Promise<Failure | undefined> {
    const plan = consistencyProofRefs(old.size, size);
    const flat = plan.flat();
    const nodes = await this.source.readNodes(flat);
    const table = new Map(
      flat.map((ref, i) => [`${ref.level}/${ref.index}`, nodes[i] as Uint8Array]),
    );
    try {
      const proof = assembleProof(
        plan,
        (ref) => table.get(`${ref.level}/${ref.index}`) as Uint8Array,
      );
      verifyConsistency(old.size, size, proof, Buffer.from(old.root, 'hex'), root);
      return undefined;
    } catch {
      return new Failure(
        old.size,
        code,
        `the chain is not an extension of the tree of size ${old.size} verified before`,
      );
    }
  }

  /**
   * The latest checkpoint must be signed by a trusted key and match the stored tree. If it does
   * not, the history is searched (rewrites break every checkpoint after the first changed block)
   * for the last good checkpoint: everything after it is suspect.
   */
  private async checkCheckpoints(size: number): Promise<Failure | CheckpointEntry | undefined> {
    const latest = await this.source.latestCheckpoint();
    if (!latest) {
      return size === 0
        ? undefined
        : new Failure(0, 'CHECKPOINT_MISSING', 'no signed checkpoint covers the chain');
    }
    const first = await this.judge(latest, size);
    if (!first) return latest;
    const history = await this.source.readCheckpoints(0, Number.MAX_SAFE_INTEGER);
    let lo = 0;
    let hi = history.length - 1; // history[hi] is bad
    let lastGood: CheckpointEntry | undefined;
    let firstBad = first;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const entry = history[mid] as CheckpointEntry;
      const bad = await this.judge(entry, size);
      if (bad) {
        firstBad = bad;
        hi = mid - 1;
      } else {
        lastGood = entry;
        lo = mid + 1;
      }
    }
    return new Failure(lastGood?.size ?? 0, firstBad.code, firstBad.reason);
  }

  private async judge(entry: CheckpointEntry, size: number): Promise<Failure | undefined> {
    let opened;
    try {
      opened = openCheckpoint(entry.note, this.trust.verifiers, this.trust.origin);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return new Failure(
        entry.size,
        'CHECKPOINT_INVALID',
        `checkpoint at size ${entry.size}: ${reason}`,
      );
    }
    if (opened.size !== entry.size) {
      return new Failure(
        entry.size,
        'CHECKPOINT_INVALID',
        `checkpoint filed at size ${entry.size} says ${opened.size}`,
      );
    }
    if (opened.size > size) {
      return new Failure(
        size,
        'CHECKPOINT_AHEAD',
        `a checkpoint covers ${opened.size} blocks, the chain has ${size}`,
      );
    }
    const root = await this.rootAt(opened.size);
    if (!bytesEqual(root, opened.rootHash)) {
      return new Failure(
        entry.size,
        'CHECKPOINT_ROOT_MISMATCH',
        `the stored tree at size ${opened.size} is not the signed one`,
      );
    }
    return undefined;
  }
}
