/**
 * The long chain that verify, storage and proof share: 1,000,000 blocks (50,000 with --quick) of
 * realistic contact changes over ~100k distinct records (a tenth of the blocks), anchored through
 * the real Ledger in batches of 1000 with several batches in flight.
 *
 * It is built in two steps so that incremental verification has a trusted state to start from:
 * 99 % of the blocks, one full verification (its size and root are the state an auditor keeps),
 * then the last 1 %.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Ledger } from '../src/ledger/ledger.js';
import type { RedisLedgerStore } from '../src/ledger/store.js';
import type { TrustedState } from '../src/ledger/verifier.js';
import type { AnchorRequest } from '../src/ledger/block.js';
import { contactChange, createTestLedger } from '../test/helpers/ledger.js';
import {
  createRng,
  infoNumber,
  measureUsage,
  nowNs,
  progress,
  runWindow,
  secondsSince,
} from './lib.js';
import type { Usage } from './lib.js';

export const CHAIN_BATCH = 1000;

export interface ChainFixture {
  tenant: string;
  size: number;
  records: number;
  ledger: Ledger;
  store: RedisLedgerStore;
  redis: Redis;
  /** the state a full verification at 99 % returned: where incremental verification starts */
  state99: TrustedState;
  verify99Seconds: number;
  build: { blocks: number; usage: Usage; window: number; batch: number };
  /** INFO memory used_memory before and after the build */
  usedMemoryBefore: number;
  usedMemoryAfter: number;
}

/** A bench tenant: `hubspot:bench-<label>-<random hex>`. */
export function benchTenant(label: string): string {
  return `hubspot:bench-${label}-${randomBytes(4).toString('hex')}`;
}

/**
 * Appends `count` contact changes to `tenant`, `batch` per Ledger.append call, at most `window`
 * calls in flight; record ids drawn from `records` distinct ids.
 */
export async function appendChanges(
  ledger: Ledger,
  tenant: string,
  count: number,
  opts: { batch: number; window: number; records: number; seed: number },
): Promise<void> {
  const rng = createRng(opts.seed);
  const batches = Math.ceil(count / opts.batch);
  const makeBatch = (i: number): AnchorRequest[] => {
    const n = Math.min(opts.batch, count - i * opts.batch);
    const out: AnchorRequest[] = [];
    for (let j = 0; j < n; j++) {
      out.push(contactChange(tenant, `c${Math.floor(rng() * opts.records)}`));
    }
    return out;
  };
  let done = 0;
  let lastReport = nowNs();
  await runWindow(batches, opts.window, async (i) => {
    const r = await ledger.append(tenant, makeBatch(i));
    done += r.anchored.length;
    if (secondsSince(lastReport) > 10) {
      lastReport = nowNs();
      progress(`${tenant}: ${done.toLocaleString('en-US')} / ${count.toLocaleString('en-US')}`);
    }
  });
}

export async function buildChain(
  redis: Redis,
  admin: Redis,
  size: number,
  window: number,
): Promise<ChainFixture> {
  const ledger = createTestLedger(redis);
  const tenant = benchTenant('chain');
  const records = Math.max(100, Math.round(size / 10));
  const first = size - Math.floor(size / 100);
  const usedMemoryBefore = infoNumber(await admin.info('memory'), 'used_memory');
  progress(`building a ${size.toLocaleString('en-US')}-block chain (${tenant})`);

  const { usage: usage1 } = await measureUsage(admin, () =>
    appendChanges(ledger, tenant, first, { batch: CHAIN_BATCH, window, records, seed: 1 }),
  );
  const t0 = nowNs();
  const at99 = await ledger.verify(tenant);
  const verify99Seconds = secondsSince(t0);
  if (!at99.ok) throw new Error(`chain fixture does not verify at 99 %: ${at99.code}`);
  const { usage: usage2 } = await measureUsage(admin, () =>
    appendChanges(ledger, tenant, size - first, { batch: CHAIN_BATCH, window, records, seed: 2 }),
  );
  const usedMemoryAfter = infoNumber(await admin.info('memory'), 'used_memory');
  const head = await ledger.store.readHead(tenant);
  if (head.size !== size) throw new Error(`chain fixture has ${head.size} blocks, not ${size}`);
  progress(`chain built: ${size.toLocaleString('en-US')} blocks`);
  return {
    tenant,
    size,
    records,
    ledger,
    store: ledger.store,
    redis,
    state99: { size: at99.size, root: at99.root },
    verify99Seconds,
    build: {
      blocks: size,
      window,
      batch: CHAIN_BATCH,
      usage: {
        wallS: usage1.wallS + usage2.wallS,
        nodeCpuS: usage1.nodeCpuS + usage2.nodeCpuS,
        redisCpuS: usage1.redisCpuS + usage2.redisCpuS,
        scriptUsec: usage1.scriptUsec + usage2.scriptUsec,
      },
    },
    usedMemoryBefore,
    usedMemoryAfter,
  };
}
