/**
 * Witnesses (issue 8) against a real service: the HTTP app listening on a port, a real ledger on
 * the test Redis, the real anchor worker on BullMQ. A witness follows a tenant, keeps its copy,
 * cosigns; a byte flipped in Redis makes it refuse and report, and the tenant freezes; webhooks'
 * changes keep queuing; repair from the witness directory restores a chain that verifies; resume
 * anchors the queued changes; the witness cosigns again. Witness lag is measured and printed.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Redis } from 'ioredis';
import type { Queue, Worker } from 'bullmq';
import { connect, randomTenant, testQueueConnection } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import { createApp } from '../../src/http/app.js';
import { adminTokenFrom } from '../../src/http/admin-auth.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { signCheckpoint } from '../../src/ledger/checkpoint.js';
import { leafHash } from '../../src/ledger/hash.js';
import { appendLeaves, rootFromFrontier } from '../../src/ledger/merkle.js';
import { groupTreeWrites } from '../../src/ledger/store.js';
import {
  checkpointBody,
  cosignCheckpoint,
  generateWitnessKey,
  parseWitnessSignerKey,
  witnessVerifierFromSigner,
} from '../../src/ledger/cosignature.js';
import type { WitnessSigner } from '../../src/ledger/cosignature.js';
import { createChangeSink, createChangesQueue } from '../../src/pipeline/queues.js';
import type { ChangeSink, ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import type { JobResult } from '../../src/pipeline/anchor.worker.js';
import { resumeTenant } from '../../src/pipeline/freeze.js';
import { WitnessCopy } from '../../src/witness/copy.js';
import { Witness } from '../../src/witness/witness.js';
import { RepairError, repairFromWitness } from '../../src/witness/repair.js';
import type { RepairReport } from '../../src/witness/repair.js';
import { decodeVaultEntry } from '../../src/vault/plain.js';
import { StaticKeyWrapper } from '../../src/vault/key-wrapper.js';
import { SubjectService } from '../../src/vault/subjects.js';
import { RecordVault } from '../../src/vault/vault.js';

const AUDITOR = 'witness-auditor-token-0123456789abcdef';
const OPERATOR = 'witness-operator-token-0123456789abcde';
const PREFIX = `{cl-test-witness-${process.pid}-${Date.now()}}`;
const silent = createLogger({ level: 'silent' });

let redis: Redis;
const logSigner = testSigner();
let ledger: Ledger;
let verification: VerificationService;
let server: Server;
let url: string;
let dir: string;
let queue: Queue<ChangesJob>;
let worker: Worker<ChangesJob, JobResult>;
let sink: ChangeSink;
let signer: WitnessSigner;
let app: ReturnType<typeof createApp>;

const connection = testQueueConnection;

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out');
}

async function send(tenant: string, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const { event } = contactChange(tenant, `${tag}${i % 4}`);
    await sink.enqueue({
      source: 'hubspot',
      receivedAt: new Date().toISOString(),
      events: [
        { event: { ...event, eventId: `${tag}-${i}` }, idempotencyKey: `${tenant}|${tag}|${i}` },
      ],
    });
  }
}

/** Repairs `tenant` from the witness copy in `witnessDir`, with the ledger's keys. */
async function repairFrom(tenant: string, witnessDir: string): Promise<RepairReport> {
  return repairFromWitness(ledger.store, verification, {
    tenant,
    copy: await WitnessCopy.open(witnessDir),
    logKeys: ledger.verifiers,
    origin: ledger.originFor(tenant),
  });
}

async function newWitness(tenant: string, witnessDir: string, audit = Infinity): Promise<Witness> {
  const logKey = ledger.verifiers[0]!;
  const copy = await WitnessCopy.open(witnessDir, { tenant, logKey: 'test-log-key' });
  return new Witness({
    url,
    token: OPERATOR,
    tenant,
    logKey,
    signer,
    copy,
    logger: silent,
    auditBlocks: audit,
  });
}

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis, logSigner);
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-witness-'));
  verification = new VerificationService(
    ledger.store,
    { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
    new FileTrustStore(join(dir, 'trust')),
  );
  signer = parseWitnessSignerKey(generateWitnessKey('witness.test/w1').skey);
  app = createApp({
    logger: silent,
    tokens: [
      adminTokenFrom('auditor', 'alice', AUDITOR),
      adminTokenFrom('operator', 'witness-w1', OPERATOR),
    ],
    verifierKeys: ledger.verifiers,
    verification,
    witnessKeys: [witnessVerifierFromSigner(signer)],
    ping: () => redis.ping(),
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  queue = createChangesQueue(connection(), PREFIX);
  sink = createChangeSink(queue);
  worker = startAnchorWorker({
    connection: connection(),
    ledger,
    logger: silent,
    prefix: PREFIX,
    batchWaitMs: 5,
    frozenRetryMs: 100,
  });
});

afterAll(async () => {
  await worker.close();
  await queue.close();
  await new Promise((r) => server.close(r));
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('witness', () => {
  describe('when it follows an intact ledger', () => {
    it('copies the blocks, cosigns each new checkpoint, and /admin/verify shows it', async () => {
      const tenant = randomTenant();
      const witness = await newWitness(tenant, join(dir, 'w-intact'));
      await send(tenant, 12, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 12);

      const first = await witness.runOnce();
      expect(first).toMatchObject({ status: 'cosigned', size: 12, newBlocks: 12 });
      expect(await witness.runOnce()).toMatchObject({ status: 'unchanged', size: 12 });

      await send(tenant, 7, 'b');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 19);
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 19, newBlocks: 7 });

      const res = await request(app)
        .get(`/admin/verify?tenant=${tenant}&mode=full`)
        .set('Authorization', `Bearer ${AUDITOR}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: true, size: 19, confirmed: true, quorum: 1 });
      expect(res.body.cosignatures).toEqual([
        expect.objectContaining({ witness: 'witness.test/w1', size: 19, current: true }),
      ]);
      // The latest checkpoint with the cosignature line on it: log line, then witness line.
      const cosigned = res.body.cosigned as string;
      expect(cosigned.split('\n').filter((l) => l.startsWith('\u2014 '))).toHaveLength(2);

      // The copy on disk is the chain: one line per block, reopened to the same root.
      const reopened = await WitnessCopy.open(join(dir, 'w-intact'));
      expect(reopened.size).toBe(19);
      const lines = (await readFile(join(dir, 'w-intact', 'blocks.ndjson'), 'utf8')).split('\n');
      expect(lines.filter(Boolean)).toHaveLength(19);
    });

    it('measures witness lag: checkpoint stored → cosignature stored', async () => {
      const tenant = randomTenant();
      const witness = await newWitness(tenant, join(dir, 'w-lag'), 1024);
      const abort = new AbortController();
      const running = witness.run(50, abort.signal);
      const lags: number[] = [];
      for (let round = 1; round <= 5; round++) {
        await send(tenant, 20, `lag${round}`);
        await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 20 * round);
        const signedAt = Date.now();
        await until(async () =>
          (await ledger.store.readCosignatures(tenant)).some((c) => c.size === 20 * round),
        );
        lags.push(Date.now() - signedAt);
      }
      abort.abort();
      await running;
      lags.sort((a, b) => a - b);
      process.stdout.write(
        `witness lag (poll interval 50 ms, 20 blocks/checkpoint): median ${lags[2]} ms, max ${lags[4]} ms\n`,
      );
      expect(lags[4]).toBeLessThan(5_000);
    });
  });

  describe('when many records change, several times each', () => {
    it('cosigns round after round, also after reopening its copy (record links from disk)', async () => {
      const tenant = randomTenant();
      const batch = (round: number) =>
        Array.from({ length: 120 }, (_, i) =>
          contactChange(tenant, `m${(i * 7 + round) % 60}`, { eventId: `m-${round}-${i}` }),
        );
      await ledger.append(tenant, batch(0));
      const witness = await newWitness(tenant, join(dir, 'w-many'));
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 120 });
      expect(witness.copy.recordCount).toBe(60);
      await ledger.append(tenant, batch(1));
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 240 });
      // A restarted witness rebuilds record → last block from its files.
      const again = await newWitness(tenant, join(dir, 'w-many'));
      expect(again.copy.recordCount).toBe(60);
      expect(again.copy.lastBlockOf('contact/m1')).toBe(witness.copy.lastBlockOf('contact/m1'));
      await ledger.append(tenant, batch(2));
      expect(await again.runOnce()).toMatchObject({ status: 'cosigned', size: 360 });
    });
  });

  describe('when the chain spans several segments', () => {
    it('syncs 4,100 blocks, audits them, and repairs a flip in the third segment', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-big');
      const witness = await newWitness(tenant, witnessDir);
      for (let i = 0; i < 4100; i += 205) {
        await ledger.append(
          tenant,
          Array.from({ length: 205 }, (_, j) => contactChange(tenant, `big${(i + j) % 300}`)),
        );
      }
      let t = performance.now();
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 4100 });
      const syncMs = performance.now() - t;
      t = performance.now();
      expect(await witness.runOnce()).toMatchObject({ status: 'unchanged', audited: 4100 });
      const auditMs = performance.now() - t;

      const key = new LedgerKeys(tenant).segment(2);
      const original = (await redis.lindexBuffer(key, 500))!;
      await redis.lset(
        key,
        500,
        Buffer.from(original.toString('utf8').replace('"user"', '"User"')),
      );
      expect(await witness.runOnce()).toMatchObject({ status: 'refused', firstBadSeq: 2548 });
      t = performance.now();
      const report = await repairFrom(tenant, witnessDir);
      const repairMs = performance.now() - t;
      expect(report.replaced.blocks).toEqual([2548]);
      expect(report.verification).toMatchObject({ ok: true, size: 4100 });
      process.stdout.write(
        `witness on 4,100 blocks: initial sync ${syncMs.toFixed(0)} ms ` +
          `(${((4100 / syncMs) * 1000).toFixed(0)} blocks/s), full audit ${auditMs.toFixed(0)} ms, ` +
          `repair + full verify ${repairMs.toFixed(0)} ms\n`,
      );
    });
  });

  describe('when a byte is flipped in Redis', () => {
    it('refuses and reports, the tenant freezes, repair restores it and anchoring continues', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-tamper');
      const witness = await newWitness(tenant, witnessDir);
      await send(tenant, 10, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 10);
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 10 });

      // One byte of block 4 changes (same length); the tree is untouched, so the checkpointer
      // keeps signing: only someone holding a copy can tell.
      const key = new LedgerKeys(tenant).segment(0);
      const original = (await redis.lindexBuffer(key, 4)) as Buffer;
      const flipped = Buffer.from(original);
      const at = flipped.indexOf('"update"') + 1;
      flipped[at] = 'U'.charCodeAt(0);
      await redis.lset(key, 4, flipped);
      await send(tenant, 3, 'b');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 13);

      const refused = await witness.runOnce();
      expect(refused).toMatchObject({ status: 'refused', code: 'BLOCKS_DIFFER', firstBadSeq: 4 });
      expect(await ledger.store.readFrozen(tenant)).toMatchObject({
        code: 'BLOCKS_DIFFER',
        firstBadSeq: 4,
        by: 'operator:witness-w1',
      });
      // No cosignature for 13; the witness's alert is on disk.
      expect((await ledger.store.readCosignatures(tenant)).map((c) => c.size)).toEqual([10]);
      const alerts = await readFile(join(witnessDir, 'alerts.ndjson'), 'utf8');
      expect(JSON.parse(alerts.split('\n')[0]!)).toMatchObject({ code: 'BLOCKS_DIFFER' });
      // Refusing again neither cosigns nor changes the freeze.
      expect(await witness.runOnce()).toMatchObject({ status: 'refused', code: 'BLOCKS_DIFFER' });

      // Webhooks keep queuing while frozen: nothing is appended, nothing lost.
      await send(tenant, 5, 'c');
      await new Promise((r) => setTimeout(r, 300));
      expect((await ledger.store.readHead(tenant)).size).toBe(13);

      // Repair from the witness directory: the copy verifies against checkpoint 13.
      const report = await repairFrom(tenant, witnessDir);
      expect(report).toMatchObject({
        checkpointSize: 13,
        replaced: { blocks: [4], vault: [], records: [], treeNodes: 0, head: false },
        verification: { ok: true, size: 13 },
      });
      expect(Buffer.from(report.evidence[0]!.stored!, 'base64').equals(flipped)).toBe(true);
      expect((await redis.lindexBuffer(key, 4))!.equals(original)).toBe(true);

      // Resume; the queued changes and the admin block are anchored; the witness cosigns again.
      const resumed = await resumeTenant({ verification, sink }, tenant, {
        type: 'admin',
        id: 'admin:admin:ada',
      });
      expect(resumed).toMatchObject({ ok: true, wasFrozen: true, size: 13 });
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 19);
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 19, newBlocks: 6 });
      expect(await verification.verifyTenant(tenant, 'full')).toMatchObject({ ok: true, size: 19 });
      // The resume block records the freeze and the repair (which block the copy replaced).
      const admin = await ledger.store.readRecord(tenant, 'crm_ledger/tenant');
      const [block] = await ledger.readBlocks(tenant, [admin[0]!.seq]);
      const opened = await ledger.recordState(tenant, 'crm_ledger/tenant');
      expect(block?.block.actor).toEqual({ type: 'admin', id: 'admin:admin:ada' });
      expect(opened.get('action')).toBe('resume');
      expect(opened.get('repairedBlocks')).toBe('4');
      expect(opened.get('repairCheckpointSize')).toBe(13);
    });

    it('repairs deleted blocks, record links and tree nodes too', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-wreck');
      const witness = await newWitness(tenant, witnessDir);
      await send(tenant, 9, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 9);
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 9 });

      const k = new LedgerKeys(tenant);
      await redis.lrem(k.segment(0), 1, (await redis.lindexBuffer(k.segment(0), 6))!);
      await redis.del(k.record('contact/a1'));
      await redis.setrange(k.treeChunk(1, 0), 32, Buffer.alloc(32, 7));
      expect((await verification.verifyTenant(tenant, 'full')).ok).toBe(false);

      const report = await repairFrom(tenant, witnessDir);
      expect(report.replaced).toMatchObject({
        blocks: [6, 7, 8],
        records: ['contact/a1'],
        treeNodes: 1,
      });
      expect(report.verification).toMatchObject({ ok: true, size: 9 });
    });

    it('never brings back the vault entries of a record erased after the witness copied them', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-erased');
      const witness = await newWitness(tenant, witnessDir);
      await send(tenant, 8, 'e');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 8);
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 8 });
      // The copy holds contact/e1's entries with its values (a chain written before the vault).
      const e1 = (await ledger.store.readRecord(tenant, 'contact/e1')).map((h) => h.seq);
      const stored = await ledger.store.readVaultEntries(tenant, e1);
      const emails = stored.map((v) => String(decodeVaultEntry(v!).fields['email']?.value));
      expect(emails).toHaveLength(2);
      const copied = await readFile(join(witnessDir, 'blocks.ndjson'), 'utf8');
      for (const email of emails) expect(copied).toContain(email);

      const subjects = new SubjectService({
        store: ledger.store,
        vault: new RecordVault(redis, new StaticKeyWrapper([Buffer.alloc(32, 9)])),
        ledger,
        verifierKeys: ledger.verifiers,
      });
      const report = await subjects.erase(
        { tenant, object: 'contact', id: 'e1' },
        { by: 'test', reason: 'art. 17' },
      );
      expect(report.records[0]).toMatchObject({ entriesErased: 2 });
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 9 });

      // The vault list is lost and a block damaged: the repair rebuilds both from the copy.
      const k = new LedgerKeys(tenant);
      await redis.del(k.vaultSegment(0));
      const block = (await redis.lindexBuffer(k.segment(0), 3))!;
      block.writeUInt8(block.readUInt8(block.length - 3) ^ 1, block.length - 3);
      await redis.lset(k.segment(0), 3, block);
      expect((await verification.verifyTenant(tenant, 'full')).ok).toBe(false);

      const repair = await repairFrom(tenant, witnessDir);
      expect(repair.verification).toMatchObject({ ok: true, size: 9 });
      expect(repair.replaced.blocks).toEqual([3]);
      // Every other block's entry came back from the copy; e1's stayed erased.
      expect(await ledger.store.readVaultEntries(tenant, e1)).toEqual(['erased', 'erased']);
      const others = [0, 1, 2, 3, 4, 5, 6, 7].filter((seq) => !e1.includes(seq));
      for (const v of await ledger.store.readVaultEntries(tenant, others))
        expect(v).toMatch(/^\{"fields"/);
      const vaultText = (await redis.lrange(k.vaultSegment(0), 0, -1)).join('\n');
      for (const email of emails) expect(vaultText).not.toContain(email);
    });

    it('repairs what a copy behind the latest checkpoint covers; the rest is verified', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-behind');
      const witness = await newWitness(tenant, witnessDir);
      await send(tenant, 4, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 4);
      await witness.runOnce();
      await send(tenant, 4, 'b');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 8);
      const k = new LedgerKeys(tenant);
      const good = await redis.lrangeBuffer(k.segment(0), 0, -1);
      // Damage inside the copy (block 1): restored from it; blocks 4-7 verify on their own.
      await redis.lset(k.segment(0), 1, Buffer.from('{}'));
      const report = await repairFrom(tenant, witnessDir);
      expect(report).toMatchObject({
        checkpointSize: 4,
        latestCheckpointSize: 8,
        replaced: { blocks: [1] },
        verification: { ok: true, size: 8 },
      });
      expect(await redis.lrangeBuffer(k.segment(0), 0, -1)).toEqual(good);

      // Damage after the copy (block 6): nothing the witness can restore; still tampered.
      await redis.lset(k.segment(0), 6, Buffer.from('{}'));
      const after = await repairFrom(tenant, witnessDir);
      expect(after).toMatchObject({
        checkpointSize: 4,
        latestCheckpointSize: 8,
        replaced: { blocks: [] },
        verification: { ok: false, firstBadSeq: 6 },
      });
      expect((await redis.lindexBuffer(k.segment(0), 6))?.toString()).toBe('{}');
    });

    it('refuses a copy shorter than every signed checkpoint, and writes nothing', async () => {
      const tenant = randomTenant();
      const witnessDir = join(dir, 'w-empty');
      await newWitness(tenant, witnessDir); // never ran a round: its copy is empty
      await send(tenant, 4, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 4);
      const k = new LedgerKeys(tenant);
      await redis.lset(k.segment(0), 1, Buffer.from('{}'));
      const before = await redis.lrangeBuffer(k.segment(0), 0, -1);
      const err = await repairFrom(tenant, witnessDir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RepairError);
      expect((err as RepairError).code).toBe('COPY_BEHIND');
      expect((err as RepairError).message).toContain("after the witness's next round");
      expect(await redis.lrangeBuffer(k.segment(0), 0, -1)).toEqual(before);
    });
  });

  describe('when the log signs a checkpoint that is not an extension', () => {
    it('refuses to cosign a second root for a size it has seen', async () => {
      const tenant = randomTenant();
      const witness = await newWitness(tenant, join(dir, 'w-fork'));
      await send(tenant, 5, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 5);
      await witness.runOnce();
      // A split view: the log key signs another root for size 5 (served as the latest).
      const fork = signCheckpoint(
        { origin: ledger.originFor(tenant), size: 5, rootHash: new Uint8Array(32).fill(9) },
        logSigner,
      );
      await redis.zadd(new LedgerKeys(tenant).checkpoints, 1e9, fork);
      expect(await witness.runOnce()).toMatchObject({
        status: 'refused',
        code: 'CHECKPOINT_INCONSISTENT',
      });
      expect(await ledger.store.readFrozen(tenant)).toMatchObject({
        code: 'CHECKPOINT_INCONSISTENT',
      });
    });

    it('refuses to vouch for signed blocks that do not link into a chain', async () => {
      const tenant = randomTenant();
      await send(tenant, 4, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 4);
      // An insider with the log key rewrites block 2's prev link, rebuilds the tree, re-signs.
      const k = new LedgerKeys(tenant);
      const bytes = await redis.lrangeBuffer(k.segment(0), 0, -1);
      bytes[2] = Buffer.from(
        bytes[2]!.toString('utf8').replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${'0'.repeat(64)}"`),
      );
      await redis.lset(k.segment(0), 2, bytes[2]);
      const built = appendLeaves(
        0,
        [],
        bytes.map((b) => leafHash(b)),
      );
      for (const w of groupTreeWrites(built.newNodes)) {
        await redis.setrange(k.treeChunk(w.level, 0), w.index * 32, w.bytes);
      }
      const forged = signCheckpoint(
        { origin: ledger.originFor(tenant), size: 4, rootHash: rootFromFrontier(built.frontier) },
        logSigner,
      );
      await redis.zadd(k.checkpoints, 1e9, forged);
      const witness = await newWitness(tenant, join(dir, 'w-links'));
      expect(await witness.runOnce()).toMatchObject({
        status: 'refused',
        code: 'BLOCKS_MISMATCH',
        firstBadSeq: 2,
      });
      expect(witness.copy.size).toBe(0);
    });

    it('refuses to cosign a block whose recordPrev commits to a record history not in the log', async () => {
      const tenant = randomTenant();
      // Records a0..a3, then a0 and a1 again: block 5 (a1) links to block 1.
      await send(tenant, 6, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 6);
      // An insider with the log key points block 5's record link at a block that is not in the
      // log (as if a1 had another earlier change), rebuilds the tree and re-signs: every block
      // still links by `prev`, the tree and the signature are right.
      const k = new LedgerKeys(tenant);
      const bytes = await redis.lrangeBuffer(k.segment(0), 0, -1);
      expect(bytes[5]!.toString('utf8')).toContain('"id":"a1"');
      bytes[5] = Buffer.from(
        bytes[5]!
          .toString('utf8')
          .replace(/"recordPrev":"[0-9a-f]{64}"/, `"recordPrev":"${'ab'.repeat(32)}"`),
      );
      await redis.lset(k.segment(0), 5, bytes[5]);
      const built = appendLeaves(
        0,
        [],
        bytes.map((b) => leafHash(b)),
      );
      for (const w of groupTreeWrites(built.newNodes)) {
        await redis.setrange(k.treeChunk(w.level, 0), w.index * 32, w.bytes);
      }
      const forged = signCheckpoint(
        { origin: ledger.originFor(tenant), size: 6, rootHash: rootFromFrontier(built.frontier) },
        logSigner,
      );
      await redis.zadd(k.checkpoints, 1e9, forged);
      const witness = await newWitness(tenant, join(dir, 'w-record-links'));
      const round = await witness.runOnce();
      expect(round).toMatchObject({
        status: 'refused',
        code: 'RECORD_LINK_BROKEN',
        firstBadSeq: 5,
      });
      if (round.status === 'refused') expect(round.reason).toContain('previous block 1');
      expect(await ledger.store.readCosignatures(tenant)).toEqual([]);
      expect(await ledger.store.readFrozen(tenant)).toMatchObject({ code: 'RECORD_LINK_BROKEN' });
    });

    it("refuses a record's first block in the log that links to an earlier history", async () => {
      const tenant = randomTenant();
      await send(tenant, 2, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 2);
      const witness = await newWitness(tenant, join(dir, 'w-record-first'));
      expect(await witness.runOnce()).toMatchObject({ status: 'cosigned', size: 2 });
      // Block 2 is record b0's first: its recordPrev must be zero, the forger points it at block 0.
      await ledger.append(tenant, [contactChange(tenant, 'b0')]);
      const k = new LedgerKeys(tenant);
      const bytes = await redis.lrangeBuffer(k.segment(0), 0, -1);
      const leaf0 = Buffer.from(leafHash(bytes[0]!)).toString('hex');
      bytes[2] = Buffer.from(
        bytes[2]!.toString('utf8').replace(/"recordPrev":"0{64}"/, `"recordPrev":"${leaf0}"`),
      );
      await redis.lset(k.segment(0), 2, bytes[2]);
      const built = appendLeaves(
        0,
        [],
        bytes.map((b) => leafHash(b)),
      );
      for (const w of groupTreeWrites(built.newNodes)) {
        await redis.setrange(k.treeChunk(w.level, 0), w.index * 32, w.bytes);
      }
      await redis.zadd(
        k.checkpoints,
        1e9,
        signCheckpoint(
          { origin: ledger.originFor(tenant), size: 3, rootHash: rootFromFrontier(built.frontier) },
          logSigner,
        ),
      );
      const round = await witness.runOnce();
      expect(round).toMatchObject({
        status: 'refused',
        code: 'RECORD_LINK_BROKEN',
        firstBadSeq: 2,
      });
      if (round.status === 'refused') expect(round.reason).toContain('zero');
    });

    it('refuses a checkpoint signed by another key', async () => {
      const tenant = randomTenant();
      const witness = await newWitness(tenant, join(dir, 'w-key'));
      await send(tenant, 3, 'a');
      await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 3);
      const forged = signCheckpoint(
        { origin: ledger.originFor(tenant), size: 3, rootHash: new Uint8Array(32).fill(1) },
        testSigner(),
      );
      await redis.zadd(new LedgerKeys(tenant).checkpoints, 1e9, forged);
      expect(await witness.runOnce()).toMatchObject({
        status: 'refused',
        code: 'CHECKPOINT_INVALID',
      });
      expect(await ledger.store.readCosignatures(tenant)).toEqual([]);
    });
  });
});

describe('admin routes for witnesses', () => {
  it('serve blocks in bounded pages and refuse unknown witnesses and bad bodies', async () => {
    const tenant = randomTenant();
    await send(tenant, 3, 'r');
    await until(async () => (await ledger.store.latestCheckpoint(tenant))?.size === 3);
    const blocks = await request(app)
      .get(`/admin/blocks?tenant=${tenant}&from=1&to=3`)
      .set('Authorization', `Bearer ${AUDITOR}`);
    expect(blocks.status).toBe(200);
    expect((blocks.body.blocks as { seq: number }[]).map((b) => b.seq)).toEqual([1, 2]);
    const stored = await ledger.store.readBlock(tenant, 1);
    expect(Buffer.from(blocks.body.blocks[0].bytes, 'base64').equals(stored!)).toBe(true);
    const tooFar = await request(app)
      .get(`/admin/blocks?tenant=${tenant}&from=0&to=4`)
      .set('Authorization', `Bearer ${AUDITOR}`);
    expect(tooFar.body.error.code).toBe('QUERY_INVALID');

    const other = parseWitnessSignerKey(generateWitnessKey('witness.test/rogue').skey);
    const note = (await ledger.store.latestCheckpoint(tenant))!.note;
    const rogue = cosignCheckpoint(checkpointBody(note).body, other, Math.floor(Date.now() / 1000));
    const post = (body: unknown, token = OPERATOR) =>
      request(app)
        .post(`/admin/cosignatures?tenant=${tenant}`)
        .set('Authorization', `Bearer ${token}`)
        .send(body as object);
    expect((await post({ size: 3, cosignature: rogue.line })).body.error.code).toBe(
      'WITNESS_UNKNOWN',
    );
    expect((await post({ size: 3 })).body.error.code).toBe('BODY_INVALID');
    expect((await post({ size: 99, cosignature: rogue.line })).body.error.code).toBe(
      'CHECKPOINT_UNKNOWN',
    );
    // A cosignature by the known witness over another body does not verify.
    const wrong = cosignCheckpoint(
      checkpointBody(note).body.replace('\n3\n', '\n4\n'),
      signer,
      Math.floor(Date.now() / 1000),
    );
    expect((await post({ size: 3, cosignature: wrong.line })).body.error.code).toBe(
      'COSIGNATURE_INVALID',
    );
    expect((await post({ size: 3, cosignature: rogue.line }, AUDITOR)).status).toBe(403);
    expect(await ledger.store.readCosignatures(tenant)).toEqual([]);
    const unconfirmed = await request(app)
      .get(`/admin/verify?tenant=${tenant}`)
      .set('Authorization', `Bearer ${AUDITOR}`);
    expect(unconfirmed.body).toMatchObject({ ok: true, cosignatures: [], confirmed: false });

    const freeze = await request(app)
      .post(`/admin/freeze?tenant=${tenant}`)
      .set('Authorization', `Bearer ${OPERATOR}`)
      .send({ reason: '' });
    expect(freeze.body.error.code).toBe('BODY_INVALID');
    expect(await ledger.store.readFrozen(tenant)).toBeUndefined();
  });
});
