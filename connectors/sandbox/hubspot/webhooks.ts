/**
 * The sandbox's webhook sender: it behaves like HubSpot's (crm-protocols.md §1–2).
 * - Each change becomes one v3 event (§1.4). Events go out as a JSON array of at most 100 per POST,
 *   flushed a few milliseconds after the first one is queued.
 * - Each POST is signed with v3 (`X-HubSpot-Signature-v3` over method + URI + body + timestamp, the
 *   URI being the exact target URL) and with v1, as HubSpot sends both.
 * - A non-2xx answer, a connection error or a 5-second timeout makes the batch's events retried with
 *   backoff. `attemptNumber` goes up by one for each retry, and HubSpot's limit of 10 retries applies.
 *
 * The signing is written here on purpose, from the documentation, rather than borrowed from
 * `connectors/hubspot/signature.ts`: tests then check our verifier against an independent signer.
 */
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const WEBHOOK_MAX_BATCH = 100;
/** "Notifications will be retried up to 10 times" (§1.2). */
export const WEBHOOK_MAX_RETRIES = 10;
/** HubSpot gives the receiver 5 seconds (§1.2). */
export const WEBHOOK_TIMEOUT_MS = 5_000;

/** The v3 event shape of §1.4 (only the fields HubSpot sends for CRM object events). */
export interface WebhookEvent {
  eventId: number;
  subscriptionId: number;
  portalId: number;
  appId: number;
  occurredAt: number;
  subscriptionType: string;
  attemptNumber: number;
  objectId: number;
  propertyName?: string;
  propertyValue?: string;
  changeSource: string;
  sourceId?: string;
  changeFlag?: string;
}

export interface WebhookDelivery {
  /** the events as they were sent in this POST (attemptNumber included) */
  events: WebhookEvent[];
  status: number | 'error';
  at: number;
}

export interface WebhookSenderOptions {
  targetUrl?: string | undefined;
  clientSecret: string;
  /** ms to wait for more events before sending a batch (default 20) */
  flushMs?: number;
  /** first retry delay; doubles per attempt, with jitter (default 50 ms; HubSpot's are minutes) */
  retryBaseMs?: number;
  /** cap on one retry delay (default 2 s) */
  retryMaxMs?: number;
  maxRetries?: number;
  /** requests in flight at once (HubSpot's default is 10) */
  concurrency?: number;
  now?: () => number;
}

interface Pending {
  event: WebhookEvent;
  /** not before this time (retry backoff) */
  notBefore: number;
}

export class WebhookSender {
  targetUrl: string | undefined;
  private readonly queue: Pending[] = [];
  private readonly deliveriesLog: WebhookDelivery[] = [];
  private readonly droppedEvents: WebhookEvent[] = [];
  private inFlight = 0;
  private inFlightEvents = 0;
  private paused = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private failedAttempts = 0;
  private readonly flushMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly maxRetries: number;
  private readonly concurrency: number;
  private readonly now: () => number;

  constructor(private readonly options: WebhookSenderOptions) {
    this.targetUrl = options.targetUrl;
    this.flushMs = options.flushMs ?? 20;
    this.retryBaseMs = options.retryBaseMs ?? 50;
    this.retryMaxMs = options.retryMaxMs ?? 2_000;
    this.maxRetries = options.maxRetries ?? WEBHOOK_MAX_RETRIES;
    this.concurrency = options.concurrency ?? 10;
    this.now = options.now ?? Date.now;
  }

  /** Queues one event; nothing is queued while no target URL is configured. */
  enqueue(event: WebhookEvent): void {
    if (this.targetUrl === undefined || this.closed) return;
    this.queue.push({ event, notBefore: 0 });
    this.schedule(this.flushMs);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule(0);
  }

  stats(): {
    delivered: number;
    pending: number;
    inFlight: number;
    failedAttempts: number;
    dropped: number;
  } {
    return {
      delivered: this.deliveriesLog
        .filter((d) => typeof d.status === 'number' && d.status >= 200 && d.status < 300)
        .reduce((sum, d) => sum + d.events.length, 0),
      pending: this.queue.length,
      inFlight: this.inFlightEvents,
      failedAttempts: this.failedAttempts,
      dropped: this.droppedEvents.length,
    };
  }

  deliveries(): WebhookDelivery[] {
    return this.deliveriesLog.slice();
  }

  /** Resolves once nothing is queued or in flight (paused queues count as pending). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.notifyIdle();
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.paused) return;
    if (this.timer !== undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(0, delayMs),
    );
    this.timer.unref();
  }

  private pump(): void {
    if (this.paused || this.closed) return;
    const now = this.now();
    while (this.inFlight < this.concurrency) {
      const ready: Pending[] = [];
      for (let i = 0; i < this.queue.length && ready.length < WEBHOOK_MAX_BATCH;) {
        const item = this.queue[i] as Pending;
        if (item.notBefore <= now) {
          ready.push(item);
          this.queue.splice(i, 1);
        } else {
          i++;
        }
      }
      if (ready.length === 0) break;
      void this.send(ready.map((p) => p.event));
    }
    if (this.queue.length > 0) {
      const next = Math.min(...this.queue.map((p) => p.notBefore));
      this.schedule(Math.max(next - now, this.inFlight >= this.concurrency ? 5 : 0));
    }
    this.notifyIdle();
  }

  private async send(events: WebhookEvent[]): Promise<void> {
    const target = this.targetUrl;
    if (target === undefined) return;
    this.inFlight++;
    this.inFlightEvents += events.length;
    let status: number | 'error';
    try {
      status = await this.post(target, events);
    } catch {
      status = 'error';
    }
    this.inFlight--;
    this.inFlightEvents -= events.length;
    this.deliveriesLog.push({ events, status, at: this.now() });
    const ok = typeof status === 'number' && status >= 200 && status < 300;
    if (!ok && !this.closed) {
      this.failedAttempts++;
      for (const event of events) {
        const attempt = event.attemptNumber + 1;
        if (attempt > this.maxRetries) {
          this.droppedEvents.push(event);
          continue;
        }
        const backoff = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** event.attemptNumber);
        this.queue.push({
          event: { ...event, attemptNumber: attempt },
          // "Individual notifications will have some randomization applied" (§1.2).
          notBefore: this.now() + backoff * (0.75 + Math.random() * 0.5),
        });
      }
    }
    this.pump();
  }

  private post(target: string, events: WebhookEvent[]): Promise<number> {
    const body = Buffer.from(JSON.stringify(events), 'utf8');
    const timestamp = String(this.now());
    const secret = this.options.clientSecret;
    const v3 = createHmac('sha256', secret)
      .update(`POST${decodeSignedUri(target)}`, 'utf8')
      .update(body)
      .update(timestamp, 'utf8')
      .digest('base64');
    const v1 = createHash('sha256').update(secret, 'utf8').update(body).digest('hex');
    const url = new URL(target);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            'user-agent': 'HubSpot Connect 2.0 (http://dev.hubspot.com/) - crm-ledger sandbox',
            'x-hubspot-signature-v3': v3,
            'x-hubspot-request-timestamp': timestamp,
            'x-hubspot-signature': v1,
            'x-hubspot-signature-version': 'v1',
            'x-hubspot-timeout-millis': String(WEBHOOK_TIMEOUT_MS),
          },
          timeout: WEBHOOK_TIMEOUT_MS,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('webhook timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }

  private notifyIdle(): void {
    if (this.queue.length === 0 && this.inFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}

/** HubSpot decodes exactly these escapes in the URI before signing (§2.3). */
const SIGNED_URI_ESCAPES: Readonly<Record<string, string>> = {
  '%3A': ':',
  '%2F': '/',
  '%3F': '?',
  '%40': '@',
  '%21': '!',
  '%24': '$',
  '%27': "'",
  '%28': '(',
  '%29': ')',
  '%2A': '*',
  '%2C': ',',
  '%3B': ';',
};

function decodeSignedUri(uri: string): string {
  return uri.replace(/%[0-9A-F]{2}/g, (escape) => SIGNED_URI_ESCAPES[escape] ?? escape);
}
