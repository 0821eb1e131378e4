/**
 * The Salesforce organisation allow-list.
 *
 * Outbound Messages carry no signature. Salesforce's own guidance is to check that each message
 * carries your organisation id (crm-protocols.md §4.5), on top of TLS and IP allow-listing, which
 * happen outside this service. This file is that check.
 *
 * Salesforce ids come in two forms:
 * - 15 characters, case-sensitive;
 * - 18 characters: the same 15 followed by a 3-character checksum of their capitalisation, so the
 *   id survives case-insensitive systems.
 *
 * We compare canonical 18-character forms. A configured 15-character id therefore allows the
 * matching 18-character id, and the reverse holds too. A configured 18-character id with a bad
 * checksum is a configuration error. An incoming one is simply not allowed.
 *
 * An org id is an identifier, not a secret: it appears in every EnterpriseUrl/PartnerUrl. So a
 * Set lookup is fine here. There is no timing side channel worth closing (unlike STYLE.md rule 4).
 */
import { BaseError } from '../../src/errors.js';

export type OrgIdErrorCode = 'ORGANIZATION_ID_INVALID';
/** Thrown for a malformed id in configuration, or passed to `canonical`. Both are caller bugs. */
export class OrgIdError extends BaseError<OrgIdErrorCode> {}

const ID_15 = /^[A-Za-z0-9]{15}$/;
const ID_18 = /^[A-Za-z0-9]{18}$/;
const UPPER = /^[A-Z]$/;
/** Index = the 5-bit capitalisation mask of one 5-character chunk. */
const CHECKSUM_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

/**
 * Computes the 3-character checksum of a 15-character Salesforce id. This is the algorithm behind
 * Salesforce's CASESAFEID().
 *
 * For each 5-character chunk, bit i is set when character i is an uppercase A-Z (character 0 is
 * the least significant bit). The resulting 0-31 value indexes CHECKSUM_ALPHABET.
 * The caller must pass 15 characters [A-Za-z0-9].
 */
export function salesforceIdChecksum(id15: string): string {
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let mask = 0;
    for (let bit = 0; bit < 5; bit++) {
      if (UPPER.test(id15.charAt(chunk * 5 + bit))) mask |= 1 << bit;
    }
    suffix += CHECKSUM_ALPHABET.charAt(mask);
  }
  return suffix;
}

/**
 * Returns the canonical 18-character form of a 15- or 18-character Salesforce id. Returns
 * undefined when the input is not such an id, or when an 18-character id's checksum does not match
 * its first 15 characters. Total: never throws.
 *
 * The checksum must match exactly (uppercase, as Salesforce writes it). We do not repair ids that
 * a case-insensitive system has lower-cased. An incoming id is authenticated by its exact
 * characters.
 */
export function normaliseSalesforceId(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  if (ID_15.test(id)) return id + salesforceIdChecksum(id);
  if (ID_18.test(id)) {
    const id15 = id.slice(0, 15);
    return salesforceIdChecksum(id15) === id.slice(15) ? id : undefined;
  }
  return undefined;
}

export interface OrgAllowList {
  /** How many distinct organisations are allowed (a 15- and an 18-char form count once). */
  readonly size: number;
  /** Whether a message claiming this organisation id is accepted. Total: never throws. */
  allows(orgId: string): boolean;
  /**
   * The 18-character form of a valid 15- or 18-character org id.
   * Throws OrgIdError for anything else.
   */
  canonical(orgId: string): string;
}

/** Throws OrgIdError (ORGANIZATION_ID_INVALID) on the first malformed configured id. */
export function createOrgAllowList(ids: readonly string[]): OrgAllowList {
  const canonicalIds = new Set<string>();
  for (const id of ids) canonicalIds.add(canonicalOrThrow(id));
  return {
    size: canonicalIds.size,
    allows(orgId: string): boolean {
      const canonical = normaliseSalesforceId(orgId);
      return canonical !== undefined && canonicalIds.has(canonical);
    },
    canonical: canonicalOrThrow,
  };
}

function canonicalOrThrow(id: string): string {
  const canonical = normaliseSalesforceId(id);
  if (canonical === undefined) {
    throw new OrgIdError(
      'ORGANIZATION_ID_INVALID',
      `expected a 15- or 18-character Salesforce org id with a valid checksum, got ${JSON.stringify(id)}`,
    );
  }
  return canonical;
}
