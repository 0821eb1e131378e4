/**
 * Reads the link members of a stored block (`prev`, `record`, `recordPrev`, `seq`, `tenant`)
 * straight from its canonical bytes, without decoding or parsing it: the verifier's hot path.
 *
 * All of them come after `fields` in a block's canonical (JCS, sorted) text, and `fields` — field
 * names and 64-hex commitments, most of the block — is closed by the first `},"kind":"` in the
 * bytes: inside a JSON string a quote is always escaped, so that byte sequence can only be
 * structure. From there the tail is matched byte by byte against the shape our appender writes,
 * every member in its schema's character set (no escapes possible):
 *
 *   "kind":"[a-z]+","occurredAt":"[0-9T:.+Z-]+","prev":"<64 hex>","record":{"id":"<id>",
 *   "object":"<object>"},"recordPrev":"<64 hex>","seq":<n>,"tenant":"<tenant>","v":1,"verdicts":[
 *
 * Only positions are recorded (no strings are made): the verifier compares the hex links in
 * place. Anything else returns false and the caller falls back to JSON.parse, so this only ever
 * makes the common case faster; a unit test holds it to JSON.parse.
 */

/** Byte positions of one block's link members (valid after scanLinks returned true). */
export interface LinkSpans {
  /** `prev`: 64 lower-case hex bytes from here */
  prev: number;
  idStart: number;
  idEnd: number;
  objectStart: number;
  objectEnd: number;
  /** `recordPrev`: 64 lower-case hex bytes from here */
  recordPrev: number;
  seq: number;
  tenantStart: number;
  tenantEnd: number;
}

export const FIELDS_END = Buffer.from('},"kind":"');

function charClass(chars: string): Uint8Array {
  const table = new Uint8Array(256);
  for (const part of chars.match(/.-.|./g) ?? []) {
    if (part.length === 3) {
      for (let c = part.charCodeAt(0); c <= part.charCodeAt(2); c++) table[c] = 1;
    } else table[part.charCodeAt(0)] = 1;
  }
  return table;
}

const LOWER = charClass('a-z');
const TIME = charClass('0-9T:.+Z-');
const HEX = charClass('0-9a-f');
const ID = charClass('A-Za-z0-9._~-');
const OBJECT_REST = charClass('a-z0-9_');
const DIGIT = charClass('0-9');
const TENANT_ID = charClass('A-Za-z0-9_-');

const lit = (s: string) => Buffer.from(s, 'latin1');
const OCCURRED = lit('","occurredAt":"');
const PREV = lit('","prev":"');
const RECORD = lit('","record":{"id":"');
const OBJECT = lit('","object":"');
const RECORD_PREV = lit('"},"recordPrev":"');
const SEQ = lit('","seq":');
const TENANT = lit(',"tenant":"');
const HUBSPOT = lit('hubspot:');
const SALESFORCE = lit('salesforce:');
const END = lit('","v":1,"verdicts":[');

/** Whether `b` holds `lit` at `p`. */
function at(b: Uint8Array, p: number, literal: Uint8Array): boolean {
  if (p + literal.length > b.length) return false;
  for (let i = 0; i < literal.length; i++) if (b[p + i] !== literal[i]) return false;
  return true;
}

/** End of the run of `table` characters from `p` (at most `max` of them). */
function run(b: Uint8Array, p: number, table: Uint8Array, max: number): number {
  const stop = Math.min(b.length, p + max);
  while (p < stop && table[b[p] as number] === 1) p++;
  return p;
}

/** The end of 64 hex characters at `p`, or -1. */
function hex64(b: Uint8Array, p: number): number {
  return run(b, p, HEX, 64) === p + 64 ? p + 64 : -1;
}

/**
 * Fills `out` with the link positions of `b` if its tail (from `tail`, the `"kind"` after the
 * fields) is exactly in our appender's shape; false otherwise. With `prevHex` false the 64 bytes
 * of `prev` are not checked for hex: for a caller that compares them with a known hex hash and
 * takes the general way when they differ (the verifier).
 */
export function scanTail(b: Uint8Array, tail: number, out: LinkSpans, prevHex = true): boolean {
  let p = tail + '"kind":"'.length;
  let q = run(b, p, LOWER, Infinity);
  if (q === p || !at(b, q, OCCURRED)) return false;
  p = q + OCCURRED.length;
  q = run(b, p, TIME, Infinity);
  if (q === p || !at(b, q, PREV)) return false;
  out.prev = q + PREV.length;
  p = prevHex ? hex64(b, out.prev) : out.prev + 64 <= b.length ? out.prev + 64 : -1;
  if (p < 0 || !at(b, p, RECORD)) return false;
  out.idStart = p + RECORD.length;
  out.idEnd = run(b, out.idStart, ID, 128);
  if (out.idEnd === out.idStart || !at(b, out.idEnd, OBJECT)) return false;
  out.objectStart = out.idEnd + OBJECT.length;
  if (LOWER[b[out.objectStart] as number] !== 1) return false;
  out.objectEnd = run(b, out.objectStart + 1, OBJECT_REST, 79);
  if (!at(b, out.objectEnd, RECORD_PREV)) return false;
  out.recordPrev = out.objectEnd + RECORD_PREV.length;
  p = hex64(b, out.recordPrev);
  if (p < 0 || !at(b, p, SEQ)) return false;
  p += SEQ.length;
  q = run(b, p, DIGIT, 16);
  if (q === p || (b[p] === 0x30 && q > p + 1)) return false;
  let seq = 0;
  for (let i = p; i < q; i++) seq = seq * 10 + ((b[i] as number) - 0x30);
  out.seq = seq;
  if (!at(b, q, TENANT)) return false;
  out.tenantStart = q + TENANT.length;
  p = at(b, out.tenantStart, HUBSPOT)
    ? out.tenantStart + HUBSPOT.length
    : at(b, out.tenantStart, SALESFORCE)
      ? out.tenantStart + SALESFORCE.length
      : -1;
  if (p < 0) return false;
  out.tenantEnd = run(b, p, TENANT_ID, 64);
  return out.tenantEnd > p && at(b, out.tenantEnd, END);
}

/** Position of the `"kind"` member after the fields, or -1. */
export function tailOf(b: Buffer): number {
  const i = b.indexOf(FIELDS_END);
  return i < 0 ? -1 : i + 2;
}

/** A fresh LinkSpans to fill. */
export function newLinkSpans(): LinkSpans {
  return {
    prev: 0,
    idStart: 0,
    idEnd: 0,
    objectStart: 0,
    objectEnd: 0,
    recordPrev: 0,
    seq: 0,
    tenantStart: 0,
    tenantEnd: 0,
  };
}
