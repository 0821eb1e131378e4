import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  commitmentsHex,
  commitmentMatches,
  prepareChange,
  SALT_BYTES,
} from '../../../src/ledger/block.js';
import { canonicalize } from '../../../src/ledger/canonical.js';
import { commitment, sha256Reference, toHex } from '../../../src/ledger/hash.js';
import { nativeAddon, nativeBackend } from '../../../src/native/addon.js';
import type { NativeAddon } from '../../../src/native/addon.js';
import { seededRandom } from '../../../src/util/seeded-random.js';
import { contactChange } from '../../helpers/ledger.js';

const nativeOff = process.env.CRM_LEDGER_NATIVE === 'off';
if (!nativeOff && nativeAddon === undefined) throw new Error(nativeBackend.detail);

/** Canonical JSON texts of assorted values: ASCII, 2-, 3- and 4-byte UTF-8, long, empty. */
function sampleValues(seed: number, count: number): string[] {
  const rand = seededRandom(seed);
  const pieces = ['a', 'Z', '0', ' ', 'é', '€', '😀', '\u0007', '"', '\\', 'ß'];
  const values: unknown[] = [null, true, 0, -1.5e-7, '', 'x'.repeat(5000), { a: [1, 'é'] }];
  while (values.length < count) {
    let s = '';
    const n = Math.floor(rand() * (rand() < 0.1 ? 900 : 30));
    for (let i = 0; i < n; i++) s += pieces[Math.floor(rand() * pieces.length)] as string;
    values.push(rand() < 0.2 ? Math.floor(rand() * 1e9) : s);
  }
  return values.slice(0, count).map((v) => canonicalize(v));
}

/** The reference: hash.ts `commitment` with @noble/hashes, one value at a time. */
function reference(values: readonly string[], salts: Uint8Array): string {
  return values
    .map((v, i) =>
      toHex(
        commitment(
          salts.subarray(i * SALT_BYTES, (i + 1) * SALT_BYTES),
          Buffer.from(v, 'utf8'),
          sha256Reference,
        ),
      ),
    )
    .join('');
}

const paths: [string, NativeAddon | undefined][] = [
  ['the native addon', nativeAddon],
  ['node:crypto', undefined],
];

describe.each(paths)('field commitments through %s', (name, native) => {
  // The addon is absent only with CRM_LEDGER_NATIVE=off (checked above): then its row is skipped.
  const run = name === 'the native addon' && native === undefined ? it.skip : it;

  run('gives the @noble/hashes commitment of each value, ASCII or not, any count', () => {
    for (const count of [0, 1, 2, 15, 64, 300]) {
      const values = sampleValues(count + name.length, count);
      const salts = randomBytes(count * SALT_BYTES);
      const hexes = commitmentsHex(values, count, salts, native);
      expect(hexes).toHaveLength(64 * count);
      expect(hexes).toBe(reference(values, salts));
    }
  });

  run('hashes only the first n values of a longer array, and salts as given', () => {
    const values = sampleValues(7, 20);
    const salts = randomBytes(12 * SALT_BYTES);
    expect(commitmentsHex(values, 12, salts, native)).toBe(reference(values.slice(0, 12), salts));
    salts[SALT_BYTES * 11] = (salts[SALT_BYTES * 11] as number) ^ 1;
    const changed = commitmentsHex(values, 12, salts, native);
    expect(changed.slice(0, 64 * 11)).toBe(reference(values.slice(0, 11), salts));
    expect(changed.slice(64 * 11)).toBe(reference(values.slice(0, 12), salts).slice(64 * 11));
  });

  run('refuses salts of the wrong length', () => {
    expect(() => commitmentsHex(['1', '2'], 2, randomBytes(31), native)).toThrow(RangeError);
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
