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
  buildEvidenceV2,
  compactEvidence,
  expandEvidence,
  tlogProof,
  tlogProofs,
  verifyEvidence,
} from '../../src/ledger/evidence.js';
import type {
  EvidenceBundleV1,
  EvidenceBundleV2,
  EvidenceBundleV3,
} from '../../src/ledger/evidence.js';
import { formatVerifierKey, verifierFromSigner } from '../../src/ledger/checkpoint.js';
import {
  checkpointBody,
  cosignCheckpoint,
  formatWitnessKey,
  generateWitnessKey,
  parseWitnessSignerKey,
  witnessVerifierFromSigner,
} from '../../src/ledger/cosignature.js';

let redis: Redis;
let ledger: Ledger;
const signer = testSigner();
const vkey = formatVerifierKey(verifierFromSigner(signer));
let tenant: string;
let bundle: EvidenceBundleV1;
let compact: EvidenceBundleV2;
let v3: EvidenceBundleV3;

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
  compact = (await buildEvidenceV2(ledger.store, tenant, 'contact', 'the-one', ledger.verifiers))!;
  v3 = (await buildEvidence(ledger.store, tenant, 'contact', 'the-one', ledger.verifiers))!;
});
afterAll(async () => {
  await redis.quit();
});

const clone = (): EvidenceBundleV1 => structuredClone(bundle);
const cloneV2 = (): EvidenceBundleV2 => structuredClone(compact);

const cloneV3 = (): EvidenceBundleV3 => structuredClone(v3);
const SEQS = Array.from({ length: 10 }, (_, i) => i * 50 + 25);

describe('evidence bundle v3 (compact: what buildEvidence makes)', () => {
  it('holds the blocks as rows and one inclusion proof, the newest block’s, under 8 KiB', () => {
    expect(v3.format).toBe('crm-ledger/evidence@v3');
    expect(v3.entries.map((e) => e.index)).toEqual(SEQS);
    expect(v3.entries.every((e) => e.row !== undefined && e.block === undefined)).toBe(true);
    expect(v3.proof.index).toBe(475);
    expect(v3.proof.hashes).toEqual(bundle.entries[9]!.proof);
    const size = Buffer.byteLength(JSON.stringify(v3));
    expect(size).toBeLessThan(8 * 1024);
    expect(size).toBeLessThan(Buffer.byteLength(JSON.stringify(compact)));
  });

  it('verifies offline: the same changes as v1, inclusion "newest", and says what that proves', () => {
    const r = verifyEvidence(JSON.parse(JSON.stringify(v3)), [vkey]);
    const r1 = verifyEvidence(bundle, [vkey]);
    expect(r).toMatchObject({
      ok: true,
      format: 'crm-ledger/evidence@v3',
      inclusion: 'newest',
      treeSize: 500,
      fromFirstBlock: true,
      cosignedBy: [],
      witnessKeysFrom: 'none',
    });
    if (!r.ok || !r1.ok) return;
    expect(r.changes).toEqual(r1.changes);
    expect(r.statement).toContain('contact/the-one');
    expect(r.statement).toContain('10 change(s), in this order, from its first anchored block');
    expect(r.statement).toContain('The newest (#475) is included in the log');
    expect(r.statement).toContain('the 9 earlier block(s) are the ones the newest commits to');
    expect(r.statement).toContain('not proven by this bundle alone');
  });

  it('renders its one proof as a C2SP tlog-proof', () => {
    expect(tlogProofs(v3)).toEqual([tlogProof(bundle, bundle.entries[9]!)]);
    expect(tlogProof(v3).split('\n').slice(0, 2)).toEqual(['c2sp.org/tlog-proof@v1', 'index 475']);
  });

  it('fails naming the block for any one character changed in any block', () => {
    let tried = 0;
    for (const [i, entry] of v3.entries.entries()) {
      const text = JSON.stringify(entry.row);
      for (let p = 0; p < text.length; p++) {
        const c = text[p]!;
        const other = /[0-9]/.test(c)
          ? String((Number(c) + 1) % 10)
          : /[a-y]/i.test(c)
            ? String.fromCharCode(c.charCodeAt(0) + 1)
            : /[zZ]/.test(c)
              ? 'a'
              : undefined;
        if (other === undefined) continue;
        let row: unknown[];
        try {
          row = JSON.parse(text.slice(0, p) + other + text.slice(p + 1)) as unknown[];
        } catch {
          continue;
        }
        const b = cloneV3();
        b.entries[i]!.row = row;
        const r = verifyEvidence(b, [vkey]);
        expect(r.ok, `entry ${i}, character ${p}`).toBe(false);
        if (!r.ok) expect([r.seq, r.entry], `${r.code}: ${r.reason}`).toEqual([entry.index, i]);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(1000);
  }, 60_000);

  it('names the block in the reason: the newest by its proof, an earlier one by its link', () => {
    const b = cloneV3();
    b.entries[9]!.row![4] = 'delete';
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'PROOF_INVALID', seq: 475 });
    const c = cloneV3();
    c.entries[3]!.row![4] = 'delete';
    const r = verifyEvidence(c, [vkey]);
    expect(r).toMatchObject({ ok: false, code: 'RECORD_LINK_BROKEN', seq: 175, entry: 3 });
    if (!r.ok) expect(r.reason).toMatch(/^block #175: its hash is not the recordPrev of .* #225/);
  });

  it('fails on a forged earlier block that is not the one the newest commits to', () => {
    // A consistent-looking block of the same record (its own links intact), but another change.
    const b = cloneV3();
    const forged = [...b.entries[5]!.row!];
    forged[2] = 'evt-forged';
    forged[1] = '2026-11-26T00:00:00.000Z';
    b.entries[5]!.row = forged;
    delete b.entries[5]!.openings;
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'RECORD_LINK_BROKEN',
      seq: 275,
    });
    // Another record's block (its real bytes) put in the record's place.
    const c = cloneV3();
    c.entries[4] = { ...c.entries[4]!, block: bundle.entries[5]!.block };
    delete c.entries[4].row;
    expect(verifyEvidence(c, [vkey])).toMatchObject({ ok: false, seq: 225, entry: 4 });
  });

  it('fails when a change is left out, naming the block before the gap', () => {
    const b = cloneV3();
    b.entries.splice(4, 1);
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'RECORD_LINK_BROKEN',
      seq: 175,
    });
  });

  it('accepts a suffix of the history and says it does not start at the first block', () => {
    const b = cloneV3();
    b.entries.splice(0, 3);
    const r = verifyEvidence(b, [vkey]);
    expect(r).toMatchObject({ ok: true, fromFirstBlock: false });
    if (r.ok)
      expect(r.statement).toContain('7 change(s), in this order (not from its first block)');
  });

  it('fails on a changed proof hash, a proof for another index, and non-canonical base64', () => {
    const b = cloneV3();
    b.proof.hashes[0] = Buffer.alloc(32, 7).toString('base64');
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'PROOF_INVALID', seq: 475 });
    const c = cloneV3();
    c.proof.index = 425;
    expect(verifyEvidence(c, [vkey])).toMatchObject({
      ok: false,
      code: 'EVIDENCE_MALFORMED',
      seq: 475,
    });
    // The last base64 character of a hash carries 2 padding bits: another spelling of the same
    // bytes is refused, so every changed character of a bundle counts.
    const d = cloneV3();
    const h = d.proof.hashes[0]!;
    const last = h[42]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    d.proof.hashes[0] = h.slice(0, 42) + alphabet[alphabet.indexOf(last) ^ 1] + '=';
    expect(Buffer.from(d.proof.hashes[0], 'base64')).toEqual(Buffer.from(h, 'base64'));
    expect(verifyEvidence(d, [vkey])).toMatchObject({ ok: false, code: 'EVIDENCE_MALFORMED' });
  });

  it('fails on a changed value, and with another key', () => {
    const b = cloneV3();
    b.entries[2]!.openings!['email']![0] = 'someone-else@example.com';
    expect(verifyEvidence(b, [vkey])).toMatchObject({
      ok: false,
      code: 'OPENING_INVALID',
      seq: 125,
    });
    const other = formatVerifierKey(verifierFromSigner(testSigner()));
    expect(verifyEvidence(v3, [other])).toMatchObject({ ok: false, code: 'CHECKPOINT_INVALID' });
  });
});

describe('evidence bundle v3 with witness cosignatures', () => {
  const witness = parseWitnessSignerKey(generateWitnessKey('witness.test/ev').skey);
  const witnessVkey = formatWitnessKey(witnessVerifierFromSigner(witness));
  let cosigned: EvidenceBundleV3;
  let cosignedSize: number;

  beforeAll(async () => {
    const latest = (await ledger.store.latestCheckpoint(tenant))!;
    const line = cosignCheckpoint(checkpointBody(latest.note).body, witness, 1_790_000_000).line;
    await ledger.store.addCosignature(tenant, {
      witness: witness.name,
      size: latest.size,
      timestamp: 1_790_000_000,
      line,
      receivedAt: new Date().toISOString(),
    });
    cosignedSize = latest.size;
    // The log grows past the cosigned checkpoint with other records' changes only.
    await ledger.append(tenant, [contactChange(tenant, 'someone-later')]);
    cosigned = (await buildEvidence(
      ledger.store,
      tenant,
      'contact',
      'the-one',
      ledger.verifiers,
      undefined,
      undefined,
      [witnessVerifierFromSigner(witness)],
    ))!;
  });

  it('uses the cosigned checkpoint that covers the same blocks, with the cosignature and key', async () => {
    expect((await ledger.store.latestCheckpoint(tenant))!.size).toBe(cosignedSize + 1);
    expect(cosigned.witnessKeys).toEqual([witnessVkey]);
    expect(cosigned.checkpoint.split('\n').filter((l) => l.startsWith('\u2014 '))).toHaveLength(2);
    expect(cosigned.entries.map((e) => e.index)).toEqual(SEQS);
    expect(tlogProofs(cosigned)[0]).toContain(`\u2014 ${witness.name} `);
  });

  it('verifies: cosigned by the witness, and the statement says what the witness vouches for', () => {
    const r = verifyEvidence(cosigned, [vkey]);
    expect(r).toMatchObject({
      ok: true,
      inclusion: 'newest',
      treeSize: cosignedSize,
      cosignedBy: [witnessVkey.split('+').slice(0, 2).join('+')],
      witnessKeysFrom: 'bundle',
    });
    if (!r.ok) return;
    expect(r.statement).toContain('cosigned by the witness(es) witness.test/ev+');
    expect(r.statement).toContain('pin yours with --witness-key');
    expect(r.statement).toContain("vouched for by the witnesses' cosignatures");
    const pinned = verifyEvidence(cosigned, [vkey], { witnessKeys: [witnessVkey] });
    expect(pinned).toMatchObject({ ok: true, witnessKeysFrom: 'argument' });
    if (pinned.ok) expect(pinned.statement).not.toContain('pin yours with --witness-key');
  });

  it('with another witness key pinned the cosignature is unchecked, not trusted', () => {
    const other = generateWitnessKey('witness.test/other').vkey;
    const r = verifyEvidence(cosigned, [vkey], { witnessKeys: [other] });
    expect(r).toMatchObject({ ok: true, cosignedBy: [], uncheckedCosignatures: 1 });
    if (r.ok) expect(r.statement).toContain('not proven by this bundle alone');
  });

  it('counts each witness once, and a cosignature by a witness not pinned as unchecked', () => {
    const second = parseWitnessSignerKey(generateWitnessKey('witness.test/ev2').skey);
    const secondVkey = formatWitnessKey(witnessVerifierFromSigner(second));
    const b = structuredClone(cosigned);
    const body = checkpointBody(b.checkpoint).body;
    b.checkpoint += cosignCheckpoint(body, second, 1_790_000_100).line + '\n';
    // The first witness again, a later timestamp: still one witness.
    b.checkpoint += cosignCheckpoint(body, witness, 1_790_000_200).line + '\n';
    b.witnessKeys = [...b.witnessKeys!, secondVkey];
    const both = verifyEvidence(b, [vkey]);
    expect(both).toMatchObject({ ok: true, uncheckedCosignatures: 0 });
    if (both.ok) expect(both.cosignedBy).toHaveLength(2);
    const one = verifyEvidence(b, [vkey], { witnessKeys: [witnessVkey] });
    expect(one).toMatchObject({ ok: true, uncheckedCosignatures: 1, witnessKeysFrom: 'argument' });
    if (one.ok) expect(one.cosignedBy).toEqual([witnessVkey.split('+').slice(0, 2).join('+')]);
  });

  it('fails on a changed cosignature', () => {
    const b = structuredClone(cosigned);
    const lines = b.checkpoint.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`\u2014 ${witness.name} `));
    const sig = lines[at]!;
    const blob = Buffer.from(sig.slice(sig.lastIndexOf(' ') + 1), 'base64');
    blob[blob.length - 1]! ^= 1;
    lines[at] = sig.slice(0, sig.lastIndexOf(' ') + 1) + blob.toString('base64');
    b.checkpoint = lines.join('\n');
    expect(verifyEvidence(b, [vkey])).toMatchObject({ ok: false, code: 'COSIGNATURE_INVALID' });
  });

  it('without witness keys the builder leaves cosignatures out and uses the latest checkpoint', async () => {
    const plain = (await buildEvidence(
      ledger.store,
      tenant,
      'contact',
      'the-one',
      ledger.verifiers,
    ))!;
    expect(plain.witnessKeys).toBeUndefined();
    expect(verifyEvidence(plain, [vkey])).toMatchObject({ ok: true, treeSize: cosignedSize + 1 });
  });
});

describe('evidence bundle v2 (per-block proofs: buildEvidenceV2, ?proofs=all)', () => {
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
    expect(r2).toMatchObject({
      ok: true,
      format: 'crm-ledger/evidence@v2',
      treeSize: 500,
      inclusion: 'each',
    });
    expect(r1).toMatchObject({ ok: true, format: 'crm-ledger/evidence@v1', inclusion: 'each' });
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
