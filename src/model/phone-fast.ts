/**
 * A fast reading of plain phone numbers, with the answers libphonenumber-js gives.
 *
 * libphonenumber-js builds a RegExp from a metadata string on every pattern test (`new RegExp('^(?:'
 * + pattern + ')$')`, several per number, some patterns over 1,000 characters), which makes a parse
 * and a validity check cost ~10 µs. Here the same metadata (the library's own `metadata.min.json`,
 * the set its default entry point uses) is compiled once per numbering plan, and the steps the
 * library takes to parse are followed for the common shape of input: ASCII digits, an optional
 * leading `+`, and spaces, brackets, dots, slashes or hyphens between them. Anything else —
 * extensions, letters, other scripts' digits, `tel:` URIs, non-geographic calling codes (+800 …),
 * an unexpected metadata format — answers `FALLBACK`, and the caller asks the library itself.
 *
 * The steps, as libphonenumber-js 1.13 takes them (`parse`, v2 API; an upgrade that changes them
 * fails the agreement test below):
 *  1. `+`: the calling code is the shortest 1–3 digit prefix that has a numbering plan; a `0`
 *     after `+` is no number.
 *  2. No `+`, with a default country: an international (IDD) prefix of that country (`011`, `00`)
 *     makes the rest international, unless the rest starts with `0`; otherwise a number that starts
 *     with the country's calling code but is only valid (or only not too long) without it is read
 *     as international without the `+`; otherwise it is national to the default country.
 *  3. The national (significant) number: the plan's national prefix for parsing (or its national
 *     prefix) is stripped, or rewritten by its transform rule, unless that turns a number that
 *     matched the plan's pattern into one that does not, or leaves a number of an impossible length.
 *  4. The country among those sharing a calling code: the first whose leading digits match, or
 *     (for those without leading digits) whose number types accept the number.
 *  5. A national number of fewer than 2 or more than 17 digits is no number.
 * Valid: the plan (of the country, else of the calling code's main country) has a number type
 * (fixed line, mobile, toll free, …) whose lengths and pattern accept the national number.
 * Possible: the national number's length is one of the plan's possible lengths.
 *
 * test/unit/model/phone-fast.test.ts runs generated numbers for every country through this and
 * through the library and asserts identical answers.
 */
import metadataJson from 'libphonenumber-js/metadata.min.json';

/** What libphonenumber-js reads from a text (`parsePhoneNumberFromString` and its methods). */
export interface PhoneReading {
  /** `PhoneNumber.number`: `+`, calling code, national number */
  e164: string;
  /** `PhoneNumber.isPossible()` */
  possible: boolean;
  /** `PhoneNumber.isValid()` */
  valid: boolean;
}

/** The input is outside what the fast path reads: ask libphonenumber-js. */
export const FALLBACK = Symbol('fallback');

/**
 * libphonenumber-js's answer for `text` with `defaultCountry`, computed here: a reading, undefined
 * when the library reads no number, or FALLBACK when the input needs the library.
 */
export function readPhoneFast(
  text: string,
  defaultCountry: string | undefined,
): PhoneReading | undefined | typeof FALLBACK {
  const plans = getPlans();
  if (plans === undefined) return FALLBACK;
  const input = plainDigits(text);
  if (input === undefined) return FALLBACK;
  // An unsupported default country is ignored by the library, as if none were given.
  const home = defaultCountry === undefined ? undefined : plans.byCountry.get(defaultCountry);
  const found = input.plus
    ? readInternational(plans, input.digits)
    : home === undefined
      ? undefined
      : readNational(plans, input.digits, home);
  if (found === undefined || found === FALLBACK) return found;
  const { callingCode, nationalNumber, country } = found;
  if (nationalNumber.length < MIN_NATIONAL_LENGTH || nationalNumber.length > MAX_NATIONAL_LENGTH) {
    return undefined;
  }
  const plan = country ?? plans.mainPlan(callingCode);
  if (plan === undefined) return FALLBACK;
  return {
    e164: `+${callingCode}${nationalNumber}`,
    possible: checkLength(nationalNumber, plan) === 'IS_POSSIBLE',
    valid: plan.hasTypes ? hasNumberType(nationalNumber, plan) : plan.national.test(nationalNumber),
  };
}

// ---------------------------------------------------------------------------------------------
// Input

/** Longer inputs are refused by the library (TOO_LONG) */
const MAX_INPUT_LENGTH = 250;
const MIN_NATIONAL_LENGTH = 2;
const MAX_NATIONAL_LENGTH = 17;
/** ASCII digits, `+`, and punctuation the library skips (not tabs: it does not skip those) */
const PLAIN = /^[0-9+ ().\-/]+$/;

/**
 * The digits of a plain input and whether it is international, or undefined for anything else. A
 * `+` must come before the first digit and only once (the library reads a number from its first
 * `+` or digit and ignores punctuation); at least 3 digits (fewer are read by other rules).
 */
function plainDigits(text: string): { plus: boolean; digits: string } | undefined {
  if (text.length > MAX_INPUT_LENGTH || !PLAIN.test(text)) return undefined;
  const plusAt = text.indexOf('+');
  let digits = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) digits += text[i];
    else if (c === 43 && (i !== plusAt || digits !== '')) return undefined;
  }
  if (digits.length < 3) return undefined;
  return { plus: plusAt !== -1, digits };
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface Found {
  callingCode: string;
  nationalNumber: string;
  /** the country the number belongs to, when the library names one */
  country: Plan | undefined;
}

/** `digits` followed a `+` (or an IDD prefix). */
function readInternational(plans: Plans, digits: string): Found | undefined | typeof FALLBACK {
  if (digits[0] === '0') return undefined;
  for (let i = 1; i <= MAX_CALLING_CODE_LENGTH && i <= digits.length; i++) {
    const code = digits.slice(0, i);
    if (plans.nonGeographic.has(code)) return FALLBACK;
    const main = plans.mainPlan(code);
    if (main !== undefined) return readSignificant(plans, code, digits.slice(i), main, undefined);
  }
  return undefined;
}

/** `digits` without a `+`, with a default country whose plan is `home`. */
function readNational(
  plans: Plans,
  digits: string,
  home: Plan,
): Found | undefined | typeof FALLBACK {
  const idd = home.idd?.exec(digits)?.[0].length ?? 0;
  if (idd > 0) {
    const rest = digits.slice(idd);
    if (rest !== '' && rest[0] !== '0') return readInternational(plans, rest);
  }
  const code = home.callingCode;
  if (digits.startsWith(code)) {
    // Perhaps an international number typed without its `+`.
    const shorter = digits.slice(code.length);
    const shorterNational = nationalNumberOf(plans, shorter, home);
    const national = nationalNumberOf(plans, digits, home);
    if (
      (!home.national.test(national) && home.national.test(shorterNational)) ||
      checkLength(national, home) === 'TOO_LONG'
    ) {
      const main = plans.mainPlan(code);
      if (main === undefined) return FALLBACK;
      return readSignificant(plans, code, shorter, main, undefined);
    }
  }
  return readSignificant(plans, code, digits, home, home);
}

/** The national number in `plan` and the country among those sharing the calling code. */
function readSignificant(
  plans: Plans,
  callingCode: string,
  digits: string,
  plan: Plan,
  country: Plan | undefined,
): Found | undefined {
  if (digits === '') return undefined;
  const nationalNumber = nationalNumberOf(plans, digits, plan);
  return {
    callingCode,
    nationalNumber,
    country: countryOf(plans, callingCode, nationalNumber) ?? country,
  };
}

/** `digits` without the national prefix, where the library strips it (step 3). */
function nationalNumberOf(plans: Plans, digits: string, plan: Plan): string {
  const stripped = stripNationalPrefix(digits, plan);
  if (stripped === digits) return digits;
  if (plan.national.test(digits) && !plan.national.test(stripped)) return digits;
  const lengthPlan = countryOf(plans, plan.callingCode, stripped) ?? plan;
  const length = checkLength(stripped, lengthPlan);
  if (length === 'TOO_SHORT' || length === 'INVALID_LENGTH') return digits;
  return stripped;
}

function stripNationalPrefix(digits: string, plan: Plan): string {
  if (digits === '' || plan.nationalPrefix === undefined) return digits;
  const match = plan.nationalPrefix.exec(digits);
  if (match === null) return digits;
  const groups = match.length - 1;
  const captured = groups > 0 && Boolean(match[groups]);
  if (plan.transformRule !== undefined && captured) {
    return digits.replace(plan.nationalPrefix, plan.transformRule);
  }
  return digits.slice(match[0].length);
}

/** The country a national number belongs to among those sharing its calling code (step 4). */
function countryOf(plans: Plans, callingCode: string, nationalNumber: string): Plan | undefined {
  const candidates = plans.byCallingCode.get(callingCode);
  if (candidates === undefined) return undefined;
  if (candidates.length === 1) return candidates[0];
  for (const plan of candidates) {
    if (plan.leadingDigits !== undefined) {
      if (nationalNumber !== '' && plan.leadingDigits.test(nationalNumber)) return plan;
    } else if (hasNumberType(nationalNumber, plan)) {
      return plan;
    }
  }
  return undefined;
}

type LengthCheck = 'IS_POSSIBLE' | 'TOO_SHORT' | 'TOO_LONG' | 'INVALID_LENGTH';

function checkLength(nationalNumber: string, plan: Plan): LengthCheck {
  const { length } = nationalNumber;
  const { lengths } = plan;
  const shortest = lengths[0] ?? 0;
  if (length === shortest) return 'IS_POSSIBLE';
  if (length < shortest) return 'TOO_SHORT';
  if ((lengths[lengths.length - 1] ?? 0) < length) return 'TOO_LONG';
  return lengths.includes(length) ? 'IS_POSSIBLE' : 'INVALID_LENGTH';
}

/** Whether some number type of the plan (fixed line, mobile, toll free, …) accepts the number. */
function hasNumberType(nationalNumber: string, plan: Plan): boolean {
  if (!plan.national.test(nationalNumber)) return false;
  for (const type of plan.types) {
    if (!type.lengths.includes(nationalNumber.length)) continue;
    if (type.pattern.test(nationalNumber)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Metadata, compiled once

const MAX_CALLING_CODE_LENGTH = 3;

interface NumberType {
  pattern: RegExp;
  lengths: readonly number[];
}

interface Plan {
  country: string;
  callingCode: string;
  /** the IDD prefix, anchored at the start */
  idd: RegExp | undefined;
  /** the national number pattern, anchored at both ends */
  national: RegExp;
  /** possible lengths of a national number, ascending */
  lengths: readonly number[];
  /** the national prefix for parsing (or the national prefix), anchored at the start */
  nationalPrefix: RegExp | undefined;
  transformRule: string | undefined;
  /** anchored at the start */
  leadingDigits: RegExp | undefined;
  hasTypes: boolean;
  /** the number types that have a pattern */
  types: NumberType[];
}

interface Plans {
  byCountry: Map<string, Plan>;
  /** the countries of a calling code, main country first */
  byCallingCode: Map<string, Plan[]>;
  nonGeographic: Set<string>;
  mainPlan(callingCode: string): Plan | undefined;
}

/**
 * Positions in a metadata v4 numbering plan (libphonenumber-js METADATA.md): calling code, IDD
 * prefix, national number pattern, possible lengths, formats, national prefix, national prefix
 * formatting rule, national prefix for parsing, national prefix transform rule, …, leading digits,
 * types.
 */
const AT = {
  callingCode: 0,
  idd: 1,
  national: 2,
  lengths: 3,
  nationalPrefix: 5,
  nationalPrefixForParsing: 7,
  transformRule: 8,
  leadingDigits: 10,
  types: 11,
} as const;

/** Compiled on first use (null: not yet; undefined: the metadata is not in the expected format). */
let compiled: Plans | undefined | null = null;

function getPlans(): Plans | undefined {
  if (compiled === null) compiled = compilePlans(metadataJson);
  return compiled;
}

const isString = (x: unknown): x is string => typeof x === 'string';
const nonEmptyString = (x: unknown): string | undefined =>
  isString(x) && x !== '' ? x : undefined;
const isLengths = (x: unknown): x is number[] =>
  Array.isArray(x) && x.length > 0 && x.every((n) => Number.isInteger(n));

/** The plans, or undefined (fast path off) when the metadata is not in the expected format. */
function compilePlans(json: unknown): Plans | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const {
    version,
    countries,
    country_calling_codes: codes,
    nonGeographic,
  } = json as Record<string, unknown>;
  if (version !== 4 || typeof countries !== 'object' || countries === null) return undefined;
  if (typeof codes !== 'object' || codes === null) return undefined;
  const byCountry = new Map<string, Plan>();
  for (const [country, raw] of Object.entries(countries)) {
    const plan = compilePlan(country, raw);
    if (plan === undefined) return undefined;
    byCountry.set(country, plan);
  }
  const byCallingCode = new Map<string, Plan[]>();
  for (const [code, list] of Object.entries(codes)) {
    if (!Array.isArray(list) || list.length === 0) return undefined;
    const plans: Plan[] = [];
    for (const country of list) {
      const plan = isString(country) ? byCountry.get(country) : undefined;
      if (plan?.callingCode !== code) return undefined;
      plans.push(plan);
    }
    byCallingCode.set(code, plans);
  }
  return {
    byCountry,
    byCallingCode,
    nonGeographic: new Set(
      typeof nonGeographic === 'object' && nonGeographic !== null ? Object.keys(nonGeographic) : [],
    ),
    mainPlan: (code) => byCallingCode.get(code)?.[0],
  };
}

function compilePlan(country: string, raw: unknown): Plan | undefined {
  if (!Array.isArray(raw)) return undefined;
  const at = (i: number): unknown => raw[i] as unknown;
  const callingCode = at(AT.callingCode);
  const national = at(AT.national);
  const lengths = at(AT.lengths);
  const idd = nonEmptyString(at(AT.idd));
  const prefix =
    nonEmptyString(at(AT.nationalPrefixForParsing)) ?? nonEmptyString(at(AT.nationalPrefix));
  const leadingDigits = nonEmptyString(at(AT.leadingDigits));
  if (!isString(callingCode) || !isString(national) || !isLengths(lengths)) return undefined;
  const rawTypes = at(AT.types);
  const types: NumberType[] = [];
  if (Array.isArray(rawTypes)) {
    // Fixed line, mobile, toll free, premium rate, …: [pattern, lengths?] or 0 when the plan has
    // none. Which type accepts a number does not matter here, only whether one does.
    for (const type of rawTypes as unknown[]) {
      if (!type) continue;
      if (!Array.isArray(type)) return undefined;
      const pattern = nonEmptyString(type[0]);
      if (pattern === undefined) continue;
      const typeLengths = type[1] as unknown;
      types.push({
        pattern: new RegExp(`^(?:${pattern})$`),
        lengths: isLengths(typeLengths) ? typeLengths : lengths,
      });
    }
  } else if (rawTypes) {
    return undefined;
  }
  return {
    country,
    callingCode,
    idd: idd === undefined ? undefined : new RegExp(`^(?:${idd})`),
    national: new RegExp(`^(?:${national})$`),
    lengths,
    nationalPrefix: prefix === undefined ? undefined : new RegExp(`^(?:${prefix})`),
    transformRule: nonEmptyString(at(AT.transformRule)),
    leadingDigits: leadingDigits === undefined ? undefined : new RegExp(`^(?:${leadingDigits})`),
    hasTypes: Array.isArray(rawTypes) && rawTypes.length > 0,
    types,
  };
}
