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
  COMMITMENT_TAG,
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
  const hexes = commitmentsHex(valueJsons, n, saltPool.subarray(saltAt, saltAt + n * SALT_BYTES));
  let fieldsJson = '{';
  let vaultFields = '{';
  for (let i = 0; i < n; i++) {
    const sep = i > 0 ? ',' : '';
    const nameJson = nameJsons[i] as string;
    const salt = saltPoolHex.slice(
      2 * (saltAt + i * SALT_BYTES),
      2 * (saltAt + (i + 1) * SALT_BYTES),
    );
    fieldsJson += `${sep}${nameJson}:"${hexes.slice(64 * i, 64 * i + 64)}"`;
    vaultFields += `${sep}${nameJson}:{"salt":"${salt}","value":${valueJsons[i] as string}}`;
  }
  fieldsJson += '}';
  vaultFields += '}';
  // canonicalize({ id, object }): members in JCS order, each a string.
  const record = `{"id":${canonicalize(event.recordId)},"object":${canonicalize(event.object)}}`;
  return {
    event,
    idemField: idempotencyField(key),
    recordKey: recordKeyOf({ object: event.object, id: event.recordId }),
    verdicts,
    vault: preparedBytes.writeUtf8(`{"fields":${vaultFields},"v":1}`),
    // JCS sorts members: actor, anchoredAt, eventId, fields, kind, occurredAt, prev, record,
    // recordPrev, seq, tenant, v, verdicts. A unit test holds this to canonicalize(block).
    canon: {
      head: preparedBytes.writeUtf8(`{"actor":${canonicalize(event.actor)},"anchoredAt":`),
      mid: preparedBytes.writeUtf8(
        `,"eventId":${canonicalize(event.eventId)},"fields":${fieldsJson}` +
          `,"kind":${canonicalize(event.kind)},"occurredAt":${canonicalize(event.occurredAt)},"prev":"`,
      ),
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
 * Salts come from a pool refilled 4 KiB at a time: one randomBytes call (and one hex encoding)
 * per 256 salts. A change's salts are handed out together, as the offset of `n` consecutive salts
 * in the current pool; they are used (hashed, their hex sliced from the pool's hex) before the pool
 * can be refilled. Not larger: Node's hex encoding of a 64 KiB buffer costs ~1.1 ms here (~17 ns a
 * byte, against ~0.9 for 4 KiB), which was ~4 µs per 15-field change.
 */
const SALT_POOL_SIZE = SALT_BYTES * 256;
let saltPool = randomBytes(SALT_POOL_SIZE);
let saltPoolHex = saltPool.toString('hex');
let saltOffset = 0;
function takeSalts(n: number): number {
  const bytes = n * SALT_BYTES;
  if (saltOffset + bytes > saltPool.length) {
    saltPool = randomBytes(Math.max(SALT_POOL_SIZE, bytes));
    saltPoolHex = saltPool.toString('hex');
    saltOffset = 0;
  }
  const at = saltOffset;
  saltOffset += bytes;
  return at;
}

/**
 * The hex commitments (hash.ts `commitment`) of values[0, n), canonical JSON texts, under
 * salts[16i, 16i+16), as one string of 64 characters per value: one native call for all of them
 * when the addon is built (`native` undefined: one node:crypto call each, the same bytes).
 */
export function commitmentsHex(
  values: readonly string[],
  n: number,
  salts: Uint8Array,
  native: NativeAddon | undefined = nativeAddon,
): string {
  if (salts.length !== n * SALT_BYTES) throw new RangeError('16 bytes of salt per value');
  return native
    ? commitmentsHexNative(native, values, n, salts)
    : commitmentsHexJs(values, n, salts);
}

/** The values' UTF-8 bytes, one after the other, and where each ends (native input). */
let valueBytes = Buffer.allocUnsafeSlow(4096);
/** Exact-length ends and outputs, kept per value count (most changes have a few counts). */
const endsByCount: Uint32Array[] = [];
const hexByCount: Buffer[] = [];
const MAX_KEPT_COUNT = 256;

function commitmentsHexNative(
  native: NativeAddon,
  values: readonly string[],
  n: number,
  salts: Uint8Array,
): string {
  // One UTF-8 write for all values. Every canonical JSON text ends with an ASCII character, so
  // the joined encoding is the values' encodings one after the other.
  let joined = '';
  for (let i = 0; i < n; i++) joined += values[i] as string;
  if (3 * joined.length > valueBytes.length) {
    valueBytes = Buffer.allocUnsafeSlow(Math.max(3 * joined.length, 2 * valueBytes.length));
  }
  const written = valueBytes.write(joined, 0, 'utf8');
  const ends = endsByCount[n] ?? new Uint32Array(n);
  const out = hexByCount[n] ?? Buffer.allocUnsafeSlow(64 * n);
  if (n <= MAX_KEPT_COUNT) {
    endsByCount[n] = ends;
    hexByCount[n] = out;
  }
  let end = 0;
  // All ASCII (the common case): a value's bytes are its UTF-16 units.
  const ascii = written === joined.length;
  for (let i = 0; i < n; i++) {
    const v = values[i] as string;
    end += ascii ? v.length : Buffer.byteLength(v, 'utf8');
    ends[i] = end;
  }
  native.commitmentsHex(valueBytes, ends, salts, out);
  return out.toString('latin1', 0, 64 * n);
}

/**
 * Commitments one node:crypto call each, hashed from one reused scratch buffer that keeps
 * COMMITMENT_TAG at its start.
 */
let scratch = Buffer.alloc(4096);
scratch.set(COMMITMENT_TAG, 0);
const VALUE_AT = COMMITMENT_TAG.length + SALT_BYTES;
function commitmentsHexJs(values: readonly string[], n: number, salts: Uint8Array): string {
  let hexes = '';
  for (let i = 0; i < n; i++) {
    const valueJson = values[i] as string;
    // A UTF-8 encoding takes at most 3 bytes per UTF-16 unit.
    if (VALUE_AT + 3 * valueJson.length > scratch.length) {
      scratch = Buffer.alloc(Math.max(VALUE_AT + 3 * valueJson.length, scratch.length * 2));
      scratch.set(COMMITMENT_TAG, 0);
    }
    scratch.set(salts.subarray(i * SALT_BYTES, (i + 1) * SALT_BYTES), COMMITMENT_TAG.length);
    const end = VALUE_AT + scratch.write(valueJson, VALUE_AT, 'utf8');
    hexes += sha256Hex(scratch.subarray(0, end));
  }
  return hexes;
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
