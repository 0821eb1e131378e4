import { describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  checkpointBody,
  computeWitnessKeyId,
  cosignCheckpoint,
  cosignatureMessage,
  formatWitnessKey,
  generateWitnessKey,
  parseWitnessKey,
  parseWitnessKeys,
  parseWitnessSignerKey,
  verifyCosignature,
  witnessVerifierFromSigner,
} from '../../../src/ledger/cosignature.js';
import {
  computeKeyId,
  generateLedgerKey,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
} from '../../../src/ledger/checkpoint.js';
import { ProofError } from '../../../src/errors.js';

const BODY =
  'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const signer = parseWitnessSignerKey(generateWitnessKey('witness.example.com/w1').skey);
const witnesses = [witnessVerifierFromSigner(signer)];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ProofError ? err.code : `not a ProofError: ${String(err)}`;
  }
  return undefined;
}

describe('cosignature (C2SP tlog-cosignature, Ed25519 cosignature/v1)', () => {
  it('signs "cosignature/v1\\ntime <t>\\n" + body, with key ID || timestamp || signature', () => {
    const cosig = cosignCheckpoint(BODY, signer, 1679315147);
    expect(cosig.line.startsWith('\u2014 witness.example.com/w1 ')).toBe(true);
    const blob = Buffer.from(cosig.line.split(' ').at(-1)!, 'base64');
    expect(blob).toHaveLength(4 + 8 + 64);
    expect(blob.readUInt32BE(0)).toBe(signer.keyId);
    expect(blob.readBigUInt64BE(4)).toBe(1679315147n);
    const message = new TextEncoder().encode(`cosignature/v1\ntime 1679315147\n${BODY}`);
    expect(cosignatureMessage(BODY, 1679315147)).toEqual(message);
    expect(ed25519.verify(blob.subarray(12), message, signer.publicKey)).toBe(true);
    expect(verifyCosignature(BODY, cosig.line, witnesses)).toEqual(cosig);
  });

  it('computes the key ID with type byte 0x04, unlike the log key (0x01)', () => {
    const name = 'witness.example.com/w1';
    const buf = Buffer.concat([Buffer.from(name + '\n'), Buffer.from([0x04]), signer.publicKey]);
    expect(computeWitnessKeyId(name, signer.publicKey)).toBe(
      Buffer.from(sha256(buf)).readUInt32BE(0),
    );
    expect(computeWitnessKeyId(name, signer.publicKey)).not.toBe(
      computeKeyId(name, signer.publicKey),
    );
  });

  it('round-trips its vkey, and refuses a log vkey (type 0x01) as a witness key', () => {
    const vkey = formatWitnessKey(witnesses[0]!);
    expect(parseWitnessKey(vkey)).toEqual(witnesses[0]);
    const log = generateLedgerKey('witness.example.com/w1');
    expect(codeOf(() => parseWitnessKey(log.vkey))).toBe('KEY_MALFORMED');
    expect(codeOf(() => parseVerifierKey(vkey))).toBe('KEY_MALFORMED');
  });

  it('parses a list of witness keys (commas, spaces, newlines) and refuses duplicates', () => {
    const other = generateWitnessKey('witness.example.com/w2').vkey;
    const mine = formatWitnessKey(witnesses[0]!);
    expect(parseWitnessKeys(`${mine},\n ${other}\n`).map((k) => k.name)).toEqual([
      'witness.example.com/w1',
      'witness.example.com/w2',
    ]);
    expect(parseWitnessKeys('')).toEqual([]);
    expect(codeOf(() => parseWitnessKeys(`${mine} ${mine}`))).toBe('KEY_MALFORMED');
    expect(codeOf(() => parseWitnessKeys(`${mine},nonsense`))).toBe('KEY_MALFORMED');
  });

  describe('when the checkpoint body differs', () => {
    it('fails with SIGNATURE_INVALID', () => {
      const cosig = cosignCheckpoint(BODY, signer, 1);
      const other = BODY.replace('20852163', '20852164');
      expect(codeOf(() => verifyCosignature(other, cosig.line, witnesses))).toBe(
        'SIGNATURE_INVALID',
      );
    });
  });

  describe('when the timestamp is changed', () => {
    it('fails with SIGNATURE_INVALID', () => {
      const cosig = cosignCheckpoint(BODY, signer, 1000);
      const blob = Buffer.from(cosig.line.split(' ').at(-1)!, 'base64');
      blob.writeBigUInt64BE(1001n, 4);
      const line = `\u2014 witness.example.com/w1 ${blob.toString('base64')}`;
      expect(codeOf(() => verifyCosignature(BODY, line, witnesses))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when the witness is not known', () => {
    it('fails with KEY_UNKNOWN', () => {
      const rogue = parseWitnessSignerKey(generateWitnessKey('witness.example.com/w1').skey);
      const cosig = cosignCheckpoint(BODY, rogue, 1);
      expect(codeOf(() => verifyCosignature(BODY, cosig.line, witnesses))).toBe('KEY_UNKNOWN');
    });
  });

  describe('when a log signature line is offered as a cosignature', () => {
    it('fails without a TypeError (PROOF_MALFORMED: the blob has no timestamp)', () => {
      const log = parseSignerKey(generateLedgerKey('witness.example.com/w1').skey);
      const note = signCheckpoint(
        { origin: 'a.example/log', size: 1, rootHash: new Uint8Array(32) },
        log,
      );
      const line = note.split('\n').find((l) => l.startsWith('\u2014'))!;
      expect(codeOf(() => verifyCosignature(checkpointBody(note).body, line, witnesses))).toBe(
        'PROOF_MALFORMED',
      );
    });
  });

  describe('when the line is malformed', () => {
    it.each([
      ['empty', ''],
      ['no dash', 'witness.example.com/w1 AAAA'],
      ['no blob', '\u2014 witness.example.com/w1'],
      ['two lines', '\u2014 a AAAA\n\u2014 b AAAA'],
      ['non-canonical base64', '\u2014 a AAA='],
      ['not a string', 42],
    ])('%s → PROOF_MALFORMED', (_name, line) => {
      expect(codeOf(() => verifyCosignature(BODY, line as string, witnesses))).toBe(
        'PROOF_MALFORMED',
      );
    });
  });

  it('refuses to cosign a body that is not a checkpoint', () => {
    expect(codeOf(() => cosignCheckpoint('not a checkpoint\n', signer, 1))).toBe(
      'CHECKPOINT_MALFORMED',
    );
  });
});
