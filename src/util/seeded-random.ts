/**
 * A seeded pseudo-random generator (mulberry32: 32-bit state, uniform in [0, 1)), for everything
 * that must draw the same sequence on every run: the dedupe CLI's `--shuffle`, the synthetic
 * benchmark data, and tests whose failures must name an input that comes back. Not for secrets
 * (node:crypto's randomBytes is).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
