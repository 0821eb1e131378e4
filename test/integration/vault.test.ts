/**
 * The vault on a real Redis: entries sealed under per-record data keys before the append, opened
 * on reads; commitments hide values; a tampered or moved sealed entry is reported with its code.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connect, randomTenant } from '../helpers/redis.js';
import { contactChange, createTestLedger } from '../helpers/ledger.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { readRecordHistory } from '../../src/ledger/history.js';
import { buildEvidence, verifyEvidence } from '../../src/ledger/evidence.js';
import { formatVerifierKey } from '../../src/ledger/checkpoint.js';
import { LedgerKeys } from '../../src/ledger/keys.js';
import { RecordVault, SEALED_PREFIX } from '../../src/vault/vault.js';
import { StaticKeyWrapper } from '../../src/vault/key-wrapper.js';

let redis: Redis;
let ledger: Ledger;
let vault: RecordVault;
let tenant: string;
const open = (t: string, items: Parameters<RecordVault['open']>[1]) => vault.open(t, items);

beforeAll(async () => {
  redis = connect();
  vault = new RecordVault(redis, new StaticKeyWrapper([randomBytes(32)]));
  ledger = createTestLedger(redis, undefined, { vault });
  tenant = randomTenant();
  await ledger.append(tenant, [
    contactChange(tenant, 'a', { fields: { email: 'same@example.com', city: 'Paris' } }),
    contactChange(tenant, 'b', { fields: { email: 'same@example.com', city: 'Paris' } }),
    contactChange(tenant, 'a', { fields: { city: 'Lyon' } }),
  ]);
});
afterAll(async () => {
  await redis.quit();
});

describe('vault', () => {
  it('stores only sealed entries: no value and no salt in the vault segment', async () => {
    const entries = await ledger.store.readVaultSegment(tenant, 0);
    expect(entries).toHaveLength(3);
    for (const e of entries) {
      expect(e.startsWith(SEALED_PREFIX)).toBe(true);
      expect(e).not.toContain('same@example.com');
      expect(e).not.toContain('Paris');
    }
    // One data key per record, stored wrapped only.
    const keys = await redis.hgetall(new LedgerKeys(tenant).dataKeys);
    expect(Object.keys(keys).sort()).toEqual(['contact/a', 'contact/b']);
  });

  describe('when two records hold the same value', () => {
    it('commits to it with different commitments (salted)', async () => {
      const [a, b] = await ledger.readBlocks(tenant, [0, 1]);
      expect(a?.block.fields.email).toMatch(/^[0-9a-f]{64}$/);
      expect(a?.block.fields.email).not.toBe(b?.block.fields.email);
      expect(a?.block.fields.city).not.toBe(b?.block.fields.city);
    });
  });

  describe('when two vaults create the data keys of the same new records at once', () => {
    it('one key per record wins, both use it, and it is the one stored', async () => {
      const t = randomTenant();
      const master = randomBytes(32);
      const a = new RecordVault(redis, new StaticKeyWrapper([master]));
      const b = new RecordVault(redis, new StaticKeyWrapper([master]));
      const names = Array.from({ length: 50 }, (_, i) => `contact/n${i}`);
      // b already holds keys for the first ten: a must use those, not make new ones.
      const earlier = await b.keysFor(t, names.slice(0, 10));
      const [ka, kb] = await Promise.all([a.keysFor(t, names), b.keysFor(t, names.slice(5))]);
      const stored = await a.readWrapped(t, names);
      const fresh = new RecordVault(redis, new StaticKeyWrapper([master]));
      const reread = await fresh.keysFor(t, names);
      for (const [i, name] of names.entries()) {
        const key = Buffer.from(ka.get(name) as Uint8Array);
        expect(key.length).toBe(32);
        expect(stored[i]).toBeDefined();
        expect(key.equals(Buffer.from(reread.get(name) as Uint8Array))).toBe(true);
        if (i < 10) expect(key.equals(Buffer.from(earlier.get(name) as Uint8Array))).toBe(true);
        if (i >= 5) expect(key.equals(Buffer.from(kb.get(name) as Uint8Array))).toBe(true);
      }
      expect(new Set([...ka.values()].map((k) => Buffer.from(k).toString('hex'))).size).toBe(50);
    });
  });

  describe('when a change of a record whose key was destroyed (erased) is replayed', () => {
    it('is skipped as anchored and leaves no new key; a new change of the record gets one', async () => {
      const t = randomTenant();
      const first = contactChange(t, 'gone', { fields: { email: 'gone@example.com' } });
      const other = contactChange(t, 'kept', { fields: { email: 'kept@example.com' } });
      const done = await ledger.append(t, [first, other]);
      expect(done.anchored).toHaveLength(2);
      const dataKeys = new LedgerKeys(t).dataKeys;
      expect(await vault.destroyKey(t, 'contact/gone')).toBe(true);

      // The replay alone, then with a change of a new record in the same batch.
      const replay = await ledger.append(t, [first]);
      expect(replay.anchored).toEqual([]);
      expect(replay.skipped).toEqual([{ index: 0, seq: 0, code: 'ALREADY_ANCHORED' }]);
      const fresh = contactChange(t, 'new', { fields: { email: 'new@example.com' } });
      const mixed = await ledger.append(t, [first, fresh]);
      expect(mixed.skipped).toEqual([{ index: 0, seq: 0, code: 'ALREADY_ANCHORED' }]);
      expect(mixed.anchored.map((a) => a.index)).toEqual([1]);
      expect(await redis.hexists(dataKeys, 'contact/gone')).toBe(0);
      expect(await redis.hexists(dataKeys, 'contact/new')).toBe(1);
      expect((await ledger.verify(t)).ok).toBe(true);

      // A change the record has not had before is new data: it gets a new key, and it opens.
      const later = contactChange(t, 'gone', { fields: { email: 'back@example.com' } });
      const again = await ledger.append(t, [later]);
      expect(again.anchored).toHaveLength(1);
      expect(await redis.hexists(dataKeys, 'contact/gone')).toBe(1);
      const state = await ledger.recordState(t, 'contact/gone');
      expect(state.get('email')).toBe('back@example.com');
    });
  });

  it('opens the history with the data key, each value checked against its commitment', async () => {
    const h = await readRecordHistory(ledger.store, tenant, 'contact', 'a', { open });
    expect(h?.ok).toBe(true);
    expect(h?.blocks.map((b) => b.vault)).toEqual(['open', 'open']);
    expect(h?.blocks[0]?.fields.email).toMatchObject({ value: 'same@example.com', opened: true });
    expect(h?.blocks[1]?.fields.city).toMatchObject({ value: 'Lyon', opened: true });
    const state = await ledger.recordState(tenant, 'contact/a');
    expect(Object.fromEntries(state)).toEqual({ email: 'same@example.com', city: 'Lyon' });
  });

  it('gives auditors commitments without values when asked', async () => {
    const h = await readRecordHistory(ledger.store, tenant, 'contact', 'a', {
      open,
      values: false,
    });
    expect(h?.blocks[0]?.fields.email).toEqual({
      commitment: expect.stringMatching(/^[0-9a-f]{64}$/),
      opened: true,
    });
  });

  it('builds evidence bundles whose openings verify offline', async () => {
    const bundle = await buildEvidence(
      ledger.store,
      tenant,
      'contact',
      'a',
      ledger.verifiers,
      undefined,
      open,
    );
    const result = verifyEvidence(
      JSON.parse(JSON.stringify(bundle)),
      ledger.verifiers.map(formatVerifierKey),
    );
    expect(result).toMatchObject({ ok: true });
    if (result.ok) expect(result.changes[1]?.values).toMatchObject({ city: 'Lyon' });
  });

  describe('when a sealed entry is tampered with', () => {
    it('reports VAULT_DECRYPT_FAILED for that block; the chain still verifies', async () => {
      const t = randomTenant();
      await ledger.append(t, [contactChange(t, 'x'), contactChange(t, 'x')]);
      const key = new LedgerKeys(t).vaultSegment(0);
      const stored = (await redis.lindex(key, 1)) as string;
      const i = SEALED_PREFIX.length + 30;
      const flipped = stored.slice(0, i) + (stored[i] === 'A' ? 'B' : 'A') + stored.slice(i + 1);
      await redis.lset(key, 1, flipped);
      const h = await readRecordHistory(ledger.store, t, 'contact', 'x', { open });
      expect(h?.blocks.map((b) => b.vault)).toEqual(['open', 'VAULT_DECRYPT_FAILED']);
      expect(Object.values(h?.blocks[1]?.fields ?? {}).every((f) => !f.opened)).toBe(true);
      expect((await ledger.verify(t)).ok).toBe(true);
      const report = await vault.check(ledger.store, t);
      expect(report).toMatchObject({ ok: false, bad: [{ seq: 1, code: 'VAULT_DECRYPT_FAILED' }] });
    });
  });

  describe('when two sealed entries of a record are swapped', () => {
    it('neither opens (the associated data binds each to its seq)', async () => {
      const t = randomTenant();
      await ledger.append(t, [contactChange(t, 'x'), contactChange(t, 'x')]);
      const key = new LedgerKeys(t).vaultSegment(0);
      const [e0, e1] = (await redis.lrange(key, 0, 1)) as [string, string];
      await redis.lset(key, 0, e1);
      await redis.lset(key, 1, e0);
      const h = await readRecordHistory(ledger.store, t, 'contact', 'x', { open });
      expect(h?.blocks.map((b) => b.vault)).toEqual([
        'VAULT_DECRYPT_FAILED',
        'VAULT_DECRYPT_FAILED',
      ]);
    });
  });

  describe('when a sealed entry opens but does not match its block', () => {
    it('the checker reports COMMITMENT_MISMATCH', async () => {
      const t = randomTenant();
      await ledger.append(t, [contactChange(t, 'x', { fields: { city: 'Oslo' } })]);
      // Re-seal a forged entry with the real data key and the right binding.
      const [dk] = (await vault.keysFor(t, ['contact/x'])).values();
      const forged = vault.seal(
        t,
        0,
        'contact/x',
        dk as Uint8Array,
        `{"fields":{"city":{"salt":"${'00'.repeat(16)}","value":"Bergen"}},"v":1}`,
      );
      await redis.lset(new LedgerKeys(t).vaultSegment(0), 0, forged);
      const report = await vault.check(ledger.store, t);
      expect(report).toMatchObject({ ok: false, bad: [{ seq: 0, code: 'COMMITMENT_MISMATCH' }] });
    });
  });
});
