/**
 * The read-only endpoint a witness process serves its verified copy on (`crm-ledger witness
 * --serve host:port --serve-token-file F`), for `crm-ledger repair --from-witness <url>`:
 *
 *   GET /witness/v1/checkpoints           tenant, copy size, the witness's vkey, every checkpoint
 *                                         it accepted (note + its cosignature line), latest last
 *   GET /witness/v1/leaves?from=a&to=b    leaf hashes (hex) of blocks [a, b), at most LEAVES_PAGE
 *   GET /witness/v1/blocks?from=a&to=b    blocks [a, b) as stored: canonical bytes (base64) and
 *                                         vault entry (opaque), at most COPY_BLOCKS_PAGE
 *   GET /healthz                          unauthenticated liveness
 *
 * Everything but /healthz needs `Authorization: Bearer <read token>`; the token is held as its
 * SHA-256 digest and compared digest-to-digest with the one constant-time helper. The copy holds
 * vault entries (personal data, or ciphertext once the vault is encrypted), so the endpoint is
 * never open. The repairing side trusts nothing served here: it checks leaves against a
 * checkpoint signed by the log key and blocks against the leaves (src/witness/repair.ts).
 */
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import type { Request } from 'express';
import type { Logger } from '../observability/logger.js';
import { constantTimeEqual } from '../security/constant-time.js';
import { toHex } from '../ledger/hash.js';
import type { WitnessCopy } from '../witness/copy.js';
import { COPY_BLOCKS_PAGE, LEAVES_PAGE } from '../witness/source.js';
import { errorHandler, HttpError, sendError } from './errors.js';

export interface WitnessCopyAppDeps {
  copy: WitnessCopy;
  /** the read token in clear; only its digest is kept */
  token: string;
  /** the witness's verifier key (C2SP vkey), so a reader can check the cosignatures */
  witnessKey: string;
  logger: Logger;
}

function rangeOf(req: Request, size: number, max: number): { from: number; to: number } {
  for (const key of Object.keys(req.query)) {
    if (key !== 'from' && key !== 'to')
      throw new HttpError('QUERY_INVALID', `unknown query parameter "${key}"`);
  }
  const from = Number(req.query['from']);
  const to = Number(req.query['to']);
  if (
    typeof req.query['from'] !== 'string' ||
    typeof req.query['to'] !== 'string' ||
    !(Number.isSafeInteger(from) && Number.isSafeInteger(to)) ||
    from < 0 ||
    to < from ||
    to > size ||
    to - from > max
  ) {
    throw new HttpError('QUERY_INVALID', `need 0 <= from <= to <= ${size} and at most ${max}`);
  }
  return { from, to };
}

export function createWitnessCopyApp(deps: WitnessCopyAppDeps): express.Express {
  const { copy } = deps;
  const digest = createHash('sha256').update(deps.token, 'utf8').digest();
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  app.use((req, res, next) => {
    const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(req.get('authorization') ?? '');
    const presented = createHash('sha256')
      .update(match?.[1] ?? '', 'utf8')
      .digest();
    if (!match || !constantTimeEqual(presented, digest)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="crm-ledger witness"');
      sendError(res, 'UNAUTHORIZED', "the witness's read token is required");
      return;
    }
    next();
  });

  app.get('/witness/v1/checkpoints', (req, res) => {
    if (Object.keys(req.query).length > 0)
      throw new HttpError('QUERY_INVALID', 'no query parameters are accepted');
    res.json({
      tenant: copy.meta.tenant,
      logKey: copy.meta.logKey,
      witnessKey: deps.witnessKey,
      size: copy.size,
      checkpoints: copy.allCheckpoints(),
    });
  });

  app.get('/witness/v1/leaves', (req, res) => {
    const { from, to } = rangeOf(req, copy.size, LEAVES_PAGE);
    const leaves: string[] = [];
    for (let seq = from; seq < to; seq++) leaves.push(toHex(copy.leaf(seq) as Uint8Array));
    res.json({ from, to, leaves });
  });

  app.get('/witness/v1/blocks', async (req, res) => {
    const { from, to } = rangeOf(req, copy.size, COPY_BLOCKS_PAGE);
    const blocks = (await copy.readBlockRange(from, to)).map((b) => ({
      seq: b.seq,
      bytes: b.bytes.toString('base64'),
      vault: b.vault,
    }));
    res.json({ from, to, blocks });
  });

  app.use((_req, res) => {
    sendError(res, 'NOT_FOUND', 'no such route');
  });
  app.use(errorHandler(deps.logger));
  return app;
}

/** Serves the copy on host:port (port 0: any free port); resolves with its base URL. */
export async function serveWitnessCopy(
  deps: WitnessCopyAppDeps,
  host: string,
  port: number,
): Promise<{ url: string; close: () => Promise<void> }> {
  const app = createWitnessCopyApp(deps);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  deps.logger.info({ url }, 'serving the witness copy');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
