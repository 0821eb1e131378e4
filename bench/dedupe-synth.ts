/**
 * Synthetic CRM customers for the dedupe matcher: people with realistic duplicates (typos,
 * nicknames, swapped first/last names, a changed email or phone, a move, missing fields, another
 * format) and hard non-duplicates (namesakes, household members sharing an address and landline,
 * colleagues sharing a switchboard number and company). Deterministic for a seed.
 *
 *   npx tsx bench/dedupe-synth.ts [--records 100000] [--seed 7] [--out bench/.data/synth.csv]
 *
 * writes the CSV (header id,firstname,lastname,email,phone,mobile,company,street,city,postcode,
 * state,country,birthdate,national_id) and `<out>.truth.csv` (left_id,right_id: every pair of
 * records of one person). Used by bench/dedupe.bench.ts and to estimate the shipped parameters
 * (bench/dedupe-train.ts); never by FEBRL.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FORMAL_NAMES, diminutivesOf } from '../src/dedupe/nicknames.js';
import { seededRandom } from '../src/util/seeded-random.js';

export const SYNTH_COLUMNS = [
  'id',
  'firstname',
  'lastname',
  'email',
  'phone',
  'mobile',
  'company',
  'street',
  'city',
  'postcode',
  'state',
  'country',
  'birthdate',
  'national_id',
] as const;
export type SynthRecord = Record<(typeof SYNTH_COLUMNS)[number], string>;

const EXTRA_FIRST = `olivia emma ava sophia mia amelia harper evelyn ella scarlett grace chloe
lily aria zoe nora hannah layla riley lucy anna sarah laura emily claire julia maria sofia
noah liam oliver elijah lucas mason logan ethan aiden jackson sebastian mateo owen luke
henry wyatt leo jayden gabriel carter julian grayson isaac lincoln hudson caleb ryan adrian
nolan hunter connor eli aaron jordan ian evan colin ahmed mohammed fatima aisha wei li
priya raj arjun ana jose luis carlos juan miguel pedro marta lukas jan pierre marie`
  .split(/\s+/)
  .filter(Boolean);
const FIRST_NAMES = [...FORMAL_NAMES, ...EXTRA_FIRST];
const LAST_NAMES = `smith johnson williams brown jones garcia miller davis rodriguez martinez
hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson
white harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres
nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez
phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales murphy cook
rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward
richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes price alvarez
castillo sanders patel myers long ross foster jimenez powell jenkins perry russell sullivan
bell coleman butler henderson barnes gonzales fisher vasquez simmons romero jordan patterson
alexander hamilton graham reynolds griffin wallace moreno west cole hayes bryant herrera
gibson ellis tran medina aguilar stevens murray ford castro marshall owens harrison fernandez
mcdonald woods washington kennedy wells vargas henry chen freeman webb tucker guzman burns
crawford olson simpson porter hunter gordon mendez silva shaw snyder mason dixon munoz hunt
hicks holmes palmer wagner black robertson boyd rose stone salazar fox warren mills meyer rice
schmidt garza daniels ferguson nichols stephens soto weaver ryan gardner payne grant dunn
kelley spencer hawkins arnold pierce vazquez hansen peters santos hart bradley knight elliott
cunningham duncan armstrong hudson carroll lane riley andrews alvarado ray delgado berry
perkins hoffman johnston matthews pena richards contreras willis carpenter lawrence sandoval
obrien oconnor mueller schneider fischer weber becker dubois moreau laurent rossi russo
ferrari esposito bianchi kowalski nowak jensen nielsen larsen andersen johansson lindberg`
  .split(/\s+/)
  .filter(Boolean);
const STREETS = `main high church park oak pine maple cedar elm view lake hill river mill
station school north south east west victoria king queen george albert bridge market
spring forest meadow garden sunset ridge valley chestnut walnut willow cherry birch ash
harbour beach ocean bay cliff rose lily orchard wattle banksia acacia wallaby kangaroo`
  .split(/\s+/)
  .filter(Boolean);
const STREET_TYPES = ['street', 'road', 'avenue', 'lane', 'drive', 'place', 'court', 'crescent'];
const CITIES: readonly [string, string, string, string][] = [
  // city, state, country, postcode prefix
  ['sydney', 'nsw', 'AU', '2'],
  ['melbourne', 'vic', 'AU', '3'],
  ['brisbane', 'qld', 'AU', '4'],
  ['perth', 'wa', 'AU', '6'],
  ['adelaide', 'sa', 'AU', '5'],
  ['new york', 'ny', 'US', '10'],
  ['boston', 'ma', 'US', '02'],
  ['chicago', 'il', 'US', '60'],
  ['austin', 'tx', 'US', '73'],
  ['seattle', 'wa', 'US', '98'],
  ['london', 'london', 'GB', 'SW'],
  ['manchester', 'manchester', 'GB', 'M'],
  ['berlin', 'berlin', 'DE', '10'],
  ['munich', 'bavaria', 'DE', '80'],
  ['paris', 'idf', 'FR', '75'],
];
const FREE_MAIL = ['gmail.com', 'yahoo.com', 'hotmail.com', 'outlook.com', 'icloud.com'];
const COMPANY_WORDS = `acme globex initech umbrella stark wayne wonka tyrell cyberdyne soylent
hooli vandelay pied piper dunder mifflin gringotts oscorp massive dynamic aperture black mesa
monarch virtucon blue sun nakatomi zorg oceanic primatech sirius ollivander bluth`
  .split(/\s+/)
  .filter(Boolean);
const COMPANY_SUFFIX = ['Inc', 'Ltd', 'LLC', 'GmbH', 'Pty Ltd', 'SA', 'Corp', ''];
const COMPANY_KIND = [
  'Industries',
  'Logistics',
  'Consulting',
  'Systems',
  'Foods',
  'Labs',
  'Partners',
];

class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = seededRandom(seed);
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  /** Zipf-like pick: low indexes much more common (namesakes happen). */
  zipf<T>(xs: readonly T[]): T {
    // rank ~ u^1.5: the most common of ~150 names is ~3.5 % of people (James in the US ~3 %)
    const u = this.r();
    return xs[Math.min(xs.length - 1, Math.floor(xs.length * u * Math.sqrt(u)))] as T;
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(this.int(10));
    return s;
  }
  typo(s: string): string {
    if (s.length < 2) return s;
    const i = this.int(s.length);
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    switch (this.int(4)) {
      case 0: // substitute
        return s.slice(0, i) + this.pick([...letters]) + s.slice(i + 1);
      case 1: // delete
        return s.slice(0, i) + s.slice(i + 1);
      case 2: // insert
        return s.slice(0, i) + this.pick([...letters]) + s.slice(i);
      default: {
        // transpose
        const j = Math.min(i + 1, s.length - 1);
        if (j === i) return s;
        return s.slice(0, i) + (s[j] as string) + (s[i] as string) + s.slice(j + 1);
      }
    }
  }
}

interface Person {
  first: string;
  last: string;
  email: string;
  phone: string;
  mobile: string;
  company: string;
  street: string;
  city: string;
  postcode: string;
  state: string;
  country: string;
  birthdate: string; // YYYY-MM-DD
  nationalId: string;
}

const cap = (s: string) => s.replace(/\b[a-z]/g, (c) => c.toUpperCase());

function phoneFor(g: Gen, country: string): string {
  switch (country) {
    case 'AU':
      return `+61 2 ${g.digits(4)} ${g.digits(4)}`;
    case 'US':
      return `+1 ${String(200 + g.int(700))} ${String(200 + g.int(700))} ${g.digits(4)}`;
    case 'GB':
      return `+44 20 ${g.digits(4)} ${g.digits(4)}`;
    case 'DE':
      return `+49 30 ${g.digits(8)}`;
    default:
      return `+33 1 ${g.digits(2)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)}`;
  }
}
function mobileFor(g: Gen, country: string): string {
  switch (country) {
    case 'AU':
      return `+61 4${g.digits(2)} ${g.digits(3)} ${g.digits(3)}`;
    case 'US':
      return `+1 ${String(200 + g.int(700))} ${String(200 + g.int(700))} ${g.digits(4)}`;
    case 'GB':
      return `+44 7${g.digits(3)} ${g.digits(6)}`;
    case 'DE':
      return `+49 15${g.digits(1)} ${g.digits(8)}`;
    default:
      return `+33 6 ${g.digits(2)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)}`;
  }
}

function address(g: Gen): Pick<Person, 'street' | 'city' | 'postcode' | 'state' | 'country'> {
  const [city, state, country, pre] = g.pick(CITIES);
  const postcode =
    country === 'GB'
      ? `${pre}${1 + g.int(20)} ${g.int(10)}${g.pick([...'ABDEFGHJLNPQRSTUWXYZ'])}${g.pick([...'ABDEFGHJLNPQRSTUWXYZ'])}`
      : (pre + g.digits(5)).slice(0, country === 'AU' ? 4 : 5);
  return {
    street: `${1 + g.int(300)} ${g.pick(STREETS)} ${g.pick(STREET_TYPES)}`,
    city,
    postcode,
    state,
    country,
  };
}

function companyName(g: Gen): string {
  const suffix = g.pick(COMPANY_SUFFIX);
  return `${cap(g.pick(COMPANY_WORDS))} ${g.pick(COMPANY_KIND)}${suffix ? ` ${suffix}` : ''}`;
}

function newPerson(g: Gen, shared?: Partial<Person>): Person {
  const first = g.zipf(FIRST_NAMES);
  const last = g.zipf(LAST_NAMES);
  const addr = address(g);
  const y = 1940 + g.int(65);
  const birthdate = `${y}-${String(1 + g.int(12)).padStart(2, '0')}-${String(1 + g.int(28)).padStart(2, '0')}`;
  const sep = g.pick(['.', '', '_']);
  // a mailbox name is unique at its provider: namesakes get digits
  const local =
    g.chance(0.4) && shared?.first === undefined
      ? `${first}${sep}${last}`
      : `${g.chance(0.5) ? first : (first[0] ?? '')}${sep}${last}${g.digits(3)}`;
  const work = g.chance(0.4);
  const company = companyName(g);
  const domain = work ? `${company.split(' ')[0]?.toLowerCase() ?? 'co'}.com` : g.pick(FREE_MAIL);
  return {
    first,
    last,
    email: `${local}@${domain}`,
    phone: phoneFor(g, addr.country),
    mobile: g.chance(0.6) ? mobileFor(g, addr.country) : '',
    company: g.chance(0.5) ? company : '',
    ...addr,
    birthdate: g.chance(0.3) ? birthdate : '',
    nationalId: g.chance(0.1) ? g.digits(9) : '',
    ...shared,
  };
}

/** A duplicate as a CRM user or an import would re-enter it. */
function corrupt(g: Gen, p: Person): Person {
  const d: Person = { ...p };
  const edits = 1 + g.int(3);
  for (let e = 0; e < edits; e++) {
    switch (g.int(11)) {
      case 0:
        d.first = g.typo(d.first);
        break;
      case 1:
        d.last = g.typo(d.last);
        break;
      case 2: {
        const nick = diminutivesOf(d.first);
        if (nick.length > 0) d.first = g.pick(nick);
        else d.first = g.typo(d.first);
        break;
      }
      case 3:
        [d.first, d.last] = [d.last, d.first];
        break;
      case 4: {
        // new address at another provider, or the work address
        const local = d.email.slice(0, d.email.indexOf('@'));
        d.email = g.chance(0.5) ? `${local}@${g.pick(FREE_MAIL)}` : '';
        break;
      }
      case 5:
        d.phone = g.chance(0.5) ? phoneFor(g, d.country) : '';
        break;
      case 6: {
        // moved
        const addr = address(g);
        Object.assign(d, addr);
        break;
      }
      case 7:
        d.street = g.typo(d.street);
        break;
      case 8:
        if (d.email.includes('@gmail.com')) {
          d.email = d.email.replace('@', '+crm@').replace(/^(\w)/, '$1.');
        } else d.email = d.email.toUpperCase();
        break;
      case 9:
        d.mobile = '';
        d.company = '';
        break;
      default:
        if (d.birthdate !== '') {
          const [y, m, day] = d.birthdate.split('-');
          d.birthdate = g.chance(0.5) ? `${day}/${m}/${y}` : `${y}${m}${day}`;
        }
        d.city = g.chance(0.5) ? d.city.toUpperCase() : d.city;
    }
  }
  if (g.chance(0.3)) d.first = cap(d.first);
  if (g.chance(0.3)) d.last = d.last.toUpperCase();
  if (g.chance(0.2))
    d.phone = d.phone.replace(/^\+\d+ /, '0').replace(/ /g, g.pick(['', '-', ' ']));
  return d;
}

function toRecord(id: string, p: Person): SynthRecord {
  return {
    id,
    firstname: p.first,
    lastname: p.last,
    email: p.email,
    phone: p.phone,
    mobile: p.mobile,
    company: p.company,
    street: p.street,
    city: p.city,
    postcode: p.postcode,
    state: p.state,
    country: p.country,
    birthdate: p.birthdate,
    national_id: p.nationalId,
  };
}

export interface SynthData {
  records: SynthRecord[];
  /** entity label per record id */
  entityOf: Map<string, number>;
}

/**
 * `n` records in random order: about 30 % of people have 1-3 duplicates; 5 % of new people are
 * namesakes of someone, 3 % household members, 3 % colleagues on one switchboard.
 */
export function generateSynthetic(n: number, seed: number): SynthData {
  const g = new Gen(seed);
  const people: Person[] = [];
  const rows: { entity: number; person: Person }[] = [];
  while (rows.length < n) {
    const entity = people.length;
    let p: Person;
    const roll = g.r();
    const other = people.length > 0 ? people[g.int(people.length)] : undefined;
    if (other && roll < 0.05) {
      p = newPerson(g, { first: other.first, last: other.last }); // namesake
      if (g.chance(0.3)) p.city = other.city;
    } else if (other && roll < 0.08) {
      // household: same surname, address and landline
      p = newPerson(g, {
        last: other.last,
        street: other.street,
        city: other.city,
        postcode: other.postcode,
        state: other.state,
        country: other.country,
        phone: other.phone,
      });
    } else if (other && roll < 0.11 && other.company !== '') {
      // colleague: same company, switchboard and office address
      p = newPerson(g, {
        company: other.company,
        phone: other.phone,
        street: other.street,
        city: other.city,
        postcode: other.postcode,
        state: other.state,
        country: other.country,
      });
    } else {
      p = newPerson(g);
    }
    people.push(p);
    rows.push({ entity, person: p });
    if (g.chance(0.3)) {
      const dups = 1 + Math.floor(g.r() * g.r() * 3);
      for (let k = 0; k < dups && rows.length < n; k++)
        rows.push({ entity, person: corrupt(g, p) });
    }
  }
  // Fisher–Yates shuffle: duplicates arrive anywhere after (or before) their original.
  for (let i = rows.length - 1; i > 0; i--) {
    const j = g.int(i + 1);
    [rows[i], rows[j]] = [rows[j] as (typeof rows)[number], rows[i] as (typeof rows)[number]];
  }
  const entityOf = new Map<string, number>();
  const records = rows.map((row, i) => {
    const id = `s${i}`;
    entityOf.set(id, row.entity);
    return toRecord(id, row.person);
  });
  return { records, entityOf };
}

/** Every pair of records of one entity, as "a,b" lines. */
export function truthPairs(data: SynthData): string[] {
  const byEntity = new Map<number, string[]>();
  for (const r of data.records) {
    const e = data.entityOf.get(r.id) as number;
    const list = byEntity.get(e);
    if (list) list.push(r.id);
    else byEntity.set(e, [r.id]);
  }
  const out: string[] = [];
  for (const ids of byEntity.values()) {
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) out.push(`${ids[i]},${ids[j]}`);
    }
  }
  return out;
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function writeSynthetic(data: SynthData, out: string): void {
  mkdirSync(dirname(out), { recursive: true });
  const lines = [SYNTH_COLUMNS.join(',')];
  for (const r of data.records) lines.push(SYNTH_COLUMNS.map((c) => csvCell(r[c])).join(','));
  writeFileSync(out, lines.join('\n') + '\n');
  writeFileSync(`${out}.truth.csv`, ['left_id,right_id', ...truthPairs(data)].join('\n') + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
  };
  const n = Number(arg('--records', '100000'));
  const seed = Number(arg('--seed', '7'));
  const out = arg('--out', `bench/.data/dedupe-synth-${n}.csv`);
  const data = generateSynthetic(n, seed);
  writeSynthetic(data, out);
  process.stdout.write(`wrote ${data.records.length} records to ${out} and ${out}.truth.csv\n`);
}

export const COMPANY_COLUMNS = [
  'id',
  'name',
  'domain',
  'phone',
  'address',
  'city',
  'zip',
  'country',
] as const;
export type CompanyRecord = Record<(typeof COMPANY_COLUMNS)[number], string>;

/** Companies (HubSpot property names) with re-entered duplicates: legal form, typos, www. */
export function generateCompanies(
  n: number,
  seed: number,
): { records: CompanyRecord[]; entityOf: Map<string, number> } {
  const g = new Gen(seed);
  const rows: { entity: number; c: CompanyRecord }[] = [];
  let entity = 0;
  while (rows.length < n) {
    const addr = address(g);
    const base = `${cap(g.pick(COMPANY_WORDS))} ${cap(g.pick(COMPANY_WORDS))} ${g.pick(COMPANY_KIND)}`;
    const domain = `${base.split(' ').slice(0, 2).join('').toLowerCase()}${g.chance(0.3) ? g.digits(2) : ''}.com`;
    const c: CompanyRecord = {
      id: '',
      name: `${base}${g.chance(0.7) ? ` ${g.pick(COMPANY_SUFFIX)}` : ''}`.trim(),
      domain: g.chance(0.7) ? domain : '',
      phone: g.chance(0.7) ? phoneFor(g, addr.country) : '',
      address: addr.street,
      city: addr.city,
      zip: addr.postcode,
      country: addr.country,
    };
    rows.push({ entity, c });
    if (g.chance(0.3)) {
      const d = { ...c };
      switch (g.int(4)) {
        case 0:
          d.name = `${base} ${g.pick(COMPANY_SUFFIX)}`.trim().toUpperCase();
          break;
        case 1:
          d.name = g.typo(d.name);
          break;
        case 2:
          d.domain = d.domain ? `https://www.${d.domain}/` : '';
          d.phone = '';
          break;
        default:
          Object.assign(d, { address: g.typo(d.address), phone: '' });
      }
      if (rows.length < n) rows.push({ entity, c: d });
    }
    entity++;
  }
  const entityOf = new Map<string, number>();
  const records = rows.map((row, i) => {
    const id = `c${i}`;
    entityOf.set(id, row.entity);
    return { ...row.c, id };
  });
  return { records, entityOf };
}
