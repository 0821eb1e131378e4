/**
 * Blocks: one per anchored change (DESIGN.md "Block / entry").
 *
 * A block's stored form is its RFC 8785 canonical JSON; its hash is the RFC 6962 leaf hash of those
 * bytes (see hash.ts), which is both the `prev` link of the next block and the Merkle leaf. Field
 * values never enter the block: each field is a salted commitment whose value and salt are kept in
 * the record's vault entry.
 */
import { randomBytes } from 'node:crypto';
import { canonicalize, sortedKeys } from './canonical.js';
import {
  commitment,
  fromHex,
  RFC6962_LEAF_HASH_PREFIX,
  sha256Hex,
  toHex,
  ZERO_HASH_HEX,
} from './hash.js';
import { changeEventParser } from '../model/change-event.js';
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
import { ByteArena } from '../util/byte-arena.js';
import { nativeAddon } from '../native/addon.js';
import type { NativeAddon } from '../native/addon.js';

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

/**
 * A request checked and reduced to what a block needs. Everything that does not depend on the
 * block's place in the chain — the field commitments, the vault entry and the canonical text of
 * the fixed members — is computed here, before (and outside) the sequential part of an append.
 */
export interface PreparedChange {
  event: ChangeEvent;
  idemField: string;
  recordKey: string;
  verdicts: Verdict[];
  /** UTF-8 of the canonical JSON of the vault entry (the openings of the commitments) */
  vault: Buffer;
  /**
   * UTF-8 of the canonical block text around the chain-dependent members (see buildBlock),
   * encoded here so that building a block copies bytes instead of encoding a joined string.
   */
  canon: { head: Buffer; mid: Buffer; tail1: Buffer; tail2: Buffer };
}

export interface BuiltBlock {
  seq: number;
  /** the canonical block text (decoded from `encoded` when asked: only tests and tools need it) */
  readonly bytes: string;
  /** its UTF-8 bytes, as stored and hashed: what the append script is sent (not encoded again) */
  encoded: Buffer;
  hash: Uint8Array;
  hashHex: string;
  recordKey: string;
  idemField: string;
  /** the vault entry as stored: its plain canonical JSON, or the sealed form once sealed */
  vault: Buffer;
}

export const DEFAULT_MAX_CHANGE_BYTES = 65_536;

/** `<object>/<id>`: the record's key inside a tenant (object names cannot contain '/'). */
export function recordKeyOf(ref: RecordRef): string {
  return `${ref.object}/${ref.id}`;
}

/** The idempotency field stored in Redis: hex of the first 16 bytes of SHA-256(key). */
export function idempotencyField(key: string): string {
  return sha256Hex(key).slice(0, 32);
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
  const parsed = changeEventParser.safeParse(request.event);
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
  const key = request.idempotencyKey ?? defaultIdempotencyKey(event);

  // Field commitments and the vault entry, in canonical (JCS) member order.
  const names = sortedKeys(event.fields);
  const n = names.length;
  // UTF-16 length of the names' and values' canonical text: UTF-8 takes at most 3 bytes per
  // UTF-16 unit, so the exact byte count is needed only when 3x this could pass the limit.
  let chars = 0;
  for (let i = 0; i < n; i++) {
    const nameJson = canonicalize(names[i]);
    const valueJson = canonicalize(event.fields[names[i] as string] ?? null);
    nameJsons[i] = nameJson;
    valueJsons[i] = valueJson;
    chars += nameJson.length + valueJson.length;
  }
  const verdictsJson = canonicalize(verdicts);
  // Exactly the byte length of canonical {"f":fields,"v":verdicts}.
  const frame = '{"f":,"v":}'.length + 2 + Math.max(0, n - 1) + n;
  let size = frame + chars + verdictsJson.length;
  if (3 * (chars + verdictsJson.length) + frame > maxChangeBytes) {
    size = frame + Buffer.byteLength(verdictsJson);
    for (let i = 0; i < n; i++) {
      size +=
        Buffer.byteLength(nameJsons[i] as string) + Buffer.byteLength(valueJsons[i] as string);
    }
  }
  if (size > maxChangeBytes) {
    throw new InputError(
      'CHANGE_TOO_LARGE',
      `change fields and verdicts take ${size} bytes canonically, above the ${maxChangeBytes}-byte limit`,
      'fields',
    );
  }
  const saltAt = takeSalts(n);
  const salts = saltPool.subarray(saltAt, saltAt + n * SALT_BYTES);
  const packedNames = packTexts(nameJsons, n, nameBytes, nameEndsByCount);
  const packedValues = packTexts(valueJsons, n, valueBytes, valueEndsByCount);
  nameBytes = packedNames.bytes;
  valueBytes = packedValues.bytes;
  // The block text around its links: head, then mid (eventId, the fields, kind, occurredAt and the
  // start of prev), written around the field texts in the arena; the vault entry after it.
  const midStart = `,"eventId":${canonicalize(event.eventId)},"fields":`;
  const midEnd = `,"kind":${canonicalize(event.kind)},"occurredAt":${canonicalize(event.occurredAt)},"prev":"`;
  const { fields: fieldsLength, vault: vaultLength } = fieldTextLengths(
    packedNames.ends,
    packedValues.ends,
  );
  const buf = preparedBytes.reserve(
    3 * (midStart.length + midEnd.length) + fieldsLength + vaultLength,
  );
  const at = preparedBytes.at;
  const fieldsAt = at + buf.write(midStart, at, 'utf8');
  const midEndAt = fieldsAt + fieldsLength;
  const vaultAt = midEndAt + buf.write(midEnd, midEndAt, 'utf8');
  preparedBytes.at = vaultAt + vaultLength;
  writeFieldTexts(packedNames, packedValues, salts, buf, fieldsAt, vaultAt);
  // canonicalize({ id, object }): members in JCS order, each a string.
  const record = `{"id":${canonicalize(event.recordId)},"object":${canonicalize(event.object)}}`;
  return {
    event,
    idemField: idempotencyField(key),
    recordKey: recordKeyOf({ object: event.object, id: event.recordId }),
    verdicts,
    vault: buf.subarray(vaultAt, vaultAt + vaultLength),
    // JCS sorts members: actor, anchoredAt, eventId, fields, kind, occurredAt, prev, record,
    // recordPrev, seq, tenant, v, verdicts. A unit test holds this to canonicalize(block).
    canon: {
      head: preparedBytes.writeUtf8(`{"actor":${canonicalize(event.actor)},"anchoredAt":`),
      mid: buf.subarray(at, vaultAt),
      tail1: preparedBytes.writeUtf8(`","record":${record},"recordPrev":"`),
      tail2: preparedBytes.writeUtf8(
        `,"tenant":${canonicalize(event.tenant)},"v":${BLOCK_VERSION},"verdicts":${verdictsJson}}`,
      ),
    },
  };
}

/** Where prepareChange encodes a change's fixed bytes (vault entry, block text around the links). */
const preparedBytes = new ByteArena();

/**
 * Builds the block for `change` at `seq` on top of `prev`: the only chain-dependent step of an
 * append, so it is kept to copying bytes and one hash. The fixed parts, encoded by prepareChange,
 * are copied into a shared arena after the RFC 6962 leaf prefix and the links and seq are written
 * between them: the bytes hashed are the bytes sent to Redis, which the client sends as they are.
 * No block text is made (joining it and encoding the joined string cost ~15x the copy).
 */
export function buildBlock(
  change: PreparedChange,
  seq: number,
  prev: string,
  recordPrev: string | undefined,
  anchoredAt: string,
): BuiltBlock {
  const { canon } = change;
  const at = anchoredAtJson(anchoredAt);
  const rp = recordPrev ?? ZERO_HASH_HEX;
  const sq = String(seq);
  // At most 3 UTF-8 bytes per UTF-16 unit (the seq's digits and its prefix are ASCII).
  const max =
    1 +
    canon.head.length +
    canon.mid.length +
    canon.tail1.length +
    canon.tail2.length +
    SEQ_PREFIX.length +
    sq.length +
    3 * (at.length + prev.length + rp.length);
  const buf = blockBytes.reserve(max);
  const start = blockBytes.at;
  let p = start;
  buf[p++] = RFC6962_LEAF_HASH_PREFIX;
  buf.set(canon.head, p);
  p += canon.head.length;
  p += buf.write(at, p, 'utf8');
  buf.set(canon.mid, p);
  p += canon.mid.length;
  p += buf.write(prev, p, 'utf8');
  buf.set(canon.tail1, p);
  p += canon.tail1.length;
  p += buf.write(rp, p, 'utf8');
  p += buf.write(SEQ_PREFIX, p, 'latin1');
  p += buf.write(sq, p, 'latin1');
  buf.set(canon.tail2, p);
  p += canon.tail2.length;
  blockBytes.at = p;
  const hashHex = sha256Hex(buf.subarray(start, p));
  return new Built(
    seq,
    buf.subarray(start + 1, p),
    Buffer.from(hashHex, 'hex'),
    hashHex,
    change.recordKey,
    change.idemField,
    change.vault,
  );
}

class Built implements BuiltBlock {
  constructor(
    readonly seq: number,
    readonly encoded: Buffer,
    readonly hash: Uint8Array,
    readonly hashHex: string,
    readonly recordKey: string,
    readonly idemField: string,
    public vault: Buffer,
  ) {}

  get bytes(): string {
    return this.encoded.toString('utf8');
  }
}

const SEQ_PREFIX = '","seq":';
/** Blocks' bytes (with the leaf prefix byte before each): see ByteArena. */
const blockBytes = new ByteArena();

/** JSON of the batch's anchoredAt, made once per batch rather than once per block. */
let lastAnchoredAt = '';
let lastAnchoredAtJson = '""';
function anchoredAtJson(anchoredAt: string): string {
  if (anchoredAt !== lastAnchoredAt) {
    lastAnchoredAtJson = JSON.stringify(anchoredAt);
    lastAnchoredAt = anchoredAt;
  }
  return lastAnchoredAtJson;
}

/**
 * prepareChange's per-field canonical texts, reused (prepareChange is synchronous; entries past a
 * change's field count are stale and never read).
 */
const nameJsons: string[] = [];
const valueJsons: string[] = [];

/**
 * Salts come from a pool refilled 64 KiB at a time: one randomBytes call per 4,096 salts (~0.5 ns
 * a byte here, against ~0.8 for 4 KiB calls). A change's salts are handed out together, as the
 * offset of `n` consecutive salts in the current pool; they are used (hashed and written in hex
 * by writeFieldTexts) before the pool can be refilled.
 */
const SALT_POOL_SIZE = SALT_BYTES * 4096;
let saltPool = randomBytes(SALT_POOL_SIZE);
let saltOffset = 0;
function takeSalts(n: number): number {
  const bytes = n * SALT_BYTES;
  if (saltOffset + bytes > saltPool.length) {
    saltPool = randomBytes(Math.max(SALT_POOL_SIZE, bytes));
    saltOffset = 0;
  }
  const at = saltOffset;
  saltOffset += bytes;
  return at;
}

/** Canonical JSON texts as UTF-8 bytes one after the other, and where each ends. */
export interface PackedTexts {
  bytes: Buffer;
  ends: Uint32Array;
}

/** Reused by prepareChange for the names' and values' bytes (grown as needed). */
let nameBytes: Buffer = Buffer.allocUnsafeSlow(4096);
let valueBytes: Buffer = Buffer.allocUnsafeSlow(4096);
/** prepareChange's exact-length ends, kept per count (most changes have a few field counts). */
const nameEndsByCount: Uint32Array[] = [];
const valueEndsByCount: Uint32Array[] = [];
const MAX_KEPT_COUNT = 256;

/**
 * texts[0, n) packed into `into` (or a larger buffer, returned) with one UTF-8 write. Every
 * canonical JSON text ends with an ASCII character, so the joined encoding is the texts'
 * encodings one after the other. With `keep`, the ends array is kept there per count and reused
 * by the next call with as many texts.
 */
export function packTexts(
  texts: readonly string[],
  n: number,
  into: Buffer,
  keep?: Uint32Array[],
): PackedTexts {
  let joined = '';
  for (let i = 0; i < n; i++) joined += texts[i] as string;
  const bytes =
    3 * joined.length > into.length
      ? Buffer.allocUnsafeSlow(Math.max(3 * joined.length, 2 * into.length))
      : into;
  const written = bytes.write(joined, 0, 'utf8');
  const ends = keep?.[n] ?? new Uint32Array(n);
  if (keep && n <= MAX_KEPT_COUNT) keep[n] = ends;
  // All ASCII (the common case): a text's bytes are its UTF-16 units.
  const ascii = written === joined.length;
  let end = 0;
  for (let i = 0; i < n; i++) {
    const text = texts[i] as string;
    end += ascii ? text.length : Buffer.byteLength(text, 'utf8');
    ends[i] = end;
  }
  return { bytes, ends };
}

/** Byte lengths of the two texts writeFieldTexts writes (the addon computes the same). */
export function fieldTextLengths(
  nameEnds: Uint32Array,
  valueEnds: Uint32Array,
): { fields: number; vault: number } {
  const n = nameEnds.length;
  const names = n > 0 ? (nameEnds[n - 1] as number) : 0;
  const values = n > 0 ? (valueEnds[n - 1] as number) : 0;
  const commas = Math.max(0, n - 1);
  // {name:"<64 hex>",...}  and  {"fields":{name:{"salt":"<32 hex>","value":value},...},"v":1}
  return { fields: 2 + names + 67 * n + commas, vault: 19 + names + values + 53 * n + commas };
}

/**
 * A change's field texts, from the canonical JSON of its field names and values (in canonical
 * member order) and one 16-byte salt per field: at out[fieldsAt, …) the block's `fields` member,
 * `{name:"<hex commitment>",…}`; at out[vaultAt, …) its vault entry,
 * `{"fields":{name:{"salt":"<hex salt>","value":value},…},"v":1}` (the openings). Lengths as
 * fieldTextLengths. One native call when the addon is built (`native` undefined: node:crypto, one
 * hash per field, the same bytes; a unit test holds the two to canonicalize of the same object).
 */
export function writeFieldTexts(
  names: PackedTexts,
  values: PackedTexts,
  salts: Uint8Array,
  out: Buffer,
  fieldsAt: number,
  vaultAt: number,
  native: NativeAddon | undefined = nativeAddon,
): void {
  const n = names.ends.length;
  if (values.ends.length !== n || salts.length !== n * SALT_BYTES) {
    throw new RangeError('one value and 16 bytes of salt per name');
  }
  if (native) {
    native.fieldTexts(
      names.bytes,
      names.ends,
      values.bytes,
      values.ends,
      salts,
      out,
      fieldsAt,
      vaultAt,
    );
    return;
  }
  let f = fieldsAt;
  let v = vaultAt;
  f += out.write('{', f, 'latin1');
  v += out.write('{"fields":{', v, 'latin1');
  for (let i = 0; i < n; i++) {
    const name = names.bytes.subarray(i === 0 ? 0 : names.ends[i - 1], names.ends[i]);
    const value = values.bytes.subarray(i === 0 ? 0 : values.ends[i - 1], values.ends[i]);
    const salt = salts.subarray(i * SALT_BYTES, (i + 1) * SALT_BYTES);
    const hex = toHex(commitment(salt, value));
    if (i > 0) {
      f += out.write(',', f, 'latin1');
      v += out.write(',', v, 'latin1');
    }
    f += name.copy(out, f);
    f += out.write(`:"${hex}"`, f, 'latin1');
    v += name.copy(out, v);
    v += out.write(`:{"salt":"${toHex(salt)}","value":`, v, 'latin1');
    v += value.copy(out, v);
    v += out.write('}', v, 'latin1');
  }
  out.write('}', f, 'latin1');
  out.write('},"v":1}', v, 'latin1');
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
