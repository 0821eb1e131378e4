/**
 * Field normalisers: total functions from whatever a CRM or a CSV holds to a comparable form, or
 * `undefined` when nothing usable is left. Pure (no I/O); phone numbers use libphonenumber-js.
 */
import type { CountryCode } from 'libphonenumber-js';
import { phoneFacts } from '../model/phone.js';
import { formalFirstName } from './nicknames.js';

const SPECIAL_LETTERS: Readonly<Record<string, string>> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  ł: 'l',
  đ: 'd',
  ð: 'd',
  þ: 'th',
  ı: 'i',
};

/**
 * Lower case, accents removed (NFKD, combining marks dropped), letters that do not decompose
 * spelled out (ß → ss), everything but [a-z0-9] turned into single spaces, trimmed.
 */
export function foldText(value: string): string {
  let s = value.toLowerCase();
  // Fast path: plain ASCII needs no Unicode work.
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(s)) {
    s = s.normalize('NFKD').replace(/\p{M}+/gu, '');
    s = s.replace(/[ßæœøłđðþı]/g, (c) => SPECIAL_LETTERS[c] ?? c);
  }
  return s
    .replace(/[^a-z0-9]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
}

// Apostrophes join (o'brien → obrien) rather than split: people type both.
const APOSTROPHES = /['’`´]/g;

const NAME_TITLES = new Set([
  'mr',
  'mrs',
  'ms',
  'miss',
  'mx',
  'dr',
  'prof',
  'professor',
  'sir',
  'dame',
  'lady',
  'lord',
  'rev',
  'fr',
  'herr',
  'frau',
  'mme',
  'mlle',
  'm',
  'sr',
  'jr',
  'snr',
  'jnr',
  'ii',
  'iii',
  'iv',
  'phd',
  'md',
  'esq',
]);

/** A person's name part: folded, apostrophes joined, titles and generational suffixes dropped. */
export function normaliseName(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const tokens = foldText(value.replace(APOSTROPHES, '')).split(' ');
  const kept = tokens.filter((t) => t !== '' && !NAME_TITLES.has(t));
  // A name that is only a title ("Dr") is no name.
  return kept.length === 0 ? undefined : kept.join(' ');
}

/** The formal form of a given name's first token (Bob → robert); the rest is kept. */
export function formalName(normalisedFirstName: string): string {
  const space = normalisedFirstName.indexOf(' ');
  if (space < 0) return formalFirstName(normalisedFirstName);
  return `${formalFirstName(normalisedFirstName.slice(0, space))}${normalisedFirstName.slice(space)}`;
}

// ---------------------------------------------------------------------------------------------
// Email

/** Providers that ignore dots in the local part and everything after `+` (Gmail's documented rule). */
const DOTLESS_PLUS_PROVIDERS = new Set(['gmail.com']);
/** Providers that deliver `local+tag@` to `local@` but where dots are significant. */
const PLUS_PROVIDERS = new Set([
  'outlook.com',
  'hotmail.com',
  'hotmail.co.uk',
  'live.com',
  'msn.com',
  'icloud.com',
  'me.com',
  'mac.com',
  'protonmail.com',
  'proton.me',
  'pm.me',
  'fastmail.com',
  'yandex.ru',
  'zoho.com',
]);
/** Domains that are aliases of one mailbox namespace. */
const DOMAIN_ALIASES: Readonly<Record<string, string>> = { 'googlemail.com': 'gmail.com' };

/**
 * Common mistyped webmail domains. An explicit list, not "edit distance 1 from gmail.com": mail.com,
 * gmx.com and ymail.com are real providers one edit away from a big one.
 */
const DOMAIN_TYPOS: Readonly<Record<string, string>> = {
  'gmial.com': 'gmail.com',
  'gmai.com': 'gmail.com',
  'gmal.com': 'gmail.com',
  'gmaill.com': 'gmail.com',
  'gmail.co': 'gmail.com',
  'gmail.cm': 'gmail.com',
  'gmail.om': 'gmail.com',
  'gmail.con': 'gmail.com',
  'gmail.cmo': 'gmail.com',
  'gamil.com': 'gmail.com',
  'gnail.com': 'gmail.com',
  'gmeil.com': 'gmail.com',
  'gmail.comm': 'gmail.com',
  'hotmial.com': 'hotmail.com',
  'hotmal.com': 'hotmail.com',
  'hotmai.com': 'hotmail.com',
  'hotmil.com': 'hotmail.com',
  'hotamil.com': 'hotmail.com',
  'hotmail.co': 'hotmail.com',
  'hotmail.con': 'hotmail.com',
  'hotnail.com': 'hotmail.com',
  'yaho.com': 'yahoo.com',
  'yahooo.com': 'yahoo.com',
  'yhoo.com': 'yahoo.com',
  'yahoo.co': 'yahoo.com',
  'yahoo.con': 'yahoo.com',
  'outlok.com': 'outlook.com',
  'outloo.com': 'outlook.com',
  'outlook.co': 'outlook.com',
  'outlook.con': 'outlook.com',
  'iclod.com': 'icloud.com',
  'icloud.co': 'icloud.com',
};

/**
 * Lower case, domain typos fixed, provider rules applied (Gmail: no dots, no +tag). `undefined`
 * when the value is not an address (no `@`, empty local part or domain).
 */
export function normaliseEmail(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let s = value.trim().toLowerCase();
  // "Jane Doe <jane@x.com>" and "mailto:" forms
  const angle = /<([^>]+)>/.exec(s);
  if (angle?.[1] !== undefined) s = angle[1].trim();
  if (s.startsWith('mailto:')) s = s.slice(7);
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1 || /\s/.test(s)) return undefined;
  let local = s.slice(0, at);
  let domain = s.slice(at + 1).replace(/\.+$/, '');
  if (!domain.includes('.')) return undefined;
  domain = DOMAIN_TYPOS[domain] ?? domain;
  domain = DOMAIN_ALIASES[domain] ?? domain;
  if (DOTLESS_PLUS_PROVIDERS.has(domain)) {
    local = local.split('+')[0]?.replace(/\./g, '') ?? '';
  } else if (PLUS_PROVIDERS.has(domain)) {
    local = local.split('+')[0] ?? '';
  }
  if (local === '') return undefined;
  return `${local}@${domain}`;
}

/** Webmail domains: an address there says nothing about the employer (company matching). */
export const FREE_MAIL_DOMAINS: ReadonlySet<string> = new Set([
  'gmail.com',
  'yahoo.com',
  'hotmail.com',
  'outlook.com',
  'live.com',
  'msn.com',
  'aol.com',
  'icloud.com',
  'me.com',
  'mail.com',
  'gmx.com',
  'gmx.de',
  'web.de',
  'yandex.ru',
  'protonmail.com',
  'proton.me',
  'zoho.com',
  'ymail.com',
  'bigpond.com',
  'hotmail.co.uk',
  'yahoo.co.uk',
]);

// ---------------------------------------------------------------------------------------------
// Phone

/**
 * E.164 (`+61298761234`) when libphonenumber-js can place the number with the record's country
 * (or the `+` prefix); otherwise the bare digits (at least 6), so that two records typed the same
 * odd way still agree. Extensions are dropped: staff on one switchboard share the main number,
 * which the scorer treats as weak evidence anyway.
 */
export function normalisePhone(
  value: string | undefined,
  country: string | undefined,
): string | undefined {
  if (value === undefined) return undefined;
  const s = value.trim();
  if (s === '') return undefined;
  const cc = isCountryCode(country) ? country : undefined;
  const withoutExt = s.replace(/\s*(?:ext\.?|x|#)\s*\d+\s*$/i, '');
  // Memoised, and shared with the policy's phone check (model/phone.ts); a parse that throws is
  // no number, and falls through to the digits.
  const { e164, possible } = phoneFacts(withoutExt, cc);
  if (possible && e164 !== undefined) return e164;
  const digits = withoutExt.replace(/\D/g, '');
  return digits.length >= 6 ? digits : undefined;
}

function isCountryCode(value: string | undefined): value is CountryCode {
  return value !== undefined && /^[A-Z]{2}$/.test(value);
}

// ---------------------------------------------------------------------------------------------
// Country, company, address

const COUNTRY_NAMES: Readonly<Record<string, string>> = {
  australia: 'AU',
  'united states': 'US',
  'united states of america': 'US',
  usa: 'US',
  america: 'US',
  'united kingdom': 'GB',
  uk: 'GB',
  'great britain': 'GB',
  england: 'GB',
  scotland: 'GB',
  wales: 'GB',
  germany: 'DE',
  deutschland: 'DE',
  france: 'FR',
  spain: 'ES',
  espana: 'ES',
  italy: 'IT',
  italia: 'IT',
  netherlands: 'NL',
  'the netherlands': 'NL',
  holland: 'NL',
  belgium: 'BE',
  switzerland: 'CH',
  austria: 'AT',
  ireland: 'IE',
  canada: 'CA',
  'new zealand': 'NZ',
  india: 'IN',
  brazil: 'BR',
  brasil: 'BR',
  mexico: 'MX',
  japan: 'JP',
  sweden: 'SE',
  norway: 'NO',
  denmark: 'DK',
  finland: 'FI',
  poland: 'PL',
  portugal: 'PT',
  singapore: 'SG',
  'south africa': 'ZA',
};

/** ISO 3166-1 alpha-2 (upper case) from a code or a common English/native name. */
export function normaliseCountry(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const folded = foldText(value);
  if (folded === '') return undefined;
  if (/^[a-z]{2}$/.test(folded)) return folded === 'uk' ? 'GB' : folded.toUpperCase();
  return COUNTRY_NAMES[folded] ?? folded;
}

/** Legal-form words dropped from company names (English, German, French, Dutch, Nordic, …). */
const LEGAL_SUFFIXES = new Set([
  'inc',
  'incorporated',
  'corp',
  'corporation',
  'co',
  'company',
  'ltd',
  'limited',
  'llc',
  'llp',
  'lp',
  'plc',
  'pty',
  'pte',
  'gmbh',
  'mbh',
  'ag',
  'kg',
  'ug',
  'ohg',
  'ev',
  'sa',
  'sas',
  'sarl',
  'srl',
  'spa',
  'sl',
  'bv',
  'nv',
  'ab',
  'as',
  'asa',
  'oy',
  'oyj',
  'aps',
  'kk',
  'group',
  'holdings',
]);

/** A company name without legal form, punctuation, accents or a leading "the"; & → and. */
export function normaliseCompany(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // Dotted abbreviations first (L.L.C., S.A., G.m.b.H.) so that they fold to one token.
  const undotted = value.replace(/\b((?:[A-Za-z]\.){2,})/g, (m) => m.replace(/\./g, ''));
  let tokens = foldText(undotted.replace(/&/g, ' and ').replace(APOSTROPHES, '')).split(' ');
  tokens = tokens.filter((t) => t !== '');
  if (tokens[0] === 'the' && tokens.length > 1) tokens = tokens.slice(1);
  // Strip legal forms from the end only ("AS Roma" keeps its AS), but never to nothing.
  // ("GmbH & Co. KG": the '&' between legal forms goes with them.)
  let stripped = false;
  while (tokens.length > 1) {
    const last = tokens[tokens.length - 1] as string;
    if (LEGAL_SUFFIXES.has(last) || (stripped && last === 'and')) {
      tokens.pop();
      stripped = true;
    } else break;
  }
  return tokens.length === 0 ? undefined : tokens.join(' ');
}

/** A web domain from a URL or bare host: lower case, no scheme, path or `www.`. */
export function normaliseDomain(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const s = value
    .trim()
    .toLowerCase()
    .replace(/^[a-z]+:\/\//, '')
    .replace(/[/?#].*$/, '')
    .replace(/^www\./, '')
    .replace(/:\d+$/, '');
  return /^[a-z0-9.-]+\.[a-z]{2,}$/.test(s) ? s : undefined;
}

const STREET_WORDS: Readonly<Record<string, string>> = {
  street: 'st',
  str: 'st',
  road: 'rd',
  avenue: 'ave',
  av: 'ave',
  place: 'pl',
  drive: 'dr',
  court: 'ct',
  crescent: 'cres',
  cresent: 'cres',
  circuit: 'cct',
  close: 'cl',
  lane: 'ln',
  terrace: 'tce',
  parade: 'pde',
  highway: 'hwy',
  boulevard: 'blvd',
  square: 'sq',
  parkway: 'pkwy',
  grove: 'gr',
  way: 'wy',
  north: 'n',
  south: 's',
  east: 'e',
  west: 'w',
  apartment: 'apt',
  unit: 'u',
  flat: 'u',
  suite: 'ste',
  level: 'lvl',
  floor: 'fl',
  mount: 'mt',
  saint: 'st',
};

/** A street line: folded, street-type and direction words abbreviated (Street → st). */
export function normaliseStreet(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const folded = foldText(value.replace(APOSTROPHES, ''));
  if (folded === '') return undefined;
  return folded
    .split(' ')
    .map((t) => STREET_WORDS[t] ?? t)
    .join(' ');
}

/** A locality (city, suburb) or region: folded. */
export function normalisePlace(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const folded = foldText(value.replace(APOSTROPHES, ''));
  return folded === '' ? undefined : folded;
}

const REGIONS: Readonly<Record<string, string>> = {
  'new south wales': 'nsw',
  victoria: 'vic',
  queensland: 'qld',
  'western australia': 'wa',
  'south australia': 'sa',
  tasmania: 'tas',
  'australian capital territory': 'act',
  'northern territory': 'nt',
  california: 'ca',
  'new york': 'ny',
  texas: 'tx',
  florida: 'fl',
  washington: 'wa',
  massachusetts: 'ma',
  illinois: 'il',
};

/** A state or region: folded, common full names abbreviated (New South Wales → nsw). */
export function normaliseState(value: string | undefined): string | undefined {
  const folded = normalisePlace(value);
  return folded === undefined ? undefined : (REGIONS[folded] ?? folded);
}

/** Upper case without spaces or dashes; US ZIP+4 cut to the 5-digit ZIP. */
export function normalisePostcode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const s = value.toUpperCase().replace(/[\s-]+/g, '');
  if (s === '') return undefined;
  if (/^\d{9}$/.test(s) && /^\d{5}[\s-]\d{4}$/.test(value.trim())) return s.slice(0, 5);
  return /^[A-Z0-9]{2,10}$/.test(s) ? s : undefined;
}

/** Letters and digits only, upper case: "123-45-6789" and "123 45 6789" agree. */
export function normaliseNationalId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const s = value.toUpperCase().replace(/[^A-Z0-9]/g, '');
  return s === '' ? undefined : s;
}

// ---------------------------------------------------------------------------------------------
// Dates of birth

const MONTHS: Readonly<Record<string, number>> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  sept: 9,
  oct: 10,
  nov: 11,
  dec: 12,
};

/** Countries that write dates month first (8/3/1980 = August 3rd). */
const MONTH_FIRST_COUNTRIES = new Set(['US', 'PH', 'FM', 'MH', 'PW']);

function ymd(y: number, m: number, d: number): string | undefined {
  if (m < 1 || m > 12 || d < 1 || d > 31 || y < 1000 || y > 9999) return undefined;
  return `${y}${String(m).padStart(2, '0')}${String(d).padStart(2, '0')}`;
}

function fullYear(y: string): number {
  if (y.length !== 2) return Number(y);
  // Two-digit years of birth: 00-29 → 2000s, otherwise 1900s.
  const n = Number(y);
  return n < 30 ? 2000 + n : 1900 + n;
}

/**
 * `YYYYMMDD`, from YYYYMMDD, YYYY-MM-DD (ISO, also with a time), DD/MM/YYYY or MM/DD/YYYY (month
 * first for US-style countries, or when the first number cannot be a month), D.M.YYYY,
 * "12 Mar 1980", "March 12, 1980" or a Salesforce/HubSpot epoch-millisecond number. A date whose
 * day or month is out of range (a typo) is not invented: it is returned as its 8 digits when it
 * came as 8 digits, so that an edit-distance comparison can still use it; otherwise undefined.
 */
export function normaliseBirthdate(
  value: string | undefined,
  country?: string,
): string | undefined {
  if (value === undefined) return undefined;
  const s = value.trim().toLowerCase();
  if (s === '') return undefined;
  let m: RegExpExecArray | null;
  if ((m = /^(\d{4})(\d{2})(\d{2})$/.exec(s))) {
    return ymd(Number(m[1]), Number(m[2]), Number(m[3])) ?? s;
  }
  if ((m = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[t ].*)?$/.exec(s))) {
    return ymd(Number(m[1]), Number(m[2]), Number(m[3]));
  }
  if ((m = /^(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{2}|\d{4})$/.exec(s))) {
    const a = Number(m[1]);
    const b = Number(m[2]);
    const y = fullYear(m[3] as string);
    const monthFirst = (MONTH_FIRST_COUNTRIES.has(country ?? '') && a <= 12) || b > 12;
    return monthFirst ? ymd(y, a, b) : ymd(y, b, a);
  }
  if ((m = /^(\d{1,2})(?:st|nd|rd|th)?[ -]([a-z]{3,9})\.?,?[ -](\d{4})$/.exec(s))) {
    const month = MONTHS[(m[2] as string).slice(0, (m[2] as string) === 'sept' ? 4 : 3)];
    return month === undefined ? undefined : ymd(Number(m[3]), month, Number(m[1]));
  }
  if ((m = /^([a-z]{3,9})\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})$/.exec(s))) {
    const month = MONTHS[(m[1] as string).slice(0, 3)];
    return month === undefined ? undefined : ymd(Number(m[3]), month, Number(m[2]));
  }
  if (/^-?\d{9,13}$/.test(s)) {
    // epoch milliseconds (HubSpot date properties are midnight UTC in ms)
    const d = new Date(Number(s));
    if (!Number.isNaN(d.getTime())) {
      return ymd(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
    }
  }
  return undefined;
}
