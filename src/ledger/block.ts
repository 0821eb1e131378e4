/**
 * Blocks: one per anchored change (DESIGN.md "Block / entry").
 *
 * A block's stored form is its RFC 8785 canonical JSON; its hash is the RFC 6962 leaf hash of those
 * bytes (see hash.ts), which is both the `prev` link of the next block and the Merkle leaf. Field
 * values never enter the block: each field is a salted commitment whose value and salt are kept in
 * the record's vault entry.
 */
import { randomBytes } from 'node:crypto';
import { canonicalize } from './canonical.js';
import { commitment, fromHex, leafHash, sha256, toHex, ZERO_HASH_HEX } from './hash.js';
import { changeEventSchema } from '../model/change-event.js';
import type {
  Actor,
  ChangeEvent,
  ChangeKind,
  FieldValue,
  RecordRef,
} from '../model/change-event.js';
import { verdictSchema } from '../model/verdict.js';
import type { Verdict } from '../model/verdict.js';
import { InputError } from '../errors.js';

export const BLOCK_VERSION = 1;
export const SALT_BYTES = 16;

/** A record's vault entry for one block: the opening (salt, value) of each field commitment. */
export interface VaultField {
  salt: string; // hex
  value: FieldValue;
}
export interface VaultEntry {
  v: 1;
  fields: Record<string, VaultField>;
}

export interface Block {
  v: typeof BLOCK_VERSION;
  seq: number;
  tenant: string;
  prev: string;
  recordPrev: string;
  record: RecordRef;
  eventId: string;
  kind: ChangeKind;
  actor: Actor;
  occurredAt: string;
  anchoredAt: string;
  /** field name → hex commitment */
  fields: Record<string, string>;
  verdicts: Verdict[];
}

/** What the ledger is asked to anchor: a validated change, its idempotency key and verdicts. */
export interface AnchorRequest {
  event: ChangeEvent;
  /** Defaults to `<source>:<tenant>:<eventId>`; connectors pass a stronger key where needed. */
  idempotencyKey?: string;
  verdicts?: Verdict[];
}

/** A request checked and reduced to what a block needs. */
export interface PreparedChange {
  event: ChangeEvent;
  idemField: string;
  recordKey: string;
  verdicts: Verdict[];
}

export interface BuiltBlock {
  seq: number;
  bytes: string;
  hash: Uint8Array;
  hashHex: string;
  recordKey: string;
  idemField: string;
  vault: string;
}

export const DEFAULT_MAX_CHANGE_BYTES = 65_536;

/** `<object>/<id>`: the record's key inside a tenant (object names cannot contain '/'). */
export function recordKeyOf(ref: RecordRef): string {
  return `${ref.object}/${ref.id}`;
}

/** The idempotency field stored in Redis: hex of the first 16 bytes of SHA-256(key). */
export function idempotencyField(key: string): string {
  return toHex(sha256(Buffer.from(key, 'utf8')).subarray(0, 16));
}

export function defaultIdempotencyKey(event: ChangeEvent): string {
  return `${event.source}:${event.tenant}:${event.eventId}`;
}

/**
 * Validates one anchor request (schema, sizes, JSON-representable values) before any write.
 * Throws InputError with a code and the path of the first problem.
 */
export function prepareChange(
  request: AnchorRequest,
  maxChangeBytes = DEFAULT_MAX_CHANGE_BYTES,
): PreparedChange {
  // zod's record parser skips an own "__proto__" key instead of validating it: refuse it here,
  // before a field could silently vanish from the anchored change.
  const rawFields: unknown = (request.event as { fields?: unknown } | undefined)?.fields;
  if (
    typeof rawFields === 'object' &&
    rawFields !== null &&
    Object.hasOwn(rawFields, '__proto__')
  ) {
    throw new InputError(
      'CHANGE_INVALID',
      'change.fields.__proto__: reserved field name',
      'fields.__proto__',
    );
  }
  const parsed = changeEventSchema.safeParse(request.event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const keys = issue?.code === 'unrecognized_keys' ? issue.keys : [];
    const path = issue ? [...issue.path, ...keys.slice(0, 1)].join('.') : '';
    throw new InputError('CHANGE_INVALID', `change.${path}: ${issue?.message ?? 'invalid'}`, path);
  }
  const verdicts: Verdict[] = [];
  for (const [i, v] of (request.verdicts ?? []).entries()) {
    const res = verdictSchema.safeParse(v);
    if (!res.success) {
      throw new InputError('CHANGE_INVALID', `verdicts[${i}]: ${res.error.issues[0]?.message}`);
    }
    verdicts.push(res.data);
  }
  const event = parsed.data;
  const size = Buffer.byteLength(canonicalize({ f: event.fields, v: verdicts }), 'utf8');
  if (size > maxChangeBytes) {
    throw new InputError(
      'CHANGE_TOO_LARGE',
      `change fields and verdicts take ${size} bytes canonically, above the ${maxChangeBytes}-byte limit`,
      'fields',
    );
  }
  const key = request.idempotencyKey ?? defaultIdempotencyKey(event);
  return {
    event,
    idemField: idempotencyField(key),
    recordKey: recordKeyOf({ object: event.object, id: event.recordId }),
    verdicts,
  };
}

/**
 * Builds the block for `change` at `seq` on top of `prev`, committing to every field value with a
 * fresh salt. Pure apart from the salts.
 */
export function buildBlock(
  change: PreparedChange,
  seq: number,
  prev: string,
  recordPrev: string | undefined,
  anchoredAt: string,
): BuiltBlock {
  const { event } = change;
  const names = Object.keys(event.fields);
  const salts = randomBytes(SALT_BYTES * names.length);
  const fields: Record<string, string> = {};
  const vault: VaultEntry = { v: 1, fields: {} };
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const value = event.fields[name] ?? null;
    const salt = salts.subarray(i * SALT_BYTES, (i + 1) * SALT_BYTES);
    fields[name] = toHex(commitment(salt, Buffer.from(canonicalize(value), 'utf8')));
    vault.fields[name] = { salt: toHex(salt), value };
  }
  const block: Block = {
    v: BLOCK_VERSION,
    seq,
    tenant: event.tenant,
    prev,
    recordPrev: recordPrev ?? ZERO_HASH_HEX,
    record: { object: event.object, id: event.recordId },
    eventId: event.eventId,
    kind: event.kind,
    actor: event.actor,
    occurredAt: event.occurredAt,
    anchoredAt,
    fields,
    verdicts: change.verdicts,
  };
  const bytes = canonicalize(block);
  const hash = leafHash(Buffer.from(bytes, 'utf8'));
  return {
    seq,
    bytes,
    hash,
    hashHex: toHex(hash),
    recordKey: change.recordKey,
    idemField: change.idemField,
    vault: canonicalize(vault),
  };
}

/** Checks a field value against its commitment (used by history views and the vault). */
export function commitmentMatches(commitmentHex: string, saltHex: string, value: unknown): boolean {
  // The salt has a fixed length: with a variable one, bytes could move between salt and value
  // (salt||"1", 200001 commits like salt, 1200001) and a forged opening would verify.
  const salt = fromHex(saltHex);
  if (!salt || salt.length !== SALT_BYTES) return false;
  const c = commitment(salt, Buffer.from(canonicalize(value), 'utf8'));
  return toHex(c) === commitmentHex;
}
