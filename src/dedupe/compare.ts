/**
 * String and value comparison primitives for record linkage. Pure and allocation-light: they run
 * for every candidate pair.
 *
 * Libraries: edit distance is `fastest-levenshtein` (Myers' bit-parallel algorithm, the fastest JS
 * implementation, ~78M downloads a month); phonetic codes are `double-metaphone` (wooorm, ESM,
 * typed). Jaro–Winkler and the optimal-string-alignment (Damerau) distance are written here: the
 * npm packages for them are small, unmaintained or allocate per call, and both are short.
 */
import { doubleMetaphone } from 'double-metaphone';
import { distance } from 'fastest-levenshtein';

/** Levenshtein edit distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  return distance(a, b);
}

let rowA = new Int32Array(64);
let rowB = new Int32Array(64);
let rowC = new Int32Array(64);

/**
 * Optimal string alignment distance: Levenshtein plus transposition of two adjacent characters
 * (a typist's most common slip: "jonh"). Each substring edited at most once.
 */
export function damerauDistance(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  if (m + 1 > rowA.length) {
    rowA = new Int32Array(m + 1);
    rowB = new Int32Array(m + 1);
    rowC = new Int32Array(m + 1);
  }
  let prev2 = rowA; // row i-2
  let prev = rowB; // row i-1
  let cur = rowC; // row i
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= m; j++) {
      const cb = b.charCodeAt(j - 1);
      const cost = ca === cb ? 0 : 1;
      let v = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && ca === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === cb) {
        v = Math.min(v, (prev2[j - 2] as number) + 1);
      }
      cur[j] = v;
    }
    const t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[m] as number;
}

let matchedA = new Uint8Array(64);
let matchedB = new Uint8Array(64);

/** Jaro similarity in [0, 1] (1 = equal; two empty strings are equal). */
export function jaro(a: string, b: string): number {
  if (a === b) return 1;
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return 0;
  if (n <= 31 && m <= 31) return jaroShort(a, b, n, m);
  if (n > matchedA.length) matchedA = new Uint8Array(n * 2);
  if (m > matchedB.length) matchedB = new Uint8Array(m * 2);
  matchedA.fill(0, 0, n);
  matchedB.fill(0, 0, m);
  const window = Math.max(0, Math.floor(Math.max(n, m) / 2) - 1);
  let matches = 0;
  for (let i = 0; i < n; i++) {
    const lo = Math.max(0, i - window);
    const hi = Math.min(m - 1, i + window);
    const c = a.charCodeAt(i);
    for (let j = lo; j <= hi; j++) {
      if (matchedB[j] === 0 && b.charCodeAt(j) === c) {
        matchedA[i] = 1;
        matchedB[j] = 1;
        matches++;
        break;
      }
    }
  }
  if (matches === 0) return 0;
  let transpositions = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (matchedA[i] === 0) continue;
    while (matchedB[k] === 0) k++;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) transpositions++;
    k++;
  }
  const t = transpositions / 2;
  return (matches / n + matches / m + (matches - t) / matches) / 3;
}

/**
 * `jaro` for strings of at most 31 characters (names, street words: nearly every call), with the
 * matched flags in two integers instead of arrays to clear: the same matching, the same sums.
 */
function jaroShort(a: string, b: string, n: number, m: number): number {
  const window = Math.max(0, Math.floor(Math.max(n, m) / 2) - 1);
  let matchedInA = 0;
  let matchedInB = 0;
  let matches = 0;
  for (let i = 0; i < n; i++) {
    const lo = Math.max(0, i - window);
    const hi = Math.min(m - 1, i + window);
    const c = a.charCodeAt(i);
    for (let j = lo; j <= hi; j++) {
      if ((matchedInB & (1 << j)) === 0 && b.charCodeAt(j) === c) {
        matchedInA |= 1 << i;
        matchedInB |= 1 << j;
        matches++;
        break;
      }
    }
  }
  if (matches === 0) return 0;
  let transpositions = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    if ((matchedInA & (1 << i)) === 0) continue;
    while ((matchedInB & (1 << k)) === 0) k++;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) transpositions++;
    k++;
  }
  const t = transpositions / 2;
  return (matches / n + matches / m + (matches - t) / matches) / 3;
}

/**
 * Jaro–Winkler similarity (Winkler 1990): Jaro boosted by a common prefix of up to 4 characters,
 * scaling factor 0.1, applied to any Jaro value (as Splink and most libraries do).
 */
export function jaroWinkler(a: string, b: string): number {
  const j = jaro(a, b);
  if (j === 1 || j === 0) return j;
  const limit = Math.min(4, a.length, b.length);
  let prefix = 0;
  while (prefix < limit && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix++;
  return j + prefix * 0.1 * (1 - j);
}

/**
 * Token-wise similarity of two multi-word strings (Monge–Elkan with Jaro–Winkler, symmetrised):
 * for each token of one side the best match on the other, averaged, then the mean of both
 * directions. Word order and a dropped word cost little: "7 wallaby pl" ~ "wallaby pl 7".
 */
export function tokenSimilarity(a: string, b: string): number {
  if (a === b) return 1;
  if (a === '' || b === '') return 0;
  return tokenListSimilarity(a.split(' '), b.split(' '));
}

/** `tokenSimilarity` of two strings already split on spaces (non-empty, not equal). */
export function tokenListSimilarity(ta: readonly string[], tb: readonly string[]): number {
  return (mongeElkan(ta, tb) + mongeElkan(tb, ta)) / 2;
}

function mongeElkan(ta: readonly string[], tb: readonly string[]): number {
  let sum = 0;
  for (const x of ta) {
    let best = 0;
    for (const y of tb) {
      const s = x === y ? 1 : jaroWinkler(x, y);
      if (s > best) best = s;
      if (best === 1) break;
    }
    sum += best;
  }
  return sum / ta.length;
}

const metaphoneCache = new Map<string, string>();
const METAPHONE_CACHE_MAX = 50_000;

/** Primary Double Metaphone code of a normalised word (cached: names repeat). */
export function phonetic(word: string): string {
  let code = metaphoneCache.get(word);
  if (code === undefined) {
    code = doubleMetaphone(word)[0];
    if (metaphoneCache.size >= METAPHONE_CACHE_MAX) metaphoneCache.clear();
    metaphoneCache.set(word, code);
  }
  return code;
}

/** Both Double Metaphone codes (primary, alternate). */
export function phoneticCodes(word: string): [string, string] {
  return doubleMetaphone(word);
}

/**
 * How two `YYYYMMDD` dates relate: 'exact', 'swapped' (day and month exchanged, a classic entry
 * error), 'typo' (one edit or transposition of the digits), 'year' (same year, otherwise
 * different), 'near' (within a year either way), or 'different'.
 */
export type DateRelation = 'exact' | 'swapped' | 'typo' | 'year' | 'near' | 'different';

export function compareDates(a: string, b: string): DateRelation {
  if (a === b) return 'exact';
  if (a.length === 8 && b.length === 8) {
    if (
      a.slice(0, 4) === b.slice(0, 4) &&
      a.slice(4, 6) === b.slice(6, 8) &&
      a.slice(6, 8) === b.slice(4, 6)
    ) {
      return 'swapped';
    }
  }
  if (damerauDistance(a, b) <= 1) return 'typo';
  if (a.slice(0, 4) === b.slice(0, 4)) return 'year';
  const ya = Number(a.slice(0, 4));
  const yb = Number(b.slice(0, 4));
  if (Number.isFinite(ya) && Number.isFinite(yb) && Math.abs(ya - yb) <= 1) return 'near';
  return 'different';
}

/** Relative closeness of two numbers in [0, 1]: 1 - |a-b| / max(|a|,|b|). */
export function numericCloseness(a: number, b: number): number {
  if (a === b) return 1;
  const scale = Math.max(Math.abs(a), Math.abs(b));
  return scale === 0 ? 1 : Math.max(0, 1 - Math.abs(a - b) / scale);
}
