/**
 * The per-record value store beside the chain ("the customer's own block"). Blocks hold only
 * salted commitments; the values and salts live in the record's vault entries, keyed by seq, and
 * are written by the same Lua script as the block. This is the plain form; the vault issue wraps
 * entries in per-customer encryption and adds erasure without changing the block format.
 */
import type { VaultEntry } from '../ledger/block.js';
import { commitmentMatches } from '../ledger/block.js';

export type { VaultEntry, VaultField } from '../ledger/block.js';

export function decodeVaultEntry(bytes: Uint8Array | string): VaultEntry {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  return JSON.parse(text) as VaultEntry;
}

/** The opened field values of a block, each checked against the block's commitment. */
export function openFields(
  commitments: Record<string, string>,
  entry: VaultEntry,
): Record<string, { value: unknown; verified: boolean }> {
  const out: Record<string, { value: unknown; verified: boolean }> = {};
  for (const [name, c] of Object.entries(commitments)) {
    const opening = entry.fields[name];
    out[name] = opening
      ? { value: opening.value, verified: commitmentMatches(c, opening.salt, opening.value) }
      : { value: undefined, verified: false };
  }
  return out;
}
