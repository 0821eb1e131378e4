import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import type { InputErrorCode } from '../../../src/errors.js';
import {
  canonicalBytes,
  canonicalize,
  quoteString,
  sortedKeys,
} from '../../../src/ledger/canonical.js';
import type { JsonValue } from '../../../src/ledger/canonical.js';

type Vectors = {
  numbers: { ieee754: string; json: string; comment?: string }[];
  numbersOutOfRange: { ieee754: string; comment: string }[];
  primitives: { input: string; stringify: string; canonical: string; utf8Hex: string };
  sorting: { input: string; expectedValueOrder: string[] };
  testdata: { name: string; input: string; output: string; outputHex: string }[];
};

const vectors = JSON.parse(
  readFileSync(new URL('../../vectors/jcs-rfc8785.json', import.meta.url), 'utf8'),
) as Vectors;

// ---------------------------------------------------------------------------------------------
// Helpers

/** The IEEE 754 double whose 64 bits are `hex` (big-endian, as RFC 8785 Appendix B writes them). */
function doubleFromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

/** The InputError `fn` throws, as code and path; anything else thrown (TypeError…) fails the test. */
function failureOf(
  fn: () => unknown,
): { code: InputErrorCode; path: string | undefined } | 'NO_ERROR' {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return { code: err.code, path: err.path };
    throw err;
  }
  return 'NO_ERROR';
}

const codeOf = (fn: () => unknown): InputErrorCode | 'NO_ERROR' => {
  const failure = failureOf(fn);
  return failure === 'NO_ERROR' ? failure : failure.code;
};

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

/** Code points a random string draws from: escapes, controls, non-ASCII BMP, astral (pairs). */
const CODE_POINT_POOLS: readonly (readonly [number, number])[] = [
  [0x20, 0x7e], // printable ASCII, including '"', '\\' and '/'
  [0x00, 0x1f], // C0 controls: \b \t \n \f \r and \u00XX
  [0x7f, 0xff], // DEL, C1 controls, Latin-1
  [0x100, 0xd7ff], // BMP below the surrogates
  [0xe000, 0xffff], // BMP above the surrogates (U+2028/U+2029 are below, FB33 here)
  [0x10000, 0x10ffff], // astral: a surrogate pair in UTF-16
];

function randomString(random: (below: number) => number): string {
  const length = random(12);
  let out = '';
  for (let i = 0; i < length; i++) {
    const [lo, hi] = CODE_POINT_POOLS[random(CODE_POINT_POOLS.length)] as readonly [number, number];
    out += String.fromCodePoint(lo + random(hi - lo + 1));
  }
  return out;
}

function randomNumber(random: (below: number) => number): number {
  switch (random(4)) {
    case 0:
      return random(2001) - 1000;
    case 1:
      return (random(2 ** 31) - 2 ** 30) / 2 ** random(40);
    default: {
      // Any finite double, from random bits: subnormals, huge and tiny exponents, both signs.
      const view = new DataView(new ArrayBuffer(8));
      for (;;) {
        view.setUint32(0, random(2 ** 32));
        view.setUint32(4, random(2 ** 32));
        const value = view.getFloat64(0);
        if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      }
    }
  }
}

/** A random JSON value; object members are defined (not assigned) so "__proto__" is a plain key. */
function randomJson(random: (below: number) => number, depth = 0): JsonValue {
  const kind = random(depth >= 4 ? 4 : 6);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return random(2) === 1;
    case 2:
      return randomNumber(random);
    case 3:
      return randomString(random);
    case 4:
      return Array.from({ length: random(5) }, () => randomJson(random, depth + 1));
    default: {
      const obj: Record<string, JsonValue> = {};
      const size = random(6);
      for (let i = 0; i < size; i++) {
        const key = random(10) === 0 ? '__proto__' : randomString(random);
        Object.defineProperty(obj, key, {
          value: randomJson(random, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return obj;
    }
  }
}

/** A deep copy of `value` whose objects have their members inserted in a shuffled order. */
function shuffledCopy(value: JsonValue, random: (below: number) => number): JsonValue {
  if (Array.isArray(value)) return value.map((v) => shuffledCopy(v, random));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = random(i + 1);
    [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
  }
  const out: Record<string, JsonValue> = {};
  for (const key of keys) {
    Object.defineProperty(out, key, {
      value: shuffledCopy(value[key] as JsonValue, random),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('canonicalize', () => {
  describe('when serialising the RFC 8785 Appendix B number samples', () => {
    for (const { ieee754, json, comment } of vectors.numbers) {
      it(`writes 0x${ieee754} as ${json}${comment ? ` (${comment})` : ''}`, () => {
        const value = doubleFromBits(ieee754);
        expect(canonicalize(value)).toBe(json);
        expect(canonicalize([value])).toBe(`[${json}]`);
        expect(canonicalize({ n: value })).toBe(`{"n":${json}}`);
      });
    }

    it('writes minus zero as "0"', () => {
      expect(canonicalize(-0)).toBe('0');
      expect(Object.is(doubleFromBits('8000000000000000'), -0)).toBe(true);
    });

    it('parses each sample back to the same double', () => {
      for (const { ieee754, json } of vectors.numbers) {
        const value = doubleFromBits(ieee754);
        expect(JSON.parse(json)).toBe(Object.is(value, -0) ? 0 : value);
      }
    });
  });

  describe('when a number is out of range (Appendix B note 3, §3.2.2.3)', () => {
    for (const { ieee754, comment } of vectors.numbersOutOfRange) {
      it(`rejects 0x${ieee754} (${comment}) with FIELD_VALUE_INVALID`, () => {
        expect(codeOf(() => canonicalize(doubleFromBits(ieee754)))).toBe('FIELD_VALUE_INVALID');
      });
    }

    it('rejects NaN, Infinity and -Infinity with FIELD_VALUE_INVALID', () => {
      for (const value of [NaN, Infinity, -Infinity]) {
        expect(codeOf(() => canonicalize(value))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalize([1, value]))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalize({ a: value }))).toBe('FIELD_VALUE_INVALID');
      }
    });
  });

  describe('when serialising the §3.2.2 primitives sample', () => {
    const parsed = JSON.parse(vectors.primitives.input) as unknown;

    it('differs from JSON.stringify only in member order', () => {
      expect(JSON.stringify(parsed)).toBe(vectors.primitives.stringify);
      expect(canonicalize(parsed)).toBe(vectors.primitives.canonical);
    });

    it('gives the §3.2.4 UTF-8 bytes', () => {
      const bytes = canonicalBytes(parsed);
      expect(bytes).toBeInstanceOf(Buffer);
      expect(bytes.toString('hex')).toBe(vectors.primitives.utf8Hex);
    });
  });

  describe('when sorting the §3.2.3 property names by UTF-16 code units', () => {
    const canonical = canonicalize(JSON.parse(vectors.sorting.input));

    it('orders the members as the RFC expects', () => {
      const positions = vectors.sorting.expectedValueOrder.map((v) => canonical.indexOf(`"${v}"`));
      expect(positions.every((p) => p > 0)).toBe(true);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    });

    it('writes the names unescaped, except for the control character', () => {
      expect(canonical).toBe(
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",' +
          '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",' +
          '"\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
      );
    });

    it('puts an astral name (surrogate pair) before U+FB33, unlike code point order', () => {
      expect(canonicalize({ '\ufb33': 1, '\u{1f600}': 2 })).toBe('{"\u{1f600}":2,"\ufb33":1}');
    });

    it('ignores the insertion order of integer-like names', () => {
      expect(canonicalize({ 10: 'a', 2: 'b', 1: 'c', x: 'd', '': 'e' })).toBe(
        '{"":"e","1":"c","10":"a","2":"b","x":"d"}',
      );
    });
  });

  describe('when canonicalising the cyberphone/json-canonicalization test data', () => {
    for (const { name, input, output, outputHex } of vectors.testdata) {
      it(`turns input/${name}.json into output/${name}.json`, () => {
        const parsed = JSON.parse(input) as unknown;
        expect(canonicalize(parsed)).toBe(output);
        expect(canonicalBytes(parsed).toString('hex')).toBe(outputHex);
      });
    }
  });

  describe('when escaping strings (§3.2.2.2)', () => {
    const SHORT: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };

    it('writes U+0000..U+001F as the five short escapes or lower-case \\u00hh', () => {
      for (let c = 0; c < 0x20; c++) {
        const expected = SHORT[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
        expect(canonicalize(String.fromCharCode(c))).toBe(`"${expected}"`);
      }
    });

    it('escapes only the quote and the backslash among the other characters', () => {
      expect(canonicalize('"')).toBe('"\\""');
      expect(canonicalize('\\')).toBe('"\\\\"');
      for (const raw of ['/', '\u007f', '\u0080', '\u2028', '\u2029', '\ufeff', '\uffff', "<>&'"]) {
        expect(canonicalize(raw)).toBe(`"${raw}"`);
      }
    });

    it('writes a surrogate pair as the 4-byte UTF-8 of its code point', () => {
      expect(canonicalBytes('\ud83d\ude00').toString('hex')).toBe('22f09f988022');
    });

    it('does not normalise Unicode', () => {
      expect(canonicalize('A\u030a')).toBe('"A\u030a"');
      expect(canonicalize('A\u030a')).not.toBe(canonicalize('\u00c5'));
    });
  });

  describe('when serialising nested arrays and objects', () => {
    it('sorts members at every depth and keeps array order', () => {
      const value = {
        b: [{ d: 1, c: [{ f: null, e: true }, [], {}] }, 'z', ['y', 'x']],
        a: { z: { y: 'x', w: [3, 2, 1] } },
      };
      expect(canonicalize(value)).toBe(
        '{"a":{"z":{"w":[3,2,1],"y":"x"}},"b":[{"c":[{"e":true,"f":null},[],{}],"d":1},"z",["y","x"]]}',
      );
    });

    it('writes top-level literals, empty containers and no whitespace', () => {
      expect(canonicalize(null)).toBe('null');
      expect(canonicalize(true)).toBe('true');
      expect(canonicalize(false)).toBe('false');
      expect(canonicalize('')).toBe('""');
      expect(canonicalize([])).toBe('[]');
      expect(canonicalize({})).toBe('{}');
      expect(canonicalize([[[]], [{}], { a: [] }])).toBe('[[[]],[{}],{"a":[]}]');
    });

    it('accepts objects without a prototype', () => {
      const bare = Object.create(null) as Record<string, unknown>;
      bare.b = 1;
      bare.a = [bare.b];
      expect(canonicalize(bare)).toBe('{"a":[1],"b":1}');
    });

    it('keeps a "__proto__" member parsed from JSON as a plain member', () => {
      expect(canonicalize(JSON.parse('{"b":2,"__proto__":{"x":1}}'))).toBe(
        '{"__proto__":{"x":1},"b":2}',
      );
    });
  });

  describe('when a value is not JSON', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const cases: [string, unknown][] = [
      ['undefined', undefined],
      ['a function', () => 1],
      ['a bigint', 1n],
      ['a symbol', Symbol('s')],
      ['a Date', new Date(0)],
      ['a Map', new Map([['a', 1]])],
      ['a Set', new Set([1])],
      ['a class instance', new Point(1, 2)],
      ['a Uint8Array', new Uint8Array([1])],
      ['a RegExp', /a/],
    ];
    for (const [name, value] of cases) {
      it(`rejects ${name} at the top level, in an array and as a member value`, () => {
        expect(codeOf(() => canonicalize(value))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalize([null, value]))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalize({ ok: 1, bad: value }))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalBytes({ ok: 1, bad: value }))).toBe('FIELD_VALUE_INVALID');
      });
    }

    it('rejects a sparse array (its hole is undefined)', () => {
      // eslint-disable-next-line no-sparse-arrays
      expect(codeOf(() => canonicalize([1, , 3]))).toBe('FIELD_VALUE_INVALID');
    });

    it('reports the path of the offending value', () => {
      expect(failureOf(() => canonicalize({ a: [1, { b: NaN }] }))).toEqual({
        code: 'FIELD_VALUE_INVALID',
        path: '$.a[1].b',
      });
      expect(failureOf(() => canonicalize([[undefined]]))).toEqual({
        code: 'FIELD_VALUE_INVALID',
        path: '$[0][0]',
      });
    });

    it('reports the right path after an earlier call failed deep inside a value', () => {
      expect(codeOf(() => canonicalize({ a: { b: [undefined] } }))).toBe('FIELD_VALUE_INVALID');
      expect(failureOf(() => canonicalize({ c: NaN }))).toEqual({
        code: 'FIELD_VALUE_INVALID',
        path: '$.c',
      });
    });
  });

  describe('when a string has a lone surrogate (§3.2.2.2 note)', () => {
    const lone = ['\ud800', '\udfff', 'a\ud83d', '\ude00b', '\ude00\ud83d', 'x\udc00\ud800y'];

    it('rejects it as a value with FIELD_VALUE_INVALID', () => {
      for (const s of lone) {
        expect(codeOf(() => canonicalize(s))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalize(['ok', s]))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalize({ k: s }))).toBe('FIELD_VALUE_INVALID');
      }
    });

    it('rejects it as a member name with FIELD_VALUE_INVALID', () => {
      for (const s of lone) {
        expect(codeOf(() => canonicalize({ [s]: 1 }))).toBe('FIELD_VALUE_INVALID');
        expect(codeOf(() => canonicalize({ a: { [s]: 'v', b: 2 } }))).toBe('FIELD_VALUE_INVALID');
      }
    });
  });

  describe('when given random JSON values', () => {
    const random = rng(8785);
    const samples = Array.from({ length: 500 }, () => randomJson(random));

    it('is idempotent: canonicalize(JSON.parse(c)) === c', () => {
      for (const value of samples) {
        const c = canonicalize(value);
        expect(canonicalize(JSON.parse(c))).toBe(c);
      }
    });

    it('does not depend on the insertion order of members', () => {
      for (const value of samples) {
        expect(canonicalize(shuffledCopy(value, random))).toBe(canonicalize(value));
      }
    });

    it('gives canonicalBytes as the UTF-8 of canonicalize', () => {
      for (const value of samples) {
        expect(canonicalBytes(value).equals(Buffer.from(canonicalize(value), 'utf8'))).toBe(true);
      }
    });

    it('reaches objects, arrays, "__proto__" members and astral strings', () => {
      const all = samples.map((v) => canonicalize(v)).join('\n');
      expect(all).toContain('"__proto__":');
      expect(all).toMatch(/\{"/);
      expect(all).toMatch(/\[\[/);
      expect(all).toMatch(/[\ud800-\udbff][\udc00-\udfff]/);
      expect(all).toMatch(/e[+-]\d/);
    });
  });

  describe('quoteString (the fast path for strings)', () => {
    it('writes every UTF-16 code unit, alone and inside text, as JSON.stringify does', () => {
      const differ: number[] = [];
      for (let c = 0; c <= 0xffff; c++) {
        const ch = String.fromCharCode(c);
        for (const s of [ch, `a${ch}b`]) if (quoteString(s) !== JSON.stringify(s)) differ.push(c);
      }
      expect(differ).toEqual([]);
    });

    it('writes surrogate pairs, escapes and long text as JSON.stringify does', () => {
      for (const s of ['', '\ud83d\ude00', 'a"b', 'a\\b', '\u2028\u2029', 'x'.repeat(70_000)]) {
        expect(quoteString(s)).toBe(JSON.stringify(s));
      }
    });
  });
});

describe('sortedKeys', () => {
  describe('when records of 0 to 40 members have names of every kind', () => {
    it('gives the order of the built-in sort (UTF-16 code units), on both sides of the cut-over', () => {
      const alphabet = [
        'a',
        'b',
        'B',
        '_',
        '1',
        '10',
        '2',
        'é',
        '€',
        '\u{1F600}',
        '\uffff',
        ' ',
        'aa',
      ];
      let seed = 7;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      for (let n = 0; n <= 40; n++) {
        for (let trial = 0; trial < 20; trial++) {
          const record: Record<string, number> = {};
          while (Object.keys(record).length < n) {
            let name = '';
            for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) {
              name += alphabet[Math.floor(rand() * alphabet.length)] as string;
            }
            record[name] = n;
          }
          expect(sortedKeys(record)).toEqual(Object.keys(record).sort());
        }
      }
    });
  });
});
