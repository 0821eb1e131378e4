/**
 * RFC 6962 leaf and node hashes of a whole verification segment in one call (Node only).
 *
 * Backed by the optional native addon in `native/` (src/native/addon.ts loads it), which hashes
 * with the OpenSSL that Node links. Without it, or with `CRM_LEDGER_NATIVE=off`, the same
 * functions hash one item at a time with node:crypto (`sha256Latin1`, hash.ts). Both give the
 * bytes of the `@noble/hashes` reference: a unit test holds the three together. Why: a call into
 * node:crypto costs ~0.4–0.6 µs and a result string whatever the input, and a 1,024-block segment
 * needs 2,047 hashes (`npm run bench -- hash`).
 *
 * The packed functions take a segment as one buffer and its blocks' ends; `scanLinks` there is
 * links.ts's byte scanner (tailOf + scanTail) for every block, in C when the addon is built.
 */
import { nativeAddon, nativeBackend } from '../native/addon.js';
import { HASH_SIZE, leafHashLatin1, RFC6962_NODE_HASH_PREFIX, sha256Latin1 } from './hash.js';
import { newLinkSpans, scanTail, tailOf } from './links.js';

/** The contract of `native/ledger_native.c`, which the node:crypto fallback keeps too. */
export interface BatchHasher {
  /** out[32i, 32i+32) = SHA-256(0x00 ‖ blocks[i]); `out` holds exactly 32 bytes per block. */
  leafHashes(blocks: readonly Uint8Array[], out: Uint8Array): void;
  /** out[32j, 32j+32) = SHA-256(0x01 ‖ children[64j, 64j+64)); `children` is twice `out`. */
  nodeHashes(children: Uint8Array, out: Uint8Array): void;
  /**
   * A segment packed in one buffer: block i is data[ends[i-1] (0 for i = 0), ends[i]).
   * out[32i, 32i+32) = SHA-256(0x00 ‖ block i). Throws a TypeError unless `ends` is a Uint32Array
   * that never decreases nor exceeds data.length and `out` holds exactly 32 bytes per block.
   */
  leafHashesPacked(data: Uint8Array, ends: Uint32Array, out: Uint8Array): void;
  /**
   * The link positions of each block of a packed segment (as leafHashesPacked), exactly as
   * links.ts reads them: `tailOf` then `scanTail(block, tail, spans, false)`. out[10i] = 1 if that
   * succeeded, else 0; then out[10i+1, 10i+10) = prev, idStart, idEnd, objectStart, objectEnd,
   * recordPrev, seq, tenantStart, tenantEnd (see LinkSpans), positions as offsets into `data`,
   * all 0 when it did not. A block is never read past its own end. Throws a TypeError unless
   * `ends` is as for leafHashesPacked and `out` holds exactly 10 numbers per block.
   */
  scanLinks(data: Uint8Array, ends: Uint32Array, out: Float64Array): void;
}

/** Numbers per block in scanLinks' output: ok, then the nine LinkSpans members. */
export const SCAN_LINKS_STRIDE = 10;

/** The native batch hasher, when the addon is built and not turned off. */
export const nativeBatchHasher: BatchHasher | undefined = nativeAddon;

/** Which batch hasher is in use, and why (logged at start, printed by the bench). */
export const batchHashBackend = nativeBackend;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reused node input: hashing is synchronous, so nothing else can be using it. */
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE);

/**
 * Throws unless `data` and `ends` are a packed segment (see leafHashesPacked) and `out` is an
 * `Out` of `perBlock` elements per block, as the addon does.
 */
function checkPacked<T extends Uint8Array | Float64Array>(
  data: Uint8Array,
  ends: Uint32Array,
  out: T,
  Out: new (length: number) => T,
  perBlock: number,
  outMessage: string,
): void {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  if (!(ends instanceof Uint32Array)) throw new TypeError('ends must be a Uint32Array');
  if (!(out instanceof Out) || out.length !== ends.length * perBlock) {
    throw new TypeError(outMessage);
  }
  let previous = 0;
  for (const end of ends) {
    if (end < previous || end > data.length) {
      throw new TypeError('ends must not decrease nor exceed data.length');
    }
    previous = end;
  }
}

/** Reused spans: scanning is synchronous, so nothing else can be using them. */
const spans = newLinkSpans();

/** The same contract as the addon, one node:crypto call per hash. */
export const jsBatchHasher: BatchHasher = {
  leafHashes(blocks, out) {
    if (out.length !== blocks.length * HASH_SIZE) {
      throw new TypeError('out must be a Uint8Array of exactly 32 bytes per block');
    }
    const o = asBuffer(out);
    blocks.forEach((block, i) => o.write(leafHashLatin1(block), i * HASH_SIZE, 'latin1'));
  },
  nodeHashes(children, out) {
    if (out.length % HASH_SIZE !== 0 || children.length !== 2 * out.length) {
      throw new TypeError('out must be a multiple of 32 bytes, and children exactly twice out');
    }
    const o = asBuffer(out);
    nodeInput[0] = RFC6962_NODE_HASH_PREFIX;
    for (let j = 0; j < out.length / HASH_SIZE; j++) {
      nodeInput.set(children.subarray(2 * j * HASH_SIZE, (2 * j + 2) * HASH_SIZE), 1);
      o.write(sha256Latin1(nodeInput), j * HASH_SIZE, 'latin1');
    }
  },
  leafHashesPacked(data, ends, out) {
    checkPacked(
      data,
      ends,
      out,
      Uint8Array,
      HASH_SIZE,
      'out must be a Uint8Array of exactly 32 bytes per block',
    );
    const o = asBuffer(out);
    let start = 0;
    ends.forEach((end, i) => {
      o.write(leafHashLatin1(data.subarray(start, end)), i * HASH_SIZE, 'latin1');
      start = end;
    });
  },
  scanLinks(data, ends, out) {
    checkPacked(
      data,
      ends,
      out,
      Float64Array,
      SCAN_LINKS_STRIDE,
      'out must be a Float64Array of exactly 10 numbers per block',
    );
    const whole = asBuffer(data);
    let start = 0;
    ends.forEach((end, i) => {
      // A view of the block alone: tailOf and scanTail never look past its end.
      const block = whole.subarray(start, end);
      const tail = tailOf(block);
      const o = i * SCAN_LINKS_STRIDE;
      if (tail >= 0 && scanTail(block, tail, spans, false)) {
        out[o] = 1;
        out[o + 1] = start + spans.prev;
        out[o + 2] = start + spans.idStart;
        out[o + 3] = start + spans.idEnd;
        out[o + 4] = start + spans.objectStart;
        out[o + 5] = start + spans.objectEnd;
        out[o + 6] = start + spans.recordPrev;
        out[o + 7] = spans.seq;
        out[o + 8] = start + spans.tenantStart;
        out[o + 9] = start + spans.tenantEnd;
      } else out.fill(0, o, o + SCAN_LINKS_STRIDE);
      start = end;
    });
  },
};

/** The batch hasher the verifier uses: native when built, else node:crypto. */
export const batchHasher: BatchHasher = nativeBatchHasher ?? jsBatchHasher;
