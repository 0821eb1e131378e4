/**
 * Startup check of the Redis the service writes to (issue 11): the ledger, BullMQ's queues and the
 * idempotency records must never be evicted, and must survive a restart. A Redis whose
 * `maxmemory-policy` is not `noeviction` can silently drop a block segment or a queued change
 * under memory pressure; one with neither AOF nor RDB loses everything on restart.
 *
 * Reads `INFO` (allowed on managed services that rename or forbid CONFIG); the RDB `save` schedule
 * is only in CONFIG, so when CONFIG is refused a Redis without AOF counts as unpersisted. On a
 * cluster every master is checked.
 */
import type { Redis } from 'ioredis';
import { masterNodes } from './connection.js';
import type { RedisClient } from './connection.js';

export interface RedisNodeFacts {
  node: string;
  maxmemoryPolicy: string;
  aof: boolean;
  /** the RDB `save` schedule; undefined when CONFIG GET is refused */
  rdbSave: string | undefined;
}

export interface RedisProductionReport {
  ok: boolean;
  /** one human-readable line per problem, naming the node and the setting to change */
  problems: string[];
  /** advice that does not block (e.g. RDB only) */
  warnings: string[];
  nodes: RedisNodeFacts[];
}

function infoField(info: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:(.*)$`, 'm').exec(info);
  return m?.[1]?.trim();
}

async function nodeFacts(node: Redis): Promise<RedisNodeFacts> {
  const info = await node.info();
  let rdbSave: string | undefined;
  try {
    const reply = (await node.config('GET', 'save')) as string[];
    rdbSave = reply[1] ?? '';
  } catch {
    rdbSave = undefined;
  }
  return {
    node: `${node.options.host ?? '?'}:${node.options.port ?? '?'}`,
    maxmemoryPolicy: infoField(info, 'maxmemory_policy') ?? 'unknown',
    aof: infoField(info, 'aof_enabled') === '1',
    rdbSave,
  };
}

export async function inspectRedisForProduction(
  redis: RedisClient,
): Promise<RedisProductionReport> {
  const nodes = await Promise.all(masterNodes(redis).map(nodeFacts));
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const n of nodes) {
    if (n.maxmemoryPolicy !== 'noeviction') {
      problems.push(
        `${n.node}: maxmemory-policy is ${n.maxmemoryPolicy}; it must be noeviction (an evicted ` +
          'block segment, idempotency record or queued change is lost for good)',
      );
    }
    const rdb = n.rdbSave !== undefined && n.rdbSave.trim() !== '';
    if (!n.aof && !rdb) {
      problems.push(
        `${n.node}: no persistence (appendonly no` +
          (n.rdbSave === undefined ? ', and CONFIG GET save refused' : ', save ""') +
          '); turn on AOF: appendonly yes, appendfsync everysec',
      );
    } else if (!n.aof) {
      warnings.push(
        `${n.node}: RDB snapshots only (save "${n.rdbSave ?? ''}"): a crash loses every change ` +
          'since the last snapshot; appendonly yes with appendfsync everysec loses at most ~1 s',
      );
    }
  }
  return { ok: problems.length === 0, problems, warnings, nodes };
}
