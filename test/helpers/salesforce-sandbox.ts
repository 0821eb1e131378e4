/**
 * Test-side helpers for the Salesforce sandbox: start it, a jsforce connection to it, and a
 * local Outbound Message receiver that answers like our webhook does (Ack) or fails on purpose.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import jsforce from 'jsforce';
import type { Connection } from 'jsforce';
import { startSalesforceSandbox } from '../../connectors/sandbox/salesforce/index.js';
import type {
  SalesforceSandbox,
  SalesforceSandboxOptions,
} from '../../connectors/sandbox/salesforce/index.js';
import { OUTBOUND_MESSAGE_ACK } from '../../connectors/salesforce/outbound-message.js';

export const API_VERSION = '62.0';

export function startSandbox(options: SalesforceSandboxOptions = {}): Promise<SalesforceSandbox> {
  return startSalesforceSandbox({ cometdTimeoutSeconds: 5, ...options });
}

/** A jsforce connection to the sandbox, as the real SDK would be configured. */
export function connectJsforce(
  sandbox: SalesforceSandbox,
  extra: Partial<ConstructorParameters<typeof jsforce.Connection>[0]> = {},
): Connection {
  return new jsforce.Connection({
    instanceUrl: sandbox.url,
    loginUrl: sandbox.url,
    accessToken: 'test-token',
    version: API_VERSION,
    ...extra,
  });
}

export interface OmReceiver {
  url: string;
  bodies: Buffer[];
  /** answers the next `n` requests with 500 */
  failNext(n: number): void;
  close(): Promise<void>;
}

export async function startOmReceiver(): Promise<OmReceiver> {
  const bodies: Buffer[] = [];
  let failures = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (failures > 0) {
        failures--;
        res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
        return;
      }
      bodies.push(Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(OUTBOUND_MESSAGE_ACK);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/salesforce`,
    bodies,
    failNext(n) {
      failures = n;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls until `check` returns a value other than undefined/false. */
export async function waitFor<T>(
  check: () => T | undefined | false,
  what: string,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
