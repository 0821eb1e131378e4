/**
 * Subject erasure end to end, on a private redis-server with AOF: a person with a HubSpot and a
 * Salesforce record (linked by email through the dedupe index) goes through the real queue and
 * anchor worker; a delayed job still holds one of their changes. After `erase --email`: the chain
 * verifies, other records' evidence verifies, and the person's values are in no Redis key (block
 * segments, vault, dedupe index, BullMQ job hashes and streams, every type) and in no AOF file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis as RedisClient } from 'ioredis';
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import { until } from '../helpers/wait.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { buildEvidence, verifyEvidence } from '../../src/ledger/evidence.js';
import { formatVerifierKey } from '../../src/ledger/checkpoint.js';
import { RecordVault } from '../../src/vault/vault.js';
import { StaticKeyWrapper } from '../../src/vault/key-wrapper.js';
import type { SubjectService } from '../../src/vault/subjects.js';
import { createSubjectService } from '../../src/pipeline/subject-service.js';
import {
  connectionFromUrl,
  createChangeSink,
  createChangesQueue,
} from '../../src/pipeline/queues.js';
import type { ChangesJob } from '../../src/pipeline/queues.js';
import { startAnchorWorker } from '../../src/pipeline/anchor.worker.js';
import { createAnchorExtras } from '../../src/pipeline/anchor-extras.js';
import type { AnchorExtras } from '../../src/pipeline/anchor-extras.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ParsedEvent } from '../../connectors/types.js';

const PREFIX = '{cl-test-erasure}';
const SPACE = `test-erasure-${randomBytes(4).toString('hex')}`;
const HS = 'hubspot:7001';
const SF = 'salesforce:00D000000000001';
// The person's values: each must vanish. Distinctive, so a scan cannot match by accident.
const EMAIL = 'Grace.Hopper.q7x@Example.org';
const SECRETS = [
  'grace.hopper.q7x@example.org',
  'Grace.Hopper.q7x',
  'Hopperqz7',
  'Gracieq7x',
  '+1 202-555-0143',
  'Arlington Q7X',
];
// Another customer: kept, and their evidence still verifies.
const OTHER_EMAIL = 'ada.kept.k9@example.net';

let dir: string;
let server: EmbeddedRedis;
let redis: Redis;
let ledger: Ledger;
let queue: Queue<ChangesJob>;
let worker: ReturnType<typeof startAnchorWorker>;
let extras: AnchorExtras;
let subjects: SubjectService;
const logger = createLogger({ level: 'silent' });

function event(tenant: string, id: string, fields: Record<string, string>, n: number): ParsedEvent {
  const { event: e } = contactChange(tenant, id, { fields });
  return { event: { ...e, eventId: `e-${id}-${n}` }, idempotencyKey: `t|${tenant}|${id}|${n}` };
}

async function allRedisText(): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      parts.push(key);
      // DUMP serialises any type (lists, hashes, sets, streams); values under 20 bytes stay
      // verbatim, longer ones may be LZF-compressed, so each type is also read explicitly.
      const type = await redis.type(key);
      if (type === 'string') parts.push((await redis.getBuffer(key))?.toString('latin1') ?? '');
      else if (type === 'list') parts.push(...(await redis.lrange(key, 0, -1)));
      else if (type === 'hash') parts.push(...Object.entries(await redis.hgetall(key)).flat());
      else if (type === 'set') parts.push(...(await redis.smembers(key)));
      else if (type === 'zset') parts.push(...(await redis.zrange(key, 0, -1)));
      else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      else parts.push(`<${type}>`);
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

async function aofText(): Promise<string> {
  const aofDir = join(dir, 'appendonly');
  const files = await readdir(aofDir);
  const texts = await Promise.all(files.map((f) => readFile(join(aofDir, f), 'latin1')));
  return texts.join('\n');
}

function found(text: string): string[] {
  const lower = text.toLowerCase();
  return SECRETS.filter((s) => lower.includes(s.toLowerCase()));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-erasure-'));
  server = await startRedisServer({ persistence: 'aof', dataDir: dir });
  redis = new RedisClient(server.url);
  // Plain-command AOF bases (no RDB preamble, whose LZF compression could hide a value from a
  // byte scan): the scan then sees every value the AOF holds.
  await redis.config('SET', 'aof-use-rdb-preamble', 'no');
  const vault = new RecordVault(redis, new StaticKeyWrapper([randomBytes(32)]));
  ledger = createTestLedger(redis, undefined, { vault });
  queue = createChangesQueue(connectionFromUrl(server.url, 'worker'), PREFIX);
  extras = await createAnchorExtras(
    {
      checks: { dedupe: { space: SPACE } },
      eraseOnPrivacyDeletion: { dedupeSpace: SPACE, queuePrefix: PREFIX },
    },
    { redisUrl: server.url, redis, ledger, logger },
  );
  worker = startAnchorWorker({
    ...extras.workerOptions,
    connection: connectionFromUrl(server.url, 'worker'),
    ledger,
    logger,
    batchSize: 32,
    batchWaitMs: 5,
    prefix: PREFIX,
  });
  subjects = createSubjectService({
    redis,
    store: ledger.store,
    vault,
    verifiers: ledger.verifiers,
    ledger,
    dedupeSpace: SPACE,
    queue,
  });

  const sink = createChangeSink(queue);
  const person = {
    email: EMAIL,
    firstname: 'Gracieq7x',
    lastname: 'Hopperqz7',
    phone: '+1 202-555-0143',
    city: 'Arlington Q7X',
  };
  await sink.enqueue({
    source: 'hubspot',
    receivedAt: new Date().toISOString(),
    events: [
      event(HS, '501', person, 1),
      event(HS, '501', { city: 'Arlington Q7X' }, 2),
      event(HS, '777', { email: OTHER_EMAIL, firstname: 'Ada', lastname: 'Kept' }, 3),
    ],
  });
  await sink.enqueue({
    source: 'salesforce',
    receivedAt: new Date().toISOString(),
    events: [event(SF, '003000000000001AAA', { ...person, email: EMAIL.toLowerCase() }, 4)],
  });
  await until(
    'both chains anchored',
    async () => (await ledger.store.readHead(HS)).size + (await ledger.store.readHead(SF)).size,
    // 4 changes, and the admin block that flags the earlier record (HubSpot 501) of the
    // duplicate pair the Salesforce record makes.
    (n) => n === 5,
    20_000,
  );
  // A change still waiting in the queue (delayed): its job hash holds the person's values.
  await queue.add(
    'request',
    {
      source: 'hubspot',
      receivedAt: new Date().toISOString(),
      events: [event(HS, '501', person, 5)],
    },
    { delay: 3_600_000, jobId: 'delayed-person-change' },
  );
});

afterAll(async () => {
  await worker?.close();
  await extras?.close();
  await queue?.close();
  redis?.disconnect();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('subject erasure', () => {
  it('finds the person across CRMs by email', async () => {
    const refs = await subjects.resolve({ email: EMAIL.toUpperCase() });
    expect(refs).toEqual([
      { tenant: HS, object: 'contact', id: '501' },
      { tenant: SF, object: 'contact', id: '003000000000001AAA' },
    ]);
  });

  it('before erasure, the values are in Redis and the AOF (the scans can see them)', async () => {
    await redis.bgrewriteaof();
    await until(
      'the AOF rewrite',
      () => redis.info('persistence'),
      (info) => /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info),
      10_000,
    );
    expect(found(await allRedisText())).toEqual(SECRETS);
    expect(found(await aofText())).toEqual(SECRETS);
  });

  describe('after erase --email', () => {
    let report: Awaited<ReturnType<SubjectService['erase']>>;
    beforeAll(async () => {
      report = await subjects.erase(
        { email: EMAIL },
        { by: 'admin:test', reason: 'GDPR art. 17(1)(b): consent withdrawn' },
      );
    });

    it('erased both records, the queued change, and rewrote the AOF', () => {
      expect(report.records.map((r) => [r.tenant, r.keyDestroyed])).toEqual([
        [HS, true],
        [SF, true],
      ]);
      // HubSpot 501's two changes, the Salesforce record's one, and the admin block that flags
      // whichever of the duplicate pair was anchored first (the two queue jobs race).
      const [hs, sf] = report.records.map((r) => r.entriesErased);
      expect(hs! + sf!).toBe(4);
      expect(hs).toBeGreaterThanOrEqual(2);
      expect(sf).toBeGreaterThanOrEqual(1);
      expect(report.queued).toEqual({ jobs: 1, events: 1 });
      expect(report.aof).toBe('rewritten');
    });

    it('anchored an erasure block with who, when and the legal basis, and no value', async () => {
      const [b] = await ledger.readBlocks(HS, [report.records[0]!.block!.seq]);
      expect(b?.block).toMatchObject({
        kind: 'erasure',
        actor: { type: 'admin', id: 'admin:test' },
        fields: {},
        record: { object: 'contact', id: '501' },
        verdicts: [{ type: 'info', code: 'SUBJECT_ERASED' }],
      });
      expect(JSON.stringify(b?.block.verdicts)).toContain('consent withdrawn');
    });

    it('leaves every chain verifying', async () => {
      expect((await ledger.verify(HS)).ok).toBe(true);
      expect((await ledger.verify(SF)).ok).toBe(true);
    });

    it("leaves the other customer's evidence verifying, values included", async () => {
      const bundle = await buildEvidence(
        ledger.store,
        HS,
        'contact',
        '777',
        ledger.verifiers,
        undefined,
        (t, items) => ledger.openVault(t, items),
      );
      const result = verifyEvidence(
        JSON.parse(JSON.stringify(bundle)),
        ledger.verifiers.map(formatVerifierKey),
      );
      expect(result).toMatchObject({ ok: true });
      if (result.ok) expect(result.changes[0]?.values).toMatchObject({ email: OTHER_EMAIL });
    });

    it('shows the erased history as erased, blocks still proven', async () => {
      const out = await subjects.export({ tenant: HS, object: 'contact', id: '501' });
      const blocks = out.records[0]!.history.blocks;
      // Every block of the record erased; the erasure block itself holds no value to erase.
      const erased = blocks.length - 1;
      expect(erased).toBe(report.records[0]!.entriesErased);
      expect(blocks.map((b) => b.vault)).toEqual([...Array(erased).fill('erased'), 'open']);
      expect(out.records[0]!.history.ok).toBe(true);
      expect(out.records[0]!.evidenceVerified).toBe(true);
      expect(out.records[0]!.current).toEqual({});
    });

    it('leaves none of the values in any Redis key, BullMQ jobs included', async () => {
      const text = await allRedisText();
      expect(found(text)).toEqual([]);
      expect(text).toContain(OTHER_EMAIL); // the scan does read values
      expect(await queue.getJob('delayed-person-change')).toBeUndefined();
    });

    it('leaves none of the values in the AOF files', async () => {
      const text = await aofText();
      expect(found(text)).toEqual([]);
      expect(text).toContain(OTHER_EMAIL.split('@')[0]);
    });

    it('no longer finds the person by email', async () => {
      await expect(subjects.resolve({ email: EMAIL })).rejects.toMatchObject({
        code: 'SUBJECT_NOT_FOUND',
      });
    });
  });
});

describe('a HubSpot privacyDeletion event', () => {
  it('erases the record like subject erase: erasure block anchored, values gone', async () => {
    const before = (await ledger.store.readRecord(HS, 'contact/777')).length;
    const { event: e } = contactChange(HS, '777', {
      kind: 'delete',
      fields: { privacyDeletion: true },
    });
    await createChangeSink(queue).enqueue({
      source: 'hubspot',
      receivedAt: new Date().toISOString(),
      events: [{ event: { ...e, eventId: 'pd-777' }, idempotencyKey: `t|${HS}|777|pd` }],
    });
    const history = await until(
      'the erasure block of 777',
      () => ledger.store.readRecord(HS, 'contact/777'),
      (h) => h.length === before + 2,
      20_000,
    );
    const [last] = await ledger.readBlocks(HS, [history.at(-1)!.seq]);
    expect(last?.block).toMatchObject({
      kind: 'erasure',
      actor: { id: 'hubspot:privacyDeletion' },
      fields: {},
    });
    expect((await allRedisText()).toLowerCase()).not.toContain(OTHER_EMAIL);
    expect((await ledger.verify(HS)).ok).toBe(true);
  });
});
