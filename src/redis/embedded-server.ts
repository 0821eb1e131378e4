/**
 * A private `redis-server` child process: the zero-configuration default (`npm start`, AOF under
 * ./data) and the test harness (persistence off, one per test run).
 *
 * Ports: we bind a throw-away socket on 127.0.0.1:0, read the port the kernel chose and close it,
 * then start Redis on that port. Never `--port 0`: in Redis that disables the TCP listener instead
 * of picking a port. The window between closing our socket and Redis binding is a race we cannot
 * close from outside, so a bind failure on a port we picked is retried on a fresh one.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants as fsConstants, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

export interface StartRedisServerOptions {
  /** Directory for the AOF files; required for 'aof'. Created if missing. */
  dataDir?: string;
  persistence: 'aof' | 'none';
  /** Fixed port; by default a free loopback port is picked. Never 6379 by default. */
  port?: number;
  logger?: Logger;
  /** Environment for the binary lookup (PATH) and the child; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface EmbeddedRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Pid of the current child; changes after `restart()`. */
  readonly pid: number;
  /** The data directory passed in, when there is one. */
  readonly dataDir?: string;
  /** Graceful shutdown (SIGTERM: Redis flushes the AOF) and wait for exit. Idempotent. */
  stop(): Promise<void>;
  /** For fault tests: send `signal` (default SIGKILL) and wait for exit; no cleanup, no flush. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same port and directory (stopping first if still running). */
  restart(): Promise<void>;
}

export const REDIS_SERVER_BINARY = 'redis-server';
export const REDIS_READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 50;
/** Bytes of child output kept for error messages. */
const OUTPUT_TAIL_BYTES = 8192;
const PORT_ATTEMPTS = 5;

/** Look `name` up in a PATH string, like the shell would. */
export async function findExecutable(
  name: string,
  pathEnv: string | undefined,
): Promise<string | undefined> {
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => {
        if (port === undefined) reject(new Error('could not read the port of a loopback socket'));
        else resolve(port);
      });
    });
  });
}

function redisArgs(port: number, dir: string, persistence: 'aof' | 'none'): string[] {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--daemonize',
    'no',
    // No RDB snapshots: durability comes from the AOF (or is not wanted at all).
    '--save',
    '',
    '--dir',
    dir,
    // A ledger must never lose keys to eviction: fail writes loudly instead (DESIGN.md "Redis").
    '--maxmemory-policy',
    'noeviction',
  ];
  if (persistence === 'aof') {
    // everysec: at most ~1 s of acknowledged writes lost on power failure; `always` is the
    // stricter, slower choice for a shared production Redis (see deploy/redis.conf).
    args.push('--appendonly', 'yes', '--appendfsync', 'everysec', '--appenddirname', 'appendonly');
  } else {
    args.push('--appendonly', 'no');
  }
  return args;
}

/**
 * Ready means: answers PING with `+PONG` (not `-LOADING` while the AOF replays) *and* is our child.
 * The second half matters on a fixed port: if another Redis already listens there, our child fails
 * to bind and exits, but the other one would answer PING first. INFO's `process_id` settles it.
 */
function probe(port: number, pid: number | undefined, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\nINFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.startsWith('-') && reply.includes('\r\n')) return done(false);
      const owner = /\r\nprocess_id:(\d+)\r\n/.exec(reply);
      if (owner !== null) done(reply.startsWith('+PONG\r\n') && Number(owner[1]) === pid);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class OutputTail {
  private text = '';
  append(chunk: Buffer): void {
    this.text = (this.text + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  }
  toString(): string {
    return this.text.trimEnd();
  }
}

interface RunningChild {
  child: ChildProcess;
  exited: Promise<void>;
  hasExited: () => boolean;
  output: OutputTail;
}

export async function startRedisServer(options: StartRedisServerOptions): Promise<EmbeddedRedis> {
  const env = options.env ?? process.env;
  const log = options.logger?.child({ module: 'embedded-redis' });
  const binary = await findExecutable(REDIS_SERVER_BINARY, env['PATH']);
  if (binary === undefined) {
    throw new ConfigError(
      'REDIS_SERVER_MISSING',
      "redis-server not found on PATH: install the Debian package 'redis-server' (apt-get install redis-server) or set CRM_LEDGER_REDIS_URL",
    );
  }
  if (options.persistence === 'aof' && options.dataDir === undefined) {
    throw new ConfigError(
      'CONFIG_INVALID',
      "an embedded Redis with persistence 'aof' needs a dataDir",
    );
  }

  // With persistence off Redis writes nothing, but it still needs a --dir it owns; a temporary
  // one keeps a stray SHUTDOWN SAVE or crash file out of the caller's working directory.
  const ownsDir = options.dataDir === undefined;
  const dir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'crm-ledger-redis-')));
  await mkdir(dir, { recursive: true });

  let current: RunningChild | undefined;
  let stopping = false;

  const launch = (port: number): RunningChild => {
    const child = spawn(binary, redisArgs(port, dir, options.persistence), {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = new OutputTail();
    child.stdout?.on('data', (chunk: Buffer) => {
      output.append(chunk);
      log?.trace({ port }, chunk.toString('utf8').trimEnd());
    });
    child.stderr?.on('data', (chunk: Buffer) => output.append(chunk));
    let exitedFlag = false;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitedFlag = true;
        if (!stopping && current?.child === child) {
          log?.error({ port, code, signal, output: output.toString() }, 'redis-server exited');
        }
        resolve();
      });
      // spawn failure (EACCES, …): 'exit' may never fire.
      child.once('error', (err) => {
        output.append(Buffer.from(`\nspawn error: ${err.message}`));
        exitedFlag = true;
        resolve();
      });
    });
    return { child, exited, hasExited: () => exitedFlag, output };
  };

  const waitReady = async (running: RunningChild, port: number): Promise<void> => {
    const deadline = Date.now() + REDIS_READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (running.hasExited()) {
        throw new Error(
          `redis-server exited before answering PING on port ${port}:\n${running.output.toString()}`,
        );
      }
      if (await probe(port, running.child.pid, 1000)) return;
      await sleep(PING_INTERVAL_MS);
    }
    running.child.kill('SIGKILL');
    await running.exited;
    throw new Error(
      `redis-server did not answer PING on port ${port} within ${REDIS_READY_TIMEOUT_MS} ms:\n${running.output.toString()}`,
    );
  };

  const startOn = async (port: number): Promise<void> => {
    const running = launch(port);
    current = running;
    await waitReady(running, port);
  };

  let port: number;
  for (let attempt = 1; ; attempt += 1) {
    port = options.port ?? (await findFreePort());
    try {
      await startOn(port);
      break;
    } catch (err) {
      // Retry only the race on a port we picked: another process binding it between probe and use.
      const portTaken = err instanceof Error && /already in use/i.test(err.message);
      if (options.port !== undefined || !portTaken || attempt >= PORT_ATTEMPTS) {
        if (ownsDir) await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  // Best effort: a Redis we started should not outlive us. At 'exit' only synchronous work runs,
  // so SIGTERM (Redis then flushes the AOF and exits on its own), not a wait.
  const onParentExit = () => {
    if (current !== undefined && !current.hasExited()) current.child.kill('SIGTERM');
    // With persistence off nothing is written there, so removing it under a dying Redis is safe.
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onParentExit);

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const running = current;
    if (running === undefined || running.hasExited()) return;
    stopping = true;
    try {
      running.child.kill(signal);
      const timer = setTimeout(() => running.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await running.exited;
      clearTimeout(timer);
    } finally {
      stopping = false;
    }
  };

  let stopped = false;
  const server: EmbeddedRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return current?.child.pid ?? -1;
    },
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await signalAndWait('SIGTERM');
      process.off('exit', onParentExit);
      if (ownsDir) await rm(dir, { recursive: true, force: true });
      log?.debug({ port }, 'embedded redis stopped');
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      await signalAndWait(signal);
    },
    async restart() {
      if (stopped) throw new Error('embedded redis was stopped; start a new one instead');
      await signalAndWait('SIGTERM');
      await startOn(port);
      log?.info({ port, redisPid: current?.child.pid }, 'embedded redis restarted');
    },
  };
  log?.info(
    { port, redisPid: server.pid, persistence: options.persistence, dir },
    'embedded redis started',
  );
  return server;
}
