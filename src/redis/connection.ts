/**
 * ioredis connections by role (BullMQ's going-to-production advice): request paths fail fast so a
 * caller can answer 503 and the CRM retries; workers wait for Redis to come back.
 *
 * One URL names either a single Redis (`redis://`, `rediss://`) or a Redis Cluster
 * (`redis+cluster://[user:password@]host:port,host:port,…`, `rediss+cluster://` for TLS): the
 * listed nodes are only the seeds, the client learns the whole slot map from them. The URL stays
 * one string so that worker threads and child processes are handed it unchanged.
 */
import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';

/** A connection to a single Redis or to a Redis Cluster: every module takes either. */
export type RedisClient = Redis | Cluster;

export type ConnectionRole = 'request' | 'worker' | 'cli';

export interface RedisTarget {
  cluster: boolean;
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
  db?: number;
}

const CLUSTER_SCHEMES = new Set(['redis+cluster:', 'rediss+cluster:']);

/** true for a `redis+cluster://` or `rediss+cluster://` URL */
export function isClusterUrl(url: string): boolean {
  return CLUSTER_SCHEMES.has(url.slice(0, url.indexOf(':') + 1).toLowerCase());
}

/**
 * Parses a Redis or Redis Cluster URL. Throws an Error naming what is wrong (never echoing a
 * password) for anything else.
 */
export function parseRedisUrl(url: string): RedisTarget {
  if (!isClusterUrl(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new Error('expected a redis://, rediss:// or redis+cluster:// URL');
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
      throw new Error(
        `expected a redis://, rediss:// or redis+cluster:// URL, got ${u.protocol}//`,
      );
    }
    return {
      cluster: false,
      nodes: [{ host: u.hostname, port: u.port ? Number(u.port) : 6379 }],
      ...credentials(u.username, u.password),
      tls: u.protocol === 'rediss:',
      ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    };
  }
  // WHATWG URL cannot hold several hosts: split the authority by hand.
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  const rest = url.slice(scheme.length);
  if (!rest.startsWith('//')) throw new Error(`expected ${scheme}//host:port,host:port`);
  const authorityEnd = rest.slice(2).search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest.slice(2) : rest.slice(2, 2 + authorityEnd);
  const tail = authorityEnd === -1 ? '' : rest.slice(2 + authorityEnd);
  if (tail !== '' && tail !== '/') {
    throw new Error(
      'a Redis Cluster URL takes no database, path or query (a cluster has db 0 only)',
    );
  }
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at);
  const hosts = at === -1 ? authority : authority.slice(at + 1);
  const colon = userinfo.indexOf(':');
  const username = colon === -1 ? userinfo : userinfo.slice(0, colon);
  const password = colon === -1 ? '' : userinfo.slice(colon + 1);
  const nodes = hosts.split(',').map((hostPort) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(hostPort.trim());
    const port = m?.[2] === undefined ? 6379 : Number(m[2]);
    if (!m?.[1] || port < 1 || port > 65535) {
      throw new Error(`bad Redis Cluster node '${hostPort}' (expected host:port)`);
    }
    return { host: m[1].replace(/^\[|\]$/g, ''), port };
  });
  return {
    cluster: true,
    nodes,
    ...credentials(username, password),
    tls: scheme === 'rediss+cluster:',
  };
}

function credentials(username: string, password: string): { username?: string; password?: string } {
  return {
    ...(username ? { username: decodeURIComponent(username) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
  };
}

/** The per-role options shared by single-node clients and each node of a cluster. */
function roleOptions(role: ConnectionRole): RedisOptions {
  switch (role) {
    case 'request':
      return {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: REQUEST_COMMAND_TIMEOUT_MS,
      };
    case 'worker':
      return { maxRetriesPerRequest: null, commandTimeout: WORKER_COMMAND_TIMEOUT_MS };
    case 'cli':
      return {
        maxRetriesPerRequest: 1,
        commandTimeout: WORKER_COMMAND_TIMEOUT_MS,
        retryStrategy: (times) => (times > 3 ? null : 200 * times),
      };
  }
}

/**
 * ioredis Cluster options for a role. During a failover the slots of the failed master answer
 * CLUSTERDOWN or refuse connections until a replica is promoted (cluster-node-timeout plus the
 * election, a few seconds): commands are retried against the refreshed slot map meanwhile.
 */
export function clusterOptions(target: RedisTarget, role: ConnectionRole): ClusterOptions {
  const redisOptions: RedisOptions = {
    ...roleOptions(role),
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
  return {
    redisOptions,
    // Writes and the ledger's compare-and-set must see their own writes: read from masters only.
    scaleReads: 'master',
    enableOfflineQueue: role !== 'request',
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    maxRedirections: 64,
    slotsRefreshTimeout: 2_000,
    ...(role === 'cli'
      ? { clusterRetryStrategy: (times: number) => (times > 3 ? null : 200) }
      : {}),
  };
}

/**
 * Every role sets `commandTimeout`: ioredis holds a command that was in flight when the connection
 * dropped until it reconnects (then resends it), so without a timeout the caller waits for as long
 * as Redis is down. Resending is safe for the ledger (compare-and-set plus idempotency records).
 */
export function createRedis(url: string, role: ConnectionRole): RedisClient {
  const target = parseRedisUrl(url);
  const redis: RedisClient = target.cluster
    ? new Cluster(target.nodes, clusterOptions(target, role))
    : new Redis(url, roleOptions(role));
  // Connection errors are reported through command failures and /readyz; without a listener
  // ioredis prints every reconnect attempt to stderr.
  redis.on('error', () => {});
  return redis;
}

/**
 * The node to run a keyless, node-local command (SCAN, INFO, CONFIG GET) on for `key`: the client
 * itself for a single Redis, or the master that serves the key's slot in a cluster.
 */
export async function nodeForKey(redis: RedisClient, key: string): Promise<Redis> {
  if (!(redis instanceof Cluster)) return redis;
  const slot = Number(await redis.cluster('KEYSLOT', key));
  const owner = redis.slots[slot]?.[0];
  const node = redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  if (!node) throw new Error(`no master known for slot ${slot}`);
  return node;
}

/** The masters of a cluster, or the single Redis itself. */
export function masterNodes(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

export const REQUEST_COMMAND_TIMEOUT_MS = 2_000;
export const WORKER_COMMAND_TIMEOUT_MS = 30_000;
