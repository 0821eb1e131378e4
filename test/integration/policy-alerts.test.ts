import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import {
  ALERT_ID_HEADER,
  ALERT_SIGNATURE_HEADER,
  WebhookAlertSink,
  alertFromAction,
  signAlert,
  verifyAlertSignature,
} from '../../src/policy/alerts.js';
import type { Alert } from '../../src/policy/alerts.js';
import { loadPolicy } from '../../src/policy/evaluate.js';

const SECRET = 'whsec-test-0123456789abcdef';

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A local receiver: answers each request with the next scripted status (then 200). */
let server: Server;
let url: string;
let received: Received[];
let script: { status: number; headers?: Record<string, string> }[];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      const next = script.shift() ?? { status: 200 };
      res.writeHead(next.status, next.headers ?? {}).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/SECRETPATH?token=q`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = [];
  script = [];
});

function alert(): Alert {
  const policy = loadPolicy(`version: 1
rules:
  - name: protect-email
    match: { fields: [email] }
    allow: { sources: [INTEGRATION] }
    action: [alert]
`);
  const result = policy.evaluate(
    {
      tenant: 'hubspot:62515',
      source: 'hubspot',
      object: 'contact',
      recordId: '123',
      eventId: 'e1',
      kind: 'update',
      actor: { type: 'user', id: 'hubspot:user:7' },
      occurredAt: '2025-03-05T12:00:00Z',
      fields: { email: 'private@example.com' },
    },
    Date.now(),
  );
  const action = result.actions[0];
  if (!action) throw new Error('expected an alert action');
  return alertFromAction(action);
}

function logs(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

describe('WebhookAlertSink', () => {
  describe('when the webhook accepts the alert', () => {
    it('POSTs a signed, Slack-compatible JSON body that the receiver can verify', async () => {
      const { lines, logger } = logs();
      const sink = new WebhookAlertSink({ logger, url, secret: SECRET });
      const a = alert();
      const result = await sink.send(a);
      expect(result).toEqual({ ok: true, delivered: true, attempts: 1, status: 200 });
      expect(received).toHaveLength(1);
      const [req] = received;
      if (!req) throw new Error('no request');
      const header = req.headers[ALERT_SIGNATURE_HEADER] as string;
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(req.headers[ALERT_ID_HEADER]).toBe(a.id);
      expect(verifyAlertSignature(req.body, header, SECRET, Math.floor(Date.now() / 1000))).toEqual(
        {
          ok: true,
        },
      );
      const body = JSON.parse(req.body.toString('utf8'));
      expect(body.text).toContain('protect-email');
      expect(body.alert).toMatchObject({
        id: a.id,
        rule: 'protect-email',
        code: 'POLICY_UNAUTHORISED',
      });
      expect(req.body.toString()).not.toContain('private@example.com');
      // Logged, without the secret, the URL's path/query or the body.
      const log = lines.join('');
      expect(log).toContain('alert delivered');
      expect(log).not.toContain(SECRET);
      expect(log).not.toContain('SECRETPATH');
      expect(log).not.toContain('token=q');
    });
  });

  describe('when the body or the signature is tampered with', () => {
    it('fails verification with a code', async () => {
      await new WebhookAlertSink({ logger: logs().logger, url, secret: SECRET }).send(alert());
      const [req] = received;
      if (!req) throw new Error('no request');
      const header = req.headers[ALERT_SIGNATURE_HEADER] as string;
      const now = Math.floor(Date.now() / 1000);
      const tampered = Buffer.from(req.body.toString().replace('hubspot:62515', 'hubspot:62516'));
      expect(verifyAlertSignature(tampered, header, SECRET, now)).toEqual({
        ok: false,
        code: 'SIGNATURE_INVALID',
      });
      expect(verifyAlertSignature(req.body, header, 'other-secret', now).ok).toBe(false);
      expect(verifyAlertSignature(req.body, header, SECRET, now + 301)).toEqual({
        ok: false,
        code: 'TIMESTAMP_TOO_OLD',
      });
      expect(verifyAlertSignature(req.body, header, SECRET, now - 301)).toEqual({
        ok: false,
        code: 'TIMESTAMP_TOO_NEW',
      });
      expect(verifyAlertSignature(req.body, undefined, SECRET, now)).toEqual({
        ok: false,
        code: 'SIGNATURE_MISSING',
      });
      expect(verifyAlertSignature(req.body, 't=1,v1=zz', SECRET, now)).toEqual({
        ok: false,
        code: 'SIGNATURE_MALFORMED',
      });
      expect(verifyAlertSignature(req.body, 'garbage', SECRET, now).ok).toBe(false);
    });
  });

  describe('when the webhook answers 503 and 429 first', () => {
    it('retries with backoff (honouring Retry-After) and sends the same alert id', async () => {
      script = [{ status: 503 }, { status: 429, headers: { 'retry-after': '2' } }];
      const delays: number[] = [];
      const sink = new WebhookAlertSink({
        logger: logs().logger,
        url,
        secret: SECRET,
        baseDelayMs: 100,
        random: () => 1,
        sleep: (ms) => {
          delays.push(ms);
          return Promise.resolve();
        },
      });
      const result = await sink.send(alert());
      expect(result).toEqual({ ok: true, delivered: true, attempts: 3, status: 200 });
      expect(delays).toEqual([100, 2000]);
      expect(new Set(received.map((r) => r.headers[ALERT_ID_HEADER])).size).toBe(1);
      expect(new Set(received.map((r) => r.body.toString())).size).toBe(1);
    });
  });

  describe('when the webhook rejects the alert with a 4xx', () => {
    it('does not retry', async () => {
      script = [{ status: 400 }];
      const result = await new WebhookAlertSink({
        logger: logs().logger,
        url,
        secret: SECRET,
      }).send(alert());
      expect(result).toEqual({ ok: false, code: 'ALERT_REJECTED', attempts: 1, status: 400 });
      expect(received).toHaveLength(1);
    });
  });

  describe('when the webhook is unreachable', () => {
    it('gives up after the configured attempts', async () => {
      const sink = new WebhookAlertSink({
        logger: logs().logger,
        url: 'http://127.0.0.1:1/hook',
        secret: SECRET,
        attempts: 3,
        sleep: () => Promise.resolve(),
      });
      expect(await sink.send(alert())).toEqual({
        ok: false,
        code: 'ALERT_DELIVERY_FAILED',
        attempts: 3,
      });
    });
  });

  describe('when no webhook is configured', () => {
    it('only logs the alert', async () => {
      const { lines, logger } = logs();
      expect(await new WebhookAlertSink({ logger }).send(alert())).toEqual({
        ok: true,
        delivered: false,
        attempts: 0,
      });
      expect(lines.join('')).toContain('"msg":"policy alert"');
      expect(received).toHaveLength(0);
    });

    it('logs a tamper alert as one', async () => {
      const { lines, logger } = logs();
      await new WebhookAlertSink({ logger }).send({ ...alert(), type: 'ledger.tampered' });
      expect(lines.join('')).toContain('"msg":"tamper alert"');
      expect(lines.join('')).toContain('"type":"ledger.tampered"');
    });
  });

  describe('signAlert', () => {
    it('is HMAC-SHA256 over "<t>.<body>" (known answer)', () => {
      // python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"1700000000.{}",hashlib.sha256).hexdigest())'
      expect(signAlert('{}', 'key', 1_700_000_000)).toBe(
        't=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae',
      );
    });
  });
});
