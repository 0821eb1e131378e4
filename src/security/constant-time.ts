import { timingSafeEqual } from 'node:crypto';

/**
 * The one constant-time comparison used for every secret (HMACs, admin tokens, key hints), STYLE.md
 * rule 4. Total: inputs of different length return false instead of throwing, which leaks only the
 * length — compare fixed-length digests (e.g. SHA-256 of both sides) when that matters.
 */
export function constantTimeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const x = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
  const y = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  if (x.length !== y.length) return false;
  return timingSafeEqual(x, y);
}
