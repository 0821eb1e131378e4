/**
 * Browser sessions for the admin dashboard. A browser cannot send a bearer header when it
 * navigates, so /admin/login takes the token once (POST form body, never a URL) and answers with a
 * cookie that holds neither the token nor its digest:
 *
 *   v1.<expiry, ms since epoch, base 36>.<token ref>.<mac>
 *
 * - token ref = HMAC-SHA256(secret, "ref\n" || token digest)[:16], base64url: it names the token
 *   without revealing it, so removing a token (tokens file, restart) ends its sessions;
 * - mac = HMAC-SHA256(secret, "session\n" || "v1.<expiry>.<ref>"), base64url, compared with the
 *   one constant-time helper (STYLE.md rule 4).
 *
 * The secret is random per process unless one is configured (several API replicas must share
 * it). Parsing is total: any cookie value yields a principal or undefined, never an exception.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { constantTimeEqual } from '../security/constant-time.js';

export const SESSION_COOKIE = 'cl_admin_session';
/** Where the cookie is sent: the dashboard, the API and bull-board, nothing else. */
export const SESSION_COOKIE_PATH = '/admin';
/** A working day; a stolen cookie dies with it, and a revoked token ends its sessions at once. */
export const DEFAULT_SESSION_TTL_MS = 8 * 3600_000;
export const SESSION_SECRET_MIN_BYTES = 32;
const REF_BYTES = 16;
const MAC_BYTES = 32;
/** Far more than any real cookie; longer values are refused before any work is done. */
const MAX_COOKIE_CHARS = 256;

export interface AdminSessionOptions {
  /** HMAC key (≥ 32 bytes); random per process when absent */
  secret?: Uint8Array;
  ttlMs?: number;
  now?: () => number;
  /** `Secure` cookie attribute: 'auto' sets it when the request came over TLS (req.secure) */
  secureCookie?: boolean | 'auto';
}

/** What a session names: a token, known here only by its digest (admin-auth.ts AdminToken). */
export interface SessionToken {
  digest: Uint8Array;
}

export class AdminSessions<T extends SessionToken = SessionToken> {
  private readonly secret: Uint8Array;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly secureCookie: boolean | 'auto';

  constructor(
    private readonly tokens: readonly T[],
    options: AdminSessionOptions = {},
  ) {
    if (options.secret && options.secret.length < SESSION_SECRET_MIN_BYTES) {
      throw new Error(`the admin session secret needs at least ${SESSION_SECRET_MIN_BYTES} bytes`);
    }
    this.secret = options.secret ?? randomBytes(SESSION_SECRET_MIN_BYTES);
    this.ttlMs = options.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    this.now = options.now ?? Date.now;
    this.secureCookie = options.secureCookie ?? 'auto';
  }

  /** A new session value for `token`. */
  issue(token: T): string {
    const body = `v1.${(this.now() + this.ttlMs).toString(36)}.${this.ref(token)}`;
    return `${body}.${this.mac(body)}`;
  }

  /** The token a cookie value stands for, if its MAC holds, it has not expired and the token is still known. */
  open(value: string | undefined): T | undefined {
    if (value === undefined || value.length > MAX_COOKIE_CHARS) return undefined;
    const parts = value.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') return undefined;
    const [, expiryText = '', ref = '', mac = ''] = parts;
    const body = `v1.${expiryText}.${ref}`;
    const presented = Buffer.from(mac, 'base64url');
    if (presented.length !== MAC_BYTES) return undefined;
    if (!constantTimeEqual(presented, Buffer.from(this.mac(body), 'base64url'))) return undefined;
    if (!/^[0-9a-z]{1,12}$/.test(expiryText)) return undefined;
    const expiry = parseInt(expiryText, 36);
    const now = this.now();
    // Expired, or further ahead than a session can live (a value minted under another TTL/clock).
    if (!(expiry > now && expiry <= now + this.ttlMs)) return undefined;
    let found: T | undefined;
    for (const t of this.tokens) {
      if (constantTimeEqual(this.ref(t), ref)) found ??= t;
    }
    return found;
  }

  /** Sets the session cookie (HttpOnly, SameSite=Strict, Path=/admin). */
  setCookie(req: Request, res: Response, token: T): void {
    res.append('Set-Cookie', this.cookie(req, this.issue(token), Math.floor(this.ttlMs / 1000)));
  }

  clearCookie(req: Request, res: Response): void {
    res.append('Set-Cookie', this.cookie(req, '', 0));
  }

  /** The session cookie's value in the request, if any. */
  static read(req: Request): string | undefined {
    return readCookie(req.get('cookie'), SESSION_COOKIE);
  }

  private cookie(req: Request, value: string, maxAgeSeconds: number): string {
    const secure = this.secureCookie === 'auto' ? req.secure : this.secureCookie;
    return [
      `${SESSION_COOKIE}=${value}`,
      `Path=${SESSION_COOKIE_PATH}`,
      `Max-Age=${maxAgeSeconds}`,
      'HttpOnly',
      'SameSite=Strict',
      ...(secure ? ['Secure'] : []),
    ].join('; ');
  }

  private ref(token: T): string {
    return createHmac('sha256', this.secret)
      .update('ref\n')
      .update(token.digest)
      .digest()
      .subarray(0, REF_BYTES)
      .toString('base64url');
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update('session\n').update(body).digest('base64url');
  }
}

/** One cookie's value from a Cookie header (RFC 6265 §5.4 pairs); total. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 8192) return undefined;
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=');
    if (at < 0) continue;
    if (pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim();
  }
  return undefined;
}

/**
 * CSRF check for requests a cookie authenticates (SameSite=Strict is the first line): the
 * request's Origin — or, when a browser sent none, its Referer — must name this host. Requests
 * with neither are refused: every browser sends Origin on a POST.
 */
export function sameOrigin(req: Request): boolean {
  const host = req.get('host');
  const source = req.get('origin') ?? req.get('referer');
  if (!host || !source || source === 'null') return false;
  try {
    return new URL(source).host === host;
  } catch {
    return false;
  }
}
