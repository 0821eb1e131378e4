/**
 * The CRM search API of the sandbox (`POST /crm/v3/objects/{type}/search`): filterGroups (OR of
 * ANDs), one sort, offset paging with `after`, `limit` ≤ 200 and HubSpot's cap of 10,000 results
 * per query (crm-protocols.md §3.2). Pure: takes records, returns a page or a validation error.
 */
import type { StoredRecord } from './store.js';
import { StoreError } from './store.js';

export const SEARCH_MAX_LIMIT = 200;
export const SEARCH_DEFAULT_LIMIT = 10;
/** "10,000 results per query" (§3.2): paging past it is refused. */
export const SEARCH_RESULT_CAP = 10_000;
const MAX_FILTER_GROUPS = 5;
const MAX_FILTERS_PER_GROUP = 6;
const MAX_FILTERS_TOTAL = 18;

const OPERATORS = new Set([
  'EQ',
  'NEQ',
  'LT',
  'LTE',
  'GT',
  'GTE',
  'BETWEEN',
  'IN',
  'NOT_IN',
  'HAS_PROPERTY',
  'NOT_HAS_PROPERTY',
  'CONTAINS_TOKEN',
  'NOT_CONTAINS_TOKEN',
]);

/** Properties compared as instants: values may be ISO strings or epoch milliseconds. */
const DATE_PROPERTIES = new Set([
  'createdate',
  'hs_createdate',
  'lastmodifieddate',
  'hs_lastmodifieddate',
  'hs_timestamp',
  'closedate',
]);

/** Searched by the free-text `query` (a subset of HubSpot's default searchable properties). */
const QUERY_PROPERTIES = [
  'email',
  'firstname',
  'lastname',
  'phone',
  'company',
  'name',
  'domain',
  'dealname',
  'hs_note_body',
];

interface Filter {
  propertyName: string;
  operator: string;
  value?: string;
  highValue?: string;
  values?: string[];
}

interface Sort {
  propertyName: string;
  descending: boolean;
}

export interface SearchRequest {
  filters: Filter[][];
  sort: Sort | undefined;
  query: string | undefined;
  limit: number;
  offset: number;
  properties: string[] | undefined;
}

export interface SearchPage {
  total: number;
  results: StoredRecord[];
  /** the `after` of the next page, when there is one within the cap */
  nextAfter: string | undefined;
}

/** Validates a search body as HubSpot does; throws a StoreError (400) when it is malformed. */
export function parseSearchRequest(body: unknown, cap = SEARCH_RESULT_CAP): SearchRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('Invalid input JSON: expected an object');
  }
  const input = body as Record<string, unknown>;
  const limit = input['limit'] === undefined ? SEARCH_DEFAULT_LIMIT : Number(input['limit']);
  if (!Number.isInteger(limit) || limit < 0 || limit > SEARCH_MAX_LIMIT) {
    throw invalid(`limit must be an integer from 0 to ${SEARCH_MAX_LIMIT}`);
  }
  const offset = input['after'] === undefined || input['after'] === '' ? 0 : Number(input['after']);
  if (!Number.isInteger(offset) || offset < 0)
    throw invalid('after must be a non-negative integer');
  if (offset + limit > cap) {
    // HubSpot refuses to page past the cap rather than returning a short page.
    throw new StoreError(
      400,
      'VALIDATION_ERROR',
      `There was a problem with the request. The maximum number of results a search can return is ${cap}; after=${offset} with limit=${limit} goes past it.`,
    );
  }
  const groups = input['filterGroups'] ?? [];
  if (!Array.isArray(groups)) throw invalid('filterGroups must be an array');
  if (groups.length > MAX_FILTER_GROUPS) {
    throw invalid(`at most ${MAX_FILTER_GROUPS} filterGroups are allowed`);
  }
  const filters = groups.map((group: unknown) => parseGroup(group));
  if (filters.flat().length > MAX_FILTERS_TOTAL) {
    throw invalid(`at most ${MAX_FILTERS_TOTAL} filters are allowed in total`);
  }
  const sorts = input['sorts'] ?? [];
  if (!Array.isArray(sorts)) throw invalid('sorts must be an array');
  if (sorts.length > 1) throw invalid('only one sort is allowed');
  const properties = input['properties'];
  if (properties !== undefined && !isStringArray(properties)) {
    throw invalid('properties must be an array of strings');
  }
  const query = input['query'];
  return {
    filters,
    sort: sorts.length === 0 ? undefined : parseSort(sorts[0]),
    query: typeof query === 'string' && query !== '' ? query : undefined,
    limit,
    offset,
    properties,
  };
}

export function runSearch(
  records: Iterable<StoredRecord>,
  request: SearchRequest,
  cap = SEARCH_RESULT_CAP,
): SearchPage {
  const matches = [...records].filter(
    (record) =>
      !record.archived &&
      (request.filters.length === 0 ||
        request.filters.some((group) => group.every((filter) => matches1(record, filter)))) &&
      (request.query === undefined || matchesQuery(record, request.query)),
  );
  const sort = request.sort ?? { propertyName: 'hs_object_id', descending: false };
  matches.sort((a, b) => {
    const order = compareValues(
      sort.propertyName,
      a.properties[sort.propertyName] ?? null,
      b.properties[sort.propertyName] ?? null,
    );
    // Ties are broken by id so that offset paging is stable.
    return (sort.descending ? -order : order) || Number(a.id) - Number(b.id);
  });
  const end = request.offset + request.limit;
  const results = matches.slice(request.offset, end);
  const more = end < Math.min(matches.length, cap);
  return { total: matches.length, results, nextAfter: more ? String(end) : undefined };
}

function parseGroup(group: unknown): Filter[] {
  if (typeof group !== 'object' || group === null) throw invalid('a filterGroup must be an object');
  const filters = (group as Record<string, unknown>)['filters'];
  if (!Array.isArray(filters)) throw invalid('filterGroup.filters must be an array');
  if (filters.length > MAX_FILTERS_PER_GROUP) {
    throw invalid(`at most ${MAX_FILTERS_PER_GROUP} filters are allowed per filterGroup`);
  }
  return filters.map((filter: unknown): Filter => {
    if (typeof filter !== 'object' || filter === null) throw invalid('a filter must be an object');
    const f = filter as Record<string, unknown>;
    const propertyName = f['propertyName'];
    const operator = f['operator'];
    if (typeof propertyName !== 'string' || propertyName === '') {
      throw invalid('filter.propertyName is required');
    }
    if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
      throw invalid(`filter.operator ${String(operator)} is not supported`);
    }
    const out: Filter = { propertyName, operator };
    if (f['value'] !== undefined) out.value = scalar(f['value']);
    if (f['highValue'] !== undefined) out.highValue = scalar(f['highValue']);
    if (f['values'] !== undefined) {
      if (!Array.isArray(f['values'])) throw invalid('filter.values must be an array');
      out.values = (f['values'] as unknown[]).map(scalar);
    }
    const needsValue = !['HAS_PROPERTY', 'NOT_HAS_PROPERTY', 'IN', 'NOT_IN'].includes(operator);
    if (needsValue && out.value === undefined) {
      throw invalid(`filter ${propertyName} ${operator} needs a value`);
    }
    if ((operator === 'IN' || operator === 'NOT_IN') && out.values === undefined) {
      throw invalid(`filter ${propertyName} ${operator} needs values`);
    }
    return out;
  });
}

/** The SDK types `sorts` as strings; the documented form is `{propertyName, direction}`. Both work. */
function parseSort(sort: unknown): Sort {
  if (typeof sort === 'string') {
    return sort.startsWith('-')
      ? { propertyName: sort.slice(1), descending: true }
      : { propertyName: sort, descending: false };
  }
  if (typeof sort === 'object' && sort !== null) {
    const s = sort as Record<string, unknown>;
    if (typeof s['propertyName'] === 'string') {
      return { propertyName: s['propertyName'], descending: s['direction'] === 'DESCENDING' };
    }
  }
  throw invalid('a sort must be a property name or {propertyName, direction}');
}

function matches1(record: StoredRecord, filter: Filter): boolean {
  const actual = record.properties[filter.propertyName] ?? null;
  const present = actual !== null && actual !== '';
  const value = filter.value ?? '';
  switch (filter.operator) {
    case 'HAS_PROPERTY':
      return present;
    case 'NOT_HAS_PROPERTY':
      return !present;
    case 'EQ':
      return present && compareValues(filter.propertyName, actual, value) === 0;
    case 'NEQ':
      return !present || compareValues(filter.propertyName, actual, value) !== 0;
    case 'LT':
      return present && compareValues(filter.propertyName, actual, value) < 0;
    case 'LTE':
      return present && compareValues(filter.propertyName, actual, value) <= 0;
    case 'GT':
      return present && compareValues(filter.propertyName, actual, value) > 0;
    case 'GTE':
      return present && compareValues(filter.propertyName, actual, value) >= 0;
    case 'BETWEEN':
      return (
        present &&
        compareValues(filter.propertyName, actual, value) >= 0 &&
        compareValues(filter.propertyName, actual, filter.highValue ?? value) <= 0
      );
    case 'IN':
      return (
        present &&
        (filter.values ?? []).some((v) => compareValues(filter.propertyName, actual, v) === 0)
      );
    case 'NOT_IN':
      return (
        !present ||
        !(filter.values ?? []).some((v) => compareValues(filter.propertyName, actual, v) === 0)
      );
    case 'CONTAINS_TOKEN':
      return present && containsToken(actual, value);
    case 'NOT_CONTAINS_TOKEN':
      return !present || !containsToken(actual, value);
    default:
      return false;
  }
}

/**
 * HubSpot matches whole words ("tokens"), case-insensitively, with `*` as a wildcard. A value of
 * several words matches when they appear in that order.
 */
function containsToken(text: string, value: string): boolean {
  const words = tokenize(text);
  const wanted = value
    .toLowerCase()
    .split(/[^\p{L}\p{N}_*]+/u)
    .filter((w) => w !== '');
  if (wanted.length === 0) return false;
  const patterns = wanted.map(
    (w) => new RegExp(`^${w.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`),
  );
  for (let start = 0; start + patterns.length <= words.length; start++) {
    if (patterns.every((pattern, i) => pattern.test(words[start + i] as string))) return true;
  }
  return false;
}

function tokenize(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}_]+/u)
    .filter((w) => w !== '');
}

function matchesQuery(record: StoredRecord, query: string): boolean {
  const needle = query.toLowerCase();
  return QUERY_PROPERTIES.some((name) =>
    (record.properties[name] ?? '').toLowerCase().includes(needle),
  );
}

function compareValues(property: string, a: string | null, b: string | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  if (DATE_PROPERTIES.has(property)) {
    const x = instant(a);
    const y = instant(b);
    if (x !== undefined && y !== undefined) return x - y;
  }
  const x = Number(a);
  const y = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && Number.isFinite(y)) return x - y;
  const [p, q] = [a.toLowerCase(), b.toLowerCase()];
  return p < q ? -1 : p > q ? 1 : 0;
}

function instant(value: string): number | undefined {
  if (/^[0-9]{1,16}$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? undefined : parsed;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** A filter value: HubSpot takes strings, and numbers or booleans written as strings. */
function scalar(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw invalid('filter values must be strings or numbers');
}

function invalid(message: string): StoreError {
  return new StoreError(400, 'VALIDATION_ERROR', message);
}
