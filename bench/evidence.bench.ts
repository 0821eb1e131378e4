/**
 * Evidence bundles (issue 9): the size of a bundle for a record with 10 changes, and the time to
 * verify it offline (verifyEvidence: canonical check, noble SHA-256 leaf hashes, inclusion proofs,
 * the checkpoint's Ed25519 signature, commitment openings). Baseline, same run: the noble leaf
 * hashes of the same 10 blocks alone; and the same bundle in the old format v1 (size, verify time).
 */
import { buildEvidence, buildEvidenceV1, verifyEvidence } from '../src/ledger/evidence.js';
import {
  formatVerifierKey,
  generateLedgerKey,
  parseSignerKey,
  verifierFromSigner,
} from '../src/ledger/checkpoint.js';
import { leafHash, sha256Reference } from '../src/ledger/hash.js';
import { Ledger } from '../src/ledger/ledger.js';
import { RedisLedgerStore } from '../src/ledger/store.js';
import { median, nowNs, percentile, secondsSince, sink } from './lib.js';
import type { Bench } from './lib.js';

export const evidenceBench: Bench = {
  name: 'evidence',
  description: 'evidence bundle size and offline verification time',
  async run(ctx) {
    const signer = parseSignerKey(generateLedgerKey('bench.crm-ledger').skey);
    const verifier = verifierFromSigner(signer);
    const ledger = new Ledger(new RedisLedgerStore(ctx.connect()), {
      origin: 'bench.crm-ledger',
      signer,
      verifiers: [verifier],
    });
    const t = ctx.report('evidence bundle: a record with 10 one-field changes');
    for (const size of ctx.quick ? [500] : [500, 100_000]) {
      const tenant = `hubspot:evidence-${size}-${Date.now()}`;
      const perBatch = size / 10;
      for (let b = 0; b < 10; b++) {
        const changes = [];
        for (let i = 0; i < perBatch; i++) {
          changes.push({
            event: {
              tenant,
              source: 'hubspot' as const,
              object: 'contact',
              recordId: i === 0 ? 'the-one' : `r${b}-${i}`,
              eventId: `e${b}-${i}`,
              kind: 'update' as const,
              actor: { type: 'user', id: 'hubspot:user:7' },
              occurredAt: new Date(Date.UTC(2026, 10, 26, 12, b, i % 60)).toISOString(),
              fields: { email: `v${b}-${i}@example.com` },
            },
            idempotencyKey: `ev|${tenant}|${b}|${i}`,
            verdicts: [],
          });
        }
        for (let k = 0; k < changes.length; k += 1000)
          await ledger.append(tenant, changes.slice(k, k + 1000));
      }
      const bundle = await buildEvidence(ledger.store, tenant, 'contact', 'the-one', [verifier]);
      if (!bundle) throw new Error('no bundle');
      const bytes = Buffer.byteLength(JSON.stringify(bundle));
      const v1 = await buildEvidenceV1(ledger.store, tenant, 'contact', 'the-one', [verifier]);
      const bytesV1 = Buffer.byteLength(JSON.stringify(v1));
      const inputV1 = JSON.parse(JSON.stringify(v1)) as unknown;
      const runsV1: number[] = [];
      const keys = [formatVerifierKey(verifier)];
      const input = JSON.parse(JSON.stringify(bundle)) as unknown;
      const runs: number[] = [];
      const raw: number[] = [];
      const blocks = (v1?.entries ?? []).map((e) => new TextEncoder().encode(e.block));
      for (let i = 0; i < (ctx.quick ? 50 : 300); i++) {
        let s = nowNs();
        const r = verifyEvidence(input, keys);
        runs.push(secondsSince(s) * 1e3);
        if (!r.ok) throw new Error(r.reason);
        s = nowNs();
        for (const b of blocks) sink(leafHash(b, sha256Reference));
        raw.push(secondsSince(s) * 1e3);
        s = nowNs();
        sink(verifyEvidence(inputV1, keys));
        runsV1.push(secondsSince(s) * 1e3);
      }
      t.add({
        key: `evidence_bytes_${size}`,
        figure: `bundle size, log of ${size.toLocaleString('en-US')} blocks`,
        value: bytes,
        unit: 'bytes',
        baseline: 'format v1, same record',
        baselineValue: bytesV1,
        target: '< 8 KiB',
        met: bytes < 8192,
      });
      t.add({
        key: `evidence_verify_ms_${size}`,
        figure: `verify-evidence median (p99 ${percentile(runs, 99).toFixed(2)} ms), log of ${size.toLocaleString('en-US')}`,
        value: median(runs),
        unit: 'ms',
        baseline: '10 noble leaf hashes',
        baselineValue: median(raw),
        target: '< 5 ms',
        met: median(runs) < 5,
      });
      t.add({
        key: `evidence_verify_ms_v1_${size}`,
        figure: `verify-evidence of the v1 bundle, median (p99 ${percentile(runsV1, 99).toFixed(2)} ms), log of ${size.toLocaleString('en-US')}`,
        value: median(runsV1),
        unit: 'ms',
        baseline: '10 noble leaf hashes',
        baselineValue: median(raw),
      });
    }
  },
};
