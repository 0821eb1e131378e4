/**
 * Checks real HTTP answers against the OpenAPI document served at /admin/openapi.json (JSON
 * Schema 2020-12, as OpenAPI 3.1 uses): the route, method and status must be documented, and the
 * body must validate against the documented schema.
 */
import { expect } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { OPENAPI_DOCUMENT } from '../../src/http/openapi.js';

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(OPENAPI_DOCUMENT, 'openapi');

const pointer = (...parts: string[]) =>
  parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** Validates `body` against the documented schema of (path, method, status). */
export function conforms(path: string, method: string, status: number, body: unknown): void {
  const paths = OPENAPI_DOCUMENT.paths as Record<
    string,
    Record<string, { responses: Record<string, { content?: unknown }> }>
  >;
  const responses = paths[path]?.[method]?.responses;
  expect(responses, `${method.toUpperCase()} ${path} is documented`).toBeDefined();
  expect(
    Object.keys(responses ?? {}),
    `status ${status} of ${method} ${path} is documented`,
  ).toContain(String(status));
  const ref = `openapi#/${pointer('paths', path, method, 'responses', String(status), 'content', 'application/json', 'schema')}`;
  const validate = ajv.getSchema(ref);
  expect(validate, `${ref} has a schema`).toBeDefined();
  const ok = validate?.(body);
  expect(ok, JSON.stringify(validate?.errors)).toBe(true);
}
