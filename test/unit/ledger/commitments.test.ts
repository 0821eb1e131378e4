import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  commitmentMatches,
  fieldTextLengths,
  packTexts,
  prepareChange,
  SALT_BYTES,
  writeFieldTexts,
} from '../../../src/ledger/block.js';
import { canonicalize, sortedKeys } from '../../../src/ledger/canonical.js';
import { commitment, sha256Reference, toHex } from '../../../src/ledger/hash.js';
import { nativeAddon, nativeBackend } from '../../../src/native/addon.js';
import type { NativeAddon } from '../../../src/native/addon.js';
import { seededRandom } from '../../../src/util/seeded-random.js';
import { contactChange } from '../../helpers/ledger.js';

const nativeOff = process.env.CRM_LEDGER_NATIVE === 'off';
if (!nativeOff && nativeAddon === undefined) throw new Error(nativeBackend.detail);

/** Fields with assorted names and values: ASCII, 2-, 3- and 4-byte UTF-8, long, empty, nested. */
function sampleFields(seed: number, count: number): Record<string, unknown> {
  const rand = seededRandom(seed);
  const pieces = ['a', 'Z', '0', ' ', 'é', '€', '😀', '\u0007', '"', '\\', 'ß'];
  const text = (max: number) => {
    let s = '';
    const n = Math.floor(rand() * max);
    for (let i = 0; i < n; i++) s += pieces[Math.floor(rand() * pieces.length)] as string;
    return s;
  };
  const fixed: unknown[] = [null, true, 0, -1.5e-7, '', 'x'.repeat(5000), { a: [1, 'é'] }];
  const fields: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const value =
      i < fixed.length
        ? fixed[i]
        : rand() < 0.2
          ? Math.floor(rand() * 1e9)
          : text(rand() < 0.1 ? 900 : 30);
    fields[`${text(6)}f${i}`] = value;
  }
  return fields;
}

const paths: [string, NativeAddon | undefined][] = [
  ['the native addon', nativeAddon],
  ['node:crypto', undefined],
];

describe.each(paths)('field texts through %s', (name, native) => {
  // The addon is absent only with CRM_LEDGER_NATIVE=off (checked above): then its row is skipped.
  const run = name === 'the native addon' && native === undefined ? it.skip : it;

  run('are the canonical JSON of the @noble/hashes commitments and of the openings', () => {
    for (const count of [0, 1, 2, 15, 64, 300]) {
      const fields = sampleFields(count + name.length, count);
      const names = sortedKeys(fields);
      const salts = randomBytes(count * SALT_BYTES);
      const nameTexts = names.map((n) => canonicalize(n));
      const valueTexts = names.map((n) => canonicalize(fields[n]));
      const namesCopy = packTexts(nameTexts, count, Buffer.alloc(16));
      const packedValues = packTexts(valueTexts, count, Buffer.alloc(16));
      const lengths = fieldTextLengths(namesCopy.ends, packedValues.ends);
      // Both texts inside a larger buffer, with a gap: nothing outside them may change.
      const out = Buffer.alloc(lengths.fields + lengths.vault + 40, 0xee);
      const fieldsAt = 7;
      const vaultAt = fieldsAt + lengths.fields + 13;
      writeFieldTexts(namesCopy, packedValues, salts, out, fieldsAt, vaultAt, native);

      const salt = (i: number) => salts.subarray(i * SALT_BYTES, (i + 1) * SALT_BYTES);
      const commitments: Record<string, string> = {};
      const openings: Record<string, { salt: string; value: unknown }> = {};
      names.forEach((n, i) => {
        const value = Buffer.from(valueTexts[i] as string, 'utf8');
        commitments[n] = toHex(commitment(salt(i), value, sha256Reference));
        openings[n] = { salt: toHex(salt(i)), value: fields[n] };
      });
      const fieldsText = out.toString('utf8', fieldsAt, fieldsAt + lengths.fields);
      const vaultText = out.toString('utf8', vaultAt, vaultAt + lengths.vault);
      expect(fieldsText, `${count} fields`).toBe(canonicalize(commitments));
      expect(vaultText, `${count} fields`).toBe(canonicalize({ fields: openings, v: 1 }));
      const untouched = [
        ...out.subarray(0, fieldsAt),
        ...out.subarray(fieldsAt + lengths.fields, vaultAt),
        ...out.subarray(vaultAt + lengths.vault),
      ];
      expect(untouched.every((b) => b === 0xee)).toBe(true);
    }
  });

  run('refuses salts or values that do not match the names', () => {
    const copy = packTexts(['"a"', '"b"'], 2, Buffer.alloc(8));
    const values = packTexts(['1', '2'], 2, Buffer.alloc(8));
    const out = Buffer.alloc(1024);
    expect(() => writeFieldTexts(copy, values, randomBytes(31), out, 0, 512, native)).toThrow(
      RangeError,
    );
    const one = { bytes: values.bytes, ends: values.ends.slice(0, 1) };
    expect(() => writeFieldTexts(copy, one, randomBytes(32), out, 0, 512, native)).toThrow(
      RangeError,
    );
  });
});

describe('packTexts', () => {
  it('gives each text its UTF-8 bytes, ASCII or not, and grows past the buffer given', () => {
    const texts = ['"a"', '"é€😀"', '12', '"' + 'ü'.repeat(3000) + '"', 'null'];
    const small = Buffer.alloc(8);
    const packed = packTexts(texts, texts.length, small);
    expect(packed.bytes).not.toBe(small);
    let start = 0;
    texts.forEach((t, i) => {
      expect(packed.bytes.toString('utf8', start, packed.ends[i])).toBe(t);
      start = packed.ends[i] as number;
    });
    expect(packed.ends).toHaveLength(texts.length);
  });
});

describe('prepareChange commitments', () => {
  it('open with the salts and values of the vault entry, for non-ASCII values too', () => {
    const request = contactChange('hubspot:1234', 'c1');
    request.event.fields = { ...request.event.fields, city: 'Zürich 😀', note: 'a"b\\c', n: 42 };
    const prepared = prepareChange(request);
    const vault = JSON.parse(prepared.vault.toString('utf8')) as {
      fields: Record<string, { salt: string; value: unknown }>;
    };
    const block = Buffer.concat([prepared.canon.head, prepared.canon.mid]).toString('utf8');
    const fields = JSON.parse(
      block.slice(block.indexOf('"fields":') + 9, block.indexOf(',"kind"')),
    ) as Record<string, string>;
    expect(Object.keys(fields).sort()).toEqual(Object.keys(request.event.fields).sort());
    for (const [field, c] of Object.entries(fields)) {
      const opening = vault.fields[field] as { salt: string; value: unknown };
      expect(opening.value).toEqual(request.event.fields[field]);
      expect(commitmentMatches(c, opening.salt, opening.value), field).toBe(true);
    }
    // Salts are fresh per field.
    expect(new Set(Object.values(vault.fields).map((f) => f.salt)).size).toBe(
      Object.keys(fields).length,
    );
  });
});
