/**
 * Issue 8 end to end, in one flow against the running service and its sandbox CRMs:
 *
 *  1. with the webhooks switched off, an edit made in the sandbox HubSpot is found by the
 *     scheduled reconciliation and anchored as `reconciled` (verdict unanchored-change);
 *  2. a witness process (its own data directory, a `witness` role token) follows the tenant,
 *     cosigns, and serves its verified copy read-only;
 *  3. one byte of a block is changed in Redis: the scheduled verifier and the witness notice it, the
 *     tenant freezes, a signed alert reaches a local receiver that checks its HMAC;
 *  4. the CRM's webhooks are still answered 2xx and queued while nothing is anchored;
 *  5. `crm-ledger repair --from-witness <url>` restores the block from the witness process;
 *  6. the witness token cannot resume; an admin resumes;
 *  7. every change queued during the freeze is anchored exactly once (counted by event id), the
 *     chain verifies, and the witness cosigns again.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import type { RunningService } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { generateWitnessKey } from '../../src/ledger/cosignature.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import type { Block } from '../../src/ledger/block.js';
import { reconcileCursorKey } from '../../src/pipeline/reconcile.worker.js';
import { serveWitnessCopy } from '../../src/http/witness-copy.routes.js';
import { repairCommand, witnessCommand } from '../../src/witness/cli.js';
import type { WitnessCliIo } from '../../src/witness/cli.js';
import { until } from '../helpers/wait.js';
import { startAlertReceiver } from '../helpers/alert-receiver.js';
import type { AlertReceiver } from '../helpers/alert-receiver.js';

const WITNESS_TOKEN = 'e2e-witness-role-token-0123456789ab';
const READ_TOKEN = 'e2e-witness-read-token-0123456789ab';
const ALERT_SECRET = 'e2e-alert-secret-0123456789abcdef';
const USER = 9001;

let dir: string;
let service: RunningService;
let redis: Redis;
let receiver: AlertReceiver;
const witnessKey = generateWitnessKey('witness.e2e/w1');
const stopWitness = new AbortController();
let witnessRun: Promise<number> | undefined;
let witnessUrl = '';
let witnessErr = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-witness-flow-'));
  // The alert receiver checks every alert's HMAC signature, as a customer's endpoint would.
  receiver = await startAlertReceiver(ALERT_SECRET);

  service = await startService(
    loadConfig({
      CRM_LEDGER_DATA_DIR: join(dir, 'service'),
      CRM_LEDGER_PORT: '0',
      CRM_LEDGER_LOG_LEVEL: 'silent',
      CRM_LEDGER_VERIFY_EVERY_MS: '400',
      CRM_LEDGER_RECONCILE_EVERY_MS: '700',
      CRM_LEDGER_RECONCILE_SETTLE_MS: '1500',
      CRM_LEDGER_WITNESS_KEYS: witnessKey.vkey,
      CRM_LEDGER_WITNESS_TOKEN: WITNESS_TOKEN,
      // The local witness of the embedded default would race this test's own finder.
      CRM_LEDGER_LOCAL_WITNESS: 'off',
      CRM_LEDGER_ALERT_WEBHOOK_URL: receiver.url,
      CRM_LEDGER_ALERT_WEBHOOK_SECRET: ALERT_SECRET,
    }),
    createLogger({ level: 'silent' }),
  );
  redis = new Redis(service.redisUrl);
}, 60_000);

afterAll(async () => {
  stopWitness.abort();
  await witnessRun?.catch(() => undefined);
  redis?.disconnect();
  await service?.stop();
  await receiver?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('issue 8 in one flow', () => {
  it('reconciles, witnesses, freezes on tampering, repairs from the witness URL and resumes with nothing lost', async () => {
    const hs = service.sandboxes!.hubspot;
    const ledger = service.ledger!;
    const tenant = `hubspot:${hs.portalId}`;
    const webhookUrl = `${service.url}/webhooks/hubspot`;
    const admin = { Authorization: `Bearer ${service.adminToken}` };

    /** Every block of the tenant, in order. */
    const chain = async (): Promise<Block[]> => {
      const size = (await ledger.store.readHead(tenant)).size;
      const all = await ledger.readBlocks(
        tenant,
        Array.from({ length: size }, (_, i) => i),
      );
      return all.map((b) => b!.block);
    };
    const blocksOf = async (id: string): Promise<Block[]> => {
      const heads = await ledger.store.readRecord(tenant, `contact/${id}`);
      const read = await ledger.readBlocks(
        tenant,
        heads.map((h) => h.seq),
      );
      return read.map((b) => b!.block);
    };

    // 1. A contact arrives by webhook; reconciliation's first (baseline) run completes.
    const ada = hs.createAsUser('contacts', { email: 'ada@example.com', firstname: 'Ada' }, USER);
    await until(
      'Ada anchored',
      () => blocksOf(ada.id),
      (b) => b.length >= 1,
    );
    await until(
      'the baseline reconciliation',
      () => redis.get(reconcileCursorKey(tenant)),
      (c) => c !== null && (JSON.parse(c) as { lastRun?: unknown }).lastRun !== undefined,
    );

    // Webhooks off: an edit in the CRM that the ledger never hears about.
    hs.setWebhookTarget(undefined);
    hs.updateAsUser('contacts', ada.id, { email: 'ada.lovelace@example.com' }, USER);
    const reconciled = await until(
      'the edit found by reconciliation',
      () => blocksOf(ada.id),
      (b) => b.some((blk) => blk.kind === 'reconciled'),
    );
    expect(reconciled.filter((b) => b.kind === 'reconciled')).toEqual([
      expect.objectContaining({
        kind: 'reconciled',
        verdicts: [
          expect.objectContaining({ type: 'unanchored-change', code: 'UNANCHORED_CHANGE' }),
        ],
      }),
    ]);
    hs.setWebhookTarget(webhookUrl);

    // 2. The witness process: its own directory and key, the witness role token, a copy server.
    const witnessDir = join(dir, 'witness');
    await mkdir(witnessDir);
    await writeFile(join(witnessDir, 'witness.key'), witnessKey.skey + '\n', { mode: 0o600 });
    await writeFile(join(dir, 'witness-token'), WITNESS_TOKEN + '\n');
    await writeFile(join(dir, 'read-token'), READ_TOKEN + '\n');
    const logKey = (
      (await (await fetch(`${service.url}/admin/keys`)).json()) as { current: string }
    ).current;
    const io: WitnessCliIo = {
      out: () => undefined,
      err: (t) => void (witnessErr += t),
      env: {},
      stopSignal: stopWitness.signal,
      serveCopy: serveWitnessCopy,
      onServing: (url) => void (witnessUrl = url),
    };
    witnessRun = witnessCommand(
      {
        url: service.url,
        tokenFile: join(dir, 'witness-token'),
        tenant,
        logKey,
        dataDir: witnessDir,
        interval: '0.25',
        report: true,
        logLevel: 'silent',
        serve: '127.0.0.1:0',
        serveTokenFile: join(dir, 'read-token'),
      },
      io,
    );
    const reconciledSeq = Math.max(
      ...(await ledger.store.readRecord(tenant, `contact/${ada.id}`)).map((h) => h.seq),
    );
    await until(
      'a cosignature covering the reconciled block',
      () => ledger.store.readCosignatures(tenant),
      (cs) => cs.some((c) => c.witness === 'witness.e2e/w1' && c.size > reconciledSeq),
    );
    expect(witnessUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    // 3. One byte of block 1 changes in Redis (same length: the tree still matches the head).
    const key = new LedgerKeys(tenant).segment(0);
    const original = (await redis.lindexBuffer(key, 1))!;
    const flipped = Buffer.from(original);
    const at = flipped.indexOf('"occurredAt"') + 2;
    flipped[at] = flipped[at]! ^ 0x20;
    await redis.lset(key, 1, flipped);
    const frozen = await until(
      'the freeze',
      () => ledger.store.readFrozen(tenant),
      (f) => f !== undefined,
    );
    // The first bad seq named is block 1, or — when an incremental verification found it first —
    // the next block of the same customer, whose recordPrev no longer matches block 1's hash.
    const adaSeqs = (await ledger.store.readRecord(tenant, `contact/${ada.id}`)).map((h) => h.seq);
    expect(adaSeqs).toContain(1);
    expect(adaSeqs).toContain(frozen!.firstBadSeq);
    expect(['verifier', 'witness:witness-token']).toContain(frozen!.by);
    const ready = (await (await fetch(`${service.url}/readyz`)).json()) as { frozen: string[] };
    expect(ready.frozen).toContain(tenant);
    // The witness noticed too: it refuses to cosign and keeps an alert.
    await until(
      "the witness's refusal",
      () => readFile(join(witnessDir, 'alerts.ndjson'), 'utf8').catch(() => ''),
      (t) => t.includes('"BLOCKS_DIFFER"') || t.includes('"BLOCKS_MISMATCH"'),
    );
    const alert = await until(
      'the signed tamper alert',
      () => receiver.alerts.find((a) => a.alert['type'] === 'ledger.tampered'),
      (a) => a !== undefined,
    );
    expect(alert).toMatchObject({
      signed: true,
      alert: { tenant, detail: { firstBadSeq: frozen!.firstBadSeq } },
    });
    const frozenSize = (await ledger.store.readHead(tenant)).size;

    // 4. The CRM keeps sending: answered 2xx, queued, not anchored.
    const delivered = hs.webhookDeliveries().length;
    const grace = hs.createAsUser(
      'contacts',
      { email: 'grace@example.com', firstname: 'Grace' },
      USER,
    );
    hs.updateAsUser('contacts', grace.id, { lastname: 'Hopper' }, USER);
    await until(
      "Grace's webhooks delivered",
      () => hs.webhookDeliveries().slice(delivered),
      (ds) =>
        ds.flatMap((d) => d.events).filter((e) => String(e.objectId) === grace.id).length >= 2,
    );
    await new Promise((r) => setTimeout(r, 800));
    const during = hs.webhookDeliveries().slice(delivered);
    expect(during.every((d) => d.status === 200)).toBe(true);
    expect((await ledger.store.readHead(tenant)).size).toBe(frozenSize);
    const queuedIds = new Set(
      during
        .flatMap((d) => d.events)
        .filter((e) => String(e.objectId) === grace.id)
        .map((e) => String(e.eventId)),
    );
    expect(queuedIds.size).toBeGreaterThanOrEqual(2);

    // 5. Repair from the witness process over HTTP (once its copy holds the last checkpoint).
    await until(
      'the witness copy at the last checkpoint',
      async () => {
        const res = await fetch(`${witnessUrl}/witness/v1/checkpoints`, {
          headers: { Authorization: `Bearer ${READ_TOKEN}` },
        });
        return {
          copy: ((await res.json()) as { size: number }).size,
          cp: (await ledger.store.latestCheckpoint(tenant))?.size,
        };
      },
      (s) => s.copy === s.cp,
    );
    let out = '';
    let err = '';
    const code = await repairCommand(
      {
        tenant,
        fromWitness: witnessUrl,
        witnessTokenFile: join(dir, 'read-token'),
        evidence: join(dir, 'evidence.json'),
        json: true,
      },
      {
        out: (t) => void (out += t),
        err: (t) => void (err += t),
        env: {
          CRM_LEDGER_DATA_DIR: join(dir, 'service'),
          CRM_LEDGER_REDIS_URL: service.redisUrl,
          CRM_LEDGER_WITNESS_KEYS: witnessKey.vkey,
        },
      },
    );
    expect([code, err]).toEqual([0, expect.stringContaining('evidence')]);
    expect(JSON.parse(out)).toMatchObject({
      witness: { where: `${witnessUrl}/`, cosigned: { by: 'witness.e2e/w1' } },
      replaced: { blocks: [1] },
      verification: { ok: true },
      // Only the damaged block comes from the witness: sealed vault entries count as present.
      fetched: 1,
    });
    expect(JSON.parse(out).witness.cosigned.size).toBeGreaterThan(reconciledSeq);
    expect((await redis.lindexBuffer(key, 1))!.equals(original)).toBe(true);

    // 6. The witness role cannot resume; the admin can.
    const denied = await fetch(`${service.url}/admin/resume?tenant=${tenant}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${WITNESS_TOKEN}` },
    });
    expect(denied.status).toBe(403);
    const resumed = await fetch(`${service.url}/admin/resume?tenant=${tenant}`, {
      method: 'POST',
      headers: admin,
    });
    expect(resumed.status).toBe(200);

    // 7. Everything queued during the freeze is anchored, once each; the chain verifies.
    const after = await until('the queued changes anchored', chain, (blocks) =>
      [...queuedIds].every((id) => blocks.some((b) => b.eventId === id)),
    );
    for (const id of queuedIds) {
      expect([id, after.filter((b) => b.eventId === id).length]).toEqual([id, 1]);
    }
    const ids = after.map((b) => b.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect((await blocksOf(grace.id)).map((b) => b.kind)).not.toContain('reconciled');
    const resumeBlock = after.find((b) => b.kind === 'admin');
    expect(resumeBlock?.actor).toMatchObject({ type: 'admin' });
    expect((await ledger.recordState(tenant, 'crm_ledger/tenant')).get('repairedBlocks')).toBe('1');
    const verify = (await (
      await fetch(`${service.url}/admin/verify?tenant=${tenant}&mode=full`, { headers: admin })
    ).json()) as { ok: boolean; size: number };
    expect(verify).toMatchObject({ ok: true });
    expect(await ledger.store.readFrozen(tenant)).toBeUndefined();

    // The witness cosigns the new checkpoint again.
    await until(
      'a new cosignature after the resume',
      () => ledger.store.readCosignatures(tenant),
      (cs) => cs.some((c) => c.size > frozenSize),
    );
    stopWitness.abort();
    expect(await witnessRun).toBe(0);
  }, 60_000);
});
