import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACT_CENSOR } from '../../../src/observability/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

describe('createLogger', () => {
  describe('when a request, a config slice or a key is logged', () => {
    it('redacts authorization headers, HubSpot signatures, tokens and keys', () => {
      const { lines, logger } = capture();
      logger.info(
        {
          req: { headers: { authorization: 'Bearer s3cret', 'x-hubspot-signature-v3': 'sig' } },
          admin: { adminToken: 'tok-123' },
          hubspot: { clientSecret: 'cs', accessToken: 'at' },
          key: { skey: 'PRIVATE+KEY+x' },
        },
        'hello',
      );
      const text = JSON.stringify(lines);
      for (const secret of ['s3cret', 'tok-123', '"cs"', '"at"', 'PRIVATE+KEY', '"sig"']) {
        expect(text).not.toContain(secret);
      }
      expect(text).toContain(REDACT_CENSOR);
      expect(lines[0]?.['msg']).toBe('hello');
    });
  });

  describe('when a child logger is made for a module', () => {
    it('tags its lines with the module', () => {
      const { lines, logger } = capture();
      logger.child({ module: 'ledger' }).warn('x');
      expect(lines[0]).toMatchObject({ module: 'ledger', level: 40 });
    });
  });
});
