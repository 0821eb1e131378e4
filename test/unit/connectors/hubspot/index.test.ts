import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RawRequest } from '../../../../connectors/types.js';
import { createHubspotConnector } from '../../../../connectors/hubspot/index.js';
import { signHubspotV1, signHubspotV3 } from '../../../../connectors/hubspot/signature.js';
import { changeEventSchema } from '../../../../src/model/change-event.js';

const SECRET = 'app-client-secret';
const NOW = 1_715_203_101_896;
const body = readFileSync(
  new URL('../../../../connectors/hubspot/fixtures/sensitive-data-sample.json', import.meta.url),
);

function request(publicUri: string, originalUrl: string, host: string): RawRequest {
  const timestamp = String(NOW - 1000);
  return {
    method: 'POST',
    originalUrl,
    body,
    headers: {
      host,
      'content-type': 'application/json',
      'x-hubspot-signature-v3': signHubspotV3({
        secret: SECRET,
        method: 'POST',
        uri: publicUri,
        body,
        timestamp,
      }),
      'x-hubspot-request-timestamp': timestamp,
    },
  };
}

describe('createHubspotConnector', () => {
  describe('when configured with a client secret', () => {
    const connector = createHubspotConnector({ clientSecret: SECRET });
    const req = request(
      'http://localhost:8080/webhooks/hubspot',
      '/webhooks/hubspot',
      'localhost:8080',
    );

    it('is the hubspot source', () => {
      expect(connector.source).toBe('hubspot');
    });

    it('verifies a request signed for real, then parses it', () => {
      expect(connector.verifyRequest(req, NOW)).toEqual({ ok: true });
      const parsed = connector.parse(req);
      if (!parsed.ok) throw new Error(parsed.reason);
      expect(parsed.events).toHaveLength(1);
      expect(changeEventSchema.safeParse(parsed.events[0]?.event).success).toBe(true);
    });

    it('refuses a stale request', () => {
      const result = connector.verifyRequest(req, NOW + 10 * 60_000);
      expect(result.ok ? 'OK' : result.code).toBe('TIMESTAMP_TOO_OLD');
    });

    it('refuses a v1-only request (v1 is off by default)', () => {
      const v1: RawRequest = {
        ...req,
        headers: {
          host: 'localhost:8080',
          'x-hubspot-signature': signHubspotV1({ secret: SECRET, body }),
        },
      };
      const result = connector.verifyRequest(v1, NOW);
      expect(result.ok ? 'OK' : result.code).toBe('SIGNATURE_VERSION_UNSUPPORTED');
    });
  });

  describe('when v1 is enabled', () => {
    it('accepts a v1-only request', () => {
      const connector = createHubspotConnector({ clientSecret: SECRET, acceptV1: true });
      const v1: RawRequest = {
        method: 'POST',
        originalUrl: '/webhooks/hubspot',
        body,
        headers: {
          host: 'localhost:8080',
          'x-hubspot-signature': signHubspotV1({ secret: SECRET, body }),
          'x-hubspot-signature-version': 'v1',
        },
      };
      expect(connector.verifyRequest(v1, NOW)).toEqual({ ok: true });
    });
  });

  describe('when behind a proxy', () => {
    it('verifies against the public URL', () => {
      const connector = createHubspotConnector({
        clientSecret: SECRET,
        publicUrl: 'https://ledger.example.com',
      });
      const req = request(
        'https://ledger.example.com/webhooks/hubspot?src=hs%3Aapp',
        '/webhooks/hubspot?src=hs%3Aapp',
        'ledger-api:3000',
      );
      expect(connector.verifyRequest(req, NOW)).toEqual({ ok: true });
    });
  });

  describe('when no client secret is configured', () => {
    it.each([{}, { clientSecret: '' }, { clientSecret: undefined }])(
      'returns CONNECTOR_NOT_CONFIGURED for %j',
      (options) => {
        const connector = createHubspotConnector(options);
        const req = request('http://localhost/webhooks/hubspot', '/webhooks/hubspot', 'localhost');
        const result = connector.verifyRequest(req, NOW);
        expect(result.ok ? 'OK' : result.code).toBe('CONNECTOR_NOT_CONFIGURED');
      },
    );
  });

  describe('when acknowledging', () => {
    it('answers 200 JSON with the number queued', () => {
      const connector = createHubspotConnector({ clientSecret: SECRET });
      const parsed = connector.parse({ method: 'POST', originalUrl: '/', headers: {}, body });
      if (!parsed.ok) throw new Error(parsed.reason);
      const response = connector.acknowledge(parsed.events);
      expect(response).toEqual({
        status: 200,
        contentType: 'application/json',
        body: '{"ok":true,"queued":1}',
      });
    });
  });

  describe('when rejecting', () => {
    it('answers JSON with the code and message', () => {
      const response = createHubspotConnector().reject(401, 'SIGNATURE_INVALID', 'bad "sig"');
      expect(response.status).toBe(401);
      expect(response.contentType).toBe('application/json');
      expect(JSON.parse(response.body)).toEqual({
        error: { code: 'SIGNATURE_INVALID', message: 'bad "sig"' },
      });
    });
  });
});
