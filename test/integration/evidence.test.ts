/**
 * Evidence bundles: built from the real store, verified offline with the public key alone; every
 * kind of alteration fails, naming the block.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { buildEvidence, tlogProof, verifyEvidence } from '../../src/ledger/evidence.js';
import type { EvidenceBundle } from '../../src/ledger/evidence.js';
import { formatVerifierKey, verifierFromSigner } from '../../src/ledger/checkpoint.js';

let redis: Redis;
let ledger: Ledger;
const signer = testSigner();
const vkey = formatVerifierKey(verifierFromSigner(signer));
let tenant: string;
let bundle: EvidenceBundle;

beforeAll(async () => {
  redis = connect();
  ledger = createTestLedger(redis, signer);
  tenant = randomTenant();
  // Ten changes of one record among 500 others: one-field edits, as HubSpot sends them.
  let n = 0;
  for (let batch = 0; batch < 10; batch++) {
    const changes = Array.from({ length: 50 }, (_, i) =>
      contactChange(tenant, i === 25 ? 'the-one' : `other-${n++}`, {
        fields: { email: `v${batch}-${i}@example.com` },
      }),
    );
    await ledger.append(tenant, changes);
  }
  bundle = (await buildEvidence(ledger.store, tenant, 'contact', 'the-one', ledger.verifiers))!;
});
afterAll(async () => {
  await redis.quit();
});

const clone = (): EvidenceBundle => structuredClone(bundle);

describe('evidence bundle', () => {
  it('holds the record blocks, proofs to one signed checkpoint, openings and the key', () => {
    expect(bundle.entries).toHaveLength(10);
    expect(bundle.keys).toEqual([vkey]);
    expect(bundle.entries.map((e) => e.index)).toEqual(
      Array.from({ length: 10 }, (_, i) => i * 50 + 25),
    );
    // 10 one-field changes in a 500-block log: ~11.7 KB, of which the blocks' exact canonical
    // bytes are ~5.6 KB and the proofs ~4.2 KB (issue 9 aims at 8 KiB: not reached, see the note).
    const size = Buffer.byteLength(JSON.stringify(bundle));
    expect(size).toBeLessThan(12 * 1024);
  });

  it('verifies offline with the pinned key and says what it proves', () => {
    const result = verifyEvidence(JSON.parse(JSON.stringify(bundle)), [vkey]);
    expect(result).toMatchObject({
      ok: true,
      treeSize: 500,
      fromFirstBlock: true,
      keysFrom: 'argument',
    });
    if (!result.ok) return;
    expect(result.changes.map((c) => c.values['email'])).toEqual(
      Array.from({ length: 10 }, (_, i) => `v${i}-25@example.com`),
    );
    expect(result.statement).toContain('contact/the-one');
    expect(result.statement).toContain(
      '10 change(s), in this order, from its first anchored block',
    );
    expect(result.statement).toContain('tree size 500');
  });

  it('without --key it uses the bundle keys and says so', () => {
    const result = verifyEvidence(bundle);
    expect(result).toMatchObject({ ok: true, keysFrom: 'bundle' });
    if (result.ok) expect(result.statement).toContain('pin yours with --key');
  });

  it('fails on a changed block byte, naming the block', () => {
    const b = clone();
    const entry = b.entries[3]!;
    entry.block = entry.block.replace('"update"', '"delete"');
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'PROOF_INVALID',
      seq: 175,
      entry: 3,
    });
  });

  it('fails on a changed value (the commitment does not open)', () => {
    const b = clone();
    b.entries[2]!.openings!['email']![0] = 'someone-else@example.com';
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'OPENING_INVALID',
      seq: 125,
    });
  });

  it('fails when a change is left out (the record link breaks)', () => {
    const b = clone();
    b.entries.splice(4, 1);
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'RECORD_LINK_BROKEN',
      seq: 275,
    });
  });

  it('fails on a changed proof hash', () => {
    const b = clone();
    const proof = b.entries[0]!.proof;
    proof[0] = Buffer.alloc(32, 7).toString('base64');
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'PROOF_INVALID', seq: 25 });
  });

  it('fails with another key, and on a checkpoint of another tenant', () => {
    const other = formatVerifierKey(verifierFromSigner(testSigner()));
    expect(verifyEvidence(bundle, [other])).toMatchObject({
      ok: false,
      code: 'CHECKPOINT_INVALID',
    });
    const b = clone();
    b.tenant = randomTenant();
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'CHECKPOINT_INVALID' });
  });

  it('fails on blocks that are not canonical, and on garbage', () => {
    const b = clone();
    b.entries[1]!.block = b.entries[1]!.block.replace('{', '{ ');
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'BLOCK_NOT_CANONICAL' });
    expect(verifyEvidence({ hello: 1 })).toMatchObject({ ok: false, code: 'EVIDENCE_MALFORMED' });
    expect(verifyEvidence(undefined)).toMatchObject({ ok: false, code: 'EVIDENCE_MALFORMED' });
  });

  it('renders each block as a C2SP tlog-proof', () => {
    const text = tlogProof(bundle, bundle.entries[0]!);
    const lines = text.split('\n');
    expect(lines[0]).toBe('c2sp.org/tlog-proof@v1');
    expect(lines[1]).toBe('index 25');
    expect(lines.slice(2, 2 + bundle.entries[0]!.proof.length)).toEqual(bundle.entries[0]!.proof);
    expect(text).toContain(bundle.checkpoint.trimEnd());
  });
});
