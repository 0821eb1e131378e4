/**
 * Composition root: builds every object from Config and wires them. The only file that does.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { Ledger, checkpointOrigin } from './ledger/ledger.js';
import { loadSigningKey, loadVerifierKeys } from './ledger/signing-key.js';
import { RedisLedgerStore } from './ledger/store.js';
import { FileTrustStore } from './ledger/trust-store.js';
import { VerificationService } from './ledger/verification.js';
import { createApp } from './http/app.js';
import { adminTokenFrom, parseTokensFile } from './http/admin-auth.js';
import type { AdminToken } from './http/admin-auth.js';
import { ConfigError } from './errors.js';
import type { Logger } from './observability/logger.js';
import { createRedis } from './redis/connection.js';
import { startRedisServer } from './redis/embedded-server.js';
import { createConnectors } from '../connectors/registry.js';
import { connectionFromUrl, createChangeSink, createChangesQueue } from './pipeline/queues.js';
import { startAnchorWorker } from './pipeline/anchor.worker.js';
import { startAnchorThread } from './pipeline/anchor-thread.js';
import type { EmbeddedRedis } from './redis/embedded-server.js';

export type Role = 'all' | 'api' | 'worker' | 'scheduler';

export interface RunningService {
  url: string;
  redisUrl: string;
  adminToken: string;
  /** the appending ledger; absent for the api role, which holds no signing key */
  ledger: Ledger | undefined;
  stop(): Promise<void>;
}

export function trustDir(dataDir: string): string {
  return join(dataDir, 'verified');
}

/** Where the embedded Redis of a running service can be found by the CLI. */
export function redisUrlFile(dataDir: string): string {
  return join(dataDir, 'redis.url');
}

/** Redis for this process: the configured one, or the embedded `redis-server` under the data dir. */
export async function openRedis(
  config: Config,
  logger: Logger,
): Promise<{ url: string; embedded?: EmbeddedRedis }> {
  if (config.redis.url) return { url: config.redis.url };
  const embedded = await startRedisServer({
    dataDir: join(resolve(config.dataDir), 'redis'),
    persistence: 'aof',
    logger,
  });
  logger.info(
    { url: embedded.url, dataDir: embedded.dataDir },
    'started embedded redis-server (AOF on)',
  );
  return { url: embedded.url, embedded };
}

export interface SandboxCredentials {
  hubspotClientSecret: string;
  salesforceOrgId: string;
}

export function sandboxCredentialsFile(dataDir: string): string {
  return join(dataDir, 'sandbox-credentials.json');
}

/** Local-only webhook credentials for the embedded default, made once (0600). */
export async function sandboxCredentials(dataDir: string): Promise<SandboxCredentials> {
  const file = sandboxCredentialsFile(dataDir);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as SandboxCredentials;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const creds: SandboxCredentials = {
    hubspotClientSecret: randomBytes(24).toString('base64url'),
    // A syntactically valid 15-character org id ("00D" prefix) that no real org has.
    salesforceOrgId: '00D000000SANDBX',
  };
  await writeFile(file, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  return creds;
}

/** The admin token: configured, or generated once into the data dir (0600) and shown at creation. */
async function adminToken(
  config: Config,
  logger: Logger,
): Promise<{ token: string; created: boolean }> {
  if (config.admin.adminToken) return { token: config.admin.adminToken, created: false };
  const file = join(config.dataDir, 'admin-token');
  try {
    return { token: (await readFile(file, 'utf8')).trim(), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('base64url');
  await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
  logger.info({ file }, 'generated an admin token (stored 0600 in the data dir)');
  return { token, created: true };
}

/** Auditor and operator tokens from the environment (hashed here) and the tokens file (digests). */
async function roleTokens(config: Config): Promise<AdminToken[]> {
  const tokens: AdminToken[] = [];
  if (config.admin.auditorToken)
    tokens.push(adminTokenFrom('auditor', 'auditor-token', config.admin.auditorToken));
  if (config.admin.operatorToken)
    tokens.push(adminTokenFrom('operator', 'operator-token', config.admin.operatorToken));
  if (config.admin.tokensFile) {
    try {
      tokens.push(...parseTokensFile(await readFile(config.admin.tokensFile, 'utf8')));
    } catch (err) {
      throw new ConfigError(
        'CONFIG_INVALID',
        `CRM_LEDGER_TOKENS_FILE (${config.admin.tokensFile}): ${(err as Error).message}`,
      );
    }
  }
  return tokens;
}

export async function startService(
  config: Config,
  logger: Logger,
  role: Role = 'all',
): Promise<RunningService> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const { url: redisUrl, embedded } = await openRedis(config, logger);
  const redis: Redis = createRedis(redisUrl, 'worker');
  const requestRedis: Redis = createRedis(redisUrl, 'request');
  if (embedded) await writeFile(redisUrlFile(config.dataDir), redisUrl + '\n', { mode: 0o600 });

  // The signing key is read only where blocks are appended and checkpoints signed (worker, all);
  // the api role verifies with the public key alone.
  const keys =
    role === 'api'
      ? undefined
      : await loadSigningKey(config.ledger.keyFile, {
          name: config.ledger.origin,
          createIfMissing: !config.redis.url,
        });
  if (keys?.created)
    logger.info({ file: config.ledger.keyFile }, 'generated the ledger signing key');
  if (keys?.looseMode)
    logger.warn(
      { file: config.ledger.keyFile },
      'ledger key file is readable by others: chmod 600',
    );
  const verifiers = keys?.verifiers ?? (await loadVerifierKeys(config.ledger.keyFile));

  const store = new RedisLedgerStore(redis);
  const ledger = keys
    ? new Ledger(store, {
        origin: config.ledger.origin,
        signer: keys.signer,
        verifiers: keys.verifiers,
        maxChangeBytes: config.ledger.maxChangeBytes,
        checkpointMinIntervalMs: config.ledger.checkpointMinIntervalMs,
      })
    : undefined;
  const verification = new VerificationService(
    store,
    { verifiers, originFor: (t) => checkpointOrigin(config.ledger.origin, t) },
    new FileTrustStore(trustDir(config.dataDir)),
  );

  // A crash between an append and its checkpoint leaves blocks no checkpoint covers: sign them now.
  if (ledger) {
    for (const tenant of await store.listTenants()) {
      const head = await store.readHead(tenant);
      try {
        const cp = await ledger.checkpointer.cover(tenant, head.size);
        logger.debug({ tenant, size: cp.size }, 'checkpoint up to date');
      } catch (err) {
        // A chain that no longer matches its checkpoints is not signed over; the service still
        // starts so that /admin/verify and `crm-ledger verify` can show what is wrong.
        logger.error({ tenant, err }, 'not signing a checkpoint: the stored chain is inconsistent');
      }
    }
  }

  // The anchor worker: in this thread for `--role worker`; in a worker thread of this process for
  // `--role all`, so that webhooks and anchoring each get a core.
  const worker =
    role === 'worker' && ledger
      ? startAnchorWorker({
          connection: connectionFromUrl(redisUrl, 'worker'),
          ledger,
          logger: logger.child({ module: 'anchor-worker' }),
          batchSize: config.anchor.batchSize,
          batchWaitMs: config.anchor.batchWaitMs,
          lockMs: config.anchor.lockMs,
        })
      : undefined;
  const anchorThread =
    role === 'all'
      ? startAnchorThread({
          redisUrl,
          keyFile: config.ledger.keyFile,
          origin: config.ledger.origin,
          maxChangeBytes: config.ledger.maxChangeBytes,
          checkpointMinIntervalMs: config.ledger.checkpointMinIntervalMs,
          batchSize: config.anchor.batchSize,
          batchWaitMs: config.anchor.batchWaitMs,
          lockMs: config.anchor.lockMs,
          logLevel: config.logLevel,
        })
      : undefined;
  await anchorThread?.ready;

  const { token, created } = await adminToken(config, logger);
  let server: Server | undefined;
  let url = '';
  const queue =
    role === 'all' || role === 'api'
      ? createChangesQueue(connectionFromUrl(redisUrl, 'producer'))
      : undefined;
  if (queue) {
    const hubspot: { clientSecret?: string; publicUrl?: string } = {};
    if (config.hubspot.clientSecret) hubspot.clientSecret = config.hubspot.clientSecret;
    if (config.http.publicUrl) hubspot.publicUrl = config.http.publicUrl;
    let orgIds = config.salesforce.orgIds;
    if (!config.redis.url && !config.hubspot.clientSecret && orgIds.length === 0) {
      // The embedded default with no CRM configured: accept traffic signed with local sandbox
      // credentials, so `crm-ledger demo` (and a person trying things out) can send changes.
      const sandbox = await sandboxCredentials(config.dataDir);
      hubspot.clientSecret = sandbox.hubspotClientSecret;
      orgIds = [sandbox.salesforceOrgId];
      logger.info(
        { file: sandboxCredentialsFile(config.dataDir) },
        'no CRM configured: webhooks accept sandbox credentials (try: npm run demo)',
      );
    }
    const app = createApp({
      webhooks: {
        connectors: createConnectors({ hubspot, salesforce: { orgIds } }),
        sink: createChangeSink(queue),
        logger: logger.child({ module: 'webhooks' }),
      },
      logger: logger.child({ module: 'http' }),
      adminToken: token,
      tokens: await roleTokens(config),
      verifierKeys: verifiers,
      verification,
      ping: () => requestRedis.ping(),
    });
    server = await new Promise<Server>((res, rej) => {
      const s = app.listen(config.http.port, config.http.host, () => res(s));
      s.once('error', rej);
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.http.port;
    url = `http://${config.http.host}:${port}`;
    logger.info({ url, role }, 'crm-ledger listening');
  }
  if (created) {
    // Shown once, at creation: the operator needs it to call /admin/*. Never logged afterwards.
    process.stdout.write(
      `\n  Admin token (saved to ${join(config.dataDir, 'admin-token')}, mode 0600):\n    ${token}\n\n`,
    );
  }

  let stopped = false;
  return {
    url,
    redisUrl,
    adminToken: token,
    ledger,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Stop taking requests, let the worker finish the jobs in hand, then close connections.
      if (server) {
        const s = server;
        await new Promise<void>((r) => s.close(() => r()));
      }
      await worker?.close();
      await anchorThread?.close();
      await queue?.close();
      await Promise.allSettled([redis.quit(), requestRedis.quit()]);
      if (embedded) {
        await embedded.stop();
        await rm(redisUrlFile(config.dataDir), { force: true });
      }
    },
  };
}
