/**
 * What the end-to-end benches send, shared by bench/ingest.bench.ts and bench/vault.bench.ts:
 * signed HubSpot webhook batches (the shape HubSpot sends: one property per event) and Salesforce
 * Outbound Messages (the record's full state: a 15-field contact per notification), plus a
 * keep-alive sender with a fixed number of requests in flight.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { buildOutboundMessage } from '../connectors/salesforce/outbound-message.js';
import { signHubspotV3 } from '../connectors/hubspot/signature.js';

export const HUBSPOT_SECRET = 'bench-hubspot-client-secret';
export const PUBLIC_URL = 'https://ledger.bench.example';
export const HUBSPOT_PATH = '/webhooks/hubspot';
export const SALESFORCE_PATH = '/webhooks/salesforce';
const OCCURRED_BASE = 1_764_150_000_000;

export interface BatchShape {
  /** events (notifications) per request */
  perRequest: number;
  /** distinct records the events touch */
  records: number;
  /**
   * HubSpot: creations make new records (outside the pool), property changes touch the pool;
   * Salesforce: every notification is a new record's creation. Default: every event touches the
   * pool.
   */
  creationsNew?: boolean;
}

const isCreation = (id: number): boolean => id % 5 === 0;

/** The record event `id` (1-based over the run) touches: a fixed permutation of the pool. */
export function recordOfEvent(
  id: number,
  shape: BatchShape,
  source: 'hubspot' | 'salesforce' = 'hubspot',
): number {
  if (shape.creationsNew && (source === 'salesforce' || isCreation(id))) return 10_000_000 + id;
  return 1000 + ((id * 7919) % shape.records);
}

/**
 * Request k of a run: `perRequest` contact events, eventIds k·perRequest+1 … (k+1)·perRequest;
 * every fifth a `contact.creation` (no property), the others one `email` propertyChange.
 */
export function hubspotBatch(portalId: number, k: number, shape: BatchShape): string {
  const events: Record<string, unknown>[] = [];
  for (let j = 0; j < shape.perRequest; j++) {
    const id = k * shape.perRequest + j + 1;
    const creation = isCreation(id);
    events.push({
      eventId: id,
      subscriptionId: 4242,
      portalId,
      appId: 99,
      occurredAt: OCCURRED_BASE + id,
      subscriptionType: creation ? 'contact.creation' : 'contact.propertyChange',
      attemptNumber: 0,
      objectId: recordOfEvent(id, shape),
      changeSource: 'CRM_UI',
      sourceId: 'userId:42',
      ...(creation ? {} : { propertyName: 'email', propertyValue: `p${id}@example.com` }),
    });
  }
  return JSON.stringify(events);
}

/** The v3 signature headers of a HubSpot webhook request to PUBLIC_URL + HUBSPOT_PATH, now. */
export function hubspotHeaders(body: string, secret = HUBSPOT_SECRET): Record<string, string> {
  const timestamp = Date.now();
  return {
    'content-type': 'application/json',
    'x-hubspot-signature-v3': signHubspotV3({
      secret,
      method: 'POST',
      uri: `${PUBLIC_URL}${HUBSPOT_PATH}`,
      body,
      timestamp,
    }),
    'x-hubspot-request-timestamp': String(timestamp),
  };
}

/** 15-character Salesforce id of contact `n`. */
function contactId(n: number): string {
  return `003${String(n).padStart(12, '0')}`;
}

/** A short word unique to `id` (hex of its hash): values of different records never look alike. */
function word(id: number, field: string): string {
  return createHash('sha256').update(`${field}:${id}`).digest('hex').slice(0, 10);
}

/**
 * Request k: `perRequest` Outbound Message notifications, each a contact's full state of 15
 * fields, every value new (so the whole state is anchored): the largest change a contact makes.
 * With `creationsNew`, each is a new contact (CreatedDate = LastModifiedDate).
 */
export function salesforceBatch(orgId: string, k: number, shape: BatchShape): Buffer {
  const notifications = [];
  for (let j = 0; j < shape.perRequest; j++) {
    const id = k * shape.perRequest + j + 1;
    const rec = recordOfEvent(id, shape, 'salesforce');
    const at = new Date(OCCURRED_BASE + id * 1000).toISOString();
    notifications.push({
      id: `04l${String(id).padStart(15, '0')}`,
      sObjectType: 'Contact',
      fields: {
        Id: contactId(rec),
        FirstName: `F${word(id, 'first')}`,
        LastName: `L${word(id, 'last')}`,
        Email: `${word(id, 'email')}@${word(id, 'domain')}.example.com`,
        Phone: `+1 ${String(200 + (id % 700))} ${String(id % 1_000_000).padStart(7, '0')}`,
        Title: `Title ${word(id, 'title')}`,
        Department: `Dept ${word(id, 'dept')}`,
        MailingStreet: `${id % 900} ${word(id, 'street')} St`,
        MailingCity: `C${word(id, 'city')}`,
        MailingPostalCode: String(10_000 + (id % 89_999)),
        MailingCountry: 'US',
        LeadSource: `Web ${id % 7}`,
        Description: `Note ${word(id, 'note')} ${word(id, 'note2')}`,
        ...(shape.creationsNew ? { CreatedDate: at } : {}),
        LastModifiedById: '0055g00000XYZ12AAA',
        LastModifiedDate: at,
      },
    });
  }
  return buildOutboundMessage({ orgId, notifications });
}

export interface SendResult {
  /** status code → requests */
  statuses: Map<number, number>;
}

/**
 * Sends `count` requests, `inFlight` at a time over keep-alive connections; `make(i)` builds
 * request i (body and headers) as it is sent.
 */
export async function sendRequests(
  port: number,
  path: string,
  count: number,
  inFlight: number,
  make: (i: number) => { body: string | Buffer; headers: Record<string, string> },
): Promise<SendResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const statuses = new Map<number, number>();
  let next = 0;
  const one = (i: number, attempt = 1): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const { body, headers } = make(i);
      const req = http.request(
        {
          agent,
          host: '127.0.0.1',
          port,
          method: 'POST',
          path,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const s = res.statusCode ?? 0;
            statuses.set(s, (statuses.get(s) ?? 0) + 1);
            resolve();
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed just as this request was written to it (Node's
        // documented keep-alive race): resend once on a fresh socket. Webhook deliveries are
        // idempotent, so a resend of a request that did arrive anchors nothing twice.
        if (req.reusedSocket && err.code === 'ECONNRESET' && attempt === 1) {
          one(i, attempt + 1).then(resolve, reject);
          return;
        }
        reject(err);
      });
      req.end(body);
    });
  const lane = async (): Promise<void> => {
    while (next < count) await one(next++);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  } finally {
    agent.destroy();
  }
  return { statuses };
}
