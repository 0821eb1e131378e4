/**
 * Estimates the shipped match parameters (src/dedupe/default-params.ts) without labels, on
 * synthetic data only (bench/dedupe-synth.ts; never FEBRL):
 *   u  started from random record pairs (almost all non-matches);
 *   m, u, λ  by EM over the pairs the blocking keys produce (the only pairs the matcher scores).
 *
 *   npx tsx bench/dedupe-train.ts [--records 30000] [--seed 11] [--out src/dedupe/default-params.ts]
 *   npx tsx bench/dedupe-train.ts --input data.csv --json params.json   (EM on your own CSV)
 *
 * Truth labels are used only to print how well EM recovered λ, never in the estimate.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { identityKindOf, mapFields } from '../src/dedupe/fields.js';
import type { IdentityKind } from '../src/dedupe/fields.js';
import { blockKeys, buildProfile } from '../src/dedupe/profile.js';
import type { Profile } from '../src/dedupe/profile.js';
import {
  NULL_LEVEL,
  comparisonsFor,
  compareProfiles,
  estimateM,
  estimateU,
  initialM,
  kindParams,
  parseMatchParams,
} from '../src/dedupe/score.js';
import type { KindParams, MatchParams } from '../src/dedupe/score.js';
import { generateCompanies, generateSynthetic } from './dedupe-synth.js';
import { seededRandom } from '../src/util/seeded-random.js';

const BLOCK_CAP = 100;
const RANDOM_PAIRS = 300_000;

/** Candidate pairs (earlier, later) sharing a blocking key with one of `prefixes`, in memory. */
function blockedPairs(
  profiles: readonly Profile[],
  prefixes?: readonly string[],
): [number, number][] {
  const blocks = new Map<string, number[]>();
  const pairs: [number, number][] = [];
  profiles.forEach((p, i) => {
    const seen = new Set<number>();
    for (const key of blockKeys(p)) {
      if (prefixes && !prefixes.some((x) => key.startsWith(x))) continue;
      const members = blocks.get(key);
      if (members === undefined) {
        blocks.set(key, [i]);
        continue;
      }
      if (members.length <= BLOCK_CAP) for (const j of members) seen.add(j);
      members.push(i);
    }
    for (const j of seen) pairs.push([j, i]);
  });
  return pairs;
}

/**
 * EM sessions (the Splink approach): each blocks on some keys, and the comparisons of those keys
 * are left out of that session (every pair agrees on them, so they carry no information there);
 * each comparison's m is the mean of the sessions that estimated it.
 */
const SESSIONS: Record<'p' | 'c', { prefixes: string[]; exclude: string[] }[]> = {
  p: [
    { prefixes: ['pb:'], exclude: ['birthdate'] },
    { prefixes: ['pn:'], exclude: ['firstname', 'lastname'] },
    { prefixes: ['pa:'], exclude: ['street', 'postcode', 'city'] },
    { prefixes: ['pe:', 'pt:'], exclude: ['email', 'phone'] },
  ],
  c: [
    { prefixes: ['cn:'], exclude: ['company'] },
    { prefixes: ['cd:', 'ct:'], exclude: ['domain', 'phone'] },
    { prefixes: ['cp:'], exclude: ['company', 'city', 'postcode', 'country'] },
  ],
};

export function estimateKind(
  kind: 'p' | 'c',
  profiles: readonly Profile[],
  seed: number,
  isMatch?: (a: number, b: number) => boolean,
): { params: KindParams; report: string } {
  const comparisons = comparisonsFor(kind);
  const random = seededRandom(seed);
  const randomVectors: Int8Array[] = [];
  for (let i = 0; i < RANDOM_PAIRS; i++) {
    const a = Math.floor(random() * profiles.length);
    const b = Math.floor(random() * profiles.length);
    if (a !== b)
      randomVectors.push(compareProfiles(profiles[a] as Profile, profiles[b] as Profile));
  }
  const u = estimateU(kind, randomVectors);
  const mSums = comparisons.map((c) => new Array<number>(c.levels.length).fill(0));
  const mCounts = comparisons.map(() => 0);
  const lines: string[] = [];
  for (const session of SESSIONS[kind]) {
    const excluded = session.exclude.map((name) => comparisons.findIndex((c) => c.name === name));
    const vectors = blockedPairs(profiles, session.prefixes).map(([a, b]) => {
      const v = compareProfiles(profiles[a] as Profile, profiles[b] as Profile);
      for (const i of excluded) if (i >= 0) v[i] = NULL_LEVEL;
      return v;
    });
    const em = estimateM(
      kind,
      vectors,
      u,
      { m: initialM(kind), lambda: 0.5 },
      {
        maxIterations: 100,
        estimateU: false,
      },
    );
    lines.push(
      `  session ${session.prefixes.join('+')}: ${vectors.length} pairs, ${em.iterations} iterations, λ=${em.lambda.toFixed(3)}`,
    );
    comparisons.forEach((_, i) => {
      if (excluded.includes(i)) return;
      (em.m[i] as number[]).forEach((x, j) => ((mSums[i] as number[])[j]! += x));
      mCounts[i]! += 1;
    });
  }
  const m = mSums.map((row, i) => row.map((x) => x / Math.max(1, mCounts[i] as number)));
  // λ among all blocked candidate pairs (the pairs the matcher scores), m and u fixed.
  const pairs = blockedPairs(profiles);
  const vectors = pairs.map(([a, b]) =>
    compareProfiles(profiles[a] as Profile, profiles[b] as Profile),
  );
  const final = estimateM(kind, vectors, u, { m, lambda: 0.1 }, { estimateU: false, fixedM: true });
  let report = `${kind === 'p' ? 'person' : 'company'}: ${profiles.length} records, ${pairs.length} blocked pairs, ${randomVectors.length} random pairs, λ=${final.lambda.toFixed(4)}`;
  if (isMatch) {
    const trueShare = pairs.filter(([a, b]) => isMatch(a, b)).length / Math.max(1, pairs.length);
    report += ` (true share among blocked pairs: ${trueShare.toFixed(4)}, for information only)`;
  }
  return { params: kindParams(kind, m, u, final.lambda), report: [report, ...lines].join('\n') };
}

function profilesOf(rows: readonly Record<string, string>[], kind: IdentityKind): Profile[] {
  return rows.map((row) => buildProfile(mapFields(row, kind), kind, { defaultCountry: 'AU' }));
}

function main(): void {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
  };
  const seed = Number(arg('--seed', '11'));
  const input = arg('--input', '');
  let person: { params: KindParams; report: string };
  let company: { params: KindParams; report: string };
  let source: string;
  if (input !== '') {
    const rows = parse<Record<string, string>>(readFileSync(input), { columns: true, trim: true });
    const objectKind = identityKindOf(arg('--object', 'contact')) ?? 'person';
    person = estimateKind('p', profilesOf(rows, objectKind), seed);
    company = person;
    source = `EM on ${input} (${rows.length} records), no labels`;
  } else {
    const n = Number(arg('--records', '30000'));
    const synth = generateSynthetic(n, seed);
    const ids = synth.records.map((r) => synth.entityOf.get(r.id));
    person = estimateKind(
      'p',
      profilesOf(synth.records, 'person'),
      seed,
      (a, b) => ids[a] === ids[b],
    );
    const companies = generateCompanies(Math.floor(n / 3), seed + 1);
    const cids = companies.records.map((r) => companies.entityOf.get(r.id));
    company = estimateKind(
      'c',
      profilesOf(companies.records, 'company'),
      seed,
      (a, b) => cids[a] === cids[b],
    );
    source = `bench/dedupe-train.ts: u from ${RANDOM_PAIRS} random pairs, m and λ by EM (no labels) on bench/dedupe-synth.ts data (${n} people seed ${seed}, ${Math.floor(n / 3)} companies)`;
  }
  process.stdout.write(`${person.report}\n${input === '' ? company.report + '\n' : ''}`);
  const params: MatchParams = parseMatchParams({
    version: 1,
    source,
    person: person.params,
    company: company.params,
  });
  const json = arg('--json', '');
  if (json !== '') {
    writeFileSync(json, JSON.stringify(params, null, 2) + '\n');
    process.stdout.write(`wrote ${json}\n`);
    return;
  }
  const out = arg('--out', 'src/dedupe/default-params.ts');
  writeFileSync(
    out,
    [
      '/**',
      ' * Shipped match parameters, generated by `npx tsx bench/dedupe-train.ts` (do not edit by hand):',
      ' * estimated without labels on synthetic data, never on FEBRL or its truth.',
      ' */',
      "import type { MatchParams } from './score.js';",
      '',
      `export const DEFAULT_MATCH_PARAMS: MatchParams = ${JSON.stringify(params, null, 2)};`,
      '',
    ].join('\n'),
  );
  process.stdout.write(`wrote ${out}\n`);
}

main();
