/**
 * Composition root: builds every object from Config and wires them. The only file that does.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join, relative, resolve } from 'node:path';
import type { RedisClient as Redis } from './redis/connection.js';
import type { Config } from './config.js';
import { nativeBackend } from './native/addon.js';
import { Ledger, checkpointOrigin } from './ledger/ledger.js';
import { loadSigningKey, loadVerifierKeys } from './ledger/signing-key.js';
import { RedisLedgerStore } from './ledger/store.js';
import { FileTrustStore } from './ledger/trust-store.js';
import { VerificationService } from './ledger/verification.js';
import { createApp, QUEUES_BOARD_PATH } from './http/app.js';
import { createHealthServer } from './http/health-server.js';
import { Metrics } from './observability/metrics.js';
import { parseWitnessKeys } from './ledger/cosignature.js';
import type { WitnessVerifier } from './ledger/cosignature.js';
import { formatVerifierKey, verifierFromSigner } from './ledger/checkpoint.js';
import { LocalWitness, localCopyDir } from './witness/local.js';
import { createQueuesBoard, queueDepthsOf } from './pipeline/bull-board.js';
import { adminTokenFrom, parseTokensFile } from './http/admin-auth.js';
import type { AdminToken } from './http/admin-auth.js';
import { ConfigError } from './errors.js';
import { createLogger } from './observability/logger.js';
import { FileKeyWrapper } from './vault/key-wrapper.js';
import { RecordVault } from './vault/vault.js';
import { createSubjectService } from './pipeline/subject-service.js';
import type { Logger } from './observability/logger.js';
import { createRedis } from './redis/connection.js';
import { PackedReader } from './redis/packed-reader.js';
import { startRedisServer } from './redis/embedded-server.js';
import { inspectRedisForProduction } from './redis/production-check.js';
import { createConnectors } from '../connectors/registry.js';
import {
  closeSharedQueueConnections,
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
} from './pipeline/queues.js';
import { startAnchorWorker } from './pipeline/anchor.worker.js';
import { startAnchorThread } from './pipeline/anchor-thread.js';
import type { EmbeddedRedis } from './redis/embedded-server.js';
import type { ChangeSink } from './pipeline/queues.js';
import { createAnchorExtras } from './pipeline/anchor-extras.js';
import type { AnchorExtrasOptions } from './pipeline/anchor-extras.js';
import { startFlagWorker } from './pipeline/flag.worker.js';
import { startReconcileWorker } from './pipeline/reconcile.worker.js';
import { createFlagSink, createFlagsQueue, flagsQueueName } from './pipeline/flags.js';
import { FreezeAlerts } from './pipeline/freeze.js';
import type { FlagSink } from './pipeline/flags.js';
import type { FrozenState } from './ledger/store.js';
import { WebhookAlertSink } from './policy/alerts.js';
import type { Alert } from './policy/alerts.js';
import { QuarantineStore } from './policy/quarantine.js';
import type { CrmClient } from '../connectors/types.js';
import {
  HubspotClient,
  FLAG_PROPERTY as HUBSPOT_FLAG_PROPERTY,
} from '../connectors/hubspot/client.js';
import {
  SalesforceClient,
  DEFAULT_STATUS_FIELD as SALESFORCE_STATUS_FIELD,
} from '../connectors/salesforce/client.js';
import { startCdcSubscriber } from '../connectors/salesforce/cdc.js';
import type { CdcSubscriber } from '../connectors/salesforce/cdc.js';
import { normaliseSalesforceId } from '../connectors/salesforce/org-allow-list.js';
import { startHubspotSandbox } from '../connectors/sandbox/hubspot/index.js';
import type { HubspotSandbox } from '../connectors/sandbox/hubspot/index.js';
import { startSalesforceSandbox } from '../connectors/sandbox/salesforce/index.js';
import type { SalesforceSandbox } from '../connectors/sandbox/salesforce/index.js';

export type Role = 'all' | 'api' | 'worker' | 'scheduler';

/** The dedupe identity space: all tenants of one deployment may be the same people. */
export const DEDUPE_SPACE = 'default';

export interface RunningService {
  url: string;
  redisUrl: string;
  adminToken: string;
  /** the appending ledger; absent for the api role, which holds no signing key */
  ledger: Ledger | undefined;
  /** the local sandbox CRMs, when this process started them */
  sandboxes: Sandboxes | undefined;
  stop(): Promise<void>;
}

/**
 * Idle keep-alive connections stay open 65 s, not Node's 5 s: longer than the idle timeout of the
 * load balancers and proxies put in front of webhooks (60 s for AWS ALB and nginx's default), so
 * the proxy never sends a delivery on a connection the service is closing (a 502 to HubSpot or
 * Salesforce, and a retried delivery). Headers must come within the same time plus a second.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
function keepConnectionsAlive(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
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

/**
 * The Redis a CLI command works on: the configured one, a running service's embedded one, or —
 * the service not running — its data directory opened with a redis-server of our own. Undefined
 * when there is none of them.
 */
export async function redisForCli(
  config: Config,
): Promise<{ url: string; stop: () => Promise<void> } | undefined> {
  if (config.redis.url) return { url: config.redis.url, stop: async () => {} };
  const file = redisUrlFile(config.dataDir);
  if (existsSync(file)) {
    const url = (await readFile(file, 'utf8')).trim();
    const probe = createRedis(url, 'cli');
    try {
      await probe.ping();
      return { url, stop: async () => {} };
    } catch {
      // a stale file: the service is not running; open its data below
    } finally {
      probe.disconnect();
    }
  }
  if (!existsSync(join(config.dataDir, 'redis'))) return undefined;
  const { url, embedded } = await openRedis(config, createLogger({ level: 'warn' }));
  return { url, stop: async () => embedded?.stop() };
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

/** Auditor, operator and witness tokens from the environment (hashed here) and the tokens file (digests). */
async function roleTokens(config: Config): Promise<AdminToken[]> {
  const tokens: AdminToken[] = [];
  if (config.admin.auditorToken)
    tokens.push(adminTokenFrom('auditor', 'auditor-token', config.admin.auditorToken));
  if (config.admin.operatorToken)
    tokens.push(adminTokenFrom('operator', 'operator-token', config.admin.operatorToken));
  if (config.admin.witnessToken)
    tokens.push(adminTokenFrom('witness', 'witness-token', config.admin.witnessToken));
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
  if (nativeBackend.name === 'native') {
    logger.debug({ addon: nativeBackend.detail }, 'native addon on');
  } else if (process.env.CRM_LEDGER_NATIVE !== 'off') {
    logger.warn(
      { reason: nativeBackend.detail },
      'native addon unavailable: verification and appends hash and seal through node:crypto (same results, more CPU); npm run build:native builds it',
    );
  }
  const { url: redisUrl, embedded } = await openRedis(config, logger);
  const redis: Redis = createRedis(redisUrl, 'worker');
  const requestRedis: Redis = createRedis(redisUrl, 'request');
  try {
    await checkRedisSafety(config, redis, logger);
  } catch (err) {
    redis.disconnect();
    requestRedis.disconnect();
    await embedded?.stop();
    throw err;
  }
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

  // The vault master key (wraps per-record data keys): made once under the data dir when missing,
  // like the signing key. Every process of a deployment must share the file (mount one secret).
  const vaultKeys = await FileKeyWrapper.load(config.vault.keyFile, { createIfMissing: true });
  if (vaultKeys.created)
    logger.info({ file: config.vault.keyFile }, 'generated the vault master key');
  const vault = new RecordVault(redis, vaultKeys.wrapper);

  const store = new RedisLedgerStore(redis);
  const ledger = keys
    ? new Ledger(store, {
        vault,
        origin: config.ledger.origin,
        signer: keys.signer,
        verifiers: keys.verifiers,
        maxChangeBytes: config.ledger.maxChangeBytes,
        checkpointMinIntervalMs: config.ledger.checkpointMinIntervalMs,
      })
    : undefined;
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

  const { token, created } = await adminToken(config, logger);
  const sandboxCreds = await sandboxCredentials(config.dataDir);
  const useSandbox =
    config.sandbox === 'on' ||
    (config.sandbox === 'auto' &&
      !config.redis.url &&
      !config.hubspot.clientSecret &&
      config.salesforce.orgIds.length === 0);
  // With the sandboxes, a local witness too (same machine: a demo of the repair, not independence).
  const wantLocalWitness =
    config.witnesses.local === 'on' || (config.witnesses.local === 'auto' && useSandbox);
  const localWitness =
    wantLocalWitness && role === 'all' && keys
      ? await LocalWitness.prepare(config.dataDir)
      : undefined;
  const acceptedWitnessKeys = [
    ...witnessKeys(config),
    ...(localWitness ? parseWitnessKeys(localWitness.vkey) : []),
  ];
  const salesforceOrgIds = useSandbox ? [sandboxCreds.salesforceOrgId] : config.salesforce.orgIds;
  const hubspotAppId = config.hubspot.appId ?? (useSandbox ? String(SANDBOX_APP_ID) : undefined);

  let server: Server | undefined;
  let url = '';
  const queue =
    role === 'all' || role === 'api'
      ? createChangesQueue(connectionFromUrl(redisUrl, 'producer'))
      : undefined;
  const alertSink = new WebhookAlertSink({
    logger,
    url: config.alerts.webhookUrl,
    secret: config.alerts.webhookSecret,
  });
  const extraQueues: { close(): Promise<void> }[] = [];
  const erasureFlags = (): FlagSink => {
    const sink = createFlagSink(connectionFromUrl(redisUrl, 'worker'));
    extraQueues.push(sink);
    return sink;
  };
  // One alert per freeze, whoever froze the tenant (this process, a CLI, a worker's checkpointer).
  const freezeAlerts = new FreezeAlerts(
    store,
    async (tenant, state, size) => {
      logger.error(
        { tenant, firstBadSeq: state.firstBadSeq, by: state.by },
        'tampering found: tenant frozen',
      );
      metrics.tampered.inc({ tenant });
      return (await alertSink.send(tamperAlert(tenant, state, size))).ok;
    },
    logger,
  );
  const announceFreeze = (tenant: string) => {
    freezeAlerts.announce(tenant).catch((err: unknown) => {
      logger.warn({ tenant, err }, 'freeze alert not sent: the scheduler retries it');
    });
  };
  // Verifications (one thread in the service) read segments packed where the URL allows it.
  const packedReader = PackedReader.forUrl(redisUrl);
  const verification = new VerificationService(
    store,
    { verifiers, originFor: (t) => checkpointOrigin(config.ledger.origin, t) },
    new FileTrustStore(trustDir(config.dataDir)),
    { onTampered: (tenant) => announceFreeze(tenant), ...(packedReader ? { packedReader } : {}) },
  );
  const metrics = new Metrics({
    tenants: async () =>
      Promise.all(
        (await store.listTenants()).map(async (tenant) => {
          const [head, cp, frozen] = await Promise.all([
            store.readHead(tenant),
            store.latestCheckpoint(tenant),
            store.readFrozen(tenant),
          ]);
          return { tenant, size: head.size, checkpointSize: cp?.size ?? 0, frozen: !!frozen };
        }),
      ),
    waiting: () => waitingCounts(redisUrl, store),
  });
  if (queue) {
    const hubspot: {
      clientSecret?: string;
      publicUrl?: string;
      appId?: string;
      acceptV1: boolean;
    } = { acceptV1: config.hubspot.acceptV1 };
    if (config.hubspot.clientSecret) hubspot.clientSecret = config.hubspot.clientSecret;
    if (config.http.publicUrl) hubspot.publicUrl = config.http.publicUrl;
    if (hubspotAppId) hubspot.appId = hubspotAppId;
    if (useSandbox) {
      // No CRM configured: accept traffic signed with the local sandbox credentials (the sandbox
      // CRMs started below and `crm-ledger demo` use them).
      hubspot.clientSecret = sandboxCreds.hubspotClientSecret;
      logger.info(
        { file: sandboxCredentialsFile(config.dataDir) },
        'no CRM configured: using the local sandbox HubSpot and Salesforce',
      );
    }
    // Queues shown on /admin/queues (bull-board) and the dashboard: changes, and the flags
    // queue of each CRM account we write back to.
    const boardQueues = [
      queue,
      ...crmTenants(config, useSandbox, sandboxCreds).map((t) =>
        createFlagsQueue(connectionFromUrl(redisUrl, 'producer'), t),
      ),
    ];
    extraQueues.push(...boardQueues.slice(1));
    const board = createQueuesBoard(boardQueues, { basePath: QUEUES_BOARD_PATH, readOnly: true });
    const app = createApp({
      queuesBoard: board.router,
      queueDepths: queueDepthsOf(() => boardQueues),
      recentVerdicts: async (limit) => {
        const rows = [];
        for (const tenant of await store.listTenants()) {
          for (const e of await store.readLatestVerdicts(tenant, limit)) {
            for (const v of e.verdicts) {
              rows.push({
                tenant,
                object: e.object,
                id: e.id,
                seq: e.seq,
                at: e.at,
                type: v.type,
                ...(v.code ? { code: v.code } : {}),
                ...(v.reason ? { reason: v.reason } : {}),
              });
            }
          }
        }
        return rows.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, limit);
      },
      tenantStatus: async (t) => {
        const frozen = await store.readFrozen(t);
        return frozen ? { frozen: true, reason: frozen.reason } : { frozen: false };
      },
      webhooks: {
        connectors: createConnectors({
          hubspot,
          salesforce: { orgIds: salesforceOrgIds },
        }),
        sink: createChangeSink(queue),
        logger: logger.child({ module: 'webhooks' }),
        onOutcome: (source, outcome, events) => {
          metrics.webhookRequests.inc({ source, outcome });
          if (events > 0) metrics.webhookEvents.inc({ source, outcome }, events);
        },
      },
      metrics,
      logger: logger.child({ module: 'http' }),
      adminToken: token,
      tokens: [
        ...(await roleTokens(config)),
        ...(localWitness ? [adminTokenFrom('witness', 'local-witness', localWitness.token)] : []),
      ],
      ...(config.admin.sessionSecret
        ? { sessionSecret: Buffer.from(config.admin.sessionSecret, 'utf8') }
        : {}),
      verifierKeys: verifiers,
      vault: {
        open: (t, items) => vault.open(t, items),
        auditorValues: config.vault.auditorValues,
      },
      subjects: createSubjectService({
        redis,
        store,
        vault,
        verifiers,
        witnessKeys: acceptedWitnessKeys,
        ...(ledger ? { ledger } : {}),
        ...(config.dedupe.enabled ? { dedupeSpace: DEDUPE_SPACE } : {}),
        queue,
        // An erasure from the admin API is written back to the CRM like a verdict.
        ...(ledger ? { flags: erasureFlags() } : {}),
        ...(config.http.publicUrl ? { adminBaseUrl: config.http.publicUrl } : {}),
      }),
      verification,
      changeSink: createChangeSink(queue),
      quarantine: new QuarantineStore(redis),
      witnessKeys: acceptedWitnessKeys,
      witnessQuorum: config.witnesses.quorum,
      // A witness (or operator) reported tampering: the same alert as the verifier's.
      onFreezeReported: (tenant) => announceFreeze(tenant),
      waitingCounts: () => waitingCounts(redisUrl, store),
      frozenTenants: async () => {
        const tenants = await store.listTenants();
        const states = await Promise.all(tenants.map((t) => store.readFrozen(t)));
        return tenants.filter((_t, i) => states[i] !== undefined);
      },
      ping: () => requestRedis.ping(),
    });
    server = await new Promise<Server>((res, rej) => {
      const s = app.listen(config.http.port, config.http.host, () => res(s));
      s.once('error', rej);
    });
    keepConnectionsAlive(server);
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.http.port;
    url = `http://${config.http.host}:${port}`;
    logger.info({ url, role }, 'crm-ledger listening');
  } else if (config.http.healthPort !== undefined) {
    // worker / scheduler: health endpoints only, for container health checks and probes
    const health = createHealthServer({ ping: () => requestRedis.ping() });
    server = await new Promise<Server>((res, rej) => {
      const s = health.listen(config.http.healthPort, config.http.host, () => res(s));
      s.once('error', rej);
    });
    logger.info({ port: config.http.healthPort, role }, 'health endpoints listening');
  }
  const adminBaseUrl = config.http.publicUrl ?? (url || undefined);

  // The local sandbox CRMs (the embedded default): they call our webhooks like the real ones.
  const sandboxes =
    useSandbox && role === 'all'
      ? await startSandboxes(url, sandboxCreds, logger, config.salesforce.cdc)
      : undefined;

  if (localWitness && keys) {
    logger.info(
      { dir: localWitness.dir, witnessKey: localWitness.vkey },
      'local witness: copying and cosigning every tenant chain (same machine: not independent)',
    );
    localWitness.start({
      url,
      logKey: verifierFromSigner(keys.signer),
      logKeyText: formatVerifierKey(verifierFromSigner(keys.signer)),
      tenants: () => store.listTenants(),
      logger: logger.child({ module: 'local-witness' }),
    });
  }

  // Write-back clients, one per CRM account (tenant).
  const clients = role === 'api' ? [] : buildCrmClients(config, sandboxes, adminBaseUrl, logger);
  const extras: AnchorExtrasOptions = {
    checks: {
      ...(config.dedupe.enabled
        ? {
            dedupe: {
              space: DEDUPE_SPACE,
              threshold: config.dedupe.threshold,
              ...(config.dedupe.defaultCountry
                ? { defaultCountry: config.dedupe.defaultCountry }
                : {}),
            },
          }
        : {}),
      ...(config.policyFile ? { policyFile: config.policyFile } : {}),
      ...(config.alerts.webhookUrl ? { alertWebhookUrl: config.alerts.webhookUrl } : {}),
      ...(config.alerts.webhookSecret ? { alertWebhookSecret: config.alerts.webhookSecret } : {}),
      watchPolicy: true,
    },
    flags: true,
    ...(adminBaseUrl ? { adminBaseUrl } : {}),
    ownFields: OWN_FIELDS,
    eraseOnPrivacyDeletion: config.dedupe.enabled ? { dedupeSpace: DEDUPE_SPACE } : {},
  };

  // The anchor worker: in this thread for `--role worker`; in a worker thread of this process for
  // `--role all`, so that webhooks and anchoring each get a core.
  const workerExtras =
    role === 'worker' && ledger
      ? await createAnchorExtras(extras, { redisUrl, redis, ledger, logger })
      : undefined;
  const worker =
    role === 'worker' && ledger && workerExtras
      ? startAnchorWorker({
          ...workerExtras.workerOptions,
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
          vaultKeyFile: config.vault.keyFile,
          origin: config.ledger.origin,
          maxChangeBytes: config.ledger.maxChangeBytes,
          checkpointMinIntervalMs: config.ledger.checkpointMinIntervalMs,
          batchSize: config.anchor.batchSize,
          batchWaitMs: config.anchor.batchWaitMs,
          lockMs: config.anchor.lockMs,
          logLevel: config.logLevel,
          extras,
        })
      : undefined;
  await anchorThread?.ready;

  const flagWorkers = clients.map((client) =>
    startFlagWorker({
      connection: connectionFromUrl(redisUrl, 'worker'),
      client,
      logger: logger.child({ module: 'flag-worker', tenant: client.tenant }),
      onFlagged: (outcomes) => {
        for (const o of outcomes) metrics.flags.inc({ tenant: client.tenant, status: o.status });
      },
      onRateLimited: () => metrics.rateLimited.inc({ tenant: client.tenant }),
    }),
  );

  // Salesforce Change Data Capture: one subscriber per org, in the scheduler (or all) role.
  const cdcQueue =
    config.salesforce.cdc && (role === 'all' || role === 'scheduler')
      ? createChangesQueue(connectionFromUrl(redisUrl, 'worker'))
      : undefined;
  const cdc = cdcQueue ? await startCdc(clients, createChangeSink(cdcQueue), redis, logger) : [];

  // The scheduler: reconciliation against each CRM, and incremental verification of every chain.
  const scheduling = role === 'all' || role === 'scheduler';
  const reconcileQueue =
    scheduling && ledger && clients.length > 0 && config.reconcile.everyMs > 0
      ? createChangesQueue(connectionFromUrl(redisUrl, 'worker'))
      : undefined;
  const reconciler =
    reconcileQueue && ledger
      ? startReconcileWorker({
          connection: connectionFromUrl(redisUrl, 'worker'),
          clients,
          sink: createChangeSink(reconcileQueue),
          ledger,
          redis,
          logger: logger.child({ module: 'reconcile' }),
          everyMs: config.reconcile.everyMs,
          settleMs: config.reconcile.settleMs,
        })
      : undefined;
  const scheduleVerification = (mode: 'incremental' | 'full', everyMs: number) => {
    if (!scheduling || everyMs <= 0) return undefined;
    const timer = setInterval(() => {
      verification.verifyAll(mode).then(
        (r) => logger.info({ mode, ok: r.ok, tenants: r.tenants.length }, 'scheduled verification'),
        (err: unknown) => logger.warn({ mode, err }, 'scheduled verification could not run'),
      );
    }, everyMs);
    timer.unref();
    return timer;
  };
  const verifyTimers = [
    scheduleVerification('incremental', config.verifyEveryMs),
    scheduleVerification('full', config.fullVerifyEveryMs),
  ];
  if (scheduling) freezeAlerts.start();

  if (sandboxes) {
    process.stdout.write(
      `\n  Sandbox CRMs (no CRM configured):\n    HubSpot    ${sandboxes.hubspot.url}  (tenant hubspot:${sandboxes.hubspot.portalId})\n    Salesforce ${sandboxes.salesforce.url}  (tenant ${sandboxes.salesforce.tenant})\n  Try: npm run demo, or change a record in a sandbox (see README).\n`,
    );
    if (localWitness) {
      const tenant = `hubspot:${sandboxes.hubspot.portalId}`;
      const copy = shownPath(localCopyDir(localWitness.dir, tenant));
      process.stdout.write(
        `\n  Local witness (this machine; for trying a repair, not an independent witness):\n    copies under ${shownPath(localWitness.dir)}/, cosigning every checkpoint\n    after tampering: npx crm-ledger repair --tenant ${tenant} --from-witness ${copy}\n                     npx crm-ledger resume --tenant ${tenant}\n`,
      );
    }
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
    sandboxes,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Stop taking requests, let the worker finish the jobs in hand, then close connections.
      await localWitness?.stop();
      if (server) {
        const s = server;
        await new Promise<void>((r) => {
          s.close(() => r());
          // A connection busy at close() goes idle once answered: close it then, not after the
          // 65 s keep-alive timeout (close() itself closes only the connections idle at the time).
          const sweep = setInterval(() => s.closeIdleConnections(), 100);
          s.once('close', () => clearInterval(sweep));
        });
      }
      for (const t of verifyTimers) if (t) clearInterval(t);
      await freezeAlerts.stop();
      await reconciler?.close();
      await reconcileQueue?.close();
      await Promise.all(cdc.map((c) => c.stop()));
      await cdcQueue?.close();
      await worker?.close();
      await workerExtras?.close();
      await anchorThread?.close();
      await Promise.all(flagWorkers.map((w) => w.close()));
      await queue?.close();
      await Promise.all(extraQueues.map((q) => q.close()));
      await sandboxes?.hubspot.close();
      await sandboxes?.salesforce.close();
      packedReader?.close();
      await Promise.allSettled([redis.quit(), requestRedis.quit()]);
      await closeSharedQueueConnections();
      if (embedded) {
        await embedded.stop();
        await rm(redisUrlFile(config.dataDir), { force: true });
      }
    },
  };
}

/** A path as the operator would type it from here: relative below the working directory. */
function shownPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r !== '' && !r.startsWith('..') ? r : resolve(p);
}

/** Our app id in the sandbox HubSpot (its writes come back attributed to it). */
const SANDBOX_APP_ID = 54321;
const SANDBOX_PORTAL_ID = 62515;

/** The fields crm-ledger writes in each CRM: a change to nothing else is our own echo. */
const OWN_FIELDS: Record<string, string[]> = {
  hubspot: [HUBSPOT_FLAG_PROPERTY],
  salesforce: [SALESFORCE_STATUS_FIELD],
};

export interface Sandboxes {
  hubspot: HubspotSandbox;
  salesforce: SalesforceSandbox;
}

async function startSandboxes(
  url: string,
  creds: SandboxCredentials,
  logger: Logger,
  /** CDC is on: the sandbox Salesforce sends no Outbound Messages (one feed per change) */
  cdc: boolean,
): Promise<Sandboxes> {
  const hubspot = await startHubspotSandbox({
    appId: SANDBOX_APP_ID,
    portalId: SANDBOX_PORTAL_ID,
    clientSecret: creds.hubspotClientSecret,
    ...(url ? { webhookTarget: `${url}/webhooks/hubspot` } : {}),
  });
  const salesforce = await startSalesforceSandbox({
    orgId: creds.salesforceOrgId,
    ...(url && !cdc ? { outboundMessageUrl: `${url}/webhooks/salesforce` } : {}),
  });
  logger.info({ hubspot: hubspot.url, salesforce: salesforce.url }, 'sandbox CRMs started');
  return { hubspot, salesforce };
}

/** One write-back client per configured CRM account (or per sandbox). */
export function buildCrmClients(
  config: Config,
  sandboxes: Sandboxes | undefined,
  adminBaseUrl: string | undefined,
  logger: Logger,
): CrmClient[] {
  const clients: CrmClient[] = [];
  const hs = config.hubspot;
  if (sandboxes) {
    clients.push(
      new HubspotClient({
        tenant: `hubspot:${sandboxes.hubspot.portalId}`,
        portalId: sandboxes.hubspot.portalId,
        appId: sandboxes.hubspot.appId,
        apiUrl: sandboxes.hubspot.url,
        accessToken: 'sandbox',
        adminBaseUrl,
        logger: logger.child({ module: 'hubspot-client' }),
      }),
      new SalesforceClient({
        tenant: sandboxes.salesforce.tenant,
        instanceUrl: sandboxes.salesforce.url,
        accessToken: 'sandbox',
        version: config.salesforce.apiVersion,
        logger: logger.child({ module: 'salesforce-client' }),
      }),
    );
    return clients;
  }
  if (hs.portalId && (hs.accessToken || hs.refreshToken)) {
    clients.push(
      new HubspotClient({
        tenant: `hubspot:${hs.portalId}`,
        portalId: hs.portalId,
        appId: hs.appId ?? 'unknown',
        apiUrl: hs.apiUrl,
        accessToken: hs.accessToken,
        refresh:
          hs.clientId && hs.clientSecret && hs.refreshToken
            ? {
                clientId: hs.clientId,
                clientSecret: hs.clientSecret,
                refreshToken: hs.refreshToken,
              }
            : undefined,
        adminBaseUrl,
        logger: logger.child({ module: 'hubspot-client' }),
      }),
    );
  } else if (hs.accessToken) {
    logger.warn(
      'CRM_LEDGER_HUBSPOT_PORTAL_ID is not set: verdicts are not written back to HubSpot',
    );
  }
  const sf = config.salesforce;
  const org = sf.orgIds[0] ? normaliseSalesforceId(sf.orgIds[0]) : undefined;
  if (sf.instanceUrl && org && (sf.accessToken || sf.refreshToken)) {
    clients.push(
      new SalesforceClient({
        tenant: `salesforce:${org}`,
        instanceUrl: sf.instanceUrl,
        ...(sf.accessToken ? { accessToken: sf.accessToken } : {}),
        ...(sf.clientId && sf.refreshToken
          ? {
              refresh: {
                clientId: sf.clientId,
                ...(sf.clientSecret ? { clientSecret: sf.clientSecret } : {}),
                refreshToken: sf.refreshToken,
                loginUrl: sf.loginUrl ?? 'https://login.salesforce.com',
              },
            }
          : {}),
        version: sf.apiVersion,
        logger: logger.child({ module: 'salesforce-client' }),
      }),
    );
  }
  return clients;
}

/**
 * Change Data Capture for each Salesforce client: events are queued like webhook requests (the
 * replay id is saved only once they are in the queue); GAP events re-read the records named and
 * queue their current state (anchored as the fields that differ from the last anchored state).
 */
async function startCdc(
  clients: readonly CrmClient[],
  sink: ChangeSink,
  redis: Redis,
  logger: Logger,
): Promise<CdcSubscriber[]> {
  const subscribers: CdcSubscriber[] = [];
  for (const client of clients) {
    if (!(client instanceof SalesforceClient)) continue;
    const tenant = client.tenant;
    const replayKey = `cl:{${tenant}}:cdc:replay`;
    const log = logger.child({ module: 'salesforce-cdc', tenant });
    subscribers.push(
      await startCdcSubscriber({
        connection: client.connection,
        tenant,
        logger: log,
        replay: {
          load: async () => {
            const v = await redis.get(replayKey);
            return v === null ? undefined : Number(v);
          },
          save: async (id) => {
            await redis.set(replayKey, String(id));
          },
        },
        onEvents: async (events) => {
          if (events.length === 0) return;
          await sink.enqueue({
            source: 'salesforce',
            receivedAt: new Date().toISOString(),
            events,
          });
        },
        onGap: async (refs, header) => {
          if (refs.length === 0) {
            log.warn(
              { changeType: header.changeType },
              'CDC gap without record ids: the next reconciliation covers it',
            );
            return;
          }
          const byObject = new Map<string, string[]>();
          for (const r of refs) byObject.set(r.object, [...(byObject.get(r.object) ?? []), r.id]);
          for (const [object, ids] of byObject) {
            const page = await client.fetchRecords({ object, ids });
            const at = new Date().toISOString();
            await sink.enqueue({
              source: 'salesforce',
              receivedAt: at,
              events: page.records.map((rec) => ({
                event: {
                  tenant,
                  source: 'salesforce',
                  object: rec.ref.object,
                  recordId: rec.ref.id,
                  eventId: `gap:${header.transactionKey}:${rec.ref.id}`,
                  kind: rec.deleted ? 'delete' : 'reconciled',
                  actor: { type: 'system', id: 'salesforce:cdc-gap' },
                  occurredAt: rec.modifiedAt,
                  fields: rec.fields,
                },
                idempotencyKey: `salesforce|${tenant}|gap|${header.transactionKey}|${rec.ref.id}`,
                fullState: true,
              })),
            });
          }
        },
      }),
    );
  }
  return subscribers;
}

/**
 * Production mode refuses a Redis that may evict keys or keeps nothing on disk; development mode
 * only warns (a shared Redis), so that tests and demos run against any local redis-server.
 */
async function checkRedisSafety(config: Config, redis: Redis, logger: Logger): Promise<void> {
  if (config.mode !== 'production' && !config.redis.url) return;
  const report = await inspectRedisForProduction(redis);
  for (const warning of report.warnings) logger.warn({ redis: 'persistence' }, warning);
  if (report.ok) return;
  if (config.mode === 'production') {
    throw new ConfigError(
      'REDIS_UNSAFE',
      'refusing to run in production mode (CRM_LEDGER_MODE=production) against this Redis:\n  ' +
        report.problems.join('\n  '),
    );
  }
  for (const problem of report.problems) logger.warn({ redis: 'unsafe' }, problem);
}

/** Waiting jobs of the changes queue and of each tenant's flags queue. */
async function waitingCounts(
  redisUrl: string,
  store: RedisLedgerStore,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const connection = connectionFromUrl(redisUrl, 'producer');
  const changes = createChangesQueue(connection);
  try {
    out['changes'] = await changes.getWaitingCount();
    for (const tenant of await store.listTenants()) {
      const q = createFlagsQueue(connection, tenant);
      try {
        out[flagsQueueName(tenant)] = await q.getWaitingCount();
      } finally {
        await q.close();
      }
    }
  } finally {
    await changes.close();
  }
  return out;
}

function tamperAlert(tenant: string, state: FrozenState, size: number): Alert {
  return {
    id: `tampered-${tenant}-${state.at}`,
    type: 'ledger.tampered',
    tenant,
    rule: 'ledger-integrity',
    code: state.code ?? 'CHAIN_TAMPERED',
    verdict: 'tampered',
    object: 'crm_ledger',
    recordId: 'chain',
    eventId: `seq-${state.firstBadSeq ?? -1}`,
    reason: `${tenant}: ${state.reason}; anchoring is frozen until an admin repairs and resumes it`,
    detail: { firstBadSeq: state.firstBadSeq ?? null, size, frozenBy: state.by },
    policy: '',
  };
}

/** The CRM accounts (tenants) this service writes back to. */
function crmTenants(config: Config, useSandbox: boolean, creds: SandboxCredentials): string[] {
  if (useSandbox) {
    const org = normaliseSalesforceId(creds.salesforceOrgId);
    return [`hubspot:${SANDBOX_PORTAL_ID}`, ...(org ? [`salesforce:${org}`] : [])];
  }
  const out: string[] = [];
  if (config.hubspot.portalId) out.push(`hubspot:${config.hubspot.portalId}`);
  const org = config.salesforce.orgIds[0]
    ? normaliseSalesforceId(config.salesforce.orgIds[0])
    : undefined;
  if (config.salesforce.instanceUrl && org) out.push(`salesforce:${org}`);
  return out;
}

/** The witnesses whose cosignatures are accepted; a bad key stops the service at start. */
function witnessKeys(config: Config): WitnessVerifier[] {
  try {
    return parseWitnessKeys(config.witnesses.keys);
  } catch (err) {
    throw new ConfigError('CONFIG_INVALID', `CRM_LEDGER_WITNESS_KEYS: ${(err as Error).message}`);
  }
}
