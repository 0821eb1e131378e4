/**
 * The policy file: YAML, validated with zod, every problem reported with its line and column.
 * docs/policy.md describes the format; this file is its executable definition.
 *
 * The YAML is read as YAML 1.2 (the `yaml` package's default core schema), so `22:00` is a string
 * (YAML 1.1 would read it as the sexagesimal number 1320) and `on`/`yes` are not booleans.
 */
import { LineCounter, isMap, isNode, isPair, isScalar, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { CHANGE_KINDS } from '../model/change-event.js';
import { PolicyError } from './errors.js';
import type { PolicyIssue } from './errors.js';

/** Largest policy file we read: a policy is a few hundred rules, not a data set. */
export const MAX_POLICY_BYTES = 1024 * 1024;
/** Aliases are legal YAML but a classic expansion bomb; a policy needs few. */
const MAX_ALIAS_COUNT = 100;

export const POLICY_ACTIONS = ['flag', 'revert', 'alert', 'quarantine'] as const;
export type PolicyActionType = (typeof POLICY_ACTIONS)[number];

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** Sliding windows for limits: 1 second to 7 days. */
export const MIN_WINDOW_MS = 1_000;
export const MAX_WINDOW_MS = 7 * 24 * 3_600_000;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `10m` → 600000. Returns undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text);
  if (!m?.[1] || !m[2]) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** `22:00` → minutes after midnight (0..1440; `24:00` only as an end). */
export function parseClock(text: string): number | undefined {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(text);
  if (!m?.[1] || !m[2]) return undefined;
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  return minutes > 1440 ? undefined : minutes;
}

/**
 * Sources as the policy names them: HubSpot change sources upper-case (`CRM_UI`, `IMPORT`, …) and
 * Salesforce CDC `changeOrigin` clients as `client=<Client_ID>` (the id keeps its case). `client:X`
 * is accepted as a spelling of `client=X`.
 */
export function normaliseSource(text: string): string | undefined {
  const client = /^client[=:]([A-Za-z0-9_.-]{1,80})\/?$/i.exec(text);
  if (client?.[1]) return `client=${client[1]}`;
  if (/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(text)) return text.toUpperCase();
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/** One value or a non-empty list of them; always a list after parsing. */
function oneOrMany<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (v: unknown): unknown => (Array.isArray(v) ? (v as unknown[]) : [v]),
    z.array(item).min(1, 'expected at least one entry'),
  );
}

/** Names with optional `*` (any run of characters) and `?` (one character). */
const globText = z
  .string()
  .min(1, 'expected a name or glob')
  .max(256)
  .refine((s) => !s.includes('**'), 'use a single * (it already matches any characters)');

const ruleNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'expected a name of letters, digits, ".", "_" and "-" (at most 64)',
  );
const groupNameSchema = ruleNameSchema;

const tenantGlob = globText.refine(
  (s) => s === '*' || /^(hubspot|salesforce|\*):[A-Za-z0-9_*?-]{1,64}$/.test(s),
  'expected "*" or "<hubspot|salesforce>:<account id>" (globs allowed, e.g. "hubspot:*")',
);
const objectGlob = globText.refine(
  (s) => /^[A-Za-z0-9_*?]{1,80}$/.test(s),
  'expected an object name like contact or my_object__c (globs allowed, e.g. "*__c")',
);
const fieldGlob = globText;
const actorGlob = globText.refine(
  (s) => s.length <= 256,
  'expected an actor id like "hubspot:user:42"',
);

const sourceSchema = z.string().transform((s, ctx) => {
  const source = normaliseSource(s);
  if (source === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a source like CRM_UI, API, IMPORT, INTEGRATION, WORKFLOW or client=<id>',
    });
    return z.NEVER;
  }
  return source;
});

const kindSchema = z.enum(CHANGE_KINDS, {
  error: `expected a change kind: ${CHANGE_KINDS.join(', ')}`,
});

const clockSchema = z
  .string({ error: 'expected a time of day "HH:MM" in UTC (quote it)' })
  .refine((s) => parseClock(s) !== undefined, 'expected a time of day "HH:MM" (00:00 to 24:00)');

const timeWindowSchema = z
  .strictObject({
    /** start, inclusive, UTC */
    from: clockSchema,
    /** end, exclusive, UTC; earlier than `from` means the window crosses midnight */
    to: clockSchema,
    /** days on which the window starts (a Fri 22:00–06:00 window ends on Saturday morning) */
    days: oneOrMany(
      z.enum(WEEKDAYS, { error: `expected a weekday: ${WEEKDAYS.join(', ')}` }),
    ).optional(),
  })
  .refine((w) => w.from !== '24:00', { path: ['from'], message: 'a window starts before 24:00' });
export type TimeWindowSpec = z.output<typeof timeWindowSchema>;

const principalsShape = {
  actors: oneOrMany(actorGlob).optional(),
  groups: oneOrMany(groupNameSchema).optional(),
  sources: oneOrMany(sourceSchema).optional(),
};

/** who (actors, groups, sources: any one suffices) and when (any listed window) */
const accessSchema = z
  .strictObject({ ...principalsShape, time: oneOrMany(timeWindowSchema).optional() })
  .refine(
    (a) => a.actors ?? a.groups ?? a.sources ?? a.time,
    'list at least one of actors, groups, sources, time',
  );
export type AccessSpec = z.output<typeof accessSchema>;

const matchSchema = z.strictObject({
  tenant: oneOrMany(tenantGlob).optional(),
  object: oneOrMany(objectGlob).optional(),
  kind: oneOrMany(kindSchema).optional(),
  /** the rule applies when the change touches at least one of these fields */
  fields: oneOrMany(fieldGlob).optional(),
  ...principalsShape,
});
export type MatchSpec = z.output<typeof matchSchema>;

const limitSchema = z.strictObject({
  max: z
    .number({ error: 'expected a whole number of changes' })
    .int('expected a whole number of changes')
    .min(1)
    .max(10_000_000),
  window: z.string({ error: 'expected a duration like "10m" or "1h"' }).refine((s) => {
    const ms = parseDuration(s);
    return ms !== undefined && ms >= MIN_WINDOW_MS && ms <= MAX_WINDOW_MS;
  }, 'expected a duration from 1s to 7d, like "30s", "10m", "1h"'),
  per: z.enum(['actor', 'total'], { error: 'expected "actor" or "total"' }).default('actor'),
});
export type LimitSpec = z.output<typeof limitSchema>;

function isValidRegex(source: string): boolean {
  try {
    new RegExp(source, 'u');
    return true;
  } catch {
    return false;
  }
}

const domainSchema = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/,
    'expected a domain like "mailinator.com" or "*.example.org"',
  );

const valueCheckSchema = z
  .strictObject({
    /** which fields (names or globs) this check reads */
    field: oneOrMany(fieldGlob),
    /** risky when a non-empty value fails the format */
    format: z.enum(['email', 'phone'], { error: 'expected "email" or "phone"' }).optional(),
    /** ISO 3166 region for phone numbers written without a +country prefix */
    country: z
      .string()
      .regex(/^[A-Z]{2}$/, 'expected a two-letter region code like "US"')
      .optional(),
    /** risky when the value matches this regular expression (JavaScript syntax, `u` flag) */
    matches: z.string().max(1024).refine(isValidRegex, 'not a valid regular expression').optional(),
    ignoreCase: z.boolean().optional(),
    /** risky when an email's domain (or a parent domain for `*.x`) is on this list */
    denyDomains: z.array(domainSchema).min(1).optional(),
    /** risky when the change empties the field (null or blank) */
    notEmpty: z.boolean().optional(),
  })
  .refine(
    (c) => c.format ?? c.matches ?? c.denyDomains ?? c.notEmpty,
    'a value check needs at least one of format, matches, denyDomains, notEmpty',
  );
export type ValueCheckSpec = z.output<typeof valueCheckSchema>;

const ruleSchema = z
  .strictObject({
    name: ruleNameSchema,
    description: z.string().max(1000).optional(),
    match: matchSchema.default({}),
    allow: accessSchema.optional(),
    deny: accessSchema.optional(),
    limit: limitSchema.optional(),
    values: z.array(valueCheckSchema).min(1).optional(),
    action: oneOrMany(
      z.enum(POLICY_ACTIONS, { error: `expected an action: ${POLICY_ACTIONS.join(', ')}` }),
    ).default([]),
    /** overrides the verdict type (unauthorised for allow/deny, anomaly otherwise) */
    verdict: z.enum(['unauthorised', 'anomaly']).optional(),
  })
  .superRefine((rule, ctx) => {
    const kinds = [
      rule.allow || rule.deny ? 'allow/deny' : undefined,
      rule.limit ? 'limit' : undefined,
      rule.values ? 'values' : undefined,
    ].filter((k) => k !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          kinds.length === 0
            ? 'a rule needs one of allow/deny, limit or values'
            : `a rule has one of allow/deny, limit or values, not ${kinds.join(' and ')}`,
      });
    }
    if (rule.limit && rule.action.includes('revert')) {
      ctx.addIssue({
        code: 'custom',
        path: ['action'],
        message: 'revert is not available on limit rules (a mass change has no single value)',
      });
    }
  });
export type RuleSpec = z.output<typeof ruleSchema>;

export const policySchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }),
    groups: z.record(groupNameSchema, z.array(actorGlob)).default({}),
    /** changes by these are never judged (e.g. crm-ledger's own write-backs coming back) */
    exempt: z.strictObject(principalsShape).optional(),
    rules: z.array(ruleSchema).default([]),
  })
  .superRefine((doc, ctx) => {
    const seen = new Map<string, number>();
    doc.rules.forEach((rule, i) => {
      const first = seen.get(rule.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'name'],
          message: `duplicate rule name "${rule.name}" (first at rules[${first}])`,
        });
      } else {
        seen.set(rule.name, i);
      }
      const refs: [string, string[] | undefined][] = [
        ['match', rule.match.groups],
        ['allow', rule.allow?.groups],
        ['deny', rule.deny?.groups],
      ];
      for (const [where, groups] of refs) {
        groups?.forEach((g, j) => {
          if (!Object.hasOwn(doc.groups, g)) {
            ctx.addIssue({
              code: 'custom',
              path: ['rules', i, where, 'groups', j],
              message: `unknown group "${g}" (define it under groups:)`,
            });
          }
        });
      }
    });
    doc.exempt?.groups?.forEach((g) => {
      if (!Object.hasOwn(doc.groups, g)) {
        ctx.addIssue({
          code: 'custom',
          path: ['exempt', 'groups'],
          message: `unknown group "${g}"`,
        });
      }
    });
  });
export type PolicyDocument = z.output<typeof policySchema>;

// ---------------------------------------------------------------------------------------------
// Parsing with locations

export interface ParsedPolicy {
  document: PolicyDocument;
  /** the YAML as plain data, before defaults: what the policy's SHA-256 is computed over */
  data: unknown;
}

/**
 * Parses and validates a policy file's text. Throws PolicyError (POLICY_YAML_INVALID or
 * POLICY_INVALID) listing every problem with its 1-based line and column.
 */
export function parsePolicy(text: string): ParsedPolicy {
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) {
    throw new PolicyError('POLICY_INVALID', [
      {
        line: undefined,
        column: undefined,
        path: '',
        message: `file is larger than ${MAX_POLICY_BYTES} bytes`,
      },
    ]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      'POLICY_YAML_INVALID',
      doc.errors.map((err) => {
        const pos = lineCounter.linePos(err.pos[0]);
        return {
          line: pos.line,
          column: pos.col,
          path: '',
          message: firstLine(err.message),
        };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new PolicyError(
      'POLICY_YAML_INVALID',
      [{ line: undefined, column: undefined, path: '', message: (err as Error).message }],
      { cause: err },
    );
  }
  if (data === null || data === undefined) {
    throw new PolicyError('POLICY_INVALID', [
      { line: 1, column: 1, path: '', message: 'the file is empty (expected "version: 1")' },
    ]);
  }
  const result = policySchema.safeParse(data);
  if (!result.success) {
    throw new PolicyError(
      'POLICY_INVALID',
      result.error.issues.map((issue) => locate(doc.contents, lineCounter, issue)),
    );
  }
  return { document: result.data, data };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/** The zod issue's path mapped back to the YAML node that caused it (or its nearest parent). */
function locate(root: unknown, lineCounter: LineCounter, issue: z.core.$ZodIssue): PolicyIssue {
  let path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
    path = [...path, issue.keys[0]];
  }
  let node: unknown = root;
  let keyNode: unknown;
  let found = 0;
  for (const segment of path) {
    const next = childOf(node, segment);
    if (next === undefined) break;
    node = next.value;
    keyNode = next.key;
    found++;
  }
  // An unknown key or a bad key: point at the key; otherwise at the value.
  const target =
    issue.code === 'unrecognized_keys' && found === path.length && keyNode !== undefined
      ? keyNode
      : node;
  const offset = isNode(target) ? (target as YamlNode).range?.[0] : undefined;
  const pos = offset === undefined ? undefined : lineCounter.linePos(offset);
  return {
    line: pos?.line,
    column: pos?.col,
    path: formatPath(path),
    message:
      issue.code === 'unrecognized_keys'
        ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message,
  };
}

function childOf(
  node: unknown,
  segment: string | number,
): { key: unknown; value: unknown } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = isScalar(pair.key) ? pair.key.value : pair.key;
      if (key === segment || String(key) === String(segment)) {
        return { key: pair.key, value: pair.value ?? pair.key };
      }
    }
    return undefined;
  }
  if (node !== null && typeof node === 'object' && 'items' in node && typeof segment === 'number') {
    const items = (node as { items: unknown[] }).items;
    const item = items[segment];
    return item === undefined ? undefined : { key: undefined, value: item };
  }
  return undefined;
}

function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}
