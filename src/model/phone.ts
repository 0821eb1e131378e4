/**
 * Phone numbers read once per process: the dedupe normaliser and the policy's `format: phone`
 * check ask about the same values (often in the same worker, for the same change: dedupe runs
 * first). The answers are libphonenumber-js's — E.164 form, possible, valid — computed by the fast
 * path in phone-fast.ts for plain inputs (digits, an optional `+`, spaces and punctuation; ~1 µs)
 * and by the library itself for anything else (~10 µs). They are kept in one bounded LRU keyed by
 * (default country, text), exactly what a reading depends on, so a cached answer is the answer.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import type { CountryCode } from 'libphonenumber-js';
import { FALLBACK, readPhoneFast } from './phone-fast.js';

export const PHONE_MEMO_MAX = 10_000;

/** What libphonenumber-js answers about a text (`parsePhoneNumberFromString` and its methods). */
export interface PhoneFacts {
  /** `PhoneNumber.number` (`+61298761234`); undefined: libphonenumber-js could not read a number */
  e164: string | undefined;
  /** `PhoneNumber.isPossible()`; false without a number */
  possible: boolean;
  /** `PhoneNumber.isValid()`; false without a number */
  valid: boolean;
}

const NO_NUMBER: PhoneFacts = Object.freeze({ e164: undefined, possible: false, valid: false });

const memo = new Map<string, PhoneFacts>();

/** libphonenumber-js's reading of `text` with `country` as the default region (memoised). */
export function phoneFacts(text: string, country: string | undefined): PhoneFacts {
  const key = `${country ?? ''}\u0000${text}`;
  let facts = memo.get(key);
  if (facts !== undefined) {
    // Least recently used first: re-insert on a hit.
    memo.delete(key);
    memo.set(key, facts);
    return facts;
  }
  facts = readPhone(text, country);
  if (memo.size >= PHONE_MEMO_MAX) {
    const oldest = memo.keys().next();
    if (!oldest.done) memo.delete(oldest.value);
  }
  memo.set(key, facts);
  return facts;
}

/** Whether libphonenumber-js deems `text` a valid number (memoised). */
export function isValidPhoneNumber(text: string, country: string | undefined): boolean {
  return phoneFacts(text, country).valid;
}

function readPhone(text: string, country: string | undefined): PhoneFacts {
  const fast = readPhoneFast(text, country);
  if (fast === undefined) return NO_NUMBER;
  if (fast !== FALLBACK) return fast;
  return readPhoneWithLibrary(text, country);
}

/** The reference path: libphonenumber-js itself (exported for the agreement test and benches). */
export function readPhoneWithLibrary(text: string, country: string | undefined): PhoneFacts {
  try {
    const parsed = parsePhoneNumberFromString(
      text,
      country === undefined ? undefined : { defaultCountry: country as CountryCode },
    );
    if (parsed === undefined) return NO_NUMBER;
    return { e164: parsed.number, possible: parsed.isPossible(), valid: parsed.isValid() };
  } catch {
    // libphonenumber-js throws on some malformed inputs: not a number
    return NO_NUMBER;
  }
}
