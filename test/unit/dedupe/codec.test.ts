import { describe, expect, it } from 'vitest';
import { decodeHead, decodeRecord, encodeRecord } from '../../../src/dedupe/codec.js';
import { buildProfile } from '../../../src/dedupe/profile.js';
import type { RawProfile } from '../../../src/dedupe/fields.js';

describe('dedupe stored-record codec', () => {
  it('round-trips the ref, the normalised profile and the raw fields', () => {
    const raw: RawProfile = {
      firstname: 'Bob',
      lastname: 'smith',
      email: 'bob.smith@example.com',
      phone: '0412 345 678',
      mobile: '+61 2 9999 0000',
      street: '12 Wallaby Place',
      city: 'sydney',
      postcode: '2000',
      birthdate: '1980-02-03',
    };
    const n = buildProfile(raw, 'person', { defaultCountry: 'AU' });
    const s = encodeRecord('hubspot:1/contact/42', n, raw);
    expect(decodeRecord(s)).toEqual({ r: 'hubspot:1/contact/42', n, f: raw });
    expect(decodeHead(s)).toEqual({ r: 'hubspot:1/contact/42', n });
    // Values already normalised are not stored twice.
    expect(s.split('bob.smith@example.com')).toHaveLength(2);
    expect(s.length).toBeLessThan(
      JSON.stringify({ r: 'hubspot:1/contact/42', f: raw, n }).length * 0.7,
    );
  });

  it('keeps company profiles and empty middles, and drops separator characters from values', () => {
    const raw: RawProfile = { company: 'Acme\x1e Pty\x1f Ltd', domain: 'acme.com.au' };
    const n = buildProfile(raw, 'company');
    const back = decodeRecord(encodeRecord('salesforce:00D1/account/001A', n, raw));
    expect(back.n).toEqual(n);
    expect(back.n.k).toBe('c');
    expect(back.f).toEqual({ company: 'Acme Pty Ltd', domain: 'acme.com.au' });
  });
});
