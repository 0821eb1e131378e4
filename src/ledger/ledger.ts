/**
 * Ledger: the ledger's public face for the rest of crm-ledger — append changes, verify chains,
 * read checkpoints. Built by main.ts from a store and the signing key.
 */
import { ChainAppender } from './appender.js';
import type { AppendResult } from './appender.js';
import { prepareChange, DEFAULT_MAX_CHANGE_BYTES } from './block.js';
import type { AnchorRequest, Block, PreparedChange } from './block.js';
import { openPlain } from '../vault/vault.js';
import type { VaultItem, VaultOpenResult, VaultPort } from '../vault/vault.js';
import type { FieldValue } from '../model/change-event.js';
import { Checkpointer } from './checkpointer.js';
import { leafHashHex } from './hash.js';
import type { NoteSigner, Verifier } from './checkpoint.js';
import { InputError, LedgerError } from '../errors.js';
import { readSegmentWithTreePacked } from './store.js';
import type { CheckpointEntry, RedisLedgerStore } from './store.js';
import type { PackedReader } from '../redis/packed-reader.js';
import { ChainVerifier } from './verifier.js';
import type { VerifyPool } from './verify-pool.js';
import type { ChainSource, VerifyOptions, VerifyResult } from './verifier.js';

export interface LedgerOptions {
  /** checkpoint origin prefix; a tenant's origin is `<origin>/<tenant>` */
  origin: string;
  signer: NoteSigner;
  /** verifier keys accepted for this ledger's checkpoints (the signer's own, plus retired ones) */
  verifiers: readonly Verifier[];
  maxChangeBytes?: number;
  maxBatch?: number;
  checkpointMinIntervalMs?: number;
  now?: () => Date;
  /** worker threads for verification (segments checked in parallel) */
  verifyPool?: VerifyPool;
  /** reads segments for verifications in this thread (see storeSource) */
  packedReader?: PackedReader;
  /** seals vault entries under per-record data keys (src/vault/); none: plain entries */
  vault?: VaultPort;
}

export interface AnchorResult extends AppendResult {
  checkpoint: CheckpointEntry;
}

export class Ledger {
  private readonly appenders = new Map<string, ChainAppender>();
  private readonly knownTenants = new Set<string>();
  readonly checkpointer: Checkpointer;

  constructor(
    readonly store: RedisLedgerStore,
    private readonly options: LedgerOptions,
  ) {
    this.checkpointer = new Checkpointer(store, {
      signer: options.signer,
      verifiers: options.verifiers,
      originFor: (t) => this.originFor(t),
      minIntervalMs: options.checkpointMinIntervalMs ?? 0,
    });
  }

  originFor(tenant: string): string {
    return checkpointOrigin(this.options.origin, tenant);
  }

  get verifiers(): readonly Verifier[] {
    return this.options.verifiers;
  }

  /** Validates every request (nothing is written if one is bad), then anchors them in order. */
  prepare(tenant: string, requests: readonly AnchorRequest[]): PreparedChange[] {
    const max = this.options.maxBatch ?? 1000;
    if (requests.length > max) {
      throw new InputError(
        'BATCH_TOO_LARGE',
        `a batch holds at most ${max} changes, got ${requests.length}`,
      );
    }
    return requests.map((r, i) => {
      let prepared: PreparedChange;
      try {
        prepared = prepareChange(r, this.options.maxChangeBytes ?? DEFAULT_MAX_CHANGE_BYTES);
      } catch (err) {
        if (err instanceof InputError) {
          throw new InputError(
            err.code,
            `changes[${i}]: ${err.message}`,
            `[${i}].${err.path ?? ''}`,
          );
        }
        throw err;
      }
      if (prepared.event.tenant !== tenant) {
        throw new InputError(
          'TENANT_MISMATCH',
          `changes[${i}]: tenant ${prepared.event.tenant} is not ${tenant}`,
          `[${i}].tenant`,
        );
      }
      return prepared;
    });
  }

  /** Anchors the changes; resolves once a signed checkpoint covers them. */
  async append(tenant: string, requests: readonly AnchorRequest[]): Promise<AnchorResult> {
    return this.appendPrepared(tenant, this.prepare(tenant, requests));
  }

  /** Anchors changes already checked by `prepare` (all of `tenant`), in order. */
  async appendPrepared(tenant: string, prepared: readonly PreparedChange[]): Promise<AnchorResult> {
    const result = await this.appender(tenant).append(prepared);
    if (!this.knownTenants.has(tenant)) {
      await this.store.registerTenant(tenant);
      this.knownTenants.add(tenant);
    }
    let checkpoint;
    try {
      checkpoint = await this.checkpointer.cover(tenant, result.size);
    } catch (err) {
      // The stored chain no longer extends our last signed checkpoint: freeze, sign nothing more.
      if (err instanceof LedgerError && err.code === 'CHECKPOINT_INCONSISTENT') {
        await this.store.freeze(tenant, {
          reason: err.message,
          code: err.code,
          at: new Date().toISOString(),
          by: 'checkpointer',
        });
      }
      throw err;
    }
    return { ...result, checkpoint };
  }

  /** The stored blocks at `seqs`, parsed (undefined where there is none). */
  async readBlocks(
    tenant: string,
    seqs: readonly number[],
  ): Promise<({ block: Block; hash: string } | undefined)[]> {
    const raw = await this.store.readBlocks(tenant, seqs);
    return raw.map((bytes) =>
      bytes
        ? { block: JSON.parse(bytes.toString('utf8')) as Block, hash: leafHashHex(bytes) }
        : undefined,
    );
  }

  /**
   * The record's latest anchored value of every field (its projection), from its vault entries.
   * Fields of erased or missing entries are left out.
   */
  async recordState(
    tenant: string,
    recordKey: string,
    /** only blocks before this seq: the state a change was made on */
    beforeSeq = Number.POSITIVE_INFINITY,
  ): Promise<Map<string, FieldValue>> {
    const history = (await this.store.readRecord(tenant, recordKey)).filter(
      (h) => h.seq < beforeSeq,
    );
    const entries = await this.store.readVaultEntries(
      tenant,
      history.map((h) => h.seq),
    );
    const opened = await this.openVault(
      tenant,
      history.map((h, i) => ({ seq: h.seq, recordKey, stored: entries[i] })),
    );
    const state = new Map<string, FieldValue>();
    for (const o of opened) {
      if (o.status !== 'open') continue;
      for (const [name, opening] of Object.entries(o.entry.fields)) state.set(name, opening.value);
    }
    return state;
  }

  /** Opens stored vault entries (sealed ones with the vault's keys). */
  openVault(tenant: string, items: readonly VaultItem[]): Promise<VaultOpenResult[]> {
    return this.options.vault
      ? this.options.vault.open(tenant, items)
      : Promise.resolve(openPlain(items));
  }

  get vault(): VaultPort | undefined {
    return this.options.vault;
  }

  appender(tenant: string): ChainAppender {
    let a = this.appenders.get(tenant);
    if (!a) {
      a = new ChainAppender(this.store, tenant, {
        ...(this.options.now ? { now: this.options.now } : {}),
        ...(this.options.vault ? { vault: this.options.vault } : {}),
      });
      this.appenders.set(tenant, a);
    }
    return a;
  }

  verifier(tenant: string): ChainVerifier {
    return createVerifier(
      this.store,
      tenant,
      { verifiers: this.options.verifiers, origin: this.originFor(tenant) },
      this.options.verifyPool,
      this.options.packedReader,
    );
  }

  verify(tenant: string, options?: VerifyOptions): Promise<VerifyResult> {
    return this.verifier(tenant).verify(options);
  }
}

/** A tenant's checkpoint origin line: `<origin>/<tenant>`. */
export function checkpointOrigin(origin: string, tenant: string): string {
  return `${origin}/${tenant}`;
}

/**
 * A ChainSource over the Redis store for one tenant. With a PackedReader (plain redis:// URLs),
 * segments are read through it: one buffer per segment, reused once verified (no object per
 * block; src/redis/packed-reader.ts says why).
 */
export function storeSource(
  store: RedisLedgerStore,
  tenant: string,
  reader?: PackedReader,
): ChainSource {
  return {
    readHead: () => store.readHead(tenant),
    readSegment: (n, start) => store.readSegment(tenant, n, start ?? 0),
    readTreeRange: (level, start, end) => store.readTreeRange(tenant, level, start, end),
    readSegmentWithTree: (n, start, end, topLevel) =>
      reader
        ? readSegmentWithTreePacked(reader, tenant, n, start, end, topLevel)
        : store.readSegmentWithTree(tenant, n, start, end, topLevel),
    readNodes: (refs) => store.readNodes(tenant, refs),
    readBlock: (seq) => store.readBlock(tenant, seq),
    readRecordSeqs: async (recordKey) =>
      (await store.readRecord(tenant, recordKey)).map((e) => e.seq),
    latestCheckpoint: () => store.latestCheckpoint(tenant),
    readCheckpoints: (min, max) => store.readCheckpoints(tenant, min, max),
  };
}

export function createVerifier(
  store: RedisLedgerStore,
  tenant: string,
  trust: { verifiers: readonly Verifier[]; origin: string },
  pool?: VerifyPool,
  reader?: PackedReader,
): ChainVerifier {
  return new ChainVerifier(
    tenant,
    storeSource(store, tenant, reader),
    trust,
    pool?.forTenant(tenant),
  );
}
