/**
 * The connector contract (DESIGN.md "Contracts"): one implementation per CRM, in its own folder.
 * The only file connectors share. Boundaries return results (STYLE.md rule 7): bad input is
 * expected, so verifyRequest and parse never throw on attacker input.
 */
import type { ChangeEvent, Source } from '../src/model/change-event.js';

/** A webhook request exactly as received: the raw body is what signatures cover. */
export interface RawRequest {
  method: string;
  /** path and query as received, e.g. `/webhooks/hubspot?x=1` */
  originalUrl: string;
  /** lower-case header names */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}

export type VerifyFailureCode =
  | 'SIGNATURE_MISSING'
  | 'SIGNATURE_INVALID'
  | 'TIMESTAMP_MISSING'
  | 'TIMESTAMP_TOO_OLD'
  | 'TIMESTAMP_IN_FUTURE'
  | 'SIGNATURE_VERSION_UNSUPPORTED'
  | 'ORGANIZATION_NOT_ALLOWED'
  | 'CONNECTOR_NOT_CONFIGURED';

export type VerifyResult = { ok: true } | { ok: false; code: VerifyFailureCode; reason: string };

export type ParseFailureCode = 'PAYLOAD_MALFORMED' | 'EVENT_INVALID' | 'BATCH_TOO_LARGE';

/** A normalised event plus the key that makes its anchoring idempotent. */
export interface ParsedEvent {
  event: ChangeEvent;
  /** built from the source, the tenant and the event's own identity (never contains secrets) */
  idempotencyKey: string;
  /**
   * `fields` hold the record's whole current state (Salesforce Outbound Messages), not a change:
   * the anchor worker anchors only the fields that differ from the record's last anchored state,
   * plus a hash of the whole state (STATE_HASH_FIELD).
   */
  fullState?: true;
}

export type ParseResult =
  | { ok: true; events: ParsedEvent[] }
  | { ok: false; code: ParseFailureCode; reason: string; path?: string };

/** What the webhook answers: the body the CRM expects. */
export interface ConnectorResponse {
  status: number;
  contentType: string;
  body: string;
}

export interface Connector {
  readonly source: Source;
  /** Authenticates the raw request before anything parses it. Total: never throws. */
  verifyRequest(req: RawRequest, now: number): VerifyResult;
  /** Parses a verified body into normalised events. Total: never throws. */
  parse(req: RawRequest): ParseResult;
  /** The success answer, sent only after every event is durably queued. */
  acknowledge(events: readonly ParsedEvent[]): ConnectorResponse;
  /** The answer to a refused request (e.g. a SOAP fault), given our error code and message. */
  reject(status: number, code: string, message: string): ConnectorResponse;
}
