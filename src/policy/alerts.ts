/**
 * The alert sink: every alert is logged, and POSTed to a webhook when one is configured.
 *
 * The body is JSON with a Slack-compatible `text` (a Slack incoming webhook shows it as the
 * message) plus the structured alert. It is signed like Stripe/standard-webhooks do it:
 *
 *   X-CRM-Ledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *   X-CRM-Ledger-Alert-Id:  <alert id>   (the same on every retry: receivers dedupe by it)
 *
 * Receivers verify with `verifyAlertSignature` (constant-time, timestamp within 5 minutes both
 * ways). Delivery retries network errors, timeouts, 408, 429 and 5xx with exponential backoff
 * and jitter (Retry-After honoured, capped); other 4xx are final. Nothing secret is logged: not the
 * secret, not the URL's path or query (a Slack webhook URL's path *is* a credential), not the body.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import { constantTimeEqual } from '../security/constant-time.js';
import type { PolicyAction } from './evaluate.js';

export const ALERT_SIGNATURE_HEADER = 'x-crm-ledger-signature';
export const ALERT_ID_HEADER = 'x-crm-ledger-alert-id';
/** How far a signature's timestamp may be from the receiver's clock, either way. */
export const ALERT_SIGNATURE_TOLERANCE_S = 5 * 60;

export const ALERT_DEFAULTS = {
  /** attempts in all, the first included */
  attempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
  timeoutMs: 10_000,
} as const;

export interface Alert {
  /** stable id: the same alert re-sent (retry, re-judged change) has the same id */
  id: string;
  type: 'policy.violation' | 'ledger.tampered';
  tenant: string;
  rule: string;
  code: string;
  verdict: string;
  object: string;
  recordId: string;
  eventId: string;
  reason: string;
  detail: Record<string, unknown>;
  /** SHA-256 of the policy that raised it */
  policy: string;
}

/** The alert for an `alert` action returned by PolicyJudge / CompiledPolicy. */
export function alertFromAction(action: PolicyAction): Alert {
  return {
    id: action.id,
    type: 'policy.violation',
    tenant: action.tenant,
    rule: action.rule,
    code: action.verdict.code,
    verdict: action.verdict.type,
    object: action.object,
    recordId: action.recordId,
    eventId: action.eventId,
    reason: action.verdict.reason,
    detail: action.verdict.detail,
    policy: action.verdict.policy,
  };
}

/** The exact bytes POSTed: `text` for Slack, `alert` for machines, `sentAt` for humans. */
export function alertBody(alert: Alert, sentAt: Date): string {
  const text = `:rotating_light: crm-ledger ${alert.verdict} (${alert.code}) — rule *${alert.rule}* on ${alert.tenant} ${alert.object} ${alert.recordId}: ${alert.reason}`;
  return JSON.stringify({ text, alert, sentAt: sentAt.toISOString() });
}

/** `t=<ts>,v1=<hex>` for the raw body at unix time `timestampS`. */
export function signAlert(body: string | Uint8Array, secret: string, timestampS: number): string {
  const mac = createHmac('sha256', secret)
    .update(`${timestampS}.`, 'utf8')
    .update(body)
    .digest('hex');
  return `t=${timestampS},v1=${mac}`;
}

export type AlertSignatureFailure =
  | 'SIGNATURE_MISSING'
  | 'SIGNATURE_MALFORMED'
  | 'TIMESTAMP_TOO_OLD'
  | 'TIMESTAMP_TOO_NEW'
  | 'SIGNATURE_INVALID';

/**
 * Checks a received alert (total: any header yields a result, never a throw). Several `v1=`
 * entries are allowed (a receiver rotating secrets may see either); one match suffices.
 */
export function verifyAlertSignature(
  body: string | Uint8Array,
  header: string | undefined,
  secret: string,
  nowS: number,
  toleranceS: number = ALERT_SIGNATURE_TOLERANCE_S,
): { ok: true } | { ok: false; code: AlertSignatureFailure } {
  if (header === undefined || header === '') return { ok: false, code: 'SIGNATURE_MISSING' };
  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) return { ok: false, code: 'SIGNATURE_MALFORMED' };
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (name === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (timestamp === undefined || candidates.length === 0) {
    return { ok: false, code: 'SIGNATURE_MALFORMED' };
  }
  if (timestamp < nowS - toleranceS) return { ok: false, code: 'TIMESTAMP_TOO_OLD' };
  if (timestamp > nowS + toleranceS) return { ok: false, code: 'TIMESTAMP_TOO_NEW' };
  const expected = signAlert(body, secret, timestamp).slice(`t=${timestamp},v1=`.length);
  const ok = candidates.some((c) => constantTimeEqual(c, expected));
  return ok ? { ok: true } : { ok: false, code: 'SIGNATURE_INVALID' };
}

export type AlertDelivery =
  | { ok: true; delivered: boolean; attempts: number; status?: number }
  | {
      ok: false;
      code: 'ALERT_REJECTED' | 'ALERT_DELIVERY_FAILED';
      attempts: number;
      status?: number;
    };

export interface AlertSinkOptions {
  logger: Logger;
  /** webhook URL; without it alerts are only logged */
  url?: string | undefined;
  /** HMAC secret, required with `url` */
  secret?: string | undefined;
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  /** injected for tests */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
  random?: () => number;
}

export interface AlertSink {
  send(alert: Alert): Promise<AlertDelivery>;
}

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export class WebhookAlertSink implements AlertSink {
  private readonly logger: Logger;
  private readonly url: URL | undefined;
  private readonly secret: string;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly fetch: typeof fetch;
  private readonly random: () => number;

  constructor(options: AlertSinkOptions) {
    this.logger = options.logger.child({ module: 'policy.alerts' });
    if (options.url !== undefined) {
      this.url = new URL(options.url);
      if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') {
        throw new TypeError('alert webhook URL must be http(s)');
      }
      if (!options.secret) throw new TypeError('an alert webhook URL needs a signing secret');
    }
    this.secret = options.secret ?? '';
    this.attempts = Math.max(1, options.attempts ?? ALERT_DEFAULTS.attempts);
    this.baseDelayMs = options.baseDelayMs ?? ALERT_DEFAULTS.baseDelayMs;
    this.maxDelayMs = options.maxDelayMs ?? ALERT_DEFAULTS.maxDelayMs;
    this.timeoutMs = options.timeoutMs ?? ALERT_DEFAULTS.timeoutMs;
    this.now = options.now ?? Date.now;
    this.sleep =
      options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()));
    this.fetch = options.fetch ?? globalThis.fetch;
    this.random = options.random ?? Math.random;
  }

  /** Logs the alert, then delivers it (with retries) if a webhook is configured. */
  async send(alert: Alert): Promise<AlertDelivery> {
    const log = { alertId: alert.id, tenant: alert.tenant, rule: alert.rule, code: alert.code };
    this.logger.warn(
      {
        ...log,
        type: alert.type,
        object: alert.object,
        recordId: alert.recordId,
        eventId: alert.eventId,
      },
      alert.type === 'ledger.tampered' ? 'tamper alert' : 'policy alert',
    );
    if (!this.url) return { ok: true, delivered: false, attempts: 0 };
    const target = { ...log, host: this.url.host };
    const body = alertBody(alert, new Date(this.now()));
    let status: number | undefined;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const res = await this.fetch(this.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'crm-ledger-alerts/1',
            [ALERT_SIGNATURE_HEADER]: signAlert(body, this.secret, Math.floor(this.now() / 1000)),
            [ALERT_ID_HEADER]: alert.id,
          },
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
          redirect: 'error',
        });
        status = res.status;
        await res.body?.cancel();
        if (res.ok) {
          this.logger.info({ ...target, status, attempt }, 'alert delivered');
          return { ok: true, delivered: true, attempts: attempt, status };
        }
        if (!RETRYABLE_STATUS.has(res.status)) {
          this.logger.error({ ...target, status, attempt }, 'alert rejected by the webhook');
          return { ok: false, code: 'ALERT_REJECTED', attempts: attempt, status };
        }
        retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), this.now());
        this.logger.warn({ ...target, status, attempt }, 'alert webhook failed, will retry');
      } catch (err) {
        status = undefined;
        this.logger.warn(
          { ...target, attempt, reason: (err as Error).name },
          'alert webhook unreachable, will retry',
        );
      }
      if (attempt < this.attempts) await this.sleep(this.delayFor(attempt, retryAfterMs));
    }
    this.logger.error({ ...target, attempts: this.attempts, status }, 'alert not delivered');
    return {
      ok: false,
      code: 'ALERT_DELIVERY_FAILED',
      attempts: this.attempts,
      ...(status === undefined ? {} : { status }),
    };
  }

  /** Exponential backoff with full jitter; a server's Retry-After wins, both capped. */
  private delayFor(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.maxDelayMs);
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if absent/bad. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
