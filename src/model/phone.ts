/**
 * Phone numbers parsed once per process: the dedupe normaliser and the policy's `format: phone`
 * check ask about the same values (often in the same worker, for the same change: dedupe runs
 * first), and a libphonenumber-js parse costs ~10 µs, an order more than everything else a policy
 * evaluation does. The parse and the answers derived from it are kept in one bounded LRU keyed by
 * (default country, text), exactly what the parse depends on, so a cached answer is the answer.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import type { CountryCode, PhoneNumber } from 'libphonenumber-js';

export const PHONE_MEMO_MAX = 10_000;

export interface PhoneFacts {
  /** undefined: libphonenumber-js could not read a number */
  parsed: PhoneNumber | undefined;
  /** `parsed.isValid()`, computed on first ask */
  valid?: boolean;
}

const memo = new Map<string, PhoneFacts>();

/** The parse of `text` with `country` as the default region (memoised). */
export function phoneFacts(text: string, country: string | undefined): PhoneFacts {
  const key = `${country ?? ''}\u0000${text}`;
  let facts = memo.get(key);
  if (facts !== undefined) {
    // Least recently used first: re-insert on a hit.
    memo.delete(key);
    memo.set(key, facts);
    return facts;
  }
  let parsed: PhoneNumber | undefined;
  try {
    parsed = parsePhoneNumberFromString(
      text,
      country === undefined ? undefined : { defaultCountry: country as CountryCode },
    );
  } catch {
    // libphonenumber-js throws on some malformed inputs: not a number
    parsed = undefined;
  }
  facts = { parsed };
  if (memo.size >= PHONE_MEMO_MAX) {
    const oldest = memo.keys().next();
    if (!oldest.done) memo.delete(oldest.value);
  }
  memo.set(key, facts);
  return facts;
}

/** Whether libphonenumber-js deems `text` a valid number (memoised). */
export function isValidPhoneNumber(text: string, country: string | undefined): boolean {
  const facts = phoneFacts(text, country);
  facts.valid ??= facts.parsed?.isValid() === true;
  return facts.valid;
}
