/**
 * RFC 8785 JSON Canonicalization Scheme (JCS).
 *
 * JCS is defined in terms of ECMAScript's own JSON serialisation: strings are escaped as
 * `JSON.stringify` escapes them, numbers are written as `Number.prototype.toString` writes them
 * (which `JSON.stringify` also does for finite numbers, with -0 as "0"), and object members are
 * sorted by their names compared as UTF-16 code units — which is what the default
 * `Array.prototype.sort` does. Anything JSON cannot represent exactly (NaN, Infinity, undefined,
 * functions, bigints, lone surrogates, non-plain objects) is rejected rather than silently dropped.
 */
import { InputError } from '../errors.js';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };

export function canonicalize(value: unknown): string {
  return serialize(value, '$');
}

/** Canonical UTF-8 bytes of `value`. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(serialize(value, '$'), 'utf8');
}

function serialize(value: unknown, path: string): string {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) {
        throw new InputError('FIELD_VALUE_INVALID', `${path}: string has a lone surrogate`, path);
      }
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new InputError('FIELD_VALUE_INVALID', `${path}: number is not finite`, path);
      }
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += serialize(value[i], `${path}[${i}]`);
        }
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new InputError('FIELD_VALUE_INVALID', `${path}: not a plain JSON object`, path);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        if (!key.isWellFormed()) {
          throw new InputError(
            'FIELD_VALUE_INVALID',
            `${path}: member name has a lone surrogate`,
            path,
          );
        }
        if (i > 0) out += ',';
        out += JSON.stringify(key) + ':' + serialize(record[key], `${path}.${key}`);
      }
      return out + '}';
    }
    default:
      throw new InputError(
        'FIELD_VALUE_INVALID',
        `${path}: ${typeof value} is not a JSON value`,
        path,
      );
  }
}
