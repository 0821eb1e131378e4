/**
 * The key encoding shared by C2SP signed-note keys (checkpoint.ts, type 0x01 Ed25519) and
 * tlog-cosignature witness keys (cosignature.ts, type 0x04 cosignature/v1): the text form
 * `<name>+<key ID hex8>+<base64(type || 32-byte key)>` (a signer key has `PRIVATE+KEY+` in front
 * and the seed as its key), and the key ID SHA-256(name || 0x0A || type || public key)[:4],
 * big-endian. Only the type byte differs between the two, so it is a parameter everywhere here.
 */
import { ProofError } from '../errors.js';
import { sha256 } from './hash.js';

export const SIGNER_KEY_PREFIX = 'PRIVATE+KEY+';
/** U+2014 EM DASH, U+0020 SPACE: the start of a signature line. */
export const SIGNATURE_LINE_PREFIX = '\u2014 ';
export const ED25519_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;
export const KEY_ID_SIZE = 4;
export const KEY_ID_RE = /^[0-9a-f]{8}$/;

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Key names: non-empty, no Unicode space, no '+' (signed-note §Format); no controls either. */
// eslint-disable-next-line no-control-regex -- control characters are what the spec forbids
const FORBIDDEN_NAME_CHAR = /[\u0000-\u001f+]|\p{White_Space}|\p{Surrogate}/u;
const encoder = new TextEncoder();

export function keyMalformed(message: string): ProofError {
  return new ProofError('KEY_MALFORMED', message);
}

/** Whether `name` is usable as a signed-note key name. */
export function isValidKeyName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && !FORBIDDEN_NAME_CHAR.test(name);
}

/** Strict, canonical standard base64; undefined for anything else. */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (!BASE64_RE.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Rejects non-zero padding bits, so each byte string has exactly one accepted spelling.
  if (bytes.toString('base64') !== text) return undefined;
  return new Uint8Array(bytes);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function keyIdHex(id: number): string {
  return id.toString(16).padStart(8, '0');
}

/** SHA-256(name || 0x0A || type || public key)[:4] as a big-endian uint32 (name and key unchecked). */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const nameBytes = encoder.encode(name);
  const buf = new Uint8Array(nameBytes.length + 2 + publicKey.length);
  buf.set(nameBytes, 0);
  buf[nameBytes.length] = 0x0a;
  buf[nameBytes.length + 1] = type;
  buf.set(publicKey, nameBytes.length + 2);
  const digest = sha256(buf);
  return new DataView(digest.buffer, digest.byteOffset, KEY_ID_SIZE).getUint32(0, false);
}

/** `<name>+<hex8>+<base64(type || key)>`, for a verifier key or (after the prefix) a signer key. */
export function formatKeyFields(
  name: string,
  keyId: number,
  type: number,
  key: Uint8Array,
): string {
  const typed = new Uint8Array(1 + key.length);
  typed[0] = type;
  typed.set(key, 1);
  return `${name}+${keyIdHex(keyId)}+${encodeBase64(typed)}`;
}

/**
 * Splits `<name>+<hex8>+<base64(type || 32 bytes)>` into its checked parts; `what` names the key
 * kind in the KEY_MALFORMED message. The base64 part may itself contain '+'.
 */
export function parseKeyFields(
  text: string,
  type: number,
  what: string,
): { name: string; keyId: number; key: Uint8Array } {
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  const name = first < 0 ? text : text.slice(0, first);
  const idHex = second < 0 ? '' : text.slice(first + 1, second);
  if (!isValidKeyName(name)) {
    throw keyMalformed(`${what} name must be non-empty, without spaces, "+" or control characters`);
  }
  if (!KEY_ID_RE.test(idHex)) throw keyMalformed(`${what} ID must be 8 lower-case hex digits`);
  const raw = decodeBase64(text.slice(second + 1));
  if (raw?.length !== 1 + ED25519_KEY_SIZE || raw[0] !== type) {
    throw keyMalformed(
      `${what} data must be 0x${type.toString(16).padStart(2, '0')} followed by ${ED25519_KEY_SIZE} bytes, canonical base64`,
    );
  }
  return { name, keyId: Number.parseInt(idHex, 16), key: raw.subarray(1) };
}
