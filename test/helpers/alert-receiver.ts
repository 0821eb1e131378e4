/**
 * A local alert webhook for e2e tests: it checks every alert's HMAC signature as a customer's
 * endpoint would, keeps what it received, and answers 204 (signed) or 401.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALERT_SIGNATURE_HEADER, verifyAlertSignature } from '../../src/policy/alerts.js';

export interface AlertReceiver {
  /** where to POST alerts (CRM_LEDGER_ALERT_WEBHOOK_URL) */
  url: string;
  /** each alert's `alert` object, and whether its signature verified */
  alerts: { alert: Record<string, unknown>; signed: boolean }[];
  close(): Promise<void>;
}

export async function startAlertReceiver(secret: string): Promise<AlertReceiver> {
  const alerts: AlertReceiver['alerts'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = req.headers[ALERT_SIGNATURE_HEADER];
      const check = verifyAlertSignature(
        body,
        typeof header === 'string' ? header : undefined,
        secret,
        Math.floor(Date.now() / 1000),
      );
      const parsed = JSON.parse(body.toString('utf8')) as { alert: Record<string, unknown> };
      alerts.push({ alert: parsed.alert, signed: check.ok });
      res.writeHead(check.ok ? 204 : 401).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    alerts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
