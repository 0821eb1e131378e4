/**
 * Configuration: one zod schema over the process environment (STYLE.md rule 15).
 *
 * Every variable carries the `CRM_LEDGER_` prefix. The schema is keyed by the full variable name, so
 * each zod issue path *is* the variable to fix. `loadConfig` parses once at startup, reports every
 * issue in one message and returns typed slices that main.ts hands to constructors; nothing else
 * reads `process.env`.
 *
 * Values are trimmed, and a blank value counts as unset (`CRM_LEDGER_REDIS_URL=` in a compose file
 * means "use the embedded server", not "invalid URL"). Secrets are never echoed in messages: a
 * bad token is described by its length only.
 */
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { isClusterUrl, parseRedisUrl } from './redis/connection.js';
import { SESSION_SECRET_MIN_BYTES } from './http/admin-session.js';

export const ENV_PREFIX = 'CRM_LEDGER_';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Admin/auditor/operator bearer tokens: long enough that guessing is not an option. */
export const MIN_TOKEN_LENGTH = 16;
export const DEFAULT_HUBSPOT_API_URL = 'https://api.hubapi.com';

export interface Config {
  http: { port: number; host: string; publicUrl?: string; healthPort?: number };
  /** `url` absent: start the embedded `redis-server` under `dataDir`. */
  redis: { url?: string };
  /** production: refuse a Redis that may evict keys or keeps nothing on disk (checkRedisForProduction) */
  mode: 'development' | 'production';
  dataDir: string;
  admin: {
    adminToken?: string;
    auditorToken?: string;
    operatorToken?: string;
    witnessToken?: string;
    tokensFile?: string;
    /** HMAC key of dashboard session cookies, shared by every api replica (random per process when absent) */
    sessionSecret?: string;
  };
  hubspot: {
    clientSecret?: string;
    /** also accept HubSpot's v1 signature (no timestamp, no URI: replayable); off by default */
    acceptV1: boolean;
    accessToken?: string;
    apiUrl: string;
    portalId?: string;
    appId?: string;
    clientId?: string;
    refreshToken?: string;
  };
  salesforce: {
    orgIds: string[];
    instanceUrl?: string;
    accessToken?: string;
    clientId?: string;
    clientSecret?: string;
    refreshToken?: string;
    loginUrl?: string;
    apiVersion: string;
    cdc: boolean;
  };
  /** local sandbox CRMs: `auto` = when no CRM is configured and Redis is embedded */
  sandbox: 'auto' | 'on' | 'off';
  ledger: {
    /** C2SP checkpoint origin line. */
    origin: string;
    /** C2SP signed-note signer key file (never stored in Redis). */
    keyFile: string;
    checkpointMinIntervalMs: number;
    maxChangeBytes: number;
  };
  /** vault master key file (wraps per-record data keys; never stored in Redis), auditor grant */
  vault: { keyFile: string; auditorValues: boolean };
  anchor: { batchSize: number; batchWaitMs: number; lockMs: number };
  policyFile?: string;
  /** duplicate matching before anchoring: all tenants of this deployment are one identity space */
  dedupe: { enabled: boolean; threshold: number; defaultCountry?: string };
  /** witnesses whose cosignatures are accepted (C2SP vkeys), and how many confirm a checkpoint */
  witnesses: { keys: string; quorum: number; local: 'auto' | 'on' | 'off' };
  /** reconciliation against the CRMs (0: off) */
  /** settleMs: changes younger than this are left to their webhooks (still in flight) */
  reconcile: { everyMs: number; settleMs: number };
  /** incremental verification of every chain (0: off) */
  verifyEveryMs: number;
  /** full verification of every chain, from block 0 (0: off) */
  fullVerifyEveryMs: number;
  /** where alerts go (HMAC-signed JSON, Slack-compatible `text`); unset: logged only */
  alerts: { webhookUrl?: string; webhookSecret?: string };
  logLevel: LogLevel;
}

// ---------------------------------------------------------------------------------------------
// Field schemas. Each takes a (trimmed, non-blank) string and produces a typed value or one issue
// whose message reads "expected …, got …" so that "<VAR>: <message>" is a complete sentence.

const MAX_ECHO = 60;

/** Quote a non-secret raw value for an error message, shortened so one bad value stays one line. */
function quote(raw: string): string {
  const shown = raw.length > MAX_ECHO ? `${raw.slice(0, MAX_ECHO - 1)}…` : raw;
  return `'${shown}'`;
}

function integer(min: number, max: number) {
  return z.string().transform((raw, ctx) => {
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({
        code: 'custom',
        message: `expected an integer ${min}-${max}, got ${quote(raw)}`,
      });
      return z.NEVER;
    }
    return n;
  });
}

function text() {
  return z.string();
}

/** A secret with no length rule (CRM-issued credentials): only presence matters here. */
function secret() {
  return z.string();
}

/** A token we issue to people: minimum length, and never echoed back. */
function token() {
  return z.string().superRefine((value, ctx) => {
    if (value.length < MIN_TOKEN_LENGTH) {
      ctx.addIssue({
        code: 'custom',
        message: `expected at least ${MIN_TOKEN_LENGTH} characters, got ${value.length} (value not shown)`,
      });
    }
  });
}

/** The dashboard session HMAC key: at least 32 characters (e.g. `openssl rand -hex 32`), never echoed. */
function sessionSecret() {
  return z.string().superRefine((value, ctx) => {
    if (Buffer.byteLength(value, 'utf8') < SESSION_SECRET_MIN_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: `expected at least ${SESSION_SECRET_MIN_BYTES} bytes (e.g. openssl rand -hex 32), got ${Buffer.byteLength(value, 'utf8')} (value not shown)`,
      });
    }
  });
}

function parseUrl(raw: string): URL | undefined {
  try {
    return new URL(raw);
  } catch {
    return undefined;
  }
}

/**
 * An http(s) base URL. A trailing slash is dropped: PUBLIC_URL is joined with the request path to
 * rebuild the URI HubSpot signed (v3 signs the full URI), and `https://x/` + `/webhooks/…` would
 * sign `//webhooks/…`.
 */
function httpUrl() {
  return z.string().transform((raw, ctx) => {
    const url = parseUrl(raw);
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      ctx.addIssue({
        code: 'custom',
        message: `expected an http:// or https:// URL, got ${quote(raw)}`,
      });
      return z.NEVER;
    }
    if (url.search !== '' || url.hash !== '') {
      ctx.addIssue({
        code: 'custom',
        message: `expected a base URL without query or fragment, got ${quote(raw)}`,
      });
      return z.NEVER;
    }
    return raw.replace(/\/+$/, '');
  });
}

/** A Redis URL may carry a password (`redis://:pw@host`): only its scheme is ever echoed. */
function redisUrl() {
  return z.string().superRefine((value, ctx) => {
    if (isClusterUrl(value)) {
      try {
        parseRedisUrl(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
      return;
    }
    const url = parseUrl(value);
    if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) {
      const got = url === undefined ? 'a value that is not a URL' : `scheme '${url.protocol}//'`;
      ctx.addIssue({
        code: 'custom',
        message: `expected a redis:// or rediss:// URL (or redis+cluster://host:port,…), got ${got}`,
      });
    }
  });
}

function oneOf<const T extends readonly string[]>(values: T) {
  return z.string().transform((raw, ctx) => {
    const lower = raw.toLowerCase();
    const isListed = (v: string): v is T[number] => values.includes(v);
    if (!isListed(lower)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected one of ${values.join('|')}, got ${quote(raw)}`,
      });
      return z.NEVER;
    }
    return lower;
  });
}

/** Salesforce organisation ids: 15-character case-sensitive or 18-character case-safe form. */
const SALESFORCE_ID = /^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/;

function orgIds() {
  return z.string().transform((raw, ctx) => {
    const ids = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const bad = ids.filter((id) => !SALESFORCE_ID.test(id));
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a comma-separated list of 15- or 18-character Salesforce org ids, got ${bad.map(quote).join(', ')}`,
      });
      return z.NEVER;
    }
    return [...new Set(ids)];
  });
}

/**
 * C2SP tlog-checkpoint: the origin "MUST be non-empty" and "SHOULD be a schema-less URL containing
 * neither Unicode spaces nor plus (U+002B)"; signed-note key names share the no-space/no-plus rule.
 * We enforce the SHOULD too: a checkpoint other tools cannot parse is worth little.
 */
function origin() {
  return z.string().superRefine((raw, ctx) => {
    const problem = /[\s+]/u.test(raw)
      ? 'must not contain spaces or "+"'
      : raw.includes('://')
        ? 'must be schema-less (no "scheme://")'
        : undefined;
    if (problem !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a checkpoint origin such as 'example.com/ledger' (${problem}), got ${quote(raw)}`,
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The schema.

const EnvObject = z
  .object({
    CRM_LEDGER_PORT: integer(0, 65535).default(3000),
    CRM_LEDGER_HEALTH_PORT: integer(0, 65535).optional(),
    CRM_LEDGER_HOST: text().default('127.0.0.1'),
    CRM_LEDGER_REDIS_URL: redisUrl().optional(),
    CRM_LEDGER_MODE: oneOf(['development', 'production'] as const).default('development'),
    CRM_LEDGER_DATA_DIR: text().default('./data'),
    CRM_LEDGER_PUBLIC_URL: httpUrl().optional(),
    CRM_LEDGER_ADMIN_TOKEN: token().optional(),
    CRM_LEDGER_AUDITOR_TOKEN: token().optional(),
    CRM_LEDGER_OPERATOR_TOKEN: token().optional(),
    CRM_LEDGER_WITNESS_TOKEN: token().optional(),
    CRM_LEDGER_TOKENS_FILE: text().optional(),
    CRM_LEDGER_SESSION_SECRET: sessionSecret().optional(),
    CRM_LEDGER_HUBSPOT_CLIENT_SECRET: secret().optional(),
    CRM_LEDGER_HUBSPOT_ACCEPT_V1: oneOf(['on', 'off'] as const).default('off'),
    CRM_LEDGER_HUBSPOT_ACCESS_TOKEN: secret().optional(),
    CRM_LEDGER_HUBSPOT_API_URL: httpUrl().default(DEFAULT_HUBSPOT_API_URL),
    CRM_LEDGER_HUBSPOT_PORTAL_ID: text().optional(),
    CRM_LEDGER_HUBSPOT_APP_ID: text().optional(),
    CRM_LEDGER_HUBSPOT_CLIENT_ID: text().optional(),
    CRM_LEDGER_HUBSPOT_REFRESH_TOKEN: secret().optional(),
    CRM_LEDGER_SALESFORCE_ORG_IDS: orgIds().default([]),
    CRM_LEDGER_SALESFORCE_INSTANCE_URL: httpUrl().optional(),
    CRM_LEDGER_SALESFORCE_ACCESS_TOKEN: secret().optional(),
    CRM_LEDGER_SALESFORCE_CLIENT_ID: text().optional(),
    CRM_LEDGER_SALESFORCE_CLIENT_SECRET: secret().optional(),
    CRM_LEDGER_SALESFORCE_REFRESH_TOKEN: secret().optional(),
    CRM_LEDGER_SALESFORCE_LOGIN_URL: httpUrl().optional(),
    CRM_LEDGER_SALESFORCE_API_VERSION: text().default('61.0'),
    CRM_LEDGER_SALESFORCE_CDC: oneOf(['on', 'off'] as const).default('on'),
    CRM_LEDGER_SANDBOX: oneOf(['auto', 'on', 'off'] as const).default('auto'),
    CRM_LEDGER_POLICY_FILE: text().optional(),
    CRM_LEDGER_DEDUPE: oneOf(['on', 'off'] as const).default('on'),
    CRM_LEDGER_DEDUPE_THRESHOLD: z.coerce.number().min(0).max(1).default(0.9),
    CRM_LEDGER_DEDUPE_DEFAULT_COUNTRY: text().optional(),
    CRM_LEDGER_RECONCILE_EVERY_MS: integer(0, 86_400_000).default(900_000),
    CRM_LEDGER_RECONCILE_SETTLE_MS: integer(0, 3_600_000).default(60_000),
    CRM_LEDGER_VERIFY_EVERY_MS: integer(0, 86_400_000).default(900_000),
    CRM_LEDGER_FULL_VERIFY_EVERY_MS: integer(0, 7 * 86_400_000).default(86_400_000),
    CRM_LEDGER_WITNESS_KEYS: text().optional(),
    CRM_LEDGER_WITNESS_QUORUM: integer(1, 100).default(1),
    CRM_LEDGER_LOCAL_WITNESS: oneOf(['auto', 'on', 'off'] as const).default('auto'),
    // Read where the hasher loads (src/ledger/batch-hash.ts); declared here to be checked.
    CRM_LEDGER_NATIVE: oneOf(['auto', 'off'] as const).default('auto'),
    CRM_LEDGER_ALERT_WEBHOOK_URL: httpUrl().optional(),
    CRM_LEDGER_ALERT_WEBHOOK_SECRET: secret().optional(),
    CRM_LEDGER_LOG_LEVEL: oneOf(LOG_LEVELS).default('info'),
    CRM_LEDGER_LEDGER_ORIGIN: origin().default('crm-ledger.local'),
    CRM_LEDGER_LEDGER_KEY_FILE: text().optional(),
    CRM_LEDGER_CHECKPOINT_MIN_INTERVAL_MS: integer(0, 86_400_000).default(0),
    CRM_LEDGER_ANCHOR_BATCH_SIZE: integer(1, 1000).default(128),
    CRM_LEDGER_ANCHOR_BATCH_WAIT_MS: integer(0, 60_000).default(20),
    CRM_LEDGER_ANCHOR_LOCK_MS: integer(1_000, 600_000).default(30_000),
    CRM_LEDGER_MAX_CHANGE_BYTES: integer(1024, 16 * 1024 * 1024).default(65_536),
    CRM_LEDGER_VAULT_KEY_FILE: text().optional(),
    CRM_LEDGER_VAULT_AUDITOR_VALUES: oneOf(['on', 'off'] as const).default('off'),
  })
  // Cross-field rules. `when: () => true` runs them even when a field already failed, so one
  // start reports everything. They test presence only (a present-but-invalid field is still
  // present, and its own issue is already reported).
  .superRefine(
    (env, ctx) => {
      const has = (name: keyof typeof env): boolean => env[name] !== undefined;
      if (has('CRM_LEDGER_SALESFORCE_ACCESS_TOKEN') && !has('CRM_LEDGER_SALESFORCE_INSTANCE_URL')) {
        ctx.addIssue({
          code: 'custom',
          path: ['CRM_LEDGER_SALESFORCE_INSTANCE_URL'],
          message:
            'required when CRM_LEDGER_SALESFORCE_ACCESS_TOKEN is set (the token is only valid against its own instance)',
        });
      }
      // An allow-list is how Outbound Messages from other orgs are refused; connecting a real org
      // with an empty list would refuse every message, so say so at startup, not at 3 a.m.
      const salesforceConnected =
        has('CRM_LEDGER_SALESFORCE_ACCESS_TOKEN') || has('CRM_LEDGER_SALESFORCE_INSTANCE_URL');
      const orgs = env.CRM_LEDGER_SALESFORCE_ORG_IDS;
      if (salesforceConnected && Array.isArray(orgs) && orgs.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['CRM_LEDGER_SALESFORCE_ORG_IDS'],
          message:
            'required when Salesforce is connected (CRM_LEDGER_SALESFORCE_INSTANCE_URL or _ACCESS_TOKEN set): list the org ids whose messages are accepted',
        });
      }
      if (has('CRM_LEDGER_ALERT_WEBHOOK_URL') && !has('CRM_LEDGER_ALERT_WEBHOOK_SECRET')) {
        ctx.addIssue({
          code: 'custom',
          path: ['CRM_LEDGER_ALERT_WEBHOOK_SECRET'],
          message:
            'required when CRM_LEDGER_ALERT_WEBHOOK_URL is set (alerts are HMAC-signed with it)',
        });
      }
      // Webhooks from a connected HubSpot app can only be verified with its client secret.
      if (has('CRM_LEDGER_HUBSPOT_ACCESS_TOKEN') && !has('CRM_LEDGER_HUBSPOT_CLIENT_SECRET')) {
        ctx.addIssue({
          code: 'custom',
          path: ['CRM_LEDGER_HUBSPOT_CLIENT_SECRET'],
          message:
            'required when CRM_LEDGER_HUBSPOT_ACCESS_TOKEN is set (webhook signatures are verified with it)',
        });
      }
      // Role tokens must differ, or the weaker role silently holds the stronger one's rights.
      const roles = [
        'CRM_LEDGER_ADMIN_TOKEN',
        'CRM_LEDGER_AUDITOR_TOKEN',
        'CRM_LEDGER_OPERATOR_TOKEN',
        'CRM_LEDGER_WITNESS_TOKEN',
      ] as const;
      roles.forEach((name, i) => {
        const value = env[name];
        const earlier = roles.slice(0, i).find((other) => env[other] === value);
        if (typeof value === 'string' && earlier !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `must differ from ${earlier} (each role needs its own token)`,
          });
        }
      });
    },
    { when: () => true },
  );

type Env = z.output<typeof EnvObject>;
type EnvName = keyof Env;

function toConfig(env: Env): Config {
  const optional = <K extends string, V>(key: K, value: V | undefined) =>
    (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
  const dataDir = env.CRM_LEDGER_DATA_DIR;
  return {
    http: {
      port: env.CRM_LEDGER_PORT,
      host: env.CRM_LEDGER_HOST,
      ...optional('publicUrl', env.CRM_LEDGER_PUBLIC_URL),
      ...optional('healthPort', env.CRM_LEDGER_HEALTH_PORT),
    },
    redis: { ...optional('url', env.CRM_LEDGER_REDIS_URL) },
    mode: env.CRM_LEDGER_MODE,
    dataDir,
    admin: {
      ...optional('adminToken', env.CRM_LEDGER_ADMIN_TOKEN),
      ...optional('auditorToken', env.CRM_LEDGER_AUDITOR_TOKEN),
      ...optional('operatorToken', env.CRM_LEDGER_OPERATOR_TOKEN),
      ...optional('witnessToken', env.CRM_LEDGER_WITNESS_TOKEN),
      ...optional('tokensFile', env.CRM_LEDGER_TOKENS_FILE),
      ...optional('sessionSecret', env.CRM_LEDGER_SESSION_SECRET),
    },
    hubspot: {
      ...optional('clientSecret', env.CRM_LEDGER_HUBSPOT_CLIENT_SECRET),
      acceptV1: env.CRM_LEDGER_HUBSPOT_ACCEPT_V1 === 'on',
      ...optional('accessToken', env.CRM_LEDGER_HUBSPOT_ACCESS_TOKEN),
      apiUrl: env.CRM_LEDGER_HUBSPOT_API_URL,
      ...optional('portalId', env.CRM_LEDGER_HUBSPOT_PORTAL_ID),
      ...optional('appId', env.CRM_LEDGER_HUBSPOT_APP_ID),
      ...optional('clientId', env.CRM_LEDGER_HUBSPOT_CLIENT_ID),
      ...optional('refreshToken', env.CRM_LEDGER_HUBSPOT_REFRESH_TOKEN),
    },
    salesforce: {
      orgIds: env.CRM_LEDGER_SALESFORCE_ORG_IDS,
      ...optional('instanceUrl', env.CRM_LEDGER_SALESFORCE_INSTANCE_URL),
      ...optional('accessToken', env.CRM_LEDGER_SALESFORCE_ACCESS_TOKEN),
      ...optional('clientId', env.CRM_LEDGER_SALESFORCE_CLIENT_ID),
      ...optional('clientSecret', env.CRM_LEDGER_SALESFORCE_CLIENT_SECRET),
      ...optional('refreshToken', env.CRM_LEDGER_SALESFORCE_REFRESH_TOKEN),
      ...optional('loginUrl', env.CRM_LEDGER_SALESFORCE_LOGIN_URL),
      apiVersion: env.CRM_LEDGER_SALESFORCE_API_VERSION,
      cdc: env.CRM_LEDGER_SALESFORCE_CDC === 'on',
    },
    sandbox: env.CRM_LEDGER_SANDBOX,
    ledger: {
      origin: env.CRM_LEDGER_LEDGER_ORIGIN,
      keyFile: env.CRM_LEDGER_LEDGER_KEY_FILE ?? path.join(dataDir, 'ledger.key'),
      checkpointMinIntervalMs: env.CRM_LEDGER_CHECKPOINT_MIN_INTERVAL_MS,
      maxChangeBytes: env.CRM_LEDGER_MAX_CHANGE_BYTES,
    },
    vault: {
      keyFile: env.CRM_LEDGER_VAULT_KEY_FILE ?? path.join(dataDir, 'vault-master.json'),
      auditorValues: env.CRM_LEDGER_VAULT_AUDITOR_VALUES === 'on',
    },
    anchor: {
      batchSize: env.CRM_LEDGER_ANCHOR_BATCH_SIZE,
      batchWaitMs: env.CRM_LEDGER_ANCHOR_BATCH_WAIT_MS,
      lockMs: env.CRM_LEDGER_ANCHOR_LOCK_MS,
    },
    ...optional('policyFile', env.CRM_LEDGER_POLICY_FILE),
    dedupe: {
      enabled: env.CRM_LEDGER_DEDUPE === 'on',
      threshold: env.CRM_LEDGER_DEDUPE_THRESHOLD,
      ...optional('defaultCountry', env.CRM_LEDGER_DEDUPE_DEFAULT_COUNTRY),
    },
    reconcile: {
      everyMs: env.CRM_LEDGER_RECONCILE_EVERY_MS,
      settleMs: env.CRM_LEDGER_RECONCILE_SETTLE_MS,
    },
    verifyEveryMs: env.CRM_LEDGER_VERIFY_EVERY_MS,
    fullVerifyEveryMs: env.CRM_LEDGER_FULL_VERIFY_EVERY_MS,
    witnesses: {
      keys: env.CRM_LEDGER_WITNESS_KEYS ?? '',
      quorum: env.CRM_LEDGER_WITNESS_QUORUM,
      local: env.CRM_LEDGER_LOCAL_WITNESS,
    },
    alerts: {
      ...optional('webhookUrl', env.CRM_LEDGER_ALERT_WEBHOOK_URL),
      ...optional('webhookSecret', env.CRM_LEDGER_ALERT_WEBHOOK_SECRET),
    },
    logLevel: env.CRM_LEDGER_LOG_LEVEL,
  };
}

/** Keep only our variables, trimmed; blank counts as unset. */
function normaliseEnv(input: unknown): unknown {
  if (typeof input !== 'object' || input === null) return input;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(input)) {
    if (!name.startsWith(ENV_PREFIX) || typeof value !== 'string') continue;
    const trimmed = value.trim();
    if (trimmed !== '') out[name] = trimmed;
  }
  return out;
}

const ConfigSchema = z.preprocess(normaliseEnv, EnvObject).transform(toConfig);

/**
 * Parse the environment into a `Config`, or throw `ConfigError('CONFIG_INVALID')` whose message
 * lists every issue, one per line, each starting with the variable's name.
 */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const result = ConfigSchema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.length > 0 ? issue.path.map(String).join('.') : '(environment)';
    return `  ${name}: ${issue.message}`;
  });
  const count = lines.length === 1 ? '1 issue' : `${lines.length} issues`;
  throw new ConfigError('CONFIG_INVALID', `Invalid configuration (${count}):\n${lines.join('\n')}`);
}

// ---------------------------------------------------------------------------------------------
// Documentation rows for the README table. Typed as Record<EnvName, …> so a variable added to the
// schema without a row (or a row without a variable) fails to compile.

export interface ConfigVariable {
  name: string;
  /** Human-readable default; `null` when the variable is optional with no default. */
  default: string | null;
  description: string;
}

const DOCS: Record<EnvName, Omit<ConfigVariable, 'name'>> = {
  CRM_LEDGER_PORT: { default: '3000', description: 'HTTP port (0-65535; 0 picks a free port).' },
  CRM_LEDGER_HEALTH_PORT: {
    default: null,
    description:
      'worker and scheduler roles: serve GET /healthz and /readyz on this port (CRM_LEDGER_HOST) for health checks and probes; unset: none.',
  },
  CRM_LEDGER_HOST: { default: '127.0.0.1', description: 'HTTP bind address.' },
  CRM_LEDGER_REDIS_URL: {
    default: 'unset: embedded redis-server (AOF) under the data directory',
    description:
      'redis:// or rediss:// URL of the shared Redis; redis+cluster://[user:pw@]host:port,host:port,… (rediss+cluster:// TLS) for a Redis Cluster.',
  },
  CRM_LEDGER_MODE: {
    default: 'development',
    description:
      'production: refuse a Redis (each cluster master) that evicts keys (maxmemory-policy) or has no AOF/RDB persistence; development: warn only.',
  },
  CRM_LEDGER_DATA_DIR: {
    default: './data',
    description: 'Directory for the embedded Redis, the ledger key and the generated admin token.',
  },
  CRM_LEDGER_PUBLIC_URL: {
    default: null,
    description:
      'Base http(s) URL the CRMs call; used to rebuild the signed URI behind proxies. Trailing slash dropped.',
  },
  CRM_LEDGER_ADMIN_TOKEN: {
    default: null,
    description: `Bearer token for /admin/* (at least ${MIN_TOKEN_LENGTH} characters); generated once if unset.`,
  },
  CRM_LEDGER_AUDITOR_TOKEN: {
    default: null,
    description: `Read-only auditor token (at least ${MIN_TOKEN_LENGTH} characters, distinct from the others).`,
  },
  CRM_LEDGER_OPERATOR_TOKEN: {
    default: null,
    description: `Operator token (at least ${MIN_TOKEN_LENGTH} characters, distinct from the others).`,
  },
  CRM_LEDGER_WITNESS_TOKEN: {
    default: null,
    description: `Witness token (at least ${MIN_TOKEN_LENGTH} characters, distinct from the others): checkpoints, proofs, blocks, cosignatures, freeze.`,
  },
  CRM_LEDGER_TOKENS_FILE: {
    default: null,
    description:
      'JSON file of further admin tokens, stored as SHA-256 digests only ([{"name","role","sha256"}]); see crm-ledger token create.',
  },
  CRM_LEDGER_SESSION_SECRET: {
    default: null,
    description:
      'Key (at least 32 bytes, e.g. `openssl rand -hex 32`) that signs dashboard session cookies; give every api replica the same one. Unset: random per process (sessions end on restart).',
  },
  CRM_LEDGER_HUBSPOT_CLIENT_SECRET: {
    default: null,
    description: 'HubSpot app client secret, verifies webhook signatures.',
  },
  CRM_LEDGER_HUBSPOT_ACCEPT_V1: {
    default: 'off',
    description:
      'on: also accept webhooks signed with HubSpot v1 (X-HubSpot-Signature, no timestamp or URI, so replayable; only for an app that cannot send v3). v3 is always checked first.',
  },
  CRM_LEDGER_HUBSPOT_ACCESS_TOKEN: {
    default: null,
    description: 'HubSpot access token for write-back and reconciliation; needs the client secret.',
  },
  CRM_LEDGER_HUBSPOT_API_URL: {
    default: DEFAULT_HUBSPOT_API_URL,
    description: 'HubSpot API base URL (override for the sandbox).',
  },
  CRM_LEDGER_HUBSPOT_PORTAL_ID: {
    default: null,
    description:
      'HubSpot account (portal) id: the tenant hubspot:<id> that write-back and reconciliation serve.',
  },
  CRM_LEDGER_HUBSPOT_APP_ID: {
    default: null,
    description:
      "Our HubSpot app's id: changes it makes (flags, reverts) come back as its own echo and are not judged again.",
  },
  CRM_LEDGER_HUBSPOT_CLIENT_ID: {
    default: null,
    description: 'HubSpot OAuth client id, for refreshing the access token.',
  },
  CRM_LEDGER_HUBSPOT_REFRESH_TOKEN: {
    default: null,
    description:
      'HubSpot OAuth refresh token (with the client id and secret): access tokens are refreshed on 401.',
  },
  CRM_LEDGER_SALESFORCE_ORG_IDS: {
    default: 'empty',
    description:
      'Comma-separated 15- or 18-character org ids accepted by the Salesforce webhook; required once Salesforce is connected.',
  },
  CRM_LEDGER_SALESFORCE_INSTANCE_URL: {
    default: null,
    description: 'Salesforce instance URL, e.g. https://example.my.salesforce.com.',
  },
  CRM_LEDGER_SALESFORCE_ACCESS_TOKEN: {
    default: null,
    description: 'Salesforce access token; needs the instance URL.',
  },
  CRM_LEDGER_SALESFORCE_CLIENT_ID: {
    default: null,
    description: 'Salesforce connected app consumer key, for refreshing the session.',
  },
  CRM_LEDGER_SALESFORCE_CLIENT_SECRET: {
    default: null,
    description: 'Salesforce connected app consumer secret.',
  },
  CRM_LEDGER_SALESFORCE_REFRESH_TOKEN: {
    default: null,
    description: 'Salesforce OAuth refresh token: sessions are refreshed on INVALID_SESSION_ID.',
  },
  CRM_LEDGER_SALESFORCE_LOGIN_URL: {
    default: null,
    description: 'Salesforce OAuth login URL (default https://login.salesforce.com).',
  },
  CRM_LEDGER_SALESFORCE_API_VERSION: {
    default: '61.0',
    description: 'Salesforce REST API version.',
  },
  CRM_LEDGER_SALESFORCE_CDC: {
    default: 'on',
    description:
      'Subscribe to Change Data Capture (/data/ChangeEvents) when Salesforce is connected: on|off. With CDC and Outbound Messages both set up, CDC wins.',
  },
  CRM_LEDGER_SANDBOX: {
    default: 'auto',
    description:
      'Local sandbox HubSpot and Salesforce: auto (when no CRM is configured and Redis is embedded), on, off.',
  },
  CRM_LEDGER_POLICY_FILE: { default: null, description: 'Path to the change policy file.' },
  CRM_LEDGER_DEDUPE: {
    default: 'on',
    description:
      'Match each contact/lead/company/account change against the customers already known (all tenants together) before anchoring: on|off.',
  },
  CRM_LEDGER_DEDUPE_THRESHOLD: {
    default: '0.9',
    description: 'Match probability (0-1) above which a change is judged a duplicate.',
  },
  CRM_LEDGER_DEDUPE_DEFAULT_COUNTRY: {
    default: null,
    description: 'ISO country for phone numbers and dates of records that name none (e.g. US, AU).',
  },
  CRM_LEDGER_RECONCILE_EVERY_MS: {
    default: '900000',
    description:
      'How often each CRM is compared with the ledger (changes that bypassed the webhooks are anchored and flagged); 0 turns it off.',
  },
  CRM_LEDGER_RECONCILE_SETTLE_MS: {
    default: '60000',
    description:
      'Changes younger than this are left to their webhooks (still in flight) by reconciliation.',
  },
  CRM_LEDGER_VERIFY_EVERY_MS: {
    default: '900000',
    description:
      'How often every chain is verified incrementally by the scheduler (tampering freezes the tenant); 0 turns it off.',
  },
  CRM_LEDGER_FULL_VERIFY_EVERY_MS: {
    default: '86400000',
    description:
      'How often every chain is verified in full, from its first block (slower; catches what incremental runs do not re-read); 0 turns it off.',
  },
  CRM_LEDGER_WITNESS_KEYS: {
    default: null,
    description:
      'Witness verifier keys (C2SP vkeys, comma or space separated) whose checkpoint cosignatures are accepted and put into evidence bundles (crm-ledger witness prints its vkey).',
  },
  CRM_LEDGER_WITNESS_QUORUM: {
    default: '1',
    description: 'How many witness cosignatures confirm a checkpoint (k of n).',
  },
  CRM_LEDGER_LOCAL_WITNESS: {
    default: 'auto',
    description:
      'A witness inside the service (copies under <data dir>/witness/, for trying a repair; not independent): auto (with the sandbox CRMs), on, off.',
  },
  CRM_LEDGER_NATIVE: {
    default: 'auto',
    description:
      'The native addon (native/, built by npm install): batch hashing and link scanning for verification (~15-25 % less CPU per verified block), field texts and vault sealing for appends (~25 % less Node CPU per appended block): auto (used when built), off (node:crypto only).',
  },
  CRM_LEDGER_ALERT_WEBHOOK_URL: {
    default: null,
    description:
      'Alerts (tampering, policy alerts) are POSTed here as HMAC-signed JSON with a Slack-compatible text; unset: logged only.',
  },
  CRM_LEDGER_ALERT_WEBHOOK_SECRET: {
    default: null,
    description: 'HMAC-SHA256 secret for the X-CRM-Ledger-Signature header of alerts.',
  },
  CRM_LEDGER_LOG_LEVEL: { default: 'info', description: `Log level: ${LOG_LEVELS.join('|')}.` },
  CRM_LEDGER_LEDGER_ORIGIN: {
    default: 'crm-ledger.local',
    description: 'Checkpoint origin line (C2SP): schema-less, no spaces or "+".',
  },
  CRM_LEDGER_LEDGER_KEY_FILE: {
    default: '<DATA_DIR>/ledger.key',
    description: 'C2SP signer key file for checkpoints (Ed25519); never stored in Redis.',
  },
  CRM_LEDGER_CHECKPOINT_MIN_INTERVAL_MS: {
    default: '0',
    description: 'Minimum time between signed checkpoints of one tenant (0 = every append).',
  },
  CRM_LEDGER_ANCHOR_BATCH_SIZE: {
    default: '128',
    description: 'Most changes anchored in one append (1-1000).',
  },
  CRM_LEDGER_ANCHOR_BATCH_WAIT_MS: {
    default: '20',
    description: 'How long the anchor worker waits to fill a batch (0-60000).',
  },
  CRM_LEDGER_ANCHOR_LOCK_MS: {
    default: '30000',
    description:
      'How long an anchor job stays locked to a worker that stops answering (a crashed worker’s jobs are retried after it).',
  },
  CRM_LEDGER_MAX_CHANGE_BYTES: {
    default: '65536',
    description: 'Largest accepted change event, in bytes (1 KiB-16 MiB).',
  },
  CRM_LEDGER_VAULT_KEY_FILE: {
    default: '<DATA_DIR>/vault-master.json',
    description:
      'Vault master key file (AES-256, mode 0600): wraps the per-record data keys; never stored in Redis. Generated on the embedded default.',
  },
  CRM_LEDGER_VAULT_AUDITOR_VALUES: {
    default: 'off',
    description:
      'on: auditor tokens also see decrypted field values in histories and evidence (default: commitments and metadata only).',
  },
};

/** One row per variable, in schema order, for the README configuration table. */
export function describeConfig(): ConfigVariable[] {
  return Object.keys(EnvObject.shape).map((name) => ({ name, ...DOCS[name as EnvName] }));
}
