/** Body of the anchor thread (anchor-thread.ts): a Ledger and an anchor worker of its own. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadSigningKey } from '../ledger/signing-key.js';
import { Ledger } from '../ledger/ledger.js';
import { RedisLedgerStore } from '../ledger/store.js';
import { createLogger } from '../observability/logger.js';
import { createRedis } from '../redis/connection.js';
import { startAnchorWorker } from './anchor.worker.js';
import { connectionFromUrl } from './queues.js';
import { createAnchorExtras } from './anchor-extras.js';
import { FileKeyWrapper } from '../vault/key-wrapper.js';
import { RecordVault } from '../vault/vault.js';
import type { AnchorThreadMessage, AnchorThreadOptions } from './anchor-thread.js';

const options = workerData as AnchorThreadOptions;
const post = (m: AnchorThreadMessage) => parentPort?.postMessage(m);

async function start(): Promise<void> {
  const keys = await loadSigningKey(options.keyFile, {
    name: options.origin,
    createIfMissing: false,
  });
  const logger = createLogger({ level: options.logLevel, base: { thread: 'anchor' } });
  const redis = createRedis(options.redisUrl, 'worker');
  const vault = options.vaultKeyFile
    ? new RecordVault(
        redis,
        (await FileKeyWrapper.load(options.vaultKeyFile, { createIfMissing: false })).wrapper,
      )
    : undefined;
  const ledger = new Ledger(new RedisLedgerStore(redis), {
    ...(vault ? { vault } : {}),
    origin: options.origin,
    signer: keys.signer,
    verifiers: keys.verifiers,
    maxChangeBytes: options.maxChangeBytes,
    checkpointMinIntervalMs: options.checkpointMinIntervalMs,
  });
  const extras = await createAnchorExtras(options.extras ?? {}, {
    redisUrl: options.redisUrl,
    redis,
    ledger,
    logger,
  });
  const worker = startAnchorWorker({
    ...extras.workerOptions,
    connection: connectionFromUrl(options.redisUrl, 'worker'),
    ledger,
    logger: logger.child({ module: 'anchor-worker' }),
    batchSize: options.batchSize,
    batchWaitMs: options.batchWaitMs,
    lockMs: options.lockMs,
    ...(options.prefix ? { prefix: options.prefix } : {}),
    ...(options.reportAnchored
      ? {
          onAnchored: (tenant: string, eventIds: string[], skipped: number) =>
            post({ type: 'anchored', tenant, eventIds, skipped }),
        }
      : {}),
  });
  parentPort?.on('message', (m: { type: string }) => {
    if (m.type !== 'close') return;
    void (async () => {
      await worker.close();
      await extras.close();
      await redis.quit().catch(() => undefined);
      post({ type: 'closed' });
    })();
  });
  await worker.waitUntilReady();
  post({ type: 'ready' });
}

start().catch((err: unknown) => {
  post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
});
