import { describe, expect, it } from 'vitest';
import {
  bytesEqual,
  commitment,
  COMMITMENT_TAG,
  fromHex,
  HASH_SIZE,
  leafHash,
  nodeHash,
  RFC6962_LEAF_HASH_PREFIX,
  RFC6962_NODE_HASH_PREFIX,
  sha256,
  sha256Native,
  sha256Reference,
  toHex,
  ZERO_HASH_HEX,
} from '../../../src/ledger/hash.js';
import type { Sha256 } from '../../../src/ledger/hash.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
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

function randomBytes(random: (below: number) => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => random(256));
}

function nativeSha256(): Sha256 {
  if (sha256Native === undefined) throw new Error('node:crypto SHA-256 is missing on Node 20');
  return sha256Native;
}

const reference = (...parts: Uint8Array[]): string => toHex(sha256Reference(concat(...parts)));

// FIPS 180-2 Appendix B (SHA-256 examples) and the NIST CSRC example values.
const FIPS_180_VECTORS: [string, string, string][] = [
  ['"abc" (one block)', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['the empty string', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  [
    'the 448-bit message (two blocks)',
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  [
    'the 896-bit message',
    'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
    'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
  ],
  [
    'one million "a"',
    'a'.repeat(1_000_000),
    'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
  ],
];

// ---------------------------------------------------------------------------------------------

describe('hash', () => {
  describe('when hashing the FIPS 180 examples', () => {
    for (const [name, message, digest] of FIPS_180_VECTORS) {
      it(`gives the published digest of ${name} with both implementations`, () => {
        expect(toHex(sha256Reference(utf8(message)))).toBe(digest);
        expect(toHex(nativeSha256()(utf8(message)))).toBe(digest);
        expect(toHex(sha256(utf8(message)))).toBe(digest);
      });
    }
  });

  describe('when hashing random inputs of every length from 0 to 2048 bytes', () => {
    it('gets the same 32-byte digest from sha256Native and sha256Reference', () => {
      const random = rng(180);
      const native = nativeSha256();
      for (let length = 0; length <= 2048; length++) {
        const data = randomBytes(random, length);
        const expected = sha256Reference(data);
        expect(expected.length).toBe(HASH_SIZE);
        expect(toHex(native(data))).toBe(toHex(expected));
      }
    });

    it('uses the native implementation as sha256 on Node', () => {
      expect(sha256).toBe(sha256Native);
    });
  });

  describe('when the input is a view into a larger buffer', () => {
    it('hashes only the viewed bytes', () => {
      const random = rng(7);
      const backing = randomBytes(random, 300);
      for (const [start, end] of [
        [0, 0],
        [1, 65],
        [17, 300],
        [255, 256],
      ] as const) {
        const view = backing.subarray(start, end);
        const copy = backing.slice(start, end);
        expect(toHex(nativeSha256()(view))).toBe(toHex(sha256Reference(copy)));
        expect(toHex(sha256Reference(view))).toBe(toHex(sha256Reference(copy)));
        expect(toHex(view)).toBe(Buffer.from(copy).toString('hex'));
      }
    });
  });

  describe('when computing RFC 6962 leaf and node hashes', () => {
    const random = rng(6962);

    it('uses the prefixes 0x00 for leaves and 0x01 for nodes', () => {
      expect(RFC6962_LEAF_HASH_PREFIX).toBe(0x00);
      expect(RFC6962_NODE_HASH_PREFIX).toBe(0x01);
    });

    it('gives the RFC 6962 hash of the empty leaf', () => {
      expect(toHex(leafHash(new Uint8Array(0)))).toBe(
        '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      );
    });

    it('computes leafHash(x) as SHA-256(0x00 || x)', () => {
      for (let length = 0; length <= 200; length++) {
        const x = randomBytes(random, length);
        const expected = reference(Uint8Array.of(0x00), x);
        expect(toHex(leafHash(x))).toBe(expected);
        expect(toHex(leafHash(x, sha256Reference))).toBe(expected);
        expect(toHex(leafHash(x, nativeSha256()))).toBe(expected);
      }
    });

    it('computes nodeHash(l, r) as SHA-256(0x01 || l || r)', () => {
      for (let i = 0; i < 200; i++) {
        const l = randomBytes(random, i % 3 === 0 ? HASH_SIZE : random(80));
        const r = randomBytes(random, i % 3 === 0 ? HASH_SIZE : random(80));
        const expected = reference(Uint8Array.of(0x01), l, r);
        expect(toHex(nodeHash(l, r))).toBe(expected);
        expect(toHex(nodeHash(l, r, sha256Reference))).toBe(expected);
        expect(toHex(nodeHash(l, r, nativeSha256()))).toBe(expected);
      }
    });

    it('does not depend on the byte offset of its inputs', () => {
      const backing = randomBytes(random, 200);
      const l = backing.subarray(3, 35);
      const r = backing.subarray(100, 132);
      expect(toHex(nodeHash(l, r))).toBe(reference(Uint8Array.of(0x01), l.slice(), r.slice()));
      expect(toHex(leafHash(l))).toBe(reference(Uint8Array.of(0x00), l.slice()));
    });
  });

  describe('when separating domains', () => {
    const random = rng(11);

    it('never gives leafHash(x) for nodeHash of any split of x', () => {
      for (const length of [0, 1, 2, 31, 32, 33, 64, 65, 100]) {
        const x = randomBytes(random, length);
        const leaf = toHex(leafHash(x));
        for (let k = 0; k <= length; k++) {
          expect(toHex(nodeHash(x.subarray(0, k), x.subarray(k)))).not.toBe(leaf);
        }
      }
    });

    it('never gives the plain SHA-256 of the data as a leaf or node hash', () => {
      for (let i = 0; i < 50; i++) {
        const l = randomBytes(random, HASH_SIZE);
        const r = randomBytes(random, HASH_SIZE);
        const lr = concat(l, r);
        expect(toHex(leafHash(lr))).not.toBe(toHex(sha256(lr)));
        expect(toHex(nodeHash(l, r))).not.toBe(toHex(sha256(lr)));
        expect(toHex(nodeHash(l, r))).not.toBe(toHex(leafHash(lr)));
      }
    });

    it('tells a leaf from a node even when the leaf starts with the node prefix', () => {
      const l = randomBytes(random, HASH_SIZE);
      const r = randomBytes(random, HASH_SIZE);
      expect(toHex(leafHash(concat(Uint8Array.of(0x01), l, r)))).not.toBe(toHex(nodeHash(l, r)));
    });
  });

  describe('when committing to a field value', () => {
    const random = rng(2024);
    const salt = randomBytes(random, 16);
    const value = utf8('"ada@example.com"');

    it('uses the tag "crm-ledger/commit/v1" followed by a zero byte', () => {
      expect(Buffer.from(COMMITMENT_TAG).toString('latin1')).toBe('crm-ledger/commit/v1\u0000');
    });

    it('computes SHA-256(COMMITMENT_TAG || salt || value)', () => {
      for (let i = 0; i < 100; i++) {
        const s = randomBytes(random, 16);
        const v = randomBytes(random, random(300));
        const expected = reference(COMMITMENT_TAG, s, v);
        expect(toHex(commitment(s, v))).toBe(expected);
        expect(toHex(commitment(s, v, sha256Reference))).toBe(expected);
        expect(toHex(commitment(s, v, nativeSha256()))).toBe(expected);
      }
    });

    it('is deterministic for the same salt and value', () => {
      expect(toHex(commitment(salt, value))).toBe(toHex(commitment(salt.slice(), value.slice())));
    });

    it('differs when one bit of the salt differs', () => {
      const base = toHex(commitment(salt, value));
      for (let bit = 0; bit < salt.length * 8; bit++) {
        const other = salt.slice();
        other[bit >> 3] = (other[bit >> 3] as number) ^ (1 << (bit & 7));
        expect(toHex(commitment(other, value))).not.toBe(base);
      }
    });

    it('differs when the value differs', () => {
      const base = toHex(commitment(salt, value));
      for (const other of ['"ada@example.org"', '"Ada@example.com"', '"ada@example.com" ', '']) {
        expect(toHex(commitment(salt, utf8(other)))).not.toBe(base);
      }
    });

    it('differs from the leaf hash and plain hash of the same bytes', () => {
      const c = toHex(commitment(salt, value));
      expect(c).not.toBe(toHex(sha256(concat(salt, value))));
      expect(c).not.toBe(toHex(leafHash(concat(salt, value))));
    });
  });

  describe('when encoding and decoding hex', () => {
    it('writes lower-case hex', () => {
      expect(toHex(Uint8Array.of(0x00, 0x0f, 0xa0, 0xff))).toBe('000fa0ff');
      expect(toHex(new Uint8Array(0))).toBe('');
      expect(ZERO_HASH_HEX).toBe('0'.repeat(64));
      expect(fromHex(ZERO_HASH_HEX)).toEqual(new Uint8Array(HASH_SIZE));
    });

    it('round-trips random bytes', () => {
      const random = rng(16);
      for (let length = 0; length <= 100; length++) {
        const bytes = randomBytes(random, length);
        const hex = toHex(bytes);
        expect(hex).toMatch(/^(?:[0-9a-f]{2})*$/);
        expect(hex.length).toBe(2 * length);
        const back = fromHex(hex);
        expect(back).toBeInstanceOf(Uint8Array);
        expect(bytesEqual(back as Uint8Array, bytes)).toBe(true);
        expect(fromHex(hex)).toEqual(bytes);
      }
    });

    it('decodes the empty string to no bytes', () => {
      expect(fromHex('')).toEqual(new Uint8Array(0));
    });

    for (const [name, bad] of [
      ['an odd length', 'abc'],
      ['a single digit', '0'],
      ['upper-case digits', 'ABCD'],
      ['one upper-case digit', '00fF'],
      ['a non-hex letter', '0g'],
      ['a 0x prefix', '0x00'],
      ['spaces', '00 11'],
      ['a trailing newline', '0011\n'],
      ['a leading space', ' 0011'],
      ['a minus sign', '-1'],
      ['full-width digits', '\uff10\uff11'],
    ] as const) {
      it(`returns undefined for ${name}`, () => {
        expect(fromHex(bad)).toBeUndefined();
      });
    }
  });

  describe('when comparing bytes', () => {
    it('is true only for equal content', () => {
      expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
      expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
      expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).toBe(false);
      expect(bytesEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    });
  });
});

describe('hex fast paths', () => {
  describe('when hashing random bytes and strings', () => {
    it('sha256Hex and leafHashHex agree with the @noble/hashes reference', async () => {
      const { sha256Hex, leafHashHex, sha256Reference, toHex } =
        await import('../../../src/ledger/hash.js');
      const { randomBytes } = await import('node:crypto');
      for (let n = 0; n < 600; n += 7) {
        const bytes = new Uint8Array(randomBytes(n));
        expect(sha256Hex(bytes)).toBe(toHex(sha256Reference(bytes)));
        const prefixed = new Uint8Array(n + 1);
        prefixed.set(bytes, 1);
        expect(leafHashHex(bytes)).toBe(toHex(sha256Reference(prefixed)));
        const text = `blök ${n} ${'€'.repeat(n % 13)}`;
        const utf8 = new TextEncoder().encode(text);
        expect(sha256Hex(text)).toBe(toHex(sha256Reference(utf8)));
        const withZero = new Uint8Array(utf8.length + 1);
        withZero.set(utf8, 1);
        expect(leafHashHex(text)).toBe(toHex(sha256Reference(withZero)));
      }
    });

    it('leafHashHex of long and astral text, and the latin1 forms, agree with the reference', async () => {
      const { leafHashHex, leafHashLatin1, sha256Latin1, sha256Reference, toHex } =
        await import('../../../src/ledger/hash.js');
      const { randomBytes } = await import('node:crypto');
      for (const text of ['€'.repeat(5000), '\u{1F600}'.repeat(3000), 'x'.repeat(20_000)]) {
        const utf8 = new TextEncoder().encode(text);
        const withZero = new Uint8Array(utf8.length + 1);
        withZero.set(utf8, 1);
        expect(leafHashHex(text)).toBe(toHex(sha256Reference(withZero)));
      }
      for (const n of [0, 1, 65, 1700, 9000]) {
        const bytes = new Uint8Array(randomBytes(n));
        expect(Buffer.from(sha256Latin1(bytes), 'latin1')).toEqual(
          Buffer.from(sha256Reference(bytes)),
        );
        const prefixed = new Uint8Array(n + 1);
        prefixed.set(bytes, 1);
        expect(Buffer.from(leafHashLatin1(bytes), 'latin1')).toEqual(
          Buffer.from(sha256Reference(prefixed)),
        );
      }
    });
  });
});
