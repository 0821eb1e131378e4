/**
 * Master key rotation without downtime (`crm-ledger vault rotate-master`).
 *
 * 1. A new master key is added to the key file and made current; the old one stays in the file,
 *    so every process still unwraps data keys wrapped by it (FileKeyWrapper reloads the file when
 *    it meets an unknown key id, and checks it at most once a second before wrapping).
 * 2. Every data key not wrapped by the current master is unwrapped and wrapped again, one
 *    compare-and-set each (rewrapDataKey-1.lua): appends and erasures go on meanwhile.
 * 3. Only when no data key names the old master any more may it be retired (`--retire`): it is
 *    removed from the file. Data keys are never re-generated, so no vault entry is re-sealed.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient as Redis } from '../redis/connection.js';
import { LedgerKeys } from '../ledger/keys.js';
import type { KeyWrapper } from './key-wrapper.js';

const SCRIPT = readFileSync(new URL('lua/rewrapDataKey-1.lua', import.meta.url), 'utf8');
type ScriptFn = (numKeys: number, ...args: string[]) => Promise<number>;

export interface RotationReport {
  current: string;
  rewrapped: number;
  alreadyCurrent: number;
  /** changed meanwhile (erased or re-keyed) and left alone */
  skipped: number;
  /** master key id → data keys still wrapped by it (after this pass) */
  remaining: Record<string, number>;
}

function rewrapCommand(redis: Redis): ScriptFn {
  const commands = redis as unknown as Record<string, ScriptFn | undefined>;
  if (typeof commands['vaultRewrapDataKeyV1'] !== 'function') {
    redis.defineCommand('vaultRewrapDataKeyV1', { lua: SCRIPT });
  }
  return (commands['vaultRewrapDataKeyV1'] as ScriptFn).bind(redis);
}

/** Re-wraps every data key of `tenants` under the wrapper's current master key. */
export async function rewrapDataKeys(
  redis: Redis,
  wrapper: KeyWrapper,
  tenants: readonly string[],
): Promise<RotationReport> {
  const rewrap = rewrapCommand(redis);
  const current = wrapper.keyId();
  const report: RotationReport = {
    current,
    rewrapped: 0,
    alreadyCurrent: 0,
    skipped: 0,
    remaining: {},
  };
  for (const tenant of tenants) {
    const key = new LedgerKeys(tenant).dataKeys;
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 500);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const field = flat[i] as string;
        const wrapped = flat[i + 1] as string;
        if (wrapper.wrappedKeyId(wrapped) === current) {
          report.alreadyCurrent += 1;
          continue;
        }
        const again = await wrapper.wrap(await wrapper.unwrap(wrapped));
        if ((await rewrap(1, key, field, wrapped, again)) === 1) report.rewrapped += 1;
        else report.skipped += 1;
      }
    } while (cursor !== '0');
  }
  report.remaining = await countByMasterKey(redis, wrapper, tenants);
  return report;
}

/** Data keys per master key id, across `tenants`. */
export async function countByMasterKey(
  redis: Redis,
  wrapper: KeyWrapper,
  tenants: readonly string[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const tenant of tenants) {
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(new LedgerKeys(tenant).dataKeys, cursor, 'COUNT', 500);
      cursor = next;
      for (let i = 1; i < flat.length; i += 2) {
        const id = wrapper.wrappedKeyId(flat[i] as string);
        counts[id] = (counts[id] ?? 0) + 1;
      }
    } while (cursor !== '0');
  }
  return counts;
}

export interface FileRotationReport extends RotationReport {
  /** the master key ids retired (removed from the file) by this run */
  retired: string[];
  /** the new current key id, when this run added one */
  added?: string;
}

/**
 * The whole rotation on a key file: add a new current master (unless `retireOnly`), wait for
 * running processes to notice it, re-wrap every data key, and with `retire` drop the old masters
 * from the file once no data key names them.
 */
export async function rotateMasterKeyFile(
  file: string,
  redis: Redis,
  tenants: readonly string[],
  options: { retire?: boolean; retireOnly?: boolean; settleMs?: number } = {},
): Promise<FileRotationReport> {
  const { FileKeyWrapper, newMasterKeyFile, readMasterKeyFile, writeMasterKeyFile } =
    await import('./key-wrapper.js');
  let added: string | undefined;
  if (!options.retireOnly) {
    const next = newMasterKeyFile(await readMasterKeyFile(file));
    await writeMasterKeyFile(file, next);
    added = next.current;
    // Running processes look at the file at most once a second before wrapping a new data key:
    // after this, none wraps with the old master any more.
    await new Promise((r) => setTimeout(r, options.settleMs ?? 1_500));
  }
  const { wrapper } = await FileKeyWrapper.load(file, { createIfMissing: false });
  const report = await rewrapDataKeys(redis, wrapper, tenants);
  const retired: string[] = [];
  if (options.retire || options.retireOnly) {
    const stale = Object.keys(report.remaining).filter((id) => id !== report.current);
    if (stale.length === 0) {
      const content = await readMasterKeyFile(file);
      if (content) {
        for (const id of Object.keys(content.keys)) {
          if (id !== content.current) retired.push(id);
        }
        await writeMasterKeyFile(file, {
          v: 1,
          current: content.current,
          keys: { [content.current]: content.keys[content.current] as string },
        });
      }
    }
  }
  return { ...report, retired, ...(added ? { added } : {}) };
}
