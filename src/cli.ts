/**
 * The `crm-ledger` command line (commander). Exit codes: 0 success / intact, 1 tampered or failed
 * verification, 2 usage, configuration or connection error.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from './config.js';
import type { Config } from './config.js';
import { isCodedError } from './errors.js';
import { checkpointOrigin } from './ledger/ledger.js';
import { loadVerifierKeys, writeKeyPair } from './ledger/signing-key.js';
import { RedisLedgerStore } from './ledger/store.js';
import { FileTrustStore } from './ledger/trust-store.js';
import { VerificationService } from './ledger/verification.js';
import type { VerifyResult } from './ledger/verifier.js';
import { openRedis, redisUrlFile, startService, trustDir } from './main.js';
import type { Role } from './main.js';
import { createLogger } from './observability/logger.js';
import { createRedis } from './redis/connection.js';
import { verifyBody } from './http/admin.routes.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

function config(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    throw new ExitError(EXIT_USAGE, (err as Error).message);
  }
}

/** The Redis a CLI command reads: configured, a running service's embedded one, or its AOF data. */
async function cliRedisUrl(cfg: Config): Promise<{ url: string; stop: () => Promise<void> }> {
  if (cfg.redis.url) return { url: cfg.redis.url, stop: async () => {} };
  const file = redisUrlFile(cfg.dataDir);
  if (existsSync(file)) {
    const url = (await readFile(file, 'utf8')).trim();
    const probe = createRedis(url, 'cli');
    try {
      await probe.ping();
      return { url, stop: async () => {} };
    } catch {
      // stale file: the service is not running; open its data ourselves below
    } finally {
      probe.disconnect();
    }
  }
  if (!existsSync(join(cfg.dataDir, 'redis'))) {
    throw new ExitError(
      EXIT_USAGE,
      `no ledger data under ${resolve(cfg.dataDir)} and CRM_LEDGER_REDIS_URL is not set`,
    );
  }
  const logger = createLogger({ level: 'warn' });
  const { url, embedded } = await openRedis(cfg, logger);
  return { url, stop: async () => embedded?.stop() };
}

function printResult(result: VerifyResult): void {
  if (result.ok) {
    process.stdout.write(
      `${result.tenant}: intact — ${result.size} blocks, root ${result.root}, signed checkpoint at ${result.checkpointSize}\n`,
    );
  } else {
    process.stdout.write(
      `${result.tenant}: TAMPERED — first bad seq ${result.firstBadSeq} (${result.code}): ${result.reason}\n`,
    );
  }
}

async function verifyCommand(opts: {
  tenant?: string;
  json?: boolean;
  full?: boolean;
}): Promise<number> {
  const cfg = config();
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  try {
    const verifiers = await loadVerifierKeys(cfg.ledger.keyFile).catch((err: unknown) => {
      throw new ExitError(
        EXIT_USAGE,
        `cannot read the ledger's verifier key: ${(err as Error).message}`,
      );
    });
    const service = new VerificationService(
      new RedisLedgerStore(redis),
      { verifiers, originFor: (t) => checkpointOrigin(cfg.ledger.origin, t) },
      new FileTrustStore(trustDir(cfg.dataDir)),
    );
    const mode = opts.full === false ? 'incremental' : 'full';
    const tenants = opts.tenant ? [opts.tenant] : await service.tenants();
    if (opts.tenant && !(await service.tenants()).includes(opts.tenant)) {
      throw new ExitError(EXIT_USAGE, `no chain for tenant ${opts.tenant}`);
    }
    const results: VerifyResult[] = [];
    for (const tenant of tenants) {
      const result = await service.verifyTenant(tenant, mode, (done, total) => {
        if (!opts.json && process.stderr.isTTY)
          process.stderr.write(`\r${tenant}: ${done}/${total} blocks`);
      });
      if (!opts.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      results.push(result);
      if (!opts.json) printResult(result);
    }
    const ok = results.every((r) => r.ok);
    if (opts.json) {
      const body =
        opts.tenant && results[0]
          ? verifyBody(results[0])
          : { ok, tenants: results.map(verifyBody) };
      process.stdout.write(JSON.stringify(body) + '\n');
    } else if (results.length === 0) {
      process.stdout.write('no tenants yet: nothing to verify\n');
    }
    return ok ? EXIT_OK : EXIT_FAILED;
  } finally {
    redis.disconnect();
    await redisInfo.stop();
  }
}

async function serveCommand(opts: { role: Role }): Promise<void> {
  const cfg = config();
  const logger = createLogger({ level: cfg.logLevel });
  const service = await startService(cfg, logger, opts.role);
  if (service.url) {
    process.stdout.write(
      [
        '',
        `  crm-ledger is running (${opts.role}) at ${service.url}`,
        `  Verify the ledger:   curl -H "Authorization: Bearer $(cat ${join(cfg.dataDir, 'admin-token')})" ${service.url}/admin/verify`,
        `  Verifier keys:       curl ${service.url}/admin/keys`,
        '  CRM connectors (HubSpot/Salesforce webhooks and sandbox CRMs) are not wired in yet: no change is received until then.',
        '',
      ].join('\n') + '\n',
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function keygenCommand(opts: { out?: string; name?: string }): Promise<number> {
  const cfg = config();
  const file = opts.out ?? cfg.ledger.keyFile;
  try {
    const { vkey } = await writeKeyPair(file, opts.name ?? cfg.ledger.origin);
    process.stdout.write(
      `wrote signer key ${file} (mode 0600) and ${file}.pub\nverifier key: ${vkey}\n`,
    );
    return EXIT_OK;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ExitError(
        EXIT_USAGE,
        `${file} already exists: refusing to overwrite a signing key`,
      );
    }
    throw err;
  }
}

export function buildProgram(): Command {
  const program = new Command('crm-ledger')
    .description('Tamper-evident ledger for Salesforce and HubSpot customer data')
    .exitOverride()
    .showHelpAfterError();
  program
    .command('serve')
    .description('run the service (api, worker and scheduler in one process by default)')
    .addOption(
      new Option('--role <role>', 'which role to run')
        .choices(['all', 'api', 'worker', 'scheduler'])
        .default('all'),
    )
    .action(async (opts: { role: Role }) => serveCommand(opts));
  program
    .command('verify')
    .description(
      'verify tenant chains against the signed checkpoints (exit 0 intact, 1 tampered, 2 error)',
    )
    .option('--tenant <tenant>', 'verify one tenant, e.g. hubspot:123')
    .option('--json', 'print JSON')
    .option('--no-full', 'verify incrementally from the last verified state')
    .action(async (opts: { tenant?: string; json?: boolean; full?: boolean }) => {
      process.exitCode = await verifyCommand(opts);
    });
  program
    .command('keygen')
    .description("create the ledger's Ed25519 checkpoint signing key (C2SP signed-note format)")
    .option(
      '--out <file>',
      'key file (default: CRM_LEDGER_LEDGER_KEY_FILE or <data dir>/ledger.key)',
    )
    .option('--name <name>', 'key name (default: CRM_LEDGER_LEDGER_ORIGIN)')
    .action(async (opts: { out?: string; name?: string }) => {
      process.exitCode = await keygenCommand(opts);
    });
  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
      return;
    }
    if (err instanceof ExitError) {
      process.stderr.write(`crm-ledger: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    const code = isCodedError(err) ? ` [${err.code}]` : '';
    process.stderr.write(`crm-ledger: ${(err as Error).message}${code}\n`);
    process.exitCode = EXIT_USAGE;
  }
}

// Run when executed directly (`tsx src/cli.ts …`, `node dist/src/cli.js …`); bin/crm-ledger.js
// imports this module and calls runCli itself.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await runCli(process.argv);
}
