/*
 * crm-ledger's native addon (optional; src/native/addon.ts loads it, and every function has a
 * node:crypto twin used without it: src/ledger/batch-hash.ts, src/ledger/block.ts
 * writeFieldTexts, src/vault/crypto.ts sealToBase64urlBytes).
 *
 * Verification: RFC 6962 leaf and node hashes for a whole verification segment in one call, with the SHA-256 of
 * the OpenSSL that Node itself links and exports (include/node/openssl). Calling node:crypto once
 * per hash costs ~0.4-0.6 us of call overhead and a result string per hash; a segment of 1,024
 * blocks needs 1,024 leaf hashes and 1,023 node hashes. The low-level SHA256_Init/Update/Final API
 * is used on purpose: OpenSSL 3's one-shot SHA256() fetches the algorithm on every call and is
 * 4x slower for a 65-byte input.
 *
 * Appends: a change's field commitments and texts, and its vault entry's AES-256-GCM seal (below).
 *
 * Nothing here decides whether a chain is intact: it only hashes (and, for scanLinks, finds where
 * the link members are). The verifier compares.
 *
 * The "packed" functions take a whole segment as ONE buffer `data` and `ends` (a Uint32Array):
 * block i is data[i == 0 ? 0 : ends[i-1], ends[i]). Nothing is ever read past a block's own end.
 */
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SIZE 32

static napi_value throw_args(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_LEDGER_NATIVE_ARGS", message);
  return NULL;
}

/* The elements of a typed array of type `want` (and their count); false for anything else. */
static bool typed_elements(napi_env env, napi_value value, napi_typedarray_type want, void **data,
                           size_t *count) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return false;
  napi_typedarray_type type;
  void *base = NULL;
  if (napi_get_typedarray_info(env, value, &type, count, &base, NULL, NULL) != napi_ok) return false;
  if (type != want) return false;
  *data = base;
  return true;
}

/* The bytes of a Uint8Array (a Buffer is one); false for anything else. */
static bool uint8_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  return typed_elements(env, value, napi_uint8_array, (void **)data, length);
}

/* A packed segment: `data` and the end of each block in it. */
typedef struct {
  const uint8_t *data;
  const uint32_t *ends;
  size_t count;
} packed_segment;

/* True if `ends` never decreases nor exceeds `data_length`; else throws and returns false. */
static bool ends_fit(napi_env env, const uint32_t *ends, size_t count, size_t data_length) {
  size_t previous = 0;
  for (size_t i = 0; i < count; i++) {
    if (ends[i] < previous || ends[i] > data_length) {
      throw_args(env, "ends must not decrease nor exceed data.length");
      return false;
    }
    previous = ends[i];
  }
  return true;
}

/* Reads and checks (data: Uint8Array, ends: Uint32Array) and sizes `out` (`want` elements of
 * `per_block` per block); throws and returns false if anything is off. */
static bool packed_args(napi_env env, napi_callback_info info, const char *usage,
                        napi_typedarray_type want, size_t per_block, packed_segment *segment,
                        void **out) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) {
    throw_args(env, usage);
    return false;
  }
  uint8_t *data = NULL;
  size_t data_length = 0;
  if (!uint8_bytes(env, argv[0], &data, &data_length)) {
    throw_args(env, "data must be a Uint8Array");
    return false;
  }
  void *ends = NULL;
  size_t count = 0;
  if (!typed_elements(env, argv[1], napi_uint32_array, &ends, &count)) {
    throw_args(env, "ends must be a Uint32Array");
    return false;
  }
  size_t out_length = 0;
  if (!typed_elements(env, argv[2], want, out, &out_length) || out_length / per_block != count ||
      out_length % per_block != 0) {
    throw_args(env, want == napi_uint8_array
                        ? "out must be a Uint8Array of exactly 32 bytes per block"
                        : "out must be a Float64Array of exactly 10 numbers per block");
    return false;
  }
  const uint32_t *e = (const uint32_t *)ends;
  if (!ends_fit(env, e, count, data_length)) return false;
  segment->data = data;
  segment->ends = e;
  segment->count = count;
  return true;
}

static void leaf_hash(const uint8_t *data, size_t length, uint8_t *out) {
  static const uint8_t prefix = 0x00;
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, data, length);
  SHA256_Final(out, &ctx);
}

/* leafHashes(blocks: Uint8Array[], out: Uint8Array): out[32i, 32i+32) = SHA-256(0x00 || blocks[i]) */
static napi_value leaf_hashes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2)
    return throw_args(env, "leafHashes(blocks, out) takes two arguments");
  bool is_array = false;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array)
    return throw_args(env, "blocks must be an array of Uint8Arrays");
  uint32_t count = 0;
  napi_get_array_length(env, argv[0], &count);
  uint8_t *out = NULL;
  size_t out_length = 0;
  if (!uint8_bytes(env, argv[1], &out, &out_length) || out_length != (size_t)count * HASH_SIZE)
    return throw_args(env, "out must be a Uint8Array of exactly 32 bytes per block");
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    uint8_t *data = NULL;
    size_t length = 0;
    if (napi_get_element(env, argv[0], i, &item) != napi_ok || !uint8_bytes(env, item, &data, &length))
      return throw_args(env, "every block must be a Uint8Array");
    leaf_hash(data, length, out + (size_t)i * HASH_SIZE);
  }
  return NULL;
}

/* nodeHashes(children: Uint8Array, out: Uint8Array): out[32j, 32j+32) = SHA-256(0x01 || c[2j] || c[2j+1]),
 * c[k] being children[32k, 32k+32); children holds exactly two hashes per output hash. */
static napi_value node_hashes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2)
    return throw_args(env, "nodeHashes(children, out) takes two arguments");
  uint8_t *children = NULL, *out = NULL;
  size_t children_length = 0, out_length = 0;
  if (!uint8_bytes(env, argv[0], &children, &children_length) ||
      !uint8_bytes(env, argv[1], &out, &out_length))
    return throw_args(env, "children and out must be Uint8Arrays");
  if (out_length % HASH_SIZE != 0 || children_length != 2 * out_length)
    return throw_args(env, "out must be a multiple of 32 bytes and children exactly twice its length");
  uint8_t input[1 + 2 * HASH_SIZE];
  input[0] = 0x01;
  for (size_t j = 0; j < out_length / HASH_SIZE; j++) {
    memcpy(input + 1, children + j * 2 * HASH_SIZE, 2 * HASH_SIZE);
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, input, sizeof input);
    SHA256_Final(out + j * HASH_SIZE, &ctx);
  }
  return NULL;
}

/* leafHashesPacked(data: Uint8Array, ends: Uint32Array, out: Uint8Array):
 * out[32i, 32i+32) = SHA-256(0x00 || block i) */
static napi_value leaf_hashes_packed(napi_env env, napi_callback_info info) {
  packed_segment segment;
  void *out = NULL;
  if (!packed_args(env, info, "leafHashesPacked(data, ends, out) takes three arguments",
                   napi_uint8_array, HASH_SIZE, &segment, &out))
    return NULL;
  size_t start = 0;
  for (size_t i = 0; i < segment.count; i++) {
    size_t end = segment.ends[i];
    leaf_hash(segment.data + start, end - start, (uint8_t *)out + i * HASH_SIZE);
    start = end;
  }
  return NULL;
}

/*
 * scanLinks: the byte scanner of src/ledger/links.ts (tailOf, then scanTail with prevHex false),
 * line for line. `b` and `length` are one block; every read is checked against `length`.
 */

/* Character classes, as in links.ts: one bit each, looked up in CHAR_CLASSES (a lookup, not
 * comparisons: the hex digits of a hash would otherwise mispredict a branch every other byte). */
enum {
  CHAR_LOWER = 1,        /* a-z */
  CHAR_TIME = 2,         /* 0-9 T : . + Z - */
  CHAR_HEX = 4,          /* 0-9 a-f */
  CHAR_ID = 8,           /* A-Z a-z 0-9 . _ ~ - */
  CHAR_OBJECT_REST = 16, /* a-z 0-9 _ */
  CHAR_DIGIT = 32,       /* 0-9 */
  CHAR_TENANT_ID = 64,   /* A-Z a-z 0-9 _ - */
};

#define D (CHAR_DIGIT | CHAR_HEX | CHAR_TIME | CHAR_ID | CHAR_OBJECT_REST | CHAR_TENANT_ID)
#define X (CHAR_LOWER | CHAR_HEX | CHAR_ID | CHAR_OBJECT_REST | CHAR_TENANT_ID)
#define L (CHAR_LOWER | CHAR_ID | CHAR_OBJECT_REST | CHAR_TENANT_ID)
#define U (CHAR_ID | CHAR_TENANT_ID)
#define UT (CHAR_ID | CHAR_TENANT_ID | CHAR_TIME)
static const uint8_t CHAR_CLASSES[256] = {
    /* 0-9 */
    ['0'] = D, ['1'] = D, ['2'] = D, ['3'] = D, ['4'] = D,
    ['5'] = D, ['6'] = D, ['7'] = D, ['8'] = D, ['9'] = D,
    /* a-f, then g-z */
    ['a'] = X, ['b'] = X, ['c'] = X, ['d'] = X, ['e'] = X, ['f'] = X,
    ['g'] = L, ['h'] = L, ['i'] = L, ['j'] = L, ['k'] = L, ['l'] = L, ['m'] = L,
    ['n'] = L, ['o'] = L, ['p'] = L, ['q'] = L, ['r'] = L, ['s'] = L, ['t'] = L,
    ['u'] = L, ['v'] = L, ['w'] = L, ['x'] = L, ['y'] = L, ['z'] = L,
    /* A-Z, T and Z being time characters too */
    ['A'] = U, ['B'] = U, ['C'] = U, ['D'] = U, ['E'] = U, ['F'] = U, ['G'] = U,
    ['H'] = U, ['I'] = U, ['J'] = U, ['K'] = U, ['L'] = U, ['M'] = U, ['N'] = U,
    ['O'] = U, ['P'] = U, ['Q'] = U, ['R'] = U, ['S'] = U, ['T'] = UT,
    ['U'] = U, ['V'] = U, ['W'] = U, ['X'] = U, ['Y'] = U, ['Z'] = UT,
    /* punctuation */
    ['.'] = CHAR_TIME | CHAR_ID, ['-'] = CHAR_TIME | CHAR_ID | CHAR_TENANT_ID,
    ['_'] = CHAR_ID | CHAR_OBJECT_REST | CHAR_TENANT_ID, ['~'] = CHAR_ID,
    [':'] = CHAR_TIME, ['+'] = CHAR_TIME,
};
#undef D
#undef X
#undef L
#undef U
#undef UT

#define NO_LIMIT SIZE_MAX
#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

/* Whether the block holds `literal` at `p`. */
static bool at(const uint8_t *b, size_t length, size_t p, const uint8_t *literal, size_t n) {
  return p <= length && n <= length - p && memcmp(b + p, literal, n) == 0;
}

/* End of the run of `char_class` characters from `p` (at most `max` of them). */
static size_t run(const uint8_t *b, size_t length, size_t p, uint8_t char_class, size_t max) {
  if (p >= length) return p;
  size_t stop = length - p > max ? p + max : length;
  while (p < stop && (CHAR_CLASSES[b[p]] & char_class)) p++;
  return p;
}

/* The end of 64 hex characters at `p`, or 0 (never a valid end: it would be before `p`). */
static size_t hex64(const uint8_t *b, size_t length, size_t p) {
  return run(b, length, p, CHAR_HEX, 64) == p + 64 ? p + 64 : 0;
}

/* tailOf: the position of `"kind"` after the first `},"kind":"` in the block, or false. */
static bool tail_of(const uint8_t *b, size_t length, size_t *tail) {
  static const uint8_t fields_end[] = "},\"kind\":\"";
  const size_t n = sizeof fields_end - 1;
  for (size_t i = 0; length >= n && i <= length - n; i++) {
    const uint8_t *brace = memchr(b + i, '}', length - n + 1 - i);
    if (brace == NULL) return false;
    i = (size_t)(brace - b);
    if (memcmp(brace, fields_end, n) == 0) {
      *tail = i + 2;
      return true;
    }
  }
  return false;
}

/* Link positions, relative to the block, in the order scanLinks writes them after `ok`. */
enum {
  SPAN_PREV,
  SPAN_ID_START,
  SPAN_ID_END,
  SPAN_OBJECT_START,
  SPAN_OBJECT_END,
  SPAN_RECORD_PREV,
  SPAN_SEQ,
  SPAN_TENANT_START,
  SPAN_TENANT_END,
  SPANS
};

/* scanTail(b, tail, spans, false): fills `spans` and returns true if the tail is in our shape. */
static bool scan_tail(const uint8_t *b, size_t length, size_t tail, double spans[SPANS]) {
  size_t p = tail + sizeof "\"kind\":\"" - 1;
  size_t q = run(b, length, p, CHAR_LOWER, NO_LIMIT);
  if (q == p || !at(b, length, q, LIT("\",\"occurredAt\":\""))) return false;
  p = q + sizeof "\",\"occurredAt\":\"" - 1;
  q = run(b, length, p, CHAR_TIME, NO_LIMIT);
  if (q == p || !at(b, length, q, LIT("\",\"prev\":\""))) return false;
  const size_t prev = q + sizeof "\",\"prev\":\"" - 1;
  /* prevHex false: the 64 bytes of prev only have to be there. */
  if (prev > length || length - prev < 64) return false;
  p = prev + 64;
  if (!at(b, length, p, LIT("\",\"record\":{\"id\":\""))) return false;
  const size_t id_start = p + sizeof "\",\"record\":{\"id\":\"" - 1;
  const size_t id_end = run(b, length, id_start, CHAR_ID, 128);
  if (id_end == id_start || !at(b, length, id_end, LIT("\",\"object\":\""))) return false;
  const size_t object_start = id_end + sizeof "\",\"object\":\"" - 1;
  if (object_start >= length || !(CHAR_CLASSES[b[object_start]] & CHAR_LOWER)) return false;
  const size_t object_end = run(b, length, object_start + 1, CHAR_OBJECT_REST, 79);
  if (!at(b, length, object_end, LIT("\"},\"recordPrev\":\""))) return false;
  const size_t record_prev = object_end + sizeof "\"},\"recordPrev\":\"" - 1;
  p = hex64(b, length, record_prev);
  if (p == 0 || !at(b, length, p, LIT("\",\"seq\":"))) return false;
  p += sizeof "\",\"seq\":" - 1;
  q = run(b, length, p, CHAR_DIGIT, 16);
  if (q == p || (b[p] == '0' && q > p + 1)) return false;
  /* As the JS computes it, in doubles. Up to 15 digits every step is exact; a 16th digit makes
   * one product (even, < 2^54: exact too) and one rounded sum, so FMA contraction cannot change
   * the result either. */
  double seq = 0;
  for (size_t i = p; i < q; i++) seq = seq * 10 + (double)(b[i] - '0');
  if (!at(b, length, q, LIT(",\"tenant\":\""))) return false;
  const size_t tenant_start = q + sizeof ",\"tenant\":\"" - 1;
  if (at(b, length, tenant_start, LIT("hubspot:")))
    p = tenant_start + sizeof "hubspot:" - 1;
  else if (at(b, length, tenant_start, LIT("salesforce:")))
    p = tenant_start + sizeof "salesforce:" - 1;
  else
    return false;
  const size_t tenant_end = run(b, length, p, CHAR_TENANT_ID, 64);
  if (tenant_end == p || !at(b, length, tenant_end, LIT("\",\"v\":1,\"verdicts\":["))) return false;
  spans[SPAN_PREV] = (double)prev;
  spans[SPAN_ID_START] = (double)id_start;
  spans[SPAN_ID_END] = (double)id_end;
  spans[SPAN_OBJECT_START] = (double)object_start;
  spans[SPAN_OBJECT_END] = (double)object_end;
  spans[SPAN_RECORD_PREV] = (double)record_prev;
  spans[SPAN_SEQ] = seq;
  spans[SPAN_TENANT_START] = (double)tenant_start;
  spans[SPAN_TENANT_END] = (double)tenant_end;
  return true;
}

/* scanLinks(data: Uint8Array, ends: Uint32Array, out: Float64Array): for block i,
 * out[10i] = 1 if links.ts reads its tail (tailOf + scanTail, prevHex false), else 0; when 1,
 * out[10i+1, 10i+10) = prev, idStart, idEnd, objectStart, objectEnd, recordPrev, seq,
 * tenantStart, tenantEnd, positions being offsets into data; when 0, they are 0. */
static napi_value scan_links(napi_env env, napi_callback_info info) {
  packed_segment segment;
  void *out_elements = NULL;
  if (!packed_args(env, info, "scanLinks(data, ends, out) takes three arguments",
                   napi_float64_array, 1 + SPANS, &segment, &out_elements))
    return NULL;
  double *out = (double *)out_elements;
  size_t start = 0;
  for (size_t i = 0; i < segment.count; i++, out += 1 + SPANS) {
    const size_t end = segment.ends[i];
    const uint8_t *b = segment.data + start;
    double spans[SPANS];
    size_t tail = 0;
    const bool ok = tail_of(b, end - start, &tail) && scan_tail(b, end - start, tail, spans);
    out[0] = ok ? 1 : 0;
    for (size_t k = 0; k < SPANS; k++)
      out[1 + k] = !ok ? 0 : k == SPAN_SEQ ? spans[k] : (double)start + spans[k];
    start = end;
  }
  return NULL;
}

/*
 * The append side: field commitments and vault-entry sealing, one call for what node:crypto does
 * in several (each of its calls costs ~0.3-0.5 us and a string or Buffer whatever the input), and
 * the field texts written as bytes where they are kept, not built as strings and encoded.
 */

static const uint8_t COMMIT_TAG[] = "crm-ledger/commit/v1"; /* and its NUL: hash.ts COMMITMENT_TAG */
#define SALT_BYTES 16
static const char HEX_DIGITS[] = "0123456789abcdef";

static bool offset_arg(napi_env env, napi_value value, size_t *out);

/* Reads (values: Uint8Array, ends: Uint32Array) at argv[0..1] as a packed list; false (thrown)
 * if they are off. */
static bool packed_list(napi_env env, napi_value *argv, const char *what, const uint8_t **data,
                        const uint32_t **ends, size_t *count) {
  uint8_t *bytes = NULL;
  size_t length = 0;
  void *e = NULL;
  if (!uint8_bytes(env, argv[0], &bytes, &length) ||
      !typed_elements(env, argv[1], napi_uint32_array, &e, count)) {
    throw_args(env, what);
    return false;
  }
  if (!ends_fit(env, (const uint32_t *)e, *count, length)) return false;
  *data = bytes;
  *ends = (const uint32_t *)e;
  return true;
}

static uint8_t *put(uint8_t *p, const char *text, size_t length) {
  memcpy(p, text, length);
  return p + length;
}

static uint8_t *put_hex(uint8_t *p, const uint8_t *bytes, size_t length) {
  for (size_t k = 0; k < length; k++) {
    *p++ = (uint8_t)HEX_DIGITS[bytes[k] >> 4];
    *p++ = (uint8_t)HEX_DIGITS[bytes[k] & 15];
  }
  return p;
}

/* fieldTexts(names, nameEnds, values, valueEnds, salts, out, fieldsAt, vaultAt): a change's field
 * texts from the canonical JSON of its field names and values (packed lists of the same count, in
 * canonical member order) and one 16-byte salt per field:
 *   at out[fieldsAt, ...)  {name:"<hex commitment>",...}   the block's `fields` member
 *   at out[vaultAt, ...)   {"fields":{name:{"salt":"<hex salt>","value":value},...},"v":1}
 * the commitment being SHA-256("crm-ledger/commit/v1" 0x00 || salt || value). Throws a TypeError
 * if the arguments are off, either text would not fit in `out`, or the two would overlap. */
static napi_value field_texts(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 8)
    return throw_args(env, "fieldTexts(names, nameEnds, values, valueEnds, salts, out, fieldsAt, vaultAt) takes eight arguments");
  const uint8_t *names = NULL, *values = NULL;
  const uint32_t *name_ends = NULL, *value_ends = NULL;
  size_t count = 0, value_count = 0;
  if (!packed_list(env, argv, "names must be a Uint8Array and nameEnds a Uint32Array", &names,
                   &name_ends, &count) ||
      !packed_list(env, argv + 2, "values must be a Uint8Array and valueEnds a Uint32Array",
                   &values, &value_ends, &value_count))
    return NULL;
  if (value_count != count) return throw_args(env, "names and values must be as many");
  uint8_t *salts = NULL, *out = NULL;
  size_t salts_length = 0, out_length = 0, fields_at = 0, vault_at = 0;
  if (!uint8_bytes(env, argv[4], &salts, &salts_length) || salts_length != count * SALT_BYTES)
    return throw_args(env, "salts must be a Uint8Array of exactly 16 bytes per field");
  if (!uint8_bytes(env, argv[5], &out, &out_length) || !offset_arg(env, argv[6], &fields_at) ||
      !offset_arg(env, argv[7], &vault_at))
    return throw_args(env, "out must be a Uint8Array, fieldsAt and vaultAt offsets in it");
  /* The exact lengths (JSON text sizes; block.ts computes the same). */
  const size_t names_length = count ? name_ends[count - 1] : 0;
  const size_t values_length = count ? value_ends[count - 1] : 0;
  const size_t commas = count ? count - 1 : 0;
  const size_t fields_length = 2 + names_length + 67 * count + commas;
  const size_t vault_length = 19 + names_length + values_length + 53 * count + commas;
  if (fields_at > out_length || out_length - fields_at < fields_length || vault_at > out_length ||
      out_length - vault_at < vault_length ||
      (fields_at < vault_at + vault_length && vault_at < fields_at + fields_length))
    return throw_args(env, "out has no room for the two texts at fieldsAt and vaultAt, apart");
  uint8_t *f = out + fields_at, *v = out + vault_at;
  *f++ = '{';
  v = put(v, "{\"fields\":{", 11);
  size_t name_start = 0, value_start = 0;
  for (size_t i = 0; i < count; i++) {
    const uint8_t *salt = salts + i * SALT_BYTES;
    const size_t name_length = name_ends[i] - name_start;
    const size_t value_length = value_ends[i] - value_start;
    uint8_t digest[HASH_SIZE];
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, COMMIT_TAG, sizeof COMMIT_TAG);
    SHA256_Update(&ctx, salt, SALT_BYTES);
    SHA256_Update(&ctx, values + value_start, value_length);
    SHA256_Final(digest, &ctx);
    if (i > 0) {
      *f++ = ',';
      *v++ = ',';
    }
    f = put(f, (const char *)names + name_start, name_length);
    f = put(f, ":\"", 2);
    f = put_hex(f, digest, HASH_SIZE);
    *f++ = '"';
    v = put(v, (const char *)names + name_start, name_length);
    v = put(v, ":{\"salt\":\"", 10);
    v = put_hex(v, salt, SALT_BYTES);
    v = put(v, "\",\"value\":", 10);
    v = put(v, (const char *)values + value_start, value_length);
    *v++ = '}';
    name_start = name_ends[i];
    value_start = value_ends[i];
  }
  *f++ = '}';
  v = put(v, "},\"v\":1}", 8);
  return NULL;
}

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16
static const char BASE64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Per-environment (main thread, each worker) state: a reused AES-256-GCM context and scratch. */
typedef struct {
  EVP_CIPHER_CTX *gcm;
  uint8_t *scratch;
  size_t scratch_size;
} instance_state;

static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  instance_state *state = data;
  if (state->gcm) EVP_CIPHER_CTX_free(state->gcm);
  free(state->scratch);
  free(state);
}

/* Unpadded base64url of `in`, written at `out`; returns the number of characters written. */
static size_t base64url(const uint8_t *in, size_t length, uint8_t *out) {
  size_t o = 0, i = 0;
  for (; i + 3 <= length; i += 3) {
    const uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = (uint8_t)BASE64URL[v >> 18];
    out[o++] = (uint8_t)BASE64URL[(v >> 12) & 63];
    out[o++] = (uint8_t)BASE64URL[(v >> 6) & 63];
    out[o++] = (uint8_t)BASE64URL[v & 63];
  }
  if (i < length) {
    const uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < length ? (uint32_t)in[i + 1] << 8 : 0);
    out[o++] = (uint8_t)BASE64URL[v >> 18];
    out[o++] = (uint8_t)BASE64URL[(v >> 12) & 63];
    if (i + 1 < length) out[o++] = (uint8_t)BASE64URL[(v >> 6) & 63];
  }
  return o;
}

/* A non-negative integer argument (a JS number holding one), or false. */
static bool offset_arg(napi_env env, napi_value value, size_t *out) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok || !(d >= 0) || d > 4294967295.0 ||
      d != (double)(uint32_t)d)
    return false;
  *out = (size_t)d;
  return true;
}

/* sealBase64url(key, nonce, aad, aadLength, plain, out, at): AES-256-GCM of `plain` under the
 * 32-byte `key` and 12-byte `nonce` with associated data aad[0, aadLength); writes the unpadded
 * base64url of nonce || ciphertext || tag (16 bytes) at out[at, ...) and returns the offset after
 * it. Throws a TypeError if an argument is off or `out` is too short, an Error if OpenSSL fails. */
static napi_value seal_base64url(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7)
    return throw_args(env, "sealBase64url(key, nonce, aad, aadLength, plain, out, at) takes seven arguments");
  uint8_t *key = NULL, *nonce = NULL, *aad = NULL, *plain = NULL, *out = NULL;
  size_t key_length = 0, nonce_length = 0, aad_size = 0, aad_length = 0, plain_length = 0,
         out_length = 0, at = 0;
  if (!uint8_bytes(env, argv[0], &key, &key_length) || key_length != KEY_BYTES)
    return throw_args(env, "key must be a Uint8Array of 32 bytes");
  if (!uint8_bytes(env, argv[1], &nonce, &nonce_length) || nonce_length != NONCE_BYTES)
    return throw_args(env, "nonce must be a Uint8Array of 12 bytes");
  if (!uint8_bytes(env, argv[2], &aad, &aad_size) || !offset_arg(env, argv[3], &aad_length) ||
      aad_length > aad_size || aad_length > INT32_MAX)
    return throw_args(env, "aad must be a Uint8Array holding at least aadLength bytes");
  if (!uint8_bytes(env, argv[4], &plain, &plain_length) || plain_length > INT32_MAX - 64)
    return throw_args(env, "plain must be a Uint8Array");
  if (!uint8_bytes(env, argv[5], &out, &out_length) || !offset_arg(env, argv[6], &at))
    return throw_args(env, "out must be a Uint8Array and at an offset in it");
  const size_t sealed = NONCE_BYTES + plain_length + TAG_BYTES;
  const size_t encoded = sealed / 3 * 4 + (sealed % 3 ? sealed % 3 + 1 : 0);
  if (at > out_length || out_length - at < encoded)
    return throw_args(env, "out has no room for the sealed entry at `at`");

  instance_state *state = NULL;
  if (napi_get_instance_data(env, (void **)&state) != napi_ok || state == NULL) {
    napi_throw_error(env, "ERR_LEDGER_NATIVE_STATE", "addon state is missing");
    return NULL;
  }
  if (state->scratch_size < sealed) {
    uint8_t *grown = realloc(state->scratch, sealed);
    if (!grown) {
      napi_throw_error(env, "ERR_LEDGER_NATIVE_MEMORY", "out of memory");
      return NULL;
    }
    state->scratch = grown;
    state->scratch_size = sealed;
  }
  uint8_t *buf = state->scratch;
  memcpy(buf, nonce, NONCE_BYTES);
  int n = 0, m = 0;
  EVP_CIPHER_CTX *ctx = state->gcm;
  /* The cipher was set once (NAPI_MODULE_INIT): a re-init with key and nonce only fetches
   * nothing. GCM's default nonce length is 12 bytes. */
  if (EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
      (aad_length > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_length) != 1) ||
      EVP_EncryptUpdate(ctx, buf + NONCE_BYTES, &n, plain, (int)plain_length) != 1 ||
      EVP_EncryptFinal_ex(ctx, buf + NONCE_BYTES + n, &m) != 1 ||
      (size_t)(n + m) != plain_length ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, buf + NONCE_BYTES + plain_length) != 1) {
    napi_throw_error(env, "ERR_LEDGER_NATIVE_CRYPTO", "AES-256-GCM failed");
    return NULL;
  }
  const size_t end = at + base64url(buf, sealed, out + at);
  napi_value result;
  napi_create_double(env, (double)end, &result);
  return result;
}

NAPI_MODULE_INIT() {
  instance_state *state = calloc(1, sizeof *state);
  if (!state) return NULL;
  state->gcm = EVP_CIPHER_CTX_new();
  if (!state->gcm || EVP_EncryptInit_ex(state->gcm, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
      napi_set_instance_data(env, state, free_state, NULL) != napi_ok) {
    free_state(env, state, NULL);
    return NULL;
  }
  napi_property_descriptor properties[] = {
      {"leafHashes", NULL, leaf_hashes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nodeHashes", NULL, node_hashes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"leafHashesPacked", NULL, leaf_hashes_packed, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanLinks", NULL, scan_links, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sealBase64url", NULL, seal_base64url, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fieldTexts", NULL, field_texts, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok)
    return NULL;
  return exports;
}
