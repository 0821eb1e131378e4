import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProofError } from '../../../src/errors.js';
import type { ProofErrorCode } from '../../../src/errors.js';
import { fromHex, leafHash, nodeHash, sha256, toHex } from '../../../src/ledger/hash.js';
import {
  appendLeaves,
  assembleProof,
  batchProofRefs,
  consistencyProofFromLeaves,
  consistencyProofLength,
  consistencyProofRefs,
  emptyRoot,
  frontierRefs,
  inclusionProofFromLeaves,
  inclusionProofLength,
  inclusionProofRefs,
  rangeRefs,
  rootAt,
  rootFromBatchProof,
  rootFromFrontier,
  rootFromInclusionProof,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from '../../../src/ledger/merkle.js';
import type { Frontier, NodeRef } from '../../../src/ledger/merkle.js';

type Vectors = {
  leafInputsHex: string[];
  nodeHashes: string[][];
  rootHashes: string[];
  inclusionProofs: { leafIndex: number; treeSize: number; proof: string[] }[];
  consistencyProofs: { size1: number; size2: number; proof: string[] }[];
};

const vectors = JSON.parse(
  readFileSync(new URL('../../vectors/merkle-rfc6962.json', import.meta.url), 'utf8'),
) as Vectors;

// ---------------------------------------------------------------------------------------------
// Helpers

function bytes(hex: string): Uint8Array {
  const out = fromHex(hex);
  if (out === undefined) throw new Error(`bad hex in test vector: ${hex}`);
  return out;
}

const hexList = (list: readonly Uint8Array[]): string[] => list.map(toHex);

/** The ProofError code `fn` throws; anything else thrown (TypeError…) fails the test. */
function codeOf(fn: () => unknown): ProofErrorCode | 'NO_ERROR' {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProofError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): (below: number) => number {
  let a = seed >>> 0;
  return (below) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below);
  };
}

function makeLeaves(n: number, tag = 'leaf'): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`${tag} ${i}`)));
}

const refKey = (ref: NodeRef): string => `${ref.level}/${ref.index}`;

/** Node table as the store keeps it, filled by appendLeaves in random batch sizes. */
function buildTable(leaves: Uint8Array[], random: (below: number) => number) {
  const table = new Map<string, Uint8Array>();
  let size = 0;
  let frontier: Frontier = [];
  while (size < leaves.length) {
    const batch = 1 + random(Math.min(40, leaves.length - size));
    const result = appendLeaves(size, frontier, leaves.slice(size, size + batch));
    for (const node of result.newNodes) {
      const key = refKey(node);
      if (table.has(key)) throw new Error(`node ${key} written twice`);
      table.set(key, node.hash);
    }
    ({ size, frontier } = result);
  }
  const fetch = (ref: NodeRef): Uint8Array => {
    const hash = table.get(refKey(ref));
    if (hash === undefined) throw new Error(`node ${refKey(ref)} was never stored`);
    return hash;
  };
  return { table, fetch, frontier, size };
}

function flipByte(proof: Uint8Array[], element: number, at = 0): Uint8Array[] {
  return proof.map((h, i) => {
    if (i !== element) return h;
    const copy = new Uint8Array(h); // not h.slice(): node:crypto hashes are Buffers (views)
    copy[at] = (copy[at] as number) ^ 0x08;
    return copy;
  });
}

const ZERO = new Uint8Array(32);
const SOME_HASH = bytes('abacaba000000000000000000000000000000000000000000060061e00123456');

// ---------------------------------------------------------------------------------------------

describe('merkle', () => {
  const leaves = vectors.leafInputsHex.map((hex) => leafHash(bytes(hex)));
  const roots = vectors.rootHashes;

  describe('when hashing the RFC 6962 test leaves', () => {
    it('hashes the leaf inputs to the published level-0 nodes', () => {
      expect(hexList(leaves)).toEqual(vectors.nodeHashes[0]);
    });

    it('gives the published root for every size from the leaves', () => {
      for (let size = 0; size <= leaves.length; size++) {
        expect(toHex(rootFromLeaves(leaves.slice(0, size)))).toBe(roots[size]);
      }
    });

    it('gives the published root for every size from the frontier after appends', () => {
      let size = 0;
      let frontier: Frontier = [];
      expect(toHex(rootFromFrontier(frontier))).toBe(roots[0]);
      for (const leaf of leaves) {
        ({ size, frontier } = appendLeaves(size, frontier, [leaf]));
        expect(toHex(rootFromFrontier(frontier))).toBe(roots[size]);
      }
    });

    it('stores exactly the published complete-subtree nodes', () => {
      const { table } = buildTable(leaves, rng(1));
      const expected = new Map<string, string>();
      vectors.nodeHashes.forEach((level, l) =>
        level.forEach((hex, i) => expected.set(`${l}/${i}`, hex)),
      );
      expect(new Map([...table].map(([k, v]) => [k, toHex(v)]))).toEqual(expected);
    });

    it('gives the published root for every size from stored nodes', () => {
      const { fetch } = buildTable(leaves, rng(2));
      for (let size = 0; size <= leaves.length; size++) {
        expect(toHex(rootAt(size, fetch))).toBe(roots[size]);
      }
    });

    it('uses the published compact ranges as frontiers', () => {
      // transparency-dev/merkle testonly CompactTrees(): nh[level][index] per size.
      const compact: [number, number][][] = [
        [],
        [[0, 0]],
        [[1, 0]],
        [
          [1, 0],
          [0, 2],
        ],
        [[2, 0]],
        [
          [2, 0],
          [0, 4],
        ],
        [
          [2, 0],
          [1, 2],
        ],
        [
          [2, 0],
          [1, 2],
          [0, 6],
        ],
        [[3, 0]],
      ];
      compact.forEach((nodes, size) => {
        expect(frontierRefs(size)).toEqual(nodes.map(([level, index]) => ({ level, index })));
        const { frontier } = appendLeaves(0, [], leaves.slice(0, size));
        expect(hexList(frontier)).toEqual(
          nodes.map(([level, index]) => vectors.nodeHashes[level]?.[index]),
        );
      });
    });

    it('returns SHA-256 of the empty string for the empty tree', () => {
      expect(toHex(emptyRoot())).toBe(toHex(sha256(new Uint8Array(0))));
      expect(toHex(rootAt(0, () => ZERO))).toBe(roots[0]);
    });
  });

  describe('when checking the published inclusion proofs', () => {
    const { fetch } = buildTable(leaves, rng(3));
    for (const v of vectors.inclusionProofs) {
      it(`proves leaf ${v.leafIndex} in the tree of size ${v.treeSize}`, () => {
        const root = bytes(roots[v.treeSize] as string);
        const leaf = leaves[v.leafIndex] as Uint8Array;
        const tree = leaves.slice(0, v.treeSize);
        expect(hexList(inclusionProofFromLeaves(v.leafIndex, tree))).toEqual(v.proof);
        const plan = inclusionProofRefs(v.leafIndex, v.treeSize);
        expect(hexList(assembleProof(plan, fetch))).toEqual(v.proof);
        const proof = v.proof.map(bytes);
        expect(toHex(rootFromInclusionProof(leaf, v.leafIndex, v.treeSize, proof))).toBe(
          roots[v.treeSize],
        );
        expect(codeOf(() => verifyInclusion(leaf, v.leafIndex, v.treeSize, proof, root))).toBe(
          'NO_ERROR',
        );
      });
    }
  });

  describe('when checking the published consistency proofs', () => {
    const { fetch } = buildTable(leaves, rng(4));
    for (const v of vectors.consistencyProofs) {
      it(`proves size ${v.size1} is a prefix of size ${v.size2}`, () => {
        const tree = leaves.slice(0, v.size2);
        expect(hexList(consistencyProofFromLeaves(v.size1, tree))).toEqual(v.proof);
        const plan = consistencyProofRefs(v.size1, v.size2);
        expect(hexList(assembleProof(plan, fetch))).toEqual(v.proof);
        const run = () =>
          verifyConsistency(
            v.size1,
            v.size2,
            v.proof.map(bytes),
            bytes(roots[v.size1] as string),
            bytes(roots[v.size2] as string),
          );
        expect(codeOf(run)).toBe('NO_ERROR');
      });
    }
  });

  describe('when comparing stored-node proofs with the RFC 6962 reference', () => {
    const random = rng(20240601);
    const sizes = Array.from({ length: 64 }, (_, i) => i + 1);
    for (let i = 0; i < 24; i++) sizes.push(65 + random(236));

    const sample = (n: number): number[] => {
      if (n <= 64) return Array.from({ length: n }, (_, i) => i);
      const picks = new Set([0, 1, n - 2, n - 1]);
      while (picks.size < 24) picks.add(random(n));
      return [...picks];
    };

    it('produces identical, verifying inclusion proofs for every sampled leaf', () => {
      for (const n of sizes) {
        const tree = makeLeaves(n);
        const { fetch, frontier } = buildTable(tree, random);
        const root = rootFromLeaves(tree);
        expect(toHex(rootFromFrontier(frontier))).toBe(toHex(root));
        expect(toHex(rootAt(n, fetch))).toBe(toHex(root));
        for (const index of sample(n)) {
          const reference = inclusionProofFromLeaves(index, tree);
          const stored = assembleProof(inclusionProofRefs(index, n), fetch);
          expect(hexList(stored), `leaf ${index} of ${n}`).toEqual(hexList(reference));
          expect(stored).toHaveLength(inclusionProofLength(index, n));
          verifyInclusion(tree[index] as Uint8Array, index, n, stored, root);
        }
      }
    });

    it('produces identical, verifying consistency proofs for every sampled older size', () => {
      for (const n of sizes) {
        const tree = makeLeaves(n, 'c');
        const { fetch } = buildTable(tree, random);
        const rootN = rootAt(n, fetch);
        for (const m of [...sample(n), n]) {
          const rootM = rootAt(m, fetch);
          expect(toHex(rootM)).toBe(toHex(rootFromLeaves(tree.slice(0, m))));
          const reference = consistencyProofFromLeaves(m, tree);
          const stored = assembleProof(consistencyProofRefs(m, n), fetch);
          expect(hexList(stored), `${m} -> ${n}`).toEqual(hexList(reference));
          expect(stored).toHaveLength(consistencyProofLength(m, n));
          verifyConsistency(m, n, stored, rootM, rootN);
        }
      }
    });
  });

  describe('when proving many leaves at once (batch proofs)', () => {
    const random = rng(20261126);
    const sizes = Array.from({ length: 40 }, (_, i) => i + 1);
    for (let i = 0; i < 16; i++) sizes.push(41 + random(260));
    /** Random strictly increasing subsets: empty, one leaf, all leaves, and some in between. */
    const subsets = (n: number): number[][] => {
      const out: number[][] = [[], [random(n)], Array.from({ length: n }, (_, i) => i)];
      for (let t = 0; t < 4; t++) {
        const pick = new Set<number>();
        const want = 1 + random(n);
        while (pick.size < want) pick.add(random(n));
        out.push([...pick].sort((a, b) => a - b));
      }
      return out;
    };

    it('gives the RFC 6962 root from stored nodes, each read once, fewer than separate proofs', () => {
      for (const n of sizes) {
        const tree = makeLeaves(n, 'batch-proof');
        const { fetch } = buildTable(tree, random);
        const root = toHex(rootFromLeaves(tree));
        for (const indexes of subsets(n)) {
          const refs = batchProofRefs(indexes, n);
          expect(new Set(refs.map(refKey)).size, `${n}: ${indexes.join()}`).toBe(refs.length);
          if (indexes.length > 0) {
            const separate = indexes.reduce(
              (sum, i) => sum + inclusionProofRefs(i, n).flat().length,
              0,
            );
            expect(refs.length).toBeLessThanOrEqual(separate);
          } else {
            expect(refs).toEqual(frontierRefs(n));
          }
          const leaves = indexes.map((i) => tree[i] as Uint8Array);
          const got = rootFromBatchProof(indexes, leaves, n, refs.map(fetch));
          expect(toHex(got), `${n}: ${indexes.join()}`).toBe(root);
        }
      }
    });

    it('gives another root when any node or leaf is changed or a leaf is at another index', () => {
      for (const n of [1, 2, 3, 7, 8, 13, 64, 100, 255]) {
        const tree = makeLeaves(n, 'batch-tamper');
        const { fetch } = buildTable(tree, random);
        const root = toHex(rootFromLeaves(tree));
        for (const indexes of subsets(n).filter((s) => s.length > 0)) {
          const refs = batchProofRefs(indexes, n);
          const nodes = refs.map(fetch);
          const leaves = indexes.map((i) => tree[i] as Uint8Array);
          for (let e = 0; e < nodes.length; e++) {
            const forged = flipByte(nodes, e, random(32));
            expect(toHex(rootFromBatchProof(indexes, leaves, n, forged))).not.toBe(root);
          }
          for (let e = 0; e < leaves.length; e++) {
            const forged = flipByte(leaves, e, random(32));
            expect(toHex(rootFromBatchProof(indexes, forged, n, nodes))).not.toBe(root);
          }
          if (indexes.length > 1) {
            const swapped = [leaves[1], leaves[0], ...leaves.slice(2)] as Uint8Array[];
            expect(toHex(rootFromBatchProof(indexes, swapped, n, nodes))).not.toBe(root);
          }
          if (n > 1 && indexes.length < n) {
            // The same leaf hashes claimed at other indexes (with the nodes that plan names).
            const moved = indexes.map((i) => i);
            const free = Array.from({ length: n }, (_, i) => i).find((i) => !indexes.includes(i));
            moved[moved.length - 1] = free as number;
            moved.sort((a, b) => a - b);
            const movedNodes = batchProofRefs(moved, n).map(fetch);
            expect(toHex(rootFromBatchProof(moved, leaves, n, movedNodes))).not.toBe(root);
          }
        }
      }
    });

    it('throws PROOF_MALFORMED for input that does not fit the plan', () => {
      const tree = makeLeaves(10, 'batch-bad');
      const { fetch } = buildTable(tree, random);
      const nodes = batchProofRefs([2, 5], 10).map(fetch);
      const leaves = [tree[2], tree[5]] as Uint8Array[];
      expect(codeOf(() => rootFromBatchProof([2, 5], leaves, 10, nodes))).toBe('NO_ERROR');
      const cases: (() => unknown)[] = [
        () => batchProofRefs([5, 2], 10),
        () => batchProofRefs([2, 2], 10),
        () => batchProofRefs([10], 10),
        () => batchProofRefs([0], 0),
        () => batchProofRefs([1.5], 10),
        () => rootFromBatchProof([2, 5], leaves, 10, nodes.slice(1)),
        () => rootFromBatchProof([2, 5], leaves, 10, [...nodes, SOME_HASH]),
        () =>
          rootFromBatchProof([2, 5], leaves, 10, [
            nodes[0] as Uint8Array,
            new Uint8Array(31),
            ...nodes.slice(2),
          ]),
        () => rootFromBatchProof([2, 5], leaves.slice(1), 10, nodes),
        () => rootFromBatchProof([2, 5], [leaves[0] as Uint8Array, new Uint8Array(33)], 10, nodes),
      ];
      cases.forEach((call, i) => expect(codeOf(call), `case ${i}`).toBe('PROOF_MALFORMED'));
    });
  });

  describe('when appending leaves in batches', () => {
    it('completes exactly the aligned subtrees, each with its MTH', () => {
      const tree = makeLeaves(300, 'batch');
      const { table } = buildTable(tree, rng(7));
      let expectedCount = 0;
      for (let level = 0; 2 ** level <= tree.length; level++) {
        const count = Math.floor(tree.length / 2 ** level);
        expectedCount += count;
        for (let index = 0; index < count; index++) {
          const range = tree.slice(index * 2 ** level, (index + 1) * 2 ** level);
          expect(toHex(table.get(`${level}/${index}`) as Uint8Array)).toBe(
            toHex(rootFromLeaves(range)),
          );
        }
      }
      expect(table.size).toBe(expectedCount);
    });

    it('hashes 127 interior nodes for 128 leaves appended to an empty tree', () => {
      const { newNodes, size, frontier } = appendLeaves(0, [], makeLeaves(128));
      expect(size).toBe(128);
      expect(frontier).toHaveLength(1);
      expect(newNodes.filter((n) => n.level > 0)).toHaveLength(127);
      expect(newNodes).toHaveLength(255);
    });

    it('returns new nodes sorted by level then index', () => {
      const start = appendLeaves(0, [], makeLeaves(13));
      const { newNodes } = appendLeaves(13, start.frontier, makeLeaves(50, 'more'));
      const order = newNodes.map((n) => [n.level, n.index]);
      const sorted = [...order].sort(
        (a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number),
      );
      expect(order).toEqual(sorted);
      expect(newNodes.filter((n) => n.level === 0).map((n) => n.index)).toEqual(
        Array.from({ length: 50 }, (_, i) => 13 + i),
      );
    });

    it('accepts an empty batch and changes nothing', () => {
      const start = appendLeaves(0, [], makeLeaves(5));
      const again = appendLeaves(5, start.frontier, []);
      expect(again.size).toBe(5);
      expect(again.newNodes).toEqual([]);
      expect(hexList(again.frontier)).toEqual(hexList(start.frontier));
    });
  });

  describe('when the tree is close to 2^53 leaves', () => {
    // All leaves equal: every perfect subtree of one level has the same hash, so stored nodes
    // of astronomically large trees can be served and the arithmetic checked end to end.
    const perLevel: Uint8Array[] = [leafHash(new Uint8Array([42]))];
    for (let l = 1; l <= 53; l++) {
      const below = perLevel[l - 1] as Uint8Array;
      perLevel.push(nodeHash(below, below));
    }
    const fetch = (ref: NodeRef): Uint8Array => {
      expect(Number.isSafeInteger(ref.index)).toBe(true);
      expect(ref.index).toBeGreaterThanOrEqual(0);
      return perLevel[ref.level] as Uint8Array;
    };
    const max = Number.MAX_SAFE_INTEGER;
    const leaf = perLevel[0] as Uint8Array;

    it('decomposes [0, 2^53 - 1) into 53 aligned subtrees', () => {
      const refs = frontierRefs(max);
      expect(refs).toHaveLength(53);
      let at = 0;
      for (const ref of refs) {
        expect(ref.index * 2 ** ref.level).toBe(at);
        at += 2 ** ref.level;
      }
      expect(at).toBe(max);
    });

    it('plans, assembles and verifies inclusion and consistency proofs exactly', () => {
      for (const [index, size] of [
        [max - 1, max],
        [0, max],
        [2 ** 52, max],
        [2 ** 40 + 12345, 2 ** 52 + 3],
        [max - 2, max - 1],
      ] as const) {
        const proof = assembleProof(inclusionProofRefs(index, size), fetch);
        expect(proof).toHaveLength(inclusionProofLength(index, size));
        verifyInclusion(leaf, index, size, proof, rootAt(size, fetch));
      }
      for (const [m, n] of [
        [1, max],
        [2 ** 52, max],
        [max - 1, max],
        [2 ** 31 + 7, 2 ** 33 - 1],
      ] as const) {
        const proof = assembleProof(consistencyProofRefs(m, n), fetch);
        verifyConsistency(m, n, proof, rootAt(m, fetch), rootAt(n, fetch));
      }
    });

    it('refuses to grow past 2^53 - 1 leaves', () => {
      const frontier = frontierRefs(max).map(fetch);
      expect(codeOf(() => appendLeaves(max, frontier, [leaf]))).toBe('PROOF_MALFORMED');
    });
  });

  describe('when an inclusion proof is tampered with', () => {
    // Proofs for sizes up to 21; the table holds 64 leaves so roots of wrong sizes exist too.
    const tree = makeLeaves(64, 'tamper');
    const { fetch } = buildTable(tree, rng(9));
    const cases: [number, number][] = [];
    for (let size = 1; size <= 21; size++) {
      for (let index = 0; index < size; index++) cases.push([index, size]);
    }
    const rootOf = (size: number) => rootAt(size, fetch);
    /** MALFORMED when the claim or the proof length does not fit, else INVALID. */
    const expectedFor = (index: number, size: number, length: number): ProofErrorCode =>
      Number.isSafeInteger(index) &&
      index >= 0 &&
      index < size &&
      inclusionProofLength(index, size) === length
        ? 'PROOF_INVALID'
        : 'PROOF_MALFORMED';

    const check = (
      name: string,
      corrupt: (
        index: number,
        size: number,
        proof: Uint8Array[],
      ) =>
        | {
            leaf?: Uint8Array;
            index?: number;
            size?: number;
            proof?: Uint8Array[];
            root?: Uint8Array;
            code?: ProofErrorCode;
          }
        | undefined,
    ) => {
      it(`rejects ${name}`, () => {
        let tried = 0;
        for (const [index, size] of cases) {
          const proof = assembleProof(inclusionProofRefs(index, size), fetch);
          const bad = corrupt(index, size, proof);
          if (bad === undefined) continue;
          tried++;
          const args = {
            leaf: tree[index] as Uint8Array,
            index,
            size,
            proof,
            root: rootOf(size),
            ...bad,
          };
          const want = bad.code ?? expectedFor(args.index, args.size, args.proof.length);
          expect(
            codeOf(() => verifyInclusion(args.leaf, args.index, args.size, args.proof, args.root)),
            `${name}: leaf ${index} of ${size}`,
          ).toBe(want);
        }
        expect(tried).toBeGreaterThan(0);
      });
    };

    check('a flipped byte in each proof element', (_i, _s, proof) =>
      proof.length === 0
        ? undefined
        : { proof: flipByte(proof, proof.length - 1, 31), code: 'PROOF_INVALID' },
    );
    it('rejects a flipped byte in every element position', () => {
      const proof = assembleProof(inclusionProofRefs(5, 21), fetch);
      for (let e = 0; e < proof.length; e++) {
        for (const at of [0, 17, 31]) {
          expect(
            codeOf(() =>
              verifyInclusion(tree[5] as Uint8Array, 5, 21, flipByte(proof, e, at), rootOf(21)),
            ),
          ).toBe('PROOF_INVALID');
        }
      }
    });
    check('a truncated proof', (_i, _s, proof) =>
      proof.length === 0 ? undefined : { proof: proof.slice(0, -1), code: 'PROOF_MALFORMED' },
    );
    check('an extra trailing element', (_i, size, proof) => ({
      proof: [...proof, rootOf(size)],
      code: 'PROOF_MALFORMED',
    }));
    check('an extra leading element', (_i, _s, proof) => ({
      proof: [ZERO, ...proof],
      code: 'PROOF_MALFORMED',
    }));
    check('an inserted element', (_i, _s, proof) =>
      proof.length < 2
        ? undefined
        : {
            proof: [proof[0] as Uint8Array, SOME_HASH, ...proof.slice(1)],
            code: 'PROOF_MALFORMED',
          },
    );
    check('swapped proof elements', (_i, _s, proof) => {
      if (proof.length < 2) return undefined;
      const swapped = [proof[1] as Uint8Array, proof[0] as Uint8Array, ...proof.slice(2)];
      return { proof: swapped, code: 'PROOF_INVALID' };
    });
    check('a reversed proof', (_i, _s, proof) =>
      proof.length < 2 ? undefined : { proof: [...proof].reverse(), code: 'PROOF_INVALID' },
    );
    check('index - 1', (index) => (index === 0 ? undefined : { index: index - 1 }));
    check('index + 1', (index) => ({ index: index + 1 }));
    check('index ^ 2', (index) => ({ index: index ^ 2 }));
    check('an index equal to the size', (_i, size) => ({ index: size, code: 'PROOF_MALFORMED' }));
    // A wrong size is claimed together with the root of that size, as a checkpoint would.
    const wrongSize = (size: number) => ({ size, root: rootOf(size) });
    check('size + 1', (_i, size) => wrongSize(size + 1));
    check('size - 1', (_i, size) => (size === 1 ? undefined : wrongSize(size - 1)));
    check('size * 2', (_i, size) => wrongSize(size * 2));
    check('size / 2', (_i, size) => wrongSize(Math.floor(size / 2)));

    it('binds the tree size only through the root (RFC 9162 path shapes repeat)', () => {
      // Leaf 8 of 12 and leaf 8 of 11 walk the same path shape, so the proof for size 12 also
      // "verifies" as size 11 against the size-12 root. Callers must take (size, root) from one
      // signed checkpoint; the root of size 11 itself is rejected.
      const proof = assembleProof(inclusionProofRefs(8, 12), fetch);
      const leaf = tree[8] as Uint8Array;
      expect(codeOf(() => verifyInclusion(leaf, 8, 11, proof, rootOf(12)))).toBe('NO_ERROR');
      expect(codeOf(() => verifyInclusion(leaf, 8, 11, proof, rootOf(11)))).toBe('PROOF_INVALID');
    });
    check('the wrong leaf', (index) => ({
      leaf: tree[(index + 1) % tree.length] as Uint8Array,
      code: 'PROOF_INVALID',
    }));
    check('the root of another size', (_i, size) =>
      size === tree.length ? undefined : { root: rootOf(size + 1), code: 'PROOF_INVALID' },
    );
    check('the empty tree root', () => ({ root: emptyRoot(), code: 'PROOF_INVALID' }));
    check('a 31-byte root', (_i, size) => ({
      root: rootOf(size).slice(1),
      code: 'PROOF_MALFORMED',
    }));
    check('a 31-byte proof element', (_i, _s, proof) =>
      proof.length === 0
        ? undefined
        : { proof: [proof[0]?.slice(1) as Uint8Array, ...proof.slice(1)], code: 'PROOF_MALFORMED' },
    );
    check('an empty leaf hash', () => ({ leaf: new Uint8Array(0), code: 'PROOF_MALFORMED' }));
  });

  describe('when a consistency proof is tampered with', () => {
    const tree = makeLeaves(21, 'cons');
    const { fetch } = buildTable(tree, rng(11));
    const rootOf = (size: number) => rootAt(size, fetch);
    const pairs: [number, number][] = [];
    for (let n = 1; n <= tree.length; n++) for (let m = 1; m < n; m++) pairs.push([m, n]);
    const expectedFor = (m: number, n: number, length: number): ProofErrorCode =>
      m >= 0 && m <= n && consistencyProofLength(m, n) === length
        ? 'PROOF_INVALID'
        : 'PROOF_MALFORMED';

    const check = (
      name: string,
      corrupt: (
        m: number,
        n: number,
        proof: Uint8Array[],
      ) =>
        | {
            m?: number;
            n?: number;
            proof?: Uint8Array[];
            rootM?: Uint8Array;
            rootN?: Uint8Array;
            code?: ProofErrorCode;
          }
        | undefined,
    ) => {
      it(`rejects ${name}`, () => {
        let tried = 0;
        for (const [m, n] of pairs) {
          const proof = assembleProof(consistencyProofRefs(m, n), fetch);
          const bad = corrupt(m, n, proof);
          if (bad === undefined) continue;
          tried++;
          const args = { m, n, proof, rootM: rootOf(m), rootN: rootOf(n), ...bad };
          const want = bad.code ?? expectedFor(args.m, args.n, args.proof.length);
          expect(
            codeOf(() => verifyConsistency(args.m, args.n, args.proof, args.rootM, args.rootN)),
            `${name}: ${m} -> ${n}`,
          ).toBe(want);
        }
        expect(tried).toBeGreaterThan(0);
      });
    };

    it('rejects a flipped byte in every element of every proof', () => {
      for (const [m, n] of pairs) {
        const proof = assembleProof(consistencyProofRefs(m, n), fetch);
        for (let e = 0; e < proof.length; e++) {
          expect(
            codeOf(() => verifyConsistency(m, n, flipByte(proof, e, e % 32), rootOf(m), rootOf(n))),
            `${m} -> ${n} element ${e}`,
          ).toBe('PROOF_INVALID');
        }
      }
    });
    check('a truncated proof', (_m, _n, proof) => ({
      proof: proof.slice(0, -1),
      code: 'PROOF_MALFORMED',
    }));
    check('an empty proof', () => ({ proof: [], code: 'PROOF_MALFORMED' }));
    check('an extra trailing element', (m, _n, proof) => ({
      proof: [...proof, rootOf(m)],
      code: 'PROOF_MALFORMED',
    }));
    check('an extra leading element', (_m, n, proof) => ({
      proof: [rootOf(n), ...proof],
      code: 'PROOF_MALFORMED',
    }));
    check('a duplicated first element', (_m, _n, proof) => ({
      proof: [proof[0] as Uint8Array, ...proof],
      code: 'PROOF_MALFORMED',
    }));
    check('swapped proof elements', (_m, _n, proof) => {
      if (proof.length < 2 || toHex(proof[0] as Uint8Array) === toHex(proof[1] as Uint8Array))
        return undefined;
      return {
        proof: [proof[1] as Uint8Array, proof[0] as Uint8Array, ...proof.slice(2)],
        code: 'PROOF_INVALID',
      };
    });
    check('swapped roots', (m, n) => ({
      rootM: rootOf(n),
      rootN: rootOf(m),
      code: 'PROOF_INVALID',
    }));
    check('a wrong first root', () => ({ rootM: SOME_HASH, code: 'PROOF_INVALID' }));
    check('a wrong second root', () => ({ rootN: SOME_HASH, code: 'PROOF_INVALID' }));
    check('a 31-byte root', (m) => ({ rootM: rootOf(m).slice(1), code: 'PROOF_MALFORMED' }));
    check('first size - 1', (m) => ({ m: m - 1 }));
    check('first size + 1', (m) => ({ m: m + 1 }));
    check('first size ^ 2', (m) => ({ m: m ^ 2 }));
    check('second size * 2', (_m, n) => ({ n: n * 2 }));
    check('second size / 2', (_m, n) => ({ n: Math.floor(n / 2) }));
    check('a proof for m > n (sizes swapped)', (m, n) => ({ m: n, n: m, code: 'PROOF_MALFORMED' }));

    it('accepts m = n only with an empty proof and equal roots', () => {
      const root = rootOf(7);
      expect(codeOf(() => verifyConsistency(7, 7, [], root, root))).toBe('NO_ERROR');
      expect(codeOf(() => verifyConsistency(7, 7, [root], root, root))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => verifyConsistency(7, 7, [], root, rootOf(6)))).toBe('PROOF_INVALID');
    });

    it('accepts m = 0 only with an empty proof and the empty-tree root', () => {
      const empty = emptyRoot();
      expect(codeOf(() => verifyConsistency(0, 9, [], empty, rootOf(9)))).toBe('NO_ERROR');
      expect(codeOf(() => verifyConsistency(0, 0, [], empty, empty))).toBe('NO_ERROR');
      expect(codeOf(() => verifyConsistency(0, 9, [empty], empty, rootOf(9)))).toBe(
        'PROOF_MALFORMED',
      );
      expect(codeOf(() => verifyConsistency(0, 9, [], rootOf(1), rootOf(9)))).toBe('PROOF_INVALID');
      expect(codeOf(() => verifyConsistency(0, 0, [], empty, rootOf(1)))).toBe('PROOF_INVALID');
    });
  });

  describe('when sizes or indices are not usable numbers', () => {
    const bad = [
      -1,
      1.5,
      Number.NaN,
      Infinity,
      2 ** 53,
      '3',
      null,
      undefined,
      3n,
    ] as unknown as number[];
    const tree = makeLeaves(4);
    const root = rootFromLeaves(tree);
    const leaf = tree[0] as Uint8Array;

    it('throws PROOF_MALFORMED from every function taking a size or index', () => {
      for (const x of bad) {
        const calls: (() => unknown)[] = [
          () => frontierRefs(x),
          () => rangeRefs(x, 4),
          () => rangeRefs(0, x),
          () => inclusionProofRefs(x, 4),
          () => inclusionProofRefs(0, x),
          () => consistencyProofRefs(x, 4),
          () => consistencyProofRefs(1, x),
          () => inclusionProofLength(x, 4),
          () => consistencyProofLength(1, x),
          () => rootAt(x, () => leaf),
          () => appendLeaves(x, [], []),
          () => inclusionProofFromLeaves(x, tree),
          () => consistencyProofFromLeaves(x, tree),
          () => rootFromInclusionProof(leaf, x, 4, []),
          () => verifyInclusion(leaf, x, 4, [], root),
          () => verifyInclusion(leaf, 0, x, [], root),
          () => verifyConsistency(x, 4, [], root, root),
          () => verifyConsistency(1, x, [], root, root),
        ];
        calls.forEach((call, i) =>
          expect(codeOf(call), `${String(x)} in call ${i}`).toBe('PROOF_MALFORMED'),
        );
      }
    });

    it('throws PROOF_MALFORMED for out-of-range questions', () => {
      expect(codeOf(() => inclusionProofRefs(4, 4))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => inclusionProofRefs(0, 0))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => verifyInclusion(leaf, 0, 0, [], emptyRoot()))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => consistencyProofRefs(5, 4))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => rangeRefs(3, 2))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => inclusionProofFromLeaves(4, tree))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => consistencyProofFromLeaves(5, tree))).toBe('PROOF_MALFORMED');
    });

    it('throws PROOF_MALFORMED for proofs and hashes of the wrong type', () => {
      const notProofs = [
        null,
        undefined,
        'abc',
        {},
        [null],
        ['00'],
        [new Uint8Array(33)],
      ] as unknown as Uint8Array[][];
      for (const p of notProofs) {
        expect(codeOf(() => verifyInclusion(leaf, 0, 2, p, root))).toBe('PROOF_MALFORMED');
        expect(codeOf(() => verifyConsistency(1, 2, p, root, root))).toBe('PROOF_MALFORMED');
      }
      expect(codeOf(() => verifyInclusion('x' as unknown as Uint8Array, 0, 1, [], root))).toBe(
        'PROOF_MALFORMED',
      );
      expect(codeOf(() => rootFromFrontier([new Uint8Array(3)]))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => rootFromLeaves(null as unknown as Uint8Array[]))).toBe('PROOF_MALFORMED');
    });

    it('throws PROOF_MALFORMED for a frontier that does not match the size', () => {
      const { frontier } = appendLeaves(0, [], tree.slice(0, 3));
      expect(codeOf(() => appendLeaves(4, frontier, [leaf]))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => appendLeaves(3, frontier.slice(1), [leaf]))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => appendLeaves(3, frontier, [new Uint8Array(31)]))).toBe('PROOF_MALFORMED');
    });

    it('throws PROOF_MALFORMED when a stored node is not a 32-byte hash', () => {
      const plan = inclusionProofRefs(0, 4);
      expect(codeOf(() => assembleProof(plan, () => new Uint8Array(31)))).toBe('PROOF_MALFORMED');
      expect(codeOf(() => rootAt(3, () => undefined as unknown as Uint8Array))).toBe(
        'PROOF_MALFORMED',
      );
      expect(codeOf(() => assembleProof([[]], () => leaf))).toBe('PROOF_MALFORMED');
    });
  });
});
