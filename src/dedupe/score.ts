/**
 * Fellegi–Sunter scoring: each comparison puts a pair of profiles on one agreement level (or
 * "null" when a side is missing the field); each level carries m = P(level | match) and
 * u = P(level | non-match); the match weight is log2(λ/(1-λ)) + Σ log2(m/u) and the match
 * probability its logistic. Parameters are estimated without labels: u from random pairs, m and λ
 * by expectation–maximisation on blocked candidate pairs (Fellegi & Sunter 1969; Winkler 1988;
 * the Splink approach), and persisted as JSON.
 *
 * Hard negatives override the weight: two different national ids or birth dates (beyond a typo)
 * are different people, and a person whose names both disagree (colleagues on one switchboard
 * phone, family at one address) is never a duplicate on shared contact data alone.
 */
import { z } from 'zod';
import {
  compareDates,
  damerauDistance,
  jaroWinkler,
  phonetic,
  tokenListSimilarity,
  tokenSimilarity,
} from './compare.js';
import { formalFirst } from './profile.js';
import type { Profile } from './profile.js';

/** Level index per comparison; NULL_LEVEL when either side lacks the field. */
export const NULL_LEVEL = -1;

export interface Comparison {
  readonly name: string;
  /** Canonical field names this comparison looks at (for the verdict's `fields`). */
  readonly fields: readonly string[];
  /** Level labels, best agreement first; the last is "disagree". */
  readonly levels: readonly string[];
  /** Level index or NULL_LEVEL. */
  level(a: Profile, b: Profile, ctx: PairContext): number;
}

/** Per-pair facts computed once and shared by comparisons (name orientation). */
export interface PairContext {
  /** b's first/last name swapped gives the better alignment with a's */
  swapped: boolean;
  /** jaroWinkler(a.fn, b.fn) and jaroWinkler(a.ln, b.ln) when pairContext computed them */
  jwFirst?: number;
  jwLast?: number;
}

function stringLevels(
  a: string | undefined,
  b: string | undefined,
  steps: readonly number[],
): number {
  if (a === undefined || b === undefined) return NULL_LEVEL;
  if (a === b) return 0;
  const s = jaroWinkler(a, b);
  for (let i = 0; i < steps.length; i++) if (s >= (steps[i] as number)) return i + 1;
  return steps.length + 1;
}

/**
 * One edit or adjacent transposition in a name of 4+ letters; in shorter names only a
 * transposition ("sma"/"sam"), since one substitution there makes another name ("sam"/"pam").
 */
function isTypo(x: string, y: string): boolean {
  if (Math.abs(x.length - y.length) > 1 || damerauDistance(x, y) > 1) return false;
  if (x.length >= 4 && y.length >= 4) return true;
  return x.length === y.length && [...x].sort().join('') === [...y].sort().join('');
}

function bFirst(b: Profile, ctx: PairContext): string | undefined {
  return ctx.swapped ? b.ln : b.fn;
}
function bLast(b: Profile, ctx: PairContext): string | undefined {
  return ctx.swapped ? b.fn : b.ln;
}

const firstname: Comparison = {
  name: 'firstname',
  fields: ['firstname'],
  levels: ['exact', 'nickname-or-jw92', 'jw80', 'disagree'],
  level(a, b, ctx) {
    const x = a.fn;
    const y = bFirst(b, ctx);
    if (x === undefined || y === undefined) return NULL_LEVEL;
    if (x === y) return 0;
    const fx = formalFirst(a) ?? x;
    const fy = ctx.swapped ? y : (formalFirst(b) ?? y);
    if (fx === fy) return 1;
    const s = !ctx.swapped && ctx.jwFirst !== undefined ? ctx.jwFirst : jaroWinkler(x, y);
    if (s >= 0.92 || isTypo(x, y)) return 1;
    return s >= 0.8 ? 2 : 3;
  },
};

const lastname: Comparison = {
  name: 'lastname',
  fields: ['lastname'],
  levels: ['exact', 'jw92', 'jw80-or-phonetic', 'disagree'],
  level(a, b, ctx) {
    const x = a.ln;
    const y = bLast(b, ctx);
    if (x === undefined || y === undefined) return NULL_LEVEL;
    if (x === y) return 0;
    const s = !ctx.swapped && ctx.jwLast !== undefined ? ctx.jwLast : jaroWinkler(x, y);
    if (s >= 0.92 || isTypo(x, y)) return 1;
    if (s >= 0.8 || phonetic(x.replace(/ /g, '')) === phonetic(y.replace(/ /g, ''))) return 2;
    return 3;
  },
};

const birthdate: Comparison = {
  name: 'birthdate',
  fields: ['birthdate'],
  levels: ['exact', 'typo-or-swapped', 'same-year', 'disagree'],
  level(a, b) {
    if (a.bd === undefined || b.bd === undefined) return NULL_LEVEL;
    switch (compareDates(a.bd, b.bd)) {
      case 'exact':
        return 0;
      case 'swapped':
      case 'typo':
        return 1;
      case 'year':
      case 'near':
        return 2;
      case 'different':
        return 3;
    }
  },
};

const nationalId: Comparison = {
  name: 'national_id',
  fields: ['national_id'],
  levels: ['exact', 'one-edit', 'two-edits', 'disagree'],
  level(a, b) {
    if (a.ni === undefined || b.ni === undefined) return NULL_LEVEL;
    if (a.ni === b.ni) return 0;
    const d = damerauDistance(a.ni, b.ni);
    return d <= 1 ? 1 : d === 2 ? 2 : 3;
  },
};

function localPart(email: string): string {
  return email.slice(0, email.lastIndexOf('@'));
}

const email: Comparison = {
  name: 'email',
  fields: ['email'],
  levels: ['exact', 'similar', 'disagree'],
  level(a, b) {
    if (a.em === undefined || b.em === undefined) return NULL_LEVEL;
    if (a.em === b.em) return 0;
    const la = localPart(a.em);
    const lb = localPart(b.em);
    // same mailbox name at another provider, or a typo in it
    if (la === lb || (la.length >= 4 && jaroWinkler(la, lb) >= 0.92)) return 1;
    return 2;
  },
};

const phone: Comparison = {
  name: 'phone',
  fields: ['phone'],
  levels: ['exact', 'last-7-digits', 'disagree'],
  level(a, b) {
    if (a.ph === undefined || b.ph === undefined) return NULL_LEVEL;
    let best = 2;
    for (const x of a.ph) {
      for (const y of b.ph) {
        if (x === y) return 0;
        if (x.length >= 7 && y.length >= 7 && x.slice(-7) === y.slice(-7)) best = 1;
      }
    }
    return best;
  },
};

const HOUSE_NUMBER = /^\d+[a-z]?$/;

interface SplitStreet {
  numbers: string;
  words: string;
  /** words without spaces */
  joined: string;
  /** words.split(' ') */
  tokens: readonly string[];
}
const splitCache = new Map<string, SplitStreet>();
const SPLIT_CACHE_MAX = 4096;

/**
 * Street lines split into house numbers and words ("12a main st" → ["12a"], "main st"). Cached:
 * the record being matched meets each of its candidates with the same street line.
 */
function splitStreet(line: string): SplitStreet {
  let split = splitCache.get(line);
  if (split === undefined) {
    const numbers: string[] = [];
    const words: string[] = [];
    for (const t of line.split(' ')) (HOUSE_NUMBER.test(t) ? numbers : words).push(t);
    const joinedWords = words.join(' ');
    split = {
      numbers: numbers.join(' '),
      words: joinedWords,
      joined: joinedWords.replace(/ /g, ''),
      tokens: joinedWords.split(' '),
    };
    if (splitCache.size >= SPLIT_CACHE_MAX) splitCache.clear();
    splitCache.set(line, split);
  }
  return split;
}

function streetSimilarity(a: string, b: string): { numbersDiffer: boolean; words: number } {
  const x = splitStreet(a);
  const y = splitStreet(b);
  const numbersDiffer = x.numbers !== '' && y.numbers !== '' && x.numbers !== y.numbers;
  // Word by word, and as one string: typists split and join words ("hilder street"/"hilderst").
  // (tokenSimilarity and jaroWinkler of the words without spaces, on the cached splits)
  const words =
    x.words === y.words
      ? 1
      : Math.max(
          x.words === '' || y.words === '' ? 0 : tokenListSimilarity(x.tokens, y.tokens),
          jaroWinkler(x.joined, y.joined),
        );
  return { numbersDiffer, words };
}

const street: Comparison = {
  name: 'street',
  fields: ['street'],
  levels: ['exact', 'similar', 'same-street-or-close', 'disagree'],
  level(a, b) {
    if (a.st === undefined || b.st === undefined) return NULL_LEVEL;
    if (a.st === b.st) return 0;
    let sim = streetSimilarity(a.st, b.st);
    // the two address lines swapped or merged (a building name in line 1 or 2)
    if ((sim.words < 0.9 || sim.numbersDiffer) && (a.s2 !== undefined || b.s2 !== undefined)) {
      const fa = a.s2 === undefined ? a.st : `${a.st} ${a.s2}`;
      const fb = b.s2 === undefined ? b.st : `${b.st} ${b.s2}`;
      const merged = streetSimilarity(fa, fb);
      if (merged.words > sim.words) sim = merged;
    }
    // Another house number in the same street is a neighbour, at best weak evidence.
    if (sim.numbersDiffer) return sim.words >= 0.9 ? 2 : 3;
    return sim.words >= 0.9 ? 1 : sim.words >= 0.85 ? 2 : 3;
  },
};

const street2: Comparison = {
  name: 'street2',
  fields: ['street'],
  levels: ['exact', 'tokens85', 'disagree'],
  level(a, b) {
    if (a.s2 === undefined || b.s2 === undefined) return NULL_LEVEL;
    if (a.s2 === b.s2) return 0;
    return tokenSimilarity(a.s2, b.s2) >= 0.85 ? 1 : 2;
  },
};

const city: Comparison = {
  name: 'city',
  fields: ['city'],
  levels: ['exact', 'jw90', 'disagree'],
  level: (a, b) => stringLevels(a.ci, b.ci, [0.9]),
};

const postcode: Comparison = {
  name: 'postcode',
  fields: ['postcode'],
  levels: ['exact', 'one-edit', 'disagree'],
  level(a, b) {
    if (a.pc === undefined || b.pc === undefined) return NULL_LEVEL;
    if (a.pc === b.pc) return 0;
    return damerauDistance(a.pc, b.pc) <= 1 ? 1 : 2;
  },
};

const state: Comparison = {
  name: 'state',
  fields: ['state'],
  levels: ['exact', 'disagree'],
  level(a, b) {
    if (a.sa === undefined || b.sa === undefined) return NULL_LEVEL;
    return a.sa === b.sa ? 0 : 1;
  },
};

const companyOfPerson: Comparison = {
  name: 'company',
  fields: ['company'],
  levels: ['exact', 'jw90', 'disagree'],
  level: (a, b) => stringLevels(a.co, b.co, [0.9]),
};

const country: Comparison = {
  name: 'country',
  fields: ['country'],
  levels: ['exact', 'disagree'],
  level(a, b) {
    if (a.cc === undefined || b.cc === undefined) return NULL_LEVEL;
    return a.cc === b.cc ? 0 : 1;
  },
};

const companyName: Comparison = {
  name: 'company',
  fields: ['company'],
  levels: ['exact', 'similar92', 'similar80', 'disagree'],
  level(a, b) {
    if (a.co === undefined || b.co === undefined) return NULL_LEVEL;
    if (a.co === b.co) return 0;
    const s = Math.max(jaroWinkler(a.co, b.co), tokenSimilarity(a.co, b.co));
    return s >= 0.92 ? 1 : s >= 0.8 ? 2 : 3;
  },
};

const domain: Comparison = {
  name: 'domain',
  fields: ['email'],
  levels: ['exact', 'disagree'],
  level(a, b) {
    if (a.dm === undefined || b.dm === undefined) return NULL_LEVEL;
    return a.dm === b.dm ? 0 : 1;
  },
};

export const PERSON_COMPARISONS: readonly Comparison[] = [
  firstname,
  lastname,
  birthdate,
  nationalId,
  email,
  phone,
  street,
  street2,
  city,
  postcode,
  state,
  companyOfPerson,
  country,
];

export const COMPANY_COMPARISONS: readonly Comparison[] = [
  companyName,
  domain,
  phone,
  street,
  city,
  postcode,
  country,
];

export function comparisonsFor(kind: 'p' | 'c'): readonly Comparison[] {
  return kind === 'p' ? PERSON_COMPARISONS : COMPANY_COMPARISONS;
}

const NO_SWAP: PairContext = { swapped: false };

/** Which orientation of b's names fits a's better (first/last swapped is a common entry error). */
export function pairContext(a: Profile, b: Profile): PairContext {
  if (a.k !== 'p' || b.fn === undefined || b.ln === undefined) return { swapped: false };
  const af = a.fn ?? '';
  const al = a.ln ?? '';
  if (af === b.fn || al === b.ln) return { swapped: false };
  // An exact cross match counts only when the other cross pair is close too: "Christina Gordon"
  // and "Gordon Albert" are two Gordons, not a swap.
  if (af === b.ln && jaroWinkler(al, b.fn) >= 0.8) return { swapped: true };
  if (al === b.fn && jaroWinkler(af, b.ln) >= 0.8) return { swapped: true };
  const jwFirst = jaroWinkler(af, b.fn);
  const jwLast = jaroWinkler(al, b.ln);
  const straight = jwFirst + jwLast;
  const crossed = jaroWinkler(af, b.ln) + jaroWinkler(al, b.fn);
  // (the name comparisons reuse the straight similarities; '' stands for a missing name here)
  const ctx: PairContext = { swapped: crossed > straight + 0.2 };
  if (a.fn !== undefined) ctx.jwFirst = jwFirst;
  if (a.ln !== undefined) ctx.jwLast = jwLast;
  return ctx;
}

/** The comparison vector of a pair: one level per comparison. */
export function compareProfiles(a: Profile, b: Profile): Int8Array {
  const comparisons = comparisonsFor(a.k);
  const ctx = pairContext(a, b);
  const out = new Int8Array(comparisons.length);
  for (let i = 0; i < comparisons.length; i++) {
    out[i] = (comparisons[i] as Comparison).level(a, b, ctx);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parameters

const levelParamsSchema = z.object({
  m: z.array(z.number().gt(0).lt(1)),
  u: z.array(z.number().gt(0).lt(1)),
});
const kindParamsSchema = z.object({
  /** prior probability that a blocked candidate pair is a match */
  lambda: z.number().gt(0).lt(1),
  comparisons: z.record(z.string(), levelParamsSchema),
});
export const matchParamsSchema = z.object({
  version: z.literal(1),
  /** how they were estimated (data set, pairs, iterations) */
  source: z.string().max(512),
  person: kindParamsSchema,
  company: kindParamsSchema,
});
export type MatchParams = z.infer<typeof matchParamsSchema>;
export type KindParams = z.infer<typeof kindParamsSchema>;

/** Validates parameters read from JSON (throws a ZodError naming the bad path). */
export function parseMatchParams(json: unknown): MatchParams {
  const params = matchParamsSchema.parse(json);
  for (const kind of ['p', 'c'] as const) {
    const kp = kind === 'p' ? params.person : params.company;
    for (const c of comparisonsFor(kind)) {
      const lp = kp.comparisons[c.name];
      if (lp === undefined || lp.m.length !== c.levels.length || lp.u.length !== c.levels.length) {
        throw new Error(
          `match parameters: ${kind === 'p' ? 'person' : 'company'}.${c.name} needs ${c.levels.length} levels`,
        );
      }
    }
  }
  return params;
}

/**
 * The order in which `Scorer.scoreAtLeast` evaluates comparisons (indexes into the kind's list):
 * the ones that decide the hard negatives first — for people, the identifiers and the names: a
 * candidate found through a shared street, phone or name sound whose names or identifiers
 * disagree is settled there, before the costly address comparisons.
 */
const EVAL_ORDER: { p: readonly number[]; c: readonly number[] } = {
  p: ['national_id', 'birthdate', 'email', 'firstname', 'lastname'].map((name) =>
    PERSON_COMPARISONS.findIndex((c) => c.name === name),
  ),
  c: ['company'].map((name) => COMPANY_COMPARISONS.findIndex((c) => c.name === name)),
};
/** How many of EVAL_ORDER's first comparisons `earlyHardNegative` needs. */
const EARLY = { p: 5, c: 1 };
for (const kind of ['p', 'c'] as const) {
  const rest = comparisonsFor(kind)
    .map((_, i) => i)
    .filter((i) => !EVAL_ORDER[kind].includes(i));
  (EVAL_ORDER as Record<'p' | 'c', number[]>)[kind] = [...EVAL_ORDER[kind], ...rest];
}

/** Slack for float sums added in another order than `weight` adds them. */
const BOUND_SLACK = 1e-9;

/** Precomputed log2(m/u) tables for fast scoring. */
export class Scorer {
  private readonly weights: { p: Float64Array[]; c: Float64Array[] };
  private readonly prior: { p: number; c: number };
  /**
   * Per kind, in EVAL_ORDER: the most the comparisons from position k on can still add (a
   * comparison's best level, or 0 for a missing field).
   */
  private readonly headroom: { p: Float64Array; c: Float64Array };

  constructor(readonly params: MatchParams) {
    const table = (kind: 'p' | 'c', kp: KindParams) =>
      comparisonsFor(kind).map((c) => {
        const lp = kp.comparisons[c.name];
        if (lp === undefined) throw new Error(`match parameters lack ${c.name}`);
        return Float64Array.from(lp.m, (m, i) => Math.log2(m / (lp.u[i] as number)));
      });
    this.weights = { p: table('p', params.person), c: table('c', params.company) };
    const logit = (l: number) => Math.log2(l / (1 - l));
    this.prior = { p: logit(params.person.lambda), c: logit(params.company.lambda) };
    const headroom = (kind: 'p' | 'c') => {
      const order = EVAL_ORDER[kind];
      const out = new Float64Array(order.length + 1);
      for (let k = order.length - 1; k >= 0; k--) {
        const w = this.weights[kind][order[k] as number] as Float64Array;
        out[k] = (out[k + 1] as number) + Math.max(0, ...w);
      }
      return out;
    };
    this.headroom = { p: headroom('p'), c: headroom('c') };
  }

  /** The match weight a probability corresponds to (`score` compares probabilities). */
  static weightOf(probability: number): number {
    return Math.log2(probability / (1 - probability));
  }

  /**
   * `score(a, b)` when its probability may reach `threshold`, undefined when it cannot — the same
   * decision as `score(a, b).probability >= threshold`, with less work for the many candidates
   * that fail: comparisons run in EVAL_ORDER, and scoring stops at a hard negative already certain
   * from the identifiers and names (`earlyHardNegative`), or once the weight so far plus the most
   * the remaining comparisons can add falls short of the threshold's weight. A pair that may pass
   * is finished and scored exactly as `score` does (same levels, same sums), so its score is equal.
   */
  scoreAtLeast(a: Profile, b: Profile, threshold: number): PairScore | undefined {
    const kind = a.k;
    const comparisons = comparisonsFor(kind);
    const order = EVAL_ORDER[kind];
    const w = this.weights[kind];
    const room = this.headroom[kind];
    // (a threshold of 1 is reached only where the float probability rounds to 1: no bound)
    const minWeight = threshold < 1 ? Scorer.weightOf(threshold) - BOUND_SLACK : -Infinity;
    const levels = new Int8Array(comparisons.length);
    let ctx: PairContext | undefined;
    let partial = this.prior[kind];
    for (let k = 0; k < order.length; k++) {
      const i = order[k] as number;
      const comparison = comparisons[i] as Comparison;
      // only the name comparisons read the context (pairContext runs up to four Jaro–Winklers)
      if (ctx === undefined && (comparison === firstname || comparison === lastname)) {
        ctx = pairContext(a, b);
      }
      const level = comparison.level(a, b, ctx ?? NO_SWAP);
      levels[i] = level;
      if (level !== NULL_LEVEL) partial += (w[i] as Float64Array)[level] as number;
      if (k + 1 === EARLY[kind] && earlyHardNegative(kind, levels)) return undefined;
      if (partial + (room[k + 1] as number) < minWeight) return undefined;
    }
    const contributions = new Float64Array(levels.length);
    const weight = this.weight(kind, levels, contributions);
    const negative = hardNegative(kind, levels);
    const probability = negative !== undefined ? 0 : 1 / (1 + Math.pow(2, -weight));
    if (!(probability >= threshold)) return undefined;
    return { probability, weight, levels, contributions };
  }

  /** Match weight (log2 odds) of a comparison vector, and per-comparison contributions. */
  weight(kind: 'p' | 'c', levels: Int8Array, contributions?: Float64Array): number {
    const w = this.weights[kind];
    let total = this.prior[kind];
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as number;
      const c = level === NULL_LEVEL ? 0 : ((w[i] as Float64Array)[level] as number);
      if (contributions) contributions[i] = c;
      total += c;
    }
    return total;
  }

  /** Scores a pair: probability in [0, 1] (0 for a hard negative) and what drove it. */
  score(a: Profile, b: Profile): PairScore {
    const levels = compareProfiles(a, b);
    const contributions = new Float64Array(levels.length);
    const weight = this.weight(a.k, levels, contributions);
    const negative = hardNegative(a.k, levels);
    const probability = negative !== undefined ? 0 : 1 / (1 + Math.pow(2, -weight));
    return {
      probability,
      weight,
      levels,
      contributions,
      ...(negative ? { hardNegative: negative } : {}),
    };
  }
}

export interface PairScore {
  probability: number;
  weight: number;
  levels: Int8Array;
  contributions: Float64Array;
  hardNegative?: string;
}

const P = Object.fromEntries(PERSON_COMPARISONS.map((c, i) => [c.name, i])) as Record<
  string,
  number
>;
const C = Object.fromEntries(COMPANY_COMPARISONS.map((c, i) => [c.name, i])) as Record<
  string,
  number
>;
const at = (levels: Int8Array, i: number | undefined) =>
  i === undefined ? NULL_LEVEL : (levels[i] as number);

/**
 * Rules that override the weight. Returns the reason, or undefined.
 * - national ids present on both sides and more than two edits apart, or birth dates present on
 *   both and not equal up to a typo, a day/month swap or the same year: different people, unless
 *   the *other* identifier agrees and the names agree (an entry error in one identifier: the data
 *   entry replaced a value). Both identifiers differing is always a veto.
 * - with no identifier (email, national id, birth date) agreeing: another first name is another
 *   person (the shared phone/address is a switchboard, a household or an office); another last
 *   name counts only at the same address with the same first name (married name); agreeing
 *   names need a phone or an address to agree too (namesakes);
 * - companies whose names disagree outright.
 */
export function hardNegative(kind: 'p' | 'c', levels: Int8Array): string | undefined {
  if (kind === 'c') {
    return at(levels, C['company']) === 3 ? 'company names differ' : undefined;
  }
  const fn = at(levels, P['firstname']);
  const ln = at(levels, P['lastname']);
  const ni = at(levels, P['national_id']);
  const bd = at(levels, P['birthdate']);
  const niAgrees = ni >= 0 && ni <= 1;
  const bdAgrees = bd >= 0 && bd <= 1;
  const namesAgree = fn !== 3 && ln !== 3 && ((fn >= 0 && fn <= 1) || (ln >= 0 && ln <= 1));
  if (ni === 3 && bd === 3) return 'national ids and birth dates differ';
  if (ni === 3 && !(bdAgrees && namesAgree)) return 'national ids differ';
  if (bd === 3 && !(niAgrees && namesAgree)) return 'birth dates differ';
  // Without an identifier agreeing, a name disagreement is a different person (colleagues on one
  // switchboard, a household at one address), and names alone are a namesake, not an identity.
  // A birth date is shared by too many people to identify anyone on its own (birthday paradox:
  // 100k customers share many): it counts, exactly, only next to a name that agrees.
  const identified =
    at(levels, P['email']) === 0 ||
    niAgrees ||
    (bd === 0 && (fn === 0 || fn === 1 || ln === 0 || ln === 1));
  const st = at(levels, P['street']);
  const pc = at(levels, P['postcode']);
  const city = at(levels, P['city']);
  // Postcode and city are a neighbourhood, not an address: they stand in only without a street.
  const sameAddress =
    (st >= 0 && st <= 1) ||
    at(levels, P['street2']) === 0 ||
    (st === NULL_LEVEL && pc === 0 && city >= 0 && city <= 1);
  if (!identified) {
    // Another first name is another person (household members, colleagues on one switchboard)
    // when their emails differ too; without emails it takes the same last name at the same
    // address for the weights to decide (a first name mistyped or replaced by the data entry).
    if (fn === 3 && (at(levels, P['email']) === 2 || !(ln >= 0 && ln <= 1 && sameAddress))) {
      return 'first names differ';
    }
    // Another last name with the same first name is a maiden/married name only at one address.
    if (ln === 3 && !((fn === 0 || fn === 1) && sameAddress)) return 'last names differ';
    // Agreeing names alone are namesakes: a phone or an address must agree too; the
    // neighbourhood (postcode and city) is enough only when both names agree closely.
    const close = (l: number) => l === 0 || l === 1;
    const namesClose =
      (close(fn) && close(ln)) ||
      (close(fn) && ln === NULL_LEVEL) ||
      (fn === NULL_LEVEL && close(ln));
    // (Another house number in the same street counts only within the same postcode.)
    const located =
      at(levels, P['phone']) === 0 ||
      sameAddress ||
      (st === 2 && pc === 0) ||
      (namesClose && pc === 0 && (city === NULL_LEVEL || city <= 1));
    if (!located) return 'only the names agree';
  }
  return undefined;
}

/**
 * Whether `hardNegative` is certain from the identifiers and names alone (national id, birth date,
 * email, first and last name levels), whatever the other comparisons give; for companies from the
 * company name. Sound, not complete: true only where every rule of `hardNegative` that could fire
 * reads no other level (test/unit/dedupe/score-fast.test.ts enumerates every vector).
 */
export function earlyHardNegative(kind: 'p' | 'c', levels: Int8Array): boolean {
  if (kind === 'c') return at(levels, C['company']) === 3;
  const fn = at(levels, P['firstname']);
  const ln = at(levels, P['lastname']);
  const ni = at(levels, P['national_id']);
  const bd = at(levels, P['birthdate']);
  const em = at(levels, P['email']);
  const niAgrees = ni >= 0 && ni <= 1;
  const bdAgrees = bd >= 0 && bd <= 1;
  const namesAgree = fn !== 3 && ln !== 3 && ((fn >= 0 && fn <= 1) || (ln >= 0 && ln <= 1));
  if (ni === 3 && !(bdAgrees && namesAgree)) return true;
  if (bd === 3 && !(niAgrees && namesAgree)) return true;
  const fnClose = fn === 0 || fn === 1;
  const lnClose = ln === 0 || ln === 1;
  const identified = em === 0 || niAgrees || (bd === 0 && (fnClose || lnClose));
  if (identified) return false;
  // 'first names differ' and 'last names differ' whatever the address says
  if (fn === 3 && (em === 2 || !lnClose)) return true;
  return ln === 3 && !fnClose;
}

// ---------------------------------------------------------------------------------------------
// Estimation

export interface EstimateOptions {
  /** EM iterations at most (stops earlier when parameters move less than `tolerance`) */
  maxIterations?: number;
  tolerance?: number;
  /**
   * Re-estimate u too (default true). Candidate pairs all share a blocking key, so their
   * non-matches agree far more often than random pairs do; the matcher only ever scores such
   * pairs, so the u it needs is P(level | non-match, blocked). Random-pair u is the start point.
   * With u fixed to random pairs EM explains the blocking-induced agreement as matches (λ → 1)
   * unless the comparisons a session blocked on are left out (see bench/dedupe-train.ts).
   */
  estimateU?: boolean;
}

const clampP = (x: number) => Math.min(1 - 1e-6, Math.max(1e-6, x));

/**
 * u-probabilities from comparison vectors of random (almost surely non-matching) pairs: the share
 * of pairs on each level among those where the comparison is not null. Laplace-smoothed.
 */
export function estimateU(kind: 'p' | 'c', vectors: readonly Int8Array[]): number[][] {
  const comparisons = comparisonsFor(kind);
  return comparisons.map((c, i) => {
    const counts = new Array<number>(c.levels.length).fill(1);
    for (const v of vectors) {
      const level = v[i] as number;
      if (level !== NULL_LEVEL) counts[level] = (counts[level] as number) + 1;
    }
    const total = counts.reduce((x, y) => x + y, 0);
    return counts.map((n) => clampP(n / total));
  });
}

/**
 * EM for m, u and λ over comparison vectors of blocked candidate pairs, no labels (Winkler 1988),
 * started from `start.m`, random-pair `u` and `start.lambda`.
 */
export function estimateM(
  kind: 'p' | 'c',
  vectors: readonly Int8Array[],
  u: readonly (readonly number[])[],
  start: { m: readonly (readonly number[])[]; lambda: number },
  options: EstimateOptions & { fixedM?: boolean } = {},
): { m: number[][]; u: number[][]; lambda: number; iterations: number } {
  const comparisons = comparisonsFor(kind);
  const maxIterations = options.maxIterations ?? 50;
  const tolerance = options.tolerance ?? 1e-5;
  const reestimateU = options.estimateU ?? true;
  let m = start.m.map((row) => [...row]);
  let uu = u.map((row) => [...row]);
  let lambda = start.lambda;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const mCounts = comparisons.map((c) => new Array<number>(c.levels.length).fill(0.01));
    const uCounts = comparisons.map((c) => new Array<number>(c.levels.length).fill(0.01));
    let matchSum = 0;
    for (const v of vectors) {
      let logM = Math.log(lambda);
      let logU = Math.log(1 - lambda);
      for (let i = 0; i < v.length; i++) {
        const level = v[i] as number;
        if (level === NULL_LEVEL) continue;
        logM += Math.log((m[i] as number[])[level] as number);
        logU += Math.log((uu[i] as number[])[level] as number);
      }
      const pMatch = 1 / (1 + Math.exp(logU - logM));
      matchSum += pMatch;
      for (let i = 0; i < v.length; i++) {
        const level = v[i] as number;
        if (level === NULL_LEVEL) continue;
        (mCounts[i] as number[])[level]! += pMatch;
        (uCounts[i] as number[])[level]! += 1 - pMatch;
      }
    }
    const nextLambda = clampP(matchSum / Math.max(1, vectors.length));
    const normalise = (row: number[]) => {
      const total = row.reduce((x, y) => x + y, 0);
      return row.map((n) => clampP(n / total));
    };
    const nextM = options.fixedM === true ? m : mCounts.map(normalise);
    if (reestimateU) uu = uCounts.map(normalise);
    let delta = Math.abs(nextLambda - lambda);
    for (let i = 0; i < nextM.length; i++) {
      for (let j = 0; j < (nextM[i] as number[]).length; j++) {
        delta = Math.max(delta, Math.abs((nextM[i] as number[])[j]! - (m[i] as number[])[j]!));
      }
    }
    m = nextM;
    lambda = nextLambda;
    if (delta < tolerance) {
      iterations++;
      break;
    }
  }
  return { m, u: uu, lambda, iterations };
}

/** A starting point for EM: agreement likely under a match, disagreement likely otherwise. */
export function initialM(kind: 'p' | 'c'): number[][] {
  return comparisonsFor(kind).map((c) => {
    const n = c.levels.length;
    // 0.8 on exact, the rest spread with the disagreement level lowest
    const row = c.levels.map((_, i) =>
      i === 0 ? 0.8 : i === n - 1 ? 0.05 : 0.15 / Math.max(1, n - 2),
    );
    const total = row.reduce((x, y) => x + y, 0);
    return row.map((x) => x / total);
  });
}

/** Builds persisted parameters for one kind from estimates. */
export function kindParams(
  kind: 'p' | 'c',
  m: readonly (readonly number[])[],
  u: readonly (readonly number[])[],
  lambda: number,
): KindParams {
  const comparisons: Record<string, { m: number[]; u: number[] }> = {};
  comparisonsFor(kind).forEach((c, i) => {
    comparisons[c.name] = {
      m: (m[i] as number[]).map((x) => round(clampP(x))),
      u: (u[i] as number[]).map((x) => round(clampP(x))),
    };
  });
  return { lambda: round(lambda), comparisons };
}

const round = (x: number) => Number(x.toPrecision(6));
