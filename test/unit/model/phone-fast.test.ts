import { describe, expect, it } from 'vitest';
import examples from 'libphonenumber-js/examples.mobile.json';
import { getCountries, getCountryCallingCode } from 'libphonenumber-js';
import { FALLBACK, readPhoneFast } from '../../../src/model/phone-fast.js';
import { readPhoneWithLibrary } from '../../../src/model/phone.js';
import { seededRandom } from '../../../src/util/seeded-random.js';

const COUNTRIES = getCountries();

/** Numbers near each country's example: valid ones, other leading digits, wrong lengths. */
function bodiesNear(example: string): string[] {
  const out = new Set<string>([
    example,
    example.slice(0, -1),
    example.slice(0, -2),
    `${example}0`,
    `${example}12`,
    example.slice(1),
    `${example.slice(0, -3)}999`,
  ]);
  for (let d = 0; d <= 9; d++) out.add(`${d}${example.slice(1)}`);
  return [...out].filter((b) => b.length >= 2);
}

/** The ways people type a number: with/without `+`, IDD and national prefixes, punctuation. */
function writings(cc: string, body: string): string[] {
  const a = body.slice(0, 3);
  const b = body.slice(3);
  return [
    `+${cc}${body}`,
    `+${cc} ${a} ${b}`,
    `+${cc}-${a}.${b}`,
    `(+${cc}) ${a}/${b}`,
    `+${cc} 0${body}`,
    `+ ${cc} (${a}) ${b}`,
    `${cc}${body}`,
    `00${cc}${body}`,
    `011 ${cc} ${body}`,
    `0011${cc}${body}`,
    body,
    `0${body}`,
    `1${body}`,
    `8 ${body}`,
    `(${a}) ${b}`,
    `0 (${a}) ${b}-`,
    `${a}.${b}`,
  ];
}

interface Case {
  text: string;
  country: string | undefined;
}

function generatedCases(): Case[] {
  const cases: Case[] = [];
  COUNTRIES.forEach((country, i) => {
    const example = examples[country];
    if (example === undefined) return;
    const cc = getCountryCallingCode(country);
    const other = COUNTRIES[(i * 7 + 3) % COUNTRIES.length];
    for (const body of bodiesNear(example)) {
      for (const text of writings(cc, body)) {
        for (const defaultCountry of [country, other, undefined]) {
          cases.push({ text, country: defaultCountry });
        }
      }
    }
  });
  return cases;
}

function randomCases(n: number): Case[] {
  const rng = seededRandom(20_261_126);
  const alphabet = '0123456789012345678901234567890123456789  -().+/';
  const defaults = [...COUNTRIES, undefined, 'XX'];
  return Array.from({ length: n }, () => {
    const length = 1 + Math.floor(rng() * 22);
    let text = rng() < 0.5 ? '+' : '';
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(rng() * alphabet.length)];
    return { text, country: defaults[Math.floor(rng() * defaults.length)] };
  });
}

/** Inputs the fast path must leave to the library, or read alike. */
const UNUSUAL: Case[] = [
  { text: '+1 650-253-0000 ext. 12', country: 'US' },
  { text: '+1 650-253-0000 x12', country: 'US' },
  { text: '650-253-0000#12', country: 'US' },
  { text: '650-253-0000;ext=12', country: 'US' },
  { text: 'tel:+1-650-253-0000', country: undefined },
  { text: '+1 650 CALL NOW', country: 'US' },
  { text: '１６５０２５３００００', country: 'US' },
  { text: '+１ ６５０ ２５３ ００００', country: undefined },
  { text: '650\t253\t0000', country: 'US' },
  { text: '1-800-FLOWERS', country: 'US' },
  { text: '+800 1234 5678', country: undefined },
  { text: '+882 1234 5678', country: 'DE' },
  { text: '+979 123 456 789', country: undefined },
  { text: '650 + 253 0000', country: 'US' },
  { text: '6+50 253 0000', country: 'US' },
  { text: '++1 650 253 0000', country: 'US' },
  { text: '011 15 2345-6789', country: 'AR' },
  { text: '0 11 15 2345 6789', country: 'AR' },
  { text: '+54 9 11 2345 6789', country: undefined },
  { text: '+54 11 15 2345 6789', country: undefined },
  { text: '044 55 1234 5678', country: 'MX' },
  { text: '01 55 1234 5678', country: 'MX' },
  { text: '0 21 11 91234-5678', country: 'BR' },
  { text: '0xx21 11 91234-5678', country: 'BR' },
  { text: '03 1 234 5678', country: 'CO' },
  { text: '8 (800) 555-35-35', country: 'RU' },
  { text: '8 (727) 258-34-35', country: 'KZ' },
  { text: '+7 727 258 3435', country: 'RU' },
  { text: '07624 369230', country: 'GB' },
  { text: '(340) 234-5678', country: 'US' },
  { text: '234-5678', country: 'VI' },
  { text: '+1 340 234 5678', country: undefined },
  { text: '+1 284 496 1234', country: 'US' },
  { text: '12', country: 'US' },
  { text: '123', country: 'US' },
  { text: '', country: 'US' },
  { text: '   ', country: 'US' },
  { text: '+', country: undefined },
  { text: '+0 123 456', country: undefined },
  { text: '00 0 123 456', country: 'DE' },
  { text: '+1', country: 'US' },
  { text: '+380', country: undefined },
  { text: '380', country: 'UA' },
  { text: '9'.repeat(300), country: 'US' },
  { text: '+49 30 1234567890123456789', country: undefined },
];

function libraryAnswer({ text, country }: Case) {
  return readPhoneWithLibrary(text, country);
}

describe('readPhoneFast', () => {
  describe('when given numbers near every country’s example, written every usual way', () => {
    it('answers exactly what libphonenumber-js answers, and rarely needs it', () => {
      const cases = generatedCases();
      let fast = 0;
      let plain = 0;
      const disagreements: string[] = [];
      for (const c of cases) {
        if (c.text.replace(/\D/g, '').length >= 3) plain++;
        const answer = readPhoneFast(c.text, c.country);
        if (answer === FALLBACK) continue;
        fast++;
        const expected = libraryAnswer(c);
        const got = answer ?? { e164: undefined, possible: false, valid: false };
        if (
          got.e164 !== expected.e164 ||
          got.possible !== expected.possible ||
          got.valid !== expected.valid
        ) {
          disagreements.push(
            `${JSON.stringify(c)}: fast ${JSON.stringify(got)} library ${JSON.stringify(expected)}`,
          );
        }
      }
      expect(disagreements.slice(0, 20)).toEqual([]);
      expect(cases.length).toBeGreaterThan(100_000);
      // Every generated writing is plain (digits, one leading `+`, punctuation): none with 3 digits
      // or more falls back.
      expect(fast).toBeGreaterThanOrEqual(plain);
      // ~200,000 library parses: ~5 s alone, ~10 s under the full suite
    }, 90_000);
  });

  describe('when given random strings of digits, `+` and punctuation', () => {
    it('answers exactly what libphonenumber-js answers', () => {
      const cases = randomCases(30_000);
      let fast = 0;
      for (const c of cases) {
        const answer = readPhoneFast(c.text, c.country);
        if (answer === FALLBACK) continue;
        fast++;
        const expected = libraryAnswer(c);
        expect(
          answer ?? { e164: undefined, possible: false, valid: false },
          JSON.stringify(c),
        ).toEqual(expected);
      }
      expect(fast).toBeGreaterThan(cases.length / 2);
    });
  });

  describe('when given extensions, letters, other digits, odd `+` and national prefixes', () => {
    it('answers what libphonenumber-js answers or leaves it to the library', () => {
      let fallbacks = 0;
      for (const c of UNUSUAL) {
        const answer = readPhoneFast(c.text, c.country);
        if (answer === FALLBACK) {
          fallbacks++;
          continue;
        }
        expect(
          answer ?? { e164: undefined, possible: false, valid: false },
          JSON.stringify(c),
        ).toEqual(libraryAnswer(c));
      }
      expect(fallbacks).toBeGreaterThan(0);
    });

    it('leaves extensions, letters, non-ASCII digits and non-geographic codes to the library', () => {
      for (const text of [
        '+1 650-253-0000 ext. 12',
        'tel:+1-650-253-0000',
        '１６５０２５３００００',
        '650\t253\t0000',
        '+800 1234 5678',
        '650 + 253 0000',
      ]) {
        expect(readPhoneFast(text, 'US'), text).toBe(FALLBACK);
      }
    });
  });
});
