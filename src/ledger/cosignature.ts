/**
 * Witness cosignatures (pure: no I/O, STYLE.md rule 8), after C2SP tlog-cosignature
 * (https://c2sp.org/tlog-cosignature), Ed25519 `cosignature/v1`:
 *
 * - a cosignature is a signed-note signature line on the log's checkpoint:
 *   "— <witness name> base64(key ID(4) || timestamp(8, big-endian) || Ed25519 signature(64))";
 * - key ID = SHA-256(name || "\n" || 0x04 || 32-byte public key)[:4], so a witness key can never
 *   be taken for a log key (0x01) nor a log signature for a cosignature;
 * - the signed message is "cosignature/v1\ntime <timestamp>\n" followed by the whole checkpoint
 *   body (final newline included, no signature lines). It states: as of `timestamp` (POSIX
 *   seconds), the largest consistent tree this witness has seen for the origin has this root.
 *   Our witnesses also state that they hold a full copy of the blocks up to the checkpoint size
 *   ("additional statement", tlog-cosignature §Additional statements).
 *
 * Verifier keys use the C2SP vkey form with type 0x04: `<name>+<hex8>+<base64(0x04 || key)>`.
 * Signer keys mirror the log's: `PRIVATE+KEY+<name>+<hex8>+<base64(0x04 || 32-byte seed)>`.
 * Everything parsed here may come from an attacker: parsers are total and throw one ProofError.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { ProofError } from '../errors.js';
import { nativeEd25519Signer, parseCheckpoint } from './checkpoint.js';
import type { Checkpoint } from './checkpoint.js';
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

/** Signature type byte of an Ed25519 cosignature/v1 key (C2SP tlog-cosignature §Format). */
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;
/** Domain separation header line of the signed message. */
export const COSIGNATURE_V1_HEADER = 'cosignature/v1';
/** tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1; we also keep it a safe integer. */
const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

const TIMESTAMP_SIZE = 8;
const BLOB_SIZE = KEY_ID_SIZE + TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE;

export type WitnessVerifier = {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
};

export type WitnessSigner = WitnessVerifier & {
  /** signs the cosignature/v1 message; the seed lives only in this closure */
  readonly sign: (message: Uint8Array) => Uint8Array;
};

export type Cosignature = {
  /** witness key name */
  name: string;
  /** POSIX seconds */
  timestamp: number;
  /** the signature line, "— <name> <base64>" without its newline */
  line: string;
};

const encoder = new TextEncoder();

/** SHA-256(name || "\n" || 0x04 || public key)[:4], big-endian. */
export function computeWitnessKeyId(name: string, publicKey: Uint8Array): number {
  if (!isValidKeyName(name)) throw keyMalformed('witness key name is not a valid note key name');
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_KEY_SIZE) {
    throw keyMalformed(`an Ed25519 public key is ${ED25519_KEY_SIZE} bytes`);
  }
  return noteKeyId(name, SIGNATURE_TYPE_COSIGNATURE_V1, publicKey);
}

export function formatWitnessKey(v: WitnessVerifier): string {
  return formatKeyFields(v.name, v.keyId, SIGNATURE_TYPE_COSIGNATURE_V1, v.publicKey);
}

/** A fresh witness key pair: `skey` stays with the witness, `vkey` goes to the service. */
export function generateWitnessKey(name: string): { skey: string; vkey: string } {
  const seed = ed25519.utils.randomSecretKey();
  const publicKey = ed25519.getPublicKey(seed);
  const keyId = computeWitnessKeyId(name, publicKey);
  return {
    skey: SIGNER_KEY_PREFIX + formatKeyFields(name, keyId, SIGNATURE_TYPE_COSIGNATURE_V1, seed),
    vkey: formatWitnessKey({ name, keyId, publicKey }),
  };
}

function parseFields(text: string): { name: string; keyId: number; key: Uint8Array } {
  return parseKeyFields(text, SIGNATURE_TYPE_COSIGNATURE_V1, 'witness key');
}

export function parseWitnessKey(vkey: string): WitnessVerifier {
  if (typeof vkey !== 'string') throw keyMalformed('witness key must be a string');
  const { name, keyId, key } = parseFields(vkey.trim());
  if (computeWitnessKeyId(name, key) !== keyId) throw keyMalformed('key ID does not match');
  if (!ed25519.utils.isValidPublicKey(key, false)) {
    throw keyMalformed('public key is not a valid Ed25519 point');
  }
  return { name, keyId, publicKey: new Uint8Array(key) };
}

/**
 * A list of witness vkeys, separated by commas, spaces or newlines (e.g. an environment variable
 * such as CRM_LEDGER_WITNESS_KEYS). Throws KEY_MALFORMED naming the first bad entry; two keys
 * with one name and key ID are refused as ambiguous.
 */
export function parseWitnessKeys(text: string): WitnessVerifier[] {
  const out: WitnessVerifier[] = [];
  for (const item of text.split(/[\s,]+/).filter((x) => x.length > 0)) {
    const key = parseWitnessKey(item);
    if (out.some((k) => k.name === key.name && k.keyId === key.keyId)) {
      throw keyMalformed(`witness key ${key.name}+${keyIdHex(key.keyId)} is listed twice`);
    }
    out.push(key);
  }
  return out;
}

export function parseWitnessSignerKey(skey: string): WitnessSigner {
  if (typeof skey !== 'string' || !skey.trim().startsWith(SIGNER_KEY_PREFIX)) {
    throw keyMalformed(`witness signer key must start with ${SIGNER_KEY_PREFIX}`);
  }
  const { name, keyId, key: seed } = parseFields(skey.trim().slice(SIGNER_KEY_PREFIX.length));
  const publicKey = ed25519.getPublicKey(seed);
  if (computeWitnessKeyId(name, publicKey) !== keyId) throw keyMalformed('key ID does not match');
  const secret = new Uint8Array(seed);
  const sign = nativeEd25519Signer(secret) ?? ((m: Uint8Array) => ed25519.sign(m, secret));
  return { name, keyId, publicKey, sign };
}

export function witnessVerifierFromSigner(signer: WitnessSigner): WitnessVerifier {
  return { name: signer.name, keyId: signer.keyId, publicKey: new Uint8Array(signer.publicKey) };
}

/** The cosignature/v1 signed message for a checkpoint body at `timestamp`. */
export function cosignatureMessage(body: string, timestamp: number): Uint8Array {
  return encoder.encode(`${COSIGNATURE_V1_HEADER}\ntime ${timestamp}\n${body}`);
}

/**
 * The text of a signed note before its signatures (the checkpoint body), checked to be a
 * well-formed checkpoint. Throws CHECKPOINT_MALFORMED.
 */
export function checkpointBody(note: string): { body: string; checkpoint: Checkpoint } {
  const split = typeof note === 'string' ? note.lastIndexOf('\n\n') : -1;
  if (split < 0) throw new ProofError('CHECKPOINT_MALFORMED', 'note has no signature block');
  const body = note.slice(0, split + 1);
  return { body, checkpoint: parseCheckpoint(body) };
}

/** Cosigns a checkpoint body; returns the signature line (no newline). */
export function cosignCheckpoint(
  body: string,
  signer: WitnessSigner,
  timestamp: number,
): Cosignature {
  parseCheckpoint(body);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new ProofError('PROOF_MALFORMED', 'cosignature timestamp must be a POSIX second count');
  }
  const signature = signer.sign(cosignatureMessage(body, timestamp));
  const blob = new Uint8Array(BLOB_SIZE);
  const view = new DataView(blob.buffer);
  view.setUint32(0, signer.keyId, false);
  view.setBigUint64(KEY_ID_SIZE, BigInt(timestamp), false);
  blob.set(signature, KEY_ID_SIZE + TIMESTAMP_SIZE);
  return {
    name: signer.name,
    timestamp,
    line: `${SIGNATURE_LINE_PREFIX}${signer.name} ${encodeBase64(blob)}`,
  };
}

/**
 * Verifies one cosignature line on `body` against the known witness keys (name and key ID must
 * both match one). KEY_UNKNOWN for a witness we do not know, SIGNATURE_INVALID for a bad
 * signature, PROOF_MALFORMED for a line that does not parse.
 */
export function verifyCosignature(
  body: string,
  line: string,
  witnesses: readonly WitnessVerifier[],
): Cosignature {
  if (typeof line !== 'string' || line.length > 1000) {
    throw new ProofError('PROOF_MALFORMED', 'cosignature must be one signature line');
  }
  const text = line.endsWith('\n') ? line.slice(0, -1) : line;
  if (!text.startsWith(SIGNATURE_LINE_PREFIX) || text.includes('\n')) {
    throw new ProofError('PROOF_MALFORMED', 'cosignature must be "— <name> <base64>"');
  }
  const rest = text.slice(SIGNATURE_LINE_PREFIX.length);
  const space = rest.lastIndexOf(' ');
  const name = rest.slice(0, Math.max(space, 0));
  const blob = space < 0 ? undefined : decodeBase64(rest.slice(space + 1));
  if (!isValidKeyName(name) || blob?.length !== BLOB_SIZE) {
    throw new ProofError('PROOF_MALFORMED', 'cosignature line has a bad name or signature blob');
  }
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const keyId = view.getUint32(0, false);
  const ts = view.getBigUint64(KEY_ID_SIZE, false);
  const witness = witnesses.find((w) => w.name === name && w.keyId === keyId);
  if (!witness)
    throw new ProofError('KEY_UNKNOWN', `no known witness key ${name}+${keyIdHex(keyId)}`);
  if (ts > BigInt(MAX_TIMESTAMP)) {
    throw new ProofError('PROOF_MALFORMED', 'cosignature timestamp is out of range');
  }
  const timestamp = Number(ts);
  parseCheckpoint(body);
  let ok = false;
  try {
    ok = ed25519.verify(
      blob.subarray(KEY_ID_SIZE + TIMESTAMP_SIZE),
      cosignatureMessage(body, timestamp),
      witness.publicKey,
      { zip215: false },
    );
  } catch {
    ok = false;
  }
  if (!ok) throw new ProofError('SIGNATURE_INVALID', `cosignature by ${name} does not verify`);
  return { name, timestamp, line: text };
}
