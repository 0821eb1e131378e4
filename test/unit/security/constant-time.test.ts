import { describe, expect, it } from 'vitest';
import { constantTimeEqual } from '../../../src/security/constant-time.js';

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

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

describe('constantTimeEqual', () => {
  describe('when both sides are strings', () => {
    it('is true for equal strings', () => {
      expect(constantTimeEqual('', '')).toBe(true);
      expect(constantTimeEqual('s3cr3t-admin-token', 's3cr3t-admin-token')).toBe(true);
      expect(constantTimeEqual('pâté 😀', 'pâté 😀')).toBe(true);
    });

    it('is false for strings of the same length that differ', () => {
      expect(constantTimeEqual('s3cr3t-admin-token', 's3cr3t-admin-tokeN')).toBe(false);
      expect(constantTimeEqual('a', 'b')).toBe(false);
      expect(constantTimeEqual('é', 'è')).toBe(false);
    });

    it('is false for strings of different lengths', () => {
      expect(constantTimeEqual('token', 'token ')).toBe(false);
      expect(constantTimeEqual('', 'x')).toBe(false);
      expect(constantTimeEqual('x', '')).toBe(false);
    });

    it('is false, not a throw, when UTF-16 lengths match but UTF-8 lengths differ', () => {
      expect(() => constantTimeEqual('é', 'e')).not.toThrow();
      expect(constantTimeEqual('é', 'e')).toBe(false);
      expect(constantTimeEqual('😀', 'ab')).toBe(false);
    });
  });

  describe('when both sides are bytes', () => {
    it('is true for equal bytes', () => {
      expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
      expect(constantTimeEqual(bytes(1, 2, 3), bytes(1, 2, 3))).toBe(true);
      expect(constantTimeEqual(Buffer.from('abc'), bytes(0x61, 0x62, 0x63))).toBe(true);
    });

    it('is false for bytes of the same length that differ in one bit', () => {
      const a = new Uint8Array(32).fill(0x5a);
      for (let bit = 0; bit < 256; bit += 37) {
        const b = a.slice();
        b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
        expect(constantTimeEqual(a, b)).toBe(false);
      }
    });

    it('is false for bytes of different lengths', () => {
      expect(constantTimeEqual(bytes(1, 2, 3), bytes(1, 2))).toBe(false);
      expect(constantTimeEqual(bytes(), bytes(0))).toBe(false);
      expect(constantTimeEqual(bytes(1, 2, 3, 0), bytes(1, 2, 3))).toBe(false);
    });

    it('compares only the viewed bytes of a subarray', () => {
      const backing = bytes(9, 1, 2, 3, 9);
      expect(constantTimeEqual(backing.subarray(1, 4), bytes(1, 2, 3))).toBe(true);
      expect(constantTimeEqual(backing.subarray(0, 3), bytes(1, 2, 3))).toBe(false);
    });
  });

  describe('when one side is a string and the other bytes', () => {
    it('compares the UTF-8 encoding of the string', () => {
      expect(constantTimeEqual('abc', bytes(0x61, 0x62, 0x63))).toBe(true);
      expect(constantTimeEqual(Buffer.from('é', 'utf8'), 'é')).toBe(true);
      expect(constantTimeEqual('abd', bytes(0x61, 0x62, 0x63))).toBe(false);
      expect(constantTimeEqual('é', bytes(0xe9))).toBe(false);
    });
  });

  describe('when given random inputs', () => {
    it('never throws and agrees with a plain comparison', () => {
      const random = rng(4);
      for (let i = 0; i < 2000; i++) {
        const a = Uint8Array.from({ length: random(6) }, () => random(3));
        const b = Uint8Array.from({ length: random(6) }, () => random(3));
        const expected = Buffer.compare(a, b) === 0;
        expect(constantTimeEqual(a, b)).toBe(expected);
        const as = String.fromCharCode(...a.map((x) => x + 0x61));
        const bs = String.fromCharCode(...b.map((x) => x + 0xe0));
        expect(() => constantTimeEqual(as, bs)).not.toThrow();
        expect(constantTimeEqual(as, bs)).toBe(a.length === 0 && b.length === 0);
        expect(constantTimeEqual(as, as)).toBe(true);
      }
    });
  });
});
