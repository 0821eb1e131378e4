/**
 * The small SOQL subset the sandbox understands: what jsforce's `conn.query`/`sobject().find()`
 * emit and what our client sends.
 *
 *   SELECT f1, f2 | FIELDS(ALL|STANDARD|CUSTOM) | COUNT() FROM Obj
 *   [WHERE cond]  cond := term | cond AND cond | cond OR cond | NOT cond | ( cond )
 *                 term := field (= | != | <> | < | <= | > | >= | LIKE) literal
 *                       | field [NOT] IN ( literal, … )
 *   [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]
 *
 * Literals: 'strings' (backslash escapes), numbers, true/false/null, date-times
 * (2026-01-02T03:04:05Z, with optional .sss and ±hh:mm) and dates (2026-01-02).
 * Text comparisons are case-insensitive, as in Salesforce; ids compare exactly.
 * Parse errors throw SoqlError, which the server answers as 400 MALFORMED_QUERY.
 */

export class SoqlError extends Error {
  readonly errorCode = 'MALFORMED_QUERY';
}

export type SoqlValue = string | number | boolean | null | { dateTime: number };

export type SelectItem =
  | { kind: 'field'; name: string }
  | { kind: 'fields'; which: 'ALL' | 'STANDARD' | 'CUSTOM' }
  | { kind: 'count' };

export type Condition =
  | { kind: 'and' | 'or'; items: Condition[] }
  | { kind: 'not'; item: Condition }
  | { kind: 'cmp'; field: string; op: CmpOp; value: SoqlValue }
  | { kind: 'in'; field: string; values: SoqlValue[]; negate: boolean };

type CmpOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'LIKE';

export interface SoqlQuery {
  select: SelectItem[];
  object: string;
  where?: Condition;
  orderBy: { field: string; desc: boolean; nullsLast: boolean }[];
  limit?: number;
  offset?: number;
}

type Token =
  | { t: 'word'; v: string }
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'dt'; v: number }
  | { t: 'punct'; v: string };

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text.charAt(i);
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new SoqlError('unterminated string literal');
        const c = text.charAt(i);
        if (c === '\\') {
          const next = text.charAt(i + 1);
          const escapes: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' };
          value += escapes[next] ?? next;
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      tokens.push({ t: 'str', v: value });
    } else if ('(),'.includes(ch)) {
      tokens.push({ t: 'punct', v: ch });
      i++;
    } else if ('=!<>'.includes(ch)) {
      const two = text.slice(i, i + 2);
      if (['!=', '<>', '<=', '>='].includes(two)) {
        tokens.push({ t: 'punct', v: two === '<>' ? '!=' : two });
        i += 2;
      } else if (ch === '!') {
        throw new SoqlError("unexpected '!'");
      } else {
        tokens.push({ t: 'punct', v: ch });
        i++;
      }
    } else {
      const m = /^[A-Za-z0-9_.:+\-*]+/.exec(text.slice(i));
      if (!m) throw new SoqlError(`unexpected character ${JSON.stringify(ch)}`);
      const word = m[0];
      i += word.length;
      if (DATE_TIME.test(word)) {
        const iso = word.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
        const ms = Date.parse(iso);
        if (!Number.isFinite(ms)) throw new SoqlError(`invalid date-time ${word}`);
        tokens.push({ t: 'dt', v: ms });
      } else if (DATE.test(word)) {
        const ms = Date.parse(`${word}T00:00:00Z`);
        if (!Number.isFinite(ms)) throw new SoqlError(`invalid date ${word}`);
        tokens.push({ t: 'dt', v: ms });
      } else if (/^-?\d+(?:\.\d+)?$/.test(word)) {
        tokens.push({ t: 'num', v: Number(word) });
      } else if (/^[A-Za-z][A-Za-z0-9_.]*$/.test(word)) {
        tokens.push({ t: 'word', v: word });
      } else {
        throw new SoqlError(`unexpected token ${JSON.stringify(word)}`);
      }
    }
  }
  return tokens;
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }
  private next(): Token {
    const token = this.tokens[this.pos++];
    if (token === undefined) throw new SoqlError('unexpected end of query');
    return token;
  }
  private isKeyword(word: string, offset = 0): boolean {
    const token = this.tokens[this.pos + offset];
    return token?.t === 'word' && token.v.toUpperCase() === word;
  }
  private keyword(word: string): void {
    if (!this.isKeyword(word)) throw new SoqlError(`expected ${word}`);
    this.pos++;
  }
  private punct(p: string): void {
    const token = this.next();
    if (token.t !== 'punct' || token.v !== p) throw new SoqlError(`expected '${p}'`);
  }
  private isPunct(p: string): boolean {
    const token = this.peek();
    return token?.t === 'punct' && token.v === p;
  }
  private identifier(): string {
    const token = this.next();
    if (token.t !== 'word') throw new SoqlError('expected a field or object name');
    return token.v;
  }

  parse(): SoqlQuery {
    this.keyword('SELECT');
    const select: SelectItem[] = [];
    do {
      if (select.length > 0) this.punct(',');
      if (this.isKeyword('FIELDS')) {
        this.pos++;
        this.punct('(');
        const which = this.identifier().toUpperCase();
        if (which !== 'ALL' && which !== 'STANDARD' && which !== 'CUSTOM') {
          throw new SoqlError('FIELDS() takes ALL, STANDARD or CUSTOM');
        }
        this.punct(')');
        select.push({ kind: 'fields', which });
      } else if (this.isKeyword('COUNT')) {
        this.pos++;
        this.punct('(');
        this.punct(')');
        select.push({ kind: 'count' });
      } else {
        select.push({ kind: 'field', name: this.identifier() });
      }
    } while (this.isPunct(','));
    this.keyword('FROM');
    const object = this.identifier();
    const query: SoqlQuery = { select, object, orderBy: [] };
    if (this.isKeyword('WHERE')) {
      this.pos++;
      query.where = this.orCondition();
    }
    if (this.isKeyword('ORDER')) {
      this.pos++;
      this.keyword('BY');
      do {
        if (query.orderBy.length > 0) this.punct(',');
        const field = this.identifier();
        let desc = false;
        if (this.isKeyword('ASC')) this.pos++;
        else if (this.isKeyword('DESC')) {
          this.pos++;
          desc = true;
        }
        let nullsLast = desc;
        if (this.isKeyword('NULLS')) {
          this.pos++;
          const where = this.identifier().toUpperCase();
          if (where !== 'FIRST' && where !== 'LAST') throw new SoqlError('expected FIRST or LAST');
          nullsLast = where === 'LAST';
        }
        query.orderBy.push({ field, desc, nullsLast });
      } while (this.isPunct(','));
    }
    if (this.isKeyword('LIMIT')) {
      this.pos++;
      query.limit = this.count('LIMIT');
    }
    if (this.isKeyword('OFFSET')) {
      this.pos++;
      query.offset = this.count('OFFSET');
    }
    if (this.peek() !== undefined) throw new SoqlError('unexpected text after the query');
    if (select.some((item) => item.kind === 'fields' && item.which !== 'STANDARD')) {
      // Salesforce: "The SOQL FIELDS function must have a LIMIT of at most 200".
      if (query.limit === undefined || query.limit > 200) {
        throw new SoqlError('FIELDS(ALL) and FIELDS(CUSTOM) need a LIMIT of at most 200');
      }
    }
    return query;
  }

  private count(clause: string): number {
    const token = this.next();
    if (token.t !== 'num' || !Number.isInteger(token.v) || token.v < 0) {
      throw new SoqlError(`${clause} takes a non-negative integer`);
    }
    return token.v;
  }

  private orCondition(): Condition {
    const items = [this.andCondition()];
    while (this.isKeyword('OR')) {
      this.pos++;
      items.push(this.andCondition());
    }
    return items.length === 1 ? (items[0] as Condition) : { kind: 'or', items };
  }

  private andCondition(): Condition {
    const items = [this.unaryCondition()];
    while (this.isKeyword('AND')) {
      this.pos++;
      items.push(this.unaryCondition());
    }
    return items.length === 1 ? (items[0] as Condition) : { kind: 'and', items };
  }

  private unaryCondition(): Condition {
    if (this.isKeyword('NOT')) {
      this.pos++;
      return { kind: 'not', item: this.unaryCondition() };
    }
    if (this.isPunct('(')) {
      this.pos++;
      const inner = this.orCondition();
      this.punct(')');
      return inner;
    }
    const field = this.identifier();
    if (this.isKeyword('IN') || (this.isKeyword('NOT') && this.isKeyword('IN', 1))) {
      const negate = this.isKeyword('NOT');
      this.pos += negate ? 2 : 1;
      this.punct('(');
      const values: SoqlValue[] = [];
      do {
        if (values.length > 0) this.punct(',');
        values.push(this.literal());
      } while (this.isPunct(','));
      this.punct(')');
      return { kind: 'in', field, values, negate };
    }
    if (this.isKeyword('LIKE')) {
      this.pos++;
      return { kind: 'cmp', field, op: 'LIKE', value: this.literal() };
    }
    const token = this.next();
    if (token.t !== 'punct' || !['=', '!=', '<', '<=', '>', '>='].includes(token.v)) {
      throw new SoqlError(`expected an operator after ${field}`);
    }
    return { kind: 'cmp', field, op: token.v as CmpOp, value: this.literal() };
  }

  private literal(): SoqlValue {
    const token = this.next();
    switch (token.t) {
      case 'str':
      case 'num':
        return token.v;
      case 'dt':
        return { dateTime: token.v };
      case 'word': {
        const word = token.v.toLowerCase();
        if (word === 'true') return true;
        if (word === 'false') return false;
        if (word === 'null') return null;
        throw new SoqlError(`unexpected ${token.v} where a value was expected`);
      }
      case 'punct':
        throw new SoqlError(`unexpected '${token.v}' where a value was expected`);
    }
  }
}

/** Throws SoqlError on anything outside the subset. */
export function parseSoql(text: string): SoqlQuery {
  if (text.length > 100_000) throw new SoqlError('query too long');
  return new Parser(tokenize(text)).parse();
}

export type SoqlRecord = Readonly<Record<string, unknown>>;

/** Whether a record matches the WHERE clause. */
export function matches(record: SoqlRecord, where: Condition | undefined): boolean {
  if (where === undefined) return true;
  switch (where.kind) {
    case 'and':
      return where.items.every((item) => matches(record, item));
    case 'or':
      return where.items.some((item) => matches(record, item));
    case 'not':
      return !matches(record, where.item);
    case 'in': {
      const found = where.values.some(
        (value) => compare(record[where.field], value, where.field) === 0,
      );
      return where.negate ? !found : found;
    }
    case 'cmp': {
      const actual = record[where.field];
      if (where.op === 'LIKE') {
        if (typeof actual !== 'string' || typeof where.value !== 'string') return false;
        return likeToRegExp(where.value).test(actual);
      }
      const order = compare(actual, where.value, where.field);
      switch (where.op) {
        case '=':
          return order === 0;
        case '!=':
          return order !== 0;
        case '<':
          return order !== undefined && order < 0;
        case '<=':
          return order !== undefined && order <= 0;
        case '>':
          return order !== undefined && order > 0;
        case '>=':
          return order !== undefined && order >= 0;
      }
    }
  }
}

/** Sorts in place by ORDER BY (nulls first ascending, as Salesforce does by default). */
export function sortRecords<T extends SoqlRecord>(
  records: T[],
  orderBy: SoqlQuery['orderBy'],
): T[] {
  return records.sort((a, b) => {
    for (const { field, desc, nullsLast } of orderBy) {
      const x = a[field];
      const y = b[field];
      const xNull = x === null || x === undefined;
      const yNull = y === null || y === undefined;
      if (xNull || yNull) {
        if (xNull && yNull) continue;
        return (xNull ? -1 : 1) * (nullsLast ? -1 : 1);
      }
      const order = compare(x, toSoqlValue(y), field) ?? 0;
      if (order !== 0) return desc ? -order : order;
    }
    return 0;
  });
}

function toSoqlValue(value: unknown): SoqlValue {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return value;
  }
  return null;
}

/** -1/0/1, or undefined when the two cannot be compared (null against a value, mixed types). */
function compare(actual: unknown, expected: SoqlValue, field: string): number | undefined {
  if (expected === null) return actual === null || actual === undefined ? 0 : undefined;
  if (actual === null || actual === undefined) return undefined;
  if (typeof expected === 'object') {
    if (typeof actual !== 'string') return undefined;
    const ms = Date.parse(actual.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
    return Number.isFinite(ms) ? Math.sign(ms - expected.dateTime) : undefined;
  }
  if (typeof expected === 'number') {
    return typeof actual === 'number' ? Math.sign(actual - expected) : undefined;
  }
  if (typeof expected === 'boolean') {
    return typeof actual === 'boolean' ? (actual === expected ? 0 : actual ? 1 : -1) : undefined;
  }
  if (typeof actual !== 'string') return undefined;
  if (isIdField(field)) return actual < expected ? -1 : actual > expected ? 1 : 0;
  const a = actual.toLowerCase();
  const e = expected.toLowerCase();
  return a < e ? -1 : a > e ? 1 : 0;
}

function isIdField(field: string): boolean {
  return field === 'Id' || field.endsWith('Id');
}

function likeToRegExp(pattern: string): RegExp {
  const source = pattern
    .split('')
    .map((ch) => (ch === '%' ? '.*' : ch === '_' ? '.' : ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 'is');
}
