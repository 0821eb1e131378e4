/**
 * HubSpot request signatures (crm-protocols.md §2). Pure and total (STYLE.md rules 3, 5, 8): every
 * input, however hostile, yields `{ ok: false, code }` rather than an exception, and time is a
 * parameter.
 *
 * v3 (`X-HubSpot-Signature-v3`, §2.3):
 *   base64(HMAC-SHA256(clientSecret, method + uri + rawBody + timestamp))
 * where `uri` is the full URL HubSpot called with exactly 12 percent-escapes decoded, the body is the
 * raw bytes and the timestamp is the `X-HubSpot-Request-Timestamp` header string as sent.
 *
 * v1 (`X-HubSpot-Signature`, §2.1) is a plain hex SHA-256 of `clientSecret + rawBody`, with no
 * timestamp and no URI, so a captured request can be replayed forever. Accepted only when the
 * operator opts in.
 */
import { createHash, createHmac } from 'node:crypto';
import type { RawRequest, VerifyFailureCode, VerifyResult } from '../types.js';
import { constantTimeEqual } from '../../src/security/constant-time.js';

/**
 * "Reject the request if the timestamp is older than 5 minutes" (§2.3). We also reject timestamps
 * more than 5 minutes ahead: HubSpot's SDK does not, but a future timestamp extends a replay window.
 */
export const HUBSPOT_MAX_SKEW_MS = 5 * 60_000;

/**
 * The only percent-escapes HubSpot decodes before signing the URI (§2.3 table). Everything else
 * (`%20`, `%26`, `%3D`, `%25`, …) stays encoded. The table lists upper-case hex only; we decode
 * exactly those spellings and leave `%3a` alone.
 */
export const HUBSPOT_V3_DECODED_ESCAPES: Readonly<Record<string, string>> = Object.freeze({
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
});

const DECODED_ESCAPE_PATTERN = /%(?:3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/g;

/** HMAC-SHA256 output: 32 bytes, 44 base64 characters. */
const SHA256_BYTES = 32;
/** Longer signature headers are refused before any decoding (a valid one is 44 or 64 chars). */
const MAX_SIGNATURE_CHARS = 128;
/** Milliseconds since the epoch as a decimal string; 16 digits reach far beyond year 9999. */
const TIMESTAMP_PATTERN = /^[0-9]{1,16}$/;
const HEX_SHA256_PATTERN = /^[0-9a-fA-F]{64}$/;

/** Decodes exactly HubSpot's 12 listed escapes, in one left-to-right pass (no double decoding). */
export function decodeHubspotUri(uri: string): string {
  return uri.replace(
    DECODED_ESCAPE_PATTERN,
    (escape) => HUBSPOT_V3_DECODED_ESCAPES[escape] ?? escape,
  );
}

/**
 * The URL HubSpot called, before the escape decoding (which `verifyHubspotV3` applies).
 *
 * Behind a proxy or TLS terminator the internal request says `http://internal-host/…`, while HubSpot
 * signed `https://public-host/…`: configure `CRM_LEDGER_PUBLIC_URL` (the public base under which
 * this service's paths appear) and it replaces scheme and host. Without it we assume we are called
 * directly and use `http://` + the Host header. Returns undefined when there is no single Host
 * header to rebuild from.
 */
export function rebuildSignedUri(
  publicUrl: string | undefined,
  req: Pick<RawRequest, 'originalUrl' | 'headers'>,
): string | undefined {
  if (publicUrl !== undefined && publicUrl !== '') {
    return publicUrl.replace(/\/+$/, '') + req.originalUrl;
  }
  const host = singleHeader(req.headers, 'host');
  if (host.kind !== 'one') return undefined;
  return `http://${host.value}${req.originalUrl}`;
}

export interface HubspotV3Input {
  method: string;
  /** the full URL as HubSpot called it, e.g. from `rebuildSignedUri`; escapes are decoded here */
  uri: string;
  body: Buffer;
  /** `X-HubSpot-Signature-v3`, undefined when absent */
  signature: string | undefined;
  /** `X-HubSpot-Request-Timestamp`, undefined when absent */
  timestamp: string | undefined;
  secret: string;
  /** the current time in epoch milliseconds (injected) */
  now: number;
}

/** Verifies a v3 signature. Total: never throws. */
export function verifyHubspotV3(input: HubspotV3Input): VerifyResult {
  if (input.secret === '') {
    return fail('CONNECTOR_NOT_CONFIGURED', 'no HubSpot client secret is configured');
  }
  if (input.signature === undefined || input.signature === '') {
    return fail('SIGNATURE_MISSING', 'X-HubSpot-Signature-v3 is missing');
  }
  if (input.timestamp === undefined || input.timestamp === '') {
    return fail('TIMESTAMP_MISSING', 'X-HubSpot-Request-Timestamp is missing');
  }
  if (!TIMESTAMP_PATTERN.test(input.timestamp)) {
    // The contract has no TIMESTAMP_INVALID code: an unusable timestamp counts as no timestamp.
    return fail('TIMESTAMP_MISSING', 'X-HubSpot-Request-Timestamp is not decimal milliseconds');
  }
  const sentAt = Number(input.timestamp);
  if (input.now - sentAt > HUBSPOT_MAX_SKEW_MS) {
    return fail('TIMESTAMP_TOO_OLD', 'the request timestamp is more than 5 minutes old');
  }
  if (sentAt - input.now > HUBSPOT_MAX_SKEW_MS) {
    return fail('TIMESTAMP_IN_FUTURE', 'the request timestamp is more than 5 minutes ahead');
  }
  const received = decodeBase64Strict(input.signature);
  if (received?.length !== SHA256_BYTES) {
    return fail('SIGNATURE_INVALID', 'X-HubSpot-Signature-v3 is not a base64 HMAC-SHA256');
  }
  const expected = hubspotV3Digest(
    input.secret,
    input.method,
    input.uri,
    input.body,
    input.timestamp,
  );
  if (!constantTimeEqual(received, expected)) {
    return fail('SIGNATURE_INVALID', 'X-HubSpot-Signature-v3 does not match');
  }
  return { ok: true };
}

export interface HubspotV1Input {
  body: Buffer;
  /** `X-HubSpot-Signature`, undefined when absent */
  signature: string | undefined;
  secret: string;
}

/** Verifies a v1 signature (no timestamp: replayable). Total: never throws. */
export function verifyHubspotV1(input: HubspotV1Input): VerifyResult {
  if (input.secret === '') {
    return fail('CONNECTOR_NOT_CONFIGURED', 'no HubSpot client secret is configured');
  }
  if (input.signature === undefined || input.signature === '') {
    return fail('SIGNATURE_MISSING', 'X-HubSpot-Signature is missing');
  }
  if (!HEX_SHA256_PATTERN.test(input.signature)) {
    return fail('SIGNATURE_INVALID', 'X-HubSpot-Signature is not a hex SHA-256');
  }
  const received = Buffer.from(input.signature, 'hex');
  const expected = createHash('sha256').update(input.secret, 'utf8').update(input.body).digest();
  if (!constantTimeEqual(received, expected)) {
    return fail('SIGNATURE_INVALID', 'X-HubSpot-Signature does not match');
  }
  return { ok: true };
}

export interface HubspotVerifyOptions {
  secret: string | undefined;
  publicUrl?: string | undefined;
  /** accept the replayable v1 scheme when a request carries no v3 signature (default false) */
  acceptV1?: boolean | undefined;
}

/**
 * Authenticates a webhook request from its headers. A v3 signature, when present, is the only one
 * considered (no downgrade to v1 because a v3 check failed). Total: never throws.
 */
export function verifyHubspotRequest(
  req: RawRequest,
  options: HubspotVerifyOptions,
  now: number,
): VerifyResult {
  if (options.secret === undefined || options.secret === '') {
    return fail('CONNECTOR_NOT_CONFIGURED', 'no HubSpot client secret is configured');
  }
  const v3 = singleHeader(req.headers, 'x-hubspot-signature-v3');
  const v1 = singleHeader(req.headers, 'x-hubspot-signature');
  if (v3.kind === 'many' || v1.kind === 'many') {
    return fail('SIGNATURE_INVALID', 'a signature header appears more than once');
  }
  if (v3.kind === 'one') {
    const timestamp = singleHeader(req.headers, 'x-hubspot-request-timestamp');
    if (timestamp.kind === 'many') {
      return fail('TIMESTAMP_MISSING', 'X-HubSpot-Request-Timestamp appears more than once');
    }
    const uri = rebuildSignedUri(options.publicUrl, req);
    if (uri === undefined) {
      return fail('SIGNATURE_INVALID', 'no single Host header to rebuild the signed URI from');
    }
    return verifyHubspotV3({
      method: req.method,
      uri,
      body: req.body,
      signature: v3.value,
      timestamp: timestamp.kind === 'one' ? timestamp.value : undefined,
      secret: options.secret,
      now,
    });
  }
  if (v1.kind === 'absent') {
    return fail('SIGNATURE_MISSING', 'no X-HubSpot-Signature-v3 header');
  }
  const version = singleHeader(req.headers, 'x-hubspot-signature-version');
  const isV1 = version.kind === 'absent' || (version.kind === 'one' && version.value === 'v1');
  if (options.acceptV1 !== true || !isV1) {
    return fail(
      'SIGNATURE_VERSION_UNSUPPORTED',
      'only X-HubSpot-Signature-v3 is accepted (v1 is replayable; enable it explicitly)',
    );
  }
  return verifyHubspotV1({ body: req.body, signature: v1.value, secret: options.secret });
}

export interface SignHubspotV3Input {
  secret: string;
  method: string;
  /** the full URL as called; the 12 escapes are decoded as HubSpot does */
  uri: string;
  body: Buffer | string;
  timestamp: string | number;
}

/** Signs like HubSpot does (for tests, e2e and the demo): the `X-HubSpot-Signature-v3` value. */
export function signHubspotV3(input: SignHubspotV3Input): string {
  const body = typeof input.body === 'string' ? Buffer.from(input.body, 'utf8') : input.body;
  return hubspotV3Digest(
    input.secret,
    input.method,
    input.uri,
    body,
    String(input.timestamp),
  ).toString('base64');
}

/** The v1 `X-HubSpot-Signature` value: hex SHA-256 of secret + body (§2.1). */
export function signHubspotV1(input: { secret: string; body: Buffer | string }): string {
  const body = typeof input.body === 'string' ? Buffer.from(input.body, 'utf8') : input.body;
  return createHash('sha256').update(input.secret, 'utf8').update(body).digest('hex');
}

/**
 * The v2 signature (§2.2: workflow actions and CRM cards, never CRM object webhooks, so the
 * connector does not accept it): hex SHA-256 of secret + method + URI (verbatim) + body.
 */
export function signHubspotV2(input: {
  secret: string;
  method: string;
  uri: string;
  body: Buffer | string;
}): string {
  const body = typeof input.body === 'string' ? Buffer.from(input.body, 'utf8') : input.body;
  return createHash('sha256')
    .update(input.secret + input.method + input.uri, 'utf8')
    .update(body)
    .digest('hex');
}

function hubspotV3Digest(
  secret: string,
  method: string,
  uri: string,
  body: Buffer,
  timestamp: string,
): Buffer {
  // The raw body bytes go in as they are: never decoded and re-encoded (STYLE.md rule 2).
  return createHmac('sha256', secret)
    .update(method + decodeHubspotUri(uri), 'utf8')
    .update(body)
    .update(timestamp, 'utf8')
    .digest();
}

/**
 * Canonical standard base64 only: Node's decoder skips characters it does not know, so a value is
 * accepted only when re-encoding its bytes gives back the same text.
 */
function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length > MAX_SIGNATURE_CHARS) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

type HeaderValue = { kind: 'absent' } | { kind: 'one'; value: string } | { kind: 'many' };

/** One header by lower-case name; an empty value counts as absent, repeated values as ambiguous. */
function singleHeader(headers: RawRequest['headers'], name: string): HeaderValue {
  const value = headers[name];
  if (value === undefined) return { kind: 'absent' };
  if (typeof value === 'string') return value === '' ? { kind: 'absent' } : { kind: 'one', value };
  const present = value.filter((item) => item !== '');
  if (present.length === 0) return { kind: 'absent' };
  const [only] = present;
  return present.length === 1 && only !== undefined
    ? { kind: 'one', value: only }
    : { kind: 'many' };
}

function fail(code: VerifyFailureCode, reason: string): VerifyResult {
  return { ok: false, code, reason };
}
