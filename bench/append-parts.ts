/**
 * CPU per block of the append path's pieces, one thread, no Redis: `npx tsx bench/append-parts.ts`
 * (add `--quick` for shorter runs). What bench/append.bench.ts measures end to end, split so that a
 * change to one piece can be measured on its own:
 *
 * - prepare: prepareChange of a 15-field contact change (zod, 15 commitments, vault text);
 * - build:   buildBlock of a prepared change (block bytes in the arena, leaf hash);
 * - seal:    RecordVault.sealBytes of the block's vault entry (AES-256-GCM, base64url, stored form);
 * - encode:  ioredis's encoding of the appendBlocks command for a batch of 128 built blocks
 *            (Command#toWritable, what the client does before writing to the socket), per block;
 * - chain:   prepare + build + seal of one change, as the appender runs them;
 * - clone to / from a worker: v8.serialize + deserialize (what postMessage does) of a batch of 128
 *            requests, and of their prepared changes with the arena bytes copied out, per change:
 *            what moving prepareChange to worker threads would add.
 *
 * Raw baseline, same run: canonicalize + SHA-256 of the same ~1 KB block (append.bench.ts's
 * "raw CPU"). Every figure is interleaved with the others, repetition by repetition, and printed
 * as µs per block and as a multiple of the baseline. Time is this process's CPU time
 * (process.cpuUsage, GC threads included), not wall time: on a shared machine a descheduled
 * thread would otherwise count as slow code.
 */
import { randomBytes } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import { Command, Redis } from 'ioredis';
import type { AnchorRequest, BuiltBlock, PreparedChange } from '../src/ledger/block.js';
import { buildBlock, prepareChange } from '../src/ledger/block.js';
import { canonicalize } from '../src/ledger/canonical.js';
import { leafHash, sha256 } from '../src/ledger/hash.js';
import { StaticKeyWrapper } from '../src/vault/key-wrapper.js';
import { RecordVault } from '../src/vault/vault.js';
import { contactChange } from '../test/helpers/ledger.js';
import { cpuRates, out, sink } from './lib.js';
import { ANCHORED_AT, SAMPLE_TENANT, sampleBlock } from './samples.js';

const POOL = 4096;
const BATCH = 128;

function main(): void {
  const quick = process.argv.includes('--quick');
  const opts = {
    ...(quick ? { minMs: 150, reps: 5 } : { minMs: 500, reps: 7 }),
    clock: 'cpu' as const,
  };
  const requests: AnchorRequest[] = Array.from({ length: POOL }, (_, i) =>
    contactChange(SAMPLE_TENANT, `c${i}`),
  );
  const prepared: PreparedChange[] = requests.map((r) => prepareChange(r));
  const prev = 'ab'.repeat(32);
  const recordPrev = 'cd'.repeat(32);
  const built: BuiltBlock[] = prepared.map((c, i) =>
    buildBlock(c, 1_000_000 + i, prev, recordPrev, ANCHORED_AT),
  );
  // seal() does no I/O: the client is never connected.
  const redis = new Redis({ lazyConnect: true });
  const vault = new RecordVault(redis, new StaticKeyWrapper([randomBytes(32)]));
  const key = randomBytes(32);
  const sealed = built.map((b) => vault.sealBytes(SAMPLE_TENANT, b.seq, b.recordKey, key, b.vault));
  // The appendBlocks arguments of one batch, as store.append builds them (keys and tree omitted:
  // they are the same whatever the blocks hold).
  const batchArgs = (from: number): (string | number | Buffer)[] => {
    const args: (string | number | Buffer)[] = [1_000_000, prev, prev, BATCH, 1, 0, 4096];
    for (let j = 0; j < BATCH; j++) {
      const b = built[(from + j) % POOL] as BuiltBlock;
      const v = sealed[(from + j) % POOL] as (typeof sealed)[number];
      args.push(b.encoded, b.idemField, `${b.seq}:${b.hashHex}`, v);
    }
    return args;
  };
  const batches = Array.from({ length: POOL / BATCH }, (_, i) => batchArgs(i * BATCH));
  const { object } = sampleBlock();
  const toWorker = requests.slice(0, BATCH);
  const fromWorker = prepared.slice(0, BATCH).map((p) => ({
    event: p.event,
    idemField: p.idemField,
    recordKey: p.recordKey,
    verdicts: p.verdicts,
    // slices of a shared arena cannot be transferred one by one: they would be copied
    vault: new Uint8Array(p.vault),
    canon: {
      head: new Uint8Array(p.canon.head),
      mid: new Uint8Array(p.canon.mid),
      tail1: new Uint8Array(p.canon.tail1),
      tail2: new Uint8Array(p.canon.tail2),
    },
  }));

  let i = 0;
  let e = 0;
  const rates = cpuRates(
    {
      raw: () => sink(leafHash(Buffer.from(canonicalize(object), 'utf8'), sha256)),
      prepare: () => sink(prepareChange(requests[i++ & (POOL - 1)] as AnchorRequest)),
      build: () => {
        const n = i++ & (POOL - 1);
        sink(buildBlock(prepared[n] as PreparedChange, n, prev, recordPrev, ANCHORED_AT).hash);
      },
      seal: () => {
        const b = built[i++ & (POOL - 1)] as BuiltBlock;
        sink(vault.sealBytes(SAMPLE_TENANT, b.seq, b.recordKey, key, b.vault));
      },
      // one call encodes a whole batch: its rate is divided by BATCH below
      encode: () => {
        const cmd = new Command('evalsha', [
          'f'.repeat(40),
          2,
          'k1',
          'k2',
          ...(batches[e++ % batches.length] as (string | number | Buffer)[]),
        ]);
        sink(cmd.toWritable(undefined as never));
      },
      chain: () => {
        const n = i++ & (POOL - 1);
        const b = buildBlock(
          prepareChange(requests[n] as AnchorRequest),
          n,
          prev,
          recordPrev,
          ANCHORED_AT,
        );
        sink(vault.sealBytes(SAMPLE_TENANT, b.seq, b.recordKey, key, b.vault));
      },
      cloneTo: () => sink(deserialize(serialize(toWorker)) as object),
      cloneFrom: () => sink(deserialize(serialize(fromWorker)) as object),
    },
    opts,
  );
  const us = (rate: number, per = 1) => 1e6 / (rate * per);
  const base = us(rates.raw);
  const row = (name: string, v: number) =>
    out(`  ${name.padEnd(44)} ${v.toFixed(2).padStart(7)} µs/block  ${(v / base).toFixed(2)}× raw`);
  out(`append parts, CPU per block, one thread (median of ${opts.reps} interleaved runs)`);
  row('raw: canonicalize + SHA-256 of the block', base);
  row('prepareChange', us(rates.prepare));
  row('buildBlock', us(rates.build));
  row('RecordVault.sealBytes', us(rates.seal));
  row(`ioredis command encoding (batch ${BATCH})`, us(rates.encode, BATCH));
  row('prepare + build + seal', us(rates.chain));
  row(`clone to a worker (batch ${BATCH} requests)`, us(rates.cloneTo, BATCH));
  row(`clone back (batch ${BATCH} prepared changes)`, us(rates.cloneFrom, BATCH));
  redis.disconnect();
}

main();
