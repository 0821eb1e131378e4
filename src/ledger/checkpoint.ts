/**
 * Signed notes and transparency-log checkpoints (pure: no I/O, STYLE.md rule 8).
 *
 * - C2SP signed-note (https://c2sp.org/signed-note, as implemented by golang.org/x/mod/sumdb/note):
 *   text ending in "\n", a blank line, then lines "— <key name> <base64(key ID(4) || signature)>".
 *   Ed25519 (signature type 0x01, RFC 8032), key ID = SHA-256(name || 0x0A || 0x01 || pubkey)[:4]
 *   read big-endian.
 * - C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): note text "origin\nsize\nbase64(root)\n"
 *   plus optional non-empty extension lines.
 *
 * Everything parsed here (notes, key strings, checkpoint bodies) may come from an attacker, so the
 * parsers are strict and total (STYLE.md rule 3): malformed input throws one ProofError with a code,
 * never a TypeError. Base64 must be canonical standard base64 (RFC 4648 §4) so one value has one
 * spelling. Signatures are verified with RFC 8032 strict rules (zip215: false). Notes and public
 * keys are public data; no constant-time comparison is needed (rule 4 covers secrets only).
 */
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ProofError } from '../errors.js';
import { HASH_SIZE } from './hash.js';
import {
  decodeBase64,
  ED25519_KEY_SIZE,
  ED25519_SIGNATURE_SIZE,
  encodeBase64,
  formatKeyFields,
  isValidKeyName,
  KEY_ID_SIZE,
  keyIdHex,
  keyMalformed,
  noteKeyId,
  parseKeyFields,
  SIGNATURE_LINE_PREFIX,
  SIGNER_KEY_PREFIX,
} from './note-key.js';

/** Signature type identifier byte for Ed25519 (C2SP signed-note §Signature types). */
export const SIGNATURE_TYPE_ED25519 = 0x01;
/** Verifiers SHOULD cap the number of signatures; x/mod/sumdb/note rejects more than 100. */
export const MAX_NOTE_SIGNATURES = 100;

/** Verifies notes signed by one Ed25519 key. Built by `parseVerifierKey`. */
export type Verifier = {
  readonly name: string;
  /** uint32 key ID. */
  readonly keyId: number;
  readonly publicKey: Uint8Array;
};

/**
 * Signs notes with one Ed25519 key. The seed lives only in the closure of `sign`, so logging or
 * serialising a signer cannot leak it.
 */
export type NoteSigner = Verifier & {
  readonly sign: (message: Uint8Array) => Uint8Array;
};

export type Checkpoint = {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions: string[];
};

export type CheckpointInput = {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions?: readonly string[];
};

export type OpenedNote = {
  /** The signed text, final newline included. */
  text: string;
  /** Names of the known keys whose signatures verified, in note order. */
  verifiedBy: string[];
  /** Distinct signatures by keys not in the verifier list (ignored, as the spec requires). */
  unverified: number;
};

// ---------------------------------------------------------------------------------------------
// Shared checks

const encoder = new TextEncoder();

function noteMalformed(message: string): ProofError {
  return new ProofError('CHECKPOINT_MALFORMED', message);
}

/**
 * signed-note: text MUST be valid UTF-8 with no ASCII control character other than newline. A JS
 * string is valid UTF-8 once encoded iff it has no lone surrogate.
 */
// eslint-disable-next-line no-control-regex -- these control characters are what the spec forbids
const FORBIDDEN_NOTE_CHAR = /[\u0000-\u0009\u000b-\u001f]|\p{Surrogate}/u;
const DECIMAL_RE = /^(?:0|[1-9][0-9]*)$/;

export { isValidKeyName };

function assertKeyName(name: unknown): asserts name is string {
  if (!isValidKeyName(name)) {
    throw keyMalformed('key name must be non-empty, without spaces, "+" or control characters');
  }
}

/** Array check that does not narrow a typed readonly array to `any[]`. */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}

/** Splits at the first `sep`; the tail keeps later separators (base64 may contain '+'). */
function chop(text: string, sep: string): [string, string | undefined] {
  const at = text.indexOf(sep);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + sep.length)];
}

// ---------------------------------------------------------------------------------------------
// Keys

function isUint32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function assertPublicKey(key: unknown): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== ED25519_KEY_SIZE) {
    throw keyMalformed(`an Ed25519 public key is ${ED25519_KEY_SIZE} bytes`);
  }
}

/** C2SP signed-note key ID: SHA-256(name || 0x0A || 0x01 || 32-byte Ed25519 key)[:4], big-endian. */
export function computeKeyId(name: string, publicKey: Uint8Array): number {
  assertKeyName(name);
  assertPublicKey(publicKey);
  return noteKeyId(name, SIGNATURE_TYPE_ED25519, publicKey);
}

/** `<name>+<key ID hex8>+<base64(0x01 || public key)>` */
export function formatVerifierKey(verifier: Verifier): string {
  assertKeyName(verifier.name);
  assertPublicKey(verifier.publicKey);
  if (!isUint32(verifier.keyId)) throw keyMalformed('key ID must be a uint32');
  return formatKeyFields(verifier.name, verifier.keyId, SIGNATURE_TYPE_ED25519, verifier.publicKey);
}

/** A fresh Ed25519 ledger key: `skey` stays secret, `vkey` is published to auditors. */
export function generateLedgerKey(name: string): { skey: string; vkey: string } {
  assertKeyName(name);
  const seed = ed25519.utils.randomSecretKey();
  const publicKey = ed25519.getPublicKey(seed);
  const keyId = computeKeyId(name, publicKey);
  return {
    skey: SIGNER_KEY_PREFIX + formatKeyFields(name, keyId, SIGNATURE_TYPE_ED25519, seed),
    vkey: formatVerifierKey({ name, keyId, publicKey }),
  };
}

/** Parses `PRIVATE+KEY+<name>+<keyid hex8>+<base64(0x01 || 32-byte seed)>`. */
export function parseSignerKey(skey: string): NoteSigner {
  if (typeof skey !== 'string' || !skey.startsWith(SIGNER_KEY_PREFIX)) {
    throw keyMalformed(`signer key must start with ${SIGNER_KEY_PREFIX}`);
  }
  const {
    name,
    keyId,
    key: seed,
  } = parseKeyFields(skey.slice(SIGNER_KEY_PREFIX.length), SIGNATURE_TYPE_ED25519, 'key');
  const publicKey = ed25519.getPublicKey(seed);
  // The ID names the public key, so it can only be checked after deriving it from the seed.
  if (computeKeyId(name, publicKey) !== keyId) {
    throw keyMalformed('key ID does not match the key');
  }
  const secret = new Uint8Array(seed);
  const native = nativeEd25519Signer(secret);
  return {
    name,
    keyId,
    publicKey,
    sign: native ?? ((message) => ed25519.sign(message, secret)),
  };
}

/** PKCS#8 DER prefix of an Ed25519 private key (RFC 8410 §7), followed by the 32-byte seed. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Ed25519 signing through node:crypto (about 20x faster than @noble/curves here). Ed25519 is
 * deterministic (RFC 8032), so both produce the same bytes; a unit test holds them to it. Returns
 * undefined where the runtime has no native Ed25519, and @noble/curves signs instead.
 */
export function nativeEd25519Signer(
  seed: Uint8Array,
): ((message: Uint8Array) => Uint8Array) | undefined {
  try {
    const key = createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
      format: 'der',
      type: 'pkcs8',
    });
    return (message) => new Uint8Array(nodeSign(null, message, key));
  } catch {
    return undefined;
  }
}

/** Parses `<name>+<keyid hex8>+<base64(0x01 || 32-byte public key)>`. */
export function parseVerifierKey(vkey: string): Verifier {
  if (typeof vkey !== 'string') throw keyMalformed('verifier key must be a string');
  const { name, keyId, key } = parseKeyFields(vkey, SIGNATURE_TYPE_ED25519, 'key');
  if (computeKeyId(name, key) !== keyId) throw keyMalformed('key ID does not match the key');
  if (!ed25519.utils.isValidPublicKey(key, false)) {
    throw keyMalformed('public key is not a valid Ed25519 point');
  }
  return { name, keyId, publicKey: new Uint8Array(key) };
}

/** The verifier matching a signer (to publish its vkey with `formatVerifierKey`). */
export function verifierFromSigner(signer: NoteSigner): Verifier {
  return { name: signer.name, keyId: signer.keyId, publicKey: new Uint8Array(signer.publicKey) };
}

// ---------------------------------------------------------------------------------------------
// Signed notes

function assertNoteText(text: unknown): asserts text is string {
  if (typeof text !== 'string' || !text.endsWith('\n')) {
    throw noteMalformed('note text must be a string ending in a newline');
  }
  if (FORBIDDEN_NOTE_CHAR.test(text)) {
    throw noteMalformed('note text must be valid UTF-8 without control characters but newline');
  }
}

/** Signs `text` (which must end in "\n"): text + "\n" + "— <name> <base64(keyID || sig)>\n". */
export function signNote(text: string, signer: NoteSigner): string {
  assertNoteText(text);
  assertKeyName(signer.name);
  return `${text}\n${signatureLine(text, signer)}`;
}

function signatureLine(text: string, signer: NoteSigner): string {
  const signature = signer.sign(encoder.encode(text));
  const blob = new Uint8Array(KEY_ID_SIZE + signature.length);
  new DataView(blob.buffer).setUint32(0, signer.keyId, false);
  blob.set(signature, KEY_ID_SIZE);
  return `${SIGNATURE_LINE_PREFIX}${signer.name} ${encodeBase64(blob)}\n`;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function noteToString(note: string | Uint8Array): string {
  if (typeof note === 'string') return note;
  if (!(note instanceof Uint8Array)) throw noteMalformed('note must be a string or bytes');
  try {
    return utf8Decoder.decode(note);
  } catch {
    throw noteMalformed('note is not valid UTF-8');
  }
}

function verifierIndex(verifiers: readonly Verifier[]): Map<string, Verifier> {
  if (!isList(verifiers)) throw keyMalformed('verifiers must be an array');
  const index = new Map<string, Verifier>();
  for (const v of verifiers as readonly unknown[]) {
    if (typeof v !== 'object' || v === null) throw keyMalformed('verifier must be an object');
    const { name, keyId, publicKey } = v as Partial<Verifier>;
    if (!isValidKeyName(name) || !isUint32(keyId)) {
      throw keyMalformed('verifier has a malformed name or key ID');
    }
    assertPublicKey(publicKey);
    const id = `${name}+${keyIdHex(keyId)}`;
    const known = index.get(id);
    // Two different keys under one name and ID: the list itself is untrustworthy.
    if (known !== undefined && Buffer.compare(known.publicKey, publicKey) !== 0) {
      throw keyMalformed(`ambiguous verifier key ${id}`);
    }
    index.set(id, { name, keyId, publicKey });
  }
  return index;
}

function verifySignature(v: Verifier, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_SIZE) return false;
  try {
    return ed25519.verify(signature, message, v.publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * Opens a signed note (C2SP signed-note §Signatures): every signature by a known key (name and
 * key ID both match) must verify, or the whole note is rejected (SIGNATURE_INVALID); signatures
 * by unknown keys are ignored; at least one known signature is required (KEY_UNKNOWN). Repeated
 * signatures by one key count once. Syntax errors are CHECKPOINT_MALFORMED.
 */
export function openNote(note: string | Uint8Array, verifiers: readonly Verifier[]): OpenedNote {
  const known = verifierIndex(verifiers);
  const msg = noteToString(note);
  if (FORBIDDEN_NOTE_CHAR.test(msg)) {
    throw noteMalformed('note must be valid UTF-8 without control characters but newline');
  }
  // The text is separated from the signatures by the last empty line.
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw noteMalformed('note has no blank line before its signatures');
  const text = msg.slice(0, split + 1);
  const block = msg.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) {
    throw noteMalformed('note signatures must be non-empty and end with a newline');
  }
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) {
    throw noteMalformed(`note has more than ${MAX_NOTE_SIGNATURES} signatures`);
  }

  const message = encoder.encode(text);
  const verifiedBy: string[] = [];
  const seenKnown = new Set<string>();
  const seenUnknown = new Set<string>();
  for (const line of lines) {
    const sig = parseSignatureLine(line);
    const id = `${sig.name}+${keyIdHex(sig.keyId)}`;
    const verifier = known.get(id);
    if (verifier === undefined) {
      seenUnknown.add(line);
      continue;
    }
    if (seenKnown.has(id)) continue;
    seenKnown.add(id);
    if (!verifySignature(verifier, message, sig.signature)) {
      throw new ProofError('SIGNATURE_INVALID', `invalid signature for key ${id}`);
    }
    verifiedBy.push(sig.name);
  }
  if (verifiedBy.length === 0) {
    throw new ProofError('KEY_UNKNOWN', 'note has no signature by a known key');
  }
  return { text, verifiedBy, unverified: seenUnknown.size };
}

function parseSignatureLine(line: string): { name: string; keyId: number; signature: Uint8Array } {
  if (!line.startsWith(SIGNATURE_LINE_PREFIX)) {
    throw noteMalformed('signature line must start with an em dash and a space');
  }
  const [name, b64] = chop(line.slice(SIGNATURE_LINE_PREFIX.length), ' ');
  const blob = b64 === undefined ? undefined : decodeBase64(b64);
  if (!isValidKeyName(name) || blob === undefined || blob.length <= KEY_ID_SIZE) {
    throw noteMalformed('signature line must be "— <key name> <base64(key ID || signature)>"');
  }
  const keyId = new DataView(blob.buffer, blob.byteOffset, KEY_ID_SIZE).getUint32(0, false);
  return { name, keyId, signature: blob.subarray(KEY_ID_SIZE) };
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

const MAX_SIZE_DIGITS = String(Number.MAX_SAFE_INTEGER).length;

function assertCheckpointLine(line: unknown, what: string): asserts line is string {
  if (typeof line !== 'string' || line.length === 0) {
    throw noteMalformed(`checkpoint ${what} must be a non-empty line`);
  }
  if (line.includes('\n') || FORBIDDEN_NOTE_CHAR.test(line)) {
    throw noteMalformed(`checkpoint ${what} must be one line of text without control characters`);
  }
}

/** C2SP tlog-checkpoint body: "origin\nsize\nbase64(root)\n" then one line per extension. */
export function formatCheckpoint(checkpoint: CheckpointInput): string {
  const { origin, size, rootHash, extensions = [] } = checkpoint;
  assertCheckpointLine(origin, 'origin');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw noteMalformed('checkpoint size must be a non-negative safe integer');
  }
  if (!(rootHash instanceof Uint8Array) || rootHash.length !== HASH_SIZE) {
    throw noteMalformed(`checkpoint root hash must be ${HASH_SIZE} bytes`);
  }
  if (!isList(extensions)) throw noteMalformed('checkpoint extensions must be an array');
  extensions.forEach((line, i) => assertCheckpointLine(line, `extension ${i}`));
  return [origin, String(size), encodeBase64(rootHash), ...extensions].join('\n') + '\n';
}

/**
 * Strict C2SP tlog-checkpoint parser: at least three non-empty lines; decimal size without
 * leading zeros (and within 2^53 − 1, the ledger's limit); canonical base64 of 32 bytes.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) {
    throw noteMalformed('checkpoint must end with a newline');
  }
  if (FORBIDDEN_NOTE_CHAR.test(text)) {
    throw noteMalformed('checkpoint must be valid UTF-8 without control characters but newline');
  }
  const [origin, sizeText, rootText, ...extensions] = text.slice(0, -1).split('\n');
  if (origin === undefined || sizeText === undefined || rootText === undefined) {
    throw noteMalformed('checkpoint needs origin, size and root hash lines');
  }
  assertCheckpointLine(origin, 'origin');
  extensions.forEach((line, i) => assertCheckpointLine(line, `extension ${i}`));
  if (!DECIMAL_RE.test(sizeText) || sizeText.length > MAX_SIZE_DIGITS) {
    throw noteMalformed('checkpoint size must be a decimal number without leading zeros');
  }
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw noteMalformed('checkpoint size is above 2^53 - 1');
  const rootHash = decodeBase64(rootText);
  if (rootHash === undefined || rootHash.length !== HASH_SIZE) {
    throw noteMalformed(`checkpoint root hash must be canonical base64 of ${HASH_SIZE} bytes`);
  }
  return { origin, size, rootHash, extensions };
}

/** Signs a checkpoint as a note. */
export function signCheckpoint(checkpoint: CheckpointInput, signer: NoteSigner): string {
  return signNote(formatCheckpoint(checkpoint), signer);
}

/**
 * Opens a signed checkpoint: `openNote`, then `parseCheckpoint`, then (if given) checks the
 * origin, so a checkpoint of another log signed by a shared key is not taken for ours.
 */
export function openCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly Verifier[],
  expectedOrigin?: string,
): Checkpoint & Omit<OpenedNote, 'text'> {
  const opened = openNote(note, verifiers);
  const checkpoint = parseCheckpoint(opened.text);
  if (expectedOrigin !== undefined && checkpoint.origin !== expectedOrigin) {
    throw noteMalformed(`checkpoint origin is not ${JSON.stringify(expectedOrigin)}`);
  }
  return { ...checkpoint, verifiedBy: opened.verifiedBy, unverified: opened.unverified };
}
