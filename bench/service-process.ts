/**
 * The real service (`crm-ledger serve --role all`, src/cli.ts → main.ts) as a child process of a
 * bench, against the bench's private Redis: the API and the anchor worker thread, wired exactly
 * as in production (vault, checks, checkpoints). Its CPU time is read from /proc, so that the load
 * sent from the bench process is not counted in it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ServiceProcess {
  port: number;
  pid: number;
  /** user + system CPU seconds of the process (all its threads) so far */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** utime + stime of /proc/<pid>/stat, in seconds (clock ticks of 1/100 s on Linux). */
async function procCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  // node itself with tsx's loader, so the pid is the service's (not a tsx wrapper's).
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--role', 'all'],
    {
      env: {
        PATH: process.env['PATH'] ?? '',
        // V8 options the bench runs with (npm run bench may set some) apply to the service too.
        ...(process.env['NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['NODE_OPTIONS'] } : {}),
        CRM_LEDGER_PORT: String(port),
        CRM_LEDGER_HOST: '127.0.0.1',
        CRM_LEDGER_LOG_LEVEL: 'warn',
        CRM_LEDGER_SANDBOX: 'off',
        // No background work in the measured phases: only what the webhooks cause.
        CRM_LEDGER_RECONCILE_EVERY_MS: '0',
        CRM_LEDGER_VERIFY_EVERY_MS: '0',
        CRM_LEDGER_FULL_VERIFY_EVERY_MS: '0',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      resolve();
    }),
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (gone) throw new Error(`the service exited (${child.exitCode ?? child.signalCode})`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the service did not answer /healthz within 60 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid as number;
  return {
    port,
    pid,
    cpuSeconds: () => procCpuSeconds(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
