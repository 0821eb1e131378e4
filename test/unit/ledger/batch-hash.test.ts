import { describe, expect, it } from 'vitest';
import {
  batchHashBackend,
  batchHasher,
  jsBatchHasher,
  nativeBatchHasher,
} from '../../../src/ledger/batch-hash.js';
import type { BatchHasher } from '../../../src/ledger/batch-hash.js';
import { HASH_SIZE, leafHash, nodeHash, sha256Reference } from '../../../src/ledger/hash.js';
import { seededRandom } from '../../../src/util/seeded-random.js';

const nativeOff = process.env.CRM_LEDGER_NATIVE === 'off';

function bytes(rand: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => Math.floor(rand() * 256));
}

/** `length` random bytes that start `offset` bytes into a larger buffer (a view, as Redis gives). */
function view(rand: () => number, length: number, offset: number): Buffer {
  const whole = Buffer.from(bytes(rand, offset + length + 7));
  return whole.subarray(offset, offset + length);
}

const referenceLeaf = (b: Uint8Array) => Buffer.from(leafHash(b, sha256Reference));
const referenceNode = (l: Uint8Array, r: Uint8Array) =>
  Buffer.from(nodeHash(l, r, sha256Reference));

describe('batch hashing backend', () => {
  it('is the native addon that npm install builds (CRM_LEDGER_NATIVE=off runs without it)', () => {
    if (nativeOff) {
      expect(batchHashBackend.name).toBe('node:crypto');
      expect(nativeBatchHasher).toBeUndefined();
      expect(batchHasher).toBe(jsBatchHasher);
    } else {
      expect(nativeBatchHasher, batchHashBackend.detail).toBeDefined();
      expect(batchHashBackend.name).toBe('native');
      expect(batchHasher).toBe(nativeBatchHasher);
    }
  });
});

const hashers: [string, BatchHasher | undefined][] = [
  ['native', nativeBatchHasher],
  ['node:crypto', jsBatchHasher],
];

describe.each(hashers)('%s batch hasher', (name, maybeHasher) => {
  // The native one is absent only when turned off on purpose (the test above fails otherwise).
  const hasher = maybeHasher as BatchHasher;
  const run = maybeHasher === undefined ? it.skip : it;
  if (maybeHasher === undefined && !nativeOff) throw new Error(`${name} hasher missing`);

  run('gives the @noble/hashes RFC 6962 leaf hash of each block, any length, any view', () => {
    const rand = seededRandom(name.length);
    const lengths = [0, 1, 55, 56, 63, 64, 65, 119, 1650, 4095, 4096, 4097, 70_000];
    for (let round = 0; round < 20; round++) lengths.push(Math.floor(rand() * 3000));
    const blocks = lengths.map((n, i) => view(rand, n, i % 13));
    const out = Buffer.alloc(blocks.length * HASH_SIZE);
    hasher.leafHashes(blocks, out);
    blocks.forEach((block, i) => {
      expect(
        out.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE).toString('hex'),
        `length ${block.length}`,
      ).toBe(referenceLeaf(block).toString('hex'));
    });
    // RFC 6962 §2.1: the hash of the empty leaf is SHA-256(0x00).
    expect(out.subarray(0, HASH_SIZE).toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
  });

  run('writes into a view of a larger buffer, and nothing beyond it', () => {
    const rand = seededRandom(3);
    const blocks = [bytes(rand, 100), bytes(rand, 200)];
    const big = Buffer.alloc(3 * HASH_SIZE + 8, 0xee);
    hasher.leafHashes(blocks, big.subarray(8, 8 + 2 * HASH_SIZE));
    expect(big.subarray(0, 8).every((b) => b === 0xee)).toBe(true);
    expect(big.subarray(8 + 2 * HASH_SIZE).every((b) => b === 0xee)).toBe(true);
    expect(big.subarray(8 + HASH_SIZE, 8 + 2 * HASH_SIZE)).toEqual(referenceLeaf(blocks[1]!));
  });

  run('gives the @noble/hashes RFC 6962 node hash of each pair of children', () => {
    const rand = seededRandom(name.length + 100);
    for (const count of [0, 1, 2, 3, 511, 512]) {
      const children = view(rand, 2 * count * HASH_SIZE, count % 5);
      const out = Buffer.alloc(count * HASH_SIZE);
      hasher.nodeHashes(children, out);
      for (let j = 0; j < count; j++) {
        const left = children.subarray(2 * j * HASH_SIZE, (2 * j + 1) * HASH_SIZE);
        const right = children.subarray((2 * j + 1) * HASH_SIZE, (2 * j + 2) * HASH_SIZE);
        expect(out.subarray(j * HASH_SIZE, (j + 1) * HASH_SIZE)).toEqual(
          referenceNode(left, right),
        );
      }
    }
  });

  run('refuses an output of the wrong size instead of writing past it or leaving it short', () => {
    const block = Buffer.from('block');
    expect(() => hasher.leafHashes([block, block], Buffer.alloc(HASH_SIZE))).toThrow(TypeError);
    expect(() => hasher.leafHashes([block], Buffer.alloc(2 * HASH_SIZE))).toThrow(TypeError);
    expect(() => hasher.nodeHashes(Buffer.alloc(64), Buffer.alloc(64))).toThrow(TypeError);
    expect(() => hasher.nodeHashes(Buffer.alloc(96), Buffer.alloc(32))).toThrow(TypeError);
    expect(() => hasher.nodeHashes(Buffer.alloc(62), Buffer.alloc(31))).toThrow(TypeError);
  });
});

describe('native batch hasher argument checks', () => {
  const run = nativeBatchHasher === undefined ? it.skip : it; // only with CRM_LEDGER_NATIVE=off
  run('throws ERR_LEDGER_NATIVE_ARGS for anything but Uint8Arrays', () => {
    const native = nativeBatchHasher as BatchHasher;
    const out = Buffer.alloc(HASH_SIZE);
    const bad: [unknown, unknown][] = [
      ['not an array', out],
      [['a string'], out],
      [[new Uint16Array(4)], out],
      [[Buffer.alloc(1)], new Uint16Array(16)],
      [[Buffer.alloc(1)], 'out'],
    ];
    for (const [blocks, o] of bad) {
      expect(() => (native.leafHashes as (a: unknown, b: unknown) => void)(blocks, o)).toThrow(
        expect.objectContaining({ code: 'ERR_LEDGER_NATIVE_ARGS' }),
      );
    }
    expect(() =>
      (native.nodeHashes as (a: unknown, b: unknown) => void)([1, 2], Buffer.alloc(32)),
    ).toThrow(expect.objectContaining({ code: 'ERR_LEDGER_NATIVE_ARGS' }));
    expect(() => (native.leafHashes as (...a: unknown[]) => void)([])).toThrow(
      expect.objectContaining({ code: 'ERR_LEDGER_NATIVE_ARGS' }),
    );
  });
});
