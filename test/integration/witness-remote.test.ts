/**
 * The witness role and repair from a witness process over HTTP (issue 8): a witness holding only a
 * `witness` token follows, cosigns and reports tampering, and gets 403 everywhere else; it serves
 * its verified copy read-only behind its read token; `repair` fetches the leaf hashes and only the
 * damaged blocks from it, and refuses (writing nothing) what does not verify.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import { createApp } from '../../src/http/app.js';
import { adminTokenFrom } from '../../src/http/admin-auth.js';
import { createWitnessCopyApp, serveWitnessCopy } from '../../src/http/witness-copy.routes.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import {
  formatWitnessKey,
  generateWitnessKey,
  parseWitnessSignerKey,
  witnessVerifierFromSigner,
} from '../../src/ledger/cosignature.js';
import type { WitnessSigner } from '../../src/ledger/cosignature.js';
import { leafHash, toHex } from '../../src/ledger/hash.js';
import { WitnessCopy } from '../../src/witness/copy.js';
import { Witness } from '../../src/witness/witness.js';
import { RepairError, repairFromWitness } from '../../src/witness/repair.js';
import { RemoteWitnessSource, WitnessSourceError } from '../../src/witness/source.js';

const ADMIN = 'remote-admin-token-0123456789abcdef';
const AUDITOR = 'remote-auditor-token-0123456789abcde';
const WITNESS = 'remote-witness-token-0123456789abcde';
const READ_TOKEN = 'copy-read-token-0123456789abcdef';
const silent = createLogger({ level: 'silent' });

let redis: Redis;
let ledger: Ledger;
let verification: VerificationService;
let server: Server;
let url: string;
let dir: string;
let signer: WitnessSigner;
let app: ReturnType<typeof createApp>;

async function newWitness(tenant: string, witnessDir: string): Promise<Witness> {
  const copy = await WitnessCopy.open(witnessDir, { tenant, logKey: 'test-log-key' });
  return new Witness({
    url,
    token: WITNESS,
    tenant,
    logKey: ledger.verifiers[0]!,
    signer,
    copy,
    logger: silent,
    auditBlocks: Infinity,
  });
}

async function append(tenant: string, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i += 250) {
    const batch = Array.from({ length: Math.min(250, n - i) }, (_, j) =>
      contactChange(tenant, `${tag}${(i + j) % 40}`),
    );
    await ledger.append(tenant, batch);
  }
}

/** Changes one byte of block `seq` in Redis (same length); returns the original bytes. */
async function flip(tenant: string, seq: number): Promise<Buffer> {
  const key = new LedgerKeys(tenant).segment(Math.floor(seq / 1024));
  const original = (await redis.lindexBuffer(key, seq % 1024))!;
  const flipped = Buffer.from(original);
  flipped[flipped.indexOf('"update"') + 1] = 'U'.charCodeAt(0);
  await redis.lset(key, seq % 1024, flipped);
  return original;
}

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis, testSigner());
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-witness-remote-'));
  verification = new VerificationService(
    ledger.store,
    { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
    new FileTrustStore(join(dir, 'trust')),
  );
  signer = parseWitnessSignerKey(generateWitnessKey('witness.test/remote').skey);
  app = createApp({
    logger: silent,
    adminToken: ADMIN,
    tokens: [
      adminTokenFrom('auditor', 'alice', AUDITOR),
      adminTokenFrom('witness', 'witness-remote', WITNESS),
    ],
    verifierKeys: ledger.verifiers,
    verification,
    witnessKeys: [witnessVerifierFromSigner(signer)],
    ping: () => redis.ping(),
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('the witness role', () => {
  describe('when a witness holds only a witness token', () => {
    it('follows, cosigns and reports tampering with it', async () => {
      const tenant = randomTenant();
      const witness = await newWitness(tenant, join(dir, 'w-role'));
      await append(tenant, 6, 'r');
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 6 });
      await flip(tenant, 2);
      expect(await witness.runOnce()).toMatchObject({ status: 'refused', firstBadSeq: 2 });
      expect(await ledger.store.readFrozen(tenant)).toMatchObject({
        firstBadSeq: 2,
        by: 'witness:witness-remote',
      });
    });

    it('gets 403 on every other admin route, resume included', async () => {
      const tenant = randomTenant();
      await append(tenant, 2, 'f');
      const auth = { Authorization: `Bearer ${WITNESS}` };
      const forbidden: [string, string][] = [
        ['post', `/admin/resume?tenant=${tenant}`],
        ['get', `/admin/verify?tenant=${tenant}`],
        ['get', `/admin/records/${tenant}/contact/f0`],
        ['get', `/admin/evidence/${tenant}/contact/f0`],
        ['get', `/admin/verdicts?tenant=${tenant}`],
        ['get', '/admin/tenants'],
        ['get', '/admin/openapi.json'],
        ['get', '/admin/'],
      ];
      for (const [method, path] of forbidden) {
        const res =
          method === 'post'
            ? await request(app).post(path).set(auth)
            : await request(app).get(path).set(auth);
        expect([path, res.status, res.body.error?.code]).toEqual([path, 403, 'FORBIDDEN']);
      }
      // What it may do answers (the checkpoint, a proof, blocks).
      for (const path of [
        `/admin/checkpoint?tenant=${tenant}`,
        `/admin/proofs/consistency?tenant=${tenant}&from=1&to=2`,
        `/admin/blocks?tenant=${tenant}&from=0&to=2`,
      ]) {
        expect([path, (await request(app).get(path).set(auth)).status]).toEqual([path, 200]);
      }
      // The admin's resume still works (the tenant is not frozen: 200, resumed false).
      expect((await ledger.store.readFrozen(tenant)) ?? null).toBeNull();
      const wrong = await request(app)
        .get(`/admin/checkpoint?tenant=${tenant}`)
        .set('Authorization', `Bearer ${WITNESS}x`);
      expect(wrong.status).toBe(401);
    });
  });
});

describe('the witness copy endpoint', () => {
  it('serves the verified copy to the read token holder only, and checks its queries', async () => {
    const tenant = randomTenant();
    const witnessDir = join(dir, 'w-serve');
    const witness = await newWitness(tenant, witnessDir);
    await append(tenant, 5, 's');
    await witness.runOnce();
    const copy = await WitnessCopy.open(witnessDir);
    const copyApp = createWitnessCopyApp({
      copy,
      token: READ_TOKEN,
      witnessKey: formatWitnessKey(witnessVerifierFromSigner(signer)),
      logger: silent,
    });
    const auth = { Authorization: `Bearer ${READ_TOKEN}` };

    expect((await request(copyApp).get('/healthz')).status).toBe(200);
    for (const header of [undefined, 'Bearer nope', `Bearer ${READ_TOKEN}x`, READ_TOKEN]) {
      const req = request(copyApp).get('/witness/v1/checkpoints');
      const res = header === undefined ? await req : await req.set('Authorization', header);
      expect([header, res.status, res.body.error?.code]).toEqual([header, 401, 'UNAUTHORIZED']);
    }

    const cps = await request(copyApp).get('/witness/v1/checkpoints').set(auth);
    expect(cps.status).toBe(200);
    expect(cps.body).toMatchObject({ tenant, size: 5, logKey: 'test-log-key' });
    expect(cps.body.checkpoints).toEqual([
      expect.objectContaining({ size: 5, cosignature: expect.stringMatching(/^\u2014 /) }),
    ]);

    const leaves = await request(copyApp).get('/witness/v1/leaves?from=1&to=4').set(auth);
    const stored = await ledger.store.readSegment(tenant, 0);
    expect(leaves.body.leaves).toEqual(stored.slice(1, 4).map((b) => toHex(leafHash(b))));
    const blocks = await request(copyApp).get('/witness/v1/blocks?from=3&to=5').set(auth);
    const served = blocks.body.blocks as { seq: number; bytes: string }[];
    expect(served.map((b) => b.seq)).toEqual([3, 4]);
    expect(Buffer.from(served[0]!.bytes, 'base64').equals(stored[3]!)).toBe(true);

    for (const query of [
      'from=0&to=6',
      'from=3&to=2',
      'from=-1&to=2',
      'from=a&to=2',
      'to=2',
      'from=0&to=1&x=1',
    ]) {
      const res = await request(copyApp).get(`/witness/v1/blocks?${query}`).set(auth);
      expect([query, res.status, res.body.error?.code]).toEqual([query, 400, 'QUERY_INVALID']);
    }
    expect((await request(copyApp).get('/witness/v1/nope').set(auth)).status).toBe(404);
  });
});

describe('repair from a witness URL', () => {
  it('fetches only the damaged block, restores it, and the chain verifies', async () => {
    const tenant = randomTenant();
    const witnessDir = join(dir, 'w-repair');
    const witness = await newWitness(tenant, witnessDir);
    await append(tenant, 1500, 'p');
    expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 1500 });
    const original = await flip(tenant, 1200);
    expect((await verification.verifyTenant(tenant, 'full')).ok).toBe(false);

    const serving = await serveWitnessCopy(
      {
        copy: witness.copy,
        token: READ_TOKEN,
        witnessKey: formatWitnessKey(witnessVerifierFromSigner(signer)),
        logger: silent,
      },
      '127.0.0.1',
      0,
    );
    const paths: string[] = [];
    let received = 0;
    const counting: typeof fetch = async (input, init) => {
      paths.push(new URL(input).pathname);
      const res = await fetch(input, init);
      const body = await res.arrayBuffer();
      received += body.byteLength;
      return new Response(body, { status: res.status, headers: res.headers });
    };
    try {
      const started = performance.now();
      const report = await repairFromWitness(ledger.store, verification, {
        tenant,
        copy: new RemoteWitnessSource({ url: serving.url, token: READ_TOKEN, fetch: counting }),
        logKeys: ledger.verifiers,
        witnessKeys: [witnessVerifierFromSigner(signer)],
        origin: ledger.originFor(tenant),
      });
      expect(report).toMatchObject({
        checkpointSize: 1500,
        witness: { where: serving.url, cosigned: { by: 'witness.test/remote', size: 1500 } },
        fetched: 1,
        replaced: { blocks: [1200], vault: [], records: [], treeNodes: 0, head: false },
        verification: { ok: true, size: 1500 },
      });
      expect(paths.filter((p) => p === '/witness/v1/blocks')).toHaveLength(1);
      const copyBytes = await witness.copy.diskBytes();
      process.stdout.write(
        `repair from a witness URL, 1,500 blocks, 1 damaged: ${(performance.now() - started).toFixed(0)} ms ` +
          `(with full verify), ${paths.length} requests, ${(received / 1024).toFixed(0)} KiB received ` +
          `(the copy is ${(copyBytes / 1024).toFixed(0)} KiB on disk)\n`,
      );
      const key = new LedgerKeys(tenant).segment(1);
      expect((await redis.lindexBuffer(key, 1200 - 1024))!.equals(original)).toBe(true);
    } finally {
      await serving.close();
    }
  });

  describe('when the witness serves what does not verify', () => {
    it('refuses a block that does not hash to its leaf, and writes nothing', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-liar');
      const witness = await newWitness(tenant, witnessDir);
      await append(tenant, 8, 'l');
      await witness.runOnce();
      await flip(tenant, 3);
      const before = await redis.lrangeBuffer(new LedgerKeys(tenant).segment(0), 0, -1);
      const serving = await serveWitnessCopy(
        { copy: witness.copy, token: READ_TOKEN, witnessKey: 'w', logger: silent },
        '127.0.0.1',
        0,
      );
      // A man in the middle (or a lying witness) changes the block it serves.
      const tampering: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        if (!(input as string | URL).toString().includes('/witness/v1/blocks')) return res;
        const body = (await res.json()) as { blocks: { bytes: string }[] };
        const bytes = Buffer.from(body.blocks[0]!.bytes, 'base64');
        bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 1;
        body.blocks[0]!.bytes = bytes.toString('base64');
        return Response.json(body);
      };
      try {
        const err = await repairFromWitness(ledger.store, verification, {
          tenant,
          copy: new RemoteWitnessSource({ url: serving.url, token: READ_TOKEN, fetch: tampering }),
          logKeys: ledger.verifiers,
          origin: ledger.originFor(tenant),
        }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RepairError);
        expect((err as RepairError).code).toBe('COPY_UNVERIFIED');
        expect(await redis.lrangeBuffer(new LedgerKeys(tenant).segment(0), 0, -1)).toEqual(before);
      } finally {
        await serving.close();
      }
    });

    it('refuses a copy whose blocks do not hash to the signed root, and a wrong read token', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-forked');
      const witness = await newWitness(tenant, witnessDir);
      await append(tenant, 6, 'k');
      await witness.runOnce();
      await flip(tenant, 1);
      // The witness's own disk was edited consistently (its copy reopens to another root).
      const file = join(witnessDir, 'blocks.ndjson');
      const lines = (await readFile(file, 'utf8')).split('\n');
      const line = JSON.parse(lines[4]!) as { bytes: string };
      line.bytes = Buffer.from(
        Buffer.from(line.bytes, 'base64').toString('utf8').replace('"update"', '"UPDATE"'),
      ).toString('base64');
      lines[4] = JSON.stringify(line);
      await writeFile(file, lines.join('\n'));
      const forked = await WitnessCopy.open(witnessDir);
      const serving = await serveWitnessCopy(
        { copy: forked, token: READ_TOKEN, witnessKey: 'w', logger: silent },
        '127.0.0.1',
        0,
      );
      const before = await redis.lrangeBuffer(new LedgerKeys(tenant).segment(0), 0, -1);
      try {
        const err = await repairFromWitness(ledger.store, verification, {
          tenant,
          copy: new RemoteWitnessSource({ url: serving.url, token: READ_TOKEN }),
          logKeys: ledger.verifiers,
          origin: ledger.originFor(tenant),
        }).catch((e: unknown) => e);
        expect((err as RepairError).code).toBe('COPY_UNVERIFIED');
        const refused = await repairFromWitness(ledger.store, verification, {
          tenant,
          copy: new RemoteWitnessSource({ url: serving.url, token: 'not-the-read-token' }),
          logKeys: ledger.verifiers,
          origin: ledger.originFor(tenant),
        }).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(WitnessSourceError);
        expect((refused as WitnessSourceError).code).toBe('SOURCE_REFUSED');
        expect(await redis.lrangeBuffer(new LedgerKeys(tenant).segment(0), 0, -1)).toEqual(before);
      } finally {
        await serving.close();
      }
    });
  });
});
