/**
 * Phone numbers read once per process: the dedupe normaliser and the policy's `format: phone`
 * check ask about the same values (often in the same worker, for the same change: dedupe runs
 * first). The answers are libphonenumber-js's — E.164 form, possible, valid — computed by the fast
 * path in phone-fast.ts for plain inputs (digits, an optional `+`, spaces and punctuation; ~1 µs)
 * and by the library itself for anything else (~10 µs). They are kept in one bounded memo keyed by
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

/**
 * The memo: two generations, the answers used since the last turnover and those of the one before
 * (a hit there moves the answer into the current one); when the current generation is full it
 * becomes the old one and the oldest is dropped whole. At most PHONE_MEMO_MAX answers, and every
 * answer used within the last PHONE_MEMO_MAX / 2 new ones is kept. Not a Map with delete-oldest:
 * V8 leaves a deleted Map entry as a hole that `keys().next()` walks over until the next rehash,
 * which made each eviction cost ~15 µs at 10,000 entries, more than the parse it saves.
 */
const GENERATION_MAX = PHONE_MEMO_MAX / 2;
let current = new Map<string, PhoneFacts>();
let previous = new Map<string, PhoneFacts>();

function remember(key: string, facts: PhoneFacts): void {
  if (current.size >= GENERATION_MAX) {
    previous = current;
    current = new Map();
  }
  current.set(key, facts);
}

/** libphonenumber-js's reading of `text` with `country` as the default region (memoised). */
export function phoneFacts(text: string, country: string | undefined): PhoneFacts {
  const key = `${country ?? ''}\u0000${text}`;
  let facts = current.get(key);
  if (facts !== undefined) return facts;
  facts = previous.get(key) ?? readPhone(text, country);
  remember(key, facts);
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
