/**
 * The stored form of one indexed record (`prof` hash value after "<version>|"): compact and cheap
 * to decode, because it is stored once per record (memory per 100k records) and decoded for every
 * candidate of every observation (throughput).
 *
 *   <ref> RS <normalised profile> RS <raw fields>
 *
 * Both profiles are positional: values in a fixed key order separated by US, trailing empty values
 * dropped; the phones of a profile are separated by GS. A raw value equal to its normalised form
 * (already lower-case emails, names, cities…) is stored as FS alone. Candidates decode only the ref
 * and the normalised profile; the raw fields are decoded only for the record being updated.
 * The four separators are removed from values (they carry no identity).
 */
import { PROFILE_FIELDS } from './fields.js';
import type { ProfileField, RawProfile } from './fields.js';
import type { Profile } from './profile.js';

const RS = '\x1e';
const US = '\x1f';
const GS = '\x1d';
const FS = '\x1c';

type ScalarKey = Exclude<keyof Profile, 'ph' | 'k'>;
/** Normalised profile keys in stored order (after `k`, then `ph`). */
const PROFILE_KEYS: readonly ScalarKey[] = [
  'fn',
  'ff',
  'ln',
  'em',
  'co',
  'st',
  'sn',
  's2',
  'ci',
  'pc',
  'sa',
  'cc',
  'bd',
  'ni',
  'dm',
];

/** Raw fields whose value is often already the normalised one. */
const SAME_AS: Partial<Record<ProfileField, ScalarKey>> = {
  firstname: 'fn',
  lastname: 'ln',
  email: 'em',
  company: 'co',
  city: 'ci',
  postcode: 'pc',
  state: 'sa',
  national_id: 'ni',
  birthdate: 'bd',
};

/** Whether `v` holds one of the separators (FS, GS, RS, US: code points 0x1c-0x1f). */
function hasSeparator(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0x1c && c <= 0x1f) return true;
  }
  return false;
}

const clean = (v: string): string =>
  hasSeparator(v)
    ? [...v].filter((ch) => ch.charCodeAt(0) < 0x1c || ch.charCodeAt(0) > 0x1f).join('')
    : v;

function trimTrailing(values: string[]): string[] {
  let end = values.length;
  while (end > 0 && values[end - 1] === '') end--;
  return end === values.length ? values : values.slice(0, end);
}

export function encodeProfile(p: Profile): string {
  const values: string[] = [p.k, (p.ph ?? []).map(clean).join(GS)];
  for (const key of PROFILE_KEYS) values.push(clean(p[key] ?? ''));
  return trimTrailing(values).join(US);
}

export function decodeProfile(s: string): Profile {
  const values = s.split(US);
  const p: Profile = { k: values[0] === 'c' ? 'c' : 'p' };
  const ph = values[1];
  if (ph !== undefined && ph !== '') p.ph = ph.split(GS);
  for (let i = 0; i < PROFILE_KEYS.length; i++) {
    const v = values[i + 2];
    if (v !== undefined && v !== '') p[PROFILE_KEYS[i] as ScalarKey] = v;
  }
  return p;
}

export function encodeRaw(raw: RawProfile, n: Profile): string {
  const values: string[] = [];
  for (const field of PROFILE_FIELDS) {
    const v = raw[field];
    if (v === undefined || v === '') values.push('');
    else {
      const same = SAME_AS[field];
      values.push(same !== undefined && n[same] === v ? FS : clean(v));
    }
  }
  return trimTrailing(values).join(US);
}

export function decodeRaw(s: string, n: Profile): RawProfile {
  const raw: RawProfile = {};
  if (s === '') return raw;
  const values = s.split(US);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as string;
    if (v === '') continue;
    const field = PROFILE_FIELDS[i] as ProfileField;
    if (v === FS) {
      const same = SAME_AS[field];
      const value = same === undefined ? undefined : n[same];
      if (value !== undefined) raw[field] = value;
    } else raw[field] = v;
  }
  return raw;
}

/** ref RS profile RS raw */
export function encodeRecord(r: string, n: Profile, f: RawProfile): string {
  return `${r}${RS}${encodeProfile(n)}${RS}${encodeRaw(f, n)}`;
}

/** The ref and the normalised profile (what a candidate needs). */
export function decodeHead(s: string): { r: string; n: Profile } {
  const a = s.indexOf(RS);
  const b = s.indexOf(RS, a + 1);
  return { r: s.slice(0, a), n: decodeProfile(s.slice(a + 1, b < 0 ? undefined : b)) };
}

export function decodeRecord(s: string): { r: string; n: Profile; f: RawProfile } {
  const a = s.indexOf(RS);
  const b = s.indexOf(RS, a + 1);
  const n = decodeProfile(s.slice(a + 1, b < 0 ? undefined : b));
  return { r: s.slice(0, a), n, f: b < 0 ? {} : decodeRaw(s.slice(b + 1), n) };
}
