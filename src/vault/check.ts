/**
 * The vault check: every block's vault entry opens (sealed entries with the record's data key)
 * and opens each of the block's commitments. The chain verifier never reads the vault (a chain
 * verifies after an erasure); this is the other half: values held beside the chain are the
 * anchored ones. Erased entries are counted, not errors.
 */
import { commitmentMatches, recordKeyOf } from '../ledger/block.js';
import type { Block } from '../ledger/block.js';
import { SEGMENT_SIZE } from '../ledger/keys.js';
import type { RedisLedgerStore } from '../ledger/store.js';
import type { VaultItem, VaultOpenResult } from './types.js';

export type VaultCheckCode =
  | 'VAULT_DECRYPT_FAILED'
  | 'VAULT_KEY_MISSING'
  | 'VAULT_ENTRY_MISSING'
  | 'COMMITMENT_MISMATCH'
  | 'BLOCK_UNREADABLE';

export interface VaultCheckReport {
  ok: boolean;
  tenant: string;
  checked: number;
  erased: number;
  bad: { seq: number; code: VaultCheckCode; message: string }[];
}

export async function checkVault(
  store: RedisLedgerStore,
  open: (tenant: string, items: readonly VaultItem[]) => Promise<VaultOpenResult[]>,
  tenant: string,
  options: { maxBad?: number } = {},
): Promise<VaultCheckReport> {
  const maxBad = options.maxBad ?? 100;
  const head = await store.readHead(tenant);
  const report: VaultCheckReport = { ok: true, tenant, checked: 0, erased: 0, bad: [] };
  for (let n = 0; n * SEGMENT_SIZE < head.size; n++) {
    const [blocks, entries] = await Promise.all([
      store.readSegment(tenant, n),
      store.readVaultSegment(tenant, n),
    ]);
    const parsed: (Block | undefined)[] = blocks.map((b) => {
      try {
        return JSON.parse(b.toString('utf8')) as Block;
      } catch {
        return undefined;
      }
    });
    const items: VaultItem[] = parsed.map((b, i) => ({
      seq: n * SEGMENT_SIZE + i,
      recordKey: b?.record ? recordKeyOf(b.record) : '',
      stored: entries[i],
    }));
    const opened = await open(tenant, items);
    for (let i = 0; i < items.length; i++) {
      const seq = n * SEGMENT_SIZE + i;
      const block = parsed[i];
      const state = opened[i] as VaultOpenResult;
      report.checked += 1;
      const fail = (code: VaultCheckCode, message: string) => {
        if (report.bad.length < maxBad) report.bad.push({ seq, code, message });
        report.ok = false;
      };
      if (!block) {
        fail('BLOCK_UNREADABLE', 'block is not JSON');
        continue;
      }
      if (state.status === 'erased') {
        report.erased += 1;
        continue;
      }
      if (state.status === 'missing') {
        fail('VAULT_ENTRY_MISSING', 'no vault entry');
        continue;
      }
      if (state.status === 'failed') {
        fail(state.code, state.message);
        continue;
      }
      for (const [name, c] of Object.entries(block.fields ?? {})) {
        const f = state.entry.fields?.[name];
        if (!f || !commitmentMatches(c, f.salt, f.value)) {
          fail('COMMITMENT_MISMATCH', `field ${JSON.stringify(name)} does not open its commitment`);
          break;
        }
      }
    }
  }
  return report;
}
