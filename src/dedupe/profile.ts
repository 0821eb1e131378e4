/**
 * The normalised profile of one CRM record and its blocking keys. A profile is what the index
 * stores per record and what the scorer compares; it is derived from the raw profile fields
 * (`fields.ts`) by the normalisers, so that candidates need no re-normalisation.
 */
import { phonetic } from './compare.js';
import type { IdentityKind, RawProfile } from './fields.js';
import {
  FREE_MAIL_DOMAINS,
  formalName,
  normaliseBirthdate,
  normaliseCompany,
  normaliseCountry,
  normaliseDomain,
  normaliseEmail,
  normaliseName,
  normaliseNationalId,
  normalisePhone,
  normalisePlace,
  normalisePostcode,
  normaliseState,
  normaliseStreet,
} from './normalise.js';

/** Short property names: a profile is stored once per record (memory per 100k records counts). */
export interface Profile {
  /** identity kind: p(erson) or c(ompany) */
  k: 'p' | 'c';
  /** first name, normalised */
  fn?: string;
  /** first name, formal form (Bob → robert) */
  ff?: string;
  ln?: string;
  em?: string;
  /** phones, E.164 where possible (phone and mobile) */
  ph?: string[];
  co?: string;
  /** street line (with the street number when given apart) */
  st?: string;
  /** street number when given apart (FEBRL) */
  sn?: string;
  /** second address line */
  s2?: string;
  ci?: string;
  pc?: string;
  sa?: string;
  cc?: string;
  /** birth date YYYYMMDD */
  bd?: string;
  ni?: string;
  /** web domain (company) */
  dm?: string;
}

export interface ProfileOptions {
  /** ISO country for phone numbers and dates when the record has none, e.g. 'AU', 'US'. */
  defaultCountry?: string;
}

function set<K extends keyof Profile>(p: Profile, key: K, value: Profile[K] | undefined): void {
  if (value !== undefined) p[key] = value;
}

/** Normalises a raw profile. Fields that normalise to nothing are left out. */
export function buildProfile(
  raw: RawProfile,
  kind: IdentityKind,
  options: ProfileOptions = {},
): Profile {
  const p: Profile = { k: kind === 'person' ? 'p' : 'c' };
  const country = normaliseCountry(raw.country);
  const countryCode =
    country !== undefined && /^[A-Z]{2}$/.test(country) ? country : options.defaultCountry;
  const phones = [raw.phone, raw.mobile]
    .map((v) => normalisePhone(v, countryCode))
    .filter((v): v is string => v !== undefined);
  const uniquePhones = [...new Set(phones)];
  if (uniquePhones.length > 0) p.ph = uniquePhones;
  set(p, 'em', normaliseEmail(raw.email));
  set(p, 'co', normaliseCompany(raw.company));
  const sn = normalisePlace(raw.street_number);
  const street = normaliseStreet(raw.street);
  set(p, 'st', sn !== undefined && street !== undefined ? `${sn} ${street}` : (street ?? sn));
  set(p, 'sn', sn);
  set(p, 's2', normaliseStreet(raw.street2));
  set(p, 'ci', normalisePlace(raw.city));
  set(p, 'pc', normalisePostcode(raw.postcode));
  set(p, 'sa', normaliseState(raw.state));
  set(p, 'cc', country);
  if (kind === 'person') {
    const fn = normaliseName(raw.firstname);
    set(p, 'fn', fn);
    if (fn !== undefined) {
      const ff = formalName(fn);
      if (ff !== fn) p.ff = ff;
    }
    set(p, 'ln', normaliseName(raw.lastname));
    set(p, 'bd', normaliseBirthdate(raw.birthdate, countryCode));
    set(p, 'ni', normaliseNationalId(raw.national_id));
  } else {
    let dm = normaliseDomain(raw.domain);
    if (dm === undefined && p.em !== undefined) {
      const emailDomain = p.em.slice(p.em.indexOf('@') + 1);
      if (!FREE_MAIL_DOMAINS.has(emailDomain)) dm = emailDomain;
    }
    set(p, 'dm', dm);
  }
  return p;
}

/** The formal first name (nickname resolved), or the first name. */
export function formalFirst(p: Profile): string | undefined {
  return p.ff ?? p.fn;
}

const compact = (s: string) => s.replace(/ /g, '');

const STREET_WORD_PREFIX = 5;
/** The first letters of a street line's longest alphabetic word (≥ 4 letters), if any. */
function streetWord(line: string | undefined): string | undefined {
  if (line === undefined) return undefined;
  let best = '';
  for (const t of line.split(' ')) if (t.length > best.length && /^[a-z]+$/.test(t)) best = t;
  return best.length >= 4 ? best.slice(0, STREET_WORD_PREFIX) : undefined;
}

/**
 * Weak blocks (a name's sound with an initial, a street's name) recover pairs whose stronger keys
 * all carry a typo; they gather namesakes and neighbours, so the index reads them only while small.
 */
export function isWeakBlock(key: string): boolean {
  return key.startsWith('pl:') || key.startsWith('pw:');
}

/**
 * Blocking keys: records sharing any key are compared. Several keys per record so that one typo
 * loses no pair; each key selective enough that a block stays small (huge blocks are skipped by the
 * index). Name keys are order-free (first/last name swapped still block together) and use the
 * formal first name (Bob Smith blocks with Robert Smith).
 */
export function blockKeys(p: Profile): string[] {
  const keys: string[] = [];
  const k = p.k;
  if (p.em !== undefined) keys.push(`${k}e:${p.em}`);
  for (const phone of p.ph ?? []) keys.push(`${k}t:${phone}`);
  if (k === 'p') {
    if (p.ni !== undefined && p.ni.length >= 4) keys.push(`pi:${p.ni}`);
    const first = formalFirst(p);
    const mf = first === undefined ? undefined : phonetic(compact(first));
    const ml = p.ln === undefined ? undefined : phonetic(compact(p.ln));
    if (mf !== undefined && ml !== undefined && mf !== '' && ml !== '') {
      keys.push(mf < ml ? `pn:${mf}:${ml}` : `pn:${ml}:${mf}`);
    }
    // A typo'd city ("north rde") keeps its sound.
    const cityCode = p.ci === undefined ? undefined : phonetic(compact(p.ci));
    for (const place of [p.pc, cityCode === '' ? undefined : cityCode]) {
      if (place === undefined) continue;
      if (ml) keys.push(`pp:${ml}:${place}`);
      if (mf && mf !== ml) keys.push(`pp:${mf}:${place}`);
      if (p.sn !== undefined) keys.push(`pa:${p.sn}:${place}`);
    }
    // One name's sound with the other's initial: a typo in one name keeps the pair together.
    const i1 = first?.[0];
    const i2 = p.ln?.[0];
    if (ml && i1 !== undefined) keys.push(`pl:${ml}:${i1}`);
    if (mf && i2 !== undefined) keys.push(`pl:${mf}:${i2}`);
    // The street's name (its longest word's first letters), from either address line: moved
    // house numbers, swapped lines and joined words ("pridhamstreet") still meet.
    for (const line of [p.st, p.s2]) {
      const word = streetWord(line);
      if (word !== undefined) keys.push(`pw:${word}`);
    }
    if (p.bd !== undefined) {
      keys.push(`pb:${p.bd}`);
      if (i1 !== undefined && i2 !== undefined) {
        const initials = i1 < i2 ? `${i1}${i2}` : `${i2}${i1}`;
        keys.push(`py:${initials}:${p.bd.slice(0, 4)}`);
      }
    }
  } else {
    if (p.co !== undefined) {
      keys.push(`cn:${p.co}`);
      const firstWord = p.co.split(' ')[0] as string;
      const code = phonetic(firstWord);
      const place = p.ci ?? p.pc ?? p.cc;
      if (code !== '' && place !== undefined) keys.push(`cp:${code}:${place}`);
    }
    if (p.dm !== undefined) keys.push(`cd:${p.dm}`);
  }
  return [...new Set(keys)];
}
