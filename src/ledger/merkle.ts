/**
 * RFC 6962 / RFC 9162 Merkle tree over leaf hashes (pure: no I/O, STYLE.md rule 8).
 *
 * Leaves enter this module already hashed (`leafHash` in ./hash.ts, RFC 6962 §2.1 prefix 0x00);
 * interior nodes use `nodeHash` (prefix 0x01). MTH is the Merkle Tree Hash of RFC 6962 §2.1.
 *
 * Storage model (what the Redis store keeps): only nodes of complete, aligned subtrees,
 * node(level, index) = MTH(leaves[index·2^level, (index+1)·2^level)), level 0 being the leaves.
 * Every RFC 6962 proof element and every historical root is the MTH of a range [a, b) where `a` is
 * aligned to the smallest power of two ≥ b − a; such a range splits (greedily, biggest first) into
 * stored nodes whose right-to-left fold is its MTH. So proofs and `root(size)` are *planned* here
 * as lists of node references, fetched by the store in one round trip, and *assembled* here.
 *
 * Sizes and indices are attacker-controlled JS numbers (a client asks for "leaf i of tree n"), so
 * every exported function is total (STYLE.md rule 3): bad input throws ProofError, never a
 * TypeError/RangeError. Only arithmetic is used on them — never 32-bit bitwise operators — so
 * every safe integer up to 2^53 − 1 is handled exactly.
 *
 * Error codes:
 * - PROOF_MALFORMED: the question or the proof has the wrong shape (not a safe integer, index ≥
 *   size, m > n, a hash that is not 32 bytes, a proof with more or fewer elements than RFC 6962
 *   prescribes for these sizes).
 * - PROOF_INVALID: well-formed, but the hashes do not recompute to the given root(s).
 */
import { ProofError } from '../errors.js';
import { HASH_SIZE, bytesEqual, nodeHash, sha256 } from './hash.js';

/** A stored node: the root of leaves [index·2^level, (index+1)·2^level). */
export type NodeRef = { level: number; index: number };

/** A newly completed stored node, as returned by `appendLeaves`. */
export type NewNode = { level: number; index: number; hash: Uint8Array };

/**
 * Compact range of [0, size): the roots of the perfect subtrees that decompose it from left to
 * right, one per set bit of `size`, biggest first.
 */
export type Frontier = Uint8Array[];

/** Plan of a proof: one entry per proof element, each the right-to-left fold of these nodes. */
export type ProofPlan = NodeRef[][];

/** 2^53 > Number.MAX_SAFE_INTEGER, so no safe size has a set bit at or above this level. */
const MAX_LEVEL = 53;

const EMPTY_ROOT = sha256(new Uint8Array(0));

/**
 * MTH of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1). A fresh copy each call:
 * `sha256` may return a Buffer, whose `.slice()` is a view, not a copy.
 */
export function emptyRoot(): Uint8Array {
  return new Uint8Array(EMPTY_ROOT);
}

// ---------------------------------------------------------------------------------------------
// Input checks (total: ProofError, never TypeError)

function malformed(message: string): ProofError {
  return new ProofError('PROOF_MALFORMED', message);
}

function invalid(message: string): ProofError {
  return new ProofError('PROOF_INVALID', message);
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function assertCount(n: unknown, what: string): asserts n is number {
  if (!isCount(n)) throw malformed(`${what} must be a non-negative safe integer`);
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_SIZE;
}

function assertHash(h: unknown, what: string): asserts h is Uint8Array {
  if (!isHash(h)) throw malformed(`${what} must be a ${HASH_SIZE}-byte hash`);
}

function assertHashList(list: unknown, what: string): asserts list is Uint8Array[] {
  if (!Array.isArray(list)) throw malformed(`${what} must be an array of hashes`);
  for (let i = 0; i < list.length; i++) assertHash(list[i], `${what}[${i}]`);
}

/** Checks the element count before touching any element (no work on oversized input). */
function assertProof(proof: unknown, expected: number): asserts proof is Uint8Array[] {
  if (!Array.isArray(proof)) throw malformed('proof must be an array of hashes');
  if (proof.length !== expected) {
    throw malformed(`proof has ${proof.length} elements, expected exactly ${expected}`);
  }
  assertHashList(proof, 'proof');
}

function assertIndexInTree(index: unknown, size: unknown): asserts index is number {
  assertCount(index, 'index');
  assertCount(size, 'size');
  if (index >= size) throw malformed(`index ${index} is not below tree size ${size}`);
}

function assertSizes(m: unknown, n: unknown): asserts m is number {
  assertCount(m, 'first size');
  assertCount(n, 'second size');
  if (m > n) throw malformed(`first size ${m} is larger than second size ${n}`);
}

// ---------------------------------------------------------------------------------------------
// Integer helpers (exact for all safe integers)

const half = (x: number): number => Math.floor(x / 2);
const isOdd = (x: number): boolean => x % 2 === 1;

/** Largest power of two strictly below n, for n ≥ 2 (the split point k of RFC 6962 §2.1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Set bits of n as levels, highest first. */
function setLevels(n: number): number[] {
  const levels: number[] = [];
  for (let level = 0, x = n; x > 0; level++, x = half(x)) {
    if (isOdd(x)) levels.push(level);
  }
  return levels.reverse();
}

// ---------------------------------------------------------------------------------------------
// Hashing of node lists

/** Right-to-left fold: MTH of a range from its greedy decomposition (RFC 6962 §2.1 recursion). */
function foldRight(hashes: readonly Uint8Array[]): Uint8Array {
  let acc = hashes[hashes.length - 1];
  if (acc === undefined) throw malformed('cannot fold an empty node list');
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i] as Uint8Array, acc);
  return acc;
}

/** MTH(D[n]) per RFC 6962 §2.1, computed from the leaf hashes (the reference definition). */
export function rootFromLeaves(leaves: Uint8Array[]): Uint8Array {
  assertHashList(leaves, 'leaves');
  return leaves.length === 0 ? emptyRoot() : mth(leaves, 0, leaves.length);
}

function mth(leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array {
  if (hi - lo === 1) return leaves[lo] as Uint8Array;
  const k = splitPoint(hi - lo);
  return nodeHash(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi));
}

// ---------------------------------------------------------------------------------------------
// Stored-node decomposition

/**
 * Decomposes [start, end) into aligned perfect subtrees, left to right, taking at each step the
 * biggest subtree that starts at `start` and fits. For a range that starts aligned to the smallest
 * power of two ≥ its length (every range a proof or a root needs), sizes strictly decrease and
 * the right-to-left fold of these nodes is the range's MTH.
 */
export function rangeRefs(start: number, end: number): NodeRef[] {
  assertCount(start, 'start');
  assertCount(end, 'end');
  if (start > end) throw malformed(`range start ${start} is after end ${end}`);
  const refs: NodeRef[] = [];
  let at = start;
  while (at < end) {
    let level = 0;
    // The sum is only evaluated once `at` is a multiple of 2^(level+1), so it is exact.
    while (level < MAX_LEVEL && at % 2 ** (level + 1) === 0 && at + 2 ** (level + 1) <= end) {
      level++;
    }
    refs.push({ level, index: at / 2 ** level });
    at += 2 ** level;
  }
  return refs;
}

/** The stored nodes forming the frontier (compact range [0, size)), biggest first. */
export function frontierRefs(size: number): NodeRef[] {
  assertCount(size, 'size');
  return rangeRefs(0, size);
}

/** Root of a tree from its frontier: fold right-to-left, hash(left, acc). Empty → emptyRoot(). */
export function rootFromFrontier(frontier: Frontier): Uint8Array {
  assertHashList(frontier, 'frontier');
  return frontier.length === 0 ? emptyRoot() : foldRight(frontier);
}

/**
 * Appends leaf hashes to a tree of `size` leaves whose frontier is given. Returns the new
 * frontier and size, and every stored node the append completes (the leaves themselves at level
 * 0 included), sorted by level then index. Costs exactly one node hash per completed interior
 * node: appending L leaves costs at most L + popcount(size) − 1 hashes (127 for 128 leaves to an
 * empty tree).
 */
export function appendLeaves(
  size: number,
  frontier: Frontier,
  newLeaves: Uint8Array[],
): { frontier: Frontier; size: number; newNodes: NewNode[] } {
  assertCount(size, 'size');
  assertHashList(frontier, 'frontier');
  assertHashList(newLeaves, 'new leaves');
  const levels = setLevels(size);
  if (frontier.length !== levels.length) {
    throw malformed(`frontier has ${frontier.length} nodes, size ${size} needs ${levels.length}`);
  }
  if (!isCount(size + newLeaves.length)) throw malformed('tree size would exceed 2^53 - 1');

  const stack = frontier.map((hash, i) => ({ level: levels[i] as number, hash }));
  const newNodes: NewNode[] = [];
  let count = size;
  for (const leaf of newLeaves) {
    newNodes.push({ level: 0, index: count, hash: leaf });
    count += 1;
    let node = { level: 0, hash: leaf };
    for (
      let top = stack.at(-1);
      top !== undefined && top.level === node.level;
      top = stack.at(-1)
    ) {
      stack.pop();
      const level = node.level + 1;
      node = { level, hash: nodeHash(top.hash, node.hash) };
      // The node just completed covers [count − 2^level, count).
      newNodes.push({ level, index: count / 2 ** level - 1, hash: node.hash });
    }
    stack.push(node);
  }
  newNodes.sort((a, b) => a.level - b.level || a.index - b.index);
  return { frontier: stack.map((n) => n.hash), size: count, newNodes };
}

// ---------------------------------------------------------------------------------------------
// Proof shapes (ranges), shared by the planners and the reference generators

type Range = readonly [start: number, end: number];

/** PATH(index, D[size]) of RFC 6962 §2.1.1 as ranges whose MTHs are the proof, bottom-up. */
function inclusionRanges(index: number, size: number): Range[] {
  const topDown: Range[] = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      topDown.push([lo + k, hi]);
      hi = lo + k;
    } else {
      topDown.push([lo, lo + k]);
      lo += k;
    }
  }
  return topDown.reverse();
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 §2.1.2 as ranges, in proof order. */
function consistencyRanges(m: number, n: number): Range[] {
  if (m === 0 || m === n) return [];
  const topDown: Range[] = [];
  let lo = 0;
  let hi = n;
  let b = true; // true while the subtree is the old tree's own root (its MTH is known to the client)
  for (;;) {
    if (m - lo === hi - lo) {
      if (!b) topDown.push([lo, hi]);
      break;
    }
    const k = splitPoint(hi - lo);
    if (m - lo <= k) {
      topDown.push([lo + k, hi]);
      hi = lo + k;
    } else {
      topDown.push([lo, lo + k]);
      lo += k;
      b = false;
    }
  }
  return topDown.reverse();
}

/** Number of elements of the inclusion proof for `index` in a tree of `size` leaves. */
export function inclusionProofLength(index: number, size: number): number {
  assertIndexInTree(index, size);
  return inclusionRanges(index, size).length;
}

/** Number of elements of the consistency proof from size m to size n (0 if m = 0 or m = n). */
export function consistencyProofLength(m: number, n: number): number {
  assertSizes(m, n);
  return consistencyRanges(m, n).length;
}

// ---------------------------------------------------------------------------------------------
// Planning against stored nodes

const toPlan = (ranges: readonly Range[]): ProofPlan => ranges.map(([a, b]) => rangeRefs(a, b));

/** Stored nodes needed for the inclusion proof of leaf `index` in the tree of `size` leaves. */
export function inclusionProofRefs(index: number, size: number): ProofPlan {
  assertIndexInTree(index, size);
  return toPlan(inclusionRanges(index, size));
}

/** Stored nodes needed for the consistency proof between tree sizes m ≤ n. */
export function consistencyProofRefs(m: number, n: number): ProofPlan {
  assertSizes(m, n);
  return toPlan(consistencyRanges(m, n));
}

/** Builds a proof from a plan and a node lookup (typically a Map filled by one MGET). */
export function assembleProof(plan: ProofPlan, fetch: (ref: NodeRef) => Uint8Array): Uint8Array[] {
  if (!Array.isArray(plan)) throw malformed('proof plan must be an array');
  return plan.map((refs) => {
    if (!Array.isArray(refs) || refs.length === 0) throw malformed('empty proof plan element');
    return foldRight(refs.map((ref) => fetchNode(ref, fetch)));
  });
}

/** Root of the tree of `size` leaves from stored nodes (checkpoints need earlier roots too). */
export function rootAt(size: number, fetch: (ref: NodeRef) => Uint8Array): Uint8Array {
  const refs = frontierRefs(size);
  return refs.length === 0 ? emptyRoot() : foldRight(refs.map((ref) => fetchNode(ref, fetch)));
}

// ---------------------------------------------------------------------------------------------
// Batch proofs: many leaves of one tree proven at once

/**
 * Walks the paths of leaves `indexes` (strictly increasing, each below `size`) up to the tree's
 * frontier, level by level, and returns the frontier nodes (the root is their fold). `node` is
 * asked, in one fixed order, for each stored node the walk needs: a sibling that is on no other
 * leaf's path, or a frontier subtree that holds none of the leaves. With `leaf` absent nothing is
 * hashed (planning only: node's answers are not looked at).
 */
function walkBatch(
  indexes: readonly number[],
  size: number,
  leaf: ((k: number) => Uint8Array) | undefined,
  node: (ref: NodeRef) => Uint8Array,
): Uint8Array[] {
  assertCount(size, 'size');
  if (!Array.isArray(indexes)) throw malformed('indexes must be an array');
  for (let k = 0; k < indexes.length; k++) {
    assertIndexInTree(indexes[k], size);
    if (k > 0 && (indexes[k] as number) <= (indexes[k - 1] as number)) {
      throw malformed('indexes must be strictly increasing');
    }
  }
  const out: Uint8Array[] = [];
  let k = 0;
  for (const top of frontierRefs(size)) {
    const end = (top.index + 1) * 2 ** top.level;
    let at: number[] = [];
    let values: Uint8Array[] = [];
    for (; k < indexes.length && (indexes[k] as number) < end; k++) {
      at.push(indexes[k] as number);
      if (leaf) values.push(leaf(k));
    }
    if (at.length === 0) {
      out.push(node(top));
      continue;
    }
    for (let level = 0; level < top.level; level++) {
      const up: number[] = [];
      const upValues: Uint8Array[] = [];
      for (let i = 0; i < at.length; i++) {
        const j = at[i] as number;
        let left: Uint8Array;
        let right: Uint8Array;
        if (j % 2 === 1) {
          // j - 1 is not on a path: it would have taken j along (below).
          left = node({ level, index: j - 1 });
          right = values[i] as Uint8Array;
        } else if (at[i + 1] === j + 1) {
          left = values[i] as Uint8Array;
          right = values[i + 1] as Uint8Array;
          i++;
        } else {
          left = values[i] as Uint8Array;
          right = node({ level, index: j + 1 });
        }
        up.push(Math.floor(j / 2));
        if (leaf) upValues.push(nodeHash(left, right));
      }
      at = up;
      values = upValues;
    }
    out.push(values[0] as Uint8Array);
  }
  return out;
}

/**
 * The stored nodes a batch proof of leaves `indexes` (strictly increasing, each below `size`)
 * needs, each named once however many of the leaves' paths share it: about k·log2(size/k) nodes
 * for k spread leaves, against k·log2(size) for k separate inclusion proofs.
 */
export function batchProofRefs(indexes: readonly number[], size: number): NodeRef[] {
  const refs: NodeRef[] = [];
  walkBatch(indexes, size, undefined, (ref) => {
    refs.push(ref);
    return EMPTY_ROOT;
  });
  return refs;
}

/**
 * The root of the tree of `size` leaves computed from the hashes of leaves `indexes` and the
 * stored nodes batchProofRefs named (in its order). Equal to the trusted root only if every one
 * of those leaves is in that tree at its index. Throws PROOF_MALFORMED when `nodes` does not fit
 * the plan.
 */
export function rootFromBatchProof(
  indexes: readonly number[],
  leafHashes: readonly Uint8Array[],
  size: number,
  nodes: readonly Uint8Array[],
): Uint8Array {
  assertHashList(leafHashes, 'leaf hashes');
  if (!Array.isArray(indexes) || leafHashes.length !== indexes.length) {
    throw malformed('one leaf hash per index is needed');
  }
  let used = 0;
  const frontier = walkBatch(
    indexes,
    size,
    (k) => leafHashes[k] as Uint8Array,
    (ref) => {
      if (used >= nodes.length) throw malformed('batch proof has too few nodes');
      return fetchNode(ref, () => nodes[used++] as Uint8Array);
    },
  );
  if (used !== nodes.length) throw malformed('batch proof has more nodes than its plan');
  return frontier.length === 0 ? emptyRoot() : foldRight(frontier);
}

function fetchNode(ref: NodeRef, fetch: (ref: NodeRef) => Uint8Array): Uint8Array {
  const hash = fetch(ref);
  if (!isHash(hash)) {
    throw malformed(
      `node ${String(ref.level)}/${String(ref.index)} is not a ${HASH_SIZE}-byte hash`,
    );
  }
  return hash;
}

// ---------------------------------------------------------------------------------------------
// Reference generators, straight from the leaves (tests, small trees)

/** PATH(index, D[n]) of RFC 6962 §2.1.1, computed from all leaf hashes. */
export function inclusionProofFromLeaves(index: number, leaves: Uint8Array[]): Uint8Array[] {
  assertHashList(leaves, 'leaves');
  assertIndexInTree(index, leaves.length);
  return path(index, leaves, 0, leaves.length);
}

function path(m: number, leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array[] {
  if (hi - lo === 1) return [];
  const k = splitPoint(hi - lo);
  return m < k
    ? [...path(m, leaves, lo, lo + k), mth(leaves, lo + k, hi)]
    : [...path(m - k, leaves, lo + k, hi), mth(leaves, lo, lo + k)];
}

/** PROOF(m, D[n]) of RFC 6962 §2.1.2, computed from all leaf hashes; empty for m = 0 or m = n. */
export function consistencyProofFromLeaves(m: number, leaves: Uint8Array[]): Uint8Array[] {
  assertHashList(leaves, 'leaves');
  assertSizes(m, leaves.length);
  if (m === 0 || m === leaves.length) return [];
  return subproof(m, leaves, 0, leaves.length, true);
}

function subproof(
  m: number,
  leaves: readonly Uint8Array[],
  lo: number,
  hi: number,
  b: boolean,
): Uint8Array[] {
  const n = hi - lo;
  if (m === n) return b ? [] : [mth(leaves, lo, hi)];
  const k = splitPoint(n);
  return m <= k
    ? [...subproof(m, leaves, lo, lo + k, b), mth(leaves, lo + k, hi)]
    : [...subproof(m - k, leaves, lo + k, hi, false), mth(leaves, lo, lo + k)];
}

// ---------------------------------------------------------------------------------------------
// Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)

/**
 * Root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-4). The element count must be
 * exactly the one RFC 6962 prescribes for (index, size): immudb GHSA-672p-m5jq-mrh8 accepted
 * forged proofs because only the ends of the computation were checked.
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: Uint8Array[],
): Uint8Array {
  assertHash(leafHash, 'leaf hash');
  assertIndexInTree(index, size);
  assertProof(proof, inclusionRanges(index, size).length);
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw malformed('inclusion proof is too long');
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw malformed('inclusion proof is too short');
  return r;
}

/** RFC 9162 §2.1.3.2: throws unless `proof` shows `leafHash` at `index` in the tree `root`. */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: Uint8Array[],
  root: Uint8Array,
): void {
  assertHash(root, 'root');
  const computed = rootFromInclusionProof(leafHash, index, size, proof);
  if (!bytesEqual(computed, root)) {
    throw invalid(`inclusion proof for leaf ${index} does not lead to the root of size ${size}`);
  }
}

/**
 * RFC 9162 §2.1.4.2: throws unless `proof` shows the tree (m, rootM) is a prefix of (n, rootN).
 * Cases outside 0 < m < n: m = n needs an empty proof and rootM = rootN; m = 0 needs an empty
 * proof and rootM = MTH of the empty tree (any tree extends the empty one).
 */
export function verifyConsistency(
  m: number,
  n: number,
  proof: Uint8Array[],
  rootM: Uint8Array,
  rootN: Uint8Array,
): void {
  assertSizes(m, n);
  assertHash(rootM, 'first root');
  assertHash(rootN, 'second root');
  assertProof(proof, consistencyRanges(m, n).length);
  if (m === 0) {
    if (!bytesEqual(rootM, EMPTY_ROOT)) throw invalid('first root is not the empty tree root');
    if (n === 0 && !bytesEqual(rootN, EMPTY_ROOT)) {
      throw invalid('second root is not the empty tree root');
    }
    return;
  }
  if (m === n) {
    if (!bytesEqual(rootM, rootN)) throw invalid(`two different roots for tree size ${m}`);
    return;
  }

  // Step 2: if m is a power of two, the old root is the first node of the path.
  const path = isPowerOfTwo(m) ? [rootM, ...proof] : proof;
  // Steps 3-4.
  let fn = m - 1;
  let sn = n - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  let fr = path[0] as Uint8Array;
  let sr = fr;
  // Step 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) throw malformed('consistency proof is too long');
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // Step 7.
  if (sn !== 0) throw malformed('consistency proof is too short');
  if (!bytesEqual(fr, rootM)) throw invalid(`consistency proof does not lead to root of size ${m}`);
  if (!bytesEqual(sr, rootN)) throw invalid(`consistency proof does not lead to root of size ${n}`);
}

function isPowerOfTwo(n: number): boolean {
  let x = n;
  while (x > 1 && !isOdd(x)) x = half(x);
  return x === 1;
}
