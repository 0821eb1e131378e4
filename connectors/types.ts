/**
 * The connector contract (DESIGN.md "Contracts"): one implementation per CRM, in its own folder.
 * The only file connectors share. Boundaries return results (STYLE.md rule 7): bad input is
 * expected, so verifyRequest and parse never throw on attacker input.
 */
import type { ChangeEvent, FieldValue, RecordRef, Source } from '../src/model/change-event.js';
import type { Verdict } from '../src/model/verdict.js';

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
  /**
   * Anchor it only if some field differs from the record's last anchored state (a Salesforce CDC
   * event whose change already came as an Outbound Message).
   */
  skipIfUnchanged?: true;
  /**
   * Verdicts found before the event was queued (reconciliation: `unanchored-change`). The anchor
   * worker writes them into the block, before the verdicts of its own checks.
   */
  verdicts?: Verdict[];
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

// ---------------------------------------------------------------------------------------------
// Talking back to the CRM (issue 5): write-back of verdicts, reverts, record fetch.
// One `CrmClient` per configured CRM account (tenant), built on the real SDKs (jsforce,
// @hubspot/api-client). Clients never retry by themselves: they classify failures as CrmApiError
// and the flag worker (BullMQ) decides when to try again, so a retry survives a crash.
// ---------------------------------------------------------------------------------------------

/** A verdict to write back onto one record, identified by the block that carries it. */
export interface FlagRequest {
  tenant: string;
  ref: RecordRef;
  /** seq of the block whose verdicts these are: the idempotency key of the write-back */
  seq: number;
  blockHash: string;
  verdicts: readonly Verdict[];
  /** the admin URL of the record's history, for the note/task */
  adminUrl?: string;
  /**
   * The policy said `revert`: after flagging, restore these values (the record's last anchored
   * state before the change; null clears a field that had no value).
   */
  revert?: Record<string, FieldValue>;
}

export type FlagOutcome =
  | { seq: number; status: 'flagged'; noteId?: string }
  /** already written by an earlier attempt (found the marker): nothing written twice */
  | { seq: number; status: 'already-flagged'; noteId?: string }
  /** the record is gone from the CRM: nothing to flag, nothing to retry */
  | { seq: number; status: 'record-missing' };

/** One record as the CRM holds it now. */
export interface FetchedRecord {
  ref: RecordRef;
  fields: Record<string, FieldValue>;
  /** the CRM's last-modified time (ISO 8601) */
  modifiedAt: string;
  /** archived / in the recycle bin */
  deleted?: boolean;
}

export type FetchQuery =
  | { object: string; ids: readonly string[] }
  /** modified in [since, until); `cursor` continues a previous page */
  | { object: string; since: string; until?: string; cursor?: string; limit?: number };

export interface FetchPage {
  records: FetchedRecord[];
  /** set when more pages follow */
  cursor?: string;
}

export interface CrmClient {
  readonly source: Source;
  readonly tenant: string;
  /** Writes each verdict back (status property/field + note/task). Up to 100 per call. */
  flag(requests: readonly FlagRequest[]): Promise<FlagOutcome[]>;
  /** Restores `fields` to the given values, marked as our own change (no echo loop). */
  revert(
    ref: RecordRef,
    fields: Readonly<Record<string, FieldValue>>,
    reason: string,
  ): Promise<void>;
  fetchRecords(query: FetchQuery): Promise<FetchPage>;
  /** The fields crm-ledger itself writes (its echo is recognised by these and by the actor). */
  readonly ownFields: readonly string[];
}

export type CrmApiErrorKind =
  /** 429 / REQUEST_LIMIT_EXCEEDED: wait `retryAfterMs`, then retry (not counted as a failure) */
  | 'rate-limited'
  /** 5xx, timeouts, connection errors: retry with exponential backoff and jitter */
  | 'transient'
  /** 401 after one token refresh, 403: stop and alert */
  | 'auth'
  /** 4xx that retrying cannot fix */
  | 'permanent';

export class CrmApiError extends Error {
  constructor(
    readonly kind: CrmApiErrorKind,
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CrmApiError';
  }
}
