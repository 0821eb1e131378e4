/**
 * `crm-ledger witness …` and `crm-ledger repair …` (issue 8):
 *
 *   witness --url U --token-file F --tenant T --log-key <vkey|@file> --data-dir D [--interval S]
 *           [--key-file K] [--name N] [--audit-blocks N] [--once] [--no-report]
 *           [--alert-url U --alert-secret-file F] [--serve HOST:PORT --serve-token-file F]
 *     follows one tenant, keeps its copy in D, cosigns; its own key is made in D/witness.key if
 *     missing and its vkey printed (give it to the service as a witness key). F holds a `witness`
 *     role token (CRM_LEDGER_WITNESS_TOKEN). With --serve it also serves its verified copy,
 *     read-only, to holders of the read token (src/http/witness-copy.routes.ts).
 *   repair --tenant T --from-witness <dir|url> [--witness-token-file F] [--evidence <file>]
 *     replaces the damaged range from the witness copy (its directory, or the witness process's
 *     --serve URL with its read token), only if it verifies against the last checkpoint signed by
 *     the log key, then re-verifies the whole chain.
 *
 * Exit codes follow src/cli.ts: 0 ok, 1 refused / tampered / not repaired, 2 usage or connection.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import type { Config } from '../config.js';
import { parseVerifierKey } from '../ledger/checkpoint.js';
import {
  formatWitnessKey,
  parseWitnessKeys,
  witnessVerifierFromSigner,
} from '../ledger/cosignature.js';
import { checkpointOrigin } from '../ledger/ledger.js';
import { loadVerifierKeys } from '../ledger/signing-key.js';
import { RedisLedgerStore } from '../ledger/store.js';
import { FileTrustStore } from '../ledger/trust-store.js';
import { VerificationService } from '../ledger/verification.js';
import { redisForCli, trustDir } from '../main.js';
import { createLogger } from '../observability/logger.js';
import type { Logger } from '../observability/logger.js';
import { WebhookAlertSink } from '../policy/alerts.js';
import { createRedis } from '../redis/connection.js';
import { WitnessCopy } from './copy.js';
import { loadOrCreateWitnessKey } from './key.js';
import { RepairError, repairFromWitness } from './repair.js';
import type { RepairReport } from './repair.js';
import { RemoteWitnessSource, WitnessSourceError } from './source.js';
import type { WitnessSource } from './source.js';
import { Witness } from './witness.js';

export const WITNESS_EXIT_OK = 0;
export const WITNESS_EXIT_FAILED = 1;
export const WITNESS_EXIT_USAGE = 2;
/** The copy endpoint's read token, like the service's role tokens (config MIN_TOKEN_LENGTH). */
export const MIN_READ_TOKEN_LENGTH = 16;

/** Serves a copy over HTTP (src/http/witness-copy.routes.ts serveWitnessCopy, wired by src/cli.ts). */
export type ServeCopy = (
  deps: { copy: WitnessCopy; token: string; witnessKey: string; logger: Logger },
  host: string,
  port: number,
) => Promise<{ url: string; close: () => Promise<void> }>;

export interface WitnessCliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** stops a running `witness` (SIGINT/SIGTERM by default) */
  stopSignal?: AbortSignal;
  /** what `witness --serve` serves with; absent: --serve is a usage error */
  serveCopy?: ServeCopy;
  /** told the copy's URL once `witness --serve` listens (tests) */
  onServing?: (url: string) => void;
}

const processIo: WitnessCliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  env: process.env,
};

class UsageError extends Error {}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface WitnessCommandOptions {
  url: string;
  tokenFile: string;
  tenant: string;
  logKey: string;
  dataDir: string;
  interval: string;
  keyFile?: string;
  name?: string;
  auditBlocks?: string;
  once?: boolean;
  report: boolean;
  alertUrl?: string;
  alertSecretFile?: string;
  logLevel?: string;
  serve?: string;
  serveTokenFile?: string;
}

export interface RepairCommandOptions {
  tenant: string;
  fromWitness: string;
  witnessTokenFile?: string;
  evidence?: string;
  json?: boolean;
}

export function registerWitnessCommands(
  program: Command,
  baseIo: WitnessCliIo = processIo,
  serveCopy?: ServeCopy,
): void {
  const io: WitnessCliIo = serveCopy ? { ...baseIo, serveCopy } : baseIo;
  program
    .command('witness')
    .description(
      "follow a tenant's log, keep a full copy, and cosign its checkpoints (C2SP tlog-cosignature)",
    )
    .requiredOption('--url <url>', 'the service base URL')
    .requiredOption('--token-file <file>', 'file holding a witness (or operator) token')
    .requiredOption('--tenant <tenant>', 'e.g. hubspot:123')
    .requiredOption('--log-key <vkey>', "the log's verifier key (vkey), or @file (ledger.key.pub)")
    .requiredOption('--data-dir <dir>', "the witness's own data directory")
    .option('--interval <seconds>', 'seconds between rounds', '30')
    .option(
      '--key-file <file>',
      'witness signing key (default: <data-dir>/witness.key, made if missing)',
    )
    .option(
      '--name <name>',
      'witness key name for a new key (default: witness.<hostname>/<tenant>)',
    )
    .option('--audit-blocks <n>', 'old blocks re-read and compared per round (default 1024)')
    .option('--once', 'run one round and exit (0 cosigned or unchanged, 1 refused)')
    .option('--no-report', 'do not ask the service to freeze the tenant on tampering')
    .option('--alert-url <url>', 'alert webhook (signed like the policy alerts)')
    .option('--alert-secret-file <file>', 'HMAC secret for --alert-url')
    .option('--log-level <level>', 'pino level', 'info')
    .option('--serve <host:port>', 'serve the verified copy read-only for `repair --from-witness`')
    .option('--serve-token-file <file>', 'read token the copy endpoint requires (with --serve)')
    .action(async (opts: WitnessCommandOptions) => {
      process.exitCode = await runGuarded(io, () => witnessCommand(opts, io));
    });
  program
    .command('repair')
    .description(
      'replace damaged blocks from a witness copy that verifies against the last signed checkpoint, then re-verify (exit 0 repaired and intact, 1 not, 2 error)',
    )
    .requiredOption('--tenant <tenant>', 'e.g. hubspot:123')
    .requiredOption(
      '--from-witness <dir|url>',
      "a witness's data directory, or the URL its `witness --serve` listens on",
    )
    .option('--witness-token-file <file>', "file holding the witness's read token (with a URL)")
    .option(
      '--evidence <file>',
      'where to keep the replaced bytes (default: ./repair-<tenant>-<time>.json)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (opts: RepairCommandOptions) => {
      process.exitCode = await runGuarded(io, () => repairCommand(opts, io));
    });
}

async function runGuarded(io: WitnessCliIo, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    io.err(
      `crm-ledger: ${(err as Error).message}${typeof code === 'string' ? ` [${code}]` : ''}\n`,
    );
    return WITNESS_EXIT_USAGE;
  }
}

async function readKeyArg(value: string): Promise<string> {
  return value.startsWith('@') ? (await readFile(value.slice(1), 'utf8')).trim() : value.trim();
}

export async function witnessCommand(
  opts: WitnessCommandOptions,
  io: WitnessCliIo,
): Promise<number> {
  const interval = Number(opts.interval);
  if (!(interval > 0)) throw new UsageError('--interval must be a positive number of seconds');
  const audit = opts.auditBlocks === undefined ? undefined : Number(opts.auditBlocks);
  if (audit !== undefined && !(Number.isInteger(audit) && audit >= 0))
    throw new UsageError('--audit-blocks must be a whole number');
  const token = (await readFile(opts.tokenFile, 'utf8')).trim();
  if (token.length === 0) throw new UsageError(`${opts.tokenFile} is empty`);
  const logKeyText = await readKeyArg(opts.logKey);
  const logKey = parseVerifierKey(logKeyText);
  const dataDir = resolve(opts.dataDir);
  const copy = await WitnessCopy.open(dataDir, { tenant: opts.tenant, logKey: logKeyText });
  const signer = await loadOrCreateWitnessKey(
    opts.keyFile ?? join(dataDir, 'witness.key'),
    opts.name ??
      `witness.${hostname().replace(/[^A-Za-z0-9.-]/g, '-')}/${opts.tenant.replace(':', '-')}`,
  );
  const level = opts.logLevel ?? 'info';
  if (!LEVELS.includes(level as (typeof LEVELS)[number]))
    throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
  const logger = createLogger({ level: level as (typeof LEVELS)[number] }).child({
    module: 'witness',
    tenant: opts.tenant,
  });
  const alertSecret = opts.alertSecretFile
    ? (await readFile(opts.alertSecretFile, 'utf8')).trim()
    : undefined;
  if (opts.alertUrl && !alertSecret) throw new UsageError('--alert-url needs --alert-secret-file');
  const witness = new Witness({
    url: opts.url,
    token,
    tenant: opts.tenant,
    logKey,
    signer,
    copy,
    logger,
    reportTampering: opts.report,
    ...(audit !== undefined ? { auditBlocks: audit } : {}),
    ...(opts.alertUrl
      ? { alerts: new WebhookAlertSink({ logger, url: opts.alertUrl, secret: alertSecret }) }
      : {}),
  });
  const witnessKey = formatWitnessKey(witnessVerifierFromSigner(signer));
  io.err(`witness key: ${witnessKey}\n`);
  const serving = opts.serve
    ? await serveCopyFor(opts, io, { copy, witnessKey, logger })
    : undefined;
  try {
    return await followTenant(witness, opts, io, interval);
  } finally {
    await serving?.close();
  }
}

/** `--serve host:port` with `--serve-token-file`: the copy endpoint, or a usage error. */
async function serveCopyFor(
  opts: WitnessCommandOptions,
  io: WitnessCliIo,
  deps: { copy: WitnessCopy; witnessKey: string; logger: Logger },
): Promise<{ url: string; close: () => Promise<void> }> {
  const m = /^(.+):(\d{1,5})$/.exec(opts.serve ?? '');
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError('--serve must be HOST:PORT, e.g. 127.0.0.1:7411');
  if (!opts.serveTokenFile) throw new UsageError('--serve needs --serve-token-file');
  const token = (await readFile(opts.serveTokenFile, 'utf8')).trim();
  if (token.length < MIN_READ_TOKEN_LENGTH)
    throw new UsageError(
      `${opts.serveTokenFile}: the read token needs at least ${MIN_READ_TOKEN_LENGTH} characters`,
    );
  if (!io.serveCopy) throw new UsageError('--serve is not available here');
  const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
  const serving = await io.serveCopy({ ...deps, token }, host, port);
  io.err(`serving the witness copy on ${serving.url}\n`);
  io.onServing?.(serving.url);
  return serving;
}

async function followTenant(
  witness: Witness,
  opts: WitnessCommandOptions,
  io: WitnessCliIo,
  interval: number,
): Promise<number> {
  if (opts.once) {
    const r = await witness.runOnce();
    io.out(JSON.stringify(r) + '\n');
    return r.status === 'refused' ? WITNESS_EXIT_FAILED : WITNESS_EXIT_OK;
  }
  const abort = new AbortController();
  const stop = () => abort.abort();
  if (io.stopSignal) io.stopSignal.addEventListener('abort', stop);
  else {
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  }
  await witness.run(interval * 1000, abort.signal);
  return WITNESS_EXIT_OK;
}

/** The Redis the CLI repairs (see redisForCli), or a usage error saying there is none. */
async function repairRedis(cfg: Config): Promise<{ url: string; stop: () => Promise<void> }> {
  const found = await redisForCli(cfg);
  if (!found)
    throw new UsageError(
      `no ledger data under ${resolve(cfg.dataDir)} and CRM_LEDGER_REDIS_URL is not set`,
    );
  return found;
}

function formatReport(r: RepairReport): string {
  const list = (xs: readonly (number | string)[]) => (xs.length === 0 ? 'none' : xs.join(', '));
  const lines = [
    `${r.tenant}: witness copy verifies against checkpoint ${r.checkpointSize} (root ${r.checkpointRoot})`,
    ...(r.latestCheckpointSize > r.checkpointSize
      ? [
          `  behind:                the latest signed checkpoint is ${r.latestCheckpointSize}: blocks ${r.checkpointSize}–${r.latestCheckpointSize - 1} are not in the copy (the verification below judges them)`,
        ]
      : []),
    `  witness:               ${r.witness.where}${r.witness.cosigned ? ` (${r.witness.cosigned.by} cosigned checkpoint ${r.witness.cosigned.size})` : ''}; ${r.fetched} blocks fetched`,
    `  blocks replaced:       ${list(r.replaced.blocks)}`,
    `  vault entries:         ${list(r.replaced.vault)}`,
    `  record lists:          ${list(r.replaced.records)}`,
    `  tree nodes:            ${r.replaced.treeNodes}`,
    `  head:                  ${r.replaced.head ? 'restored' : 'kept'}`,
    `  checkpoints restored:  ${r.replaced.checkpoints}`,
    r.verification.ok
      ? `  verify: intact — ${r.verification.size} blocks, root ${r.verification.root}`
      : `  verify: TAMPERED — first bad seq ${r.verification.firstBadSeq} (${r.verification.code}): ${r.verification.reason}`,
  ];
  return lines.join('\n') + '\n';
}

/** `--from-witness`: a URL (with its read token) or a data directory. */
async function witnessSourceFor(opts: RepairCommandOptions): Promise<WitnessCopy | WitnessSource> {
  if (!/^https?:\/\//i.test(opts.fromWitness)) {
    if (opts.witnessTokenFile)
      throw new UsageError('--witness-token-file goes with a URL in --from-witness');
    return WitnessCopy.open(resolve(opts.fromWitness));
  }
  let url: URL;
  try {
    url = new URL(opts.fromWitness);
  } catch {
    throw new UsageError(`--from-witness ${opts.fromWitness} is not a URL`);
  }
  if (!opts.witnessTokenFile)
    throw new UsageError(
      "--from-witness <url> needs --witness-token-file (the witness's read token)",
    );
  const token = (await readFile(opts.witnessTokenFile, 'utf8')).trim();
  if (token.length === 0) throw new UsageError(`${opts.witnessTokenFile} is empty`);
  return new RemoteWitnessSource({ url: url.href, token });
}

export async function repairCommand(opts: RepairCommandOptions, io: WitnessCliIo): Promise<number> {
  let cfg: Config;
  try {
    cfg = loadConfig(io.env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const copy = await witnessSourceFor(opts);
  const witnessKeys = parseWitnessKeys(cfg.witnesses.keys);
  const logKeys = await loadVerifierKeys(cfg.ledger.keyFile);
  const redisInfo = await repairRedis(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  try {
    const store = new RedisLedgerStore(redis);
    const verification = new VerificationService(
      store,
      { verifiers: logKeys, originFor: (t) => checkpointOrigin(cfg.ledger.origin, t) },
      new FileTrustStore(trustDir(cfg.dataDir)),
    );
    const evidenceFile =
      opts.evidence ??
      `repair-${opts.tenant.replace(':', '-')}-${new Date().toISOString().replace(/[:.]/g, '')}.json`;
    let report: RepairReport;
    try {
      report = await repairFromWitness(store, verification, {
        tenant: opts.tenant,
        copy,
        logKeys,
        witnessKeys,
        origin: checkpointOrigin(cfg.ledger.origin, opts.tenant),
        // Written before anything in Redis changes: the damaged bytes are evidence.
        keepEvidence: async (evidence) => {
          await writeFile(evidenceFile, JSON.stringify({ tenant: opts.tenant, evidence }) + '\n', {
            flag: 'wx',
          });
          io.err(`replaced bytes kept as evidence in ${evidenceFile}\n`);
        },
      });
    } catch (err) {
      if (err instanceof WitnessSourceError && err.code === 'SOURCE_INVALID') {
        io.err(
          `${opts.tenant}: not repaired — ${err.message} [${err.code}]; nothing was changed\n`,
        );
        return WITNESS_EXIT_FAILED;
      }
      if (!(err instanceof RepairError) || err.code === 'CONTENDED') throw err;
      io.err(`${opts.tenant}: not repaired — ${err.message} [${err.code}]; nothing was changed\n`);
      return WITNESS_EXIT_FAILED;
    }
    io.out(
      opts.json
        ? JSON.stringify({ ...report, evidence: report.evidence.length }) + '\n'
        : formatReport(report),
    );
    return report.verification.ok ? WITNESS_EXIT_OK : WITNESS_EXIT_FAILED;
  } finally {
    redis.disconnect();
    await redisInfo.stop();
  }
}
