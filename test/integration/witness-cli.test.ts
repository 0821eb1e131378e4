/**
 * `crm-ledger witness --once` and `crm-ledger repair --from-witness` through commander, against a
 * listening service on the test Redis, configured as an operator would: environment variables,
 * the ledger's key file, a token file.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import type { Redis } from 'ioredis';
import { connect, randomTenant, testRedisUrl } from '../helpers/redis.js';
import { contactChange, createFileKeyLedger } from '../helpers/ledger.js';
import { createApp } from '../../src/http/app.js';
import { adminTokenFrom } from '../../src/http/admin-auth.js';
import { createLogger } from '../../src/observability/logger.js';
import { VerificationService } from '../../src/ledger/verification.js';
import { FileTrustStore } from '../../src/ledger/trust-store.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { formatVerifierKey } from '../../src/ledger/checkpoint.js';
import { parseWitnessKey } from '../../src/ledger/cosignature.js';
import type { WitnessVerifier } from '../../src/ledger/cosignature.js';
import { registerWitnessCommands } from '../../src/witness/cli.js';
import type { WitnessCliIo } from '../../src/witness/cli.js';

const OPERATOR = 'witness-cli-operator-token-0123456789ab';
const ORIGIN = 'witness-cli.test';
let redis: Redis;
let ledger: Ledger;
let dir: string;
let server: Server;
let url: string;
const witnessKeys: WitnessVerifier[] = [];

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: WitnessCliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    env: {
      CRM_LEDGER_REDIS_URL: testRedisUrl(),
      CRM_LEDGER_DATA_DIR: join(dir, 'service'),
      CRM_LEDGER_LEDGER_KEY_FILE: join(dir, 'ledger.key'),
      CRM_LEDGER_LEDGER_ORIGIN: ORIGIN,
    },
  };
  const program = new Command('crm-ledger').exitOverride();
  registerWitnessCommands(program, io);
  process.exitCode = undefined;
  await program.parseAsync(['node', 'crm-ledger', ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, out, err };
}

beforeAll(async () => {
  redis = connect();
  dir = await mkdtemp(join(tmpdir(), 'crm-ledger-witness-cli-'));
  ledger = await createFileKeyLedger(redis, join(dir, 'ledger.key'), ORIGIN);
  await writeFile(join(dir, 'token'), OPERATOR + '\n');
  const app = createApp({
    logger: createLogger({ level: 'silent' }),
    tokens: [adminTokenFrom('operator', 'witness', OPERATOR)],
    verifierKeys: ledger.verifiers,
    verification: new VerificationService(
      ledger.store,
      { verifiers: ledger.verifiers, originFor: (t) => ledger.originFor(t) },
      new FileTrustStore(join(dir, 'trust')),
    ),
    witnessKeys,
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

describe('crm-ledger witness / repair', () => {
  it('cosigns once, refuses after tampering, and repair restores the chain', async () => {
    const tenant = randomTenant();
    const witnessDir = join(dir, 'witness');
    await ledger.append(
      tenant,
      [1, 2, 3, 4, 5, 6].map((i) => contactChange(tenant, `r${i % 3}`)),
    );
    const args = [
      'witness',
      '--url',
      url,
      '--token-file',
      join(dir, 'token'),
      '--tenant',
      tenant,
      '--log-key',
      formatVerifierKey(ledger.verifiers[0]!),
      '--data-dir',
      witnessDir,
      '--once',
      '--log-level',
      'silent',
    ];
    // The witness key is made on first use; the service is told about it (its config).
    const unknown = await run(args);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/HTTP 403/);
    const vkey = (await readFile(join(witnessDir, 'witness.key.pub'), 'utf8')).trim();
    witnessKeys.push(parseWitnessKey(vkey));
    const cosigned = await run(args);
    expect(cosigned.code).toBe(0);
    expect(JSON.parse(cosigned.out)).toMatchObject({ status: 'cosigned', size: 6 });
    // Two more blocks the witness has not copied yet (checkpoint 8).
    await ledger.append(tenant, [contactChange(tenant, 'r7'), contactChange(tenant, 'r8')]);

    const key = new LedgerKeys(tenant).segment(0);
    const original = (await redis.lindexBuffer(key, 2))!;
    await redis.lset(
      key,
      2,
      Buffer.from(original.toString('utf8').replace('"update"', '"create"')),
    );
    const refused = await run(args);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.out)).toMatchObject({ status: 'refused', firstBadSeq: 2 });
    expect(await ledger.store.readFrozen(tenant)).toMatchObject({ firstBadSeq: 2 });

    const evidence = join(dir, 'evidence.json');
    const repaired = await run([
      'repair',
      '--tenant',
      tenant,
      '--from-witness',
      witnessDir,
      '--evidence',
      evidence,
    ]);
    expect(repaired.err).toContain('evidence');
    expect(repaired.out).toMatch(/blocks replaced: +2\n/);
    expect(repaired.out).toMatch(/verify: intact — 8 blocks/);
    expect(repaired.out).not.toContain('behind:');
    expect(repaired.code).toBe(0);
    expect(existsSync(evidence)).toBe(true);
    expect((await redis.lindexBuffer(key, 2))!.equals(original)).toBe(true);

    // A copy behind the latest checkpoint (the witness has not run since) repairs what it covers.
    await ledger.store.unfreeze(tenant);
    await ledger.append(tenant, [contactChange(tenant, 'r9'), contactChange(tenant, 'r10')]);
    const second = (await redis.lindexBuffer(key, 1))!;
    await redis.lset(key, 1, Buffer.from('{}'));
    const behind = await run(['repair', '--tenant', tenant, '--from-witness', witnessDir]);
    expect(behind.out).toMatch(
      /behind: +the latest signed checkpoint is 10: blocks 8–9 are not in the copy/,
    );
    expect(behind.out).toMatch(/blocks replaced: +1\n/);
    expect(behind.out).toMatch(/verify: intact — 10 blocks/);
    expect(behind.code).toBe(0);
    expect((await redis.lindexBuffer(key, 1))!.equals(second)).toBe(true);

    // A directory that holds no witness copy is a usage error; nothing changes.
    const none = await run(['repair', '--tenant', tenant, '--from-witness', join(dir, 'nothing')]);
    expect(none.code).toBe(2);
  });

  it('checks --serve and --from-witness <url> before using them', async () => {
    const tenant = randomTenant();
    await ledger.append(tenant, [contactChange(tenant, 'u1')]);
    const witnessArgs = [
      'witness',
      '--url',
      url,
      '--token-file',
      join(dir, 'token'),
      '--tenant',
      tenant,
      '--log-key',
      formatVerifierKey(ledger.verifiers[0]!),
      '--data-dir',
      join(dir, 'witness-serve'),
      '--once',
      '--log-level',
      'silent',
    ];
    const noPort = await run([...witnessArgs, '--serve', '127.0.0.1']);
    expect([noPort.code, noPort.err]).toEqual([2, expect.stringContaining('HOST:PORT')]);
    const noToken = await run([...witnessArgs, '--serve', '127.0.0.1:0']);
    expect([noToken.code, noToken.err]).toEqual([2, expect.stringContaining('--serve-token-file')]);
    await writeFile(join(dir, 'short-token'), 'short\n');
    const short = await run([
      ...witnessArgs,
      '--serve',
      '127.0.0.1:0',
      '--serve-token-file',
      join(dir, 'short-token'),
    ]);
    expect([short.code, short.err]).toEqual([2, expect.stringContaining('at least 16')]);

    const before = await redis.lrangeBuffer(new LedgerKeys(tenant).segment(0), 0, -1);
    const noReadToken = await run([
      'repair',
      '--tenant',
      tenant,
      '--from-witness',
      'http://127.0.0.1:9',
    ]);
    expect([noReadToken.code, noReadToken.err]).toEqual([
      2,
      expect.stringContaining('--witness-token-file'),
    ]);
    const unreachable = await run([
      'repair',
      '--tenant',
      tenant,
      '--from-witness',
      'http://127.0.0.1:9',
      '--witness-token-file',
      join(dir, 'token'),
    ]);
    expect([unreachable.code, unreachable.err]).toEqual([
      2,
      expect.stringContaining('[SOURCE_UNAVAILABLE]'),
    ]);
    expect(await redis.lrangeBuffer(new LedgerKeys(tenant).segment(0), 0, -1)).toEqual(before);
  });
});
