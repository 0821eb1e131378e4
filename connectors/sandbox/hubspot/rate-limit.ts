/**
 * HubSpot's burst limit: a rolling 10-second window per app/token (crm-protocols.md §3.2, e.g. 100
 * requests per 10 s for a private app). Requests refused with 429 do not count against the window,
 * so a client that honours Retry-After gets through as soon as the oldest request ages out.
 */

export const HUBSPOT_RATE_WINDOW_MS = 10_000;

export interface RateLimitSettings {
  /** requests allowed per window; 0 or Infinity disables the limit */
  max: number;
  windowMs: number;
}

export type RateDecision =
  | { allowed: true; max: number; remaining: number; windowMs: number }
  | { allowed: false; max: number; remaining: 0; windowMs: number; retryAfterMs: number };

export class RollingRateLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    public settings: RateLimitSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a request for `key` if the window has room; otherwise says how long to wait. */
  take(key: string): RateDecision {
    const { max, windowMs } = this.settings;
    if (!(max > 0) || !Number.isFinite(max)) {
      return {
        allowed: true,
        max: Number.MAX_SAFE_INTEGER,
        remaining: Number.MAX_SAFE_INTEGER,
        windowMs,
      };
    }
    const now = this.now();
    const recent = (this.hits.get(key) ?? []).filter((at) => at > now - windowMs);
    if (recent.length >= max) {
      this.hits.set(key, recent);
      const oldest = recent[recent.length - max] as number;
      return { allowed: false, max, remaining: 0, windowMs, retryAfterMs: oldest + windowMs - now };
    }
    recent.push(now);
    this.hits.set(key, recent);
    return { allowed: true, max, remaining: max - recent.length, windowMs };
  }

  reset(): void {
    this.hits.clear();
  }
}
