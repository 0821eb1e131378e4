/**
 * Every Redis key the ledger uses, built in one place (STYLE.md rule 10). All keys of a tenant
 * share the hash tag `{<tenant>}`, so a tenant's chain lives in one Redis Cluster slot and the
 * append script can touch all of them atomically. docs/storage.md describes each key.
 */

/** Blocks per segment list: verification reads whole segments with one LRANGE each. */
export const SEGMENT_SIZE = 1024;
/** Tree nodes (32 bytes each) per tree chunk string: 512 KiB strings. */
export const TREE_CHUNK_NODES = 16_384;
/** The tenant registry. It has no hash tag on purpose: it is global, and never written by Lua. */
export const TENANTS_KEY = 'cl:tenants';

export class LedgerKeys {
  readonly prefix: string;

  constructor(readonly tenant: string) {
    this.prefix = `cl:{${tenant}}:`;
  }

  /** hash: size, hash (hex of the last block's hash) */
  get head(): string {
    return this.prefix + 'head';
  }

  /** hash: idempotency field → seq */
  get idem(): string {
    return this.prefix + 'idem';
  }

  /** list: canonical bytes of blocks [n*SEGMENT_SIZE, (n+1)*SEGMENT_SIZE) */
  segment(n: number): string {
    return `${this.prefix}blk:${n}`;
  }

  /** list: vault entries of blocks [n*SEGMENT_SIZE, …), parallel to segment(n) */
  vaultSegment(n: number): string {
    return `${this.prefix}vault:${n}`;
  }

  /**
   * hash: record key → its data key wrapped by a master key (src/vault/). Deleting a field is the
   * record's crypto-shredding: its sealed vault entries can no longer be opened.
   */
  get dataKeys(): string {
    return this.prefix + 'dkey';
  }

  /** string: node hashes of tree `level`, nodes [chunk*TREE_CHUNK_NODES, …), 32 bytes each */
  treeChunk(level: number, chunk: number): string {
    return `${this.prefix}tree:${level}:${chunk}`;
  }

  /** list: "<seq>:<hash hex>" of each of the record's blocks, oldest first (last = the head) */
  record(recordKey: string): string {
    return `${this.prefix}rec:${recordKey}`;
  }

  /**
   * sorted set: the verdicts of anchored blocks (JSON {seq, object, id, at, verdicts}) scored by
   * seq. A derived index for /admin/verdicts: the blocks themselves are the record.
   */
  get verdicts(): string {
    return this.prefix + 'verdicts';
  }

  /** sorted set: signed checkpoint notes scored by tree size */
  get checkpoints(): string {
    return this.prefix + 'checkpoints';
  }

  /** hash: witness key name → JSON of its newest cosignature (CosignatureEntry in store.ts) */
  get cosignatures(): string {
    return this.prefix + 'cosig';
  }
}

export function segmentOf(seq: number): number {
  return Math.floor(seq / SEGMENT_SIZE);
}
