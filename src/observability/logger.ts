/**
 * The root logger (STYLE.md rule 14: log safely by construction).
 *
 * One pino root per process, built by main.ts; modules receive it and call `.child({ module })`.
 * This is the only sanctioned module-level state besides the root itself, and this file imports
 * nothing from the project, so every layer may depend on it.
 *
 * Redaction is a safety net, not the policy: the policy is that payloads and field values are
 * never logged at all (the vault exists for a reason). The net catches credentials that slip into
 * a logged request, config slice or error object.
 */
import { pino } from 'pino';
import type { DestinationStream, LevelWithSilent, Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export const REDACT_CENSOR = '[redacted]';

/**
 * Paths in pino's redact syntax (`*` matches one level). Keys that hold secrets wherever they
 * appear are listed at the top level, one level down and two levels down (a logged config slice,
 * e.g. `{ config: { admin: { adminToken } } }`).
 */
const SECRET_KEYS = [
  'authorization',
  'token',
  'adminToken',
  'auditorToken',
  'operatorToken',
  'witnessToken',
  'sessionSecret',
  'accessToken',
  'refreshToken',
  'clientSecret',
  'password',
  // Salesforce Outbound Messages carry a session id that acts as a credential.
  'sessionId',
  // C2SP signed-note private key ("PRIVATE+KEY+…") and our ledger signer key.
  'skey',
];

/** Headers that carry credentials (`authorization` is covered by SECRET_KEYS above). */
const SECRET_HEADERS = ['cookie', 'x-hubspot-signature', 'x-hubspot-signature-v3'];

export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
  ...SECRET_HEADERS.flatMap((header) => [
    `headers["${header}"]`,
    `req.headers["${header}"]`,
    `request.headers["${header}"]`,
  ]),
];

export interface CreateLoggerOptions {
  level: LevelWithSilent;
  /** Where lines go; stdout (fd 1) when omitted. Tests pass a stream to read the output. */
  destination?: DestinationStream;
  /** Fields on every line, e.g. `{ role: 'worker' }`. */
  base?: Record<string, unknown>;
}

export function createLogger(options: CreateLoggerOptions): Logger {
  const logger = pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      redact: { paths: [...REDACT_PATHS], censor: REDACT_CENSOR },
      serializers: { err: pino.stdSerializers.err },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
  return logger;
}
