import { describe, expect, it } from 'vitest';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import type { CountryCode } from 'libphonenumber-js';
import { PHONE_MEMO_MAX, isValidPhoneNumber, phoneFacts } from '../../../src/model/phone.js';
import { normalisePhone } from '../../../src/dedupe/normalise.js';

const SAMPLES: [string, string | undefined][] = [
  ['+1 650-253-0000', 'US'],
  ['+1 650-253-0000', undefined],
  ['(650) 253-0000', 'US'],
  ['(650) 253-0000', 'GB'],
  ['020 7946 0958', 'GB'],
  ['+44 20 7946 0958', 'US'],
  ['+1 555-010-0000', 'US'],
  ['12', 'US'],
  ['+999 1234', undefined],
  ['not a number', 'US'],
  ['', 'US'],
  // Left to libphonenumber-js by the fast path: an extension, a non-geographic code, other digits
  ['+1 650-253-0000 ext. 12', 'US'],
  ['+800 1234 5678', undefined],
  ['（６５０）２５３－００００', 'US'],
];

describe('phoneFacts', () => {
  describe('when asked twice', () => {
    it('answers what libphonenumber-js answers, from one parse', () => {
      for (const [text, country] of SAMPLES) {
        const direct = parsePhoneNumberFromString(
          text,
          country === undefined ? undefined : { defaultCountry: country as CountryCode },
        );
        const first = phoneFacts(text, country);
        expect(first.e164, `${text} ${country}`).toBe(direct?.number);
        expect(first.possible, `${text} ${country}`).toBe(direct?.isPossible() === true);
        expect(isValidPhoneNumber(text, country), `${text} ${country}`).toBe(
          direct?.isValid() === true,
        );
        expect(phoneFacts(text, country)).toBe(first);
      }
    });
  });

  describe('when the default country differs', () => {
    it('keeps separate answers (a national number depends on it)', () => {
      expect(isValidPhoneNumber('(650) 253-0000', 'US')).toBe(true);
      expect(isValidPhoneNumber('(650) 253-0000', 'GB')).toBe(false);
    });
  });

  describe('when more values than the bound pass', () => {
    it('forgets the least recently used, not a recently used one', () => {
      const kept = phoneFacts('+1 650-253-0000', 'US');
      const unused = phoneFacts('+1 650-253-0001', 'US');
      for (let i = 0; i < PHONE_MEMO_MAX; i++) {
        phoneFacts(`+1 415-555-${String(i).padStart(4, '0')}`, 'US');
        if (i % 1000 === 0) phoneFacts('+1 650-253-0000', 'US');
      }
      expect(phoneFacts('+1 650-253-0000', 'US')).toBe(kept);
      // Read anew (another object), to the same answer.
      const again = phoneFacts('+1 650-253-0001', 'US');
      expect(again).not.toBe(unused);
      expect(again).toEqual(unused);
    });
  });

  describe('when the dedupe normaliser parsed a value first', () => {
    it('the policy check reuses that parse', () => {
      const text = '+1 212-555-0147';
      expect(normalisePhone(text, 'US')).toBe('+12125550147');
      const facts = phoneFacts(text, 'US');
      expect(isValidPhoneNumber(text, 'US')).toBe(
        parsePhoneNumberFromString(text, 'US')?.isValid() === true,
      );
      expect(phoneFacts(text, 'US')).toBe(facts);
    });
  });
});
