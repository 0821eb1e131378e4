/**
 * A real local Redis Cluster for tests and benches: `masters` redis-servers with
 * `--cluster-enabled yes` (+ `replicasPerMaster` replicas each) on free loopback ports, joined by
 * `redis-cli --cluster create`. Persistence off, like the test Redis. Never touches port 6379.
 */
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  process: ChildProcess;
}

export interface LocalRedisCluster {
  /** `redis+cluster://127.0.0.1:p1,…` (every node as a seed) */
  url: string;
  nodes: ClusterNode[];
  /** a direct (non-cluster) client on one node; the caller disconnects it */
  nodeClient(port: number): Redis;
  /** port of the master serving `key`'s slot, and of one of its replicas (if any) */
  ownerOf(key: string): Promise<{ master: number; replica: number | undefined }>;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** `count` ports p with p and p + 10000 (the cluster bus) free, below 55536. */
async function freeClusterPorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    const free = await Promise.all(ports.flatMap((p) => [portFree(p), portFree(p + 10_000)]));
    if (free.every(Boolean)) return ports;
  }
  throw new Error('no free port range for a local Redis Cluster');
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startRedisCluster(
  options: { masters?: number; replicasPerMaster?: number; nodeTimeoutMs?: number } = {},
): Promise<LocalRedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const total = masters * (1 + replicas);
  const dir = await mkdtemp(join(tmpdir(), 'cl-cluster-'));
  const ports = await freeClusterPorts(total);
  const nodes: ClusterNode[] = ports.map((port) => ({
    port,
    process: spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        String(options.nodeTimeoutMs ?? 2_000),
        '--dir',
        dir,
        '--dbfilename',
        `dump-${port}.rdb`,
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    ),
  }));
  const clients = new Map<number, Redis>();
  const nodeClient = (port: number) => {
    const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: false });
    c.on('error', () => {});
    return c;
  };
  const stop = async () => {
    for (const c of clients.values()) c.disconnect();
    await Promise.all(
      nodes
        .filter((n) => n.process.exitCode === null && n.process.signalCode === null)
        .map((n) => new Promise((r) => n.process.once('exit', r).kill('SIGKILL'))),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const c = nodeClient(port);
      clients.set(port, c);
      await waitFor(async () => (await c.ping()) === 'PONG', 10_000, `redis-server on ${port}`);
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
    // Every node must see the whole cluster (state ok, all slots, every node known) before use.
    for (const c of clients.values()) {
      await waitFor(
        async () => {
          const info = await c.cluster('INFO');
          return (
            /cluster_state:ok/.test(info) &&
            /cluster_slots_ok:16384/.test(info) &&
            new RegExp(`cluster_known_nodes:${total}\\b`).test(info)
          );
        },
        30_000,
        'the cluster to agree',
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const any = clients.get(ports[0]!)!;
  type Shard = [number, number, ...[string, number, ...unknown[]][]];
  const shards = async () => (await any.cluster('SLOTS')) as unknown as Shard[];
  try {
    // Replicas attach after `create` returns: wait until every shard lists its replicas.
    await waitFor(
      async () => (await shards()).every((s) => s.length >= 3 + replicas),
      30_000,
      'the replicas to attach',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes,
    nodeClient,
    async ownerOf(key) {
      const slot = Number(await any.cluster('KEYSLOT', key));
      for (const [from, to, master, ...reps] of await shards()) {
        if (master && slot >= from && slot <= to)
          return { master: master[1], replica: reps[0]?.[1] };
      }
      throw new Error(`no owner for slot ${slot}`);
    },
    stop,
  };
}
