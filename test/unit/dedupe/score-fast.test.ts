/**
 * The scorer's fast path (`Scorer.scoreAtLeast`: cheap/decisive comparisons first, stop at a
 * certain hard negative or once the threshold is out of reach) against the reference
 * (`Scorer.score`, every comparison): same decisions and same scores on a corpus of blocked and
 * random pairs, and `earlyHardNegative` sound on every comparison vector.
 */
import { describe, expect, it } from 'vitest';
import { generateCompanies, generateSynthetic } from '../../../bench/dedupe-synth.js';
import { DEFAULT_MATCH_PARAMS } from '../../../src/dedupe/default-params.js';
import { mapFields } from '../../../src/dedupe/fields.js';
import type { IdentityKind } from '../../../src/dedupe/fields.js';
import { blockKeys, buildProfile } from '../../../src/dedupe/profile.js';
import type { Profile } from '../../../src/dedupe/profile.js';
import {
  NULL_LEVEL,
  PERSON_COMPARISONS,
  Scorer,
  earlyHardNegative,
  hardNegative,
} from '../../../src/dedupe/score.js';
import type { PairScore } from '../../../src/dedupe/score.js';

const scorer = new Scorer(DEFAULT_MATCH_PARAMS);

function profiles(records: readonly Record<string, string>[], kind: IdentityKind): Profile[] {
  return records.map(({ id: _id, ...fields }) =>
    buildProfile(mapFields(fields, kind), kind, { defaultCountry: 'AU' }),
  );
}

/** Every (later, earlier) pair sharing a blocking key, as the index would propose them. */
function blockedPairs(ps: readonly Profile[]): [Profile, Profile][] {
  const blocks = new Map<string, number[]>();
  const pairs: [Profile, Profile][] = [];
  ps.forEach((p, i) => {
    const seen = new Set<number>();
    for (const key of blockKeys(p)) {
      const members = blocks.get(key) ?? [];
      for (const j of members) {
        if (seen.has(j) || members.length > 60) continue;
        seen.add(j);
        pairs.push([p, ps[j] as Profile]);
      }
      members.push(i);
      blocks.set(key, members);
    }
  });
  return pairs;
}

function randomPairs(ps: readonly Profile[], n: number): [Profile, Profile][] {
  let seed = 12345;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % ps.length;
  };
  return Array.from({ length: n }, () => [ps[next()] as Profile, ps[next()] as Profile]);
}

describe('Scorer.scoreAtLeast (the fast path)', () => {
  const people = profiles(generateSynthetic(4000, 21).records, 'person');
  const companies = profiles(generateCompanies(1500, 22).records, 'company');
  const corpus = [
    ...blockedPairs(people),
    ...randomPairs(people, 3000),
    ...blockedPairs(companies),
    ...randomPairs(companies, 1000),
    // a record against itself: every comparison agrees
    ...people.slice(0, 50).map((p) => [p, p] as [Profile, Profile]),
  ];

  it(
    'decides every pair as full scoring does, with the same score, at several thresholds',
    {
      timeout: 60_000,
    },
    () => {
      expect(corpus.length).toBeGreaterThan(20_000);
      const same = (x: PairScore, y: PairScore) =>
        x.probability === y.probability &&
        x.weight === y.weight &&
        x.hardNegative === y.hardNegative &&
        x.levels.join() === y.levels.join() &&
        x.contributions.join() === y.contributions.join();
      const reference = corpus.map(([a, b]) => scorer.score(a, b));
      for (const threshold of [0.5, 0.9, 0.99, 1]) {
        let passed = 0;
        let failed = 0;
        const wrong: string[] = [];
        corpus.forEach(([a, b], i) => {
          const full = reference[i] as PairScore;
          const fast = scorer.scoreAtLeast(a, b, threshold);
          if (full.probability >= threshold) {
            passed++;
            if (fast === undefined || !same(fast, full)) wrong.push(`${threshold} #${i} missed`);
          } else {
            failed++;
            if (fast !== undefined) wrong.push(`${threshold} #${i} passed wrongly`);
          }
        });
        expect(wrong).toEqual([]);
        // the corpus exercises both outcomes (at 1, only pairs whose probability rounds to 1 pass)
        expect(failed).toBeGreaterThan(1000);
        if (threshold < 1) expect(passed).toBeGreaterThan(500);
      }
    },
  );

  it('stops early for most failing pairs (the point of it)', () => {
    // The early exits are invisible in the results, so count the work instead: how many failing
    // blocked pairs are settled by the identifiers and names alone.
    const index = (name: string) => PERSON_COMPARISONS.findIndex((c) => c.name === name);
    const early = ['national_id', 'birthdate', 'email', 'firstname', 'lastname'].map(index);
    let failing = 0;
    let settled = 0;
    for (const [a, b] of blockedPairs(people)) {
      const full = scorer.score(a, b);
      if (full.probability >= 0.9) continue;
      failing++;
      const partial = new Int8Array(full.levels.length).fill(NULL_LEVEL);
      for (const i of early) partial[i] = full.levels[i] as number;
      if (earlyHardNegative('p', partial)) settled++;
    }
    expect(settled / failing).toBeGreaterThan(0.5);
  });
});

describe('earlyHardNegative', () => {
  it(
    'is true only where hardNegative fires whatever the comparisons it did not see give',
    {
      timeout: 60_000,
    },
    () => {
      const idx = (name: string) => PERSON_COMPARISONS.findIndex((c) => c.name === name);
      const levelsOf = (name: string) => {
        const c = PERSON_COMPARISONS[idx(name)]!;
        return [NULL_LEVEL, ...c.levels.map((_, i) => i)];
      };
      const seen = ['national_id', 'birthdate', 'email', 'firstname', 'lastname'];
      // the other comparisons hardNegative reads
      const unseen = ['phone', 'street', 'street2', 'postcode', 'city'];
      const vectors = (names: readonly string[]): number[][] =>
        names.reduce<number[][]>(
          (acc, name) => acc.flatMap((v) => levelsOf(name).map((l) => [...v, l])),
          [[]],
        );
      const unseenVectors = vectors(unseen);
      const seenAt = seen.map(idx);
      const unseenAt = unseen.map(idx);
      let early = 0;
      const unsound: string[] = [];
      for (const known of vectors(seen)) {
        const levels = new Int8Array(PERSON_COMPARISONS.length).fill(NULL_LEVEL);
        seenAt.forEach((i, k) => (levels[i] = known[k] as number));
        if (!earlyHardNegative('p', levels)) continue;
        early++;
        for (const rest of unseenVectors) {
          for (let k = 0; k < unseenAt.length; k++) levels[unseenAt[k]!] = rest[k]!;
          if (hardNegative('p', levels) === undefined) unsound.push(levels.join());
        }
      }
      expect(unsound).toEqual([]);
      expect(early).toBeGreaterThan(100);
    },
  );
});
