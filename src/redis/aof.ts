/**
 * AOF compaction after an erasure. Redis's append-only file logs every write, so values
 * overwritten in memory are still in the AOF until it is rewritten: BGREWRITEAOF writes a new base
 * from the current dataset and Redis 7 deletes the old base and incremental files once the new
 * manifest is in place (multi-part AOF, redis.io "Persistence"). We trigger it and wait for it.
 */
import type { RedisClient as Redis } from './connection.js';

function field(info: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:(.*)$`, 'm').exec(info);
  return m?.[1]?.trim();
}

/**
 * Rewrites the AOF and resolves once a rewrite that started after this call has finished;
 * 'off' when AOF is disabled. Throws when the rewrite fails or takes longer than `timeoutMs`.
 */
export async function rewriteAof(
  redis: Redis,
  options: { timeoutMs?: number; pollMs?: number } = {},
): Promise<'rewritten' | 'off'> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const pollMs = options.pollMs ?? 50;
  let info = await redis.info('persistence');
  if (field(info, 'aof_enabled') !== '1') return 'off';
  const before = Number(field(info, 'aof_rewrites') ?? '0');
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await redis.bgrewriteaof();
      break;
    } catch (err) {
      // One is already running (it may predate our writes): wait for it, then start ours.
      if (!/already in progress/i.test((err as Error).message)) throw err;
    }
    if (Date.now() > end) throw new Error('AOF rewrite: timed out waiting for a running rewrite');
    await new Promise((r) => setTimeout(r, pollMs));
  }
  for (;;) {
    info = await redis.info('persistence');
    const done =
      Number(field(info, 'aof_rewrites') ?? '0') > before &&
      field(info, 'aof_rewrite_in_progress') === '0' &&
      field(info, 'aof_rewrite_scheduled') === '0';
    if (done) {
      if (field(info, 'aof_last_bgrewrite_status') !== 'ok') {
        throw new Error('AOF rewrite failed (aof_last_bgrewrite_status)');
      }
      return 'rewritten';
    }
    if (Date.now() > end) throw new Error('AOF rewrite: timed out');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
