/**
 * Proofs on the long chain. Generation from Redis, as the admin API serves them: plan
 * (inclusionProofRefs / consistencyProofRefs), one pipelined read of the stored nodes
 * (store.readNodes), assembleProof. Verification: verifyInclusion / verifyConsistency (pure).
 *
 * Baselines, same run: one Redis round trip (PING) for generation, one SHA-256 of 64 bytes (a
 * Merkle node hash) for verification. Each proof is timed on its own, sequentially; medians.
 */
import { sha256 } from '../src/ledger/hash.js';
import {
  assembleProof,
  consistencyProofRefs,
  inclusionProofRefs,
  verifyConsistency,
  verifyInclusion,
} from '../src/ledger/merkle.js';
import type { NodeRef, ProofPlan } from '../src/ledger/merkle.js';
import type { RedisLedgerStore } from '../src/ledger/store.js';
import { cpuRates, createRng, median, nowNs, percentile, secondsSince, sink } from './lib.js';
import type { Bench, Report } from './lib.js';

async function proofFromStore(
  store: RedisLedgerStore,
  tenant: string,
  plan: ProofPlan,
): Promise<Uint8Array[]> {
  const flat = plan.flat();
  const nodes = await store.readNodes(tenant, flat);
  const table = new Map<string, Uint8Array>();
  flat.forEach((ref, i) => table.set(`${ref.level}/${ref.index}`, nodes[i] as Uint8Array));
  return assembleProof(
    plan,
    (ref: NodeRef) => table.get(`${ref.level}/${ref.index}`) as Uint8Array,
  );
}

function timeUs(fn: () => void): number {
  const t = nowNs();
  fn();
  return secondsSince(t) * 1e6;
}

async function timeUsAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = nowNs();
  await fn();
  return secondsSince(t) * 1e6;
}

/** proofs per interleaving chunk (PING chunk, inclusion chunk, consistency chunk) */
const CHUNK = 50;

export const proofBench: Bench = {
  name: 'proof',
  aliases: ['proofs'],
  description: 'inclusion/consistency proof generation (from Redis) and verification µs',
  async run(ctx) {
    const fx = await ctx.chain();
    const n = ctx.quick ? 500 : 3000;
    const rng = createRng(11);
    const size = fx.size;
    const verifier = fx.ledger.verifier(fx.tenant);
    const root = await verifier.rootAt(size);
    const pick = () => Math.floor(rng() * size);

    const indices = Array.from({ length: n }, pick);
    const olds = Array.from({ length: n }, () => 1 + Math.floor(rng() * (size - 1)));
    const leaves = await fx.store.readNodes(
      fx.tenant,
      indices.map((index) => ({ level: 0, index })),
    );
    const oldRoots = await Promise.all(olds.map((m) => verifier.rootAt(m)));

    // Warm-up, then generation interleaved with the PING baseline in chunks of CHUNK, so that
    // a noisy neighbour hits both alike.
    for (let i = 0; i < 100; i++) {
      await fx.redis.ping();
      await proofFromStore(fx.store, fx.tenant, inclusionProofRefs(pick(), size));
      await proofFromStore(fx.store, fx.tenant, consistencyProofRefs(1 + pick(), size));
    }
    const pings: number[] = [];
    const genIncl: number[] = [];
    const genCons: number[] = [];
    const proofs: Uint8Array[][] = [];
    const cproofs: Uint8Array[][] = [];
    for (let from = 0; from < n; from += CHUNK) {
      const to = Math.min(n, from + CHUNK);
      for (let i = from; i < to; i++) pings.push(await timeUsAsync(() => fx.redis.ping()));
      for (let i = from; i < to; i++) {
        const index = indices[i] as number;
        let proof: Uint8Array[] = [];
        genIncl.push(
          await timeUsAsync(async () => {
            proof = await proofFromStore(fx.store, fx.tenant, inclusionProofRefs(index, size));
          }),
        );
        proofs.push(proof);
      }
      for (let i = from; i < to; i++) {
        const m = olds[i] as number;
        let proof: Uint8Array[] = [];
        genCons.push(
          await timeUsAsync(async () => {
            proof = await proofFromStore(fx.store, fx.tenant, consistencyProofRefs(m, size));
          }),
        );
        cproofs.push(proof);
      }
    }
    const pingUs = median(pings);

    // Verification (pure), each proof timed on its own; the first pass is the warm-up.
    const node64 = new Uint8Array(64).fill(1);
    const verIncl: number[] = [];
    const verCons: number[] = [];
    const shaRates: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      shaRates.push(cpuRates({ sha: () => sink(sha256(node64)) }, { minMs: 100, reps: 1 }).sha);
      indices.forEach((index, i) => {
        const us = timeUs(() =>
          verifyInclusion(leaves[i] as Uint8Array, index, size, proofs[i] as Uint8Array[], root),
        );
        if (rep > 0) verIncl.push(us);
      });
      olds.forEach((m, i) => {
        const us = timeUs(() =>
          verifyConsistency(m, size, cproofs[i] as Uint8Array[], oldRoots[i] as Uint8Array, root),
        );
        if (rep > 0) verCons.push(us);
      });
    }
    const shaUs = 1e6 / median(shaRates);
    const inclLen = median(proofs.map((p) => p.length));
    const consLen = median(cproofs.map((p) => p.length));
    const consNodes = median(olds.map((m) => consistencyProofRefs(m, size).flat().length));

    const t = ctx.report(
      `proofs on the ${size.toLocaleString('en-US')}-block tree (µs per proof, sequential, median of ${n}; ratio = proof / baseline)`,
    );
    const row = (r: Report, key: string, figure: string, xs: number[], base: 'ping' | 'sha') =>
      r.add({
        key,
        figure,
        value: median(xs),
        unit: 'µs',
        baseline: base === 'ping' ? 'PING round trip' : 'SHA-256 of 64 B',
        baselineValue: base === 'ping' ? pingUs : shaUs,
      });
    row(t, 'inclusion_gen_us', `inclusion proof generation (${inclLen} hashes)`, genIncl, 'ping');
    t.add({
      key: 'inclusion_gen_p99_us',
      figure: '  p99',
      value: percentile(genIncl, 99),
      unit: 'µs',
      baseline: 'PING p99',
      baselineValue: percentile(pings, 99),
    });
    row(t, 'inclusion_verify_us', 'inclusion proof verification', verIncl, 'sha');
    row(
      t,
      'consistency_gen_us',
      `consistency proof generation (${consLen} hashes, ${consNodes} nodes read)`,
      genCons,
      'ping',
    );
    t.add({
      key: 'consistency_gen_p99_us',
      figure: '  p99',
      value: percentile(genCons, 99),
      unit: 'µs',
      baseline: 'PING p99',
      baselineValue: percentile(pings, 99),
    });
    row(t, 'consistency_verify_us', 'consistency proof verification', verCons, 'sha');
    t.add({ key: 'ping_us', figure: 'baseline: PING round trip', value: pingUs, unit: 'µs' });
    t.add({ key: 'sha256_64B_us', figure: 'baseline: SHA-256 of 64 B', value: shaUs, unit: 'µs' });
  },
};
