import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RawRequest, VerifyResult } from '../../../../connectors/types.js';
import {
  HUBSPOT_MAX_SKEW_MS,
  HUBSPOT_V3_DECODED_ESCAPES,
  decodeHubspotUri,
  rebuildSignedUri,
  signHubspotV1,
  signHubspotV2,
  signHubspotV3,
  verifyHubspotRequest,
  verifyHubspotV1,
  verifyHubspotV3,
} from '../../../../connectors/hubspot/signature.js';
import type { HubspotV3Input } from '../../../../connectors/hubspot/signature.js';

type Vectors = {
  secret: string;
  v1: { name: string; body: string; expected: string }[];
  v2: { name: string; method: string; uri: string; body: string; expected: string }[];
  v3: {
    name: string;
    method: string;
    uri: string;
    body: string;
    timestamp: string;
    expected: string;
  }[];
};

const vectors = JSON.parse(
  readFileSync(new URL('../../../vectors/hubspot-signatures.json', import.meta.url), 'utf8'),
) as Vectors;

const SECRET = 'test-client-secret-0f1e2d3c';
const NOW = 1_700_000_000_000;
const URI = 'https://hooks.example.com/webhooks/hubspot';
const BODY = Buffer.from(
  '[{"eventId":7,"subscriptionId":25,"portalId":33,"occurredAt":1699999990000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":101,"changeSource":"CRM_UI","sourceId":"userId:42"}]',
  'utf8',
);

/** HubSpot's algorithm written out independently of the code under test (§2.3). */
function referenceV3(secret: string, method: string, signedUri: string, body: Buffer, ts: string) {
  return createHmac('sha256', secret)
    .update(Buffer.concat([Buffer.from(method + signedUri, 'utf8'), body, Buffer.from(ts)]))
    .digest('base64');
}

/** A correctly signed v3 input, with overrides. */
function v3Input(overrides: Partial<HubspotV3Input> = {}): HubspotV3Input {
  const timestamp = String(NOW);
  return {
    method: 'POST',
    uri: URI,
    body: BODY,
    signature: referenceV3(SECRET, 'POST', URI, BODY, timestamp),
    timestamp,
    secret: SECRET,
    now: NOW,
    ...overrides,
  };
}

function codeOf(result: VerifyResult): string {
  return result.ok ? 'OK' : result.code;
}

/** A webhook request as the HTTP layer hands it over, signed for `signedUri`. */
function signedRequest(
  options: {
    signedUri?: string;
    originalUrl?: string;
    host?: string;
    body?: Buffer;
    headers?: Record<string, string | string[] | undefined>;
  } = {},
): RawRequest {
  const body = options.body ?? BODY;
  const timestamp = String(NOW);
  const signedUri = options.signedUri ?? 'http://127.0.0.1:8080/webhooks/hubspot';
  return {
    method: 'POST',
    originalUrl: options.originalUrl ?? '/webhooks/hubspot',
    body,
    headers: {
      host: options.host ?? '127.0.0.1:8080',
      'content-type': 'application/json',
      'x-hubspot-signature-v3': signHubspotV3({
        secret: SECRET,
        method: 'POST',
        uri: signedUri,
        body,
        timestamp,
      }),
      'x-hubspot-request-timestamp': timestamp,
      ...options.headers,
    },
  };
}

describe('HubSpot signature vectors (crm-protocols.md §2.4)', () => {
  describe('v3 (computed locally, cross-checked; not official)', () => {
    for (const vector of vectors.v3) {
      it(`signs and verifies vector ${vector.name}`, () => {
        const body = Buffer.from(vector.body, 'utf8');
        expect(
          signHubspotV3({
            secret: vectors.secret,
            method: vector.method,
            uri: vector.uri,
            body,
            timestamp: vector.timestamp,
          }),
        ).toBe(vector.expected);
        const result = verifyHubspotV3({
          method: vector.method,
          uri: vector.uri,
          body,
          signature: vector.expected,
          timestamp: vector.timestamp,
          secret: vectors.secret,
          now: Number(vector.timestamp),
        });
        expect(result).toEqual({ ok: true });
      });
    }
  });

  describe('v1 (official)', () => {
    for (const vector of vectors.v1) {
      it(`signs and verifies ${vector.name}`, () => {
        const body = Buffer.from(vector.body, 'utf8');
        expect(signHubspotV1({ secret: vectors.secret, body })).toBe(vector.expected);
        expect(
          verifyHubspotV1({ body, signature: vector.expected, secret: vectors.secret }),
        ).toEqual({ ok: true });
        expect(
          verifyHubspotV1({
            body,
            signature: vector.expected.toUpperCase(),
            secret: vectors.secret,
          }),
        ).toEqual({ ok: true });
      });
    }
  });

  describe('v2 (official; computed only, never accepted by the connector)', () => {
    for (const vector of vectors.v2) {
      it(`signs ${vector.name}`, () => {
        expect(
          signHubspotV2({
            secret: vectors.secret,
            method: vector.method,
            uri: vector.uri,
            body: vector.body,
          }),
        ).toBe(vector.expected);
      });
    }
  });
});

describe('verifyHubspotV3', () => {
  describe('when the request is signed correctly', () => {
    it('is ok', () => {
      expect(verifyHubspotV3(v3Input())).toEqual({ ok: true });
    });

    it('is ok at exactly 5 minutes of skew, either way', () => {
      expect(verifyHubspotV3(v3Input({ now: NOW + HUBSPOT_MAX_SKEW_MS }))).toEqual({ ok: true });
      expect(verifyHubspotV3(v3Input({ now: NOW - HUBSPOT_MAX_SKEW_MS }))).toEqual({ ok: true });
    });
  });

  describe('when the secret is wrong', () => {
    it('returns SIGNATURE_INVALID', () => {
      expect(codeOf(verifyHubspotV3(v3Input({ secret: `${SECRET}x` })))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when no secret is configured', () => {
    it('returns CONNECTOR_NOT_CONFIGURED rather than checking an HMAC with an empty key', () => {
      const timestamp = String(NOW);
      const signature = referenceV3('', 'POST', URI, BODY, timestamp);
      expect(codeOf(verifyHubspotV3(v3Input({ secret: '', signature })))).toBe(
        'CONNECTOR_NOT_CONFIGURED',
      );
    });
  });

  describe('when the timestamp is 5 min + 1 ms old', () => {
    it('returns TIMESTAMP_TOO_OLD', () => {
      const result = verifyHubspotV3(v3Input({ now: NOW + HUBSPOT_MAX_SKEW_MS + 1 }));
      expect(codeOf(result)).toBe('TIMESTAMP_TOO_OLD');
    });
  });

  describe('when the timestamp is 5 min + 1 ms ahead', () => {
    it('returns TIMESTAMP_IN_FUTURE', () => {
      const result = verifyHubspotV3(v3Input({ now: NOW - HUBSPOT_MAX_SKEW_MS - 1 }));
      expect(codeOf(result)).toBe('TIMESTAMP_IN_FUTURE');
    });
  });

  describe('when the timestamp header was changed after signing', () => {
    it('returns SIGNATURE_INVALID', () => {
      expect(codeOf(verifyHubspotV3(v3Input({ timestamp: String(NOW + 1) })))).toBe(
        'SIGNATURE_INVALID',
      );
    });
  });

  describe('when the body is tampered with', () => {
    it('returns SIGNATURE_INVALID for one changed byte', () => {
      const body = Buffer.from(BODY);
      body[body.indexOf('101')] = '2'.charCodeAt(0);
      expect(codeOf(verifyHubspotV3(v3Input({ body })))).toBe('SIGNATURE_INVALID');
    });

    it('returns SIGNATURE_INVALID for the same JSON re-serialised', () => {
      const body = Buffer.from(JSON.stringify(JSON.parse(BODY.toString('utf8')), null, 1));
      expect(codeOf(verifyHubspotV3(v3Input({ body })))).toBe('SIGNATURE_INVALID');
    });

    it('returns SIGNATURE_INVALID for an empty body', () => {
      expect(codeOf(verifyHubspotV3(v3Input({ body: Buffer.alloc(0) })))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when the body is not UTF-8', () => {
    it('signs and verifies the raw bytes', () => {
      const body = Buffer.from([0x5b, 0xff, 0xfe, 0x00, 0x5d]);
      const timestamp = String(NOW);
      const signature = referenceV3(SECRET, 'POST', URI, body, timestamp);
      expect(signHubspotV3({ secret: SECRET, method: 'POST', uri: URI, body, timestamp })).toBe(
        signature,
      );
      expect(verifyHubspotV3(v3Input({ body, signature }))).toEqual({ ok: true });
    });
  });

  describe('when the URI is tampered with', () => {
    it.each([
      ['another path', 'https://hooks.example.com/webhooks/salesforce'],
      ['another host', 'https://evil.example.com/webhooks/hubspot'],
      ['another scheme', 'http://hooks.example.com/webhooks/hubspot'],
      ['an added query', 'https://hooks.example.com/webhooks/hubspot?x=1'],
      ['a trailing slash', 'https://hooks.example.com/webhooks/hubspot/'],
    ])('returns SIGNATURE_INVALID for %s', (_name, uri) => {
      expect(codeOf(verifyHubspotV3(v3Input({ uri })))).toBe('SIGNATURE_INVALID');
    });

    it('returns SIGNATURE_INVALID for another method', () => {
      expect(codeOf(verifyHubspotV3(v3Input({ method: 'PUT' })))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when the query holds encoded ":", "@" and ","', () => {
    const called = 'https://hooks.example.com/webhooks/hubspot?ref=a%3Ab%40c%2Cd&next=%2Fx';
    const signedByHubspot = 'https://hooks.example.com/webhooks/hubspot?ref=a:b@c,d&next=/x';

    it('verifies against the URI with those escapes decoded, as HubSpot signs it', () => {
      const timestamp = String(NOW);
      const signature = referenceV3(SECRET, 'POST', signedByHubspot, BODY, timestamp);
      expect(verifyHubspotV3(v3Input({ uri: called, signature }))).toEqual({ ok: true });
    });

    it('rejects a signature over the URI exactly as called', () => {
      const timestamp = String(NOW);
      const signature = referenceV3(SECRET, 'POST', called, BODY, timestamp);
      expect(codeOf(verifyHubspotV3(v3Input({ uri: called, signature })))).toBe(
        'SIGNATURE_INVALID',
      );
    });
  });

  describe('when the query holds escapes outside the list (%20, %26, %3D, %25)', () => {
    const called = 'https://hooks.example.com/webhooks/hubspot?q=a%20b%26c%3Dd%25e';

    it('keeps them encoded in the signed URI', () => {
      const timestamp = String(NOW);
      const signature = referenceV3(SECRET, 'POST', called, BODY, timestamp);
      expect(verifyHubspotV3(v3Input({ uri: called, signature }))).toEqual({ ok: true });
    });

    it('rejects a signature over a fully decoded URI', () => {
      const timestamp = String(NOW);
      const decoded = decodeURIComponent(called);
      const signature = referenceV3(SECRET, 'POST', decoded, BODY, timestamp);
      expect(codeOf(verifyHubspotV3(v3Input({ uri: called, signature })))).toBe(
        'SIGNATURE_INVALID',
      );
    });
  });

  describe('when a header is missing', () => {
    it('returns SIGNATURE_MISSING without a signature', () => {
      expect(codeOf(verifyHubspotV3(v3Input({ signature: undefined })))).toBe('SIGNATURE_MISSING');
      expect(codeOf(verifyHubspotV3(v3Input({ signature: '' })))).toBe('SIGNATURE_MISSING');
    });

    it('returns TIMESTAMP_MISSING without a timestamp', () => {
      expect(codeOf(verifyHubspotV3(v3Input({ timestamp: undefined })))).toBe('TIMESTAMP_MISSING');
      expect(codeOf(verifyHubspotV3(v3Input({ timestamp: '' })))).toBe('TIMESTAMP_MISSING');
    });
  });

  describe('when the timestamp is not decimal milliseconds', () => {
    it.each(['abc', '-1', '1.7e12', ' 1700000000000', '0x1', '1'.repeat(17), '１７'])(
      'returns TIMESTAMP_MISSING for %j',
      (timestamp) => {
        expect(codeOf(verifyHubspotV3(v3Input({ timestamp })))).toBe('TIMESTAMP_MISSING');
      },
    );
  });

  describe('when the signature is garbage', () => {
    const good = v3Input().signature ?? '';
    const digest = Buffer.from(good, 'base64');

    it.each([
      ['not base64', '!!!! not base64 ~~~~'],
      ['31 bytes', digest.subarray(1).toString('base64')],
      ['33 bytes', Buffer.concat([digest, Buffer.from([0])]).toString('base64')],
      ['the digest as hex', digest.toString('hex')],
      ['base64url', digest.toString('base64url')],
      ['unpadded', good.replace(/=+$/, '')],
      ['with a trailing newline', `${good}\n`],
      ['with inner whitespace', `${good.slice(0, 10)} ${good.slice(10)}`],
      ['non-ASCII', `${good.slice(0, 40)}é€😀`],
      ['very long', 'A'.repeat(100_000)],
      ['a single character', 'A'],
      ['padding only', '===='],
      ['the v1 signature', signHubspotV1({ secret: SECRET, body: BODY })],
    ])('returns SIGNATURE_INVALID for %s, without throwing', (_name, signature) => {
      expect(codeOf(verifyHubspotV3(v3Input({ signature })))).toBe('SIGNATURE_INVALID');
    });

    it('never throws on random signatures and timestamps', () => {
      let seed = 12345;
      const next = (below: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed % below;
      };
      const randomText = () =>
        String.fromCharCode(...Array.from({ length: next(60) }, () => next(0x3000)));
      for (let i = 0; i < 2000; i += 1) {
        const result = verifyHubspotV3(
          v3Input({
            signature: randomText(),
            timestamp: i % 2 === 0 ? randomText() : String(NOW + next(1000)),
          }),
        );
        expect(result.ok).toBe(false);
      }
    });
  });
});

describe('decodeHubspotUri', () => {
  it('decodes exactly the 12 listed escapes', () => {
    expect(Object.keys(HUBSPOT_V3_DECODED_ESCAPES)).toHaveLength(12);
    expect(decodeHubspotUri('%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B')).toBe(":/?@!$'()*,;");
  });

  it('leaves every other escape alone', () => {
    expect(decodeHubspotUri('%20%26%3D%25%23%2B%5B%5D%7E')).toBe('%20%26%3D%25%23%2B%5B%5D%7E');
  });

  it('decodes once: %253A stays %253A', () => {
    expect(decodeHubspotUri('/a?x=%253A')).toBe('/a?x=%253A');
  });

  it('decodes only the upper-case spellings the table lists', () => {
    expect(decodeHubspotUri('/a?x=%3a%2f')).toBe('/a?x=%3a%2f');
  });
});

describe('rebuildSignedUri', () => {
  const req = { originalUrl: '/webhooks/hubspot?x=1', headers: { host: '10.0.0.5:8080' } };

  describe('when a public URL is configured', () => {
    it('uses it with the original path and query', () => {
      expect(rebuildSignedUri('https://crm-ledger.example.com', req)).toBe(
        'https://crm-ledger.example.com/webhooks/hubspot?x=1',
      );
    });

    it('keeps a base path and drops a trailing slash', () => {
      expect(rebuildSignedUri('https://example.com/ledger/', req)).toBe(
        'https://example.com/ledger/webhooks/hubspot?x=1',
      );
    });
  });

  describe('when no public URL is configured', () => {
    it('uses http and the Host header', () => {
      expect(rebuildSignedUri(undefined, req)).toBe('http://10.0.0.5:8080/webhooks/hubspot?x=1');
      expect(rebuildSignedUri('', req)).toBe('http://10.0.0.5:8080/webhooks/hubspot?x=1');
    });

    it('returns undefined without a single Host header', () => {
      expect(rebuildSignedUri(undefined, { ...req, headers: {} })).toBeUndefined();
      expect(rebuildSignedUri(undefined, { ...req, headers: { host: ['a', 'b'] } })).toBe(
        undefined,
      );
    });
  });
});

describe('verifyHubspotRequest', () => {
  const options = { secret: SECRET };

  describe('when the request is signed for the URL it reached', () => {
    it('is ok', () => {
      expect(verifyHubspotRequest(signedRequest(), options, NOW)).toEqual({ ok: true });
    });
  });

  describe('when behind a proxy with a public URL', () => {
    const publicSigned = 'https://crm-ledger.example.com/webhooks/hubspot?portal=33';
    const req = signedRequest({
      signedUri: publicSigned,
      originalUrl: '/webhooks/hubspot?portal=33',
      host: 'api.internal:3000',
    });

    it('verifies against the public URL', () => {
      const result = verifyHubspotRequest(
        req,
        { ...options, publicUrl: 'https://crm-ledger.example.com' },
        NOW,
      );
      expect(result).toEqual({ ok: true });
    });

    it('fails without the public URL (the internal host and http were not signed)', () => {
      expect(codeOf(verifyHubspotRequest(req, options, NOW))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when the query carries encoded characters', () => {
    it('verifies what HubSpot signed', () => {
      const req = signedRequest({
        signedUri: 'http://127.0.0.1:8080/webhooks/hubspot?u=a%40b.com%2Cc%3Ad',
        originalUrl: '/webhooks/hubspot?u=a%40b.com%2Cc%3Ad',
      });
      expect(verifyHubspotRequest(req, options, NOW)).toEqual({ ok: true });
    });
  });

  describe('when no secret is configured', () => {
    it('returns CONNECTOR_NOT_CONFIGURED', () => {
      expect(codeOf(verifyHubspotRequest(signedRequest(), { secret: undefined }, NOW))).toBe(
        'CONNECTOR_NOT_CONFIGURED',
      );
      expect(codeOf(verifyHubspotRequest(signedRequest(), { secret: '' }, NOW))).toBe(
        'CONNECTOR_NOT_CONFIGURED',
      );
    });
  });

  describe('when headers are missing', () => {
    it('returns SIGNATURE_MISSING without any signature header', () => {
      const req = signedRequest({ headers: { 'x-hubspot-signature-v3': undefined } });
      expect(codeOf(verifyHubspotRequest(req, options, NOW))).toBe('SIGNATURE_MISSING');
    });

    it('returns SIGNATURE_MISSING for an empty signature header', () => {
      const req = signedRequest({ headers: { 'x-hubspot-signature-v3': '' } });
      expect(codeOf(verifyHubspotRequest(req, options, NOW))).toBe('SIGNATURE_MISSING');
    });

    it('returns TIMESTAMP_MISSING without the timestamp header', () => {
      const req = signedRequest({ headers: { 'x-hubspot-request-timestamp': undefined } });
      expect(codeOf(verifyHubspotRequest(req, options, NOW))).toBe('TIMESTAMP_MISSING');
    });

    it('returns SIGNATURE_INVALID without a Host header to rebuild the URI', () => {
      const req = signedRequest({ headers: { host: undefined } });
      expect(codeOf(verifyHubspotRequest(req, options, NOW))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when a header is repeated', () => {
    it('returns SIGNATURE_INVALID for two v3 signatures', () => {
      const good = signedRequest();
      const sig = good.headers['x-hubspot-signature-v3'] as string;
      const req = signedRequest({ headers: { 'x-hubspot-signature-v3': [sig, sig] } });
      expect(codeOf(verifyHubspotRequest(req, options, NOW))).toBe('SIGNATURE_INVALID');
    });

    it('accepts a single value delivered as a one-element array', () => {
      const good = signedRequest();
      const sig = good.headers['x-hubspot-signature-v3'] as string;
      const req = signedRequest({ headers: { 'x-hubspot-signature-v3': [sig] } });
      expect(verifyHubspotRequest(req, options, NOW)).toEqual({ ok: true });
    });

    it('returns TIMESTAMP_MISSING for two timestamps', () => {
      const req = signedRequest({
        headers: { 'x-hubspot-request-timestamp': [String(NOW), String(NOW)] },
      });
      expect(codeOf(verifyHubspotRequest(req, options, NOW))).toBe('TIMESTAMP_MISSING');
    });
  });

  describe('when only a v1 signature is present', () => {
    const v1Request = (signature: string, version?: string): RawRequest => ({
      method: 'POST',
      originalUrl: '/webhooks/hubspot',
      body: BODY,
      headers: {
        host: '127.0.0.1:8080',
        'x-hubspot-signature': signature,
        ...(version === undefined ? {} : { 'x-hubspot-signature-version': version }),
      },
    });
    const v1 = signHubspotV1({ secret: SECRET, body: BODY });

    it('returns SIGNATURE_VERSION_UNSUPPORTED by default', () => {
      expect(codeOf(verifyHubspotRequest(v1Request(v1, 'v1'), options, NOW))).toBe(
        'SIGNATURE_VERSION_UNSUPPORTED',
      );
    });

    it('is ok when v1 is enabled', () => {
      const enabled = { ...options, acceptV1: true };
      expect(verifyHubspotRequest(v1Request(v1, 'v1'), enabled, NOW)).toEqual({ ok: true });
      expect(verifyHubspotRequest(v1Request(v1), enabled, NOW)).toEqual({ ok: true });
    });

    it('returns SIGNATURE_INVALID for a wrong v1 signature when enabled', () => {
      const enabled = { ...options, acceptV1: true };
      const wrong = signHubspotV1({ secret: 'other', body: BODY });
      expect(codeOf(verifyHubspotRequest(v1Request(wrong), enabled, NOW))).toBe(
        'SIGNATURE_INVALID',
      );
      expect(codeOf(verifyHubspotRequest(v1Request('zz'), enabled, NOW))).toBe('SIGNATURE_INVALID');
    });

    it('returns SIGNATURE_VERSION_UNSUPPORTED for v2 even when v1 is enabled', () => {
      const enabled = { ...options, acceptV1: true };
      expect(codeOf(verifyHubspotRequest(v1Request(v1, 'v2'), enabled, NOW))).toBe(
        'SIGNATURE_VERSION_UNSUPPORTED',
      );
    });
  });

  describe('when a bad v3 signature comes with a valid v1 signature', () => {
    it('does not fall back to v1', () => {
      const req = signedRequest({
        headers: {
          'x-hubspot-signature-v3': signHubspotV3({
            secret: 'other',
            method: 'POST',
            uri: 'http://127.0.0.1:8080/webhooks/hubspot',
            body: BODY,
            timestamp: NOW,
          }),
          'x-hubspot-signature': signHubspotV1({ secret: SECRET, body: BODY }),
        },
      });
      expect(codeOf(verifyHubspotRequest(req, { ...options, acceptV1: true }, NOW))).toBe(
        'SIGNATURE_INVALID',
      );
    });
  });
});

describe('verifyHubspotV1', () => {
  it('returns SIGNATURE_MISSING without a signature', () => {
    expect(codeOf(verifyHubspotV1({ body: BODY, signature: undefined, secret: SECRET }))).toBe(
      'SIGNATURE_MISSING',
    );
  });

  it('returns CONNECTOR_NOT_CONFIGURED with an empty secret', () => {
    const signature = signHubspotV1({ secret: '', body: BODY });
    expect(codeOf(verifyHubspotV1({ body: BODY, signature, secret: '' }))).toBe(
      'CONNECTOR_NOT_CONFIGURED',
    );
  });
});
