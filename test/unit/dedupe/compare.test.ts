import { describe, expect, it } from 'vitest';
import {
  compareDates,
  damerauDistance,
  editDistance,
  jaro,
  jaroWinkler,
  numericCloseness,
  phonetic,
  tokenSimilarity,
} from '../../../src/dedupe/compare.js';

describe('jaroWinkler', () => {
  it('matches the published reference values', () => {
    // Winkler's examples, as used by most implementations
    expect(jaro('martha', 'marhta')).toBeCloseTo(0.9444, 4);
    expect(jaroWinkler('martha', 'marhta')).toBeCloseTo(0.9611, 4);
    expect(jaroWinkler('dwayne', 'duane')).toBeCloseTo(0.84, 2);
    expect(jaroWinkler('dixon', 'dicksonx')).toBeCloseTo(0.8133, 4);
  });
  it('is 1 for equal, 0 for nothing in common or an empty side', () => {
    expect(jaroWinkler('smith', 'smith')).toBe(1);
    expect(jaroWinkler('abc', 'xyz')).toBe(0);
    expect(jaroWinkler('', 'abc')).toBe(0);
  });
  it('is symmetric and handles long strings', () => {
    const a = 'a'.repeat(200) + 'b';
    const b = 'a'.repeat(199) + 'cb';
    expect(jaroWinkler(a, b)).toBeCloseTo(jaroWinkler(b, a), 10);
    expect(jaroWinkler(a, b)).toBeGreaterThan(0.9);
  });
  it('gives exactly the textbook value on both sides of the short-string fast path (31 chars)', () => {
    // Textbook Jaro with arrays of flags: what the bit-mask path for short strings must equal.
    const reference = (x: string, y: string): number => {
      if (x === y) return 1;
      if (x.length === 0 || y.length === 0) return 0;
      const window = Math.max(0, Math.floor(Math.max(x.length, y.length) / 2) - 1);
      const inX = new Array<boolean>(x.length).fill(false);
      const inY = new Array<boolean>(y.length).fill(false);
      let matches = 0;
      for (let i = 0; i < x.length; i++) {
        for (let j = Math.max(0, i - window); j <= Math.min(y.length - 1, i + window); j++) {
          if (!inY[j] && x[i] === y[j]) {
            inX[i] = inY[j] = true;
            matches++;
            break;
          }
        }
      }
      if (matches === 0) return 0;
      const xs = [...x].filter((_, i) => inX[i]);
      const ys = [...y].filter((_, j) => inY[j]);
      const t = xs.filter((c, i) => c !== ys[i]).length / 2;
      return (matches / x.length + matches / y.length + (matches - t) / matches) / 3;
    };
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const word = () => Array.from({ length: 1 + rand(40) }, () => 'abcde'[rand(5)]).join('');
    let short = 0;
    for (let k = 0; k < 20_000; k++) {
      const x = word();
      // often a near copy, so that there are transpositions and matches at the window's edge
      const y = rand(2) === 0 ? word() : x.slice(0, rand(x.length + 1)) + word().slice(0, 3);
      if (x.length <= 31 && y.length <= 31) short++;
      expect(jaro(x, y)).toBe(reference(x, y));
    }
    expect(short).toBeGreaterThan(5_000);
    expect(short).toBeLessThan(19_000);
  });
});

describe('edit distances', () => {
  it('counts a transposition as one edit only in the Damerau distance', () => {
    expect(editDistance('jonh', 'john')).toBe(2);
    expect(damerauDistance('jonh', 'john')).toBe(1);
  });
  it('agrees with Levenshtein without transpositions', () => {
    expect(damerauDistance('kitten', 'sitting')).toBe(3);
    expect(damerauDistance('', 'abc')).toBe(3);
    expect(damerauDistance('abc', 'abc')).toBe(0);
    expect(damerauDistance('x'.repeat(100), 'y'.repeat(100))).toBe(100);
  });
});

describe('tokenSimilarity', () => {
  it('forgives word order and a dropped word', () => {
    expect(tokenSimilarity('7 wallaby pl', 'wallaby pl 7')).toBe(1);
    expect(tokenSimilarity('wallaby pl', '7 wallaby pl')).toBeGreaterThan(0.6);
  });
  it('is low for different streets', () => {
    expect(tokenSimilarity('main st', 'oak rd')).toBeLessThan(0.6);
  });
});

describe('phonetic', () => {
  it('codes sound-alike surnames alike', () => {
    expect(phonetic('smith')).toBe(phonetic('smyth'));
    expect(phonetic('stephens')).toBe(phonetic('stevens'));
    expect(phonetic('smith')).not.toBe(phonetic('jones'));
  });
});

describe('compareDates', () => {
  it('tells exact, swapped day/month, typo, same year and different apart', () => {
    expect(compareDates('19800312', '19800312')).toBe('exact');
    expect(compareDates('19800312', '19801203')).toBe('swapped');
    expect(compareDates('19800312', '19800313')).toBe('typo');
    expect(compareDates('19800312', '19080312')).toBe('typo');
    expect(compareDates('19800312', '19800725')).toBe('year');
    expect(compareDates('19800312', '19810725')).toBe('near');
    expect(compareDates('19800312', '19550725')).toBe('different');
  });
});

describe('numericCloseness', () => {
  it('is relative', () => {
    expect(numericCloseness(100, 100)).toBe(1);
    expect(numericCloseness(100, 90)).toBeCloseTo(0.9);
    expect(numericCloseness(0, 0)).toBe(1);
    expect(numericCloseness(-5, 5)).toBe(0);
  });
});
