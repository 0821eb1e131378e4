/**
 * AES-256-GCM for vault entries and wrapped data keys: one sealed form, two implementations.
 *
 * Sealed bytes are `nonce (12) || ciphertext || tag (16)` (NIST SP 800-38D, 96-bit random nonce:
 * a data key seals only one record's entries, and a master key one wrap per data key, far below
 * the 2^32 random-nonce limit). `@noble/ciphers` is the audited pure-JS reference; node:crypto
 * (OpenSSL, AES-NI) is the default because bench/vault.bench.ts measures it several times faster
 * on short entries; the native addon seals vault entries with the same OpenSSL in one call. A unit
 * test holds them to the same bytes both ways.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { ByteArena } from '../util/byte-arena.js';
import { nativeAddon } from '../native/addon.js';
import type { NativeAddon } from '../native/addon.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

export type AeadImpl = 'node' | 'noble';

/** Thrown (as a plain value, caught by callers) when a tag does not match: tampered or wrong key. */
export class AeadError extends Error {}

export function sealWith(
  impl: AeadImpl,
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  nonce: Uint8Array = takeRandom(NONCE_BYTES),
): Buffer {
  if (key.length !== KEY_BYTES) throw new RangeError('AES-256-GCM needs a 32-byte key');
  if (impl === 'noble') {
    return Buffer.concat([nonce, gcm(key, nonce, aad).encrypt(plaintext)]);
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
}

/** Opens sealed bytes; throws AeadError on any mismatch (never a RangeError on short input). */
export function openWith(
  impl: AeadImpl,
  key: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Buffer {
  if (key.length !== KEY_BYTES) throw new AeadError('wrong key length');
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new AeadError('sealed bytes too short');
  const nonce = sealed.subarray(0, NONCE_BYTES);
  if (impl === 'noble') {
    try {
      return Buffer.from(gcm(key, nonce, aad).decrypt(sealed.subarray(NONCE_BYTES)));
    } catch {
      throw new AeadError('authentication failed');
    }
  }
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([body, decipher.final()]);
  } catch {
    throw new AeadError('authentication failed');
  }
}

/**
 * Random bytes handed out from a pool refilled 48 KiB at a time: one randomBytes call per 4096
 * nonces instead of one per seal (a randomBytes call costs ~2 µs here, as much as the AES-GCM of a
 * short entry). Every byte is used once; the pool is as random as randomBytes itself.
 */
const POOL_BYTES = 48 * 1024;
let pool = randomBytes(POOL_BYTES);
let poolAt = 0;
function takeRandom(n: number): Buffer {
  if (poolAt + n > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  const out = pool.subarray(poolAt, poolAt + n);
  poolAt += n;
  return out;
}

/**
 * `prefix + base64url(seal('node', key, plaintext, aad))` for a fresh random nonce, as bytes: the
 * stored form of a vault entry, written into an arena and sent to Redis as it is. The associated
 * data is aad[0, aadLength). With the native addon, one call encrypts and encodes into the arena;
 * without it (or `native` undefined), node:crypto encrypts from bytes and one base64url string is
 * written into the arena. `prefix` must be ASCII. Same bytes as sealWith then base64url (a unit
 * test holds both paths, and @noble/ciphers, together).
 */
export function sealToBase64urlBytes(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  prefix: string,
  nonce: Uint8Array = takeRandom(NONCE_BYTES),
  aadLength: number = aad.length,
  native: NativeAddon | undefined = nativeAddon,
): Buffer {
  if (key.length !== KEY_BYTES) throw new RangeError('AES-256-GCM needs a 32-byte key');
  if (nonce.length !== NONCE_BYTES) throw new RangeError('AES-256-GCM nonce must be 12 bytes');
  const n = NONCE_BYTES + plaintext.length + TAG_BYTES;
  if (native) {
    const buf = sealedBytes.reserve(prefix.length + Math.ceil((4 * n) / 3));
    const start = sealedBytes.at;
    const p = start + buf.write(prefix, start, 'latin1');
    sealedBytes.at = native.sealBase64url(key, nonce, aad, aadLength, plaintext, buf, p);
    return buf.subarray(start, sealedBytes.at);
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aadLength === aad.length ? aad : aad.subarray(0, aadLength));
  const body = cipher.update(plaintext);
  cipher.final();
  const tag = cipher.getAuthTag();
  // nonce || ciphertext || tag, assembled in a reused buffer: one base64url call for the whole.
  if (n > sealScratch.length)
    sealScratch = Buffer.allocUnsafeSlow(Math.max(n, 2 * sealScratch.length));
  sealScratch.set(nonce, 0);
  sealScratch.set(body, NONCE_BYTES);
  sealScratch.set(tag, NONCE_BYTES + body.length);
  const b64 = sealScratch.toString('base64url', 0, n);
  const buf = sealedBytes.reserve(prefix.length + b64.length);
  const start = sealedBytes.at;
  let p = start + buf.write(prefix, start, 'latin1');
  p += buf.write(b64, p, 'latin1');
  sealedBytes.at = p;
  return buf.subarray(start, p);
}
let sealScratch = Buffer.allocUnsafeSlow(8192);
/** Sealed entries' stored bytes: see ByteArena. */
const sealedBytes = new ByteArena();

export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  return sealWith('node', key, plaintext, aad);
}

export function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return openWith('node', key, sealed, aad);
}

/** A fresh random data key: its own copy, and its bytes in the pool are zeroed at once. */
export function newDataKey(): Buffer {
  const drawn = takeRandom(KEY_BYTES);
  const key = Buffer.from(drawn);
  drawn.fill(0);
  return key;
}
