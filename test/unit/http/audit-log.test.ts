import { Writable } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { auditLog } from '../../../src/http/admin-auth.js';
import type { Role } from '../../../src/http/admin-auth.js';
import { createLogger } from '../../../src/observability/logger.js';

/** An app that logs like /admin, with the principal named by the x-role header. */
function appLogging() {
  const lines: { level: number; role: string | null; method: string; status: number }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean))
        lines.push(JSON.parse(line));
      done();
    },
  });
  const app = express();
  app.use((req, res, next) => {
    const role = req.get('x-role') as Role | undefined;
    if (role) res.locals['principal'] = { role, name: `${role}-1` };
    next();
  });
  app.use(auditLog(createLogger({ level: 'debug', destination })));
  app.get('/ok', (_req, res) => void res.json({ ok: true }));
  app.post('/ok', (_req, res) => void res.json({ ok: true }));
  app.get('/denied', (_req, res) => void res.status(403).json({ code: 'FORBIDDEN' }));
  return { app, lines };
}

const INFO = 30;
const DEBUG = 20;

describe('the admin audit log', () => {
  it("logs a witness's successful reads at debug and everything else at info", async () => {
    const { app, lines } = appLogging();
    await request(app).get('/ok').set('x-role', 'witness').expect(200);
    await request(app).post('/ok').set('x-role', 'witness').expect(200);
    await request(app).get('/denied').set('x-role', 'witness').expect(403);
    await request(app).get('/ok').set('x-role', 'auditor').expect(200);
    await request(app).get('/ok').set('x-role', 'admin').expect(200);
    await request(app).get('/ok').expect(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => [l.role, l.method, l.status, l.level])).toEqual([
      ['witness', 'GET', 200, DEBUG],
      ['witness', 'POST', 200, INFO],
      ['witness', 'GET', 403, INFO],
      ['auditor', 'GET', 200, INFO],
      ['admin', 'GET', 200, INFO],
      [null, 'GET', 200, INFO],
    ]);
  });
});
