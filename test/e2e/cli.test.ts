/**
 * The `crm-ledger` command as an operator runs it: a real process, a real redis-server, a key on
 * disk. Exit codes are part of the interface: 0 intact, 1 tampered, 2 usage or connection error.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import type { EmbeddedRedis } from '../../src/redis/embedded-server.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys, SEGMENT_SIZE } from '../../src/ledger/keys.js';
import { POOL_MIN_BLOCKS } from '../../src/ledger/verification.js';
import { QuarantineStore } from '../../src/policy/quarantine.js';
import { startHubspotSandbox } from '../../connectors/sandbox/hubspot/index.js';
import { contactChange, createFileKeyLedger } from '../helpers/ledger.js';
import { runCli } from '../helpers/cli.js';

const ORIGIN = 'cli.crm-ledger.test';

let dir: string;
let server: EmbeddedRedis;
let redis: Redis;
let ledger: Ledger;

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, {
    CRM_LEDGER_REDIS_URL: server.url,
    CRM_LEDGER_DATA_DIR: dir,
    CRM_LEDGER_LEDGER_ORIGIN: ORIGIN,
    CRM_LEDGER_LOG_LEVEL: 'silent',
    ...env,
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-cli-'));
  server = await startRedisServer({ persistence: 'none' });
  redis = new Redis(server.url);
  ledger = await createFileKeyLedger(redis, join(dir, 'ledger.key'), ORIGIN);
  for (const tenant of ['hubspot:111', 'salesforce:00D000000000001']) {
    await ledger.append(tenant, [contactChange(tenant, 'a'), contactChange(tenant, 'b')]);
  }
}, 60_000);
afterAll(async () => {
  redis.disconnect();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('crm-ledger keygen', () => {
  it('writes a 0600 signer key and its .pub, and refuses to overwrite it', async () => {
    const out = join(dir, 'new.key');
    const first = await cli(['keygen', '--out', out, '--name', 'example.com/log']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('example.com/log+');
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    expect(await readFile(out, 'utf8')).toMatch(/^PRIVATE\+KEY\+example\.com\/log\+[0-9a-f]{8}\+/);
    expect(await readFile(`${out}.pub`, 'utf8')).toMatch(/^example\.com\/log\+[0-9a-f]{8}\+/);
    const again = await cli(['keygen', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');
  }, 30_000);
});

describe('crm-ledger verify', () => {
  it('exits 0 and reports every tenant intact', async () => {
    const { code, stdout } = await cli(['verify']);
    expect(code).toBe(0);
    expect(stdout).toContain('hubspot:111: intact — 2 blocks');
    expect(stdout).toContain('salesforce:00D000000000001: intact — 2 blocks');
  }, 30_000);

  it('prints the DESIGN.md JSON shape with --json', async () => {
    const { code, stdout } = await cli(['verify', '--tenant', 'hubspot:111', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, tenant: 'hubspot:111', size: 2 });
    const one = await cli(['verify', '--tenant', 'hubspot:111', '--json', '--threads', '1']);
    expect(JSON.parse(one.stdout)).toEqual(JSON.parse(stdout));
  }, 30_000);

  it('exits 2 on usage and configuration errors', async () => {
    expect((await cli(['verify', '--tenant', 'hubspot:999'])).code).toBe(2);
    const badEnv = await cli(['verify'], { CRM_LEDGER_PORT: 'abc' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain('CRM_LEDGER_PORT');
    expect((await cli(['verify', '--bogus'])).code).toBe(2);
    for (const threads of ['0', '1.5', 'many', '65']) {
      const bad = await cli(['verify', '--threads', threads]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--threads');
    }
    const down = await cli(['verify'], { CRM_LEDGER_REDIS_URL: 'redis://127.0.0.1:1' });
    expect(down.code).toBe(2);
  }, 60_000);

  it('exits 1 and names the first bad seq once a block is changed', async () => {
    const key = new LedgerKeys('salesforce:00D000000000001').segment(0);
    const block = (await redis.lindexBuffer(key, 1)) as Buffer;
    await redis.lset(key, 1, Buffer.from(block.toString('utf8').replace('"update"', '"delete"')));
    const { code, stdout } = await cli(['verify']);
    expect(code).toBe(1);
    expect(stdout).toContain('hubspot:111: intact');
    expect(stdout).toContain(
      'salesforce:00D000000000001: TAMPERED — first bad seq 1 (BLOCK_HASH_MISMATCH)',
    );
    // The tenant is now frozen, and the operator is told what comes next.
    expect(stdout).toMatch(
      /anchoring is frozen since \S+ \(by verifier\); changes keep queuing\. Repair: crm-ledger repair --tenant salesforce:00D000000000001 --from-witness <copy>, then crm-ledger resume --tenant salesforce:00D000000000001/,
    );
    expect(stdout).not.toMatch(/hubspot:111[^\n]*\n\s+anchoring is frozen/);
    await redis.lset(key, 1, block);
  }, 30_000);

  it('history prints a record block by block and exits 0 when every block verifies', async () => {
    const text = await cli(['history', 'hubspot:111', 'contact', 'a']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^#0 .* update by hubspot:user:\d/m);
    expect(text.stdout).toContain('every block verified');
    const json = await cli(['history', 'hubspot:111', 'contact', 'a', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: true,
      record: { object: 'contact', id: 'a' },
    });
    expect((await cli(['history', 'hubspot:111', 'contact', 'zzz'])).code).toBe(2);
  }, 30_000);

  it('prove writes an evidence bundle that verify-evidence checks offline; one changed byte fails', async () => {
    const file = join(dir, 'evidence.json');
    const prove = await cli(['prove', 'hubspot:111', 'contact', 'a', '--out', file]);
    expect(prove.code).toBe(0);
    expect(prove.stderr).toContain('1 block(s)');
    // Offline: no Redis URL, no data dir, only the public key.
    const offline = {
      CRM_LEDGER_REDIS_URL: 'redis://127.0.0.1:1',
      CRM_LEDGER_DATA_DIR: '/nonexistent',
    };
    const ok = await cli(['verify-evidence', file, '--key', join(dir, 'ledger.key.pub')], offline);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^#0 .* update by hubspot:user:\d/m);
    expect(ok.stdout).toContain('VERIFIED: contact/a of hubspot:111 had these 1 change(s)');
    const json = await cli(['verify-evidence', file, '--json'], offline);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, keysFrom: 'bundle', treeSize: 2 });

    const text = await readFile(file, 'utf8');
    // Format v2: the block is a row of values (no escaped JSON string); change its kind.
    expect(text).toContain('"update"');
    await writeFile(file, text.replace('"update"', '"delete"'));
    const bad = await cli(['verify-evidence', file, '--key', join(dir, 'ledger.key.pub')], offline);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('FAILED [PROOF_INVALID]: block #0:');
    expect((await cli(['verify-evidence', join(dir, 'missing.json')], offline)).code).toBe(2);
  }, 60_000);

  it('prove is compact by default (the newest proof, the record chain); --all-proofs proves each block', async () => {
    const tenant = 'hubspot:333';
    for (let i = 0; i < 3; i++)
      await ledger.append(tenant, [contactChange(tenant, `o${i}`), contactChange(tenant, 'c')]);
    const offline = {
      CRM_LEDGER_REDIS_URL: 'redis://127.0.0.1:1',
      CRM_LEDGER_DATA_DIR: '/nonexistent',
    };
    const key = join(dir, 'ledger.key.pub');
    const file = join(dir, 'evidence-c.json');
    expect((await cli(['prove', tenant, 'contact', 'c', '--out', file])).code).toBe(0);
    const text = await readFile(file, 'utf8');
    expect(JSON.parse(text)).toMatchObject({
      format: 'crm-ledger/evidence@v3',
      proof: { index: 5 },
    });
    const ok = await cli(['verify-evidence', file, '--key', key, '--json'], offline);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      ok: true,
      inclusion: 'newest',
      keysFrom: 'argument',
      changes: [{ seq: 1 }, { seq: 3 }, { seq: 5 }],
    });
    expect((JSON.parse(ok.stdout) as { statement: string }).statement).toContain(
      'The newest (#5) is included in the log',
    );
    // One byte of the middle block (seq 3) changed: its kind.
    const rows = [...text.matchAll(/"update"/g)].map((m) => m.index);
    expect(rows).toHaveLength(3);
    await writeFile(file, text.slice(0, rows[1]) + '"updatf"' + text.slice(rows[1]! + 8));
    const bad = await cli(['verify-evidence', file, '--key', key], offline);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('FAILED [RECORD_LINK_BROKEN]: block #3:');

    const all = join(dir, 'evidence-c-all.json');
    expect((await cli(['prove', tenant, 'contact', 'c', '--all-proofs', '--out', all])).code).toBe(
      0,
    );
    const each = await cli(['verify-evidence', all, '--key', key, '--json'], offline);
    expect(JSON.parse(each.stdout)).toMatchObject({
      ok: true,
      format: 'crm-ledger/evidence@v2',
      inclusion: 'each',
    });
    const tlog = await cli(['prove', tenant, 'contact', 'c', '--tlog-proof']);
    expect(tlog.stdout.split('\n').slice(0, 2)).toEqual(['c2sp.org/tlog-proof@v1', 'index 5']);
  }, 90_000);

  it('backfill re-scans a configured HubSpot and queues a baseline for records the ledger lacks', async () => {
    const hubspot = await startHubspotSandbox();
    try {
      hubspot.seed(
        'contacts',
        Array.from({ length: 12 }, (_, i) => ({ email: `bf${i}@example.com`, firstname: `B${i}` })),
        { at: Date.now() - 10 * 60_000 },
      );
      const env = {
        CRM_LEDGER_HUBSPOT_API_URL: hubspot.url,
        CRM_LEDGER_HUBSPOT_PORTAL_ID: String(hubspot.portalId),
        CRM_LEDGER_HUBSPOT_ACCESS_TOKEN: 'backfill-token',
        CRM_LEDGER_HUBSPOT_CLIENT_SECRET: 'backfill-secret',
        CRM_LEDGER_HUBSPOT_APP_ID: String(hubspot.appId),
      };
      const { code, stdout } = await cli(['backfill', '--source', 'hubspot', '--json'], env);
      expect(code).toBe(0);
      const result = JSON.parse(stdout.trim().split('\n').pop() as string) as {
        tenant: string;
        compared: number;
        queued: Record<string, number>;
      };
      expect(result.tenant).toBe(`hubspot:${hubspot.portalId}`);
      expect(result.compared).toBe(12);
      expect(Object.values(result.queued).reduce((a, b) => a + b, 0)).toBe(12);
      // No Salesforce configured: a usage error naming what to set up.
      const none = await cli(['backfill', '--source', 'salesforce'], env);
      expect(none.code).toBe(2);
      expect(none.stderr).toContain('no salesforce account is configured');
    } finally {
      await hubspot.close();
    }
  }, 60_000);

  it('tenants lists each chain with its size and checkpoint, and a frozen one as FROZEN', async () => {
    const table = await cli(['tenants']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^hubspot:111\s+2\s+2\s+anchoring$/m);
    const json = await cli(['tenants', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      tenants: expect.arrayContaining([
        { tenant: 'hubspot:111', size: 2, checkpointSize: 2, frozen: null },
      ]) as unknown,
    });
    const head = new LedgerKeys('salesforce:00D000000000001').head;
    await redis.hset(
      head,
      'frozen',
      JSON.stringify({ reason: 'block 1 changed', at: 'now', by: 'test' }),
    );
    try {
      expect((await cli(['tenants'])).stdout).toMatch(
        /^salesforce:00D000000000001\s+2\s+2\s+FROZEN since now \(block 1 changed\)$/m,
      );
    } finally {
      await redis.hdel(head, 'frozen');
    }
  }, 30_000);

  it('sandbox runs both sandbox CRMs until SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'sandbox'], {
      env: { PATH: process.env['PATH'] ?? '' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 20_000;
    while (!out.includes('Ctrl-C') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const hubspot = /HubSpot sandbox\s+(http:\/\/[0-9.:]+)/.exec(out)?.[1];
    const salesforce = /Salesforce sandbox\s+(http:\/\/[0-9.:]+)/.exec(out)?.[1];
    expect(hubspot).toBeDefined();
    const contacts = await fetch(`${hubspot}/crm/v3/objects/contacts`, {
      headers: { Authorization: 'Bearer anything' },
    });
    expect(contacts.status).toBe(200);
    const versions = await fetch(
      `${salesforce}/services/data/v61.0/sobjects/Contact/003000000000001AAA`,
      {
        headers: { Authorization: 'Bearer anything' },
      },
    );
    expect(versions.status).toBe(404);
    child.kill('SIGTERM');
    expect(await new Promise((r) => child.once('exit', r))).toBe(0);
  }, 30_000);

  it('quarantine lists marked records and clears one (exit 0), then says it is not (exit 1)', async () => {
    await new QuarantineStore(redis).quarantine(
      { tenant: 'hubspot:111', object: 'contact', id: 'a' },
      { rule: 'email-editors', eventId: 'evt-q', at: '2026-11-26T12:00:00.000Z' },
    );
    const list = await cli(['quarantine', 'list', 'hubspot:111', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({
      records: [{ key: 'contact/a', rule: 'email-editors', eventId: 'evt-q' }],
    });
    expect((await cli(['quarantine', 'clear', 'hubspot:111', 'contact', 'a'])).code).toBe(2);
    const cleared = await cli([
      'quarantine',
      'clear',
      'hubspot:111',
      'contact',
      'a',
      '--reason',
      'owner confirmed the edit',
      '--as',
      'ada',
    ]);
    expect(cleared.code).toBe(0);
    expect(cleared.stdout).toContain('contact/a in hubspot:111: cleared');
    expect((await cli(['quarantine', 'list', 'hubspot:111'])).stdout).toContain(
      'nothing quarantined',
    );
    const again = await cli([
      'quarantine',
      'clear',
      'hubspot:111',
      'contact',
      'a',
      '--reason',
      'x',
    ]);
    expect(again.code).toBe(1);
  }, 60_000);

  it('--help lists the commands', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const command of [
      'serve',
      'verify',
      'keygen',
      'history',
      'prove',
      'verify-evidence',
      'quarantine',
      'demo',
    ])
      expect(stdout).toContain(command);
  }, 30_000);
});

describe('crm-ledger verify of a chain long enough for worker threads', () => {
  it('verifies it with --threads 2 as with one thread, and names the same first bad seq', async () => {
    const tenant = 'hubspot:444';
    const size = POOL_MIN_BLOCKS + 100;
    for (let at = 0; at < size; at += 1000) {
      const n = Math.min(1000, size - at);
      await ledger.append(
        tenant,
        Array.from({ length: n }, (_, i) => contactChange(tenant, `r${(at + i) % 997}`)),
      );
    }
    const args = ['verify', '--tenant', tenant, '--json', '--threads'];
    const two = await cli([...args, '2']);
    expect(two.code, two.stderr).toBe(0);
    expect(JSON.parse(two.stdout)).toMatchObject({ ok: true, size });
    expect(JSON.parse((await cli([...args, '1'])).stdout)).toEqual(JSON.parse(two.stdout));

    const seq = 40 * SEGMENT_SIZE + 5;
    const key = new LedgerKeys(tenant).segment(40);
    const block = (await redis.lindexBuffer(key, 5)) as Buffer;
    await redis.lset(key, 5, Buffer.from(block.toString('utf8').replace('"update"', '"delete"')));
    try {
      for (const threads of ['2', '1']) {
        const bad = await cli([...args, threads]);
        expect(bad.code, `--threads ${threads}`).toBe(1);
        expect(JSON.parse(bad.stdout)).toMatchObject({
          ok: false,
          firstBadSeq: seq,
          code: 'BLOCK_HASH_MISMATCH',
        });
      }
    } finally {
      await redis.lset(key, 5, block);
    }
  }, 180_000);
});
