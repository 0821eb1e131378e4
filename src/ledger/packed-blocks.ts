/**
 * A verification segment's blocks held as one buffer: block i is
 * data[i === 0 ? 0 : ends[i - 1], ends[i]). Verification reads a segment this way (store.ts,
 * redis/packed-reader.ts), hashes and scans it in one call each (batch-hash.ts), and makes a view
 * of a block only on the rare general path: no object per block.
 */
export interface PackedBlocks {
  data: Buffer;
  /** end offset of each block in `data`; its length is the number of blocks */
  ends: Uint32Array;
}

/** The blocks of `blocks`, copied into one buffer. */
export function packBlocks(blocks: readonly Uint8Array[]): PackedBlocks {
  const ends = new Uint32Array(blocks.length);
  let total = 0;
  blocks.forEach((b, i) => {
    total += b.length;
    ends[i] = total;
  });
  const data = Buffer.allocUnsafe(total);
  let at = 0;
  for (const b of blocks) {
    data.set(b, at);
    at += b.length;
  }
  return { data, ends };
}

/** Offset of block `i` in `data`. */
function blockStart(blocks: PackedBlocks, i: number): number {
  return i === 0 ? 0 : (blocks.ends[i - 1] as number);
}

/** A view of block `i` (no copy). */
export function blockAt(blocks: PackedBlocks, i: number): Buffer {
  return blocks.data.subarray(blockStart(blocks, i), blocks.ends[i]);
}

/** The first `n` blocks (views of the same buffers). */
export function firstBlocks(blocks: PackedBlocks, n: number): PackedBlocks {
  return n >= blocks.ends.length ? blocks : { data: blocks.data, ends: blocks.ends.subarray(0, n) };
}
