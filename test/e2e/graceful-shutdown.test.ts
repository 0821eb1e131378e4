/**
 * SIGTERM while webhooks are being anchored: the service stops taking requests, lets the worker
 * finish the jobs in hand, closes its connections and its embedded redis-server, and exits 0.
 * Everything it acknowledged is anchored once — after the restart, for what was still queued.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHubspotV3 } from '../../connectors/hubspot/signature.js';
import { findFreePort } from '../../src/redis/embedded-server.js';

// One process, signals reach it: node itself with tsx's loader, not the tsx wrapper (which
// would leave its node child running when it is SIGKILLed).
const TSX = ['--import', 'tsx'];

let dir: string;
let port: number;
const children: ChildProcess[] = [];
/** each child's stdout so far (pino lines and the banner) */
const output = new Map<ChildProcess, string>();

function serve(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...TSX, 'src/cli.ts', 'serve'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      CRM_LEDGER_DATA_DIR: dir,
      CRM_LEDGER_PORT: String(port),
      CRM_LEDGER_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      output.set(child, out);
      if (out.includes('crm-ledger listening')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out.slice(-2000)}`)));
  });
}

async function adminGet(path: string): Promise<Record<string, unknown>> {
  const token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  return (await res.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-term-'));
  port = await findFreePort();
});
afterAll(async () => {
  // SIGTERM, not SIGKILL: the service must stop its embedded redis-server on the way out.
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => new Promise((r) => c.once('exit', r).kill('SIGTERM'))),
  );
  await rm(dir, { recursive: true, force: true });
});

describe('serve on SIGTERM', () => {
  it('drains, exits 0, and every acknowledged change ends up anchored exactly once', async () => {
    const first = await serve();
    const { hubspotClientSecret } = JSON.parse(
      await readFile(join(dir, 'sandbox-credentials.json'), 'utf8'),
    ) as { hubspotClientSecret: string };
    const uri = `http://127.0.0.1:${port}/webhooks/hubspot`;
    let acknowledged = 0;
    const posts = Array.from({ length: 30 }, async (_, b) => {
      const body = JSON.stringify(
        Array.from({ length: 50 }, (_, i) => ({
          eventId: b * 50 + i + 1,
          subscriptionId: 1,
          portalId: 777,
          appId: 1,
          occurredAt: 1_764_150_000_000 + b * 50 + i,
          subscriptionType: 'contact.propertyChange',
          attemptNumber: 0,
          objectId: 100 + (i % 13),
          propertyName: 'email',
          propertyValue: `e${b}-${i}@example.com`,
          changeSource: 'CRM_UI',
          sourceId: 'userId:1',
        })),
      );
      const timestamp = Date.now();
      const res = await fetch(uri, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-HubSpot-Request-Timestamp': String(timestamp),
          'X-HubSpot-Signature-v3': signHubspotV3({
            secret: hubspotClientSecret,
            method: 'POST',
            uri,
            body,
            timestamp,
          }),
        },
        body,
      }).catch(() => undefined);
      if (res?.status === 200) acknowledged += 50;
    });
    await Promise.all(posts);
    expect(acknowledged).toBe(1500);
    first.kill('SIGTERM');
    const code = await new Promise((r) => first.once('exit', r));
    expect(code).toBe(0);

    await serve();
    // Up to a minute: the restarted worker also runs the duplicate matcher on each change.
    for (let i = 0; i < 300; i++) {
      const v = await adminGet('/admin/verify?tenant=hubspot:777');
      if (v['size'] === acknowledged) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await adminGet('/admin/verify?tenant=hubspot:777&mode=full')).toMatchObject({
      ok: true,
      size: 1500,
      checkpointSize: 1500,
    });
  }, 120_000);

  it('a second signal while stopping does not cut the shutdown short', async () => {
    const child = await serve();
    const started = /"redisPid":(\d+)[^\n]*embedded redis started/.exec(output.get(child) ?? '');
    const redisPid = Number(started?.[1]);
    expect(redisPid).toBeGreaterThan(0);
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    child.kill('SIGTERM');
    // The second one once the first is being handled (as from a wrapper that relays it late).
    for (let i = 0; i < 100 && !(output.get(child) ?? '').includes('shutting down'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    // Its embedded redis-server went with it (stopped by the service, not orphaned).
    const alive = () => {
      try {
        process.kill(redisPid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive()).toBe(false);
  }, 60_000);
});
