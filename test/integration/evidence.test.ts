/**
 * Evidence bundles: built from the real store, verified offline with the public key alone; every
 * kind of alteration fails, naming the block.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger, testSigner } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import {
  buildEvidence,
  buildEvidenceV1,
  compactEvidence,
  expandEvidence,
  tlogProof,
  tlogProofs,
  verifyEvidence,
} from '../../src/ledger/evidence.js';
import type { EvidenceBundleV1, EvidenceBundleV2 } from '../../src/ledger/evidence.js';
import { formatVerifierKey, verifierFromSigner } from '../../src/ledger/checkpoint.js';

let redis: Redis;
let ledger: Ledger;
const signer = testSigner();
const vkey = formatVerifierKey(verifierFromSigner(signer));
let tenant: string;
let bundle: EvidenceBundleV1;
let compact: EvidenceBundleV2;

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
  bundle = (await buildEvidenceV1(ledger.store, tenant, 'contact', 'the-one', ledger.verifiers))!;
  compact = (await buildEvidence(ledger.store, tenant, 'contact', 'the-one', ledger.verifiers))!;
});
afterAll(async () => {
  await redis.quit();
});

const clone = (): EvidenceBundleV1 => structuredClone(bundle);
const cloneV2 = (): EvidenceBundleV2 => structuredClone(compact);

describe('evidence bundle v2 (what buildEvidence makes)', () => {
  it('is under 8 KiB for 10 changes in a 500-block log, and expands to the v1 bundle', () => {
    expect(compact.format).toBe('crm-ledger/evidence@v2');
    expect(compact.entries.every((e) => e.row !== undefined && e.block === undefined)).toBe(true);
    const size = Buffer.byteLength(JSON.stringify(compact));
    expect(size).toBeLessThan(8 * 1024);
    expect(size).toBeLessThan(Buffer.byteLength(JSON.stringify(bundle)) * 0.7);
    const expanded = expandEvidence(compact);
    expect(expanded).toMatchObject({ ok: true });
    if (expanded.ok)
      expect({ ...expanded.bundle, createdAt: '' }).toEqual({ ...bundle, createdAt: '' });
    expect(compactEvidence(bundle)).toEqual({ ...compact, createdAt: bundle.createdAt });
  });

  it('verifies offline with the same statement as v1', () => {
    const r2 = verifyEvidence(JSON.parse(JSON.stringify(compact)), [vkey]);
    const r1 = verifyEvidence(bundle, [vkey]);
    expect(r2).toMatchObject({ ok: true, format: 'crm-ledger/evidence@v2', treeSize: 500 });
    expect(r1).toMatchObject({ ok: true, format: 'crm-ledger/evidence@v1' });
    if (r1.ok && r2.ok) {
      expect(r2.statement).toBe(r1.statement);
      expect(r2.changes).toEqual(r1.changes);
    }
  });

  it('fails on a changed block value, naming the block', () => {
    const b = cloneV2();
    b.entries[3]!.row![4] = 'delete';
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'PROOF_INVALID',
      seq: 175,
      entry: 3,
    });
  });

  it('fails on a block row of the wrong length or with a bad prev', () => {
    const b = cloneV2();
    b.entries[2]!.row!.push(125);
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'EVIDENCE_MALFORMED' });
    const c = cloneV2();
    c.entries[2]!.row![6] = 'not base64';
    expect(verifyEvidence(c, [vkey])).toMatchObject({
      ok: false,
      code: 'EVIDENCE_MALFORMED',
      seq: 125,
    });
  });

  it('fails when a change is left out (the derived record link no longer hashes)', () => {
    const b = cloneV2();
    b.entries.splice(4, 1);
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'PROOF_INVALID',
      seq: 275,
    });
  });

  it('fails on a changed shared proof node, and on a node position out of the table', () => {
    const b = cloneV2();
    const at = b.entries[0]!.proof[0]!;
    b.nodes[at] = Buffer.alloc(32, 7).toString('base64');
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'PROOF_INVALID', seq: 25 });
    const c = cloneV2();
    c.entries[1]!.proof[0] = c.nodes.length;
    expect(verifyEvidence(c, [vkey])).toMatchObject({
      ok: false,
      code: 'EVIDENCE_MALFORMED',
      seq: 75,
    });
  });

  it('fails on a changed value and on a changed first record link', () => {
    const b = cloneV2();
    b.entries[2]!.openings!['email']![0] = 'someone-else@example.com';
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'OPENING_INVALID' });
    const c = cloneV2();
    c.recordPrev = Buffer.alloc(32, 1).toString('base64');
    expect(verifyEvidence(c, [vkey])).toMatchObject({ ok: false, code: 'PROOF_INVALID', seq: 25 });
  });

  it('renders the same C2SP tlog-proofs as v1', () => {
    expect(tlogProofs(compact)).toEqual(bundle.entries.map((e) => tlogProof(bundle, e)));
  });
});

describe('evidence bundle v1 (still accepted)', () => {
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
