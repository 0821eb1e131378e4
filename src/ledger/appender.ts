/**
 * ChainAppender: appends batches to one tenant's chain with compare-and-set, and pipelines them.
 *
 * A batch is hashed locally on top of the head the appender predicts (the head its previous,
 * still in-flight batch will produce), then sent to the appendBlocks Lua script, which writes it
 * only if the stored head is the one it was built on. So while Redis runs batch k, Node hashes
 * batch k+1: throughput is the slower of the two, not their sum. Whenever a batch is refused
 * (another writer moved the head, or an idempotency key is already anchored) the prediction is
 * dropped, the head is read again and the refused batch is rebuilt; batches built on top of it are
 * refused in turn by the same check, so the chain can never fork and no change is anchored twice.
 */
import { randomBytes } from 'node:crypto';
import { LedgerError } from '../errors.js';
import { buildBlock } from './block.js';
import type { BuiltBlock, PreparedChange } from './block.js';
import { appendLeaves, frontierRefs } from './merkle.js';
import type { Frontier } from './merkle.js';
import { LuaStatus } from './lua/codes.js';
import { groupTreeWrites } from './store.js';
import type { HeadState, RecordHead, RedisLedgerStore, TreeWrite } from './store.js';
import type { VaultPort } from '../vault/vault.js';

export interface AnchoredBlock {
  /** index of the change in the request */
  index: number;
  seq: number;
  hash: string;
}

export interface SkippedChange {
  index: number;
  /** seq of the block that already anchors this change */
  seq: number;
  code: 'ALREADY_ANCHORED' | 'DUPLICATE_IN_BATCH';
}

export interface AppendResult {
  tenant: string;
  anchored: AnchoredBlock[];
  skipped: SkippedChange[];
  /** a size the chain has reached, covering every change of this batch (its blocks or replays) */
  size: number;
}

/**
 * An erasure block (kind `erasure`, no field): its vault entry holds nothing and stays plain, so
 * that anchoring it does not make a new data key for the record whose key the erasure destroyed.
 */
function isErasureMarker(change: PreparedChange): boolean {
  return change.event.kind === 'erasure' && Object.keys(change.event.fields).length === 0;
}

/** Record heads cached per tenant before the cache is emptied (re-read from Redis as needed). */
const RECORD_HEAD_CACHE_LIMIT = 500_000;

interface BuiltBatch {
  blocks: { blocks: BuiltBlock[]; tree: TreeWrite[] };
  expected: HeadState;
  epoch: number;
}

interface ReadAhead {
  /** the record-head cache the reads were planned against */
  cache: Map<string, RecordHead>;
  /** the epoch of the prediction they were read on (undefined: there was none yet) */
  epoch: number | undefined;
  reads: Promise<[Map<string, RecordHead>, Map<string, Uint8Array> | undefined]>;
}

interface Predicted {
  head: HeadState;
  frontier: Frontier;
  epoch: number;
}

export interface ChainAppenderOptions {
  now?: () => Date;
  /** attempts before APPEND_CONTENDED (each refused CAS costs one) */
  maxAttempts?: number;
  /** seals each block's vault entry under its record's data key; none: entries stay plain */
  vault?: VaultPort;
}

export class ChainAppender {
  private predicted: Predicted | undefined;
  private epoch = 0;
  /**
   * Record heads as of the predicted head: those this appender wrote, and those it read. They stay
   * valid as long as only this appender extends the chain, which the compare-and-set guarantees:
   * when any batch is refused, the prediction and this cache are dropped together.
   */
  private recordHeads = new Map<string, RecordHead>();
  private buildQueue: Promise<unknown> = Promise.resolve();
  private readonly now: () => Date;
  private readonly maxAttempts: number;
  private readonly vault: VaultPort | undefined;

  constructor(
    private readonly store: RedisLedgerStore,
    readonly tenant: string,
    options: ChainAppenderOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.maxAttempts = options.maxAttempts ?? 100;
    this.vault = options.vault;
  }

  /** Anchors `changes` (already validated, all of this tenant) in order. */
  async append(changes: readonly PreparedChange[]): Promise<AppendResult> {
    for (const c of changes) {
      if (c.event.tenant !== this.tenant) {
        throw new LedgerError(
          'TENANT_UNKNOWN',
          `change for ${c.event.tenant} sent to ${this.tenant}`,
        );
      }
    }
    const skipped: SkippedChange[] = [];
    const firstByIdem = new Map<string, number>();
    let pending: { index: number; change: PreparedChange }[] = [];
    changes.forEach((change, index) => {
      const first = firstByIdem.get(change.idemField);
      if (first === undefined) {
        firstByIdem.set(change.idemField, index);
        pending.push({ index, change });
      } else {
        skipped.push({ index, seq: -1, code: 'DUPLICATE_IN_BATCH' });
      }
    });

    const anchored: AnchoredBlock[] = [];
    // The size reported is one the chain really has (never the predicted head, which may include
    // batches that are refused later): callers wait for a checkpoint covering it.
    let size = 0;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > this.maxAttempts) {
        throw new LedgerError(
          'APPEND_CONTENDED',
          `${this.tenant}: batch refused ${this.maxAttempts} times (head keeps moving)`,
        );
      }
      const { blocks, expected, epoch } = await this.build(pending.map((p) => p.change));
      let reply;
      try {
        reply = await this.store.append(this.tenant, expected, blocks.blocks, blocks.tree);
      } catch (err) {
        // The script may or may not have run: forget the prediction; a retry is safe because the
        // idempotency record is written by the same script as the block.
        this.invalidate(epoch);
        throw err;
      }
      if (reply.status === LuaStatus.Ok) {
        pending.forEach((p, i) => {
          const b = blocks.blocks[i] as BuiltBlock;
          anchored.push({ index: p.index, seq: b.seq, hash: b.hashHex });
        });
        size = Math.max(size, reply.size);
        pending = [];
      } else if (reply.status === LuaStatus.Frozen) {
        this.invalidate(epoch);
        throw new LedgerError(
          'TENANT_FROZEN',
          `${this.tenant} is frozen (tampering found): nothing is appended until an admin resumes it`,
        );
      } else if (reply.status === LuaStatus.AlreadyAnchored) {
        this.invalidate(epoch);
        const hit = new Map(reply.hits.map((h) => [h.index, h.seq]));
        pending = pending.filter((p, i) => {
          const seq = hit.get(i);
          if (seq !== undefined) {
            skipped.push({ index: p.index, seq, code: 'ALREADY_ANCHORED' });
            size = Math.max(size, seq + 1);
          }
          return seq === undefined;
        });
      } else {
        this.invalidate(epoch);
        if (attempt > 3) await sleep(Math.min(50, attempt) * Math.random());
      }
    }
    for (const s of skipped) {
      if (s.code === 'DUPLICATE_IN_BATCH') {
        const first = firstByIdem.get((changes[s.index] as PreparedChange).idemField) as number;
        s.seq =
          anchored.find((a) => a.index === first)?.seq ??
          skipped.find((x) => x.index === first)?.seq ??
          -1;
      }
    }
    anchored.sort((a, b) => a.seq - b.seq);
    skipped.sort((a, b) => a.index - b.index);
    return { tenant: this.tenant, anchored, skipped, size };
  }

  /** Builds the next batch on the predicted head. Builds run one at a time, in call order. */
  private build(changes: PreparedChange[]): Promise<BuiltBatch> {
    const early = this.readAhead(changes);
    const run = this.buildQueue.then(() => this.buildNow(changes, early));
    this.buildQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * Starts the reads a build needs (heads of records the cache does not know, data keys) when the
   * batch is handed over, not when its build's turn comes: a read sent then waits in Redis behind
   * the previous batch's append script, and the build with it. The heads read this early are used
   * only if they were read on a prediction (so after its head was read: a head another writer
   * moves from then on gets every batch built on that prediction refused by the compare-and-set)
   * that still holds at build time, with the same cache (nothing refused, nothing dropped), and
   * only for records no build has touched since (those are in the cache, which wins).
   */
  private readAhead(changes: PreparedChange[]): ReadAhead {
    const cache = this.recordHeads;
    const epoch = this.predicted?.epoch === this.epoch ? this.epoch : undefined;
    const missing: string[] = [];
    for (const key of new Set(changes.map((c) => c.recordKey))) {
      if (!cache.has(key)) missing.push(key);
    }
    const sealed = changes.filter((c) => !isErasureMarker(c));
    const reads = Promise.all([
      this.store.readRecordHeads(this.tenant, missing),
      sealed.length > 0 ? this.keysForSealing(sealed) : undefined,
    ]);
    reads.catch(() => undefined); // observed here; the build that uses it sees the error
    return { cache, epoch, reads };
  }

  /**
   * The data keys to seal `changes` with. A key is created only for a record that has none and a
   * change that is not anchored yet: a replayed change of an erased record (its key destroyed) is
   * refused by the append script, and must not leave a new key for that record behind. Such a
   * change gets no key here; the build seals it under a throwaway key (see buildNow).
   */
  private async keysForSealing(
    changes: PreparedChange[],
  ): Promise<Map<string, Uint8Array> | undefined> {
    const vault = this.vault;
    if (!vault) return undefined;
    const keys = await vault.keysFor(
      this.tenant,
      changes.map((c) => c.recordKey),
      { create: false },
    );
    const keyless = changes.filter((c) => !keys.has(c.recordKey));
    if (keyless.length === 0) return keys;
    const anchored = await this.store.readAnchoredSeqs(
      this.tenant,
      keyless.map((c) => c.idemField),
    );
    const create = keyless.filter((_, i) => anchored[i] === undefined).map((c) => c.recordKey);
    if (create.length > 0) {
      for (const [record, key] of await vault.createKeys(this.tenant, create))
        keys.set(record, key);
    }
    return keys;
  }

  private async buildNow(changes: PreparedChange[], early?: ReadAhead): Promise<BuiltBatch> {
    if (!this.predicted) {
      const head = await this.store.readHead(this.tenant);
      const frontier = await this.store.readNodes(this.tenant, frontierRefs(head.size));
      this.predicted = { head, frontier, epoch: this.epoch };
    }
    const cache = this.recordHeads;
    // Read before this prediction, or for another cache (a batch was refused, or the cache was
    // dropped): read again, now.
    const { reads } =
      early?.epoch === this.epoch && early.cache === cache ? early : this.readAhead(changes);
    const [stored, dataKeys] = await reads;
    const predicted = this.predicted;
    // Invalidated while reading: start again on a fresh head.
    if (!predicted || cache !== this.recordHeads) return this.buildNow(changes);
    for (const [key, head] of stored) if (!cache.has(key)) cache.set(key, head);

    const anchoredAt = this.now().toISOString();
    const built: BuiltBlock[] = [];
    let prev = predicted.head.hash || '0'.repeat(64);
    let seq = predicted.head.size;
    for (const change of changes) {
      const recordHead = cache.get(change.recordKey);
      const block = buildBlock(change, seq, prev, recordHead?.hash, anchoredAt);
      if (this.vault && dataKeys && !isErasureMarker(change)) {
        // Sealed here, where the seq is known: the entry's associated data binds it to this block.
        // No key: the change is anchored already (keysForSealing), and the append script refuses
        // this batch for it. Its entry is sealed under a key nobody keeps, never sent in clear.
        const key = dataKeys.get(change.recordKey) ?? randomBytes(32);
        block.vault = this.vault.sealBytes(this.tenant, seq, change.recordKey, key, block.vault);
      }
      built.push(block);
      cache.set(change.recordKey, { seq, hash: block.hashHex });
      prev = block.hashHex;
      seq += 1;
    }
    const tree = appendLeaves(
      predicted.head.size,
      predicted.frontier,
      built.map((b) => b.hash),
    );
    const expected = predicted.head;
    // A new map, not clear(): reads ahead made for the old one must not be used with it.
    if (cache.size > RECORD_HEAD_CACHE_LIMIT) this.recordHeads = new Map();
    this.predicted = {
      head: { size: tree.size, hash: prev },
      frontier: tree.frontier,
      epoch: predicted.epoch,
    };
    return {
      blocks: { blocks: built, tree: groupTreeWrites(tree.newNodes) },
      expected,
      epoch: predicted.epoch,
    };
  }

  /** Drops the prediction (once per epoch: later refusals of the same epoch are its echoes). */
  private invalidate(epoch: number): void {
    if (epoch !== this.epoch) return;
    this.epoch += 1;
    this.predicted = undefined;
    this.recordHeads = new Map();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
