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
