/**
 * Vault cost per event: the field commitments (salted SHA-256 per field, prepareChange) plus
 * sealing the vault entry (AES-256-GCM under the record's data key), against the end-to-end
 * anchoring cost measured in the same run (Ledger.append at batch 128 on the private Redis: data
 * key lookup, hashing, Lua compare-and-set, checkpoint signing). Issue 10's target: < 10 %.
 *
 * Also: node:crypto vs @noble/ciphers sealing (why node:crypto is the default), and the whole
 * append with the vault vs without it, interleaved repetition by repetition.
 */
import { randomBytes } from 'node:crypto';
import { prepareChange } from '../src/ledger/block.js';
import { sealWith } from '../src/vault/crypto.js';
import { StaticKeyWrapper } from '../src/vault/key-wrapper.js';
import { entryAad, RecordVault } from '../src/vault/vault.js';
import { contactChange, createTestLedger } from '../test/helpers/ledger.js';
import { benchTenant } from './chain.js';
import { cpuRates, median, nowNs, secondsSince, sink } from './lib.js';
import type { Bench } from './lib.js';
import { SAMPLE_TENANT } from './samples.js';

const BATCH = 128;
const RECORDS = 10_000;

export const vaultBench: Bench = {
  name: 'vault',
  description: 'per-event commitments + AES-GCM sealing vs end-to-end anchoring (target < 10%)',
  async run(ctx) {
    const reps = ctx.quick ? 3 : 5;
    const batches = ctx.quick ? 10 : 40;
    const cpuOpts = ctx.quick ? { minMs: 100, reps: 3 } : { minMs: 400, reps: 5 };

    // CPU: one ~15-field contact change, as the other benches use.
    const requests = Array.from({ length: 4096 }, (_, i) =>
      contactChange(SAMPLE_TENANT, `c${i % 64}`),
    );
    const prepared = requests.map((r) => prepareChange(r));
    const key = randomBytes(32);
    const aad = entryAad(SAMPLE_TENANT, 123_456, 'contact/c1');
    const plains = prepared.map((p) => Buffer.from(p.vault, 'utf8'));
    let k = 0;
    const cpu = cpuRates(
      {
        commitments: () => {
          sink(prepareChange(requests[k++ & 4095] as (typeof requests)[number]));
        },
        sealNode: () => {
          sink(sealWith('node', key, plains[k++ & 4095] as Buffer, aad));
        },
        sealNoble: () => {
          sink(sealWith('noble', key, plains[k++ & 4095] as Buffer, aad));
        },
      },
      cpuOpts,
    );

    // End to end: Ledger.append, sequential batches of 128, plain vs vault, interleaved.
    const redis = ctx.connect();
    const vault = new RecordVault(redis, new StaticKeyWrapper([randomBytes(32)]));
    const plainLedger = createTestLedger(redis);
    const vaultLedger = createTestLedger(redis, undefined, { vault });
    const runs = { plain: [] as number[], vault: [] as number[] };
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, ledger] of [
        ['plain', plainLedger],
        ['vault', vaultLedger],
      ] as const) {
        const tenant = benchTenant(`vault-${name}-${rep}`);
        const start = nowNs();
        for (let b = 0; b < batches; b++) {
          await ledger.append(
            tenant,
            Array.from({ length: BATCH }, (_, i) =>
              contactChange(tenant, `r${(b * BATCH + i) % RECORDS}`),
            ),
          );
        }
        runs[name].push((secondsSince(start) * 1e6) / (batches * BATCH));
      }
    }
    await redis.quit();

    const usPlain = median(runs.plain);
    const usVault = median(runs.vault);
    const usCommit = 1e6 / cpu.commitments;
    const usSealNode = 1e6 / cpu.sealNode;
    const usSealNoble = 1e6 / cpu.sealNoble;
    const r = ctx.report('vault: per-event cost of commitments + encryption');
    r.add({
      key: 'vault_commit_seal_share',
      figure: 'commitments + seal (node:crypto) per event / end-to-end append with vault',
      value: usCommit + usSealNode,
      unit: 'µs/event',
      baseline: 'Ledger.append with vault, batch 128, µs/event',
      baselineValue: usVault,
      target: '< 0.10',
      met: (usCommit + usSealNode) / usVault < 0.1,
    });
    r.add({
      key: 'vault_seal_node',
      figure: 'seal one vault entry, node:crypto AES-256-GCM',
      value: usSealNode,
      unit: 'µs/event',
      baseline: '@noble/ciphers AES-256-GCM, same entry',
      baselineValue: usSealNoble,
    });
    r.add({
      key: 'vault_commitments',
      figure: 'prepareChange (15 field commitments + canonical text)',
      value: usCommit,
      unit: 'µs/event',
    });
    r.add({
      key: 'vault_append_overhead',
      figure: 'Ledger.append with vault per event',
      value: usVault,
      unit: 'µs/event',
      baseline: 'Ledger.append without vault (plain entries), same run',
      baselineValue: usPlain,
    });
    r.note(
      `medians of ${reps} interleaved repetitions of ${batches}×${BATCH} appends; CPU rates are medians of ${cpuOpts.reps} runs of ≥${cpuOpts.minMs} ms`,
    );
  },
};
