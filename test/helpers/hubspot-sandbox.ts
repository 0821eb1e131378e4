/**
 * Test helpers for the sandbox HubSpot: one sandbox per file (`useHubspotSandbox`), the real SDK
 * pointed at it (`sdkFor`), and a local webhook receiver that keeps each request's raw bytes.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@hubspot/api-client';
import { afterAll, beforeAll } from 'vitest';
import { startHubspotSandbox } from '../../connectors/sandbox/hubspot/index.js';
import type {
  HubspotSandbox,
  HubspotSandboxOptions,
} from '../../connectors/sandbox/hubspot/index.js';

/** Starts a sandbox before the file's tests and closes it after; read `.sandbox` inside tests. */
export function useHubspotSandbox(options: HubspotSandboxOptions = {}): {
  readonly sandbox: HubspotSandbox;
} {
  let sandbox: HubspotSandbox | undefined;
  beforeAll(async () => {
    sandbox = await startHubspotSandbox(options);
  });
  afterAll(async () => {
    await sandbox?.close();
  });
  return {
    get sandbox(): HubspotSandbox {
      if (sandbox === undefined) throw new Error('the sandbox starts in beforeAll');
      return sandbox;
    },
  };
}

/** The real SDK against the sandbox, without its own retries (we test what the server says). */
export function sdkFor(sandbox: HubspotSandbox, accessToken = 'test-token'): Client {
  return new Client({ accessToken, basePath: sandbox.url, numberOfApiCallRetries: 0 });
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface WebhookReceiver {
  /** the full URL to configure as the webhook target */
  url: string;
  received: ReceivedRequest[];
  /** the status the next requests get (default 200); a queue of statuses is consumed first */
  respondWith(status: number, times?: number): void;
  /** resolves when `predicate` holds for the received requests, or rejects after `timeoutMs` */
  waitFor(predicate: (received: ReceivedRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(path = '/webhooks/hubspot'): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  const queued: number[] = [];
  let status = 200;
  const waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.writeHead(queued.shift() ?? status).end();
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    respondWith(next: number, times?: number) {
      if (times === undefined) status = next;
      else for (let i = 0; i < times; i++) queued.push(next);
    },
    async waitFor(predicate, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`webhook receiver: condition not met in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 100));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
