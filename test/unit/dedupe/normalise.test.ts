import { describe, expect, it } from 'vitest';
import {
  foldText,
  formalName,
  normaliseBirthdate,
  normaliseCompany,
  normaliseCountry,
  normaliseDomain,
  normaliseEmail,
  normaliseName,
  normaliseNationalId,
  normalisePhone,
  normalisePostcode,
  normaliseState,
  normaliseStreet,
} from '../../../src/dedupe/normalise.js';

describe('foldText', () => {
  it('removes accents, case and punctuation', () => {
    expect(foldText('  José-María  Ñúñez ')).toBe('jose maria nunez');
    expect(foldText('Straße Æsir Łódź')).toBe('strasse aesir lodz');
  });
});

describe('normaliseName', () => {
  it('drops titles and generational suffixes', () => {
    expect(normaliseName('Dr. Jane  SMITH-Jones, PhD')).toBe('jane smith jones');
    expect(normaliseName('Mr John Smith Jr.')).toBe('john smith');
  });
  it("joins apostrophes (O'Brien = OBrien)", () => {
    expect(normaliseName("O'Brien")).toBe(normaliseName('OBrien'));
    expect(normaliseName('O’Neill')).toBe('oneill');
  });
  it('returns undefined for a title alone or blanks', () => {
    expect(normaliseName('Dr')).toBeUndefined();
    expect(normaliseName('  ')).toBeUndefined();
    expect(normaliseName(undefined)).toBeUndefined();
  });
  describe('when the first name is a nickname', () => {
    it('resolves common diminutives to one formal name', () => {
      expect(formalName('bob')).toBe('robert');
      expect(formalName('liz')).toBe('elizabeth');
      expect(formalName('bill')).toBe('william');
      expect(formalName('peggy')).toBe('margaret');
      expect(formalName('robert')).toBe('robert');
      expect(formalName('bob lee')).toBe('robert lee');
      expect(formalName('zyx')).toBe('zyx');
    });
  });
});

describe('normaliseEmail', () => {
  it('lower-cases and removes Gmail dots and +tags', () => {
    expect(normaliseEmail(' J.Doe+crm@GoogleMail.com ')).toBe('jdoe@gmail.com');
    expect(normaliseEmail('jane.doe+news@gmail.com')).toBe('janedoe@gmail.com');
  });
  it('removes +tags but keeps dots where dots matter', () => {
    expect(normaliseEmail('jane.doe+x@outlook.com')).toBe('jane.doe@outlook.com');
    expect(normaliseEmail('jane.doe+x@acme.com')).toBe('jane.doe+x@acme.com');
  });
  it('fixes common domain typos but not real look-alike providers', () => {
    expect(normaliseEmail('bob@gmial.com')).toBe('bob@gmail.com');
    expect(normaliseEmail('bob@hotmial.com')).toBe('bob@hotmail.com');
    expect(normaliseEmail('bob@mail.com')).toBe('bob@mail.com');
    expect(normaliseEmail('bob@gmx.com')).toBe('bob@gmx.com');
  });
  it('accepts display-name and mailto forms', () => {
    expect(normaliseEmail('Jane Doe <Jane@Acme.com>')).toBe('jane@acme.com');
    expect(normaliseEmail('mailto:jane@acme.com')).toBe('jane@acme.com');
  });
  it('rejects what is not an address', () => {
    for (const bad of ['', 'jane', '@acme.com', 'jane@', 'jane@localhost', 'ja ne@acme.com']) {
      expect(normaliseEmail(bad)).toBeUndefined();
    }
  });
});

describe('normalisePhone', () => {
  it('formats national numbers to E.164 with the record country', () => {
    expect(normalisePhone('(02) 9876 5432', 'AU')).toBe('+61298765432');
    expect(normalisePhone('0412 345 678', 'AU')).toBe('+61412345678');
    expect(normalisePhone('(415) 555-2671', 'US')).toBe('+14155552671');
  });
  it('keeps an international number whatever the country', () => {
    expect(normalisePhone('+44 20 7946 0958', 'US')).toBe('+442079460958');
    expect(normalisePhone('0044 20 7946 0958', undefined)).toBe('00442079460958');
  });
  it('drops extensions (a switchboard)', () => {
    expect(normalisePhone('+1 415 555 2671 ext. 204', 'US')).toBe('+14155552671');
  });
  it('falls back to digits without a country, and rejects short junk', () => {
    expect(normalisePhone('98765432', undefined)).toBe('98765432');
    expect(normalisePhone('n/a', 'AU')).toBeUndefined();
    expect(normalisePhone('123', 'AU')).toBeUndefined();
  });
});

describe('normaliseCompany', () => {
  it('drops legal forms, punctuation and a leading "the"', () => {
    expect(normaliseCompany('The Acme Corporation, Inc.')).toBe('acme');
    expect(normaliseCompany('ACME Pty. Ltd')).toBe('acme');
    expect(normaliseCompany('Müller GmbH & Co. KG')).toBe('muller');
    expect(normaliseCompany('Initech L.L.C.')).toBe('initech');
    expect(normaliseCompany('Société Générale S.A.')).toBe('societe generale');
  });
  it('keeps a legal-form word at the start and never strips to nothing', () => {
    expect(normaliseCompany('AS Roma')).toBe('as roma');
    expect(normaliseCompany('Limited')).toBe('limited');
  });
  it('turns & into and', () => {
    expect(normaliseCompany('Johnson & Johnson')).toBe(normaliseCompany('Johnson and Johnson'));
  });
});

describe('addresses', () => {
  it('abbreviates street types and directions', () => {
    expect(normaliseStreet('12 Wallaby Place')).toBe('12 wallaby pl');
    expect(normaliseStreet('12 wallaby pl.')).toBe('12 wallaby pl');
    expect(normaliseStreet('1 North Road')).toBe('1 n rd');
  });
  it('normalises postcodes (UK spaces, US ZIP+4)', () => {
    expect(normalisePostcode('sw1a 1aa')).toBe('SW1A1AA');
    expect(normalisePostcode('94105-1234')).toBe('94105');
    expect(normalisePostcode('0800')).toBe('0800');
    expect(normalisePostcode('!!')).toBeUndefined();
  });
  it('abbreviates regions and maps countries to ISO codes', () => {
    expect(normaliseState('New South Wales')).toBe('nsw');
    expect(normaliseState('NSW')).toBe('nsw');
    expect(normaliseCountry('United Kingdom')).toBe('GB');
    expect(normaliseCountry('uk')).toBe('GB');
    expect(normaliseCountry('de')).toBe('DE');
    expect(normaliseCountry('Deutschland')).toBe('DE');
  });
  it('reduces URLs to a domain', () => {
    expect(normaliseDomain('https://www.Acme.com/about?x=1')).toBe('acme.com');
    expect(normaliseDomain('not a domain')).toBeUndefined();
  });
});

describe('normaliseBirthdate', () => {
  it('reads the common formats', () => {
    for (const v of [
      '19800312',
      '1980-03-12',
      '1980-03-12T00:00:00Z',
      '12/03/1980',
      '12.3.1980',
      '12 Mar 1980',
      'March 12, 1980',
      '12-mar-1980',
    ]) {
      expect(normaliseBirthdate(v, 'AU'), v).toBe('19800312');
    }
  });
  it('reads month first for US records, or when the day cannot be a month', () => {
    expect(normaliseBirthdate('03/12/1980', 'US')).toBe('19800312');
    expect(normaliseBirthdate('03/12/1980', 'GB')).toBe('19801203');
    expect(normaliseBirthdate('12/25/1980', 'GB')).toBe('19801225');
  });
  it('reads epoch milliseconds (HubSpot date properties)', () => {
    expect(normaliseBirthdate(String(Date.UTC(1980, 2, 12)))).toBe('19800312');
  });
  it('keeps an 8-digit typo as digits, rejects nonsense', () => {
    expect(normaliseBirthdate('19801312')).toBe('19801312');
    expect(normaliseBirthdate('1980-13-12')).toBeUndefined();
    expect(normaliseBirthdate('yesterday')).toBeUndefined();
  });
});

describe('normaliseNationalId', () => {
  it('keeps letters and digits only', () => {
    expect(normaliseNationalId('123-45-6789')).toBe('123456789');
    expect(normaliseNationalId('ab 12 34 56 c')).toBe('AB123456C');
    expect(normaliseNationalId(' - ')).toBeUndefined();
  });
});
