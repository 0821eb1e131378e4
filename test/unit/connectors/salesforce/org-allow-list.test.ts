import { describe, expect, it } from 'vitest';
import {
  OrgIdError,
  createOrgAllowList,
  normaliseSalesforceId,
  salesforceIdChecksum,
} from '../../../../connectors/salesforce/org-allow-list.js';

/**
 * Known 15 → 18 pairs.
 * - Real ids from the Salesforce-generated sample envelope (crm-protocols.md §4.2). Salesforce
 *   wrote their checksums.
 * - Worked examples from public write-ups of the CASESAFEID algorithm: gammone.com
 *   "How to convert Salesforce ID from 15 to 18 chars", theblogreaders.com, and the Salesforce help
 *   example quoted on icanhasapex.blogspot.com (2009).
 * - Two derived by the algorithm: the org id in the sample's EnterpriseUrl, and the all-uppercase
 *   edge case.
 */
const PAIRS: readonly [string, string, string][] = [
  ['0031I0000081tbP', '0031I0000081tbPQAQ', 'sample Contact Id'],
  ['0031I0000081tb0', '0031I0000081tb0QAA', 'sample Contact Id'],
  ['04l1I000000fztE', '04l1I000000fztEQAQ', 'sample Notification Id'],
  ['04l1I000000fzt9', '04l1I000000fzt9QAA', 'sample Notification Id'],
  ['04k1I000000bmsH', '04k1I000000bmsHQAQ', 'sample ActionId'],
  ['a0D30000001n7Pi', 'a0D30000001n7PiEAI', 'gammone.com worked example'],
  ['0019000000B98de', '0019000000B98deAAB', 'theblogreaders.com worked example'],
  ['500x000000003TR', '500x000000003TRAAY', 'Salesforce help example'],
  ['00D1I000003qqqE', '00D1I000003qqqEUAQ', 'derived: sample EnterpriseUrl org id'],
  ['012345678901234', '012345678901234AAA', 'derived: sample placeholder org id'],
  ['ABCDEABCDEABCDE', 'ABCDEABCDEABCDE555', 'derived: every bit set'],
];

describe('salesforceIdChecksum', () => {
  for (const [id15, id18, source] of PAIRS) {
    it(`computes ${id18.slice(15)} for ${id15} (${source})`, () => {
      expect(salesforceIdChecksum(id15)).toBe(id18.slice(15));
    });
  }
});

describe('normaliseSalesforceId', () => {
  describe('when given a 15-character id', () => {
    it('appends the checksum', () => {
      for (const [id15, id18] of PAIRS) expect(normaliseSalesforceId(id15)).toBe(id18);
    });
  });

  describe('when given an 18-character id with a matching checksum', () => {
    it('returns it unchanged', () => {
      for (const [, id18] of PAIRS) expect(normaliseSalesforceId(id18)).toBe(id18);
    });
  });

  describe('when the checksum does not match', () => {
    it('returns undefined', () => {
      expect(normaliseSalesforceId('00D1I000003qqqEAAA')).toBeUndefined();
      // checksum in lower case: Salesforce always writes it in upper case
      expect(normaliseSalesforceId('00D1I000003qqqEuaq')).toBeUndefined();
      // the id lower-cased by a case-insensitive system: its checksum no longer matches
      expect(normaliseSalesforceId('00d1i000003qqqeUAQ')).toBeUndefined();
    });
  });

  describe('when given anything else', () => {
    it('returns undefined without throwing', () => {
      for (const value of [
        '',
        '00D1I000003qqq',
        '00D1I000003qqqEU',
        '00D1I000003qqqEUAQX',
        '00D1I000003qq-E',
        '00D1I000003qqqÉ',
        ' 00D1I000003qqqE',
        undefined,
        null,
        15,
        {},
      ]) {
        expect(normaliseSalesforceId(value)).toBeUndefined();
      }
    });
  });
});

describe('createOrgAllowList', () => {
  describe('when a 15-character id is configured', () => {
    const list = createOrgAllowList(['00D1I000003qqqE']);

    it('allows the same 15-character id', () => {
      expect(list.allows('00D1I000003qqqE')).toBe(true);
    });

    it('allows the matching 18-character id', () => {
      expect(list.allows('00D1I000003qqqEUAQ')).toBe(true);
    });

    it('refuses the id with different capitalisation (15-character ids are case-sensitive)', () => {
      expect(list.allows('00d1I000003qqqE')).toBe(false);
      expect(list.allows('00D1I000003QQQE')).toBe(false);
    });

    it('refuses an 18-character id whose checksum is wrong', () => {
      expect(list.allows('00D1I000003qqqEAAA')).toBe(false);
    });

    it('refuses another organisation', () => {
      expect(list.allows('00D5e000000AbCd')).toBe(false);
      expect(list.allows('00D5e000000AbCdEAK')).toBe(false);
    });
  });

  describe('when an 18-character id is configured', () => {
    const list = createOrgAllowList(['00D1I000003qqqEUAQ']);

    it('allows the matching 15-character id', () => {
      expect(list.allows('00D1I000003qqqE')).toBe(true);
    });

    it('allows itself', () => {
      expect(list.allows('00D1I000003qqqEUAQ')).toBe(true);
    });
  });

  describe('when several ids are configured', () => {
    const list = createOrgAllowList([
      '00D1I000003qqqE',
      '00D1I000003qqqEUAQ',
      '00D5e000000AbCdEAK',
    ]);

    it('counts each organisation once', () => {
      expect(list.size).toBe(2);
    });

    it('allows each of them in either form', () => {
      expect(list.allows('00D5e000000AbCd')).toBe(true);
      expect(list.allows('00D1I000003qqqEUAQ')).toBe(true);
    });
  });

  describe('when nothing is configured', () => {
    it('allows nothing', () => {
      const list = createOrgAllowList([]);
      expect(list.size).toBe(0);
      expect(list.allows('00D1I000003qqqE')).toBe(false);
    });
  });

  describe('when asked about malformed input', () => {
    it('returns false without throwing', () => {
      const list = createOrgAllowList(['00D1I000003qqqE']);
      for (const value of ['', 'x', '00D1I000003qqqE ', undefined, null, 42]) {
        expect(list.allows(value as string)).toBe(false);
      }
    });
  });

  describe('when a configured id is malformed', () => {
    it('throws ORGANIZATION_ID_INVALID', () => {
      for (const bad of ['00D1I000003qqq', '00D1I000003qqqEAAA', '00D1I000003qqqE!']) {
        expect(() => createOrgAllowList([bad])).toThrow(OrgIdError);
        try {
          createOrgAllowList([bad]);
        } catch (err) {
          expect((err as OrgIdError).code).toBe('ORGANIZATION_ID_INVALID');
        }
      }
    });
  });

  describe('canonical', () => {
    const list = createOrgAllowList(['00D1I000003qqqE']);

    it('returns the 18-character form of either form', () => {
      expect(list.canonical('00D1I000003qqqE')).toBe('00D1I000003qqqEUAQ');
      expect(list.canonical('00D1I000003qqqEUAQ')).toBe('00D1I000003qqqEUAQ');
      expect(list.canonical('00D5e000000AbCd')).toBe('00D5e000000AbCdEAK');
    });

    it('throws ORGANIZATION_ID_INVALID for a malformed id', () => {
      expect(() => list.canonical('00D1I000003qqqEAAA')).toThrow(
        expect.objectContaining({ code: 'ORGANIZATION_ID_INVALID' }),
      );
    });
  });
});
