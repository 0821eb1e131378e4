/**
 * Canonical identity fields and the CRM / data-set column names that map onto them.
 *
 * HubSpot property names (contacts, companies), Salesforce field API names (Contact, Lead, Account)
 * and FEBRL columns are recognised case-insensitively; unknown names are ignored. A few canonical
 * fields are built from several source columns (FEBRL's street = street_number + address_1), and a
 * record may carry two phones (HubSpot phone + mobilephone), kept apart so that a partial update of
 * one does not erase the other.
 */

export const CANONICAL_FIELDS = [
  'firstname',
  'lastname',
  'email',
  'phone',
  'company',
  'street',
  'city',
  'postcode',
  'state',
  'country',
  'birthdate',
  'national_id',
] as const;
export type CanonicalField = (typeof CANONICAL_FIELDS)[number];

/**
 * Fields a stored profile keeps: the canonical ones plus the parts some canonical fields are built
 * from (`street_number`, `street2`), a second phone (`mobile`) and a company's web `domain`.
 */
export const PROFILE_FIELDS = [
  ...CANONICAL_FIELDS,
  'mobile',
  'street_number',
  'street2',
  'domain',
] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];

/** Raw (not yet normalised) values by profile field. */
export type RawProfile = Partial<Record<ProfileField, string>>;

/** What kind of identity an object holds; other objects are not matched. */
export type IdentityKind = 'person' | 'company';

const OBJECT_KINDS: Readonly<Record<string, IdentityKind>> = {
  contact: 'person',
  lead: 'person',
  company: 'company',
  account: 'company',
};

export function identityKindOf(object: string): IdentityKind | undefined {
  return OBJECT_KINDS[object.toLowerCase()];
}

/** Source column (lower-cased) → profile field, for any object. */
const COMMON_ALIASES: Readonly<Record<string, ProfileField>> = {
  // canonical names map to themselves
  firstname: 'firstname',
  lastname: 'lastname',
  email: 'email',
  phone: 'phone',
  company: 'company',
  street: 'street',
  city: 'city',
  postcode: 'postcode',
  state: 'state',
  country: 'country',
  birthdate: 'birthdate',
  national_id: 'national_id',
  // HubSpot contact / company properties
  mobilephone: 'mobile',
  address: 'street',
  zip: 'postcode',
  date_of_birth: 'birthdate',
  domain: 'domain',
  website: 'domain',
  // Salesforce Contact / Lead / Account fields (API names are case-insensitive)
  mailingstreet: 'street',
  mailingcity: 'city',
  mailingpostalcode: 'postcode',
  mailingstate: 'state',
  mailingcountry: 'country',
  billingstreet: 'street',
  billingcity: 'city',
  billingpostalcode: 'postcode',
  billingstate: 'state',
  billingcountry: 'country',
  postalcode: 'postcode',
  // Salesforce Lead's own address fields are Street/City/PostalCode/State/Country (covered above)
  // FEBRL columns
  given_name: 'firstname',
  surname: 'lastname',
  street_number: 'street_number',
  address_1: 'street',
  address_2: 'street2',
  suburb: 'city',
  soc_sec_id: 'national_id',
  // frequent spellings elsewhere
  first_name: 'firstname',
  last_name: 'lastname',
  family_name: 'lastname',
  email_address: 'email',
  phone_number: 'phone',
  mobile: 'mobile',
  mobile_phone: 'mobile',
  zipcode: 'postcode',
  zip_code: 'postcode',
  postal_code: 'postcode',
  dob: 'birthdate',
  ssn: 'national_id',
};

/** Names whose meaning depends on the object: an Account's or HubSpot company's `name`. */
const COMPANY_ALIASES: Readonly<Record<string, ProfileField>> = { name: 'company' };

/** The profile field a source column feeds, or undefined when it is not an identity field. */
export function profileFieldFor(column: string, kind: IdentityKind): ProfileField | undefined {
  const key = column.trim().toLowerCase();
  if (kind === 'company') {
    const c = COMPANY_ALIASES[key];
    if (c !== undefined) return c;
  }
  return Object.hasOwn(COMMON_ALIASES, key) ? COMMON_ALIASES[key] : undefined;
}

/**
 * Maps source fields onto profile fields. `null`/empty values are kept as `''` (an update that
 * clears a field must clear it in the profile); non-string values are stringified.
 */
export function mapFields(
  fields: Readonly<Record<string, string | number | boolean | null>>,
  kind: IdentityKind,
  explicit?: Readonly<Record<string, ProfileField>>,
): RawProfile {
  const out: RawProfile = {};
  for (const [column, value] of Object.entries(fields)) {
    const field = explicit?.[column] ?? profileFieldFor(column, kind);
    if (field === undefined) continue;
    out[field] = value === null ? '' : String(value).trim();
  }
  return out;
}
