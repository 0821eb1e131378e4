/**
 * Outbound Message delivery, with Salesforce's semantics (crm-protocols.md §4.4):
 * - a message carries up to 100 notifications, each with the record's fields *as they are when the
 *   message is sent* ("only the latest data is delivered");
 * - it counts as delivered only on a 2xx whose body is the `<Ack>true</Ack>` envelope;
 * - otherwise it is retried with an exponentially growing interval (capped; Salesforce: 2 h) until
 *   it is older than the maximum age (Salesforce: 24 h), then dropped;
 * - each attempt times out (Salesforce: 60 s).
 * The envelope is built with our own `buildOutboundMessage`, without a session id.
 */
import { buildOutboundMessage } from '../../salesforce/outbound-message.js';

export interface OutboundRetryOptions {
  /** first retry after this many ms (default 1000) */
  initialDelayMs?: number;
  /** cap on the interval between retries (Salesforce: 2 h; default 60 000) */
  maxDelayMs?: number;
  /** drop a message once it is this old (Salesforce: 24 h) */
  maxAgeMs?: number;
  /** per-attempt timeout (Salesforce: 60 s) */
  timeoutMs?: number;
}

export interface OutboundDelivery {
  messageId: string;
  notificationIds: string[];
  recordIds: string[];
  attempt: number;
  at: string;
  /** HTTP status, when the receiver answered */
  status?: number;
  acked: boolean;
  error?: string;
}

interface PendingMessage {
  messageId: string;
  notifications: { id: string; type: string; recordId: string }[];
  firstAt: number;
  attempts: number;
  timer?: NodeJS.Timeout;
}

export interface OutboundQueueOptions {
  url: string;
  orgId: string;
  retry: OutboundRetryOptions;
  /** the record's current fields as Outbound Message strings, or undefined once it is deleted */
  currentFields(type: string, id: string): Record<string, string | null> | undefined;
  newNotificationId(): string;
  newMessageId(): string;
  enterpriseUrl: string;
  partnerUrl: string;
}

const ACK = /<(?:[A-Za-z_][\w.-]*:)?Ack>\s*true\s*<\/(?:[A-Za-z_][\w.-]*:)?Ack>/;

export class OutboundQueue {
  private readonly pending = new Set<PendingMessage>();
  private readonly inFlight = new Set<Promise<void>>();
  readonly deliveries: OutboundDelivery[] = [];
  readonly dropped: string[] = [];
  private closed = false;

  constructor(private readonly options: OutboundQueueOptions) {}

  /** Queues one message per 100 records; sends at once. */
  enqueue(records: readonly { type: string; id: string }[]): void {
    for (let start = 0; start < records.length; start += 100) {
      const message: PendingMessage = {
        messageId: this.options.newMessageId(),
        notifications: records.slice(start, start + 100).map((record) => ({
          id: this.options.newNotificationId(),
          type: record.type,
          recordId: record.id,
        })),
        firstAt: Date.now(),
        attempts: 0,
      };
      this.pending.add(message);
      this.schedule(message, 0);
    }
  }

  /** Messages not yet acknowledged (queued or being retried). */
  backlog(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const message of this.pending) clearTimeout(message.timer);
    this.pending.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private schedule(message: PendingMessage, delayMs: number): void {
    message.timer = setTimeout(() => {
      const attempt = this.attempt(message).finally(() => this.inFlight.delete(attempt));
      this.inFlight.add(attempt);
    }, delayMs);
  }

  private async attempt(message: PendingMessage): Promise<void> {
    if (this.closed) return;
    message.attempts++;
    const retry = this.options.retry;
    const notifications = message.notifications.flatMap((n) => {
      const fields = this.options.currentFields(n.type, n.recordId);
      // "If the record is deleted before the notification is delivered, the notification
      // contains no data": we leave such notifications out.
      return fields === undefined ? [] : [{ id: n.id, sObjectType: n.type, fields }];
    });
    if (notifications.length === 0) {
      this.pending.delete(message);
      return;
    }
    const delivery: OutboundDelivery = {
      messageId: message.messageId,
      notificationIds: notifications.map((n) => n.id),
      recordIds: notifications.map((n) => n.fields['Id'] ?? ''),
      attempt: message.attempts,
      at: new Date().toISOString(),
      acked: false,
    };
    try {
      const body = buildOutboundMessage({
        orgId: this.options.orgId,
        enterpriseUrl: this.options.enterpriseUrl,
        partnerUrl: this.options.partnerUrl,
        notifications,
      });
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: '""' },
        body,
        signal: AbortSignal.timeout(retry.timeoutMs ?? 60_000),
      });
      const text = await response.text();
      delivery.status = response.status;
      delivery.acked = response.ok && ACK.test(text);
      if (!delivery.acked) delivery.error = response.ok ? 'no Ack in the response' : 'HTTP error';
    } catch (err) {
      delivery.error = err instanceof Error ? err.message : String(err);
    }
    this.deliveries.push(delivery);
    if (delivery.acked || this.closed) {
      this.pending.delete(message);
      return;
    }
    const age = Date.now() - message.firstAt;
    if (age >= (retry.maxAgeMs ?? 24 * 3_600_000)) {
      this.pending.delete(message);
      this.dropped.push(message.messageId);
      return;
    }
    const delay = Math.min(
      (retry.initialDelayMs ?? 1_000) * 2 ** (message.attempts - 1),
      retry.maxDelayMs ?? 60_000,
    );
    this.schedule(message, delay);
  }
}
