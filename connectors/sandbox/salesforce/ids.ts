/**
 * Salesforce-shaped record ids for the sandbox: a 3-character key prefix per object, a 3-character
 * pod/instance part, a counter, and the 3-character case-safe checksum Salesforce appends
 * (the algorithm behind CASESAFEID(), shared with the org allow-list).
 */
import { salesforceIdChecksum } from '../../salesforce/org-allow-list.js';

/** Key prefixes of the standard objects the sandbox knows (Salesforce's own). */
export const KEY_PREFIXES: Readonly<Record<string, string>> = {
  Account: '001',
  Contact: '003',
  User: '005',
  Opportunity: '006',
  Case: '500',
  Lead: '00Q',
  Task: '00T',
  Organization: '00D',
};

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `<prefix><pod><9 base-62 digits>` (15 chars) plus the checksum: 18 characters. */
export function makeSalesforceId(prefix: string, counter: number, pod = '5g0'): string {
  let digits = '';
  let n = counter;
  for (let i = 0; i < 9; i++) {
    digits = BASE62.charAt(n % 62) + digits;
    n = Math.floor(n / 62);
  }
  const id15 = `${prefix}${pod}${digits}`;
  return id15 + salesforceIdChecksum(id15);
}

/** Custom objects get key prefixes a00, a01, … in order of first use (like a real org). */
export function customKeyPrefix(index: number): string {
  return `a${BASE62.charAt(Math.floor(index / 62) % 62)}${BASE62.charAt(index % 62)}`;
}
