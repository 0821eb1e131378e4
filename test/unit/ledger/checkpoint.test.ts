import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProofError } from '../../../src/errors.js';
import type { ProofErrorCode } from '../../../src/errors.js';
import { sha256 } from '../../../src/ledger/hash.js';
import {
  MAX_NOTE_SIGNATURES,
  computeKeyId,
  formatCheckpoint,
  formatVerifierKey,
  generateLedgerKey,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifierFromSigner,
} from '../../../src/ledger/checkpoint.js';
import type { Verifier } from '../../../src/ledger/checkpoint.js';

type Vectors = {
  peterNeumann: {
    name: string;
    keyIdHex: string;
    skey: string;
    vkey: string;
    text: string;
    signatureLine: string;
    signedNote: string;
  };
  enochRoot: { name: string; keyIdHex: string; vkey: string; signatureLine: string };
  badVerifierKeys: string[];
  sumGolangOrg: {
    vkey: string;
    signedCheckpoint: string;
    origin: string;
    size: number;
    rootHashBase64: string;
  };
};

const vectors = JSON.parse(
  readFileSync(new URL('../../vectors/signed-note.json', import.meta.url), 'utf8'),
) as Vectors;
const { peterNeumann: peter, enochRoot: enoch, sumGolangOrg: sumdb } = vectors;

/** The ProofError code `fn` throws; anything else thrown (TypeError…) fails the test. */
function codeOf(fn: () => unknown): ProofErrorCode | 'NO_ERROR' {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProofError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** Rewrites the base64 blob of a signature line. */
function editSignature(line: string, edit: (blob: Uint8Array) => Uint8Array): string {
  const [prefix, name, blob] = line.trimEnd().split(' ') as [string, string, string];
  return `${prefix} ${name} ${b64(edit(new Uint8Array(Buffer.from(blob, 'base64'))))}\n`;
}

describe('checkpoint', () => {
  const peterVerifier = parseVerifierKey(peter.vkey);
  const enochVerifier = parseVerifierKey(enoch.vkey);
  const peterSigner = parseSignerKey(peter.skey);

  describe('when parsing the published sumdb/note keys', () => {
    it('parses the PeterNeumann verifier key', () => {
      expect(peterVerifier.name).toBe('PeterNeumann');
      expect(peterVerifier.keyId).toBe(0xc74f20a3);
      expect(peterVerifier.publicKey).toHaveLength(32);
      expect(formatVerifierKey(peterVerifier)).toBe(peter.vkey);
    });

    it('derives the same public key and key ID from the PeterNeumann signer key', () => {
      expect(peterSigner.name).toBe('PeterNeumann');
      expect(peterSigner.keyId).toBe(0xc74f20a3);
      expect(b64(peterSigner.publicKey)).toBe(b64(peterVerifier.publicKey));
      expect(formatVerifierKey(verifierFromSigner(peterSigner))).toBe(peter.vkey);
    });

    it('parses the EnochRoot and sum.golang.org verifier keys', () => {
      expect(enochVerifier.keyId).toBe(0xaf0cfe78);
      const sum = parseVerifierKey(sumdb.vkey);
      expect(sum.name).toBe('sum.golang.org');
      expect(sum.keyId).toBe(0x033de0ae);
    });

    it('computes the key ID as SHA-256(name || 0x0A || 0x01 || key)[:4]', () => {
      const digest = sha256(
        Buffer.concat([Buffer.from('PeterNeumann\n'), Buffer.from([1]), peterVerifier.publicKey]),
      );
      expect(Buffer.from(digest.subarray(0, 4)).toString('hex')).toBe(peter.keyIdHex);
      expect(computeKeyId('PeterNeumann', peterVerifier.publicKey)).toBe(0xc74f20a3);
    });
  });

  describe('when signing the published note', () => {
    it('produces the published signed note byte for byte', () => {
      expect(signNote(peter.text, peterSigner)).toBe(peter.signedNote);
    });

    it('refuses text that does not end in a newline', () => {
      expect(codeOf(() => signNote('abc', peterSigner))).toBe('CHECKPOINT_MALFORMED');
      expect(codeOf(() => signNote('', peterSigner))).toBe('CHECKPOINT_MALFORMED');
    });

    it('refuses text with control characters or lone surrogates', () => {
      expect(codeOf(() => signNote('a\rb\n', peterSigner))).toBe('CHECKPOINT_MALFORMED');
      expect(codeOf(() => signNote('a\u0000\n', peterSigner))).toBe('CHECKPOINT_MALFORMED');
      expect(codeOf(() => signNote('a\ud800\n', peterSigner))).toBe('CHECKPOINT_MALFORMED');
    });
  });

  describe('when opening the published notes', () => {
    const both = `${peter.text}\n${peter.signatureLine}${enoch.signatureLine}`;

    it('opens the PeterNeumann note', () => {
      expect(openNote(peter.signedNote, [peterVerifier])).toEqual({
        text: peter.text,
        verifiedBy: ['PeterNeumann'],
        unverified: 0,
      });
    });

    it('opens the note given as bytes', () => {
      const opened = openNote(new TextEncoder().encode(peter.signedNote), [peterVerifier]);
      expect(opened.text).toBe(peter.text);
    });

    it('ignores a signature by a key it does not know', () => {
      expect(openNote(both, [peterVerifier])).toEqual({
        text: peter.text,
        verifiedBy: ['PeterNeumann'],
        unverified: 1,
      });
    });

    it('verifies both signatures when both keys are known', () => {
      expect(openNote(both, [peterVerifier, enochVerifier]).verifiedBy).toEqual([
        'PeterNeumann',
        'EnochRoot',
      ]);
    });

    it('counts repeated signatures once', () => {
      const corrupted = enoch.signatureLine.slice(0, 60) + 'ABCD' + enoch.signatureLine.slice(60);
      const note =
        `${peter.text}\n` +
        peter.signatureLine.repeat(2) +
        enoch.signatureLine.repeat(2) +
        corrupted;
      expect(openNote(note, [peterVerifier])).toEqual({
        text: peter.text,
        verifiedBy: ['PeterNeumann'],
        unverified: 2,
      });
    });

    it('opens the published sum.golang.org checkpoint', () => {
      const opened = openCheckpoint(
        sumdb.signedCheckpoint,
        [parseVerifierKey(sumdb.vkey)],
        sumdb.origin,
      );
      expect(opened.origin).toBe(sumdb.origin);
      expect(opened.size).toBe(sumdb.size);
      expect(b64(opened.rootHash)).toBe(sumdb.rootHashBase64);
      expect(opened.extensions).toEqual([]);
      expect(opened.verifiedBy).toEqual(['sum.golang.org']);
    });

    it('accepts exactly the maximum number of signatures', () => {
      const note = `${peter.text}\n${peter.signatureLine.repeat(MAX_NOTE_SIGNATURES)}`;
      expect(openNote(note, [peterVerifier]).verifiedBy).toEqual(['PeterNeumann']);
    });
  });

  describe('when no signature is by a known key', () => {
    it('rejects with KEY_UNKNOWN for an empty verifier list', () => {
      expect(codeOf(() => openNote(peter.signedNote, []))).toBe('KEY_UNKNOWN');
    });

    it('rejects with KEY_UNKNOWN when only other keys are known', () => {
      expect(codeOf(() => openNote(peter.signedNote, [enochVerifier]))).toBe('KEY_UNKNOWN');
    });

    it('treats a changed key name as an unknown key', () => {
      const renamed = peter.signedNote.replace('— PeterNeumann ', '— CarmenSandiego ');
      expect(codeOf(() => openNote(renamed, [peterVerifier]))).toBe('KEY_UNKNOWN');
    });

    it('treats a changed key ID as an unknown key', () => {
      const line = editSignature(peter.signatureLine, (blob) => {
        blob[3] = (blob[3] as number) ^ 1;
        return blob;
      });
      expect(codeOf(() => openNote(`${peter.text}\n${line}`, [peterVerifier]))).toBe('KEY_UNKNOWN');
    });

    it('does not count a signature of another origin checkpoint as ours', () => {
      expect(
        codeOf(() => openCheckpoint(sumdb.signedCheckpoint, [peterVerifier], sumdb.origin)),
      ).toBe('KEY_UNKNOWN');
    });
  });

  describe('when a signed note is tampered with', () => {
    it('rejects a changed text', () => {
      const note = peter.signedNote.replace('cryptography', 'cryptogrophy');
      expect(codeOf(() => openNote(note, [peterVerifier]))).toBe('SIGNATURE_INVALID');
    });

    it('rejects a changed signature byte at every position', () => {
      for (let at = 4; at < 68; at++) {
        const line = editSignature(peter.signatureLine, (blob) => {
          blob[at] = (blob[at] as number) ^ 0x40;
          return blob;
        });
        expect(
          codeOf(() => openNote(`${peter.text}\n${line}`, [peterVerifier])),
          `byte ${at}`,
        ).toBe('SIGNATURE_INVALID');
      }
    });

    it('rejects the sumdb/note "ABCD inserted" signature', () => {
      const line = peter.signatureLine.slice(0, 60) + 'ABCD' + peter.signatureLine.slice(60);
      expect(codeOf(() => openNote(`${peter.text}\n${line}`, [peterVerifier]))).toBe(
        'SIGNATURE_INVALID',
      );
    });

    it('rejects a truncated signature by a known key', () => {
      const line = editSignature(peter.signatureLine, (blob) => blob.subarray(0, 40));
      expect(codeOf(() => openNote(`${peter.text}\n${line}`, [peterVerifier]))).toBe(
        'SIGNATURE_INVALID',
      );
    });

    it('rejects the whole note when one known signature fails and another verifies', () => {
      const bad = editSignature(enoch.signatureLine, (blob) => {
        blob[10] = (blob[10] as number) ^ 1;
        return blob;
      });
      const note = `${peter.text}\n${peter.signatureLine}${bad}`;
      expect(codeOf(() => openNote(note, [peterVerifier, enochVerifier]))).toBe(
        'SIGNATURE_INVALID',
      );
    });

    it('rejects a signature moved to another text', () => {
      const note = `other text\n\n${peter.signatureLine}`;
      expect(codeOf(() => openNote(note, [peterVerifier]))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when a note is malformed', () => {
    const { text, signatureLine } = peter;
    const malformed: [string, string | Uint8Array][] = [
      ['text only', text],
      ['a blank line but no signatures', `${text}\n`],
      ['no final newline', `${text}\n${signatureLine.slice(0, -1)}`],
      ['a control character', `\u0001${text}\n${signatureLine}`],
      ['a carriage return', `${text.replace('\n', '\r\n')}\n${signatureLine}`],
      ['a lone surrogate', `\ud800${text}\n${signatureLine}`],
      [
        'invalid UTF-8 bytes',
        Buffer.concat([Buffer.from([0xff]), Buffer.from(`${text}\n${signatureLine}`)]),
      ],
      ['a key name with a space', `${text}\n${signatureLine.replace('PeterNeumann', 'Bad Name')}`],
      ['a key name with a plus', `${text}\n${signatureLine.replace('PeterNeumann', 'Bad+Name')}`],
      ['an unexpected line after the signatures', `${text}\n${signatureLine}Unexpected line.\n`],
      ['a hyphen instead of an em dash', `${text}\n${signatureLine.replace('—', '-')}`],
      ['no space after the em dash', `${text}\n${signatureLine.replace('— ', '—')}`],
      ['no signature after the name', `${text}\n— PeterNeumann\n`],
      ['an empty signature', `${text}\n— PeterNeumann \n`],
      ['non-base64 signature', `${text}\n— PeterNeumann !!!!\n`],
      ['unpadded base64', `${text}\n${signatureLine.replace('=\n', '\n')}`],
      ['URL-safe base64', `${text}\n${signatureLine.replace('/', '_')}`],
      ['non-canonical base64 padding bits', `${text}\n${signatureLine.replace('nAM=', 'nAN=')}`],
      ['a signature of only a key ID', `${text}\n— PeterNeumann x08gow==\n`],
      ['two spaces before the signature', `${text}\n${signatureLine.replace('n x08', 'n  x08')}`],
      [
        `${MAX_NOTE_SIGNATURES + 1} signatures`,
        `${text}\n${signatureLine.repeat(MAX_NOTE_SIGNATURES + 1)}`,
      ],
      ['a number instead of a note', 12 as unknown as string],
    ];
    for (const [name, note] of malformed) {
      it(`rejects ${name}`, () => {
        expect(codeOf(() => openNote(note, [peterVerifier]))).toBe('CHECKPOINT_MALFORMED');
      });
    }

    it('rejects a verifier list that is not a list of verifiers', () => {
      const lists = [
        null,
        'PeterNeumann',
        [null],
        [{ name: 'x' }],
        [{ ...peterVerifier, keyId: -1 }],
      ];
      for (const list of lists as unknown as Verifier[][]) {
        expect(codeOf(() => openNote(peter.signedNote, list))).toBe('KEY_MALFORMED');
      }
    });

    it('rejects a verifier list with two keys under one name and key ID', () => {
      const twin = { ...peterVerifier, publicKey: enochVerifier.publicKey };
      expect(codeOf(() => openNote(peter.signedNote, [peterVerifier, twin]))).toBe('KEY_MALFORMED');
    });
  });

  describe('when a key string is mangled', () => {
    // The golang.org/x/mod/sumdb/note TestNewVerifier/TestNewSigner manglings: every proper
    // substring and every single-byte increment is rejected.
    const manglings = (key: string): string[] => {
      const out: string[] = [];
      for (let i = 0; i <= key.length; i++) {
        for (let j = i + 1; j <= key.length; j++)
          if (i !== 0 || j !== key.length) out.push(key.slice(i, j));
      }
      for (let i = 0; i < key.length; i++) {
        out.push(key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1));
      }
      return out;
    };

    it('rejects every mangled verifier key with KEY_MALFORMED', () => {
      for (const bad of [...manglings(peter.vkey), ...vectors.badVerifierKeys]) {
        expect(
          codeOf(() => parseVerifierKey(bad)),
          bad,
        ).toBe('KEY_MALFORMED');
      }
    });

    it('rejects every mangled signer key with KEY_MALFORMED', () => {
      for (const bad of manglings(peter.skey)) {
        expect(
          codeOf(() => parseSignerKey(bad)),
          bad,
        ).toBe('KEY_MALFORMED');
      }
    });

    it('rejects a verifier key given as a signer key and the other way round', () => {
      expect(codeOf(() => parseSignerKey(peter.vkey))).toBe('KEY_MALFORMED');
      expect(codeOf(() => parseVerifierKey(peter.skey))).toBe('KEY_MALFORMED');
    });

    it('rejects an upper-case key ID', () => {
      expect(codeOf(() => parseVerifierKey(peter.vkey.replace('c74f20a3', 'C74F20A3')))).toBe(
        'KEY_MALFORMED',
      );
    });

    it('rejects non-string keys', () => {
      expect(codeOf(() => parseVerifierKey(undefined as unknown as string))).toBe('KEY_MALFORMED');
      expect(codeOf(() => parseSignerKey(42 as unknown as string))).toBe('KEY_MALFORMED');
    });
  });

  describe('when generating a key', () => {
    it('round-trips through the signer and verifier key formats', () => {
      const { skey, vkey } = generateLedgerKey('ledger.example/tenant-a');
      expect(skey).toMatch(
        /^PRIVATE\+KEY\+ledger\.example\/tenant-a\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/,
      );
      const signer = parseSignerKey(skey);
      const verifier = parseVerifierKey(vkey);
      expect(formatVerifierKey(verifierFromSigner(signer))).toBe(vkey);
      const note = signNote('hello\n', signer);
      expect(openNote(note, [verifier]).verifiedBy).toEqual(['ledger.example/tenant-a']);
    });

    it('accepts a non-ASCII name', () => {
      const { skey, vkey } = generateLedgerKey('Señor-1');
      expect(
        openNote(signNote('hola\n', parseSignerKey(skey)), [parseVerifierKey(vkey)]).text,
      ).toBe('hola\n');
    });

    it('never exposes the seed when a signer is serialised', () => {
      const { skey } = generateLedgerKey('secretive');
      const seedB64 = skey.split('+').slice(4).join('+');
      const seed = Buffer.from(seedB64, 'base64').subarray(1).toString('base64');
      const signer = parseSignerKey(skey);
      expect(JSON.stringify(signer)).not.toContain(seed);
      expect(JSON.stringify(signer)).not.toContain(seedB64);
    });

    it('generates different keys each time', () => {
      expect(generateLedgerKey('a').vkey).not.toBe(generateLedgerKey('a').vkey);
    });

    for (const name of [
      '',
      'a+b',
      'a b',
      'tab\there',
      'nbsp\u00a0',
      'em\u2003space',
      'nl\n',
      'nul\u0000',
      '\ud800',
    ]) {
      it(`rejects the key name ${JSON.stringify(name)}`, () => {
        expect(codeOf(() => generateLedgerKey(name))).toBe('KEY_MALFORMED');
      });
    }
  });

  describe('when formatting and parsing checkpoints', () => {
    const root = sha256(new TextEncoder().encode('root'));

    it('formats origin, size and base64 root hash as three lines', () => {
      expect(formatCheckpoint({ origin: 'example.com/log', size: 42, rootHash: root })).toBe(
        `example.com/log\n42\n${b64(root)}\n`,
      );
    });

    it('appends extension lines', () => {
      const text = formatCheckpoint({
        origin: 'o',
        size: 0,
        rootHash: root,
        extensions: ['x', 'y z'],
      });
      expect(text).toBe(`o\n0\n${b64(root)}\nx\ny z\n`);
      expect(parseCheckpoint(text).extensions).toEqual(['x', 'y z']);
    });

    it('round-trips sizes 0, 1 and 2^53 - 1', () => {
      for (const size of [0, 1, Number.MAX_SAFE_INTEGER]) {
        const parsed = parseCheckpoint(formatCheckpoint({ origin: 'o', size, rootHash: root }));
        expect(parsed.size).toBe(size);
        expect(b64(parsed.rootHash)).toBe(b64(root));
      }
    });

    it('round-trips a signed checkpoint', () => {
      const note = signCheckpoint({ origin: 'PeterNeumann', size: 7, rootHash: root }, peterSigner);
      const opened = openCheckpoint(note, [peterVerifier], 'PeterNeumann');
      expect(opened).toMatchObject({
        origin: 'PeterNeumann',
        size: 7,
        verifiedBy: ['PeterNeumann'],
      });
      expect(b64(opened.rootHash)).toBe(b64(root));
    });

    it('rejects a checkpoint of another origin', () => {
      const note = signCheckpoint({ origin: 'log-a', size: 7, rootHash: root }, peterSigner);
      expect(codeOf(() => openCheckpoint(note, [peterVerifier], 'log-b'))).toBe(
        'CHECKPOINT_MALFORMED',
      );
    });

    it('rejects a signed note whose text is not a checkpoint', () => {
      expect(codeOf(() => openCheckpoint(peter.signedNote, [peterVerifier]))).toBe(
        'CHECKPOINT_MALFORMED',
      );
    });
  });

  describe('when a checkpoint body is malformed', () => {
    const root = b64(sha256(new Uint8Array(0)));
    const bodies: [string, string][] = [
      ['no final newline', `o\n1\n${root}`],
      ['only two lines', `o\n1\n`],
      ['an empty origin', `\n1\n${root}\n`],
      ['an empty extension line', `o\n1\n${root}\n\n`],
      ['a leading zero', `o\n01\n${root}\n`],
      ['a negative size', `o\n-1\n${root}\n`],
      ['a plus sign', `o\n+1\n${root}\n`],
      ['a decimal point', `o\n1.0\n${root}\n`],
      ['an exponent', `o\n1e3\n${root}\n`],
      ['hex digits', `o\n0x10\n${root}\n`],
      ['spaces around the size', `o\n 1\n${root}\n`],
      ['an empty size', `o\n\n${root}\n`],
      ['a size above 2^53 - 1', `o\n9007199254740992\n${root}\n`],
      ['a huge size', `o\n${'9'.repeat(400)}\n${root}\n`],
      ['a 31-byte root', `o\n1\n${b64(new Uint8Array(31))}\n`],
      ['a 33-byte root', `o\n1\n${b64(new Uint8Array(33))}\n`],
      ['a hex root', `o\n1\n${'00'.repeat(32)}\n`],
      ['non-canonical base64', `o\n1\n${root.slice(0, 42)}V=\n`],
      ['CRLF line endings', `o\r\n1\r\n${root}\r\n`],
      ['a control character in the origin', `o\u0007\n1\n${root}\n`],
    ];
    for (const [name, body] of bodies) {
      it(`rejects ${name}`, () => {
        expect(codeOf(() => parseCheckpoint(body))).toBe('CHECKPOINT_MALFORMED');
      });
    }

    it('rejects bad values when formatting', () => {
      const rootHash = sha256(new Uint8Array(0));
      const bad = [
        { origin: '', size: 1, rootHash },
        { origin: 'a\nb', size: 1, rootHash },
        { origin: 'o', size: -1, rootHash },
        { origin: 'o', size: 1.5, rootHash },
        { origin: 'o', size: 2 ** 53, rootHash },
        { origin: 'o', size: 1, rootHash: rootHash.subarray(1) },
        { origin: 'o', size: 1, rootHash, extensions: [''] },
        { origin: 'o', size: 1, rootHash, extensions: ['a\nb'] },
      ];
      for (const input of bad) {
        expect(
          codeOf(() => formatCheckpoint(input)),
          JSON.stringify(input),
        ).toBe('CHECKPOINT_MALFORMED');
      }
    });
  });
});

describe('nativeEd25519Signer', () => {
  describe('when node:crypto has Ed25519', () => {
    it('signs exactly as @noble/curves does (RFC 8032 is deterministic)', async () => {
      const { ed25519 } = await import('@noble/curves/ed25519.js');
      const { nativeEd25519Signer } = await import('../../../src/ledger/checkpoint.js');
      for (let i = 0; i < 50; i++) {
        const seed = ed25519.utils.randomSecretKey();
        const message = new TextEncoder().encode(`checkpoint ${i}\n${'x'.repeat(i * 7)}`);
        const native = nativeEd25519Signer(seed);
        expect(native).toBeDefined();
        expect(Buffer.from(native?.(message) ?? [])).toEqual(
          Buffer.from(ed25519.sign(message, seed)),
        );
      }
    });
  });
});
